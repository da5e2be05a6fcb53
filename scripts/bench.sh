#!/usr/bin/env bash
# The benchmark harness: builds the release agent and the bench crate (bench/), then runs
# every case and writes BENCHMARKS.md from that run's figures (never edited by hand).
#
#   scripts/bench.sh                   # the full run (about 15 minutes on 2 cores): BENCHMARKS.md,
#                                      #   with scripts/bench-proxy.sh and the extraction bench appended
#   scripts/bench.sh --quick           # a smoke test (two minutes or so):
#                                      #   $HINDSIGHT_CACHE_DIR/bench/BENCHMARKS.quick.md
#   scripts/bench.sh --no-opensearch   # skip the two cases against the real OpenSearch
#   VECTOR_BIN=/path/vector FLUENTBIT_BIN=/path/fluent-bit scripts/bench.sh   # peers side by side
#
# The OpenTelemetry Collector is always a peer: unless OTELCOL_BIN names a binary (or is set
# empty, to leave it out), scripts/build-otelcol.sh builds one from the Go module proxy first
# (about a minute, once). If that build fails the run goes on without it and the report says so.
#
# Other options go to the driver (`$CARGO_TARGET_DIR/release/bench --help`), e.g. `--lines N`,
# `--repeat N`, `--out FILE`. The OpenSearch case starts OpenSearch with
# `scripts/services.sh up opensearch` when nothing answers on 127.0.0.1:9200 (after the other
# cases, so the JVM does not share the cores with them). Corpora, logs and the raw figures
# (bench-results.json) stay in $HINDSIGHT_CACHE_DIR/bench. Run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

command="scripts/bench.sh${*:+ $*}"
start_opensearch=(--opensearch-start "scripts/services.sh up opensearch")
for arg in "$@"; do
  if [ "$arg" = "--no-opensearch" ]; then start_opensearch=(); fi
done

quick=0
for arg in "$@"; do
  if [ "$arg" = "--quick" ]; then quick=1; fi
done

cargo build --release --locked -p hindsight -p hindsight-bench >&2
# The run measures this copy, so that a build during the run (the tree edited meanwhile)
# changes none of its figures, the proxy's included.
mkdir -p "$HINDSIGHT_CACHE_DIR/bench"
agent="$HINDSIGHT_CACHE_DIR/bench/hindsight"
cp "$CARGO_TARGET_DIR/release/hindsight" "$agent"
agent_args=(--hindsight-bin "$agent")
for arg in "$@"; do
  case "$arg" in --hindsight-bin | --hindsight-bin=*) agent_args=() ;; esac
done
left_out=()
if [ -z "${OTELCOL_BIN+set}" ]; then
  if OTELCOL_BIN="$(scripts/build-otelcol.sh)"; then
    export OTELCOL_BIN
  else
    echo "bench: the OpenTelemetry Collector could not be built; it is left out of this run" >&2
    left_out=(--peer-left-out "otelcol=scripts/build-otelcol.sh failed (its output is above the run's)")
  fi
elif [ -z "$OTELCOL_BIN" ]; then
  left_out=(--peer-left-out "otelcol=left out on purpose (OTELCOL_BIN was set empty)")
fi
"$CARGO_TARGET_DIR/release/bench" \
  --repo . \
  "${agent_args[@]}" \
  --work-dir "$HINDSIGHT_CACHE_DIR/bench" \
  --command "$command" \
  "${start_opensearch[@]}" \
  "${left_out[@]}" \
  "$@"

# The sidecar proxy's overhead (wrk), appended to the full run's report.
if [ "$quick" = 0 ] && [ "$#" -eq 0 ]; then
  {
    echo
    echo "## Sidecar proxy"
    echo
    HINDSIGHT_BIN="$agent" scripts/bench-proxy.sh 10 16
    echo
    echo "## Id extraction"
    echo
    echo '```'
    cargo bench --locked -p hindsight-correlation --bench extract 2>/dev/null | grep 'ns/record'
    echo '```'
    echo
    echo "Command: \`cargo bench -p hindsight-correlation --bench extract\` (1,000,000 iterations per shape)."
  } >>BENCHMARKS.md
fi
