#!/usr/bin/env bash
# The whole benchmark comparison: builds Berth in release mode, starts it and
# the reference registry (Debian's docker-registry, Distribution 2.8, with
# filesystem storage and deletes enabled) on this machine and disk, runs the
# same scenarios against both in alternating rounds (A B A B …), measures the
# physical ceilings, and prints a table of medians with the Berth/reference
# ratio. The report also goes to docs/benchmarks.md.
#
# Usage: bench/run.sh            (ROUNDS=3 BENCH_SECONDS=5 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
SECS=${BENCH_SECONDS:-5}
WORK=${BENCH_DIR:-$PWD/target/bench-work}
BERTH_PORT=5101
REF_PORT=5102

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v docker-registry >/dev/null || ! command -v openssl >/dev/null; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry openssl >/dev/null
fi

cargo build --release -p berth -p berth-bench
BIN=$PWD/target/release

rm -rf "$WORK"
mkdir -p "$WORK"
RESULTS=$WORK/results.jsonl
: >"$RESULTS"

cleanup() {
  [ -n "${BPID:-}" ] && kill "$BPID" 2>/dev/null || true
  [ -n "${RPID:-}" ] && kill "$RPID" 2>/dev/null || true
}
trap cleanup EXIT

echo "== physical ceilings"
sha=$(openssl speed -evp sha256 -seconds 2 2>/dev/null | awk '/^sha256/ {v=$NF} END {sub(/k$/, "", v); printf "%.1f", v*1000/1e6}')
echo "{\"target\":\"machine\",\"scenario\":\"sha256_one_core\",\"mb_s\":$sha}" >>"$RESULTS"
# MB/s of dd writing 1 GiB in 1 MiB blocks to the work directory, then
# fdatasync; extra dd operands as arguments.
dd_mb_s() {
  local out
  out=$(dd if=/dev/zero of="$WORK/dd.test" bs=1M count=1024 conv=fdatasync "$@" 2>&1 | tail -n 1)
  rm -f "$WORK/dd.test"
  # "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 0.81 s, 1.3 GB/s": bytes
  # over seconds, as dd rounds its own rate to two digits.
  echo "$out" | awk '{printf "%.1f", $1 / $(NF-3) / 1e6}'
}
echo "{\"target\":\"machine\",\"scenario\":\"disk_write_fdatasync\",\"mb_s\":$(dd_mb_s)}" >>"$RESULTS"
# The same past the page cache (O_DIRECT), as large uploads are written: the
# buffered figure also depends on how fast the page cache gets fresh memory.
echo "{\"target\":\"machine\",\"scenario\":\"disk_write_direct\",\"mb_s\":$(dd_mb_s oflag=direct)}" >>"$RESULTS"
"$BIN/berth-bench" loopback >>"$RESULTS"

echo "== starting Berth on :$BERTH_PORT and the reference registry on :$REF_PORT"
# No tag limit: the tag-list scenario tags one image 100,000 times.
export BERTH_DATA_DIR=$WORK/berth BERTH_ADMIN_PASSWORD=bench-admin-password BERTH_LOG=warn BERTH_TAGS_PER_REPOSITORY=0
"$BIN/berth" admin namespace create bench --group admin --public >/dev/null
BERTH_LISTEN=127.0.0.1:$BERTH_PORT "$BIN/berth" serve >"$WORK/berth.log" 2>&1 &
BPID=$!
cat >"$WORK/reference.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $WORK/reference
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REF_PORT
YAML
docker-registry serve "$WORK/reference.yml" >"$WORK/reference.log" 2>&1 &
RPID=$!
for url in "http://127.0.0.1:$BERTH_PORT/healthz" "http://127.0.0.1:$REF_PORT/v2/"; do
  for _ in $(seq 1 100); do curl -s -o /dev/null "$url" && break; sleep 0.1; done
done

for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round/$ROUNDS: berth"
  "$BIN/berth-bench" run --url "http://127.0.0.1:$BERTH_PORT" --target berth \
    --creds admin:bench-admin-password --token-auth --pid "$BPID" --seconds "$SECS" --round "$round" --disk-probe "$WORK" >>"$RESULTS"
  echo "== round $round/$ROUNDS: reference"
  "$BIN/berth-bench" run --url "http://127.0.0.1:$REF_PORT" --target reference \
    --pid "$RPID" --seconds "$SECS" --round "$round" --disk-probe "$WORK" >>"$RESULTS"
done

echo "== berth: a tag list of 100,000 tags through the management API"
"$BIN/berth-bench" tag-list --url "http://127.0.0.1:$BERTH_PORT" --creds admin:bench-admin-password \
  --seconds "$SECS" >>"$RESULTS"

echo "== memory per transfer: blobs of 10 MiB, 100 MiB and 1 GiB, once each"
"$BIN/berth-bench" transfer-memory --url "http://127.0.0.1:$BERTH_PORT" --target berth \
  --creds admin:bench-admin-password --pid "$BPID" >>"$RESULTS"
"$BIN/berth-bench" transfer-memory --url "http://127.0.0.1:$REF_PORT" --target reference \
  --pid "$RPID" >>"$RESULTS"

python3 bench/report.py "$RESULTS" docs/benchmarks.md
