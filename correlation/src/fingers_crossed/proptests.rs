//! The buffer as an interpreter of random push / activate / tick / drain sequences over a
//! few keys, checked against a small model after every step.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

const KEYS: [&str; 4] = ["k0", "k1", "k2", "k3"];
const IDLE_MS: u64 = 10_000;
const HUGE: usize = 1 << 30;

#[derive(Debug)]
struct Rec {
    id: u32,
    size: usize,
}

impl RecordSize for Rec {
    fn record_size(&self) -> usize {
        self.size
    }
}

type Fate = Result<EmitReason, DiscardReason>;

/// Collects `(id, fate)` in the order the buffer reports them.
#[derive(Default)]
struct Events(Vec<(u32, Fate)>);

impl Outlet<Rec> for Events {
    fn emit(&mut self, record: Rec, reason: EmitReason) {
        self.0.push((record.id, Ok(reason)));
    }
    fn discard(&mut self, record: Rec, reason: DiscardReason) {
        self.0.push((record.id, Err(reason)));
    }
}

#[derive(Debug, Clone)]
enum Op {
    Push {
        key: usize,
        level: Level,
        activates: bool,
        size: usize,
        dt: i64,
    },
    Activate {
        key: usize,
        dt: i64,
    },
    Tick {
        dt: i64,
    },
    DrainAll,
}

fn level() -> impl Strategy<Value = Level> {
    prop::sample::select(Level::ALL.to_vec())
}

/// Mostly forward, sometimes past `idle_timeout`, occasionally backwards.
fn dt() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => 0..3_000i64,
        2 => 9_000..12_000i64,
        1 => -5_000..0i64,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0..KEYS.len(), level(), prop::bool::weighted(0.05), 0..64usize, dt()).prop_map(
            |(key, level, activates, size, dt)| Op::Push { key, level, activates, size, dt }
        ),
        2 => (0..KEYS.len(), dt()).prop_map(|(key, dt)| Op::Activate { key, dt }),
        2 => dt().prop_map(|dt| Op::Tick { dt }),
        1 => Just(Op::DrainAll),
    ]
}

fn config() -> impl Strategy<Value = FingersCrossedConfig> {
    (
        level(),
        level(),
        1..5usize,
        any::<bool>(),
        prop::sample::select(vec![0.0, 0.5, 1.0]),
        prop_oneof![Just(HUGE), 100..1_500usize],
    )
        .prop_map(
            |(
                passthru_level,
                action_level,
                buffer_size,
                stop_buffering,
                keep_healthy,
                max_memory,
            )| {
                FingersCrossedConfig {
                    passthru_level,
                    action_level,
                    buffer_size: NonZeroUsize::new(buffer_size).unwrap(),
                    stop_buffering,
                    idle_timeout: Duration::from_millis(IDLE_MS),
                    keep_healthy,
                    max_memory: NonZeroUsize::new(max_memory).unwrap(),
                }
            },
        )
}

/// What the test knows independently of the buffer.
struct Model {
    /// Caller time, as an offset from `t0` (may run backwards).
    caller_ms: i64,
    /// Effective time: the latest caller time.
    now_ms: i64,
    /// Key of every record pushed, by id.
    key_of: Vec<usize>,
    /// Fate of every record that left, by id.
    fate: HashMap<u32, Fate>,
    /// Records pushed and not yet left, per key.
    outstanding: [Vec<u32>; KEYS.len()],
    /// Emission order per key.
    emitted: [Vec<(u32, EmitReason)>; KEYS.len()],
    /// Last push or activation of each key (effective ms).
    last_touch: [Option<i64>; KEYS.len()],
    /// Effective ms of the last touch of a key known to pass through.
    passing: [Option<i64>; KEYS.len()],
}

impl Model {
    fn new() -> Self {
        Model {
            caller_ms: 0,
            now_ms: 0,
            key_of: Vec::new(),
            fate: HashMap::new(),
            outstanding: Default::default(),
            emitted: Default::default(),
            last_touch: [None; KEYS.len()],
            passing: [None; KEYS.len()],
        }
    }

    fn advance(&mut self, t0: Instant, dt: i64) -> Instant {
        self.caller_ms = (self.caller_ms + dt).max(0);
        self.now_ms = self.now_ms.max(self.caller_ms);
        t0 + Duration::from_millis(self.caller_ms as u64)
    }

