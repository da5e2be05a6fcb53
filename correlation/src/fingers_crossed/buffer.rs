//! The buffer itself: per-key queues, an index, and one recency list for idle expiry and
//! eviction.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hash};
use std::mem::size_of;
use std::time::Instant;

use hashbrown::HashTable;

use super::output::{DiscardReason, EmitReason, Outlet, RecordSize, Stats};
use super::sample::{sample_hash, threshold};
use super::{ConfigError, FingersCrossedConfig, Level, SampleKey};

/// No slot: the end of the recency list.
const NIL: u32 = u32::MAX;

/// Capacity a freed slot's queue keeps for the next key, so short requests reuse it.
const RECYCLED_CAPACITY: usize = 16;

/// One tracked key. Slots are reused after their key is forgotten.
struct Slot<K, T> {
    /// `None` while the slot is free.
    key: Option<K>,
    /// The index hash of `key`, kept so the index never rehashes keys.
    hash: u64,
    /// Held records, oldest first.
    held: VecDeque<T>,
    /// Activated with `stop_buffering`: everything passes through until idle.
    passing: bool,
    /// In the `keep_healthy` sample: flushed, not discarded, when idle.
    sampled: bool,
    /// Memory estimate of the key itself.
    key_cost: usize,
    /// The last push or activation.
    last_seen: Instant,
    /// Neighbours in the recency list (towards least, towards most recently active).
    prev: u32,
    next: u32,
}

/// How a key is forgotten.
#[derive(Clone, Copy)]
enum Forget {
    Idle,
    Evict,
    Shutdown,
}

/// A fingers-crossed buffer over records `T`, keyed by correlation keys `K`.
///
/// See the [module docs](super) for the rules, the order guarantee and the memory
/// estimate. All methods take the current time from the caller; `now` should not go
/// backwards, and if it does it is treated as the latest `now` seen so far.
///
/// Cost: `push` and `activate` are O(1) amortised (one hash lookup, no allocation once
/// queues have grown, except when a key is first seen: its sample bytes); `tick` is
/// O(keys expired), since keys sit in a recency list whose front is the next to expire.
///
/// ```
/// use std::time::{Duration, Instant};
/// use hindsight_correlation::fingers_crossed::{FingersCrossed, FingersCrossedConfig, Level, Output};
///
/// let mut buffer = FingersCrossed::<String, String>::new(FingersCrossedConfig::default())?;
/// let mut out = Output::new();
/// let now = Instant::now();
/// // The proxy saw a 5xx for req-9 before its logs were read:
/// buffer.activate("req-9".into(), now, &mut out);
/// buffer.push("req-9".into(), "debug line".into(), Level::Debug, false, now, &mut out);
/// assert_eq!(out.emitted, ["debug line"]);
/// assert_eq!(buffer.next_deadline(), Some(now + Duration::from_secs(30)));
/// # Ok::<(), hindsight_correlation::fingers_crossed::ConfigError>(())
/// ```
pub struct FingersCrossed<K, T> {
    config: FingersCrossedConfig,
    /// `keep_healthy × 2^64`, see [`super::is_sampled`].
    sample_threshold: u128,
    /// Randomly seeded: request ids come from outside, so the index must resist
    /// crafted collisions.
    hasher: foldhash::fast::RandomState,
    /// Key → slot index.
    index: HashTable<u32>,
    slots: Vec<Slot<K, T>>,
    free: Vec<u32>,
    /// Least recently active key: the next to go idle, the first to evict.
    head: u32,
    /// Most recently active key.
    tail: u32,
    /// The latest `now` seen, so time never runs backwards inside.
    latest: Option<Instant>,
    stats: Stats,
}

impl<K, T> std::fmt::Debug for FingersCrossed<K, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FingersCrossed")
            .field("config", &self.config)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<K, T> FingersCrossed<K, T>
