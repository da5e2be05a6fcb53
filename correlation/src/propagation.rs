//! Reading trace and request identity from HTTP headers: W3C Trace Context (`traceparent`,
//! `tracestate`), B3 (single `b3` and multi `X-B3-*` headers), Jaeger (`uber-trace-id`),
//! `X-Request-ID` and `X-Correlation-ID`.
//!
//! The header map is abstracted by [`HeaderLookup`], so this module needs neither `http`
//! types at the call site nor any I/O; it is implemented for `http::HeaderMap` and for
//! slices of name/value pairs.
//!
//! ```
//! use hindsight_correlation::propagation::{extract_trace_context, Format, Traceparent};
//!
//! let headers = [("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")];
//! let incoming = extract_trace_context(&headers[..]).unwrap();
//! assert_eq!(incoming.format, Format::W3c);
//! assert_eq!(incoming.sampled, Some(true));
//!
//! // Continue the trace with this service's own span id.
//! let span_id = "b7ad6b7169203331".parse().unwrap();
//! let outgoing = Traceparent::new(incoming.trace_id, span_id, incoming.sampled.unwrap_or(false));
//! assert_eq!(outgoing.to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01");
//! ```
//!
//! # Why not the `opentelemetry` propagators
//!
//! The issue asks to use them where they fit. Checked against `opentelemetry` /
//! `opentelemetry_sdk` 0.33, `opentelemetry-zipkin` 0.33 and
//! `opentelemetry-jaeger-propagator` 0.32 (all build without tokio when default features
//! are off), they do not fit here:
//! - the SDK's `TraceContextPropagator` is laxer than the W3C spec: it splits on `-` and
//!   parses each part with `from_str_radix`, so it accepts a one-digit version (`0-…`),
//!   short trace ids, one-digit flags, `+` signs and a trailing `-` after version `00`;
//!   it re-parses `tracestate` (dropping it whole on any error) instead of passing it on,
//!   and returns an opaque `Context` from which the parts must be dug out again;
//! - the B3 propagator lives in `opentelemetry-zipkin`, which brings the Zipkin exporter
//!   with it (`http`, `opentelemetry-http`, `async-trait`, the SDK, `serde_json`,
//!   `typed-builder`) — an exporter inside the crate that must not do I/O;
//! - the newest Jaeger propagator is built on `opentelemetry` 0.32 while the SDK is at
//!   0.33, so using it means two copies of `opentelemetry` or pinning the workspace back.
//!
//! The formats themselves are small and fixed, so they are parsed here, exactly to their
//! specs, with the W3C test vectors in the tests. The agent converts to OpenTelemetry's
//! types through bytes (`TraceId::to_bytes` ↔ `opentelemetry::trace::TraceId::from_bytes`).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use crate::ids::{parse_hex, Case, IdError, RequestId, RequestIdError, SpanId, TraceId};

/// `traceparent` (W3C Trace Context).
pub const TRACEPARENT: &str = "traceparent";
/// `tracestate` (W3C Trace Context).
pub const TRACESTATE: &str = "tracestate";
/// `b3` (B3 single header).
pub const B3: &str = "b3";
/// `x-b3-traceid` (B3 multi header).
pub const X_B3_TRACE_ID: &str = "x-b3-traceid";
/// `x-b3-spanid` (B3 multi header).
pub const X_B3_SPAN_ID: &str = "x-b3-spanid";
/// `x-b3-parentspanid` (B3 multi header).
pub const X_B3_PARENT_SPAN_ID: &str = "x-b3-parentspanid";
/// `x-b3-sampled` (B3 multi header).
pub const X_B3_SAMPLED: &str = "x-b3-sampled";
/// `x-b3-flags` (B3 multi header; `1` means debug).
pub const X_B3_FLAGS: &str = "x-b3-flags";
/// `uber-trace-id` (Jaeger).
pub const UBER_TRACE_ID: &str = "uber-trace-id";
/// `x-request-id`.
pub const X_REQUEST_ID: &str = "x-request-id";
/// `x-correlation-id`.
pub const X_CORRELATION_ID: &str = "x-correlation-id";

