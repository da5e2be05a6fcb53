//! Turns a source's [`LogEvent`] into the document a sink ships.
//!
//! The application's JSON object is kept byte for byte; the agent's fields are spliced in
//! before its closing brace (`@timestamp`, `kubernetes.*`, `host.name`, `log.file.path`,
//! `stream`). A line that is not a JSON object becomes `{"message": "<line>", "tags": [why]}`
//! with the same added fields. Invalid UTF-8 is replaced with U+FFFD, never fatal.
//!
//! Where the original already has one of the agent's top-level keys: `@timestamp` is kept
//! as the record's time; an object (`"host": {...}`) gets dotted keys (`"host.name"`) that
//! Elasticsearch merges into it; a scalar (`"host": "web-1"`) is left alone and the agent
//! adds nothing under that key.

use std::borrow::Cow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use hindsight_correlation::ecs::{AddedFields, Field, FieldValue, Layouts, RenderedTail};
use hindsight_correlation::extract::{Extracted, FieldSet};
use hindsight_correlation::fingers_crossed::SampleKey;
use hindsight_correlation::id_pairs::IdPairs;
use hindsight_correlation::ids::TraceId;
use hindsight_correlation::json::{json_string, NotAnObject, ObjectWriter, RootUse, TopLevel};
use hindsight_correlation::level::Level;
use hindsight_correlation::request_delta::{RequestClock, RequestDelta};
use hindsight_correlation::time::{parse_text, Timestamp};
use hindsight_exporters::ack::Ack;
use hindsight_exporters::{Document, LogRecord};
use smallvec::SmallVec;

use crate::event::{LineFlags, LogEvent, Origin, Stream};

/// Why a line was wrapped into a `message` field instead of kept as an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WrapReason {
    /// Not valid JSON.
    NotJson,
    /// Valid JSON, but not an object.
    NotObject,
    /// The line was longer than `max_line_bytes` and cut, so it is no longer valid JSON.
    Truncated,
}

impl WrapReason {
    /// The tag put in the document's `tags` and the metric label.
    pub fn tag(self) -> &'static str {
        match self {
            WrapReason::NotJson => "hindsight.not_json",
            WrapReason::NotObject => "hindsight.not_object",
            WrapReason::Truncated => "hindsight.truncated",
        }
    }
}

/// What happened while building one record, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildOutcome {
    /// Set when the line was wrapped into `message`.
    pub wrapped: Option<WrapReason>,
    /// Invalid UTF-8 was replaced.
    pub invalid_utf8: bool,
}

/// What groups a record with the others of its request: its request id, else its trace
/// id, else the stream it came from. No id is ever invented for a line that has none.
#[derive(Debug, Clone)]
pub enum RecordKey {
    /// The record's request id (or the one the proxy paired with its trace id).
    Request(RequestKey),
    /// No request id, but a trace id.
    Trace(TraceId),
    /// Neither: the file and stream the line came from.
    Stream(Arc<Origin>, Option<Stream>),
}

impl PartialEq for RecordKey {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (RecordKey::Request(a), RecordKey::Request(b)) => a == b,
            (RecordKey::Trace(a), RecordKey::Trace(b)) => a == b,
            (RecordKey::Stream(a, s), RecordKey::Stream(b, t)) => s == t && a.path == b.path,
            _ => false,
        }
    }
}

impl Eq for RecordKey {}

impl Hash for RecordKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            RecordKey::Request(id) => id.hash(state),
            RecordKey::Trace(id) => id.hash(state),
            RecordKey::Stream(origin, stream) => {
                origin.path.hash(state);
                stream.hash(state);
            }
        }
    }
}

impl SampleKey for RecordKey {
    /// The request id, the trace id in lower-case hex, or the file path: the same bytes on
    /// every agent, so that every agent keeps the same healthy requests.
    fn sample_bytes(&self) -> Cow<'_, [u8]> {
        match self {
            RecordKey::Request(id) => Cow::Borrowed(id.as_bytes()),
            RecordKey::Trace(id) => Cow::Owned(id.to_hex().to_string().into_bytes()),
            RecordKey::Stream(origin, _) => {
                Cow::Owned(origin.path.to_string_lossy().into_owned().into_bytes())
            }
        }
    }
}

/// A request id as a fingers-crossed key. Ids up to 40 bytes (UUIDs, `req-` and a UUID)
/// are kept inline: the key made for every record that may be held allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestKey(SmallVec<[u8; 40]>);

impl RequestKey {
    /// The key of `request_id`.
    pub fn new(request_id: &str) -> Self {
        RequestKey(SmallVec::from_slice(request_id.as_bytes()))
    }

