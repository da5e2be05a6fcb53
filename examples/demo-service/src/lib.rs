//! A small HTTP "checkout" service for Hindsight's demo, end-to-end tests and benchmarks.
//!
//! It behaves like an instrumented service behind the sidecar proxy: it reads the request id
//! (`X-Request-ID`) and the W3C `traceparent` it receives and writes them into every JSON log
//! line of that request, one object per line, as a containerised service writes to stdout.
//! It never makes ids up: without those headers its lines carry no `request_id`, `trace_id`
//! or `span_id` (creating them is the proxy's job).
//!
//! Endpoints:
//! - `GET /healthz`: `ok`, not logged (probes would drown the interesting lines);
//! - `GET|POST /checkout`: logs a few debug/info lines and answers 200, except every N-th
//!   request ([`FailSchedule`]) or one with `X-Demo-Fail: 1`, which logs an error
//!   "payment provider timed out" and answers 500;
//! - `GET /slow?ms=250`: waits that long (at most [`MAX_SLOW_MS`]), then answers 200.
//!
//! Every logged request ends with a line carrying `http.method`, `http.path` and
//! `http.status`:
//!
//! ```text
//! {"time":"2025-06-01T12:00:00.123456789Z","level":"info","msg":"request finished","request_id":"r-1","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","http.method":"POST","http.path":"/checkout","http.status":200}
//! ```

use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use chrono::{SecondsFormat, Utc};
use hindsight_correlation::propagation::{Traceparent, TraceparentError};
use serde::Serialize;

/// The longest wait `/slow` accepts, in milliseconds.
pub const MAX_SLOW_MS: u64 = 60_000;

/// The header that makes a `/checkout` request fail on purpose when its value is `1`.
pub const DEMO_FAIL_HEADER: &str = "x-demo-fail";

/// Severity of a log line, written lower-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Detail that only matters when the request fails.
    Debug,
    /// A normal step.
    Info,
    /// Something odd that did not fail the request.
    Warn,
    /// The request failed.
    Error,
}

/// The identity a request arrived with; empty when the caller sent no such headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestIds {
    /// `X-Request-ID`, as received.
    pub request_id: Option<String>,
    /// Trace id (32 hex digits) from a valid `traceparent`.
    pub trace_id: Option<String>,
    /// The caller's span id (16 hex digits) from a valid `traceparent`.
    pub span_id: Option<String>,
}

impl RequestIds {
    /// Reads `X-Request-ID` and `traceparent`. A malformed `traceparent` gives no trace ids
    /// and its error, so the caller can log it.
    ///
    /// ```
    /// use axum::http::HeaderMap;
    /// use demo_service::RequestIds;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap());
    /// let (ids, error) = RequestIds::from_headers(&headers);
    /// assert_eq!(ids.trace_id.as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    /// assert_eq!(ids.span_id.as_deref(), Some("00f067aa0ba902b7"));
    /// assert_eq!(ids.request_id, None);
    /// assert!(error.is_none());
    /// ```
    pub fn from_headers(headers: &HeaderMap) -> (RequestIds, Option<TraceparentError>) {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let mut ids = RequestIds {
            request_id: text("x-request-id").map(str::to_owned),
            ..RequestIds::default()
        };
        let mut error = None;
        if let Some(value) = text("traceparent") {
            match Traceparent::parse(value) {
                Ok(tp) => {
                    ids.trace_id = Some(tp.trace_id.to_hex().to_string());
                    ids.span_id = Some(tp.parent_id.to_hex().to_string());
                }
                Err(e) => error = Some(e),
            }
        }
        (ids, error)
    }
}

/// The `http.*` fields of a request's last line.
#[derive(Debug, Clone, Serialize)]
pub struct HttpFields<'a> {
    /// Request method.
    #[serde(rename = "http.method")]
    pub method: &'a str,
    /// Request path, without the query.
    #[serde(rename = "http.path")]
    pub path: &'a str,
    /// Response status code.
    #[serde(rename = "http.status")]
    pub status: u16,
}

/// One log line, in field order.
#[derive(Serialize)]
struct Line<'a> {
    time: String,
    level: Level,
    msg: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    span_id: Option<&'a str>,
    #[serde(flatten)]
    http: Option<HttpFields<'a>>,
}

/// Writes JSON log lines, one `write` per line, so that lines of concurrent requests never
/// interleave and a tailer never sees half a line for long.
pub struct Logger {
    out: Mutex<Box<dyn Write + Send>>,
}

