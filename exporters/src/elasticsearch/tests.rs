//! Fault-injection tests: the sink against a scripted fake cluster on 127.0.0.1.
//!
//! The HTTP exchanges are real, so these run on real time with millisecond backoffs
//! instead of a paused clock (a paused clock would fire request timeouts while the fake
//! server is still answering); each test still finishes in milliseconds.

use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

use super::*;
use crate::ack::{AckBatch, BatchStatus};
use crate::LogRecord;

/// 2026-11-23T10:00:00Z.
const T0: i64 = 1_795_428_000_000;

/// One request as the fake cluster saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
    /// The body, gunzipped when it was gzipped.
    body: String,
}

impl Seen {
    /// The documents of a bulk body (every second line).
    fn docs(&self) -> Vec<String> {
        self.body
            .lines()
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    fn actions(&self) -> Vec<Value> {
        self.body
            .lines()
            .step_by(2)
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn is_bulk(&self) -> bool {
        self.path.ends_with("/_bulk")
    }
}

/// A scripted answer.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    fn status(status: u16) -> Reply {
        Reply::json(
            status,
            json!({"error": {"type": "scripted", "reason": "scripted"}, "status": status}),
        )
    }

    fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_owned()));
        self
    }
}

/// `{"errors":false}` for every document of a bulk request.
fn all_created(seen: &Seen) -> Reply {
    let items: Vec<Value> = seen
        .docs()
        .iter()
        .map(|_| json!({"index": {"status": 201}}))
        .collect();
    Reply::json(200, json!({"errors": false, "items": items}))
}

