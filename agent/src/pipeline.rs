//! The stage between sources and sinks: builds documents, adds correlation fields, and
//! (when configured) holds low-level records per request until the request fails.
//!
//! One task owns the [`RecordBuilder`] and the fingers-crossed buffer, so neither needs a
//! lock. It wakes for a batch of events, for an outcome the sidecar proxy handed over, or
//! for the buffer's next idle deadline.

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use bytesize::ByteSize;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use hindsight_correlation::condition::FieldCondition;
use hindsight_correlation::extract::ExtractConfig;
use hindsight_correlation::fingers_crossed::{
    DiscardReason, EmitReason, FingersCrossed, FingersCrossedConfig, Level, Outlet, RecordSize,
};
use hindsight_correlation::request_delta::RequestClock;
use hindsight_exporters::LogRecord;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::event::{LogEvent, Origin};
use crate::handoff::RequestOutcome;
use crate::metrics::{EventsDropped, PipelineMetrics, ReasonLabel};
use crate::records::{
    BuildOutcome, Built, BuiltRecord, HeldLine, RawRecord, RecordBuilder, RecordKey, RequestKey,
};

/// How records are correlated: which fields hold ids, levels and times.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrelationConfig {
    /// Candidate field names (dotted paths for nested fields) for request ids, correlation
    /// ids, trace and span ids, levels and times. The defaults cover pino, bunyan, zap,
    /// logrus, structlog, Serilog, log4j2, tracing-subscriber, ECS and Datadog.
    #[serde(default)]
    pub fields: ExtractConfig,
    /// Add `hindsight.request.elapsed_ms` and `hindsight.request.since_previous_ms` (time
    /// since the request's first and previous line on this host) to records with a request id.
    #[serde(default = "crate::config::default_true")]
    pub request_delta: bool,
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        CorrelationConfig {
            fields: ExtractConfig::default(),
            request_delta: true,
        }
    }
}

/// Fingers-crossed buffering: debug/info records of a request are held and shipped only if
/// that request fails. Records without a request or trace id are keyed by their stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FingersCrossedSection {
    /// Records at or above this level go out at once. Default `warn`.
    #[serde(default = "default_passthru_level")]
    pub passthru_level: Level,
    /// A record at or above this level flushes its request's held records. Default `error`.
    #[serde(default = "default_action_level")]
    pub action_level: Level,
    /// Records held per request at most; the oldest is dropped first. Default 1000.
    #[serde(default = "default_buffer_size")]
    pub buffer_size: NonZeroUsize,
    /// After a request failed, pass its records through until it goes idle (`true`,
    /// default), or go back to holding (`false`).
    #[serde(default = "crate::config::default_true")]
    pub stop_buffering: bool,
    /// A request with no record for this long is done: its held records are dropped
    /// (or kept, if it is in the `keep_healthy` sample). Default `30s`.
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Fraction of healthy requests kept whole, chosen by a stable hash of the request id,
    /// so every agent keeps the same ones. Default `0`.
    #[serde(default)]
    pub keep_healthy: f64,
    /// Memory for held records across all requests; the least recently active requests
    /// are dropped first when it is full. Default `128MiB`.
    #[serde(default = "default_max_memory")]
    pub max_memory: ByteSize,
    /// A 5xx seen by the sidecar proxy flushes that request (what is held of it, and
    /// with `stop_buffering` everything of it read afterwards). Default `true`.
    #[serde(default = "crate::config::default_true")]
    pub activate_on_proxy_error: bool,
    /// Field conditions that also flush a request, e.g.
    /// `{ field = "http.status", op = ">=", value = 500 }`.
    #[serde(default)]
    pub activate_when: Vec<FieldCondition>,
    /// Which streams are buffered; others pass through untouched. Default: all.
    #[serde(default)]
    pub scope: ScopeConfig,
}

fn default_passthru_level() -> Level {
    Level::Warn
}

fn default_action_level() -> Level {
    Level::Error
}

fn default_buffer_size() -> NonZeroUsize {
    NonZeroUsize::new(1000).unwrap_or(NonZeroUsize::MIN)
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_max_memory() -> ByteSize {
    ByteSize::mib(128)
}

/// Which records fingers-crossed buffering applies to; every list is a set of globs (`*`
/// stays within one path component, `**` crosses them), and an empty list matches
/// everything. A record is in scope when every non-empty list matches.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeConfig {
    /// Kubernetes namespaces, e.g. `["shop", "payments-*"]`.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Container names.
    #[serde(default)]
    pub containers: Vec<String>,
    /// File paths.
    #[serde(default)]
    pub paths: Vec<String>,
}

