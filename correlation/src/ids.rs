//! The identities a request carries: trace id, span id and request id.
//!
//! Trace and span ids are never zero (the W3C and OpenTelemetry "invalid" value), so the
//! types hold a `NonZero` integer and an `Option<TraceId>` costs nothing extra. They are
//! written as lower-case hex, the form W3C Trace Context, OpenTelemetry, Jaeger and the
//! ECS fields `trace.id` / `span.id` use.
//!
//! ```
//! use hindsight_correlation::ids::{RequestId, SpanId, TraceId};
//!
//! let trace: TraceId = "4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap();
//! assert_eq!(trace.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
//! // A 64-bit id (Zipkin, Jaeger, Datadog) is the low half of a 128-bit one.
//! assert_eq!(TraceId::from_u64(255).unwrap().to_string(), "000000000000000000000000000000ff");
//! assert!("00000000000000000000000000000000".parse::<TraceId>().is_err());
//!
//! let span = SpanId::from_hex("00f067aa0ba902b7").unwrap();
//! assert_eq!(span.to_hex().as_str(), "00f067aa0ba902b7");
//!
//! let request = RequestId::new("req-7f3a").unwrap();
//! assert_eq!(request.as_str(), "req-7f3a");
//! assert!(RequestId::new("has space").is_err());
//! assert!(RequestId::new(&"x".repeat(129)).is_err());
//! ```

use std::borrow::Borrow;
use std::fmt;
use std::num::{NonZeroU128, NonZeroU64};
use std::str::FromStr;

use rand::RngCore;

/// Why text is not a trace or span id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The text has the wrong number of characters.
    #[error("wrong length: {found} characters")]
    Length {
        /// The number of bytes found.
        found: usize,
    },
    /// A character is not a hex digit (or, for decimal ids, not a decimal digit).
    #[error("not a hex digit")]
    NotHex,
    /// An upper-case hex digit where the format asks for lower case (W3C, B3).
    #[error("upper-case hex where lower case is required")]
    UpperCase,
    /// The all-zero id, which every format reserves as "invalid".
    #[error("all-zero id")]
    Zero,
    /// A decimal id that is not a number or does not fit in 64 bits.
    #[error("not a decimal 64-bit id")]
    NotDecimal,
}

/// Which hex digits a parser accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    /// Lower case only, as W3C Trace Context and B3 require.
    Lower,
    /// Either case, as Jaeger clients and most log libraries accept.
    Any,
}

/// Parses `min..=max` (at most 32) hex digits into an integer, left-padded with zeros.
///
/// Ids of 16 and 32 digits, the ones every log record carries, are read 16 digits at a
/// time (SSE2) or 8 (SWAR) by [`parse_hex_words`]; other lengths, and any text it
/// rejects, go through the byte-at-a-time [`parse_hex_scalar`], which also names the error.
pub(crate) fn parse_hex(text: &str, min: usize, max: usize, case: Case) -> Result<u128, IdError> {
    let bytes = text.as_bytes();
    if bytes.len() % 8 == 0 && (min..=max).contains(&bytes.len()) {
        if let Some(value) = parse_hex_words(bytes, case) {
            return Ok(value);
        }
    }
    parse_hex_scalar(bytes, min, max, case)
}

/// The value of `bytes` (a multiple of 8 long) if they are all hex digits `case` accepts:
/// ids of 16 and 32 digits 16 at a time where SSE2 is there (every x86-64 CPU), else
/// [`parse_hex_swar`]. (The `ids` bench: 57 % less time for a span id than the SWAR's
/// two words, 62 % less for a trace id.)
fn parse_hex_words(bytes: &[u8], case: Case) -> Option<u128> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        if let Ok(digits) = <&[u8; 16]>::try_from(bytes) {
            return sse2::hex16(digits, case).map(u128::from);
        }
        if let Ok(digits) = <&[u8; 32]>::try_from(bytes) {
            let high = sse2::hex16(digits[..16].try_into().ok()?, case)?;
            let low = sse2::hex16(digits[16..].try_into().ok()?, case)?;
            return Some(u128::from(high) << 64 | u128::from(low));
        }
    }
    parse_hex_swar(bytes, case)
}