    /// The id's UTF-8 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A built record and what the pipeline's later stages need to know about it.
#[derive(Debug)]
pub struct BuiltRecord {
    /// The document and its acknowledgement.
    pub record: LogRecord,
    /// What happened while building it.
    pub outcome: BuildOutcome,
    /// The correlation key; only from [`RecordBuilder::build_or_hold`] (records built
    /// otherwise are never held, and making the key costs an allocation).
    pub key: Option<RecordKey>,
    /// The level the record states, if any.
    pub level: Option<Level>,
    /// The file the record came from.
    pub origin: Arc<Origin>,
    /// What building it again later needs to give the same document.
    pub replay: Replay,
}

/// What [`RecordBuilder::build_or_hold`] made of an event.
#[derive(Debug)]
pub enum Built {
    /// The document was written.
    Document(BuiltRecord),
    /// The line was kept raw, as asked.
    Raw(HeldLine),
}

/// A line kept raw by [`RecordBuilder::build_or_hold`], with what the pipeline's later
/// stages need to know about it.
#[derive(Debug)]
pub struct HeldLine {
    /// The line and what building it later needs.
    pub raw: RawRecord,
    /// What happened while reading it (never wrapped: only JSON objects are held).
    pub outcome: BuildOutcome,
    /// The correlation key.
    pub key: RecordKey,
    /// The level the record states, if any.
    pub level: Option<Level>,
    /// The time and request delta it was read with.
    pub replay: Replay,
}

/// The parts of a document that depend on when it was built: its time (which may be the
/// clock's, for a line without one) and its place in its request. A held line is kept raw
/// with these and built when it leaves, exactly as it would have been when it was read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Replay {
    time: Timestamp,
    delta: Option<DeltaMs>,
}

/// A request delta as written: whole milliseconds, in 8 bytes instead of two `Duration`s
/// (it is kept with every held line).
#[derive(Debug, Clone, Copy, PartialEq)]
struct DeltaMs {
    elapsed: u32,
    since_previous: u32,
}

impl DeltaMs {
    fn of(delta: RequestDelta) -> Self {
        // 49 days; requests are forgotten after minutes of silence.
        let clamp = |ms: u64| u32::try_from(ms).unwrap_or(u32::MAX);
        DeltaMs {
            elapsed: clamp(delta.elapsed_ms()),
            since_previous: clamp(delta.since_previous_ms()),
        }
    }

    fn add_ecs_fields(self, added: &mut AddedFields<'_>) {
        added.push(Field::RequestElapsedMs, u64::from(self.elapsed));
        added.push(
            Field::RequestSincePreviousMs,
            u64::from(self.since_previous),
        );
    }
}

/// A line kept raw while fingers-crossed holds it: the JSON text (copied into a buffer of
/// the builder's [`LinePool`], so it does not keep the read buffer alive) and what
/// [`RecordBuilder::rebuild`] needs.
#[derive(Debug)]
pub struct RawRecord {
    line: Vec<u8>,
    stream: Option<Stream>,
    origin: Arc<Origin>,
    flags: LineFlags,
    ack: Ack,
    replay: Replay,
}

impl RawRecord {
    /// Keeps a copy of `line` (in a buffer from `pool`), a built record's source line, with
    /// the parts of the built record that building it again needs.
    pub fn keep(
        pool: &mut LinePool,
        line: &[u8],
        stream: Option<Stream>,
        flags: LineFlags,
        origin: Arc<Origin>,
        ack: Ack,
        replay: Replay,
    ) -> Self {
        RawRecord {
            line: pool.take(line),
            stream,
            origin,
            flags,
            ack,
            replay,
        }
    }

    /// The bytes it keeps.
    pub fn line_len(&self) -> usize {
        self.line.len()
    }
}

/// Buffers for held lines, recycled by capacity in steps of 32 bytes up to 2 KiB, and at
/// most 2 MiB of them kept. Most held lines are dropped when their request goes idle, in
/// bursts; a fresh allocation and free for each one were about a fifth of the agent's CPU
/// with fingers-crossed on. Rounding a line up to its step costs under 32 bytes. The pool
/// is emptied whenever nothing is held, so an idle agent keeps none of it.
#[derive(Debug, Default)]
pub struct LinePool {
    /// Free buffers whose capacity is `32 × index`.
    classes: Vec<Vec<Vec<u8>>>,
    /// Their capacity together.
    bytes: usize,
}

impl LinePool {
    const STEP: usize = 32;
    const LARGEST: usize = 2048;
    const MAX_BYTES: usize = 2 * 1024 * 1024;

    /// A buffer holding a copy of `line`.
    fn take(&mut self, line: &[u8]) -> Vec<u8> {
        let capacity = line.len().div_ceil(Self::STEP) * Self::STEP;
        let recycled = self
            .classes
            .get_mut(capacity / Self::STEP)
            .and_then(Vec::pop);
        let mut buffer = match recycled {
            Some(buffer) => {
                self.bytes -= capacity;
                buffer
            }
            None => Vec::with_capacity(capacity),
        };
        buffer.extend_from_slice(line);
        buffer
    }

    /// Keeps `buffer` for a later line, unless it is not one of the pool's sizes or the
    /// pool is full (then it is freed).
    fn give(&mut self, mut buffer: Vec<u8>) {
        let capacity = buffer.capacity();
        if capacity == 0
            || capacity % Self::STEP != 0
            || capacity > Self::LARGEST
            || self.bytes + capacity > Self::MAX_BYTES
        {
            return;
        }
        let class = capacity / Self::STEP;
        if self.classes.len() <= class {
            self.classes.resize_with(class + 1, Vec::new);
        }
        buffer.clear();
        self.bytes += capacity;
        self.classes[class].push(buffer);
    }
}

