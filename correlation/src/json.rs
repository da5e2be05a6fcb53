//! Reading the few top-level fields the agent needs from a JSON object, and adding fields
//! to it, without building a tree and without re-serialising the original.
//!
//! ```
//! use bytes::BytesMut;
//! use hindsight_correlation::json::{scan_object, ObjectWriter};
//!
//! let line = br#"{"msg":"hi","time":"2026-11-23T10:00:00Z"}"#;
//! let top = scan_object(line).unwrap();
//! assert_eq!(top.time_field().unwrap().1.as_str(), Some("2026-11-23T10:00:00Z"));
//!
//! let mut out = BytesMut::new();
//! let mut doc = ObjectWriter::splice(&mut out, line, &top);
//! doc.field_str("stream", "stdout");
//! doc.finish();
//! assert_eq!(&out[..], br#"{"msg":"hi","time":"2026-11-23T10:00:00Z","stream":"stdout"}"#);
//! ```

use bytes::{BufMut, BytesMut};
use std::borrow::Cow;

/// Top-level keys the agent looks at for the record's own time, in order of preference.
pub const TIME_FIELDS: &[&str] = &["@timestamp", "time", "timestamp", "ts", "@t", "t"];

/// Top-level keys the agent adds to records; their presence in the original matters.
///
/// The first five are the agent's own (`@timestamp`, `kubernetes`, `host`, `log`,
/// `stream`); the rest are the roots of the correlation fields ([`crate::ecs`]).
pub const AGENT_ROOTS: &[&str] = &[
    "@timestamp",
    "kubernetes",
    "host",
    "log",
    "stream",
    "trace",
    "span",
    "http",
    "labels",
    "hindsight",
];

/// Dotted paths the agent adds below its roots whose presence in the original is tracked
/// in every spelling (see [`TopLevel::occupied`]).
pub const AGENT_PATHS: &[&str] = &[
    crate::ecs::TRACE_ID,
    crate::ecs::SPAN_ID,
    crate::ecs::HTTP_REQUEST_ID,
    crate::ecs::LABELS_CORRELATION_ID,
    crate::ecs::LOG_LEVEL,
    crate::ecs::LOG_FILE_PATH,
    crate::ecs::REQUEST_ELAPSED_MS,
    crate::ecs::REQUEST_SINCE_PREVIOUS_MS,
];

/// Why a line is not a JSON object the agent can splice into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotAnObject {
    /// The bytes are not valid UTF-8 (checked before the JSON itself).
    #[error("not valid UTF-8")]
    InvalidUtf8,
    /// The bytes are not valid JSON.
    #[error("not valid JSON")]
    InvalidJson,
    /// Valid JSON, but an array, string, number, boolean or null.
    #[error("JSON, but not an object")]
    NotObject,
}

/// The value of a time field: text or a number, as written.
#[derive(Debug, Clone, PartialEq)]
pub enum TimeValue<'a> {
    /// A JSON string (unescaped).
    Text(Cow<'a, str>),
    /// A JSON number.
    Number(f64),
    /// Anything else (object, array, bool, null): unusable as a time.
    Other,
}

impl TimeValue<'_> {
    /// The text, when the value is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            TimeValue::Text(text) => Some(text),
            _ => None,
        }
    }
}

/// What the agent learned about a JSON object's top level in one validating pass.
#[derive(Debug, Default)]
pub struct TopLevel<'a> {
    /// The preferred time field found (lowest index in [`TIME_FIELDS`], first when
    /// repeated) and its value.
    pub(crate) time: Option<(usize, TimeValue<'a>)>,
    /// For each of [`AGENT_ROOTS`]: `None` absent, `Some(true)` an object, `Some(false)` a scalar/array.
    pub(crate) roots: [Option<bool>; AGENT_ROOTS.len()],
    /// Bit `i` set: [`AGENT_PATHS`]`[i]` is present, or a scalar stands where one of its
    /// parent objects would go.
    pub(crate) occupied: u32,
    /// The object has no members (`{}`).
    pub(crate) empty: bool,
    /// A raw newline stands between its tokens (as whitespace: a string cannot hold one).
    pub(crate) raw_newline: bool,
}

