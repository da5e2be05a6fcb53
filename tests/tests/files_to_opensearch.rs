//! The spine, end to end: container log files → hindsight → a real OpenSearch.
//!
//! Needs OpenSearch on 127.0.0.1:9200 (`scripts/services.sh up`); fails without it.

use std::time::Duration;

use hindsight_e2e::*;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(120);

/// Checks that every `seq` in `0..n` arrived and returns how many came twice; on loss,
/// fails with the agent's log.
async fn duplicates_of_every_line(
    opensearch: &OpenSearch,
    index: &str,
    n: u64,
    agent: &Agent,
) -> u64 {
    match opensearch.duplicates_of_sequence(index, "seq", n).await {
        Ok(extra) => extra,
        Err(problem) => panic!("{problem}; log:\n{}", agent.log_tail()),
    }
}

fn pods_file(root: &std::path::Path) -> std::path::PathBuf {
    root.join("var/log/pods/shop_cart-5d9f_6f1c2b9e-0000-4a3b-9c1d-1234567890ab/cart/0.log")
}

fn containers_file(root: &std::path::Path) -> std::path::PathBuf {
    root.join(format!(
        "var/log/containers/checkout-7c8d_payments_api-{}.log",
        "ab".repeat(32)
    ))
}

fn include_all(root: &std::path::Path) -> Vec<String> {
    vec![
        format!("{}/var/log/pods/*/*/*.log*", root.display()),
        format!("{}/var/log/containers/*.log*", root.display()),
    ]
}

