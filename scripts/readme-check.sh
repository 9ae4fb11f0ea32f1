#!/usr/bin/env bash
# Runs the README's quick start exactly as written: the code blocks that
# follow a `<!-- readme-check: NAME -->` marker are read from README.md and
# run verbatim. `serve` is started in the background (in the checkout, as a
# new user would), `client` runs against it with the admin password read
# from the server's log, and the server is stopped with SIGTERM at the end.
# Called by .ci/run; needs the docker engine (scripts/test-env.sh starts one).
set -euo pipefail
cd "$(dirname "$0")/.."

# The lines of the code block that follows the marker for $1.
block() {
  awk -v want="<!-- readme-check: $1 -->" '
    $0 == want { found = 1; next }
    found == 1 && /^```/ { found = 2; next }
    found == 2 && /^```/ { exit }
    found == 2 { print }
  ' README.md
}

serve=$(block serve)
client=$(block client)
[ -n "$serve" ] || { echo "readme-check: no serve block in README.md"; exit 1; }
[ -n "$client" ] || { echo "readme-check: no client block in README.md"; exit 1; }

# shellcheck source=scripts/test-env.sh
source scripts/test-env.sh >/dev/null

work=$(mktemp -d)
log="$work/serve.log"
# A developer's own ./berth-data is set aside and put back afterwards: the
# quick start is a first start.
backup=""
if [ -e berth-data ]; then
  backup="berth-data.readme-check.$$"
  mv berth-data "$backup"
fi
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    sleep 2
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -rf berth-data
  [ -z "$backup" ] || mv "$backup" berth-data
  docker image rm -f localhost:5000/demo/alpine:latest >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "readme-check: running the quick start: $serve"
# Its own process group, so that cargo and berth stop together.
setsid bash -c "$serve" >"$log" 2>&1 &
pid=$!

# A fresh clone builds the release binary first: allow for it.
status=""
for _ in $(seq 1 1800); do
  status=$(curl -s -o /dev/null -w '%{http_code}' http://localhost:5000/v2/ || true)
  [ "$status" = 401 ] && break
  kill -0 "$pid" 2>/dev/null || { echo "readme-check: the quick start command exited"; tail -n 40 "$log"; exit 1; }
  sleep 1
done
[ "$status" = 401 ] || { echo "readme-check: /v2/ never answered (last status '$status')"; tail -n 40 "$log"; exit 1; }
echo "readme-check: /v2/ answers 401 with a token challenge, as it should without credentials"

password=$(sed -n "s/.*generated password \([^ ]*\) (shown only this once.*/\1/p" "$log" | head -n 1)
[ -n "$password" ] || { echo "readme-check: the log does not show the generated admin password"; tail -n 40 "$log"; exit 1; }
echo "readme-check: the first start logged the admin password"

# The quick start tags an `alpine` image; this machine cannot download one,
# so make a small one locally when there is none.
if ! docker image inspect alpine >/dev/null 2>&1; then
  mkdir -p "$work/rootfs/etc"
  echo "readme-check" >"$work/rootfs/etc/hello"
  tar -C "$work/rootfs" -cf - . | docker import - alpine:latest >/dev/null
fi

echo "readme-check: running the docker commands"
printf '%s\n' "$client" >"$work/client.sh"
# `docker login -u admin` asks for the password on a terminal: give it one.
export DOCKER_CONFIG="$work/docker-config"
# (The terminal echoes what it is given: keep the password out of the log.)
printf '%s\n' "$password" | script -qefc "bash -euo pipefail $work/client.sh" /dev/null \
  | sed -u "s/$password/[password]/g"
grep -q '"localhost:5000"' "$DOCKER_CONFIG/config.json" || { echo "readme-check: docker login stored no credentials"; exit 1; }

echo "readme-check: stopping Berth"
kill -TERM -- "-$pid"
for _ in $(seq 1 30); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 1
done
if kill -0 "$pid" 2>/dev/null; then
  echo "readme-check: Berth did not stop within 30 s of SIGTERM"
  exit 1
fi
wait "$pid" || true
grep -q "shut down cleanly" "$log" || { echo "readme-check: no clean shutdown in the log"; tail -n 20 "$log"; exit 1; }
pid=""
echo "readme-check: the quick start works as written"
