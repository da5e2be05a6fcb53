//! A validating JSON lexer over one line of text, for [`crate::scan`].
//!
//! The scan reads a handful of fields out of every record and must reject whatever is
//! not JSON, so it needs a full grammar check but no tree. serde_json did this job
//! through its visitor API at about a third of the agent's CPU; this lexer does the same
//! checks directly on the bytes:
//!
//! - strings are searched sixteen bytes at a time (SSE2 on x86-64, eight elsewhere) for
//!   a quote, a backslash or a control character, and borrowed from the line unless they
//!   hold escapes; a key's search also notes a `.`, so only dotted keys are split into
//!   path segments;
//! - values nobody asked for are skipped without recursion, so nesting depth costs no
//!   stack (the containers being skipped are tracked in a bit stack);
//! - the text is already known to be UTF-8 (the caller checks the whole line first),
//!   so only the JSON grammar is checked here.
//!
//! Grammar: RFC 8259. A `\u` escape needs four hex digits; a lone surrogate is
//! grammatical JSON, and when such a string must be decoded it reads as U+FFFD.

use std::borrow::Cow;

/// The line is not valid JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Invalid;

/// A JSON number as written, with whether it is an integer (no fraction, no exponent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Number<'a> {
    pub(crate) text: &'a str,
    pub(crate) integer: bool,
}

/// An object key as read by [`Lexer::key`].
pub(crate) struct Key<'a> {
    pub(crate) text: Cow<'a, str>,
    /// The text holds a `.` (a path).
    pub(crate) dotted: bool,
    /// The key's first eight bytes of the line as a little-endian word (bytes past its
    /// end included, unless the line ends first: then zeros), when the text is borrowed
    /// from the line; `None` for a decoded key.
    pub(crate) head: Option<u64>,
}

/// Where a string's plain text stops: see [`Lexer::string_stop`].
struct Stop {
    end: usize,
    dotted: bool,
    /// The eight bytes of the line from where the search began, zero-padded at its end.
    head: u64,
}

/// A cursor over one line of JSON text.
pub(crate) struct Lexer<'a> {
    text: &'a str,
    at: usize,
    /// A raw newline was skipped as whitespace.
    saw_newline: bool,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The bytes of `word` (high bit set in each) that are below `limit`; exact for the
/// lowest such byte, and a byte flagged wrongly always has a rightly flagged one below
/// it (a borrow only moves up). [`Lexer::string_stop`] relies on both.
fn bytes_below(word: u64, limit: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(limit)) & !word & HIGHS
}

/// The bytes of `word` equal to `byte`, with the same lowest-byte guarantee.
fn bytes_equal(word: u64, byte: u8) -> u64 {
    bytes_below(word ^ (ONES * u64::from(byte)), 1)
}

/// Up to the first eight bytes of `bytes` as a little-endian word, zero-padded.
fn head_of(bytes: &[u8]) -> u64 {
    let mut head = [0u8; 8];
    let len = bytes.len().min(8);
    head[..len].copy_from_slice(&bytes[..len]);
    u64::from_le_bytes(head)
}