/// [`parse_hex_words`] 8 digits at a time, in a `u64`.
fn parse_hex_swar(bytes: &[u8], case: Case) -> Option<u128> {
    bytes.chunks_exact(8).try_fold(0u128, |value, chunk| {
        let digits = hex_word(u64::from_be_bytes(chunk.try_into().ok()?), case)?;
        Some(value << 32 | u128::from(digits))
    })
}

/// `byte` in each of a word's 8 bytes, for the SWAR tests below.
const fn splat(byte: u8) -> u64 {
    u64::from_ne_bytes([byte; 8])
}

/// The top bit of each byte of `word` that is at least `c` (1 to 0x80), for a word whose
/// bytes are all below 0x80: adding `0x80 - c` to such a byte sets its top bit exactly
/// when it is at least `c`, and never carries into the next byte.
fn at_least(word: u64, c: u8) -> u64 {
    (word + splat(0x80 - c)) & splat(0x80)
}

/// The 8 hex digits in `word` (first digit in the top byte) as 32 bits, or `None` if a
/// byte is not a hex digit `case` accepts. SWAR: all 8 bytes are tested at once
/// ([`at_least`]). Digits are `0x30..=0x39`; `| 0x20` maps `A..=F` onto `a..=f`
/// (`0x61..=0x66`) and nothing else onto that range. A digit's value is its low nibble,
/// plus 9 for letters (bit 6 set).
fn hex_word(word: u64, case: Case) -> Option<u32> {
    if word & splat(0x80) != 0 {
        return None;
    }
    let letters = match case {
        Case::Any => word | splat(0x20),
        Case::Lower => word,
    };
    let digit = at_least(word, b'0') & !at_least(word, b'9' + 1);
    let letter = at_least(letters, b'a') & !at_least(letters, b'f' + 1);
    if digit | letter != splat(0x80) {
        return None;
    }
    let nibbles = (word & splat(0x0f)) + 9 * ((word >> 6) & splat(0x01));
    // Pack: 8 nibbles in 8 bytes -> 4 bytes in 4 u16s -> 2 u16s in 2 u32s -> one u32.
    let pairs = (nibbles | nibbles >> 4) & 0x00ff_00ff_00ff_00ff;
    let quads = (pairs | pairs >> 8) & 0x0000_ffff_0000_ffff;
    Some((quads | quads >> 16) as u32)
}

