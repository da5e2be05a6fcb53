//! Wires sources, the record builder and sinks together, and runs them until a signal.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::FutureExt as _;
use hindsight_exporters::elasticsearch::{
    ElasticsearchError, ElasticsearchSink, Readiness, SinkMetrics,
};
use hindsight_exporters::LogRecord;
use sha2::Digest as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminState, ReadinessCheck};
use crate::config::Config;
use crate::event::LogEvent;
use crate::handoff::{self, RequestOutcome};
use crate::metrics::{new_registry, EventsDropped, PipelineMetrics};
use crate::pipeline::{self, Pipeline};
use crate::proxy::{Proxy, ProxyError, HANDOFF_CAPACITY};
use crate::sources::files::{FileSource, FileSourceMetrics, FilesError};

/// Batches in flight between two stages; each batch holds up to a few thousand events.
const STAGE_CHANNEL_BATCHES: usize = 8;

/// Everything built from a valid configuration, ready to run.
pub struct Agent {
    config: Config,
    config_path: String,
    config_digest: String,
    source: FileSource,
    pipeline: Pipeline,
    sink: ElasticsearchSink,
    proxy: Option<Proxy>,
    /// What the proxy hands to the log pipeline; `None` without a proxy.
    outcomes: Option<mpsc::Receiver<RequestOutcome>>,
    registry: prometheus_client::registry::Registry,
    /// Events into the pipeline: the agent gives memory back when it stops moving.
    events_in: prometheus_client::metrics::counter::Counter,
    started: Instant,
}

/// Reads and validates the configuration and builds every component, without starting
/// anything. All component errors are reported together.
pub fn build(config_path: &Path) -> anyhow::Result<Agent> {
    let started = Instant::now();
    let raw = std::fs::read_to_string(config_path).map_err(|source| {
        crate::config::ConfigError::Read {
            path: config_path.to_owned(),
            source,
        }
    })?;
    // One read: the digest in /_info describes exactly the bytes that were parsed.
    let config = Config::from_toml(config_path, &raw, |name| std::env::var(name).ok())?;
    let mut registry = new_registry(started);
    let dropped = EventsDropped::default();
    dropped.register(&mut registry);
    let pipeline_metrics = PipelineMetrics::default();
    pipeline_metrics.register(&mut registry);
    let events_in = pipeline_metrics.events_in.clone();
    let file_metrics = FileSourceMetrics::new(dropped.clone());
    file_metrics.register(&mut registry);
    let sink_metrics = SinkMetrics::default();
    sink_metrics.register(&mut registry);

    let mut problems = Vec::new();
    let source = config
        .inputs
        .files
        .build(&config.data_dir, file_metrics)
        .map_err(|error| match error {
            FilesError::Config(errors) => problems.extend(
                errors
                    .into_iter()
                    .map(|problem| format!("inputs.files.{problem}")),
            ),
            other => problems.push(format!("inputs.files: {other}")),
        })
        .ok();
    let sink = config
        .outputs
        .elasticsearch
        .build(&config.data_dir, sink_metrics)
        .map_err(|error| match error {
            ElasticsearchError::Config { errors } => problems.extend(
                errors
                    .into_iter()
                    .map(|problem| format!("outputs.elasticsearch.{problem}")),
            ),
            other => problems.push(format!("outputs.elasticsearch: {other}")),
        })
        .ok();
    let host_name = config
        .host_name
        .clone()
        .or_else(|| {
            std::env::var("NODE_NAME")
                .ok()
                .filter(|name| !name.is_empty())
        })
        .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned());
    let pipeline = pipeline::build(
        host_name,
        &config.correlation,
        config.fingers_crossed.as_ref(),
        pipeline_metrics,
        dropped,
        &mut registry,
    )
    .map_err(|errors| problems.extend(errors))
    .ok();
    let mut outcomes = None;
    let proxy = match &config.proxy {
        None => Some(None),
        Some(proxy_config) => {
            let (sender, receiver) = handoff::channel(HANDOFF_CAPACITY);
            match proxy_config.build(sender) {
                Ok(proxy) => {
                    proxy.register_metrics(&mut registry);
                    outcomes = Some(receiver);
                    Some(Some(proxy))
                }
                Err(ProxyError::Config(errors)) => {
                    problems.extend(errors.into_iter().map(|problem| format!("proxy.{problem}")));
                    None
                }
                Err(other) => {
                    problems.push(format!("proxy: {other}"));
                    None
                }
            }
        }
    };
    let (Some(source), Some(sink), Some(pipeline), Some(proxy)) = (source, sink, pipeline, proxy)
    else {
        return Err(crate::config::ConfigError::Invalid {
            path: config_path.to_owned(),
            problems,
        }
        .into());
    };
    Ok(Agent {
        config_path: config_path.display().to_string(),
        config_digest: hex::encode(sha2::Sha256::digest(&raw)),
        config,
        source,
        pipeline,
        sink,
        proxy,
        outcomes,
        registry,
        events_in,
        started,
    })
}

impl Agent {
    /// The configured log filter, for setting up the agent's own logging.
    pub fn log_level(&self) -> &str {
        &self.config.log.level
    }

