//! The severity of a record, as far as the buffer cares.

use std::fmt;

/// Severity of a log record, ordered from least to most severe.
///
/// Kept deliberately small: the buffer only compares levels. Mapping the many spellings
/// found in logs (`"WARNING"`, `"err"`, syslog numbers, ...) onto these is the job of the
/// field-extraction code.
///
/// ```
/// use hindsight_correlation::fingers_crossed::Level;
///
/// assert!(Level::Trace < Level::Debug && Level::Error < Level::Fatal);
/// assert_eq!(Level::Warn.as_str(), "warn");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Finest detail.
    Trace,
    /// Diagnostic detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the program handled.
    Warn,
    /// A failed operation.
    Error,
    /// The program cannot go on.
    Fatal,
}

impl Level {
    /// All levels, least severe first.
    pub const ALL: [Level; 6] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
    ];

    /// The lowercase name (`"trace"` … `"fatal"`), as used in configs and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
