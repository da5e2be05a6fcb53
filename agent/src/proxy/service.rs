//! One request through the proxy: identity, span, upstream call, response, and the
//! bookkeeping when its body ends (metrics, span end, hand-off).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hindsight_correlation::ids::RequestId;
use hindsight_correlation::propagation::{Traceparent, TRACEPARENT, TRACESTATE, X_CORRELATION_ID};
use http::header::{self, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use opentelemetry::KeyValue;
use opentelemetry_semantic_conventions::attribute as semconv;
use tokio::time::Instant;

use super::config::Settings;
use super::conn::ConnState;
use super::headers::{add_forwarded, append_via, strip_hop_by_hop};
use super::identity::{Identity, RequestIdSource};
use super::metrics::{
    method_label, status_class, KindLabel, ProxyMetrics, ReasonLabel, RequestLabels,
};
use super::routes::RouteLabel;
use super::telemetry::{ServerSpan, Telemetry};
use crate::handoff::{OutcomeSender, RequestOutcome};

/// The span attribute carrying the request id (the ECS field name the logs use).
pub const HTTP_REQUEST_ID: &str = "http.request.id";
/// Span attribute: the request id was generated because the request had none.
pub const REQUEST_ID_GENERATED: &str = "hindsight.request_id.generated";
/// Span attribute: the incoming request id was unusable and replaced; the value says why.
pub const REQUEST_ID_REPLACED: &str = "hindsight.request_id.replaced";
/// Span attribute: the incoming correlation id, when it differs from the request id.
pub const CORRELATION_ID: &str = "hindsight.correlation_id";
/// Span attribute: the header format the parent trace came from (`w3c`, `b3`, ...).
pub const PARENT_FORMAT: &str = "hindsight.trace.parent_format";
/// Span attribute: the response body did not reach its end (client gone, upstream broke).
pub const RESPONSE_INCOMPLETE: &str = "hindsight.response.incomplete";

/// The status recorded for a request whose client left before any response.
pub const CLIENT_CLOSED: u16 = 499;

/// Longest `url.path` / `user_agent.original` put on a span.
const MAX_ATTRIBUTE_BYTES: usize = 1024;

/// What every request of one proxy shares.
pub(crate) struct Shared {
    pub settings: Settings,
    pub client: Client<HttpConnector, Incoming>,
    pub metrics: ProxyMetrics,
    pub telemetry: Telemetry,
    pub outcomes: OutcomeSender,
}

/// Why the upstream could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpstreamFailure {
    /// Connecting failed (refused, unreachable): 502.
    Connect,
    /// Connecting took longer than `upstream_connect_timeout`: 504.
    ConnectTimeout,
    /// No response head within `upstream_response_timeout`: 504.
    ResponseTimeout,
    /// The request failed after connecting (connection reset, invalid response): 502.
    Request,
    /// The response body broke off after its head was passed on.
    ResponseBody,
}

impl UpstreamFailure {
    fn kind(self) -> &'static str {
        match self {
            UpstreamFailure::Connect => "connect",
            UpstreamFailure::ConnectTimeout => "connect_timeout",
            UpstreamFailure::ResponseTimeout => "response_timeout",
            UpstreamFailure::Request => "request",
            UpstreamFailure::ResponseBody => "response_body",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            UpstreamFailure::ConnectTimeout | UpstreamFailure::ResponseTimeout => {
                StatusCode::GATEWAY_TIMEOUT
            }
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    fn classify(error: &hyper_util::client::legacy::Error) -> UpstreamFailure {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
        let mut timed_out = false;
        while let Some(error) = source {
            if let Some(io) = error.downcast_ref::<std::io::Error>() {
                timed_out |= io.kind() == std::io::ErrorKind::TimedOut;
            }
            source = error.source();
        }
        match (error.is_connect(), timed_out) {
            (true, true) => UpstreamFailure::ConnectTimeout,
            (true, false) => UpstreamFailure::Connect,
            _ => UpstreamFailure::Request,
        }
    }
}

/// Serves one request; never fails (problems become 4xx/5xx answers).
pub(crate) async fn handle(
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let started = Instant::now();
    conn.request_started(request.version() == Version::HTTP_2);
    let (mut parts, body) = request.into_parts();
    let settings = &shared.settings;
    let identity = Identity::read(
        &parts.headers,
        &settings.request_id_header,
        settings.generate,
    );
    if let RequestIdSource::Replaced(reason) = identity.source {
        shared
            .metrics
            .request_ids_replaced
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }
    let route = settings.routes.label(parts.uri.path()).clone();
    let span = shared.telemetry.start(
        span_name(&parts.method, &route),
        identity.parent.as_ref(),
        request_attributes(&parts, peer, &route, &identity),
    );
    let mut exchange = Exchange {
        method: method_label(&parts.method),
        route,
        started,
        span,
        request_id: identity.request_id.clone(),
        correlation_id: identity.correlation_id.clone(),
        status: CLIENT_CLOSED,
        failure: None,
        completed: false,
        conn,
        shared: shared.clone(),
    };

    if parts.method == Method::CONNECT {
        return Ok(exchange.local_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "CONNECT is not supported: this is a reverse proxy for one service\n",
        ));
    }
    let Some(upstream_uri) = upstream_uri(&parts.uri, parts.version, &settings.upstream) else {
        return Ok(exchange.local_response(
            StatusCode::BAD_REQUEST,
            "request target not accepted: this is a reverse proxy for one service\n",
        ));
    };

