use super::*;
use crate::ecs::AddedFields;
use crate::json::{ObjectWriter, RootUse};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

fn scan(line: &str) -> Extracted<'_> {
    FieldSet::default()
        .scan(line.as_bytes())
        .unwrap_or_else(|error| panic!("{line}: {error}"))
        .extracted
}

fn trace(hex: &str) -> Option<TraceId> {
    Some(TraceId::from_short_hex(hex).unwrap())
}

fn span(hex: &str) -> Option<SpanId> {
    Some(SpanId::from_short_hex(hex).unwrap())
}

fn millis(extracted: &Extracted<'_>) -> Option<i64> {
    extracted.time.map(Timestamp::millis)
}

/// The record with the normalised fields spliced in, and what was added.
fn normalise(line: &str) -> (serde_json::Value, String) {
    let scan = FieldSet::default().scan(line.as_bytes()).unwrap();
    let mut fields = AddedFields::new();
    scan.extracted.add_ecs_fields(&mut fields);
    let mut out = bytes::BytesMut::new();
    let mut doc = ObjectWriter::splice(&mut out, line.as_bytes(), &scan.top);
    fields.write(&mut doc, &scan.top);
    doc.finish();
    let text = String::from_utf8(out.to_vec()).unwrap();
    assert!(
        text.starts_with(&line[..line.len() - 1]),
        "original bytes kept"
    );
    let added = text[line.len() - 1..text.len() - 1].to_owned();
    (serde_json::from_str(&text).expect("valid JSON"), added)
}

// --- Real log shapes -------------------------------------------------------------------

#[test]
fn pino_fastify() {
    let line = r#"{"level":30,"time":1700000000000,"pid":1,"hostname":"h","reqId":"req-1","res":{"statusCode":200},"responseTime":3.21,"msg":"request completed"}"#;
    let found = scan(line);
    assert_eq!(found.request_id.as_deref(), Some("req-1"));
    assert_eq!(found.level, Some(Level::Info));
    assert_eq!(millis(&found), Some(1_700_000_000_000));
    assert_eq!((found.trace_id, found.span_id), (None, None));
    let (_, added) = normalise(line);
    assert_eq!(
        added,
        r#","http":{"request":{"id":"req-1"}},"log":{"level":"info"}"#
    );
}

#[test]
fn pino_http_numeric_request_id_with_a_nested_path() {
    // pino-http numbers requests and nests the id under `req`: configure `req.id`.
    let line = r#"{"level":50,"time":1700000000123,"pid":7,"hostname":"h","req":{"id":42,"method":"GET","url":"/cart","headers":{"host":"shop"}},"err":{"type":"Error","message":"boom"},"msg":"request errored"}"#;
    let config = ExtractConfig {
        request_id: vec!["req.id".into()],
        ..ExtractConfig::default()
    };
    let found = config
        .build()
        .unwrap()
        .scan(line.as_bytes())
        .unwrap()
        .extracted;
    assert_eq!(found.request_id.as_deref(), Some("42"));
    assert_eq!(found.level, Some(Level::Error));
    assert_eq!(millis(&found), Some(1_700_000_000_123));
    assert_eq!(scan(line).request_id, None, "not a default field");
}

#[test]
fn bunyan() {
    let line = r#"{"name":"checkout","hostname":"web-1","pid":4242,"req_id":"7f3a9c1e-2b4d-4e6f-8a0b-1c2d3e4f5a6b","level":50,"err":{"message":"card declined","name":"Error","stack":"Error: card declined\n    at charge (/app/pay.js:10:11)"},"msg":"payment failed","time":"2026-11-23T10:00:00.123Z","v":0}"#;
    let found = scan(line);
    assert_eq!(
        found.request_id.as_deref(),
        Some("7f3a9c1e-2b4d-4e6f-8a0b-1c2d3e4f5a6b")
    );
    assert_eq!(found.level, Some(Level::Error));
    assert_eq!(found.time.unwrap().to_rfc3339(), "2026-11-23T10:00:00.123Z");
}

