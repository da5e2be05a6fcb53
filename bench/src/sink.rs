//! A local stand-in for Elasticsearch/OpenSearch that speaks just enough of the API for a
//! log shipper: `GET /` (an OpenSearch 3.8.0 node), `PUT /_index_template/<name>`,
//! `GET /_cluster/health`, and `POST /_bulk` / `POST /<index>/_bulk` with plain or gzip
//! bodies. Every well-formed bulk item is acknowledged (201) and counted; a body that is
//! not a bulk body (bad gzip, an action line that is not `{"<op>":{...}}`, a missing
//! document line) is answered 400 and counted, never a crash.
//!
//! Answers carry the `X-Elastic-Product: Elasticsearch` header that Elasticsearch clients
//! check for.
//!
//! `GET /_bench/stats` returns [`SinkStats`]; `POST /_bench/reset` zeroes them.
//!
//! Optionally it reads a latency field (Unix nanoseconds of writing) from each document
//! and records how long ago that was when the request arrived: write-to-visible latency.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use serde::Deserialize;

use crate::sink_stats::{LatencyStats, SinkStats};

/// The largest request body accepted, before and after decompression.
pub const MAX_BODY_BYTES: usize = 1 << 30;

/// How the sink behaves.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// A numeric top-level field holding the write time (Unix ns) to measure latency from.
    pub latency_field: Option<String>,
    /// Parse every n-th document as JSON to check the shipper's output (0: never).
    pub validate_every: u64,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            latency_field: None,
            validate_every: 1000,
        }
    }
}

/// The shared state behind the routes.
#[derive(Debug, Default)]
pub struct SinkState {
    options: SinkOptions,
    counters: Mutex<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    stats: SinkStats,
    latencies_us: Vec<u64>,
    next_id: u64,
}

impl SinkState {
    /// A sink with these options and zero counters.
    pub fn new(options: SinkOptions) -> Arc<Self> {
        Arc::new(SinkState {
            options,
            counters: Mutex::default(),
        })
    }

    fn counters(&self) -> MutexGuard<'_, Counters> {
        // A panic while holding the lock cannot leave the counters inconsistent in a way
        // that matters for a benchmark; keep serving.
        self.counters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The counters now, with latency percentiles.
    pub fn stats(&self) -> SinkStats {
        let counters = self.counters();
        let mut stats = counters.stats.clone();
        let mut samples = counters.latencies_us.clone();
        drop(counters);
        stats.latency = LatencyStats::from_micros(&mut samples);
        stats
    }
}

/// The routes.
pub fn router(state: Arc<SinkState>) -> Router {
    Router::new()
        .route("/", get(root).head(root))
        .route("/_cluster/health", get(health))
        .route(
            "/_index_template/{name}",
            put(acknowledged).post(acknowledged),
        )
        .route("/_bulk", post(bulk).put(bulk))
        .route("/{index}/_bulk", post(bulk_in_index).put(bulk_in_index))
        .route("/_bench/stats", get(stats))
        .route("/_bench/reset", post(reset))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(elastic_product))
        .with_state(state)
}

/// Every answer, the router's own (405, 413) included, carries `X-Elastic-Product:
/// Elasticsearch`: the Go Elasticsearch client (the OpenTelemetry Collector's exporter)
/// refuses a server without it, and other clients ignore it.
async fn elastic_product(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::HeaderName::from_static("x-elastic-product"),
        header::HeaderValue::from_static("Elasticsearch"),
    );
    response
}

fn json(status: StatusCode, body: impl Into<Vec<u8>>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.into(),
    )
        .into_response()
}

async fn root() -> Response {
    json(
        StatusCode::OK,
        r#"{"name":"bulk-sink","cluster_name":"hindsight-bench","version":{"distribution":"opensearch","number":"3.8.0","minimum_wire_compatibility_version":"2.19.0","minimum_index_compatibility_version":"2.0.0"},"tagline":"The OpenSearch Project: https://opensearch.org/"}"#,
    )
}

async fn health() -> Response {
    json(
        StatusCode::OK,
        r#"{"cluster_name":"hindsight-bench","status":"green","number_of_nodes":1}"#,
    )
}

async fn acknowledged() -> Response {
    json(StatusCode::OK, r#"{"acknowledged":true}"#)
}

async fn not_found() -> Response {
    json(
        StatusCode::NOT_FOUND,
        r#"{"error":{"type":"resource_not_found_exception","reason":"the bulk sink does not serve this path"},"status":404}"#,
    )
}

async fn stats(State(state): State<Arc<SinkState>>) -> Response {
    match serde_json::to_vec(&state.stats()) {
        Ok(body) => json(StatusCode::OK, body),
        Err(error) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({ "error": error.to_string() }).to_string(),
        ),
    }
}

