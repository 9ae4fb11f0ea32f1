#!/usr/bin/env bash
# Prepares what the test suite needs on a Debian machine and exports the
# variables the tests read. Sourced by scripts/test.sh; safe to run again.
#
# - installs missing Debian packages (PostgreSQL, docker engine, podman,
#   skopeo, buildah, containerd, nginx, Chromium and ChromeDriver, the
#   reference registry, htpasswd, OpenLDAP's slapd and tools, Node.js and
#   npm, rpm, a Java archive) with apt;
# - starts a private PostgreSQL cluster on a Unix socket under $BERTH_TEST_DIR;
# - starts dockerd (vfs storage, no iptables, no bridge) when none answers;
# - starts Garage (S3; built once with `cargo install garage` and cached under
#   ~/.cache/berth-test) and moto (S3 that enforces AWS's part sizes);
# - installs oidc-provider from npm (BERTH_TEST_OIDC_MODULES);
# - installs @sigstore/sign and @sigstore/mock from npm (BERTH_TEST_SIGSTORE_MODULES);
# - installs cyclonedx-py and requests from PyPI (BERTH_TEST_SBOMGEN_DIR);
# - builds a Rust program with cargo-auditable (BERTH_TEST_AUDITABLE_BIN);
# - builds the previous release's berth once (BERTH_TEST_PREVIOUS_BIN);
# - exports BERTH_TEST_POSTGRES_URL, BERTH_TEST_CTR_ADDRESS and BERTH_TEST_S3_*.
set -euo pipefail

BERTH_TEST_DIR=${BERTH_TEST_DIR:-/tmp/berth-test-env}
mkdir -p "$BERTH_TEST_DIR"
export BERTH_TEST_DIR
# The services are up: suites that skip a backend whose service is missing
# (as a plain `cargo test` does) fail instead.
export BERTH_TEST_SERVICES=1

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
command -v nginx >/dev/null || need_pkgs+=(nginx)
command -v chromium >/dev/null || need_pkgs+=(chromium)
command -v chromedriver >/dev/null || need_pkgs+=(chromium-driver)
command -v docker-registry >/dev/null || need_pkgs+=(docker-registry)
command -v htpasswd >/dev/null || need_pkgs+=(apache2-utils)
[ -x /usr/sbin/slapd ] || need_pkgs+=(slapd)
command -v ldapmodify >/dev/null || need_pkgs+=(ldap-utils)
command -v node >/dev/null || need_pkgs+=(nodejs)
command -v npm >/dev/null || need_pkgs+=(npm)
# Debian's pip: real Python package metadata for the inventory tests.
compgen -G '/usr/lib/python3/dist-packages/pip-*.dist-info' >/dev/null || need_pkgs+=(python3-pip)
dpkg -s python3-venv >/dev/null 2>&1 || need_pkgs+=(python3-venv)
# RPM's own tools make a real rpmdb.sqlite, and Debian's jackson-core is a
# real Maven-built Java archive, for the inventory tests.
command -v rpmbuild >/dev/null || need_pkgs+=(rpm)
command -v gpg >/dev/null || need_pkgs+=(gpg)
[ -f /usr/share/java/jackson-core.jar ] || need_pkgs+=(libjackson2-core-java)
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

# The SPDX and CycloneDX projects' own validators (PyPI), which the SBOM
# test runs on the documents Berth serves.
spdx_version=0.8.5
cdx_version=11.12.0
export BERTH_TEST_SBOM_PYTHON="$BERTH_TEST_DIR/sbom-venv/bin/python3"
if [ "$("$BERTH_TEST_DIR/sbom-venv/bin/pip" show spdx-tools 2>/dev/null | sed -n 's/^Version: //p')" != "$spdx_version" ] ||
   [ "$("$BERTH_TEST_DIR/sbom-venv/bin/pip" show cyclonedx-python-lib 2>/dev/null | sed -n 's/^Version: //p')" != "$cdx_version" ]; then
  echo "test-env: installing spdx-tools $spdx_version and cyclonedx-python-lib $cdx_version"
  python3 -m venv "$BERTH_TEST_DIR/sbom-venv"
  "$BERTH_TEST_DIR/sbom-venv/bin/pip" install -q "spdx-tools==$spdx_version" \
    "cyclonedx-python-lib[json-validation]==$cdx_version"
fi

