#!/usr/bin/env bash
# Model-sized layers (issue 38): one blob of SIZE_GIB GiB pushed monolithic
# (with its length), chunked (256 MiB PATCHes) and streamed (one PATCH
# without a length), then pulled whole, in four parallel ranges, and its
# last MiB alone, with the server's extra resident memory during each;
# first on the local filesystem (the embedded default), then on S3
# (PostgreSQL and Garage from scripts/test-env.sh; pulls there follow
# Berth's presigned redirect unless REDIRECT=0). The storage alone is
# measured in the same run: dd with O_DIRECT on the data disk, and curl
# putting and getting a STORAGE_GIB GiB object in Garage. Results go to
# target/bench-large/results.jsonl.
#
# Usage: bench/large.sh   (SIZE_GIB=20 STORAGE_GIB=4 TARGETS="fs s3"; on S3
# Garage keeps one copy of equal blocks, so the second and third push of
# the same bytes write less there than the first;
# BENCH_NO_BUILD=1 measures the release build already there)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_GIB=${SIZE_GIB:-20}
STORAGE_GIB=${STORAGE_GIB:-4}
TARGETS=${TARGETS:-fs s3}
REDIRECT=${REDIRECT:-1}
# MODES: the pushes (comma-separated).
MODES=${MODES:-monolithic,chunked,streamed}
WORK=${BENCH_DIR:-$PWD/target/bench-large}
PORT=5141

# shellcheck source=scripts/test-env.sh
source scripts/test-env.sh >/dev/null
# shellcheck source=bench/lib.sh
source bench/lib.sh
[ -n "${BENCH_NO_BUILD:-}" ] || cargo build --release -p berth -p berth-bench
BIN=$PWD/target/release
rm -rf "$WORK"
mkdir -p "$WORK"
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
run_id=$(date +%s)
BPID=
trap 'kill $BPID 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK/node" "$WORK/probe"' EXIT
limit=$(( (SIZE_GIB + 1) << 30 ))

serve() { # label, then extra environment
  local label=$1
  shift
  rm -rf "$WORK/node"
  env -i PATH="$PATH" BERTH_DATA_DIR="$WORK/node" BERTH_ADMIN_PASSWORD=bench-admin-password \
    BERTH_LOG=warn BERTH_MAX_BLOB_BYTES=$limit "$@" "$BIN/berth" admin namespace create bench --group admin >/dev/null
  env -i PATH="$PATH" BERTH_DATA_DIR="$WORK/node" BERTH_ADMIN_PASSWORD=bench-admin-password \
    BERTH_LOG=warn BERTH_MAX_BLOB_BYTES=$limit BERTH_LISTEN="127.0.0.1:$PORT" "$@" \
    "$BIN/berth" serve >"$WORK/berth-$label.log" 2>&1 &
  BPID=$!
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/readyz" && break; sleep 0.1; done
  "$BIN/berth-bench" large --url "http://127.0.0.1:$PORT" --target "berth-$label" \
    --creds admin:bench-admin-password --pid "$BPID" --gib "$SIZE_GIB" --modes "$MODES" | tee -a "$RESULTS"
  kill $BPID; wait $BPID 2>/dev/null || true
  rm -rf "$WORK/node"
}

mib_s() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / 1048576 / s }'; }

for target in $TARGETS; do
  case $target in
  fs)
    echo "== the disk alone: dd, ${SIZE_GIB} GiB with O_DIRECT, written then read"
    bytes=$((SIZE_GIB << 30))
    t0=$(date +%s.%N)
    dd if=/dev/zero of="$WORK/probe" bs=8M count=$((SIZE_GIB * 128)) oflag=direct conv=fdatasync 2>/dev/null
    s=$(echo "$(date +%s.%N) - $t0" | bc)
    echo "{\"target\":\"disk\",\"scenario\":\"large_push\",\"mib_s\":$(mib_s $bytes "$s")}" | tee -a "$RESULTS"
    t0=$(date +%s.%N)
    dd if="$WORK/probe" of=/dev/null bs=8M iflag=direct 2>/dev/null
    s=$(echo "$(date +%s.%N) - $t0" | bc)
    echo "{\"target\":\"disk\",\"scenario\":\"large_pull\",\"mib_s\":$(mib_s $bytes "$s")}" | tee -a "$RESULTS"
    rm -f "$WORK/probe"
    echo "== Berth, filesystem storage"
    serve fs
    ;;
  s3)
    echo "== Garage alone: curl, a ${STORAGE_GIB} GiB object put then got"
    bytes=$((STORAGE_GIB << 30))
    # (openssl ends on a broken pipe, which pipefail would count.)
    { openssl enc -aes-128-ctr -pass pass:berth -nosalt -pbkdf2 </dev/zero 2>/dev/null || true; } |
      head -c $bytes >"$WORK/probe"
    s3_url="$BERTH_TEST_S3_ENDPOINT/$BERTH_TEST_S3_BUCKET/bench-large-$run_id/probe"
    put=$(s3_curl -T "$WORK/probe" -w '%{speed_upload}' "$s3_url")
    echo "{\"target\":\"garage\",\"scenario\":\"large_push\",\"mib_s\":$(awk -v b="$put" 'BEGIN { printf "%.1f", b / 1048576 }')}" | tee -a "$RESULTS"
    rm -f "$WORK/probe"
    get=$(s3_curl -w '%{speed_download}' "$s3_url")
    echo "{\"target\":\"garage\",\"scenario\":\"large_pull\",\"mib_s\":$(awk -v b="$get" 'BEGIN { printf "%.1f", b / 1048576 }')}" | tee -a "$RESULTS"
    s3_curl -X DELETE "$s3_url" || true
    db="bench_large_$run_id"
    psql "$BERTH_TEST_POSTGRES_URL" -qc "CREATE DATABASE $db" >/dev/null
    redirect=true
    [ "$REDIRECT" = 1 ] || redirect=false
    echo "== Berth, PostgreSQL and S3 (redirect $redirect)"
    serve s3 BERTH_DATABASE_URL="${BERTH_TEST_POSTGRES_URL/\/postgres\?//$db?}" BERTH_STORAGE_KIND=s3 \
      BERTH_S3_ENDPOINT="$BERTH_TEST_S3_ENDPOINT" BERTH_S3_BUCKET="$BERTH_TEST_S3_BUCKET" \
      BERTH_S3_REGION="$BERTH_TEST_S3_REGION" BERTH_S3_ACCESS_KEY_ID="$BERTH_TEST_S3_ACCESS_KEY_ID" \
      BERTH_S3_SECRET_ACCESS_KEY="$BERTH_TEST_S3_SECRET_ACCESS_KEY" \
      BERTH_S3_PREFIX="bench-large-$run_id" BERTH_S3_REDIRECT=$redirect
    ;;
  *) echo "bench/large.sh: unknown target $target" >&2; exit 1 ;;
  esac
done

python3 - "$RESULTS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for r in rows:
    extra = r.get("extra_rss_kb")
    mem = f", extra RSS {extra / 1024:.1f} MiB" if extra is not None else ""
    rate = f"{r['mib_s']:.0f} MiB/s" if "mib_s" in r else f"{r['ms']:.1f} ms"
    print(f"{r['target']:10} {r['scenario']:22} {rate}{mem}")
PY
