#!/usr/bin/env bash
# Other registries (issue 22), on this machine, one Berth node (SQLite, a
# directory) and Debian's reference registry (Distribution) on directories
# of the same disk, everything on loopback.
# 1. Replication: 50 images of mixed sizes (10 of 20 MB, 40 of 1 MB) in
#    Berth, copied to a reference registry by a manual push rule (time from
#    starting the run until every task is done) and by `skopeo sync` of the
#    same images to the same registry (another prefix), alternating per round.
# 2. Pull-through: a 100 MiB image pulled straight from the upstream (a
#    reference registry), then through a Berth proxy namespace on a miss
#    (first pull), then again through it (cached), and a local image of the
#    same size pulled from Berth (manifest, then the blobs read to the end,
#    by berth-client), a new image per round. With `tc` (root), the same
#    again with the upstream's replies held to 1 Gbit/s, as across a
#    network ("_1gbit"); on bare loopback the upstream answers from the page
#    cache at memory speed, which no extra hop can match.
# Results go to target/bench-remotes/results.jsonl and a table on stdout.
#
# Usage: bench/remotes.sh            (ROUNDS=3 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
WORK=${BENCH_DIR:-$PWD/target/bench-remotes}
CREDS=admin:bench-admin-password

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
PIDS=()
# Stored data (about 4 GB) goes at exit; results and logs stay.
# BENCH_KEEP_DATA=1 keeps everything.
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${BENCH_KEEP_DATA:-}" ] || find "$WORK" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
}
wan_off() { tc qdisc del dev lo root 2>/dev/null || true; }
wan_on() { # the upstream's replies at 1 Gbit/s
  wan_off
  tc qdisc add dev lo root handle 1: htb default 10 &&
    tc class add dev lo parent 1: classid 1:10 htb rate 100gbit &&
    tc class add dev lo parent 1: classid 1:20 htb rate 1gbit ceil 1gbit &&
    tc filter add dev lo protocol ip parent 1: prio 1 u32 match ip sport 5404 0xffff flowid 1:20
}
trap 'cleanup; wan_off' EXIT
now() { date +%s.%N; }

reference() { # port dir
  cat >"$WORK/ref-$1.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $2
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$1
YAML
  docker-registry serve "$WORK/ref-$1.yml" >"$WORK/ref-$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$1/v2/" && break; sleep 0.1; done
}
reference 5403 "$WORK/dr"
reference 5404 "$WORK/upstream"

