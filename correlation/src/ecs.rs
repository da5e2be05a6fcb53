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
//! use bytes::BytesMut;
//! use hindsight_correlation::ecs::{AddedFields, Field};
//! use hindsight_correlation::extract::FieldSet;
//! use hindsight_correlation::json::ObjectWriter;
//!
//! let line = br#"{"level":"warn","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","request_id":"r-1","msg":"slow"}"#;
//! let scan = FieldSet::default().scan(line).unwrap();
//! let mut fields = AddedFields::new();
//! scan.extracted.add_ecs_fields(&mut fields);
//! fields.push(Field::LogFilePath, "/var/log/app.log");
//!
//! let mut out = BytesMut::new();
//! let mut doc = ObjectWriter::splice(&mut out, line, &scan.top);
//! fields.write(&mut doc, &scan.top);
//! doc.finish();
//! let added = &out[line.len() - 1..];
//! assert_eq!(
//!     std::str::from_utf8(added).unwrap(),
//!     r#","trace":{"id":"4bf92f3577b34da6a3ce929d0e0e4736"},"http":{"request":{"id":"r-1"}},"log":{"level":"warn","file":{"path":"/var/log/app.log"}}}"#
//! );
//! ```

use bytes::{BufMut, BytesMut};

use crate::ids::{SpanId, TraceId};
use crate::json::{write_str, ObjectWriter, RootUse, TopLevel, AGENT_PATHS, AGENT_ROOTS};
use crate::time::Timestamp;

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

/// A field the agent adds to records.
///
/// The variants are in the order fields are written: members of one object are
/// neighbours, so a document is written in one pass without grouping at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Field {
    /// `@timestamp`.
    Timestamp,
    /// [`TRACE_ID`].
    TraceId,
    /// [`SPAN_ID`].
    SpanId,
    /// [`HTTP_REQUEST_ID`].
    HttpRequestId,
    /// [`LABELS_CORRELATION_ID`].
    LabelsCorrelationId,
    /// [`LOG_LEVEL`].
    LogLevel,
    /// [`LOG_FILE_PATH`].
    LogFilePath,
    /// [`REQUEST_ELAPSED_MS`].
    RequestElapsedMs,
    /// [`REQUEST_SINCE_PREVIOUS_MS`].
    RequestSincePreviousMs,
    /// `kubernetes.namespace`.
    KubernetesNamespace,
    /// `kubernetes.pod.name`.
    KubernetesPodName,
    /// `kubernetes.pod.uid`.
    KubernetesPodUid,
    /// `kubernetes.container.name`.
    KubernetesContainerName,
    /// `kubernetes.container.id`.
    KubernetesContainerId,
    /// `host.name`.
    HostName,
    /// `stream`: `stdout` or `stderr`.
    Stream,
}

/// How many [`Field`]s there are.
const FIELD_COUNT: usize = Field::Stream as usize + 1;

// A layout's key holds the written fields and the roots in 16 bits each.
const _: () = assert!(FIELD_COUNT <= 16 && AGENT_ROOTS.len() <= 16);

/// What is known about a [`Field`] without looking at a record.
#[derive(Debug)]
struct Spec {
    path: &'static str,
    /// The path's dotted segments.
    segments: &'static [&'static str],
    /// Index of the first segment in [`AGENT_ROOTS`].
    root: usize,
    /// Bit of the path in [`AGENT_PATHS`] (0 when it is not tracked there).
    occupied_bit: u32,
}

/// [`Spec`]s by [`Field`], built from the path names so the tables cannot disagree.
const SPECS: [Spec; FIELD_COUNT] = [
    spec("@timestamp", &["@timestamp"]),
    spec(TRACE_ID, &["trace", "id"]),
    spec(SPAN_ID, &["span", "id"]),
    spec(HTTP_REQUEST_ID, &["http", "request", "id"]),
    spec(LABELS_CORRELATION_ID, &["labels", "correlation_id"]),
    spec(LOG_LEVEL, &["log", "level"]),
    spec(LOG_FILE_PATH, &["log", "file", "path"]),
    spec(REQUEST_ELAPSED_MS, &["hindsight", "request", "elapsed_ms"]),
    spec(
        REQUEST_SINCE_PREVIOUS_MS,
        &["hindsight", "request", "since_previous_ms"],
    ),
    spec("kubernetes.namespace", &["kubernetes", "namespace"]),
    spec("kubernetes.pod.name", &["kubernetes", "pod", "name"]),
    spec("kubernetes.pod.uid", &["kubernetes", "pod", "uid"]),
    spec(
        "kubernetes.container.name",
        &["kubernetes", "container", "name"],
    ),
    spec(
        "kubernetes.container.id",
        &["kubernetes", "container", "id"],
    ),
    spec("host.name", &["host", "name"]),
    spec("stream", &["stream"]),
];

