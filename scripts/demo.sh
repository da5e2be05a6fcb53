#!/usr/bin/env bash
# The main job, locally: start OpenSearch, Jaeger and Prometheus; run the demo checkout
# service behind the agent's sidecar proxy; send requests (1 in 10 fails); then print one
# failed request's log lines from OpenSearch and its trace from Jaeger, sharing one id.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

say() { printf '\n== %s\n' "$*" >&2; }
opensearch=http://127.0.0.1:9200
jaeger=http://127.0.0.1:16686
index='logs-hindsight-demo-*'
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

say "services"
scripts/services.sh up

say "build (release)"
cargo build --release --locked -p hindsight -p demo-service
bin="$CARGO_TARGET_DIR/release"

export HINDSIGHT_DEMO_ROOT="$HINDSIGHT_CACHE_DIR/demo"
rm -rf "$HINDSIGHT_DEMO_ROOT"
log_file="$HINDSIGHT_DEMO_ROOT/var/log/pods/demo_checkout-6f7d_8c2f1e4a-3b5d-4c6e-9f70-112233445566/checkout/0.log"
mkdir -p "$(dirname "$log_file")"
curl -s -X DELETE "$opensearch/$index" >/dev/null || true

pids=()
cleanup() { for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

say "the checkout service (127.0.0.1:8080) and the agent in front of it (127.0.0.1:8619)"
"$bin/demo-service" --listen 127.0.0.1:8080 --log-file "$log_file" --fail-every 10 &
pids+=($!)
"$bin/hindsight" validate --config configs/demo.toml
"$bin/hindsight" run --config configs/demo.toml 2>"$HINDSIGHT_DEMO_ROOT/agent.log" &
pids+=($!)
for _ in $(seq 1 100); do curl -fs -o /dev/null http://127.0.0.1:8619/healthz && break; sleep 0.1; done

say "50 requests through the proxy"
failed=""
for i in $(seq 1 50); do
  headers=$(curl -s -o /dev/null -D - -X POST http://127.0.0.1:8619/checkout)
  status=$(printf '%s' "$headers" | head -n1 | awk '{print $2}')
  rid=$(printf '%s' "$headers" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-request-id" {print $2}')
  if [ "$status" = "500" ] && [ -z "$failed" ]; then failed="$rid"; fi
done
echo "first failed request: X-Request-ID $failed" >&2

say "waiting for its log lines in OpenSearch"
query="{\"size\":20,\"query\":{\"term\":{\"http.request.id\":\"$failed\"}},\"sort\":[{\"@timestamp\":\"asc\"}]}"
for _ in $(seq 1 120); do
  curl -s -X POST "$opensearch/$index/_refresh" >/dev/null || true
  n=$(curl -s "$opensearch/$index/_count" -H 'Content-Type: application/json' \
      -d "{\"query\":{\"term\":{\"http.request.id\":\"$failed\"}}}" | json 'd.get("count", 0)' 2>/dev/null || echo 0)
  [ "$n" -ge 4 ] && break
  sleep 0.5
done
sleep 4 # past fingers_crossed.idle_timeout: healthy requests' lines are dropped by now
curl -s -X POST "$opensearch/$index/_refresh" >/dev/null
response=$(curl -s "$opensearch/$index/_search" -H 'Content-Type: application/json' -d "$query")
trace_id=$(printf '%s' "$response" | json 'd["hits"]["hits"][0]["_source"]["trace"]["id"]')

say "its log lines, as OpenSearch returns them (GET $index/_search http.request.id=$failed)"
printf '%s' "$response" | python3 -c '
import json, sys
for hit in json.load(sys.stdin)["hits"]["hits"]:
    d = hit["_source"]
    k = d["kubernetes"]
    print("%s  %-5s  %s/%s  %-28s  trace.id=%s span.id=%s" % (d["@timestamp"], d["log"]["level"],
          k["namespace"], k["pod"]["name"], d["msg"], d["trace"]["id"], d.get("span", {}).get("id", "-")))
'

say "its trace, as Jaeger returns it (GET $jaeger/api/traces/$trace_id)"
for _ in $(seq 1 60); do
  trace=$(curl -s "$jaeger/api/traces/$trace_id")
  printf '%s' "$trace" | json 'len(d["data"][0]["spans"])' >/dev/null 2>&1 && break
  sleep 0.5
done
printf '%s' "$trace" | python3 -c '
import json, sys
data = json.load(sys.stdin)["data"][0]
for span in data["spans"]:
    tags = {t["key"]: t["value"] for t in span["tags"]}
    service = data["processes"][span["processID"]]["serviceName"]
    print("trace %s span %s  %s  %-20s %6.2f ms  status=%s  http.request.id=%s" % (span["traceID"], span["spanID"],
          service, span["operationName"], span["duration"] / 1000.0, tags.get("http.response.status_code"), tags.get("http.request.id")))
'

say "what fingers-crossed kept"
written=$(wc -l <"$log_file")
shipped=$(curl -s "$opensearch/$index/_count" | json 'd["count"]')
echo "the service wrote $written log lines; OpenSearch holds $shipped: every line of the failed requests, and nothing of the healthy ones" >&2
curl -s http://127.0.0.1:8618/metrics | grep -E '^hindsight_(fingers_crossed_activations|proxy_requests|events_dropped)' || true