cat >"$WORK/berth.toml" <<TOML
listen = "127.0.0.1:5401"
data_dir = "$WORK/berth"
admin_password = "bench-admin-password"
encryption_key = "a-bench-encryption-key-of-32-characters"
log = "warn"
[[remotes]]
name = "dr"
url = "http://127.0.0.1:5403"
[[remotes]]
name = "up"
url = "http://127.0.0.1:5404"
[[proxy_namespaces]]
namespace = "hub"
remote = "up"
public = true
TOML
env -i PATH="$PATH" "$BIN/berth" serve --config "$WORK/berth.toml" >"$WORK/berth.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:5401/readyz && break; sleep 0.1; done
api() { curl -sf -u "$CREDS" -H 'content-type: application/json' "$@"; }
bench() { "$BIN/berth-bench" remotes "$@"; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

api -X POST http://127.0.0.1:5401/api/v1/namespaces -d '{"name":"bench"}' >/dev/null
for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round/$ROUNDS: 50 images (10 x 20 MB, 40 x 1 MB) into Berth"
  bench --phase push --url http://127.0.0.1:5401 --creds "$CREDS" --repo "bench/big$round" \
    --images 10 --size 20000000 --seed $((round * 100 + 1))
  bench --phase push --url http://127.0.0.1:5401 --creds "$CREDS" --repo "bench/small$round" \
    --images 40 --size 1000000 --seed $((round * 100 + 2))
  bytes=$((10 * 20000000 + 40 * 1000000))
  sync; sleep 1
  echo "== Berth's push rule to the reference"
  rule=$(api -X POST http://127.0.0.1:5401/api/v1/replication/rules -d "{\"name\":\"bench$round\",
    \"direction\":\"push\",\"remote\":\"dr\",\"destination\":\"berth$round\",
    \"filters\":{\"repositories\":{\"include\":[\"bench/*$round\"]}}}" | json '["id"]')
  start=$(now)
  run=$(api -X POST "http://127.0.0.1:5401/api/v1/replication/rules/$rule/run" | json '["run"]')
  while :; do
    status=$(api "http://127.0.0.1:5401/api/v1/replication/runs/$run" | json '["status"]')
    case $status in listing|running) sleep 0.05 ;; *) break ;; esac
  done
  end=$(now)
  [ "$status" = succeeded ] || { echo "run $run: $status"; exit 1; }
  awk -v s="$start" -v e="$end" -v b="$bytes" 'BEGIN {
    printf "{\"target\":\"berth\",\"scenario\":\"replicate_50_images\",\"seconds\":%.3f,\"images_s\":%.3f,\"mb_s\":%.3f}\n",
      e - s, 50 / (e - s), b / 1e6 / (e - s) }' >>"$RESULTS"
  sync; sleep 1
  echo "== skopeo sync of the same images to the reference"
  start=$(now)
  for kind in big small; do
    skopeo sync --src docker --dest docker --src-tls-verify=false --dest-tls-verify=false \
      --src-creds "$CREDS" "127.0.0.1:5401/bench/$kind$round" "127.0.0.1:5403/skopeo$round" >/dev/null
  done
  end=$(now)
  awk -v s="$start" -v e="$end" -v b="$bytes" 'BEGIN {
    printf "{\"target\":\"skopeo\",\"scenario\":\"replicate_50_images\",\"seconds\":%.3f,\"images_s\":%.3f,\"mb_s\":%.3f}\n",
      e - s, 50 / (e - s), b / 1e6 / (e - s) }' >>"$RESULTS"

  echo "== pull-through of a 100 MiB image"
  bench --phase push --url http://127.0.0.1:5404 --repo "big/p$round" --size 104857600 --seed $((round * 100 + 3))
  bench --phase push --url http://127.0.0.1:5401 --creds "$CREDS" --repo "bench/local$round" \
    --size 104857600 --seed $((round * 100 + 4))
  sync; sleep 1
  bench --phase pull --url http://127.0.0.1:5404 --repo "big/p$round" --target upstream --scenario pull_100m_direct >>"$RESULTS"
  bench --phase pull --url http://127.0.0.1:5401 --creds "$CREDS" --repo "hub/big/p$round" --target berth --scenario pull_100m_proxy_first >>"$RESULTS"
  sleep 1
  bench --phase pull --url http://127.0.0.1:5401 --creds "$CREDS" --repo "hub/big/p$round" --target berth --scenario pull_100m_proxy_cached >>"$RESULTS"
  bench --phase pull --url http://127.0.0.1:5401 --creds "$CREDS" --repo "bench/local$round" --target berth --scenario pull_100m_local >>"$RESULTS"
  if wan_on 2>/dev/null; then
    bench --phase push --url http://127.0.0.1:5404 --repo "big/w$round" --size 104857600 --seed $((round * 100 + 5))
    sync; sleep 1
    bench --phase pull --url http://127.0.0.1:5404 --repo "big/w$round" --target upstream --scenario pull_100m_direct_1gbit >>"$RESULTS"
    bench --phase pull --url http://127.0.0.1:5401 --creds "$CREDS" --repo "hub/big/w$round" --target berth --scenario pull_100m_proxy_first_1gbit >>"$RESULTS"
    wan_off
  fi
done

python3 - "$RESULTS" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault((r["target"], r["scenario"]), []).append(r)
print(f"{'target':9} {'scenario':26} median of rounds")
for (t, s), rs in sorted(by.items()):
    keys = [k for k in rs[0] if k not in ("target", "scenario")]
    med = {k: statistics.median(r[k] for r in rs) for k in keys if isinstance(rs[0][k], (int, float))}
    print(f"{t:9} {s:26} " + "  ".join(f"{k}={v:.2f}" for k, v in med.items()))
PY
