//! `demo-service`: the checkout service of Hindsight's demo (see the library docs).
//!
//! ```text
//! demo-service --listen 127.0.0.1:8080 --log-file /tmp/checkout.log --fail-every 10
//! curl -H 'X-Request-ID: r-1' -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' \
//!      -X POST http://127.0.0.1:8080/checkout
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use demo_service::{app, AppState, Level, Logger, RequestIds};

/// An HTTP checkout service that logs JSON lines with the request and trace ids it receives.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// File to append JSON log lines to; `-` for stdout.
    #[arg(long, default_value = "-")]
    log_file: PathBuf,
    /// Every N-th /checkout request fails with a 500 (0: only on `X-Demo-Fail: 1`).
    #[arg(long, default_value_t = 10)]
    fail_every: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let log = Logger::open(&args.log_file)
        .with_context(|| format!("cannot open {}", args.log_file.display()))?;
    let state = AppState::new(log, args.fail_every);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let none = RequestIds::default();
    state.log(
        Level::Info,
        &format!("checkout service listening on {}", listener.local_addr()?),
        &none,
    );
    axum::serve(listener, app(state.clone()))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server failed")?;
    state.log(Level::Info, "checkout service stopped", &none);
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("cannot install a SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
