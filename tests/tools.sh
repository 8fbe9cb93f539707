#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Black-box tests of the tools: v4vd, v4v-run, v4vctl and v4vcat, run as a
# user would run them.  One case per invocation (tests/meson.build lists
# them): `tools.sh CASE`.  Each case starts its own v4vd in a fresh
# temporary runtime directory, polls for readiness (never sleeps and hopes),
# and removes everything on exit.  Exit 0 pass, 1 fail, 77 skip.
#
# Environment (set by meson): V4V_BIN the build directory, V4VD v4vd's path.
set -eu

case_name=${1:-}
bin=${V4V_BIN:-}
if [ -z "$case_name" ]; then
	echo "usage: V4V_BIN=BUILDDIR tools.sh CASE" >&2
	exit 1
fi
if [ -z "$bin" ]; then
	echo "SKIP: V4V_BIN (the build directory) is not set" >&2
	exit 77
fi
v4vd_bin=${V4VD:-$bin/v4vd}
for t in "$v4vd_bin" "$bin/v4v-run" "$bin/v4vctl" "$bin/v4vcat"; do
	[ -x "$t" ] || { echo "SKIP: $t is not built" >&2; exit 77; }
done
for t in python3 timeout cmp head; do
	command -v "$t" >/dev/null || { echo "SKIP: needs $t" >&2; exit 77; }
done
PATH="$bin:$PATH"
unset V4V_DOMAIN_FD

dir=$(mktemp -d /tmp/v4v-tools-XXXXXX)
export V4V_RUNTIME_DIR="$dir"
# As root each domain runs as its own uid.  A developer who is not root
# gets v4v-run's development opt-out, --as-caller, through a wrapper.
if [ "$(id -u)" -ne 0 ]; then
	mkdir "$dir/bin"
	printf '#!/bin/sh\nexec "%s/v4v-run" --as-caller "$@"\n' "$bin" >"$dir/bin/v4v-run"
	chmod +x "$dir/bin/v4v-run"
	PATH="$dir/bin:$PATH"
fi
daemon=
bg_pids=()