/// One item per document, statuses chosen by `status_of(doc)`.
fn per_item(seen: &Seen, op: &str, status_of: impl Fn(&str) -> u16) -> Reply {
    let items: Vec<Value> = seen
        .docs()
        .iter()
        .map(|doc| match status_of(doc) {
            status @ 200..=299 => json!({op: {"status": status}}),
            429 => json!({op: {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "rejected execution of coordinating operation"}}}),
            409 => json!({op: {"status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "document already exists"}}}),
            status => json!({op: {"status": status, "error": {
                "type": "mapper_parsing_exception",
                "reason": "failed to parse field [n] of type [long] in document",
                "caused_by": {"type": "illegal_argument_exception", "reason": "For input string: \"abc\""}}}}),
        })
        .collect();
    Reply::json(200, json!({"errors": true, "items": items}))
}

type Script = Box<dyn FnMut(usize, &Seen) -> Reply + Send>;

struct FakeState {
    seen: Mutex<Vec<Seen>>,
    script: Mutex<Script>,
}

/// A fake cluster answering every request through `script(request_number, request)`.
struct FakeCluster {
    addr: SocketAddr,
    state: Arc<FakeState>,
}

impl FakeCluster {
    async fn start(script: impl FnMut(usize, &Seen) -> Reply + Send + 'static) -> FakeCluster {
        let state = Arc::new(FakeState {
            seen: Mutex::new(Vec::new()),
            script: Mutex::new(Box::new(script)),
        });
        let app = Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeCluster { addr, state }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    fn bulks(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(Seen::is_bulk).collect()
    }
}

async fn handle(
    State(state): State<Arc<FakeState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let gzipped = headers.get("content-encoding").is_some_and(|v| v == "gzip");
    let body = if gzipped {
        let mut text = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut text)
            .unwrap();
        text
    } else {
        String::from_utf8(body.to_vec()).unwrap()
    };
    let seen = Seen {
        method,
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        headers,
        body,
    };
    let number = {
        let mut all = state.seen.lock().unwrap();
        all.push(seen.clone());
        all.len() - 1
    };
    let reply = (state.script.lock().unwrap())(number, &seen);
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

/// A configuration for tests: millisecond backoffs and batch timeout.
fn config(endpoints: Vec<String>) -> ElasticsearchConfig {
    ElasticsearchConfig {
        endpoints,
        batch: BatchConfig {
            timeout: Duration::from_millis(5),
            ..BatchConfig::default()
        },
        retry: RetryConfig {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
        },
        request_timeout: Duration::from_secs(5),
        ..ElasticsearchConfig::default()
    }
}

/// Records for `docs`, all in one acknowledgement batch whose outcome lands in the
/// returned slot.
fn records(docs: &[&str]) -> (Vec<LogRecord>, Arc<Mutex<Vec<BatchStatus>>>) {
    let outcome = Arc::new(Mutex::new(Vec::new()));
    let slot = outcome.clone();
    let batch = AckBatch::new(move |status| slot.lock().unwrap().push(status));
    let records = docs
        .iter()
        .map(|doc| LogRecord {
            doc: crate::Document::new(Bytes::copy_from_slice(doc.as_bytes())),
            timestamp_millis: T0,
            ack: batch.ack(),
        })
        .collect();
    (records, outcome)
}

/// Runs `sink` over `records` until everything is settled (or fails the test after 10 s).
async fn deliver(sink: ElasticsearchSink, records: Vec<LogRecord>) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let run = tokio::spawn(sink.run(rx));
    tx.send(records).await.unwrap();
    drop(tx);
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the sink did not settle its records in time")
        .unwrap();
}

fn dead_letters(sink: &ElasticsearchSink) -> Vec<Value> {
    match std::fs::read_to_string(sink.dead_letter_path()) {
        Ok(text) => text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test]
async fn partial_failure_resends_only_throttled_items_and_dead_letters_rejected_ones() {
    let cluster = FakeCluster::start(|n, seen| match n {
        0 => per_item(seen, "index", |doc| {
            if doc.contains("busy") {
                429
            } else if doc.contains("abc") {
                400
            } else {
                201
            }
        }),
        _ => all_created(seen),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let metrics = SinkMetrics::default();
    let sink = config(vec![cluster.url()])
        .build(dir.path(), metrics.clone())
        .unwrap();
    let docs = [
        r#"{"seq":1}"#,
        r#"{"seq":2,"note":"busy"}"#,
        r#"{"seq":3,"n":"abc"}"#,
        r#"{"seq":4}"#,
        r#"{"seq":5,"note":"busy"}"#,
    ];
    let (records, outcome) = records(&docs);
    deliver(sink.clone(), records).await;

    assert_eq!(*outcome.lock().unwrap(), [BatchStatus::Delivered]);
    let bulks = cluster.bulks();
    assert_eq!(bulks.len(), 2, "{bulks:#?}");
    assert_eq!(bulks[0].docs(), docs);
    assert_eq!(
        bulks[1].docs(),
        [docs[1], docs[4]],
        "only the throttled items are resent"
    );

    let letters = dead_letters(&sink);
    assert_eq!(letters.len(), 1, "{letters:#?}");
    assert_eq!(letters[0]["document"], json!({"seq": 3, "n": "abc"}));
    assert_eq!(letters[0]["status"], 400);
    assert_eq!(letters[0]["error_type"], "mapper_parsing_exception");
    assert_eq!(letters[0]["index"], "logs-hindsight-2026.11.23");
    assert!(
        letters[0]["reason"]
            .as_str()
            .unwrap()
            .contains("For input string"),
        "{letters:#?}"
    );
    assert!(letters[0]["time"].is_string());

    assert_eq!(metrics.events_sent.get(), 4);
    assert_eq!(metrics.dead_lettered_for("mapper_parsing_exception"), 1);
    assert_eq!(metrics.retries_for("item_throttled"), 2);
    assert_eq!(metrics.in_flight.get(), 0);
    assert!(sink.readiness().is_ready());
}

#[tokio::test]
async fn service_unavailable_twice_then_success_delivers_everything() {
    let cluster = FakeCluster::start(|n, seen| match n {
        0 => Reply::status(503).header("retry-after", "0"),
        1 => Reply::status(503),
        _ => all_created(seen),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let metrics = SinkMetrics::default();
    let sink = config(vec![cluster.url()])
        .build(dir.path(), metrics.clone())
        .unwrap();
    let (records, outcome) = records(&[r#"{"a":1}"#, r#"{"a":2}"#]);
    deliver(sink.clone(), records).await;

    assert_eq!(*outcome.lock().unwrap(), [BatchStatus::Delivered]);
    let bulks = cluster.bulks();
    assert_eq!(bulks.len(), 3);
    assert!(
        bulks.iter().all(|b| b.docs().len() == 2),
        "the whole batch is resent"
    );
    assert_eq!(metrics.retries_for("http_5xx"), 2);
    assert_eq!(metrics.events_sent.get(), 2);
    assert!(dead_letters(&sink).is_empty());
}

#[tokio::test]
async fn too_large_request_is_split_in_half() {
    // The fake cluster takes at most two documents per request.
    let cluster = FakeCluster::start(|_, seen| {
        if seen.docs().len() > 2 {
            Reply::status(413)
        } else {
            all_created(seen)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let metrics = SinkMetrics::default();
    let sink = config(vec![cluster.url()])
        .build(dir.path(), metrics.clone())
        .unwrap();
    let docs = [
        r#"{"n":1}"#,
        r#"{"n":2}"#,
        r#"{"n":3}"#,
        r#"{"n":4}"#,
        r#"{"n":5}"#,
    ];
    let (records, outcome) = records(&docs);
    deliver(sink.clone(), records).await;

    assert_eq!(*outcome.lock().unwrap(), [BatchStatus::Delivered]);
    let sizes: Vec<usize> = cluster.bulks().iter().map(|b| b.docs().len()).collect();
    // 5 → 413; first half 2 → ok; second half 3 → 413 → 1 + 2.
    assert_eq!(sizes, [5, 2, 3, 1, 2]);
    let delivered: Vec<String> = cluster
        .bulks()
        .iter()
        .filter(|b| b.docs().len() <= 2)
        .flat_map(Seen::docs)
        .collect();
    assert_eq!(delivered, docs, "each document delivered once, in order");
    assert_eq!(metrics.events_sent.get(), 5);
}

#[tokio::test]
async fn single_document_too_large_is_dead_lettered() {
    let cluster = FakeCluster::start(|_, _| Reply::status(413)).await;
    let dir = tempfile::tempdir().unwrap();
    let metrics = SinkMetrics::default();
    let sink = config(vec![cluster.url()])
        .build(dir.path(), metrics.clone())
        .unwrap();
    let (records, outcome) = records(&[r#"{"huge":true}"#]);
    deliver(sink.clone(), records).await;

    assert_eq!(*outcome.lock().unwrap(), [BatchStatus::Delivered]);
    let letters = dead_letters(&sink);
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["status"], 413);
    assert_eq!(letters[0]["error_type"], "request_entity_too_large");
    assert_eq!(metrics.dead_lettered_for("request_entity_too_large"), 1);
}

#[tokio::test]
async fn connection_refused_on_one_endpoint_fails_over_to_the_next() {
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
        // Dropped here: connecting to it is refused.
    };
    let cluster = FakeCluster::start(|_, seen| all_created(seen)).await;
    let dir = tempfile::tempdir().unwrap();
    let metrics = SinkMetrics::default();
    let mut config = config(vec![format!("http://{dead}"), cluster.url()]);
    config.batch.max_events = std::num::NonZeroUsize::new(1).unwrap();
    let sink = config.build(dir.path(), metrics.clone()).unwrap();
    let docs = [r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":3}"#, r#"{"n":4}"#];
    let (records, outcome) = records(&docs);
    deliver(sink.clone(), records).await;

    assert_eq!(*outcome.lock().unwrap(), [BatchStatus::Delivered]);
    let mut delivered: Vec<String> = cluster.bulks().iter().flat_map(Seen::docs).collect();
    delivered.sort();
    assert_eq!(delivered, docs);
    // The first request went to the dead endpoint; after that it is skipped for a while.
    assert!(metrics.retries_for("connect") >= 1);
    assert!(sink.readiness().is_ready());
}

#[tokio::test]
async fn refused_credentials_are_retried_not_dropped() {
    let cluster = FakeCluster::start(|n, seen| match n {
        0 => Reply::status(401),
        1 => Reply::status(403),
        _ => all_created(seen),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let metrics = SinkMetrics::default();
    let sink = config(vec![cluster.url()])
        .build(dir.path(), metrics.clone())
        .unwrap();
    let (records, outcome) = records(&[r#"{"a":1}"#]);
    deliver(sink, records).await;
    assert_eq!(*outcome.lock().unwrap(), [BatchStatus::Delivered]);
    assert_eq!(metrics.retries_for("unauthorized"), 2);
    assert_eq!(cluster.bulks().len(), 3);
}

#[tokio::test]
async fn unreadable_success_answer_is_retried() {
    let cluster = FakeCluster::start(|n, seen| match n {
        0 => Reply {
            status: 200,
            headers: Vec::new(),
            body: "<html>proxy</html>".into(),
        },
        _ => all_created(seen),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let metrics = SinkMetrics::default();
    let sink = config(vec![cluster.url()])
        .build(dir.path(), metrics.clone())
        .unwrap();
    let (records, outcome) = records(&[r#"{"a":1}"#]);
    deliver(sink, records).await;
    assert_eq!(*outcome.lock().unwrap(), [BatchStatus::Delivered]);
    assert_eq!(metrics.retries_for("invalid_response"), 1);
    assert_eq!(metrics.events_sent.get(), 1);
}

#[tokio::test]
async fn data_stream_mode_creates_and_counts_conflicts_as_delivered() {
    let cluster = FakeCluster::start(|_, seen| {
        per_item(seen, "create", |doc| {
            if doc.contains("again") {
                409
            } else {
                201
            }
        })
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let metrics = SinkMetrics::default();
    let mut config = config(vec![cluster.url()]);
    config.mode = BulkMode::DataStream;
    let sink = config.build(dir.path(), metrics.clone()).unwrap();
    let (records, outcome) = records(&[r#"{"a":1}"#, r#"{"a":2,"b":"again"}"#]);
    deliver(sink.clone(), records).await;

    assert_eq!(*outcome.lock().unwrap(), [BatchStatus::Delivered]);
    let bulks = cluster.bulks();
    assert_eq!(bulks.len(), 1);
    assert_eq!(
        bulks[0].actions()[0],
        json!({"create": {"_index": "logs-hindsight-default"}})
    );
    assert_eq!(metrics.events_sent.get(), 2);
    assert!(dead_letters(&sink).is_empty());
}

#[tokio::test]
async fn requests_carry_gzip_ndjson_auth_and_custom_headers() {
    let cluster = FakeCluster::start(|_, seen| all_created(seen)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(vec![format!("{}/prefix", cluster.url())]);
    config.auth = Some(AuthConfig::Basic {
        user: "hindsight".into(),
        password: "s3cret".into(),
    });
    config.headers.insert("x-tenant".into(), "blue".into());
    let sink = config.build(dir.path(), SinkMetrics::default()).unwrap();
    let (records, _) = records(&[r#"{"a":1}"#]);
    deliver(sink, records).await;

    let bulk = &cluster.bulks()[0];
    assert_eq!(bulk.method, Method::POST);
    assert_eq!(bulk.path, "/prefix/_bulk");
    assert!(bulk.query.starts_with("filter_path="), "{}", bulk.query);
    let header = |name: &str| {
        bulk.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        header("content-type").as_deref(),
        Some("application/x-ndjson")
    );
    assert_eq!(header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(
        header("authorization").as_deref(),
        Some("Basic aGluZHNpZ2h0OnMzY3JldA==")
    );
    assert_eq!(header("x-tenant").as_deref(), Some("blue"));
    assert_eq!(
        bulk.body,
        "{\"index\":{\"_index\":\"logs-hindsight-2026.11.23\"}}\n{\"a\":1}\n"
    );
}

#[tokio::test]
async fn batches_respect_max_events_and_every_batch_is_settled() {
    let cluster = FakeCluster::start(|_, seen| all_created(seen)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(vec![cluster.url()]);
    config.batch.max_events = std::num::NonZeroUsize::new(2).unwrap();
    config.max_in_flight = std::num::NonZeroUsize::new(2).unwrap();
    let sink = config.build(dir.path(), SinkMetrics::default()).unwrap();

    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let run = tokio::spawn(sink.run(rx));
    let mut outcomes = Vec::new();
    for chunk in 0..5 {
        let docs: Vec<String> = (0..3)
            .map(|i| format!("{{\"chunk\":{chunk},\"i\":{i}}}"))
            .collect();
        let docs: Vec<&str> = docs.iter().map(String::as_str).collect();
        let (records, outcome) = records(&docs);
        outcomes.push(outcome);
        tx.send(records).await.unwrap();
    }
    drop(tx);
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .unwrap()
        .unwrap();

    for outcome in outcomes {
        assert_eq!(*outcome.lock().unwrap(), [BatchStatus::Delivered]);
    }
    let bulks = cluster.bulks();
    assert!(bulks.iter().all(|b| b.docs().len() <= 2));
    assert_eq!(bulks.iter().map(|b| b.docs().len()).sum::<usize>(), 15);
}

#[tokio::test]
async fn blank_documents_are_dead_lettered_without_being_sent() {
    let cluster = FakeCluster::start(|_, seen| all_created(seen)).await;
    let dir = tempfile::tempdir().unwrap();
    let sink = config(vec![cluster.url()])
        .build(dir.path(), SinkMetrics::default())
        .unwrap();
    let (records, outcome) = records(&["", r#"{"a":1}"#]);
    deliver(sink.clone(), records).await;
    assert_eq!(*outcome.lock().unwrap(), [BatchStatus::Delivered]);
    assert_eq!(cluster.bulks()[0].docs(), [r#"{"a":1}"#]);
    let letters = dead_letters(&sink);
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["error_type"], "empty_document");
    assert_eq!(letters[0]["document"], "");
}

#[tokio::test]
async fn dropping_the_running_sink_leaves_records_undelivered() {
    // The cluster never recovers; shutdown's grace timeout drops the sink.
    let cluster = FakeCluster::start(|_, _| Reply::status(503)).await;
    let dir = tempfile::tempdir().unwrap();
    let sink = config(vec![cluster.url()])
        .build(dir.path(), SinkMetrics::default())
        .unwrap();
    let (records, outcome) = records(&[r#"{"a":1}"#]);
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(records).await.unwrap();
    drop(tx);
    let result = tokio::time::timeout(Duration::from_millis(100), sink.run(rx)).await;
    assert!(result.is_err(), "a failing cluster keeps the records");
    // Give aborted delivery tasks a moment to drop their records.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(*outcome.lock().unwrap(), [BatchStatus::Undelivered]);
    assert!(cluster.bulks().len() >= 2, "it kept retrying");
}

#[tokio::test]
async fn healthcheck_reads_the_distribution_and_rejects_old_versions() {
    let cluster = FakeCluster::start(|n, _| match n {
        0 => Reply::json(
            200,
            json!({"version": {"distribution": "opensearch", "number": "2.19.1"}}),
        ),
        _ => Reply::json(
            200,
            json!({"version": {"number": "6.8.23"}, "tagline": "You Know, for Search"}),
        ),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let sink = config(vec![cluster.url()])
        .build(dir.path(), SinkMetrics::default())
        .unwrap();
    assert!(!sink.readiness().is_ready());
    let info = sink.healthcheck().await.unwrap();
    assert_eq!(
        (info.distribution, info.major, info.version.as_str()),
        (Distribution::OpenSearch, 2, "2.19.1")
    );
    assert!(sink.readiness().is_ready());
    assert_eq!(cluster.seen()[0].method, Method::GET);
    assert_eq!(cluster.seen()[0].path, "/");

    let error = sink.healthcheck().await.unwrap_err();
    assert!(
        matches!(error, ElasticsearchError::Unsupported { .. }),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("Elasticsearch 6.8.23 is not supported"),
        "{error}"
    );
}

#[tokio::test]
async fn healthcheck_names_every_endpoint_that_failed() {
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let cluster = FakeCluster::start(|_, _| Reply::status(500)).await;
    let dir = tempfile::tempdir().unwrap();
    let sink = config(vec![format!("http://{dead}"), cluster.url()])
        .build(dir.path(), SinkMetrics::default())
        .unwrap();
    let error = sink.healthcheck().await.unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, ElasticsearchError::Unreachable { ref errors } if errors.len() == 2),
        "{text}"
    );
    assert!(
        text.contains(&dead.to_string()) && text.contains("HTTP 500"),
        "{text}"
    );
    assert!(!sink.readiness().is_ready());
}

#[tokio::test]
async fn template_is_put_with_the_pattern_of_the_index() {
    let cluster = FakeCluster::start(|n, _| match n {
        0 => Reply::json(200, json!({"acknowledged": true})),
        _ => Reply::json(
            400,
            json!({"error": {"type": "illegal_argument_exception", "reason": "bad"}}),
        ),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(vec![cluster.url()]);
    config.index = Some("app-logs-%Y.%m".into());
    config.template.name = "app-logs".into();
    let sink = config.build(dir.path(), SinkMetrics::default()).unwrap();
    sink.install_template().await.unwrap();
    let put = &cluster.seen()[0];
    assert_eq!(
        (put.method.clone(), put.path.as_str()),
        (Method::PUT, "/_index_template/app-logs")
    );
    let body: Value = serde_json::from_str(&put.body).unwrap();
    assert_eq!(body["index_patterns"], json!(["app-logs-*"]));
    assert_eq!(
        body["template"]["mappings"]["properties"]["@timestamp"]["type"],
        "date_nanos"
    );

    let error = sink.install_template().await.unwrap_err();
    assert!(
        matches!(error, ElasticsearchError::Status { status: 400, .. }),
        "{error}"
    );
}