const fn spec(path: &'static str, segments: &'static [&'static str]) -> Spec {
    Spec {
        path,
        segments,
        root: position(AGENT_ROOTS, segments[0]),
        occupied_bit: match find(AGENT_PATHS, path) {
            Some(index) => 1 << index,
            None => 0,
        },
    }
}

/// Index of `name` in `list`; a compile error when it is missing.
const fn position(list: &[&str], name: &str) -> usize {
    match find(list, name) {
        Some(index) => index,
        None => panic!("an added field's root must be one of AGENT_ROOTS"),
    }
}

const fn find(list: &[&str], name: &str) -> Option<usize> {
    let mut index = 0;
    while index < list.len() {
        if const_eq(list[index], name) {
            return Some(index);
        }
        index += 1;
    }
    None
}

const fn const_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut at = 0;
    while at < a.len() {
        if a[at] != b[at] {
            return false;
        }
        at += 1;
    }
    true
}

impl Field {
    /// The dotted path, e.g. `log.file.path`.
    pub fn path(self) -> &'static str {
        SPECS[self as usize].path
    }
}

/// A value to add. Text is borrowed (from the record, its scan, the proxy's id pairs or
/// the agent), so a value needs no dropping: the per-record set of them is built and
/// discarded for free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValue<'v> {
    /// A string (escaped when written).
    Str(&'v str),
    /// A non-negative integer.
    U64(u64),
    /// A trace id, written as a 32-digit hex string.
    TraceId(TraceId),
    /// A span id, written as a 16-digit hex string.
    SpanId(SpanId),
    /// A time, written as RFC 3339 text in UTC ([`Timestamp::to_rfc3339`]).
    Time(Timestamp),
    /// Text that already is a JSON value, written as it is: a string quoted and escaped
    /// once ([`crate::json::json_string`]) for the many records that carry it.
    Json(&'v str),
}

impl<'v> From<&'v str> for FieldValue<'v> {
    fn from(text: &'v str) -> Self {
        FieldValue::Str(text)
    }
}

impl From<u64> for FieldValue<'_> {
    fn from(number: u64) -> Self {
        FieldValue::U64(number)
    }
}

impl From<Timestamp> for FieldValue<'_> {
    fn from(time: Timestamp) -> Self {
        FieldValue::Time(time)
    }
}

impl FieldValue<'_> {
    /// Appends the value as JSON to `out`.
    pub fn write_into(&self, out: &mut BytesMut) {
        match self {
            FieldValue::Str(text) => write_str(out, text),
            FieldValue::U64(number) => write_u64(out, *number),
            // Hex digits need no escaping.
            FieldValue::TraceId(id) => write_quoted(out, id.to_hex().as_bytes()),
            FieldValue::SpanId(id) => write_quoted(out, id.to_hex().as_bytes()),
            FieldValue::Time(time) => {
                out.put_u8(b'"');
                time.write_rfc3339(out);
                out.put_u8(b'"');
            }
            FieldValue::Json(json) => out.extend_from_slice(json.as_bytes()),
        }
    }
}

/// Writes text known to need no escaping, with quotes.
fn write_quoted(out: &mut BytesMut, plain: &[u8]) {
    out.put_u8(b'"');
    out.extend_from_slice(plain);
    out.put_u8(b'"');
}

