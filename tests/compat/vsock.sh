#!/bin/bash
# SPDX-License-Identifier: MIT
#
# libv4v-preload.so with real programs nobody here wrote: socat, ncat and
# Python's socket.AF_VSOCK, each in its own v4v domain, over their own v4vd.
# One case per invocation (tests/compat/meson.build lists them):
# `vsock.sh CASE`.  Exit 0 pass, 1 fail, 77 skip.
#
# SAFETY: this machine's kernel AF_VSOCK reaches its host.  Every program
# that could make a vsock socket runs under novsock (a seccomp filter that
# refuses socket(AF_VSOCK)); the run_* helpers below are the only way this
# script starts one.
#
# Environment (set by meson): V4V_BIN the build directory, V4VD v4vd,
# NOVSOCK, VSOCK_PROBE, VSOCK_PY (the helpers' paths).
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

case_name=${1:-}
bin=${V4V_BIN:-}
[ -n "$case_name" ] || { echo "usage: vsock.sh CASE" >&2; exit 1; }
[ -n "$bin" ] || skip "V4V_BIN is not set"
v4vd_bin=${V4VD:-$bin/v4vd}
novsock=${NOVSOCK:-$bin/tests/compat/novsock}
probe=${VSOCK_PROBE:-$bin/tests/compat/vsock_probe}
pyscript=${VSOCK_PY:-}
calls=${VSOCK_CALLS:-$bin/tests/compat/vsock_calls}
preload=$bin/libv4v-preload.so
need_built "$v4vd_bin" "$bin/v4v-run" "$bin/v4vctl" "$novsock" "$probe" "$preload" \
	"$bin/v4v-vsock-relay"
# A preload built with ASan (make check's second run) needs the ASan
# runtime loaded first into programs that were not built with it (socat,
# ncat, python): preload it too.  Their own leaks at exit are not ours to
# judge, so leak detection is off for this script.
if ldd "$preload" 2>/dev/null | grep -q libasan; then
	preload="$(cc -print-file-name=libasan.so) $preload"
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fi
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3 || true)
[ -n "$python" ] || skip "needs python3"
PATH="$bin:$PATH"
unset V4V_DOMAIN_FD LD_PRELOAD

# $dir holds the cases' files, which the domains (their own uids, under
# v4v-run) read and write: sticky and open to all, like /tmp.  v4vd's
# runtime directory inside it is its own, 0700.
scratch dir vsock
chmod 1777 "$dir"
export V4V_RUNTIME_DIR="$dir/run"
fail_logs=("*.err")

# A program in domain NAME (domid ID, so CID ID+2), under novsock, with the
# preload, for at most SECS seconds: in_dom SECS NAME ID PROGRAM ARGS...
in_dom() {
	local secs=$1 name=$2 id=$3
	shift 3
	timeout "$secs" v4v-run -q --name "$name" --domid "$id" -- \
		"$novsock" env LD_PRELOAD="$preload" "$@"
}

# The same in the background, its pid (the program's own: v4v-run, novsock
# and env exec) in $bg: spawn_dom NAME ID PROGRAM ARGS...  (redirections
# go on the call and apply to the program)
spawn_dom() {
	local name=$1 id=$2
	shift 2
	spawn v4v-run -q --name "$name" --domid "$id" -- "$novsock" env LD_PRELOAD="$preload" "$@"
}

py() { "$python" "$pyscript" "$@"; }

# ---- cases -----------------------------------------------------------------

# The net under everything: novsock refuses the kernel's AF_VSOCK.
t_seccomp_net() {
	"$novsock" "$probe" kernel 97 || fail "novsock let socket(AF_VSOCK) through"
	"$novsock" -e 131 "$probe" kernel 131 || fail "novsock -e 131 did not answer 131"
	# The probe itself will not try outside the filter.
	local rc=0
	"$probe" kernel 97 2>"$dir/probe.err" || rc=$?
	[ "$rc" -eq 1 ] && grep -q "not trying" "$dir/probe.err" || fail "probe tried unfiltered"
	# And the filter is inherited by children and execs (socat, python...).
	"$novsock" sh -c "exec '$probe' kernel 97" || fail "the filter did not survive exec"
}

