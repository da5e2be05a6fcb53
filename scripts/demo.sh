#!/usr/bin/env bash
# The main job, locally: start OpenSearch (and Prometheus), write a service's container
# logs, run the agent, and print a failed request's log lines as OpenSearch returns them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

say() { printf '\n== %s\n' "$*" >&2; }
opensearch=http://127.0.0.1:9200

say "services"
scripts/services.sh up

say "build (release)"
cargo build --release --locked -p hindsight -p log-producer
bin="$CARGO_TARGET_DIR/release"

export HINDSIGHT_DEMO_ROOT="$HINDSIGHT_CACHE_DIR/demo"
rm -rf "$HINDSIGHT_DEMO_ROOT"
mkdir -p "$HINDSIGHT_DEMO_ROOT"
curl -s -X DELETE "$opensearch/logs-hindsight-demo-*" >/dev/null || true

say "agent"
"$bin/hindsight" validate --config configs/demo.toml
"$bin/hindsight" run --config configs/demo.toml 2>"$HINDSIGHT_DEMO_ROOT/agent.log" &
agent=$!
trap 'kill -TERM $agent 2>/dev/null || true; wait $agent 2>/dev/null || true' EXIT

say "a checkout service writes 200 requests' logs (1 in 10 fails)"
"$bin/log-producer" --root "$HINDSIGHT_DEMO_ROOT" --requests 200 --fail-every 10 --pause 2ms
expected=$((180 * 3 + 20 * 4))

say "waiting for $expected documents in OpenSearch"
count=0
for _ in $(seq 1 120); do
  curl -s -X POST "$opensearch/logs-hindsight-demo-*/_refresh" >/dev/null || true
  count=$(curl -s "$opensearch/logs-hindsight-demo-*/_count" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("count", 0))' 2>/dev/null || echo 0)
  [ "$count" -ge "$expected" ] && break
  sleep 0.5
done
echo "documents: $count of $expected" >&2
if [ "$count" -lt "$expected" ]; then
  echo "the agent did not deliver everything; its log:" >&2
  tail -n 30 "$HINDSIGHT_DEMO_ROOT/agent.log" >&2
  exit 1
fi

say "a failed request, as OpenSearch returns it"
request_id=$(curl -s "$opensearch/logs-hindsight-demo-*/_search" -H 'Content-Type: application/json' \
  -d '{"size":1,"query":{"term":{"level.keyword":"error"}},"sort":[{"@timestamp":"asc"}]}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["hits"]["hits"][0]["_source"]["request_id"])')
echo "GET logs-hindsight-demo-*/_search  request_id=$request_id" >&2
curl -s "$opensearch/logs-hindsight-demo-*/_search" -H 'Content-Type: application/json' \
  -d "{\"size\":20,\"query\":{\"term\":{\"request_id.keyword\":\"$request_id\"}},\"sort\":[{\"@timestamp\":\"asc\"}]}" |
  python3 -c '
import json, sys
hits = json.load(sys.stdin)["hits"]["hits"]
for hit in hits:
    d = hit["_source"]
    k = d["kubernetes"]
    print("%s  %-5s  %s/%s/%s  %-26s  trace_id=%s" % (d["@timestamp"], d["level"], k["namespace"], k["pod"]["name"],
          k["container"]["name"], d["msg"], d["trace_id"]))
'

say "the agent's own metrics (http://127.0.0.1:8618/metrics)"
curl -s http://127.0.0.1:8618/metrics | grep -E '^hindsight_(events_in|elasticsearch_events_sent|files_watched)' || true
