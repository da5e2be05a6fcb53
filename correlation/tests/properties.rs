//! Property tests: id and traceparent round trips, parsers that never panic, and
//! extraction plus field splicing on arbitrary records.

use std::fmt;

use hindsight_correlation::ecs::{AddedFields, Field};
use hindsight_correlation::extract::FieldSet;
use hindsight_correlation::ids::{RequestId, SpanId, TraceId};
use hindsight_correlation::json::{NotAnObject, ObjectWriter};
use hindsight_correlation::propagation::{
    parse_b3_single, parse_uber_trace_id, TraceFlags, Traceparent,
};
use hindsight_correlation::request_delta::RequestDelta;
use proptest::prelude::*;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

proptest! {
    #[test]
    fn trace_id_format_parse_round_trip(value in 1u128..) {
        let id = TraceId::from_u128(value).unwrap();
        let text = id.to_string();
        prop_assert_eq!(text.len(), 32);
        prop_assert!(text.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)));
        prop_assert_eq!(text.parse::<TraceId>(), Ok(id));
        prop_assert_eq!(TraceId::from_hex(&text.to_uppercase()), Ok(id));
        prop_assert_eq!(TraceId::from_bytes(id.to_bytes()), Some(id));
    }

    #[test]
    fn span_id_format_parse_round_trip(value in 1u64..) {
        let id = SpanId::from_u64(value).unwrap();
        let text = id.to_string();
        prop_assert_eq!(text.len(), 16);
        prop_assert_eq!(text.parse::<SpanId>(), Ok(id));
        prop_assert_eq!(SpanId::from_decimal(&value.to_string()), Ok(id));
        prop_assert_eq!(TraceId::from_decimal(&value.to_string()).map(TraceId::to_u128), Ok(u128::from(value)));
    }

    #[test]
    fn traceparent_format_parse_round_trip(trace in 1u128.., span in 1u64.., flags: u8) {
        let parent = Traceparent {
            version: 0,
            trace_id: TraceId::from_u128(trace).unwrap(),
            parent_id: SpanId::from_u64(span).unwrap(),
            flags: TraceFlags(flags),
        };
        let text = parent.to_string();
        prop_assert_eq!(text.len(), Traceparent::LEN);
        prop_assert_eq!(Traceparent::parse(&text), Ok(parent));
    }

    #[test]
    fn parsed_traceparents_format_back_to_version_00(text in "[0-9a-fA-F-]{0,70}|\\PC{0,80}") {
        if let Ok(parent) = Traceparent::parse(&text) {
            let again = Traceparent::parse(&parent.to_string()).unwrap();
            prop_assert_eq!((again.trace_id, again.parent_id, again.flags), (parent.trace_id, parent.parent_id, parent.flags));
        }
    }

    #[test]
    fn header_parsers_never_panic(text in "\\PC{0,80}|[0-9a-f:%3A-]{0,80}") {
        let _ = Traceparent::parse(&text);
        let _ = parse_b3_single(&text);
        let _ = parse_uber_trace_id(&text);
        let _ = RequestId::new(&text);
    }

    #[test]
    fn request_ids_within_bounds_round_trip(text in "[!-~]{1,128}") {
        let id = RequestId::new(&text).unwrap();
        prop_assert_eq!(id.as_str(), text.as_str());
        prop_assert_eq!(id.to_string().parse::<RequestId>(), Ok(id));
    }

    #[test]
    fn request_ids_beyond_bounds_are_rejected(text in "[!-~]{129,300}|[!-~]{0,10}[ \\t\\n\\u{80}-\\u{10ffff}][!-~]{0,10}") {
        prop_assert!(RequestId::new(&text).is_err());
    }

    #[test]
    fn extraction_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = FieldSet::default().scan(&bytes);
    }

    #[test]
    fn extraction_never_panics_on_json_like_text(text in "[{}\\[\\]\":,. a-z0-9@_\\\\-]{0,200}") {
        let _ = FieldSet::default().scan(text.as_bytes());
    }

    /// The scan accepts a line exactly when it is one grammatical JSON object by
    /// serde_json's check, and tells valid non-objects from invalid text, on records with
    /// one byte edited.
    #[test]
    fn scan_validates_like_serde_json(
        record in object(3),
        at in any::<prop::sample::Index>(),
        edit in 0..3u8,
        byte in prop::sample::select(b"{}[]\":,.\\ \t0123456789-+eEtrufalsn/bu\x01".to_vec()),
    ) {
        let mut bytes = record.into_bytes();
        let at = at.index(bytes.len() + 1);
        match edit {
            0 => bytes.insert(at, byte),
            1 if at < bytes.len() => { bytes.remove(at); }
            _ if at < bytes.len() => bytes[at] = byte,
            _ => bytes.push(byte),
        }
        prop_assert_eq!(scan_verdict(&bytes), serde_verdict(&bytes), "{}", String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn scan_validates_json_like_text_like_serde_json(text in "[ {}\\[\\]\":,.0-9a-z\\\\-]{0,40}|\\{(\"[a-z\\\\u0-9]{0,6}\":[0-9eE.+\\-]{1,6},?){0,3}\\}") {
        prop_assert_eq!(scan_verdict(text.as_bytes()), serde_verdict(text.as_bytes()), "{}", text);
    }

    /// On any object, the added fields never collide with the original's (same path in
    /// any spelling, or one path inside the other), and the result is valid JSON that
    /// starts with the original bytes.
    #[test]
    fn added_fields_never_collide_with_the_original(record in object(3)) {
        let scan = FieldSet::default().scan(record.as_bytes()).expect("generated objects are valid");
        let mut fields = AddedFields::new();
        scan.extracted.add_ecs_fields(&mut fields);
        RequestDelta::default().add_ecs_fields(&mut fields);
        fields.push(Field::LogFilePath, "/var/log/x.log");
        let mut out = bytes::BytesMut::new();
        let mut doc = ObjectWriter::splice(&mut out, record.as_bytes(), &scan.top);
        fields.write(&mut doc, &scan.top);
        doc.finish();
        let text = String::from_utf8(out.to_vec()).unwrap();
        prop_assert!(text.starts_with(&record[..record.len() - 1]));

        let before = leaves(&record);
        let after = leaves(&text);
        let mut added = after.clone();
        for path in &before {
            if let Some(at) = added.iter().position(|known| known == path) {
                added.remove(at);
            }
        }
        prop_assert_eq!(after.len(), before.len() + added.len(), "original leaves all kept");
        for path in &added {
            let clashes = after.iter().filter(|other| {
                *other == path || inside(other, path) || inside(path, other)
            }).count();
            prop_assert_eq!(clashes, 1, "{} collides in {}", path, text);
        }
    }
}

/// What the scan makes of a line: an object, valid JSON of another kind, or not JSON.
fn scan_verdict(bytes: &[u8]) -> &'static str {
    match FieldSet::default().scan(bytes) {
        Ok(_) => "object",
        Err(NotAnObject::NotObject) => "other JSON",
        Err(_) => "invalid",
    }
}

