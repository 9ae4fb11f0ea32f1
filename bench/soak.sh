#!/usr/bin/env bash
# A bounded soak run: builds Berth in release mode, starts it with the
# embedded default, and runs `berth-bench soak` against it: several clients
# push, pull and delete small images while a garbage collection starts every
# few seconds (grace 5 s: a layer uploaded moments before its manifest is
# not garbage yet), and the server's resident memory and open file descriptors
# are sampled every second. It fails unless both stay flat (last quarter
# against the second) and every request succeeded. The JSON line with all
# samples is kept in target/bench-work/soak.jsonl.
#
# Usage: bench/soak.sh           (SOAK_SECONDS=300 SOAK_CLIENTS=4 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SOAK_SECONDS:-300}
CLIENTS=${SOAK_CLIENTS:-4}
WORK=${BENCH_DIR:-$PWD/target/bench-work}
PORT=5103

cargo build --release -p berth -p berth-bench
BIN=$PWD/target/release
rm -rf "$WORK/soak"
mkdir -p "$WORK/soak"
export BERTH_DATA_DIR=$WORK/soak BERTH_ADMIN_PASSWORD=soak-admin-password BERTH_LOG=warn \
  BERTH_GC_GRACE_SECS=5 BERTH_LISTEN=127.0.0.1:$PORT
"$BIN/berth" serve >"$WORK/soak.log" 2>&1 &
PID=$!
# The soak's data goes at exit; soak.jsonl and soak.log stay.
trap 'kill $PID 2>/dev/null || true; wait 2>/dev/null || true; [ -n "${BENCH_KEEP_DATA:-}" ] || rm -rf "$WORK/soak"' EXIT
for _ in $(seq 1 50); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break
  sleep 0.1
done
echo "== soak: $CLIENTS clients for $SECS s against Berth (pid $PID)"
"$BIN/berth-bench" soak --url "http://127.0.0.1:$PORT" --target berth \
  --creds admin:soak-admin-password --pid "$PID" --seconds "$SECS" --clients "$CLIENTS" \
  | tee "$WORK/soak.jsonl" \
  | python3 -c '
import json, sys
r = json.loads(sys.stdin.readline())
mib = lambda kb: kb / 1024
print("images pushed %d, pulls %d, deletes %d, collections %d, errors %d"
      % (r["images_pushed"], r["pulls"], r["deletes"], r["collections"], r["errors"]))
print("resident memory: %.1f MiB (second quarter) -> %.1f MiB (last quarter), max %.1f MiB"
      % (mib(r["rss_kb_second_quarter"]), mib(r["rss_kb_last_quarter"]), mib(r["rss_kb_max"])))
print("open files: %d -> %d, max %d" % (r["fds_second_quarter"], r["fds_last_quarter"], r["fds_max"]))
print("flat" if r["flat"] else "NOT flat")
'
