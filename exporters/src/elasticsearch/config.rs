//! The sink's user-facing configuration and its validation.
//!
//! The doc comments on these types are the user's documentation of
//! `[outputs.elasticsearch]`.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytesize::ByteSize;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Url;
use serde::Deserialize;

use super::encode::IndexFormat;
use super::error::ElasticsearchError;
use super::metrics::SinkMetrics;
use super::retry::BackoffPolicy;
use super::sink::ElasticsearchSink;

/// Sends log records to Elasticsearch (7.8+, 8, 9) or OpenSearch (1, 2, 3) through the
/// `_bulk` API.
///
/// Every key is optional. A typical node configuration:
///
/// ```toml
/// [outputs.elasticsearch]
/// endpoints = ["https://es-1:9200", "https://es-2:9200"]
/// index = "logs-hindsight-%Y.%m.%d"
/// auth = { strategy = "basic", user = "hindsight", password = "${ES_PASSWORD}" }
/// tls = { ca_file = "/etc/hindsight/ca.pem" }
/// batch = { max_bytes = "5MiB", max_events = 1000, timeout = "1s" }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticsearchConfig {
    /// Base URLs of the cluster's HTTP endpoints (`http://` or `https://`, optionally with a
    /// path prefix behind a proxy). With several, requests rotate over them and move to the
    /// next one on a connection error or a 5xx answer. Put credentials in `auth`, never in
    /// the URL. Default: `["http://127.0.0.1:9200"]`.
    #[serde(default = "default_endpoints")]
    pub endpoints: Vec<String>,

    /// Where documents go. In `index` mode a strftime pattern applied to each record's own
    /// time in UTC (date and hour fields only, e.g. `%Y %m %d %H`), default
    /// `"logs-hindsight-%Y.%m.%d"` (one index per day). In `data_stream` mode the data
    /// stream's name, default `"logs-hindsight-default"`. The index template matches the
    /// text before the first `%` followed by `*`.
    #[serde(default)]
    pub index: Option<String>,

    /// How documents are written: `"index"` (default) sends each document with the bulk
    /// `index` operation into ordinary (daily) indices; `"data_stream"` sends them with the
    /// `create` operation into a data stream (a `409` answer then means "already there" and
    /// counts as delivered).
    #[serde(default)]
    pub mode: BulkMode,

    /// Compression of bulk request bodies: `"gzip"` (default) or `"none"`.
    #[serde(default)]
    pub compression: Compression,

    /// How to authenticate, if the cluster requires it. Default: no authentication.
    #[serde(default)]
    pub auth: Option<AuthConfig>,

    /// TLS settings for `https://` endpoints.
    #[serde(default)]
    pub tls: TlsConfig,

    /// When a bulk request is sent: whichever limit is reached first.
    #[serde(default)]
    pub batch: BatchConfig,

    /// How many bulk requests may be under way at once. When all are busy, the sink stops
    /// taking records and the sources slow down (their files are the buffer). Default: `4`.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: NonZeroUsize,

    /// How long one HTTP request may take, connecting included, before it is abandoned and
    /// retried. Default: `"30s"`.
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,

    /// How failed requests are retried. Retries never give up: a record leaves the sink only
    /// when the cluster confirmed it or it was written to the dead-letter file.
    #[serde(default)]
    pub retry: RetryConfig,

    /// The index template installed at start.
    #[serde(default)]
    pub template: TemplateConfig,

    /// Extra HTTP headers sent with every request, e.g. for a proxy in front of the cluster.
    /// Their values are treated as secrets (hidden in logs and `/_info`). Default: none.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
}

/// How documents are written; see [`ElasticsearchConfig::mode`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkMode {
    /// The bulk `index` operation into ordinary indices named by `index`.
    #[default]
    Index,
    /// The bulk `create` operation into the data stream named by `index`.
    DataStream,
}

/// Compression of bulk request bodies; see [`ElasticsearchConfig::compression`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// gzip (`Content-Encoding: gzip`), fast level: log text shrinks about ten-fold.
    #[default]
    Gzip,
    /// Uncompressed bodies.
    None,
}

