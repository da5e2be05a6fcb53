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
//! At most `capacity` request ids are remembered, in two generations. A new id joins the
//! young one; once that holds half the capacity (rounded up), the old generation is
//! forgotten at once and the young one becomes old, and when both together hold
//! `capacity` the old one is forgotten too. An id seen again while old moves back to the
//! young generation. So the ids seen since the last half-capacity of new ones are always
//! remembered, and none beyond `capacity`. An id not seen for `idle_timeout` starts a
//! new request when it comes back (elapsed 0); [`RequestClock::expire`] frees such ids
//! without waiting. Both ways of forgetting are counted in [`ClockStats`]. Time that goes
//! backwards (stdout and stderr interleaved) gives zero, never a negative figure.
//!
//! Generations rather than an exact least-recently-seen order: a new request costs one
//! hash-table insert instead of four cache misses (its index entry, its slot, the evicted
//! slot and that one's neighbour in the order), which was a twentieth of the agent's CPU
//! on the benchmark corpus.

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
    /// Ids forgotten with their generation to make room.
    pub evicted_full: u64,
    /// Ids found idle for `idle_timeout`: when they came back, or by
    /// [`RequestClock::expire`].
    pub expired_idle: u64,
}

/// One remembered id: 24 bytes.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The id's keyed hash.
    key: u64,
    /// The request's first line, in nanoseconds since the epoch (see [`nanos`]).
    first: i64,
    /// Its latest line time so far, likewise.
    last: i64,
}

/// First and last line time per request id, bounded in size, driven by explicit time.
#[derive(Debug)]
pub struct RequestClock {
    capacity: NonZeroUsize,
    /// `idle_timeout` in nanoseconds (`u128`: a `Duration` may exceed `u64`).
    idle_nanos: u128,
    /// Ids by their keyed 64-bit hash, not their text, so no allocation per request and
    /// about 25 bytes per remembered id however long the id. Two ids would share a clock
    /// only if their hashes collided: below one chance in a billion with 100,000 ids
    /// remembered, and the key is random per process, so ids cannot be chosen to collide.
    /// Times in them are integer nanoseconds (see [`nanos`]): the deltas chrono gives,
    /// without its date arithmetic on every line.
    young: HashTable<Entry>,
    /// The generation before; forgotten as a whole.
    old: HashTable<Entry>,
    hasher: RandomState,
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
        RequestClock {
            capacity,
            idle_nanos: idle_timeout.as_nanos(),
            young: HashTable::new(),
            old: HashTable::new(),
            hasher: RandomState::new(),
            stats: ClockStats::default(),
        }
    }

    /// Notes a line of request `request_id` at `now` and returns its delta.
    pub fn observe(&mut self, request_id: &str, now: Timestamp) -> RequestDelta {
        let now = nanos(now);
        let key = self.hasher.hash_one(request_id);
        if let Some(entry) = self.young.find_mut(key, |entry| entry.key == key) {
            return advance(entry, now, self.idle_nanos, &mut self.stats);
        }
        let (entry, delta) = match self.old.find_entry(key, |entry| entry.key == key) {
            Ok(found) => {
                let (mut entry, _) = found.remove();
                let delta = advance(&mut entry, now, self.idle_nanos, &mut self.stats);
                (entry, delta)
            }
            Err(_) => {
                let fresh = Entry {
                    key,
                    first: now,
                    last: now,
                };
                (fresh, RequestDelta::default())
            }
        };
        self.make_room();
        self.young
            .insert_unique(key, entry, |entry: &Entry| entry.key);
        delta
    }

    /// Before an id joins the young generation: the old one is forgotten when the young
    /// one is half the capacity (rounded up; the young one then becomes old), or when
    /// both together are at the capacity.
    fn make_room(&mut self) {
        if self.young.len() >= self.capacity.get().div_ceil(2) {
            self.stats.evicted_full += self.old.len() as u64;
            std::mem::swap(&mut self.young, &mut self.old);
            // Keeps the allocation: a generation's table is reused, never regrown.
            self.young.clear();
        }
        if self.young.len() + self.old.len() >= self.capacity.get() {
            self.stats.evicted_full += self.old.len() as u64;
            self.old.clear();
        }
    }

    /// Forgets ids idle for `idle_timeout` at `now` and returns how many. Lines that come
    /// back after that long start a new request anyway; this only frees their memory
    /// while no new ids arrive to push them out.
    pub fn expire(&mut self, now: Timestamp) -> usize {
        let now = nanos(now);
        let before = self.len();
        for generation in [&mut self.young, &mut self.old] {
            generation.retain(|entry| !is_idle(now, entry.last, self.idle_nanos));
        }
        let expired = before - self.len();
        self.stats.expired_idle += expired as u64;
        expired
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    /// True when no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What was dropped so far.
    pub fn stats(&self) -> ClockStats {
        self.stats
    }
}

/// Whether a request last seen at `last` has been idle for `idle_nanos` at `now`.
fn is_idle(now: i64, last: i64, idle_nanos: u128) -> bool {
    u128::from(nanos_since_raw(now, last)) >= idle_nanos
}

