#!/usr/bin/env bash
# S3 and several nodes (issue 20), on this machine:
# 1. Berth (PostgreSQL + S3) against the reference registry (Debian's
#    docker-registry, Distribution 2.8, with its S3 driver), both on the same
#    Garage bucket under different prefixes, each twice: streaming blobs
#    itself (targets `berth`, `reference`) and answering blob GETs with a
#    redirect to a presigned URL (`berth-redirect`, `reference-redirect`;
#    the default of both). In alternating rounds: push and pull of fresh
#    100 MiB images (one client) and 1 MB images (four clients).
# 2. Real clients (docker, skopeo) pulling one 100 MiB image from each of
#    the four, timed from start to finish.
# 3. The extra resident memory of one upload of 10 MiB, 100 MiB and 1 GiB.
# 4. Manifest GET by tag (c=32, bearer token) on one node, then through
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
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  # The real-client part's images and logins, if it stopped midway.
  if command -v docker >/dev/null; then
    docker image ls -q --filter "reference=*berth-bench-pull:$run_id" --filter "reference=*/bench/pull:$run_id" |
      sort -u | xargs -r docker rmi -f >/dev/null 2>&1 || true
    docker logout 127.0.0.1:5111 >/dev/null 2>&1 || true
    docker logout 127.0.0.1:5115 >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

db="bench_s3_$run_id"
psql "$BERTH_TEST_POSTGRES_URL" -qc "CREATE DATABASE $db" >/dev/null
db_url="${BERTH_TEST_POSTGRES_URL/\/postgres\?//$db?}"

berth_node() { # port prefix redirect
  env -i PATH="$PATH" BERTH_LISTEN="127.0.0.1:$1" BERTH_DATA_DIR="$WORK/node-$1" BERTH_S3_REDIRECT="$3" \
    BERTH_DATABASE_URL="$db_url" BERTH_ADMIN_PASSWORD=bench-admin-password BERTH_LOG=warn \
    BERTH_TRUSTED_PROXIES=127.0.0.1/32 BERTH_STORAGE_KIND=s3 \
    BERTH_S3_ENDPOINT="$BERTH_TEST_S3_ENDPOINT" BERTH_S3_BUCKET="$BERTH_TEST_S3_BUCKET" \
    BERTH_S3_REGION="$BERTH_TEST_S3_REGION" BERTH_S3_ACCESS_KEY_ID="$BERTH_TEST_S3_ACCESS_KEY_ID" \
    BERTH_S3_SECRET_ACCESS_KEY="$BERTH_TEST_S3_SECRET_ACCESS_KEY" BERTH_S3_PREFIX="$2" \
    "$BIN/berth" serve >>"$WORK/berth-$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$1/readyz" && break; sleep 0.1; done
}

echo "== Berth on :5111 (streaming) and :5115 (redirects), the reference on :5112 and :5116, all on Garage"
berth_node 5111 "bench-$run_id/berth" false
BPID=${PIDS[-1]}
berth_node 5115 "bench-$run_id/berth" true
BRPID=${PIDS[-1]}
env -i PATH="$PATH" BERTH_DATA_DIR="$WORK/node-5111" BERTH_DATABASE_URL="$db_url" \
  "$BIN/berth" admin namespace create bench --group admin --public >/dev/null
reference_config() { # port rootdirectory redirect-disabled
  # As Distribution's documentation recommends for speed: the in-memory
  # blob descriptor cache on, the access log off.
  cat <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  s3:
    accesskey: $BERTH_TEST_S3_ACCESS_KEY_ID
    secretkey: $BERTH_TEST_S3_SECRET_ACCESS_KEY
    region: $BERTH_TEST_S3_REGION
    regionendpoint: $BERTH_TEST_S3_ENDPOINT
    bucket: $BERTH_TEST_S3_BUCKET
    rootdirectory: $2
    secure: false
    v4auth: true
    chunksize: 8388608
  delete:
    enabled: true
  redirect:
    disable: $3
http:
  addr: 127.0.0.1:$1
YAML
}
reference_node() { # port rootdirectory redirect-disabled
  reference_config "$@" >"$WORK/reference-$1.yml"
  # AWS_CA_BUNDLE (set on some machines) makes the AWS SDK of Distribution
  # 2.8 refuse its own HTTP transport.
  env -u AWS_CA_BUNDLE docker-registry serve "$WORK/reference-$1.yml" >"$WORK/reference-$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$1/v2/" && break; sleep 0.1; done
}
reference_node 5112 "/bench-$run_id/reference" true
RPID=${PIDS[-1]}
reference_node 5116 "/bench-$run_id/reference-redirect" false
RRPID=${PIDS[-1]}

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
  echo "== round $round/$ROUNDS: berth-redirect"
  "$BIN/berth-bench" storage --url http://127.0.0.1:5115 --target berth-redirect \
    --creds admin:bench-admin-password --pid "$BRPID" --seconds "$SECS" --round "$round" >>"$RESULTS"
  echo "== round $round/$ROUNDS: reference-redirect"
  "$BIN/berth-bench" storage --url http://127.0.0.1:5116 --target reference-redirect \
    --pid "$RRPID" --seconds "$SECS" --round "$round" >>"$RESULTS"