/// Builds documents; holds what is the same for every record of this agent, and the
/// per-request state that enrichment needs.
#[derive(Debug)]
pub struct RecordBuilder {
    /// `host.name` as a JSON string.
    host_name_json: String,
    fields: FieldSet,
    clock: Option<RequestClock>,
    pairs: IdPairs,
    /// The document shapes written so far (see [`AddedFields::write_with`]).
    layouts: Layouts,
    /// Documents are written straight into shared chunks of this and cut off when done,
    /// so that a record costs no allocation or copy of its own; a chunk is freed when its
    /// last record is dropped.
    documents: BytesMut,
    /// Buffers for the lines fingers-crossed holds.
    held_lines: LinePool,
    /// The agent's fields of the file and stream met last.
    tail: Option<OriginTail>,
}

/// The agent's fields that are the same for every line of one file and stream
/// (`kubernetes.*`, `host.name`, `stream`), rendered once for each stream of the file met
/// last, as lines come in runs from one file and its streams interleave.
#[derive(Debug)]
struct OriginTail {
    /// Held, so that no other origin can be made at the address compared.
    origin: Arc<Origin>,
    /// By stream: none, stdout, stderr.
    by_stream: [Option<RenderedTail>; 3],
}

impl OriginTail {
    /// The rendered tail for `event`'s file and stream, from `cache` or made into it.
    fn of<'c>(
        cache: &'c mut Option<OriginTail>,
        event: &LogEvent,
        host_name_json: &str,
    ) -> &'c RenderedTail {
        let same_origin = cache
            .as_ref()
            .is_some_and(|tail| Arc::ptr_eq(&tail.origin, &event.origin));
        if !same_origin {
            *cache = None;
        }
        let tail = cache.get_or_insert_with(|| OriginTail {
            origin: event.origin.clone(),
            by_stream: Default::default(),
        });
        let slot = match event.stream {
            None => 0,
            Some(Stream::Stdout) => 1,
            Some(Stream::Stderr) => 2,
        };
        tail.by_stream[slot].get_or_insert_with(|| {
            let mut values: Vec<(Field, Box<str>)> = event
                .origin
                .fields_json()
                .filter(|(field, _)| RenderedTail::takes(*field))
                .map(|(field, json)| (field, json.into()))
                .collect();
            values.push((Field::HostName, host_name_json.into()));
            if let Some(stream) = event.stream {
                values.push((Field::Stream, stream.as_json().into()));
            }
            RenderedTail::new(values).expect("Kubernetes, host and stream fields are tail fields")
        })
    }
}

/// The size of the chunks documents are cut from: a few hundred records, about one batch
/// from the files input.
const DOCUMENT_CHUNK: usize = 64 * 1024;

/// The room a document needs beyond its line for the added fields: a new chunk is begun
/// when less is left. A document that outgrows it still fits: the chunk is reallocated,
/// copying what was written of the document.
const DOCUMENT_ROOM: usize = 4 * 1024;

/// How many request id ↔ trace id pairs from the proxy are remembered.
const ID_PAIRS: usize = 100_000;

impl RecordBuilder {
    /// A builder that stamps `host.name` with `host_name`, finds ids with `fields`, and
    /// adds request deltas when `clock` is given.
    pub fn new(
        host_name: impl Into<String>,
        fields: FieldSet,
        clock: Option<RequestClock>,
    ) -> Self {
        RecordBuilder {
            host_name_json: json_string(&host_name.into()),
            fields,
            clock,
            pairs: IdPairs::new(ID_PAIRS),
            layouts: Layouts::default(),
            documents: BytesMut::new(),
            held_lines: LinePool::default(),
            tail: None,
        }
    }

    /// Remembers a request id ↔ trace id pair seen by the sidecar proxy.
    pub fn learn_pair(&mut self, request_id: &str, trace_id: TraceId) {
        self.pairs.insert(request_id, trace_id);
    }

    /// Builds the document for one event, moving its acknowledgement into the record.
    pub fn build(&mut self, event: LogEvent) -> BuiltRecord {
        self.build_now(event, None)
    }

    /// Reads one event like [`RecordBuilder::build`], but asks `hold` (with the record's
    /// key and level) before writing its document: when it says yes, the line is kept raw
    /// for [`RecordBuilder::rebuild`] and no document is written now. Lines that are not
    /// JSON objects are always built.
    pub fn build_or_hold(
        &mut self,
        event: LogEvent,
        hold: impl FnOnce(&RecordKey, Option<Level>) -> bool,
    ) -> Built {
        self.build_as(event, None, Some(hold))
    }

    /// Settles a held line that is deliberately dropped, keeping its buffer for the next.
    pub fn settle_held(&mut self, raw: RawRecord) {
        raw.ack.delivered();
        self.held_lines.give(raw.line);
    }

    /// Frees the recycled buffers of held lines (when nothing is held any more).
    pub fn release_held_line_buffers(&mut self) {
        self.held_lines = LinePool::default();
    }

    /// Builds a held line's document as it would have been built when it was read.
    pub fn rebuild(&mut self, raw: RawRecord) -> LogRecord {
        let replay = raw.replay;
        let event = LogEvent {
            line: Bytes::from(raw.line),
            runtime_time: None,
            stream: raw.stream,
            origin: raw.origin,
            flags: raw.flags,
            ack: raw.ack,
        };
        self.build_now(event, Some(replay)).record
    }