impl<'a> TopLevel<'a> {
    /// The preferred time field present, with its name.
    pub fn time_field(&self) -> Option<(&'static str, &TimeValue<'a>)> {
        self.time
            .as_ref()
            .map(|(index, value)| (TIME_FIELDS[*index], value))
    }

    /// How the original uses one of [`AGENT_ROOTS`]: absent, an object, or something else.
    pub fn root(&self, name: &str) -> RootUse {
        match AGENT_ROOTS.iter().position(|root| *root == name) {
            Some(index) => self.root_at(index),
            None => RootUse::Absent,
        }
    }

    /// [`TopLevel::root`] by index in [`AGENT_ROOTS`].
    pub(crate) fn root_at(&self, index: usize) -> RootUse {
        match self.roots.get(index).copied().flatten() {
            None => RootUse::Absent,
            Some(true) => RootUse::Object,
            Some(false) => RootUse::Scalar,
        }
    }

    /// True when any of `bits` ([`AGENT_PATHS`] bits) is occupied.
    pub(crate) fn occupies_any(&self, bits: u32) -> bool {
        self.occupied & bits != 0
    }

    /// True when the agent must not add `path`, one of [`AGENT_PATHS`], because the
    /// original already holds it — as a literal dotted key (`"trace.id"`), nested
    /// (`"trace":{"id":…}`) or mixed (`"http":{"request.id":…}`) — or holds a scalar where
    /// one of its parents would go (`"http":{"request":"GET /"}`). Always false for other paths.
    pub fn occupied(&self, path: &str) -> bool {
        AGENT_PATHS
            .iter()
            .position(|known| *known == path)
            .is_some_and(|index| self.occupied & (1 << index) != 0)
    }

    /// True when the object has no members.
    pub fn is_empty(&self) -> bool {
        self.empty
    }
}

/// How the original record uses a top-level key the agent wants to add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootUse {
    /// Not present: the agent adds it as an object.
    Absent,
    /// Present as an object: the agent adds dotted keys (`host.name`) that merge with it.
    Object,
    /// Present as a scalar or array: the agent leaves the original alone and adds nothing.
    Scalar,
}

/// Validates `line` as one JSON object (surrounding whitespace allowed) and reads its top level.
///
/// UTF-8 is checked first, over the whole line: the lexer checks only the JSON grammar
/// of strings it skips, and a document with invalid UTF-8 would be rejected by the backend.
///
/// To read the request and trace identity in the same pass, use
/// [`FieldSet::scan`](crate::extract::FieldSet::scan) instead.
pub fn scan_object(line: &[u8]) -> Result<TopLevel<'_>, NotAnObject> {
    crate::extract::FieldSet::agent_only()
        .scan(line)
        .map(|scan| scan.top)
}

/// Appends members to a JSON object being written into a buffer.
///
/// Either splices into an existing object (copying its bytes up to the closing brace) or
/// starts a new one. Call [`ObjectWriter::finish`] to close it.
pub struct ObjectWriter<'o> {
    out: &'o mut BytesMut,
    needs_comma: bool,
}

impl<'o> ObjectWriter<'o> {
    /// Copies the validated object `line` into `out` without its closing brace, and with
    /// every raw newline between its tokens made a space: the document stays one line,
    /// as NDJSON needs, and means the same.
    pub fn splice(out: &'o mut BytesMut, line: &[u8], top: &TopLevel<'_>) -> Self {
        let trimmed = line.trim_ascii();
        // `scan_object` validated the object, so it ends with `}`.
        let body = trimmed
            .strip_suffix(b"}")
            .unwrap_or(trimmed)
            .trim_ascii_end();
        let start = out.len();
        out.extend_from_slice(body);
        if top.raw_newline {
            newlines_to_spaces(&mut out[start..]);
        }
        ObjectWriter {
            out,
            needs_comma: !top.is_empty(),
        }
    }

