//! The benchmark driver; `scripts/bench.sh` builds and runs it.
//!
//! ```text
//! bench [--quick] [--out BENCHMARKS.md] [--opensearch 127.0.0.1:9200 | --no-opensearch]
//! VECTOR_BIN=/usr/bin/vector FLUENTBIT_BIN=/usr/bin/fluent-bit bench   # with peers
//! OTELCOL_BIN=$(scripts/build-otelcol.sh) bench                         # the OTel Collector
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clap::Parser;
use hindsight_bench::driver::agents::{AgentKind, Binaries};
use hindsight_bench::driver::{self, Options, Sizes};

/// Runs the release agent through the benchmark cases and writes BENCHMARKS.md.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Small sizes and one round: a smoke test of the harness.
    #[arg(long)]
    quick: bool,
    /// Lines of the throughput corpora (default: 2,000,000; quick: 200,000).
    #[arg(long)]
    lines: Option<u64>,
    /// Rounds of the throughput cases and of the 10,000 lines/s cases (default 3; quick 1).
    #[arg(long)]
    repeat: Option<usize>,
    /// The report (default: BENCHMARKS.md in the repository; quick: in the work folder).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The raw figures as JSON (default: bench-results.json in the work folder).
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Corpora, run folders and logs.
    #[arg(long)]
    work_dir: PathBuf,
    /// The repository (for the commit and the default paths).
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// The release `hindsight` binary (default: beside this binary).
    #[arg(long)]
    hindsight_bin: Option<PathBuf>,
    /// The `bulk-sink` binary (default: beside this binary).
    #[arg(long)]
    sink_bin: Option<PathBuf>,
    /// The peers' configuration templates (default: <repo>/bench/peers).
    #[arg(long)]
    peers_dir: Option<PathBuf>,
    /// The real OpenSearch for the end-to-end and write → searchable cases.
    #[arg(long, default_value = "127.0.0.1:9200")]
    opensearch: SocketAddr,
    /// Skip the two cases against the real OpenSearch (end to end, write → searchable).
    #[arg(long)]
    no_opensearch: bool,
    /// A shell command that starts OpenSearch when it is not answering.
    #[arg(long)]
    opensearch_start: Option<String>,
    /// `PEER=REASON`: why a peer (`vector`, `fluent-bit`, `otelcol`) has no binary, for the
    /// report (e.g. `otelcol=its build failed`). Repeatable.
    #[arg(long, value_parser = peer_reason)]
    peer_left_out: Vec<(String, String)>,
    /// The command line to show in the report.
    #[arg(long)]
    command: Option<String>,
}

fn peer_reason(text: &str) -> Result<(String, String), String> {
    let (peer, reason) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not PEER=REASON"))?;
    if AgentKind::from_label(peer).is_none_or(|kind| kind == AgentKind::Hindsight) {
        return Err(format!(
            "`{peer}` is not a peer (vector, fluent-bit, otelcol)"
        ));
    }
    Ok((peer.to_owned(), reason.to_owned()))
}

fn env_path(name: &str) -> anyhow::Result<Option<PathBuf>> {
    match std::env::var_os(name) {
        None => Ok(None),
        Some(value) if value.is_empty() => Ok(None),
        Some(value) => {
            let path = PathBuf::from(value);
            if !path.is_file() {
                bail!("{name}={} is not a file", path.display());
            }
            Ok(Some(path))
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let here = std::env::current_exe()?
        .parent()
        .context("this binary's folder")?
        .to_path_buf();
    let repo = args.repo.canonicalize().context("the repository folder")?;
    let mut sizes = if args.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    if let Some(lines) = args.lines {
        sizes.lines = lines;
    }
    if let Some(repeat) = args.repeat {
        sizes.repeat = repeat.max(1);
    }
    let binaries = Binaries {
        hindsight: args.hindsight_bin.unwrap_or_else(|| here.join("hindsight")),
        sink: args.sink_bin.unwrap_or_else(|| here.join("bulk-sink")),
        vector: env_path("VECTOR_BIN")?,
        fluentbit: env_path("FLUENTBIT_BIN")?,
        otelcol: env_path("OTELCOL_BIN")?,
        peers_dir: args.peers_dir.unwrap_or_else(|| repo.join("bench/peers")),
    };
    for (name, path) in [
        ("hindsight", &binaries.hindsight),
        ("bulk-sink", &binaries.sink),
    ] {
        if !path.is_file() {
            bail!(
                "{name} not found at {} (build it in release first)",
                path.display()
            );
        }
    }
    let out = args.out.unwrap_or_else(|| {
        if args.quick {
            args.work_dir.join("BENCHMARKS.quick.md")
        } else {
            repo.join("BENCHMARKS.md")
        }
    });
    let command = args
        .command
        .unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" "));
    let options = Options {
        sizes,
        quick: args.quick,
        binaries,
        json_out: args
            .json_out
            .unwrap_or_else(|| args.work_dir.join("bench-results.json")),
        work_dir: args.work_dir,
        out,
        command,
        repo,
        opensearch: (!args.no_opensearch).then_some(args.opensearch),
        opensearch_start: args.opensearch_start,
        peers_left_out: args.peer_left_out,
    };
    driver::run(options)?;
    Ok(())
}