/// N lines into a CRI file and N into a Docker file, with a rename rotation of one and a
/// copytruncate rotation of the other mid-stream: exactly 2N documents arrive, with the
/// Kubernetes fields from each path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotations_lose_nothing_and_duplicate_nothing() {
    const N: u64 = 20_000;
    let opensearch = opensearch().await;
    let work = tempfile::tempdir().expect("tempdir");
    let prefix = unique_prefix("rotate");
    let index = format!("{prefix}-*");
    let agent = Agent::start(
        work.path(),
        &AgentSetup {
            include: include_all(work.path()),
            endpoint: opensearch.url.clone(),
            prefix: prefix.clone(),
            ..AgentSetup::default()
        },
    );

    let (cri_path, docker_path) = (pods_file(work.path()), containers_file(work.path()));
    let writer = std::thread::spawn(move || {
        let mut cri = LogWriter::create(&cri_path);
        let mut docker = LogWriter::create(&docker_path);
        for seq in 0..N {
            let cri_content = app_line(seq, "cri");
            if seq % 100 == 7 {
                cri.write(cri_partial_lines("stdout", &cri_content, 16).as_bytes());
            } else {
                cri.write(
                    cri_line(if seq % 2 == 0 { "stdout" } else { "stderr" }, &cri_content)
                        .as_bytes(),
                );
            }
            docker.write(docker_line("stdout", &app_line(N + seq, "docker")).as_bytes());
            if seq == N / 3 {
                cri.rotate_rename(&cri_path.with_file_name("0.log.20261123-100000"));
            }
            if seq == N / 2 {
                docker.rotate_copytruncate(&docker_path.with_extension("log.1"));
            }
            if seq % 2_000 == 0 {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    });
    writer.join().expect("writer");

    let count = opensearch.wait_for_count(&index, 2 * N, WAIT).await;
    let settled = opensearch
        .wait_until_stable(&index, Duration::from_secs(3))
        .await;
    let duplicates = opensearch
        .duplicates_of_sequence(&index, "seq", 2 * N)
        .await;
    assert_eq!(
        (count, settled, duplicates),
        (2 * N, 2 * N, Ok(0)),
        "log:\n{}",
        agent.log_tail()
    );

    let cri = opensearch
        .count(
            &index,
            json!({"bool": {"filter": [
                {"term": {"kubernetes.namespace": "shop"}},
                {"term": {"kubernetes.pod.name": "cart-5d9f"}},
                {"term": {"kubernetes.pod.uid": "6f1c2b9e-0000-4a3b-9c1d-1234567890ab"}},
                {"term": {"kubernetes.container.name": "cart"}},
                {"term": {"source.keyword": "cri"}}
            ]}}),
        )
        .await;
    let docker = opensearch
        .count(
            &index,
            json!({"bool": {"filter": [
                {"term": {"kubernetes.namespace": "payments"}},
                {"term": {"kubernetes.pod.name": "checkout-7c8d"}},
                {"term": {"kubernetes.container.name": "api"}},
                {"term": {"kubernetes.container.id": "ab".repeat(32)}},
                {"term": {"stream": "stdout"}},
                {"term": {"source.keyword": "docker"}}
            ]}}),
        )
        .await;
    assert_eq!((cri, docker), (N, N));
    let stderr = opensearch
        .count(&index, json!({"term": {"stream": "stderr"}}))
        .await;
    assert_eq!(
        stderr,
        N / 2 - N / 100,
        "every odd non-partial CRI line is stderr"
    );
    let sample = opensearch
        .sources(&index, json!({"term": {"seq": 7}}), 1)
        .await;
    assert_eq!(
        sample[0]["msg"], "request handled",
        "a CRI line split in P partials is joined"
    );
    assert_eq!(
        sample[0]["@timestamp"], "2026-11-23T10:00:00.123Z",
        "the record's own ts is @timestamp"
    );
    assert_eq!(sample[0]["host"]["name"], "e2e-host");
    opensearch.cleanup(&prefix).await;
}

/// `kill -9` mid-stream and a restart: every line arrives; duplicates are bounded by
/// what was in flight. SIGTERM afterwards exits 0, and a restart after it re-sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_then_restart_loses_nothing() {
    const N: u64 = 50_000;
    let opensearch = opensearch().await;
    let work = tempfile::tempdir().expect("tempdir");
    let prefix = unique_prefix("kill9");
    let index = format!("{prefix}-*");
    let path = pods_file(work.path());
    let mut writer = LogWriter::create(&path);
    for seq in 0..N {
        writer.write(cri_line("stdout", &app_line(seq, "cri")).as_bytes());
    }
    let mut agent = Agent::start(
        work.path(),
        &AgentSetup {
            include: include_all(work.path()),
            endpoint: opensearch.url.clone(),
            prefix: prefix.clone(),
            ..AgentSetup::default()
        },
    );
    let before_kill = opensearch.wait_for_count(&index, N / 5, WAIT).await;
    assert!(
        before_kill >= N / 5,
        "no progress before kill; log:\n{}",
        agent.log_tail()
    );
    // Kill once a checkpoint has been written, so the restart resumes mid-file.
    let checkpointed = agent.wait_for_checkpoint(Duration::from_secs(30)).await;
    assert!(
        checkpointed > 0,
        "no checkpoint written; log:\n{}",
        agent.log_tail()
    );
    agent.kill9();
    let at_kill = opensearch
        .wait_until_stable(&index, Duration::from_secs(2))
        .await;
    assert!(
        at_kill < N,
        "the agent finished before it was killed; raise N"
    );

    agent.restart();
    opensearch.wait_for_count(&index, N, WAIT).await;
    let total = opensearch
        .wait_until_stable(&index, Duration::from_secs(3))
        .await;
    let extra = duplicates_of_every_line(&opensearch, &index, N, &agent).await;
    println!(
        "kill -9 with {at_kill} of {N} documents delivered, checkpoint at byte {checkpointed}: \
         {extra} duplicates after restart"
    );
    assert_eq!(total, N + extra);
    // In flight at a kill: two stage channels of 8 batches of at most 1,000 lines, the
    // sink's 4 requests of at most 5,000 documents, and what was delivered since the last
    // checkpoint write (250 ms).
    let in_flight_bound = 2 * 8 * 1_000 + 4 * 5_000 + 10_000;
    assert!(
        extra <= in_flight_bound,
        "duplicates ({extra}) exceed what can be in flight ({in_flight_bound})"
    );

    let status = agent.terminate();
    assert!(status.success(), "SIGTERM exits 0, got {status}");
    agent.restart();
    let (code, _) = agent.admin_get("/healthz").await;
    assert_eq!(code, 200);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = opensearch
        .wait_until_stable(&index, Duration::from_secs(2))
        .await;
    assert_eq!(
        after, total,
        "a restart after a clean stop re-sends nothing"
    );
    opensearch.cleanup(&prefix).await;
}