cleanup() {
	local p
	for p in "${bg_pids[@]}"; do
		kill -9 "$p" 2>/dev/null || true
	done
	if [ -n "$daemon" ]; then
		kill "$daemon" 2>/dev/null || true
		wait "$daemon" 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT

fail() {
	echo "FAIL ($case_name): $*" >&2
	if [ -s "$dir/v4vd.log" ]; then
		echo "--- v4vd log:" >&2
		tail -n 20 "$dir/v4vd.log" >&2
	fi
	exit 1
}

# Poll until "$@" succeeds, for at most 20 s; fail with DESC otherwise.
wait_for() {
	local desc=$1 end=$((SECONDS + 20))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$end" ] || fail "timed out waiting for $desc"
		sleep 0.02
	done
}

start_v4vd() {
	"$v4vd_bin" --foreground --runtime-dir "$dir" 2>"$dir/v4vd.log" &
	daemon=$!
	wait_for "v4vd to answer on its control socket" v4vctl stats
}

# Run a command in the background, remembering its pid for cleanup.
# Sets $bg to the pid.
spawn() {
	"$@" &
	bg=$!
	bg_pids+=("$bg")
}

# Wait (boundedly) for background pid $1 to exit; its status in $status.
reap() {
	local pid=$1 secs=${2:-30} i
	for ((i = 0; i < secs * 50; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			status=0
			wait "$pid" || status=$?
			return 0
		fi
		sleep 0.02
	done
	fail "process $pid still running after ${secs}s"
}

# True when domain $1 has a ring on port $2.
has_ring() {
	v4vctl rings | awk -v n="$1" -v p="$2" '$2 == n && $3 == p { f = 1 } END { exit !f }'
}

# True when service $1 is registered (by any domain).
has_name() {
	v4vctl names | awk -v s="$1" 'NR > 1 && $3 == s { f = 1 } END { exit !f }'
}

no_name() { ! has_name "$1"; }

# One field of one domain from `v4vctl -j domains`.
dom_field() {
	v4vctl -j domains | python3 -c '
import json, sys
for d in json.load(sys.stdin):
    if d["name"] == sys.argv[1]:
        print(d[sys.argv[2]])
        break
else:
    sys.exit(1)' "$1" "$2"
}

dom_field_gt() {
	local v
	v=$(dom_field "$1" "$2") && [ "$v" -gt "$3" ]
}

# Expect a command to fail with exactly one line on stderr containing $1.
# Usage: [EXPECT_INPUT=LINE] expect_error TEXT CMD...  (stdin: LINE, or empty)
expect_error() {
	local want=$1 rc=0 lines
	shift
	if [ -n "${EXPECT_INPUT:-}" ]; then
		printf '%s\n' "$EXPECT_INPUT" | timeout 10 "$@" >/dev/null 2>"$dir/err" || rc=$?
	else
		timeout 10 "$@" </dev/null >/dev/null 2>"$dir/err" || rc=$?
	fi
	[ "$rc" -ne 0 ] || fail "'$*' exited 0; expected an error saying '$want'"
	[ "$rc" -ne 124 ] || fail "'$*' hung"
	grep -qF -- "$want" "$dir/err" || fail "'$*' said '$(cat "$dir/err")', not '$want'"
	# (v4v-run's own "domain N NAME" notice does not count)
	lines=$(grep -cvE '^v4v-run: domain [0-9]+( [A-Za-z0-9._-]+)?$' "$dir/err" || true)
	[ "$lines" -eq 1 ] || fail "'$*' printed $lines lines on stderr: $(cat "$dir/err")"
}

# Expect a usage error: exit 1, the first line of stderr containing $1
# (the usage text follows it).
expect_usage() {
	local want=$1 rc=0
	shift
	timeout 10 "$@" </dev/null >/dev/null 2>"$dir/err" || rc=$?
	[ "$rc" -eq 1 ] || fail "'$*' exited $rc, expected 1"
	head -n 1 "$dir/err" | grep -qF -- "$want" ||
		fail "'$*' said '$(head -n 1 "$dir/err")', not '$want'"
	grep -q "^usage:" "$dir/err" || fail "'$*' printed no usage"
}

# ---- cases -----------------------------------------------------------------

# 64 MiB of random bytes through a stream arrive byte-identical.
t_stream_64mib() {
	start_v4vd
	head -c $((64 << 20)) /dev/urandom >"$dir/in"
	spawn v4v-run -q --name sink -- v4vcat -l 7000 </dev/null >"$dir/out" 2>"$dir/sink.err"
	local sink=$bg
	wait_for "the sink's ring" has_ring sink 7000
	timeout 60 v4v-run -q --name src -- v4vcat sink 7000 <"$dir/in" 2>"$dir/src.err" ||
		fail "sender failed: $(cat "$dir/src.err")"
	reap "$sink" 30
	[ "$status" -eq 0 ] || fail "receiver exited $status: $(cat "$dir/sink.err")"
	cmp "$dir/in" "$dir/out" || fail "received bytes differ from those sent"
}

# With -u every line is one datagram, and boundaries survive.
t_dgram_boundaries() {
	start_v4vd
	# Persistent domains outlive the processes, so their counters can be read after.
	v4vctl domain create rx >/dev/null
	v4vctl domain create tx >/dev/null

	seq 1 100 >"$dir/in1"
	spawn v4v-run -q --join rx -- v4vcat -u -l -c 100 7001 >"$dir/out1" 2>"$dir/rx.err"
	local rx=$bg
	wait_for "the receiver's ring" has_ring rx 7001
	timeout 20 v4v-run -q --join tx -- v4vcat -u rx 7001 <"$dir/in1" 2>"$dir/tx.err" ||
		fail "sender failed: $(cat "$dir/tx.err")"
	reap "$rx" 20
	[ "$status" -eq 0 ] || fail "receiver exited $status: $(cat "$dir/rx.err")"
	cmp "$dir/in1" "$dir/out1" || fail "100 numbered lines did not arrive as sent"

	# Awkward lines: empty, long, binary-ish, and a last one without newline.
	{
		printf 'first\n\n'
		head -c 60000 /dev/zero | tr '\0' 'x'
		printf '\n\ttabs and spaces  \n'
		printf 'no newline at the end'
	} >"$dir/in2"
	local n
	n=$(($(wc -l <"$dir/in2") + 1))
	spawn v4v-run -q --join rx -- v4vcat -u -l -c "$n" 7002 >"$dir/out2" 2>"$dir/rx.err"
	rx=$bg
	wait_for "the receiver's ring" has_ring rx 7002
	timeout 20 v4v-run -q --join tx -- v4vcat -u rx 7002 <"$dir/in2" 2>"$dir/tx.err" ||
		fail "sender failed: $(cat "$dir/tx.err")"
	# -c N: the receiver exits by itself only after exactly N datagrams;
	# had two lines been merged it would still wait, had one been split its
	# output would differ.
	reap "$rx" 20
	[ "$status" -eq 0 ] || fail "receiver exited $status: $(cat "$dir/rx.err")"
	cmp "$dir/in2" "$dir/out2" || fail "awkward lines did not arrive as sent"

	# v4vd's own count: one message per line, each way.
	local got sent
	got=$(dom_field rx rx_msgs) || fail "no domain rx"
	sent=$(dom_field tx tx_msgs) || fail "no domain tx"
	[ "$got" -eq $((100 + n)) ] || fail "rx received $got messages, expected $((100 + n))"
	[ "$sent" -eq $((100 + n)) ] || fail "tx sent $sent messages, expected $((100 + n))"

	# A line longer than a datagram is refused, with the reason.
	head -c 70000 /dev/zero | tr '\0' 'y' >"$dir/in3"
	local rc=0
	timeout 20 v4v-run -q --join tx -- v4vcat -u rx 7002 <"$dir/in3" 2>"$dir/err" || rc=$?
	[ "$rc" -eq 1 ] || fail "a 70000-byte line: exit $rc, expected 1"
	grep -q "longer than a datagram" "$dir/err" || fail "a 70000-byte line: '$(cat "$dir/err")'"
}

# A service name resolves while its domain lives, and goes with it.
t_names() {
	start_v4vd
	spawn v4v-run -q --name web -- v4vcat -l -n http 7003 </dev/null >"$dir/out" 2>"$dir/web.err"
	local web=$bg
	wait_for "service http to be registered" has_name http
	v4vctl names | grep -qw web || fail "v4vctl names does not show domain web"
	echo "hello through a name" | timeout 20 v4v-run -q --name client -- v4vcat web http \
		2>"$dir/client.err" || fail "client failed: $(cat "$dir/client.err")"
	reap "$web" 20
	[ "$status" -eq 0 ] || fail "listener exited $status: $(cat "$dir/web.err")"
	[ "$(cat "$dir/out")" = "hello through a name" ] || fail "listener got '$(cat "$dir/out")'"

	# The listener's domain is gone, and its name with it.
	wait_for "service http to be unregistered" no_name http
	expect_error "no domain 'web'" v4v-run -q -- v4vcat web http
	# A new domain of the same name does not inherit the service.
	v4vctl domain create web >/dev/null
	expect_error "no service 'http' at domain 'web'" v4v-run -q -- v4vcat web http
}

# A reject rule refuses with a clear error, counts, and is logged.
t_fw_reject() {
	start_v4vd
	spawn v4v-run -q --name web -- v4vcat -l -k 7004 </dev/null >"$dir/out" 2>"$dir/web.err"
	wait_for "the listener's ring" has_ring web 7004
	v4vctl domain create client >/dev/null
	v4vctl fw add --src client --dst web reject || fail "fw add failed"

	expect_error "rejected by the firewall" v4v-run -q --join client -- v4vcat web 7004
	EXPECT_INPUT="a datagram" expect_error "rejected by the firewall" \
		v4v-run -q --join client -- v4vcat -u web 7004

	v4vctl -j fw list >"$dir/fw.json"
	python3 - "$dir/fw.json" client web <<'EOF' ||
import json, sys
rules = json.load(open(sys.argv[1]))
r = rules[0]  # rules by name are listed by name
assert r["num"] == 1 and r["action"] == "reject", r
assert r["src"] == sys.argv[2] and r["dst"] == sys.argv[3], r
assert r["hits"] >= 2, "hits %r" % r["hits"]
assert rules[-1]["num"] is None and rules[-1]["action"] == "accept", rules[-1]
EOF
		fail "fw list: $(cat "$dir/fw.json")"
	local rejected
	rejected=$(dom_field client rejected)
	[ "$rejected" -ge 2 ] || fail "client's rejected counter is $rejected"
	grep -q "firewall rejected" "$dir/v4vd.log" || fail "v4vd did not log the rejection"

	# Without the rule the same connection goes through.
	v4vctl fw delete 1
	echo "let in" | timeout 20 v4v-run -q --join client -- v4vcat web 7004 2>"$dir/err" ||
		fail "after fw delete: $(cat "$dir/err")"
	wait_for "the listener's output" grep -q "let in" "$dir/out"
}

# Every -j listing is a JSON array of objects with the documented keys.
t_json() {
	start_v4vd
	spawn v4v-run -q --name web -- v4vcat -l -k -n http 7005 </dev/null >/dev/null 2>&1
	wait_for "service http" has_name http
	v4vctl domain create idle >/dev/null
	v4vctl fw add --src idle --dst web:7005 drop >/dev/null
	local what keys
	for what in domains rings names stats "fw list"; do
		case $what in
		domains) keys="domid name uid procs rings ring_bytes tx_msgs tx_bytes rx_msgs rx_bytes eagain rejected dropped" ;;
		rings) keys="domid name aport partner len rx tx waiters state msgs bytes eagain" ;;
		names) keys="domid domain service port visible_to" ;;
		stats) keys="domains procs rings mapped_bytes requests bad_requests fw_rules policy cpu_user_ms cpu_sys_ms max_rss_kb fds pid removal_work fds_lost shed" ;;
		"fw list") keys="num src dst action hits" ;;
		esac
		# shellcheck disable=SC2086 # (split on purpose: words)
		v4vctl -j $what >"$dir/out.json" || fail "v4vctl -j $what failed"
		# shellcheck disable=SC2086
		python3 - "$dir/out.json" $keys <<'EOF' || fail "v4vctl -j $what: $(cat "$dir/out.json")"
