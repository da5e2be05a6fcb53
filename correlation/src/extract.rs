//! Finding a record's request id, correlation id, trace id, span id, level and time in
//! the same single pass that validates it, without building a JSON tree.
//!
//! Each kind of value has a list of candidate fields, most preferred first. A candidate
//! is a dotted path: `http.request.id` matches the literal top-level key
//! `"http.request.id"`, nested objects `"http":{"request":{"id":…}}`, and mixed forms —
//! the same documents Elasticsearch considers equal. The first candidate in list order
//! holding a *valid* value wins, wherever it stands in the record; an unusable value (a
//! request id with spaces, a trace id that is not hex) is passed over.
//!
//! ```
//! use hindsight_correlation::extract::FieldSet;
//! use hindsight_correlation::level::Level;
//!
//! let fields = FieldSet::default();
//! let line = br#"{"level":30,"time":1700000000000,"reqId":"req-1","msg":"hello"}"#;
//! let scan = fields.scan(line).unwrap();
//! assert_eq!(scan.extracted.request_id.as_deref(), Some("req-1"));
//! assert_eq!(scan.extracted.level, Some(Level::Info));
//! assert_eq!(scan.extracted.time.unwrap().millis(), 1_700_000_000_000);
//! assert_eq!(scan.top.time_field().unwrap().0, "time");
//! ```
//!
//! # No invented ids
//!
//! A record without a request id or trace id gets none: nothing here makes one up, and
//! no `http.request.id` or `trace.id` is added to it. The pipeline keys such records by
//! the stream they came from ([`CorrelationKey::Stream`]).

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::ecs::{AddedFields, Field, FieldValue};
use crate::ids::{RequestId, SpanId, TraceId};
use crate::json::{NotAnObject, TopLevel, TIME_FIELDS};
use crate::level::Level;
use crate::propagation::Traceparent;
use crate::scan::{self, Node, Scalar, Seen, Trie, MAX_DEPTH};
use crate::time::{self, Timestamp};

/// Which fields hold a record's identity, level and time. The doc comment of each list
/// is the user's documentation; every list is tried in order, first valid value wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractConfig {
    /// Fields holding the request id. Text of 1 to 128 visible ASCII characters, or an
    /// integer (pino-http numbers its requests). The correlation id fields come last, so
    /// a record that carries only a correlation id is keyed by it.
    #[serde(default = "default_request_id")]
    pub request_id: Vec<String>,
    /// Fields holding a correlation id that may span several requests. Written as
    /// `labels.correlation_id` when it differs from the request id.
    #[serde(default = "default_correlation_id")]
    pub correlation_id: Vec<String>,
    /// Fields holding a trace id as hex: 32 digits, or 16 for a 64-bit id (zero-padded);
    /// either case. An integer is taken as a decimal 64-bit id.
    #[serde(default = "default_trace_id")]
    pub trace_id: Vec<String>,
    /// Fields holding a span id as 16 hex digits, either case (an integer: decimal).
    #[serde(default = "default_span_id")]
    pub span_id: Vec<String>,
    /// Fields holding a W3C `traceparent` value. Its trace id is used after the
    /// `trace_id` fields; its parent id after the `span_id` fields (it is the span that
    /// was current where the value was taken, which may be the caller's).
    #[serde(default = "default_traceparent")]
    pub traceparent: Vec<String>,
    /// Fields holding a Datadog trace id: a decimal 64-bit number (text or integer),
    /// written as 32 hex digits zero-padded; or 32 hex digits (128-bit ids). Used last.
    #[serde(default = "default_datadog_trace_id")]
    pub datadog_trace_id: Vec<String>,
    /// Fields holding a Datadog span id: a decimal 64-bit number. Used last.
    #[serde(default = "default_datadog_span_id")]
    pub datadog_span_id: Vec<String>,
    /// Fields holding the level: names (`info`, `Warning`, `CRITICAL`, …), pino/bunyan
    /// numbers 10–60, syslog numbers 0–7. See [`Level::from_text`].
    #[serde(default = "default_level")]
    pub level: Vec<String>,
    /// Fields whose presence, when no level field is found, means the record is at info
    /// level: Serilog's compact JSON (CLEF) writes `@l` only when the level is not
    /// Information.
    #[serde(default = "default_info_when_present")]
    pub info_when_present: Vec<String>,
    /// Fields holding the record's time: RFC 3339 text or epoch seconds, milliseconds,
    /// microseconds or nanoseconds (told apart by magnitude).
    #[serde(default = "default_time")]
    pub time: Vec<String>,
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