/// OpenSearch unreachable at start and again mid-stream: the agent waits, retries and
/// delivers everything once it is back; `/readyz` reports the outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_outage_then_recovery_delivers_everything() {
    const N: u64 = 10_000;
    let opensearch = opensearch().await;
    let target = opensearch.url.trim_start_matches("http://").to_owned();
    let proxy = Cuttable::start(target, false).await;
    let work = tempfile::tempdir().expect("tempdir");
    let prefix = unique_prefix("outage");
    let index = format!("{prefix}-*");
    let mut writer = LogWriter::create(&pods_file(work.path()));
    for seq in 0..N / 2 {
        writer.write(cri_line("stdout", &app_line(seq, "cri")).as_bytes());
    }
    let agent = Agent::start(
        work.path(),
        &AgentSetup {
            include: include_all(work.path()),
            endpoint: format!("http://{}", proxy.address),
            prefix: prefix.clone(),
            ..AgentSetup::default()
        },
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (ready, _) = agent.admin_get("/readyz").await;
    assert_eq!(ready, 503, "not ready while the backend is unreachable");
    assert_eq!(opensearch.count(&index, json!({"match_all": {}})).await, 0);

    proxy.restore();
    opensearch.wait_for_count(&index, N / 2, WAIT).await;
    let (ready, _) = agent.admin_get("/readyz").await;
    assert_eq!(ready, 200, "ready once the backend answers");

    proxy.cut();
    for seq in N / 2..N {
        writer.write(cri_line("stdout", &app_line(seq, "cri")).as_bytes());
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.restore();
    opensearch.wait_for_count(&index, N, WAIT).await;
    let total = opensearch
        .wait_until_stable(&index, Duration::from_secs(3))
        .await;
    let extra = duplicates_of_every_line(&opensearch, &index, N, &agent).await;
    println!("outage: {extra} duplicates (requests cut mid-flight may be resent)");
    assert_eq!(total, N + extra);
    assert!(agent.metric("hindsight_elasticsearch_retries_total").await >= 0.0);
    opensearch.cleanup(&prefix).await;
}

/// An agent that shipped lines into a fresh index of its own.
struct Shipped {
    index: String,
    prefix: String,
    /// Kept running, and its folder kept, until the checks are done.
    _agent: Agent,
    _work: tempfile::TempDir,
}

/// Writes `lines` into one pod's file (the agent then sends them in one bulk request),
/// and asserts every one arrived and none was dead-lettered.
async fn ship_all(opensearch: &OpenSearch, label: &str, lines: &[&str]) -> Shipped {
    let work = tempfile::tempdir().expect("tempdir");
    let prefix = unique_prefix(label);
    let index = format!("{prefix}-*");
    let mut writer = LogWriter::create(&pods_file(work.path()));
    for line in lines {
        writer.write(cri_line("stdout", line).as_bytes());
    }
    let agent = Agent::start(
        work.path(),
        &AgentSetup {
            include: include_all(work.path()),
            endpoint: opensearch.url.clone(),
            prefix: prefix.clone(),
            ..AgentSetup::default()
        },
    );
    let expected = lines.len() as u64;
    assert_eq!(
        opensearch.wait_for_count(&index, expected, WAIT).await,
        expected,
        "log:\n{}",
        agent.log_tail()
    );
    assert!(
        !agent
            .data_dir
            .join("dead-letter/elasticsearch.ndjson")
            .exists(),
        "nothing is dead-lettered"
    );
    Shipped {
        index,
        prefix,
        _agent: agent,
        _work: work,
    }
}

/// Services that write levels as numbers (pino) and as words (zap) share an index: the
/// template maps the applications' own level fields as keywords, so whichever arrives
/// first does not fix a type that rejects the other kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_and_word_levels_share_an_index() {
    let opensearch = opensearch().await;
    // Numbers first, in the same bulk request: without the template's keyword mapping
    // each field becomes a long and the word levels are rejected. (Words first would not
    // tell: a text field takes numbers.)
    let shipped = ship_all(
        &opensearch,
        "levels",
        &[
            r#"{"seq":1,"level":30,"msg":"pino"}"#,
            r#"{"seq":2,"level":"info","msg":"zap"}"#,
            r#"{"seq":3,"severity":13,"levelname":40,"msg":"numbers"}"#,
            r#"{"seq":4,"severity":"WARNING","levelname":"WARNING","msg":"structlog"}"#,
            r#"{"seq":5,"lvl":10,"@l":7,"msg":"numbers again"}"#,
            r#"{"seq":6,"lvl":"dbug","@l":"Debug","msg":"logfmt and serilog"}"#,
        ],
    )
    .await;
    let levels = opensearch
        .count(&shipped.index, json!({"terms": {"level": ["30", "info"]}}))
        .await;
    assert_eq!(levels, 2, "both kinds are searchable as keywords");
    opensearch.cleanup(&shipped.prefix).await;
}