import json, sys
rows = json.load(open(sys.argv[1]))
want = set(sys.argv[2:])
assert isinstance(rows, list) and rows, "not a non-empty array"
for r in rows:
    assert isinstance(r, dict), "not an object: %r" % (r,)
    assert set(r) == want, "keys %s, expected %s" % (sorted(r), sorted(want))
    for k in ("domid", "port", "hits", "len", "pid", "procs"):
        if k in r:
            assert isinstance(r[k], int), "%s is not a number: %r" % (k, r)
EOF
	done
	v4vctl -j domains | python3 -c '
import json, sys
d = {x["name"]: x for x in json.load(sys.stdin)}
assert d["web"]["procs"] == 1 and d["web"]["rings"] >= 1, d
assert d["idle"]["procs"] == 0, d' || fail "domains content"
	v4vctl -j fw list | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r[0]["action"] == "drop" and r[0]["dst"].endswith(":7005") and r[0]["hits"] == 0, r' ||
		fail "fw list content"
	# Commands that list nothing say so in JSON too.
	[ "$(v4vctl -j fw flush)" = '{"ok": true}' ] || fail "fw flush -j"
	v4vctl domain destroy web >/dev/null
	wait_for "names to empty" no_name http
	[ "$(v4vctl -j names)" = "[]" ] || fail "empty names: $(v4vctl -j names)"
}

