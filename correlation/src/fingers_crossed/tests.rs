//! One test per rule of the buffer, driven by explicit time.

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use super::buffer::test_record_cost;
use super::*;

/// Everything that left the buffer, in order, with the reason.
#[derive(Debug, Default)]
struct Log(Vec<(&'static str, Result<EmitReason, DiscardReason>)>);

impl Outlet<&'static str> for Log {
    fn emit(&mut self, record: &'static str, reason: EmitReason) {
        self.0.push((record, Ok(reason)));
    }
    fn discard(&mut self, record: &'static str, reason: DiscardReason) {
        self.0.push((record, Err(reason)));
    }
}

impl Log {
    fn take(&mut self) -> Vec<(&'static str, Result<EmitReason, DiscardReason>)> {
        std::mem::take(&mut self.0)
    }
}

type Buffer = FingersCrossed<&'static str, &'static str>;

fn buffer(config: FingersCrossedConfig) -> Buffer {
    let buffer = FingersCrossed::new(config).expect("valid config");
    buffer.check_invariants();
    buffer
}

fn at(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

const PASSED: Result<EmitReason, DiscardReason> = Ok(EmitReason::Passed);
const FLUSHED: Result<EmitReason, DiscardReason> = Ok(EmitReason::Flushed);
const SAMPLED: Result<EmitReason, DiscardReason> = Ok(EmitReason::Sampled);

#[test]
fn records_below_passthru_are_held() {
    let mut b = buffer(FingersCrossedConfig::default());
    let (mut out, t0) = (Log::default(), Instant::now());
    b.push("r", "trace", Level::Trace, false, t0, &mut out);
    b.push("r", "debug", Level::Debug, false, t0, &mut out);
    b.push("r", "info", Level::Info, false, t0, &mut out);
    assert!(out.0.is_empty());
    assert_eq!(b.held_len("r"), 3);
    assert_eq!(b.stats().held_records, 3);
    assert_eq!(b.stats().held_bytes, "tracedebuginfo".len());
    assert_eq!(b.stats().keys, 1);
    b.check_invariants();
}

#[test]
fn passthru_records_go_out_at_once_and_held_ones_stay() {
    let mut b = buffer(FingersCrossedConfig::default());
    let (mut out, t0) = (Log::default(), Instant::now());
    b.push("r", "info", Level::Info, false, t0, &mut out);
    b.push("r", "warn", Level::Warn, false, t0, &mut out);
    assert_eq!(out.take(), [("warn", PASSED)]);
    assert_eq!(b.held_len("r"), 1);
    assert!(!b.is_passing("r"));
    assert_eq!(b.stats().activations, 0);
}

#[test]
fn passthru_record_of_an_unknown_key_tracks_nothing() {
    let mut b = buffer(FingersCrossedConfig::default());
    let (mut out, t0) = (Log::default(), Instant::now());
    b.push("r", "warn", Level::Warn, false, t0, &mut out);
    assert_eq!(out.take(), [("warn", PASSED)]);
    assert_eq!(b.stats().keys, 0);
    assert_eq!(b.next_deadline(), None);
}

#[test]
fn a_full_key_discards_its_oldest_record() {
    let mut b = buffer(FingersCrossedConfig {
        buffer_size: NonZeroUsize::new(2).unwrap(),
        ..Default::default()
    });
    let (mut out, t0) = (Log::default(), Instant::now());
    for record in ["1", "2", "3", "4"] {
        b.push("r", record, Level::Debug, false, t0, &mut out);
    }
    assert_eq!(
        out.take(),
        [
            ("1", Err(DiscardReason::BufferFull)),
            ("2", Err(DiscardReason::BufferFull))
        ]
    );
    b.push("r", "err", Level::Error, false, t0, &mut out);
    assert_eq!(
        out.take(),
        [("3", FLUSHED), ("4", FLUSHED), ("err", PASSED)]
    );
    assert_eq!(b.stats().discarded.buffer_full, 2);
    b.check_invariants();
}

#[test]
fn action_level_flushes_in_order_then_passes_through_until_idle() {
    let mut b = buffer(FingersCrossedConfig::default());
    let (mut out, t0) = (Log::default(), Instant::now());
    b.push("r", "a", Level::Debug, false, t0, &mut out);
    b.push("other", "x", Level::Debug, false, t0, &mut out);
    b.push("r", "b", Level::Info, false, at(t0, 1), &mut out);
    b.push("r", "boom", Level::Error, false, at(t0, 2), &mut out);
    assert_eq!(
        out.take(),
        [("a", FLUSHED), ("b", FLUSHED), ("boom", PASSED)]
    );
    assert!(b.is_passing("r"));
    assert_eq!(b.held_len("other"), 1, "other keys are untouched");

    b.push("r", "after", Level::Trace, false, at(t0, 29_000), &mut out);
    assert_eq!(out.take(), [("after", PASSED)]);

    // Idle 30 s after its last record: forgotten, and holding again afterwards.
    b.tick(at(t0, 59_000), &mut out);
    assert!(!b.is_passing("r"));
    assert_eq!(out.take(), [("x", Err(DiscardReason::Idle))]);
    b.push("r", "new", Level::Debug, false, at(t0, 59_001), &mut out);
    assert!(out.0.is_empty());
    assert_eq!(b.held_len("r"), 1);
    assert_eq!(b.stats().activations, 1);
    assert_eq!(b.stats().flushed, 2);
    b.check_invariants();
}

#[test]
fn without_stop_buffering_a_key_holds_again_after_its_flush() {
    let mut b = buffer(FingersCrossedConfig {
        stop_buffering: false,
        ..Default::default()
    });
    let (mut out, t0) = (Log::default(), Instant::now());
    b.push("r", "a", Level::Debug, false, t0, &mut out);
    b.push("r", "boom", Level::Error, false, t0, &mut out);
    assert_eq!(out.take(), [("a", FLUSHED), ("boom", PASSED)]);
    b.push("r", "b", Level::Debug, false, t0, &mut out);
    assert!(out.0.is_empty());
    assert!(!b.is_passing("r"));
    b.push("r", "boom2", Level::Fatal, false, t0, &mut out);
    assert_eq!(out.take(), [("b", FLUSHED), ("boom2", PASSED)]);
    assert_eq!(b.stats().activations, 2);

    // Nothing to remember for an unknown key: an early activation lets nothing through.
    b.activate("early", t0, &mut out);
    b.push("early", "c", Level::Debug, false, t0, &mut out);
    assert!(out.0.is_empty());
    assert_eq!(b.stats().activations, 3);
}

#[test]
fn a_caller_evaluated_condition_activates() {
    let mut b = buffer(FingersCrossedConfig::default());
    let (mut out, t0) = (Log::default(), Instant::now());
    b.push("r", "req", Level::Info, false, t0, &mut out);
    b.push("r", "status=502", Level::Info, true, t0, &mut out);
    assert_eq!(out.take(), [("req", FLUSHED), ("status=502", PASSED)]);
    assert!(b.is_passing("r"));

    // An activating record for a key never seen makes it pass through too.
    b.push("s", "status=500", Level::Debug, true, t0, &mut out);
    b.push("s", "later", Level::Debug, false, t0, &mut out);
    assert_eq!(out.take(), [("status=500", PASSED), ("later", PASSED)]);
    assert_eq!(b.stats().activations, 2);
}

#[test]
fn external_activation_flushes_held_records() {
    let mut b = buffer(FingersCrossedConfig::default());
    let (mut out, t0) = (Log::default(), Instant::now());
    b.push("r", "a", Level::Debug, false, t0, &mut out);
    b.push("r", "b", Level::Debug, false, t0, &mut out);
    b.activate("r", at(t0, 5), &mut out);
    assert_eq!(out.take(), [("a", FLUSHED), ("b", FLUSHED)]);
    b.push("r", "c", Level::Debug, false, at(t0, 6), &mut out);
    assert_eq!(out.take(), [("c", PASSED)]);
    // A second activation of a passing key is not counted again.
    b.activate("r", at(t0, 7), &mut out);
    assert_eq!(b.stats().activations, 1);
}

#[test]
fn activation_before_the_logs_lets_them_through_until_idle() {
    let mut b = buffer(FingersCrossedConfig::default());
    let (mut out, t0) = (Log::default(), Instant::now());
    b.activate("r", t0, &mut out);
    assert!(out.0.is_empty());
    assert!(b.is_passing("r"));
    assert_eq!(b.stats().keys, 1);
    b.push("r", "a", Level::Debug, false, at(t0, 10_000), &mut out);
    assert_eq!(out.take(), [("a", PASSED)]);
    // Forgotten once idle, even without a tick: the next record is held.
    b.push("r", "b", Level::Debug, false, at(t0, 40_000), &mut out);
    assert!(out.0.is_empty());
    assert_eq!(b.held_len("r"), 1);
    assert_eq!(b.stats().expired_keys, 1);
    b.check_invariants();
}

#[test]
fn tick_discards_only_idle_keys() {
    let mut b = buffer(FingersCrossedConfig::default());
    let (mut out, t0) = (Log::default(), Instant::now());
    b.push("old", "o1", Level::Debug, false, t0, &mut out);
    b.push("new", "n1", Level::Debug, false, at(t0, 1_000), &mut out);
    b.push("old", "o2", Level::Debug, false, at(t0, 5_000), &mut out);
    assert_eq!(b.next_deadline(), Some(at(t0, 31_000)));
    b.tick(at(t0, 31_000), &mut out);
    assert_eq!(out.take(), [("n1", Err(DiscardReason::Idle))]);
    assert_eq!(b.next_deadline(), Some(at(t0, 35_000)));

    b.tick(at(t0, 34_999), &mut out);
    assert!(out.0.is_empty());
    b.tick(at(t0, 35_000), &mut out);
    assert_eq!(
        out.take(),
        [
            ("o1", Err(DiscardReason::Idle)),
            ("o2", Err(DiscardReason::Idle))
        ]
    );
    assert_eq!(b.next_deadline(), None);
    assert_eq!(b.stats().expired_keys, 2);
    assert_eq!(b.stats().discarded.idle, 3);
    b.check_invariants();
}

#[test]
fn a_record_after_an_unticked_idle_period_starts_a_fresh_key() {
    let mut b = buffer(FingersCrossedConfig::default());
    let (mut out, t0) = (Log::default(), Instant::now());
    b.push("r", "stale", Level::Debug, false, t0, &mut out);
    b.push("r", "fresh", Level::Debug, false, at(t0, 30_000), &mut out);
    assert_eq!(out.take(), [("stale", Err(DiscardReason::Idle))]);
    b.push("r", "boom", Level::Error, false, at(t0, 30_001), &mut out);
    assert_eq!(out.take(), [("fresh", FLUSHED), ("boom", PASSED)]);
}

#[test]
fn sampled_healthy_keys_are_flushed_whole_when_idle() {
    let mut b = buffer(FingersCrossedConfig {
        keep_healthy: 1.0,
        ..Default::default()
    });
    let (mut out, t0) = (Log::default(), Instant::now());
    b.push("r", "a", Level::Debug, false, t0, &mut out);
    b.push("r", "b", Level::Info, false, t0, &mut out);
    b.tick(at(t0, 30_000), &mut out);
    assert_eq!(out.take(), [("a", SAMPLED), ("b", SAMPLED)]);
    assert_eq!(b.stats().sampled, 2);
    assert_eq!(b.stats().discarded.total(), 0);
}

#[test]
fn the_sample_follows_the_stable_hash() {
    let mut b = buffer(FingersCrossedConfig {
        keep_healthy: 0.5,
        ..Default::default()
    });
    let (mut out, t0) = (Log::default(), Instant::now());
    let keys = ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"];
    for key in keys {
        b.push(key, key, Level::Debug, false, t0, &mut out);
    }
    b.tick(at(t0, 30_000), &mut out);
    let log = out.take();
    for key in keys {
        let (_, fate) = log.iter().find(|(r, _)| *r == key).unwrap();
        let expected = if is_sampled(key.as_bytes(), 0.5) {
            SAMPLED
        } else {
            Err(DiscardReason::Idle)
        };
        assert_eq!(*fate, expected, "{key}");
    }
}

#[test]
fn memory_cap_evicts_the_least_recently_active_key() {
    let probe = buffer(FingersCrossedConfig::default());
    let per_key = probe.key_cost(&"a") + test_record_cost(&"a1");
    let mut b = buffer(FingersCrossedConfig {
        max_memory: NonZeroUsize::new(3 * per_key).unwrap(),
        ..Default::default()
    });
    let (mut out, t0) = (Log::default(), Instant::now());
    b.push("a", "a1", Level::Debug, false, t0, &mut out);
    b.push("b", "b1", Level::Debug, false, at(t0, 1), &mut out);
    b.push("c", "c1", Level::Debug, false, at(t0, 2), &mut out);
    assert!(out.0.is_empty());
    assert_eq!(b.stats().memory, 3 * per_key);
    // Over the cap by one record: "b", now the least recently active key, goes — not
    // "a", which was seen first but is active again.
    b.push("a", "a2", Level::Debug, false, at(t0, 3), &mut out);
    assert_eq!(out.take(), [("b1", Err(DiscardReason::Evicted))]);
    assert_eq!(b.held_len("a"), 2);
    assert_eq!(b.stats().evicted_keys, 1);
    assert_eq!(b.stats().discarded.evicted, 1);
    assert!(b.stats().memory <= 3 * per_key);
    b.check_invariants();
}

#[test]
fn the_only_key_over_the_cap_loses_its_own_oldest_records() {
    let probe = buffer(FingersCrossedConfig::default());
    let cap = probe.key_cost(&"r") + 2 * test_record_cost(&"1");
    let mut b = buffer(FingersCrossedConfig {
        max_memory: NonZeroUsize::new(cap).unwrap(),
        ..Default::default()
    });
    let (mut out, t0) = (Log::default(), Instant::now());
    for record in ["1", "2", "3"] {
        b.push("r", record, Level::Debug, false, t0, &mut out);
    }
    assert_eq!(out.take(), [("1", Err(DiscardReason::Evicted))]);
    assert_eq!(b.held_len("r"), 2);
    assert_eq!(b.stats().evicted_keys, 0, "the key itself stays");
    b.check_invariants();
}

#[test]
fn a_record_too_large_for_the_cap_is_discarded_alone() {
    let probe = buffer(FingersCrossedConfig::default());
    let cap = 2 * (probe.key_cost(&"r") + test_record_cost(&"small"));
    let mut b = buffer(FingersCrossedConfig {
        max_memory: NonZeroUsize::new(cap).unwrap(),
        ..Default::default()
    });
    let (mut out, t0) = (Log::default(), Instant::now());
    let huge: &'static str = "x".repeat(cap).leak();
    b.push("r", "small", Level::Debug, false, t0, &mut out);
    b.push("s", huge, Level::Debug, false, t0, &mut out);
    b.push("r", huge, Level::Debug, false, t0, &mut out);
    assert_eq!(
        out.take(),
        [
            (huge, Err(DiscardReason::TooLarge)),
            (huge, Err(DiscardReason::TooLarge))
        ]
    );
    assert_eq!(b.held_len("r"), 1);
    assert_eq!(
        b.stats().keys,
        1,
        "no key is made for a record that cannot be held"
    );
    // Passed records are never held, so their size does not matter.
    b.push("r", huge, Level::Error, false, t0, &mut out);
    assert_eq!(out.take(), [("small", FLUSHED), (huge, PASSED)]);
    b.check_invariants();
}

#[test]
fn drain_all_returns_held_records_for_shutdown() {
    let mut b = buffer(FingersCrossedConfig {
        keep_healthy: 1.0,
        ..Default::default()
    });
    let (mut out, t0) = (Log::default(), Instant::now());
    b.push("r", "a", Level::Debug, false, t0, &mut out);
    b.push("s", "b", Level::Debug, false, t0, &mut out);
    b.activate("t", t0, &mut out);
    b.drain_all(&mut out);
    let log = out.take();
    assert_eq!(
        log,
        [
            ("a", Err(DiscardReason::Shutdown)),
            ("b", Err(DiscardReason::Shutdown))
        ]
    );
    assert!(!DiscardReason::Shutdown.is_deliberate());
    assert_eq!(b.stats().keys, 0);
    assert_eq!(b.stats().memory, 0);
    assert_eq!(b.stats().expired_keys + b.stats().evicted_keys, 0);
    b.check_invariants();
}

#[test]
fn time_running_backwards_counts_as_the_latest_time() {
    let mut b = buffer(FingersCrossedConfig::default());
    let (mut out, t0) = (Log::default(), Instant::now());
    b.push("r", "a", Level::Debug, false, at(t0, 20_000), &mut out);
    b.push("s", "b", Level::Debug, false, t0, &mut out); // seen at 20 s
    assert_eq!(b.next_deadline(), Some(at(t0, 50_000)));
    b.tick(at(t0, 49_999), &mut out);
    assert!(out.0.is_empty());
    b.tick(at(t0, 50_000), &mut out);
    assert_eq!(out.take().len(), 2);
    b.check_invariants();
}

#[test]
fn action_level_may_sit_below_passthru_level() {
    let mut b = buffer(FingersCrossedConfig {
        passthru_level: Level::Fatal,
        action_level: Level::Info,
        ..Default::default()
    });
    let (mut out, t0) = (Log::default(), Instant::now());
    b.push("r", "d", Level::Debug, false, t0, &mut out);
    b.push("r", "i", Level::Info, false, t0, &mut out);
    assert_eq!(out.take(), [("d", FLUSHED), ("i", PASSED)]);
}

#[test]
fn stats_add_up() {
    let mut b = buffer(FingersCrossedConfig {
        buffer_size: NonZeroUsize::new(1).unwrap(),
        ..Default::default()
    });
    let mut out = Output::new();
    let t0 = Instant::now();
    b.push("a", "1", Level::Debug, false, t0, &mut out);
    b.push("a", "2", Level::Debug, false, t0, &mut out); // 1 buffer_full
    b.push("b", "3", Level::Warn, false, t0, &mut out); // passed
    b.push("c", "4", Level::Debug, false, t0, &mut out);
    b.push("c", "5", Level::Error, false, t0, &mut out); // 4 flushed, 5 passed
    let stats = *b.stats();
    assert_eq!(stats.passed, 2);
    assert_eq!(stats.flushed, 1);
    assert_eq!(stats.emitted(), 3);
    assert_eq!(stats.discarded.get(DiscardReason::BufferFull), 1);
    assert_eq!(stats.held_records, 1);
    assert_eq!(stats.keys, 2);
    assert_eq!(out.emitted, ["3", "4", "5"]);
    assert_eq!(out.discarded, [("1", DiscardReason::BufferFull)]);
    assert_eq!(
        stats.emitted() + stats.discarded.total() + stats.held_records as u64,
        5
    );
}

#[test]
fn config_errors_are_all_reported() {
    let err = FingersCrossedConfig {
        keep_healthy: f64::NAN,
        idle_timeout: Duration::ZERO,
        ..Default::default()
    }
    .validate()
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("keep_healthy") && text.contains("idle_timeout"),
        "{text}"
    );
    assert!(FingersCrossed::<String, String>::new(FingersCrossedConfig::default()).is_ok());
}

#[test]
fn reasons_have_stable_names() {
    let names: Vec<_> = DiscardReason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        names,
        ["buffer_full", "idle", "evicted", "too_large", "shutdown"]
    );
    assert_eq!(EmitReason::Sampled.as_str(), "sampled");
    assert_eq!(
        Level::ALL.map(Level::as_str),
        ["trace", "debug", "info", "warn", "error", "fatal"]
    );
}

#[test]
fn would_hold_agrees_with_what_push_does() {
    let mut b = buffer(FingersCrossedConfig::default());
    let (mut out, t0) = (Log::default(), Instant::now());
    let cases = [
        ("r", Level::Debug, false),
        ("r", Level::Warn, false),
        ("r", Level::Info, true),
        // `r` passes everything after its activation.
        ("r", Level::Debug, false),
        ("s", Level::Error, false),
        ("t", Level::Info, false),
    ];
    for (key, level, activates) in cases {
        let predicted = b.would_hold(key, level, activates);
        let held_before = b.held_len(key);
        b.push(key, "x", level, activates, t0, &mut out);
        let held = b.held_len(key) > held_before;
        assert_eq!(predicted, held, "{key} {level:?} activates={activates}");
    }
    b.check_invariants();
}