/// The longest `tracestate` passed on, in bytes: the W3C spec asks vendors to propagate
/// at least 512 characters and allows cutting longer values at list-member boundaries.
pub const MAX_TRACESTATE_LEN: usize = 512;

/// Read access to request headers, whatever map holds them.
pub trait HeaderLookup {
    /// The value of header `name`, given in lower case; implementations compare names
    /// case-insensitively. With several values, the first. A value that is not text is absent.
    fn header(&self, name: &str) -> Option<&str>;

    /// All values of header `name` joined with `,` (the HTTP list form). W3C requires
    /// several `tracestate` headers to be combined; the default returns the first only.
    fn header_joined(&self, name: &str) -> Option<Cow<'_, str>> {
        self.header(name).map(Cow::Borrowed)
    }
}

impl HeaderLookup for http::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name)?.to_str().ok()
    }

    fn header_joined(&self, name: &str) -> Option<Cow<'_, str>> {
        let mut values = self
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok());
        let first = values.next()?;
        match values.next() {
            None => Some(Cow::Borrowed(first)),
            Some(second) => {
                let mut joined = format!("{first},{second}");
                for value in values {
                    joined.push(',');
                    joined.push_str(value);
                }
                Some(Cow::Owned(joined))
            }
        }
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderLookup for [(K, V)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(key, _)| key.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderLookup for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl<H: HeaderLookup + ?Sized> HeaderLookup for &H {
    fn header(&self, name: &str) -> Option<&str> {
        (**self).header(name)
    }

    fn header_joined(&self, name: &str) -> Option<Cow<'_, str>> {
        (**self).header_joined(name)
    }
}

/// The trace-flags byte of a `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TraceFlags(pub u8);

impl TraceFlags {
    /// The `sampled` bit: the caller may have recorded this trace.
    pub const SAMPLED: u8 = 0x01;

    /// True when the `sampled` bit is set.
    pub const fn sampled(self) -> bool {
        self.0 & TraceFlags::SAMPLED != 0
    }
}

/// Why a `traceparent` value was rejected; the W3C spec then says: start a new trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceparentError {
    /// Shorter than 55 characters, or version `00` not exactly 55, or a later version
    /// whose 56th character is not `-`.
    #[error("wrong length")]
    Length,
    /// The version is not two lower-case hex digits.
    #[error("invalid version")]
    Version,
    /// Version `ff`, which the spec forbids.
    #[error("version ff is forbidden")]
    VersionFf,
    /// A `-` is missing between the fields.
    #[error("missing '-' between fields")]
    Separator,
    /// The trace id is not 32 lower-case hex digits, or all zeros.
    #[error("invalid trace id: {0}")]
    TraceId(IdError),
    /// The parent id is not 16 lower-case hex digits, or all zeros.
    #[error("invalid parent id: {0}")]
    ParentId(IdError),
    /// The flags are not two lower-case hex digits.
    #[error("invalid trace flags")]
    Flags,
}

/// A W3C `traceparent`: `{version}-{trace-id}-{parent-id}-{trace-flags}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Traceparent {
    /// The version read (`00` today); formatting always writes `00`.
    pub version: u8,
    /// The trace this request belongs to.
    pub trace_id: TraceId,
    /// The caller's span (the parent of the span this service starts).
    pub parent_id: SpanId,
    /// The flags byte, as received.
    pub flags: TraceFlags,
}

impl Traceparent {
    /// Length of a version `00` value.
    pub const LEN: usize = 55;

    /// A version `00` traceparent with only the `sampled` flag as given.
    pub fn new(trace_id: TraceId, parent_id: SpanId, sampled: bool) -> Traceparent {
        Traceparent {
            version: 0,
            trace_id,
            parent_id,
            flags: TraceFlags(if sampled { TraceFlags::SAMPLED } else { 0 }),
        }
    }

