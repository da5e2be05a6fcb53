//! The sink: batching, concurrent bulk requests, and the delivery loop that settles every
//! record.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use tokio::sync::mpsc::Receiver;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::cluster::ClusterInfo;
use super::config::{BulkMode, Compression, Settings};
use super::dead_letter::{DeadLetter, DeadLetterFile};
use super::encode::{is_blank, BulkEncoder, EncodedBody, IndexFormat, IndexNamer};
use super::error::{chain, ElasticsearchError};
use super::events::{
    BulkRequestDone, DeadLetterFailed, DeadLettered, DeliveryRecovered, EventsDelivered,
    ItemsRetried, RequestRetried, Telemetry,
};
use super::metrics::{InFlight, SinkMetrics};
use super::response::{parse_bulk_response, BulkResult, ItemError, ItemOutcome};
use super::retry::{
    classify_status, classify_transport_error, Backoff, BackoffPolicy, RequestClass, RetryDecision,
    RetryReason,
};
use super::template::template_body;
use super::transport::{Readiness, Transport};
use crate::LogRecord;

/// How much of an unexpected response body goes into logs and errors.
const SNIPPET_CHARS: usize = 512;

/// A built Elasticsearch / OpenSearch sink; see the [module docs](super).
///
/// Cloning is cheap and shares the connection pool, metrics and readiness, so a clone can
/// serve health checks while the original runs.
#[derive(Debug, Clone)]
pub struct ElasticsearchSink {
    shared: Arc<Shared>,
    limits: BatchLimits,
    max_in_flight: usize,
}

#[derive(Debug)]
struct Shared {
    transport: Transport,
    index: IndexFormat,
    mode: BulkMode,
    compression: Compression,
    backoff: BackoffPolicy,
    template_name: String,
    install_template: bool,
    dead_letter: DeadLetterFile,
    telemetry: Telemetry,
}

#[derive(Debug, Clone, Copy)]
struct BatchLimits {
    max_bytes: usize,
    max_events: usize,
    timeout: Duration,
    /// Bytes an action line and newline add to each document, for the size estimate.
    overhead: usize,
}

impl ElasticsearchSink {
    pub(crate) fn new(
        settings: Settings,
        data_dir: &Path,
        metrics: SinkMetrics,
    ) -> Result<Self, ElasticsearchError> {
        let transport = Transport::new(&settings)?;
        let overhead = settings.index.format(0).len() + 28;
        Ok(ElasticsearchSink {
            shared: Arc::new(Shared {
                transport,
                index: settings.index,
                mode: settings.mode,
                compression: settings.compression,
                backoff: settings.backoff,
                template_name: settings.template.name,
                install_template: settings.template.install,
                dead_letter: DeadLetterFile::new(data_dir),
                telemetry: Telemetry::new(metrics),
            }),
            limits: BatchLimits {
                max_bytes: settings.max_bytes,
                max_events: settings.max_events,
                timeout: settings.batch_timeout,
                overhead,
            },
            max_in_flight: settings.max_in_flight,
        })
    }

    /// A cheap handle telling whether the cluster answered the last request (for `/readyz`).
    pub fn readiness(&self) -> Readiness {
        self.shared.transport.readiness()
    }

    /// Where rejected documents are written: `<data_dir>/dead-letter/elasticsearch.ndjson`.
    pub fn dead_letter_path(&self) -> &Path {
        self.shared.dead_letter.path()
    }

