#!/usr/bin/env bash
# The whole benchmark comparison: builds Berth in release mode, starts it and
# the reference registry (Debian's docker-registry, Distribution 2.8, with
# filesystem storage, deletes enabled, its blob descriptor cache on and its
# access log off) on this machine and disk, runs the
# same scenarios against both in alternating rounds (A B A B …), measures the
# physical ceilings, and prints a table of medians with the Berth/reference
# ratio. nginx serving the same bytes as static files is the ceiling of the
# read scenarios (HTTP itself on these cores), measured in the same rounds;
# wrk, a lighter client than berth-bench, measures the small reads of Berth
# and nginx once more. The report also goes to docs/benchmarks.md.
#
# Usage: bench/run.sh            (ROUNDS=3 BENCH_SECONDS=5 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
SECS=${BENCH_SECONDS:-5}
WORK=${BENCH_DIR:-$PWD/target/bench-work}
BERTH_PORT=5101
REF_PORT=5102
NGINX_PORT=5103

source bench/lib.sh
if ! command -v docker-registry >/dev/null || ! command -v openssl >/dev/null \
  || ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry openssl nginx wrk >/dev/null
fi

cargo build --release -p berth -p berth-bench
BIN=$PWD/target/release

rm -rf "$WORK"
mkdir -p "$WORK"
RESULTS=$WORK/results.jsonl
: >"$RESULTS"