fn write_u64(out: &mut BytesMut, mut number: u64) {
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

/// Fields to add to one record, at most one value per [`Field`].
///
/// Reuse one across records with [`AddedFields::clear`].
#[derive(Debug, Clone, Default)]
pub struct AddedFields<'v> {
    values: [Option<FieldValue<'v>>; FIELD_COUNT],
}

impl<'v> AddedFields<'v> {
    /// No fields.
    pub fn new() -> Self {
        AddedFields::default()
    }

    /// Sets `field`, replacing a value pushed earlier for it.
    pub fn push(&mut self, field: Field, value: impl Into<FieldValue<'v>>) {
        self.values[field as usize] = Some(value.into());
    }

    /// The value pushed for `field`.
    pub fn get(&self, field: Field) -> Option<&FieldValue<'v>> {
        self.values[field as usize].as_ref()
    }

    /// Removes every field.
    pub fn clear(&mut self) {
        self.values = Default::default();
    }

    /// True when nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.values.iter().all(Option::is_none)
    }

    /// Writes the fields into `doc`, each root once, skipping what `top` (the original's
    /// scan) already has. With `top` of a new object ([`TopLevel::default`]), writes all.
    pub fn write(&self, doc: &mut ObjectWriter<'_>, top: &TopLevel<'_>) {
        self.write_with(doc, top, &mut Layouts::default());
    }

    /// [`AddedFields::write`], reusing the layouts of document shapes seen before: the
    /// keys, braces and commas of a shape are worked out once, then copied in one piece
    /// between the values. Keep one [`Layouts`] per writer.
    pub fn write_with(
        &self,
        doc: &mut ObjectWriter<'_>,
        top: &TopLevel<'_>,
        layouts: &mut Layouts,
    ) {
        // The fields to write, in `Field` order, and the roots that are objects in the
        // original (their fields become dotted keys): together they decide the layout.
        let mut kept = 0u16;
        let mut object_roots = 0u16;
        for (index, (spec, value)) in SPECS.iter().zip(&self.values).enumerate() {
            if value.is_none() || top.occupies_any(spec.occupied_bit) {
                continue;
            }
            let keep = match top.root_at(spec.root) {
                RootUse::Absent => true,
                RootUse::Object if spec.segments.len() > 1 => {
                    object_roots |= 1 << spec.root;
                    true
                }
                RootUse::Object => false,
                RootUse::Scalar => false,
            };
            if keep {
                kept |= 1 << index;
            }
        }
        let (out, needs_comma) = doc.parts();
        let key = u64::from(kept) | u64::from(object_roots) << 16 | u64::from(*needs_comma) << 32;
        let layout = layouts.get(key, || Layout::compile(kept, object_roots, *needs_comma));
        layout.write(&self.values, out);
        *needs_comma |= kept != 0;
    }

    /// [`AddedFields::write_with`], then the fields of `tail`: copied in one piece when
    /// the original has none of their roots, else written one by one like the others (as
    /// also when a field of the tail's range was pushed here: it replaces the tail's).
    pub fn write_with_tail(
        &self,
        doc: &mut ObjectWriter<'_>,
        top: &TopLevel<'_>,
        layouts: &mut Layouts,
        tail: &RenderedTail,
    ) {
        let own_tail_fields = self.values[TAIL_FIRST as usize..]
            .iter()
            .any(Option::is_some);
        if !own_tail_fields && tail.fits(top) {
            self.write_with(doc, top, layouts);
            if !tail.members.is_empty() {
                let (out, needs_comma) = doc.parts();
                if *needs_comma {
                    out.put_u8(b',');
                }
                out.extend_from_slice(&tail.members);
                *needs_comma = true;
            }
        } else {
            let mut all = AddedFields::new();
            for (field, json) in &tail.values {
                all.push(*field, FieldValue::Json(json));
            }
            for (slot, value) in all.values.iter_mut().zip(&self.values) {
                if value.is_some() {
                    *slot = *value;
                }
            }
            all.write_with(doc, top, layouts);
        }
    }
}

/// The first [`Field`] a [`RenderedTail`] may hold: the roots from here on (`kubernetes`,
/// `host`, `stream`) come after every root of a record's own fields.
const TAIL_FIRST: Field = Field::KubernetesNamespace;

// A tail is appended after the other fields as whole objects: no field before
// `TAIL_FIRST` may share a root with one from it on.
const _: () = {
    let mut own = 0;
    while own < TAIL_FIRST as usize {
        let mut tail = TAIL_FIRST as usize;
        while tail < FIELD_COUNT {
            assert!(SPECS[own].root != SPECS[tail].root);
            tail += 1;
        }
        own += 1;
    }
};

/// A field given to [`RenderedTail::new`] that is written before the tail's roots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("`{}` comes before the tail's roots and cannot be part of a tail", SPECS[*.0 as usize].path)]
pub struct NotATailField(pub Field);

