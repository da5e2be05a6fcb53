# Sourced by the scripts: where caches live (outside the clone, so CI reuses them).
export HINDSIGHT_CACHE_DIR="${HINDSIGHT_CACHE_DIR:-$HOME/.cache/hindsight}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HINDSIGHT_CACHE_DIR/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
mkdir -p "$HINDSIGHT_CACHE_DIR"