    fn idle(&self, since: Option<i64>) -> bool {
        since.is_none_or(|t| self.now_ms - t >= IDLE_MS as i64)
    }

    /// Records what left in one call, checking exactly-once and the sample rule.
    fn settle(&mut self, events: &[(u32, Fate)], keep_healthy: f64) {
        for &(id, fate) in events {
            let key = self.key_of[id as usize];
            assert!(
                self.fate.insert(id, fate).is_none(),
                "record {id} left twice"
            );
            let pos = self.outstanding[key].iter().position(|&o| o == id);
            let pos = pos.unwrap_or_else(|| panic!("record {id} left but was not outstanding"));
            self.outstanding[key].remove(pos);
            if let Ok(reason) = fate {
                self.emitted[key].push((id, reason));
            }
            let sampled = is_sampled(KEYS[key].as_bytes(), keep_healthy);
            match fate {
                Err(DiscardReason::Idle) => {
                    assert!(!sampled, "sampled key {key} discarded on idle")
                }
                Ok(EmitReason::Sampled) => {
                    assert!(sampled, "unsampled key {key} emitted as sampled")
                }
                _ => {}
            }
        }
    }
}

/// Runs `ops` (then a final drain) and returns every fate seen.
fn run(config: FingersCrossedConfig, ops: Vec<Op>) -> Vec<Fate> {
    let mut buffer = FingersCrossed::<String, Rec>::new(config.clone()).unwrap();
    let mut model = Model::new();
    let t0 = Instant::now();
    let big_memory = config.max_memory.get() == HUGE;
    let mut events = Events::default();

    for op in ops.into_iter().chain([Op::DrainAll]) {
        events.0.clear();
        match op {
            Op::Push {
                key,
                level,
                activates,
                size,
                dt,
            } => {
                let now = model.advance(t0, dt);
                let id = model.key_of.len() as u32;
                model.key_of.push(key);
                let activating = activates || level >= config.action_level;
                let before: Vec<u32> = model.outstanding[key].clone();
                let key_was_live = !model.idle(model.last_touch[key]);
                if model.idle(model.passing[key]) {
                    model.passing[key] = None;
                }
                let was_passing = model.passing[key].is_some();
                model.outstanding[key].push(id);

                buffer.push(
                    KEYS[key].to_string(),
                    Rec { id, size },
                    level,
                    activates,
                    now,
                    &mut events,
                );
                model.settle(&events.0, config.keep_healthy);

                let fate_now = model.fate.get(&id).copied();
                if activating || level >= config.passthru_level || (was_passing && big_memory) {
                    assert_eq!(
                        fate_now,
                        Some(Ok(EmitReason::Passed)),
                        "record {id} passes at once"
                    );
                } else if big_memory {
                    assert_eq!(fate_now, None, "record {id} is held");
                }
                if activating {
                    assert!(
                        model.outstanding[key].is_empty(),
                        "activation leaves nothing held"
                    );
                    if key_was_live {
                        for old in before {
                            assert_eq!(model.fate[&old], Ok(EmitReason::Flushed), "record {old}");
                        }
                    }
                    if config.stop_buffering {
                        model.passing[key] = Some(model.now_ms);
                    }
                }
                if model.passing[key].is_some() {
                    model.passing[key] = Some(model.now_ms);
                }
                model.last_touch[key] = Some(model.now_ms);
            }
            Op::Activate { key, dt } => {
                let now = model.advance(t0, dt);
                let before: Vec<u32> = model.outstanding[key].clone();
                let key_was_live = !model.idle(model.last_touch[key]);
                buffer.activate(KEYS[key].to_string(), now, &mut events);
                model.settle(&events.0, config.keep_healthy);
                assert!(
                    model.outstanding[key].is_empty(),
                    "activation leaves nothing held"
                );
                if key_was_live {
                    for old in before {
                        assert_eq!(model.fate[&old], Ok(EmitReason::Flushed), "record {old}");
                    }
                }
                if config.stop_buffering {
                    model.passing[key] = Some(model.now_ms);
                }
                model.last_touch[key] = Some(model.now_ms);
            }
            Op::Tick { dt } => {
                let now = model.advance(t0, dt);
                buffer.tick(now, &mut events);
                model.settle(&events.0, config.keep_healthy);
                for key in 0..KEYS.len() {
                    if model.idle(model.passing[key]) {
                        model.passing[key] = None;
                    }
                    // A key idle at `now` holds nothing after a tick.
                    if model.idle(model.last_touch[key]) {
                        assert!(
                            model.outstanding[key].is_empty(),
                            "idle key {key} still holds"
                        );
                    }
                }
            }
            Op::DrainAll => {
                buffer.drain_all(&mut events);
                model.settle(&events.0, config.keep_healthy);
                assert!(events
                    .0
                    .iter()
                    .all(|(_, fate)| *fate == Err(DiscardReason::Shutdown)));
                model.passing = [None; KEYS.len()];
            }
        }

        // Caps and bookkeeping after every step.
        buffer.check_invariants();
        let stats = buffer.stats();
        assert!(stats.memory <= config.max_memory.get());
        for (key, name) in KEYS.iter().enumerate() {
            assert!(buffer.held_len(*name) <= config.buffer_size.get());
            assert_eq!(buffer.held_len(*name), model.outstanding[key].len());
        }
        let held: usize = model.outstanding.iter().map(Vec::len).sum();
        assert_eq!(stats.held_records, held);
        assert_eq!(
            stats.emitted() + stats.discarded.total() + held as u64,
            model.key_of.len() as u64
        );
        if big_memory && stats.evicted_keys == 0 {
            for (key, name) in KEYS.iter().enumerate() {
                assert_eq!(
                    buffer.is_passing(*name),
                    model.passing[key].is_some(),
                    "key {key}"
                );
            }
        }
    }

    // Every record left exactly once.
    assert_eq!(model.fate.len(), model.key_of.len());
    assert!(model.outstanding.iter().all(Vec::is_empty));

    // Order per key: a later record overtakes an earlier one only by passing at once
    // while the earlier one was held.
    for emitted in &model.emitted {
        for (i, &(a, reason_a)) in emitted.iter().enumerate() {
            for &(b, reason_b) in &emitted[i + 1..] {
                if a > b {
                    assert_eq!(reason_a, EmitReason::Passed, "{a} overtook {b}");
                    assert_ne!(reason_b, EmitReason::Passed, "{a} overtook {b}");
                }
            }
        }
    }
    model.fate.into_values().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn buffer_keeps_its_invariants(config in config(), ops in prop::collection::vec(op(), 1..200)) {
        run(config, ops);
    }
}