# Bad flags and arguments: non-zero exit, one clear line on stderr.
t_bad_args() {
	start_v4vd
	local rc=0
	expect_usage "unrecognized option '--bogus'" "$v4vd_bin" --bogus
	expect_usage "unexpected argument 'stray'" "$v4vd_bin" --foreground stray

	printf '# limits\ndomains 16\nrings_per_domain 0\n' >"$dir/bad.conf"
	expect_error "config $dir/bad.conf: line 3: rings_per_domain must be a number in 1..65536, not '0'" \
		"$v4vd_bin" --foreground --runtime-dir "$dir/other" --config "$dir/bad.conf"
	printf 'policy reject\nrule --src 1 --dst any:80 accept\nrule --src 1 maybe\n' >"$dir/bad.conf"
	expect_error "line 3: unexpected 'maybe' in rule" \
		"$v4vd_bin" --foreground --runtime-dir "$dir/other" --config "$dir/bad.conf"
	expect_error "cannot open config $dir/none.conf" \
		"$v4vd_bin" --foreground --runtime-dir "$dir/other" --config "$dir/none.conf"
	expect_error "another v4vd is running in this directory" \
		"$v4vd_bin" --foreground --runtime-dir "$dir"

	expect_error "bad domain 'no/such'" v4vctl fw add --src no/such accept
	expect_error "rule needs an action" v4vctl fw add --src any
	expect_error "no rule '7' (there are 0)" v4vctl fw delete 7
	expect_error "no domain 'ghost'" v4vctl domain destroy ghost
	expect_error "v4vd is not running" env V4V_RUNTIME_DIR="$dir/other" v4vctl domains

	expect_error "bad --domid '99999' (0..32751)" v4v-run --domid 99999 -- true
	expect_error "bad --name '9lives'" v4v-run --name 9lives -- true
	expect_usage "no command given" v4v-run --name x
	v4v-run -q --name taken -- sleep 30 &
	bg_pids+=($!)
	wait_for "domain taken" dom_field taken domid
	expect_error "domain taken already exists" v4v-run --name taken -- true
	rc=0
	v4v-run -q -- "$dir/no-such-program" 2>"$dir/err" || rc=$?
	[ "$rc" -eq 127 ] || fail "v4v-run of a missing program exited $rc, not 127"
	grep -q "cannot run" "$dir/err" || fail "v4v-run of a missing program said: $(cat "$dir/err")"

	expect_error "bad port '4294967295' (0..4294967294)" v4v-run -q -- v4vcat taken 4294967295
	expect_error "bad port 'http' (0..4294967294)" v4v-run -q -- v4vcat -l http
	expect_error "bad count '0'" v4vcat -l -u -c 0 80
	expect_error "-k, -c and -n go with -l" v4vcat -k taken 80
	expect_error "not inside a v4v domain" v4vcat taken 80
	expect_error "no domain 'ghost'" v4v-run -q -- v4vcat ghost 80
	expect_error "connection refused by taken:81" v4v-run -q -- v4vcat taken 81
	expect_usage "invalid option -- 'Z'" v4vcat -Z
	expect_usage "unknown command 'frobnicate'" v4vctl frobnicate
	expect_usage "unrecognized option '--bogus'" v4v-run --bogus -- true
}