/// How the sink authenticates; chosen with `strategy`.
///
/// ```toml
/// auth = { strategy = "basic", user = "hindsight", password = "${ES_PASSWORD}" }
/// auth = { strategy = "api_key", key = "${ES_API_KEY}" }
/// auth = { strategy = "bearer", token = "${ES_TOKEN}" }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "strategy", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// HTTP basic authentication with a user and password.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: Secret,
    },
    /// An Elasticsearch API key, sent as `Authorization: ApiKey <key>`. Use the key's
    /// base64 `encoded` form as Elasticsearch returns it.
    ApiKey {
        /// The encoded API key.
        key: Secret,
    },
    /// A bearer token, sent as `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: Secret,
    },
}

/// TLS settings for `https://` endpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// A PEM file with the certificate authorities to trust in addition to the system's.
    /// Default: the system's trust store only.
    pub ca_file: Option<PathBuf>,
    /// Whether server certificates are verified. Turning this off makes the connection
    /// open to interception; the agent logs a warning at start. Default: `true`.
    #[serde(default = "default_true")]
    pub verify_certificates: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            ca_file: None,
            verify_certificates: default_true(),
        }
    }
}

/// The limits that close a bulk request; whichever is reached first.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// The most uncompressed body bytes per request (a single larger document still goes
    /// alone). Keep it well under the cluster's `http.max_content_length` (100MB by
    /// default). Default: `"5MiB"`.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: ByteSize,
    /// The most documents per request. Default: `1000` (a few hundred KB of typical log
    /// records: with `max_in_flight` requests in flight, this bounds the agent's memory).
    #[serde(default = "default_max_events")]
    pub max_events: NonZeroUsize,
    /// The longest a record waits for its request to fill up. Default: `"1s"`.
    #[serde(default = "default_batch_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_bytes: default_max_bytes(),
            max_events: default_max_events(),
            timeout: default_batch_timeout(),
        }
    }
}

/// Exponential backoff between retries: the delay doubles from `initial_backoff` up to
/// `max_backoff`, with random jitter. A `Retry-After` header from the cluster is honoured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// The delay before the first retry. Default: `"200ms"`.
    #[serde(default = "default_initial_backoff", with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// The longest delay between two retries. Default: `"30s"`.
    #[serde(default = "default_max_backoff", with = "humantime_serde")]
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial_backoff: default_initial_backoff(),
            max_backoff: default_max_backoff(),
        }
    }
}

/// The composable index template (`PUT _index_template/<name>`) that gives Hindsight's
/// indices their mappings: `@timestamp` as a date, `message` as text, ids and
/// `kubernetes.*` as keywords. Installing it is idempotent; on Elasticsearch it also keeps
/// the built-in `logs-*-*` data stream template from claiming daily `logs-hindsight-*`
/// indices.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    /// Whether the template is installed (or updated) at start. Turn it off only when the
    /// template is managed elsewhere: on Elasticsearch 8+ the built-in `logs-*-*` data
    /// stream template would otherwise claim `logs-hindsight-*` and refuse `index` writes.
    /// Default: `true`.
    #[serde(default = "default_true")]
    pub install: bool,
    /// The template's name. Default: `"hindsight"`.
    #[serde(default = "default_template_name")]
    pub name: String,
}

impl Default for TemplateConfig {
    fn default() -> Self {
        TemplateConfig {
            install: default_true(),
            name: default_template_name(),
        }
    }
}

/// A configuration value that must never be shown: its `Debug` output is `Secret(***)`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The default `endpoints`: a node on this machine.
pub fn default_endpoints() -> Vec<String> {
    vec!["http://127.0.0.1:9200".to_owned()]
}

/// The default `index` in `index` mode: one index per day.
pub const DEFAULT_DAILY_INDEX: &str = "logs-hindsight-%Y.%m.%d";

/// The default `index` in `data_stream` mode.
pub const DEFAULT_DATA_STREAM: &str = "logs-hindsight-default";

