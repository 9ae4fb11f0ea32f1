#!/usr/bin/env bash
# Inventories and vulnerability matching at scale (issue 37): Berth with the
# embedded default (or PostgreSQL with BENCH_DB=postgres, from
# scripts/test-env.sh), IMAGES images sharing BASES Debian base layers of
# this machine's dpkg stanzas, each with its own npm application layer.
# Measures how fast pushed images are inventoried, how long an import of a
# batch of advisories takes until every affected image is known (the
# import answers after its re-match; the figure is checked against the
# findings the scenario expects), and how soon a new push is matched.
# Results go to target/bench-vuln/results.jsonl and stdout.
#
# Usage: bench/vulnerabilities.sh      (IMAGES=100000 BASES=4 ADVISORIES=50)
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${IMAGES:-100000}
BASES=${BASES:-4}
ADVISORIES=${ADVISORIES:-50}
WORK=${BENCH_DIR:-$PWD/target/bench-vuln}
PORT=5121

cargo build --release -p berth -p berth-bench
BIN=$PWD/target/release
rm -rf "$WORK"
mkdir -p "$WORK"
RESULTS=$WORK/results.jsonl
: >"$RESULTS"

# No tag limit: 100,000 images over 100 repositories.
export BERTH_DATA_DIR=$WORK/berth BERTH_ADMIN_PASSWORD=bench-admin-password BERTH_LOG=warn BERTH_TAGS_PER_REPOSITORY=0
if [ "${BENCH_DB:-sqlite}" = postgres ]; then
  # shellcheck source=scripts/test-env.sh
  source scripts/test-env.sh >/dev/null
  set +e
  db="bench_vuln_$(date +%s)"
  psql "$BERTH_TEST_POSTGRES_URL" -qc "CREATE DATABASE $db" >/dev/null
  export BERTH_DATABASE_URL="${BERTH_TEST_POSTGRES_URL/\/postgres\?//$db?}"
  set -e
fi
"$BIN/berth" admin namespace create bench --group admin >/dev/null
BERTH_LISTEN=127.0.0.1:$PORT "$BIN/berth" serve >"$WORK/berth.log" 2>&1 &
BPID=$!
trap 'kill $BPID 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/readyz" && break; sleep 0.1; done

"$BIN/berth-bench" vulnerabilities --url "http://127.0.0.1:$PORT" --target "berth-${BENCH_DB:-sqlite}" \
  --creds admin:bench-admin-password --pid "$BPID" \
  --images "$IMAGES" --bases "$BASES" --advisories "$ADVISORIES" | tee -a "$RESULTS"
echo "data: $(du -sh "$WORK/berth" | cut -f1)"