/// Added fields whose values many records share — the agent's `kubernetes.*`,
/// `host.name` and `stream` of one file — rendered once as JSON members, so a record
/// whose original has none of their roots copies them in one piece.
///
/// A tail holds only fields from `kubernetes.namespace` on in [`Field`]'s order, the
/// last roots written; [`AddedFields::write_with_tail`] appends it after the record's
/// other fields, so the document is the one [`AddedFields::write`] would give.
#[derive(Debug, Clone, Default)]
pub struct RenderedTail {
    /// The fields and their values, as JSON, for records it does not fit.
    values: Vec<(Field, Box<str>)>,
    /// The members, as written into an empty object: no braces, no leading comma.
    members: Box<[u8]>,
    /// [`AGENT_PATHS`] bits of the fields.
    occupied_bits: u32,
    /// [`AGENT_ROOTS`] bits of the fields.
    roots: u16,
}

impl RenderedTail {
    /// Renders `values` (each already-valid JSON). Fields before `kubernetes.namespace`
    /// are refused, as the tail would then not come last.
    pub fn new(values: Vec<(Field, Box<str>)>) -> Result<Self, NotATailField> {
        if let Some((early, _)) = values.iter().find(|(field, _)| !Self::takes(*field)) {
            return Err(NotATailField(*early));
        }
        let mut fields = AddedFields::new();
        let (mut occupied_bits, mut roots) = (0, 0);
        for (field, json) in &values {
            fields.push(*field, FieldValue::Json(json));
            let spec = &SPECS[*field as usize];
            occupied_bits |= spec.occupied_bit;
            roots |= 1 << spec.root;
        }
        let mut out = BytesMut::new();
        let mut doc = ObjectWriter::new(&mut out);
        fields.write(&mut doc, &TopLevel::default());
        // `{` + members; without `finish`, no closing brace.
        let members = out[1..].into();
        Ok(RenderedTail {
            values,
            members,
            occupied_bits,
            roots,
        })
    }

    /// True when `field` belongs in a tail rather than with a record's own fields.
    pub fn takes(field: Field) -> bool {
        field >= TAIL_FIRST
    }

    /// True when the original (`top`) has none of the tail's roots or paths, so each
    /// field is written whole, as in an empty object.
    fn fits(&self, top: &TopLevel<'_>) -> bool {
        if top.occupies_any(self.occupied_bits) {
            return false;
        }
        let mut roots = self.roots;
        while roots != 0 {
            if top.root_at(roots.trailing_zeros() as usize) != RootUse::Absent {
                return false;
            }
            roots &= roots - 1;
        }
        true
    }
}

/// Compiled document shapes (see [`AddedFields::write_with`]). A workload has a handful
/// of shapes; 16 are kept, and when a 17th comes they are replaced in turn, oldest
/// compiled first.
#[derive(Debug, Default)]
pub struct Layouts {
    entries: Vec<(u64, Layout)>,
    next_evicted: usize,
}

impl Layouts {
    const CAPACITY: usize = 16;

    fn get(&mut self, key: u64, compile: impl FnOnce() -> Layout) -> &Layout {
        let at = match self.entries.iter().position(|(known, _)| *known == key) {
            Some(at) => at,
            None if self.entries.len() < Self::CAPACITY => {
                self.entries.push((key, compile()));
                self.entries.len() - 1
            }
            None => {
                let at = self.next_evicted;
                self.next_evicted = (at + 1) % Self::CAPACITY;
                self.entries[at] = (key, compile());
                at
            }
        };
        &self.entries[at].1
    }
}

/// One document shape: its constant text, and where each field's value goes in it.
#[derive(Debug, Default)]
struct Layout {
    text: BytesMut,
    /// `(offset in text, field index)`, in order: the value follows `text[..offset]`.
    values: Vec<(u32, u8)>,
}