/// Sixteen hex digits at a time with SSE2, which every x86-64 CPU has.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi8, _mm_and_si128, _mm_cmpgt_epi8, _mm_cmplt_epi8, _mm_cvtsi128_si64,
        _mm_cvtsi64_si128, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_packus_epi16,
        _mm_set1_epi16, _mm_set1_epi8, _mm_slli_epi16, _mm_srli_epi16, _mm_storeu_si128,
        _mm_unpacklo_epi8,
    };

    use super::Case;

    /// The 16 hex digits of `digits` (the first the most significant) as 64 bits, or
    /// `None` if a byte is not a hex digit `case` accepts. The tests are those of
    /// `hex_word`, on 16 bytes at once; the comparisons are signed, so bytes of 0x80 and
    /// above, negative, fall in neither range.
    pub(super) fn hex16(digits: &[u8; 16], case: Case) -> Option<u64> {
        // SAFETY: SSE2 is part of the x86-64 baseline, so these intrinsics are always
        // available; the unaligned load reads exactly the 16 bytes of `digits`.
        unsafe {
            let at_least = |word, c: u8| _mm_cmpgt_epi8(word, _mm_set1_epi8(c as i8 - 1));
            let below = |word, c: u8| _mm_cmplt_epi8(word, _mm_set1_epi8(c as i8));
            let word = _mm_loadu_si128(digits.as_ptr().cast::<__m128i>());
            let letters = match case {
                Case::Any => _mm_or_si128(word, _mm_set1_epi8(0x20)),
                Case::Lower => word,
            };
            let digit = _mm_and_si128(at_least(word, b'0'), below(word, b'9' + 1));
            let letter = _mm_and_si128(at_least(letters, b'a'), below(letters, b'f' + 1));
            if _mm_movemask_epi8(_mm_or_si128(digit, letter)) != 0xffff {
                return None;
            }
            let nibbles = _mm_add_epi8(
                _mm_and_si128(word, _mm_set1_epi8(0x0f)),
                _mm_and_si128(letter, _mm_set1_epi8(9)),
            );
            // Each 16-bit lane holds two digits, the first in its low byte: make that byte
            // `first << 4 | second`, then pack the lanes' low bytes into 8 bytes.
            let pairs = _mm_and_si128(
                _mm_or_si128(_mm_slli_epi16(nibbles, 4), _mm_srli_epi16(nibbles, 8)),
                _mm_set1_epi16(0xff),
            );
            let packed = _mm_packus_epi16(pairs, pairs);
            // The first pair is the lowest byte: big-endian order makes it the highest.
            Some((_mm_cvtsi128_si64(packed) as u64).swap_bytes())
        }
    }

    /// The 16 lower-case hex digits of `value`, most significant first: each byte's high
    /// and low nibble side by side, then `'0'` added to each, and `'a' - '0' - 10` more
    /// to those above 9.
    pub(super) fn hex_digits16(value: u64) -> [u8; 16] {
        let mut out = [0u8; 16];
        // SAFETY: SSE2 is part of the x86-64 baseline, so these intrinsics are always
        // available; the unaligned store writes exactly the 16 bytes of `out`.
        unsafe {
            // The most significant byte first, in the lowest lane.
            let bytes = _mm_cvtsi64_si128(value.swap_bytes() as i64);
            let low_nibbles = _mm_set1_epi8(0x0f);
            let high = _mm_and_si128(_mm_srli_epi16(bytes, 4), low_nibbles);
            let low = _mm_and_si128(bytes, low_nibbles);
            let nibbles = _mm_unpacklo_epi8(high, low);
            let letters = _mm_and_si128(
                _mm_cmpgt_epi8(nibbles, _mm_set1_epi8(9)),
                _mm_set1_epi8((b'a' - b'0' - 10) as i8),
            );
            let digits = _mm_add_epi8(_mm_add_epi8(nibbles, _mm_set1_epi8(b'0' as i8)), letters);
            _mm_storeu_si128(out.as_mut_ptr().cast::<__m128i>(), digits);
        }
        out
    }
}

/// [`parse_hex`] a byte at a time: the fallback, and the reference the fast path is tested against.
fn parse_hex_scalar(bytes: &[u8], min: usize, max: usize, case: Case) -> Result<u128, IdError> {
    if bytes.len() < min || bytes.len() > max {
        return Err(IdError::Length { found: bytes.len() });
    }
    let mut value: u128 = 0;
    for &byte in bytes {
        let digit = match byte {
            b'0'..=b'9' => byte - b'0',
            b'a'..=b'f' => byte - b'a' + 10,
            b'A'..=b'F' if case == Case::Any => byte - b'A' + 10,
            b'A'..=b'F' => return Err(IdError::UpperCase),
            _ => return Err(IdError::NotHex),
        };
        value = (value << 4) | u128::from(digit);
    }
    Ok(value)
}