fn default_true() -> bool {
    true
}

fn default_max_in_flight() -> NonZeroUsize {
    NonZeroUsize::new(4).unwrap_or(NonZeroUsize::MIN)
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_max_bytes() -> ByteSize {
    ByteSize::mib(5)
}

fn default_max_events() -> NonZeroUsize {
    NonZeroUsize::new(1000).unwrap_or(NonZeroUsize::MIN)
}

fn default_batch_timeout() -> Duration {
    Duration::from_secs(1)
}

fn default_initial_backoff() -> Duration {
    Duration::from_millis(200)
}

fn default_max_backoff() -> Duration {
    Duration::from_secs(30)
}

fn default_template_name() -> String {
    "hindsight".to_owned()
}

impl Default for ElasticsearchConfig {
    fn default() -> Self {
        ElasticsearchConfig {
            endpoints: default_endpoints(),
            index: None,
            mode: BulkMode::default(),
            compression: Compression::default(),
            auth: None,
            tls: TlsConfig::default(),
            batch: BatchConfig::default(),
            max_in_flight: default_max_in_flight(),
            request_timeout: default_request_timeout(),
            retry: RetryConfig::default(),
            template: TemplateConfig::default(),
            headers: BTreeMap::new(),
        }
    }
}

/// The validated, runtime form of the configuration.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub endpoints: Vec<Url>,
    pub index: IndexFormat,
    pub mode: BulkMode,
    pub compression: Compression,
    pub auth: Option<AuthConfig>,
    pub tls: TlsConfig,
    pub max_bytes: usize,
    pub max_events: usize,
    pub batch_timeout: Duration,
    pub max_in_flight: usize,
    pub request_timeout: Duration,
    pub backoff: BackoffPolicy,
    pub template: TemplateConfig,
    pub headers: HeaderMap,
}

impl ElasticsearchConfig {
    /// The index (or data stream) name pattern in effect, defaults applied.
    pub fn index_or_default(&self) -> &str {
        match (&self.index, self.mode) {
            (Some(index), _) => index,
            (None, BulkMode::Index) => DEFAULT_DAILY_INDEX,
            (None, BulkMode::DataStream) => DEFAULT_DATA_STREAM,
        }
    }

    /// Checks the configuration without building anything; the error lists every problem,
    /// each naming its key (e.g. `endpoints[1]: not a URL: ...`).
    pub fn validate(&self) -> Result<(), ElasticsearchError> {
        self.resolve().map(|_| ())
    }

    /// Validates the configuration and builds the sink. The dead-letter file goes to
    /// `<data_dir>/dead-letter/elasticsearch.ndjson`; `metrics` receives the sink's figures.
    /// Reads `tls.ca_file`; does not contact the cluster (see
    /// [`ElasticsearchSink::healthcheck`]).
    pub fn build(
        &self,
        data_dir: &Path,
        metrics: SinkMetrics,
    ) -> Result<ElasticsearchSink, ElasticsearchError> {
        let settings = self.resolve()?;
        ElasticsearchSink::new(settings, data_dir, metrics)
    }