    /// Runs until `shutdown` is cancelled, then stops reading, flushes what is in flight
    /// within the grace period and persists checkpoints.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Agent {
            config,
            config_path,
            config_digest,
            source,
            pipeline,
            sink,
            proxy,
            outcomes,
            registry,
            events_in,
            started,
        } = self;
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("data_dir {}: cannot create", config.data_dir.display()))?;
        let grace = config.shutdown_grace;

        let admin_shutdown = CancellationToken::new();
        let admin_task = if config.admin.enabled {
            let state = AdminState {
                registry,
                readiness: vec![Box::new(SinkReadiness(sink.readiness()))],
                started,
                config_digest,
                config_path,
            };
            Some(tokio::spawn(admin::serve(
                config.admin.address,
                state,
                admin_shutdown.clone(),
            )))
        } else {
            None
        };

        // Bound before anything reads, so a taken port fails the start.
        let failed = Arc::new(AtomicBool::new(false));
        let proxy_task = match proxy {
            Some(proxy) => {
                let bound = proxy.bind().await.context("proxy")?;
                Some(spawn_stage(
                    "proxy",
                    &shutdown,
                    &failed,
                    bound.serve(shutdown.clone()),
                ))
            }
            None => None,
        };

        let (events_tx, events_rx) = mpsc::channel::<Vec<LogEvent>>(STAGE_CHANNEL_BATCHES);
        let (records_tx, records_rx) = mpsc::channel::<Vec<LogRecord>>(STAGE_CHANNEL_BATCHES);
        let source_task = spawn_stage(
            "inputs.files",
            &shutdown,
            &failed,
            source.run(events_tx, shutdown.clone(), grace),
        );
        let mut pipeline_task = spawn_stage(
            "pipeline",
            &shutdown,
            &failed,
            pipeline.run(events_rx, records_tx, outcomes),
        );
        let mut sink_task = spawn_stage(
            "outputs.elasticsearch",
            &shutdown,
            &failed,
            run_sink(sink, records_rx, shutdown.clone()),
        );
        tokio::spawn(crate::memory::trim_when_idle(events_in, shutdown.clone()));
        tracing::info!(version = env!("CARGO_PKG_VERSION"), "hindsight started");

        shutdown.cancelled().await;
        tracing::info!(grace = ?grace, "shutting down: reading stopped, flushing in-flight records");
        let deadline = tokio::time::Instant::now() + grace;
        if let Some(task) = proxy_task {
            // The proxy stops accepting and lets requests in progress finish.
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                tracing::warn!("proxy: requests still in progress at the end of the grace period");
            }
        }
        // With the output down, the pipeline may be blocked handing records to a full
        // sink: bound the wait, and drop what it holds (unsettled, so read again).
        if tokio::time::timeout_at(deadline, &mut pipeline_task)
            .await
            .is_err()
        {
            pipeline_task.abort();
        }
        if tokio::time::timeout_at(deadline, &mut sink_task)
            .await
            .is_err()
        {
            tracing::warn!(
                "grace period over with records in flight; they will be read again after restart"
            );
            sink_task.abort();
        }
        match tokio::time::timeout_at(deadline + Duration::from_secs(2), source_task).await {
            Ok(Ok(Some(Ok(())))) => {}
            Ok(Ok(Some(Err(error)))) => {
                tracing::error!(%error, "file source stopped with an error");
                failed.store(true, Ordering::SeqCst);
            }
            Ok(Ok(None)) | Ok(Err(_)) => failed.store(true, Ordering::SeqCst),
            Err(_) => tracing::warn!("file source did not stop in time; checkpoints may lag"),
        }
        admin_shutdown.cancel();
        if let Some(task) = admin_task {
            let _ = task.await;
        }
        tracing::info!("hindsight stopped");
        if failed.load(Ordering::SeqCst) {
            anyhow::bail!("a stage stopped unexpectedly (see the log above)");
        }
        Ok(())
    }
}

/// Spawns one stage of the agent. A stage that ends (or panics) before shutdown was asked
/// for is a failure: it is logged, the whole agent shuts down, and it exits non-zero,
/// rather than staying up, looking healthy and shipping nothing. `None`: it panicked.
fn spawn_stage<F>(
    name: &'static str,
    shutdown: &CancellationToken,
    failed: &Arc<AtomicBool>,
    stage: F,
) -> tokio::task::JoinHandle<Option<F::Output>>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (shutdown, failed) = (shutdown.clone(), failed.clone());
    tokio::spawn(async move {
        let output = std::panic::AssertUnwindSafe(stage).catch_unwind().await;
        if output.is_err() {
            tracing::error!(stage = name, "panicked; shutting the agent down");
            failed.store(true, Ordering::SeqCst);
            shutdown.cancel();
        } else if !shutdown.is_cancelled() {
            tracing::error!(
                stage = name,
                "stopped unexpectedly; shutting the agent down"
            );
            failed.store(true, Ordering::SeqCst);
            shutdown.cancel();
        }
        output.ok()
    })
}

/// Waits until a node answers and the index template is in place, then runs the sink.
/// Until then records queue up to the channel bound and the sources pause.
async fn run_sink(
    sink: ElasticsearchSink,
    records: mpsc::Receiver<Vec<LogRecord>>,
    shutdown: CancellationToken,
) {
    let mut delay = Duration::from_millis(500);
    loop {
        match sink.healthcheck().await {
            Ok(info) => {
                tracing::info!(distribution = ?info.distribution, version = %info.version, "elasticsearch output connected");
                match sink.install_template().await {
                    Ok(()) => break,
                    Err(error) => {
                        tracing::warn!(%error, "index template not installed yet; retrying")
                    }
                }
            }
            Err(error @ ElasticsearchError::Unsupported { .. }) => {
                tracing::error!(%error, "elasticsearch output: unsupported cluster; nothing will be sent until it is upgraded or the config changes");
            }
            Err(error) => {
                tracing::warn!(%error, "elasticsearch output not reachable yet; retrying")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => {
                tracing::warn!("shutting down before the output was reachable; unsent lines will be read again");
                return;
            }
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
    sink.run(records).await;
}

struct SinkReadiness(Readiness);

impl ReadinessCheck for SinkReadiness {
    fn name(&self) -> &str {
        "outputs.elasticsearch"
    }

    fn is_ready(&self) -> bool {
        self.0.is_ready()
    }
}