impl Logger {
    /// Logs to any writer (tests use a buffer).
    pub fn new(out: impl Write + Send + 'static) -> Logger {
        Logger {
            out: Mutex::new(Box::new(out)),
        }
    }

    /// Logs to stdout for `-`, else appends to the file at `path` (created if missing).
    pub fn open(path: &Path) -> io::Result<Logger> {
        if path == Path::new("-") {
            return Ok(Logger::new(io::stdout()));
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Logger::new(file))
    }

    /// Writes one line. A failed write is reported on stderr; the request goes on.
    pub fn log(&self, level: Level, msg: &str, ids: &RequestIds, http: Option<HttpFields<'_>>) {
        let line = Line {
            time: Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true),
            level,
            msg,
            request_id: ids.request_id.as_deref(),
            trace_id: ids.trace_id.as_deref(),
            span_id: ids.span_id.as_deref(),
            http,
        };
        let mut buf = Vec::with_capacity(256);
        if serde_json::to_writer(&mut buf, &line).is_err() {
            return;
        }
        buf.push(b'\n');
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Err(e) = out.write_all(&buf).and_then(|()| out.flush()) {
            eprintln!("demo-service: cannot write a log line: {e}");
        }
    }
}

/// Which `/checkout` requests fail: the `every`-th, `2 × every`-th, …; none when `every` is 0.
/// Deterministic, so a test knows which request fails.
#[derive(Debug)]
pub struct FailSchedule {
    every: u64,
    seen: AtomicU64,
}

impl FailSchedule {
    /// A schedule failing every `every`-th request (0: never).
    pub fn new(every: u64) -> FailSchedule {
        FailSchedule {
            every,
            seen: AtomicU64::new(0),
        }
    }

    /// Counts one request; true when it is one that must fail.
    pub fn next_fails(&self) -> bool {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        self.every != 0 && n % self.every == 0
    }
}

/// What the handlers share.
struct Shared {
    log: Logger,
    schedule: FailSchedule,
}

/// The service's handle, cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// State that logs to `log` and fails `/checkout` every `fail_every`-th request.
    pub fn new(log: Logger, fail_every: u64) -> AppState {
        AppState(Arc::new(Shared {
            log,
            schedule: FailSchedule::new(fail_every),
        }))
    }

    /// Logs a line without `http.*` fields.
    pub fn log(&self, level: Level, msg: &str, ids: &RequestIds) {
        self.0.log.log(level, msg, ids, None);
    }
}

/// The service's routes.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/checkout", get(checkout).post(checkout))
        .route("/slow", get(slow))
        .layer(middleware::from_fn_with_state(state.clone(), request_log))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(state)
}

/// Reads the request's ids for the handler and logs the final line with the status.
async fn request_log(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let (ids, error) = RequestIds::from_headers(req.headers());
    if let Some(e) = error {
        state.log(
            Level::Warn,
            &format!("ignoring malformed traceparent: {e}"),
            &ids,
        );
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    req.extensions_mut().insert(ids.clone());

    let response = next.run(req).await;

    let status = response.status();
    let level = match status.as_u16() {
        500.. => Level::Error,
        400..=499 => Level::Warn,
        _ => Level::Info,
    };
    let http = HttpFields {
        method: method.as_str(),
        path: &path,
        status: status.as_u16(),
    };
    state.0.log.log(level, "request finished", &ids, Some(http));
    response
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(CONTENT_TYPE, "application/json")], body).into_response()
}

/// `GET|POST /checkout`: a few steps, then 200 — or 500 when scheduled or asked to fail.
async fn checkout(
    State(state): State<AppState>,
    Extension(ids): Extension<RequestIds>,
    headers: HeaderMap,
) -> Response {
    // Counted for every request, so the schedule does not depend on the header.
    let scheduled = state.0.schedule.next_fails();
    let asked = headers
        .get(DEMO_FAIL_HEADER)
        .is_some_and(|v| v.as_bytes() == b"1");

    state.log(Level::Debug, "cart loaded", &ids);
    state.log(Level::Info, "calling payment provider", &ids);
    if scheduled || asked {
        state.log(Level::Error, "payment provider timed out", &ids);
        return json(
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":"payment provider timed out"}"#.into(),
        );
    }
    state.log(Level::Debug, "payment authorized", &ids);
    json(StatusCode::OK, r#"{"status":"paid"}"#.into())
}

/// The `ms` query parameter: absent → 100; not a number → `None`; capped at [`MAX_SLOW_MS`].
fn slow_ms(query: Option<&str>) -> Option<u64> {
    let value = query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("ms="));
    match value {
        None => Some(100),
        Some(v) => v.parse::<u64>().ok().map(|ms| ms.min(MAX_SLOW_MS)),
    }
}