/// Services that write their time as epoch numbers (pino, zap) and as RFC 3339 text
/// (logrus) share an index: the template maps the applications' own time fields as
/// keywords, and every document gets its normalised `@timestamp`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epoch_and_text_times_share_an_index() {
    let opensearch = opensearch().await;
    // Numbers first, in the same bulk request: with dynamic mapping `time` would become a
    // long (or `ts` a float) and the text times would be rejected.
    let shipped = ship_all(
        &opensearch,
        "times",
        &[
            r#"{"seq":1,"time":1714564800123,"msg":"pino"}"#,
            r#"{"seq":2,"time":"2024-05-01T12:00:00.124Z","msg":"logrus"}"#,
            r#"{"seq":3,"ts":1714564800.125,"timestamp":1714564800126,"msg":"zap"}"#,
            r#"{"seq":4,"ts":"2024-05-01T12:00:00.127Z","timestamp":"2024-05-01T12:00:00.127Z","msg":"text"}"#,
            r#"{"seq":5,"@t":1714564800128,"t":1714564800128,"msg":"numbers"}"#,
            r#"{"seq":6,"@t":"2024-05-01T12:00:00.129Z","t":"2024-05-01T12:00:00.129Z","msg":"serilog"}"#,
        ],
    )
    .await;
    let times = opensearch
        .count(
            &shipped.index,
            json!({"terms": {"time": ["1714564800123", "2024-05-01T12:00:00.124Z"]}}),
        )
        .await;
    assert_eq!(times, 2, "both kinds are searchable as keywords");
    let normalised = opensearch
        .count(
            &shipped.index,
            json!({"range": {"@timestamp": {
                "gte": "2024-05-01T12:00:00.123Z",
                "lte": "2024-05-01T12:00:00.129Z"
            }}}),
        )
        .await;
    assert_eq!(normalised, 6, "every record's time became its @timestamp");
    opensearch.cleanup(&shipped.prefix).await;
}