/// Writes `value` as `N` (a multiple of 8, at most 32) lower-case hex digits: 16 at a
/// time where SSE2 is there (ids of 16 and 32 digits), else 8 at a time ([`hex_digits`]).
fn encode_hex<const N: usize>(value: u128) -> Hex<N> {
    let mut out = [b'0'; N];
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if N % 16 == 0 {
        for (at, slot) in out.chunks_exact_mut(16).enumerate() {
            let shift = 4 * (N - 16 * (at + 1));
            slot.copy_from_slice(&sse2::hex_digits16((value >> shift) as u64));
        }
        return Hex(out);
    }
    for (at, slot) in out.chunks_exact_mut(8).enumerate() {
        let shift = 4 * (N - 8 * (at + 1));
        slot.copy_from_slice(&hex_digits((value >> shift) as u32));
    }
    Hex(out)
}

/// The 8 lower-case hex digits of `value`, most significant first. SWAR: the nibbles are
/// spread one to a byte (the lowest in the lowest byte, so that big-endian order puts the
/// most significant first), then each byte gets `'0'`, plus `'a' - '0' - 10` if above 9.
fn hex_digits(value: u32) -> [u8; 8] {
    let mut x = u64::from(value);
    x = (x | x << 16) & 0x0000_ffff_0000_ffff;
    x = (x | x << 8) & 0x00ff_00ff_00ff_00ff;
    x = (x | x << 4) & splat(0x0f);
    // A nibble above 9 carries into bit 4 once 6 is added; no byte overflows.
    let letters = ((x + splat(6)) >> 4) & splat(0x01);
    (x + splat(b'0') + letters * u64::from(b'a' - b'0' - 10)).to_be_bytes()
}

/// Whether every byte is printable ASCII other than space (`0x21..=0x7e`), as
/// [`u8::is_ascii_graphic`] says, eight bytes at a time: this runs on every request id of
/// every record.
fn all_graphic(bytes: &[u8]) -> bool {
    let graphic = |word: u64| {
        word & splat(0x80) == 0 && at_least(word, 0x21) & !at_least(word, 0x7f) == splat(0x80)
    };
    let word_at = |at: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(word)
    };
    if bytes.len() < 8 {
        return bytes.iter().all(u8::is_ascii_graphic);
    }
    // Whole words, then the last eight bytes (overlapping what was checked already).
    (0..bytes.len() / 8).all(|n| graphic(word_at(8 * n))) && graphic(word_at(bytes.len() - 8))
}

/// An id written as lower-case hex on the stack: `Hex<32>` for a trace id, `Hex<16>` for a span id.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hex<const N: usize>([u8; N]);

impl<const N: usize> Hex<N> {
    /// The hex digits as bytes (ASCII).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The hex digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl<const N: usize> std::ops::Deref for Hex<N> {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> fmt::Display for Hex<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> fmt::Debug for Hex<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// A 16-byte trace id, never all zeros.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(NonZeroU128);

impl TraceId {
    /// The id with this big-endian value; `None` for zero.
    pub const fn from_u128(value: u128) -> Option<TraceId> {
        match NonZeroU128::new(value) {
            Some(value) => Some(TraceId(value)),
            None => None,
        }
    }

    /// A 64-bit id (Zipkin, Jaeger, Datadog) as the low half of a 128-bit one; `None` for zero.
    pub const fn from_u64(value: u64) -> Option<TraceId> {
        TraceId::from_u128(value as u128)
    }

    /// The id from its 16 bytes (as OpenTelemetry's `TraceId::to_bytes` gives them).
    pub const fn from_bytes(bytes: [u8; 16]) -> Option<TraceId> {
        TraceId::from_u128(u128::from_be_bytes(bytes))
    }

    /// The 16 bytes, big-endian (as OpenTelemetry's `TraceId::from_bytes` takes them).
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0.get().to_be_bytes()
    }

    /// The id as a number.
    pub const fn to_u128(self) -> u128 {
        self.0.get()
    }

