//! The files input's own throughput: CRI lines read, unframed, batched and acknowledged,
//! with no sink. A measurement that prints figures, not a test.
//!
//! ```text
//! cargo bench -p hindsight --bench file_source [-- LINES]
//! ```

use std::io::Write as _;
use std::time::{Duration, Instant};

use hindsight::sources::files::{FileSourceMetrics, FilesConfig};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn main() -> anyhow::Result<()> {
    let lines: usize = match std::env::args().skip(1).find(|arg| !arg.starts_with('-')) {
        Some(arg) => arg.parse()?,
        None => 2_000_000,
    };
    let work = tempfile::tempdir()?;
    let dir = work.path().join("var/log/pods/shop_cart-1_uid-9/cart");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("0.log");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        for i in 0..lines {
            writeln!(
                out,
                "2024-05-01T12:00:00.{:09}Z stdout F {{\"level\":\"info\",\"seq\":{i},\"msg\":\"request handled\",\"request_id\":\"r-{i:08}\"}}",
                i % 1_000_000_000
            )?;
        }
    }
    let bytes = std::fs::metadata(&path)?.len();
    let include = work.path().join("var/log/pods/*/*/*.log");
    let config = FilesConfig::new(vec![include.display().to_string()]);
    let source = config.build(&work.path().join("data"), FileSourceMetrics::default())?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let secs = runtime.block_on(async move {
        let (tx, mut rx) = mpsc::channel(16);
        let shutdown = CancellationToken::new();
        let begun = Instant::now();
        let task = tokio::spawn(source.run(tx, shutdown.clone(), Duration::from_secs(5)));
        let mut received = 0;
        while received < lines {
            let Some(batch) = rx.recv().await else { break };
            received += batch.len();
            for event in batch {
                event.ack.delivered();
            }
        }
        let secs = begun.elapsed().as_secs_f64();
        shutdown.cancel();
        drop(rx);
        let _ = task.await;
        secs
    });
    println!(
        "files input alone: {lines} CRI lines, {:.0} MB in {secs:.2} s: {:.0} lines/s, {:.0} MB/s",
        bytes as f64 / 1e6,
        lines as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
    Ok(())
}