/// `request_id`, `requestId`, `req_id`, `reqId`, `x_request_id`, `http.request.id`,
/// `RequestId` (ASP.NET Core, Serilog), `correlation_id`, `correlationId`.
pub fn default_request_id() -> Vec<String> {
    strings(&[
        "request_id",
        "requestId",
        "req_id",
        "reqId",
        "x_request_id",
        "http.request.id",
        "RequestId",
        "correlation_id",
        "correlationId",
    ])
}

/// `correlation_id`, `correlationId`.
pub fn default_correlation_id() -> Vec<String> {
    strings(&["correlation_id", "correlationId"])
}

/// `trace_id`, `traceId`, `trace.id`, `TraceId`, `@tr` (Serilog compact JSON 2.x).
pub fn default_trace_id() -> Vec<String> {
    strings(&["trace_id", "traceId", "trace.id", "TraceId", "@tr"])
}

/// `span_id`, `spanId`, `span.id`, `SpanId`, `@sp` (Serilog compact JSON 2.x).
pub fn default_span_id() -> Vec<String> {
    strings(&["span_id", "spanId", "span.id", "SpanId", "@sp"])
}

/// `traceparent`.
pub fn default_traceparent() -> Vec<String> {
    strings(&["traceparent"])
}

/// `dd.trace_id`.
pub fn default_datadog_trace_id() -> Vec<String> {
    strings(&["dd.trace_id"])
}

/// `dd.span_id`.
pub fn default_datadog_span_id() -> Vec<String> {
    strings(&["dd.span_id"])
}

/// `level`, `severity`, `lvl`, `levelname`, `log.level`, `@l`.
pub fn default_level() -> Vec<String> {
    strings(&["level", "severity", "lvl", "levelname", "log.level", "@l"])
}

/// `@mt`, `@m` (Serilog compact JSON).
pub fn default_info_when_present() -> Vec<String> {
    strings(&["@mt", "@m"])
}

/// The agent's [`TIME_FIELDS`]: `@timestamp`, `time`, `timestamp`, `ts`, `@t`, `t`.
pub fn default_time() -> Vec<String> {
    strings(TIME_FIELDS)
}

impl Default for ExtractConfig {
    fn default() -> Self {
        ExtractConfig {
            request_id: default_request_id(),
            correlation_id: default_correlation_id(),
            trace_id: default_trace_id(),
            span_id: default_span_id(),
            traceparent: default_traceparent(),
            datadog_trace_id: default_datadog_trace_id(),
            datadog_span_id: default_datadog_span_id(),
            level: default_level(),
            info_when_present: default_info_when_present(),
            time: default_time(),
        }
    }
}

/// A candidate field that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{list}: field {path:?} {reason}")]
pub struct FieldError {
    /// The config list it is in (`request_id`, `level`, …).
    pub list: &'static str,
    /// The path as written.
    pub path: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Every unusable candidate field of a config, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<FieldError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

fn check_path(list: &'static str, path: &str) -> Result<(), FieldError> {
    let reason = if path.is_empty() {
        "is empty"
    } else if path.split('.').any(str::is_empty) {
        "has an empty segment (a leading, trailing or doubled '.')"
    } else if path.split('.').count() > MAX_DEPTH {
        "is nested more than 8 levels deep"
    } else if path.len() > 256 {
        "is longer than 256 bytes"
    } else {
        return Ok(());
    };
    Err(FieldError {
        list,
        path: path.to_owned(),
        reason,
    })
}

/// What a value found at a trie node is used for; the number is its rank in its slot
/// (lower wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    RequestId(u16),
    CorrelationId(u16),
    TraceHex(u16),
    TraceDatadog(u16),
    SpanHex(u16),
    SpanDatadog(u16),
    Traceparent { trace: u16, span: u16 },
    Level(u16),
    Time(u16),
    InfoWhenPresent,
}

