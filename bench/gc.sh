#!/usr/bin/env bash
# Garbage collection's reclaim rate on S3 (issue 38): Berth with PostgreSQL
# and Garage (both from scripts/test-env.sh), `gc.grace_secs = 0`. Pushes
# IMAGES images of BLOBS unique 1 KiB layers and a config each, deletes
# them all, then times one collection until it reports done: objects
# deleted per second. Results go to target/bench-gc/results.jsonl.
#
# Usage: bench/gc.sh            (IMAGES=2000 BLOBS=9: 20,000 objects)
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${IMAGES:-2000}
BLOBS=${BLOBS:-9}
WORK=${BENCH_DIR:-$PWD/target/bench-gc}
PORT=5131

# shellcheck source=scripts/test-env.sh
source scripts/test-env.sh >/dev/null
cargo build --release -p berth -p berth-bench
BIN=$PWD/target/release
# BERTH_BIN: another build of the server to compare (the bench client stays).
BERTH=${BERTH_BIN:-$BIN/berth}
rm -rf "$WORK"
mkdir -p "$WORK"
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
run_id=$(date +%s)
db="bench_gc_$run_id"
psql "$BERTH_TEST_POSTGRES_URL" -qc "CREATE DATABASE $db" >/dev/null
db_url="${BERTH_TEST_POSTGRES_URL/\/postgres\?//$db?}"
node_env=(env -i PATH="$PATH" BERTH_DATA_DIR="$WORK/node" BERTH_DATABASE_URL="$db_url"
  BERTH_ADMIN_PASSWORD=bench-admin-password BERTH_LOG=warn BERTH_GC_GRACE_SECS=0
  BERTH_GC_INTERVAL_SECS=0 BERTH_TAGS_PER_REPOSITORY=0 BERTH_STORAGE_KIND=s3
  BERTH_S3_ENDPOINT="$BERTH_TEST_S3_ENDPOINT" BERTH_S3_BUCKET="$BERTH_TEST_S3_BUCKET"
  BERTH_S3_REGION="$BERTH_TEST_S3_REGION" BERTH_S3_ACCESS_KEY_ID="$BERTH_TEST_S3_ACCESS_KEY_ID"
  BERTH_S3_SECRET_ACCESS_KEY="$BERTH_TEST_S3_SECRET_ACCESS_KEY" BERTH_S3_PREFIX="bench-gc-$run_id")
"${node_env[@]}" "$BERTH" admin namespace create bench --group admin >/dev/null
"${node_env[@]}" BERTH_LISTEN="127.0.0.1:$PORT" "$BERTH" serve >"$WORK/berth.log" 2>&1 &
BPID=$!
trap 'kill $BPID 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/readyz" && break; sleep 0.1; done

"$BIN/berth-bench" gc --url "http://127.0.0.1:$PORT" --target berth-postgres-s3 \
  --creds admin:bench-admin-password --pid "$BPID" --images "$IMAGES" --blobs "$BLOBS" | tee -a "$RESULTS"