/// Sixteen bytes at a time with SSE2, which every x86-64 CPU has.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };

    /// A bit per byte of `chunk` (lowest bit first) that is a quote, a backslash or a
    /// control character (below 0x20), and a bit per `.`.
    pub(super) fn string_stops(chunk: &[u8]) -> (u32, u32) {
        assert_eq!(chunk.len(), 16);
        // SAFETY: SSE2 is part of the x86-64 baseline, so these intrinsics are always
        // available; the unaligned load reads exactly the 16 bytes of `chunk`.
        unsafe {
            let word = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
            let quote = _mm_cmpeq_epi8(word, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(word, _mm_set1_epi8(b'\\' as i8));
            // Unsigned `min(byte, 0x1f) == byte` is `byte <= 0x1f`.
            let control = _mm_cmpeq_epi8(_mm_min_epu8(word, _mm_set1_epi8(0x1f)), word);
            let dot = _mm_cmpeq_epi8(word, _mm_set1_epi8(b'.' as i8));
            let stops = _mm_or_si128(_mm_or_si128(quote, backslash), control);
            (
                _mm_movemask_epi8(stops) as u32,
                _mm_movemask_epi8(dot) as u32,
            )
        }
    }
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(text: &'a str) -> Lexer<'a> {
        Lexer {
            text,
            at: 0,
            saw_newline: false,
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// The next byte, without consuming it.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    /// Skips JSON whitespace, noting any raw newline (see [`Lexer::saw_newline`]).
    pub(crate) fn skip_whitespace(&mut self) {
        // Every JSON whitespace byte is at most a space, and most records have none
        // between tokens: one comparison settles the common case.
        while let Some(&byte) = self.bytes().get(self.at) {
            if byte > b' ' {
                return;
            }
            match byte {
                b' ' | b'\r' | b'\t' => {}
                b'\n' => self.saw_newline = true,
                _ => return,
            }
            self.at += 1;
        }
    }

    /// True when whitespace skipped so far held a raw newline: the only place valid JSON
    /// can have one, as a string cannot.
    pub(crate) fn saw_newline(&self) -> bool {
        self.saw_newline
    }

    /// Skips whitespace, then consumes and returns the next byte.
    pub(crate) fn next_token(&mut self) -> Result<u8, Invalid> {
        self.skip_whitespace();
        let byte = self.peek().ok_or(Invalid)?;
        self.at += 1;
        Ok(byte)
    }

    /// Skips whitespace, then consumes `byte` or fails.
    pub(crate) fn expect(&mut self, byte: u8) -> Result<(), Invalid> {
        if self.next_token()? == byte {
            Ok(())
        } else {
            Err(Invalid)
        }
    }

    /// True when only whitespace is left.
    pub(crate) fn at_end(&mut self) -> bool {
        self.skip_whitespace();
        self.at == self.text.len()
    }

    /// The position of the first quote, backslash or control character at or after
    /// `from`, or the end of the text.
    fn string_end(&self, from: usize) -> usize {
        self.string_stop(from).end
    }

    /// [`Lexer::string_end`], and whether a `.` comes before that position (keys with
    /// dots are paths).
    ///
    /// Most strings of a record end within sixteen bytes: that first search is inline,
    /// the loop for longer ones out of line. The eight bytes from `from` come along, for
    /// a key's tag (see `scan::tag`).
    #[inline]
    fn string_stop(&self, from: usize) -> Stop {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        if let Some(chunk) = self.bytes().get(from..from + 16) {
            // Eight bytes are there: one load (`head_of` would check for fewer).
            let mut head = [0u8; 8];
            head.copy_from_slice(&chunk[..8]);
            let head = u64::from_le_bytes(head);
            let (stops, dots) = sse2::string_stops(chunk);
            if stops != 0 {
                let before = (1u32 << stops.trailing_zeros()) - 1;
                return Stop {
                    end: from + stops.trailing_zeros() as usize,
                    dotted: dots & before != 0,
                    head,
                };
            }
            let (end, dotted) = self.string_stop_after(from + 16, dots != 0);
            return Stop { end, dotted, head };
        }
        let (end, dotted) = self.string_stop_after(from, false);
        Stop {
            end,
            dotted,
            head: head_of(self.bytes().get(from..).unwrap_or_default()),
        }
    }

    /// [`Lexer::string_stop`] from `from` on, `dotted` when a dot came before it.
    #[inline(never)]
    fn string_stop_after(&self, mut from: usize, mut dotted: bool) -> (usize, bool) {
        let bytes = self.bytes();
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        while from + 16 <= bytes.len() {
            let (stops, dots) = sse2::string_stops(&bytes[from..from + 16]);
            if stops != 0 {
                let before = (1u32 << stops.trailing_zeros()) - 1;
                return (
                    from + stops.trailing_zeros() as usize,
                    dotted || dots & before != 0,
                );
            }
            dotted |= dots != 0;
            from += 16;
        }
        while let Some(chunk) = bytes.get(from..from + 8) {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            let word = u64::from_le_bytes(word);
            let stops =
                bytes_equal(word, b'"') | bytes_equal(word, b'\\') | bytes_below(word, 0x20);
            // A false dot is only ever flagged above a true one, so "a dot below the stop"
            // is exact.
            let dots = bytes_equal(word, b'.');
            if stops != 0 {
                let before = (1u64 << stops.trailing_zeros()) - 1;
                return (
                    from + stops.trailing_zeros() as usize / 8,
                    dotted || dots & before != 0,
                );
            }
            dotted |= dots != 0;
            from += 8;
        }
        for (offset, &byte) in bytes[from..].iter().enumerate() {
            if byte == b'"' || byte == b'\\' || byte < 0x20 {
                return (from + offset, dotted);
            }
            dotted |= byte == b'.';
        }
        (bytes.len(), dotted)
    }

    /// Reads an object key whose opening quote is next, as [`Lexer::string`] does, and
    /// whether it holds a `.`.
    pub(crate) fn key(&mut self) -> Result<Key<'a>, Invalid> {
        let start = self.at + 1;
        let stop = self.string_stop(start);
        let text = self.string_from(start, stop.end)?;
        // The flag covers the plain text up to the first stop; a decoded key is checked
        // whole (an escape may hide a dot).
        Ok(match text {
            Cow::Borrowed(_) => Key {
                text,
                dotted: stop.dotted,
                head: Some(stop.head),
            },
            Cow::Owned(decoded) => Key {
                dotted: decoded.contains('.'),
                text: Cow::Owned(decoded),
                head: None,
            },
        })
    }

    /// Reads a string whose opening quote is next: borrowed from the line when it holds
    /// no escapes, decoded otherwise.
    pub(crate) fn string(&mut self) -> Result<Cow<'a, str>, Invalid> {
        let start = self.at + 1;
        let end = self.string_end(start);
        self.string_from(start, end)
    }

    /// The rest of [`Lexer::string`] once the first stop after the opening quote is
    /// known: the text starts at `start`, and `end` is [`Lexer::string_end`] of it.
    #[inline]
    fn string_from(&mut self, start: usize, end: usize) -> Result<Cow<'a, str>, Invalid> {
        if self.bytes().get(end) == Some(&b'"') {
            self.at = end + 1;
            return Ok(Cow::Borrowed(&self.text[start..end]));
        }
        self.decode_string(start, end)
    }

    /// [`Lexer::string_from`] for a string with escapes (or a bad byte): decoded from the
    /// first stop, the plain prefix copied once. Out of line, so that the common case
    /// stays small enough to inline.
    #[cold]
    #[inline(never)]
    fn decode_string(&mut self, start: usize, end: usize) -> Result<Cow<'a, str>, Invalid> {
        let mut decoded = String::from(&self.text[start..end]);
        let mut end = end;
        loop {
            self.at = end + 1;
            match self.bytes().get(end) {
                Some(b'"') => return Ok(Cow::Owned(decoded)),
                Some(b'\\') => self.escape(&mut decoded)?,
                _ => return Err(Invalid),
            }
            end = self.string_end(self.at);
            decoded.push_str(&self.text[self.at..end]);
        }
    }

    /// Skips a string whose opening quote is next.
    #[inline]
    pub(crate) fn skip_string(&mut self) -> Result<(), Invalid> {
        let end = self.string_end(self.at + 1);
        if self.bytes().get(end) == Some(&b'"') {
            self.at = end + 1;
            return Ok(());
        }
        self.skip_escaped_string(end)
    }

    /// [`Lexer::skip_string`] from the first stop that is not its closing quote: an
    /// escape, or a bad byte. Out of line, like [`Lexer::decode_string`].
    #[cold]
    #[inline(never)]
    fn skip_escaped_string(&mut self, mut end: usize) -> Result<(), Invalid> {
        loop {
            self.at = end + 1;
            match self.bytes().get(end) {
                Some(b'"') => return Ok(()),
                Some(b'\\') => self.skip_escape()?,
                _ => return Err(Invalid),
            }
            end = self.string_end(self.at);
        }
    }

    /// Checks the escape after a backslash.
    fn skip_escape(&mut self) -> Result<(), Invalid> {
        match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.at += 1;
                Ok(())
            }
            Some(b'u') => self.hex_escape().map(drop),
            _ => Err(Invalid),
        }
    }

    /// Decodes the escape after a backslash into `out`.
    fn escape(&mut self, out: &mut String) -> Result<(), Invalid> {
        let simple = match self.peek().ok_or(Invalid)? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex_escape()?;
                out.push(self.code_point(unit)?);
                return Ok(());
            }
            _ => return Err(Invalid),
        };
        self.at += 1;
        out.push(simple);
        Ok(())
    }

    /// The character of a `\u` escape, pairing a leading surrogate with the trailing one
    /// that follows it; an unpaired surrogate reads as U+FFFD.
    fn code_point(&mut self, unit: u16) -> Result<char, Invalid> {
        if (0xd800..0xdc00).contains(&unit) && self.bytes()[self.at..].starts_with(b"\\u") {
            let checkpoint = self.at;
            self.at += 1;
            let low = self.hex_escape()?;
            if (0xdc00..0xe000).contains(&low) {
                let code = 0x10000 + ((u32::from(unit) - 0xd800) << 10) + (u32::from(low) - 0xdc00);
                return Ok(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            // Not a pair: the second escape stands on its own.
            self.at = checkpoint;
        }
        Ok(char::from_u32(u32::from(unit)).unwrap_or(char::REPLACEMENT_CHARACTER))
    }

    /// Reads `u` and four hex digits.
    fn hex_escape(&mut self) -> Result<u16, Invalid> {
        let digits = self.bytes().get(self.at + 1..self.at + 5).ok_or(Invalid)?;
        let mut unit = 0u16;
        for &digit in digits {
            let value = (digit as char).to_digit(16).ok_or(Invalid)?;
            unit = unit << 4 | value as u16;
        }
        self.at += 5;
        Ok(unit)
    }

    /// Reads a number whose first byte (`-` or a digit) is next.
    pub(crate) fn number(&mut self) -> Result<Number<'a>, Invalid> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Invalid),
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
            integer = false;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.some_digits()?;
            integer = false;
        }
        Ok(Number {
            text: &self.text[start..self.at],
            integer,
        })
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Result<(), Invalid> {
        let start = self.at;
        self.digits();
        if self.at == start {
            Err(Invalid)
        } else {
            Ok(())
        }
    }

    /// Consumes `word` (`true`, `false` or `null`), which must be next.
    pub(crate) fn literal(&mut self, word: &[u8]) -> Result<(), Invalid> {
        if self.bytes()[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(Invalid)
        }
    }

    /// Skips one value of any kind, checking it, after optional whitespace.
    pub(crate) fn skip_value(&mut self) -> Result<(), Invalid> {
        let mut open = Containers::default();
        loop {
            // A value is expected here.
            self.skip_whitespace();
            match self.peek().ok_or(Invalid)? {
                b'{' => {
                    self.at += 1;
                    self.skip_whitespace();
                    if self.peek() == Some(b'}') {
                        self.at += 1;
                    } else {
                        open.push(Container::Object);
                        self.skip_key()?;
                        continue;
                    }
                }
                b'[' => {
                    self.at += 1;
                    self.skip_whitespace();
                    if self.peek() == Some(b']') {
                        self.at += 1;
                    } else {
                        open.push(Container::Array);
                        continue;
                    }
                }
                b'"' => self.skip_string()?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => drop(self.number()?),
                _ => return Err(Invalid),
            }
            // A value ended: close containers until one continues with another member.
            loop {
                let Some(container) = open.top() else {
                    return Ok(());
                };
                match (self.next_token()?, container) {
                    (b',', Container::Object) => {
                        self.skip_key()?;
                        break;
                    }
                    (b',', Container::Array) => break,
                    (b'}', Container::Object) | (b']', Container::Array) => open.pop(),
                    _ => return Err(Invalid),
                }
            }
        }
    }

    /// Skips an object member's key and its colon.
    fn skip_key(&mut self) -> Result<(), Invalid> {
        self.skip_whitespace();
        if self.peek() != Some(b'"') {
            return Err(Invalid);
        }
        self.skip_string()?;
        self.expect(b':')
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Object,
    Array,
}

/// The containers being skipped, innermost last: a bit per level, in a word for the
/// first 128 levels and on the heap beyond (so the usual record allocates nothing).
#[derive(Default)]
struct Containers {
    bits: u128,
    depth: usize,
    deeper: Vec<Container>,
}

impl Containers {
    fn push(&mut self, container: Container) {
        if self.depth < 128 {
            let bit = 1u128 << self.depth;
            match container {
                Container::Object => self.bits |= bit,
                Container::Array => self.bits &= !bit,
            }
        } else {
            self.deeper.push(container);
        }
        self.depth += 1;
    }

    fn pop(&mut self) {
        if self.depth > 128 {
            self.deeper.pop();
        }
        self.depth -= 1;
    }

    fn top(&self) -> Option<Container> {
        match self.depth {
            0 => None,
            depth if depth > 128 => self.deeper.last().copied(),
            depth if self.bits & (1u128 << (depth - 1)) != 0 => Some(Container::Object),
            _ => Some(Container::Array),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(text: &str) -> bool {
        let mut lexer = Lexer::new(text);
        lexer.skip_value().is_ok() && lexer.at_end()
    }

    #[test]
    fn accepts_what_serde_json_accepts() {
        for text in [
            "{}",
            " { } ",
            "[]",
            "[1,-0,0.5,-1.25e+10,1E-2,2e3]",
            r#"{"a":{"b":[true,false,null,{"c":"d"}]},"e":"\u00e9\"\\\/\b\f\n\r\t"}"#,
            r#""\ud83d\ude00""#,
            r#""\ud800""#,
            "\"é ü 😀\"",
            "0",
            "-0.0e0",
        ] {
            assert!(valid(text), "{text}");
            assert!(
                serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok(),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_what_is_not_json() {
        for text in [
            "",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "[1,]",
            "[1 2]",
            "{,}",
            "{1:2}",
            "01",
            "-",
            "1.",
            ".5",
            "1e",
            "+1",
            "tru",
            "nul",
            "\"a",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\u12g4\"",
            "\"tab\there\"",
            "\"line\nbreak\"",
            "{\"a\":1}}",
            "[}",
            "{]",
            "NaN",
            "Infinity",
        ] {
            assert!(!valid(text), "{text:?}");
            assert!(
                serde_json::from_str::<serde::de::IgnoredAny>(text).is_err(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn strings_are_borrowed_unless_escaped() {
        let mut lexer = Lexer::new(r#""plain text here, longer than eight""#);
        assert!(matches!(
            lexer.string(),
            Ok(Cow::Borrowed("plain text here, longer than eight"))
        ));
        assert!(lexer.at_end());
        let text = r#""a\"b\\c\/d\u00e9\ud83d\ude00\ud800x\n""#;
        let mut lexer = Lexer::new(text);
        let decoded = lexer.string().unwrap();
        assert!(matches!(decoded, Cow::Owned(_)));
        assert_eq!(decoded, "a\"b\\c/dé😀\u{fffd}x\n");
        assert!(lexer.at_end());
    }

    #[test]
    fn decoded_strings_match_serde_json() {
        for text in [
            r#""\u0041\u00e9\u4e2d\ud83d\ude00 tail""#,
            r#""12345678\"12345678\\""#,
            r#""\t\r\n\b\f""#,
        ] {
            let ours = Lexer::new(text).string().unwrap();
            let theirs: String = serde_json::from_str(text).unwrap();
            assert_eq!(ours, theirs);
        }
    }

    /// Pieces of string content, each crossing the lexer's 8- and 16-byte steps in
    /// different places as they are strung together.
    const PIECES: &[&str] = &[
        "a",
        "key",
        "0123456789abcdef",
        ".",
        "/",
        "#",
        " ",
        "\"",
        "\\\\",
        "\\n",
        "\\u00e9",
        "\\u002e",
        "\\ud83d\\ude00",
        "\\x",
        "\\u12",
        "\u{1}",
        "\u{1f}",
        "\t",
        "\u{7f}",
        "é",
        "😀",
    ];

    /// Every placement of one stop byte and one dot in strings of up to 40 bytes, started
    /// at offsets 0 to 3 (so each falls in the 16-byte, the 8-byte and the bytewise steps),
    /// against a byte-by-byte reading.
    #[test]
    fn string_stop_matches_a_bytewise_reading() {
        let reference = |bytes: &[u8], from: usize| {
            let mut dotted = false;
            for (at, &byte) in bytes.iter().enumerate().skip(from) {
                if byte == b'"' || byte == b'\\' || byte < 0x20 {
                    return (at, dotted);
                }
                dotted |= byte == b'.';
            }
            (bytes.len(), dotted)
        };
        for len in 0..=40usize {
            for stop in (0..len).map(Some).chain([None]) {
                for stop_byte in [b'"', b'\\', 0x01, 0x1f] {
                    for dot in (0..len).map(Some).chain([None]) {
                        // '/' is one above '.', which a careless borrow could flag.
                        let mut bytes = vec![b'/'; len];
                        if let Some(dot) = dot {
                            bytes[dot] = b'.';
                        }
                        if let Some(stop) = stop {
                            bytes[stop] = stop_byte;
                        }
                        let text = String::from_utf8(bytes).unwrap();
                        let lexer = Lexer::new(&text);
                        for from in 0..4.min(len + 1) {
                            let found = lexer.string_stop(from);
                            assert_eq!(
                                (found.end, found.dotted),
                                reference(text.as_bytes(), from),
                                "{text:?} from {from}"
                            );
                            assert_eq!(found.head, head_of(&text.as_bytes()[from..]));
                        }
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn strings_read_as_serde_json_reads_them(
            pieces in proptest::collection::vec(proptest::sample::select(PIECES), 0..24),
            padding in 0usize..20,
        ) {
            let content: String = pieces.concat();
            let quoted = format!("\"{content}\"");
            let object = format!("{{\"k\":{quoted},\"p\":\"{}\"}}", "x".repeat(padding));
            proptest::prop_assert_eq!(
                valid(&object),
                serde_json::from_str::<serde::de::IgnoredAny>(&object).is_ok(),
                "{:?}", object
            );
            let mut lexer = Lexer::new(&quoted);
            let ours = lexer.string().ok().filter(|_| lexer.at_end());
            if let Ok(theirs) = serde_json::from_str::<String>(&quoted) {
                proptest::prop_assert_eq!(ours.as_deref(), Some(theirs.as_str()));
            }
            if let Ok(key) = Lexer::new(&quoted).key() {
                proptest::prop_assert_eq!(key.dotted, key.text.contains('.'), "{:?}", key.text);
                if let Some(head) = key.head {
                    proptest::prop_assert_eq!(head, head_of(&quoted.as_bytes()[1..]));
                }
            }
            let mut skipping = Lexer::new(&quoted);
            proptest::prop_assert_eq!(
                skipping.skip_string().is_ok() && skipping.at_end(),
                serde_json::from_str::<serde::de::IgnoredAny>(&quoted).is_ok()
            );
        }
    }

    #[test]
    fn numbers_report_whether_they_are_integers() {
        for (text, integer) in [("12", true), ("-0", true), ("1.5", false), ("2e3", false)] {
            let number = Lexer::new(text).number().unwrap();
            assert_eq!(number, Number { text, integer });
        }
    }

    #[test]
    fn deep_nesting_is_skipped_without_recursion() {
        for depth in [1, 127, 128, 129, 200_000] {
            let text = "[".repeat(depth) + &"]".repeat(depth);
            assert!(valid(&text), "{depth}");
            let unbalanced = "[".repeat(depth) + &"]".repeat(depth - 1) + "}";
            assert!(!valid(&unbalanced), "{depth}");
        }
        let mixed = "{\"a\":[".repeat(300) + &"]}".repeat(300);
        assert!(valid(&mixed));
        let crossed = "{\"a\":[".repeat(300) + "}]" + &"]}".repeat(299);
        assert!(!valid(&crossed));
    }
}
