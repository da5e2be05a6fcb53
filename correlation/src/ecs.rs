//! The fields the agent adds to a record, by their ECS names, written once per root
//! without touching or duplicating what the original has.
//!
//! Collect every added field — the correlation fields from
//! [`Extracted::add_ecs_fields`](crate::extract::Extracted::add_ecs_fields), the request
//! delta, and the agent's own (`log.file.path`, `host.name`, …) — into one
//! [`AddedFields`], then [`AddedFields::write`] it. Fields sharing a root become one
//! object, so `log.level` and `log.file.path` give a single `"log":{…}`. Per root, the
//! rules of [`RootUse`] apply: absent → a nested object; an object in the original →
//! dotted keys that Elasticsearch merges into it; a scalar → nothing. A field the original
//! already has ([`TopLevel::occupied`]) is left out, so the original value stands.
//!
//! ```
//! use hindsight_correlation::ecs::{AddedFields, LOG_FILE_PATH};
//! use hindsight_correlation::extract::FieldSet;
//! use hindsight_correlation::json::ObjectWriter;
//!
//! let line = br#"{"level":"warn","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","request_id":"r-1","msg":"slow"}"#;
//! let scan = FieldSet::default().scan(line).unwrap();
//! let mut fields = AddedFields::new();
//! scan.extracted.add_ecs_fields(&mut fields);
//! fields.push(LOG_FILE_PATH, "/var/log/app.log");
//!
//! let mut out = Vec::new();
//! let mut doc = ObjectWriter::splice(&mut out, line, &scan.top);
//! fields.write(&mut doc, &scan.top);
//! doc.finish();
//! let added = &out[line.len() - 1..];
//! assert_eq!(
//!     std::str::from_utf8(added).unwrap(),
//!     r#","trace":{"id":"4bf92f3577b34da6a3ce929d0e0e4736"},"http":{"request":{"id":"r-1"}},"log":{"level":"warn","file":{"path":"/var/log/app.log"}}}"#
//! );
//! ```

use std::borrow::Cow;

use crate::ids::{SpanId, TraceId};
use crate::json::{write_str, ObjectWriter, RootUse, TopLevel};

/// `trace.id`: the trace id, 32 lower-case hex digits.
pub const TRACE_ID: &str = "trace.id";
/// `span.id`: the span id, 16 lower-case hex digits.
pub const SPAN_ID: &str = "span.id";
/// `http.request.id`: the request id.
pub const HTTP_REQUEST_ID: &str = "http.request.id";
/// `labels.correlation_id`: a correlation id that differs from the request id.
pub const LABELS_CORRELATION_ID: &str = "labels.correlation_id";
/// `log.level`: the level, lower case (`trace` … `fatal`).
pub const LOG_LEVEL: &str = "log.level";
/// `log.file.path`: the file the record was read from (written by the agent).
pub const LOG_FILE_PATH: &str = "log.file.path";
/// `hindsight.request.elapsed_ms`: see [`crate::request_delta`].
pub const REQUEST_ELAPSED_MS: &str = "hindsight.request.elapsed_ms";
/// `hindsight.request.since_previous_ms`: see [`crate::request_delta`].
pub const REQUEST_SINCE_PREVIOUS_MS: &str = "hindsight.request.since_previous_ms";

/// A value to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue<'v> {
    /// A string (escaped when written).
    Str(Cow<'v, str>),
    /// A non-negative integer.
    U64(u64),
    /// A trace id, written as a 32-digit hex string.
    TraceId(TraceId),
    /// A span id, written as a 16-digit hex string.
    SpanId(SpanId),
}

impl<'v> From<&'v str> for FieldValue<'v> {
    fn from(text: &'v str) -> Self {
        FieldValue::Str(Cow::Borrowed(text))
    }
}

impl From<String> for FieldValue<'_> {
    fn from(text: String) -> Self {
        FieldValue::Str(Cow::Owned(text))
    }
}

impl From<u64> for FieldValue<'_> {
    fn from(number: u64) -> Self {
        FieldValue::U64(number)
    }
}

impl FieldValue<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            FieldValue::Str(text) => write_str(out, text),
            FieldValue::U64(number) => write_u64(out, *number),
            FieldValue::TraceId(id) => write_str(out, &id.to_hex()),
            FieldValue::SpanId(id) => write_str(out, &id.to_hex()),
        }
    }
}

