//! HTTP to the cluster: endpoint rotation and failover, authentication, readiness.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use tokio::time::Instant;

use super::config::{auth_header, Compression, Settings};
use super::error::ElasticsearchError;
use super::response::BULK_FILTER_PATH;
use super::retry::parse_retry_after;

/// Responses are read up to this size; a bulk response trimmed by `filter_path` is a few
/// bytes per document, so anything larger is not one.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// The longest an endpoint that failed is skipped while others are up.
const MAX_ENDPOINT_COOLDOWN: Duration = Duration::from_secs(10);

/// Whether the cluster was reachable at the last attempt; a cheap handle for `/readyz`.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// True when the last request or health check got a working answer from a node (not a
    /// connection failure, timeout, 5xx or refused credentials). False before the first one.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct Endpoint {
    base: Url,
    bulk: Url,
    /// While set and in the future, the endpoint is skipped if another one is up.
    down_until: Mutex<Option<Instant>>,
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

/// The client, the endpoints and the headers every request carries.
#[derive(Debug)]
pub(crate) struct Transport {
    client: reqwest::Client,
    endpoints: Vec<Endpoint>,
    next: AtomicUsize,
    headers: HeaderMap,
    compression: Compression,
    cooldown: Duration,
    readiness: Readiness,
    /// Warnings about the settings. The sink is built before the agent sets up its logging,
    /// so they are logged at first use ([`Transport::log_warnings_once`]), not here.
    warnings: Vec<&'static str>,
    warned: AtomicBool,
}