/// The compiled scope.
#[derive(Debug, Clone)]
struct Scope {
    namespaces: Option<GlobSet>,
    containers: Option<GlobSet>,
    paths: Option<GlobSet>,
}

impl Scope {
    fn contains(&self, origin: &Origin) -> bool {
        let kubernetes = origin.kubernetes.as_ref();
        let matches = |set: &Option<GlobSet>, value: Option<&str>| match set {
            None => true,
            Some(set) => value.is_some_and(|value| set.is_match(value)),
        };
        matches(&self.namespaces, kubernetes.map(|k| k.namespace.as_str()))
            && matches(
                &self.containers,
                kubernetes.map(|k| k.container_name.as_str()),
            )
            && matches(&self.paths, origin.path.to_str())
    }
}

fn glob_set(key: &str, globs: &[String], problems: &mut Vec<String>) -> Option<GlobSet> {
    if globs.is_empty() {
        return None;
    }
    let mut builder = GlobSetBuilder::new();
    for (index, glob) in globs.iter().enumerate() {
        match GlobBuilder::new(glob).literal_separator(true).build() {
            Ok(glob) => {
                builder.add(glob);
            }
            Err(error) => problems.push(format!("{key}[{index}]: invalid glob: {error}")),
        }
    }
    match builder.build() {
        Ok(set) => Some(set),
        Err(error) => {
            problems.push(format!("{key}: {error}"));
            None
        }
    }
}

/// Everything the stage needs, validated.
pub struct Pipeline {
    builder: RecordBuilder,
    fingers: Option<FingersStage>,
    metrics: PipelineMetrics,
}

struct FingersStage {
    buffer: FingersCrossed<RecordKey, Held>,
    scope: Scope,
    conditions: Vec<FieldCondition>,
    activate_on_proxy_error: bool,
    metrics: FingersCrossedMetrics,
    last_activations: u64,
    last_evicted_keys: u64,
}

/// A record in the buffer: the raw line of one expected to be held (a document with its
/// added fields is about three times the line), or the built document of one expected to
/// pass at once (the buffer decides; a wrong guess costs a rebuild or some memory).
enum Held {
    Raw(RawRecord),
    Built(LogRecord),
}

impl RecordSize for Held {
    fn record_size(&self) -> usize {
        match self {
            Held::Raw(raw) => raw.line_len(),
            Held::Built(record) => record.doc.len(),
        }
    }
}

/// Builds the stage; every problem is returned, each naming its key.
pub fn build(
    host_name: String,
    correlation: &CorrelationConfig,
    fingers_crossed: Option<&FingersCrossedSection>,
    metrics: PipelineMetrics,
    dropped: EventsDropped,
    registry: &mut Registry,
) -> Result<Pipeline, Vec<String>> {
    let mut problems = Vec::new();
    let fields = match correlation.fields.build() {
        Ok(fields) => Some(fields),
        Err(errors) => {
            problems.extend(
                errors
                    .0
                    .iter()
                    .map(|error| format!("correlation.fields.{error}")),
            );
            None
        }
    };
    let fingers = fingers_crossed.and_then(|section| {
        let config = FingersCrossedConfig {
            passthru_level: section.passthru_level,
            action_level: section.action_level,
            buffer_size: section.buffer_size,
            stop_buffering: section.stop_buffering,
            idle_timeout: section.idle_timeout,
            keep_healthy: section.keep_healthy,
            max_memory: NonZeroUsize::new(
                usize::try_from(section.max_memory.as_u64()).unwrap_or(usize::MAX),
            )
            .unwrap_or(NonZeroUsize::MIN),
        };
        for (index, condition) in section.activate_when.iter().enumerate() {
            if let Err(why) = condition.validate() {
                problems.push(format!("fingers_crossed.activate_when[{index}]: {why}"));
            }
        }
        let scope = Scope {
            namespaces: glob_set(
                "fingers_crossed.scope.namespaces",
                &section.scope.namespaces,
                &mut problems,
            ),
            containers: glob_set(
                "fingers_crossed.scope.containers",
                &section.scope.containers,
                &mut problems,
            ),
            paths: glob_set(
                "fingers_crossed.scope.paths",
                &section.scope.paths,
                &mut problems,
            ),
        };
        match FingersCrossed::new(config) {
            Ok(buffer) => {
                let metrics = FingersCrossedMetrics::new(dropped);
                metrics.register(registry);
                Some(FingersStage {
                    buffer,
                    scope,
                    conditions: section.activate_when.clone(),
                    activate_on_proxy_error: section.activate_on_proxy_error,
                    metrics,
                    last_activations: 0,
                    last_evicted_keys: 0,
                })
            }
            Err(error) => {
                problems.push(format!("fingers_crossed: {error}"));
                None
            }
        }
    });
    match fields {
        Some(fields) if problems.is_empty() => {
            let clock = correlation.request_delta.then(RequestClock::default);
            Ok(Pipeline {
                builder: RecordBuilder::new(host_name, fields, clock),
                fingers,
                metrics,
            })
        }
        _ => Err(problems),
    }
}

