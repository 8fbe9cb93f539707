#!/bin/bash
# SPDX-License-Identifier: MIT
#
# v4v-vm against real QEMU and Debian's stock kernel: `vm.sh CASE`.
#
# Builds what it boots, once, into a cache under the build directory:
# Debian's linux-image-amd64 (apt-get download, dpkg-deb -x), its vmlinux
# unpacked from the bzImage (booted directly through its PVH entry), the
# virtio and vsock modules, busybox-static and our static tests/vm/guest.
# Each case writes the guest's /test.sh, packs an initramfs, starts a v4vd
# in a fresh runtime directory, v4v-vm and QEMU (TCG, 1 vCPU, 128 MiB),
# and reads the guest's verdicts from its serial console.  Polls, never
# sleeps and hopes.  Exit 0 pass, 1 fail, 77 skip (no QEMU to be had).
#
# Environment (set by meson): V4V_BIN the build directory, V4VD v4vd,
# V4V_SRC the source tree, V4V_VM_GUEST the guest program, V4V_VM_CACHE.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

case_name=${1:-}
bin=${V4V_BIN:-}
src=${V4V_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
[ -n "$case_name" ] && [ -n "$bin" ] || {
	echo "usage: V4V_BIN=BUILDDIR vm.sh CASE" >&2
	exit 1
}
v4vd_bin=${V4VD:-$bin/v4vd}
guest_bin=${V4V_VM_GUEST:-$bin/tests/vm/guest}
cache=${V4V_VM_CACHE:-$bin/tests/vm/cache}
need_built "$v4vd_bin" "$bin/v4v-run" "$bin/v4vctl" "$bin/v4vcat" "$bin/v4v-vm" "$guest_bin"
if ! command -v qemu-system-x86_64 >/dev/null || [ ! -x /bin/busybox ]; then
	"$src/scripts/need-debs" qemu-system-x86 busybox-static ||
		skip "QEMU (qemu-system-x86) and busybox-static cannot be installed"
fi
command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64"
PATH="$bin:$PATH"
unset V4V_DOMAIN_FD
mib=${V4V_VM_MIB:-4} # the size of the streams, in MiB

scratch dir vm
export V4V_RUNTIME_DIR="$dir"
fail_logs=("*.console" "*.vmm" v4vd.log)
poll=0.05

# prepare_kernel, initrd, start_vm, boot and wait_console (tests/vm/lib.sh);
# QEMU and v4v-vm, which they start, are killed at exit with the rest.
# shellcheck source=tests/vm/lib.sh
. "$src/tests/vm/lib.sh"
on_cleanup() { bg_pids=("${qemu_pid[@]}" "${vmm_pid[@]}" "${bg_pids[@]}"); }

no_domain() { ! dom_field "$1" domid; }

# True when domain $1 has exactly one ring.
one_ring() { [ "$(v4vctl rings | awk -v n="$1" '$2 == n' | wc -l)" = 1 ]; }
# No ring of domain $1 is a connection with a live domain: its listener
# and the spare rings lent to it are partnered with nobody, and the closed
# connections' rings libv4v keeps registered for reuse (its pool, at most
# 16 a process) are partnered with a domain that is dead: those go at the
# process's next connect, accept, close or events, not at once.
no_live_conn() {
	v4vctl -j rings | python3 -c '
import json, subprocess, sys
live = {d["domid"] for d in json.loads(subprocess.check_output(["v4vctl", "-j", "domains"]))}
mine = [r for r in json.load(sys.stdin) if r["name"] == sys.argv[1]]
sys.exit(0 if not [r for r in mine if r["partner"] in live] else 1)
' "$1"
}

# held_sink PORT: domain sink's v4vcat listening on PORT, its stdin a FIFO
# held open, so that it never ends the stream itself (an explicit
# redirection: bash gives a plain `cmd &` /dev/null); its pid in $bg.
held_sink() {
	mkfifo "$dir/sink.in"
	v4v-run -q --name sink -- v4vcat -l "$1" <>"$dir/sink.in" >/dev/null 2>"$dir/sink.err" &
	bg=$!
	bg_pids+=("$bg")
	wait_for "the sink's ring" has_ring sink "$1"
}

# ---- the image ------------------------------------------------------------

# The guest's "V4VTEST SUM <sha256>" line.
guest_sum() {
	sed -n 's/^V4VTEST SUM \([0-9a-f]*\) .*/\1/p' "$dir/$1.console" | head -n 1
}

# ---- the cases ------------------------------------------------------------

# A random file from the guest to a process domain, intact.
t_guest_to_process() {
	start_v4vd
	spawn v4v-run -q --name sink -- v4vcat -l 5000 </dev/null >"$dir/recv" 2>"$dir/sink.err"
	local sink=$bg
	wait_for "the sink's ring" has_ring sink 5000
	local cid=$(($(dom_field sink domid) + 2))
	start_vm vm1
	dom_field vm1 domid >/dev/null || fail "v4vctl domains does not list vm1"
	cat >"$dir/vm1.test.sh" <<-EOF
		dd if=/dev/urandom of=/tmp/f bs=64k count=$((mib * 16)) 2>/dev/null
		echo "V4VTEST SUM \$(sha256sum /tmp/f)"
		echo "V4VTEST START"
		/bin/guest connect $cid 5000 </tmp/f >/dev/null
		echo "V4VTEST RC \$?"
	EOF
	boot vm1
	wait_console vm1 "V4VTEST START"
	local t0
	t0=$(date +%s.%N)
	wait_console vm1 "V4VTEST EXIT"
	local t1
	t1=$(date +%s.%N)
	console_has vm1 "V4VTEST RC 0" || fail "the guest's connect failed"
	reap "$sink" 10
	[ "$(sha256sum <"$dir/recv" | cut -d' ' -f1)" = "$(guest_sum vm1)" ] ||
		fail "$mib MiB from the guest arrived changed ($(stat -c %s "$dir/recv") bytes)"
	echo "guest -> process: $mib MiB intact, $(rate "$t0" "$t1")"
}

# A guest SOCK_SEQPACKET connection to a process domain's V4V_SOCK_SEQPACKET
# echo: records of random sizes up to the largest, both ways, each whole and
# alone.
t_seqpacket() {
	start_v4vd
	spawn v4v-run -q --name peer -- "$V4V_VM_SEQ_ECHO" 5000 >"$dir/seq.out" 2>"$dir/seq.err"
	local peer=$bg
	wait_for "the peer's ring" has_ring peer 5000
	local cid=$(($(dom_field peer domid) + 2))
	start_vm vm1
	cat >"$dir/vm1.test.sh" <<-EOF
		echo "V4VTEST START"
		/bin/guest seq $cid 5000 200
		echo "V4VTEST RC \$?"
	EOF
	boot vm1
	wait_console vm1 "V4VTEST EXIT"
	console_has vm1 "V4VTEST RC 0" || fail "the guest's seqpacket records failed"
	reap "$peer" 10
	[ "$status" = 0 ] || fail "the seqpacket peer failed: $(cat "$dir/seq.err")"
	grep -q "^records 200$" "$dir/seq.out" || fail "the peer saw $(cat "$dir/seq.out")"
	echo "guest <-> process: 200 seqpacket records intact"
}

# "N.N s, M MiB/s" for $mib MiB between two date +%s.%N stamps.
rate() {
	python3 -c 'import sys; t = float(sys.argv[2]) - float(sys.argv[1]); m = int(sys.argv[3])
print("%.1f s, %.1f MiB/s (TCG)" % (t, m / t))' "$1" "$2" "$mib"
}

# A random file from a process domain to a guest listening on --listen.
t_process_to_guest() {
	start_v4vd
	start_vm vm1 --listen 5001
	cat >"$dir/vm1.test.sh" <<-EOF
		/bin/guest listen 5001 >/tmp/r
		echo "V4VTEST RC \$?"
		echo "V4VTEST SUM \$(sha256sum /tmp/r)"
	EOF
	head -c $((mib << 20)) /dev/urandom >"$dir/file"
	boot vm1
	wait_console vm1 "guest: listening"
	local t0
	t0=$(date +%s.%N)
	timeout 120 v4v-run -q --name src -- v4vcat vm1 5001 <"$dir/file" >/dev/null 2>"$dir/src.err" ||
		fail "v4vcat to the guest failed: $(cat "$dir/src.err")"
	wait_console vm1 "V4VTEST EXIT"
	console_has vm1 "V4VTEST RC 0" || fail "the guest's listen failed"
	local t1
	t1=$(date +%s.%N)
	[ "$(sha256sum <"$dir/file" | cut -d' ' -f1)" = "$(guest_sum vm1)" ] ||
		fail "$mib MiB to the guest arrived changed"
	echo "process -> guest: $mib MiB intact, $(rate "$t0" "$t1")"
}

# The guest connects and the process domain sends: a download, ended by
# the server's end of stream.
t_guest_fetch() {
	start_v4vd
	head -c $((mib << 20)) /dev/urandom >"$dir/file"
	# (an explicit redirection: bash gives a plain `cmd &` /dev/null)
	v4v-run -q --name web -- v4vcat -l 5008 <"$dir/file" >/dev/null 2>"$dir/web.err" &
	bg_pids+=($!)
	wait_for "the server's ring" has_ring web 5008
	local cid=$(($(dom_field web domid) + 2))
	start_vm vm1
	cat >"$dir/vm1.test.sh" <<-EOF
		/bin/guest connect $cid 5008 </dev/null >/tmp/r
		echo "V4VTEST RC \$?"
		echo "V4VTEST SUM \$(sha256sum /tmp/r)"
	EOF
	boot vm1
	wait_console vm1 "V4VTEST EXIT"
	console_has vm1 "V4VTEST RC 0" || fail "the guest's download failed"
	[ "$(sha256sum <"$dir/file" | cut -d' ' -f1)" = "$(guest_sum vm1)" ] ||
		fail "$mib MiB downloaded by the guest arrived changed"
}

# Two VMs, each its own v4v-vm and domain, talk through v4v.
t_vm_to_vm() {
	start_v4vd
	start_vm vma --domid 20 --listen 5002
	start_vm vmb --domid 21
	cat >"$dir/vma.test.sh" <<-EOF
		/bin/guest listen 5002 >/tmp/r
		echo "V4VTEST RC \$?"
		echo "V4VTEST SUM \$(sha256sum /tmp/r)"
	EOF
	cat >"$dir/vmb.test.sh" <<-EOF
		dd if=/dev/urandom of=/tmp/f bs=64k count=32 2>/dev/null
		echo "V4VTEST SUM \$(sha256sum /tmp/f)"
		/bin/guest connect 22 5002 </tmp/f >/dev/null
		echo "V4VTEST RC \$?"
	EOF
	local t0=$SECONDS
	boot vma
	wait_console vma "guest: listening"
	boot vmb
	wait_console vmb "V4VTEST EXIT"
	wait_console vma "V4VTEST EXIT"
	console_has vmb "V4VTEST RC 0" || fail "vmb's connect failed"
	console_has vma "V4VTEST RC 0" || fail "vma's listen failed"
	[ -n "$(guest_sum vma)" ] && [ "$(guest_sum vma)" = "$(guest_sum vmb)" ] ||
		fail "2 MiB from vmb reached vma changed"
	echo "vm -> vm: 2 MiB intact in $((SECONDS - t0))s (two boots included)"
}

# A firewall reject rule: the guest's connect is reset, the rule counts it.
t_fw_reject() {
	start_v4vd
	spawn v4v-run -q --name sink -- v4vcat -l -k 5003 </dev/null >/dev/null 2>"$dir/sink.err"
	wait_for "the sink's ring" has_ring sink 5003
	local cid=$(($(dom_field sink domid) + 2))
	start_vm vm1
	v4vctl fw add --src vm1 --dst sink reject || fail "fw add failed"
	cat >"$dir/vm1.test.sh" <<-EOF
		/bin/guest connect $cid 5003 </dev/null
		echo "V4VTEST RC \$?"
		sleep 600
	EOF
	boot vm1
	wait_console vm1 "V4VTEST RC"
	console_has vm1 "guest: connect: ECONNRESET" ||
		fail "the guest's connect did not fail with ECONNRESET"
	v4vctl -j fw list | python3 -c '
import json, sys
r = json.load(sys.stdin)[0]
assert r["action"] == "reject" and r["hits"] >= 1, r' || fail "rule counter: $(v4vctl fw list)"
	[ "$(dom_field vm1 rejected)" -ge 1 ] || fail "vm1's rejected counter did not move"
	grep -q "firewall rejected $(dom_field vm1 domid)(vm1):" "$dir/v4vd.log" ||
		fail "v4vd did not log the rejection"
}

# QEMU killed mid-stream: the VM's domain goes, its peer sees a reset.
t_vm_killed() {
	start_v4vd
	start_vm vm1 --listen 5004
	cat >"$dir/vm1.test.sh" <<-EOF
		/bin/guest listen 5004 >/dev/null
	EOF
	boot vm1
	wait_console vm1 "guest: listening"
	# shellcheck disable=SC2016 # ($1 is the inner shell's)
	spawn sh -c 'cat /dev/zero | timeout 60 v4v-run -q --name src -- v4vcat vm1 5004 2>"$1"' \
		sh "$dir/src.err"
	local src_pid=$bg
	WAIT_SECS=60 wait_for "1 MiB into the guest" dom_field_gt vm1 rx_bytes $((1 << 20))
	kill -9 "${qemu_pid[vm1]}"
	expect_reset "$src_pid" "the VM"
	reap "${vmm_pid[vm1]}" 10
	wait_for "vm1's domain to go" no_domain vm1
	wait_for "src's domain to go" no_domain src
	[ "$(v4vctl -j rings)" = "[]" ] || fail "rings left: $(v4vctl rings)"
	[ "$(v4vctl -j domains)" = "[]" ] || fail "domains left: $(v4vctl domains)"
}

# A v4v connection to a --listen port the guest does not listen on: v4v-vm
# has accepted it already (libv4v cannot refuse after accept), so when the
# guest answers RST the peer reads end of stream at once, and nothing of the
# connection is left.
t_listen_refused() {
	start_v4vd
	start_vm vm1 --listen 5006
	cat >"$dir/vm1.test.sh" <<-EOF
		echo "V4VTEST READY"
		sleep 600
	EOF
	boot vm1
	wait_console vm1 "V4VTEST READY"
	local t0=$SECONDS
	timeout 20 v4v-run -q --name src -- v4vcat vm1 5006 </dev/null >"$dir/out" 2>"$dir/src.err" ||
		fail "v4vcat to a port the guest refuses: $(cat "$dir/src.err")"
	[ $((SECONDS - t0)) -le 5 ] || fail "the refusal took $((SECONDS - t0))s"
	[ ! -s "$dir/out" ] || fail "data from a refused connection"
	wait_for "no connection ring of vm1 to be left" no_live_conn vm1
	has_ring vm1 5006 || fail "vm1's listener is gone"
}

# The guest's driver resets the device (unbind, as at a reboot or module
# reload): QEMU stops the queues, v4v-vm drops the connections (their peers
# read end of stream); bound again, the device is set up anew and works.
t_device_reset() {
	start_v4vd
	held_sink 5010
	spawn v4v-run -q --name sink2 -- v4vcat -l 5011 </dev/null >"$dir/out" 2>"$dir/sink2.err"
	wait_for "the second sink's ring" has_ring sink2 5011
	local cid=$(($(dom_field sink domid) + 2)) cid2=$(($(dom_field sink2 domid) + 2))
	start_vm vm1
	cat >"$dir/vm1.test.sh" <<-EOF
		/bin/guest hold $cid 5010 &
		sleep 2 # (inside the guest: time for the connection to open)
		drv=/sys/bus/virtio/drivers/vmw_vsock_virtio_transport
		dev=\$(basename \$(ls -d \$drv/virtio* | head -n 1))
		echo \$dev >\$drv/unbind
		echo "V4VTEST UNBOUND"
		wait
		echo \$dev >\$drv/bind
		echo "again" | /bin/guest connect $cid2 5011 >/dev/null
		echo "V4VTEST RC \$?"
	EOF
	boot vm1
	wait_console vm1 "V4VTEST RC"
	console_has vm1 "V4VTEST RC 0" || fail "no connection after the device came back"
	grep -q "the guest reset its vsock device; dropping 1 connections" "$dir/vm1.vmm" ||
		fail "v4v-vm did not drop the connection at the reset"
	wait_for "the second connection's data at the sink" grep -q again "$dir/out"
}

# The guest's peer domain killed: v4v-vm resets the guest's connection.
t_peer_killed() {
	start_v4vd
	held_sink 5009
	local sink=$bg
	local cid=$(($(dom_field sink domid) + 2))
	start_vm vm1
	cat >"$dir/vm1.test.sh" <<-EOF
		/bin/guest hold $cid 5009
		echo "V4VTEST RC \$?"
		sleep 600
	EOF
	boot vm1
	wait_console vm1 "guest: held"
	kill -9 "$sink"
	local t0=$SECONDS
	wait_console vm1 "guest: hold:" 30
	[ $((SECONDS - t0)) -le 5 ] || fail "the guest took $((SECONDS - t0))s to notice"
	console_has vm1 "guest: hold: EOF, then write: EPIPE" ||
		fail "the guest saw '$(grep 'guest: hold' "$dir/vm1.console")', not EOF then EPIPE"
	# v4v-vm let go of the connection: only the VM's domain is left, ringless.
	wait_for "the sink's domain to go" no_domain sink
	wait_for "vm1's connection ring to go" sh -c '! v4vctl rings | grep -q " vm1 "'
}

# v4v-vm killed: the guest's connection through it is reset.
t_backend_killed() {
	start_v4vd
	held_sink 5005
	local cid=$(($(dom_field sink domid) + 2))
	start_vm vm1
	cat >"$dir/vm1.test.sh" <<-EOF
		/bin/guest hold $cid 5005
		echo "V4VTEST RC \$?"
	EOF
	boot vm1
	wait_console vm1 "guest: held"
	kill -9 "${vmm_pid[vm1]}"
	local t0=$SECONDS
	WAIT_SECS=30 wait_for "the guest to see its connection end" console_has vm1 "guest: hold:"
	[ $((SECONDS - t0)) -le 5 ] || fail "the guest took $((SECONDS - t0))s to notice"
	# The watcher's RST: Linux ends the blocked read as at a close (0), and
	# the connection is dead for writing.
	console_has vm1 "guest: hold: EOF, then write: EPIPE" ||
		fail "the guest saw '$(grep 'guest: hold' "$dir/vm1.console")', not EOF then EPIPE"
	grep -q "watcher: v4v-vm died; reset 1 guest connection" "$dir/vm1.vmm" ||
		fail "the watcher did not reset the connection"
	# The domain died with v4v-vm: its peer was reset and nothing is left.
	wait_for "vm1's domain to go" no_domain vm1
	wait_for "the sink to see the reset and exit" no_domain sink
	[ "$(v4vctl -j rings)" = "[]" ] || fail "rings left: $(v4vctl rings)"
}

type "t_$case_name" >/dev/null 2>&1 || { echo "vm.sh: no case '$case_name'" >&2; exit 1; }
prepare_kernel
"t_$case_name"
