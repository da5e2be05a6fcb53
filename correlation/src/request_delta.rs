//! Request delta (`[RID][RD][LD]`): for each record of a request, the time since the
//! request's first line and since its previous line on this host, so a slow step inside
//! a request stands out in Kibana without a trace.
//!
//! ```
//! use std::num::NonZeroUsize;
//! use std::time::Duration;
//! use hindsight_correlation::request_delta::RequestClock;
//! use hindsight_correlation::time::parse_text;
//!
//! let mut clock = RequestClock::new(NonZeroUsize::new(1000).unwrap(), Duration::from_secs(300));
//! let at = |text| parse_text(text).unwrap();
//! clock.observe("r-1", at("2026-11-23T10:00:00.000Z"));
//! clock.observe("r-1", at("2026-11-23T10:00:00.040Z"));
//! let delta = clock.observe("r-1", at("2026-11-23T10:00:01.540Z"));
//! assert_eq!((delta.elapsed_ms(), delta.since_previous_ms()), (1540, 1500));
//! ```
//!
//! # The fields
//!
//! [`RequestDelta::add_ecs_fields`] writes `hindsight.request.elapsed_ms` and
//! `hindsight.request.since_previous_ms`, in whole milliseconds (rounded down):
//! - not ECS `event.duration`: that is the duration of the event itself, in nanoseconds,
//!   and an APM or access-log record may carry its own; these figures are positions
//!   inside a request, which ECS has no field for, and ECS asks for custom fields to
//!   live under their own namespace;
//! - integers, because Elasticsearch's dynamic mapping fixes a field's type from its
//!   first value: `0` maps as `long`, after which fractional values would be truncated,
//!   and a float mapping would hold only about seven digits. Milliseconds are the
//!   resolution most log libraries write their time in.
//!
//! # Which lines count
//!
//! Only records with a request id are timed. No id is invented for a record without
//! one, and a stream (the key such records fall back to) is not a request, so those get
//! no delta. Pass the record's own time as `now` when it has one (log lines reach the
//! agent in batches, so arrival time would flatten the gaps), else the time it was read.
//!
//! # Bounds
//!
//! At most `capacity` request ids are remembered; a new id beyond that evicts the least
//! recently seen one. An id not seen for `idle_timeout` is forgotten, so a later line
//! with the same id starts a new request (elapsed 0). Both are counted in
//! [`ClockStats`]. Time that goes backwards (stdout and stderr interleaved) gives zero,
//! never a negative figure.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::num::NonZeroUsize;
use std::time::Duration;

use crate::ecs::{AddedFields, Field, FieldValue};
use crate::time::Timestamp;

/// The default bound on remembered request ids.
pub const DEFAULT_CAPACITY: NonZeroUsize = match NonZeroUsize::new(100_000) {
    Some(capacity) => capacity,
    None => NonZeroUsize::MIN,
};

/// The default time after which a silent request is forgotten.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Where a record stands in its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestDelta {
    /// Since the request's first line (zero for the first line).
    pub elapsed: Duration,
    /// Since the request's previous line (zero for the first line).
    pub since_previous: Duration,
}

impl RequestDelta {
    /// [`RequestDelta::elapsed`] in whole milliseconds.
    pub fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.elapsed.as_millis()).unwrap_or(u64::MAX)
    }

    /// [`RequestDelta::since_previous`] in whole milliseconds.
    pub fn since_previous_ms(&self) -> u64 {
        u64::try_from(self.since_previous.as_millis()).unwrap_or(u64::MAX)
    }

    /// Adds `hindsight.request.elapsed_ms` and `hindsight.request.since_previous_ms`.
    pub fn add_ecs_fields(&self, fields: &mut AddedFields<'_>) {
        fields.push(Field::RequestElapsedMs, FieldValue::U64(self.elapsed_ms()));
        fields.push(
            Field::RequestSincePreviousMs,
            FieldValue::U64(self.since_previous_ms()),
        );
    }
}

/// What the clock dropped, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClockStats {
    /// Ids evicted because the clock was full.
    pub evicted_full: u64,
    /// Ids forgotten after `idle_timeout` without a line.
    pub expired_idle: u64,
}

/// "No slot" in the recency list.
const NIL: u32 = u32::MAX;

