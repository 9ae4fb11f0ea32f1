#!/usr/bin/env bash
# Regions (issue 21), on this machine: two regions ("north", "south"), each a
# directory on the same disk, one Berth node each, one PostgreSQL.
# 1. Replication throughput: images pushed in the north while the south's
#    node is down, then the time from starting it until its backlog is empty
#    (5 images of 100 MiB; 100 images of 1 MB), next to `skopeo sync` copying
#    the same images from the north node to a reference registry
#    (Distribution on a directory of the same disk), alternating per round.
# 2. Replication lag of 1 MB images pushed at 5 per second for 20 s (from
#    each push's end until the tag list says the image is whole in the south).
# 3. First pull of a 1 MB layer from a south node that runs no jobs (on
#    demand from the north) against the next pull of it (local).
# Results go to target/bench-regions/results.jsonl and a table on stdout.
#
# Usage: bench/regions.sh            (ROUNDS=3 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
WORK=${BENCH_DIR:-$PWD/target/bench-regions}
CREDS=admin:bench-admin-password

# shellcheck source=scripts/test-env.sh
source scripts/test-env.sh >/dev/null
for tool in docker-registry skopeo; do
  command -v $tool >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry skopeo >/dev/null
  }
done
cargo build --release -p berth -p berth-bench
BIN=$PWD/target/release

rm -rf "$WORK"
mkdir -p "$WORK"
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
run_id=$(date +%s)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

db="bench_regions_$run_id"
psql "$BERTH_TEST_POSTGRES_URL" -qc "CREATE DATABASE $db" >/dev/null
db_url="${BERTH_TEST_POSTGRES_URL/\/postgres\?//$db?}"
cat >"$WORK/regions.toml" <<TOML
admin_password = "bench-admin-password"
log = "warn"
[database]
url = "$db_url"
[regions.north]
storage = { kind = "fs", path = "$WORK/north" }
[regions.south]
storage = { kind = "fs", path = "$WORK/south" }
TOML

node() { # port region [jobs]
  env -i PATH="$PATH" BERTH_LISTEN="127.0.0.1:$1" BERTH_DATA_DIR="$WORK/node-$1" \
    BERTH_REGION="$2" BERTH_JOBS_CONCURRENCY="${3:-4}" \
    "$BIN/berth" serve --config "$WORK/regions.toml" >>"$WORK/berth-$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$1/readyz" && break; sleep 0.1; done
}
now() { date +%s.%N; }
bench() { "$BIN/berth-bench" regions --url http://127.0.0.1:5301 --creds "$CREDS" "$@" >>"$RESULTS"; }

node 5301 north
env -i PATH="$PATH" BERTH_DATA_DIR="$WORK/node-5301" BERTH_REGION=north \
  "$BIN/berth" --config "$WORK/regions.toml" admin namespace create bench --group admin --public >/dev/null

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
  addr: 127.0.0.1:5303
YAML
docker-registry serve "$WORK/reference.yml" >"$WORK/reference.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:5303/v2/" && break; sleep 0.1; done

skopeo_sync() { # repo label images bytes
  local start end
  start=$(now)
  skopeo sync --src docker --dest docker --src-tls-verify=false --dest-tls-verify=false \
    --src-creds "$CREDS" "127.0.0.1:5301/$1" "127.0.0.1:5303/mirror-$1" >/dev/null
  end=$(now)
  awk -v s="$start" -v e="$end" -v n="$3" -v b="$4" -v l="$2" 'BEGIN {
    printf "{\"target\":\"skopeo\",\"scenario\":\"regions_replicate_%s\",\"seconds\":%.3f,\"images_s\":%.3f,\"mb_s\":%.3f}\n",
      l, e - s, n / (e - s), b / 1e6 / (e - s) }' >>"$RESULTS"
}

for round in $(seq 1 "$ROUNDS"); do
  for kind in big small; do
    if [ $kind = big ]; then images=5; size=104857600; label=100m; else images=100; size=1000000; label=1m; fi
    repo="bench/$kind$round"
    echo "== round $round/$ROUNDS: $images images of $size bytes into the north"
    bench --phase push --repo "$repo" --images $images --size $size --seed $((round * 10 + images))
    echo "== the south's node starts and drains its backlog"
    since=$(date +%s.%N)
    node 5302 south
    bench --phase drain --label "$label" --images $images --size $size --since "$since"
    kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'
    echo "== skopeo sync of the same images to the reference"
    skopeo_sync "$repo" "$label" $images $((images * size))
  done
done

echo "== lag: 1 MB images at 5/s for 20 s"
node 5302 south
bench --phase lag --rate 5 --seconds 20
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'

echo "== first pull in the south: on demand, then local"
node 5304 south 0
bench --phase first-pull --cold http://127.0.0.1:5304 --images 50

python3 - "$RESULTS" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault((r["target"], r["scenario"]), []).append(r)
print(f"{'target':8} {'scenario':30} {'median of rounds':>40}")
for (t, s), rs in sorted(by.items()):
    keys = [k for k in rs[0] if k not in ("target", "scenario")]
    med = {k: statistics.median(r[k] for r in rs) for k in keys if isinstance(rs[0][k], (int, float))}
    print(f"{t:8} {s:30} " + "  ".join(f"{k}={v:.2f}" for k, v in med.items()))
PY