# Killing a domain mid-transfer resets its peer's connection, promptly.
t_peer_death() {
	start_v4vd
	spawn v4v-run -q --name sink -- v4vcat -l 7006 </dev/null >/dev/null 2>"$dir/sink.err"
	local sink=$bg
	wait_for "the sink's ring" has_ring sink 7006
	# shellcheck disable=SC2016 # ($1 is the inner shell's)
	spawn sh -c 'cat /dev/zero | timeout 30 v4v-run -q --name src -- v4vcat sink 7006 2>"$1"' \
		sh "$dir/src.err"
	local src=$bg
	wait_for "1 MiB to flow" dom_field_gt sink rx_bytes $((1 << 20))
	kill -9 "$sink"
	wait "$sink" 2>/dev/null || true # (bash would report the kill on stderr)
	local t0=$SECONDS
	reap "$src" 10
	[ "$status" -ne 0 ] || fail "the sender exited 0 after its peer was killed"
	grep -q "connection reset by peer" "$dir/src.err" ||
		fail "the sender said '$(cat "$dir/src.err")', not 'connection reset by peer'"
	[ $((SECONDS - t0)) -le 5 ] || fail "the sender took $((SECONDS - t0))s to notice"
	# Nothing of either domain is left behind.
	wait_for "both domains to go" sh -c '! v4vctl domains | grep -qE " (sink|src) "'
	[ "$(v4vctl -j rings)" = "[]" ] || fail "rings left: $(v4vctl rings)"
}

# A message a socket queued on its send ring and the firewall then rejects
# is logged too, not only a send that waited for the verdict.
t_fw_reject_queued() {
	start_v4vd
	spawn v4v-run -q --name web -- v4vcat -l 7005 </dev/null >"$dir/out" 2>"$dir/web.err"
	wait_for "the listener's ring" has_ring web 7005
	mkfifo "$dir/in"
	spawn sh -c "exec v4v-run -q --name client -- v4vcat web 7005 <'$dir/in' 2>'$dir/client.err'"
	exec 3>"$dir/in"
	echo first >&3
	wait_for "the first line through" grep -q first "$dir/out"
	grep -q "firewall rejected" "$dir/v4vd.log" && fail "a rejection logged before any rule"
	v4vctl fw add --src client --dst web reject || fail "fw add failed"
	echo second >&3
	wait_for "the queued message's rejection in v4vd's log" grep -q "firewall rejected" "$dir/v4vd.log"
	exec 3>&-
	grep -q second "$dir/out" && fail "the rejected line arrived"
	true
}

case $case_name in
stream_64mib | dgram_boundaries | names | fw_reject | fw_reject_queued | json | bad_args | peer_death)
	"t_$case_name"
	echo "ok: $case_name"
	;;
*)
	echo "unknown case '$case_name'" >&2
	exit 1
	;;
esac