/// A document OpenSearch rejects (a mapping conflict) goes to the dead-letter file with
/// its reason; the records around it are delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_conflict_goes_to_the_dead_letter_file() {
    let opensearch = opensearch().await;
    let work = tempfile::tempdir().expect("tempdir");
    let prefix = unique_prefix("dlq");
    let index = format!("{prefix}-*");
    let mut writer = LogWriter::create(&pods_file(work.path()));
    writer.write(cri_line("stdout", r#"{"seq":1,"amount":12}"#).as_bytes());
    let agent = Agent::start(
        work.path(),
        &AgentSetup {
            include: include_all(work.path()),
            endpoint: opensearch.url.clone(),
            prefix: prefix.clone(),
            ..AgentSetup::default()
        },
    );
    assert_eq!(
        opensearch.wait_for_count(&index, 1, WAIT).await,
        1,
        "log:\n{}",
        agent.log_tail()
    );
    writer.write(cri_line("stdout", r#"{"seq":2,"amount":"twelve euros"}"#).as_bytes());
    writer.write(cri_line("stdout", r#"{"seq":3,"amount":13}"#).as_bytes());
    assert_eq!(opensearch.wait_for_count(&index, 2, WAIT).await, 2);
    let dead_letters = agent.data_dir.join("dead-letter/elasticsearch.ndjson");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !dead_letters.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = std::fs::read_to_string(&dead_letters).expect("dead-letter file exists");
    let entries: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("DLQ line is JSON"))
        .collect();
    assert_eq!(entries.len(), 1, "{text}");
    assert_eq!(entries[0]["status"], 400);
    assert!(
        entries[0]["error_type"]
            .as_str()
            .unwrap_or("")
            .contains("parsing_exception"),
        "{text}"
    );
    assert!(
        entries[0]["document"].to_string().contains("twelve euros"),
        "{text}"
    );
    let seqs: Vec<u64> = opensearch
        .sources(&index, json!({"match_all": {}}), 10)
        .await
        .iter()
        .filter_map(|doc| doc["seq"].as_u64())
        .collect();
    assert!(
        seqs.contains(&1) && seqs.contains(&3) && !seqs.contains(&2),
        "{seqs:?}"
    );
    assert!(
        agent
            .metric("hindsight_elasticsearch_dead_lettered_total")
            .await
            >= 0.0
    );
    opensearch.cleanup(&prefix).await;
}

/// Lines that are not JSON objects, invalid UTF-8, a 5 MB line and an empty line each get
/// their defined outcome, and the agent's `/metrics` passes `promtool check metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_lines_get_defined_outcomes() {
    let opensearch = opensearch().await;
    let work = tempfile::tempdir().expect("tempdir");
    let prefix = unique_prefix("invalid");
    let index = format!("{prefix}-*");
    let path = work.path().join("app/plain.log");
    let mut writer = LogWriter::create(&path);
    writer.write(b"{\"seq\":1,\"msg\":\"fine\"}\n");
    writer.write(b"this is not json\n");
    writer.write(b"{\"seq\":3,\"msg\":\"caf\xe9 \xff\"}\n");
    writer.write(b"\n");
    writer.write(b"[\"an\",\"array\"]\n");
    let mut huge = b"{\"seq\":6,\"blob\":\"".to_vec();
    huge.resize(5 * 1024 * 1024, b'x');
    huge.extend_from_slice(b"\"}\n");
    writer.write(&huge);
    writer.write(b"{\"seq\":7,\"msg\":\"after the huge line\"}\n");
    let agent = Agent::start(
        work.path(),
        &AgentSetup {
            include: vec![format!("{}/app/*.log", work.path().display())],
            endpoint: opensearch.url.clone(),
            prefix: prefix.clone(),
            files_extra: "format = \"json\"\nmax_line_bytes = \"1MiB\"".to_owned(),
            ..AgentSetup::default()
        },
    );
    assert_eq!(
        opensearch.wait_for_count(&index, 6, WAIT).await,
        6,
        "log:\n{}",
        agent.log_tail()
    );
    let docs = opensearch
        .sources(&index, json!({"match_all": {}}), 20)
        .await;
    let find = |pred: &dyn Fn(&serde_json::Value) -> bool| docs.iter().find(|d| pred(d)).cloned();
    let not_json = find(&|d| d["message"] == "this is not json").expect("wrapped plain text");
    assert_eq!(not_json["tags"], json!(["hindsight.not_json"]));
    let utf8 = find(&|d| d["seq"] == 3).expect("invalid UTF-8 kept as an object");
    assert_eq!(utf8["msg"], "caf\u{fffd} \u{fffd}");
    let array = find(&|d| d["tags"] == json!(["hindsight.not_object"])).expect("array wrapped");
    assert_eq!(array["message"], "[\"an\",\"array\"]");
    let truncated =
        find(&|d| d["tags"] == json!(["hindsight.truncated"])).expect("huge line truncated");
    let message = truncated["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("{\"seq\":6,\"blob\":\"xxx"),
        "truncated line keeps its start"
    );
    assert_eq!(message.len(), 1024 * 1024, "cut at max_line_bytes");
    assert!(
        find(&|d| d["seq"] == 7).is_some(),
        "the line after the huge one arrives"
    );
    assert!(find(&|d| d["seq"] == 1).is_some());

    let empty_lines = agent
        .metric("hindsight_events_dropped_total{reason=\"empty_line\"}")
        .await;
    assert_eq!(empty_lines, 1.0, "the empty line is dropped and counted");

    let services = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/services.sh");
    let checked = std::process::Command::new("bash")
        .args([
            services,
            "promtool-check",
            &format!("http://{}/metrics", agent.admin),
        ])
        .output()
        .expect("run scripts/services.sh promtool-check");
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    opensearch.cleanup(&prefix).await;
}

/// SIGTERM while OpenSearch is unreachable: the agent still exits 0 within its grace
/// period (the pipeline blocked on a full sink must not hang shutdown), and a restart
/// once OpenSearch is back delivers every line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_during_an_outage_is_bounded_and_loses_nothing() {
    const N: u64 = 30_000;
    let opensearch = opensearch().await;
    let target = opensearch.url.trim_start_matches("http://").to_owned();
    let proxy = Cuttable::start(target, true).await;
    let work = tempfile::tempdir().expect("tempdir");
    let prefix = unique_prefix("stopdown");
    let index = format!("{prefix}-*");
    let mut agent = Agent::start(
        work.path(),
        &AgentSetup {
            include: include_all(work.path()),
            endpoint: format!("http://{}", proxy.address),
            prefix: prefix.clone(),
            ..AgentSetup::default()
        },
    );
    let (ready, _) = agent.admin_get("/readyz").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut ready = ready;
    while ready != 200 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        ready = agent.admin_get("/readyz").await.0;
    }
    assert_eq!(
        ready,
        200,
        "template installed, sink running; log:\n{}",
        agent.log_tail()
    );
    proxy.cut();
    let mut writer = LogWriter::create(&pods_file(work.path()));
    for seq in 0..N {
        writer.write(cri_line("stdout", &app_line(seq, "cri")).as_bytes());
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let begun = std::time::Instant::now();
    let status = agent.terminate();
    let took = begun.elapsed();
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        agent.log_tail()
    );
    assert!(
        took < Duration::from_secs(20),
        "shutdown took {took:?} (grace is 10 s)"
    );

    proxy.restore();
    agent.restart();
    opensearch.wait_for_count(&index, N, WAIT).await;
    let total = opensearch
        .wait_until_stable(&index, Duration::from_secs(3))
        .await;
    let extra = duplicates_of_every_line(&opensearch, &index, N, &agent).await;
    println!("shutdown during an outage took {took:?}; {extra} duplicates after restart");
    assert_eq!(total, N + extra);
    opensearch.cleanup(&prefix).await;
}