#[test]
fn zap_production() {
    let line = format!(
        r#"{{"level":"info","ts":1700000000.123,"caller":"server/handler.go:42","msg":"handled request","trace_id":"{TRACE}","span_id":"{SPAN}","request_id":"r-1","status":200}}"#
    );
    let found = scan(&line);
    assert_eq!(found.trace_id, trace(TRACE));
    assert_eq!(found.span_id, span(SPAN));
    assert_eq!(found.request_id.as_deref(), Some("r-1"));
    assert_eq!(found.level, Some(Level::Info));
    assert_eq!(millis(&found), Some(1_700_000_000_123));
    let (value, _) = normalise(&line);
    assert_eq!(value["trace"]["id"], TRACE);
    assert_eq!(value["span"]["id"], SPAN);
    assert_eq!(value["http"]["request"]["id"], "r-1");
    assert_eq!(value["log"]["level"], "info");
    assert_eq!(value["level"], "info", "original untouched");
}

#[test]
fn zap_dpanic_and_go_slog_levels() {
    assert_eq!(
        scan(r#"{"level":"dpanic","ts":1700000000.5,"msg":"x"}"#).level,
        Some(Level::Error)
    );
    let slog = r#"{"time":"2026-11-23T10:00:00.000000001+01:00","level":"WARN+2","msg":"slow","request_id":"r"}"#;
    let found = scan(slog);
    assert_eq!(found.level, Some(Level::Warn));
    assert_eq!(
        found.time.unwrap().to_rfc3339(),
        "2026-11-23T09:00:00.000000001Z"
    );
}

#[test]
fn logrus() {
    let line = r#"{"level":"warning","msg":"retrying payment","time":"2026-11-23T10:00:00Z","request_id":"0190c0d4-7e1a-7c3e-9f00-2b8a1e0c9d11","attempt":2}"#;
    let found = scan(line);
    assert_eq!(found.level, Some(Level::Warn));
    assert_eq!(
        found.request_id.as_deref(),
        Some("0190c0d4-7e1a-7c3e-9f00-2b8a1e0c9d11")
    );
    assert_eq!(found.time.unwrap().to_rfc3339(), "2026-11-23T10:00:00.000Z");
    let (_, added) = normalise(line);
    assert_eq!(
        added,
        r#","http":{"request":{"id":"0190c0d4-7e1a-7c3e-9f00-2b8a1e0c9d11"}},"log":{"level":"warn"}"#
    );
}

#[test]
fn structlog() {
    let line = r#"{"event":"user logged in","user_id":17,"level":"info","timestamp":"2026-11-23T10:00:00.123456Z","request_id":"b5c1e2"}"#;
    let found = scan(line);
    assert_eq!(found.level, Some(Level::Info));
    assert_eq!(found.request_id.as_deref(), Some("b5c1e2"));
    assert_eq!(
        found.time.unwrap().to_rfc3339(),
        "2026-11-23T10:00:00.123456Z"
    );
}

#[test]
fn python_json_logger_with_datadog_injection() {
    // dd-trace-py log injection writes literal dotted keys and decimal 64-bit ids.
    let line = r#"{"asctime":"2026-11-23 10:00:00,123","levelname":"ERROR","name":"app","message":"db timeout","dd.service":"web","dd.env":"prod","dd.version":"1.2","dd.trace_id":"1234567890123456789","dd.span_id":"987654321"}"#;
    let found = scan(line);
    assert_eq!(found.level, Some(Level::Error));
    assert_eq!(
        found.trace_id.map(|id| id.to_string()),
        Some(format!("{:032x}", 1_234_567_890_123_456_789u64))
    );
    assert_eq!(
        found.trace_id.unwrap().to_string(),
        "0000000000000000112210f47de98115"
    );
    assert_eq!(found.span_id.map(|id| id.to_u64()), Some(987_654_321));
}

#[test]
fn datadog_nested_numeric_and_128_bit() {
    // dd-trace-js with pino nests `dd`; some tracers write numbers.
    let nested = r#"{"level":30,"time":1700000000000,"dd":{"trace_id":"8102387295312399406","span_id":"4823940810493412045","service":"cart"},"msg":"ok"}"#;
    let found = scan(nested);
    assert_eq!(found.trace_id.unwrap().to_u128(), 8_102_387_295_312_399_406);
    assert_eq!(found.span_id.unwrap().to_u64(), 4_823_940_810_493_412_045);
    let numeric = r#"{"dd":{"trace_id":18446744073709551615,"span_id":1}}"#;
    assert_eq!(
        scan(numeric).trace_id.unwrap().to_string(),
        "0000000000000000ffffffffffffffff"
    );
    let wide = format!(r#"{{"dd.trace_id":"{TRACE}"}}"#);
    assert_eq!(scan(&wide).trace_id, trace(TRACE));
    // A trace id field of its own wins over Datadog's.
    let both = format!(r#"{{"dd.trace_id":"1","trace_id":"{TRACE}"}}"#);
    assert_eq!(scan(&both).trace_id, trace(TRACE));
}

#[test]
fn serilog_compact_json() {
    let line = format!(
        r#"{{"@t":"2026-11-23T10:00:00.1234567Z","@mt":"Payment for {{OrderId}} failed","@l":"Warning","OrderId":17,"RequestId":"0HN7VC8PLH5N4:00000001","RequestPath":"/pay","TraceId":"{TRACE}","SpanId":"{SPAN}","SourceContext":"Shop.Payments"}}"#
    );
    let found = scan(&line);
    assert_eq!(found.level, Some(Level::Warn));
    assert_eq!(found.request_id.as_deref(), Some("0HN7VC8PLH5N4:00000001"));
    assert_eq!(found.trace_id, trace(TRACE));
    assert_eq!(found.span_id, span(SPAN));
    assert_eq!(
        found.time.unwrap().to_rfc3339(),
        "2026-11-23T10:00:00.123456700Z"
    );
}

#[test]
fn serilog_compact_json_without_level_is_information() {
    // Serilog writes `@l` only when the level is not Information; 2.x writes `@tr`/`@sp`.
    let line = format!(
        r#"{{"@t":"2026-11-23T10:00:00.1234567Z","@mt":"Hello, {{User}}","User":"ada","@tr":"{TRACE}","@sp":"{SPAN}"}}"#
    );
    let found = scan(&line);
    assert_eq!(found.level, Some(Level::Info));
    assert_eq!(found.trace_id, trace(TRACE));
    assert_eq!(found.span_id, span(SPAN));
    let rendered = r#"{"@t":"2026-11-23T10:00:00Z","@m":"Hello, ada","@l":"Error"}"#;
    assert_eq!(
        scan(rendered).level,
        Some(Level::Error),
        "an explicit level wins"
    );
    assert_eq!(scan(r#"{"msg":"no level"}"#).level, None);
}

#[test]
fn log4j2_ecs_layout() {
    // EcsLayout / JsonTemplateLayout with the ECS template: literal dotted keys.
    let line = format!(
        r#"{{"@timestamp":"2026-11-23T10:00:00.123Z","log.level":"INFO","message":"Order placed","ecs.version":"1.2.0","service.name":"orders","event.dataset":"orders","process.thread.name":"http-nio-8080-exec-1","log.logger":"com.example.OrderController","trace.id":"{TRACE}","transaction.id":"{SPAN}"}}"#
    );
    let found = scan(&line);
    assert_eq!(found.level, Some(Level::Info));
    assert_eq!(found.trace_id, trace(TRACE));
    assert_eq!(found.span_id, None, "transaction.id is not a span id field");
    assert_eq!(found.time.unwrap().to_rfc3339(), "2026-11-23T10:00:00.123Z");
    // The ECS fields are there already: nothing is added, "INFO" stays as written.
    let (value, added) = normalise(&line);
    assert_eq!(added, "");
    assert_eq!(value["log.level"], "INFO");
}

#[test]
fn log4j2_json_layout_nested() {
    let line = r#"{"instant":{"epochSecond":1700000000,"nanoOfSecond":123456000},"thread":"main","level":"ERROR","loggerName":"com.example.App","message":"failed","endOfBatch":false,"loggerFqcn":"org.apache.logging.log4j.spi.AbstractLogger","contextMap":{"requestId":"r-5"},"threadId":1,"threadPriority":5}"#;
    let config = ExtractConfig {
        request_id: vec!["contextMap.requestId".into()],
        ..ExtractConfig::default()
    };
    let found = config
        .build()
        .unwrap()
        .scan(line.as_bytes())
        .unwrap()
        .extracted;
    assert_eq!(found.level, Some(Level::Error));
    assert_eq!(found.request_id.as_deref(), Some("r-5"));
}

#[test]
fn tracing_subscriber_json() {
    let line = r#"{"timestamp":"2026-11-23T10:00:00.123456Z","level":"INFO","fields":{"message":"finished processing request","latency_ms":3},"target":"demo::http","span":{"request_id":"r-7","name":"request"},"spans":[{"request_id":"r-7","name":"request"}]}"#;
    let found = scan(line);
    assert_eq!(found.level, Some(Level::Info));
    assert_eq!(
        found.time.unwrap().to_rfc3339(),
        "2026-11-23T10:00:00.123456Z"
    );
    assert_eq!(found.request_id, None, "span fields are not a default");
    let config = ExtractConfig {
        request_id: vec!["span.request_id".into(), "request_id".into()],
        ..ExtractConfig::default()
    };
    let scan = config.build().unwrap().scan(line.as_bytes()).unwrap();
    assert_eq!(scan.extracted.request_id.as_deref(), Some("r-7"));
    // `span` is an object in the original, so `span.id` would go in as a dotted key.
    assert_eq!(scan.top.root("span"), RootUse::Object);
}

#[test]
fn ecs_nested_record() {
    let line = format!(
        r#"{{"@timestamp":"2026-11-23T10:00:00Z","log":{{"level":"debug","logger":"x"}},"http":{{"request":{{"id":"r-2","method":"GET"}}}},"trace":{{"id":"{TRACE}"}},"span":{{"id":"{SPAN}"}},"message":"m"}}"#
    );
    let found = scan(&line);
    assert_eq!(found.level, Some(Level::Debug));
    assert_eq!(found.request_id.as_deref(), Some("r-2"));
    assert_eq!(found.trace_id, trace(TRACE));
    assert_eq!(found.span_id, span(SPAN));
    assert_eq!(normalise(&line).1, "");
}

#[test]
fn traceparent_in_a_record() {
    let line = format!(r#"{{"msg":"in","traceparent":"00-{TRACE}-{SPAN}-01"}}"#);
    let found = scan(&line);
    assert_eq!(found.trace_id, trace(TRACE));
    assert_eq!(found.span_id, span(SPAN));
    // A span id field of its own wins over the traceparent's parent id.
    let line = format!(r#"{{"traceparent":"00-{TRACE}-{SPAN}-01","span_id":"1111111111111111"}}"#);
    assert_eq!(scan(&line).span_id, span("1111111111111111"));
    assert_eq!(scan(r#"{"traceparent":"00-bad"}"#).trace_id, None);
}

// --- Rules -----------------------------------------------------------------------------

#[test]
fn syslog_and_other_numeric_levels() {
    assert_eq!(scan(r#"{"severity":3}"#).level, Some(Level::Error));
    assert_eq!(scan(r#"{"severity":6}"#).level, Some(Level::Info));
    assert_eq!(scan(r#"{"lvl":"eror"}"#).level, Some(Level::Error));
    assert_eq!(scan(r#"{"severity":"CRITICAL"}"#).level, Some(Level::Fatal));
    assert_eq!(scan(r#"{"level":60}"#).level, Some(Level::Fatal));
    assert_eq!(scan(r#"{"level":10}"#).level, Some(Level::Trace));
    assert_eq!(
        scan(r#"{"level":99,"severity":"info"}"#).level,
        Some(Level::Info),
        "unusable first candidate skipped"
    );
}

#[test]
fn list_order_wins_over_record_order_and_invalid_values_are_passed_over() {
    assert_eq!(
        scan(r#"{"correlationId":"c","request_id":"r"}"#)
            .request_id
            .as_deref(),
        Some("r")
    );
    assert_eq!(
        scan(r#"{"request_id":"has space","reqId":"ok"}"#)
            .request_id
            .as_deref(),
        Some("ok")
    );
    let long = "x".repeat(129);
    assert_eq!(
        scan(&format!(r#"{{"request_id":"{long}"}}"#)).request_id,
        None
    );
    assert_eq!(scan(r#"{"request_id":""}"#).request_id, None);
    assert_eq!(
        scan(r#"{"request_id":true,"req_id":null}"#).request_id,
        None
    );
    let line = format!(r#"{{"trace_id":"not-hex","traceId":"{TRACE}"}}"#);
    assert_eq!(scan(&line).trace_id, trace(TRACE));
    let zero = "0".repeat(32);
    assert_eq!(scan(&format!(r#"{{"trace_id":"{zero}"}}"#)).trace_id, None);
    // Duplicate keys: the first one stands.
    assert_eq!(
        scan(r#"{"request_id":"a","request_id":"b"}"#)
            .request_id
            .as_deref(),
        Some("a")
    );
}

#[test]
fn trace_ids_of_64_bits_and_upper_case_are_normalised() {
    assert_eq!(
        scan(r#"{"trace_id":"A3CE929D0E0E4736"}"#)
            .trace_id
            .unwrap()
            .to_string(),
        "0000000000000000a3ce929d0e0e4736"
    );
    assert_eq!(
        scan(&format!(r#"{{"TraceId":"{}"}}"#, TRACE.to_uppercase())).trace_id,
        trace(TRACE)
    );
    assert_eq!(scan(r#"{"trace_id":"a3ce929d0e0e47"}"#).trace_id, None);
    assert_eq!(scan(r#"{"span_id":"a3ce929d"}"#).span_id, None);
}

#[test]
fn correlation_id_is_a_label_only_when_it_differs() {
    let both = r#"{"request_id":"r-1","correlation_id":"order-9"}"#;
    let found = scan(both);
    assert_eq!(
        (found.request_id.as_deref(), found.correlation_id.as_deref()),
        (Some("r-1"), Some("order-9"))
    );
    let (value, _) = normalise(both);
    assert_eq!(value["labels"]["correlation_id"], "order-9");
    assert_eq!(value["http"]["request"]["id"], "r-1");
    // Only a correlation id: it is also the request id, and no label repeats it.
    let only = r#"{"correlationId":"c-1"}"#;
    let found = scan(only);
    assert_eq!(
        (found.request_id.as_deref(), found.correlation_id.as_deref()),
        (Some("c-1"), Some("c-1"))
    );
    let (value, added) = normalise(only);
    assert_eq!(value["http"]["request"]["id"], "c-1");
    assert!(!added.contains("labels"));
}

#[test]
fn no_id_is_invented() {
    let line = r#"{"level":"info","msg":"tick","time":"2026-11-23T10:00:00Z"}"#;
    let found = scan(line);
    assert_eq!(found.key(), CorrelationKey::Stream);
    let (_, added) = normalise(line);
    assert_eq!(added, r#","log":{"level":"info"}"#);
    let traced = format!(r#"{{"trace_id":"{TRACE}"}}"#);
    assert_eq!(
        scan(&traced).key(),
        CorrelationKey::Trace(trace(TRACE).unwrap())
    );
    assert_eq!(scan(r#"{"reqId":"r"}"#).key(), CorrelationKey::Request("r"));
}

#[test]
fn dotted_paths_match_every_spelling() {
    for line in [
        r#"{"http.request.id":"r"}"#,
        r#"{"http":{"request":{"id":"r"}}}"#,
        r#"{"http":{"request.id":"r"}}"#,
        r#"{"http.request":{"id":"r"}}"#,
        r#"{"http":{"method":"GET","request":{"bytes":10,"id":"r"}}}"#,
    ] {
        assert_eq!(scan(line).request_id.as_deref(), Some("r"), "{line}");
    }
    for line in [
        r#"{"http":{"request":"r"}}"#,
        r#"{"http":"r"}"#,
        r#"{"http":{"id":"r"}}"#,
        r#"{"request":{"id":"r"}}"#,
    ] {
        assert_eq!(scan(line).request_id, None, "{line}");
    }
}

#[test]
fn strings_are_borrowed_unless_escaped() {
    let found = scan(r#"{"request_id":"plain"}"#);
    assert!(matches!(found.request_id, Some(Cow::Borrowed("plain"))));
    let found = scan(r#"{"request_id":"r\u002d1"}"#);
    assert!(matches!(found.request_id.as_ref(), Some(Cow::Owned(id)) if id == "r-1"));
    let owned = found.into_owned();
    assert_eq!(owned.request_id(), Some(RequestId::new("r-1").unwrap()));
}

#[test]
fn top_level_scan_is_the_same_as_scan_object() {
    let line = br#"{"ts":1700000000,"time":"2026-01-01T00:00:00Z","host":"h","log":{"level":"info"},"trace":{"id":"x"}}"#;
    let top = FieldSet::default().scan(line).unwrap().top;
    let plain = crate::json::scan_object(line).unwrap();
    assert_eq!(
        top.time_field().map(|(name, _)| name),
        plain.time_field().map(|(name, _)| name)
    );
    for root in crate::json::AGENT_ROOTS {
        assert_eq!(top.root(root), plain.root(root), "{root}");
    }
    assert!(top.occupied("trace.id") && plain.occupied("trace.id"));
    assert!(top.occupied("log.level"));
    assert!(!top.occupied("log.file.path"));
}

#[test]
fn not_an_object_is_an_error_not_a_panic() {
    let fields = FieldSet::default();
    for (line, expected) in [
        (&b"plain text request_id=r-1"[..], NotAnObject::InvalidJson),
        (b"[{\"request_id\":\"r\"}]", NotAnObject::NotObject),
        (b"{\"request_id\":\"r\"", NotAnObject::InvalidJson),
        (b"{\"request_id\":\"\xff\"}", NotAnObject::InvalidUtf8),
    ] {
        assert_eq!(fields.scan(line).err(), Some(expected));
    }
    // Deep nesting below a tracked prefix neither overflows nor recurses without bound.
    let deep = format!(
        r#"{{"http":{{"request":{}1{}}}}}"#,
        "{\"id\":".repeat(5_000),
        "}".repeat(5_000)
    );
    assert!(fields.scan(deep.as_bytes()).is_ok());
    let deep_array = format!(
        r#"{{"http":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(fields.scan(deep_array.as_bytes()).is_ok());
}

// --- Config ----------------------------------------------------------------------------

#[test]
fn defaults_build_and_cover_the_issue_list() {
    let config = ExtractConfig::default();
    assert!(config.build().is_ok());
    for field in [
        "request_id",
        "requestId",
        "req_id",
        "reqId",
        "x_request_id",
        "http.request.id",
        "correlation_id",
        "correlationId",
    ] {
        assert!(
            config.request_id.iter().any(|known| known == field),
            "{field}"
        );
    }
    for field in ["trace_id", "traceId", "trace.id", "TraceId"] {
        assert!(
            config.trace_id.iter().any(|known| known == field),
            "{field}"
        );
    }
    for field in ["span_id", "spanId", "span.id", "SpanId"] {
        assert!(config.span_id.iter().any(|known| known == field), "{field}");
    }
    assert_eq!(config.traceparent, ["traceparent"]);
    assert_eq!(config.datadog_trace_id, ["dd.trace_id"]);
    assert_eq!(
        config.level,
        ["level", "severity", "lvl", "levelname", "log.level", "@l"]
    );
    for field in ["ts", "time", "timestamp", "@timestamp", "@t", "t"] {
        assert!(config.time.iter().any(|known| known == field), "{field}");
    }
}

#[test]
fn config_reads_partially_and_rejects_unknown_fields() {
    let config: ExtractConfig = serde_json::from_str(r#"{"request_id":["rid"]}"#).unwrap();
    assert_eq!(config.request_id, ["rid"]);
    assert_eq!(config.level, default_level());
    assert!(serde_json::from_str::<ExtractConfig>(r#"{"request_ids":["rid"]}"#).is_err());
}

#[test]
fn config_errors_are_reported_together() {
    let config = ExtractConfig {
        request_id: vec!["".into(), "ok".into(), "a..b".into()],
        level: vec![".level".into()],
        time: vec!["a.b.c.d.e.f.g.h.i".into()],
        ..ExtractConfig::default()
    };
    let errors = config.build().unwrap_err();
    assert_eq!(
        errors
            .0
            .iter()
            .map(|error| (error.list, error.path.as_str()))
            .collect::<Vec<_>>(),
        [
            ("request_id", ""),
            ("request_id", "a..b"),
            ("level", ".level"),
            ("time", "a.b.c.d.e.f.g.h.i")
        ]
    );
    assert!(errors
        .to_string()
        .contains("request_id: field \"a..b\" has an empty segment"));
}

#[test]
fn agent_only_set_finds_nothing() {
    let line =
        br#"{"request_id":"r","level":"error","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}"#;
    assert_eq!(
        FieldSet::agent_only().scan(line).unwrap().extracted,
        Extracted::default()
    );
}

#[test]
fn numbers_read_as_serde_json_reads_them_except_out_of_range_ones() {
    // An integer id is kept as text; `-0` is a float (its sign kept), so it is no id.
    assert_eq!(scan(r#"{"reqId":42}"#).request_id.as_deref(), Some("42"));
    assert_eq!(scan(r#"{"reqId":-7}"#).request_id.as_deref(), Some("-7"));
    assert_eq!(scan(r#"{"reqId":-0}"#).request_id, None);
    // Beyond f64's range: serde_json refused the whole line; here the record is kept,
    // and no level or time is read from the infinite value.
    let huge = FieldSet::default()
        .scan(br#"{"level":1e400,"time":-1e999,"msg":"x"}"#)
        .expect("grammatical JSON is an object");
    assert_eq!(huge.extracted.level, None);
    assert_eq!(huge.extracted.time, None);
}

#[test]
fn numeric_levels_as_integers_floats_and_out_of_range() {
    for (line, level) in [
        (r#"{"level":30}"#, Some(Level::Info)),
        (r#"{"level":30.0}"#, Some(Level::Info)),
        (r#"{"level":30.5}"#, None),
        (r#"{"level":-1}"#, None),
        (r#"{"level":18446744073709551615}"#, None),
        (r#"{"level":-9223372036854775808}"#, None),
        (r#"{"level":3}"#, Some(Level::Error)),
    ] {
        assert_eq!(scan(line).level, level, "{line}");
    }
}
