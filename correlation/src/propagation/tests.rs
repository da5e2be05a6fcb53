use super::*;

const TRACE: &str = "12345678901234567890123456789012";
const SPAN: &str = "1234567890123456";

fn trace(hex: &str) -> TraceId {
    TraceId::from_short_hex(hex).unwrap()
}

fn span(hex: &str) -> SpanId {
    SpanId::from_short_hex(hex).unwrap()
}

/// Valid values from the W3C trace-context test suite (`test/test.py`) and the spec.
#[test]
fn traceparent_valid_vectors() {
    for (value, version, flags) in [
        (format!("00-{TRACE}-{SPAN}-01"), 0x00, 0x01),
        (format!("00-{TRACE}-{SPAN}-00"), 0x00, 0x00),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
            0x00,
            0x01,
        ),
        // Unknown flags are read as received.
        (format!("00-{TRACE}-{SPAN}-09"), 0x00, 0x09),
        (format!("00-{TRACE}-{SPAN}-ff"), 0x00, 0xff),
        // A later version: the first four fields are read, the rest ignored.
        (format!("cc-{TRACE}-{SPAN}-01"), 0xcc, 0x01),
        (
            format!("cc-{TRACE}-{SPAN}-01-what-the-future-will-be-like"),
            0xcc,
            0x01,
        ),
        (format!("01-{TRACE}-{SPAN}-01-"), 0x01, 0x01),
        (format!("fe-{TRACE}-{SPAN}-00-x"), 0xfe, 0x00),
        // Optional white space around the value (OWS).
        (format!(" \t00-{TRACE}-{SPAN}-01 \t"), 0x00, 0x01),
    ] {
        let parsed = Traceparent::parse(&value).unwrap_or_else(|error| panic!("{value}: {error}"));
        assert_eq!(parsed.version, version, "{value}");
        assert_eq!(parsed.flags, TraceFlags(flags), "{value}");
        assert_eq!(
            parsed.trace_id.to_string(),
            if value.contains("4bf9") {
                "4bf92f3577b34da6a3ce929d0e0e4736"
            } else {
                TRACE
            }
        );
        assert_eq!(parsed.sampled(), flags & 1 == 1);
    }
}

/// Invalid values from the W3C trace-context test suite and the spec.
#[test]
fn traceparent_invalid_vectors() {
    use TraceparentError as E;
    let zero_trace = "0".repeat(32);
    let zero_span = "0".repeat(16);
    for (value, expected) in [
        // Version.
        (format!("ff-{TRACE}-{SPAN}-01"), E::VersionFf),
        (format!("ff-{TRACE}-{SPAN}-01-later"), E::VersionFf),
        (format!(".0-{TRACE}-{SPAN}-01"), E::Version),
        (format!("0.-{TRACE}-{SPAN}-01"), E::Version),
        (format!("0-{TRACE}-{SPAN}-01"), E::Version),
        (format!("000-{TRACE}-{SPAN}-01"), E::Length),
        (format!("A0-{TRACE}-{SPAN}-01"), E::Version),
        (format!("0A-{TRACE}-{SPAN}-01"), E::Version),
        // Version 00 must be exactly 55 characters.
        (
            format!("00-{TRACE}-{SPAN}-01-what-the-future-will-not-be-like"),
            E::Length,
        ),
        (format!("00-{TRACE}-{SPAN}-01."), E::Length),
        (format!("00-{TRACE}-{SPAN}-01-"), E::Length),
        // A later version must continue with `-`.
        (
            format!("cc-{TRACE}-{SPAN}-01.what-the-future-will-not-be-like"),
            E::Length,
        ),
        // Trace id.
        (
            format!("00-{zero_trace}-{SPAN}-01"),
            E::TraceId(IdError::Zero),
        ),
        (
            format!("00-.2345678901234567890123456789012-{SPAN}-01"),
            E::TraceId(IdError::NotHex),
        ),
        (
            format!("00-1234567890123456789012345678901.-{SPAN}-01"),
            E::TraceId(IdError::NotHex),
        ),
        (
            format!("00-ABCDEF78901234567890123456789012-{SPAN}-01"),
            E::TraceId(IdError::UpperCase),
        ),
        (
            format!("00-+2345678901234567890123456789012-{SPAN}-01"),
            E::TraceId(IdError::NotHex),
        ),
        (
            format!("00-123456789012345678901234567890123-{SPAN}-01"),
            E::Length,
        ),
        (
            format!("00-1234567890123456789012345678901-{SPAN}-01"),
            E::Length,
        ),
        // Parent id.
        (
            format!("00-{TRACE}-{zero_span}-01"),
            E::ParentId(IdError::Zero),
        ),
        (
            format!("00-{TRACE}-.234567890123456-01"),
            E::ParentId(IdError::NotHex),
        ),
        (
            format!("00-{TRACE}-123456789012345.-01"),
            E::ParentId(IdError::NotHex),
        ),
        (
            format!("00-{TRACE}-ABCDEF7890123456-01"),
            E::ParentId(IdError::UpperCase),
        ),
        (format!("00-{TRACE}-12345678901234567-01"), E::Length),
        (format!("00-{TRACE}-123456789012345-01"), E::Length),
        // Both ids zero.
        (
            format!("00-{zero_trace}-{zero_span}-01"),
            E::TraceId(IdError::Zero),
        ),
        // Flags.
        (format!("00-{TRACE}-{SPAN}-.0"), E::Flags),
        (format!("00-{TRACE}-{SPAN}-0."), E::Flags),
        (format!("00-{TRACE}-{SPAN}-0A"), E::Flags),
        (format!("00-{TRACE}-{SPAN}-001"), E::Length),
        (format!("00-{TRACE}-{SPAN}-1"), E::Length),
        // Missing fields, wrong separators, empty, garbage.
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7".to_owned(),
            E::Length,
        ),
        (format!("00_{TRACE}_{SPAN}_01"), E::Separator),
        (String::new(), E::Version),
        ("é".repeat(28), E::Version),
        (
            format!("00-{}-{SPAN}-01", "é".repeat(16)),
            E::TraceId(IdError::NotHex),
        ),
        (
            format!("00-{}é-{}-01", &TRACE[..31], &SPAN[..15]),
            E::Separator,
        ),
    ] {
        assert_eq!(Traceparent::parse(&value), Err(expected), "{value:?}");
    }
}

