#!/bin/sh
# SPDX-License-Identifier: MIT
# CI's smoke run of v4v-bench: `--quick --json` must finish, exit 0, and
# print an array of complete results covering every contender.  Numbers
# are not judged (a loaded CI box makes them noise), except that an idle
# v4v must not be burning CPU; the noisy-neighbour results must all be there
# with their fields.
set -eu

bin=${V4V_BIN:-.}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# Its own v4vd: never one that happens to run in the caller's runtime dir.
unset V4V_RUNTIME_DIR
"$bin/v4v-bench" --quick --json >"$out"

python3 - "$out" <<'EOF'
import json, math, sys

want = {"v4v-dgram", "v4v-stream", "v4v-ring", "unix-stream", "unix-seqpacket",
        "pipe", "tcp", "shm"}
keys = {"transport", "workload", "size", "value", "unit", "ratio", "cpu"}

with open(sys.argv[1]) as f:
    res = json.load(f)
assert isinstance(res, list) and res, "not a non-empty array"
for r in res:
    assert isinstance(r, dict), "not an object: %r" % (r,)
    missing = keys - r.keys()
    assert not missing, "missing %s in %r" % (sorted(missing), r)
    assert "error" not in r, "measurement failed: %r" % (r,)
    v = r["value"]
    assert isinstance(v, (int, float)) and math.isfinite(v) and v >= 0, r
    if r["workload"] == "neighbour":
        continue  # figures of a starved bystander may be ~0: checked below
    if r["workload"] != "idle":
        assert v > 0, "zero result: %r" % (r,)
        assert isinstance(r["ratio"], (int, float)) and r["ratio"] > 0, r

seen = {r["transport"] for r in res}
assert want <= seen, "transports missing: %s" % sorted(want - seen)
works = {r["workload"] for r in res}
for w in ("throughput", "latency-p50", "latency-p99", "connect", "pairs", "idle", "neighbour"):
    assert w in works, "workload missing: " + w
for t in ("v4v-stream", "unix-stream", "unix-seqpacket", "tcp"):
    assert any(r["transport"] == t and r["workload"] == "connect" for r in res), \
        "no connect result for " + t
for r in res:
    if r["transport"] in ("unix-stream", "unix-seqpacket"):
        assert abs(r["ratio"] - 1) < 1e-9, "a baseline's ratio is not 1: %r" % (r,)

# The noisy neighbour: every misbehaviour measured, with its fields; the
# figures themselves are not judged here (docs/PERFORMANCE.md reads them).
nb = {r["misbehaviour"]: r for r in res if r["workload"] == "neighbour"}
for m in ("alone", "spin", "flood", "hcall", "churn", "waiters", "ctl"):
    assert m in nb, "neighbour misbehaviour missing: " + m
for m, r in nb.items():
    for k in ("tput_ratio", "p50_us", "p50_ratio", "alone_msg_per_s", "alone_p50_us",
              "hostile_ops_per_s", "target_met"):
        assert k in r, "neighbour %s: no %s in %r" % (m, k, r)
    assert r["transport"] == "v4v-dgram" and r["size"] == 1024, r
    assert isinstance(r["p50_us"], (int, float)) and r["p50_us"] > 0, r
    assert isinstance(r["p50_ratio"], (int, float)) and r["p50_ratio"] > 0, r
    assert isinstance(r["target_met"], bool), r
    if m != "alone":
        assert r["hostile_ops_per_s"] > 0, "misbehaviour %s did nothing: %r" % (m, r)
assert nb["alone"]["tput_ratio"] == 1 and nb["alone"]["p50_ratio"] == 1, nb["alone"]

idle = [r for r in res if r["workload"] == "idle"]
assert len(idle) == 1 and idle[0]["wakeups"] == 0, "idle v4v woke up: %r" % (idle,)
assert idle[0]["value"] < 5, "idle v4v uses %.2f%% CPU" % idle[0]["value"]
print("ok: %d results, transports %s" % (len(res), ", ".join(sorted(seen))))
EOF
