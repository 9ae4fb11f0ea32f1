#!/usr/bin/env bash
# The whole test suite: unit, integration (SQLite and PostgreSQL), real-client
# end-to-end and crash-safety tests. On a fresh Debian machine with Rust it
# installs the system packages it needs first (see scripts/test-env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/test-env.sh
source scripts/test-env.sh

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "test: installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

cargo build --workspace --all-targets
cargo nextest run --workspace --no-fail-fast "$@"
