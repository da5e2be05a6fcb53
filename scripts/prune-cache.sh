#!/usr/bin/env bash
# Keeps the shared build cache ($CARGO_TARGET_DIR, outside the clone) from filling the disk.
# Every clone path and toolchain leaves its own hashed copies of the test binaries there and
# nothing removes them: it grew to 53 GB, and a full disk once broke the linker mid-build.
#
#   scripts/prune-cache.sh   # scripts/test.sh runs it first
#
# Over HINDSIGHT_CACHE_MAX_GB (default 20): compiled crates and test binaries not written
# for 7 days and the incremental caches go first (cargo rebuilds what it still needs); if
# that is not enough,
# `cargo clean` (the next build starts cold, a few minutes more).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

max_gb="${HINDSIGHT_CACHE_MAX_GB:-20}"
target="$CARGO_TARGET_DIR"
[ -d "$target" ] || exit 0

size_gb() { if [ -d "$target" ]; then du -s --block-size=1G "$target" | cut -f1; else echo 0; fi; }

size=$(size_gb)
if [ "$size" -le "$max_gb" ]; then
  echo "build cache: ${size} GB in $target (limit ${max_gb} GB)" >&2
  exit 0
fi
echo "build cache: ${size} GB in $target, over ${max_gb} GB: pruning" >&2
for profile in "$target"/debug "$target"/release; do
  [ -d "$profile" ] || continue
  rm -rf "$profile/incremental"
  # An output cargo finds missing is rebuilt (its fingerprint checks the files exist).
  find "$profile/deps" -mindepth 1 -maxdepth 1 -mtime +7 -exec rm -rf {} + 2>/dev/null || true
done
size=$(size_gb)
if [ "$size" -gt "$max_gb" ]; then
  echo "build cache: still ${size} GB: cargo clean" >&2
  cargo clean
  size=$(size_gb)
fi
echo "build cache: ${size} GB in $target" >&2
