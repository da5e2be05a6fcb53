//! Record times: RFC 3339 text and epoch numbers to one UTC instant.
//!
//! ```
//! use hindsight_correlation::time::{parse_text, parse_epoch};
//!
//! let t = parse_text("2026-11-23T10:00:00.5+01:00").unwrap();
//! assert_eq!(t.to_rfc3339(), "2026-11-23T09:00:00.500Z");
//! assert_eq!(parse_epoch(1_700_000_000_123.0).unwrap().millis(), 1_700_000_000_123);
//! ```

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDateTime, SecondsFormat, TimeZone, Timelike, Utc};

use crate::json::TimeValue;

/// A point in time, UTC, nanosecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Timestamp(Utc::now())
    }

    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> i64 {
        self.0.timestamp_millis()
    }

    /// Microseconds since the Unix epoch.
    pub fn micros(self) -> i64 {
        self.0.timestamp_micros()
    }

    /// How long after `earlier` this is; zero when it is not later.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        (self.0 - earlier.0).to_std().unwrap_or(Duration::ZERO)
    }

    /// RFC 3339 in UTC with the precision the source had (at least milliseconds).
    pub fn to_rfc3339(self) -> String {
        let mut out = Vec::with_capacity(30);
        self.write_rfc3339(&mut out);
        // Only ASCII digits and separators are written.
        String::from_utf8(out).unwrap_or_default()
    }

    /// Appends [`Timestamp::to_rfc3339`]'s text to `out` without allocating: this runs
    /// once per record.
    pub fn write_rfc3339(self, out: &mut Vec<u8>) {
        let time = self.0;
        let year = time.year();
        if !(0..=9999).contains(&year) {
            // Signed or five-digit years: rare enough for chrono's general formatter.
            let nanos = time.timestamp_subsec_nanos();
            out.extend_from_slice(time.to_rfc3339_opts(precision(nanos), true).as_bytes());
            return;
        }
        write_digits(out, year as u32, 4);
        out.push(b'-');
        write_digits(out, time.month(), 2);
        out.push(b'-');
        write_digits(out, time.day(), 2);
        out.push(b'T');
        write_digits(out, time.hour(), 2);
        out.push(b':');
        write_digits(out, time.minute(), 2);
        out.push(b':');
        // A leap second is kept in the nanoseconds by chrono (≥ 1e9): write it as :60.
        let nanos = time.timestamp_subsec_nanos();
        let leap = nanos >= 1_000_000_000;
        write_digits(out, time.second() + u32::from(leap), 2);
        let nanos = nanos % 1_000_000_000;
        out.push(b'.');
        match precision(nanos) {
            SecondsFormat::Millis => write_digits(out, nanos / 1_000_000, 3),
            SecondsFormat::Micros => write_digits(out, nanos / 1_000, 6),
            _ => write_digits(out, nanos, 9),
        }
        out.push(b'Z');
    }
}

/// Appends `value` as exactly `width` (≤ 9) decimal digits, zero-padded.
fn write_digits(out: &mut Vec<u8>, value: u32, width: usize) {
    let mut buffer = [b'0'; 9];
    let mut rest = value;
    for slot in buffer[..width].iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out.extend_from_slice(&buffer[..width]);
}

/// The shortest of milliseconds, microseconds and nanoseconds that loses nothing.
fn precision(subsec_nanos: u32) -> SecondsFormat {
    if subsec_nanos % 1_000_000 == 0 {
        SecondsFormat::Millis
    } else if subsec_nanos % 1_000 == 0 {
        SecondsFormat::Micros
    } else {
        SecondsFormat::Nanos
    }
}

/// Parses RFC 3339 / ISO 8601 text; a time without an offset is taken as UTC.
pub fn parse_text(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(Timestamp(time.with_timezone(&Utc)));
    }
    // Common near-misses: a space instead of `T`, no offset, a `+0100` offset.
    for format in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
    ] {
        if let Ok(time) = DateTime::parse_from_str(text, format) {
            return Some(Timestamp(time.with_timezone(&Utc)));
        }
    }
    let without_z = text.strip_suffix('Z').unwrap_or(text);
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(without_z, format) {
            return Some(Timestamp(Utc.from_utc_datetime(&naive)));
        }
    }
    None
}

/// Interprets an epoch number by its magnitude: seconds, milliseconds, microseconds or
/// nanoseconds (as pino, bunyan, zap and others write them).
pub fn parse_epoch(value: f64) -> Option<Timestamp> {
    if !value.is_finite() || value <= 0.0 {
        return None;
    }
    let nanos = if value < 1e11 {
        value * 1e9
    } else if value < 1e14 {
        value * 1e6
    } else if value < 1e17 {
        value * 1e3
    } else {
        value
    };
    if nanos > i64::MAX as f64 {
        return None;
    }
    let nanos = nanos as i64;
    // Round to microseconds: f64 cannot carry nanoseconds of a current epoch exactly.
    let nanos = if value < 1e17 {
        (nanos + 500) / 1_000 * 1_000
    } else {
        nanos
    };
    Some(Timestamp(Utc.timestamp_nanos(nanos)))
}

