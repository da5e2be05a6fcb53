//! What comes out of the buffer, why, and the counters the agent exposes.

use std::sync::Arc;

/// The size of a record in bytes, as counted against `max_memory`.
///
/// Must return the same value every time it is asked about the same record (it is asked
/// again when the record leaves). The buffer adds its own per-record overhead on top.
///
/// ```
/// use hindsight_correlation::fingers_crossed::RecordSize;
///
/// struct LogEvent { raw: Vec<u8>, offset: u64 }
///
/// impl RecordSize for LogEvent {
///     fn record_size(&self) -> usize {
///         self.raw.capacity()
///     }
/// }
/// assert_eq!("four".record_size(), 4);
/// ```
pub trait RecordSize {
    /// Bytes this record occupies beyond its own inline size (usually its heap data).
    fn record_size(&self) -> usize;
}

impl RecordSize for [u8] {
    fn record_size(&self) -> usize {
        self.len()
    }
}

impl RecordSize for str {
    fn record_size(&self) -> usize {
        self.len()
    }
}

impl RecordSize for Vec<u8> {
    fn record_size(&self) -> usize {
        self.len()
    }
}

impl RecordSize for String {
    fn record_size(&self) -> usize {
        self.len()
    }
}

impl<R: RecordSize + ?Sized> RecordSize for &R {
    fn record_size(&self) -> usize {
        (**self).record_size()
    }
}

impl<R: RecordSize + ?Sized> RecordSize for Box<R> {
    fn record_size(&self) -> usize {
        (**self).record_size()
    }
}

impl<R: RecordSize + ?Sized> RecordSize for Arc<R> {
    fn record_size(&self) -> usize {
        (**self).record_size()
    }
}

/// Why a record was emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EmitReason {
    /// Emitted as soon as it was pushed, never held: at or above `passthru_level`, an
    /// activating record, or its key was passing through after an activation.
    Passed,
    /// Held, then released in original order because its key was activated.
    Flushed,
    /// Held, then released because its key went idle and is in the `keep_healthy` sample.
    Sampled,
}

impl EmitReason {
    /// Every reason, in declaration order.
    pub const ALL: [EmitReason; 3] = [EmitReason::Passed, EmitReason::Flushed, EmitReason::Sampled];

    /// A stable lowercase name, for metric labels and log fields.
    pub const fn as_str(self) -> &'static str {
        match self {
            EmitReason::Passed => "passed",
            EmitReason::Flushed => "flushed",
            EmitReason::Sampled => "sampled",
        }
    }
}

/// Why a record was discarded. The caller settles its acknowledgement accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiscardReason {
    /// Its key already held `buffer_size` records; the oldest goes first.
    BufferFull,
    /// Its key went idle without an activation and is not in the healthy sample.
    Idle,
    /// Its key was evicted to stay under `max_memory` (or, when it is the only key, its
    /// oldest records were).
    Evicted,
    /// It alone (with its key) is larger than `max_memory`, so it was never held.
    TooLarge,
    /// The buffer was drained at shutdown. Not a deliberate drop: leave the
    /// acknowledgement unsettled so the record is read again after a restart
    /// (at-least-once). See [`DiscardReason::is_deliberate`].
    Shutdown,
}

impl DiscardReason {
    /// Every reason, in declaration order.
    pub const ALL: [DiscardReason; 5] = [
        DiscardReason::BufferFull,
        DiscardReason::Idle,
        DiscardReason::Evicted,
        DiscardReason::TooLarge,
        DiscardReason::Shutdown,
    ];

    /// A stable snake_case name, for the `reason` label of drop metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            DiscardReason::BufferFull => "buffer_full",
            DiscardReason::Idle => "idle",
            DiscardReason::Evicted => "evicted",
            DiscardReason::TooLarge => "too_large",
            DiscardReason::Shutdown => "shutdown",
        }
    }

    /// Whether the drop is a deliberate rule (settle the acknowledgement as done, so the
    /// checkpoint moves past it) rather than a shutdown (leave it unsettled).
    ///
    /// ```
    /// use hindsight_correlation::fingers_crossed::DiscardReason;
    ///
    /// assert!(DiscardReason::Idle.is_deliberate());
    /// assert!(!DiscardReason::Shutdown.is_deliberate());
    /// ```
    pub const fn is_deliberate(self) -> bool {
        !matches!(self, DiscardReason::Shutdown)
    }
}

/// Where the buffer puts the records that leave it.
///
/// Implement it to route records straight into the next batch and settle discarded
/// acknowledgements without an intermediate vector, or use [`Output`].
pub trait Outlet<T> {
    /// `record` goes on down the pipeline. Per key, calls come in the order documented at
    /// [`FingersCrossed`](super::FingersCrossed).
    fn emit(&mut self, record: T, reason: EmitReason);
    /// `record` leaves the pipeline here.
    fn discard(&mut self, record: T, reason: DiscardReason);
}