impl ExtractConfig {
    /// Checks every path and compiles the lists into a [`FieldSet`]; all errors at once.
    pub fn build(&self) -> Result<FieldSet, ConfigErrors> {
        let mut trie = Trie::agent();
        let mut errors = Vec::new();
        let mut add = |list: &'static str, paths: &[String], target: &dyn Fn(u16) -> Target| {
            for (rank, path) in paths.iter().enumerate() {
                match check_path(list, path) {
                    Ok(()) => {
                        let node = trie.insert(path);
                        trie.node_mut(node).targets.push(target(rank as u16));
                    }
                    Err(error) => errors.push(error),
                }
            }
        };
        // Ranks are shared within a slot: a list used later in the slot starts after the
        // lists before it.
        let traces = self.trace_id.len() as u16;
        let spans = self.span_id.len() as u16;
        let parents = self.traceparent.len() as u16;
        add("request_id", &self.request_id, &Target::RequestId);
        add(
            "correlation_id",
            &self.correlation_id,
            &Target::CorrelationId,
        );
        add("trace_id", &self.trace_id, &Target::TraceHex);
        add("span_id", &self.span_id, &Target::SpanHex);
        add("traceparent", &self.traceparent, &|rank| {
            Target::Traceparent {
                trace: traces + rank,
                span: spans + rank,
            }
        });
        add("datadog_trace_id", &self.datadog_trace_id, &|rank| {
            Target::TraceDatadog(traces + parents + rank)
        });
        add("datadog_span_id", &self.datadog_span_id, &|rank| {
            Target::SpanDatadog(spans + parents + rank)
        });
        add("level", &self.level, &Target::Level);
        add("info_when_present", &self.info_when_present, &|_| {
            Target::InfoWhenPresent
        });
        add("time", &self.time, &Target::Time);
        if errors.is_empty() {
            Ok(FieldSet { trie })
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

/// A compiled [`ExtractConfig`]: scans records. Cheap to share (`&FieldSet` across threads).
#[derive(Debug, Clone)]
pub struct FieldSet {
    trie: Trie,
}

impl Default for FieldSet {
    /// The [`ExtractConfig::default`] fields.
    fn default() -> Self {
        ExtractConfig::default()
            .build()
            .unwrap_or_else(|_| FieldSet {
                trie: Trie::agent(),
            })
    }
}

/// One record's scan: its top level (for splicing) and its identity.
#[derive(Debug)]
pub struct Scan<'a> {
    /// Time fields and the use of the agent's roots and paths, as [`crate::json::scan_object`] reads them.
    pub top: TopLevel<'a>,
    /// The request and trace identity, level and time found.
    pub extracted: Extracted<'a>,
}

impl FieldSet {
    /// A set with no candidate fields: only what [`crate::json::scan_object`] reads.
    pub fn agent_only() -> &'static FieldSet {
        static AGENT_ONLY: OnceLock<FieldSet> = OnceLock::new();
        AGENT_ONLY.get_or_init(|| FieldSet {
            trie: Trie::agent(),
        })
    }

    /// Validates `line` as one JSON object (as [`crate::json::scan_object`] does) and,
    /// in the same pass, finds the configured fields. Never panics on any input.
    pub fn scan<'a>(&self, line: &'a [u8]) -> Result<Scan<'a>, NotAnObject> {
        let text = std::str::from_utf8(line).map_err(|_| NotAnObject::InvalidUtf8)?;
        self.scan_str(text)
    }

    /// [`FieldSet::scan`] of a line already known to be UTF-8.
    pub fn scan_str<'a>(&self, line: &'a str) -> Result<Scan<'a>, NotAnObject> {
        let mut hits = Hits::default();
        let top = scan::scan(line, &self.trie, &mut hits)?;
        Ok(Scan {
            top,
            extracted: hits.finish(),
        })
    }
}

/// What a record says about itself. Strings are borrowed from the line unless they had
/// to be unescaped (or were numbers).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extracted<'a> {
    /// The request id (valid per [`RequestId`]'s bounds).
    pub request_id: Option<Cow<'a, str>>,
    /// The correlation id (valid per [`RequestId`]'s bounds).
    pub correlation_id: Option<Cow<'a, str>>,
    /// The trace id.
    pub trace_id: Option<TraceId>,
    /// The span id.
    pub span_id: Option<SpanId>,
    /// The level.
    pub level: Option<Level>,
    /// The record's own time.
    pub time: Option<Timestamp>,
}

