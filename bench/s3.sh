#!/usr/bin/env bash
# S3 and several nodes (issue 20), on this machine:
# 1. Berth (PostgreSQL + S3) against the reference registry (Debian's
#    docker-registry, Distribution 2.8, with its S3 driver), both on the same
#    Garage bucket under different prefixes, in alternating rounds: push and
#    pull of fresh 100 MiB images (one client) and 1 MB images (four
#    clients), then the extra resident memory of one upload of 10 MiB,
#    100 MiB and 1 GiB.
# 2. Manifest GET by tag (c=32, bearer token) on one node, then through
#    nginx over three nodes, with the CPU every process spent per request.
# Garage and PostgreSQL come from scripts/test-env.sh. Results go to
# target/bench-s3/results.jsonl and a table on stdout.
#
# Usage: bench/s3.sh            (ROUNDS=3 BENCH_SECONDS=10 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
SECS=${BENCH_SECONDS:-10}
WORK=${BENCH_DIR:-$PWD/target/bench-s3}

# shellcheck source=scripts/test-env.sh
source scripts/test-env.sh >/dev/null
# shellcheck source=bench/lib.sh
source bench/lib.sh
command -v docker-registry >/dev/null || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null
}
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

db="bench_s3_$run_id"
psql "$BERTH_TEST_POSTGRES_URL" -qc "CREATE DATABASE $db" >/dev/null
db_url="${BERTH_TEST_POSTGRES_URL/\/postgres\?//$db?}"

berth_node() { # port prefix
  env -i PATH="$PATH" BERTH_LISTEN="127.0.0.1:$1" BERTH_DATA_DIR="$WORK/node-$1" \
    BERTH_DATABASE_URL="$db_url" BERTH_ADMIN_PASSWORD=bench-admin-password BERTH_LOG=warn \
    BERTH_TRUSTED_PROXIES=127.0.0.1/32 BERTH_STORAGE_KIND=s3 \
    BERTH_S3_ENDPOINT="$BERTH_TEST_S3_ENDPOINT" BERTH_S3_BUCKET="$BERTH_TEST_S3_BUCKET" \
    BERTH_S3_REGION="$BERTH_TEST_S3_REGION" BERTH_S3_ACCESS_KEY_ID="$BERTH_TEST_S3_ACCESS_KEY_ID" \
    BERTH_S3_SECRET_ACCESS_KEY="$BERTH_TEST_S3_SECRET_ACCESS_KEY" BERTH_S3_PREFIX="$2" \
    "$BIN/berth" serve >>"$WORK/berth-$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$1/readyz" && break; sleep 0.1; done
}

echo "== Berth on :5111 and the reference on :5112, both on Garage"
berth_node 5111 "bench-$run_id/berth"
BPID=${PIDS[-1]}
env -i PATH="$PATH" BERTH_DATA_DIR="$WORK/node-5111" BERTH_DATABASE_URL="$db_url" \
  "$BIN/berth" admin namespace create bench --group admin --public >/dev/null
cat >"$WORK/reference.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  s3:
    accesskey: $BERTH_TEST_S3_ACCESS_KEY_ID
    secretkey: $BERTH_TEST_S3_SECRET_ACCESS_KEY
    region: $BERTH_TEST_S3_REGION
    regionendpoint: $BERTH_TEST_S3_ENDPOINT
    bucket: $BERTH_TEST_S3_BUCKET
    rootdirectory: /bench-$run_id/reference
    secure: false
    v4auth: true
    chunksize: 8388608
  delete:
    enabled: true
  redirect:
    disable: true
http:
  addr: 127.0.0.1:5112
YAML
# AWS_CA_BUNDLE (set on some machines) makes the AWS SDK of Distribution 2.8
# refuse its own HTTP transport.
env -u AWS_CA_BUNDLE docker-registry serve "$WORK/reference.yml" >"$WORK/reference.log" 2>&1 &
RPID=$!
PIDS+=($RPID)
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:5112/v2/" && break; sleep 0.1; done