    /// Parses a header value per W3C Trace Context: optional surrounding spaces and tabs;
    /// lower-case hex only; version `ff` invalid; version `00` exactly 55 characters; a
    /// later version is read by its first four fields when it is at least 55 characters
    /// and the next one, if any, is `-`; all-zero trace or parent id invalid.
    pub fn parse(value: &str) -> Result<Traceparent, TraceparentError> {
        let value = value.trim_matches([' ', '\t']);
        let bytes = value.as_bytes();
        // `get` keeps slicing safe when a field holds a multi-byte character.
        let field = |range: std::ops::Range<usize>| value.get(range).unwrap_or("");
        let version =
            parse_hex(field(0..2), 2, 2, Case::Lower).map_err(|_| TraceparentError::Version)? as u8;
        if version == 0xff {
            return Err(TraceparentError::VersionFf);
        }
        if bytes.len() < Traceparent::LEN
            || (version == 0 && bytes.len() != Traceparent::LEN)
            || (bytes.len() > Traceparent::LEN && bytes[Traceparent::LEN] != b'-')
        {
            return Err(TraceparentError::Length);
        }
        if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return Err(TraceparentError::Separator);
        }
        let trace_id =
            TraceId::parse(field(3..35), 32, 32, Case::Lower).map_err(TraceparentError::TraceId)?;
        let parent_id = SpanId::parse(field(36..52), 16, 16, Case::Lower)
            .map_err(TraceparentError::ParentId)?;
        let flags =
            parse_hex(field(53..55), 2, 2, Case::Lower).map_err(|_| TraceparentError::Flags)? as u8;
        Ok(Traceparent {
            version,
            trace_id,
            parent_id,
            flags: TraceFlags(flags),
        })
    }

    /// True when the `sampled` flag is set.
    pub fn sampled(&self) -> bool {
        self.flags.sampled()
    }
}

impl fmt::Display for Traceparent {
    /// Always version `00`: a vendor writes the version it implements.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id.to_hex().as_str(),
            self.parent_id.to_hex().as_str(),
            self.flags.0
        )
    }
}

impl FromStr for Traceparent {
    type Err = TraceparentError;
    fn from_str(value: &str) -> Result<Traceparent, TraceparentError> {
        Traceparent::parse(value)
    }
}

/// Bounds a `tracestate` value for passing on: as received when it fits in
/// [`MAX_TRACESTATE_LEN`], else cut after the last whole list member that fits (the spec
/// allows dropping members from the end); `None` when it is empty or holds a character
/// that cannot be forwarded in a header (controls, non-ASCII).
pub fn bound_tracestate(value: &str) -> Option<&str> {
    let value = value.trim_matches([' ', '\t']);
    if value.is_empty()
        || !value
            .bytes()
            .all(|byte| byte == b' ' || byte == b'\t' || byte.is_ascii_graphic())
    {
        return None;
    }
    if value.len() <= MAX_TRACESTATE_LEN {
        return Some(value);
    }
    let head = &value[..=MAX_TRACESTATE_LEN];
    let cut = head.rfind(',')?;
    let kept = value[..cut].trim_end_matches([' ', '\t', ',']);
    (!kept.is_empty()).then_some(kept)
}

/// The header format an incoming trace context was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// W3C `traceparent`.
    W3c,
    /// B3 single header `b3`.
    B3Single,
    /// B3 multi headers `X-B3-*`.
    B3Multi,
    /// Jaeger `uber-trace-id`.
    Jaeger,
}

impl Format {
    /// A short name, e.g. for a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::W3c => "w3c",
            Format::B3Single => "b3",
            Format::B3Multi => "b3multi",
            Format::Jaeger => "jaeger",
        }
    }
}

/// The trace an incoming request belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext<'h> {
    /// The trace id (64-bit B3/Jaeger ids zero-padded to 128 bits).
    pub trace_id: TraceId,
    /// The caller's span: the parent of the span this service starts.
    pub parent_span_id: SpanId,
    /// The caller's sampling decision; `None` when it deferred it (B3 without a sampling
    /// state). B3 and Jaeger debug flags count as sampled.
    pub sampled: Option<bool>,
    /// The W3C `tracestate` to pass on unchanged (bounded by [`bound_tracestate`]); only
    /// for [`Format::W3c`].
    pub tracestate: Option<Cow<'h, str>>,
    /// Where the context came from.
    pub format: Format,
}

