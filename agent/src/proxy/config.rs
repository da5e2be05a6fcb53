//! The user-facing configuration of the sidecar proxy (`[proxy]`).

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use bytesize::ByteSize;
use http::uri::{Authority, Scheme};
use http::{HeaderName, Uri};
use serde::Deserialize;

use super::headers;
use super::routes::RouteTable;

/// The sidecar proxy: an HTTP reverse proxy in front of one service that gives every
/// request a request id and a trace, passes them to the service, records one server span
/// per request and counts requests, errors and durations.
///
/// ```toml
/// [proxy]
/// listen = "0.0.0.0:8619"
/// upstream = "http://127.0.0.1:8080"
/// route_labels = ["/api/users/{id}", "/api/orders", "/healthz"]
///
/// [proxy.otlp]
/// endpoint = "http://127.0.0.1:4318"
/// service_name = "checkout-proxy"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// The address the proxy listens on, speaking HTTP/1.1 (with keep-alive) and h2c
    /// (HTTP/2 over plain TCP, prior knowledge) on the same port. Point the service's
    /// Kubernetes `Service` (or its clients) here.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,

    /// The one service behind the proxy, as `http://host:port` (no path, no query, no
    /// user info; the port defaults to 80). Every request goes there and nowhere else: the
    /// proxy refuses `CONNECT` (405) and HTTP/1 requests whose target names another host
    /// in absolute form (400), so it cannot be used as an open proxy. Required.
    pub upstream: String,

    /// How long a client may take to send a request's head (request line and headers),
    /// counted from its first byte. A client that is slower is disconnected, which keeps
    /// slow-header ("slowloris") clients from holding connections.
    #[serde(default = "default_header_read_timeout", with = "humantime_serde")]
    pub header_read_timeout: Duration,

    /// A client connection with no request in progress for this long is closed
    /// (HTTP/2: with a GOAWAY).
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,

    /// How long connecting to the upstream may take; then the client gets a 504.
    #[serde(default = "default_upstream_connect_timeout", with = "humantime_serde")]
    pub upstream_connect_timeout: Duration,

    /// How long the upstream may take to answer with its response head (connecting
    /// included); then the client gets a 504. Bodies stream afterwards without a limit.
    #[serde(
        default = "default_upstream_response_timeout",
        with = "humantime_serde"
    )]
    pub upstream_response_timeout: Duration,

    /// The largest request head accepted (HTTP/1: request line and headers, answered with
    /// 431 above it; HTTP/2: the header list), and the largest response head read from the
    /// upstream. At least `8KiB`.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: ByteSize,

    /// The header that carries the request id, in and out.
    #[serde(default = "default_request_id_header")]
    pub request_id_header: String,

    /// How a request id is generated for a request that arrives without a usable one:
    /// `uuid_v7` (time-ordered, so ids sort by arrival) or `uuid_v4` (random).
    #[serde(default)]
    pub generate: IdGeneration,

    /// Path patterns that name the `route` label of the request metrics and the span's
    /// `http.route`. A pattern matches a path by whole segments from the start (so `/api`
    /// matches `/api/users/7`, not `/apis`); a `{name}` segment matches any one segment.
    /// The pattern with the most segments wins; on a tie, the first one listed. Paths that
    /// match none are labelled `other`, so the label never takes more than
    /// `route_labels + 1` values. At most 100 patterns.
    #[serde(default)]
    pub route_labels: Vec<String>,

    /// Where the proxy's spans go.
    #[serde(default)]
    pub otlp: OtlpConfig,
}

/// How request ids are generated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdGeneration {
    /// UUID version 7: a millisecond timestamp and random bits.
    #[default]
    UuidV7,
    /// UUID version 4: random.
    UuidV4,
}