where
    K: Hash + Eq + SampleKey,
    T: RecordSize,
{
    /// A buffer with this config, or every problem with the config.
    ///
    /// ```
    /// use hindsight_correlation::fingers_crossed::{FingersCrossed, FingersCrossedConfig};
    ///
    /// let bad = FingersCrossedConfig { keep_healthy: -0.5, ..Default::default() };
    /// assert!(FingersCrossed::<String, String>::new(bad).is_err());
    /// ```
    pub fn new(config: FingersCrossedConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(FingersCrossed {
            sample_threshold: threshold(config.keep_healthy),
            config,
            hasher: foldhash::fast::RandomState::default(),
            index: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            latest: None,
            stats: Stats::default(),
        })
    }

    /// The config the buffer runs with.
    pub fn config(&self) -> &FingersCrossedConfig {
        &self.config
    }

    /// Gauges and counters, as of the last call.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// When the least recently active key goes idle, if any key is tracked: the latest
    /// useful time for the next [`tick`](Self::tick).
    pub fn next_deadline(&self) -> Option<Instant> {
        let head = self.slots.get(self.head as usize)?;
        head.last_seen.checked_add(self.config.idle_timeout)
    }

    /// How many records `key` holds (0 for an unknown key), as of the last call.
    pub fn held_len<Q>(&self, key: &Q) -> usize
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find(key)
            .map_or(0, |i| self.slots[i as usize].held.len())
    }

    /// Whether `key` passes everything through after an activation, as of the last call.
    pub fn is_passing<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find(key)
            .is_some_and(|i| self.slots[i as usize].passing)
    }

    /// Whether [`FingersCrossed::push`] would hold a record of `key` at `level`, as of the
    /// last call: lets a caller keep a likely-held record in a cheaper form. A key that
    /// went idle since is still taken as passing, so this may say no where `push` holds.
    pub fn would_hold<Q>(&self, key: &Q, level: Level, activates: bool) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        !self.activating(level, activates)
            && level < self.config.passthru_level
            && !self.is_passing(key)
    }

    /// Whether a record at `level` activates its key.
    fn activating(&self, level: Level, activates: bool) -> bool {
        activates || level >= self.config.action_level
    }

    /// Takes one record of `key` at `level`; `activates` is the caller's verdict on a
    /// field condition (e.g. `http.status >= 500`) and activates the key like a record at
    /// `action_level` would.
    ///
    /// The record is emitted at once, held, or (when it cannot fit under `max_memory`
    /// with its key) discarded; the call may also flush, expire or evict other records.
    ///
    /// ```
    /// use std::time::Instant;
    /// use hindsight_correlation::fingers_crossed::{FingersCrossed, FingersCrossedConfig, Level, Output};
    ///
    /// let mut buffer = FingersCrossed::<&str, &str>::new(FingersCrossedConfig::default())?;
    /// let (mut out, now) = (Output::new(), Instant::now());
    /// buffer.push("r1", "GET /", Level::Info, false, now, &mut out);
    /// buffer.push("r1", "status=503", Level::Info, true, now, &mut out);
    /// assert_eq!(out.emitted, ["GET /", "status=503"]);
    /// # Ok::<(), hindsight_correlation::fingers_crossed::ConfigError>(())
    /// ```
    pub fn push<O: Outlet<T>>(
        &mut self,
        key: K,
        record: T,
        level: Level,
        activates: bool,
        now: Instant,
        out: &mut O,
    ) {
        let now = self.clamp(now);
        let activating = self.activating(level, activates);
        let hash = self.hasher.hash_one(&key);
        match self.find_live(hash, &key, now, out) {
            Some(i) => {
                self.touch(i, now);
                if self.slots[i as usize].passing {
                    self.pass(record, out);
                } else if activating {
                    self.activate_slot(i, out);
                    self.pass(record, out);
                } else if level >= self.config.passthru_level {
                    self.pass(record, out);
                } else {
                    self.hold(i, record, out);
                }
            }
            None if activating => {
                self.stats.activations += 1;
                if self.config.stop_buffering {
                    self.create(key, hash, true, now, out);
                }
                self.pass(record, out);
            }
            None if level >= self.config.passthru_level => self.pass(record, out),
            None => {
                let (key_cost, sampled) = self.key_facts(&key);
                if key_cost + record_cost(&record) > self.config.max_memory.get() {
                    self.drop_record(record, DiscardReason::TooLarge, out);
                    return;
                }
                let i = self.insert(key, hash, key_cost, sampled, false, now);
                self.hold(i, record, out);
            }
        }
    }

    /// Activates `key` from outside its records: the sidecar proxy saw a 5xx for it, or
    /// an error span carries its trace id.
    ///
    /// Held records are flushed in their original order. With `stop_buffering`, the key
    /// then passes everything through until idle — also when nothing was held yet, so an
    /// activation seen before the logs still lets them through. Without `stop_buffering`,
    /// only what is held now is flushed.
    pub fn activate<O: Outlet<T>>(&mut self, key: K, now: Instant, out: &mut O) {
        let now = self.clamp(now);
        let hash = self.hasher.hash_one(&key);
        match self.find_live(hash, &key, now, out) {
            Some(i) => {
                self.touch(i, now);
                self.activate_slot(i, out);
            }
            None => {
                self.stats.activations += 1;
                if self.config.stop_buffering {
                    self.create(key, hash, true, now, out);
                }
            }
        }
    }

    /// Forgets every key idle for `idle_timeout` at `now`: discards their held records
    /// ([`DiscardReason::Idle`]), or emits them ([`EmitReason::Sampled`]) for keys in the
    /// `keep_healthy` sample. Call it regularly, e.g. per batch or at
    /// [`next_deadline`](Self::next_deadline); it looks only at the keys that expire.
    pub fn tick<O: Outlet<T>>(&mut self, now: Instant, out: &mut O) {
        let now = self.clamp(now);
        while self.head != NIL && self.is_idle(self.head, now) {
            self.forget(self.head, Forget::Idle, out);
        }
    }

    /// Empties the buffer at shutdown: every held record is discarded with
    /// [`DiscardReason::Shutdown`] and every key is forgotten.
    ///
    /// Shutdown discards are not deliberate drops: leave their acknowledgements
    /// unsettled, so the checkpoint stays before them and they are read again (and held
    /// again) after a restart — at-least-once.
    pub fn drain_all<O: Outlet<T>>(&mut self, out: &mut O) {
        while self.head != NIL {
            self.forget(self.head, Forget::Shutdown, out);
        }
    }

    // ---- internals ------------------------------------------------------------------

    fn clamp(&mut self, now: Instant) -> Instant {
        let now = match self.latest {
            Some(latest) if latest > now => latest,
            _ => now,
        };
        self.latest = Some(now);
        now
    }

    fn find<Q>(&self, key: &Q) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let slots = &self.slots;
        self.index
            .find(self.hasher.hash_one(key), |&i| {
                slots[i as usize].key.as_ref().map(Borrow::borrow) == Some(key)
            })
            .copied()
    }

    /// The slot of `key`, after forgetting it if it went idle since it was last seen (so
    /// the rules do not depend on how often `tick` runs).
    fn find_live<O: Outlet<T>>(
        &mut self,
        hash: u64,
        key: &K,
        now: Instant,
        out: &mut O,
    ) -> Option<u32> {
        let slots = &self.slots;
        let i = *self
            .index
            .find(hash, |&i| slots[i as usize].key.as_ref() == Some(key))?;
        if self.is_idle(i, now) {
            self.forget(i, Forget::Idle, out);
            return None;
        }
        Some(i)
    }

    fn is_idle(&self, i: u32, now: Instant) -> bool {
        now.saturating_duration_since(self.slots[i as usize].last_seen) >= self.config.idle_timeout
    }

    /// Memory estimate of a key and whether it is in the healthy sample.
    fn key_facts(&self, key: &K) -> (usize, bool) {
        let bytes = key.sample_bytes();
        let cost = size_of::<Slot<K, T>>() + size_of::<u32>() + 1 + bytes.len();
        let sampled =
            self.sample_threshold > 0 && u128::from(sample_hash(&bytes)) < self.sample_threshold;
        (cost, sampled)
    }

    /// Starts tracking a key with nothing held, if it fits under `max_memory`.
    fn create<O: Outlet<T>>(
        &mut self,
        key: K,
        hash: u64,
        passing: bool,
        now: Instant,
        out: &mut O,
    ) {
        let (key_cost, sampled) = self.key_facts(&key);
        if key_cost > self.config.max_memory.get() {
            return;
        }
        let i = self.insert(key, hash, key_cost, sampled, passing, now);
        self.make_room(i, out);
    }

    fn insert(
        &mut self,
        key: K,
        hash: u64,
        key_cost: usize,
        sampled: bool,
        passing: bool,
        now: Instant,
    ) -> u32 {
        let i = match self.free.pop() {
            Some(i) => {
                let slot = &mut self.slots[i as usize];
                slot.key = Some(key);
                slot.hash = hash;
                slot.passing = passing;
                slot.sampled = sampled;
                slot.key_cost = key_cost;
                slot.last_seen = now;
                i
            }
            None => {
                let i = u32::try_from(self.slots.len()).expect("fewer than 2^32 keys");
                self.slots.push(Slot {
                    key: Some(key),
                    hash,
                    held: VecDeque::new(),
                    passing,
                    sampled,
                    key_cost,
                    last_seen: now,
                    prev: NIL,
                    next: NIL,
                });
                i
            }
        };
        let slots = &self.slots;
        self.index
            .insert_unique(hash, i, |&j| slots[j as usize].hash);
        self.link_back(i);
        self.stats.keys += 1;
        self.stats.memory += key_cost;
        i
    }

    /// Forgets a key, sending its held records out according to `how`.
    fn forget<O: Outlet<T>>(&mut self, i: u32, how: Forget, out: &mut O) {
        self.unlink(i);
        let hash = self.slots[i as usize].hash;
        if let Ok(entry) = self.index.find_entry(hash, |&j| j == i) {
            entry.remove();
        }
        let slot = &mut self.slots[i as usize];
        slot.key = None;
        let (sampled, key_cost) = (slot.sampled, slot.key_cost);
        while let Some(record) = self.slots[i as usize].held.pop_front() {
            self.unaccount(&record);
            match how {
                Forget::Idle if sampled => {
                    self.stats.sampled += 1;
                    out.emit(record, EmitReason::Sampled);
                }
                Forget::Idle => self.drop_record(record, DiscardReason::Idle, out),
                Forget::Evict => self.drop_record(record, DiscardReason::Evicted, out),
                Forget::Shutdown => self.drop_record(record, DiscardReason::Shutdown, out),
            }
        }
        self.slots[i as usize].held.shrink_to(RECYCLED_CAPACITY);
        self.free.push(i);
        self.stats.keys -= 1;
        self.stats.memory -= key_cost;
        match how {
            Forget::Idle => self.stats.expired_keys += 1,
            Forget::Evict => self.stats.evicted_keys += 1,
            Forget::Shutdown => {}
        }
    }

    /// Flushes what `i` holds; with `stop_buffering`, it passes through from now on.
    fn activate_slot<O: Outlet<T>>(&mut self, i: u32, out: &mut O) {
        if self.slots[i as usize].passing {
            return;
        }
        self.stats.activations += 1;
        while let Some(record) = self.slots[i as usize].held.pop_front() {
            self.unaccount(&record);
            self.stats.flushed += 1;
            out.emit(record, EmitReason::Flushed);
        }
        self.slots[i as usize].passing = self.config.stop_buffering;
    }

    fn hold<O: Outlet<T>>(&mut self, i: u32, record: T, out: &mut O) {
        let cost = record_cost(&record);
        if cost + self.slots[i as usize].key_cost > self.config.max_memory.get() {
            self.drop_record(record, DiscardReason::TooLarge, out);
            return;
        }
        if self.slots[i as usize].held.len() >= self.config.buffer_size.get() {
            if let Some(oldest) = self.slots[i as usize].held.pop_front() {
                self.unaccount(&oldest);
                self.drop_record(oldest, DiscardReason::BufferFull, out);
            }
        }
        self.stats.held_records += 1;
        self.stats.held_bytes += record.record_size();
        self.stats.memory += cost;
        self.slots[i as usize].held.push_back(record);
        self.make_room(i, out);
    }

    /// Evicts least recently active keys other than `keep` until memory fits; if `keep`
    /// is the only key left, drops its oldest records instead.
    fn make_room<O: Outlet<T>>(&mut self, keep: u32, out: &mut O) {
        while self.stats.memory > self.config.max_memory.get() {
            let victim = self.head;
            if victim == NIL {
                break;
            }
            if victim != keep {
                self.forget(victim, Forget::Evict, out);
                continue;
            }
            debug_assert_eq!(self.tail, keep, "the key being pushed is the most recent");
            match self.slots[keep as usize].held.pop_front() {
                Some(oldest) => {
                    self.unaccount(&oldest);
                    self.drop_record(oldest, DiscardReason::Evicted, out);
                }
                None => break,
            }
        }
    }

    fn pass<O: Outlet<T>>(&mut self, record: T, out: &mut O) {
        self.stats.passed += 1;
        out.emit(record, EmitReason::Passed);
    }

    fn drop_record<O: Outlet<T>>(&mut self, record: T, reason: DiscardReason, out: &mut O) {
        self.stats.discarded.bump(reason);
        out.discard(record, reason);
    }

    /// Takes a record that leaves the queues out of the gauges.
    fn unaccount(&mut self, record: &T) {
        self.stats.held_records -= 1;
        self.stats.held_bytes -= record.record_size();
        self.stats.memory -= record_cost(record);
    }

    fn touch(&mut self, i: u32, now: Instant) {
        self.slots[i as usize].last_seen = now;
        if self.tail != i {
            self.unlink(i);
            self.link_back(i);
        }
    }

    fn link_back(&mut self, i: u32) {
        let old_tail = self.tail;
        {
            let slot = &mut self.slots[i as usize];
            slot.prev = old_tail;
            slot.next = NIL;
        }
        if old_tail == NIL {
            self.head = i;
        } else {
            self.slots[old_tail as usize].next = i;
        }
        self.tail = i;
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let slot = &self.slots[i as usize];
            (slot.prev, slot.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
        let slot = &mut self.slots[i as usize];
        slot.prev = NIL;
        slot.next = NIL;
    }

    /// Checks the internal structure against the stats (tests only).
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        let mut seen = 0usize;
        let mut held = 0usize;
        let mut held_bytes = 0usize;
        let mut memory = 0usize;
        let mut i = self.head;
        let mut prev = NIL;
        let mut last = None;
        while i != NIL {
            let slot = &self.slots[i as usize];
            assert!(slot.key.is_some(), "a listed slot has a key");
            assert_eq!(slot.prev, prev);
            assert!(slot.held.len() <= self.config.buffer_size.get());
            if let Some(last) = last {
                assert!(slot.last_seen >= last, "recency list ordered by last_seen");
            }
            last = Some(slot.last_seen);
            held += slot.held.len();
            held_bytes += slot.held.iter().map(RecordSize::record_size).sum::<usize>();
            memory += slot.key_cost + slot.held.iter().map(record_cost).sum::<usize>();
            seen += 1;
            prev = i;
            i = slot.next;
        }
        assert_eq!(self.tail, prev);
        assert_eq!(seen, self.stats.keys);
        assert_eq!(seen, self.index.len());
        assert_eq!(held, self.stats.held_records);
        assert_eq!(held_bytes, self.stats.held_bytes);
        assert_eq!(memory, self.stats.memory);
        assert!(memory <= self.config.max_memory.get());
        assert_eq!(seen + self.free.len(), self.slots.len());
    }

    /// The memory estimate of a key (tests only).
    #[cfg(test)]
    pub(crate) fn key_cost(&self, key: &K) -> usize {
        self.key_facts(key).0
    }
}

/// Memory estimate of one held record.
fn record_cost<T: RecordSize>(record: &T) -> usize {
    record.record_size() + size_of::<T>()
}

#[cfg(test)]
pub(crate) fn test_record_cost<T: RecordSize>(record: &T) -> usize {
    record_cost(record)
}