    /// A random id from `rng` (W3C recommends random trace ids; this never returns zero).
    pub fn random<R: RngCore + ?Sized>(rng: &mut R) -> TraceId {
        loop {
            let mut bytes = [0u8; 16];
            rng.fill_bytes(&mut bytes);
            if let Some(id) = TraceId::from_bytes(bytes) {
                return id;
            }
        }
    }

    /// Parses exactly 32 hex digits, either case.
    pub fn from_hex(text: &str) -> Result<TraceId, IdError> {
        TraceId::parse(text, 32, 32, Case::Any)
    }

    /// Parses 1 to 32 hex digits, either case, left-padding with zeros (Jaeger drops
    /// leading zeros; a 16-digit id is a 64-bit one).
    pub fn from_short_hex(text: &str) -> Result<TraceId, IdError> {
        TraceId::parse(text, 1, 32, Case::Any)
    }

    /// Parses a Datadog-style decimal 64-bit id (`dd.trace_id`).
    pub fn from_decimal(text: &str) -> Result<TraceId, IdError> {
        TraceId::from_u64(parse_decimal(text)?).ok_or(IdError::Zero)
    }

    pub(crate) fn parse(
        text: &str,
        min: usize,
        max: usize,
        case: Case,
    ) -> Result<TraceId, IdError> {
        TraceId::from_u128(parse_hex(text, min, max, case)?).ok_or(IdError::Zero)
    }

    /// The id as 32 lower-case hex digits, without allocating.
    pub fn to_hex(self) -> Hex<32> {
        encode_hex(self.0.get())
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({})", self.to_hex().as_str())
    }
}

impl FromStr for TraceId {
    type Err = IdError;
    /// Exactly 32 hex digits, either case (see [`TraceId::from_hex`]).
    fn from_str(text: &str) -> Result<TraceId, IdError> {
        TraceId::from_hex(text)
    }
}

/// An 8-byte span id, never all zeros.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(NonZeroU64);

impl SpanId {
    /// The id with this value; `None` for zero.
    pub const fn from_u64(value: u64) -> Option<SpanId> {
        match NonZeroU64::new(value) {
            Some(value) => Some(SpanId(value)),
            None => None,
        }
    }

    /// The id from its 8 bytes (as OpenTelemetry's `SpanId::to_bytes` gives them).
    pub const fn from_bytes(bytes: [u8; 8]) -> Option<SpanId> {
        SpanId::from_u64(u64::from_be_bytes(bytes))
    }

    /// The 8 bytes, big-endian.
    pub const fn to_bytes(self) -> [u8; 8] {
        self.0.get().to_be_bytes()
    }

    /// The id as a number.
    pub const fn to_u64(self) -> u64 {
        self.0.get()
    }

    /// A random id from `rng`; never zero.
    pub fn random<R: RngCore + ?Sized>(rng: &mut R) -> SpanId {
        loop {
            if let Some(id) = SpanId::from_u64(rng.next_u64()) {
                return id;
            }
        }
    }

    /// Parses exactly 16 hex digits, either case.
    pub fn from_hex(text: &str) -> Result<SpanId, IdError> {
        SpanId::parse(text, 16, 16, Case::Any)
    }

    /// Parses 1 to 16 hex digits, either case, left-padding with zeros (Jaeger).
    pub fn from_short_hex(text: &str) -> Result<SpanId, IdError> {
        SpanId::parse(text, 1, 16, Case::Any)
    }

    /// Parses a Datadog-style decimal 64-bit id (`dd.span_id`).
    pub fn from_decimal(text: &str) -> Result<SpanId, IdError> {
        SpanId::from_u64(parse_decimal(text)?).ok_or(IdError::Zero)
    }

    pub(crate) fn parse(text: &str, min: usize, max: usize, case: Case) -> Result<SpanId, IdError> {
        // At most 16 digits, so the value fits in 64 bits.
        SpanId::from_u64(parse_hex(text, min, max.min(16), case)? as u64).ok_or(IdError::Zero)
    }