async fn reset(State(state): State<Arc<SinkState>>) -> Response {
    *state.counters() = Counters::default();
    acknowledged().await
}

async fn bulk(
    State(state): State<Arc<SinkState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle_bulk(&state, None, query.as_deref(), &headers, &body)
}

async fn bulk_in_index(
    State(state): State<Arc<SinkState>>,
    Path(index): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle_bulk(&state, Some(&index), query.as_deref(), &headers, &body)
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn handle_bulk(
    state: &SinkState,
    index: Option<&str>,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let arrived_ns = unix_ns();
    let started = Instant::now();
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok());
    let gzip = matches!(encoding, Some(e) if e.eq_ignore_ascii_case("gzip"));
    let short = query.is_some_and(|q| q.split('&').any(|pair| pair.starts_with("filter_path=")));
    let first_id = state.counters().next_id;
    let parsed = decode(body, encoding).and_then(|plain| {
        let outcome = process_bulk(&plain, index, &state.options, first_id, arrived_ns)?;
        Ok((plain.len(), outcome))
    });
    let (plain_len, outcome) = match parsed {
        Ok(parsed) => parsed,
        Err(reason) => {
            state.counters().stats.bad_requests += 1;
            let body = serde_json::json!({
                "error": {"type": "illegal_argument_exception", "reason": reason},
                "status": 400
            });
            return json(StatusCode::BAD_REQUEST, body.to_string());
        }
    };
    let response = render_response(&outcome, index, short, first_id, started);
    let mut counters = state.counters();
    counters.next_id += outcome.ops.len() as u64;
    counters
        .latencies_us
        .extend_from_slice(&outcome.latencies_us);
    let stats = &mut counters.stats;
    stats.bulk_requests += 1;
    stats.docs += outcome.ops.len() as u64;
    stats.wire_bytes += body.len() as u64;
    stats.body_bytes += plain_len as u64;
    stats.doc_bytes += outcome.doc_bytes;
    stats.gzip_requests += u64::from(gzip);
    stats.validated += outcome.validated;
    stats.invalid += outcome.invalid;
    let now = unix_ns();
    if stats.first_bulk_unix_ns == 0 {
        stats.first_bulk_unix_ns = now;
    }
    stats.last_bulk_unix_ns = now;
    drop(counters);
    json(StatusCode::OK, response)
}

/// The body, gunzipped when `Content-Encoding: gzip`.
fn decode<'a>(body: &'a [u8], encoding: Option<&str>) -> Result<Cow<'a, [u8]>, String> {
    match encoding.map(str::trim) {
        None | Some("") | Some("identity") => Ok(Cow::Borrowed(body)),
        Some(e) if e.eq_ignore_ascii_case("gzip") => {
            let mut plain = Vec::with_capacity(body.len().saturating_mul(6).min(64 << 20));
            flate2::read::MultiGzDecoder::new(body)
                .take(MAX_BODY_BYTES as u64 + 1)
                .read_to_end(&mut plain)
                .map_err(|error| format!("the gzip body cannot be decompressed: {error}"))?;
            if plain.len() > MAX_BODY_BYTES {
                return Err(format!(
                    "the decompressed body exceeds {MAX_BODY_BYTES} bytes"
                ));
            }
            Ok(Cow::Owned(plain))
        }
        Some(other) => Err(format!("unsupported Content-Encoding `{other}`")),
    }
}

/// A bulk action, as far as the sink cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Index,
    Create,
    Update,
    Delete,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Index => "index",
            Op::Create => "create",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }
}

#[derive(Debug, Deserialize)]
struct ActionMeta {
    #[serde(rename = "_index")]
    index: Option<String>,
}

/// An item's index, shared by the items of one action line.
type IndexName = Option<Arc<str>>;

/// What one bulk body held.
#[derive(Debug, Default)]
struct BulkOutcome {
    /// Each item's op and index.
    ops: Vec<(Op, IndexName)>,
    doc_bytes: u64,
    validated: u64,
    invalid: u64,
    latencies_us: Vec<u64>,
}

