#!/usr/bin/env bash
# Garbage collection's reclaim rate on S3 (issue 38): Berth with PostgreSQL
# and Garage (both from scripts/test-env.sh), `gc.grace_secs = 0`. Pushes
# IMAGES images of BLOBS unique 1 KiB layers and a config each, deletes
# them all, then times one collection until it reports done: objects
# deleted per second, and the push latency of a client pushing small images
# during the collection against before it. Then the reference registry
# (Debian's docker-registry, Distribution 2.8) on the same bucket: the same
# images pushed and deleted through its API, the registry stopped, and its
# offline `garbage-collect` timed. Results go to
# target/bench-gc/results.jsonl.
#
# Usage: bench/gc.sh            (IMAGES=2000 BLOBS=9: 20,000 objects;
# BENCH_NO_BUILD=1 measures the release build already there; KEEP=N keeps
# the first N images, whose blobs the collection must step over)
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${IMAGES:-2000}
BLOBS=${BLOBS:-9}
WORK=${BENCH_DIR:-$PWD/target/bench-gc}
# STORAGE=fs: Berth's blobs on the local filesystem instead (PostgreSQL
# still), to tell the storage's share from Berth's; REFERENCE=0 skips the
# reference registry.
STORAGE=${STORAGE:-s3}
# GC_RATE: `gc.objects_per_sec` (0: no limit).
GC_RATE=${GC_RATE:-0}
# GC_BATCH: `gc.batch`.
GC_BATCH=${GC_BATCH:-500}
REFERENCE=${REFERENCE:-1}
KEEP=${KEEP:-0}
# JOBS: `jobs.concurrency` (unset: Berth's default). Every pushed image
# queues an inventory job; JOBS=0 leaves them queued, so that a large
# setup measures the collection alone.
JOBS=${JOBS:-}
# NODES=2: a second node on the same database and storage, running jobs
# (its worker takes shards of the collection the first node starts, and
# meanwhile the inventory jobs the pushes queue).
NODES=${NODES:-1}
PORT=5131

# shellcheck source=scripts/test-env.sh
source scripts/test-env.sh >/dev/null
[ -n "${BENCH_NO_BUILD:-}" ] || cargo build --release -p berth -p berth-bench
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
  BERTH_GC_INTERVAL_SECS=0 BERTH_TAGS_PER_REPOSITORY=0 BERTH_GC_OBJECTS_PER_SEC="$GC_RATE"
  BERTH_GC_BATCH="$GC_BATCH" ${JOBS:+BERTH_JOBS_CONCURRENCY=$JOBS})
if [ "$STORAGE" = s3 ]; then
  node_env+=(BERTH_STORAGE_KIND=s3
    BERTH_S3_ENDPOINT="$BERTH_TEST_S3_ENDPOINT" BERTH_S3_BUCKET="$BERTH_TEST_S3_BUCKET"
    BERTH_S3_REGION="$BERTH_TEST_S3_REGION" BERTH_S3_ACCESS_KEY_ID="$BERTH_TEST_S3_ACCESS_KEY_ID"
    BERTH_S3_SECRET_ACCESS_KEY="$BERTH_TEST_S3_SECRET_ACCESS_KEY" BERTH_S3_PREFIX="bench-gc-$run_id")
fi
"${node_env[@]}" "$BERTH" admin namespace create bench --group admin >/dev/null
"${node_env[@]}" BERTH_LISTEN="127.0.0.1:$PORT" "$BERTH" serve >"$WORK/berth.log" 2>&1 &
BPID=$!
trap 'kill $BPID ${HPID:-} ${RPID:-} 2>/dev/null || true; wait 2>/dev/null || true' EXIT
if [ "$NODES" -gt 1 ]; then
  "${node_env[@]}" BERTH_LISTEN="127.0.0.1:$((PORT + 2))" BERTH_JOBS_CONCURRENCY=4 \
    "$BERTH" serve >"$WORK/helper.log" 2>&1 &
  HPID=$!
fi
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/readyz" && break; sleep 0.1; done

