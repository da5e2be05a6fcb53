//! The sidecar proxy: an HTTP reverse proxy in front of one service that gives every
//! request its request id and trace, and records what happened to it.
//!
//! For each request the proxy:
//!
//! - takes the client's request id (`X-Request-ID`, or `request_id_header`) when it is 1 to
//!   128 visible ASCII characters, else generates one (UUID v7 by default). A replaced id
//!   is noted on the span (`hindsight.request_id.replaced` = `too_long`, `invalid_char`,
//!   `empty`) and counted;
//! - sets `X-Correlation-ID` upstream to the client's (when valid) or the request id;
//! - continues the client's trace (W3C `traceparent`/`tracestate`, B3 single or multi,
//!   Jaeger `uber-trace-id`, in that order; a malformed header is ignored) or starts a new
//!   one, and starts its own server span in it. The span's trace id and span id are what
//!   goes upstream in `traceparent`, with the caller's sampled flag (a new trace, or a B3
//!   caller that deferred the decision, is sampled). An incoming `tracestate` is passed on
//!   with a W3C parent and dropped otherwise. B3 and `uber-trace-id` headers are passed on
//!   unchanged: a service that reads W3C first (the OpenTelemetry default) sees the
//!   proxy's span as its parent, one that reads only B3/Jaeger sees the caller's;
//! - removes hop-by-hop headers both ways (RFC 9110 §7.6.1: `Connection` and the headers
//!   it names, `Keep-Alive`, `TE`, `Transfer-Encoding`, `Upgrade`, ...), so protocol
//!   upgrades (WebSocket) are not proxied; appends itself to `Via` both ways, appends the
//!   client's address to `X-Forwarded-For` and sets `X-Forwarded-Proto: http` unless
//!   present. `Host` is passed on as the client sent it (HTTP/2: its `:authority`), so the
//!   service sees the name it was called by; the upstream address is used only to connect;
//! - streams both bodies frame by frame, never holding a whole body;
//! - answers with the upstream's response plus `X-Request-ID`; 502 when the upstream
//!   cannot be reached, 504 when connecting or its response head takes too long, 405 to
//!   `CONNECT` and 400 to an absolute-form target naming another host (it is not an open
//!   proxy);
//! - when the response ends: counts it in the RED metrics ([`metrics`]), ends the span
//!   (status Error on 5xx) and hands a [`RequestOutcome`](crate::handoff::RequestOutcome)
//!   with the ids and status to the log pipeline. A client that leaves before the response
//!   is recorded with status 499.
//!
//! The proxy speaks HTTP/1.1 (keep-alive) and h2c with prior knowledge on one port, and
//! HTTP/1.1 to the upstream (pooled connections), so gRPC, which needs HTTP/2 end to end,
//! is not proxied.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use hindsight::handoff;
//! use hindsight::proxy::{ProxyConfig, HANDOFF_CAPACITY};
//!
//! let (outcomes, mut received) = handoff::channel(HANDOFF_CAPACITY);
//! let proxy = ProxyConfig::new("http://127.0.0.1:8080").build(outcomes)?;
//! let mut registry = prometheus_client::registry::Registry::default();
//! proxy.register_metrics(&mut registry);
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! tokio::spawn(proxy.run(shutdown.clone()));
//! while let Some(outcome) = received.recv().await {
//!     println!("{} {} {}", outcome.request_id, outcome.trace_id, outcome.status);
//! }
//! # Ok(())
//! # }
//! ```

pub mod config;
mod conn;
pub mod headers;
mod identity;
pub mod metrics;
pub mod routes;
mod service;
mod telemetry;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use opentelemetry_sdk::trace::SdkTracerProvider;
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{IdGeneration, OtlpConfig, OtlpProtocol, ProxyConfig};
pub use metrics::ProxyMetrics;
pub use service::{
    ResponseBody, CLIENT_CLOSED, CORRELATION_ID, HTTP_REQUEST_ID, PARENT_FORMAT,
    REQUEST_ID_GENERATED, REQUEST_ID_REPLACED, RESPONSE_INCOMPLETE,
};

use self::config::Settings;
use self::conn::{Check, ConnState, TrackedIo};
use self::service::Shared;
use self::telemetry::Telemetry;
use crate::handoff::OutcomeSender;

/// A good capacity for the hand-off channel: a few seconds of requests at a high rate.
pub const HANDOFF_CAPACITY: usize = 8192;

/// Pooled upstream connections unused this long are closed. Below the 5 s keep-alive
/// timeout of Node.js servers, so the proxy does not reuse a connection the service is
/// closing.
const UPSTREAM_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Why the proxy could not be built or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// Configuration problems, one `key: why` line each.
    #[error("invalid configuration: {}", .0.join("; "))]
    Config(Vec<String>),
    /// The listen address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The OTLP span exporter could not be built.
    #[error("otlp: {0}")]
    Otlp(String),
}

impl ProxyConfig {
    /// Checks every key (reporting all problems at once) and returns the proxy, ready to
    /// [`Proxy::run`]. Each request's outcome goes to `outcomes`. Nothing is started yet.
    pub fn build(&self, outcomes: OutcomeSender) -> Result<Proxy, ProxyError> {
        let settings = self.settings().map_err(ProxyError::Config)?;
        Ok(Proxy {
            settings,
            metrics: ProxyMetrics::default(),
            outcomes,
            tracer_provider: None,
        })
    }
}

/// A configured proxy, not yet listening.
pub struct Proxy {
    settings: Settings,
    metrics: ProxyMetrics,
    outcomes: OutcomeSender,
    tracer_provider: Option<SdkTracerProvider>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("listen", &self.settings.listen)
            .field("upstream", &self.settings.upstream)
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// Registers the request metrics and the hand-off's dropped counter.
    pub fn register_metrics(&self, registry: &mut Registry) {
        self.metrics.register(registry, self.outcomes.dropped());
    }

