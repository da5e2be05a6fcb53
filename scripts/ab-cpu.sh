#!/usr/bin/env bash
# CPU time (user + system) of two agent builds shipping the same corpus to the bench's
# bulk sink, run in pairs whose order alternates (A B, B A, A B, ...). On this shared
# 2-core machine, one binary run against itself in a fixed order used 13 % more CPU in
# the first run of each pair (medians of 6 pairs), and rounds differ by up to 25 %: a
# fixed order, or the medians of each build's runs, can show a gain that is not there.
# Compare within pairs, over many rounds.
#
#   scripts/ab-cpu.sh BIN_A BIN_B [ROUNDS] [LINES]   # default 10 rounds, 2,000,000 lines
#
# Default pipeline, no gzip. Prints each pair, then how often B used less CPU than A and
# the mean and median of B − A, over all pairs and over the undisturbed ones. Build both
# binaries with `cargo build --release` first
# (copy the older one aside: the build overwrites it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

[ $# -ge 2 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
agent_a=$(realpath "$1")
agent_b=$(realpath "$2")
rounds="${3:-10}"
lines="${4:-2000000}"
cargo build --release --locked -p hindsight-bench >&2
work="$HINDSIGHT_CACHE_DIR/ab-cpu"

source scripts/lib/corpus-to-sink.sh
corpus_to_sink "$work" "$lines"

# Runs one agent over the corpus from the start; prints its CPU seconds.
cpu_of() {
  rm -rf "$work/data"
  curl -s -X POST "$sink/_bench/reset" >/dev/null
  "$1" run --config "$work/agent.toml" 2>"$work/agent.err" &
  local agent=$!
  wait_for_corpus "$agent" 0.05 || exit 1
  awk '{printf "%.2f\n", ($14 + $15) / 100}' "/proc/$agent/stat"
  kill -INT "$agent"
  wait "$agent" 2>/dev/null || true
}

pairs=()
for round in $(seq "$rounds"); do
  if [ $((round % 2)) = 1 ]; then
    a=$(cpu_of "$agent_a"); b=$(cpu_of "$agent_b")
  else
    b=$(cpu_of "$agent_b"); a=$(cpu_of "$agent_a")
  fi
  [ -n "$a" ] && [ -n "$b" ] || exit 1
  echo "round $round: A $a s, B $b s$([ $((round % 2)) = 1 ] && echo " (A first)" || echo " (B first)")"
  pairs+=("$a $b")
done
# The machine also falls into a state where every run takes about 60 % longer, for minutes
# at a time: a pair with a run in it compares two machines. Pairs whose runs both took
# less than 1.2 times the fastest run of either build are also summarised on their own.
printf '%s\n' "${pairs[@]}" | awk -v total="$total" '
  # The median of v[1..n], which it sorts.
  function median(v, n,    i, j, x) {
    for (i = 2; i <= n; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
    return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  { n++; a[n] = $1; b[n] = $2; d[n] = $2 - $1; sum += d[n]; sa += $1; sb += $2; if ($2 < $1) lower++
    if (n == 1 || $1 < fastest) fastest = $1; if ($2 < fastest) fastest = $2 }
  END {
    # The median of the differences within pairs: one disturbed pair moves the mean, not this.
    m = median(d, n)
    printf "%d lines; A mean %.3f s, B mean %.3f s; B - A: mean %+.3f s (%+.1f %%), median %+.3f s (%+.1f %%); B lower in %d of %d rounds\n",
      total, sa / n, sb / n, sum / n, 100 * sum / sa, m, 100 * m * n / sa, lower, n
    for (i = 1; i <= n; i++) if (a[i] < 1.2 * fastest && b[i] < 1.2 * fastest) {
      k++; r[k] = 100 * (b[i] - a[i]) / a[i]; rsum += r[k]; if (b[i] < a[i]) rlower++
    }
    if (k == 0) { print "no pair ran undisturbed"; exit }
    printf "undisturbed pairs (both runs under %.2f s): %d of %d; B - A: mean %+.1f %%, median %+.1f %%; B lower in %d of %d\n",
      1.2 * fastest, k, n, rsum / k, median(r, k), rlower + 0, k
  }'