"$BIN/berth-bench" gc --url "http://127.0.0.1:$PORT" --target "berth-postgres-$STORAGE" \
  --creds admin:bench-admin-password --pid "$BPID" --images "$IMAGES" --keep "$KEEP" --blobs "$BLOBS" | tee -a "$RESULTS"
# Which node took how many shards of the blob step, and deleted what.
echo "shards by node (node id | shards | blobs deleted):"
psql "$db_url" -Atc "SELECT owner, COUNT(*), SUM(blobs_deleted) FROM gc_shards GROUP BY owner ORDER BY owner"
kill $BPID ${HPID:-}; wait $BPID ${HPID:-} 2>/dev/null || true
[ "$REFERENCE" = 1 ] || exit 0

command -v docker-registry >/dev/null || {
  echo "bench/gc.sh: the reference needs Debian's docker-registry" >&2; exit 1; }
REF_PORT=5132
cat >"$WORK/reference.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  s3:
    accesskey: $BERTH_TEST_S3_ACCESS_KEY_ID
    secretkey: $BERTH_TEST_S3_SECRET_ACCESS_KEY
    region: $BERTH_TEST_S3_REGION
    regionendpoint: $BERTH_TEST_S3_ENDPOINT
    bucket: $BERTH_TEST_S3_BUCKET
    rootdirectory: /bench-gc-$run_id/reference
    secure: false
    v4auth: true
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REF_PORT
YAML
# AWS_CA_BUNDLE (set on some machines) makes the AWS SDK of Distribution 2.8
# refuse its own HTTP transport.
env -u AWS_CA_BUNDLE docker-registry serve "$WORK/reference.yml" >"$WORK/reference.log" 2>&1 &
RPID=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$REF_PORT/v2/" && break; sleep 0.1; done
"$BIN/berth-bench" gc --url "http://127.0.0.1:$REF_PORT" --target reference-s3 \
  --images "$IMAGES" --keep "$KEEP" --blobs "$BLOBS" --push-delete-only | tee -a "$RESULTS"
# Offline, as Distribution documents it: the registry stopped.
kill $RPID; wait $RPID 2>/dev/null || true
start=$(date +%s.%N)
env -u AWS_CA_BUNDLE docker-registry garbage-collect "$WORK/reference.yml" >"$WORK/reference-gc.log" 2>&1
end=$(date +%s.%N)
# Distribution names each blob (manifests included: they are blobs there)
# it deletes as "blob eligible for deletion".
deleted=$(grep -c "blob eligible for deletion" "$WORK/reference-gc.log" || true)
python3 - "$start" "$end" "$deleted" "$IMAGES" "$BLOBS" "$KEEP" >>"$RESULTS" <<'PY'
import json, sys
start, end, deleted, images, blobs, keep = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
s = end - start
print(json.dumps({"target": "reference-s3", "scenario": "gc_reclaim", "objects": (images - min(keep, images)) * (blobs + 1),
                  "blobs_deleted": deleted, "seconds": s, "objects_per_s": deleted / s if s else None}))
PY
tail -n 1 "$RESULTS"
python3 - "$RESULTS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
b = next(r for r in rows if r["scenario"] == "gc_reclaim" and r["target"].startswith("berth"))
r = next(r for r in rows if r["scenario"] == "gc_reclaim" and r["target"] == "reference-s3")
print(f"Berth: {b['blobs_deleted']} objects in {b['seconds']:.2f} s = {b['objects_per_s']:.0f}/s; "
      f"push p99 {b['push_idle_p99_ms']:.1f} ms idle, {b['push_during_p99_ms']:.1f} ms during "
      f"({b['push_during_p99_ms'] / b['push_idle_p99_ms']:.2f}x), {b['push_during_refused']} refused")
if r["objects_per_s"]:
    print(f"reference garbage-collect: {r['blobs_deleted']} objects in {r['seconds']:.2f} s = {r['objects_per_s']:.0f}/s; "
          f"Berth {b['objects_per_s'] / r['objects_per_s']:.1f}x")
PY