impl Layout {
    /// The layout for the fields in `kept` (bits by field index), where the roots in
    /// `object_roots` (bits by [`AGENT_ROOTS`] index) are objects in the original.
    fn compile(kept: u16, object_roots: u16, mut needs_comma: bool) -> Layout {
        let kept: Vec<u8> = (0..FIELD_COUNT as u8)
            .filter(|index| kept & 1 << index != 0)
            .collect();
        let mut layout = Layout::default();
        let mut at = 0;
        while at < kept.len() {
            let root = SPECS[kept[at] as usize].root;
            let end = at + group_len(&kept[at..], |spec| spec.root == root);
            let group = &kept[at..end];
            let first = &SPECS[group[0] as usize];
            if object_roots & 1 << root != 0 {
                // Dotted keys, which Elasticsearch merges into the original's object.
                for &index in group {
                    layout.key(&mut needs_comma, SPECS[index as usize].path);
                    layout.value(index);
                }
            } else if first.segments.len() == 1 {
                layout.key(&mut needs_comma, first.path);
                layout.value(group[0]);
            } else {
                layout.key(&mut needs_comma, first.segments[0]);
                layout.object(group, 1);
            }
            at = end;
        }
        layout
    }

    /// Writes `"key":`, after a comma unless it is the object's first member.
    fn key(&mut self, needs_comma: &mut bool, key: &str) {
        if *needs_comma {
            self.text.put_u8(b',');
        }
        *needs_comma = true;
        write_str(&mut self.text, key);
        self.text.put_u8(b':');
    }

    /// Marks where field `index`'s value goes.
    fn value(&mut self, index: u8) {
        self.values.push((self.text.len() as u32, index));
    }

    /// Lays out `group` (indexes of fields sharing their first `depth` segments) as one
    /// object keyed by the segment at `depth`.
    fn object(&mut self, group: &[u8], depth: usize) {
        self.text.put_u8(b'{');
        let mut needs_comma = false;
        let mut at = 0;
        while at < group.len() {
            let segments = SPECS[group[at] as usize].segments;
            let name = segments[depth];
            self.key(&mut needs_comma, name);
            if segments.len() == depth + 1 {
                self.value(group[at]);
                at += 1;
            } else {
                let end = at
                    + group_len(&group[at..], |spec| {
                        spec.segments.len() > depth + 1 && spec.segments[depth] == name
                    });
                self.object(&group[at..end], depth + 1);
                at = end;
            }
        }
        self.text.put_u8(b'}');
    }