impl Transport {
    pub(crate) fn new(settings: &Settings) -> Result<Self, ElasticsearchError> {
        let mut builder = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(50))
            .user_agent(concat!("hindsight/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &settings.tls.ca_file {
            builder = builder.tls_certs_merge(read_ca_file(path)?);
        }
        let mut warnings = Vec::new();
        if !settings.tls.verify_certificates {
            warnings.push(
                "tls.verify_certificates is false: the Elasticsearch connection can be \
                 intercepted and credentials stolen",
            );
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let client = builder.build().map_err(ElasticsearchError::Client)?;

        let mut headers = settings.headers.clone();
        if let Some(auth) = &settings.auth {
            let value = auth_header(auth).map_err(|reason| ElasticsearchError::Config {
                errors: vec![format!("auth: {reason}")],
            })?;
            headers.insert(reqwest::header::AUTHORIZATION, value);
            if settings.endpoints.iter().any(|url| url.scheme() == "http") {
                warnings
                    .push("credentials are sent to an http:// Elasticsearch endpoint without TLS");
            }
        }

        let mut endpoints = Vec::with_capacity(settings.endpoints.len());
        for base in &settings.endpoints {
            let mut bulk = base.join("_bulk").map_err(|e| ElasticsearchError::Config {
                errors: vec![format!("endpoints: {base}: {e}")],
            })?;
            bulk.query_pairs_mut()
                .append_pair("filter_path", BULK_FILTER_PATH);
            endpoints.push(Endpoint {
                base: base.clone(),
                bulk,
                down_until: Mutex::new(None),
            });
        }
        Ok(Transport {
            client,
            endpoints,
            next: AtomicUsize::new(0),
            headers,
            compression: settings.compression,
            cooldown: settings.backoff.max().min(MAX_ENDPOINT_COOLDOWN),
            readiness: Readiness::default(),
            warnings,
            warned: AtomicBool::new(false),
        })
    }

    /// Logs the warnings about the settings, the first time only.
    pub(crate) fn log_warnings_once(&self) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            for warning in &self.warnings {
                tracing::warn!("{warning}");
            }
        }
    }

    pub(crate) fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// The endpoint's base URL, for logs and errors (never holds credentials).
    pub(crate) fn endpoint_name(&self, endpoint: usize) -> &str {
        self.endpoints
            .get(endpoint)
            .map_or("?", |e| e.base.as_str())
    }

    /// The endpoint for the next request: round-robin over the endpoints that are up; if
    /// all are down, round-robin over all of them.
    pub(crate) fn pick(&self) -> usize {
        let count = self.endpoints.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        (0..count)
            .map(|offset| (start + offset) % count)
            .find(|&i| self.is_up(i, now))
            .unwrap_or(start % count)
    }

    /// Every endpoint once, starting with the next in rotation: for one-off requests.
    pub(crate) fn rotation(&self) -> Vec<usize> {
        let first = self.pick();
        let count = self.endpoints.len();
        (0..count).map(|offset| (first + offset) % count).collect()
    }

    fn is_up(&self, endpoint: usize, now: Instant) -> bool {
        let slot = match self.endpoints[endpoint].down_until.lock() {
            Ok(slot) => *slot,
            Err(poisoned) => *poisoned.into_inner(),
        };
        slot.is_none_or(|until| until <= now)
    }

    /// Whether another endpoint than `endpoint` is up, so a retry can go there at once.
    pub(crate) fn other_is_up(&self, endpoint: usize) -> bool {
        let now = Instant::now();
        (0..self.endpoints.len()).any(|i| i != endpoint && self.is_up(i, now))
    }

    /// Skips `endpoint` for a while after a connection failure or 5xx.
    pub(crate) fn mark_down(&self, endpoint: usize) {
        if self.endpoints.len() > 1 {
            self.set_down(endpoint, Some(Instant::now() + self.cooldown));
        }
    }

    fn mark_up(&self, endpoint: usize) {
        self.set_down(endpoint, None);
    }

    fn set_down(&self, endpoint: usize, until: Option<Instant>) {
        if let Some(e) = self.endpoints.get(endpoint) {
            match e.down_until.lock() {
                Ok(mut slot) => *slot = until,
                Err(poisoned) => *poisoned.into_inner() = until,
            }
        }
    }

    /// Sends one bulk body to `endpoint`.
    pub(crate) async fn bulk(
        &self,
        endpoint: usize,
        body: Bytes,
    ) -> Result<Answer, reqwest::Error> {
        let url = self.endpoints[endpoint].bulk.clone();
        let mut request = self.client.post(url).headers(self.headers.clone()).header(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        if self.compression == Compression::Gzip {
            request = request.header(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        self.finish(endpoint, request.body(body)).await
    }

    /// A one-off JSON request (health check, template) to `endpoint`; `path` is relative
    /// to the endpoint's base URL.
    pub(crate) async fn json(
        &self,
        endpoint: usize,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, reqwest::Error> {
        let base = &self.endpoints[endpoint].base;
        let url = base.join(path).unwrap_or_else(|_| base.clone());
        let mut request = self
            .client
            .request(method, url)
            .headers(self.headers.clone());
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body);
        }
        self.finish(endpoint, request).await
    }

    async fn finish(
        &self,
        endpoint: usize,
        request: reqwest::RequestBuilder,
    ) -> Result<Answer, reqwest::Error> {
        let result = read_answer(request).await;
        let working = match &result {
            Ok(answer) => {
                let status = answer.status;
                let failing = status.is_server_error()
                    || status == StatusCode::UNAUTHORIZED
                    || status == StatusCode::FORBIDDEN;
                if !status.is_server_error() {
                    self.mark_up(endpoint);
                }
                !failing
            }
            Err(_) => false,
        };
        self.readiness.set(working);
        result
    }
}

async fn read_answer(request: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
    let mut response = request.send().await?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| parse_retry_after(value, SystemTime::now()));
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            // Keep what fits; the caller finds it unreadable and retries.
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        retry_after,
        body: body.freeze(),
    })
}

fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, ElasticsearchError> {
    let error = |reason: String| ElasticsearchError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| error(format!("not a PEM certificate bundle: {e}")))?;
    if certs.is_empty() {
        return Err(error("holds no certificate".to_owned()));
    }
    Ok(certs)
}