    /// Asks the endpoints, in turn, what they are (`GET /`) and checks that the version is
    /// supported: Elasticsearch 7.8+ (7.0+ with `template.install = false`) or OpenSearch
    /// 1+. Returns the first usable answer; an unsupported version is an error at once.
    pub async fn healthcheck(&self) -> Result<ClusterInfo, ElasticsearchError> {
        let transport = &self.shared.transport;
        transport.log_warnings_once();
        let mut errors = Vec::new();
        for endpoint in transport.rotation() {
            let name = transport.endpoint_name(endpoint).to_owned();
            match transport.json(endpoint, Method::GET, "", None).await {
                Ok(answer) if answer.status.is_success() => {
                    match ClusterInfo::parse(&answer.body) {
                        Ok(info) => {
                            if let Some(requirement) =
                                info.unsupported(self.shared.install_template)
                            {
                                return Err(ElasticsearchError::Unsupported {
                                    endpoint: name,
                                    distribution: info.distribution,
                                    version: info.version,
                                    requirement,
                                });
                            }
                            tracing::info!(
                                endpoint = %name,
                                distribution = %info.distribution,
                                version = %info.version,
                                "cluster reachable"
                            );
                            return Ok(info);
                        }
                        Err(detail) => errors.push(ElasticsearchError::InvalidResponse {
                            endpoint: name,
                            detail,
                        }),
                    }
                }
                Ok(answer) => errors.push(ElasticsearchError::Status {
                    endpoint: name,
                    status: answer.status.as_u16(),
                    body: snippet(&answer.body),
                }),
                Err(source) => errors.push(ElasticsearchError::Request {
                    endpoint: name,
                    source,
                }),
            }
        }
        Err(one_or_all(errors))
    }

    /// Installs (or updates) the index template `PUT _index_template/<template.name>`.
    /// Idempotent. Tries the endpoints in turn until one answers; a 4xx answer (a template
    /// the cluster refuses, missing privileges) is returned at once.
    pub async fn install_template(&self) -> Result<(), ElasticsearchError> {
        let shared = &self.shared;
        let transport = &shared.transport;
        transport.log_warnings_once();
        let pattern = shared.index.template_pattern();
        let body = template_body(&pattern, shared.mode == BulkMode::DataStream);
        let body = serde_json::to_vec(&body).map_err(|e| ElasticsearchError::InvalidResponse {
            endpoint: String::new(),
            detail: format!("cannot encode the template: {e}"),
        })?;
        let path = format!("_index_template/{}", shared.template_name);
        let mut errors = Vec::new();
        for endpoint in transport.rotation() {
            let name = transport.endpoint_name(endpoint).to_owned();
            match transport
                .json(endpoint, Method::PUT, &path, Some(body.clone()))
                .await
            {
                Ok(answer) if answer.status.is_success() => {
                    tracing::info!(
                        endpoint = %name,
                        template = %shared.template_name,
                        pattern = %pattern,
                        "index template installed"
                    );
                    return Ok(());
                }
                Ok(answer) => {
                    let error = ElasticsearchError::Status {
                        endpoint: name,
                        status: answer.status.as_u16(),
                        body: snippet(&answer.body),
                    };
                    if answer.status.is_client_error() {
                        return Err(error);
                    }
                    errors.push(error);
                }
                Err(source) => errors.push(ElasticsearchError::Request {
                    endpoint: name,
                    source,
                }),
            }
        }
        Err(one_or_all(errors))
    }

    /// Delivers everything received on `input` until the channel is closed and every
    /// received record is settled (confirmed by the cluster or dead-lettered).
    ///
    /// Records are grouped into bulk requests of at most `batch.max_events` documents and
    /// `batch.max_bytes` bytes, sent when full or `batch.timeout` after their first record
    /// arrived; up to `max_in_flight` requests run at once, and while all are busy nothing
    /// more is taken from `input`. Failures are retried without end, so at shutdown wrap
    /// this in a grace timeout: dropping the future drops unsettled acknowledgements, and
    /// their records are read again after a restart.
    pub async fn run(self, mut input: Receiver<Vec<LogRecord>>) {
        self.shared.transport.log_warnings_once();
        let mut pending = Pending::new(self.limits);
        let mut idle: Vec<Worker> = Vec::with_capacity(self.max_in_flight);
        let mut workers = 0usize;
        let mut busy: JoinSet<Worker> = JoinSet::new();
        let mut open = true;
        loop {
            while pending.ready(open, Instant::now()) {
                let worker = match idle.pop() {
                    Some(worker) => worker,
                    None if workers < self.max_in_flight => {
                        workers += 1;
                        Worker::new(self.shared.clone())
                    }
                    None => break,
                };
                let batch = pending.take();
                busy.spawn(worker.deliver(batch));
            }
            if !open && pending.is_empty() && busy.is_empty() {
                return;
            }
            let can_dispatch = !idle.is_empty() || workers < self.max_in_flight;
            let deadline = pending.deadline().filter(|_| can_dispatch);
            tokio::select! {
                joined = busy.join_next(), if !busy.is_empty() => match joined {
                    Some(Ok(worker)) => idle.push(worker),
                    Some(Err(error)) => {
                        // Its records' acks were dropped unsettled: they are read again.
                        tracing::error!("an Elasticsearch delivery task failed: {error}");
                        workers -= 1;
                    }
                    None => {}
                },
                received = input.recv(), if open && !pending.is_full() => match received {
                    Some(records) => pending.extend(records, Instant::now()),
                    None => open = false,
                },
                () = sleep_until_deadline(deadline), if deadline.is_some() => {}
            }
        }
    }
}