/// Span export over OTLP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// Export spans. When off, requests still get ids and a `traceparent`; no span is
    /// recorded.
    #[serde(default = "crate::config::default_true")]
    pub enabled: bool,

    /// The OTLP receiver's base URL (Jaeger, the OpenTelemetry Collector); `/v1/traces`
    /// is appended unless the URL already ends with it.
    #[serde(default = "default_otlp_endpoint")]
    pub endpoint: String,

    /// The OTLP transport: `http/protobuf` (the only one built in; Jaeger and the
    /// Collector accept it on port 4318).
    #[serde(default)]
    pub protocol: OtlpProtocol,

    /// The `service.name` of the proxy's spans.
    #[serde(default = "default_service_name")]
    pub service_name: String,

    /// How long one export request may take.
    #[serde(default = "default_export_timeout", with = "humantime_serde")]
    pub timeout: Duration,

    /// Finished spans waiting for export. When the receiver is slow or down and the queue
    /// is full, new spans are dropped instead of slowing requests down.
    #[serde(default = "default_max_queue_spans")]
    pub max_queue_spans: NonZeroUsize,
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum OtlpProtocol {
    /// Protobuf over HTTP POST.
    #[default]
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            enabled: crate::config::default_true(),
            endpoint: default_otlp_endpoint(),
            protocol: OtlpProtocol::default(),
            service_name: default_service_name(),
            timeout: default_export_timeout(),
            max_queue_spans: default_max_queue_spans(),
        }
    }
}

/// The proxy's default listen address.
pub fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8619))
}

fn default_header_read_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}

fn default_upstream_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_upstream_response_timeout() -> Duration {
    Duration::from_secs(60)
}

fn default_max_header_bytes() -> ByteSize {
    ByteSize::kib(64)
}

fn default_request_id_header() -> String {
    hindsight_correlation::propagation::X_REQUEST_ID.to_owned()
}

fn default_otlp_endpoint() -> String {
    "http://127.0.0.1:4318".to_owned()
}

fn default_service_name() -> String {
    "hindsight-proxy".to_owned()
}

fn default_export_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_max_queue_spans() -> NonZeroUsize {
    NonZeroUsize::new(2048).expect("non-zero")
}

/// The smallest `max_header_bytes` (hyper's smallest read buffer).
const MIN_HEADER_BYTES: u64 = 8 * 1024;
/// The largest `max_header_bytes`: beyond it a header is an attack, not a request.
const MAX_HEADER_BYTES: u64 = 1024 * 1024;
/// The most `route_labels`, so the metric's label set stays small.
pub const MAX_ROUTE_LABELS: usize = 100;

/// Validated runtime settings derived from [`ProxyConfig`].
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub listen: SocketAddr,
    pub upstream: Authority,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub max_header_bytes: usize,
    pub request_id_header: HeaderName,
    pub generate: IdGeneration,
    pub routes: RouteTable,
    pub otlp: Option<OtlpSettings>,
}

/// Validated OTLP settings.
#[derive(Debug, Clone)]
pub(crate) struct OtlpSettings {
    pub traces_url: String,
    pub service_name: String,
    pub timeout: Duration,
    pub max_queue_spans: usize,
}

impl ProxyConfig {
    /// A configuration proxying to `upstream` with every other key at its default.
    pub fn new(upstream: impl Into<String>) -> Self {
        ProxyConfig {
            listen: default_listen(),
            upstream: upstream.into(),
            header_read_timeout: default_header_read_timeout(),
            idle_timeout: default_idle_timeout(),
            upstream_connect_timeout: default_upstream_connect_timeout(),
            upstream_response_timeout: default_upstream_response_timeout(),
            max_header_bytes: default_max_header_bytes(),
            request_id_header: default_request_id_header(),
            generate: IdGeneration::default(),
            route_labels: Vec::new(),
            otlp: OtlpConfig::default(),
        }
    }