# The stored images and blobs take about 15 GB by the end; results, logs and
# configurations stay. BENCH_KEEP_DATA=1 keeps everything for a post-mortem.
drop_data() {
  [ -n "${BENCH_KEEP_DATA:-}" ] || find "$WORK" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
}
cleanup() {
  [ -n "${BPID:-}" ] && kill "$BPID" 2>/dev/null || true
  [ -n "${RPID:-}" ] && kill "$RPID" 2>/dev/null || true
  [ -n "${NPID:-}" ] && kill "$NPID" 2>/dev/null || true
  wait 2>/dev/null || true
  drop_data
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
# Configured as Distribution's documentation recommends for speed: the
# in-memory blob descriptor cache on, the access log off.
cat >"$WORK/reference.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/reference
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REF_PORT
YAML
docker-registry serve "$WORK/reference.yml" >"$WORK/reference.log" 2>&1 &
RPID=$!
# nginx with the bytes Berth served (written by `berth-bench run --mirror`):
# manifests, tag list and blobs as static files, keep-alive unlimited.
STATIC=$WORK/static
start_static_nginx "$WORK" "$STATIC" "$NGINX_PORT"
NPID=$STATIC_NGINX_PID
for url in "http://127.0.0.1:$BERTH_PORT/healthz" "http://127.0.0.1:$REF_PORT/v2/"; do
  for _ in $(seq 1 100); do curl -s -o /dev/null "$url" && break; sleep 0.1; done
done

for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round/$ROUNDS: berth"
  "$BIN/berth-bench" run --url "http://127.0.0.1:$BERTH_PORT" --target berth \
    --creds admin:bench-admin-password --token-auth --pid "$BPID" --seconds "$SECS" --round "$round" --disk-probe "$WORK" \
    --mirror "$STATIC" >>"$RESULTS"
  echo "== round $round/$ROUNDS: reference"
  "$BIN/berth-bench" run --url "http://127.0.0.1:$REF_PORT" --target reference \
    --pid "$RPID" --seconds "$SECS" --round "$round" --disk-probe "$WORK" >>"$RESULTS"
  echo "== round $round/$ROUNDS: nginx, static files"
  "$BIN/berth-bench" static-files --url "http://127.0.0.1:$NGINX_PORT" --target nginx \
    --seconds "$SECS" --dir "$STATIC" >>"$RESULTS"
done

# wrk (one thread, 32 connections): requests/s and p99 of the small reads,
# Berth and nginx alternating. wrk waits for a body after a HEAD's
# Content-Length, so HEAD is measured by berth-bench only.
wrk_run() { # target scenario url [wrk options]
  local target=$1 scenario=$2 url=$3
  shift 3
  wrk -t1 -c32 -d"${SECS}s" --latency "$@" "$url" | awk -v t="$target" -v s="$scenario" '
    /Requests\/sec/ { rps = $2 }
    $1 == "99%" { v = $2; ms = v + 0; if (v ~ /us$/) ms /= 1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) ms *= 1000; p99 = ms }
    END { printf "{\"target\":\"%s\",\"scenario\":\"%s\",\"rps\":%s,\"p99_ms\":%s}\n", t, s, rps, p99 }'
}
TOKEN=$(curl -s -u admin:bench-admin-password \
  "http://127.0.0.1:$BERTH_PORT/auth/token?service=berth&scope=repository:bench/app:pull" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
for round in $(seq 1 "$ROUNDS"); do
  echo "== wrk round $round/$ROUNDS"
  for target in berth nginx; do
    port=$BERTH_PORT
    [ "$target" = nginx ] && port=$NGINX_PORT
    base="http://127.0.0.1:$port/v2/bench/app"
    wrk_run "$target" wrk_manifest_get_anon_c32 "$base/manifests/v1" >>"$RESULTS"
    # nginx ignores the header; Berth checks the token on every request.
    wrk_run "$target" wrk_manifest_get_token_c32 "$base/manifests/v1" -H "Authorization: Bearer $TOKEN" >>"$RESULTS"
    wrk_run "$target" wrk_tags_list_c32 "$base/tags/list" >>"$RESULTS"
  done
done

# Issue 36: the same image in a second namespace, signed with cosign's
# format (an ECDSA P-256 key made by openssl) under an enforced signature
# policy; the warm GET there against the GET of bench/app without one.
echo "== berth: manifest GET under an enforced signature policy"
SIG=$WORK/signing
mkdir -p "$SIG"
B=http://127.0.0.1:$BERTH_PORT
AUTH=(-s -f -u admin:bench-admin-password)
openssl ecparam -name prime256v1 -genkey -noout -out "$SIG/key.pem"
openssl ec -in "$SIG/key.pem" -pubout -out "$SIG/key.pub" 2>/dev/null
curl "${AUTH[@]}" -o /dev/null -X POST "$B/api/v1/namespaces" -H 'content-type: application/json' \
  -d '{"name": "signed", "public": true}'
ACCEPT='application/vnd.oci.image.manifest.v1+json'
curl "${AUTH[@]}" -H "accept: $ACCEPT" "$B/v2/bench/app/manifests/v1" -o "$SIG/manifest.json"
for d in $(python3 -c 'import json, sys; m = json.load(open(sys.argv[1])); print(m["config"]["digest"], *[l["digest"] for l in m["layers"]])' "$SIG/manifest.json"); do
  curl "${AUTH[@]}" -o /dev/null -X POST "$B/v2/signed/app/blobs/uploads/?mount=$d&from=bench/app"
done
curl "${AUTH[@]}" -o /dev/null -X PUT -H "content-type: $ACCEPT" --data-binary @"$SIG/manifest.json" "$B/v2/signed/app/manifests/v1"
DIGEST=sha256:$(sha256sum "$SIG/manifest.json" | cut -d' ' -f1)
printf '{"critical":{"identity":{"docker-reference":"127.0.0.1/signed/app"},"image":{"docker-manifest-digest":"%s"},"type":"cosign container image signature"},"optional":null}' \
  "$DIGEST" >"$SIG/payload.json"
SIGNATURE=$(openssl dgst -sha256 -sign "$SIG/key.pem" "$SIG/payload.json" | base64 -w0)
printf '{}' >"$SIG/config.json"
push_blob() { # file → digest
  local d
  d=sha256:$(sha256sum "$1" | cut -d' ' -f1)
  curl "${AUTH[@]}" -o /dev/null -X POST -H 'content-type: application/octet-stream' \
    --data-binary @"$1" "$B/v2/signed/app/blobs/uploads/?digest=$d"
  echo "$d"
}
CONFIG=$(push_blob "$SIG/config.json")
PAYLOAD=$(push_blob "$SIG/payload.json")
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":"%s","size":%s,"annotations":{"dev.cosignproject.cosign/signature":"%s"}}]}' \
  "$ACCEPT" "$CONFIG" "$PAYLOAD" "$(stat -c %s "$SIG/payload.json")" "$SIGNATURE" >"$SIG/signature.json"
curl "${AUTH[@]}" -o /dev/null -X PUT -H "content-type: $ACCEPT" --data-binary @"$SIG/signature.json" \
  "$B/v2/signed/app/manifests/${DIGEST/:/-}.sig"
python3 -c 'import json, sys; print(json.dumps({"mode": "enforce", "keys": [{"name": "bench", "public_key": open(sys.argv[1]).read()}]}))' \
  "$SIG/key.pub" >"$SIG/policy.json"
curl "${AUTH[@]}" -o /dev/null -X PUT -H 'content-type: application/json' --data-binary @"$SIG/policy.json" \
  "$B/api/v1/namespaces/signed/signature-policy"
# Refused unsigned would be 403: the signed pull must be served.
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "accept: $ACCEPT" "$B/v2/signed/app/manifests/v1")" = 200 ]
for round in $(seq 1 "$ROUNDS"); do
  wrk_run berth wrk_manifest_get_policy_off_c32 "$B/v2/bench/app/manifests/v1" >>"$RESULTS"
  wrk_run berth wrk_manifest_get_policy_enforced_c32 "$B/v2/signed/app/manifests/v1" >>"$RESULTS"
done

echo "== berth: a tag list of 100,000 tags through the management API"
"$BIN/berth-bench" tag-list --url "http://127.0.0.1:$BERTH_PORT" --creds admin:bench-admin-password \
  --seconds "$SECS" >>"$RESULTS"

echo "== berth: the image list across namespaces at 100,000 images"
"$BIN/berth-bench" image-list --url "http://127.0.0.1:$BERTH_PORT" --creds admin:bench-admin-password \
  --seconds "$SECS" >>"$RESULTS"

echo "== memory per transfer: blobs of 10 MiB, 100 MiB and 1 GiB, once each"
"$BIN/berth-bench" transfer-memory --url "http://127.0.0.1:$BERTH_PORT" --target berth \
  --creds admin:bench-admin-password --pid "$BPID" >>"$RESULTS"
"$BIN/berth-bench" transfer-memory --url "http://127.0.0.1:$REF_PORT" --target reference \
  --pid "$RPID" >>"$RESULTS"

python3 bench/report.py "$RESULTS" docs/benchmarks.md
