#!/usr/bin/env bash
# The whole test suite: unit, integration (SQLite and PostgreSQL), real-client
# end-to-end and crash-safety tests, then the fuzz targets (scripts/fuzz.sh). On a fresh Debian machine with Rust it
# installs the system packages it needs first (see scripts/test-env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/test-env.sh
source scripts/test-env.sh

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "test: installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

# Databases and bucket objects of earlier runs.
./scripts/test-clean.sh

cargo build --workspace --all-targets --features berth/integration
cargo nextest run --workspace --features berth/integration --no-fail-fast "$@"

# The whole suite (no filter given) also fuzzes every parser of client input
# for a bounded time (BERTH_FUZZ_SECS per target, default 30; 0 skips).
fuzz_secs=${BERTH_FUZZ_SECS:-30}
if [ $# -eq 0 ] && [ "$fuzz_secs" != 0 ]; then
  ./scripts/fuzz.sh "$fuzz_secs"
fi