/// The incoming trace context: W3C `traceparent` first, then B3 single, B3 multi, then
/// Jaeger `uber-trace-id`. A malformed header of one format falls through to the next;
/// `None` when none yields a valid context (the caller starts a new trace).
pub fn extract_trace_context<H: HeaderLookup + ?Sized>(headers: &H) -> Option<TraceContext<'_>> {
    if let Some(parent) = headers
        .header(TRACEPARENT)
        .and_then(|value| Traceparent::parse(value).ok())
    {
        let tracestate = headers
            .header_joined(TRACESTATE)
            .and_then(|state| match state {
                Cow::Borrowed(state) => bound_tracestate(state).map(Cow::Borrowed),
                Cow::Owned(state) => {
                    bound_tracestate(&state).map(|kept| Cow::Owned(kept.to_owned()))
                }
            });
        return Some(TraceContext {
            trace_id: parent.trace_id,
            parent_span_id: parent.parent_id,
            sampled: Some(parent.sampled()),
            tracestate,
            format: Format::W3c,
        });
    }
    let (trace_id, parent_span_id, sampled, format) = headers
        .header(B3)
        .and_then(|value| parse_b3_single(value).ok())
        .map(|(trace, span, sampled)| (trace, span, sampled, Format::B3Single))
        .or_else(|| {
            b3_multi(headers).map(|(trace, span, sampled)| (trace, span, sampled, Format::B3Multi))
        })
        .or_else(|| {
            headers
                .header(UBER_TRACE_ID)
                .and_then(|value| parse_uber_trace_id(value).ok())
                .map(|(trace, span, sampled)| (trace, span, Some(sampled), Format::Jaeger))
        })?;
    Some(TraceContext {
        trace_id,
        parent_span_id,
        sampled,
        tracestate: None,
        format,
    })
}

/// Why a B3 or Jaeger header was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The wrong number of fields.
    #[error("wrong number of fields")]
    Fields,
    /// The trace id is invalid.
    #[error("invalid trace id: {0}")]
    TraceId(IdError),
    /// The span id is invalid.
    #[error("invalid span id: {0}")]
    SpanId(IdError),
    /// The parent span id is invalid.
    #[error("invalid parent span id: {0}")]
    ParentSpanId(IdError),
    /// The sampling state or flags are invalid.
    #[error("invalid sampling state or flags")]
    Sampling,
}

/// B3 trace ids are 16 or 32 lower-case hex digits.
fn b3_trace_id(text: &str) -> Result<TraceId, IdError> {
    if text.len() != 16 && text.len() != 32 {
        return Err(IdError::Length { found: text.len() });
    }
    TraceId::parse(text, 16, 32, Case::Lower)
}

/// Parses a B3 single header, `{trace}-{span}[-{sampling}[-{parent}]]`: the trace id,
/// the caller's span id, and the sampling state (`1` accept, `0` deny, `d` debug).
///
/// A value that is only a sampling state (`b3: 0`) carries no ids and is rejected.
pub fn parse_b3_single(value: &str) -> Result<(TraceId, SpanId, Option<bool>), HeaderError> {
    let mut parts = value.trim_matches([' ', '\t']).split('-');
    let (Some(trace), Some(span)) = (parts.next(), parts.next()) else {
        return Err(HeaderError::Fields);
    };
    let sampling = parts.next();
    let parent = parts.next();
    if parts.next().is_some() {
        return Err(HeaderError::Fields);
    }
    let trace_id = b3_trace_id(trace).map_err(HeaderError::TraceId)?;
    let span_id = SpanId::parse(span, 16, 16, Case::Lower).map_err(HeaderError::SpanId)?;
    let sampled = match sampling {
        None => None,
        Some("1" | "d") => Some(true),
        Some("0") => Some(false),
        Some(_) => return Err(HeaderError::Sampling),
    };
    if let Some(parent) = parent {
        SpanId::parse(parent, 16, 16, Case::Lower).map_err(HeaderError::ParentSpanId)?;
    }
    Ok((trace_id, span_id, sampled))
}

