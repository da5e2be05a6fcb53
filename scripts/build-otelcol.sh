#!/usr/bin/env bash
# Builds the OpenTelemetry Collector the benchmark compares Hindsight with: the filelog receiver
# and the Elasticsearch exporter only (bench/peers/otelcol/), from the Go module proxy, once per
# version of that folder. Prints the binary's path on stdout; scripts/bench.sh passes it on as
# OTELCOL_BIN.
#
#   scripts/build-otelcol.sh
#
# The versions are pinned in bench/peers/otelcol/go.mod and verified against its go.sum
# (-mod=readonly: nothing is resolved anew). The contrib modules are mixed
# (filelogreceiver v0.149.0, elasticsearchexporter v0.150.0, core v0.150.0) because the module
# proxy reachable here serves no version of both at once.
# The binary and Go's build cache live outside the clone:
#   ${HINDSIGHT_CACHE_DIR:-$HOME/.cache/hindsight}/otelcol/<hash of the folder>/otelcol-bench
# Environment: HINDSIGHT_GO, the go command (default: go on PATH, else /usr/local/go/bin/go).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

src=bench/peers/otelcol
GO="${HINDSIGHT_GO:-$(command -v go || echo /usr/local/go/bin/go)}"
[ -x "$GO" ] || { echo "build-otelcol: no go command (set HINDSIGHT_GO)" >&2; exit 1; }

hash="$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-16)"
out="$HINDSIGHT_CACHE_DIR/otelcol/$hash"
bin="$out/otelcol-bench"
if [ ! -x "$bin" ]; then
  mkdir -p "$out"
  echo "build-otelcol: building the OpenTelemetry Collector ($src) with $("$GO" version | cut -d' ' -f3); the first time downloads modules and compiles for a few minutes" >&2
  start=$SECONDS
  if ! (cd "$src" && GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 \
        "$GO" build -trimpath -ldflags "-s -w" -o "$bin.tmp" .) >"$out/build.log" 2>&1; then
    tail -20 "$out/build.log" >&2
    echo "build-otelcol: the build failed (log: $out/build.log)" >&2
    exit 1
  fi
  mv -f "$bin.tmp" "$bin"
  echo "build-otelcol: built in $((SECONDS - start)) s" >&2
fi
"$bin" components >/dev/null
echo "$bin"