    /// Builds the document, never holding the line (and so without an owned key).
    fn build_now(&mut self, event: LogEvent, replay: Option<Replay>) -> BuiltRecord {
        let never: Option<fn(&RecordKey, Option<Level>) -> bool> = None;
        match self.build_as(event, replay, never) {
            Built::Document(built) => built,
            Built::Raw(_) => unreachable!("`hold` said no"),
        }
    }

    fn build_as(
        &mut self,
        event: LogEvent,
        replay: Option<Replay>,
        hold: Option<impl FnOnce(&RecordKey, Option<Level>) -> bool>,
    ) -> Built {
        // Only a record that may be held needs its key as an owned value.
        let keyed = hold.is_some();
        let mut outcome = BuildOutcome::default();
        // SIMD validation: every line is checked, and almost every line is valid.
        let line: Cow<'_, str> = match simdutf8::basic::from_utf8(&event.line) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => {
                outcome.invalid_utf8 = true;
                Cow::Owned(String::from_utf8_lossy(&event.line).into_owned())
            }
        };
        self.begin_document(line.len());
        let mut delta = None;
        let scanned = if event.flags.truncated {
            Err(NotAnObject::InvalidJson)
        } else {
            self.fields.scan_str(&line)
        };
        let mut added = AddedFields::new();
        let (timestamp, key, level) = match &scanned {
            Ok(scan) => {
                let extracted = &scan.extracted;
                let time = match replay {
                    Some(replay) => replay.time,
                    // The runtime's time is parsed only for records without their own.
                    None => extracted
                        .time
                        .or_else(|| runtime_time(&event))
                        .unwrap_or_else(Timestamp::now),
                };
                if scan.top.root("@timestamp") == RootUse::Absent {
                    added.push(Field::Timestamp, time);
                }
                extracted.add_ecs_fields(&mut added);
                let identity = identify(&self.pairs, extracted, &mut added);
                delta = match replay {
                    Some(replay) => replay.delta,
                    None => match (&identity, self.clock.as_mut()) {
                        (Identity::Request(request_id), Some(clock)) => {
                            Some(DeltaMs::of(clock.observe(request_id, time)))
                        }
                        _ => None,
                    },
                };
                let key = match hold {
                    Some(hold) => {
                        let key = identity.into_key(&event);
                        if hold(&key, extracted.level) {
                            let replay = Replay { time, delta };
                            return Built::Raw(HeldLine {
                                raw: RawRecord::keep(
                                    &mut self.held_lines,
                                    line.as_bytes(),
                                    event.stream,
                                    event.flags,
                                    event.origin,
                                    event.ack,
                                    replay,
                                ),
                                outcome,
                                key,
                                level: extracted.level,
                                replay,
                            });
                        }
                        Some(key)
                    }
                    None => None,
                };
                if let Some(delta) = delta {
                    delta.add_ecs_fields(&mut added);
                }
                add_own_origin_fields(&mut added, &event);
                let tail = OriginTail::of(&mut self.tail, &event, &self.host_name_json);
                let mut doc = ObjectWriter::splice(&mut self.documents, line.as_bytes(), &scan.top);
                added.write_with_tail(&mut doc, &scan.top, &mut self.layouts, tail);
                doc.finish();
                (time, key, extracted.level)
            }
            Err(not_object) => {
                let reason = if event.flags.truncated {
                    WrapReason::Truncated
                } else if *not_object == NotAnObject::NotObject {
                    WrapReason::NotObject
                } else {
                    WrapReason::NotJson
                };
                outcome.wrapped = Some(reason);
                let time = match replay {
                    Some(replay) => replay.time,
                    None => runtime_time(&event).unwrap_or_else(Timestamp::now),
                };
                let mut doc = ObjectWriter::new(&mut self.documents);
                FieldValue::Time(time).write_into(doc.key("@timestamp"));
                doc.field_str("message", &line);
                doc.key("tags")
                    .extend_from_slice(format!("[\"{}\"]", reason.tag()).as_bytes());
                add_own_origin_fields(&mut added, &event);
                let tail = OriginTail::of(&mut self.tail, &event, &self.host_name_json);
                added.write_with_tail(&mut doc, &TopLevel::default(), &mut self.layouts, tail);
                doc.finish();
                (
                    time,
                    keyed.then(|| RecordKey::Stream(event.origin.clone(), event.stream)),
                    None,
                )
            }
        };
        Built::Document(BuiltRecord {
            record: LogRecord {
                // `ObjectWriter::splice` made the raw newlines the scan found spaces, a
                // wrapped line is escaped, and so is every added value.
                doc: Document::from_one_line_unchecked(self.take_document()),
                timestamp_millis: timestamp.millis(),
                ack: event.ack,
            },
            outcome,
            key,
            level,
            origin: event.origin,
            replay: Replay {
                time: timestamp,
                delta,
            },
        })
    }

    /// Makes room for a document of a line of `line_len` bytes at the end of the current
    /// chunk, or starts a new chunk; the old one lives on in the records cut from it.
    fn begin_document(&mut self, line_len: usize) {
        // Every document written is taken, and a held line returns before one is begun;
        // clearing keeps it so should that change.
        self.documents.clear();
        let room = line_len + DOCUMENT_ROOM;
        if self.documents.capacity() < room {
            self.documents = BytesMut::with_capacity(DOCUMENT_CHUNK.max(room));
        }
    }

    /// The document just written, as its own slice of the current chunk.
    fn take_document(&mut self) -> Bytes {
        self.documents.split().freeze()
    }
}