    pub(crate) fn resolve(&self) -> Result<Settings, ElasticsearchError> {
        let mut errors = Vec::new();

        if self.endpoints.is_empty() {
            errors.push("endpoints: at least one endpoint is required".to_owned());
        }
        let mut endpoints = Vec::with_capacity(self.endpoints.len());
        for (i, raw) in self.endpoints.iter().enumerate() {
            match parse_endpoint(raw) {
                Ok(url) => endpoints.push(url),
                Err(why) => errors.push(format!("endpoints[{i}]: {why}")),
            }
        }

        let index = match IndexFormat::parse(self.index_or_default(), self.mode) {
            Ok(index) => Some(index),
            Err(why) => {
                errors.push(format!("index: {why}"));
                None
            }
        };
        if let Some(index) = &index {
            if self.template.install && index.template_pattern() == "*" {
                errors.push(
                    "index: must start with fixed text before the first `%`, so that the \
                     index template matches only Hindsight's indices"
                        .to_owned(),
                );
            }
        }

        match &self.auth {
            Some(AuthConfig::Basic { user, password }) => {
                if user.is_empty() {
                    errors.push("auth.user: must not be empty".to_owned());
                }
                if user.contains(':') {
                    errors.push("auth.user: must not contain `:`".to_owned());
                }
                if password.expose().is_empty() {
                    errors.push("auth.password: must not be empty".to_owned());
                }
            }
            Some(AuthConfig::ApiKey { key }) if key.expose().trim().is_empty() => {
                errors.push("auth.key: must not be empty".to_owned());
            }
            Some(AuthConfig::Bearer { token }) if token.expose().trim().is_empty() => {
                errors.push("auth.token: must not be empty".to_owned());
            }
            _ => {}
        }
        if let Some(auth) = &self.auth {
            if let Err(why) = auth_header(auth) {
                errors.push(format!("auth: {why}"));
            }
        }

        let max_bytes = self.batch.max_bytes.as_u64();
        if max_bytes == 0 {
            errors.push("batch.max_bytes: must be greater than 0".to_owned());
        }
        let max_bytes = usize::try_from(max_bytes).unwrap_or(usize::MAX);

        if self.request_timeout.is_zero() {
            errors.push("request_timeout: must be greater than 0".to_owned());
        }

        let backoff =
            match BackoffPolicy::try_new(self.retry.initial_backoff, self.retry.max_backoff) {
                Ok(policy) => Some(policy),
                Err(why) => {
                    errors.push(format!("retry: {why}"));
                    None
                }
            };

        let name = &self.template.name;
        if name.is_empty() {
            errors.push("template.name: must not be empty".to_owned());
        } else if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
            || name.starts_with(['-', '_', '.'])
        {
            errors.push(format!(
                "template.name: `{name}` may only contain lowercase letters, digits, `-`, `_` \
                 and `.`, and must start with a letter or digit"
            ));
        }

        let mut headers = HeaderMap::new();
        for (key, value) in &self.headers {
            let name = match HeaderName::from_bytes(key.as_bytes()) {
                Ok(name) => name,
                Err(_) => {
                    errors.push(format!("headers.{key}: not a valid header name"));
                    continue;
                }
            };
            if is_managed_header(&name) {
                errors.push(format!(
                    "headers.{key}: set by the sink itself (use `auth` for credentials)"
                ));
                continue;
            }
            match HeaderValue::from_str(value.expose()) {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    headers.insert(name, value);
                }
                Err(_) => errors.push(format!(
                    "headers.{key}: the value contains characters not allowed in a header"
                )),
            }
        }

        match (index, backoff) {
            (Some(index), Some(backoff)) if errors.is_empty() => Ok(Settings {
                endpoints,
                index,
                mode: self.mode,
                compression: self.compression,
                auth: self.auth.clone(),
                tls: self.tls.clone(),
                max_bytes,
                max_events: self.batch.max_events.get(),
                batch_timeout: self.batch.timeout,
                max_in_flight: self.max_in_flight.get(),
                request_timeout: self.request_timeout,
                backoff,
                template: self.template.clone(),
                headers,
            }),
            _ => Err(ElasticsearchError::Config { errors }),
        }
    }
}

/// Headers the sink sets itself; overriding them would corrupt requests.
fn is_managed_header(name: &HeaderName) -> bool {
    use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HOST};
    [
        AUTHORIZATION,
        CONTENT_ENCODING,
        CONTENT_LENGTH,
        CONTENT_TYPE,
        HOST,
    ]
    .contains(name)
}