# The preload fails closed: no domain, a bogus domain fd, v4vd gone -> an
# error of its own, never the kernel's socket (novsock -e 131 would say 131).
t_fail_closed() {
	env -u V4V_DOMAIN_FD "$novsock" -e 131 env LD_PRELOAD="$preload" "$probe" preload 131 \
		>"$dir/out" 2>"$dir/probe.err" || fail "no domain: $(cat "$dir/out")"
	grep -q "Address family not supported" "$dir/out" || fail "no domain: $(cat "$dir/out")"
	V4V_DOMAIN_FD=0 "$novsock" -e 131 env LD_PRELOAD="$preload" "$probe" preload 131 \
		</dev/null >"$dir/out" 2>"$dir/probe.err" || fail "bogus fd: $(cat "$dir/out")"
	start_v4vd
	# shellcheck disable=SC2016
	spawn v4v-run -q --name dom -- sh -c 'touch "$1/ready"; while [ ! -e "$1/go" ]; do
		sleep 0.02; done; exec "$2" -e 131 env LD_PRELOAD="$3" "$4" preload 131' \
		sh "$dir" "$novsock" "$preload" "$probe" >"$dir/out" 2>"$dir/probe.err"
	local p=$bg
	wait_for "the domain" test -e "$dir/ready"
	kill "$daemon"
	wait "$daemon" 2>/dev/null || true
	daemon=
	touch "$dir/go"
	reap "$p" 20
	[ "$status" -eq 0 ] || fail "v4vd down: $(cat "$dir/out")"
}

# A C program's calls, one by one (vsock_calls.c).
t_calls() {
	start_v4vd
	in_dom 60 calls 5 "$calls" >"$dir/out" 2>"$dir/calls.err" || fail "vsock_calls"
}

# socat: a large random file intact, each way (listener sends, then receives).
t_socat_stream() {
	need --apt socat
	start_v4vd
	head -c $((16 << 20)) /dev/urandom >"$dir/in"
	spawn_dom srv 5 socat -u VSOCK-LISTEN:6000 CREATE:"$dir/out" 2>"$dir/srv.err"
	local srv=$bg
	wait_for "socat's listener" has_ring srv 6000
	in_dom 60 cli 6 socat -u OPEN:"$dir/in" VSOCK-CONNECT:7:6000 2>"$dir/cli.err" ||
		fail "socat client failed"
	reap "$srv" 30
	[ "$status" -eq 0 ] || fail "socat listener exited $status"
	cmp "$dir/in" "$dir/out" || fail "client -> listener: bytes differ"

	spawn_dom srv2 8 socat -u OPEN:"$dir/in" VSOCK-LISTEN:6001 2>"$dir/srv.err"
	srv=$bg
	wait_for "socat's listener" has_ring srv2 6001
	in_dom 60 cli2 9 socat -u VSOCK-CONNECT:10:6001 CREATE:"$dir/out2" \
		2>"$dir/cli.err" || fail "socat client failed"
	reap "$srv" 30
	cmp "$dir/in" "$dir/out2" || fail "listener -> client: bytes differ"
}

# socat's fork + EXEC:cat hands the accepted socket to cat (fork, then exec):
# two clients at once get their own bytes back.
t_socat_fork_exec() {
	need --apt socat
	start_v4vd
	head -c $((4 << 20)) /dev/urandom >"$dir/in1"
	head -c $((3 << 20)) /dev/urandom >"$dir/in2"
	spawn_dom echo 5 socat VSOCK-LISTEN:6002,fork EXEC:cat 2>"$dir/echo.err"
	wait_for "socat's listener" has_ring echo 6002
	spawn sh -c "exec timeout 60 v4v-run -q --name c1 -- '$novsock' env LD_PRELOAD='$preload' \
		socat -t 30 - VSOCK-CONNECT:7:6002 <'$dir/in1' >'$dir/out1' 2>'$dir/c1.err'"
	local c1=$bg
	in_dom 60 c2 6 socat -t 30 - VSOCK-CONNECT:7:6002 <"$dir/in2" >"$dir/out2" \
		2>"$dir/c2.err" || fail "second client failed"
	reap "$c1" 60
	[ "$status" -eq 0 ] || fail "first client exited $status"
	cmp "$dir/in1" "$dir/out1" || fail "first client's echo differs"
	cmp "$dir/in2" "$dir/out2" || fail "second client's echo differs"
}