# The previous release's binary, for the upgrade tests (a database it wrote
# is served by this build; its nodes and this build's serve side by side):
# the commit scripts/previous-release names, built once per machine (about
# six minutes here) and cached under ~/.cache/berth-test.
berth_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prev_commit=$(tr -d '[:space:]' <"$berth_repo/scripts/previous-release")
prev_dir=${BERTH_PREVIOUS_ROOT:-$HOME/.cache/berth-test/previous}/$prev_commit
export BERTH_TEST_PREVIOUS_BIN="$prev_dir/berth"
export BERTH_TEST_PREVIOUS_COMMIT="$prev_commit"
if [ ! -x "$BERTH_TEST_PREVIOUS_BIN" ]; then
  echo "test-env: building the previous release ${prev_commit:0:10} (about six minutes, once per machine)"
  if ! git -C "$berth_repo" cat-file -e "$prev_commit^{commit}" 2>/dev/null; then
    echo "test-env: commit $prev_commit (scripts/previous-release) is not in this clone; fetch the full history (git fetch --unshallow)" >&2
    exit 1
  fi
  rm -rf "$prev_dir.build" && mkdir -p "$prev_dir.build/src"
  git -C "$berth_repo" archive "$prev_commit" | tar -x -C "$prev_dir.build/src"
  (cd "$prev_dir.build/src" && CARGO_TARGET_DIR="$prev_dir.build/target" cargo build -q -p berth --bin berth) \
    >"$BERTH_TEST_DIR/previous-build.log" 2>&1 || { tail -n 30 "$BERTH_TEST_DIR/previous-build.log"; exit 1; }
  mkdir -p "$prev_dir"
  cp "$prev_dir.build/target/debug/berth" "$BERTH_TEST_PREVIOUS_BIN.tmp"
  mv "$BERTH_TEST_PREVIOUS_BIN.tmp" "$BERTH_TEST_PREVIOUS_BIN"
  rm -rf "$prev_dir.build"
fi

# The CycloneDX project's cyclonedx-py (PyPI), which makes the SBOM a
# pipeline attaches in the attached-SBOM test, over a Python environment
# holding requests 2.30.0 from PyPI (which a real advisory affects).
cdxpy_version=7.5.0
export BERTH_TEST_SBOMGEN_DIR="$BERTH_TEST_DIR/sbomgen-venv"
if [ "$("$BERTH_TEST_SBOMGEN_DIR/bin/pip" show cyclonedx-bom 2>/dev/null | sed -n 's/^Version: //p')" != "$cdxpy_version" ] ||
   [ "$("$BERTH_TEST_SBOMGEN_DIR/bin/pip" show requests 2>/dev/null | sed -n 's/^Version: //p')" != 2.30.0 ]; then
  echo "test-env: installing cyclonedx-bom $cdxpy_version and requests 2.30.0"
  python3 -m venv "$BERTH_TEST_SBOMGEN_DIR"
  "$BERTH_TEST_SBOMGEN_DIR/bin/pip" install -q "cyclonedx-bom==$cdxpy_version" "requests==2.30.0"
fi

# A Rust program built with cargo-auditable (crates.io), which embeds its
# dependency list, for the docker inventory test: cargo-auditable is
# installed once, the program (depending on itoa from crates.io) built
# once under $BERTH_TEST_DIR.
export BERTH_TEST_AUDITABLE_BIN="$BERTH_TEST_DIR/auditable/target/release/berth-auditable-hello"
if [ ! -x "$BERTH_TEST_AUDITABLE_BIN" ]; then
  if ! cargo auditable --version >/dev/null 2>&1; then
    echo "test-env: installing cargo-auditable"
    cargo install --locked -q cargo-auditable
  fi
  mkdir -p "$BERTH_TEST_DIR/auditable/src"
  cat >"$BERTH_TEST_DIR/auditable/Cargo.toml" <<'TOML'
[package]
name = "berth-auditable-hello"
version = "0.1.0"
edition = "2021"

[dependencies]
itoa = "=1.0.11"
TOML
  echo 'fn main() { println!("{}", itoa::Buffer::new().format(42)); }' >"$BERTH_TEST_DIR/auditable/src/main.rs"
  (cd "$BERTH_TEST_DIR/auditable" && cargo auditable build --release -q)
fi

# oidc-provider (npm), a certified OpenID provider the sign-in tests run.
oidc_version=8.8.1
export BERTH_TEST_OIDC_MODULES="$BERTH_TEST_DIR/oidc/node_modules"
if [ "$(node -p "require('$BERTH_TEST_OIDC_MODULES/oidc-provider/package.json').version" 2>/dev/null)" != "$oidc_version" ]; then
  echo "test-env: installing oidc-provider $oidc_version"
  mkdir -p "$BERTH_TEST_DIR/oidc"
  npm install -s --no-audit --no-fund --prefix "$BERTH_TEST_DIR/oidc" "oidc-provider@$oidc_version" >/dev/null
fi

# The sigstore project's signing tooling (npm): @sigstore/sign with
# @sigstore/mock's Fulcio and Rekor make real keyless bundles in the tests.
sigstore_sign_version=5.1.0
sigstore_mock_version=0.13.0
export BERTH_TEST_SIGSTORE_MODULES="$BERTH_TEST_DIR/sigstore/node_modules"
if [ "$(node -p "require('$BERTH_TEST_SIGSTORE_MODULES/@sigstore/mock/package.json').version" 2>/dev/null)" != "$sigstore_mock_version" ] \
  || [ "$(node -p "require('$BERTH_TEST_SIGSTORE_MODULES/@sigstore/sign/package.json').version" 2>/dev/null)" != "$sigstore_sign_version" ]; then
  echo "test-env: installing @sigstore/sign $sigstore_sign_version and @sigstore/mock $sigstore_mock_version"
  mkdir -p "$BERTH_TEST_DIR/sigstore"
  npm install -s --no-audit --no-fund --prefix "$BERTH_TEST_DIR/sigstore" \
    "@sigstore/sign@$sigstore_sign_version" "@sigstore/mock@$sigstore_mock_version" >/dev/null