async fn sleep_until_deadline(deadline: Option<Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline).await;
    }
}

/// A single error as it is; several as [`ElasticsearchError::Unreachable`].
fn one_or_all(mut errors: Vec<ElasticsearchError>) -> ElasticsearchError {
    if errors.len() == 1 {
        if let Some(error) = errors.pop() {
            return error;
        }
    }
    ElasticsearchError::Unreachable { errors }
}

/// The start of a response body, for logs and errors.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut cut: String = text.chars().take(SNIPPET_CHARS).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

/// Records waiting for a bulk request.
struct Pending {
    records: VecDeque<LogRecord>,
    /// When the waiting records arrived, oldest first: how many of them came at that time.
    arrivals: VecDeque<(usize, Instant)>,
    bytes: usize,
    limits: BatchLimits,
}

impl Pending {
    fn new(limits: BatchLimits) -> Self {
        Pending {
            records: VecDeque::new(),
            arrivals: VecDeque::new(),
            bytes: 0,
            limits,
        }
    }

    fn size(&self, record: &LogRecord) -> usize {
        record.doc.len() + self.limits.overhead
    }

    fn extend(&mut self, records: Vec<LogRecord>, now: Instant) {
        if records.is_empty() {
            return;
        }
        self.arrivals.push_back((records.len(), now));
        for record in records {
            self.bytes += self.size(&record);
            self.records.push_back(record);
        }
    }

    fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn is_full(&self) -> bool {
        self.records.len() >= self.limits.max_events || self.bytes >= self.limits.max_bytes
    }

    /// Whether a request should be sent now.
    fn ready(&self, open: bool, now: Instant) -> bool {
        !self.is_empty() && (self.is_full() || !open || self.deadline().is_some_and(|d| d <= now))
    }

    /// Takes the next request's records: up to `max_events` and `max_bytes` (at least one).
    fn take(&mut self) -> Vec<LogRecord> {
        let mut batch = Vec::with_capacity(self.records.len().min(self.limits.max_events));
        let mut bytes = 0;
        while let Some(record) = self.records.front() {
            let size = self.size(record);
            if batch.len() == self.limits.max_events
                || (!batch.is_empty() && bytes + size > self.limits.max_bytes)
            {
                break;
            }
            bytes += size;
            if let Some(record) = self.records.pop_front() {
                batch.push(record);
            }
        }
        self.bytes -= bytes;
        let mut taken = batch.len();
        while let Some((count, _)) = self.arrivals.front_mut() {
            if *count > taken {
                *count -= taken;
                break;
            }
            taken -= *count;
            self.arrivals.pop_front();
        }
        batch
    }

    /// When the oldest waiting record must be sent: `timeout` after it arrived. After a
    /// full request, the rest is due by its own arrival, not by the oldest record of the
    /// request just taken: at a steady rate, a remainder would otherwise go out on its
    /// own, a small request every `timeout`.
    fn deadline(&self) -> Option<Instant> {
        self.arrivals
            .front()
            .map(|(_, arrived)| *arrived + self.limits.timeout)
    }
}

