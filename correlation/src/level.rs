//! Log levels: the many spellings real libraries write, mapped to six canonical ones.
//!
//! ```
//! use hindsight_correlation::level::Level;
//!
//! assert_eq!(Level::from_text("Warning"), Some(Level::Warn)); // Serilog, Python
//! assert_eq!(Level::from_text("INFO+2"), Some(Level::Info)); // Go slog
//! assert_eq!(Level::from_number(50.0), Some(Level::Error)); // pino, bunyan
//! assert_eq!(Level::from_number(3.0), Some(Level::Error)); // syslog "err"
//! assert_eq!(Level::Fatal.as_str(), "fatal");
//! assert!(Level::Error > Level::Info);
//! ```

use std::fmt;
use std::str::FromStr;

/// A record's severity, lowest first. Written as `log.level` in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Finest detail (`trace`, `verbose`, pino 10).
    Trace,
    /// Diagnostic detail (`debug`, pino 20, syslog 7).
    Debug,
    /// Normal operation (`info`, `notice`, pino 30, syslog 5–6).
    Info,
    /// Something unexpected but handled (`warn`, `warning`, pino 40, syslog 4).
    Warn,
    /// A failure (`error`, `err`, pino 50, syslog 3).
    Error,
    /// The process or request cannot go on (`fatal`, `critical`, `panic`, pino 60, syslog 0–2).
    Fatal,
}

/// All levels, lowest first.
pub const LEVELS: [Level; 6] = Level::ALL;

impl Level {
    /// All levels, lowest first.
    pub const ALL: [Level; 6] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
    ];
}

/// Text that is not a known level name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log level {0:?} (expected trace, debug, info, warn, error or fatal)")]
pub struct UnknownLevel(pub String);

impl Level {
    /// The canonical lower-case name: `trace`, `debug`, `info`, `warn`, `error`, `fatal`.
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

    /// Maps a level name, case-insensitively: the canonical names and the spellings of
    /// log4j, logback, java.util.logging, Python logging, Serilog, .NET, zap, logrus,
    /// log15, Go slog (`WARN+2` counts as `warn`), syslog keywords and Google Cloud
    /// severities. A string of digits is read as a number ([`Level::from_number`]).
    pub fn from_text(text: &str) -> Option<Level> {
        // Most records spell their level one of these ways: no trimming, lowering or
        // search for a slog offset needed.
        match text {
            "info" | "INFO" | "Info" => return Some(Level::Info),
            "debug" | "DEBUG" | "Debug" => return Some(Level::Debug),
            "warn" | "WARN" | "Warn" | "warning" | "WARNING" | "Warning" => {
                return Some(Level::Warn)
            }
            "error" | "ERROR" | "Error" => return Some(Level::Error),
            _ => {}
        }
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
            return text.parse::<f64>().ok().and_then(Level::from_number);
        }
        // Go slog writes levels between the named ones as `INFO+2`, `DEBUG-4`.
        let name = match text.find(['+', '-']) {
            Some(at)
                if at > 0
                    && text[at + 1..].bytes().all(|byte| byte.is_ascii_digit())
                    && at + 1 < text.len() =>
            {
                &text[..at]
            }
            _ => text,
        };
        let mut lower = [0u8; 16];
        if name.len() > lower.len() {
            return None;
        }
        for (slot, byte) in lower.iter_mut().zip(name.bytes()) {
            *slot = byte.to_ascii_lowercase();
        }
        Some(match &lower[..name.len()] {
            b"trace" | b"trc" | b"t" | b"verbose" | b"vrb" | b"v" | b"finest" | b"finer" => {
                Level::Trace
            }
            b"debug" | b"dbg" | b"dbug" | b"debu" | b"d" | b"fine" | b"config" => Level::Debug,
            b"info" | b"inf" | b"i" | b"information" | b"informational" | b"notice" | b"ntc" => {
                Level::Info
            }
            b"warn" | b"warning" | b"wrn" | b"w" => Level::Warn,
            b"error" | b"err" | b"eror" | b"erro" | b"e" | b"severe" | b"dpanic" => Level::Error,
            b"fatal" | b"ftl" | b"f" | b"critical" | b"crit" | b"crt" | b"alert" | b"emerg"
            | b"emergency" | b"panic" => Level::Fatal,
            _ => return None,
        })
    }

    /// Maps a numeric level: syslog severities 0–7 (0–2 fatal, 3 error, 4 warn, 5–6 info,
    /// 7 debug) and pino/bunyan levels 10–60 (each decade one level: 10 trace … 60 fatal,
    /// so custom levels like 35 fall into the decade below). Other numbers are unknown.
    pub fn from_number(number: f64) -> Option<Level> {
        // A whole number within `i64` survives the round trip (which saturates); a
        // fraction, NaN or infinity does not, and a whole number beyond `i64` ends as
        // `i64::MIN` or `MAX`, no level either. Cheaper than `fract`, which on baseline
        // x86-64 is a call into software `trunc`.
        let whole = number as i64;
        if whole as f64 != number {
            return None;
        }
        Level::from_integer(whole)
    }

    /// [`Level::from_number`] for a number the record wrote as an integer.
    pub fn from_integer(number: i64) -> Option<Level> {
        Some(match number {
            0..=2 => Level::Fatal,
            3 => Level::Error,
            4 => Level::Warn,
            5 | 6 => Level::Info,
            7 => Level::Debug,
            10..=19 => Level::Trace,
            20..=29 => Level::Debug,
            30..=39 => Level::Info,
            40..=49 => Level::Warn,
            50..=59 => Level::Error,
            60..=69 => Level::Fatal,
            _ => return None,
        })
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = UnknownLevel;
    /// Any spelling [`Level::from_text`] knows.
    fn from_str(text: &str) -> Result<Level, UnknownLevel> {
        Level::from_text(text).ok_or_else(|| UnknownLevel(text.to_owned()))
    }
}