#[test]
fn traceparent_formats_version_00_lower_case() {
    let parent = Traceparent::parse(&format!("cc-{TRACE}-{SPAN}-03-future")).unwrap();
    assert_eq!(parent.to_string(), format!("00-{TRACE}-{SPAN}-03"));
    let fresh = Traceparent::new(trace("ab"), span("cd"), false);
    assert_eq!(
        fresh.to_string(),
        "00-000000000000000000000000000000ab-00000000000000cd-00"
    );
    assert_eq!(fresh.to_string().parse::<Traceparent>(), Ok(fresh));
}

#[test]
fn tracestate_is_passed_through_and_bounded() {
    assert_eq!(
        bound_tracestate("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
        Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
    );
    assert_eq!(bound_tracestate(" a=1 , b=2 "), Some("a=1 , b=2"));
    assert_eq!(bound_tracestate(""), None);
    assert_eq!(bound_tracestate("a=1\nb=2"), None);
    assert_eq!(bound_tracestate("a=é"), None);
    let members: Vec<String> = (0..40)
        .map(|index| format!("vendor{index:02}=0123456789"))
        .collect();
    let long = members.join(",");
    let kept = bound_tracestate(&long).unwrap();
    assert!(kept.len() <= MAX_TRACESTATE_LEN);
    assert!(long.starts_with(kept) && kept.ends_with("=0123456789"));
    assert_eq!(bound_tracestate(&"x".repeat(600)), None);
}

#[test]
fn w3c_context_with_tracestate() {
    let headers = [
        (
            "TraceParent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        ),
        ("tracestate", "congo=t61rcWkgMzE"),
    ];
    let context = extract_trace_context(&headers[..]).unwrap();
    assert_eq!(
        context,
        TraceContext {
            trace_id: trace("4bf92f3577b34da6a3ce929d0e0e4736"),
            parent_span_id: span("00f067aa0ba902b7"),
            sampled: Some(false),
            tracestate: Some(Cow::Borrowed("congo=t61rcWkgMzE")),
            format: Format::W3c,
        }
    );
}

#[test]
fn several_tracestate_headers_are_joined() {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "traceparent",
        format!("00-{TRACE}-{SPAN}-01").parse().unwrap(),
    );
    headers.append("tracestate", "a=1".parse().unwrap());
    headers.append("tracestate", "b=2".parse().unwrap());
    let context = extract_trace_context(&headers).unwrap();
    assert_eq!(context.tracestate.as_deref(), Some("a=1,b=2"));
    assert_eq!(context.sampled, Some(true));
}

#[test]
fn invalid_traceparent_drops_tracestate_and_falls_through() {
    let headers = [("traceparent", "00-xyz"), ("tracestate", "a=1")];
    assert_eq!(extract_trace_context(&headers[..]), None);
    let headers = [
        ("traceparent", "ff-xyz"),
        ("tracestate", "a=1"),
        ("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"),
    ];
    let context = extract_trace_context(&headers[..]).unwrap();
    assert_eq!(context.format, Format::B3Single);
    assert_eq!(context.tracestate, None);
}

#[test]
fn w3c_wins_over_b3_and_jaeger() {
    let headers = vec![
        ("uber-trace-id".to_owned(), "1:2:0:1".to_owned()),
        (
            "b3".to_owned(),
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1".to_owned(),
        ),
        ("traceparent".to_owned(), format!("00-{TRACE}-{SPAN}-01")),
    ];
    assert_eq!(extract_trace_context(&headers).unwrap().format, Format::W3c);
    assert_eq!(
        extract_trace_context(&headers[..2]).unwrap().format,
        Format::B3Single
    );
    assert_eq!(
        extract_trace_context(&headers[..1]).unwrap().format,
        Format::Jaeger
    );
    assert_eq!(extract_trace_context(&Vec::<(String, String)>::new()), None);
}

/// Examples from the B3 spec (openzipkin/b3-propagation).
#[test]
fn b3_single_header() {
    let (trace_id, span_id, sampled) =
        parse_b3_single("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90")
            .unwrap();
    assert_eq!(trace_id, trace("80f198ee56343ba864fe8b2a57d3eff7"));
    assert_eq!(span_id, span("e457b5a2e4d86bd1"));
    assert_eq!(sampled, Some(true));
    // A 64-bit trace id is zero-padded to 128 bits.
    let (trace_id, _, sampled) = parse_b3_single("a3ce929d0e0e4736-00f067aa0ba902b7").unwrap();
    assert_eq!(trace_id.to_string(), "0000000000000000a3ce929d0e0e4736");
    assert_eq!(sampled, None);
    assert_eq!(
        parse_b3_single("a3ce929d0e0e4736-00f067aa0ba902b7-0")
            .unwrap()
            .2,
        Some(false)
    );
    assert_eq!(
        parse_b3_single("a3ce929d0e0e4736-00f067aa0ba902b7-d")
            .unwrap()
            .2,
        Some(true)
    );
    for bad in [
        "0",
        "1",
        "d",
        "",
        "a3ce929d0e0e4736",
        "a3ce929d0e0e4736-00f067aa0ba902b7-2",
        "a3ce929d0e0e4736-00f067aa0ba902b7-1-05e3ac9a4f6e3b90-x",
        "a3ce929d0e0e4736-00f067aa0ba902b7-1-05e3",
        "A3CE929D0E0E4736-00f067aa0ba902b7-1",
        "a3ce929d0e0e47-00f067aa0ba902b7-1",
        "0000000000000000-00f067aa0ba902b7-1",
        "a3ce929d0e0e4736-0000000000000000-1",
    ] {
        assert!(parse_b3_single(bad).is_err(), "{bad:?}");
    }
    let headers = [("b3", "0")];
    assert_eq!(extract_trace_context(&headers[..]), None);
}

#[test]
fn b3_multi_headers() {
    let headers = [
        ("X-B3-TraceId", "80f198ee56343ba864fe8b2a57d3eff7"),
        ("X-B3-ParentSpanId", "05e3ac9a4f6e3b90"),
        ("X-B3-SpanId", "e457b5a2e4d86bd1"),
        ("X-B3-Sampled", "1"),
    ];
    let context = extract_trace_context(&headers[..]).unwrap();
    assert_eq!(context.format, Format::B3Multi);
    assert_eq!(context.trace_id, trace("80f198ee56343ba864fe8b2a57d3eff7"));
    assert_eq!(context.parent_span_id, span("e457b5a2e4d86bd1"));
    assert_eq!(context.sampled, Some(true));
    for (extra, sampled) in [
        (vec![("x-b3-sampled", "0")], Some(false)),
        (vec![("x-b3-sampled", "true")], Some(true)),
        (vec![("x-b3-sampled", "False")], Some(false)),
        (vec![("x-b3-sampled", "maybe")], None),
        (vec![("x-b3-flags", "1"), ("x-b3-sampled", "0")], Some(true)),
        (vec![], None),
    ] {
        let mut headers = vec![
            ("x-b3-traceid", "a3ce929d0e0e4736"),
            ("x-b3-spanid", "00f067aa0ba902b7"),
        ];
        headers.extend(extra);
        assert_eq!(
            b3_multi(&headers).map(|(_, _, sampled)| sampled),
            Some(sampled),
            "{headers:?}"
        );
    }
    assert_eq!(b3_multi(&[("x-b3-traceid", "a3ce929d0e0e4736")][..]), None);
    assert_eq!(
        b3_multi(
            &[
                ("x-b3-traceid", "a3ce"),
                ("x-b3-spanid", "00f067aa0ba902b7")
            ][..]
        ),
        None
    );
    assert_eq!(
        b3_multi(
            &[
                ("x-b3-traceid", "a3ce929d0e0e4736"),
                ("x-b3-spanid", "00f067aa0ba902b7"),
                ("x-b3-parentspanid", "x")
            ][..]
        ),
        None
    );
}

#[test]
fn jaeger_uber_trace_id() {
    let (trace_id, span_id, sampled) =
        parse_uber_trace_id("4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1").unwrap();
    assert_eq!(
        (trace_id, span_id, sampled),
        (
            trace("4bf92f3577b34da6a3ce929d0e0e4736"),
            span("00f067aa0ba902b7"),
            true
        )
    );
    // Leading zeros may be dropped; upper case is accepted as Jaeger clients do.
    let (trace_id, span_id, sampled) = parse_uber_trace_id("ABC:1:0:0").unwrap();
    assert_eq!(trace_id.to_string(), "00000000000000000000000000000abc");
    assert_eq!(span_id.to_string(), "0000000000000001");
    assert!(!sampled);
    // Debug (2) counts as sampled; a parent id is accepted and ignored.
    assert!(parse_uber_trace_id("1:2:3:2").unwrap().2);
    assert!(parse_uber_trace_id("1:2:3:03").unwrap().2);
    // URL-encoded.
    let (trace_id, span_id, sampled) = parse_uber_trace_id("12345%3A54321%3A0%3A1").unwrap();
    assert_eq!(
        (trace_id, span_id, sampled),
        (trace("12345"), span("54321"), true)
    );
    assert!(parse_uber_trace_id("12345%3a54321%3a0%3a1").is_ok());
    for bad in [
        "",
        "1:2:0",
        "1:2:0:1:5",
        "0:2:0:1",
        "1:0:0:1",
        "x:2:0:1",
        "1:2:x:1",
        "1:2:0:",
        "1:2:0:100",
        "1:2::1",
        "123456789012345678901234567890123:2:0:1",
        "1:12345678901234567:0:1",
    ] {
        assert!(parse_uber_trace_id(bad).is_err(), "{bad:?}");
    }
    let headers = [("Uber-Trace-Id", "abc%3Adef%3A0%3A1")];
    let context = extract_trace_context(&headers[..]).unwrap();
    assert_eq!(context.format, Format::Jaeger);
    assert_eq!(context.parent_span_id, span("def"));
}

#[test]
fn request_and_correlation_ids() {
    let headers = [
        ("X-Request-ID", " abc-123 "),
        ("x-correlation-id", "order-9"),
    ];
    assert_eq!(
        incoming_request_id(&headers[..]),
        Some(Ok(RequestId::new("abc-123").unwrap()))
    );
    assert_eq!(
        incoming_correlation_id(&headers[..]),
        Some(Ok(RequestId::new("order-9").unwrap()))
    );
    assert_eq!(incoming_request_id(&[("x-other", "1")][..]), None);
    let long = "x".repeat(200);
    let headers = [("x-request-id", long.as_str())];
    assert_eq!(
        incoming_request_id(&headers[..]),
        Some(Err(RequestIdError::TooLong { len: 200 }))
    );
    let headers = [("x-request-id", "")];
    assert_eq!(
        incoming_request_id(&headers[..]),
        Some(Err(RequestIdError::Empty))
    );
    let headers = [("x-request-id", "a b")];
    assert_eq!(
        incoming_request_id(&headers[..]),
        Some(Err(RequestIdError::InvalidChar))
    );
}

#[test]
fn header_map_values_that_are_not_text_are_absent() {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "x-request-id",
        http::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
    );
    assert_eq!(incoming_request_id(&headers), None);
    headers.insert("X-Request-Id", http::HeaderValue::from_static("r-1"));
    assert_eq!(headers.header("x-request-id"), Some("r-1"));
}