    // Host is passed on as the client sent it (HTTP/2: its :authority), so the service
    // sees the name it was called by, as it would without the proxy.
    if !parts.headers.contains_key(header::HOST) {
        if let Some(authority) = parts.uri.authority() {
            if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
                parts.headers.insert(header::HOST, host);
            }
        }
    }
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers);
    append_via(headers, parts.version);
    add_forwarded(headers, peer.ip());
    set_id(
        headers,
        settings.request_id_header.clone(),
        &identity.request_id,
    );
    set_id(
        headers,
        http::HeaderName::from_static(X_CORRELATION_ID),
        identity.correlation_or_request_id(),
    );
    let traceparent = Traceparent::new(
        exchange.span.trace_id,
        exchange.span.span_id,
        exchange.span.sampled,
    );
    headers.remove(TRACESTATE);
    if let Ok(value) = HeaderValue::from_str(&traceparent.to_string()) {
        headers.insert(TRACEPARENT, value);
    }
    if let Some(state) = identity
        .parent
        .as_ref()
        .and_then(|parent| parent.tracestate.as_deref())
    {
        if let Ok(value) = HeaderValue::from_str(state) {
            headers.insert(TRACESTATE, value);
        }
    }
    parts.uri = upstream_uri;
    parts.version = Version::HTTP_11;

    let upstream = Request::from_parts(parts, body);
    let response = match tokio::time::timeout(
        settings.response_timeout,
        shared.client.request(upstream),
    )
    .await
    {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            let failure = UpstreamFailure::classify(&error);
            tracing::debug!(%error, kind = failure.kind(), "upstream request failed");
            return Ok(exchange.upstream_failed(failure));
        }
        Err(_) => return Ok(exchange.upstream_failed(UpstreamFailure::ResponseTimeout)),
    };

    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    append_via(&mut parts.headers, parts.version);
    set_id(
        &mut parts.headers,
        settings.request_id_header.clone(),
        &exchange.request_id,
    );
    exchange.status = parts.status.as_u16();
    Ok(Response::from_parts(
        parts,
        ResponseBody {
            inner: Inner::Upstream(body),
            exchange: Some(exchange),
        },
    ))
}

/// The upstream URI for a request target, or `None` when the target must be refused.
///
/// HTTP/1 clients send origin-form (`/path`); absolute-form (`http://host/path`) is what a
/// client sends to a forward proxy, and is refused unless it names the upstream itself.
/// HTTP/2 requests always carry scheme and authority; their authority is the Host.
pub(super) fn upstream_uri(target: &Uri, version: Version, upstream: &Authority) -> Option<Uri> {
    if version != Version::HTTP_2 {
        if let Some(authority) = target.authority() {
            if target.scheme() != Some(&Scheme::HTTP) || authority != upstream {
                return None;
            }
        }
    }
    let path = target
        .path_and_query()
        .filter(|path| path.as_str().starts_with('/'))
        .cloned()
        .or_else(|| {
            target
                .path()
                .is_empty()
                .then(|| PathAndQuery::from_static("/"))
        })?;
    Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(upstream.clone())
        .path_and_query(path)
        .build()
        .ok()
}