    /// Checks every key, reporting all problems at once as `key: why` lines.
    pub(crate) fn settings(&self) -> Result<Settings, Vec<String>> {
        let mut errors = Vec::new();
        let upstream = parse_upstream(&self.upstream)
            .map_err(|why| errors.push(format!("upstream: {why}")))
            .ok();
        for (key, value) in [
            ("header_read_timeout", self.header_read_timeout),
            ("idle_timeout", self.idle_timeout),
            ("upstream_connect_timeout", self.upstream_connect_timeout),
            ("upstream_response_timeout", self.upstream_response_timeout),
        ] {
            if value.is_zero() {
                errors.push(format!("{key}: must be greater than zero"));
            }
        }
        let max_header_bytes = self.max_header_bytes.as_u64();
        if !(MIN_HEADER_BYTES..=MAX_HEADER_BYTES).contains(&max_header_bytes) {
            errors.push(format!(
                "max_header_bytes: must be between 8KiB and 1MiB, not {}",
                self.max_header_bytes
            ));
        }
        let request_id_header = parse_request_id_header(&self.request_id_header)
            .map_err(|why| errors.push(format!("request_id_header: {why}")))
            .ok();
        let routes = RouteTable::new(&self.route_labels)
            .map_err(|problems| {
                errors.extend(
                    problems
                        .into_iter()
                        .map(|why| format!("route_labels: {why}")),
                )
            })
            .ok();
        let otlp = if self.otlp.enabled {
            self.otlp
                .settings()
                .map_err(|problems| {
                    errors.extend(problems.into_iter().map(|why| format!("otlp.{why}")))
                })
                .ok()
        } else {
            None
        };
        match (upstream, request_id_header, routes) {
            (Some(upstream), Some(request_id_header), Some(routes)) if errors.is_empty() => {
                Ok(Settings {
                    listen: self.listen,
                    upstream,
                    header_read_timeout: self.header_read_timeout,
                    idle_timeout: self.idle_timeout,
                    connect_timeout: self.upstream_connect_timeout,
                    response_timeout: self.upstream_response_timeout,
                    max_header_bytes: max_header_bytes as usize,
                    request_id_header,
                    generate: self.generate,
                    routes,
                    otlp,
                })
            }
            _ => Err(errors),
        }
    }
}

impl OtlpConfig {
    fn settings(&self) -> Result<OtlpSettings, Vec<String>> {
        let mut errors = Vec::new();
        let OtlpProtocol::HttpProtobuf = self.protocol;
        let traces_url = match self.endpoint.parse::<Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.authority().is_some() =>
            {
                let base = self.endpoint.trim_end_matches('/');
                if base.ends_with("/v1/traces") {
                    base.to_owned()
                } else {
                    format!("{base}/v1/traces")
                }
            }
            Ok(_) => {
                errors.push(format!(
                    "endpoint: `{}` is not an http:// or https:// URL",
                    self.endpoint
                ));
                String::new()
            }
            Err(error) => {
                errors.push(format!("endpoint: `{}`: {error}", self.endpoint));
                String::new()
            }
        };
        if self.service_name.trim().is_empty() {
            errors.push("service_name: must not be empty".to_owned());
        }
        if self.timeout.is_zero() {
            errors.push("timeout: must be greater than zero".to_owned());
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(OtlpSettings {
            traces_url,
            service_name: self.service_name.clone(),
            timeout: self.timeout,
            max_queue_spans: self.max_queue_spans.get(),
        })
    }
}

/// `http://host[:port]` with nothing else.
fn parse_upstream(text: &str) -> Result<Authority, String> {
    let uri: Uri = text
        .parse()
        .map_err(|error| format!("`{text}` is not a URL: {error}"))?;
    match uri.scheme() {
        Some(scheme) if *scheme == Scheme::HTTP => {}
        Some(scheme) if *scheme == Scheme::HTTPS => {
            return Err(format!(
                "`{text}`: https upstreams are not supported; the proxy speaks plain HTTP to the service beside it"
            ))
        }
        _ => return Err(format!("`{text}` must start with http://")),
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("`{text}` has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!("`{text}`: user info is not allowed"));
    }
    if authority.host().is_empty() {
        return Err(format!("`{text}` has no host"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!(
            "`{text}`: only http://host:port is allowed; request paths are passed on unchanged"
        ));
    }
    Ok(authority.clone())
}

fn parse_request_id_header(text: &str) -> Result<HeaderName, String> {
    let name = HeaderName::from_bytes(text.trim().to_ascii_lowercase().as_bytes())
        .map_err(|_| format!("`{text}` is not a valid header name"))?;
    if headers::is_hop_by_hop(&name) || headers::is_managed(&name) {
        return Err(format!(
            "`{text}` is a header the proxy manages or removes; pick another name"
        ));
    }
    Ok(name)
}
