//! Record times: RFC 3339 text and epoch numbers to one UTC instant.
//!
//! ```
//! use hindsight_correlation::time::{parse_text, parse_epoch};
//!
//! let t = parse_text("2026-11-23T10:00:00.5+01:00").unwrap();
//! assert_eq!(t.to_rfc3339(), "2026-11-23T09:00:00.500Z");
//! assert_eq!(parse_epoch(1_700_000_000_123.0).unwrap().millis(), 1_700_000_000_123);
//! ```

use bytes::BytesMut;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeZone, Utc};

use crate::json::TimeValue;

/// A point in time, UTC, nanosecond precision: seconds since the Unix epoch, and the
/// nanoseconds past them, 1e9 and above during a leap second (as chrono keeps them).
///
/// Plain integers rather than a chrono `DateTime`: a record's time is parsed, counted in
/// milliseconds and nanoseconds and written out once per record, and chrono's calendar
/// arithmetic for each of those was about a twentieth of the agent's CPU. The date is
/// computed only where text is read or written ([`days_from_civil`], [`civil_from_days`]);
/// chrono stays for the rare shapes and years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    secs: i64,
    nanos: u32,
}

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Timestamp::from_chrono(Utc::now())
    }

    /// The same instant as `time`.
    fn from_chrono(time: DateTime<Utc>) -> Self {
        Timestamp {
            secs: time.timestamp(),
            nanos: time.timestamp_subsec_nanos(),
        }
    }

    /// The same instant as chrono's: every `Timestamp` is made from a valid chrono
    /// time or a time within its range.
    fn to_chrono(self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.secs, self.nanos).unwrap_or_default()
    }

    /// Milliseconds since the Unix epoch (a leap second counts as the one after it).
    pub fn millis(self) -> i64 {
        self.secs * 1_000 + i64::from(self.nanos / 1_000_000)
    }

    /// Microseconds since the Unix epoch.
    pub fn micros(self) -> i64 {
        self.secs * 1_000_000 + i64::from(self.nanos / 1_000)
    }

    /// Nanoseconds since the Unix epoch, clamped to what an `i64` holds (1677-09-21 to
    /// 2262-04-11). A leap second counts as the second after it, as in POSIX time.
    pub(crate) fn nanos_saturating(self) -> i64 {
        let nanos = i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos);
        i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX })
    }

    /// How long after `earlier` this is; zero when it is not later.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        if self.nanos >= 1_000_000_000 || earlier.nanos >= 1_000_000_000 {
            // chrono's rules for differences across a leap second.
            return (self.to_chrono() - earlier.to_chrono())
                .to_std()
                .unwrap_or(Duration::ZERO);
        }
        let nanos = (i128::from(self.secs) - i128::from(earlier.secs)) * 1_000_000_000
            + i128::from(self.nanos)
            - i128::from(earlier.nanos);
        if nanos <= 0 {
            return Duration::ZERO;
        }
        // Seconds below 2^64: the whole range is about 1.7e13 of them.
        Duration::new(
            (nanos / 1_000_000_000) as u64,
            (nanos % 1_000_000_000) as u32,
        )
    }

    /// RFC 3339 in UTC with the precision the source had (at least milliseconds).
    pub fn to_rfc3339(self) -> String {
        let mut out = BytesMut::with_capacity(40);
        self.write_rfc3339(&mut out);
        // Only ASCII digits and separators are written.
        String::from_utf8(Vec::from(out)).unwrap_or_default()
    }

    /// Appends [`Timestamp::to_rfc3339`]'s text to `out` without allocating: this runs
    /// once per record. The text is laid out on the stack, two digits at a time.
    pub fn write_rfc3339(self, out: &mut BytesMut) {
        let date = civil_from_days(self.secs.div_euclid(86_400));
        let Some((year, month, day)) = date.filter(|(year, _, _)| (0..=9999).contains(year)) else {
            // Signed or five-digit years: rare enough for chrono's general formatter.
            let text = self
                .to_chrono()
                .to_rfc3339_opts(precision(self.nanos), true);
            out.extend_from_slice(text.as_bytes());
            return;
        };
        let second_of_day = self.secs.rem_euclid(86_400) as u32;
        let mut text = *b"0000-00-00T00:00:00.000000000Z";
        put_digits(&mut text[0..4], year as u32);
        put_digits(&mut text[5..7], month);
        put_digits(&mut text[8..10], day);
        put_digits(&mut text[11..13], second_of_day / 3_600);
        put_digits(&mut text[14..16], second_of_day / 60 % 60);
        // A leap second is kept in the nanoseconds (≥ 1e9) of second 59: write it as :60.
        let leap = self.nanos >= 1_000_000_000;
        put_digits(&mut text[17..19], second_of_day % 60 + u32::from(leap));
        let nanos = self.nanos % 1_000_000_000;
        let (digits, fraction) = match precision(nanos) {
            SecondsFormat::Millis => (3, nanos / 1_000_000),
            SecondsFormat::Micros => (6, nanos / 1_000),
            _ => (9, nanos),
        };
        put_digits(&mut text[20..20 + digits], fraction);
        text[20 + digits] = b'Z';
        out.extend_from_slice(&text[..21 + digits]);
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date of year 0 to 9999 (month 1 to
/// 12, day 1 to 31). Howard Hinnant's `days_from_civil` in unsigned arithmetic: years in
/// eras of 400 (one era added, so that the year before year 0 is not negative), months
/// counted from March so that February's length comes last.
fn days_from_civil(year: u32, month: u32, day: u32) -> i64 {
    let year = year + 400 - u32::from(month <= 2);
    let (era, year_of_era) = (year / 400, year % 400);
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    i64::from(era) * 146_097 + i64::from(day_of_era) - 719_468 - 146_097
}

/// The year, month and day of `days` since 1970-01-01 ([`days_from_civil`] undone), for
/// years from -32,800 to 32,800 (82 eras each way); `None` outside.
///
/// Neri and Schneider's algorithm ("Euclidean affine functions and their application to
/// calendar algorithms", 2022): unsigned 32-bit multiplications and shifts only, as this
/// runs for every record written. Days are shifted by 82 eras of 400 years to be positive.
fn civil_from_days(days: i64) -> Option<(i64, u32, u32)> {
    const ERAS: u32 = 82;
    const SHIFT: u32 = 719_468 + 146_097 * ERAS;
    const YEARS: u32 = 400 * ERAS;
    let shifted = u32::try_from(days + i64::from(SHIFT)).ok()?;
    if shifted > 146_097 * 2 * ERAS {
        return None;
    }
    // Century.
    let n1 = 4 * shifted + 3;
    let century = n1 / 146_097;
    let day_of_century = n1 % 146_097 / 4;
    // Year.
    let n2 = 4 * u64::from(day_of_century) + 3;
    let p2 = 2_939_745 * n2;
    let year_of_century = (p2 >> 32) as u32;
    let day_of_year = (p2 as u32) / 2_939_745 / 4;
    let year = 100 * century + year_of_century;
    // Month and day, counted from March.
    let n3 = 2_141 * day_of_year + 197_913;
    let month = n3 >> 16;
    let day = (n3 & 0xffff) / 2_141;
    let january_or_february = day_of_year >= 306;
    Some((
        i64::from(year) - i64::from(YEARS) + i64::from(january_or_february),
        if january_or_february {
            month - 12
        } else {
            month
        },
        day + 1,
    ))
}

/// The number of days in `month` (1 to 12) of `year`.
fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `"00"` to `"99"`, back to back.
const DIGIT_PAIRS: [u8; 200] = {
    let mut pairs = [0u8; 200];
    let mut n = 0;
    while n < 100 {
        pairs[2 * n] = b'0' + (n / 10) as u8;
        pairs[2 * n + 1] = b'0' + (n % 10) as u8;
        n += 1;
    }
    pairs
};

/// Writes `value` into `slot` as exactly `slot.len()` decimal digits, zero-padded (the
/// lowest ones when it has more).
fn put_digits(slot: &mut [u8], mut value: u32) {
    let mut end = slot.len();
    while end >= 2 {
        let pair = 2 * (value % 100) as usize;
        slot[end - 2..end].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        value /= 100;
        end -= 2;
    }
    if end == 1 {
        slot[0] = b'0' + (value % 10) as u8;
    }
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
    // `trim_ascii` is cheaper than `trim`, and the same for any text the fast path takes:
    // those start with a digit and end with a digit or `Z`, neither of them whitespace.
    parse_common(text.trim_ascii().as_bytes()).or_else(|| parse_text_chrono(text))
}

/// The shapes loggers write, parsed by hand: this runs once per record, and chrono's
/// parsers cost more: its RFC 3339 one about 1.3×, its format-string ones (times with a
/// space, `+HHMM` or no offset) about 40×.
///
/// Accepts `YYYY-MM-DD`, `T`/`t`/space, `HH:MM:SS`, optionally `.` and one or more
/// digits (past the ninth they are ignored, as chrono does), then `Z`/`z`, `±HH:MM`,
/// `±HHMM` or nothing (UTC). `None` means "not decided here": a leap second, a field
/// out of range or any other shape goes to [`parse_text_chrono`], so the texts accepted
/// and the instants they give are exactly chrono's.
fn parse_common(text: &[u8]) -> Option<Timestamp> {
    let (head, rest) = text.split_first_chunk::<19>()?;
    let [y1, y2, y3, y4, b'-', mo1, mo2, b'-', d1, d2, separator, h1, h2, b':', mi1, mi2, b':', s1, s2] =
        *head
    else {
        return None;
    };
    if !matches!(separator, b'T' | b't' | b' ') {
        return None;
    }
    let (nanos, rest) = match rest {
        [b'.', fraction @ ..] => fraction_nanos(fraction)?,
        _ => (0, rest),
    };
    // A lowercase `t` is RFC 3339's alone: chrono's `%z` and offset-less formats want
    // `T` or a space, so it rejects `t` with `±HHMM` or no offset; left to it.
    let rfc3339_only = separator == b't';
    let offset = match *rest {
        [] if !rfc3339_only => 0,
        [b'Z' | b'z'] => 0,
        [sign, h1, h2, b':', m1, m2] => offset_seconds(sign, two(h1, h2)?, two(m1, m2)?)?,
        [sign, h1, h2, m1, m2] if !rfc3339_only => {
            offset_seconds(sign, two(h1, h2)?, two(m1, m2)?)?
        }
        _ => return None,
    };
    // The checks chrono's constructors make: month, day (leap years too), hour, minute,
    // and second below 60, leaving leap seconds to its parser.
    let year = two(y1, y2)? * 100 + two(y3, y4)?;
    let (month, day) = (two(mo1, mo2)?, two(d1, d2)?);
    let (hour, minute, second) = (two(h1, h2)?, two(mi1, mi2)?, two(s1, s2)?);
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour >= 24
        || minute >= 60
        || second >= 60
    {
        return None;
    }
    let local =
        days_from_civil(year, month, day) * 86_400 + i64::from(hour * 3_600 + minute * 60 + second);
    Some(Timestamp {
        secs: local - i64::from(offset),
        nanos,
    })
}

/// The value of two ASCII decimal digits.
fn two(tens: u8, ones: u8) -> Option<u32> {
    let (tens, ones) = (tens.wrapping_sub(b'0'), ones.wrapping_sub(b'0'));
    (tens < 10 && ones < 10).then(|| u32::from(tens) * 10 + u32::from(ones))
}

/// The nanoseconds a fraction's leading digits give (at least one; past the ninth they
/// are ignored, as chrono does), and what follows them.
fn fraction_nanos(fraction: &[u8]) -> Option<(u32, &[u8])> {
    /// Nanoseconds per unit of a fraction with this many digits.
    const SCALE: [u32; 10] = [
        0,
        100_000_000,
        10_000_000,
        1_000_000,
        100_000,
        10_000,
        1_000,
        100,
        10,
        1,
    ];
    let (mut digits, mut value) = (0, 0);
    for &byte in fraction {
        let digit = byte.wrapping_sub(b'0');
        if digit >= 10 {
            break;
        }
        if digits < 9 {
            value = value * 10 + u32::from(digit);
        }
        digits += 1;
    }
    (digits > 0).then(|| (value * SCALE[digits.min(9)], &fraction[digits..]))
}

/// `±HH` and `MM` as seconds east of UTC, within what chrono's parsers accept: hours
/// below 24, minutes below 60.
fn offset_seconds(sign: u8, hours: u32, minutes: u32) -> Option<i32> {
    if hours >= 24 || minutes >= 60 {
        return None;
    }
    let seconds = (hours * 3_600 + minutes * 60) as i32;
    match sign {
        b'+' => Some(seconds),
        b'-' => Some(-seconds),
        _ => None,
    }
}

/// [`parse_text`] by chrono alone: the fallback for what [`parse_common`] leaves, and
/// the reference it is tested against.
fn parse_text_chrono(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(Timestamp::from_chrono(time.with_timezone(&Utc)));
    }
    // Common near-misses: a space instead of `T`, no offset, a `+0100` offset.
    for format in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
    ] {
        if let Ok(time) = DateTime::parse_from_str(text, format) {
            return Some(Timestamp::from_chrono(time.with_timezone(&Utc)));
        }
    }
    let without_z = text.strip_suffix('Z').unwrap_or(text);
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(without_z, format) {
            return Some(Timestamp::from_chrono(Utc.from_utc_datetime(&naive)));
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
    Some(Timestamp {
        secs: nanos.div_euclid(1_000_000_000),
        nanos: nanos.rem_euclid(1_000_000_000) as u32,
    })
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
    use proptest::prelude::*;

    use super::*;

    /// Asserts `parse_text` gives chrono's answer for `text`, and returns whether the
    /// hand-written path decided it.
    fn check_against_chrono(text: &str) -> bool {
        assert_eq!(parse_text(text), parse_text_chrono(text), "{text:?}");
        parse_common(text.trim().as_bytes()).is_some()
    }

    const SEPARATORS: [char; 3] = ['T', 't', ' '];
    const OFFSETS: [&str; 10] = [
        "Z", "z", "+00:00", "-00:00", "-23:59", "+23:59", "+24:00", "+05:60", "+0530", "",
    ];

    #[test]
    fn hand_written_path_matches_chrono_on_every_date() {
        let mut decided = 0;
        for year in [0, 1, 1900, 1970, 2000, 2023, 2024, 9999] {
            for month in 0..=13 {
                for day in 0..=32 {
                    for separator in SEPARATORS {
                        for offset in OFFSETS {
                            let text =
                                format!("{year:04}-{month:02}-{day:02}{separator}23:59:59{offset}");
                            let fast = check_against_chrono(&text);
                            // Whatever chrono accepts in these shapes is decided by hand.
                            assert_eq!(fast, parse_text_chrono(&text).is_some(), "{text:?}");
                            decided += usize::from(fast);
                        }
                    }
                }
            }
        }
        // 8 years, 3 of them leap years, each day with 22 accepted separator/offset
        // pairs: 6 offsets with any separator, `+0530` and none with `T` or a space.
        assert_eq!(decided, (8 * 365 + 3) * 22);
    }

    #[test]
    fn hand_written_path_matches_chrono_on_every_time() {
        let fractions: Vec<String> = std::iter::once(String::new())
            .chain((0..=10).map(|digits| format!(".{}", &"98765432101"[..digits])))
            .collect();
        let mut decided = 0;
        for date in ["0000-01-01", "1970-01-01", "2024-02-29", "9999-12-31"] {
            for hour in 0..=24 {
                for (minute, second) in [(0, 0), (59, 59), (30, 60), (60, 0)] {
                    for fraction in &fractions {
                        for separator in SEPARATORS {
                            for offset in OFFSETS {
                                let text = format!(
                                    "{date}{separator}{hour:02}:{minute:02}:{second:02}{fraction}{offset}"
                                );
                                let fast = check_against_chrono(&text);
                                // Leap seconds are left to chrono; the rest it accepts is
                                // decided by hand.
                                let expected = parse_text_chrono(&text).is_some() && second != 60;
                                assert_eq!(fast, expected, "{text:?}");
                                decided += usize::from(fast);
                            }
                        }
                    }
                }
            }
        }
        // 4 dates × 24 hours × 2 minute/second pairs × 11 fractions (not the bare `.`)
        // × 22 accepted separator/offset pairs.
        assert_eq!(decided, 4 * 24 * 2 * 11 * 22);
        // Digits past the ninth are ignored, as chrono does.
        let ten = parse_text("2024-05-01T12:00:00.1234567899Z").map(Timestamp::to_rfc3339);
        assert_eq!(ten.as_deref(), Some("2024-05-01T12:00:00.123456789Z"));
    }

    proptest! {
        #[test]
        fn hand_written_path_matches_chrono_on_near_rfc3339_text(
            text in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,11})?(Z|z|[+-][0-9]{2}:?[0-9]{2})?",
        ) {
            check_against_chrono(&text);
        }

        #[test]
        fn hand_written_path_matches_chrono_on_mostly_valid_fields(
            (year, month, day) in (0_u32..=9999, 0_u32..=13, 0_u32..=32),
            (hour, minute, second) in (0_u32..=24, 0_u32..=60, 0_u32..=60),
            separator in "[Tt ]",
            fraction in "(\\.[0-9]{0,11})?",
            offset in "(Z|z|[+-](0[0-9]|1[0-9]|2[0-5]):?[0-6][0-9])?",
            // `trim` strips all of these, the fast path's `trim_ascii` only some.
            blank in "[ \t\n\r\x0B\x0C\u{85}\u{A0}\u{2002}]{0,2}",
        ) {
            let text = format!(
                "{blank}{year:04}-{month:02}-{day:02}{separator}{hour:02}:{minute:02}:{second:02}{fraction}{offset}{blank}"
            );
            check_against_chrono(&text);
        }
    }

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
                assert_eq!(Timestamp::from_chrono(time).to_rfc3339(), chrono_text(time));
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
            assert_eq!(Timestamp::from_chrono(time).to_rfc3339(), chrono_text(time));
        }
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|day| day.and_hms_nano_opt(23, 59, 59, 1_500_000_000))
            .expect("a leap second");
        let leap = Utc.from_utc_datetime(&leap);
        assert_eq!(
            Timestamp::from_chrono(leap).to_rfc3339(),
            "2016-12-31T23:59:60.500Z"
        );
        assert_eq!(Timestamp::from_chrono(leap).to_rfc3339(), chrono_text(leap));
    }

    #[test]
    fn counts_and_differences_are_chrono_s() {
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|day| day.and_hms_nano_opt(23, 59, 59, 1_500_000_000))
            .map(|leap| Utc.from_utc_datetime(&leap))
            .expect("a leap second");
        let mut times = vec![leap, DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC];
        // From before 1677 to after 2262 (beyond i64 nanoseconds), both signs.
        let mut seconds: i64 = -12_000_000_000;
        let mut nanos: u32 = 7;
        while seconds < 12_000_000_000 {
            times.push(
                Utc.timestamp_opt(seconds, nanos)
                    .single()
                    .expect("in range"),
            );
            seconds += 98_765_431;
            nanos = nanos.wrapping_mul(48_271).wrapping_add(11) % 1_000_000_000;
        }
        for &time in &times {
            let ours = Timestamp::from_chrono(time);
            assert_eq!(ours.to_chrono(), time);
            assert_eq!(ours.millis(), time.timestamp_millis(), "{time}");
            assert_eq!(ours.micros(), time.timestamp_micros(), "{time}");
            let chrono_nanos = time
                .timestamp_nanos_opt()
                .unwrap_or(if time.timestamp() < 0 {
                    i64::MIN
                } else {
                    i64::MAX
                });
            assert_eq!(ours.nanos_saturating(), chrono_nanos, "{time}");
        }
        for pair in times.windows(2) {
            for (later, earlier) in [(pair[0], pair[1]), (pair[1], pair[0])] {
                let chrono_delta = (later - earlier).to_std().unwrap_or(Duration::ZERO);
                let ours = Timestamp::from_chrono(later)
                    .saturating_duration_since(Timestamp::from_chrono(earlier));
                assert_eq!(ours, chrono_delta, "{later} - {earlier}");
            }
        }
        // Civil dates both ways, over the whole range written as text and beyond.
        assert_eq!(civil_from_days(-12_700_000), None);
        assert_eq!(civil_from_days(12_000_000), None);
        for days in (-11_000_000..11_000_000).step_by(997).chain(-1_000..1_000) {
            let (year, month, day) = civil_from_days(days).expect("in range");
            let date = chrono::NaiveDate::from_num_days_from_ce_opt(days as i32 + 719_163)
                .expect("in range");
            use chrono::Datelike;
            assert_eq!(
                (year, month, day),
                (i64::from(date.year()), date.month(), date.day())
            );
            if (0..=9999).contains(&year) {
                assert_eq!(days_from_civil(year as u32, month, day), days);
            }
        }
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