    /// Appends the layout with `values` filled in.
    fn write(&self, values: &[Option<FieldValue<'_>>], out: &mut BytesMut) {
        let mut from = 0;
        for &(offset, index) in &self.values {
            out.extend_from_slice(&self.text[from..offset as usize]);
            if let Some(value) = &values[usize::from(index)] {
                value.write_into(out);
            }
            from = offset as usize;
        }
        out.extend_from_slice(&self.text[from..]);
    }
}

/// How many of `indexes`, from the first, have a spec that `same` accepts (at least one).
fn group_len(indexes: &[u8], same: impl Fn(&Spec) -> bool) -> usize {
    1 + indexes[1..]
        .iter()
        .take_while(|&&index| same(&SPECS[index as usize]))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::FieldSet;

    fn write(line: &str, build: impl FnOnce(&mut AddedFields<'_>)) -> String {
        let scan = FieldSet::default().scan(line.as_bytes()).expect("object");
        let mut fields = AddedFields::new();
        build(&mut fields);
        let mut out = BytesMut::new();
        let mut doc = ObjectWriter::splice(&mut out, line.as_bytes(), &scan.top);
        fields.write(&mut doc, &scan.top);
        doc.finish();
        let text = String::from_utf8(out.to_vec()).expect("utf8");
        serde_json::from_str::<serde_json::Value>(&text).expect("valid JSON");
        text
    }

    fn trace() -> TraceId {
        TraceId::from_u128(0xab).unwrap()
    }

    #[test]
    fn reused_layouts_write_what_a_fresh_writer_writes() {
        let lines = [
            r#"{"msg":"x"}"#,
            r#"{}"#,
            r#"{"log":{"logger":"a"},"http":"GET /"}"#,
            r#"{"trace":{"id":"ab"},"kubernetes":{"node":"n"},"stream":1}"#,
            r#"{"log.level":"warn","host":"h"}"#,
        ];
        let fields = [
            Field::Timestamp,
            Field::TraceId,
            Field::HttpRequestId,
            Field::LogLevel,
            Field::LogFilePath,
            Field::KubernetesPodName,
            Field::HostName,
            Field::Stream,
        ];
        let mut layouts = Layouts::default();
        // Every subset of the fields on every line: more shapes than the cache holds,
        // twice over, so layouts are reused and evicted.
        for _ in 0..2 {
            for line in lines {
                let scan = FieldSet::default().scan(line.as_bytes()).expect("object");
                for subset in 0..1u32 << fields.len() {
                    let mut added = AddedFields::new();
                    for (bit, field) in fields.iter().enumerate() {
                        if subset & 1 << bit != 0 {
                            added.push(*field, "v\"");
                        }
                    }
                    let mut fresh = BytesMut::new();
                    let mut doc = ObjectWriter::splice(&mut fresh, line.as_bytes(), &scan.top);
                    added.write(&mut doc, &scan.top);
                    doc.finish();
                    let mut reused = BytesMut::new();
                    let mut doc = ObjectWriter::splice(&mut reused, line.as_bytes(), &scan.top);
                    added.write_with(&mut doc, &scan.top, &mut layouts);
                    doc.finish();
                    assert_eq!(reused, fresh, "{line} {subset:#b}");
                    serde_json::from_slice::<serde_json::Value>(&fresh).expect("valid JSON");
                }
            }
        }
        assert_eq!(layouts.entries.len(), Layouts::CAPACITY);
    }

    #[test]
    fn a_rendered_tail_writes_what_its_fields_written_one_by_one_write() {
        let lines = [
            r#"{"msg":"x"}"#,
            r#"{}"#,
            r#"{"kubernetes":{"node":"n"}}"#,
            r#"{"host":"h","level":"info"}"#,
            r#"{"stream":1}"#,
            r#"{"kubernetes.namespace":"ns"}"#,
            r#"{"host":{"name.x":"a"},"log":{"logger":"a"}}"#,
        ];
        let own = [Field::Timestamp, Field::LogLevel, Field::LogFilePath];
        let tail_fields = [
            Field::KubernetesNamespace,
            Field::KubernetesPodName,
            Field::KubernetesContainerName,
            Field::HostName,
            Field::Stream,
        ];
        let mut layouts = Layouts::default();
        let mut copied = 0;
        for line in lines {
            let scan = FieldSet::default().scan(line.as_bytes()).expect("object");
            for own_subset in 0..1u32 << own.len() {
                for tail_subset in 0..1u32 << tail_fields.len() {
                    let mut added = AddedFields::new();
                    let mut everything = AddedFields::new();
                    for (bit, field) in own.iter().enumerate() {
                        if own_subset & 1 << bit != 0 {
                            added.push(*field, "v\"");
                            everything.push(*field, "v\"");
                        }
                    }
                    let mut values = Vec::new();
                    for (bit, field) in tail_fields.iter().enumerate() {
                        if tail_subset & 1 << bit != 0 {
                            everything.push(*field, FieldValue::Json("\"t\""));
                            values.push((*field, "\"t\"".into()));
                        }
                    }
                    let tail = RenderedTail::new(values).expect("tail fields");
                    let full = tail_subset == (1 << tail_fields.len()) - 1;
                    copied += usize::from(full && tail.fits(&scan.top));
                    let mut expected = BytesMut::new();
                    let mut doc = ObjectWriter::splice(&mut expected, line.as_bytes(), &scan.top);
                    everything.write(&mut doc, &scan.top);
                    doc.finish();
                    let mut written = BytesMut::new();
                    let mut doc = ObjectWriter::splice(&mut written, line.as_bytes(), &scan.top);
                    added.write_with_tail(&mut doc, &scan.top, &mut layouts, &tail);
                    doc.finish();
                    assert_eq!(written, expected, "{line} {own_subset:#b} {tail_subset:#b}");
                    serde_json::from_slice::<serde_json::Value>(&written).expect("valid JSON");
                }
            }
        }
        // The whole tail was copied on the lines without its roots (a literal
        // `kubernetes.namespace` key is not one of the paths the agent tracks), and on
        // no other line.
        assert_eq!(copied, 3 * (1 << own.len()));
    }

    #[test]
    fn a_tail_field_pushed_with_the_record_replaces_the_tail_s() {
        let tail = RenderedTail::new(vec![
            (Field::HostName, "\"node\"".into()),
            (Field::Stream, "\"stdout\"".into()),
        ])
        .expect("tail fields");
        let mut added = AddedFields::new();
        added.push(Field::LogLevel, "info");
        added.push(Field::HostName, "own");
        let mut out = BytesMut::new();
        let mut doc = ObjectWriter::new(&mut out);
        added.write_with_tail(
            &mut doc,
            &TopLevel::default(),
            &mut Layouts::default(),
            &tail,
        );
        doc.finish();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"log":{"level":"info"},"host":{"name":"own"},"stream":"stdout"}"#
        );
    }