/// The JSON number `text` starts with, as Unix nanoseconds: an integer, or a float such
/// as `1.7955e18` from a shipper that turns every number into a double (the OpenTelemetry
/// Collector's JSON parser does; a double keeps it to within a microsecond).
fn unix_ns_number(text: &[u8]) -> Option<u64> {
    let end = text
        .iter()
        .position(|b| !matches!(b, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'))
        .unwrap_or(text.len());
    let number = std::str::from_utf8(&text[..end]).ok()?;
    number.parse::<u64>().ok().or_else(|| {
        let float: f64 = number.parse().ok()?;
        (float.is_finite() && float >= 0.0).then_some(float as u64)
    })
}

/// Reads a bulk body: action lines, each (but `delete`) followed by its document.
/// `first_id` numbers the documents (for validation sampling); `arrived_ns` is when the
/// request arrived, for latency.
fn process_bulk(
    body: &[u8],
    default_index: Option<&str>,
    options: &SinkOptions,
    first_id: u64,
    arrived_ns: u64,
) -> Result<BulkOutcome, String> {
    let mut outcome = BulkOutcome::default();
    let latency_key = options
        .latency_field
        .as_ref()
        .map(|field| format!("\"{field}\":"));
    let latency_finder = latency_key
        .as_ref()
        .map(|key| memchr::memmem::Finder::new(key.as_bytes()));
    // The previous action line and what it meant: shippers repeat the same action line.
    let mut last_action: Option<(&[u8], Op, IndexName)> = None;
    let default_index: IndexName = default_index.map(Arc::from);
    let mut lines = body
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace));
    while let Some((number, action)) = lines.next() {
        let (op, index) = match &last_action {
            Some((bytes, op, index)) if *bytes == action => (*op, index.clone()),
            _ => {
                let (op, index) =
                    parse_action(action).map_err(|why| format!("line {}: {why}", number + 1))?;
                let index = index.map(Arc::from).or_else(|| default_index.clone());
                last_action = Some((action, op, index.clone()));
                (op, index)
            }
        };
        if op != Op::Delete {
            let Some((_, doc)) = lines.next() else {
                return Err(format!(
                    "line {}: the `{}` action has no document line",
                    number + 1,
                    op.name()
                ));
            };
            outcome.doc_bytes += doc.len() as u64;
            let sequence = first_id + outcome.ops.len() as u64;
            if options.validate_every > 0 && sequence % options.validate_every == 0 {
                outcome.validated += 1;
                let is_object = doc.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
                if !is_object || serde_json::from_slice::<serde::de::IgnoredAny>(doc).is_err() {
                    outcome.invalid += 1;
                }
            }
            if let (Some(finder), Some(key)) = (&latency_finder, &latency_key) {
                if let Some(at) = finder.find(doc) {
                    if let Some(sent) = unix_ns_number(&doc[at + key.len()..]) {
                        outcome
                            .latencies_us
                            .push(arrived_ns.saturating_sub(sent) / 1000);
                    }
                }
            }
        }
        outcome.ops.push((op, index));
    }
    Ok(outcome)
}

/// Reads `{"<op>":{...}}`.
fn parse_action(line: &[u8]) -> Result<(Op, Option<String>), String> {
    let action: HashMap<String, ActionMeta> = serde_json::from_slice(line)
        .map_err(|error| format!("not a bulk action line ({error})"))?;
    let mut entries = action.into_iter();
    let (Some((name, meta)), None) = (entries.next(), entries.next()) else {
        return Err("a bulk action line must name exactly one action".to_owned());
    };
    let op = match name.as_str() {
        "index" => Op::Index,
        "create" => Op::Create,
        "update" => Op::Update,
        "delete" => Op::Delete,
        other => return Err(format!("unknown bulk action `{other}`")),
    };
    Ok((op, meta.index))
}