/// Parses one endpoint into a base URL whose path ends with `/`, so that joining
/// `_bulk` keeps a proxy's path prefix.
fn parse_endpoint(raw: &str) -> Result<Url, String> {
    let mut url = Url::parse(raw.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!(
            "scheme must be http or https, not `{}`",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("put credentials in `auth`, not in the URL".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".to_owned());
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// The `Authorization` header value for `auth`, marked sensitive.
pub(crate) fn auth_header(auth: &AuthConfig) -> Result<HeaderValue, String> {
    let text = match auth {
        AuthConfig::Basic { user, password } => {
            format!(
                "Basic {}",
                base64(format!("{user}:{}", password.expose()).as_bytes())
            )
        }
        AuthConfig::ApiKey { key } => format!("ApiKey {}", key.expose().trim()),
        AuthConfig::Bearer { token } => format!("Bearer {}", token.expose().trim()),
    };
    let mut value = HeaderValue::from_str(&text)
        .map_err(|_| "the credentials contain characters not allowed in a header".to_owned())?;
    value.set_sensitive(true);
    Ok(value)
}

/// Standard base64 with padding (RFC 4648), for basic authentication.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ElasticsearchConfig, serde_json::Error> {
        serde_json::from_str(json)
    }

    fn errors(config: &ElasticsearchConfig) -> Vec<String> {
        match config.resolve() {
            Ok(_) => Vec::new(),
            Err(ElasticsearchError::Config { errors }) => errors,
            Err(other) => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let config = parse("{}").unwrap();
        assert_eq!(config.endpoints, ["http://127.0.0.1:9200"]);
        assert_eq!(config.index_or_default(), "logs-hindsight-%Y.%m.%d");
        assert_eq!(config.mode, BulkMode::Index);
        assert_eq!(config.compression, Compression::Gzip);
        assert!(config.tls.verify_certificates);
        assert_eq!(config.batch.max_bytes, ByteSize::mib(5));
        assert_eq!(config.batch.max_events.get(), 1000);
        assert_eq!(config.batch.timeout, Duration::from_secs(1));
        assert_eq!(config.max_in_flight.get(), 4);
        assert_eq!(config.request_timeout, Duration::from_secs(30));
        assert_eq!(config.retry.initial_backoff, Duration::from_millis(200));
        assert_eq!(config.retry.max_backoff, Duration::from_secs(30));
        assert!(config.template.install);
        assert_eq!(config.template.name, "hindsight");
        assert!(errors(&config).is_empty());
        let settings = config.resolve().unwrap();
        assert_eq!(settings.endpoints[0].as_str(), "http://127.0.0.1:9200/");
        // Default and serde defaults agree.
        assert_eq!(
            format!("{config:?}"),
            format!("{:?}", ElasticsearchConfig::default())
        );
    }

    #[test]
    fn data_stream_mode_has_its_own_default_name() {
        let config = parse(r#"{"mode": "data_stream"}"#).unwrap();
        assert_eq!(config.index_or_default(), "logs-hindsight-default");
        assert!(errors(&config).is_empty());
    }

    #[test]
    fn human_durations_and_sizes_parse() {
        let config = parse(
            r#"{"batch": {"max_bytes": "256KiB", "timeout": "250ms"},
                "retry": {"initial_backoff": "1s", "max_backoff": "1m"},
                "request_timeout": "5s"}"#,
        )
        .unwrap();
        assert_eq!(config.batch.max_bytes, ByteSize::kib(256));
        assert_eq!(config.batch.timeout, Duration::from_millis(250));
        assert_eq!(config.retry.max_backoff, Duration::from_secs(60));
        assert_eq!(config.request_timeout, Duration::from_secs(5));
    }

    #[test]
    fn unknown_keys_are_rejected_everywhere() {
        assert!(parse(r#"{"endpiont": []}"#).is_err());
        assert!(parse(r#"{"batch": {"max_event": 1}}"#).is_err());
        assert!(parse(r#"{"tls": {"verify": false}}"#).is_err());
        let error =
            parse(r#"{"auth": {"strategy": "basic", "user": "u", "password": "p", "x": 1}}"#)
                .unwrap_err()
                .to_string();
        assert!(error.contains("unknown field `x`"), "{error}");
        assert!(parse(r#"{"auth": {"strategy": "kerberos"}}"#).is_err());
        assert!(parse(r#"{"mode": "update"}"#).is_err());
        assert!(parse(r#"{"max_in_flight": 0}"#).is_err());
    }

    #[test]
    fn every_error_is_reported_with_its_key() {
        let config = parse(
            r#"{"endpoints": ["http://ok:9200", "not a url", "ftp://x", "http://u:p@h:9200"],
                "index": "Logs-%Y",
                "batch": {"max_bytes": 0},
                "request_timeout": "0s",
                "retry": {"initial_backoff": "10s", "max_backoff": "1s"},
                "template": {"name": "has space"},
                "headers": {"bad header": "v", "content-type": "text/plain", "x-ok": "line\nbreak"}}"#,
        )
        .unwrap();
        let errors = errors(&config);
        let expect = [
            "endpoints[1]: not a URL",
            "endpoints[2]: scheme must be http or https",
            "endpoints[3]: put credentials in `auth`",
            "index: must be lowercase",
            "batch.max_bytes: must be greater than 0",
            "request_timeout: must be greater than 0",
            "retry: initial_backoff (10s) > max_backoff (1s)",
            "template.name: `has space`",
            "headers.bad header: not a valid header name",
            "headers.content-type: set by the sink itself",
            "headers.x-ok: the value contains characters",
        ];
        for prefix in expect {
            assert!(
                errors.iter().any(|e| e.starts_with(prefix)),
                "{prefix:?} not in {errors:#?}"
            );
        }
        assert_eq!(errors.len(), expect.len(), "{errors:#?}");
        let shown = config.validate().unwrap_err().to_string();
        assert!(shown.contains("endpoints[1]: not a URL"), "{shown}");
    }

    #[test]
    fn empty_endpoint_list_is_rejected() {
        let config = parse(r#"{"endpoints": []}"#).unwrap();
        assert_eq!(
            errors(&config),
            ["endpoints: at least one endpoint is required"]
        );
    }

    #[test]
    fn index_without_fixed_prefix_is_rejected_when_installing_the_template() {
        let config = parse(r#"{"index": "%Y.%m.%d"}"#).unwrap();
        assert!(errors(&config)[0].starts_with("index: must start with fixed text"));
        let config = parse(r#"{"index": "%Y.%m.%d", "template": {"install": false}}"#).unwrap();
        assert!(errors(&config).is_empty());
    }

    #[test]
    fn endpoint_path_prefix_is_kept() {
        let config = parse(r#"{"endpoints": ["https://proxy.example/es"]}"#).unwrap();
        let settings = config.resolve().unwrap();
        assert_eq!(
            settings.endpoints[0].join("_bulk").unwrap().as_str(),
            "https://proxy.example/es/_bulk"
        );
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let config = parse(
            r#"{"auth": {"strategy": "basic", "user": "hindsight", "password": "hunter2"},
                "headers": {"x-proxy-token": "tok-123"}}"#,
        )
        .unwrap();
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("tok-123"),
            "{shown}"
        );
        assert!(shown.contains("hindsight"), "{shown}");
        for auth in [
            r#"{"strategy": "api_key", "key": "k-456"}"#,
            r#"{"strategy": "bearer", "token": "t-789"}"#,
        ] {
            let auth: AuthConfig = serde_json::from_str(auth).unwrap();
            let shown = format!("{auth:?}");
            assert!(!shown.contains("456") && !shown.contains("789"), "{shown}");
        }
        let settings = config.resolve().unwrap();
        assert!(!format!("{settings:?}").contains("tok-123"));
    }

    #[test]
    fn auth_headers_follow_each_scheme() {
        let basic = AuthConfig::Basic {
            user: "Aladdin".into(),
            password: "open sesame".into(),
        };
        assert_eq!(
            auth_header(&basic).unwrap(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert!(auth_header(&basic).unwrap().is_sensitive());
        let key = AuthConfig::ApiKey {
            key: "abc==".into(),
        };
        assert_eq!(auth_header(&key).unwrap(), "ApiKey abc==");
        let token = AuthConfig::Bearer { token: "t".into() };
        assert_eq!(auth_header(&token).unwrap(), "Bearer t");
    }

    #[test]
    fn base64_pads_correctly() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
    }
}
