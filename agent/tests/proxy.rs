//! The sidecar proxy on real sockets, in front of a small upstream started by each test.
//!
//! The upstream answers `/echo*` with the request it received as JSON (method, version,
//! headers, body length), `/status/{code}` with that status, `/stream` with a large body
//! whose rest it sends only when the test says so, and `/slow` after two seconds. Spans
//! go to an in-memory exporter; the end-to-end test against Jaeger lives in `tests/`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hindsight::handoff::{self, RequestOutcome};
use hindsight::proxy::{ProxyConfig, HANDOFF_CAPACITY};
use hindsight_correlation::ids::RequestId;
use hindsight_correlation::propagation::Traceparent;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use prometheus_client::registry::Registry;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

/// Long enough for a loaded CI machine; only reached when something is broken.
const PATIENCE: Duration = Duration::from_secs(20);
const STREAM_CHUNK: usize = 16 * 1024;
const STREAM_CHUNKS: usize = 64;

// ---------------------------------------------------------------- the upstream

type UpstreamBody = BoxBody<Bytes, Infallible>;

struct Upstream {
    addr: SocketAddr,
    /// Lets `/stream` send the rest of its body.
    release: Arc<Notify>,
}

async fn start_upstream() -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let release = Arc::new(Notify::new());
    let shared = release.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let release = shared.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    upstream_answer(request, release.clone())
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Upstream { addr, release }
}