/// What became of a bulk request after retries.
enum Sent {
    /// The cluster accepted the request; here is its bulk response.
    Accepted { endpoint: usize, body: bytes::Bytes },
    /// 413: too large for the cluster.
    TooLarge,
}

/// A dead letter to be: the record and why it was rejected.
struct Rejection {
    record: LogRecord,
    status: u16,
    error: ItemError,
}

/// Sends bulk requests one at a time with its own reusable buffers; the sink runs up to
/// `max_in_flight` of them.
struct Worker {
    shared: Arc<Shared>,
    encoder: BulkEncoder,
    namer: IndexNamer,
}

impl Worker {
    fn new(shared: Arc<Shared>) -> Self {
        let encoder = BulkEncoder::new(shared.compression);
        let namer = IndexNamer::new(shared.index.clone());
        Worker {
            shared,
            encoder,
            namer,
        }
    }

    fn telemetry(&self) -> &Telemetry {
        &self.shared.telemetry
    }

    /// Settles every record of `records`; returns the worker for the next batch.
    async fn deliver(mut self, records: Vec<LogRecord>) -> Worker {
        // Halves of batches the cluster found too large, first half on top.
        let mut queue = vec![records];
        while let Some(batch) = queue.pop() {
            if let Some((first, second)) = self.deliver_batch(batch).await {
                queue.push(second);
                queue.push(first);
            }
        }
        self
    }