    /// The id as 16 lower-case hex digits, without allocating.
    pub fn to_hex(self) -> Hex<16> {
        encode_hex(u128::from(self.0.get()))
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({})", self.to_hex().as_str())
    }
}

impl FromStr for SpanId {
    type Err = IdError;
    /// Exactly 16 hex digits, either case (see [`SpanId::from_hex`]).
    fn from_str(text: &str) -> Result<SpanId, IdError> {
        SpanId::from_hex(text)
    }
}

/// 1 to 20 decimal digits that fit in a `u64`.
fn parse_decimal(text: &str) -> Result<u64, IdError> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(IdError::NotDecimal);
    }
    text.parse().map_err(|_| IdError::NotDecimal)
}

/// Why text is not a usable request id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestIdError {
    /// The id is empty.
    #[error("empty request id")]
    Empty,
    /// Longer than [`RequestId::MAX_LEN`] bytes.
    #[error("request id of {len} bytes is longer than {max}", max = RequestId::MAX_LEN)]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A byte outside visible ASCII (`!` to `~`): spaces, controls, non-ASCII.
    #[error("request id contains a character outside visible ASCII")]
    InvalidChar,
}

/// An opaque request id (`X-Request-ID`, a log record's `request_id`): 1 to
/// [`RequestId::MAX_LEN`] visible ASCII characters.
///
/// The bound keeps per-request state (fingers-crossed buffers, the request clock) small
/// and keeps header values safe to forward; the sidecar proxy replaces an id that breaks
/// it instead of propagating it. Compared byte for byte: `ABC` and `abc` are different ids.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(Box<str>);

impl RequestId {
    /// The longest accepted id, in bytes (a UUID is 36; a W3C traceparent is 55).
    pub const MAX_LEN: usize = 128;

    /// Checks `text` and copies it into a request id.
    pub fn new(text: &str) -> Result<RequestId, RequestIdError> {
        RequestId::validate(text)?;
        Ok(RequestId(text.into()))
    }

    /// Checks `text` without copying it.
    pub fn validate(text: &str) -> Result<(), RequestIdError> {
        if text.is_empty() {
            return Err(RequestIdError::Empty);
        }
        if text.len() > RequestId::MAX_LEN {
            return Err(RequestIdError::TooLong { len: text.len() });
        }
        if !all_graphic(text.as_bytes()) {
            return Err(RequestIdError::InvalidChar);
        }
        Ok(())
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({:?})", &*self.0)
    }
}

impl FromStr for RequestId {
    type Err = RequestIdError;
    fn from_str(text: &str) -> Result<RequestId, RequestIdError> {
        RequestId::new(text)
    }
}

impl TryFrom<String> for RequestId {
    type Error = RequestIdError;
    /// Takes the string without copying it when it is valid.
    fn try_from(text: String) -> Result<RequestId, RequestIdError> {
        RequestId::validate(&text)?;
        Ok(RequestId(text.into_boxed_str()))
    }
}