impl Pipeline {
    /// Runs until the source closes `events`; then releases what fingers-crossed still
    /// holds unsettled (re-read after restart) and returns.
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<Vec<LogEvent>>,
        records: mpsc::Sender<Vec<LogRecord>>,
        mut outcomes: Option<mpsc::Receiver<RequestOutcome>>,
    ) {
        let mut out = Vec::new();
        let mut learned = Vec::new();
        loop {
            let deadline = self
                .fingers
                .as_ref()
                .and_then(|stage| stage.buffer.next_deadline())
                .map(tokio::time::Instant::from_std);
            tokio::select! {
                batch = events.recv() => match batch {
                    Some(batch) => self.accept(batch, &mut out),
                    None => break,
                },
                () = recv_outcomes(&mut outcomes, &mut learned) => {
                    for outcome in learned.drain(..) {
                        self.learn(outcome, &mut out);
                    }
                }
                _ = sleep_until(deadline) => {
                    if let Some(stage) = self.fingers.as_mut() {
                        stage.tick(Instant::now(), &mut self.builder, &mut out);
                    }
                }
            }
            if !out.is_empty() && records.send(std::mem::take(&mut out)).await.is_err() {
                // The sink is gone (aborted at shutdown); dropped acks keep checkpoints back.
                break;
            }
        }
        if let Some(stage) = self.fingers.as_mut() {
            stage.shutdown(&mut self.builder);
        }
    }

    fn accept(&mut self, batch: Vec<LogEvent>, out: &mut Vec<LogRecord>) {
        if self.fingers.is_none() {
            // Every event becomes a record now; growing `out` a doubling at a time copied it.
            // (With fingers-crossed most are held, and this would mostly be wasted.)
            out.reserve(batch.len());
        }
        let now = Instant::now();
        let mut bytes = 0u64;
        let count = batch.len() as u64;
        for event in batch {
            bytes += event.line.len() as u64;
            let activates = match &self.fingers {
                Some(stage)
                    if !stage.conditions.is_empty() && stage.scope.contains(&event.origin) =>
                {
                    stage
                        .conditions
                        .iter()
                        .any(|condition| condition.matches(&event.line))
                }
                _ => false,
            };
            let built = match self.fingers.as_ref() {
                Some(stage) if stage.scope.contains(&event.origin) => {
                    self.builder.build_or_hold(event, |key, level| {
                        // Kept raw, its document built only if it leaves: most held lines
                        // are dropped. A wrong guess costs a rebuild or some memory.
                        let level = level.unwrap_or(Level::Info);
                        stage.buffer.would_hold(key, level, activates)
                    })
                }
                _ => Built::Document(self.builder.build(event)),
            };
            match built {
                Built::Document(built) => {
                    self.count(&built.outcome);
                    match self.fingers.as_mut() {
                        Some(stage) if stage.scope.contains(&built.origin) => {
                            stage.push(built, activates, now, &mut self.builder, out)
                        }
                        _ => out.push(built.record),
                    }
                }
                Built::Raw(held) => {
                    self.count(&held.outcome);
                    if let Some(stage) = self.fingers.as_mut() {
                        stage.push_raw(held, activates, now, &mut self.builder, out);
                    }
                }
            }
        }
        self.metrics.events_in.inc_by(count);
        self.metrics.bytes_in.inc_by(bytes);
        if let Some(stage) = self.fingers.as_mut() {
            stage.update_gauges();
        }
    }

    fn count(&self, outcome: &BuildOutcome) {
        if let Some(reason) = outcome.wrapped {
            self.metrics
                .wrapped
                .get_or_create(&ReasonLabel {
                    reason: reason.tag(),
                })
                .inc();
        }
        if outcome.invalid_utf8 {
            self.metrics.invalid_utf8.inc();
        }
    }

    fn learn(&mut self, outcome: RequestOutcome, out: &mut Vec<LogRecord>) {
        self.builder
            .learn_pair(outcome.request_id.as_str(), outcome.trace_id);
        if let Some(stage) = self.fingers.as_mut() {
            if outcome.is_server_error() && stage.activate_on_proxy_error {
                // Lines read before this outcome that carried only the trace id are held
                // under the trace key: flush both.
                let now = Instant::now();
                let key = RecordKey::Request(RequestKey::new(outcome.request_id.as_str()));
                stage.activate(key, now, &mut self.builder, out);
                stage.activate(
                    RecordKey::Trace(outcome.trace_id),
                    now,
                    &mut self.builder,
                    out,
                );
            }
        }
    }
}