async fn upstream_answer(
    request: Request<Incoming>,
    release: Arc<Notify>,
) -> Result<Response<UpstreamBody>, Infallible> {
    let path = request.uri().path().to_owned();
    if path == "/stream" {
        let chunks = futures::stream::unfold(0usize, move |sent| {
            let release = release.clone();
            async move {
                if sent == STREAM_CHUNKS {
                    return None;
                }
                if sent == 1 {
                    // The first chunk is out; the rest waits until the client has seen it.
                    release.notified().await;
                }
                let chunk = Bytes::from(vec![b'a' + (sent % 26) as u8; STREAM_CHUNK]);
                Some((Ok::<_, Infallible>(Frame::data(chunk)), sent + 1))
            }
        });
        return Ok(Response::new(StreamBody::new(chunks).boxed()));
    }
    if path == "/slow" {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    if let Some(code) = path.strip_prefix("/status/") {
        let status = StatusCode::from_u16(code.parse().unwrap_or(500)).unwrap();
        let mut response = Response::new(Full::new(Bytes::from_static(b"status\n")).boxed());
        *response.status_mut() = status;
        return Ok(response);
    }
    let method = request.method().to_string();
    let version = format!("{:?}", request.version());
    let uri = request.uri().to_string();
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in request.headers() {
        headers
            .entry(name.to_string())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let body_len = request
        .into_body()
        .collect()
        .await
        .map(|body| body.to_bytes().len())
        .unwrap_or(0);
    let json = serde_json::json!({
        "method": method,
        "version": version,
        "uri": uri,
        "headers": headers,
        "body_len": body_len,
    });
    let response = Response::builder()
        .header("content-type", "application/json")
        // Hop-by-hop headers the proxy must not pass back to the client.
        .header("connection", "x-upstream-hop")
        .header("x-upstream-hop", "1")
        .header("keep-alive", "timeout=5")
        .header("x-upstream-kept", "1")
        .body(Full::new(Bytes::from(json.to_string())).boxed())
        .unwrap();
    Ok(response)
}

/// The headers the upstream received, from an `/echo` answer.
struct Echo(Value);

impl Echo {
    fn header(&self, name: &str) -> Option<&str> {
        self.0["headers"][name][0].as_str()
    }

    fn headers(&self, name: &str) -> Vec<&str> {
        self.0["headers"][name]
            .as_array()
            .map(|values| values.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    fn traceparent(&self) -> Traceparent {
        Traceparent::parse(self.header("traceparent").expect("traceparent upstream")).unwrap()
    }
}

// ---------------------------------------------------------------- the proxy

struct Harness {
    addr: SocketAddr,
    outcomes: mpsc::Receiver<RequestOutcome>,
    registry: Registry,
    spans: InMemorySpanExporter,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn start_proxy(upstream: SocketAddr, edit: impl FnOnce(&mut ProxyConfig)) -> Harness {
    let mut config = ProxyConfig::new(format!("http://{upstream}"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.route_labels = vec!["/echo".to_owned(), "/status/{code}".to_owned()];
    config.otlp.enabled = false;
    edit(&mut config);
    let (sender, outcomes) = handoff::channel(HANDOFF_CAPACITY);
    let spans = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    let proxy = config.build(sender).unwrap().with_tracer_provider(provider);
    let mut registry = Registry::default();
    proxy.register_metrics(&mut registry);
    let bound = proxy.bind().await.unwrap();
    let addr = bound.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(bound.serve(shutdown.clone()));
    Harness {
        addr,
        outcomes,
        registry,
        spans,
        shutdown,
        task,
    }
}

impl Harness {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = reqwest::Client::new().get(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        tokio::time::timeout(PATIENCE, request.send())
            .await
            .expect("proxy answered in time")
            .unwrap()
    }

    /// GET `/echo` with `headers`: the upstream's view, the response's request id, and the
    /// outcome handed off.
    async fn echo(&mut self, headers: &[(&str, &str)]) -> (Echo, String, RequestOutcome) {
        let response = self.get("/echo", headers).await;
        assert_eq!(response.status(), 200);
        let request_id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let echo = Echo(response.json().await.unwrap());
        let outcome = self.outcome().await;
        (echo, request_id, outcome)
    }

    async fn outcome(&mut self) -> RequestOutcome {
        tokio::time::timeout(PATIENCE, self.outcomes.recv())
            .await
            .expect("an outcome in time")
            .expect("hand-off open")
    }

    /// The one finished span; call after the request's outcome arrived (the span ends first).
    fn span(&self) -> SpanData {
        let mut spans = self.spans.get_finished_spans().unwrap();
        assert_eq!(spans.len(), 1, "{spans:#?}");
        self.spans.reset();
        spans.remove(0)
    }

    fn metrics(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).unwrap();
        text
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("proxy stopped in time")
            .unwrap();
    }
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|attribute| attribute.key.as_str() == key)
        .map(|attribute| attribute.value.as_str().into_owned())
}

fn assert_attribute(span: &SpanData, key: &str, expected: &str) {
    assert_eq!(
        attribute(span, key).as_deref(),
        Some(expected),
        "{key} in {:#?}",
        span.attributes
    );
}

/// The span's ids are the ones sent upstream.
fn assert_span_matches(span: &SpanData, sent: &Traceparent) {
    assert_eq!(
        span.span_context.trace_id().to_string(),
        sent.trace_id.to_string()
    );
    assert_eq!(
        span.span_context.span_id().to_string(),
        sent.parent_id.to_string()
    );
    assert_eq!(span.span_context.is_sampled(), sent.sampled());
}

/// One HTTP/1.1 exchange written by hand (for what HTTP clients refuse to send), read to
/// EOF: status, lower-cased headers, body.
async fn raw(addr: SocketAddr, request: &str) -> (u16, Vec<(String, String)>, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("answer in time")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn raw_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

// ---------------------------------------------------------------- identity

#[tokio::test]
async fn no_headers_get_a_v7_request_id_and_a_new_sampled_trace() {
    let upstream = start_upstream().await;
    let mut proxy = start_proxy(upstream.addr, |_| {}).await;
    let (echo, response_id, outcome) = proxy.echo(&[("user-agent", "proxy-test/1")]).await;

    let request_id = echo.header("x-request-id").unwrap();
    assert_eq!(
        uuid::Uuid::parse_str(request_id).unwrap().get_version_num(),
        7
    );
    assert_eq!(echo.header("x-correlation-id"), Some(request_id));
    assert_eq!(response_id, request_id);
    let sent = echo.traceparent();
    assert!(sent.sampled());

    assert_eq!(outcome.request_id.as_str(), request_id);
    assert_eq!(outcome.correlation_id, None);
    assert_eq!(outcome.trace_id, sent.trace_id);
    assert_eq!(outcome.span_id, sent.parent_id);
    assert_eq!(outcome.status, 200);

    let span = proxy.span();
    assert_span_matches(&span, &sent);
    assert_eq!(
        span.parent_span_id,
        opentelemetry::trace::SpanId::INVALID,
        "a root span"
    );
    assert_eq!(span.span_kind, SpanKind::Server);
    assert_eq!(span.name, "GET /echo");
    assert_eq!(span.status, Status::Unset);
    for (key, value) in [
        ("http.request.method", "GET"),
        ("url.path", "/echo"),
        ("url.scheme", "http"),
        ("http.route", "/echo"),
        ("http.response.status_code", "200"),
        ("server.address", "127.0.0.1"),
        ("client.address", "127.0.0.1"),
        ("user_agent.original", "proxy-test/1"),
        ("network.protocol.version", "1.1"),
        ("http.request.id", request_id),
        ("hindsight.request_id.generated", "true"),
    ] {
        assert_attribute(&span, key, value);
    }
    assert_eq!(
        attribute(&span, "server.port"),
        Some(proxy.addr.port().to_string())
    );
    proxy.stop().await;
}

#[tokio::test]
async fn incoming_request_id_is_passed_on_and_becomes_the_correlation_id() {
    let upstream = start_upstream().await;
    let mut proxy = start_proxy(upstream.addr, |_| {}).await;
    let (echo, response_id, outcome) = proxy.echo(&[("x-request-id", "req-42")]).await;
    assert_eq!(echo.headers("x-request-id"), ["req-42"]);
    assert_eq!(echo.header("x-correlation-id"), Some("req-42"));
    assert_eq!(response_id, "req-42");
    assert_eq!(outcome.request_id.as_str(), "req-42");
    let span = proxy.span();
    assert_attribute(&span, "http.request.id", "req-42");
    assert_eq!(attribute(&span, "hindsight.request_id.generated"), None);
    assert_span_matches(&span, &echo.traceparent());
    proxy.stop().await;
}

#[tokio::test]
async fn incoming_traceparent_is_continued_with_a_new_span() {
    let upstream = start_upstream().await;
    let mut proxy = start_proxy(upstream.addr, |_| {}).await;
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let (echo, _, outcome) = proxy
        .echo(&[
            ("traceparent", incoming),
            ("tracestate", "vendor=abc,other=1"),
        ])
        .await;
    let sent = echo.traceparent();
    assert_eq!(
        sent.trace_id.to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_ne!(sent.parent_id.to_string(), "00f067aa0ba902b7");
    assert!(sent.sampled());
    assert_eq!(echo.header("tracestate"), Some("vendor=abc,other=1"));
    assert_eq!(outcome.trace_id, sent.trace_id);
    assert_eq!(outcome.span_id, sent.parent_id);

    let span = proxy.span();
    assert_span_matches(&span, &sent);
    assert_eq!(span.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert!(span.parent_span_is_remote);
    assert_attribute(&span, "hindsight.trace.parent_format", "w3c");
    proxy.stop().await;
}

#[tokio::test]
async fn unsampled_incoming_trace_stays_unsampled_and_records_no_span() {
    let upstream = start_upstream().await;
    let mut proxy = start_proxy(upstream.addr, |_| {}).await;
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    let (echo, _, outcome) = proxy.echo(&[("traceparent", incoming)]).await;
    let sent = echo.traceparent();
    assert!(!sent.sampled());
    assert_eq!(
        sent.trace_id.to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_ne!(sent.parent_id.to_string(), "00f067aa0ba902b7");
    assert_eq!(outcome.trace_id, sent.trace_id);
    assert_eq!(outcome.span_id, sent.parent_id);
    assert!(proxy.spans.get_finished_spans().unwrap().is_empty());
    proxy.stop().await;
}

#[tokio::test]
async fn request_id_correlation_id_and_traceparent_together() {
    let upstream = start_upstream().await;
    let mut proxy = start_proxy(upstream.addr, |_| {}).await;
    let incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let (echo, response_id, outcome) = proxy
        .echo(&[
            ("x-request-id", "r-1"),
            ("x-correlation-id", "order-7"),
            ("traceparent", incoming),
        ])
        .await;
    assert_eq!(echo.header("x-request-id"), Some("r-1"));
    assert_eq!(echo.header("x-correlation-id"), Some("order-7"));
    assert_eq!(response_id, "r-1");
    let sent = echo.traceparent();
    assert_eq!(
        sent.trace_id.to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert_eq!(outcome.request_id.as_str(), "r-1");
    assert_eq!(
        outcome.correlation_id,
        Some(RequestId::new("order-7").unwrap())
    );
    let span = proxy.span();
    assert_span_matches(&span, &sent);
    assert_eq!(span.parent_span_id.to_string(), "b7ad6b7169203331");
    assert_attribute(&span, "hindsight.correlation_id", "order-7");
    proxy.stop().await;
}

#[tokio::test]
async fn malformed_traceparent_starts_a_new_trace() {
    let upstream = start_upstream().await;
    let mut proxy = start_proxy(upstream.addr, |_| {}).await;
    // Upper-case hex is invalid in W3C Trace Context.
    let malformed = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01";
    let (echo, _, _) = proxy
        .echo(&[("traceparent", malformed), ("tracestate", "vendor=abc")])
        .await;
    assert_eq!(echo.headers("traceparent").len(), 1);
    let sent = echo.traceparent();
    assert_ne!(
        sent.trace_id.to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert!(sent.sampled());
    // A tracestate without a valid traceparent is not passed on (W3C).
    assert_eq!(echo.header("tracestate"), None);
    let span = proxy.span();
    assert_span_matches(&span, &sent);
    assert_eq!(attribute(&span, "hindsight.trace.parent_format"), None);
    proxy.stop().await;
}

#[tokio::test]
async fn oversized_request_id_is_replaced_and_the_replacement_noted() {
    let upstream = start_upstream().await;
    let mut proxy = start_proxy(upstream.addr, |_| {}).await;
    let oversized = "x".repeat(RequestId::MAX_LEN + 1);
    let (echo, response_id, outcome) = proxy.echo(&[("x-request-id", &oversized)]).await;
    let sent_id = echo.header("x-request-id").unwrap();
    assert_ne!(sent_id, oversized);
    assert_eq!(uuid::Uuid::parse_str(sent_id).unwrap().get_version_num(), 7);
    assert_eq!(response_id, sent_id);
    assert_eq!(outcome.request_id.as_str(), sent_id);
    let span = proxy.span();
    assert_attribute(&span, "hindsight.request_id.replaced", "too_long");
    assert!(proxy
        .metrics()
        .contains(r#"hindsight_proxy_request_ids_replaced_total{reason="too_long"} 1"#));
    proxy.stop().await;
}

#[tokio::test]
async fn b3_and_jaeger_contexts_are_continued() {
    let upstream = start_upstream().await;
    let mut proxy = start_proxy(upstream.addr, |_| {}).await;
    // Headers, the trace id and parent span id they carry, the format's name.
    type Case = (
        &'static [(&'static str, &'static str)],
        &'static str,
        &'static str,
        &'static str,
    );
    let cases: [Case; 3] = [
        (
            &[("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1")],
            "80f198ee56343ba864fe8b2a57d3eff7",
            "e457b5a2e4d86bd1",
            "b3",
        ),
        (
            &[
                ("x-b3-traceid", "463ac35c9f6413ad"),
                ("x-b3-spanid", "a2fb4a1d1a96d312"),
                ("x-b3-sampled", "1"),
            ],
            "0000000000000000463ac35c9f6413ad",
            "a2fb4a1d1a96d312",
            "b3multi",
        ),
        (
            &[("uber-trace-id", "abc123:def456:0:1")],
            "00000000000000000000000000abc123",
            "0000000000def456",
            "jaeger",
        ),
    ];
    for (headers, trace_id, parent, format) in cases {
        let (echo, _, outcome) = proxy.echo(headers).await;
        let sent = echo.traceparent();
        assert_eq!(sent.trace_id.to_string(), trace_id, "{format}");
        assert_ne!(sent.parent_id.to_string(), parent, "{format}");
        assert_eq!(outcome.trace_id, sent.trace_id);
        // The original headers are passed on unchanged beside the new traceparent.
        for (name, value) in headers {
            assert_eq!(echo.header(name), Some(*value), "{format}");
        }
        let span = proxy.span();
        assert_span_matches(&span, &sent);
        assert_eq!(span.parent_span_id.to_string(), parent, "{format}");
        assert_attribute(&span, "hindsight.trace.parent_format", format);
    }
    proxy.stop().await;
}

// ---------------------------------------------------------------- HTTP handling

#[tokio::test]
async fn hop_by_hop_headers_are_removed_both_ways_and_forwarding_headers_added() {
    let upstream = start_upstream().await;
    let mut proxy = start_proxy(upstream.addr, |_| {}).await;
    let request = "GET /echo HTTP/1.1\r\nHost: svc.example\r\n\
        Connection: close, X-Foo\r\nX-Foo: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n\
        Upgrade: websocket\r\nProxy-Connection: keep-alive\r\n\
        Proxy-Authorization: Basic Zm9vOmJhcg==\r\nX-Keep: yes\r\n\
        X-Forwarded-For: 203.0.113.7\r\nVia: 1.1 ingress\r\n\r\n";
    let (status, headers, body) = raw(proxy.addr, request).await;
    assert_eq!(status, 200, "{body}");
    let echo = Echo(serde_json::from_str(&body).unwrap());
    for gone in [
        "connection",
        "x-foo",
        "keep-alive",
        "te",
        "upgrade",
        "proxy-connection",
        "proxy-authorization",
    ] {
        assert_eq!(echo.header(gone), None, "{gone} reached the upstream");
    }
    assert_eq!(echo.header("x-keep"), Some("yes"));
    assert_eq!(
        echo.header("host"),
        Some("svc.example"),
        "Host is preserved"
    );
    assert_eq!(echo.headers("via"), ["1.1 ingress", "1.1 hindsight"]);
    assert_eq!(
        echo.header("x-forwarded-for"),
        Some("203.0.113.7, 127.0.0.1")
    );
    assert_eq!(echo.header("x-forwarded-proto"), Some("http"));
    assert_eq!(echo.0["uri"], "/echo");

    // The upstream's own hop-by-hop headers stay on its side.
    assert_eq!(raw_header(&headers, "x-upstream-hop"), None);
    assert_eq!(raw_header(&headers, "keep-alive"), None);
    assert_eq!(raw_header(&headers, "x-upstream-kept"), Some("1"));
    assert_eq!(raw_header(&headers, "via"), Some("1.1 hindsight"));
    assert!(raw_header(&headers, "x-request-id").is_some());
    proxy.outcome().await;
    proxy.stop().await;
}

#[tokio::test]
async fn absolute_form_to_another_host_and_connect_are_refused() {
    let upstream = start_upstream().await;
    let mut proxy = start_proxy(upstream.addr, |_| {}).await;

    let (status, headers, _) = raw(
        proxy.addr,
        "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 400);
    assert!(raw_header(&headers, "x-request-id").is_some());
    assert_eq!(proxy.outcome().await.status, 400);

    let (status, headers, _) = raw(
        proxy.addr,
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 405);
    assert!(raw_header(&headers, "allow").is_some());
    assert_eq!(proxy.outcome().await.status, 405);

    // Absolute form naming the upstream itself is just a request to it.
    let (status, _, body) = raw(
        proxy.addr,
        &format!(
            "GET http://{0}/echo HTTP/1.1\r\nHost: {0}\r\nConnection: close\r\n\r\n",
            upstream.addr
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(proxy.outcome().await.status, 200);
    proxy.stop().await;
}

#[tokio::test]
async fn response_body_is_streamed_not_buffered() {
    let upstream = start_upstream().await;
    let mut proxy = start_proxy(upstream.addr, |_| {}).await;
    let mut response = proxy.get("/stream", &[]).await;
    assert_eq!(response.status(), 200);
    // The upstream holds back everything after its first chunk until released, so a
    // proxy that buffered the whole body would never deliver these bytes.
    let first = tokio::time::timeout(PATIENCE, response.chunk())
        .await
        .expect("first bytes before the upstream finished")
        .unwrap()
        .unwrap();
    assert!(!first.is_empty());
    assert!(first.iter().all(|&byte| byte == b'a'));
    upstream.release.notify_one();
    let mut total = first.len();
    while let Some(chunk) = tokio::time::timeout(PATIENCE, response.chunk())
        .await
        .unwrap()
        .unwrap()
    {
        total += chunk.len();
    }
    assert_eq!(total, STREAM_CHUNK * STREAM_CHUNKS);
    let outcome = proxy.outcome().await;
    assert_eq!(outcome.status, 200);
    assert_eq!(
        attribute(&proxy.span(), "hindsight.response.incomplete"),
        None
    );
    proxy.stop().await;
}

#[tokio::test]
async fn h2c_prior_knowledge_is_served_and_sent_upstream_as_http_1_1() {
    let upstream = start_upstream().await;
    let mut proxy = start_proxy(upstream.addr, |_| {}).await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = tokio::time::timeout(
        PATIENCE,
        client
            .post(proxy.url("/echo"))
            .header("x-request-id", "h2-1")
            .body(vec![7u8; 100_000])
            .send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "h2-1");
    let echo = Echo(response.json().await.unwrap());
    assert_eq!(echo.0["version"], "HTTP/1.1");
    assert_eq!(echo.0["body_len"], 100_000);
    assert_eq!(echo.headers("via"), ["2 hindsight"]);
    assert_eq!(echo.header("host"), Some(proxy.addr.to_string().as_str()));
    let outcome = proxy.outcome().await;
    assert_eq!(outcome.request_id.as_str(), "h2-1");
    let span = proxy.span();
    assert_attribute(&span, "network.protocol.version", "2");
    assert_span_matches(&span, &echo.traceparent());
    proxy.stop().await;
}

#[tokio::test]
async fn oversized_request_head_is_answered_431() {
    let upstream = start_upstream().await;
    let proxy = start_proxy(upstream.addr, |config| {
        config.max_header_bytes = bytesize::ByteSize::kib(16);
    })
    .await;
    let big = "v".repeat(20 * 1024);
    let (status, _, _) = raw(
        proxy.addr,
        &format!("GET /echo HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 431);
    proxy.stop().await;
}

#[tokio::test]
async fn slow_request_head_is_cut_off_and_idle_connections_closed() {
    let upstream = start_upstream().await;
    let proxy = start_proxy(upstream.addr, |config| {
        config.header_read_timeout = Duration::from_millis(300);
        config.idle_timeout = Duration::from_millis(600);
    })
    .await;

    // Half a request head, then nothing: the proxy hangs up.
    let mut slow = TcpStream::connect(proxy.addr).await.unwrap();
    slow.write_all(b"GET /echo HTTP/1.1\r\nHost: a\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    // EOF or a reset, either way without an answer.
    let _ = tokio::time::timeout(PATIENCE, slow.read_to_end(&mut rest))
        .await
        .expect("slow client disconnected");
    assert!(rest.is_empty());

    // A connection with no request: closed once idle.
    let mut idle = TcpStream::connect(proxy.addr).await.unwrap();
    let mut nothing = Vec::new();
    tokio::time::timeout(PATIENCE, idle.read_to_end(&mut nothing))
        .await
        .expect("idle connection closed")
        .unwrap();
    assert!(nothing.is_empty());

    let metrics = proxy.metrics();
    assert!(
        metrics.contains(r#"hindsight_proxy_connections_closed_total{reason="header_timeout"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"hindsight_proxy_connections_closed_total{reason="idle"} 1"#),
        "{metrics}"
    );
    proxy.stop().await;
}

// ---------------------------------------------------------------- failures and metrics

#[tokio::test]
async fn upstream_down_is_a_502_that_is_counted_and_handed_off() {
    // A port that was just free: nothing listens there.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let mut proxy = start_proxy(closed, |_| {}).await;
    let response = proxy.get("/echo", &[("x-request-id", "down-1")]).await;
    assert_eq!(response.status(), 502);
    assert_eq!(response.headers()["x-request-id"], "down-1");
    assert_eq!(response.text().await.unwrap(), "upstream unavailable\n");
    let outcome = proxy.outcome().await;
    assert_eq!(outcome.status, 502);
    assert!(outcome.is_server_error());
    assert_eq!(outcome.request_id.as_str(), "down-1");

    let span = proxy.span();
    assert!(
        matches!(span.status, Status::Error { .. }),
        "{:?}",
        span.status
    );
    assert_attribute(&span, "error.type", "connect");
    assert_attribute(&span, "http.response.status_code", "502");
    let metrics = proxy.metrics();
    for line in [
        r#"hindsight_proxy_requests_total{method="GET",status_class="5xx",route="/echo"} 1"#,
        r#"hindsight_proxy_errors_total{method="GET",status_class="5xx",route="/echo"} 1"#,
        r#"hindsight_proxy_upstream_failures_total{kind="connect"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} missing in\n{metrics}");
    }
    proxy.stop().await;
}

#[tokio::test]
async fn slow_upstream_is_a_504() {
    let upstream = start_upstream().await;
    let mut proxy = start_proxy(upstream.addr, |config| {
        config.upstream_response_timeout = Duration::from_millis(200);
    })
    .await;
    let response = proxy.get("/slow", &[]).await;
    assert_eq!(response.status(), 504);
    assert_eq!(proxy.outcome().await.status, 504);
    assert_attribute(&proxy.span(), "error.type", "response_timeout");
    assert!(proxy
        .metrics()
        .contains(r#"hindsight_proxy_upstream_failures_total{kind="response_timeout"} 1"#));
    proxy.stop().await;
}

#[tokio::test]
async fn red_metrics_have_bounded_labels() {
    let upstream = start_upstream().await;
    let mut proxy = start_proxy(upstream.addr, |_| {}).await;
    proxy.get("/echo", &[]).await.bytes().await.unwrap();
    proxy.outcome().await;
    let response = proxy.get("/status/503", &[]).await;
    assert_eq!(response.status(), 503);
    response.bytes().await.unwrap();
    let outcome = proxy.outcome().await;
    assert_eq!(outcome.status, 503);
    for path in ["/status/404", "/users/1", "/users/2", "/users/3"] {
        proxy.get(path, &[]).await.bytes().await.unwrap();
        proxy.outcome().await;
    }
    let response = tokio::time::timeout(
        PATIENCE,
        reqwest::Client::new()
            .request(
                http::Method::from_bytes(b"PURGE").unwrap(),
                proxy.url("/echo"),
            )
            .send(),
    )
    .await
    .unwrap()
    .unwrap();
    response.bytes().await.unwrap();
    proxy.outcome().await;

    let metrics = proxy.metrics();
    for line in [
        r#"hindsight_proxy_requests_total{method="GET",status_class="2xx",route="/echo"} 1"#,
        r#"hindsight_proxy_requests_total{method="GET",status_class="5xx",route="/status/{code}"} 1"#,
        r#"hindsight_proxy_errors_total{method="GET",status_class="5xx",route="/status/{code}"} 1"#,
        r#"hindsight_proxy_requests_total{method="GET",status_class="4xx",route="/status/{code}"} 1"#,
        r#"hindsight_proxy_requests_total{method="GET",status_class="2xx",route="other"} 3"#,
        r#"hindsight_proxy_requests_total{method="other",status_class="2xx",route="/echo"} 1"#,
        r#"hindsight_proxy_request_duration_seconds_count{method="GET",status_class="2xx",route="other"} 3"#,
        "hindsight_proxy_handoff_dropped_total 0",
    ] {
        assert!(metrics.contains(line), "{line} missing in\n{metrics}");
    }
    assert!(!metrics.contains("/users/"), "paths never become labels");
    assert!(!metrics.contains(r#"errors_total{method="GET",status_class="4xx""#));
    let span_names: Vec<String> = proxy
        .spans
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .map(|span| span.name.into_owned())
        .collect();
    assert!(
        span_names.contains(&"GET /status/{code}".to_owned()),
        "{span_names:?}"
    );
    assert!(span_names.contains(&"GET".to_owned()), "{span_names:?}");
    assert!(
        span_names.contains(&"HTTP /echo".to_owned()),
        "{span_names:?}"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn a_full_hand_off_drops_and_counts_instead_of_blocking() {
    let upstream = start_upstream().await;
    let mut config = ProxyConfig::new(format!("http://{}", upstream.addr));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.otlp.enabled = false;
    let (sender, mut outcomes) = handoff::channel(1);
    let proxy = config.build(sender).unwrap();
    let mut registry = Registry::default();
    proxy.register_metrics(&mut registry);
    let bound = proxy.bind().await.unwrap();
    let addr = bound.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(bound.serve(shutdown.clone()));
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let response =
            tokio::time::timeout(PATIENCE, client.get(format!("http://{addr}/echo")).send())
                .await
                .unwrap()
                .unwrap();
        // Without an exporter the ids are still made and sent.
        let echo = Echo(response.json().await.unwrap());
        echo.traceparent();
    }
    shutdown.cancel();
    tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();
    // The proxy is gone: all its outcomes were sent or dropped by now.
    let mut received = 0;
    while outcomes.recv().await.is_some() {
        received += 1;
    }
    assert_eq!(received, 1);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("hindsight_proxy_handoff_dropped_total 2"),
        "{text}"
    );
}

// ---------------------------------------------------------------- OTLP export

/// What a fake OTLP/HTTP receiver got: path, content type, body.
type Export = (String, String, Bytes);

/// A minimal OTLP/HTTP receiver: records each POST and answers 200 with an empty
/// `ExportTraceServiceResponse`.
async fn start_otlp_receiver() -> (SocketAddr, mpsc::UnboundedReceiver<Export>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let tx = tx.clone();
                    async move {
                        let path = request.uri().path().to_owned();
                        let content_type = request
                            .headers()
                            .get("content-type")
                            .map(|value| value.to_str().unwrap_or("").to_owned())
                            .unwrap_or_default();
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        let _ = tx.send((path, content_type, body));
                        let mut response = Response::new(Full::new(Bytes::new()));
                        response.headers_mut().insert(
                            "content-type",
                            http::HeaderValue::from_static("application/x-protobuf"),
                        );
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_otlp_http_with_the_ids_sent_upstream() {
    let upstream = start_upstream().await;
    let (receiver, mut exports) = start_otlp_receiver().await;
    let mut config = ProxyConfig::new(format!("http://{}", upstream.addr));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.otlp.endpoint = format!("http://{receiver}");
    config.otlp.service_name = "proxy-under-test".to_owned();
    let (sender, _outcomes) = handoff::channel(HANDOFF_CAPACITY);
    let bound = config.build(sender).unwrap().bind().await.unwrap();
    let addr = bound.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(bound.serve(shutdown.clone()));
    let response = tokio::time::timeout(
        PATIENCE,
        reqwest::Client::new()
            .get(format!("http://{addr}/echo"))
            .send(),
    )
    .await
    .unwrap()
    .unwrap();
    let sent = Echo(response.json().await.unwrap()).traceparent();
    // Shutting down flushes the batch processor's queue.
    shutdown.cancel();
    tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();
    let (path, content_type, body) = tokio::time::timeout(PATIENCE, exports.recv())
        .await
        .expect("an export in time")
        .unwrap();
    assert_eq!(path, "/v1/traces");
    assert_eq!(content_type, "application/x-protobuf");
    // Protobuf carries the ids as raw bytes, and strings as they are.
    let contains = |needle: &[u8]| body.windows(needle.len()).any(|window| window == needle);
    assert!(
        contains(&sent.trace_id.to_bytes()),
        "trace id in the export"
    );
    assert!(
        contains(&sent.parent_id.to_bytes()),
        "span id in the export"
    );
    assert!(contains(b"proxy-under-test"));
    assert!(contains(b"http.request.method"));
}