/// What groups a record with others of the same request, in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CorrelationKey<'a> {
    /// The record's request id.
    Request(&'a str),
    /// No request id, but a trace id.
    Trace(TraceId),
    /// Neither: no id is invented; the record is keyed by the stream it came from
    /// (its file or pipe), which the caller knows and this crate does not.
    Stream,
}

impl<'a> Extracted<'a> {
    /// The key that groups this record: request id, else trace id, else its stream.
    pub fn key(&self) -> CorrelationKey<'_> {
        match (&self.request_id, self.trace_id) {
            (Some(request_id), _) => CorrelationKey::Request(request_id),
            (None, Some(trace_id)) => CorrelationKey::Trace(trace_id),
            (None, None) => CorrelationKey::Stream,
        }
    }

    /// The request id as an owned [`RequestId`].
    pub fn request_id(&self) -> Option<RequestId> {
        self.request_id
            .as_deref()
            .and_then(|id| RequestId::new(id).ok())
    }

    /// Adds the normalised ECS fields for what was found: `trace.id`, `span.id`,
    /// `http.request.id`, `labels.correlation_id` (only when it differs from the request
    /// id) and `log.level` (lower case). Nothing is added for what was not found.
    /// [`AddedFields::write`] then leaves out any the original already has.
    pub fn add_ecs_fields<'s>(&'s self, fields: &mut AddedFields<'s>) {
        if let Some(trace_id) = self.trace_id {
            fields.push(Field::TraceId, FieldValue::TraceId(trace_id));
        }
        if let Some(span_id) = self.span_id {
            fields.push(Field::SpanId, FieldValue::SpanId(span_id));
        }
        if let Some(request_id) = &self.request_id {
            fields.push(Field::HttpRequestId, FieldValue::Str(request_id));
        }
        if let Some(correlation_id) = &self.correlation_id {
            if self.request_id.as_deref() != Some(&**correlation_id) {
                fields.push(Field::LabelsCorrelationId, FieldValue::Str(correlation_id));
            }
        }
        if let Some(level) = self.level {
            fields.push(Field::LogLevel, FieldValue::Str(level.as_str()));
        }
    }

    /// Copies borrowed strings so the result outlives the line.
    pub fn into_owned(self) -> Extracted<'static> {
        Extracted {
            request_id: self.request_id.map(|id| Cow::Owned(id.into_owned())),
            correlation_id: self.correlation_id.map(|id| Cow::Owned(id.into_owned())),
            trace_id: self.trace_id,
            span_id: self.span_id,
            level: self.level,
            time: self.time,
        }
    }
}

/// Slots in [`Hits::ranks`].
const REQUEST: usize = 0;
const CORRELATION: usize = 1;
const TRACE: usize = 2;
const SPAN: usize = 3;
const LEVEL: usize = 4;
const TIME: usize = 5;

/// What the scan found so far: the best value per slot and which agent paths are taken.
#[derive(Debug)]
pub(crate) struct Hits<'a> {
    extracted: Extracted<'a>,
    ranks: [u16; 6],
    info_when_present: bool,
    pub(crate) occupied: u32,
}

impl Default for Hits<'_> {
    fn default() -> Self {
        Hits {
            extracted: Extracted::default(),
            ranks: [u16::MAX; 6],
            info_when_present: false,
            occupied: 0,
        }
    }
}

impl<'a> Hits<'a> {
    /// Records the value seen at `node`.
    pub(crate) fn record(&mut self, node: &Node, seen: &Seen<'a>) {
        self.occupied |= node.occupies;
        if !seen.object {
            self.occupied |= node.blocks;
        }
        for target in &node.targets {
            if let Target::InfoWhenPresent = target {
                self.info_when_present = true;
            } else if let Some(scalar) = &seen.scalar {
                self.hit(*target, scalar, seen);
            }
        }
    }

    /// True when `rank` beats what the slot holds.
    fn better(&self, slot: usize, rank: u16) -> bool {
        rank < self.ranks[slot]
    }