done

echo "== real clients: docker and skopeo pull one 100 MiB image from each"
# One layer of random bytes (it does not compress), built FROM scratch;
# pushed once to each registry, then every local copy removed so that each
# docker pull downloads the layer again.
mkdir -p "$WORK/image"
head -c 104857600 /dev/urandom >"$WORK/image/blob"
printf 'FROM scratch\nCOPY blob /blob\n' >"$WORK/image/Dockerfile"
docker build -q -t "berth-bench-pull:$run_id" "$WORK/image" >/dev/null
rm -rf "$WORK/image"
docker login -u admin --password-stdin 127.0.0.1:5111 <<<"bench-admin-password" >/dev/null
docker login -u admin --password-stdin 127.0.0.1:5115 <<<"bench-admin-password" >/dev/null
clients=(berth:5111 reference:5112 berth-redirect:5115 reference-redirect:5116)
for c in "${clients[@]}"; do
  ref="127.0.0.1:${c#*:}/bench/pull:$run_id"
  docker tag "berth-bench-pull:$run_id" "$ref"
  docker push -q "$ref" >/dev/null
  docker rmi -f "$ref" >/dev/null
done
docker rmi -f "berth-bench-pull:$run_id" >/dev/null
timed() { # target scenario command...
  local t=$1 scenario=$2 start end
  shift 2
  start=$(date +%s.%N)
  "$@" >/dev/null
  end=$(date +%s.%N)
  echo "{\"target\":\"$t\",\"scenario\":\"$scenario\",\"seconds\":$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')}" >>"$RESULTS"
}
for round in $(seq 1 "$ROUNDS"); do
  for c in "${clients[@]}"; do
    ref="127.0.0.1:${c#*:}/bench/pull:$run_id"
    timed "${c%%:*}" client_pull_100mib_docker docker pull -q "$ref"
    docker rmi -f "$ref" >/dev/null
    rm -rf "$WORK/pulled"
    timed "${c%%:*}" client_pull_100mib_skopeo skopeo copy -q --src-tls-verify=false "docker://$ref" "dir:$WORK/pulled"
  done
done
rm -rf "$WORK/pulled"
docker logout 127.0.0.1:5111 >/dev/null
docker logout 127.0.0.1:5115 >/dev/null
echo "== memory per upload and download (10 MiB, 100 MiB, 1 GiB)"
"$BIN/berth-bench" transfer-memory --url http://127.0.0.1:5111 --target berth \
  --creds admin:bench-admin-password --pid "$BPID" >>"$RESULTS"
"$BIN/berth-bench" transfer-memory --url http://127.0.0.1:5112 --target reference \
  --pid "$RPID" >>"$RESULTS"
kill "$RPID" "$RRPID" "$BRPID"

echo "== one node, then three behind nginx"
"$BIN/berth-bench" nodes --url http://127.0.0.1:5111 --target one-node \
  --creds admin:bench-admin-password --pids "$BPID" --seconds "$SECS" >>"$RESULTS"
berth_node 5113 "bench-$run_id/berth" false
berth_node 5114 "bench-$run_id/berth" false
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
print("| scenario | blobs served | Berth MB/s | reference MB/s | ratio | Berth p99 ms | reference p99 ms | Garage alone MB/s |")
print("|---|---|---|---|---|---|---|---|")
for s in sorted({k[0] for k in by if k[0].startswith("storage_")}):
    for mode, suffix in [("streamed", ""), ("redirect", "-redirect")]:
        b, r = med("mb_s", s, "berth" + suffix), med("mb_s", s, "reference" + suffix)
        print(f"| {s} | {mode} | {b:.1f} | {r:.1f} | {b / r:.2f}x | {med('p99_ms', s, 'berth' + suffix):.1f} | "
              f"{med('p99_ms', s, 'reference' + suffix):.1f} | {med('mb_s', s, 'garage'):.1f} |")
print()
print("| real client, 100 MiB image | blobs served | Berth s | reference s | reference / Berth |")
print("|---|---|---|---|---|")
for s in sorted({k[0] for k in by if k[0].startswith("client_pull_")}):
    for mode, suffix in [("streamed", ""), ("redirect", "-redirect")]:
        b, r = med("seconds", s, "berth" + suffix), med("seconds", s, "reference" + suffix)
        print(f"| {s.rsplit('_', 1)[1]} | {mode} | {b:.2f} | {r:.2f} | {r / b:.2f}x |")
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
