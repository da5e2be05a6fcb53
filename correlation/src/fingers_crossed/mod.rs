//! Fingers-crossed buffering: hold each request's low-level records and release them only
//! when that request fails.
//!
//! A [`FingersCrossed`] buffer keeps, per correlation key (request id, else trace id, else
//! the stream — any `K: Hash + Eq + SampleKey` the caller chooses):
//!
//! - records at or above `passthru_level` (default `warn`): emitted at once;
//! - others: held, at most `buffer_size` per key, the oldest discarded first
//!   ([`DiscardReason::BufferFull`]);
//! - an *activation* — a record at or above `action_level` (default `error`), a record the
//!   caller marks `activates` (a field condition such as `http.status >= 500`), or
//!   [`FingersCrossed::activate`] (the sidecar saw a 5xx; an error span with this trace
//!   id) — flushes the key's held records in their original order; then the key passes
//!   everything through until it goes idle (`stop_buffering = true`, the default) or goes
//!   back to holding (`false`). An activation of a key with nothing held yet still makes
//!   it pass through (with `stop_buffering`), since the 5xx may be seen before the logs;
//! - a key idle for `idle_timeout` (no record, no activation) is forgotten: its held
//!   records are discarded ([`DiscardReason::Idle`]), unless the key is in the
//!   `keep_healthy` sample ([`is_sampled`]), whose records are emitted instead
//!   ([`EmitReason::Sampled`]);
//! - the estimated memory of everything held never exceeds `max_memory` after any call:
//!   the least recently active keys are evicted first ([`DiscardReason::Evicted`]).
//!
//! Every record pushed leaves exactly once, through an [`Outlet`]: emitted or discarded
//! with a reason, so the caller can settle its acknowledgement. Records still held at
//! shutdown come out of [`FingersCrossed::drain_all`] as [`DiscardReason::Shutdown`]: leave
//! their acknowledgements unsettled so they are read again after a restart.
//!
//! The buffer is pure: no I/O, no clock. Time is the `now` each call is given; it never
//! sleeps, and expiry happens in [`FingersCrossed::tick`] (and, for one key, when that key
//! is next touched).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use hindsight_correlation::fingers_crossed::{
//!     DiscardReason, FingersCrossed, FingersCrossedConfig, Level, Output,
//! };
//!
//! let mut buffer = FingersCrossed::<String, &str>::new(FingersCrossedConfig::default())?;
//! let mut out = Output::new();
//! let t0 = Instant::now(); // the caller's clock: the buffer never reads one
//!
//! buffer.push("req-1".into(), "parsing body", Level::Debug, false, t0, &mut out);
//! buffer.push("req-2".into(), "served", Level::Info, false, t0, &mut out);
//! buffer.push("req-2".into(), "slow disk", Level::Warn, false, t0, &mut out);
//! assert_eq!(out.emitted, ["slow disk"]); // passthrough; the rest is held
//!
//! out.clear();
//! buffer.push("req-1".into(), "boom", Level::Error, false, t0, &mut out);
//! assert_eq!(out.emitted, ["parsing body", "boom"]); // req-1 failed: its context follows
//!
//! out.clear();
//! buffer.tick(t0 + Duration::from_secs(30), &mut out);
//! assert_eq!(out.discarded, [("served", DiscardReason::Idle)]); // req-2 was healthy
//! assert_eq!(buffer.stats().held_records, 0);
//! # Ok::<(), hindsight_correlation::fingers_crossed::ConfigError>(())
//! ```
//!
//! # Order per key
//!
//! Records of one key are emitted in their original order, with one exception: a record
//! emitted at once ([`EmitReason::Passed`]) overtakes records of its key that are still
//! held, which come out later if the key is activated or sampled. Precisely, if `b` was
//! pushed after `a` (same key) but emitted before it, then `b` was [`EmitReason::Passed`]
//! and `a` was held at the time. Held records never overtake each other, nor records
//! emitted at once. Sinks that index by `@timestamp` are indifferent to this.
//!
//! # Memory
//!
//! Each held record counts [`RecordSize::record_size`] plus `size_of::<T>()`; each key
//! counts a fixed overhead (its slot, index entry) plus the length of its
//! [`SampleKey::sample_bytes`]. This is an estimate, not allocator accounting; the slots
//! of forgotten keys are reused, not returned. A record that does not fit under
//! `max_memory` alone with its key is discarded at once ([`DiscardReason::TooLarge`])
//! rather than evicting everything else. When memory is short, whole keys are evicted in
//! least-recently-active order (a key still logging is more likely to fail later than one
//! that went quiet); when the pushing key is the only one left, its own oldest records go.
//! Evicting a key that passes through after an activation forgets that activation.

mod buffer;
mod config;
mod output;
mod sample;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use crate::level::Level;
pub use buffer::FingersCrossed;
pub use config::{
    default_action_level, default_buffer_size, default_idle_timeout, default_keep_healthy,
    default_max_memory, default_passthru_level, default_stop_buffering, ConfigError, ConfigProblem,
    FingersCrossedConfig,
};
pub use output::{DiscardCounts, DiscardReason, EmitReason, Outlet, Output, RecordSize, Stats};
pub use sample::{is_sampled, sample_hash, SampleKey};
