//! Fingers-crossed buffering end to end: a generated workload of interleaved requests,
//! 2 % failing, through the agent into a real OpenSearch.
//!
//! OpenSearch must end up with every warn/error record, every record of every failing
//! request (the debug lines before the error too), the sampled healthy requests whole, and
//! nothing else.

use std::collections::BTreeSet;
use std::time::Duration;

use hindsight_correlation::fingers_crossed::is_sampled;
use hindsight_e2e::*;
use serde_json::json;

const REQUESTS: u64 = 2_000;
const KEEP_HEALTHY: f64 = 0.05;

/// One generated line: its sequence number, request and level.
struct Line {
    seq: u64,
    request: u64,
    level: &'static str,
}

/// A deterministic workload: 50 requests in flight at a time, 3–12 lines each, one in
/// fifty failing with an error as its last line, one in ten healthy ones with a warning.
fn workload() -> Vec<Line> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut plans: Vec<(u64, Vec<&'static str>)> = (0..REQUESTS)
        .map(|request| {
            let length = 3 + next() % 10;
            let failing = request % 50 == 17;
            let warns = !failing && next() % 10 == 0;
            let mut levels: Vec<&'static str> = (0..length)
                .map(|i| if i % 3 == 0 { "debug" } else { "info" })
                .collect();
            if warns {
                levels[1] = "warn";
            }
            if failing {
                *levels.last_mut().expect("non-empty") = "error";
            }
            (request, levels)
        })
        .collect();
    plans.reverse();
    let mut active: Vec<(u64, std::collections::VecDeque<&'static str>)> = Vec::new();
    let mut lines = Vec::new();
    let mut seq = 0;
    while !plans.is_empty() || !active.is_empty() {
        while active.len() < 50 {
            let Some((request, levels)) = plans.pop() else {
                break;
            };
            active.push((request, levels.into()));
        }
        let pick = (next() % active.len() as u64) as usize;
        let level = active[pick]
            .1
            .pop_front()
            .expect("active requests have lines");
        lines.push(Line {
            seq,
            request: active[pick].0,
            level,
        });
        seq += 1;
        if active[pick].1.is_empty() {
            active.swap_remove(pick);
        }
    }
    lines
}

fn request_id(request: u64) -> String {
    format!("req-{request:06}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_failing_sampled_and_warning_records_reach_opensearch() {
    let opensearch = opensearch().await;
    let work = tempfile::tempdir().expect("tempdir");
    let prefix = unique_prefix("fingers");
    let index = format!("{prefix}-*");
    let lines = workload();
    let failing: BTreeSet<u64> = lines
        .iter()
        .filter(|l| l.level == "error")
        .map(|l| l.request)
        .collect();
    let expected: BTreeSet<u64> = lines
        .iter()
        .filter(|line| {
            line.level == "warn"
                || line.level == "error"
                || failing.contains(&line.request)
                || is_sampled(request_id(line.request).as_bytes(), KEEP_HEALTHY)
        })
        .map(|line| line.seq)
        .collect();

    let path = work
        .path()
        .join("var/log/pods/shop_checkout-1_uid/checkout/0.log");
    let mut writer = LogWriter::create(&path);
    let mut text = String::new();
    for line in &lines {
        let record = json!({
            "level": line.level, "msg": "step", "seq": line.seq,
            "request_id": request_id(line.request),
        });
        text.push_str(&cri_line("stdout", &record.to_string()));
    }
    writer.write(text.as_bytes());

    let agent = Agent::start(
        work.path(),
        &AgentSetup {
            include: vec![format!("{}/var/log/pods/*/*/*.log", work.path().display())],
            endpoint: opensearch.url.clone(),
            prefix: prefix.clone(),
            tables_extra: format!(
                "[fingers_crossed]\nidle_timeout = \"2s\"\nkeep_healthy = {KEEP_HEALTHY}\n"
            ),
            ..AgentSetup::default()
        },
    );
    opensearch
        .wait_for_count(&index, expected.len() as u64, Duration::from_secs(120))
        .await;
    // Idle requests are decided 2 s after their last line; wait past that for stragglers.
    tokio::time::sleep(Duration::from_secs(4)).await;
    opensearch
        .wait_until_stable(&index, Duration::from_secs(3))
        .await;

    let docs = opensearch
        .sources(&index, json!({"match_all": {}}), 10_000)
        .await;
    let shipped: BTreeSet<u64> = docs.iter().filter_map(|doc| doc["seq"].as_u64()).collect();
    assert_eq!(docs.len(), shipped.len(), "no duplicates");
    let missing: Vec<_> = expected.difference(&shipped).take(10).collect();
    let extra: Vec<_> = shipped.difference(&expected).take(10).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, unexpected {extra:?}; log:\n{}",
        agent.log_tail()
    );
    let reduction = 1.0 - shipped.len() as f64 / lines.len() as f64;
    println!(
        "fingers-crossed: {} of {} lines shipped ({:.1} % fewer), {} failing requests kept whole",
        shipped.len(),
        lines.len(),
        reduction * 100.0,
        failing.len()
    );
    // A failing request arrives whole: its debug and info lines before the error too.
    let first_failing = *failing.iter().next().expect("some request fails");
    let written: Vec<&str> = lines
        .iter()
        .filter(|line| line.request == first_failing)
        .map(|line| line.level)
        .collect();
    let mut request_docs = opensearch
        .sources(
            &index,
            json!({"term": {"http.request.id": request_id(first_failing)}}),
            100,
        )
        .await;
    request_docs.sort_by_key(|doc| doc["seq"].as_u64());
    let arrived: Vec<&str> = request_docs
        .iter()
        .filter_map(|doc| doc["log"]["level"].as_str())
        .collect();
    assert_eq!(arrived, written);
    assert!(
        written.contains(&"debug"),
        "the workload puts debug lines before errors"
    );
    assert!(
        agent
            .metric("hindsight_fingers_crossed_activations_total")
            .await
            >= failing.len() as f64
    );
    let dropped = agent
        .metric("hindsight_events_dropped_total{reason=\"fingers_crossed_idle\"}")
        .await;
    assert_eq!(
        dropped as usize,
        lines.len() - shipped.len(),
        "every held-back line is counted"
    );
    opensearch.cleanup(&prefix).await;
}
