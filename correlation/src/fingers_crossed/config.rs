//! What the buffer is told: levels, sizes, timeouts, the healthy sample.

use std::fmt;
use std::num::NonZeroUsize;
use std::time::Duration;

use super::Level;

/// Settings of a [`FingersCrossed`](super::FingersCrossed) buffer.
///
/// Every field has a sensible default; [`FingersCrossedConfig::validate`] (called by
/// [`FingersCrossed::new`](super::FingersCrossed::new)) rejects what types cannot.
///
/// `action_level` may be below, equal to or above `passthru_level`: `action_level = info`
/// with `passthru_level = warn` holds only trace and debug lines; `passthru_level = fatal`
/// with `action_level = error` holds warnings too until something fails. Both are useful,
/// so neither order is rejected.
///
/// ```
/// use std::time::Duration;
/// use hindsight_correlation::fingers_crossed::{FingersCrossedConfig, Level};
///
/// let config = FingersCrossedConfig {
///     keep_healthy: 0.01,
///     idle_timeout: Duration::from_secs(10),
///     ..FingersCrossedConfig::default()
/// };
/// assert_eq!(config.action_level, Level::Error);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FingersCrossedConfig {
    /// Records at or above this level go out at once, held or not (default `warn`).
    pub passthru_level: Level,
    /// A record at or above this level activates its key: held records are flushed
    /// (default `error`).
    pub action_level: Level,
    /// At most this many records are held per key; when full, the oldest is discarded
    /// with reason [`buffer_full`](super::DiscardReason::BufferFull) (default 1000).
    pub buffer_size: NonZeroUsize,
    /// After an activation, pass everything of that key through until it goes idle
    /// (`true`, default), or go back to holding (`false`).
    pub stop_buffering: bool,
    /// A key with no record and no activation for this long is done: its held records are
    /// discarded, or flushed when it is in the healthy sample (default 30 s).
    pub idle_timeout: Duration,
    /// Fraction of keys, in `[0, 1]`, whose held records are flushed instead of discarded
    /// when they go idle, chosen by [`sample_hash`](super::sample_hash) (default `0`).
    pub keep_healthy: f64,
    /// Cap on the estimated memory of everything held, in bytes: keys (least recently
    /// active first) are evicted to stay under it (default 128 MiB).
    pub max_memory: NonZeroUsize,
}

/// Default `passthru_level`: `warn`.
pub const fn default_passthru_level() -> Level {
    Level::Warn
}

/// Default `action_level`: `error`.
pub const fn default_action_level() -> Level {
    Level::Error
}

/// Default `buffer_size`: 1000 records per key.
pub const fn default_buffer_size() -> NonZeroUsize {
    NonZeroUsize::new(1000).expect("1000 is not zero")
}

/// Default `stop_buffering`: `true`.
pub const fn default_stop_buffering() -> bool {
    true
}

/// Default `idle_timeout`: 30 seconds.
pub const fn default_idle_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Default `keep_healthy`: `0.0` (no healthy request is kept).
pub const fn default_keep_healthy() -> f64 {
    0.0
}

/// Default `max_memory`: 128 MiB.
pub const fn default_max_memory() -> NonZeroUsize {
    NonZeroUsize::new(128 << 20).expect("128 MiB is not zero")
}

impl Default for FingersCrossedConfig {
    fn default() -> Self {
        FingersCrossedConfig {
            passthru_level: default_passthru_level(),
            action_level: default_action_level(),
            buffer_size: default_buffer_size(),
            stop_buffering: default_stop_buffering(),
            idle_timeout: default_idle_timeout(),
            keep_healthy: default_keep_healthy(),
            max_memory: default_max_memory(),
        }
    }
}

impl FingersCrossedConfig {
    /// Checks what the field types cannot, reporting every problem at once.
    ///
    /// ```
    /// use std::time::Duration;
    /// use hindsight_correlation::fingers_crossed::{ConfigProblem, FingersCrossedConfig};
    ///
    /// let config = FingersCrossedConfig {
    ///     keep_healthy: 1.5,
    ///     idle_timeout: Duration::ZERO,
    ///     ..FingersCrossedConfig::default()
    /// };
    /// let err = config.validate().unwrap_err();
    /// assert_eq!(err.problems().len(), 2);
    /// assert!(err.problems().contains(&ConfigProblem::ZeroIdleTimeout));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if !(0.0..=1.0).contains(&self.keep_healthy) {
            problems.push(ConfigProblem::KeepHealthyOutOfRange(self.keep_healthy));
        }
        if self.idle_timeout.is_zero() {
            problems.push(ConfigProblem::ZeroIdleTimeout);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { problems })
        }
    }
}

/// One thing wrong with a [`FingersCrossedConfig`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigProblem {
    /// `keep_healthy` is not a fraction in `[0, 1]` (or is NaN).
    #[error("keep_healthy must be between 0 and 1, got {0}")]
    KeepHealthyOutOfRange(f64),
    /// `idle_timeout` is zero: every key would be discarded at once.
    #[error("idle_timeout must be greater than zero")]
    ZeroIdleTimeout,
}

/// A rejected [`FingersCrossedConfig`], with every problem found.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    problems: Vec<ConfigProblem>,
}

impl ConfigError {
    /// Everything wrong with the config (never empty).
    pub fn problems(&self) -> &[ConfigProblem] {
        &self.problems
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid fingers-crossed config: ")?;
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