#[derive(Debug)]
struct Slot {
    /// The id's keyed hash; `None` once the slot is free.
    key: Option<u64>,
    first: Timestamp,
    last: Timestamp,
    /// Towards the most recently seen.
    newer: u32,
    /// Towards the least recently seen.
    older: u32,
}

/// First and last line time per request id, bounded in size, driven by explicit time.
#[derive(Debug)]
pub struct RequestClock {
    capacity: NonZeroUsize,
    idle_timeout: Duration,
    /// Ids by their keyed 64-bit hash, not their text: no allocation per request and
    /// about 70 bytes per remembered id, however long the id. Two ids would share a clock
    /// only if their hashes collided: below one chance in a billion with 100,000 ids
    /// remembered, and the key is random per process, so ids cannot be chosen to collide.
    index: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
    hasher: RandomState,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Most recently seen.
    newest: u32,
    /// Least recently seen: the next to evict or expire.
    oldest: u32,
    stats: ClockStats,
}

impl Default for RequestClock {
    /// [`DEFAULT_CAPACITY`] ids, [`DEFAULT_IDLE_TIMEOUT`].
    fn default() -> Self {
        RequestClock::new(DEFAULT_CAPACITY, DEFAULT_IDLE_TIMEOUT)
    }
}

impl RequestClock {
    /// A clock remembering at most `capacity` ids, each for `idle_timeout` after its last line.
    pub fn new(capacity: NonZeroUsize, idle_timeout: Duration) -> Self {
        // The slot index is a u32; no host holds four billion requests at once.
        let capacity =
            capacity.min(NonZeroUsize::new(NIL as usize - 1).unwrap_or(NonZeroUsize::MIN));
        RequestClock {
            capacity,
            idle_timeout,
            index: HashMap::default(),
            hasher: RandomState::new(),
            slots: Vec::new(),
            free: Vec::new(),
            newest: NIL,
            oldest: NIL,
            stats: ClockStats::default(),
        }
    }