/// A line of a remembered request at `now`: its delta, or a new start (zero) when it
/// has been idle for `idle_nanos`.
fn advance(entry: &mut Entry, now: i64, idle_nanos: u128, stats: &mut ClockStats) -> RequestDelta {
    if is_idle(now, entry.last, idle_nanos) {
        stats.expired_idle += 1;
        entry.first = now;
        entry.last = now;
        return RequestDelta::default();
    }
    let delta = RequestDelta {
        elapsed: nanos_since(now, entry.first),
        since_previous: nanos_since(now, entry.last),
    };
    entry.last = entry.last.max(now);
    delta
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
    fn a_full_clock_forgets_the_older_generation() {
        let mut clock = clock(4, 60_000);
        clock.observe("a", at(0));
        clock.observe("b", at(1)); // young: a b (half the capacity)
        clock.observe("c", at(2)); // a b become old; young: c
        assert_eq!(ms(clock.observe("a", at(3))), (3, 3)); // a moves back: young c a
        clock.observe("d", at(4)); // young c a become old, b is forgotten; young: d
        assert_eq!(clock.len(), 3);
        assert_eq!(clock.stats().evicted_full, 1);
        assert_eq!(ms(clock.observe("a", at(5))), (5, 2));
        assert_eq!(ms(clock.observe("c", at(6))), (4, 4));
        // `b` was forgotten: it starts again.
        assert_eq!(ms(clock.observe("b", at(7))), (0, 0));
        assert!(clock.len() <= 4);
    }

    #[test]
    fn a_capacity_of_one_remembers_the_latest_id_only() {
        let mut clock = clock(1, 60_000);
        clock.observe("a", at(0));
        assert_eq!(ms(clock.observe("a", at(2))), (2, 2));
        clock.observe("b", at(3));
        assert_eq!(clock.len(), 1);
        assert_eq!(ms(clock.observe("a", at(4))), (0, 0));
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
    fn memory_stays_bounded_and_tables_are_reused() {
        let mut clock = clock(100, 1_000_000);
        for round in 0..50u64 {
            for id in 0..300u64 {
                clock.observe(&format!("r{id}"), at(round * 300 + id));
                assert!(clock.len() <= 100);
            }
        }
        // The ids of the last half-capacity are remembered.
        assert!(clock.len() >= 50);
        assert_eq!(ms(clock.observe("r299", at(50 * 300))), (1, 1));
        // Each generation's table holds at most half the capacity and is never regrown.
        assert!(clock.young.capacity() + clock.old.capacity() <= 2 * 64);
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

    /// The clock's rules written plainly: two generations as lists, with chrono's
    /// arithmetic on the times.
    struct Model {
        capacity: usize,
        idle_timeout: Duration,
        /// Id, first and latest line time, in order of joining.
        young: Vec<(String, Timestamp, Timestamp)>,
        old: Vec<(String, Timestamp, Timestamp)>,
        stats: ClockStats,
    }

    impl Model {
        fn expire(&mut self, now: Timestamp) -> usize {
            let idle = self.idle_timeout;
            let before = self.young.len() + self.old.len();
            for generation in [&mut self.young, &mut self.old] {
                generation.retain(|&(_, _, last)| now.saturating_duration_since(last) < idle);
            }
            let expired = before - self.young.len() - self.old.len();
            self.stats.expired_idle += expired as u64;
            expired
        }

        fn advance(
            &mut self,
            entry: &mut (String, Timestamp, Timestamp),
            now: Timestamp,
        ) -> RequestDelta {
            let (_, first, last) = entry;
            if now.saturating_duration_since(*last) >= self.idle_timeout {
                self.stats.expired_idle += 1;
                (*first, *last) = (now, now);
                return RequestDelta::default();
            }
            let delta = RequestDelta {
                elapsed: now.saturating_duration_since(*first),
                since_previous: now.saturating_duration_since(*last),
            };
            *last = (*last).max(now);
            delta
        }

        fn observe(&mut self, id: &str, now: Timestamp) -> RequestDelta {
            if let Some(at) = self.young.iter().position(|(seen, ..)| seen == id) {
                let mut entry = self.young[at].clone();
                let delta = self.advance(&mut entry, now);
                self.young[at] = entry;
                return delta;
            }
            let (entry, delta) = match self.old.iter().position(|(seen, ..)| seen == id) {
                Some(at) => {
                    let mut entry = self.old.remove(at);
                    let delta = self.advance(&mut entry, now);
                    (entry, delta)
                }
                None => ((id.to_owned(), now, now), RequestDelta::default()),
            };
            if self.young.len() >= self.capacity.div_ceil(2) {
                self.stats.evicted_full += self.old.len() as u64;
                self.old = std::mem::take(&mut self.young);
            }
            if self.young.len() + self.old.len() >= self.capacity {
                self.stats.evicted_full += self.old.len() as u64;
                self.old.clear();
            }
            self.young.push(entry);
            delta
        }

        fn len(&self) -> usize {
            self.young.len() + self.old.len()
        }

        /// The latest line time of the id that joined first.
        fn earliest_last(&self) -> Option<Timestamp> {
            self.old
                .first()
                .or(self.young.first())
                .map(|&(_, _, last)| last)
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
                young: Vec::new(),
                old: Vec::new(),
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
                    // Right at the earliest id's expiry, or a nanosecond either side.
                    90..97 => model.earliest_last().map_or(now, |last| {
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
                assert_eq!(clock.len(), model.len(), "{context}");
                assert!(clock.len() <= capacity, "{context}");
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
