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

use std::hash::{BuildHasher, RandomState};
use std::num::NonZeroUsize;
use std::time::Duration;

use hashbrown::HashTable;

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

/// One remembered id: 32 bytes, two to a cache line. A free slot is one listed in
/// [`RequestClock::free`]; its fields are stale.
#[derive(Debug)]
struct Slot {
    /// The id's keyed hash.
    key: u64,
    /// The request's first line, in nanoseconds since the epoch (see [`nanos`]).
    first: i64,
    /// Its latest line time so far, likewise.
    last: i64,
    /// Towards the most recently seen.
    newer: u32,
    /// Towards the least recently seen.
    older: u32,
}

const _: () = assert!(std::mem::size_of::<Slot>() == 32);

/// First and last line time per request id, bounded in size, driven by explicit time.
#[derive(Debug)]
pub struct RequestClock {
    capacity: NonZeroUsize,
    /// `idle_timeout` in nanoseconds (`u128`: a `Duration` may exceed `u64`).
    idle_nanos: u128,
    /// Slot numbers, found by their slot's key: ids by their keyed 64-bit hash, not
    /// their text, so no allocation per request and about 40 bytes per remembered id
    /// (a 32-byte slot, 4 bytes and a control byte per table bucket), however long the
    /// id. Two ids would share a clock only if their hashes collided: below one chance in
    /// a billion with 100,000 ids remembered, and the key is random per process, so ids
    /// cannot be chosen to collide.
    index: HashTable<u32>,
    hasher: RandomState,
    /// Times in them are integer nanoseconds (see [`nanos`]): the deltas chrono gives,
    /// without its date arithmetic on every line.
    slots: Vec<Slot>,
    /// Slots freed by expiry, for reuse.
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
            idle_nanos: idle_timeout.as_nanos(),
            index: HashTable::new(),
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
        let now = nanos(now);
        self.expire_at(now);
        let key = self.hasher.hash_one(request_id);
        let slots = &self.slots;
        if let Some(&id) = self.index.find(key, |&id| slots[id as usize].key == key) {
            self.touch(id);
            let slot = &mut self.slots[id as usize];
            let delta = RequestDelta {
                elapsed: nanos_since(now, slot.first),
                since_previous: nanos_since(now, slot.last),
            };
            slot.last = slot.last.max(now);
            return delta;
        }
        let fresh = Slot {
            key,
            first: now,
            last: now,
            newer: NIL,
            older: NIL,
        };
        let id = if self.index.len() >= self.capacity.get() {
            // Full (so not empty): the least recently seen id makes way, and its slot
            // takes the new one in place.
            let id = self.oldest;
            self.unindex(id);
            self.unlink(id);
            self.slots[id as usize] = fresh;
            self.stats.evicted_full += 1;
            id
        } else if let Some(id) = self.free.pop() {
            self.slots[id as usize] = fresh;
            id
        } else {
            self.slots.push(fresh);
            (self.slots.len() - 1) as u32
        };
        let slots = &self.slots;
        self.index
            .insert_unique(key, id, |&id| slots[id as usize].key);
        self.link_newest(id);
        RequestDelta::default()
    }

    /// Forgets ids idle for `idle_timeout` at `now`, oldest first, stopping at the first
    /// that is not (recency follows arrival order, which is close to time order). Returns
    /// how many were forgotten. [`RequestClock::observe`] calls it, so calling it is only
    /// needed to free memory while no lines arrive.
    pub fn expire(&mut self, now: Timestamp) -> usize {
        self.expire_at(nanos(now))
    }

    /// [`RequestClock::expire`] at `now` in nanoseconds: one integer comparison when
    /// nothing is due.
    fn expire_at(&mut self, now: i64) -> usize {
        let mut expired = 0;
        while self.oldest != NIL {
            let id = self.oldest;
            let last = self.slots[id as usize].last;
            if u128::from(nanos_since_raw(now, last)) < self.idle_nanos {
                break;
            }
            self.unindex(id);
            self.unlink(id);
            self.free.push(id);
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

    /// Drops slot `id`'s entry from the index (the slot itself stays linked).
    fn unindex(&mut self, id: u32) {
        let key = self.slots[id as usize].key;
        // Slot numbers are unique in the index: no need to compare keys.
        if let Ok(entry) = self.index.find_entry(key, |&other| other == id) {
            entry.remove();
        }
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
}

/// `time` as the clock keeps it: nanoseconds since the epoch. Differences of these are
/// exactly chrono's for times from 1677 to 2262 (bar leap seconds, which count as the
/// following second); times outside are clamped to that range, so a delta involving
/// one is at most the distance to the bound, and between two beyond the same bound zero.
fn nanos(time: Timestamp) -> i64 {
    time.nanos_saturating()
}

/// How long after `earlier` `later` is, in nanoseconds; zero when it is not later.
fn nanos_since_raw(later: i64, earlier: i64) -> u64 {
    if later > earlier {
        // The true difference is below 2^64, so the wrapped one read unsigned is it.
        later.wrapping_sub(earlier) as u64
    } else {
        0
    }
}

/// [`nanos_since_raw`] as a `Duration`.
fn nanos_since(later: i64, earlier: i64) -> Duration {
    Duration::from_nanos(nanos_since_raw(later, earlier))
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, SecondsFormat};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::time::{parse_epoch, parse_text};

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

    /// The time `nanos` after the epoch, exactly.
    fn at_nanos(nanos: i64) -> Timestamp {
        let text =
            DateTime::from_timestamp_nanos(nanos).to_rfc3339_opts(SecondsFormat::Nanos, true);
        parse_text(&text).unwrap()
    }

    /// The clock's rules written plainly: ids from least to most recently seen, with
    /// chrono's arithmetic on the times.
    struct Model {
        capacity: usize,
        idle_timeout: Duration,
        /// Id, first and latest line time.
        ids: Vec<(String, Timestamp, Timestamp)>,
        stats: ClockStats,
    }

    impl Model {
        fn expire(&mut self, now: Timestamp) -> usize {
            let mut expired = 0;
            while let Some(&(_, _, last)) = self.ids.first() {
                if now.saturating_duration_since(last) < self.idle_timeout {
                    break;
                }
                self.ids.remove(0);
                self.stats.expired_idle += 1;
                expired += 1;
            }
            expired
        }

        fn observe(&mut self, id: &str, now: Timestamp) -> RequestDelta {
            self.expire(now);
            if let Some(at) = self.ids.iter().position(|(seen, _, _)| seen == id) {
                let (id, first, last) = self.ids.remove(at);
                self.ids.push((id, first, last.max(now)));
                return RequestDelta {
                    elapsed: now.saturating_duration_since(first),
                    since_previous: now.saturating_duration_since(last),
                };
            }
            if self.ids.len() >= self.capacity {
                self.ids.remove(0);
                self.stats.evicted_full += 1;
            }
            self.ids.push((id.to_owned(), now, now));
            RequestDelta::default()
        }
    }

    #[test]
    fn matches_a_plain_model_on_random_ids_and_times() {
        let mut total = ClockStats::default();
        for seed in 0..64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let capacity = rng.random_range(1..=8);
            let idle_ms = rng.random_range(1..=2_000);
            let pool = rng.random_range(1..=16);
            let mut clock = clock(capacity, idle_ms);
            let mut model = Model {
                capacity,
                idle_timeout: Duration::from_millis(idle_ms),
                ids: Vec::new(),
                stats: ClockStats::default(),
            };
            let idle_ns = idle_ms as i64 * 1_000_000;
            let mut now: i64 = 1_700_000_000_123_456_789;
            for step in 0..2_000 {
                now = match rng.random_range(0..100) {
                    // Mostly forwards, by up to a fifth of the idle timeout.
                    0..65 => now.saturating_add(rng.random_range(0..=idle_ns / 5)),
                    // Backwards (stdout and stderr interleaved).
                    65..80 => now.saturating_sub(rng.random_range(0..=idle_ns)),
                    // An idle gap.
                    80..90 => now.saturating_add(rng.random_range(idle_ns..=3 * idle_ns)),
                    // Right at the least recent id's expiry, or a nanosecond either side.
                    90..97 => model.ids.first().map_or(now, |&(_, _, last)| {
                        nanos(last).saturating_add(idle_ns + rng.random_range(-1..=1))
                    }),
                    // Anywhere in range: differences beyond `i64`.
                    _ => rng.random_range(i64::MIN..=i64::MAX),
                };
                let time = at_nanos(now);
                let context = format!("seed {seed} step {step}");
                if rng.random_range(0..10) == 0 {
                    assert_eq!(clock.expire(time), model.expire(time), "{context}");
                } else {
                    let id = format!("r{}", rng.random_range(0..pool));
                    let delta = clock.observe(&id, time);
                    assert_eq!(delta, model.observe(&id, time), "{context} id {id}");
                }
                assert_eq!(clock.len(), model.ids.len(), "{context}");
            }
            assert_eq!(clock.stats(), model.stats, "seed {seed}");
            total.evicted_full += model.stats.evicted_full;
            total.expired_idle += model.stats.expired_idle;
        }
        // Both ways of forgetting were exercised.
        assert!(
            total.evicted_full > 1_000 && total.expired_idle > 1_000,
            "{total:?}"
        );
    }

    #[test]
    fn times_beyond_the_nanosecond_range_are_clamped_to_it() {
        let t = |text| parse_text(text).unwrap();
        let mut clock = clock(10, 60_000);
        // Both beyond 2262: the same bound, so no time passes between them.
        clock.observe("far", t("2300-01-01T00:00:00Z"));
        let delta = clock.observe("far", t("2400-01-01T00:00:00Z"));
        assert_eq!(delta, RequestDelta::default());
        // From an ordinary time, up to the last representable nanosecond.
        clock.observe("late", t("2262-04-11T23:47:16.854775000Z"));
        let delta = clock.observe("late", t("3000-01-01T00:00:00Z"));
        assert_eq!(delta.elapsed, Duration::from_nanos(807));
        // Before 1677, from the first representable nanosecond.
        clock.observe("early", t("1600-01-01T00:00:00Z"));
        let delta = clock.observe("early", t("1677-09-21T00:12:43.145224193Z"));
        assert_eq!(delta.elapsed, Duration::from_nanos(1));
        assert_eq!(clock.stats(), ClockStats::default());

        // An idle timeout longer than any difference: nothing expires.
        let mut clock = RequestClock::new(NonZeroUsize::MIN, Duration::MAX);
        clock.observe("a", t("1600-01-01T00:00:00Z"));
        assert_eq!(clock.expire(t("3000-01-01T00:00:00Z")), 0);
        assert_eq!(clock.len(), 1);
    }
}
