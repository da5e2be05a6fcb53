//! Writes the benchmark corpus and prints what it holds as JSON.
//!
//! ```text
//! corpus --root /tmp/corpus --lines 1000000 --files 1
//! # /tmp/corpus/var/log/pods/bench_svc-000-…/app/0.log
//! ```

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use hindsight_bench::corpus::{self, CorpusSpec};

/// Writes CRI-framed JSON service logs (deterministic for a seed).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The folder that stands in for `/`; files go under `<root>/var/log/pods/`.
    #[arg(long)]
    root: PathBuf,
    /// Lines in all files together (requests in flight at the end are finished).
    #[arg(long, default_value_t = 1_000_000)]
    lines: u64,
    /// Files (one simulated container each).
    #[arg(long, default_value_t = 1)]
    files: usize,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Requests in flight at once per file.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Share of requests that fail (error line last).
    #[arg(long, default_value_t = 0.02)]
    fail_ratio: f64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let spec = CorpusSpec {
        lines: args.lines,
        files: args.files,
        seed: args.seed,
        concurrency: args.concurrency,
        fail_ratio: args.fail_ratio,
    };
    let written = corpus::write(&args.root, &spec)
        .with_context(|| format!("write the corpus under {}", args.root.display()))?;
    println!("{}", serde_json::to_string_pretty(&written)?);
    Ok(())
}
