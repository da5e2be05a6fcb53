//! The `hindsight` binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// Hindsight: tails JSON container logs into Elasticsearch/OpenSearch, nothing lost.
#[derive(Debug, Parser)]
#[command(name = "hindsight", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the agent until SIGTERM or SIGINT.
    Run {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Checks a configuration file and exits: 0 when valid, 78 with the problems otherwise.
    Validate {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
}

/// One malloc arena for all threads: records are built on one thread and freed on another,
/// and per-thread arenas then keep freed memory apart. Measured on the benchmark corpus:
/// peak RSS 78–83 MiB → 69 MiB, same CPU (the hot path allocates little per record).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a glibc tuning parameter; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// `EX_CONFIG` from sysexits.h: the configuration is wrong.
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { config } => match hindsight::app::build(&config) {
            Ok(_) => {
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::from(EXIT_CONFIG)
            }
        },
        Command::Run { config } => {
            let agent = match hindsight::app::build(&config) {
                Ok(agent) => agent,
                Err(error) => {
                    eprintln!("error: {error:#}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            if let Err(error) = init_logging(agent.log_level()) {
                eprintln!("error: log.level: {error}");
                return ExitCode::from(EXIT_CONFIG);
            }
            match run(agent) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "hindsight failed");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn run(agent: hindsight::app::Agent) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hindsight")
        .build()?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let signal_shutdown = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            signal_shutdown.cancel();
        });
        agent.run(shutdown).await
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the agent with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
        _ = interrupt.recv() => tracing::info!("SIGINT received"),
    }
}

/// JSON logs on stderr; `HINDSIGHT_LOG` overrides the configured filter.
fn init_logging(configured: &str) -> anyhow::Result<()> {
    let filter = match std::env::var("HINDSIGHT_LOG") {
        Ok(value) if !value.is_empty() => value,
        _ => configured.to_owned(),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .map_err(|error| anyhow::anyhow!("invalid filter `{filter}`: {error}"))?;
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_current_span(false)
        .init();
    Ok(())
}