echo "== ceiling: Garage itself (curl, SigV4), a 100 MiB object put once, got five times"
head -c 104857600 /dev/urandom >"$WORK/obj100m"
s3_url="$BERTH_TEST_S3_ENDPOINT/$BERTH_TEST_S3_BUCKET/bench-$run_id/ceiling"
put=$(s3_curl -T "$WORK/obj100m" -w '%{speed_upload}' "$s3_url")
echo "{\"target\":\"garage\",\"scenario\":\"storage_push_100m_c1\",\"mb_s\":$(echo "$put" | awk '{printf "%.1f", $1/1e6}')}" >>"$RESULTS"
for _ in 1 2 3 4 5; do
  get=$(s3_curl -w '%{speed_download}' "$s3_url")
  echo "{\"target\":\"garage\",\"scenario\":\"storage_pull_100m_c1\",\"mb_s\":$(echo "$get" | awk '{printf "%.1f", $1/1e6}')}" >>"$RESULTS"
done
rm -f "$WORK/obj100m"

for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round/$ROUNDS: berth"
  "$BIN/berth-bench" storage --url http://127.0.0.1:5111 --target berth \
    --creds admin:bench-admin-password --pid "$BPID" --seconds "$SECS" --round "$round" >>"$RESULTS"
  echo "== round $round/$ROUNDS: reference"
  "$BIN/berth-bench" storage --url http://127.0.0.1:5112 --target reference \
    --pid "$RPID" --seconds "$SECS" --round "$round" >>"$RESULTS"
done
echo "== memory per upload and download (10 MiB, 100 MiB, 1 GiB)"
"$BIN/berth-bench" transfer-memory --url http://127.0.0.1:5111 --target berth \
  --creds admin:bench-admin-password --pid "$BPID" >>"$RESULTS"
"$BIN/berth-bench" transfer-memory --url http://127.0.0.1:5112 --target reference \
  --pid "$RPID" >>"$RESULTS"
kill "$RPID"

echo "== one node, then three behind nginx"
"$BIN/berth-bench" nodes --url http://127.0.0.1:5111 --target one-node \
  --creds admin:bench-admin-password --pids "$BPID" --seconds "$SECS" >>"$RESULTS"
berth_node 5113 "bench-$run_id/berth"
berth_node 5114 "bench-$run_id/berth"
node_pids="${PIDS[0]},${PIDS[-2]},${PIDS[-1]}"
cat >"$WORK/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx-body;
    proxy_temp_path $WORK/nginx-proxy;
    upstream berth {
        server 127.0.0.1:5111;
        server 127.0.0.1:5113;
        server 127.0.0.1:5114;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:5110;
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_buffering off;
        location / {
            proxy_pass http://berth;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$remote_addr;
        }
    }
}
NGINX
nginx -c "$WORK/nginx.conf" -e stderr &
PIDS+=($!)
sleep 0.5
nginx_pids=$(pgrep -f "nginx: worker process" -P "${PIDS[-1]}" | paste -sd, -)
"$BIN/berth-bench" nodes --url http://127.0.0.1:5110 --target three-nodes-nginx \
  --creds admin:bench-admin-password --pids "$node_pids,${PIDS[-1]}${nginx_pids:+,$nginx_pids}" \
  --seconds "$SECS" >>"$RESULTS"

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault((r["scenario"], r["target"]), []).append(r)
def med(k, s, t):
    v = [r[k] for r in by.get((s, t), []) if r.get(k) is not None]
    return statistics.median(v) if v else float("nan")
print("| scenario | Berth MB/s | reference MB/s | ratio | Berth p99 ms | reference p99 ms | Garage alone MB/s |")
print("|---|---|---|---|---|---|---|")
for s in sorted({k[0] for k in by if k[0].startswith("storage_")}):
    b, r = med("mb_s", s, "berth"), med("mb_s", s, "reference")
    print(f"| {s} | {b:.1f} | {r:.1f} | {b / r:.2f}x | {med('p99_ms', s, 'berth'):.1f} | {med('p99_ms', s, 'reference'):.1f} | {med('mb_s', s, 'garage'):.1f} |")
print()
for s in sorted({k[0] for k in by if k[0].startswith("memory_transfer_")}):
    print(f"{s}: push extra RSS berth {med('push_extra_rss_kb', s, 'berth')} kB, reference {med('push_extra_rss_kb', s, 'reference')} kB; "
          f"get berth {med('get_extra_rss_kb', s, 'berth')} kB, reference {med('get_extra_rss_kb', s, 'reference')} kB")
print()
for t in ["one-node", "three-nodes-nginx"]:
    s = "nodes_manifest_get_token_c32"
    print(f"{t}: {med('rps', s, t):.0f} requests/s, p99 {med('p99_ms', s, t):.2f} ms, "
          f"{med('cpu_us_per_request', s, t):.1f} µs CPU per request ({med('processes', s, t):.0f} processes)")
PY