    #[test]
    fn a_tail_refuses_a_field_that_would_not_come_last() {
        let values = vec![
            (Field::HostName, "\"h\"".into()),
            (Field::LogFilePath, "\"/p\"".into()),
        ];
        let refused = RenderedTail::new(values).err();
        assert_eq!(refused, Some(NotATailField(Field::LogFilePath)));
        assert_eq!(
            refused.map(|error| error.to_string()).as_deref(),
            Some("`log.file.path` comes before the tail's roots and cannot be part of a tail")
        );
    }

    #[test]
    fn absent_roots_become_one_object_each_in_field_order() {
        let text = write(r#"{"msg":"x"}"#, |fields| {
            fields.push(Field::LogLevel, "info");
            fields.push(Field::TraceId, FieldValue::TraceId(trace()));
            fields.push(Field::LogFilePath, "/p");
            fields.push(Field::RequestElapsedMs, 12u64);
            fields.push(Field::RequestSincePreviousMs, 0u64);
            fields.push(Field::Stream, "stdout");
        });
        assert_eq!(
            text,
            r#"{"msg":"x","trace":{"id":"000000000000000000000000000000ab"},"log":{"level":"info","file":{"path":"/p"}},"hindsight":{"request":{"elapsed_ms":12,"since_previous_ms":0}},"stream":"stdout"}"#
        );
    }

    #[test]
    fn object_roots_get_dotted_keys_and_scalar_roots_nothing() {
        let text = write(
            r#"{"log":{"logger":"main"},"trace":"abc","http":{"method":"GET"}}"#,
            |fields| {
                fields.push(Field::LogLevel, "warn");
                fields.push(Field::LogFilePath, "/p");
                fields.push(Field::TraceId, FieldValue::TraceId(trace()));
                fields.push(Field::HttpRequestId, "r");
            },
        );
        assert_eq!(
            text,
            r#"{"log":{"logger":"main"},"trace":"abc","http":{"method":"GET"},"http.request.id":"r","log.level":"warn","log.file.path":"/p"}"#
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
                fields.push(Field::LogLevel, "info");
                fields.push(Field::TraceId, FieldValue::TraceId(trace()));
                fields.push(Field::HttpRequestId, "other");
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
            fields.push(Field::LogLevel, "info");
            fields.push(Field::LogFilePath, "/p");
        });
        assert_eq!(text, r#"{"log.level":"INFO","log":{"file":{"path":"/p"}}}"#);
    }

    #[test]
    fn push_replaces_and_strings_are_escaped() {
        let text = write("{}", |fields| {
            fields.push(Field::HttpRequestId, "first");
            fields.push(Field::HttpRequestId, "a\"b");
        });
        assert_eq!(text, r#"{"http":{"request":{"id":"a\"b"}}}"#);
    }

    #[test]
    fn the_field_table_agrees_with_itself() {
        for (index, spec) in SPECS.iter().enumerate() {
            assert_eq!(spec.path, spec.segments.join("."), "{spec:?}");
            assert_eq!(AGENT_ROOTS[spec.root], spec.segments[0], "{spec:?}");
            // Members of one object are neighbours in the table.
            if let Some(earlier) = SPECS[..index].iter().rposition(|e| e.root == spec.root) {
                assert_eq!(
                    earlier + 1,
                    index,
                    "{} is apart from its root's fields",
                    spec.path
                );
            }
        }
        assert_eq!(Field::Stream.path(), "stream");
        assert_eq!(Field::KubernetesPodUid.path(), "kubernetes.pod.uid");
    }

    #[test]
    fn integers_are_written_in_full() {
        for number in [0, 7, 10, 1_234_567_890, u64::MAX] {
            let mut out = BytesMut::new();
            write_u64(&mut out, number);
            assert_eq!(String::from_utf8(out.to_vec()).unwrap(), number.to_string());
        }
    }
}
