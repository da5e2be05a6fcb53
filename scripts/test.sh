#!/usr/bin/env bash
# Runs every test: formatting, lints, unit and property tests, and the end-to-end tests
# against the real OpenSearch, Jaeger and promtool that scripts/services.sh installs and starts.
#
#   scripts/test.sh            # everything
#   scripts/test.sh --no-e2e   # skip only the services and the end-to-end tests
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

e2e=1
[ "${1:-}" = "--no-e2e" ] && e2e=0

step() { printf '\n== %s\n' "$*" >&2; }

step "build cache"
scripts/prune-cache.sh

step "toolchain"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo --version >&2

if [ "$e2e" = 1 ]; then
  step "services (OpenSearch, Prometheus, Jaeger)"
  scripts/services.sh up
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build the agent and the demo service (the end-to-end tests run these binaries)"
cargo build --locked -p hindsight -p demo-service

if [ "$e2e" = 1 ]; then
  step "cargo test (unit, property, CLI and end-to-end)"
  cargo test --workspace --locked -- --nocapture 2>&1 | tee "$HINDSIGHT_CACHE_DIR/last-test.log"
  status=${PIPESTATUS[0]}
else
  step "cargo test (without end-to-end)"
  cargo test --workspace --locked --exclude hindsight-e2e 2>&1 | tee "$HINDSIGHT_CACHE_DIR/last-test.log"
  status=${PIPESTATUS[0]}
fi

# One closing line with the totals over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "\n%d passed, %d failed, %d skipped\n", p, f, s }' "$HINDSIGHT_CACHE_DIR/last-test.log"
exit "$status"