fn set_id(headers: &mut http::HeaderMap, name: http::HeaderName, id: &RequestId) {
    // A request id is visible ASCII, always a valid header value.
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        headers.insert(name, value);
    }
}

/// The semantic-convention method name: a known method, else `_OTHER`.
fn semconv_method(method: &Method) -> &'static str {
    match method_label(method) {
        "other" => "_OTHER",
        known => known,
    }
}

/// `{method} {route}` when the route is known, else `{method}` (`HTTP` for unknown methods).
fn span_name(method: &Method, route: &RouteLabel) -> String {
    let method = match semconv_method(method) {
        "_OTHER" => "HTTP",
        known => known,
    };
    if route.is_other() {
        method.to_owned()
    } else {
        format!("{method} {}", route.as_str())
    }
}

fn truncated(text: &str) -> String {
    let mut end = text.len().min(MAX_ATTRIBUTE_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// The server span's attributes known at the request head.
fn request_attributes(
    parts: &http::request::Parts,
    peer: SocketAddr,
    route: &RouteLabel,
    identity: &Identity,
) -> Vec<KeyValue> {
    let mut attributes = Vec::with_capacity(16);
    let method = semconv_method(&parts.method);
    attributes.push(KeyValue::new(semconv::HTTP_REQUEST_METHOD, method));
    if method == "_OTHER" {
        attributes.push(KeyValue::new(
            semconv::HTTP_REQUEST_METHOD_ORIGINAL,
            truncated(parts.method.as_str()),
        ));
    }
    attributes.push(KeyValue::new(
        semconv::URL_PATH,
        truncated(parts.uri.path()),
    ));
    attributes.push(KeyValue::new(semconv::URL_SCHEME, "http"));
    if !route.is_other() {
        attributes.push(KeyValue::new(
            semconv::HTTP_ROUTE,
            route.as_str().to_owned(),
        ));
    }
    attributes.push(KeyValue::new(
        semconv::NETWORK_PROTOCOL_VERSION,
        super::headers::protocol_version(parts.version),
    ));
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .and_then(|host| host.parse::<Authority>().ok())
        .or_else(|| parts.uri.authority().cloned());
    if let Some(host) = host {
        attributes.push(KeyValue::new(
            semconv::SERVER_ADDRESS,
            truncated(host.host()),
        ));
        if let Some(port) = host.port_u16() {
            attributes.push(KeyValue::new(semconv::SERVER_PORT, i64::from(port)));
        }
    }
    attributes.push(KeyValue::new(
        semconv::CLIENT_ADDRESS,
        peer.ip().to_canonical().to_string(),
    ));
    attributes.push(KeyValue::new(semconv::CLIENT_PORT, i64::from(peer.port())));
    if let Some(agent) = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
    {
        attributes.push(KeyValue::new(
            semconv::USER_AGENT_ORIGINAL,
            truncated(agent),
        ));
    }
    attributes.push(KeyValue::new(
        HTTP_REQUEST_ID,
        identity.request_id.as_str().to_owned(),
    ));
    match identity.source {
        RequestIdSource::Incoming => {}
        RequestIdSource::Generated => attributes.push(KeyValue::new(REQUEST_ID_GENERATED, true)),
        RequestIdSource::Replaced(reason) => {
            attributes.push(KeyValue::new(REQUEST_ID_REPLACED, reason))
        }
    }
    if let Some(correlation) = &identity.correlation_id {
        attributes.push(KeyValue::new(
            CORRELATION_ID,
            correlation.as_str().to_owned(),
        ));
    }
    if let Some(parent) = &identity.parent {
        attributes.push(KeyValue::new(PARENT_FORMAT, parent.format.as_str()));
    }
    attributes
}

/// One request in progress. Dropping it records the request: metrics, the span's end and
/// the hand-off to the log pipeline, whichever way the request ended.
struct Exchange {
    method: &'static str,
    route: RouteLabel,
    started: Instant,
    span: ServerSpan,
    request_id: RequestId,
    correlation_id: Option<RequestId>,
    status: u16,
    failure: Option<UpstreamFailure>,
    completed: bool,
    conn: Arc<ConnState>,
    shared: Arc<Shared>,
}

impl Exchange {
    /// An answer made by the proxy itself.
    fn local_response(mut self, status: StatusCode, body: &'static str) -> Response<ResponseBody> {
        self.status = status.as_u16();
        let mut response = Response::new(ResponseBody {
            inner: Inner::Local(Some(Bytes::from_static(body.as_bytes()))),
            exchange: None,
        });
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if status == StatusCode::METHOD_NOT_ALLOWED {
            headers.insert(
                header::ALLOW,
                HeaderValue::from_static("GET, HEAD, POST, PUT, DELETE, OPTIONS, TRACE, PATCH"),
            );
        }
        set_id(
            headers,
            self.shared.settings.request_id_header.clone(),
            &self.request_id,
        );
        response.body_mut().exchange = Some(self);
        response
    }

    fn upstream_failed(mut self, failure: UpstreamFailure) -> Response<ResponseBody> {
        self.failure = Some(failure);
        self.shared
            .metrics
            .upstream_failures
            .get_or_create(&KindLabel {
                kind: failure.kind(),
            })
            .inc();
        let body = match failure.status() {
            StatusCode::GATEWAY_TIMEOUT => "upstream timed out\n",
            _ => "upstream unavailable\n",
        };
        self.local_response(failure.status(), body)
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        let status = self.status;
        let labels = RequestLabels {
            method: self.method,
            status_class: status_class(status),
            route: self.route.clone(),
        };
        self.shared
            .metrics
            .observe(&labels, self.started.elapsed().as_secs_f64());
        let span = &mut self.span;
        span.set_attribute(KeyValue::new(
            semconv::HTTP_RESPONSE_STATUS_CODE,
            i64::from(status),
        ));
        if let Some(failure) = self.failure {
            span.set_attribute(KeyValue::new(semconv::ERROR_TYPE, failure.kind()));
        } else if status >= 500 {
            span.set_attribute(KeyValue::new(semconv::ERROR_TYPE, status.to_string()));
        }
        if status >= 500 {
            span.set_error(match self.failure {
                Some(failure) => format!("upstream failure: {}", failure.kind()),
                None => format!("status {status}"),
            });
        }
        if !self.completed {
            span.set_attribute(KeyValue::new(RESPONSE_INCOMPLETE, true));
        }
        span.end();
        self.shared.outcomes.send(RequestOutcome {
            request_id: self.request_id.clone(),
            correlation_id: self.correlation_id.take(),
            trace_id: self.span.trace_id,
            span_id: self.span.span_id,
            status,
        });
        self.conn.request_finished();
    }
}

enum Inner {
    Upstream(Incoming),
    Local(Option<Bytes>),
}

/// A response body streamed to the client frame by frame; the request is recorded when
/// it ends or is dropped.
pub struct ResponseBody {
    inner: Inner,
    exchange: Option<Exchange>,
}

impl ResponseBody {
    fn finish(&mut self, completed: bool) {
        if let Some(mut exchange) = self.exchange.take() {
            exchange.completed = completed;
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = match &mut this.inner {
            Inner::Upstream(body) => Pin::new(body).poll_frame(cx),
            Inner::Local(bytes) => Poll::Ready(bytes.take().map(|bytes| Ok(Frame::data(bytes)))),
        };
        match &polled {
            Poll::Ready(None) => this.finish(true),
            Poll::Ready(Some(Err(error))) => {
                if let Some(exchange) = &mut this.exchange {
                    tracing::debug!(%error, "upstream response body failed");
                    exchange.failure = Some(UpstreamFailure::ResponseBody);
                    exchange
                        .shared
                        .metrics
                        .upstream_failures
                        .get_or_create(&KindLabel {
                            kind: UpstreamFailure::ResponseBody.kind(),
                        })
                        .inc();
                }
                this.finish(false);
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Upstream(body) => body.is_end_stream(),
            Inner::Local(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Upstream(body) => body.size_hint(),
            Inner::Local(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        let completed = self.is_end_stream();
        self.finish(completed);
    }
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}