#[test]
fn model_exercises_every_outcome() {
    // A fixed run that reaches every reason, so a silently vacuous model shows up.
    let config = FingersCrossedConfig {
        buffer_size: NonZeroUsize::new(2).unwrap(),
        idle_timeout: Duration::from_millis(IDLE_MS),
        keep_healthy: 0.5,
        max_memory: NonZeroUsize::new(HUGE).unwrap(),
        ..Default::default()
    };
    let push = |key, level, dt| Op::Push {
        key,
        level,
        activates: false,
        size: 8,
        dt,
    };
    let mut ops = vec![];
    for key in 0..KEYS.len() {
        ops.extend([
            push(key, Level::Debug, 0),
            push(key, Level::Debug, 0),
            push(key, Level::Debug, 0),
        ]);
    }
    ops.extend([
        push(0, Level::Error, 1),
        Op::Activate { key: 1, dt: 1 },
        Op::Tick { dt: 20_000 },
    ]);
    ops.extend([push(2, Level::Debug, 0), push(2, Level::Warn, 0)]);
    let fates = run(config.clone(), ops.clone());
    for fate in [
        Ok(EmitReason::Passed),
        Ok(EmitReason::Flushed),
        Ok(EmitReason::Sampled),
        Err(DiscardReason::BufferFull),
        Err(DiscardReason::Idle),
        Err(DiscardReason::Shutdown),
    ] {
        assert!(fates.contains(&fate), "{fate:?} not reached");
    }

    // The same under a tight cap: evictions, and a record too large to hold.
    let tight = FingersCrossedConfig {
        max_memory: NonZeroUsize::new(600).unwrap(),
        ..config
    };
    ops.push(Op::Push {
        key: 3,
        level: Level::Debug,
        activates: false,
        size: 10_000,
        dt: 0,
    });
    let fates = run(tight, ops);
    for fate in [Err(DiscardReason::Evicted), Err(DiscardReason::TooLarge)] {
        assert!(fates.contains(&fate), "{fate:?} not reached");
    }
}