/// A reusable [`Outlet`] that collects records into two vectors.
///
/// Reuse one across calls (take or [`clear`](Output::clear) its vectors in between) so the
/// hot path does not allocate.
///
/// ```
/// use hindsight_correlation::fingers_crossed::{DiscardReason, Output, Outlet, EmitReason};
///
/// let mut out = Output::new();
/// out.emit("a", EmitReason::Passed);
/// out.discard("b", DiscardReason::Idle);
/// assert_eq!(out.emitted, ["a"]);
/// assert_eq!(out.discarded, [("b", DiscardReason::Idle)]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Output<T> {
    /// Records to send on, in emission order.
    pub emitted: Vec<T>,
    /// Records dropped here, each with its reason.
    pub discarded: Vec<(T, DiscardReason)>,
}

impl<T> Output<T> {
    /// An empty output.
    pub const fn new() -> Self {
        Output {
            emitted: Vec::new(),
            discarded: Vec::new(),
        }
    }

    /// Empties both vectors, keeping their capacity.
    pub fn clear(&mut self) {
        self.emitted.clear();
        self.discarded.clear();
    }

    /// Whether nothing was emitted or discarded.
    pub fn is_empty(&self) -> bool {
        self.emitted.is_empty() && self.discarded.is_empty()
    }
}

impl<T> Default for Output<T> {
    fn default() -> Self {
        Output::new()
    }
}

impl<T> Outlet<T> for Output<T> {
    fn emit(&mut self, record: T, _reason: EmitReason) {
        self.emitted.push(record);
    }

    fn discard(&mut self, record: T, reason: DiscardReason) {
        self.discarded.push((record, reason));
    }
}

/// Records discarded so far, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiscardCounts {
    /// [`DiscardReason::BufferFull`].
    pub buffer_full: u64,
    /// [`DiscardReason::Idle`].
    pub idle: u64,
    /// [`DiscardReason::Evicted`].
    pub evicted: u64,
    /// [`DiscardReason::TooLarge`].
    pub too_large: u64,
    /// [`DiscardReason::Shutdown`].
    pub shutdown: u64,
}

impl DiscardCounts {
    /// The count for one reason.
    pub fn get(&self, reason: DiscardReason) -> u64 {
        match reason {
            DiscardReason::BufferFull => self.buffer_full,
            DiscardReason::Idle => self.idle,
            DiscardReason::Evicted => self.evicted,
            DiscardReason::TooLarge => self.too_large,
            DiscardReason::Shutdown => self.shutdown,
        }
    }

    /// All reasons together.
    pub fn total(&self) -> u64 {
        DiscardReason::ALL.iter().map(|&r| self.get(r)).sum()
    }

    pub(crate) fn bump(&mut self, reason: DiscardReason) {
        match reason {
            DiscardReason::BufferFull => self.buffer_full += 1,
            DiscardReason::Idle => self.idle += 1,
            DiscardReason::Evicted => self.evicted += 1,
            DiscardReason::TooLarge => self.too_large += 1,
            DiscardReason::Shutdown => self.shutdown += 1,
        }
    }
}

/// Gauges and counters of a buffer, for `hindsight_fingers_crossed_*` metrics.
///
/// Gauges describe the buffer now; counters only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Gauge: keys tracked, holding records or passing through after an activation.
    pub keys: usize,
    /// Gauge: records held.
    pub held_records: usize,
    /// Gauge: sum of [`RecordSize::record_size`] over the records held.
    pub held_bytes: usize,
    /// Gauge: estimated memory of keys and held records with overhead — what
    /// `max_memory` caps.
    pub memory: usize,
    /// Counter: activations of a key that was not already passing through.
    pub activations: u64,
    /// Counter: records emitted without being held ([`EmitReason::Passed`]).
    pub passed: u64,
    /// Counter: held records released by an activation ([`EmitReason::Flushed`]).
    pub flushed: u64,
    /// Counter: held records released by the healthy sample ([`EmitReason::Sampled`]).
    pub sampled: u64,
    /// Counter: records discarded, by reason.
    pub discarded: DiscardCounts,
    /// Counter: keys that went idle and were forgotten.
    pub expired_keys: u64,
    /// Counter: keys evicted to stay under `max_memory`.
    pub evicted_keys: u64,
}

impl Stats {
    /// Counter: records emitted, for any reason.
    pub fn emitted(&self) -> u64 {
        self.passed + self.flushed + self.sampled
    }
}