/// How many proxy outcomes the pipeline takes per wake-up: under load, one wake-up per
/// batch of requests instead of one per request.
const OUTCOMES_PER_WAKE: usize = 256;

/// Waits for proxy outcomes and moves those ready into `into`; never returns once the
/// proxy is gone (or was never configured).
async fn recv_outcomes(
    outcomes: &mut Option<mpsc::Receiver<RequestOutcome>>,
    into: &mut Vec<RequestOutcome>,
) {
    match outcomes {
        Some(receiver) => {
            if receiver.recv_many(into, OUTCOMES_PER_WAKE).await == 0 {
                *outcomes = None;
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

impl FingersStage {
    fn activate(
        &mut self,
        key: RecordKey,
        now: Instant,
        builder: &mut RecordBuilder,
        out: &mut Vec<LogRecord>,
    ) {
        let mut outlet = StageOutlet::new(out, builder, &self.metrics);
        self.buffer.activate(key, now, &mut outlet);
        self.update_gauges();
    }

    /// Takes a built record: held, passed, or flushing its key.
    fn push(
        &mut self,
        built: BuiltRecord,
        activates: bool,
        now: Instant,
        builder: &mut RecordBuilder,
        out: &mut Vec<LogRecord>,
    ) {
        // Lines that are not JSON objects (stack traces, panics, a runtime's own messages)
        // are never held: they are often the only trace of a crash. Nor are records built
        // without a key (none reach here: the stage builds its records with theirs).
        let key = match built.key {
            Some(key) if built.outcome.wrapped.is_none() => key,
            _ => {
                self.metrics.count_emitted(EmitReason::Passed);
                out.push(built.record);
                return;
            }
        };
        // A JSON line that states no level counts as info.
        let level = built.level.unwrap_or(Level::Info);
        let mut outlet = StageOutlet::new(out, builder, &self.metrics);
        self.buffer.push(
            key,
            Held::Built(built.record),
            level,
            activates,
            now,
            &mut outlet,
        );
    }

    /// Takes a line kept raw by the builder.
    fn push_raw(
        &mut self,
        held: HeldLine,
        activates: bool,
        now: Instant,
        builder: &mut RecordBuilder,
        out: &mut Vec<LogRecord>,
    ) {
        let level = held.level.unwrap_or(Level::Info);
        let mut outlet = StageOutlet::new(out, builder, &self.metrics);
        self.buffer.push(
            held.key,
            Held::Raw(held.raw),
            level,
            activates,
            now,
            &mut outlet,
        );
    }

    fn tick(&mut self, now: Instant, builder: &mut RecordBuilder, out: &mut Vec<LogRecord>) {
        let mut outlet = StageOutlet::new(out, builder, &self.metrics);
        self.buffer.tick(now, &mut outlet);
        self.update_gauges();
        if self.buffer.stats().held_records == 0 {
            // Nothing is held once traffic stops: the recycled line buffers go too, so the
            // idle trim can hand their pages back.
            builder.release_held_line_buffers();
        }
    }

    /// At shutdown, held records leave unsettled: their lines are read again after restart.
    fn shutdown(&mut self, builder: &mut RecordBuilder) {
        let mut out = Vec::new();
        let mut outlet = StageOutlet::new(&mut out, builder, &self.metrics);
        self.buffer.drain_all(&mut outlet);
        self.update_gauges();
    }

    fn update_gauges(&mut self) {
        let stats = self.buffer.stats();
        let metrics = &self.metrics;
        metrics.held_records.set(stats.held_records as i64);
        metrics.held_bytes.set(stats.held_bytes as i64);
        metrics.memory.set(stats.memory as i64);
        metrics.keys.set(stats.keys as i64);
        metrics
            .activations
            .inc_by(stats.activations - self.last_activations);
        metrics
            .evicted_keys
            .inc_by(stats.evicted_keys - self.last_evicted_keys);
        self.last_activations = stats.activations;
        self.last_evicted_keys = stats.evicted_keys;
    }
}

/// Routes the buffer's output: emitted records (built now if they were held raw) into the
/// outgoing batch; deliberately discarded ones settled (they are done) and counted;
/// shutdown ones dropped unsettled.
struct StageOutlet<'a> {
    out: &'a mut Vec<LogRecord>,
    builder: &'a mut RecordBuilder,
    metrics: &'a FingersCrossedMetrics,
}

impl<'a> StageOutlet<'a> {
    fn new(
        out: &'a mut Vec<LogRecord>,
        builder: &'a mut RecordBuilder,
        metrics: &'a FingersCrossedMetrics,
    ) -> Self {
        StageOutlet {
            out,
            builder,
            metrics,
        }
    }
}

impl Outlet<Held> for StageOutlet<'_> {
    fn emit(&mut self, record: Held, reason: EmitReason) {
        self.metrics.count_emitted(reason);
        self.out.push(match record {
            Held::Raw(raw) => self.builder.rebuild(raw),
            Held::Built(record) => record,
        });
    }

    fn discard(&mut self, record: Held, reason: DiscardReason) {
        self.metrics.count_discarded(reason);
        if reason.is_deliberate() {
            match record {
                Held::Raw(raw) => self.builder.settle_held(raw),
                Held::Built(record) => record.ack.delivered(),
            }
        }
    }
}

fn reason_label(reason: &'static str) -> ReasonLabel {
    ReasonLabel { reason }
}

fn dropped_reason(reason: DiscardReason) -> &'static str {
    match reason {
        DiscardReason::BufferFull => "fingers_crossed_buffer_full",
        DiscardReason::Idle => "fingers_crossed_idle",
        DiscardReason::Evicted => "fingers_crossed_evicted",
        DiscardReason::TooLarge => "fingers_crossed_too_large",
        DiscardReason::Shutdown => "fingers_crossed_shutdown",
        _ => "fingers_crossed_other",
    }
}

/// `hindsight_fingers_crossed_*` metrics.
#[derive(Debug, Clone, Default)]
struct FingersCrossedMetrics {
    held_records: Gauge,
    held_bytes: Gauge,
    memory: Gauge,
    keys: Gauge,
    activations: Counter,
    evicted_keys: Counter,
    emitted: Family<ReasonLabel, Counter>,
    discarded: Family<ReasonLabel, Counter>,
    dropped: EventsDropped,
    /// The counters of `emitted`, by [`EmitReason::ALL`], looked up once.
    emitted_by: Vec<Counter>,
    /// The counters of `discarded` and (for deliberate drops) of `dropped`, by
    /// [`DiscardReason::ALL`].
    discarded_by: Vec<(Counter, Option<Counter>)>,
}

impl FingersCrossedMetrics {
    fn new(dropped: EventsDropped) -> Self {
        let emitted = Family::<ReasonLabel, Counter>::default();
        let discarded = Family::<ReasonLabel, Counter>::default();
        let emitted_by = EmitReason::ALL
            .iter()
            .map(|reason| {
                emitted
                    .get_or_create(&reason_label(reason.as_str()))
                    .clone()
            })
            .collect();
        let discarded_by = DiscardReason::ALL
            .iter()
            .map(|&reason| {
                let label = reason_label(reason.as_str());
                let counter = discarded.get_or_create(&label).clone();
                let deliberate = reason.is_deliberate();
                (
                    counter,
                    deliberate.then(|| dropped.counter(dropped_reason(reason))),
                )
            })
            .collect();
        FingersCrossedMetrics {
            emitted,
            discarded,
            dropped,
            emitted_by,
            discarded_by,
            ..FingersCrossedMetrics::default()
        }
    }

    /// Counts a record emitted for `reason`: one atomic add, no label lookup.
    fn count_emitted(&self, reason: EmitReason) {
        let known = EmitReason::ALL.iter().position(|&r| r == reason);
        match known.and_then(|i| self.emitted_by.get(i)) {
            Some(counter) => counter.inc(),
            None => self
                .emitted
                .get_or_create(&reason_label(reason.as_str()))
                .inc(),
        };
    }

    /// Counts a record discarded for `reason`, and, when the drop is deliberate, in
    /// `hindsight_events_dropped_total` too.
    fn count_discarded(&self, reason: DiscardReason) {
        let known = DiscardReason::ALL.iter().position(|&r| r == reason);
        match known.and_then(|i| self.discarded_by.get(i)) {
            Some((discarded, dropped)) => {
                discarded.inc();
                if let Some(dropped) = dropped {
                    dropped.inc();
                }
            }
            None => {
                self.discarded
                    .get_or_create(&reason_label(reason.as_str()))
                    .inc();
                if reason.is_deliberate() {
                    self.dropped.add(dropped_reason(reason), 1);
                }
            }
        }
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "hindsight_fingers_crossed_held_records",
            "Records held, waiting for their request to fail or go idle",
            self.held_records.clone(),
        );
        registry.register(
            "hindsight_fingers_crossed_held_bytes",
            "Bytes of the held lines' JSON text (or documents, for records held built), without bookkeeping",
            self.held_bytes.clone(),
        );
        registry.register(
            "hindsight_fingers_crossed_memory_bytes",
            "Estimated memory of the held records and their keys: what max_memory caps",
            self.memory.clone(),
        );
        registry.register(
            "hindsight_fingers_crossed_keys",
            "Requests (or streams) with held records or passing through",
            self.keys.clone(),
        );
        registry.register(
            "hindsight_fingers_crossed_activations",
            "Requests that failed and had their records flushed",
            self.activations.clone(),
        );
        registry.register(
            "hindsight_fingers_crossed_evicted_keys",
            "Requests evicted to stay under max_memory",
            self.evicted_keys.clone(),
        );
        registry.register(
            "hindsight_fingers_crossed_emitted",
            "Records sent on, by reason: passed (at or above passthru_level, or after activation), flushed (held, then the request failed), sampled (kept healthy request)",
            self.emitted.clone(),
        );
        registry.register(
            "hindsight_fingers_crossed_discarded",
            "Records dropped by the buffer, by reason",
            self.discarded.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{KubernetesOrigin, LineFlags, Stream};
    use crate::handoff::RequestOutcome;
    use bytes::Bytes;
    use hindsight_correlation::ids::{RequestId, SpanId, TraceId};
    use hindsight_exporters::ack::{AckBatch, BatchStatus};
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};

    fn origin(namespace: &str) -> Arc<Origin> {
        Arc::new(Origin::new(
            PathBuf::from(format!("/var/log/pods/{namespace}_p_u/c/0.log")),
            Some(KubernetesOrigin {
                namespace: namespace.into(),
                pod_name: "p".into(),
                pod_uid: None,
                container_name: "c".into(),
                container_id: None,
            }),
        ))
    }

    struct Harness {
        events: mpsc::Sender<Vec<LogEvent>>,
        records: mpsc::Receiver<Vec<LogRecord>>,
        outcomes: mpsc::Sender<RequestOutcome>,
        statuses: Arc<Mutex<Vec<BatchStatus>>>,
        task: tokio::task::JoinHandle<()>,
        registry: Registry,
    }

    fn start(section: Option<FingersCrossedSection>) -> Harness {
        let mut registry = Registry::default();
        let pipeline = build(
            "node".into(),
            &CorrelationConfig::default(),
            section.as_ref(),
            PipelineMetrics::default(),
            EventsDropped::default(),
            &mut registry,
        )
        .expect("valid");
        let (events, events_rx) = mpsc::channel(8);
        let (records_tx, records) = mpsc::channel(8);
        let (outcomes, outcomes_rx) = mpsc::channel(8);
        let task = tokio::spawn(pipeline.run(events_rx, records_tx, Some(outcomes_rx)));
        Harness {
            events,
            records,
            outcomes,
            statuses: Arc::default(),
            task,
            registry,
        }
    }

    impl Harness {
        /// Sends lines as one batch whose ack status is recorded.
        async fn send(&self, namespace: &str, lines: &[&str]) {
            let statuses = self.statuses.clone();
            let batch = AckBatch::new(move |status| statuses.lock().unwrap().push(status));
            let origin = origin(namespace);
            let events = lines
                .iter()
                .map(|line| LogEvent {
                    line: Bytes::copy_from_slice(line.as_bytes()),
                    runtime_time: None,
                    stream: Some(Stream::Stdout),
                    origin: origin.clone(),
                    flags: LineFlags::default(),
                    ack: batch.ack(),
                })
                .collect();
            self.events.send(events).await.unwrap();
        }

        /// The value of metric `name` (without labels).
        fn metric(&self, name: &str) -> f64 {
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, &self.registry).unwrap();
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("no {name} in\n{text}"))
                .parse()
                .unwrap()
        }

        /// The `msg` of every record received within a short while, settling each.
        async fn received(&mut self) -> Vec<String> {
            let mut messages = Vec::new();
            while let Ok(Some(batch)) =
                tokio::time::timeout(Duration::from_millis(300), self.records.recv()).await
            {
                for record in batch {
                    let value: serde_json::Value = serde_json::from_slice(&record.doc).unwrap();
                    messages.push(value["msg"].as_str().unwrap_or("").to_owned());
                    record.ack.delivered();
                }
            }
            messages
        }
    }

    fn section() -> FingersCrossedSection {
        toml::from_str("idle_timeout = \"200ms\"").unwrap()
    }

    /// Requests stay live through the harness's waits.
    fn long_idle() -> FingersCrossedSection {
        toml::from_str("idle_timeout = \"60s\"").unwrap()
    }

    #[tokio::test]
    async fn without_fingers_crossed_everything_passes() {
        let mut h = start(None);
        h.send("shop", &[r#"{"level":"debug","request_id":"a","msg":"1"}"#])
            .await;
        assert_eq!(h.received().await, ["1"]);
    }

    #[tokio::test]
    async fn an_error_flushes_its_request_in_order_and_healthy_requests_are_dropped_when_idle() {
        let mut h = start(Some(section()));
        h.send(
            "shop",
            &[
                r#"{"level":"debug","request_id":"bad","msg":"b1"}"#,
                r#"{"level":"info","request_id":"ok","msg":"o1"}"#,
                r#"{"level":"warn","request_id":"ok","msg":"o2-warn"}"#,
                r#"{"level":"info","request_id":"bad","msg":"b2"}"#,
                r#"{"level":"error","request_id":"bad","msg":"b3-error"}"#,
                r#"{"level":"info","request_id":"bad","msg":"b4-after"}"#,
            ],
        )
        .await;
        assert_eq!(
            h.received().await,
            ["o2-warn", "b1", "b2", "b3-error", "b4-after"]
        );
        // "o1" is dropped once "ok" is idle; its ack is settled, so the batch is done.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(h.received().await, Vec::<String>::new());
        assert_eq!(*h.statuses.lock().unwrap(), [BatchStatus::Delivered]);
    }

    #[tokio::test]
    async fn discards_from_interleaved_batches_settle_every_batch() {
        let mut h = start(Some(section()));
        h.send(
            "shop",
            &[
                r#"{"level":"info","request_id":"a","msg":"a1"}"#,
                r#"{"level":"debug","request_id":"b","msg":"b1"}"#,
            ],
        )
        .await;
        h.send(
            "shop",
            &[
                r#"{"level":"info","request_id":"b","msg":"b2"}"#,
                r#"{"level":"info","request_id":"a","msg":"a2"}"#,
            ],
        )
        .await;
        assert!(h.received().await.is_empty());
        // Both requests go idle together: their records are discarded in one tick, the
        // two batches' acknowledgements interleaved.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            *h.statuses.lock().unwrap(),
            [BatchStatus::Delivered, BatchStatus::Delivered]
        );
    }

    #[tokio::test]
    async fn a_proxy_5xx_flushes_the_request() {
        let mut h = start(Some(long_idle()));
        h.send(
            "shop",
            &[r#"{"level":"info","request_id":"r-5","msg":"held"}"#],
        )
        .await;
        assert!(h.received().await.is_empty());
        h.outcomes
            .send(RequestOutcome {
                request_id: RequestId::new("r-5").unwrap(),
                correlation_id: None,
                trace_id: TraceId::from_u64(5).unwrap(),
                span_id: SpanId::from_u64(5).unwrap(),
                status: 503,
            })
            .await
            .unwrap();
        assert_eq!(h.received().await, ["held"]);
    }

    #[tokio::test]
    async fn a_proxy_5xx_also_flushes_lines_that_carried_only_the_trace_id() {
        let mut h = start(Some(long_idle()));
        let trace = TraceId::from_u64(77).unwrap();
        let line = format!(
            r#"{{"level":"debug","trace_id":"{}","msg":"trace only"}}"#,
            trace.to_hex()
        );
        h.send("shop", &[line.as_str()]).await;
        assert!(h.received().await.is_empty());
        h.outcomes
            .send(RequestOutcome {
                request_id: RequestId::new("r-77").unwrap(),
                correlation_id: None,
                trace_id: trace,
                span_id: SpanId::from_u64(1).unwrap(),
                status: 500,
            })
            .await
            .unwrap();
        assert_eq!(h.received().await, ["trace only"]);
    }

    #[tokio::test]
    async fn lines_that_are_not_json_objects_are_never_held() {
        let mut h = start(Some(long_idle()));
        h.send("shop", &["thread 'main' panicked at src/main.rs:3:5"])
            .await;
        let batch = tokio::time::timeout(Duration::from_secs(2), h.records.recv())
            .await
            .unwrap()
            .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&batch[0].doc).unwrap();
        assert_eq!(
            value["message"],
            "thread 'main' panicked at src/main.rs:3:5"
        );
    }

    #[tokio::test]
    async fn out_of_scope_streams_pass_through() {
        let mut scoped = section();
        scoped.scope.namespaces = vec!["shop".into()];
        let mut h = start(Some(scoped));
        h.send(
            "other",
            &[r#"{"level":"debug","request_id":"x","msg":"passes"}"#],
        )
        .await;
        h.send(
            "shop",
            &[r#"{"level":"debug","request_id":"y","msg":"held"}"#],
        )
        .await;
        assert_eq!(h.received().await, ["passes"]);
    }

    #[tokio::test]
    async fn a_field_condition_activates() {
        let mut with_condition = section();
        with_condition.activate_when =
            vec![toml::from_str("field = \"http.status\"\nop = \">=\"\nvalue = 500").unwrap()];
        let mut h = start(Some(with_condition));
        h.send(
            "shop",
            &[
                r#"{"level":"info","request_id":"q","msg":"before"}"#,
                r#"{"level":"info","request_id":"q","msg":"done","http":{"status":502}}"#,
            ],
        )
        .await;
        assert_eq!(h.received().await, ["before", "done"]);
    }

    #[tokio::test]
    async fn the_memory_gauge_shows_what_max_memory_caps() {
        let mut h = start(Some(long_idle()));
        h.send(
            "shop",
            &[
                r#"{"level":"debug","request_id":"m","msg":"1"}"#,
                r#"{"level":"info","request_id":"m","msg":"2"}"#,
            ],
        )
        .await;
        assert!(h.received().await.is_empty());
        let held = h.metric("hindsight_fingers_crossed_held_bytes");
        let memory = h.metric("hindsight_fingers_crossed_memory_bytes");
        assert!(held > 0.0 && memory > held, "held {held}, memory {memory}");
        h.send("shop", &[r#"{"level":"error","request_id":"m","msg":"3"}"#])
            .await;
        assert_eq!(h.received().await, ["1", "2", "3"]);
        // The request passes through now (stop_buffering): only its key is left.
        let key_only = h.metric("hindsight_fingers_crossed_memory_bytes");
        assert!(
            key_only > 0.0 && key_only < memory,
            "{key_only} after {memory}"
        );
        assert_eq!(h.metric("hindsight_fingers_crossed_held_bytes"), 0.0);
    }

    #[tokio::test]
    async fn held_records_stay_unsettled_at_shutdown() {
        let mut h = start(Some(long_idle()));
        h.send(
            "shop",
            &[r#"{"level":"info","request_id":"z","msg":"held"}"#],
        )
        .await;
        assert!(h.received().await.is_empty());
        drop(h.events);
        h.task.await.unwrap();
        assert_eq!(*h.statuses.lock().unwrap(), [BatchStatus::Undelivered]);
    }

    #[test]
    fn invalid_settings_are_all_reported_with_their_keys() {
        let section: FingersCrossedSection = toml::from_str(
            "keep_healthy = 2.0\nscope = { namespaces = [\"[\"] }\nactivate_when = [{ field = \"a\", op = \">\", value = \"x\" }]",
        )
        .unwrap();
        let problems = build(
            "n".into(),
            &CorrelationConfig::default(),
            Some(&section),
            PipelineMetrics::default(),
            EventsDropped::default(),
            &mut Registry::default(),
        )
        .err()
        .unwrap();
        let text = problems.join("\n");
        assert!(text.contains("fingers_crossed.activate_when[0]"), "{text}");
        assert!(
            text.contains("fingers_crossed.scope.namespaces[0]"),
            "{text}"
        );
        assert!(text.contains("keep_healthy"), "{text}");
    }
}