/// Who a record belongs to, borrowed from the record or the proxy's pairs: made into an
/// owned [`RecordKey`] only for records that may be held.
enum Identity<'a> {
    Request(&'a str),
    Trace(TraceId),
    Stream,
}

impl Identity<'_> {
    fn into_key(self, event: &LogEvent) -> RecordKey {
        match self {
            Identity::Request(request_id) => RecordKey::Request(RequestKey::new(request_id)),
            Identity::Trace(trace_id) => RecordKey::Trace(trace_id),
            Identity::Stream => RecordKey::Stream(event.origin.clone(), event.stream),
        }
    }
}

/// The record's identity, completing a missing request or trace id from the proxy's pairs.
fn identify<'a>(
    pairs: &'a IdPairs,
    extracted: &'a Extracted<'_>,
    added: &mut AddedFields<'a>,
) -> Identity<'a> {
    match (&extracted.request_id, extracted.trace_id) {
        (Some(request_id), trace_id) => {
            if trace_id.is_none() {
                if let Some(paired) = pairs.trace_of(request_id) {
                    added.push(Field::TraceId, FieldValue::TraceId(paired));
                }
            }
            Identity::Request(request_id)
        }
        (None, Some(trace_id)) => match pairs.request_of(trace_id) {
            Some(request_id) => {
                added.push(Field::HttpRequestId, request_id);
                Identity::Request(request_id)
            }
            None => Identity::Trace(trace_id),
        },
        (None, None) => Identity::Stream,
    }
}

/// The time the container runtime stamped on the line (CRI/Docker), if it parses.
fn runtime_time(event: &LogEvent) -> Option<Timestamp> {
    let text = std::str::from_utf8(event.runtime_time.as_ref()?).ok()?;
    parse_text(text)
}

