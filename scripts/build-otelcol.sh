#!/usr/bin/env bash
# Builds the OpenTelemetry Collector the benchmark compares Hindsight with: the filelog receiver
# and the Elasticsearch exporter only (bench/peers/otelcol/), from the Go module proxy, once per
# version of that folder, Go and build flags. Prints the binary's path on stdout;
# scripts/bench.sh passes it on as OTELCOL_BIN. About a minute the first time on 2 cores.
#
#   scripts/build-otelcol.sh
#
# The versions are pinned in bench/peers/otelcol/go.mod and verified against its go.sum
# (-mod=readonly, GOTOOLCHAIN=local: nothing is resolved anew, no toolchain is fetched). The
# contrib modules are mixed (filelogreceiver v0.149.0, elasticsearchexporter v0.150.0, core
# v0.150.0) because the module proxy reachable here serves no version of both at once.
# The binary lives outside the clone, in
#   ${HINDSIGHT_CACHE_DIR:-$HOME/.cache/hindsight}/otelcol/<hash>/otelcol-bench
# and the module downloads and compiled packages in Go's usual caches (go env GOMODCACHE
# GOCACHE), as for Jaeger in scripts/services.sh.
# Environment: HINDSIGHT_GO, the go command (default: go on PATH, else /usr/local/go/bin/go).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

src=bench/peers/otelcol
if [ -n "${HINDSIGHT_GO:-}" ]; then
  GO="$(command -v "$HINDSIGHT_GO" || true)"
  [ -n "$GO" ] || { echo "build-otelcol: HINDSIGHT_GO=$HINDSIGHT_GO is not a command" >&2; exit 1; }
else
  GO="$(command -v go || true)"
  [ -n "$GO" ] || [ ! -x /usr/local/go/bin/go ] || GO=/usr/local/go/bin/go
  [ -n "$GO" ] || { echo "build-otelcol: no go command (install Go or set HINDSIGHT_GO)" >&2; exit 1; }
fi

export GOFLAGS="-mod=readonly -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0
build_flags=(-trimpath -ldflags "-s -w")
hash="$( { cat "$src/go.mod" "$src/go.sum" "$src/main.go"; "$GO" version; echo "$GOFLAGS ${build_flags[*]}"; } \
  | sha256sum | cut -c1-16)"
out="$HINDSIGHT_CACHE_DIR/otelcol/$hash"
bin="$out/otelcol-bench"
if [ ! -x "$bin" ]; then
  mkdir -p "$out"
  echo "build-otelcol: building the OpenTelemetry Collector ($src) with $("$GO" version | cut -d' ' -f3); the first time downloads modules and compiles for about a minute" >&2
  start=$SECONDS
  if ! (cd "$src" && "$GO" build "${build_flags[@]}" -o "$bin.tmp" .) >"$out/build.log" 2>&1; then
    tail -20 "$out/build.log" >&2
    echo "build-otelcol: the build failed (log: $out/build.log)" >&2
    exit 1
  fi
  mv -f "$bin.tmp" "$bin"
  echo "build-otelcol: built in $((SECONDS - start)) s" >&2
fi
if ! "$bin" components >/dev/null 2>"$out/components.err"; then
  cat "$out/components.err" >&2
  rm -f "$bin"
  echo "build-otelcol: $bin does not run; removed, so the next run builds it again" >&2
  exit 1
fi
echo "$bin"
