#!/usr/bin/env bash
# Backup, restore and integrity checks of the embedded default (issue 39):
# Berth on SQLite and the filesystem with BLOBS blobs of MIB MiB each pushed
# through its API, then timed: `berth backup` (first, then again with
# nothing new: incremental), `berth fsck`, `berth restore` into an empty
# data directory, and, for the storage's own speed on this machine, `cp -r`
# of the blob directory and `sha256sum` of every blob. Results go to
# target/bench-backup/results.txt.
#
# Usage: bench/backup.sh        (BLOBS=1000 MIB=2: 2 GiB;
# BENCH_NO_BUILD=1 measures the release build already there)
set -euo pipefail
cd "$(dirname "$0")/.."
BLOBS=${BLOBS:-1000}
MIB=${MIB:-2}
WORK=${BENCH_DIR:-$PWD/target/bench-backup}
PORT=5141
[ -n "${BENCH_NO_BUILD:-}" ] || cargo build --release -p berth
BERTH=$PWD/target/release/berth
rm -rf "$WORK"
mkdir -p "$WORK"
RESULTS=$WORK/results.txt
: >"$RESULTS"
export BERTH_ADMIN_PASSWORD=bench-admin-password BERTH_LOG=warn BERTH_GC_INTERVAL_SECS=0 \
  BERTH_INTEGRITY_SCRUB_INTERVAL_SECS=0
BERTH_DATA_DIR="$WORK/data" BERTH_LISTEN="127.0.0.1:$PORT" "$BERTH" serve >"$WORK/berth.log" 2>&1 &
BPID=$!
trap 'kill $BPID 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/readyz" && break; sleep 0.1; done

# Unique blobs, pushed monolithically (POST, then PUT with the digest).
push() {
  local i=$1 f loc digest
  f=$(mktemp "$WORK/blob.XXXXXX")
  { printf 'blob %d ' "$i"; head -c $((MIB << 20)) /dev/urandom; } | head -c $((MIB << 20)) >"$f"
  digest=sha256:$(sha256sum "$f" | cut -d' ' -f1)
  loc=$(curl -s -u "admin:$BERTH_ADMIN_PASSWORD" -X POST -D - -o /dev/null \
    "http://127.0.0.1:$PORT/v2/bench/data/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  case $loc in http*) ;; *) loc="http://127.0.0.1:$PORT$loc" ;; esac
  case $loc in *\?*) loc="$loc&" ;; *) loc="$loc?" ;; esac
  curl -sf -u "admin:$BERTH_ADMIN_PASSWORD" -X PUT -H 'content-type: application/octet-stream' \
    --data-binary @"$f" "${loc}digest=$digest" -o /dev/null
  rm -f "$f"
}
export -f push
export WORK MIB PORT
seq 1 "$BLOBS" | xargs -P 4 -I{} bash -c 'push {}'
bytes=$((BLOBS * MIB << 20))
stored=$(find "$WORK/data/blobs/sha256" -type f | wc -l)
[ "$stored" = "$BLOBS" ] || { echo "only $stored of $BLOBS blobs were pushed" >&2; exit 1; }

timed() { # name command...: seconds and MiB/s into the results
  local name=$1 start end
  shift
  sync
  echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
  start=$(date +%s.%N)
  "$@" >"$WORK/$name.out" 2>&1
  end=$(date +%s.%N)
  awk -v n="$name" -v s="$start" -v e="$end" -v b="$bytes" \
    'BEGIN { t = e - s; printf "%-22s %7.2f s %8.1f MiB/s\n", n, t, b / 1048576 / t }' | tee -a "$RESULTS"
}

echo "$BLOBS blobs of $MIB MiB ($((bytes >> 20)) MiB) on $(df -h "$WORK" | tail -1 | awk '{print $1}')" | tee -a "$RESULTS"
timed "cp -r (storage)" cp -r "$WORK/data/blobs" "$WORK/copy"
timed "sha256sum (storage)" sh -c "find '$WORK/data/blobs/sha256' -type f -print0 | xargs -0 -P 4 -n 50 sha256sum"
rm -rf "$WORK/copy"
timed "berth backup" env BERTH_DATA_DIR="$WORK/data" "$BERTH" backup "$WORK/backup"
timed "berth backup (again)" env BERTH_DATA_DIR="$WORK/data" "$BERTH" backup "$WORK/backup"
timed "berth fsck" env BERTH_DATA_DIR="$WORK/data" "$BERTH" fsck
kill $BPID
wait $BPID 2>/dev/null || true
timed "berth restore" env BERTH_DATA_DIR="$WORK/restored" "$BERTH" restore "$WORK/backup"
tail -n 1 "$WORK/berth backup.out" "$WORK/berth backup (again).out" | tee -a "$RESULTS"
