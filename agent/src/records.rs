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

use bytes::Bytes;
use hindsight_correlation::json::{scan_object, NotAnObject, ObjectWriter, RootUse, TopLevel};
use hindsight_correlation::time::{from_value, parse_text, Timestamp};
use hindsight_exporters::LogRecord;

use crate::event::{LogEvent, Origin};

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

/// Builds documents; holds what is the same for every record of this agent.
#[derive(Debug, Clone)]
pub struct RecordBuilder {
    host_name: String,
    buffer: Vec<u8>,
}

impl RecordBuilder {
    /// A builder that stamps `host.name` with `host_name`.
    pub fn new(host_name: impl Into<String>) -> Self {
        RecordBuilder {
            host_name: host_name.into(),
            buffer: Vec::with_capacity(4096),
        }
    }

    /// Builds the document for one event, moving its acknowledgement into the record.
    pub fn build(&mut self, event: LogEvent) -> (LogRecord, BuildOutcome) {
        let mut outcome = BuildOutcome::default();
        let line: Cow<'_, [u8]> = match std::str::from_utf8(&event.line) {
            Ok(_) => Cow::Borrowed(&event.line[..]),
            Err(_) => {
                outcome.invalid_utf8 = true;
                Cow::Owned(
                    String::from_utf8_lossy(&event.line)
                        .into_owned()
                        .into_bytes(),
                )
            }
        };
        self.buffer.clear();
        let runtime_time = event
            .runtime_time
            .as_ref()
            .and_then(|raw| std::str::from_utf8(raw).ok())
            .and_then(parse_text);
        let scanned = if event.flags.truncated {
            Err(NotAnObject::InvalidJson)
        } else {
            scan_object(&line)
        };
        let timestamp = match scanned {
            Ok(top) => {
                let own_time = top
                    .time_field()
                    .and_then(|(name, value)| from_value(value).map(|t| (name, t)));
                let mut doc = ObjectWriter::splice(&mut self.buffer, &line, &top);
                let timestamp = match own_time {
                    Some(("@timestamp", time)) => time,
                    _ => {
                        let time = own_time
                            .map(|(_, time)| time)
                            .or(runtime_time)
                            .unwrap_or_else(Timestamp::now);
                        if top.root("@timestamp") == RootUse::Absent {
                            doc.field_str("@timestamp", &time.to_rfc3339());
                        }
                        time
                    }
                };
                add_agent_fields(&mut doc, &top, &event, &self.host_name);
                doc.finish();
                timestamp
            }
            Err(not_object) => {
                let reason = if event.flags.truncated {
                    WrapReason::Truncated
                } else if not_object == NotAnObject::NotObject {
                    WrapReason::NotObject
                } else {
                    WrapReason::NotJson
                };
                outcome.wrapped = Some(reason);
                let time = runtime_time.unwrap_or_else(Timestamp::now);
                let text = String::from_utf8_lossy(&line);
                let mut doc = ObjectWriter::new(&mut self.buffer);
                doc.field_str("@timestamp", &time.to_rfc3339());
                doc.field_str("message", &text);
                doc.key("tags")
                    .extend_from_slice(format!("[\"{}\"]", reason.tag()).as_bytes());
                add_agent_fields(&mut doc, &TopLevel::default(), &event, &self.host_name);
                doc.finish();
                time
            }
        };
        let record = LogRecord {
            doc: Bytes::copy_from_slice(&self.buffer),
            timestamp_millis: timestamp.millis(),
            ack: event.ack,
        };
        (record, outcome)
    }
}

fn add_agent_fields(
    doc: &mut ObjectWriter<'_>,
    top: &TopLevel<'_>,
    event: &LogEvent,
    host_name: &str,
) {
    let origin: &Origin = &event.origin;
    if let Some(kubernetes) = &origin.kubernetes {
        let fields = |prefix: &str, doc: &mut ObjectWriter<'_>| {
            doc.field_str(&format!("{prefix}namespace"), &kubernetes.namespace);
            doc.field_str(&format!("{prefix}pod.name"), &kubernetes.pod_name);
            if let Some(uid) = &kubernetes.pod_uid {
                doc.field_str(&format!("{prefix}pod.uid"), uid);
            }
            doc.field_str(
                &format!("{prefix}container.name"),
                &kubernetes.container_name,
            );
            if let Some(id) = &kubernetes.container_id {
                doc.field_str(&format!("{prefix}container.id"), id);
            }
        };
        match top.root("kubernetes") {
            RootUse::Absent => doc.field_object("kubernetes", |inner| {
                inner.field_str("namespace", &kubernetes.namespace);
                inner.field_object("pod", |pod| {
                    pod.field_str("name", &kubernetes.pod_name);
                    if let Some(uid) = &kubernetes.pod_uid {
                        pod.field_str("uid", uid);
                    }
                });
                inner.field_object("container", |container| {
                    container.field_str("name", &kubernetes.container_name);
                    if let Some(id) = &kubernetes.container_id {
                        container.field_str("id", id);
                    }
                });
            }),
            RootUse::Object => fields("kubernetes.", doc),
            RootUse::Scalar => {}
        }
    }
    match top.root("host") {
        RootUse::Absent => doc.field_object("host", |host| host.field_str("name", host_name)),
        RootUse::Object => doc.field_str("host.name", host_name),
        RootUse::Scalar => {}
    }
    let path = origin.path.to_string_lossy();
    match top.root("log") {
        RootUse::Absent => doc.field_object("log", |log| {
            log.field_object("file", |file| file.field_str("path", &path))
        }),
        RootUse::Object => doc.field_str("log.file.path", &path),
        RootUse::Scalar => {}
    }
    if let Some(stream) = event.stream {
        if top.root("stream") == RootUse::Absent {
            doc.field_str("stream", stream.as_str());
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
            origin: Arc::new(Origin {
                path: PathBuf::from("/var/log/pods/shop_cart-7d_0a1b/cart/0.log"),
                kubernetes: Some(KubernetesOrigin {
                    namespace: "shop".into(),
                    pod_name: "cart-7d".into(),
                    pod_uid: Some("0a1b".into()),
                    container_name: "cart".into(),
                    container_id: None,
                }),
            }),
            flags: LineFlags { truncated },
            ack: Ack::none(),
        }
    }

    fn build(line: &[u8], truncated: bool) -> (Value, LogRecord, BuildOutcome) {
        let mut builder = RecordBuilder::new("node-1");
        let (record, outcome) = builder.build(event(line, truncated));
        let value = serde_json::from_slice(&record.doc).expect("documents are valid JSON");
        (value, record, outcome)
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
}