/// The origin's fields that are not in its [`OriginTail`]: `log.file.path`, which shares
/// its `log` object with the record's level.
fn add_own_origin_fields<'e>(added: &mut AddedFields<'e>, event: &'e LogEvent) {
    for (field, json) in event.origin.fields_json() {
        if !RenderedTail::takes(field) {
            added.push(field, FieldValue::Json(json));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{KubernetesOrigin, LineFlags, Stream};
    use hindsight_exporters::ack::Ack;
    use serde_json::{json, Value};
    use std::path::PathBuf;
    use std::sync::Arc;

    fn event(line: &[u8], truncated: bool) -> LogEvent {
        LogEvent {
            line: Bytes::copy_from_slice(line),
            runtime_time: Some(Bytes::from_static(b"2026-11-23T10:00:00.123456789Z")),
            stream: Some(Stream::Stderr),
            origin: Arc::new(Origin::new(
                PathBuf::from("/var/log/pods/shop_cart-7d_0a1b/cart/0.log"),
                Some(KubernetesOrigin {
                    namespace: "shop".into(),
                    pod_name: "cart-7d".into(),
                    pod_uid: Some("0a1b".into()),
                    container_name: "cart".into(),
                    container_id: None,
                }),
            )),
            flags: LineFlags { truncated },
            ack: Ack::none(),
        }
    }

    fn builder() -> RecordBuilder {
        RecordBuilder::new("node-1", FieldSet::default(), Some(RequestClock::default()))
    }

    /// Builds `event` as the fingers-crossed stage does (with its key), holding nothing.
    fn build_keyed(builder: &mut RecordBuilder, event: LogEvent) -> BuiltRecord {
        match builder.build_or_hold(event, |_, _| false) {
            Built::Document(built) => built,
            Built::Raw(_) => panic!("nothing was to be held"),
        }
    }

    fn build(line: &[u8], truncated: bool) -> (Value, LogRecord, BuildOutcome) {
        let built = builder().build(event(line, truncated));
        let value = serde_json::from_slice(&built.record.doc).expect("documents are valid JSON");
        (value, built.record, built.outcome)
    }

    #[test]
    fn ids_and_level_become_ecs_fields_and_the_key() {
        let line = br#"{"level":30,"reqId":"req-1","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","msg":"ok"}"#;
        let built = build_keyed(&mut builder(), event(line, false));
        let value: Value = serde_json::from_slice(&built.record.doc).unwrap();
        assert_eq!(value["http"]["request"]["id"], "req-1");
        assert_eq!(value["trace"]["id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(value["span"]["id"], "00f067aa0ba902b7");
        assert_eq!(value["log"]["level"], "info");
        assert_eq!(
            value["log"]["file"]["path"],
            "/var/log/pods/shop_cart-7d_0a1b/cart/0.log"
        );
        assert_eq!(value["level"], 30, "the original field is untouched");
        assert_eq!(
            built.key,
            Some(RecordKey::Request(RequestKey::new("req-1")))
        );
        assert_eq!(built.level, Some(Level::Info));
        let unkeyed = builder().build(event(line, false));
        assert_eq!(unkeyed.record.doc, built.record.doc);
        assert_eq!(unkeyed.key, None, "plain builds make no key");
    }

    #[test]
    fn origin_and_host_values_are_escaped_once_and_correctly() {
        let mut read = event(br#"{"msg":"x"}"#, false);
        let path = "/var/log/odd \"dir\"\\x/0.log";
        read.origin = Arc::new(Origin::new(
            PathBuf::from(path),
            Some(KubernetesOrigin {
                namespace: "ns\u{1}".into(),
                pod_name: "pod\"q".into(),
                pod_uid: None,
                container_name: "c\\".into(),
                container_id: Some("id\n".into()),
            }),
        ));
        read.stream = Some(Stream::Stdout);
        let built = RecordBuilder::new("host \"h\"", FieldSet::default(), None).build(read);
        let value: Value = serde_json::from_slice(&built.record.doc).expect("valid JSON");
        assert_eq!(value["log"]["file"]["path"], path);
        assert_eq!(value["kubernetes"]["namespace"], "ns\u{1}");
        assert_eq!(value["kubernetes"]["pod"]["name"], "pod\"q");
        assert!(value["kubernetes"]["pod"].get("uid").is_none());
        assert_eq!(value["kubernetes"]["container"]["name"], "c\\");
        assert_eq!(value["kubernetes"]["container"]["id"], "id\n");
        assert_eq!(value["host"]["name"], "host \"h\"");
        assert_eq!(value["stream"], "stdout");
    }

    #[test]
    fn each_record_gets_the_tail_of_its_own_file_and_stream() {
        let other_origin = Arc::new(Origin::new(PathBuf::from("/var/log/other.log"), None));
        let mut builder = builder();
        let shapes = [
            (None, Some(Stream::Stderr)),
            (None, Some(Stream::Stdout)),
            (Some(&other_origin), Some(Stream::Stdout)),
            (Some(&other_origin), None),
            (None, Some(Stream::Stderr)),
        ];
        for (origin, stream) in shapes {
            // The third line's roots are its own: the tail is written field by field.
            for line in [
                &br#"{"msg":"x"}"#[..],
                br#"not json"#,
                br#"{"host":{"ip":"10.0.0.1"},"stream":7}"#,
            ] {
                let mut read = event(line, false);
                if let Some(origin) = origin {
                    read.origin = origin.clone();
                }
                read.stream = stream;
                let built = builder.build(read);
                let value: Value = serde_json::from_slice(&built.record.doc).expect("valid JSON");
                let path = if origin.is_some() {
                    "/var/log/other.log"
                } else {
                    "/var/log/pods/shop_cart-7d_0a1b/cart/0.log"
                };
                assert_eq!(value["log"]["file"]["path"], path);
                let namespace = value.pointer("/kubernetes/namespace").cloned();
                assert_eq!(namespace, origin.is_none().then(|| json!("shop")));
                if line.starts_with(br#"{"host""#) {
                    assert_eq!(value["host.name"], "node-1");
                    assert_eq!(value["host"]["ip"], "10.0.0.1");
                    assert_eq!(value["stream"], 7);
                } else {
                    assert_eq!(value["host"]["name"], "node-1");
                    assert_eq!(
                        value.get("stream"),
                        stream.map(|s| json!(s.as_str())).as_ref()
                    );
                }
            }
        }
    }

    #[test]
    fn a_held_raw_line_is_rebuilt_into_the_same_document() {
        let mut builder = builder();
        let lines: [&[u8]; 4] = [
            br#"{"request_id":"r","ts":1700000000000,"level":"debug"}"#,
            br#"{"request_id":"r","ts":1700000000040,"msg":"second, with a delta"}"#,
            br#"{"msg":"no id and no time: the clock's time at read"}"#,
            br#"{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","level":"info"}"#,
        ];
        for (index, line) in lines.into_iter().enumerate() {
            let mut read = event(line, false);
            if index == 2 {
                read.runtime_time = None;
            }
            let (stream, flags) = (read.stream, read.flags);
            let built = builder.build(read);
            let doc = built.record.doc.clone();
            let raw = RawRecord::keep(
                &mut LinePool::default(),
                line,
                stream,
                flags,
                built.origin,
                built.record.ack,
                built.replay,
            );
            // Time passes and other lines of the request arrive while it is held.
            builder.build(event(br#"{"request_id":"r","ts":1700000009000}"#, false));
            let rebuilt = builder.rebuild(raw);
            assert_eq!(
                String::from_utf8_lossy(&rebuilt.doc),
                String::from_utf8_lossy(&doc),
                "line {index}"
            );
        }
    }

    #[test]
    fn a_line_held_before_its_document_is_written_leaves_as_the_same_document() {
        let (mut building, mut holding) = (builder(), builder());
        let first = br#"{"request_id":"r","ts":1700000000000,"level":"debug"}"#;
        let second = br#"{"request_id":"r","ts":1700000000040,"level":"debug","msg":"x"}"#;
        building.build(event(first, false));
        holding.build(event(first, false));
        let expected = building.build(event(second, false)).record.doc;
        let mut asked = None;
        let held = match holding.build_or_hold(event(second, false), |key, level| {
            asked = Some((key.clone(), level));
            true
        }) {
            Built::Raw(held) => held,
            Built::Document(_) => panic!("hold said yes"),
        };
        assert_eq!(
            asked,
            Some((RecordKey::Request(RequestKey::new("r")), Some(Level::Debug)))
        );
        assert_eq!(held.key, RecordKey::Request(RequestKey::new("r")));
        let rebuilt = holding.rebuild(held.raw);
        assert_eq!(
            String::from_utf8_lossy(&rebuilt.doc),
            String::from_utf8_lossy(&expected)
        );
        // A line that is not a JSON object is never held.
        let wrapped = holding.build_or_hold(event(b"panic: boom", false), |_, _| true);
        assert!(matches!(wrapped, Built::Document(_)));
    }

    #[test]
    fn request_delta_counts_from_the_request_s_first_line() {
        let mut builder = builder();
        let at = |ms: u64| format!(r#"{{"request_id":"r","ts":{}}}"#, 1_700_000_000_000u64 + ms);
        let mut deltas = Vec::new();
        for ms in [0, 40, 45] {
            let built = builder.build(event(at(ms).as_bytes(), false));
            let value: Value = serde_json::from_slice(&built.record.doc).unwrap();
            let request = &value["hindsight"]["request"];
            deltas.push((
                request["elapsed_ms"].clone(),
                request["since_previous_ms"].clone(),
            ));
        }
        assert_eq!(
            deltas,
            [
                (json!(0), json!(0)),
                (json!(40), json!(40)),
                (json!(45), json!(5))
            ]
        );
    }

    #[test]
    fn a_line_with_one_id_gets_the_other_from_the_proxy_pair() {
        let mut builder = builder();
        let trace = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        builder.learn_pair("req-7", trace);
        let built = builder.build(event(br#"{"request_id":"req-7"}"#, false));
        let value: Value = serde_json::from_slice(&built.record.doc).unwrap();
        assert_eq!(value["trace"]["id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        let built = build_keyed(
            &mut builder,
            event(br#"{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}"#, false),
        );
        let value: Value = serde_json::from_slice(&built.record.doc).unwrap();
        assert_eq!(value["http"]["request"]["id"], "req-7");
        assert_eq!(
            built.key,
            Some(RecordKey::Request(RequestKey::new("req-7")))
        );
    }

    #[test]
    fn lines_without_ids_are_keyed_by_their_stream_and_get_no_invented_id() {
        let built = build_keyed(&mut builder(), event(br#"{"msg":"startup"}"#, false));
        let value: Value = serde_json::from_slice(&built.record.doc).unwrap();
        assert!(value.get("trace").is_none() && value.get("http").is_none());
        assert!(matches!(
            built.key,
            Some(RecordKey::Stream(_, Some(Stream::Stderr)))
        ));
    }

    #[test]
    fn json_object_keeps_its_bytes_and_gains_agent_fields() {
        let line = br#"{"level":"info","msg":"ok","ts":1700000000.5}"#;
        let (value, record, outcome) = build(line, false);
        assert!(record.doc.starts_with(&line[..line.len() - 1]));
        assert_eq!(outcome, BuildOutcome::default());
        assert_eq!(value["@timestamp"], "2023-11-14T22:13:20.500Z");
        assert_eq!(record.timestamp_millis, 1_700_000_000_500);
        assert_eq!(value["kubernetes"]["namespace"], "shop");
        assert_eq!(
            value["kubernetes"]["pod"],
            json!({"name": "cart-7d", "uid": "0a1b"})
        );
        assert_eq!(value["kubernetes"]["container"]["name"], "cart");
        assert_eq!(value["host"]["name"], "node-1");
        assert_eq!(
            value["log"]["file"]["path"],
            "/var/log/pods/shop_cart-7d_0a1b/cart/0.log"
        );
        assert_eq!(value["stream"], "stderr");
    }

    #[test]
    fn held_line_buffers_are_recycled_by_size_within_a_bound() {
        let mut pool = LinePool::default();
        let first = pool.take(b"0123456789");
        assert_eq!((&first[..], first.capacity()), (&b"0123456789"[..], 32));
        let at = first.as_ptr();
        pool.give(first);
        // A line of the same step gets the same buffer back, holding only itself.
        let again = pool.take(b"abc");
        assert_eq!((again.as_ptr(), &again[..]), (at, &b"abc"[..]));
        pool.give(again);
        // Another step does not (the buffer above is pooled, so not free to reuse).
        let longer = pool.take(&[b'x'; 40]);
        assert_eq!(longer.capacity(), 64);
        assert_ne!(longer.as_ptr(), at);
        // Buffers the pool did not make, too large, or beyond its bound are freed.
        pool.give(Vec::with_capacity(33));
        pool.give(Vec::new());
        pool.give(Vec::with_capacity(LinePool::LARGEST + LinePool::STEP));
        assert_eq!(pool.bytes, LinePool::STEP);
        for _ in 0..LinePool::MAX_BYTES / LinePool::LARGEST + 10 {
            pool.give(Vec::with_capacity(LinePool::LARGEST));
        }
        // Full: another buffer of the largest size would not fit.
        assert!(pool.bytes <= LinePool::MAX_BYTES);
        assert!(pool.bytes + LinePool::LARGEST > LinePool::MAX_BYTES);
    }

    #[test]
    fn every_document_is_one_line() {
        // Raw newlines can reach the builder from Docker's unescaped `log` text: between
        // tokens (valid JSON), inside a string (not JSON: wrapped), or in plain text.
        for line in [
            &b"{\"msg\":\n\"ok\",\r\n\"n\":[1,\n2]}"[..],
            b"{\"msg\":\"a\nb\"}",
            b"not json\nat all",
        ] {
            let (value, record, _) = build(line, false);
            assert!(!record.doc.contains(&b'\n'), "{value}");
        }
        let (value, _, outcome) = build(b"{\"msg\":\n\"ok\",\r\n\"n\":[1,\n2]}", false);
        assert_eq!(outcome.wrapped, None);
        assert_eq!((&value["msg"], &value["n"]), (&json!("ok"), &json!([1, 2])));
    }

    #[test]
    fn documents_cut_from_one_chunk_equal_those_built_alone() {
        // Short lines, lines that grow six-fold when wrapped and escaped, and lines
        // longer than a chunk, so that documents start new chunks and outgrow them.
        let control = "\u{1}".repeat(3_000);
        let long = format!(r#"{{"msg":"{}"}}"#, "x".repeat(70_000));
        let lines: Vec<&[u8]> = vec![
            br#"{"msg":"short"}"#,
            control.as_bytes(),
            long.as_bytes(),
            b"not json",
            br#"{"msg":"after"}"#,
        ];
        let mut shared = builder();
        for round in 0..40 {
            let line = lines[round % lines.len()];
            let cut = shared.build(event(line, false)).record.doc;
            let alone = builder().build(event(line, false)).record.doc;
            assert!(cut == alone, "round {round}: documents differ");
        }
    }

    #[test]
    fn runtime_time_is_used_when_the_record_has_none() {
        let (value, record, _) = build(br#"{"msg":"x"}"#, false);
        assert_eq!(value["@timestamp"], "2026-11-23T10:00:00.123456789Z");
        assert_eq!(record.timestamp_millis, 1_795_428_000_123);
    }

    #[test]
    fn own_timestamp_is_kept_and_chooses_the_index_day() {
        let (value, record, _) =
            build(br#"{"@timestamp":"2025-01-02T03:04:05Z","msg":"x"}"#, false);
        assert_eq!(value["@timestamp"], "2025-01-02T03:04:05Z");
        assert_eq!(record.timestamp_millis, 1_735_787_045_000);
        // An unparseable @timestamp is kept as written; the runtime time picks the index.
        let (value, record, _) = build(br#"{"@timestamp":"soon","msg":"x"}"#, false);
        assert_eq!(value["@timestamp"], "soon");
        assert_eq!(record.timestamp_millis, 1_795_428_000_123);
    }

    #[test]
    fn conflicting_roots_merge_or_stay_untouched() {
        let (value, record, _) = build(
            br#"{"host":"web-1","log":{"level":"warn"},"stream":"x"}"#,
            false,
        );
        assert_eq!(value["host"], "web-1");
        assert_eq!(value["stream"], "x");
        assert_eq!(value["log"]["level"], "warn");
        assert_eq!(
            value["log.file.path"],
            "/var/log/pods/shop_cart-7d_0a1b/cart/0.log"
        );
        let text = std::str::from_utf8(&record.doc).unwrap();
        assert_eq!(text.matches("\"stream\"").count(), 1, "{text}");
    }

    #[test]
    fn lines_that_are_not_objects_are_wrapped_with_a_reason() {
        for (line, truncated, tag) in [
            (
                &b"plain text \"quoted\"\n\ttab"[..],
                false,
                "hindsight.not_json",
            ),
            (b"[1,2,3]", false, "hindsight.not_object"),
            (b"42", false, "hindsight.not_object"),
            (br#"{"msg":"cut he"#, true, "hindsight.truncated"),
            (br#"{"complete":true}"#, true, "hindsight.truncated"),
        ] {
            let (value, _, outcome) = build(line, truncated);
            assert_eq!(value["message"], String::from_utf8_lossy(line).as_ref());
            assert_eq!(value["tags"], json!([tag]));
            assert_eq!(outcome.wrapped.map(WrapReason::tag), Some(tag));
            assert_eq!(value["kubernetes"]["namespace"], "shop");
        }
    }

    #[test]
    fn invalid_utf8_is_replaced_and_the_object_kept() {
        let (value, _, outcome) = build(b"{\"msg\":\"caf\xe9\"}", false);
        assert!(outcome.invalid_utf8);
        assert_eq!(outcome.wrapped, None);
        assert_eq!(value["msg"], "caf\u{fffd}");
        let (value, _, outcome) = build(b"not json \xff", false);
        assert!(outcome.invalid_utf8);
        assert_eq!(value["message"], "not json \u{fffd}");
    }

    #[test]
    fn request_keys_compare_by_their_id_inline_or_not() {
        use std::collections::hash_map::RandomState;
        use std::hash::BuildHasher;

        let long = "r".repeat(100);
        let hasher = RandomState::new();
        for id in [
            "req-1",
            "0b8e1b4c-7f4e-4a57-9d2a-3f9d9c1e2b7a",
            long.as_str(),
        ] {
            let key = RecordKey::Request(RequestKey::new(id));
            let again = RecordKey::Request(RequestKey::new(id));
            assert_eq!(key, again);
            assert_eq!(hasher.hash_one(&key), hasher.hash_one(&again));
            assert_eq!(key.sample_bytes().as_ref(), id.as_bytes());
            let prefix = RecordKey::Request(RequestKey::new(&id[..id.len() - 1]));
            assert_ne!(key, prefix);
        }
    }
}
