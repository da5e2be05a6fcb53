//! The admin HTTP server: `/healthz`, `/readyz`, `/metrics`, `/_info`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

/// Something `/readyz` asks: is this component able to do its job?
pub trait ReadinessCheck: Send + Sync + 'static {
    /// A short name for the component, shown in the `/readyz` body.
    fn name(&self) -> &str;
    /// True when the component can reach what it needs.
    fn is_ready(&self) -> bool;
}

/// What the admin server shows.
pub struct AdminState {
    /// The metrics registry rendered at `/metrics`.
    pub registry: Registry,
    /// Components asked by `/readyz`.
    pub readiness: Vec<Box<dyn ReadinessCheck>>,
    /// When the agent started.
    pub started: Instant,
    /// SHA-256 of the configuration file as written (before `${VAR}` interpolation).
    pub config_digest: String,
    /// The configuration file's path.
    pub config_path: String,
}

/// Serves the admin endpoints on `address` until `shutdown` is cancelled.
pub async fn serve(
    address: SocketAddr,
    state: AdminState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|error| anyhow::anyhow!("admin server: cannot listen on {address}: {error}"))?;
    tracing::info!(%address, "admin server listening");
    let app = router(Arc::new(state));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

/// The admin routes, for serving or testing.
pub fn router(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/_info", get(info))
        .with_state(state)
}

async fn readyz(State(state): State<Arc<AdminState>>) -> Response {
    let mut body = String::new();
    let mut ready = true;
    for check in &state.readiness {
        let ok = check.is_ready();
        ready &= ok;
        body.push_str(&format!(
            "{}: {}\n",
            check.name(),
            if ok { "ready" } else { "not ready" }
        ));
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body).into_response()
}

async fn metrics(State(state): State<Arc<AdminState>>) -> Response {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding metrics failed: {error}\n"),
        )
            .into_response(),
    }
}

async fn info(State(state): State<Arc<AdminState>>) -> Response {
    let body = serde_json::json!({
        "name": "hindsight",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "config_path": state.config_path,
        "config_sha256": state.config_digest,
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