impl serde::Serialize for Level {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Level {
    /// From a level name (config files: `action_level = "error"`).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Level, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_real_libraries() {
        for (text, level) in [
            ("TRACE", Level::Trace),
            ("Verbose", Level::Trace),
            ("FINEST", Level::Trace),
            ("debug", Level::Debug),
            ("DBUG", Level::Debug),
            ("INFO", Level::Info),
            ("Information", Level::Info),
            ("NOTICE", Level::Info),
            ("warning", Level::Warn),
            ("WARN", Level::Warn),
            ("Error", Level::Error),
            ("eror", Level::Error),
            ("SEVERE", Level::Error),
            ("dpanic", Level::Error),
            ("CRITICAL", Level::Fatal),
            ("Fatal", Level::Fatal),
            ("panic", Level::Fatal),
            ("EMERGENCY", Level::Fatal),
            (" info ", Level::Info),
            ("DEBUG-4", Level::Debug),
            ("ERROR+8", Level::Error),
            ("30", Level::Info),
            ("3", Level::Error),
        ] {
            assert_eq!(Level::from_text(text), Some(level), "{text}");
        }
        for text in [
            "",
            "DEFAULT",
            "loud",
            "info+",
            "-4",
            "information-overload",
            "x".repeat(40).as_str(),
        ] {
            assert_eq!(Level::from_text(text), None, "{text}");
        }
    }

    #[test]
    fn numbers_syslog_and_pino() {
        let expect = [
            (0.0, Some(Level::Fatal)),
            (2.0, Some(Level::Fatal)),
            (3.0, Some(Level::Error)),
            (4.0, Some(Level::Warn)),
            (5.0, Some(Level::Info)),
            (6.0, Some(Level::Info)),
            (7.0, Some(Level::Debug)),
            (8.0, None),
            (10.0, Some(Level::Trace)),
            (20.0, Some(Level::Debug)),
            (30.0, Some(Level::Info)),
            (35.0, Some(Level::Info)),
            (40.0, Some(Level::Warn)),
            (50.0, Some(Level::Error)),
            (60.0, Some(Level::Fatal)),
            (70.0, None),
            (-1.0, None),
            (30.5, None),
            (f64::NAN, None),
            (-0.0, Some(Level::Fatal)),
            (29.999_999_999_999_996, None),
            (5e-324, None),
        ];
        for (number, level) in expect {
            assert_eq!(Level::from_number(number), level, "{number}");
        }
    }

    /// The common spellings, matched before the general path, read as the general path
    /// reads them (padded with spaces, they take that path).
    #[test]
    fn common_spellings_agree_with_the_general_path() {
        for word in ["info", "debug", "warn", "warning", "error"] {
            let capitalised = format!("{}{}", word[..1].to_ascii_uppercase(), &word[1..]);
            for text in [word.to_owned(), word.to_ascii_uppercase(), capitalised] {
                let general = Level::from_text(&format!(" {text} "));
                assert!(general.is_some(), "{text}");
                assert_eq!(Level::from_text(&text), general, "{text}");
            }
        }
    }

    /// The whole-number test by a round trip through `i64` against `fract`, which it
    /// replaced, on the edges of both.
    #[test]
    fn whole_numbers_are_told_as_fract_tells_them() {
        let by_fract = |number: f64| {
            if !number.is_finite() || number.fract() != 0.0 {
                return None;
            }
            Level::from_integer(number as i64)
        };
        let edges = [
            0.0,
            -0.0,
            0.5,
            -0.5,
            1e-300,
            5e-324,
            29.5,
            30.0,
            69.0,
            69.5,
            70.0,
            -1.0,
            9_007_199_254_740_991.0,
            9_007_199_254_740_993.0,
            9.223_372_036_854_775e18,
            -9.223_372_036_854_775e18,
            1.8e19,
            1e300,
            f64::MAX,
            f64::MIN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        for number in edges
            .into_iter()
            .chain((-10..=80).map(|n| f64::from(n) / 2.0))
        {
            assert_eq!(Level::from_number(number), by_fract(number), "{number}");
        }
    }

    #[test]
    fn canonical_names_round_trip_and_deserialize() {
        for level in LEVELS {
            assert_eq!(level.as_str().parse::<Level>(), Ok(level));
            assert_eq!(level.to_string(), level.as_str());
        }
        let level: Level = serde_json::from_str("\"Warning\"").unwrap();
        assert_eq!(level, Level::Warn);
        assert!(serde_json::from_str::<Level>("\"loud\"").is_err());
        assert_eq!(serde_json::to_string(&Level::Error).unwrap(), "\"error\"");
    }
}