/// Reads the B3 multi headers. `X-B3-Sampled` takes `1`/`0` and the legacy
/// `true`/`false`; `X-B3-Flags: 1` (debug) means sampled; an unknown sampling value
/// leaves the decision deferred.
pub fn b3_multi<H: HeaderLookup + ?Sized>(headers: &H) -> Option<(TraceId, SpanId, Option<bool>)> {
    let trace_id = b3_trace_id(headers.header(X_B3_TRACE_ID)?.trim()).ok()?;
    let span_id = SpanId::parse(headers.header(X_B3_SPAN_ID)?.trim(), 16, 16, Case::Lower).ok()?;
    if let Some(parent) = headers.header(X_B3_PARENT_SPAN_ID) {
        SpanId::parse(parent.trim(), 16, 16, Case::Lower).ok()?;
    }
    let debug = headers.header(X_B3_FLAGS).map(str::trim) == Some("1");
    let sampled = match headers.header(X_B3_SAMPLED).map(str::trim) {
        _ if debug => Some(true),
        Some("1") => Some(true),
        Some(value) if value.eq_ignore_ascii_case("true") => Some(true),
        Some("0") => Some(false),
        Some(value) if value.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    };
    Some((trace_id, span_id, sampled))
}

/// Parses Jaeger's `uber-trace-id`, `{trace}:{span}:{parent}:{flags}`: hex ids of up to
/// 32 / 16 digits that may omit leading zeros (either case, as Jaeger clients accept);
/// the deprecated parent id (`0` for none) is checked and ignored; flags bit 1 sampled,
/// bit 2 debug (counted as sampled). The URL-encoded form (`%3A` for `:`) is accepted.
pub fn parse_uber_trace_id(value: &str) -> Result<(TraceId, SpanId, bool), HeaderError> {
    let value = value.trim_matches([' ', '\t']);
    let decoded: Cow<'_, str> =
        if !value.contains(':') && (value.contains("%3A") || value.contains("%3a")) {
            Cow::Owned(value.replace("%3A", ":").replace("%3a", ":"))
        } else {
            Cow::Borrowed(value)
        };
    let mut parts = decoded.split(':');
    let (Some(trace), Some(span), Some(parent), Some(flags), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(HeaderError::Fields);
    };
    let trace_id = TraceId::parse(trace, 1, 32, Case::Any).map_err(HeaderError::TraceId)?;
    let span_id = SpanId::parse(span, 1, 16, Case::Any).map_err(HeaderError::SpanId)?;
    match SpanId::parse(parent, 1, 16, Case::Any) {
        Ok(_) | Err(IdError::Zero) => {}
        Err(error) => return Err(HeaderError::ParentSpanId(error)),
    }
    let flags = parse_hex(flags, 1, 2, Case::Any).map_err(|_| HeaderError::Sampling)?;
    Ok((trace_id, span_id, flags & 0b11 != 0))
}

/// An id header as received: absent, usable, or present but unusable (so the proxy
/// replaces it and can count why).
pub type IncomingId = Option<Result<RequestId, RequestIdError>>;

/// The incoming `X-Request-ID`, checked against [`RequestId`]'s bounds (surrounding
/// spaces and tabs trimmed).
pub fn incoming_request_id<H: HeaderLookup + ?Sized>(headers: &H) -> IncomingId {
    headers
        .header(X_REQUEST_ID)
        .map(|value| RequestId::new(value.trim_matches([' ', '\t'])))
}

/// The incoming `X-Correlation-ID`, checked like a request id.
pub fn incoming_correlation_id<H: HeaderLookup + ?Sized>(headers: &H) -> IncomingId {
    headers
        .header(X_CORRELATION_ID)
        .map(|value| RequestId::new(value.trim_matches([' ', '\t'])))
}

#[cfg(test)]
mod tests;