    /// Starts a new object in `out`.
    pub fn new(out: &'o mut BytesMut) -> Self {
        out.put_u8(b'{');
        ObjectWriter {
            out,
            needs_comma: false,
        }
    }

    /// Writes `"key":` and returns the buffer to write the raw value into.
    pub fn key(&mut self, key: &str) -> &mut BytesMut {
        if self.needs_comma {
            self.out.put_u8(b',');
        }
        self.needs_comma = true;
        write_str(self.out, key);
        self.out.put_u8(b':');
        self.out
    }

    /// Adds a string member.
    pub fn field_str(&mut self, key: &str, value: &str) {
        let out = self.key(key);
        write_str(out, value);
    }

    /// Adds a member whose value is already-valid JSON.
    pub fn field_raw(&mut self, key: &str, raw_json: &[u8]) {
        self.key(key).extend_from_slice(raw_json);
    }

    /// Adds a member holding a nested object, written by `build`.
    pub fn field_object(&mut self, key: &str, build: impl FnOnce(&mut ObjectWriter<'_>)) {
        let out = self.key(key);
        let mut inner = ObjectWriter::new(out);
        build(&mut inner);
        inner.finish();
    }

    /// The buffer and whether the next member needs a leading comma.
    pub(crate) fn parts(&mut self) -> (&mut BytesMut, &mut bool) {
        (self.out, &mut self.needs_comma)
    }

    /// Closes the object.
    pub fn finish(self) {
        self.out.put_u8(b'}');
    }
}

/// Turns every raw newline in `text` into a space. In JSON a raw newline can only be
/// whitespace between tokens, so the text means the same and becomes one NDJSON line.
pub fn newlines_to_spaces(text: &mut [u8]) {
    for byte in text {
        if *byte == b'\n' {
            *byte = b' ';
        }
    }
}

/// `value` as a JSON string (with quotes), escaped per RFC 8259.
pub fn json_string(value: &str) -> String {
    let mut out = BytesMut::with_capacity(value.len() + 2);
    write_str(&mut out, value);
    // Escaping UTF-8 text keeps it UTF-8, so the lossy branch never changes anything.
    match String::from_utf8(Vec::from(out)) {
        Ok(text) => text,
        Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
    }
}

/// Writes `value` as a JSON string (with quotes), escaping per RFC 8259.
pub fn write_str(out: &mut BytesMut, value: &str) {
    let bytes = value.as_bytes();
    out.reserve(bytes.len() + 2);
    out.put_u8(b'"');
    if needs_escaping(bytes) {
        write_escaped(out, bytes);
    } else {
        out.extend_from_slice(bytes);
    }
    out.put_u8(b'"');
}

/// True when `bytes` hold a quote, a backslash or a control character. Branch-free over
/// 16-byte chunks, so the compiler vectorises it: most values need no escaping.
fn needs_escaping(bytes: &[u8]) -> bool {
    let special = |byte: u8| (byte < 0x20) | (byte == b'"') | (byte == b'\\');
    let mut chunks = bytes.chunks_exact(16);
    for chunk in &mut chunks {
        if chunk
            .iter()
            .fold(false, |found, &byte| found | special(byte))
        {
            return true;
        }
    }
    chunks.remainder().iter().any(|&byte| special(byte))
}

fn write_escaped(out: &mut BytesMut, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..index]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.put_u8(HEX[(byte >> 4) as usize]);
            out.put_u8(HEX[(byte & 0xf) as usize]);
        } else {
            out.extend_from_slice(escape);
        }
        start = index + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn splice(line: &[u8], add: &[(&str, &str)]) -> String {
        let top = scan_object(line).expect("object");
        let mut out = BytesMut::new();
        let mut writer = ObjectWriter::splice(&mut out, line, &top);
        for (key, value) in add {
            writer.field_str(key, value);
        }
        writer.finish();
        String::from_utf8(out.to_vec()).expect("utf8")
    }

    #[test]
    fn splices_before_the_closing_brace_keeping_original_bytes() {
        let line = br#" {"b": 1.50, "a" : "x\u0041"}  "#;
        assert_eq!(
            splice(line, &[("stream", "stdout")]),
            r#"{"b": 1.50, "a" : "x\u0041","stream":"stdout"}"#
        );
    }

    #[test]
    fn empty_object_gets_no_leading_comma() {
        assert_eq!(splice(b"{ }", &[("k", "v")]), r#"{"k":"v"}"#);
    }

    #[test]
    fn raw_newlines_between_tokens_become_spaces() {
        // Nested in a skipped array and object too, where the lexer skips rather than walks.
        let line = b"{\"a\":\n1,\r\n\"b\" : [1,\n2],\"c\":{\"d\":\n{}}\n}\n";
        let spliced = splice(line, &[("k", "v")]);
        assert!(!spliced.contains('\n'), "{spliced}");
        let expected = r#"{"a":1,"b":[1,2],"c":{"d":{}},"k":"v"}"#;
        let parsed: serde_json::Value = serde_json::from_str(&spliced).expect("still JSON");
        assert_eq!(
            parsed,
            serde_json::from_str::<serde_json::Value>(expected).unwrap()
        );
        // The only newline inside a value the scan skips.
        assert_eq!(splice(b"{\"b\":[1,\n2]}", &[]), "{\"b\":[1, 2]}");
        // Without one, the bytes are kept as they are.
        assert_eq!(splice(b"{\"a\":\t1}", &[]), "{\"a\":\t1}");
    }

    #[test]
    fn finds_preferred_time_field_and_roots() {
        let line =
            br#"{"ts":1700000000,"time":"2026-01-01T00:00:00Z","host":"h","log":{"level":"info"}}"#;
        let top = scan_object(line).unwrap();
        let (name, value) = top.time_field().unwrap();
        assert_eq!(name, "time");
        assert_eq!(value.as_str(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(top.root("host"), RootUse::Scalar);
        assert_eq!(top.root("log"), RootUse::Object);
        assert_eq!(top.root("kubernetes"), RootUse::Absent);
    }

    #[test]
    fn escaped_time_text_is_unescaped() {
        let top = scan_object(br#"{"time":"2026\u002d01-01T00:00:00Z"}"#).unwrap();
        assert_eq!(
            top.time_field().unwrap().1.as_str(),
            Some("2026-01-01T00:00:00Z")
        );
    }

    #[test]
    fn rejects_what_is_not_one_object() {
        for (line, expected) in [
            (&b"not json"[..], NotAnObject::InvalidJson),
            (b"", NotAnObject::InvalidJson),
            (br#"{"a":1} {"b":2}"#, NotAnObject::InvalidJson),
            (br#"{"a":1"#, NotAnObject::InvalidJson),
            (b"{\"a\":\"\xff\"}", NotAnObject::InvalidUtf8),
            (b"[1,2]", NotAnObject::NotObject),
            (b"\"text\"", NotAnObject::NotObject),
            (b"42", NotAnObject::NotObject),
            (b"null", NotAnObject::NotObject),
        ] {
            assert_eq!(
                scan_object(line).err(),
                Some(expected),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn deep_nesting_neither_crashes_nor_recurses() {
        // Skipped values are walked without recursion, so depth cannot overflow the stack.
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(scan_object(deep.as_bytes()).is_ok());
        let unterminated = format!("{{\"a\":{}", "[".repeat(100_000));
        assert_eq!(
            scan_object(unterminated.as_bytes()).err(),
            Some(NotAnObject::InvalidJson)
        );
        let deep_time = format!(
            "{{\"time\":{}{}}}",
            "{\"a\":".repeat(10_000),
            "}".repeat(10_000)
        );
        assert_eq!(
            scan_object(deep_time.as_bytes()).err(),
            Some(NotAnObject::InvalidJson)
        );
    }

    #[test]
    fn write_str_escapes_controls_quotes_and_backslashes() {
        let mut out = BytesMut::new();
        write_str(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(
            String::from_utf8(out.to_vec()).unwrap(),
            r#""a\"b\\c\nd\u0001é""#
        );
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}é");
    }
}