fn write_u64(out: &mut Vec<u8>, mut number: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (number % 10) as u8;
        number /= 10;
        if number == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Fields to add to one record, by dotted path, in the order they were pushed.
///
/// Paths should start with one of [`AGENT_ROOTS`](crate::json::AGENT_ROOTS): only those
/// roots' use in the original is known. Reuse one across records with [`AddedFields::clear`].
#[derive(Debug, Clone, Default)]
pub struct AddedFields<'v> {
    fields: Vec<(&'static str, FieldValue<'v>)>,
}

impl<'v> AddedFields<'v> {
    /// No fields.
    pub fn new() -> Self {
        AddedFields { fields: Vec::new() }
    }

    /// Adds `path` (dotted, e.g. `log.level`), replacing a value pushed earlier for it.
    pub fn push(&mut self, path: &'static str, value: impl Into<FieldValue<'v>>) {
        let value = value.into();
        match self.fields.iter_mut().find(|(known, _)| *known == path) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((path, value)),
        }
    }

    /// The value pushed for `path`.
    pub fn get(&self, path: &str) -> Option<&FieldValue<'v>> {
        self.fields
            .iter()
            .find(|(known, _)| *known == path)
            .map(|(_, value)| value)
    }

    /// Removes every field, keeping the allocation.
    pub fn clear(&mut self) {
        self.fields.clear();
    }

    /// True when nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Writes the fields into `doc`, each root once, skipping what `top` (the original's
    /// scan) already has. With `top` of a new object ([`TopLevel::default`]), writes all.
    pub fn write(&self, doc: &mut ObjectWriter<'_>, top: &TopLevel<'_>) {
        let fields = &self.fields;
        let keep = |index: usize| {
            let path = fields[index].0;
            !top.occupied(path)
                && match top.root(root_of(path)) {
                    RootUse::Absent => true,
                    RootUse::Object => path.contains('.'),
                    RootUse::Scalar => false,
                }
        };
        // The grouping below asks about each field many times; answer from a table.
        let mut cached = [false; 32];
        for (index, slot) in cached.iter_mut().enumerate().take(fields.len()) {
            *slot = keep(index);
        }
        let kept = |index: usize| cached.get(index).copied().unwrap_or_else(|| keep(index));
        for index in 0..fields.len() {
            let (path, value) = &fields[index];
            let root = root_of(path);
            if !kept(index)
                || (0..index).any(|earlier| kept(earlier) && root_of(fields[earlier].0) == root)
            {
                continue;
            }
            match top.root(root) {
                RootUse::Object => {
                    for (path, value) in (index..fields.len())
                        .filter(|&later| kept(later) && root_of(fields[later].0) == root)
                        .map(|later| &fields[later])
                    {
                        value.write(doc.key(path));
                    }
                }
                _ if path.len() == root.len() => value.write(doc.key(path)),
                _ => doc.field_object(root, |inner| {
                    write_level(inner, fields, &kept, &path[..=root.len()])
                }),
            }
        }
    }
}

/// The first segment of a dotted path.
fn root_of(path: &str) -> &str {
    path.split('.').next().unwrap_or(path)
}

