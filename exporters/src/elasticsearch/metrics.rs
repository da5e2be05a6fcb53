//! The sink's metrics, registered once and updated through cheap handles.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The sink's metric names, in one place.
///
/// Counters are registered without their `_total` suffix, which the Prometheus encoder
/// appends: [`EVENTS_SENT`](names::EVENTS_SENT) is exposed as
/// `hindsight_elasticsearch_events_sent_total`.
pub mod names {
    /// Documents the cluster confirmed (counter).
    pub const EVENTS_SENT: &str = "hindsight_elasticsearch_events_sent";
    /// Bulk request body bytes on the wire, after compression (counter).
    pub const BYTES_SENT: &str = "hindsight_elasticsearch_bytes_sent";
    /// Bulk request body bytes before compression (counter).
    pub const BYTES_UNCOMPRESSED: &str = "hindsight_elasticsearch_bytes_uncompressed";
    /// Bulk requests by outcome: the HTTP status, or `connect`/`timeout`/`io` (counter).
    pub const BULK_REQUESTS: &str = "hindsight_elasticsearch_bulk_requests";
    /// Bulk request latency, sending to the end of the answer, in seconds (histogram).
    pub const BULK_DURATION: &str = "hindsight_elasticsearch_bulk_duration_seconds";
    /// Retries by reason: whole requests and single items (counter).
    pub const RETRIES: &str = "hindsight_elasticsearch_retries";
    /// Documents written to the dead-letter file, by error type (counter).
    pub const DEAD_LETTERED: &str = "hindsight_elasticsearch_dead_lettered";
    /// Bulk requests under way (gauge).
    pub const IN_FLIGHT: &str = "hindsight_elasticsearch_in_flight_requests";
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StatusLabel {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabel {
    pub reason: String,
}

/// The sink's metrics. Clones share the same values; [`SinkMetrics::register`] exposes them.
#[derive(Clone, Debug)]
pub struct SinkMetrics {
    pub(crate) events_sent: Counter,
    pub(crate) bytes_sent: Counter,
    pub(crate) bytes_uncompressed: Counter,
    pub(crate) bulk_requests: Family<StatusLabel, Counter>,
    pub(crate) bulk_duration: Histogram,
    pub(crate) retries: Family<ReasonLabel, Counter>,
    pub(crate) dead_lettered: Family<ReasonLabel, Counter>,
    pub(crate) in_flight: Gauge,
}

impl Default for SinkMetrics {
    fn default() -> Self {
        SinkMetrics {
            events_sent: Counter::default(),
            bytes_sent: Counter::default(),
            bytes_uncompressed: Counter::default(),
            bulk_requests: Family::default(),
            // 5ms .. ~41s
            bulk_duration: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            retries: Family::default(),
            dead_lettered: Family::default(),
            in_flight: Gauge::default(),
        }
    }
}

impl SinkMetrics {
    /// Registers every metric in `registry` under the names in [`names`].
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            names::EVENTS_SENT,
            "Documents the cluster confirmed",
            self.events_sent.clone(),
        );
        registry.register(
            names::BYTES_SENT,
            "Bulk request body bytes sent, after compression",
            self.bytes_sent.clone(),
        );
        registry.register(
            names::BYTES_UNCOMPRESSED,
            "Bulk request body bytes sent, before compression",
            self.bytes_uncompressed.clone(),
        );
        registry.register(
            names::BULK_REQUESTS,
            "Bulk requests by HTTP status or transport failure",
            self.bulk_requests.clone(),
        );
        registry.register(
            names::BULK_DURATION,
            "Bulk request latency in seconds",
            self.bulk_duration.clone(),
        );
        registry.register(
            names::RETRIES,
            "Retried bulk requests and items, by reason",
            self.retries.clone(),
        );
        registry.register(
            names::DEAD_LETTERED,
            "Documents written to the dead-letter file, by error type",
            self.dead_lettered.clone(),
        );
        registry.register(
            names::IN_FLIGHT,
            "Bulk requests under way",
            self.in_flight.clone(),
        );
    }

    pub(crate) fn bulk_request(&self, status: &str) {
        self.bulk_requests
            .get_or_create(&StatusLabel {
                status: status.to_owned(),
            })
            .inc();
    }

    pub(crate) fn retry(&self, reason: &str, by: u64) {
        self.retries
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc_by(by);
    }

    pub(crate) fn dead_lettered(&self, reason: &str, by: u64) {
        self.dead_lettered
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc_by(by);
    }

    #[cfg(test)]
    pub(crate) fn retries_for(&self, reason: &str) -> u64 {
        self.retries
            .get(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .map_or(0, |c| c.get())
    }

    #[cfg(test)]
    pub(crate) fn dead_lettered_for(&self, reason: &str) -> u64 {
        self.dead_lettered
            .get(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .map_or(0, |c| c.get())
    }
}

/// Keeps the in-flight gauge right even when a request future is dropped.
pub(crate) struct InFlight<'a>(&'a Gauge);

impl<'a> InFlight<'a> {
    pub(crate) fn start(gauge: &'a Gauge) -> Self {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn registered_names_are_the_documented_ones() {
        let metrics = SinkMetrics::default();
        metrics.events_sent.inc();
        metrics.bulk_request("200");
        metrics.retry("http_429", 2);
        metrics.dead_lettered("mapper_parsing_exception", 1);
        metrics.bulk_duration.observe(0.1);
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        for expected in [
            "hindsight_elasticsearch_events_sent_total 1",
            "hindsight_elasticsearch_bytes_sent_total 0",
            "hindsight_elasticsearch_bytes_uncompressed_total 0",
            "hindsight_elasticsearch_bulk_requests_total{status=\"200\"} 1",
            "hindsight_elasticsearch_bulk_duration_seconds_count 1",
            "hindsight_elasticsearch_retries_total{reason=\"http_429\"} 2",
            "hindsight_elasticsearch_dead_lettered_total{reason=\"mapper_parsing_exception\"} 1",
            "hindsight_elasticsearch_in_flight_requests 0",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from\n{text}");
        }
    }
}