# ncat --vsock, listen and connect modes; -k -e /bin/cat passes the socket
# to a child as its stdin and stdout.
t_ncat() {
	need --apt ncat
	start_v4vd
	head -c $((8 << 20)) /dev/urandom >"$dir/in"
	spawn_dom srv 5 ncat --vsock -l 6003 >"$dir/out" 2>"$dir/srv.err"
	local srv=$bg
	wait_for "ncat's listener" has_ring srv 6003
	in_dom 60 cli 6 ncat --vsock 7 6003 <"$dir/in" 2>"$dir/cli.err" ||
		fail "ncat client failed"
	reap "$srv" 30
	cmp "$dir/in" "$dir/out" || fail "ncat: bytes differ"

	# (ncat -e relays through pipes to its child, blocking on one while the
	# other is full: more than a pipe's worth at once deadlocks ncat itself,
	# over any transport; and on the client's half-close it may end before
	# cat has answered.  So the echo is small and its client, Python, reads
	# it all back before it closes.)
	head -c 40000 /dev/urandom >"$dir/small"
	spawn_dom echo 8 ncat --vsock -l -k -e /bin/cat 6004 2>"$dir/echo.err"
	wait_for "ncat's listener" has_ring echo 6004
	local i
	for i in 1 2 3; do
		in_dom 60 "cli$i" $((10 + i)) "$python" "$pyscript" echo_check 10 6004 "$dir/small" \
			2>"$dir/cli.err" || fail "ncat -k -e /bin/cat: echo $i"
	done
}

# Python: stream and seqpacket, non-blocking with selectors, a forking echo
# server, one that execs a new program on the socket, SOCK_DGRAM,
# socket.sendfile.
t_python() {
	start_v4vd
	spawn_dom es 5 "$python" "$pyscript" echo 6100 stream 2>"$dir/es.err"
	spawn_dom eq 8 "$python" "$pyscript" echo 6101 seqpacket 2>"$dir/eq.err"
	spawn_dom ef 11 "$python" "$pyscript" echo 6102 stream fork 2>"$dir/ef.err"
	wait_for "the stream echo" has_ring es 6100
	wait_for "the seqpacket echo" has_ring eq 6101
	spawn_dom ex 14 "$python" "$pyscript" echo 6103 stream exec 2>"$dir/ex.err"
	wait_for "the forking echo" has_ring ef 6102
	wait_for "the exec'ing echo" has_ring ex 6103
	in_dom 60 c1 20 "$python" "$pyscript" client 7 6100 stream 2>"$dir/c.err" ||
		fail "stream client"
	in_dom 60 c2 21 "$python" "$pyscript" client 10 6101 seqpacket 2>"$dir/c.err" ||
		fail "seqpacket client"
	in_dom 60 c3 22 "$python" "$pyscript" client 13 6102 stream 2>"$dir/c.err" ||
		fail "client of the forking echo"
	in_dom 60 c5 24 "$python" "$pyscript" client 16 6103 stream 2>"$dir/c.err" ||
		fail "client of the exec'ing echo"
	spawn_dom dg 17 "$python" "$pyscript" dgram_echo 6104 2>"$dir/dg.err"
	wait_for "the datagram echo" has_ring dg 6104
	in_dom 60 c6 25 "$python" "$pyscript" dgram 19 6104 2>"$dir/c.err" || fail "dgram"
	head -c $((5 << 20)) /dev/urandom >"$dir/file"
	in_dom 60 c4 23 "$python" "$pyscript" sendfile 13 6102 "$dir/file" \
		2>"$dir/c.err" || fail "sendfile"
}

# Linux vsock's errors and options; EOF then EPIPE after the peer closes.
t_python_errors() {
	start_v4vd
	spawn_dom srv 5 "$python" "$pyscript" closer 6200 2>"$dir/srv.err"
	wait_for "the listener" has_ring srv 6200
	in_dom 30 cli 8 env WANT_CID=10 "$python" "$pyscript" errors 7 6200 \
		2>"$dir/cli.err" || fail "errors"
	in_dom 30 cli2 9 "$python" "$pyscript" after_close 7 6200 2>"$dir/cli.err" ||
		fail "after the peer closed"
}

