#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Programs written for the original vchan headers, built unchanged through
# our pkg-config files (the uninstalled ones of the build directory) and run
# in real domains under v4v-run, one of them domain 0.  `build.sh CASE`.
# Exit 0 pass, 1 fail, 77 skip.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

case_name=${1:-}
bin=${V4V_BIN:-}
src=${V4V_SRC:-}
[ -n "$bin" ] && [ -n "$src" ] || skip "V4V_BIN/V4V_SRC unset"
need cc pkg-config timeout
v4vd_bin=${V4VD:-$bin/v4vd}
PATH="$bin:$PATH"
unset V4V_DOMAIN_FD
export PKG_CONFIG_PATH="$bin/meson-uninstalled"
export LD_LIBRARY_PATH="$bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

scratch dir compat
export V4V_RUNTIME_DIR="$dir"
# The programs, where the domains' own uids (v4v-run) may run them; the
# runtime directory stays v4vd's alone.
scratch bdir compat-bin
# shellcheck disable=SC2154 # (scratch set it)
chmod 755 "$bdir"
fail_logs=("*.log")

# A library built with ASan (make check's second run) needs its runtime
# first in the program: build the programs the same way.
san=
if ldd "$bin/libv4v.so" 2>/dev/null | grep -q libasan; then
	san="-fsanitize=address,undefined"
fi

# build NAME PKG SOURCE: cc SOURCE $(pkg-config --cflags --libs PKG)
build() {
	# shellcheck disable=SC2046
	cc -Wall -Werror $san -o "$bdir/$1" "$src/tests/compat/$3" $(pkg-config --cflags --libs "$2") \
		2>"$dir/cc.log" || fail "cc $3 with pkg-config $2"
}

# run_pair PROG SERVER-DOMID CLIENT-DOMID ARG: the server in its domain,
# then the client; the client prints what the server answered.
run_pair() {
	local prog=$1 sd=$2 cd=$3 arg=$4
	spawn v4v-run --quiet --domid "$sd" -- "$bdir/$prog" server "$cd" "$arg" >"$dir/server.out" \
		2>"$dir/server.log"
	local spid=$bg
	wait_for "the server" grep -q listening "$dir/server.out"
	timeout 20 v4v-run --quiet --domid "$cd" -- "$bdir/$prog" client "$sd" "$arg" \
		>"$dir/client.out" 2>"$dir/client.log" || fail "client failed"
	grep -qx pong "$dir/client.out" || fail "client got: $(cat "$dir/client.out")"
	timeout 20 tail --pid="$spid" -f /dev/null || fail "server did not exit"
	wait "$spid" || fail "server failed"
	grep -qx ping "$dir/server.out" || fail "server got: $(cat "$dir/server.out")"
}

t_xenvchan() {
	# the calls' types are Xen's: the same file against both headers
	if [ -r /usr/include/libxenvchan.h ]; then
		cc -Wall -Werror -c -o "$dir/sigs-xen.o" "$src/tests/compat/xen_sigs.c" \
			2>"$dir/cc.log" || fail "xen_sigs.c against Xen's own header"
	fi
	# shellcheck disable=SC2046
	cc -Wall -Werror -c -o "$dir/sigs.o" "$src/tests/compat/xen_sigs.c" \
		$(pkg-config --cflags xenvchan-v4v) 2>"$dir/cc.log" ||
		fail "xen_sigs.c against our header"
	build xen_prog xenvchan-v4v xen_prog.c
	start_v4vd
	# the server in domain 0, the client in 7
	run_pair xen_prog 0 7 /local/domain/0/data/vchan/7/1
	# the firewall applies to vchans as to any connection
	v4vctl fw add --src 7 --dst 0 reject >/dev/null || fail "fw add"
	spawn v4v-run --quiet --domid 0 -- "$bdir/xen_prog" server 7 /p >"$dir/server.out" \
		2>"$dir/server.log"
	wait_for "the server" grep -q listening "$dir/server.out"
	if timeout 20 v4v-run --quiet --domid 7 -- "$bdir/xen_prog" client 0 /p \
		>"$dir/client.out" 2>"$dir/client.log"; then
		fail "a client the firewall rejects connected"
	fi
	grep -q "init: Permission denied" "$dir/client.log" ||
		fail "client: $(cat "$dir/client.log")"
	v4vctl fw list | grep -q reject || fail "no rule in fw list"
}

t_vchan() {
	# a project that picks its backend: pkg-config vchan-$(BACKEND_VMM)
	BACKEND_VMM=v4v
	[ "$(pkg-config --variable=backend_vmm "vchan-$BACKEND_VMM")" = v4v ] ||
		fail "vchan-v4v has no backend_vmm=v4v"
	# shellcheck disable=SC2046
	cc -Wall -Werror -c -o "$dir/qsigs.o" "$src/tests/compat/qubes_sigs.c" \
		$(pkg-config --cflags "vchan-$BACKEND_VMM") 2>"$dir/cc.log" ||
		fail "qubes_sigs.c against our header"
	build qubes_prog "vchan-$BACKEND_VMM" qubes_prog.c
	# one that asks for the plain "vchan" package: a vchan.pc alias
	mkdir "$dir/pc"
	ln -s "$bin/meson-uninstalled/vchan-v4v-uninstalled.pc" "$dir/pc/vchan.pc"
	PKG_CONFIG_PATH="$dir/pc" build qubes_prog_plain vchan qubes_prog.c
	start_v4vd
	# qrexec's layout: the agent serves in a VM, the daemon in domain 0
	run_qrexec qubes_prog
	run_qrexec qubes_prog_plain
}

run_qrexec() {
	local prog=$1 vm=12
	spawn v4v-run --quiet --domid "$vm" -- "$bdir/$prog" agent 0 >"$dir/agent.out" 2>"$dir/agent.log"
	local apid=$bg
	wait_for "the agent" grep -q listening "$dir/agent.out"
	timeout 20 v4v-run --quiet --domid 0 -- "$bdir/$prog" daemon "$vm" >"$dir/daemon.out" \
		2>"$dir/daemon.log" || fail "daemon failed"
	grep -qx PONG "$dir/daemon.out" || fail "daemon got: $(cat "$dir/daemon.out")"
	timeout 20 tail --pid="$apid" -f /dev/null || fail "agent did not exit"
	wait "$apid" || fail "agent failed"
	grep -qx PING "$dir/agent.out" || fail "agent got: $(cat "$dir/agent.out")"
}

case "$case_name" in
xenvchan) t_xenvchan ;;
vchan) t_vchan ;;
*) echo "unknown case $case_name" >&2; exit 1 ;;
esac
