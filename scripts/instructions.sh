#!/usr/bin/env bash
# Instructions the agent runs to ship a bench corpus to the bench's bulk sink, counted by
# valgrind's cachegrind (release build, default pipeline, no gzip). On a small shared
# machine CPU time moves by ±10 % from run to run; an instruction count does not, so it
# shows a change of 1 % in the hot path. It is not CPU time: memory traffic can hide a cut
# (see docs/ARCHITECTURE.md, "Where the CPU goes"), so confirm with alternating timed runs.
#
#   scripts/instructions.sh                  # this tree's release agent, 200,000 lines
#   scripts/instructions.sh BINARY [LINES]   # another build (e.g. a copy of an older one)
#
# Prints the count; cachegrind's per-function file is left for cg_annotate in
# $HINDSIGHT_CACHE_DIR/instructions/cachegrind.out.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
cargo build --release --locked -p hindsight -p hindsight-bench >&2
bin="$CARGO_TARGET_DIR/release"
agent="${1:-$bin/hindsight}"
lines="${2:-200000}"
work="$HINDSIGHT_CACHE_DIR/instructions"

source scripts/lib/corpus-to-sink.sh
corpus_to_sink "$work" "$lines"
rm -rf "$work/data"

valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="$work/cachegrind.out" \
  "$agent" run --config "$work/agent.toml" 2>"$work/agent.err" &
agent_pid=$!
pids+=("$agent_pid")
wait_for_corpus "$agent_pid" 0.5
kill -INT "$agent_pid"
wait "$agent_pid" 2>/dev/null || true
count=$(sed -n 's/.*I *refs: *//p' "$work/agent.err" | tr -d ,)
[ -n "$count" ] || { echo "no instruction count in $work/agent.err" >&2; exit 1; }
echo "$count instructions for $total lines ($((count / total)) a line): $agent"