impl AsRef<str> for RequestId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for RequestId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<RequestId> for String {
    fn from(id: RequestId) -> String {
        id.0.into()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::{
        prop, prop_assert_eq, prop_oneof, proptest, Just, ProptestConfig, Strategy,
    };

    use super::*;

    #[test]
    fn hex_is_written_as_format_writes_it() {
        let mut value: u128 = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
        for round in 0..2_000 {
            let word = value as u32;
            assert_eq!(hex_digits(word), *format!("{word:08x}").as_bytes());
            assert_eq!(encode_hex::<32>(value).as_str(), format!("{value:032x}"));
            let low = value as u64;
            assert_eq!(
                encode_hex::<16>(u128::from(low)).as_str(),
                format!("{low:016x}"),
                "round {round}"
            );
            // 24 digits are written 8 at a time everywhere: the path other CPUs take.
            let low_96 = value & ((1 << 96) - 1);
            assert_eq!(encode_hex::<24>(low_96).as_str(), format!("{low_96:024x}"));
            value = value
                .wrapping_mul(0x2545_f491_4f6c_dd1d)
                .wrapping_add(round);
        }
        for edge in [0, 9, 10, 15, 16, u128::from(u32::MAX), u128::MAX] {
            assert_eq!(encode_hex::<32>(edge).as_str(), format!("{edge:032x}"));
        }
    }

    #[test]
    fn graphic_bytes_are_found_as_is_ascii_graphic_finds_them() {
        // Every byte value at every place of ids from 0 to 20 bytes long.
        for len in 0..=20 {
            for at in 0..len {
                for byte in 0..=u8::MAX {
                    let mut id = vec![b'r'; len];
                    id[at] = byte;
                    assert_eq!(
                        all_graphic(&id),
                        id.iter().all(u8::is_ascii_graphic),
                        "{id:?}"
                    );
                }
            }
            assert!(all_graphic(&vec![b'~'; len]));
        }
    }

    #[test]
    fn hex_words_agree_with_the_scalar_loop_for_every_byte_at_every_position() {
        let trace = b"4bF92f3577B34dA6a3ce929D0E0E4736";
        for id in [&trace[..], &trace[..16], &trace[..24]] {
            let len = id.len();
            for case in [Case::Any, Case::Lower] {
                assert_eq!(
                    parse_hex_words(id, case),
                    parse_hex_scalar(id, len, len, case).ok()
                );
                for position in 0..len {
                    for byte in 0..=u8::MAX {
                        let mut bytes = id.to_vec();
                        bytes[position] = byte;
                        let scalar = parse_hex_scalar(&bytes, len, len, case);
                        let context = format!("{case:?} byte {byte:#04x} at {position} of {len}");
                        assert_eq!(parse_hex_words(&bytes, case), scalar.ok(), "{context}");
                        assert_eq!(parse_hex_swar(&bytes, case), scalar.ok(), "{context}");
                        if let Ok(text) = std::str::from_utf8(&bytes) {
                            assert_eq!(parse_hex(text, len, len, case), scalar, "{text:?}");
                        }
                    }
                }
            }
        }
    }

    /// Hex digits most of the time, else a byte next to a hex range, one that `| 0x20`
    /// or dropping the top bit would turn into a digit, or a multi-byte character.
    fn hexish_text() -> impl Strategy<Value = String> {
        let char = prop_oneof![
            12 => prop::sample::select(b"0123456789abcdefABCDEF".map(char::from).to_vec()),
            1 => prop::sample::select(vec!['/', ':', '@', 'G', '`', 'g', 'z', ' ', '\x10', '\x19', '\x7f', '\u{b0}', '\u{e9}']),
        ];
        let len = prop_oneof![0usize..40, prop::sample::select(vec![8, 16, 24, 32])];
        len.prop_flat_map(move |len| prop::collection::vec(char.clone(), len))
            .prop_map(String::from_iter)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn parse_hex_agrees_with_the_scalar_loop(
            text in hexish_text(),
            (min, max) in (0usize..=32).prop_flat_map(|min| (Just(min), min..=32)),
            lower: bool,
        ) {
            let case = if lower { Case::Lower } else { Case::Any };
            prop_assert_eq!(
                parse_hex(&text, min, max, case),
                parse_hex_scalar(text.as_bytes(), min, max, case)
            );
        }
    }

    #[test]
    fn trace_id_parses_and_formats_lower_case() {
        let id = TraceId::from_hex("4BF92F3577B34DA6A3CE929D0E0E4736").unwrap();
        assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            format!("{id:?}"),
            "TraceId(4bf92f3577b34da6a3ce929d0e0e4736)"
        );
        assert_eq!(TraceId::from_bytes(id.to_bytes()), Some(id));
        assert_eq!(TraceId::from_hex("4bf9"), Err(IdError::Length { found: 4 }));
        assert_eq!(TraceId::from_hex(&"g".repeat(32)), Err(IdError::NotHex));
        assert_eq!(TraceId::from_hex(&"0".repeat(32)), Err(IdError::Zero));
        assert_eq!(
            TraceId::from_hex("+bf92f3577b34da6a3ce929d0e0e4736"),
            Err(IdError::NotHex)
        );
        assert_eq!(
            TraceId::parse("4BF92F3577B34DA6A3CE929D0E0E4736", 32, 32, Case::Lower),
            Err(IdError::UpperCase)
        );
    }