/// The same verdict from serde_json's grammar check (`IgnoredAny`, which like the scan
/// accepts lone surrogate escapes and numbers beyond `f64`'s range: grammatical JSON
/// that `serde_json::Value` refuses), after the UTF-8 check the scan also makes.
fn serde_verdict(bytes: &[u8]) -> &'static str {
    let grammatical = std::str::from_utf8(bytes).is_ok()
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
    match bytes.iter().find(|byte| !byte.is_ascii_whitespace()) {
        _ if !grammatical => "invalid",
        Some(b'{') => "object",
        _ => "other JSON",
    }
}

/// True when `inner` lies below `outer` (`a.b.c` below `a.b`).
fn inside(inner: &str, outer: &str) -> bool {
    inner.len() > outer.len() && inner.starts_with(outer) && inner.as_bytes()[outer.len()] == b'.'
}

/// A JSON object whose keys are mostly the ones extraction and splicing care about.
fn object(depth: u32) -> BoxedStrategy<String> {
    let key = prop::sample::select(vec![
        "log",
        "log.level",
        "level",
        "trace",
        "trace.id",
        "id",
        "span",
        "span.id",
        "http",
        "http.request",
        "request",
        "http.request.id",
        "request.id",
        "request_id",
        "reqId",
        "labels",
        "labels.correlation_id",
        "correlation_id",
        "hindsight",
        "hindsight.request",
        "file",
        "log.file",
        "path",
        "traceparent",
        "dd",
        "dd.trace_id",
        "trace_id",
        "span_id",
        "@timestamp",
        "time",
        "ts",
        "msg",
        "@mt",
    ]);
    let scalar = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("\"4bf92f3577b34da6a3ce929d0e0e4736\"".to_owned()),
        Just("\"00f067aa0ba902b7\"".to_owned()),
        Just("\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\"".to_owned()),
        Just("\"r-1\"".to_owned()),
        Just("\"info\"".to_owned()),
        Just("30".to_owned()),
        Just("1700000000.5".to_owned()),
        Just("\"12345\"".to_owned()),
        Just("[1,{\"id\":2}]".to_owned()),
        "[a-z ]{0,8}".prop_map(|text| format!("\"{text}\"")),
    ];
    let value = if depth == 0 {
        scalar.boxed()
    } else {
        prop_oneof![3 => scalar, 1 => object(depth - 1)].boxed()
    };
    prop::collection::vec((key, value), 0..6)
        .prop_map(|members| {
            let body: Vec<String> = members
                .iter()
                .map(|(key, value)| format!("\"{key}\":{value}"))
                .collect();
            format!("{{{}}}", body.join(","))
        })
        .boxed()
}

/// Every leaf of a JSON document as an expanded dotted path (a key `a.b` counts as
/// `a` → `b`, as Elasticsearch reads it), keeping duplicate keys. Arrays are leaves.
fn leaves(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut deserializer = serde_json::Deserializer::from_str(text);
    Leaves {
        prefix: String::new(),
        out: &mut out,
    }
    .deserialize(&mut deserializer)
    .expect("valid JSON");
    out
}

struct Leaves<'o> {
    prefix: String,
    out: &'o mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Leaves<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Leaves<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // An empty object is not a leaf: Elasticsearch merges added members into it.
        while let Some(key) = map.next_key::<String>()? {
            let prefix = if self.prefix.is_empty() {
                key
            } else {
                format!("{}.{key}", self.prefix)
            };
            map.next_value_seed(Leaves {
                prefix,
                out: &mut *self.out,
            })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        self.out.push(self.prefix);
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.out.push(self.prefix);
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.out.push(self.prefix);
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.out.push(self.prefix);
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.out.push(self.prefix);
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.out.push(self.prefix);
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.out.push(self.prefix);
        Ok(())
    }
}