/// Writes the kept fields under `prefix` (ending in `.`) as members of `doc`, grouping
/// by the next segment.
fn write_level(
    doc: &mut ObjectWriter<'_>,
    fields: &[(&'static str, FieldValue<'_>)],
    kept: &dyn Fn(usize) -> bool,
    prefix: &str,
) {
    let segment_at = |index: usize| -> Option<&str> {
        let rest = fields[index].0.strip_prefix(prefix)?;
        kept(index).then(|| root_of(rest))
    };
    for index in 0..fields.len() {
        let Some(segment) = segment_at(index) else {
            continue;
        };
        if (0..index).any(|earlier| segment_at(earlier) == Some(segment)) {
            continue;
        }
        let (path, value) = &fields[index];
        if path.len() == prefix.len() + segment.len() {
            value.write(doc.key(segment));
        } else {
            let deeper = &path[..prefix.len() + segment.len() + 1];
            doc.field_object(segment, |inner| write_level(inner, fields, kept, deeper));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::FieldSet;

    fn write(line: &str, build: impl FnOnce(&mut AddedFields<'_>)) -> String {
        let scan = FieldSet::default().scan(line.as_bytes()).expect("object");
        let mut fields = AddedFields::new();
        build(&mut fields);
        let mut out = Vec::new();
        let mut doc = ObjectWriter::splice(&mut out, line.as_bytes(), &scan.top);
        fields.write(&mut doc, &scan.top);
        doc.finish();
        let text = String::from_utf8(out).expect("utf8");
        serde_json::from_str::<serde_json::Value>(&text).expect("valid JSON");
        text
    }

    fn trace() -> TraceId {
        TraceId::from_u128(0xab).unwrap()
    }

    #[test]
    fn absent_roots_become_one_object_each() {
        let text = write(r#"{"msg":"x"}"#, |fields| {
            fields.push(LOG_LEVEL, "info");
            fields.push(TRACE_ID, FieldValue::TraceId(trace()));
            fields.push(LOG_FILE_PATH, "/p");
            fields.push(REQUEST_ELAPSED_MS, 12u64);
            fields.push(REQUEST_SINCE_PREVIOUS_MS, 0u64);
            fields.push("stream", "stdout");
        });
        assert_eq!(
            text,
            r#"{"msg":"x","log":{"level":"info","file":{"path":"/p"}},"trace":{"id":"000000000000000000000000000000ab"},"hindsight":{"request":{"elapsed_ms":12,"since_previous_ms":0}},"stream":"stdout"}"#
        );
    }

    #[test]
    fn object_roots_get_dotted_keys_and_scalar_roots_nothing() {
        let text = write(
            r#"{"log":{"logger":"main"},"trace":"abc","http":{"method":"GET"}}"#,
            |fields| {
                fields.push(LOG_LEVEL, "warn");
                fields.push(LOG_FILE_PATH, "/p");
                fields.push(TRACE_ID, FieldValue::TraceId(trace()));
                fields.push(HTTP_REQUEST_ID, "r");
            },
        );
        assert_eq!(
            text,
            r#"{"log":{"logger":"main"},"trace":"abc","http":{"method":"GET"},"log.level":"warn","log.file.path":"/p","http.request.id":"r"}"#
        );
    }

    #[test]
    fn fields_the_original_has_in_any_spelling_are_left_alone() {
        for line in [
            r#"{"log.level":"INFO","trace.id":"x","http.request.id":"r"}"#,
            r#"{"log":{"level":"INFO"},"trace":{"id":"x"},"http":{"request":{"id":"r"}}}"#,
            r#"{"log":{"level":"INFO"},"trace":{"id":"x"},"http":{"request.id":"r"}}"#,
            r#"{"log.level":"INFO","trace.id":"x","http.request":{"id":"r"}}"#,
            // A scalar where a parent object would go blocks the path.
            r#"{"log":{"level":"INFO"},"trace":{"id":"x"},"http":{"request":"GET /"}}"#,
            r#"{"log":{"level":"INFO"},"trace":{"id":"x"},"http.request":"GET /"}"#,
        ] {
            let text = write(line, |fields| {
                fields.push(LOG_LEVEL, "info");
                fields.push(TRACE_ID, FieldValue::TraceId(trace()));
                fields.push(HTTP_REQUEST_ID, "other");
            });
            assert!(
                !text.contains("\"info\"") && !text.contains("other") && !text.contains("0000ab"),
                "{text}"
            );
        }
    }

    #[test]
    fn a_literal_dotted_key_does_not_stop_its_siblings() {
        // `log.level` is there, `log.file.path` is not: write the root as an object with
        // only the missing member (Elasticsearch merges `log.level` and `log` objects).
        let text = write(r#"{"log.level":"INFO"}"#, |fields| {
            fields.push(LOG_LEVEL, "info");
            fields.push(LOG_FILE_PATH, "/p");
        });
        assert_eq!(text, r#"{"log.level":"INFO","log":{"file":{"path":"/p"}}}"#);
    }

    #[test]
    fn push_replaces_and_strings_are_escaped() {
        let text = write("{}", |fields| {
            fields.push(HTTP_REQUEST_ID, "first");
            fields.push(HTTP_REQUEST_ID, String::from("a\"b"));
        });
        assert_eq!(text, r#"{"http":{"request":{"id":"a\"b"}}}"#);
    }

    #[test]
    fn integers_are_written_in_full() {
        for number in [0, 7, 10, 1_234_567_890, u64::MAX] {
            let mut out = Vec::new();
            write_u64(&mut out, number);
            assert_eq!(String::from_utf8(out).unwrap(), number.to_string());
        }
    }
}
