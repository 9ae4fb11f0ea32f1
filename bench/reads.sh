#!/usr/bin/env bash
# The read scenarios of bench/run.sh, Berth against nginx serving the same
# bytes as static files (the ceiling of HTTP on these cores), in
# alternating rounds, without the reference registry and the other
# scenarios: a quick check of one read figure (for example blob HEAD)
# between full runs. `berth-bench run` also pushes and pulls its 100 MiB
# blobs each round (it writes what nginx serves). Prints the medians.
#
# Usage: bench/reads.sh        (ROUNDS=3 BENCH_SECONDS=5; BENCH_NO_BUILD=1
# measures the release build already there)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
SECS=${BENCH_SECONDS:-5}
WORK=${BENCH_DIR:-$PWD/target/bench-reads}
BERTH_PORT=5111
NGINX_PORT=5113

source bench/lib.sh
[ -n "${BENCH_NO_BUILD:-}" ] || cargo build --release -p berth -p berth-bench
BIN=$PWD/target/release
rm -rf "$WORK"
mkdir -p "$WORK/static" "$WORK/nginx-tmp"
RESULTS=$WORK/results.jsonl
: >"$RESULTS"

export BERTH_DATA_DIR=$WORK/berth BERTH_ADMIN_PASSWORD=bench-admin-password BERTH_LOG=warn
"$BIN/berth" admin namespace create bench --group admin --public >/dev/null
BERTH_LISTEN=127.0.0.1:$BERTH_PORT "$BIN/berth" serve >"$WORK/berth.log" 2>&1 &
BPID=$!
start_static_nginx "$WORK" "$WORK/static" "$NGINX_PORT"
NPID=$STATIC_NGINX_PID
trap 'kill $BPID $NPID 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK/berth" "$WORK/static"' EXIT
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$BERTH_PORT/healthz" && break; sleep 0.1; done

for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round/$ROUNDS"
  "$BIN/berth-bench" run --url "http://127.0.0.1:$BERTH_PORT" --target berth \
    --creds admin:bench-admin-password --token-auth --pid "$BPID" --seconds "$SECS" --round "$round" \
    --mirror "$WORK/static" >>"$RESULTS"
  "$BIN/berth-bench" static-files --url "http://127.0.0.1:$NGINX_PORT" --target nginx \
    --seconds "$SECS" --dir "$WORK/static" >>"$RESULTS"
done

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    if "rps" in r:
        by.setdefault((r["scenario"], r["target"]), []).append(r)
print(f"{'scenario':28} {'berth rps':>10} {'nginx rps':>10} {'berth/nginx':>12} {'berth p99':>10} {'nginx p99':>10}")
for s in sorted({k[0] for k in by}):
    b, n = by.get((s, "berth")), by.get((s, "nginx"))
    if not b or not n:
        continue
    med = lambda xs, k: statistics.median(x[k] for x in xs)
    print(f"{s:28} {med(b,'rps'):10.0f} {med(n,'rps'):10.0f} {med(b,'rps')/med(n,'rps'):11.0%} {med(b,'p99_ms'):9.2f}ms {med(n,'p99_ms'):9.2f}ms")
PY
