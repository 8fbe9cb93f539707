#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/vm/lib.sh as a command, for programs that boot guests themselves
# (v4v-bench's vm transports):
#   boot.sh prepare          fetch and unpack the kernel into the cache, once
#   boot.sh run DIR NAME     build DIR/NAME.initrd around DIR/NAME.test.sh,
#                            then become QEMU on DIR/NAME.sock (v4v-vm's),
#                            its console in DIR/NAME.console
# Environment: V4V_VM_CACHE (the kernel's cache) and V4V_VM_GUEST (the
# static guest program).  Exit 1 with one line on stderr on a failure.
set -eu

src=$(cd "$(dirname "$0")/../.." && pwd)
cache=${V4V_VM_CACHE:?}
guest_bin=${V4V_VM_GUEST:?}
dir=
fail() {
	echo "boot.sh: $*" >&2
	exit 1
}
wait_for() { fail "wait_for is not used here ($1)"; }
# shellcheck source=tests/vm/lib.sh
. "$src/tests/vm/lib.sh"

case ${1:-} in
prepare)
	prepare_kernel
	;;
run)
	[ $# -eq 3 ] || fail "usage: boot.sh run DIR NAME"
	dir=$2
	prepare_kernel
	initrd "$3"
	qemu_exec "$3"
	;;
*)
	fail "usage: boot.sh prepare | run DIR NAME"
	;;
esac
