//! The agent's own metrics: one registry, exposed on the admin server's `/metrics`.
//!
//! Each component owns a metrics struct that registers itself here; names live next to
//! the component as constants, never as literals scattered through the code.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Label for counts split by a reason.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why the event was counted.
    pub reason: &'static str,
}

/// Label carrying the agent's version.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabel {
    /// The agent's version.
    pub version: &'static str,
}

/// Why events were deliberately dropped: `hindsight_events_dropped_total{reason}`.
///
/// One family for the whole agent, shared by every component that drops events, so that
/// a single query shows every drop with its reason. Clones share the same series.
#[derive(Debug, Clone, Default)]
pub struct EventsDropped(Family<ReasonLabel, Counter>);

impl EventsDropped {
    /// Empty lines: nothing to ship.
    pub const EMPTY_LINE: &'static str = "empty_line";

    /// Counts `count` events dropped for `reason`.
    pub fn add(&self, reason: &'static str, count: u64) {
        if count > 0 {
            self.0.get_or_create(&ReasonLabel { reason }).inc_by(count);
        }
    }

    /// The counter for `reason`, looked up once: for drops counted per event.
    pub fn counter(&self, reason: &'static str) -> Counter {
        self.0.get_or_create(&ReasonLabel { reason }).clone()
    }

    /// The current count for `reason`.
    pub fn get(&self, reason: &'static str) -> u64 {
        self.0.get_or_create(&ReasonLabel { reason }).get()
    }

    /// Registers the family.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "hindsight_events_dropped",
            "Events deliberately dropped, by reason",
            self.0.clone(),
        );
    }
}

/// Metrics of the record-building stage between sources and sinks.
#[derive(Debug, Clone, Default)]
pub struct PipelineMetrics {
    /// Events that entered the pipeline from sources.
    pub events_in: Counter,
    /// Bytes of application lines that entered the pipeline.
    pub bytes_in: Counter,
    /// Lines shipped wrapped in a `message` field, by reason.
    pub wrapped: Family<ReasonLabel, Counter>,
    /// Lines whose invalid UTF-8 was replaced.
    pub invalid_utf8: Counter,
}

impl PipelineMetrics {
    /// Registers every metric.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "hindsight_events_in",
            "Events that entered the pipeline from sources",
            self.events_in.clone(),
        );
        registry.register(
            "hindsight_bytes_in",
            "Bytes of application lines that entered the pipeline",
            self.bytes_in.clone(),
        );
        registry.register(
            "hindsight_events_wrapped",
            "Lines shipped wrapped in a message field, by reason",
            self.wrapped.clone(),
        );
        registry.register(
            "hindsight_invalid_utf8_lines",
            "Lines whose invalid UTF-8 was replaced with U+FFFD",
            self.invalid_utf8.clone(),
        );
    }
}

/// Creates the agent's registry with its build info and uptime. Every component
/// registers full metric names (`hindsight_...`), so a name reads the same in code and in Grafana.
pub fn new_registry(started: std::time::Instant) -> Registry {
    let mut registry = Registry::default();
    let build_info = Family::<VersionLabel, Gauge>::default();
    build_info
        .get_or_create(&VersionLabel {
            version: env!("CARGO_PKG_VERSION"),
        })
        .set(1);
    registry.register(
        "hindsight_build_info",
        "The agent's version; always 1",
        build_info,
    );
    registry.register_collector(Box::new(UptimeCollector { started }));
    registry
}

/// Reports seconds since start at scrape time.
#[derive(Debug)]
struct UptimeCollector {
    started: std::time::Instant,
}

impl prometheus_client::collector::Collector for UptimeCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        let gauge = prometheus_client::metrics::gauge::ConstGauge::new(
            self.started.elapsed().as_secs_f64(),
        );
        let metric_encoder = encoder.encode_descriptor(
            "hindsight_uptime_seconds",
            "Seconds since the agent started",
            None,
            gauge.metric_type(),
        )?;
        gauge.encode(metric_encoder)
    }
}