    // Kept out of `record`: inlined, the set-up of all its arms (stack slots, conversions
    // for the time and level arms) ran on every call, whichever arm the target needed
    // (3.5 % of the agent's instructions).
    #[inline(never)]
    fn hit(&mut self, target: Target, scalar: &Scalar<'a>, seen: &Seen<'a>) {
        match target {
            Target::RequestId(rank) if self.better(REQUEST, rank) => {
                if let Some(id) = request_id(scalar) {
                    self.extracted.request_id = Some(id);
                    self.ranks[REQUEST] = rank;
                }
            }
            Target::CorrelationId(rank) if self.better(CORRELATION, rank) => {
                if let Some(id) = request_id(scalar) {
                    self.extracted.correlation_id = Some(id);
                    self.ranks[CORRELATION] = rank;
                }
            }
            Target::TraceHex(rank) | Target::TraceDatadog(rank) if self.better(TRACE, rank) => {
                let id = match (target, scalar) {
                    (_, Scalar::U64(number)) => TraceId::from_u64(*number),
                    (Target::TraceHex(_), Scalar::Str(text)) => trace_hex(text),
                    (_, Scalar::Str(text)) if text.len() == 32 => TraceId::from_hex(text).ok(),
                    (_, Scalar::Str(text)) => TraceId::from_decimal(text).ok(),
                    _ => None,
                };
                if let Some(id) = id {
                    self.extracted.trace_id = Some(id);
                    self.ranks[TRACE] = rank;
                }
            }
            Target::SpanHex(rank) | Target::SpanDatadog(rank) if self.better(SPAN, rank) => {
                let id = match (target, scalar) {
                    (_, Scalar::U64(number)) => SpanId::from_u64(*number),
                    (Target::SpanHex(_), Scalar::Str(text)) => SpanId::from_hex(text).ok(),
                    (_, Scalar::Str(text)) => SpanId::from_decimal(text).ok(),
                    _ => None,
                };
                if let Some(id) = id {
                    self.extracted.span_id = Some(id);
                    self.ranks[SPAN] = rank;
                }
            }
            Target::Traceparent { trace, span }
                if self.better(TRACE, trace) || self.better(SPAN, span) =>
            {
                let Scalar::Str(text) = scalar else { return };
                let Ok(parent) = Traceparent::parse(text) else {
                    return;
                };
                if self.better(TRACE, trace) {
                    self.extracted.trace_id = Some(parent.trace_id);
                    self.ranks[TRACE] = trace;
                }
                if self.better(SPAN, span) {
                    self.extracted.span_id = Some(parent.parent_id);
                    self.ranks[SPAN] = span;
                }
            }
            Target::Level(rank) if self.better(LEVEL, rank) => {
                let level = match scalar {
                    Scalar::Str(text) => Level::from_text(text),
                    Scalar::U64(number) => {
                        i64::try_from(*number).ok().and_then(Level::from_integer)
                    }
                    Scalar::I64(number) => Level::from_integer(*number),
                    Scalar::F64(number) => Level::from_number(*number),
                    _ => None,
                };
                if let Some(level) = level {
                    self.extracted.level = Some(level);
                    self.ranks[LEVEL] = rank;
                }
            }
            Target::Time(rank) if self.better(TIME, rank) => {
                if let Some(time) = time::from_value(&seen.time_value()) {
                    self.extracted.time = Some(time);
                    self.ranks[TIME] = rank;
                }
            }
            _ => {}
        }
    }

    fn finish(mut self) -> Extracted<'a> {
        if self.extracted.level.is_none() && self.info_when_present {
            self.extracted.level = Some(Level::Info);
        }
        self.extracted
    }
}

/// A request or correlation id: text within [`RequestId`]'s bounds, or an integer.
fn request_id<'a>(scalar: &Scalar<'a>) -> Option<Cow<'a, str>> {
    match scalar {
        Scalar::Str(text) => RequestId::validate(text).ok().map(|()| text.clone()),
        Scalar::U64(number) => Some(Cow::Owned(number.to_string())),
        Scalar::I64(number) => Some(Cow::Owned(number.to_string())),
        _ => None,
    }
}

/// A trace id written as hex: 32 digits, or 16 for a 64-bit id.
fn trace_hex(text: &str) -> Option<TraceId> {
    match text.len() {
        32 => TraceId::from_hex(text).ok(),
        16 => TraceId::from_short_hex(text).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
