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
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

case_name=${1:-}
bin=${V4V_BIN:-}
if [ -z "$case_name" ]; then
	echo "usage: V4V_BIN=BUILDDIR tools.sh CASE" >&2
	exit 1
fi
[ -n "$bin" ] || skip "V4V_BIN (the build directory) is not set"
v4vd_bin=${V4VD:-$bin/v4vd}
need_built "$v4vd_bin" "$bin/v4v-run" "$bin/v4vctl" "$bin/v4vcat"
need python3 timeout cmp head
PATH="$bin:$PATH"
unset V4V_DOMAIN_FD

scratch dir tools
export V4V_RUNTIME_DIR="$dir"
# As root each domain runs as its own uid.  A developer who is not root
# gets v4v-run's development opt-out, --as-caller, through a wrapper.
if [ "$(id -u)" -ne 0 ]; then
	mkdir "$dir/bin"
	printf '#!/bin/sh\nexec "%s/v4v-run" --as-caller "$@"\n' "$bin" >"$dir/bin/v4v-run"
	chmod +x "$dir/bin/v4v-run"
	PATH="$dir/bin:$PATH"
fi

# True when service $1 is registered (by any domain).
has_name() {
	v4vctl names | awk -v s="$1" 'NR > 1 && $3 == s { f = 1 } END { exit !f }'
}

no_name() { ! has_name "$1"; }

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