    /// Notes a line of request `request_id` at `now` and returns its delta.
    pub fn observe(&mut self, request_id: &str, now: Timestamp) -> RequestDelta {
        self.expire(now);
        let key = self.hasher.hash_one(request_id);
        if let Some(&slot) = self.index.get(&key) {
            self.touch(slot);
            let entry = &mut self.slots[slot as usize];
            let delta = RequestDelta {
                elapsed: now.saturating_duration_since(entry.first),
                since_previous: now.saturating_duration_since(entry.last),
            };
            entry.last = entry.last.max(now);
            return delta;
        }
        if self.index.len() >= self.capacity.get() {
            self.remove(self.oldest);
            self.stats.evicted_full += 1;
        }
        let slot = Slot {
            key: Some(key),
            first: now,
            last: now,
            newer: NIL,
            older: NIL,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(key, id);
        self.link_newest(id);
        RequestDelta::default()
    }

    /// Forgets ids idle for `idle_timeout` at `now`, oldest first, stopping at the first
    /// that is not (recency follows arrival order, which is close to time order). Returns
    /// how many were forgotten. [`RequestClock::observe`] calls it, so calling it is only
    /// needed to free memory while no lines arrive.
    pub fn expire(&mut self, now: Timestamp) -> usize {
        let mut expired = 0;
        while self.oldest != NIL {
            let last = self.slots[self.oldest as usize].last;
            if now.saturating_duration_since(last) < self.idle_timeout {
                break;
            }
            self.remove(self.oldest);
            self.stats.expired_idle += 1;
            expired += 1;
        }
        expired
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// What was dropped so far.
    pub fn stats(&self) -> ClockStats {
        self.stats
    }

    fn unlink(&mut self, id: u32) {
        let (newer, older) = {
            let slot = &self.slots[id as usize];
            (slot.newer, slot.older)
        };
        match newer {
            NIL => self.newest = older,
            newer => self.slots[newer as usize].older = older,
        }
        match older {
            NIL => self.oldest = newer,
            older => self.slots[older as usize].newer = newer,
        }
    }

    fn link_newest(&mut self, id: u32) {
        let previous = self.newest;
        {
            let slot = &mut self.slots[id as usize];
            slot.newer = NIL;
            slot.older = previous;
        }
        match previous {
            NIL => self.oldest = id,
            previous => self.slots[previous as usize].newer = id,
        }
        self.newest = id;
    }

    fn touch(&mut self, id: u32) {
        if self.newest != id {
            self.unlink(id);
            self.link_newest(id);
        }
    }

    fn remove(&mut self, id: u32) {
        if id == NIL {
            return;
        }
        self.unlink(id);
        if let Some(key) = self.slots[id as usize].key.take() {
            self.index.remove(&key);
        }
        self.free.push(id);
    }
}

/// A hasher for keys that are already keyed hashes: passes the value through.
#[derive(Debug, Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in so it still hashes.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_epoch;

    fn at(millis: u64) -> Timestamp {
        parse_epoch(1_700_000_000_000.0 + millis as f64).unwrap()
    }

    fn clock(capacity: usize, idle_ms: u64) -> RequestClock {
        RequestClock::new(
            NonZeroUsize::new(capacity).unwrap(),
            Duration::from_millis(idle_ms),
        )
    }

    fn ms(delta: RequestDelta) -> (u64, u64) {
        (delta.elapsed_ms(), delta.since_previous_ms())
    }

    #[test]
    fn first_line_is_zero_then_elapsed_and_gap() {
        let mut clock = clock(10, 60_000);
        assert_eq!(ms(clock.observe("a", at(0))), (0, 0));
        assert_eq!(ms(clock.observe("b", at(5))), (0, 0));
        assert_eq!(ms(clock.observe("a", at(10))), (10, 10));
        assert_eq!(ms(clock.observe("a", at(250))), (250, 240));
        assert_eq!(ms(clock.observe("b", at(300))), (295, 295));
        assert_eq!(clock.len(), 2);
    }

    #[test]
    fn time_going_backwards_gives_zero_not_negative() {
        let mut clock = clock(10, 60_000);
        clock.observe("a", at(100));
        assert_eq!(ms(clock.observe("a", at(50))), (0, 0));
        // The latest time stays the reference.
        assert_eq!(ms(clock.observe("a", at(130))), (30, 30));
    }

    #[test]
    fn full_clock_evicts_least_recently_seen() {
        let mut clock = clock(2, 60_000);
        clock.observe("a", at(0));
        clock.observe("b", at(1));
        clock.observe("a", at(2)); // `b` is now the least recent
        clock.observe("c", at(3));
        assert_eq!(clock.len(), 2);
        assert_eq!(clock.stats().evicted_full, 1);
        assert_eq!(ms(clock.observe("a", at(4))), (4, 2));
        // `b` was forgotten: it starts again.
        assert_eq!(ms(clock.observe("b", at(5))), (0, 0));
        assert_eq!(clock.stats().evicted_full, 2);
    }

    #[test]
    fn idle_ids_expire_and_start_again() {
        let mut clock = clock(10, 1_000);
        clock.observe("a", at(0));
        clock.observe("b", at(900));
        assert_eq!(clock.expire(at(1_500)), 1);
        assert_eq!(clock.len(), 1);
        assert_eq!(ms(clock.observe("a", at(1_600))), (0, 0));
        assert_eq!(clock.stats().expired_idle, 1);
        assert_eq!(clock.expire(at(10_000)), 2);
        assert!(clock.is_empty());
    }

    #[test]
    fn slots_are_reused_and_memory_stays_bounded() {
        let mut clock = clock(100, 1_000_000);
        for round in 0..50u64 {
            for id in 0..300u64 {
                clock.observe(&format!("r{id}"), at(round * 300 + id));
            }
        }
        assert_eq!(clock.len(), 100);
        assert!(clock.slots.len() <= 100);
        assert_eq!(clock.index.len(), 100);
    }

    #[test]
    fn adds_integer_millisecond_fields() {
        let mut fields = AddedFields::new();
        RequestDelta {
            elapsed: Duration::from_micros(1_999),
            since_previous: Duration::from_micros(999),
        }
        .add_ecs_fields(&mut fields);
        assert_eq!(
            fields.get(Field::RequestElapsedMs),
            Some(&FieldValue::U64(1))
        );
        assert_eq!(
            fields.get(Field::RequestSincePreviousMs),
            Some(&FieldValue::U64(0))
        );
    }
}
