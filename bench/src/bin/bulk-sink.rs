//! A local `_bulk` endpoint that acknowledges every item and counts what it received.
//!
//! ```text
//! bulk-sink --listen 127.0.0.1:0            # prints `listening http://127.0.0.1:PORT`
//! curl http://127.0.0.1:PORT/_bench/stats   # {"bulk_requests":…,"docs":…,…}
//! ```
//!
//! See `hindsight_bench::sink` for the API it speaks.

use std::io::Write as _;
use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Parser;
use hindsight_bench::sink::{router, SinkOptions, SinkState};

/// Acknowledges `_bulk` requests and counts documents and bytes.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; port 0 picks a free one (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:9201")]
    listen: SocketAddr,
    /// A numeric document field with the write time in Unix nanoseconds; latency
    /// percentiles are computed over the documents that have it.
    #[arg(long)]
    latency_field: Option<String>,
    /// Parse every n-th document as JSON to check it (0: never).
    #[arg(long, default_value_t = 1000)]
    validate_every: u64,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listen on {}", args.listen))?;
        let address = listener.local_addr()?;
        {
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "listening http://{address}")?;
            stdout.flush()?;
        }
        let state = SinkState::new(SinkOptions {
            latency_field: args.latency_field,
            validate_every: args.validate_every,
        });
        axum::serve(listener, router(state)).await?;
        Ok(())
    })
}