# Expect a usage error: exit 2 and one line on stderr containing $1 and
# pointing at --help.
expect_usage() {
	local want=$1 rc=0
	shift
	timeout 10 "$@" </dev/null >/dev/null 2>"$dir/err" || rc=$?
	[ "$rc" -eq 2 ] || fail "'$*' exited $rc, expected 2 (said: $(cat "$dir/err"))"
	[ "$(wc -l <"$dir/err")" -eq 1 ] || fail "'$*' printed more than one line: $(cat "$dir/err")"
	grep -qF -- "$want" "$dir/err" || fail "'$*' said '$(cat "$dir/err")', not '$want'"
	grep -qF -- "--help)" "$dir/err" || fail "'$*' did not point at --help: $(cat "$dir/err")"
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

# dgram_lines N PORT IN OUT WHAT: the N lines of IN sent with -u by domain
# tx, one datagram each, reach domain rx's receiver on PORT, which writes
# them to OUT and exits by itself only after exactly N datagrams (--count):
# had two lines been merged it would still wait, had one been split OUT
# would differ.  WHAT names the lines when they do not arrive as sent.
dgram_lines() {
	local n=$1 port=$2 in=$3 out=$4 what=$5 rx
	spawn v4v-run -q --join rx -- v4vcat -u -l --count "$n" "$port" >"$out" 2>"$dir/rx.err"
	rx=$bg
	wait_for "the receiver's ring" has_ring rx "$port"
	timeout 20 v4v-run -q --join tx -- v4vcat -u rx "$port" <"$in" 2>"$dir/tx.err" ||
		fail "sender failed: $(cat "$dir/tx.err")"
	reap "$rx" 20
	[ "$status" -eq 0 ] || fail "receiver exited $status: $(cat "$dir/rx.err")"
	cmp "$in" "$out" || fail "$what did not arrive as sent"
}

# With -u every line is one datagram, and boundaries survive.
t_dgram_boundaries() {
	start_v4vd
	# Persistent domains outlive the processes, so their counters can be read after.
	v4vctl domain create rx >/dev/null
	v4vctl domain create tx >/dev/null

	seq 1 100 >"$dir/in1"
	dgram_lines 100 7001 "$dir/in1" "$dir/out1" "100 numbered lines"

	# Awkward lines: empty, long, binary-ish, and a last one without newline.
	{
		printf 'first\n\n'
		head -c 60000 /dev/zero | tr '\0' 'x'
		printf '\n\ttabs and spaces  \n'
		printf 'no newline at the end'
	} >"$dir/in2"
	local n
	n=$(($(wc -l <"$dir/in2") + 1))
	dgram_lines "$n" 7002 "$dir/in2" "$dir/out2" "awkward lines"

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
	spawn v4v-run -q --name web -- v4vcat -l --register http 7003 </dev/null >"$dir/out" 2>"$dir/web.err"
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
	python3 - "$dir/fw.json" <<'EOF' ||
import json, sys
rules = json.load(open(sys.argv[1]))
r = rules[0]  # a rule by name is kept, and listed, by name: no domid
assert r["num"] == 1 and r["action"] == "reject", r
assert r["src"] == {"domid": None, "name": "client", "port": None}, r
assert r["dst"] == {"domid": None, "name": "web", "port": None}, r
assert r["hits"] >= 2, "hits %r" % r["hits"]
assert rules[-1]["num"] is None and rules[-1]["action"] == "accept", rules[-1]
assert rules[-1]["src"] == {"domid": None, "name": None, "port": None}, rules[-1]
EOF
		fail "fw list: $(cat "$dir/fw.json")"
	local rejected
	rejected=$(dom_field client rejected)
	[ "$rejected" -ge 2 ] || fail "client's rejected counter is $rejected"
	grep -q "firewall rejected" "$dir/v4vd.log" || fail "v4vd did not log the rejection"
	# The log and the table name the domains beside their ids.
	grep -qE "firewall rejected [0-9]+\(client\):[0-9]+ -> [0-9]+\(web\):7004" "$dir/v4vd.log" ||
		fail "the log line does not name the domains: $(grep 'firewall rejected' "$dir/v4vd.log")"
	v4vctl fw list | grep -qE "^ *1  client +web +reject" ||
		fail "fw list does not show the rule by name: $(v4vctl fw list)"
	# A rule by id shows the name that id has now beside it.
	v4vctl fw add --src "$(dom_field client domid)" --dst web:7999 drop >/dev/null
	v4vctl fw list | grep -qE "^ *2  [0-9]+\(client\) +web:7999 +drop" ||
		fail "fw list does not name the domain of a rule by id: $(v4vctl fw list)"
	v4vctl fw delete 2

	# Without the rule the same connection goes through.
	v4vctl fw delete 1
	echo "let in" | timeout 20 v4v-run -q --join client -- v4vcat web 7004 2>"$dir/err" ||
		fail "after fw delete: $(cat "$dir/err")"
	wait_for "the listener's output" grep -q "let in" "$dir/out"
}

# Every -j listing is a JSON array of objects with the documented keys.
t_json() {
	start_v4vd
	spawn v4v-run -q --name web -- v4vcat -l -k --register http 7005 </dev/null >/dev/null 2>&1
	wait_for "service http" has_name http
	v4vctl domain create idle >/dev/null
	v4vctl fw add --src idle --dst web:7005 drop >/dev/null
	local what
	for what in domains rings names stats "fw list"; do
		# shellcheck disable=SC2086 # (split on purpose: words)
		v4vctl -j $what >"$dir/out.json" || fail "v4vctl -j $what failed"
		# shellcheck disable=SC2086
		v4vctl -p $what >"$dir/pretty.json" || fail "v4vctl -p $what failed"
		python3 - "$dir/out.json" "$dir/pretty.json" "$what" <<'EOF' || fail "v4vctl -j $what: $(cat "$dir/out.json")"
import json, sys
# Each listing's keys and the JSON types of their values: scripts may rely
# on these (int, str, None for an absent value, an address object, a list).
I, S, N = int, str, type(None)
ADDR = "address"
schema = {
    "domains": dict(domid=I, name=(S, N), uid=I, procs=I, rings=I, ring_bytes=I, tx_msgs=I,
                    tx_bytes=I, rx_msgs=I, rx_bytes=I, eagain=I, rejected=I, dropped=I,
                    req_us=I),
    "rings": dict(domid=I, name=(S, N), aport=I, partner=(I, N), len=I, rx=I, tx=I, waiters=I,
                  state=S, msgs=I, bytes=I, eagain=I, partner_name=(S, N)),
    "names": dict(domid=I, domain=(S, N), service=S, port=I, visible_to=(list, N)),
    "stats": dict(domains=I, procs=I, rings=I, mapped_bytes=I, requests=I, bad_requests=I,
                  fw_rules=I, policy=S, cpu_user_ms=I, cpu_sys_ms=I, max_rss_kb=I, fds=I, pid=I,
                  removal_work=I, fds_lost=I, shed=I, poll_rounds=I, poll_work=I,
                  calls_shm=I, kicks_shm=I),
    "fw list": dict(num=(I, N), src=ADDR, dst=ADDR, action=S, hits=I),
}[sys.argv[3]]
rows = json.load(open(sys.argv[1]))
pretty = open(sys.argv[2]).read()
p = json.loads(pretty)
if sys.argv[3] == "stats":  # live counters move between the two calls
    p, rows_ = [list(x) for x in p], [list(x) for x in rows]
    assert p == rows_, "-p and -j have different keys"
else:
    assert p == rows, "-p and -j differ"
assert "\n    \"" in pretty, "-p is not indented"
assert isinstance(rows, list) and rows, "not a non-empty array"
def check(k, v, want):
    if want == ADDR:
        assert isinstance(v, dict) and list(v) == ["domid", "name", "port"], (k, v)
        assert isinstance(v["domid"], (I, N)) and not isinstance(v["domid"], bool), (k, v)
        assert isinstance(v["name"], (S, N)) and isinstance(v["port"], (I, N)), (k, v)
        return
    assert isinstance(v, want) and not isinstance(v, bool), "%s: %r is not %s" % (k, v, want)
    if isinstance(v, list):
        assert all(isinstance(x, int) for x in v), (k, v)
for r in rows:
    assert isinstance(r, dict), "not an object: %r" % (r,)
    assert list(r) == list(schema), "keys %s, expected %s" % (list(r), list(schema))
    for k, v in r.items():
        check(k, v, schema[k])
EOF
	done
	# Absent values are null, not "-": an unnamed domain's name, an open
	# name's visible_to (the policy row's num is checked in fw_reject).
	v4vctl domain create >/dev/null
	v4vctl -j domains | python3 -c '
import json, sys
assert any(d["name"] is None for d in json.load(sys.stdin))' || fail "an unnamed domain's name is not null"
	v4vctl -j names | python3 -c '
import json, sys
assert json.load(sys.stdin)[0]["visible_to"] is None' || fail "visible_to of an open name is not null"
	# -o picks columns, in its order, for tables and JSON alike.
	[ "$(v4vctl -o name,domid domains | head -n 1)" = "name  domid" ] ||
		fail "-o name,domid: '$(v4vctl -o name,domid domains | head -n 1)'"
	v4vctl -j -o service,port names | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert list(r[0]) == ["service", "port"] and r[0]["port"] == 7005, r' ||
		fail "-j -o: $(v4vctl -j -o service,port names)"
	v4vctl -j domains | python3 -c '
import json, sys
d = {x["name"]: x for x in json.load(sys.stdin)}
assert d["web"]["procs"] == 1 and d["web"]["rings"] >= 1, d
assert d["idle"]["procs"] == 0, d' || fail "domains content"
	v4vctl -j fw list | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r[0]["action"] == "drop" and r[0]["dst"]["port"] == 7005 and r[0]["hits"] == 0, r
assert r[0]["src"] == {"domid": None, "name": "idle", "port": None}, r' ||
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

	expect_usage "--domid: bad domid '99999' (0..32751)" v4v-run --domid 99999 -- true
	expect_usage "--domid: bad domid '99999' (0..32751)" v4vctl domain create --domid 99999 x
	expect_error "bad domid '99999' (0..32751)" v4vctl fw add --src 99999 accept
	expect_error "bad domid '99999' (0..32751)" v4vctl domain destroy 99999
	expect_error "bad domid '99999' (0..32751)" v4v-run --join 99999 -- true
	expect_usage "DOMAIN: bad domid '99999' (0..32751)" v4vcat 99999 80
	expect_usage "bad --name '9lives'" v4v-run --name 9lives -- true
	expect_usage "no command given" v4v-run --name x
	spawn v4v-run -q --name taken -- sleep 30
	wait_for "domain taken" dom_field taken domid
	expect_error "domain taken already exists" v4v-run --name taken -- true
	rc=0
	v4v-run -q -- "$dir/no-such-program" 2>"$dir/err" || rc=$?
	[ "$rc" -eq 127 ] || fail "v4v-run of a missing program exited $rc, not 127"
	grep -q "cannot run" "$dir/err" || fail "v4v-run of a missing program said: $(cat "$dir/err")"

	expect_error "bad port '4294967295' (0..4294967294)" v4v-run -q -- v4vcat taken 4294967295
	expect_usage "bad port 'http' (0..4294967294)" v4vcat -l http
	expect_usage "--count: bad count '0'" v4vcat -l -u --count 0 80
	expect_usage "-k, --count and --register go with -l" v4vcat -k taken 80
	expect_error "not inside a v4v domain" v4vcat taken 80
	expect_error "no domain 'ghost'" v4v-run -q -- v4vcat ghost 80
	expect_error "connection refused by taken:81" v4v-run -q -- v4vcat taken 81
	expect_usage "invalid option -- 'Z'" v4vcat -Z
	expect_usage "unknown command 'frobnicate'" v4vctl frobnicate
	expect_usage "fw: unknown subcommand 'bogus'" v4vctl fw bogus
	expect_usage "fw: missing subcommand" v4vctl fw
	expect_usage "fw list: unexpected argument 'x'" v4vctl fw list x
	expect_usage "-o: no column 'bogus'" v4vctl -o bogus domains
	expect_usage "unrecognized option '--bogus'" v4v-run --bogus -- true
	expect_usage "option '--join' needs an argument" v4v-run --join
	expect_usage "unrecognized option '--bogus'" "$bin/v4v-bench" --bogus
	expect_usage "-e: running a command is not supported" v4vcat -e /bin/sh taken 80
	expect_usage "-w: bad timeout 'soon'" v4vcat -w soon taken 80
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
	expect_reset "$src" "its peer"
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

# Every program: --help on stdout with status 0, --version the project's
# version, a bad option exit 2 with one line.
t_help_version() {
	local version p
	version=$(sed -n "s/^ *version : '\([^']*\)'.*/\1/p" "${V4V_SRC:?}/meson.build" | head -n 1)
	[ -n "$version" ] || fail "no project version in meson.build"
	for p in "$v4vd_bin" "$bin/v4v-run" "$bin/v4vctl" "$bin/v4vcat" "$bin/v4v-bench"; do
		"$p" --help >"$dir/out" 2>"$dir/err" || fail "$p --help exited $?"
		grep -q "^usage: $(basename "$p")" "$dir/out" || fail "$p --help: $(head -n 2 "$dir/out")"
		[ ! -s "$dir/err" ] || fail "$p --help wrote to stderr: $(cat "$dir/err")"
		[ "$("$p" --version)" = "$(basename "$p") $version" ] ||
			fail "$p --version said '$("$p" --version)', not '$(basename "$p") $version'"
		"$p" -V >/dev/null || fail "$p -V failed"
		expect_usage "unrecognized option '--no-such-flag'" "$p" --no-such-flag
	done
}

# v4vcat's nc-style flags: -v says who talks to whom, -n refuses names,
# --send-only / --recv-only, and -w ends an idle transfer (a guard against
# hanging, not a timing measurement).
# partnered NAME PARTNER: a ring of domain NAME is partnered with PARTNER.
partnered() {
	v4vctl -j rings | python3 -c '
import json, sys
sys.exit(not any(r["name"] == sys.argv[1] and r["partner_name"] == sys.argv[2]
                 for r in json.load(sys.stdin)))' "$1" "$2"
}

t_v4vcat_flags() {
	start_v4vd
	spawn v4v-run -q --name web -- v4vcat -v -l --recv-only 7010 >"$dir/out" 2>"$dir/web.err"
	local web=$bg
	wait_for "the listener's ring" has_ring web 7010
	grep -q "^v4vcat: listening on [0-9]*:7010$" "$dir/web.err" || fail "-l -v: $(cat "$dir/web.err")"
	local id
	id=$(dom_field web domid)
	echo "numbers only" | timeout 20 v4v-run -q --name client -- v4vcat -v -n --send-only "$id" 7010 \
		2>"$dir/client.err" || fail "-n --send-only: $(cat "$dir/client.err")"
	grep -q "^v4vcat: connected to $id:7010$" "$dir/client.err" || fail "-v: $(cat "$dir/client.err")"
	reap "$web" 20
	[ "$status" -eq 0 ] || fail "--recv-only listener exited $status: $(cat "$dir/web.err")"
	grep -q "^v4vcat: connection from [0-9]*:[0-9]*$" "$dir/web.err" || fail "-v: $(cat "$dir/web.err")"
	[ "$(cat "$dir/out")" = "numbers only" ] || fail "listener got '$(cat "$dir/out")'"
	expect_usage "DOMAIN: bad domid 'web'" v4vcat -n web 7010
	expect_usage "-n: PORT 'http' is not a number" v4vcat -n 1 http

	# -w 1: a connection on which nothing moves ends, with an error.
	spawn v4v-run -q --name silent -- v4vcat -l 7011 </dev/null >/dev/null 2>&1
	wait_for "the silent listener's ring" has_ring silent 7011
	mkfifo "$dir/idle"
	exec 3<>"$dir/idle" # held open: the client's stdin never ends
	local rc=0 t0=$SECONDS
	timeout 30 v4v-run -q -- v4vcat -w 1 silent 7011 <"$dir/idle" 2>"$dir/err" || rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "-w 1 on an idle connection: exit $rc"
	grep -q "idle for 1 s: timed out" "$dir/err" || fail "-w 1 said '$(cat "$dir/err")'"
	[ $((SECONDS - t0)) -lt 20 ] || fail "-w 1 took $((SECONDS - t0)) s"

	# -w 1: a connect the (busy) listener does not accept in time.
	spawn v4v-run -q --name busy -- v4vcat -l 7013 </dev/null >/dev/null 2>&1
	wait_for "the busy listener's ring" has_ring busy 7013
	spawn sh -c "exec v4v-run -q --name holder -- v4vcat busy 7013 <'$dir/idle' >/dev/null 2>&1"
	wait_for "the first connection's ring" dom_field_gt busy rings 1
	# (the connection's ring names its partner, id and name)
	v4vctl -j rings | python3 -c '
import json, sys
rows = [r for r in json.load(sys.stdin) if r["name"] == "busy" and r["partner"] is not None]
assert rows and all(r["partner_name"] == "holder" for r in rows), rows' ||
		fail "rings: $(v4vctl rings)"
	# The accept left the listener one spare ring (docs/ARCHITECTURE.md,
	# "Spares"): the next connect takes it and is connected without an
	# accept, as a Unix connect into a listener's backlog; the one after
	# waits for accept.
	spawn sh -c "exec v4v-run -q --name holder2 -- v4vcat busy 7013 <'$dir/idle' >/dev/null 2>&1"
	wait_for "the spare taken" partnered busy holder2
	rc=0
	t0=$SECONDS
	timeout 30 v4v-run -q -- v4vcat -w 1 busy 7013 </dev/null 2>"$dir/err" || rc=$?
	exec 3>&-
	[ "$rc" -eq 1 ] || fail "-w 1 on a connect not accepted: exit $rc ($(cat "$dir/err"))"
	grep -q "connect to busy:7013: timed out after 1 s" "$dir/err" || fail "-w 1 said '$(cat "$dir/err")'"
	[ $((SECONDS - t0)) -lt 20 ] || fail "-w 1 connect took $((SECONDS - t0)) s"

	# -w with -l -u: the first datagram is waited for, then idle ends it.
	spawn v4v-run -q --name rx -- v4vcat -l -u -w 1 7012 >"$dir/dg" 2>"$dir/rx.err"
	local rx=$bg
	wait_for "the datagram ring" has_ring rx 7012
	echo one | timeout 20 v4v-run -q -- v4vcat -u rx 7012 || fail "datagram sender failed"
	reap "$rx" 20
	[ "$status" -eq 1 ] || fail "-l -u -w 1 exited $status: $(cat "$dir/rx.err")"
	[ "$(cat "$dir/dg")" = one ] || fail "-l -u -w 1 got '$(cat "$dir/dg")'"
	grep -q "timed out" "$dir/rx.err" || fail "-l -u -w 1 said '$(cat "$dir/rx.err")'"
}

# The bash completion file loads, registers all five programs, and
# completes subcommands, flags and (from a running v4vd) domain names.
t_completion() {
	start_v4vd
	v4vctl domain create webby >/dev/null
	local f=${V4V_SRC:?}/contrib/bash-completion/v4v
	# shellcheck disable=SC2016 # (the inner bash expands them)
	bash -c '
source "$1"
for p in v4vd v4v-run v4vctl v4vcat v4v-bench; do complete -p "$p" >/dev/null || exit 1; done
c() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=();
      fn=$(complete -p "$1" | sed "s/.*-F \([^ ]*\) .*/\1/"); "$fn"; echo "${COMPREPLY[*]}"; }
[[ " $(c v4vctl fw "") " == *" add "* ]] || { echo "fw: $(c v4vctl fw "")"; exit 1; }
[[ " $(c v4vctl fw policy "") " == " accept reject drop " ]] || { echo "policy: $(c v4vctl fw policy "")"; exit 1; }
[[ " $(c v4vctl domain destroy "") " == *" webby "* ]] || { echo "destroy: $(c v4vctl domain destroy "")"; exit 1; }
[[ " $(c v4vcat --re) " == " --recv-only --register " ]] || { echo "v4vcat: $(c v4vcat --re)"; exit 1; }
[[ " $(c v4v-run --join w) " == " webby " ]] || { echo "join: $(c v4v-run --join w)"; exit 1; }
[[ " $(c v4vd --ver) " == " --version " ]] || exit 1
[[ " $(c v4v-bench --workload "") " == *" latency "* ]] || { echo "bench: $(c v4v-bench --workload "")"; exit 1; }
' bash "$f" >"$dir/out" 2>&1 || fail "completion: $(cat "$dir/out")"
}

case $case_name in
stream_64mib | dgram_boundaries | names | fw_reject | fw_reject_queued | json | bad_args | peer_death | \
	help_version | v4vcat_flags | completion)
	"t_$case_name"
	echo "ok: $case_name"
	;;
*)
	echo "unknown case '$case_name'" >&2
	exit 1
	;;
esac
