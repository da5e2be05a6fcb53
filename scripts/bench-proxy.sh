#!/usr/bin/env bash
# The sidecar proxy's cost, measured with wrk (release build): the demo service directly,
# then through the agent's proxy, at the same concurrency, in one run. Prints a markdown
# table and writes it to $HINDSIGHT_CACHE_DIR/bench-proxy.md.
#
# Paths: /healthz (no work at all: the proxy's full cost shows), /checkout (logs 4 lines),
# /slow?ms=5 (a service that spends 5 ms per request, closer to a real one).
# HINDSIGHT_BENCH_OTLP=false measures without span export.
#
# A second table gives each process's CPU time per request (from /proc/PID/stat around each
# wrk run): on a small machine where wrk, service, proxy and Jaeger share the cores, it
# shows where the proxied throughput goes, which the req/s ratio alone does not.
#
#   scripts/bench-proxy.sh [seconds] [connections]     # defaults: 10 s, 16 connections
#
# HINDSIGHT_BIN names the agent binary to measure (scripts/bench.sh passes the one its
# run measured); without it, the release agent is built from this tree.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
seconds="${1:-10}"
connections="${2:-16}"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
scripts/services.sh up jaeger >&2
if [ -n "${HINDSIGHT_BIN:-}" ]; then
  cargo build --release --locked -p demo-service >&2
else
  cargo build --release --locked -p hindsight -p demo-service >&2
fi
bin="$CARGO_TARGET_DIR/release"
agent="${HINDSIGHT_BIN:-$bin/hindsight}"
work="$HINDSIGHT_CACHE_DIR/bench-proxy"
rm -rf "$work"; mkdir -p "$work/logs"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

"$bin/demo-service" --listen 127.0.0.1:18080 --log-file "$work/logs/app.log" --fail-every 0 &
pids+=($!)
service_pid=$!
cat >"$work/agent.toml" <<TOML
data_dir = "$work/data"
[admin]
address = "127.0.0.1:0"
[inputs.files]
include = ["$work/none/*.log"]
[outputs.elasticsearch]
endpoints = ["http://127.0.0.1:9"]
[proxy]
listen = "127.0.0.1:18619"
upstream = "http://127.0.0.1:18080"
[proxy.otlp]
endpoint = "http://127.0.0.1:4318"
service_name = "bench-proxy"
enabled = ${HINDSIGHT_BENCH_OTLP:-true}
TOML
"$agent" run --config "$work/agent.toml" 2>"$work/agent.log" &
pids+=($!)
agent_pid=$!
jaeger_pid=$(cat "$HINDSIGHT_CACHE_DIR/services/jaeger/jaeger.pid" 2>/dev/null || true)
for _ in $(seq 1 100); do curl -fs -o /dev/null http://127.0.0.1:18619/healthz && break; sleep 0.1; done

# wrk --latency prints "50%  1.23ms" lines, "N requests in" and "Requests/sec: N".
run() { wrk -t2 -c"$connections" -d"${seconds}s" --latency "$1" 2>&1; }
# CPU time (user + system) of a process in clock ticks; "nan" when it is not running.
ticks() { awk '{print $14 + $15}' "/proc/${1:-0}/stat" 2>/dev/null || echo nan; }
# "service agent jaeger" ticks, for differences around a run.
all_ticks() { echo "$(ticks "$service_pid") $(ticks "$agent_pid") $(ticks "$jaeger_pid")"; }
# Microseconds of CPU per request: cpu_per_request TICKS_BEFORE TICKS_AFTER WRK_OUTPUT.
cpu_per_request() {
  local requests
  requests=$(printf '%s\n' "$3" | awk '/requests in/ {print $1}')
  python3 -c "
hz, n = $(getconf CLK_TCK), $requests
before, after = [float(v) for v in '$1'.split()], [float(v) for v in '$2'.split()]
# A process that was not running at either end (or was restarted in between) has no figure.
print(' | '.join(f'{(a - b) / hz * 1e6 / n:.1f}' if a >= b else '–' for b, a in zip(before, after)))
"
}
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v} else {sub(/s$/,"",v); print v*1000}}'; }
rows=()
cpu_rows=()
for path in /healthz /checkout "/slow?ms=5"; do
  t0=$(all_ticks)
  direct=$(run "http://127.0.0.1:18080$path")
  t1=$(all_ticks)
  proxied=$(run "http://127.0.0.1:18619$path")
  t2=$(all_ticks)
  direct_cpu=$(cpu_per_request "$t0" "$t1" "$direct")
  proxied_cpu=$(cpu_per_request "$t1" "$t2" "$proxied")
  cpu_rows+=("| \`$path\` | ${direct_cpu%% |*} | $proxied_cpu |")
  d50=$(printf '%s\n' "$direct" | awk '$1=="50%" {print $2}' | to_ms)
  p50=$(printf '%s\n' "$proxied" | awk '$1=="50%" {print $2}' | to_ms)
  d99=$(printf '%s\n' "$direct" | awk '$1=="99%" {print $2}' | to_ms)
  p99=$(printf '%s\n' "$proxied" | awk '$1=="99%" {print $2}' | to_ms)
  drps=$(printf '%s\n' "$direct" | awk '/Requests\/sec/ {print $2}')
  prps=$(printf '%s\n' "$proxied" | awk '/Requests\/sec/ {print $2}')
  rows+=("$(python3 -c "
d50,p50,d99,p99,drps,prps=$d50,$p50,$d99,$p99,$drps,$prps
print(f'| \`$path\` | {drps:,.0f} | {prps:,.0f} | {prps/drps:.2f} | {d50:.3f} | {p50:.3f} | {p50-d50:+.3f} | {d99:.3f} | {p99:.3f} |')
")")
done
{
  echo "Sidecar proxy overhead: wrk -t2 -c$connections -d${seconds}s, demo service direct vs through \`hindsight\` [proxy] (OTLP spans to the local Jaeger on), release build, same 2-core machine for wrk, service and proxy."
  echo
  echo "| path | direct req/s | proxied req/s | ratio | direct p50 ms | proxied p50 ms | added p50 ms | direct p99 ms | proxied p99 ms |"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "CPU time per request, microseconds (user + system, from /proc; wrk's own share not shown). The agent's figure includes its log pipeline taking the proxy's hand-off; Jaeger's is the span export's cost on the receiving side."
  echo
  echo "| path | service, direct | service, proxied | agent (proxy) | Jaeger |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${cpu_rows[@]}"
  echo
  echo "Command: \`scripts/bench-proxy.sh $seconds $connections\` at $(git rev-parse --short HEAD), $(date -u +%Y-%m-%d)."
} | tee "$HINDSIGHT_CACHE_DIR/bench-proxy.md"