/// A 200 answer acknowledging every item. With `short` (the client asked for
/// `filter_path`), items carry only their status, as Elasticsearch would then send.
fn render_response(
    outcome: &BulkOutcome,
    default_index: Option<&str>,
    short: bool,
    first_id: u64,
    started: Instant,
) -> Vec<u8> {
    use std::io::Write as _;
    let took = started.elapsed().as_millis();
    let per_item = if short { 28 } else { 110 };
    let mut out = Vec::with_capacity(64 + outcome.ops.len() * per_item);
    let _ = write!(out, "{{\"took\":{took},\"errors\":false,\"items\":[");
    for (n, (op, index)) in outcome.ops.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        let status = if *op == Op::Create || *op == Op::Index {
            201
        } else {
            200
        };
        if short {
            let _ = write!(out, "{{\"{}\":{{\"status\":{status}}}}}", op.name());
        } else {
            let index = index.as_deref().or(default_index).unwrap_or("unknown");
            // Index names cannot contain `"` or `\` in Elasticsearch; escape anyway.
            let index = serde_json::to_string(index).unwrap_or_else(|_| "\"unknown\"".into());
            let result = match op {
                Op::Delete => "deleted",
                Op::Update => "updated",
                _ => "created",
            };
            let _ = write!(
                out,
                "{{\"{}\":{{\"_index\":{index},\"_id\":\"{}\",\"_version\":1,\"result\":\"{result}\",\"_shards\":{{\"total\":1,\"successful\":1,\"failed\":0}},\"status\":{status}}}}}",
                op.name(),
                first_id + n as u64,
            );
        }
    }
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn options() -> SinkOptions {
        SinkOptions {
            latency_field: Some("sent".into()),
            validate_every: 1,
        }
    }

    #[test]
    fn write_times_are_read_as_integers_or_doubles() {
        assert_eq!(
            unix_ns_number(b"1795507628499705288,"),
            Some(1_795_507_628_499_705_288)
        );
        let from_double = unix_ns_number(b"1.795507628499705e+18}").unwrap();
        assert!(from_double.abs_diff(1_795_507_628_499_705_288) < 1_000);
        assert_eq!(unix_ns_number(b"\"text\""), None);
        assert_eq!(unix_ns_number(b"-5,"), None);
    }

    /// The raw response of `request` sent to a sink serving on a free port.
    fn exchange(request: &str) -> String {
        use std::io::Read as _;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let state = SinkState::new(SinkOptions::default());
            tokio::spawn(async move { axum::serve(listener, router(state)).await });
            let request = request.to_owned();
            tokio::task::spawn_blocking(move || {
                let mut stream = std::net::TcpStream::connect(address).unwrap();
                stream.write_all(request.as_bytes()).unwrap();
                let mut response = String::new();
                stream.read_to_string(&mut response).unwrap();
                response
            })
            .await
            .unwrap()
        })
    }

    #[test]
    fn every_answer_carries_the_header_elasticsearch_clients_check() {
        for (request, status) in [
            (
                "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                "200",
            ),
            // Answered by the router itself, not by a handler.
            (
                "DELETE /_cluster/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                "405",
            ),
        ] {
            let response = exchange(request);
            assert!(
                response.starts_with(&format!("HTTP/1.1 {status}")),
                "{response}"
            );
            assert!(
                response
                    .to_ascii_lowercase()
                    .contains("x-elastic-product: elasticsearch\r\n"),
                "{response}"
            );
        }
    }

    #[test]
    fn counts_items_of_every_kind() {
        let body = b"{\"index\":{\"_index\":\"a\"}}\n{\"x\":1}\n{\"create\":{}}\n{\"y\":2}\n{\"delete\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"update\":{\"_id\":\"2\"}}\n{\"doc\":{}}\n";
        let outcome = process_bulk(body, Some("d"), &options(), 0, 0).unwrap();
        let ops: Vec<_> = outcome.ops.iter().map(|(op, _)| *op).collect();
        assert_eq!(ops, [Op::Index, Op::Create, Op::Delete, Op::Update]);
        assert_eq!(outcome.ops[1].1.as_deref(), Some("d"));
        assert_eq!((outcome.validated, outcome.invalid), (3, 0));
        let response = render_response(&outcome, Some("d"), false, 0, Instant::now());
        let value: serde_json::Value = serde_json::from_slice(&response).unwrap();
        assert_eq!(value["errors"], false);
        assert_eq!(value["items"].as_array().unwrap().len(), 4);
        assert_eq!(value["items"][0]["index"]["_index"], "a");
        assert_eq!(value["items"][1]["create"]["status"], 201);
        let short = render_response(&outcome, None, true, 0, Instant::now());
        let value: serde_json::Value = serde_json::from_slice(&short).unwrap();
        assert_eq!(value["items"][2]["delete"]["status"], 200);
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        for body in [
            &b"not json\n"[..],
            b"{\"index\":{}}\n",
            b"{\"index\":{},\"create\":{}}\n{}\n",
            b"{\"frobnicate\":{}}\n{}\n",
            b"[1,2]\n{}\n",
            b"{\"index\":{\"_index\":5}}\n{}\n",
        ] {
            assert!(
                process_bulk(body, None, &options(), 0, 0).is_err(),
                "{body:?}"
            );
        }
        assert!(decode(b"not gzip", Some("gzip")).is_err());
        assert!(decode(b"x", Some("br")).is_err());
        // Empty bodies and blank lines are fine: zero items.
        assert!(process_bulk(b"\n\n", None, &options(), 0, 0)
            .unwrap()
            .ops
            .is_empty());
    }

    #[test]
    fn invalid_documents_are_counted_and_latency_is_read() {
        let body = b"{\"index\":{}}\n{\"sent\":1000000,\"m\":\"x\"}\n{\"index\":{}}\n{broken\n";
        let outcome = process_bulk(body, None, &options(), 0, 3_000_000).unwrap();
        assert_eq!((outcome.validated, outcome.invalid), (2, 1));
        assert_eq!(outcome.latencies_us, [2000]);
    }

    #[test]
    fn gzip_bodies_are_decoded() {
        let body = b"{\"index\":{}}\n{\"a\":1}\n";
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(body).unwrap();
        let gz = encoder.finish().unwrap();
        assert_eq!(&*decode(&gz, Some("gzip")).unwrap(), body);
        assert_eq!(&*decode(body, None).unwrap(), body);
    }
}
