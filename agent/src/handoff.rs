//! What the sidecar proxy tells the log pipeline about each request it served.
//!
//! The proxy knows, for every request, the request id and the trace id it used and the
//! status the service answered. The log pipeline uses that to give a log line that carries
//! only one of the two ids the other, and to activate fingers-crossed flushing for a
//! request that ended in a 5xx.
//!
//! The channel is bounded and the proxy never waits on it: when it is full the outcome is
//! dropped and counted (`hindsight_proxy_handoff_dropped_total`), because slowing user
//! requests down for the sake of log enrichment would be the wrong trade.

use hindsight_correlation::ids::{RequestId, SpanId, TraceId};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;

/// One request the proxy served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOutcome {
    /// The request id sent upstream (incoming or generated).
    pub request_id: RequestId,
    /// The correlation id sent upstream, when it differs from the request id.
    pub correlation_id: Option<RequestId>,
    /// The trace the request belongs to.
    pub trace_id: TraceId,
    /// The proxy's server span.
    pub span_id: SpanId,
    /// The status the service answered; 502/504 when the proxy could not reach it.
    pub status: u16,
}

impl RequestOutcome {
    /// True when the request failed on the server side (5xx).
    pub fn is_server_error(&self) -> bool {
        (500..600).contains(&self.status)
    }
}

/// The proxy's end of the hand-off.
#[derive(Debug, Clone)]
pub struct OutcomeSender {
    tx: mpsc::Sender<RequestOutcome>,
    dropped: Counter,
}

impl OutcomeSender {
    /// Hands an outcome over without waiting; counts it as dropped when the pipeline lags.
    pub fn send(&self, outcome: RequestOutcome) {
        if self.tx.try_send(outcome).is_err() {
            self.dropped.inc();
        }
    }

    /// The counter of outcomes dropped because the channel was full or closed.
    pub fn dropped(&self) -> &Counter {
        &self.dropped
    }
}

/// A bounded hand-off channel holding at most `capacity` outcomes.
pub fn channel(capacity: usize) -> (OutcomeSender, mpsc::Receiver<RequestOutcome>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (
        OutcomeSender {
            tx,
            dropped: Counter::default(),
        },
        rx,
    )
}