/// The time a record's time field holds: RFC 3339 text, an epoch number, or an epoch
/// number written as text.
pub fn from_value(value: &TimeValue<'_>) -> Option<Timestamp> {
    match value {
        TimeValue::Text(text) => {
            parse_text(text).or_else(|| text.trim().parse::<f64>().ok().and_then(parse_epoch))
        }
        TimeValue::Number(number) => parse_epoch(*number),
        TimeValue::Other => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_text_is_chrono_s_rfc3339_at_the_same_precision() {
        let chrono_text = |time: DateTime<Utc>| {
            time.to_rfc3339_opts(precision(time.timestamp_subsec_nanos()), true)
        };
        let mut seconds: i64 = -62_135_596_800; // 0001-01-01
        let mut nanos: u32 = 1;
        while seconds < 253_402_300_799 {
            for sub in [0, 5_000_000, 123_456_000, nanos % 1_000_000_000] {
                let time = Utc.timestamp_opt(seconds, sub).single().expect("in range");
                assert_eq!(Timestamp(time).to_rfc3339(), chrono_text(time));
            }
            seconds += 7_919_993; // about three months, a prime: every month and weekday
            nanos = nanos.wrapping_mul(48_271).wrapping_add(11);
        }
        // Outside 0000–9999 and on a leap second the text is still chrono's.
        for time in [
            Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0)
                .single()
                .expect("valid"),
            Utc.with_ymd_and_hms(-1, 12, 31, 23, 59, 59)
                .single()
                .expect("valid"),
        ] {
            assert_eq!(Timestamp(time).to_rfc3339(), chrono_text(time));
        }
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|day| day.and_hms_nano_opt(23, 59, 59, 1_500_000_000))
            .expect("a leap second");
        let leap = Utc.from_utc_datetime(&leap);
        assert_eq!(Timestamp(leap).to_rfc3339(), "2016-12-31T23:59:60.500Z");
        assert_eq!(Timestamp(leap).to_rfc3339(), chrono_text(leap));
    }

    #[test]
    fn rfc3339_variants() {
        for (text, expected) in [
            ("2026-11-23T10:00:00Z", "2026-11-23T10:00:00.000Z"),
            (
                "2026-11-23T10:00:00.123456789Z",
                "2026-11-23T10:00:00.123456789Z",
            ),
            ("2026-11-23T11:00:00.25+01:00", "2026-11-23T10:00:00.250Z"),
            ("2026-11-23 10:00:00.5Z", "2026-11-23T10:00:00.500Z"),
            ("2026-11-23T10:00:00.000001", "2026-11-23T10:00:00.000001Z"),
            ("2026-11-23T12:00:00+0200", "2026-11-23T10:00:00.000Z"),
        ] {
            assert_eq!(
                parse_text(text).map(|t| t.to_rfc3339()).as_deref(),
                Some(expected),
                "{text}"
            );
        }
        assert_eq!(parse_text("yesterday"), None);
        assert_eq!(parse_text(""), None);
    }

    #[test]
    fn epoch_by_magnitude() {
        let expected = "2023-11-14T22:13:20.000Z";
        assert_eq!(parse_epoch(1_700_000_000.0).unwrap().to_rfc3339(), expected);
        assert_eq!(
            parse_epoch(1_700_000_000_000.0).unwrap().to_rfc3339(),
            expected
        );
        assert_eq!(
            parse_epoch(1_700_000_000_000_000.0).unwrap().to_rfc3339(),
            expected
        );
        assert_eq!(
            parse_epoch(1_700_000_000_000_000_000.0)
                .unwrap()
                .to_rfc3339(),
            expected
        );
        assert_eq!(
            parse_epoch(1_700_000_000.25).unwrap().to_rfc3339(),
            "2023-11-14T22:13:20.250Z"
        );
        assert_eq!(parse_epoch(-1.0), None);
        assert_eq!(parse_epoch(f64::NAN), None);
        assert_eq!(parse_epoch(1e300), None);
    }

    #[test]
    fn values_and_differences() {
        let text = from_value(&TimeValue::Text("1700000000.5".into())).unwrap();
        let number = from_value(&TimeValue::Number(1_700_000_000_250.0)).unwrap();
        assert_eq!(text.micros(), 1_700_000_000_500_000);
        assert_eq!(
            text.saturating_duration_since(number),
            Duration::from_millis(250)
        );
        assert_eq!(number.saturating_duration_since(text), Duration::ZERO);
        assert_eq!(from_value(&TimeValue::Other), None);
        assert_eq!(from_value(&TimeValue::Text("soon".into())), None);
    }
}