    /// Delivers one batch until every record is settled, or returns its two halves when
    /// the cluster answered 413.
    async fn deliver_batch(
        &mut self,
        records: Vec<LogRecord>,
    ) -> Option<(Vec<LogRecord>, Vec<LogRecord>)> {
        let mut records = records;
        if records.iter().any(|r| is_blank(&r.doc)) {
            let blank;
            (blank, records) = records.into_iter().partition(|r| is_blank(&r.doc));
            let rejections = blank
                .into_iter()
                .map(|record| Rejection {
                    record,
                    status: 400,
                    error: ItemError {
                        kind: "empty_document".to_owned(),
                        reason: Some("the record is empty; there is nothing to index".to_owned()),
                        caused_by: None,
                    },
                })
                .collect();
            self.dead_letter(rejections).await;
        }

        let mut backoff = self.shared.backoff.start();
        while !records.is_empty() {
            let body = self.encoder.encode(&mut records, &mut self.namer);
            let (endpoint, response) = match self.send(&body, records.len(), &mut backoff).await {
                Sent::Accepted { endpoint, body } => (endpoint, body),
                Sent::TooLarge if records.len() > 1 => {
                    let second = records.split_off(records.len() / 2);
                    self.telemetry().metrics.retry("http_413_split", 1);
                    tracing::debug!(
                        documents = records.len() + second.len(),
                        "bulk request too large for the cluster, splitting it in half"
                    );
                    return Some((records, second));
                }
                Sent::TooLarge => {
                    let rejections = records
                        .into_iter()
                        .map(|record| Rejection {
                            record,
                            status: 413,
                            error: ItemError {
                                kind: "request_entity_too_large".to_owned(),
                                reason: Some(
                                    "this one document is larger than the cluster accepts \
                                     (http.max_content_length)"
                                        .to_owned(),
                                ),
                                caused_by: None,
                            },
                        })
                        .collect();
                    self.dead_letter(rejections).await;
                    return None;
                }
            };
            let endpoint_name = self.shared.transport.endpoint_name(endpoint);
            let outcomes = match parse_bulk_response(&response, self.namer.op(), records.len()) {
                Ok(BulkResult::AllDelivered) => {
                    EventsDelivered {
                        count: records.len(),
                    }
                    .emit(self.telemetry());
                    DeliveryRecovered {
                        endpoint: endpoint_name,
                    }
                    .emit(self.telemetry());
                    for record in records {
                        record.ack.delivered();
                    }
                    return None;
                }
                Ok(BulkResult::PerItem(outcomes)) => outcomes,
                Err(detail) => {
                    let delay = backoff.next_delay();
                    RequestRetried {
                        endpoint: endpoint_name,
                        reason: RetryReason::InvalidResponse,
                        detail: &format!("{detail}: {}", snippet(&response)),
                        documents: records.len(),
                        delay,
                    }
                    .emit(self.telemetry());
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };

            let mut retry = Vec::new();
            let mut retry_reasons: BTreeMap<&'static str, (RetryReason, usize)> = BTreeMap::new();
            let mut rejections = Vec::new();
            let mut delivered = 0usize;
            for (record, outcome) in std::mem::take(&mut records).into_iter().zip(outcomes) {
                match outcome {
                    ItemOutcome::Delivered => {
                        delivered += 1;
                        record.ack.delivered();
                    }
                    ItemOutcome::Retry(reason) => {
                        retry_reasons
                            .entry(reason.as_str())
                            .or_insert((reason, 0))
                            .1 += 1;
                        retry.push(record);
                    }
                    ItemOutcome::Reject { status, error } => {
                        rejections.push(Rejection {
                            record,
                            status,
                            error,
                        });
                    }
                }
            }
            EventsDelivered { count: delivered }.emit(self.telemetry());
            if !rejections.is_empty() {
                self.dead_letter(rejections).await;
            }
            if retry.is_empty() {
                DeliveryRecovered {
                    endpoint: self.shared.transport.endpoint_name(endpoint),
                }
                .emit(self.telemetry());
                return None;
            }
            for (reason, count) in retry_reasons.into_values() {
                ItemsRetried { reason, count }.emit(self.telemetry());
            }
            records = retry;
            tokio::time::sleep(backoff.next_delay()).await;
        }
        None
    }

    /// Sends `body` until the cluster accepts it (2xx) or finds it too large (413):
    /// every other failure is retried, on another endpoint when this one looks down.
    async fn send(&self, body: &EncodedBody, documents: usize, backoff: &mut Backoff) -> Sent {
        let transport = &self.shared.transport;
        loop {
            let endpoint = transport.pick();
            let started = Instant::now();
            let result = {
                let _in_flight = InFlight::start(&self.telemetry().metrics.in_flight);
                transport.bulk(endpoint, body.wire.clone()).await
            };
            // Bytes count only when an answer proves the body went out.
            let done = |outcome: &str, answered: bool, telemetry: &Telemetry| {
                BulkRequestDone {
                    outcome,
                    duration: started.elapsed(),
                    wire_bytes: if answered { body.wire.len() } else { 0 },
                    raw_bytes: if answered { body.raw_len } else { 0 },
                }
                .emit(telemetry)
            };
            let (decision, detail): (RetryDecision, String) = match result {
                Ok(answer) => {
                    done(answer.status.as_str(), true, self.telemetry());
                    match classify_status(answer.status, answer.retry_after) {
                        RequestClass::Accepted => {
                            return Sent::Accepted {
                                endpoint,
                                body: answer.body,
                            }
                        }
                        RequestClass::TooLarge => return Sent::TooLarge,
                        RequestClass::Retry(decision) => (
                            decision,
                            format!("HTTP {}: {}", answer.status, snippet(&answer.body)),
                        ),
                    }
                }
                Err(error) => {
                    let decision = classify_transport_error(&error);
                    done(decision.reason.as_str(), false, self.telemetry());
                    (decision, chain(&error))
                }
            };
            if decision.failover {
                transport.mark_down(endpoint);
            }
            let delay = if decision.failover && transport.other_is_up(endpoint) {
                Duration::ZERO
            } else {
                decision.retry_after.unwrap_or_else(|| backoff.next_delay())
            };
            RequestRetried {
                endpoint: transport.endpoint_name(endpoint),
                reason: decision.reason,
                detail: &detail,
                documents,
                delay,
            }
            .emit(self.telemetry());
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
        }
    }

    /// Writes rejected records to the dead-letter file (retrying until it works), then
    /// settles them.
    async fn dead_letter(&mut self, rejections: Vec<Rejection>) {
        let letters: Vec<DeadLetter> = rejections
            .iter()
            .map(|r| DeadLetter {
                index: self.namer.index(r.record.timestamp_millis).to_owned(),
                status: r.status,
                error_type: r.error.kind.clone(),
                reason: r.error.describe(),
                document: r.record.doc.clone(),
            })
            .collect();
        let file = &self.shared.dead_letter;
        let mut backoff = self.shared.backoff.start();
        while let Err(error) = file.append(&letters).await {
            let delay = backoff.next_delay();
            DeadLetterFailed {
                error: &error,
                path: file.path(),
                delay,
            }
            .emit(self.telemetry());
            tokio::time::sleep(delay).await;
        }
        let mut by_type: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
        for letter in &letters {
            by_type
                .entry(&letter.error_type)
                .or_insert((0, &letter.reason))
                .0 += 1;
        }
        for (error_type, (count, reason)) in by_type {
            DeadLettered {
                error_type,
                reason,
                count,
                path: file.path(),
            }
            .emit(self.telemetry());
        }
        for rejection in rejections {
            rejection.record.ack.delivered();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn limits(max_events: usize, max_bytes: usize) -> BatchLimits {
        BatchLimits {
            max_bytes,
            max_events,
            timeout: Duration::from_secs(1),
            overhead: 0,
        }
    }

    fn records(n: usize, size: usize) -> Vec<LogRecord> {
        (0..n)
            .map(|_| LogRecord {
                doc: crate::Document::new(Bytes::from(vec![b'x'; size])),
                timestamp_millis: 0,
                ack: crate::ack::Ack::none(),
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn pending_batches_by_count_bytes_and_time() {
        let now = Instant::now();
        let mut pending = Pending::new(limits(3, 100));
        assert!(!pending.ready(true, now));
        pending.extend(records(2, 10), now);
        assert!(!pending.ready(true, now), "neither full nor due");
        assert!(
            pending.ready(false, now),
            "input closed: send what is there"
        );
        assert!(
            pending.ready(true, now + Duration::from_secs(1)),
            "due after the timeout"
        );

        pending.extend(records(5, 10), now);
        assert!(pending.is_full());
        assert_eq!(pending.take().len(), 3, "max_events");
        assert_eq!(pending.take().len(), 3);
        assert_eq!(pending.take().len(), 1);
        assert!(pending.is_empty() && pending.deadline().is_none() && pending.bytes == 0);

        pending.extend(records(4, 40), now);
        assert_eq!(pending.take().len(), 2, "max_bytes");
        // A document larger than max_bytes still goes, alone.
        pending.extend(records(1, 500), now);
        assert_eq!(pending.take().len(), 2);
        assert_eq!(pending.take().len(), 1);
        assert!(pending.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_remainder_is_due_a_timeout_after_it_arrived() {
        let start = Instant::now();
        let mut pending = Pending::new(limits(3, 1000));
        pending.extend(records(2, 10), start);
        let later = start + Duration::from_millis(600);
        pending.extend(records(3, 10), later);
        assert_eq!(pending.take().len(), 3);
        // Two records left, both from the later arrival.
        assert_eq!(pending.deadline(), Some(later + Duration::from_secs(1)));
        assert!(!pending.ready(true, start + Duration::from_secs(1)));
        assert!(pending.ready(true, later + Duration::from_secs(1)));

        // A batch that ends inside an arrival leaves the rest of it with its own time.
        let mut pending = Pending::new(limits(3, 1000));
        pending.extend(records(4, 10), start);
        pending.extend(records(1, 10), later);
        assert_eq!(pending.take().len(), 3);
        assert_eq!(pending.deadline(), Some(start + Duration::from_secs(1)));
        assert_eq!(pending.take().len(), 2);
        assert_eq!(pending.deadline(), None);
    }

    #[test]
    fn snippets_are_bounded() {
        assert_eq!(snippet(b"short"), "short");
        let long = snippet(&[b'a'; 2000]);
        assert_eq!(long.chars().count(), SNIPPET_CHARS + 1);
    }
}
