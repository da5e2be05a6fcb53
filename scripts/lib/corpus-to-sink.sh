# Sourced by scripts/instructions.sh and scripts/ab-cpu.sh (after scripts/env.sh and a
# release build of hindsight-bench): a bench corpus, the bench's bulk sink, and an agent
# config that ships the corpus to it with the default pipeline and no gzip.

# Sourcing it sets an EXIT trap that stops every process whose pid is in `pids`: the
# bulk sink, and whatever the script appends (its agent).
pids=()
cleanup() { for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# corpus_to_sink WORK LINES: writes the corpus of LINES lines under WORK once, starts the
# bulk sink (its pid appended to `pids`) and writes WORK/agent.toml. Sets `corpus`,
# `total` (lines in the corpus) and `sink`.
corpus_to_sink() {
  local work=$1 lines=$2
  local bin="$CARGO_TARGET_DIR/release"
  corpus="$work/corpus-$lines"
  mkdir -p "$work"
  [ -d "$corpus" ] || "$bin/corpus" --root "$corpus" --lines "$lines" >/dev/null
  total=$(cat "$corpus"/var/log/pods/*/*/*.log | wc -l)

  "$bin/bulk-sink" --listen 127.0.0.1:0 --validate-every 0 --threads 1 >"$work/sink.out" &
  pids+=($!)
  for _ in $(seq 50); do grep -q listening "$work/sink.out" && break; sleep 0.1; done
  sink=$(sed -n 's/^listening //p' "$work/sink.out")
  [ -n "$sink" ] || { echo "the bulk sink did not start" >&2; return 1; }

  cat >"$work/agent.toml" <<TOML
data_dir = "$work/data"
host_name = "bench-node"
[log]
level = "warn"
[admin]
address = "127.0.0.1:0"
[inputs.files]
include = ["$corpus/var/log/pods/*/*/*.log"]
[outputs.elasticsearch]
endpoints = ["$sink"]
index = "bench-hindsight"
compression = "none"
[outputs.elasticsearch.template]
install = false
name = "bench-hindsight"
TOML
}

# wait_for_corpus PID POLL: waits until the sink holds every line of the corpus, checking
# every POLL seconds; fails if process PID (the agent) exits first.
wait_for_corpus() {
  local agent=$1 poll=$2 docs=0
  while [ "$docs" -lt "$total" ]; do
    kill -0 "$agent" 2>/dev/null || { echo "the agent exited; see $work/agent.err" >&2; return 1; }
    sleep "$poll"
    docs=$(curl -s "$sink/_bench/stats" | grep -o '"docs":[0-9]*' | cut -d: -f2 || true)
    docs=${docs:-0}
  done
}