    #[test]
    fn short_and_decimal_ids_are_zero_padded() {
        assert_eq!(
            TraceId::from_short_hex("abc").unwrap().to_string(),
            format!("{:0>32}", "abc")
        );
        assert_eq!(
            SpanId::from_short_hex("1").unwrap().to_string(),
            "0000000000000001"
        );
        assert!(TraceId::from_short_hex(&"1".repeat(33)).is_err());
        assert!(SpanId::from_short_hex(&"1".repeat(17)).is_err());
        // Datadog writes its 64-bit ids in decimal.
        assert_eq!(
            TraceId::from_decimal("18446744073709551615")
                .unwrap()
                .to_string(),
            "0000000000000000ffffffffffffffff"
        );
        assert_eq!(
            SpanId::from_decimal("255").unwrap().to_string(),
            "00000000000000ff"
        );
        assert_eq!(
            TraceId::from_decimal("18446744073709551616"),
            Err(IdError::NotDecimal)
        );
        assert_eq!(TraceId::from_decimal("-1"), Err(IdError::NotDecimal));
        assert_eq!(TraceId::from_decimal("0"), Err(IdError::Zero));
        assert_eq!(TraceId::from_decimal(""), Err(IdError::NotDecimal));
    }

    #[test]
    fn random_ids_are_never_zero() {
        /// Yields zeros first, to exercise the retry.
        struct ZerosThenOnes(u32);
        impl RngCore for ZerosThenOnes {
            fn next_u32(&mut self) -> u32 {
                self.next_u64() as u32
            }
            fn next_u64(&mut self) -> u64 {
                self.0 += 1;
                if self.0 < 3 {
                    0
                } else {
                    u64::MAX
                }
            }
            fn fill_bytes(&mut self, dest: &mut [u8]) {
                let byte = if self.next_u64() == 0 { 0 } else { 1 };
                dest.fill(byte);
            }
        }
        assert_eq!(SpanId::random(&mut ZerosThenOnes(0)).to_u64(), u64::MAX);
        assert_eq!(TraceId::random(&mut ZerosThenOnes(0)).to_bytes(), [1; 16]);
    }

    #[test]
    fn request_id_bounds() {
        assert!(RequestId::new("0190c0d4-7e1a-7c3e-9f00-2b8a1e0c9d11").is_ok());
        assert_eq!(RequestId::new(""), Err(RequestIdError::Empty));
        assert_eq!(
            RequestId::new(&"a".repeat(128)).map(|id| id.as_str().len()),
            Ok(128)
        );
        assert_eq!(
            RequestId::new(&"a".repeat(129)),
            Err(RequestIdError::TooLong { len: 129 })
        );
        for bad in ["a b", "a\tb", "a\nb", "é", "a\u{7f}"] {
            assert_eq!(
                RequestId::new(bad),
                Err(RequestIdError::InvalidChar),
                "{bad:?}"
            );
        }
        let id = RequestId::try_from(String::from("r-1")).unwrap();
        assert_eq!(id.to_string(), "r-1");
        assert_eq!(format!("{id:?}"), "RequestId(\"r-1\")");
        let set: std::collections::HashSet<RequestId> = [id].into();
        assert!(set.contains("r-1"));
    }
}
