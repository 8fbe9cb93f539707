# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# shellcheck disable=SC2034 # (bg and status are for the caller)
# shellcheck disable=SC2154 # (case_name, dir and v4vd_bin are the caller's)
#
# The helpers of the shell tests (tools.sh, compat/vsock.sh, compat/build.sh,
# vm/vm.sh), one copy each: a scratch directory removed at exit with the
# processes started in the background killed; v4vd in its own runtime
# directory; bounded polls, never sleeps that hope; fail with the tails of
# the case's logs; skips (exit 77).  Bash, sourced first by each script, by
# its own path (meson runs them by their full path in the source tree):
#   . "$(dirname "$0")/lib.sh"        (tests/compat, tests/vm: ../lib.sh)
# Not a test itself: tests/meson.build names each script it runs.
#
# The caller sets case_name (named by fail), v4vd_bin (the v4vd to start),
# V4V_RUNTIME_DIR (v4vd's runtime directory, exported: v4vctl's too), and
# may set:
#   fail_logs  globs in $dir whose files fail tails (v4vd.log)
#   poll       seconds between two polls (0.02)
#   on_cleanup a function run first at exit (vm.sh: QEMU's and v4v-vm's pids)
# WAIT_SECS bounds one wait_for (20 s).

daemon=
bg_pids=()
scratch_dirs=()
fail_logs=(v4vd.log)
poll=0.02
on_cleanup() { :; }

# skip WHY: meson's skip (exit 77), saying why.
skip() {
	echo "SKIP: $*" >&2
	exit 77
}

# need [--apt] COMMAND...: skip unless each is in PATH (--apt: saying how
# to install it).
need() {
	local t apt=
	[ "$1" != --apt ] || { apt=1; shift; }
	for t in "$@"; do
		command -v "$t" >/dev/null || skip "needs $t${apt:+ (apt-get install -y $t)}"
	done
}

# need_built FILE...: skip unless each is built.
need_built() {
	local t
	for t in "$@"; do
		[ -x "$t" ] || skip "$t is not built"
	done
}

# scratch VAR TAG: VAR names a new directory /tmp/v4v-TAG-XXXXXX, removed
# at exit (cleanup, the EXIT trap from the first call on).
scratch() {
	local d
	d=$(mktemp -d "/tmp/v4v-$2-XXXXXX")
	scratch_dirs+=("$d")
	printf -v "$1" %s "$d"
	trap cleanup EXIT
}

# The EXIT trap: the background processes killed (and reaped, so that none
# still writes in the scratch directories), v4vd stopped, those removed.
cleanup() {
	local p
	on_cleanup
	for p in "${bg_pids[@]}"; do
		if kill -9 "$p" 2>/dev/null; then
			wait "$p" 2>/dev/null || true
		fi
	done
	if [ -n "$daemon" ]; then
		kill "$daemon" 2>/dev/null || true
		wait "$daemon" 2>/dev/null || true
	fi
	rm -rf "${scratch_dirs[@]}"
}

# fail MESSAGE: the case fails (exit 1), with the last lines of each
# non-empty log in $dir that $fail_logs matches.
fail() {
	local g f
	echo "FAIL ($case_name): $*" >&2
	for g in "${fail_logs[@]}"; do
		# shellcheck disable=SC2231 # ($g is a glob)
		for f in "$dir"/$g; do
			[ -s "$f" ] || continue
			echo "--- $(basename "$f"):" >&2
			tail -n 20 "$f" >&2
		done
	done
	exit 1
}

# wait_for DESCRIPTION COMMAND...: poll until COMMAND succeeds, for at most
# $WAIT_SECS (20) s; fail otherwise.
wait_for() {
	local desc=$1 end=$((SECONDS + ${WAIT_SECS:-20}))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$end" ] || fail "timed out waiting for $desc"
		sleep "$poll"
	done
}

# v4vd in $V4V_RUNTIME_DIR, its log in $dir/v4vd.log, its pid in $daemon:
# started and answering.
start_v4vd() {
	"$v4vd_bin" --foreground --runtime-dir "$V4V_RUNTIME_DIR" 2>"$dir/v4vd.log" &
	daemon=$!
	wait_for "v4vd to answer on its control socket" v4vctl stats
}

# spawn COMMAND...: COMMAND in the background (stdin /dev/null, as bash
# gives any `cmd &`; other redirections go on the call), its pid in $bg,
# killed at exit.
spawn() {
	"$@" &
	bg=$!
	bg_pids+=("$bg")
}

# reap PID [SECS]: wait, at most SECS (30) s, for background PID to exit;
# its exit status in $status.
reap() {
	local pid=$1 secs=${2:-30}
	local end=$((SECONDS + secs))
	while kill -0 "$pid" 2>/dev/null; do
		[ "$SECONDS" -lt "$end" ] || fail "process $pid still running after ${secs}s"
		sleep "$poll"
	done
	status=0
	wait "$pid" 2>/dev/null || status=$?
}

# expect_reset PID WHAT: WHAT killed just now, the sender PID (its stderr in
# $dir/src.err) fails within 5 s on "connection reset by peer".
expect_reset() {
	local t0=$SECONDS
	reap "$1" 10
	[ "$status" -ne 0 ] || fail "the sender exited 0 after $2 was killed"
	grep -q "connection reset by peer" "$dir/src.err" ||
		fail "the sender said '$(cat "$dir/src.err")', not 'connection reset by peer'"
	[ $((SECONDS - t0)) -le 5 ] || fail "the sender took $((SECONDS - t0))s to notice"
}

# has_ring NAME PORT: true when domain NAME has a ring on PORT.
has_ring() {
	v4vctl rings | awk -v n="$1" -v p="$2" '$2 == n && $3 == p { f = 1 } END { exit !f }'
}

# dom_field NAME FIELD: FIELD of domain NAME from `v4vctl -j domains`
# (false when there is no such domain).
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

# dom_field_gt NAME FIELD N: true when that field is more than N.
dom_field_gt() {
	local v
	v=$(dom_field "$1" "$2") && [ "$v" -gt "$3" ]
}
