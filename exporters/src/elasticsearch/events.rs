//! The sink's observable events: one type per event, whose `emit` writes both the log line
//! and the metric, so the two never drift apart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::metrics::SinkMetrics;
use super::retry::RetryReason;

/// Metrics plus the state that keeps retry logs quiet: a warning when the sink starts
/// failing, debug lines while it keeps failing, one info line when it recovers.
#[derive(Debug)]
pub(crate) struct Telemetry {
    pub metrics: SinkMetrics,
    failing: AtomicBool,
}

impl Telemetry {
    pub(crate) fn new(metrics: SinkMetrics) -> Self {
        Telemetry {
            metrics,
            failing: AtomicBool::new(false),
        }
    }
}

/// A bulk request got an answer (any status) or failed in transport.
pub(crate) struct BulkRequestDone<'a> {
    pub outcome: &'a str,
    pub duration: Duration,
    pub wire_bytes: usize,
    pub raw_bytes: usize,
}

impl BulkRequestDone<'_> {
    pub(crate) fn emit(self, t: &Telemetry) {
        let m = &t.metrics;
        m.bulk_request(self.outcome);
        m.bulk_duration.observe(self.duration.as_secs_f64());
        m.bytes_sent.inc_by(self.wire_bytes as u64);
        m.bytes_uncompressed.inc_by(self.raw_bytes as u64);
        tracing::trace!(
            outcome = self.outcome,
            duration_ms = self.duration.as_millis() as u64,
            bytes = self.wire_bytes,
            "bulk request done"
        );
    }
}

/// A whole bulk request failed and will be sent again.
pub(crate) struct RequestRetried<'a> {
    pub endpoint: &'a str,
    pub reason: RetryReason,
    pub detail: &'a str,
    pub documents: usize,
    pub delay: Duration,
}

impl RequestRetried<'_> {
    pub(crate) fn emit(self, t: &Telemetry) {
        t.metrics.retry(self.reason.as_str(), 1);
        let first = !t.failing.swap(true, Ordering::Relaxed);
        let delay_ms = self.delay.as_millis() as u64;
        if self.reason.needs_attention() {
            tracing::error!(
                endpoint = self.endpoint,
                reason = self.reason.as_str(),
                documents = self.documents,
                delay_ms,
                "bulk request refused, retrying (nothing is dropped; fix the cause): {}",
                self.detail
            );
        } else if first {
            tracing::warn!(
                endpoint = self.endpoint,
                reason = self.reason.as_str(),
                documents = self.documents,
                delay_ms,
                "bulk request failed, retrying until it succeeds: {}",
                self.detail
            );
        } else {
            tracing::debug!(
                endpoint = self.endpoint,
                reason = self.reason.as_str(),
                documents = self.documents,
                delay_ms,
                "bulk request failed again: {}",
                self.detail
            );
        }
    }
}

/// Some items of a bulk request were refused for now and will be sent again.
pub(crate) struct ItemsRetried {
    pub reason: RetryReason,
    pub count: usize,
}

impl ItemsRetried {
    pub(crate) fn emit(self, t: &Telemetry) {
        t.metrics.retry(self.reason.as_str(), self.count as u64);
        let first = !t.failing.swap(true, Ordering::Relaxed);
        if first {
            tracing::warn!(
                reason = self.reason.as_str(),
                count = self.count,
                "the cluster refused some documents for now, retrying them"
            );
        } else {
            tracing::debug!(
                reason = self.reason.as_str(),
                count = self.count,
                "retrying documents"
            );
        }
    }
}

/// The cluster confirmed documents.
pub(crate) struct EventsDelivered {
    pub count: usize,
}

impl EventsDelivered {
    pub(crate) fn emit(self, t: &Telemetry) {
        t.metrics.events_sent.inc_by(self.count as u64);
    }
}

/// A request went through after failures: the end of a failing episode.
pub(crate) struct DeliveryRecovered<'a> {
    pub endpoint: &'a str,
}

impl DeliveryRecovered<'_> {
    /// Logs only if the sink was failing.
    pub(crate) fn emit(self, t: &Telemetry) {
        if t.failing.swap(false, Ordering::Relaxed) {
            tracing::info!(endpoint = self.endpoint, "bulk requests succeed again");
        }
    }
}

/// Documents were written to the dead-letter file.
pub(crate) struct DeadLettered<'a> {
    pub error_type: &'a str,
    pub reason: &'a str,
    pub count: usize,
    pub path: &'a std::path::Path,
}

impl DeadLettered<'_> {
    pub(crate) fn emit(self, t: &Telemetry) {
        let label = if self.error_type.is_empty() {
            "unknown"
        } else {
            self.error_type
        };
        t.metrics.dead_lettered(label, self.count as u64);
        tracing::warn!(
            error_type = label,
            count = self.count,
            file = %self.path.display(),
            "the cluster rejected documents; they are in the dead-letter file: {}",
            self.reason
        );
    }
}

/// The dead-letter file could not be written; the documents wait and the write is retried.
pub(crate) struct DeadLetterFailed<'a> {
    pub error: &'a std::io::Error,
    pub path: &'a std::path::Path,
    pub delay: Duration,
}

impl DeadLetterFailed<'_> {
    pub(crate) fn emit(self, t: &Telemetry) {
        t.metrics.retry(RetryReason::DeadLetterWrite.as_str(), 1);
        tracing::error!(
            file = %self.path.display(),
            delay_ms = self.delay.as_millis() as u64,
            "cannot write the dead-letter file, retrying: {}",
            self.error
        );
    }
}
