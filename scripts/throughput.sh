#!/usr/bin/env bash
# A first end-to-end throughput figure: log files → hindsight (release) → the local
# OpenSearch. Writes the corpus first, then times the agent from start until OpenSearch
# counts every line. The full benchmark harness is a separate issue; this is the spine's
# smoke figure.
#
#   scripts/throughput.sh [requests]   # ~3.2 lines per request, default 300000 (~1M lines)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
requests="${1:-300000}"
opensearch=http://127.0.0.1:9200
index=throughput-hindsight

scripts/services.sh up opensearch >&2
cargo build --release --locked -p hindsight -p log-producer >&2
bin="$CARGO_TARGET_DIR/release"

root="$HINDSIGHT_CACHE_DIR/throughput"
rm -rf "$root"; mkdir -p "$root"
curl -s -X DELETE "$opensearch/$index-*" >/dev/null || true
"$bin/log-producer" --root "$root" --requests "$requests" --fail-every 50 >/dev/null
file=$(ls "$root"/var/log/pods/*/*/0.log)
lines=$(wc -l <"$file")
bytes=$(stat -c %s "$file")

cat >"$root/agent.toml" <<TOML
data_dir = "$root/data"
[admin]
address = "127.0.0.1:0"
[inputs.files]
include = ["$root/var/log/pods/*/*/*.log"]
[outputs.elasticsearch]
endpoints = ["$opensearch"]
index = "$index-%Y.%m.%d"
[outputs.elasticsearch.template]
name = "$index"
TOML

start=$(date +%s.%N)
"$bin/hindsight" run --config "$root/agent.toml" 2>"$root/agent.log" &
agent=$!
trap 'kill -TERM $agent 2>/dev/null || true' EXIT
count=0
while [ "$count" -lt "$lines" ]; do
  sleep 0.5
  count=$(curl -s "$opensearch/$index-*/_count" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("count",0))' 2>/dev/null || echo 0)
  if ! kill -0 "$agent" 2>/dev/null; then echo "agent exited; log:" >&2; tail "$root/agent.log" >&2; exit 1; fi
done
end=$(date +%s.%N)
cpu=$(awk '{print ($14 + $15) / 100}' "/proc/$agent/stat")
rss=$(awk '/VmHWM/ {print $2 / 1024}' "/proc/$agent/status")
python3 - "$lines" "$bytes" "$start" "$end" "$cpu" "$rss" <<'PY'
import sys
lines, size, start, end, cpu, rss = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
secs = end - start
print(f"{lines} lines, {size/1e6:.1f} MB in {secs:.1f} s: {lines/secs:,.0f} lines/s, {size/1e6/secs:.1f} MB/s "
      f"(agent CPU {cpu:.1f} s = {cpu/(size/1e9):.1f} CPU-s/GB, peak RSS {rss:.1f} MiB; OpenSearch on the same 2 cores)")
PY
curl -s -X DELETE "$opensearch/$index-*" >/dev/null || true