/// `GET /slow?ms=..`: waits, then answers.
async fn slow(
    State(state): State<AppState>,
    Extension(ids): Extension<RequestIds>,
    req: Request,
) -> Response {
    let Some(ms) = slow_ms(req.uri().query()) else {
        return json(
            StatusCode::BAD_REQUEST,
            r#"{"error":"ms must be a whole number of milliseconds"}"#.into(),
        );
    };
    state.log(Level::Info, "waiting for the inventory service", &ids);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    state.log(Level::Debug, "inventory answered", &ids);
    json(StatusCode::OK, format!(r#"{{"slept_ms":{ms}}}"#))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt as _;

    /// A log sink the test can read back.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        fn lines(&self) -> Vec<serde_json::Value> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    }

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn fail_schedule_fails_every_nth() {
        let schedule = FailSchedule::new(3);
        let fails: Vec<bool> = (0..7).map(|_| schedule.next_fails()).collect();
        assert_eq!(fails, [false, false, true, false, false, true, false]);
        let never = FailSchedule::new(0);
        assert!((0..100).all(|_| !never.next_fails()));
    }

    #[test]
    fn ids_come_only_from_headers() {
        let (none, error) = RequestIds::from_headers(&HeaderMap::new());
        assert_eq!(none, RequestIds::default());
        assert!(error.is_none());

        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", "r-42".parse().unwrap());
        headers.insert("traceparent", TRACEPARENT.parse().unwrap());
        let (ids, _) = RequestIds::from_headers(&headers);
        assert_eq!(ids.request_id.as_deref(), Some("r-42"));
        assert_eq!(
            ids.trace_id.as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(ids.span_id.as_deref(), Some("00f067aa0ba902b7"));

        // Upper-case hex is invalid per W3C: no trace ids, but the request id stays.
        headers.insert("traceparent", TRACEPARENT.to_uppercase().parse().unwrap());
        let (ids, error) = RequestIds::from_headers(&headers);
        assert!(error.is_some());
        assert_eq!((ids.trace_id, ids.span_id), (None, None));
        assert_eq!(ids.request_id.as_deref(), Some("r-42"));
    }

    #[test]
    fn slow_ms_parsing() {
        assert_eq!(slow_ms(None), Some(100));
        assert_eq!(slow_ms(Some("x=1&ms=250")), Some(250));
        assert_eq!(slow_ms(Some("ms=99999999")), Some(MAX_SLOW_MS));
        assert_eq!(slow_ms(Some("ms=soon")), None);
    }

    async fn call(app: &Router, headers: &[(&str, &str)]) -> StatusCode {
        let mut req = Request::post("/checkout");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(Body::empty()).unwrap();
        app.clone().oneshot(req).await.unwrap().status()
    }

    #[tokio::test]
    async fn checkout_logs_received_ids_and_fails_on_request() {
        let buffer = Buffer::default();
        let app = app(AppState::new(Logger::new(buffer.clone()), 0));

        let status = call(
            &app,
            &[
                ("x-request-id", "r-1"),
                ("traceparent", TRACEPARENT),
                ("x-demo-fail", "1"),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let lines = buffer.lines();
        assert!(lines.iter().all(|l| l["request_id"] == "r-1"
            && l["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
            && l["span_id"] == "00f067aa0ba902b7"));
        assert!(lines
            .iter()
            .any(|l| l["level"] == "error" && l["msg"] == "payment provider timed out"));
        let last = lines.last().unwrap();
        assert_eq!(last["http.method"], "POST");
        assert_eq!(last["http.path"], "/checkout");
        assert_eq!(last["http.status"], 500);
    }

    #[tokio::test]
    async fn checkout_without_headers_invents_no_ids() {
        let buffer = Buffer::default();
        let app = app(AppState::new(Logger::new(buffer.clone()), 2));

        assert_eq!(call(&app, &[]).await, StatusCode::OK);
        assert_eq!(
            call(&app, &[]).await,
            StatusCode::INTERNAL_SERVER_ERROR,
            "the 2nd request is scheduled to fail"
        );
        for line in buffer.lines() {
            let object = line.as_object().unwrap();
            for key in ["request_id", "trace_id", "span_id"] {
                assert!(!object.contains_key(key), "{key} in {line}");
            }
            assert!(object["time"].as_str().unwrap().ends_with('Z'));
        }
    }
}