    /// The proxy's metrics.
    pub fn metrics(&self) -> &ProxyMetrics {
        &self.metrics
    }

    /// The configured listen address.
    pub fn listen_address(&self) -> SocketAddr {
        self.settings.listen
    }

    /// Records spans through `provider` instead of the configured OTLP exporter (tests,
    /// embedding). The caller owns the provider and shuts it down.
    pub fn with_tracer_provider(mut self, provider: SdkTracerProvider) -> Self {
        self.tracer_provider = Some(provider);
        self
    }

    /// Binds the listen address and builds the exporter, without serving yet.
    pub async fn bind(self) -> Result<BoundProxy, ProxyError> {
        let listen = self.settings.listen;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| ProxyError::Bind {
                address: listen,
                source,
            })?;
        let (provider, owned) = match (self.tracer_provider, &self.settings.otlp) {
            (Some(provider), _) => (Some(provider), false),
            (None, Some(otlp)) => {
                // Building starts the batch processor's thread and a blocking HTTP client;
                // keep that off the async workers.
                let otlp = otlp.clone();
                let provider = tokio::task::spawn_blocking(move || telemetry::otlp_provider(&otlp))
                    .await
                    .map_err(|error| ProxyError::Otlp(error.to_string()))?
                    .map_err(ProxyError::Otlp)?;
                (Some(provider), true)
            }
            (None, None) => (None, false),
        };
        let client = upstream_client(&self.settings);
        let shared = Arc::new(Shared {
            telemetry: Telemetry::new(provider.as_ref()),
            client,
            metrics: self.metrics,
            outcomes: self.outcomes,
            settings: self.settings,
        });
        Ok(BoundProxy {
            listener,
            shared,
            owned_provider: provider.filter(|_| owned),
        })
    }

    /// Binds, then serves until `shutdown` is cancelled (see [`BoundProxy::serve`]).
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ProxyError> {
        self.bind().await?.serve(shutdown).await;
        Ok(())
    }
}

/// A proxy with its socket bound.
pub struct BoundProxy {
    listener: TcpListener,
    shared: Arc<Shared>,
    owned_provider: Option<SdkTracerProvider>,
}

impl std::fmt::Debug for BoundProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundProxy")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl BoundProxy {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves connections until `shutdown` is cancelled; then stops accepting, lets every
    /// connection finish its requests in progress (idle ones close at once), and flushes
    /// the spans it exported itself.
    pub async fn serve(self, shutdown: CancellationToken) {
        let BoundProxy {
            listener,
            shared,
            owned_provider,
        } = self;
        let address = listener
            .local_addr()
            .map_or_else(|_| "?".to_owned(), |address| address.to_string());
        tracing::info!(
            %address,
            upstream = %shared.settings.upstream,
            "proxy listening"
        );
        let server = server_builder(&shared.settings);
        let tracker = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tracker.spawn(serve_connection(
                        stream,
                        peer,
                        shared.clone(),
                        server.clone(),
                        shutdown.clone(),
                    ));
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "proxy: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        drop(listener);
        tracker.close();
        tracker.wait().await;
        drop(shared);
        if let Some(provider) = owned_provider {
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(error) = provider.shutdown() {
                    tracing::warn!(%error, "proxy: flushing spans at shutdown failed");
                }
            })
            .await;
        }
        tracing::info!("proxy stopped");
    }
}

fn upstream_client(settings: &Settings) -> Client<HttpConnector, hyper::body::Incoming> {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(settings.connect_timeout));
    connector.set_nodelay(true);
    connector.enforce_http(true);
    Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(UPSTREAM_POOL_IDLE_TIMEOUT)
        .http1_max_buf_size(settings.max_header_bytes)
        .build(connector)
}

fn server_builder(settings: &Settings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        // The proxy's own header clock (conn.rs) replaces hyper's, which would also
        // close idle keep-alive connections.
        .header_read_timeout(None)
        .max_buf_size(settings.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(settings.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    server: auto::Builder<TokioExecutor>,
    shutdown: CancellationToken,
) {
    let metrics = shared.metrics.clone();
    metrics.connections_open.inc();
    let state = Arc::new(ConnState::new());
    let (header_timeout, idle_timeout) = (
        shared.settings.header_read_timeout,
        shared.settings.idle_timeout,
    );
    let service_state = state.clone();
    let service = hyper::service::service_fn(move |request| {
        service::handle(shared.clone(), service_state.clone(), peer, request)
    });
    let io = TokioIo::new(TrackedIo::new(stream, state.clone()));
    let connection = server.serve_connection(io, service);
    tokio::pin!(connection);
    let mut closing = false;
    let mut wait = header_timeout.min(idle_timeout);
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, %peer, "proxy: client connection ended with an error");
                }
                break;
            }
            _ = tokio::time::sleep(wait), if !closing => {
                match state.check(header_timeout, idle_timeout) {
                    Check::Wait(next) => wait = next,
                    Check::HeaderTimeout => {
                        metrics.connections_closed.get_or_create(&metrics::ReasonLabel { reason: "header_timeout" }).inc();
                        tracing::debug!(%peer, "proxy: request head too slow; connection dropped");
                        break;
                    }
                    Check::Idle => {
                        metrics.connections_closed.get_or_create(&metrics::ReasonLabel { reason: "idle" }).inc();
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                    }
                }
            }
            _ = shutdown.cancelled(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
    metrics.connections_open.dec();
}