# The firewall refusing a vsock connect: the program's connect fails.
t_fw_reject() {
	start_v4vd
	spawn_dom web 5 "$python" "$pyscript" sink 6300 2>"$dir/web.err"
	wait_for "the listener" has_ring web 6300
	v4vctl domain create client >/dev/null
	v4vctl fw add --src client --dst web reject >/dev/null || fail "fw add"
	local rc=0
	timeout 20 v4v-run -q --join client -- "$novsock" env LD_PRELOAD="$preload" \
		"$python" "$pyscript" reader 7 6300 >"$dir/out" 2>"$dir/cli.err" || rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "connect through a reject rule: exit $rc"
	grep -q "PermissionError" "$dir/cli.err" || fail "not refused with EACCES"
	v4vctl fw delete 1
	timeout 20 v4v-run -q --join client -- "$novsock" env LD_PRELOAD="$preload" \
		"$python" "$pyscript" try_write 7 6300 >"$dir/out" 2>"$dir/cli.err" ||
		fail "without the rule"
}

# The opt-in AF_INET mapping: socat and Python speak TCP to 10.77.0.0/16,
# which V4V_VSOCK_INET maps to domains (10.77.0.5 is domid 5); unset,
# nothing is mapped.
t_inet_map() {
	need --apt socat
	start_v4vd
	local map=V4V_VSOCK_INET=10.77.0.0/16
	head -c $((4 << 20)) /dev/urandom >"$dir/in"
	spawn_dom srv 5 env "$map" socat -u TCP-LISTEN:6600,bind=10.77.0.5 CREATE:"$dir/out" \
		2>"$dir/srv.err"
	local srv=$bg
	wait_for "socat's TCP listener" has_ring srv 6600
	in_dom 60 cli 6 env "$map" socat -u OPEN:"$dir/in" TCP:10.77.0.5:6600 2>"$dir/cli.err" ||
		fail "socat TCP client"
	reap "$srv" 30
	cmp "$dir/in" "$dir/out" || fail "TCP over v4v: bytes differ"
	spawn_dom echo 8 env "$map" socat TCP-LISTEN:6601,bind=10.77.0.8,fork EXEC:cat \
		2>"$dir/echo.err"
	wait_for "socat's TCP echo" has_ring echo 6601
	in_dom 60 py 9 env "$map" "$python" "$pyscript" inet 10.77.0.8 6601 2>"$dir/py.err" ||
		fail "python TCP client"
	in_dom 60 off 10 "$python" "$pyscript" inet_off 10.77.0.10 2>"$dir/py.err" ||
		fail "mapped without V4V_VSOCK_INET"
}

# A peer killed with SIGKILL: the writer gets EPIPE/ECONNRESET, the reader
# EOF, both promptly.
t_peer_death() {
	start_v4vd
	spawn_dom sink 5 "$python" "$pyscript" sink 6400 2>"$dir/sink.err"
	local sink=$bg
	wait_for "the sink" has_ring sink 6400
	spawn_dom w 8 "$python" "$pyscript" writer 7 6400 >"$dir/w.out" 2>"$dir/w.err"
	local w=$bg
	wait_for "the writer" grep -q connected "$dir/w.out"
	sleep 0.3
	kill_python "$sink"
	local t0=$SECONDS
	reap "$w" 10
	[ $((SECONDS - t0)) -le 5 ] || fail "the writer took $((SECONDS - t0))s"
	grep -qE "error (EPIPE|ECONNRESET)" "$dir/w.out" || fail "writer: $(cat "$dir/w.out")"

	spawn_dom sink2 11 "$python" "$pyscript" sink 6401 2>"$dir/sink.err"
	sink=$bg
	wait_for "the sink" has_ring sink2 6401
	spawn_dom r 14 "$python" "$pyscript" reader 13 6401 >"$dir/r.out" 2>"$dir/r.err"
	local r=$bg
	wait_for "the reader" grep -q connected "$dir/r.out"
	kill_python "$sink"
	t0=$SECONDS
	reap "$r" 10
	[ $((SECONDS - t0)) -le 5 ] || fail "the reader took $((SECONDS - t0))s"
	grep -qE "^(eof|error ECONNRESET)$" "$dir/r.out" || fail "reader: $(cat "$dir/r.out")"
}

# SIGKILL the python under v4v-run pid $1 (v4v-run execs novsock, which
# execs env, which execs python: one process, the same pid).
kill_python() {
	kill -9 "$1"
	wait "$1" 2>/dev/null || true
}

"t_$case_name"