fi

# Garage, a real S3 service: one node, one bucket, one key, on loopback.
garage_version=2.5.0
garage_root=${BERTH_GARAGE_ROOT:-$HOME/.cache/berth-test/garage}
garage_bin="$garage_root/bin/garage"
if ! "$garage_bin" --version 2>/dev/null | grep -q "$garage_version"; then
  echo "test-env: building Garage $garage_version (about 13 minutes, once per machine)"
  cargo install garage --locked --version "$garage_version" --root "$garage_root" >"$BERTH_TEST_DIR/garage-install.log" 2>&1 \
    || { tail -n 30 "$BERTH_TEST_DIR/garage-install.log"; exit 1; }
fi
garage_dir="$BERTH_TEST_DIR/garage"
garage_conf="$garage_dir/garage.toml"
export BERTH_TEST_S3_ENDPOINT=http://127.0.0.1:39900
export BERTH_TEST_S3_REGION=garage
export BERTH_TEST_S3_BUCKET=berth-test
export BERTH_TEST_S3_ACCESS_KEY_ID=GK0123456789abcdef01234567
export BERTH_TEST_S3_SECRET_ACCESS_KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
if [ ! -f "$garage_conf" ]; then
  mkdir -p "$garage_dir"
  cat >"$garage_conf" <<EOF2
metadata_dir = "$garage_dir/meta"
data_dir = "$garage_dir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:39901"
rpc_public_addr = "127.0.0.1:39901"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:39900"
root_domain = ".s3.garage.localhost"
EOF2
fi
garage() { "$garage_bin" -c "$garage_conf" "$@"; }
if ! curl -s -o /dev/null "$BERTH_TEST_S3_ENDPOINT"; then
  nohup "$garage_bin" -c "$garage_conf" server >"$garage_dir/log" 2>&1 &
  for _ in $(seq 1 60); do
    curl -s -o /dev/null "$BERTH_TEST_S3_ENDPOINT" && garage status >/dev/null 2>&1 && break
    sleep 0.5
  done
fi
if ! garage bucket info "$BERTH_TEST_S3_BUCKET" >/dev/null 2>&1; then
  node_id=$(garage node id -q | cut -d@ -f1)
  garage layout assign -z dc1 -c 1G "$node_id" >/dev/null
  garage layout apply --version 1 >/dev/null
  garage key import --yes -n berth-test "$BERTH_TEST_S3_ACCESS_KEY_ID" "$BERTH_TEST_S3_SECRET_ACCESS_KEY" >/dev/null
  garage bucket create "$BERTH_TEST_S3_BUCKET" >/dev/null
  garage bucket allow --read --write --owner "$BERTH_TEST_S3_BUCKET" --key berth-test >/dev/null
fi
unset -f garage

# moto (PyPI) refuses parts under 5 MiB as AWS does, which Garage accepts.
moto_version=5.2.5
export BERTH_TEST_MOTO_ENDPOINT=http://127.0.0.1:39905
# (Read whole, not with grep -q: under pipefail pip's broken pipe would fail the test.)
if [ "$("$BERTH_TEST_DIR/moto-venv/bin/pip" show moto 2>/dev/null | sed -n 's/^Version: //p')" != "$moto_version" ]; then
  echo "test-env: installing moto $moto_version"
  python3 -m venv "$BERTH_TEST_DIR/moto-venv"
  "$BERTH_TEST_DIR/moto-venv/bin/pip" install -q "moto[server]==$moto_version"
fi
if ! curl -s -o /dev/null "$BERTH_TEST_MOTO_ENDPOINT"; then
  nohup "$BERTH_TEST_DIR/moto-venv/bin/moto_server" -H 127.0.0.1 -p 39905 >"$BERTH_TEST_DIR/moto.log" 2>&1 &
  for _ in $(seq 1 60); do
    curl -s -o /dev/null "$BERTH_TEST_MOTO_ENDPOINT" && break
    sleep 0.5
  done
  curl -s -X PUT "$BERTH_TEST_MOTO_ENDPOINT/$BERTH_TEST_S3_BUCKET" >/dev/null
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
echo "test-env: garage at $BERTH_TEST_S3_ENDPOINT, moto at $BERTH_TEST_MOTO_ENDPOINT"
echo "test-env: postgres at $pg_sock, docker $(docker version --format '{{.Server.Version}}'), ctr at ${BERTH_TEST_CTR_ADDRESS:-none}"
