#!/usr/bin/env bash
# Prepares what the test suite needs on a Debian machine and exports the
# variables the tests read. Sourced by scripts/test.sh; safe to run again.
#
# - installs missing Debian packages (PostgreSQL, docker engine, podman,
#   skopeo, buildah, containerd, Chromium and ChromeDriver) with apt;
# - starts a private PostgreSQL cluster on a Unix socket under $BERTH_TEST_DIR;
# - starts dockerd (vfs storage, no iptables, no bridge) when none answers;
# - exports BERTH_TEST_POSTGRES_URL and BERTH_TEST_CTR_ADDRESS.
set -euo pipefail

BERTH_TEST_DIR=${BERTH_TEST_DIR:-/tmp/berth-test-env}
mkdir -p "$BERTH_TEST_DIR"
export BERTH_TEST_DIR

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

need_pkgs=()
command -v dockerd >/dev/null || need_pkgs+=(docker.io)
command -v containerd >/dev/null || need_pkgs+=(containerd)
command -v podman >/dev/null || need_pkgs+=(podman)
command -v skopeo >/dev/null || need_pkgs+=(skopeo)
command -v buildah >/dev/null || need_pkgs+=(buildah)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_pkgs+=(postgresql)
command -v curl >/dev/null || need_pkgs+=(curl)
command -v chromium >/dev/null || need_pkgs+=(chromium)
command -v chromedriver >/dev/null || need_pkgs+=(chromium-driver)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "test-env: installing ${need_pkgs[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# PostgreSQL: a throwaway cluster owned by the postgres user, socket only.
pg_bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
pg_dir="$BERTH_TEST_DIR/pg"
pg_sock="$BERTH_TEST_DIR/pgsock"
mkdir -p "$pg_sock"
chmod 777 "$pg_sock"
if [ ! -f "$pg_dir/PG_VERSION" ]; then
  mkdir -p "$pg_dir"
  as_root chown postgres "$pg_dir"
  as_root su postgres -s /bin/sh -c "$pg_bin/initdb -D '$pg_dir' -A trust -U postgres >/dev/null"
fi
if ! as_root su postgres -s /bin/sh -c "$pg_bin/pg_ctl -D '$pg_dir' status" >/dev/null 2>&1; then
  as_root su postgres -s /bin/sh -c "$pg_bin/pg_ctl -D '$pg_dir' -l '$pg_dir/log' -w \
    -o \"-k $pg_sock -c listen_addresses='' -c max_connections=400 -c fsync=off -c synchronous_commit=off\" start" >/dev/null
fi
export BERTH_TEST_POSTGRES_URL="postgres://postgres@localhost/postgres?host=$pg_sock"

# schemathesis (PyPI) in a virtual environment, for the API fuzz test.
st_version=4.32.5
if ! "$BERTH_TEST_DIR/st-venv/bin/schemathesis" --version 2>/dev/null | grep -q "$st_version"; then
  echo "test-env: installing schemathesis $st_version"
  python3 -m venv "$BERTH_TEST_DIR/st-venv"
  "$BERTH_TEST_DIR/st-venv/bin/pip" install -q "schemathesis==$st_version"
fi

# Docker engine with its own containerd (used by `ctr` too).
if ! docker info >/dev/null 2>&1; then
  as_root sh -c "nohup dockerd --storage-driver=vfs --iptables=false --bridge=none \
    --data-root '$BERTH_TEST_DIR/docker' >'$BERTH_TEST_DIR/dockerd.log' 2>&1 &"
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "test-env: dockerd did not start"; tail -n 30 "$BERTH_TEST_DIR/dockerd.log"; exit 1; }
fi
for sock in /run/containerd/containerd.sock /var/run/docker/containerd/containerd.sock; do
  if [ -S "$sock" ]; then export BERTH_TEST_CTR_ADDRESS="$sock"; break; fi
done
echo "test-env: postgres at $pg_sock, docker $(docker version --format '{{.Server.Version}}'), ctr at ${BERTH_TEST_CTR_ADDRESS:-none}"
