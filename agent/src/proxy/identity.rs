//! A request's identity at the edge: its request id, correlation id and the trace it
//! continues, read from the incoming headers with `hindsight_correlation` and completed
//! where something is missing or unusable.

use hindsight_correlation::ids::{RequestId, RequestIdError, SpanId, TraceId};
use hindsight_correlation::propagation::{
    extract_trace_context, incoming_correlation_id, Format, HeaderLookup,
};
use http::{HeaderMap, HeaderName};

use super::config::IdGeneration;

/// Where the request id came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestIdSource {
    /// The client's, passed on unchanged.
    Incoming,
    /// Generated: the request carried none.
    Generated,
    /// Generated: the request's id was unusable, for this reason.
    Replaced(&'static str),
}

/// The trace an incoming request continues, copied out of its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    /// The trace id.
    pub trace_id: TraceId,
    /// The caller's span.
    pub span_id: SpanId,
    /// The caller's decision; a deferred one (B3 without a sampling state) counts as
    /// sampled, as a new trace would be.
    pub sampled: bool,
    /// The W3C `tracestate` to pass on (bounded), only for a W3C parent.
    pub tracestate: Option<String>,
    /// The header format it came from.
    pub format: Format,
}

/// The identity of one request, before its span exists.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The request id sent upstream and returned to the client.
    pub request_id: RequestId,
    /// Where [`Identity::request_id`] came from.
    pub source: RequestIdSource,
    /// The incoming `X-Correlation-ID` when valid and different from the request id.
    pub correlation_id: Option<RequestId>,
    /// The incoming trace, when one of the supported formats carried a valid one.
    pub parent: Option<Parent>,
}

impl Identity {
    /// Reads the identity from `headers`; `request_id_header` is the configured name.
    pub fn read(
        headers: &HeaderMap,
        request_id_header: &HeaderName,
        generate: IdGeneration,
    ) -> Self {
        // `incoming_request_id` reads the default header; this is the same check on the
        // configured one.
        let incoming = headers
            .header(request_id_header.as_str())
            .map(|value| RequestId::new(value.trim_matches([' ', '\t'])));
        let (request_id, source) = match incoming {
            Some(Ok(id)) => (id, RequestIdSource::Incoming),
            None => (generate_request_id(generate), RequestIdSource::Generated),
            Some(Err(error)) => (
                generate_request_id(generate),
                RequestIdSource::Replaced(replace_reason(error)),
            ),
        };
        let correlation_id = match incoming_correlation_id(headers) {
            Some(Ok(id)) if id != request_id => Some(id),
            _ => None,
        };
        let parent = extract_trace_context(headers).map(|context| Parent {
            trace_id: context.trace_id,
            span_id: context.parent_span_id,
            sampled: context.sampled.unwrap_or(true),
            tracestate: context.tracestate.map(|state| state.into_owned()),
            format: context.format,
        });
        Identity {
            request_id,
            source,
            correlation_id,
            parent,
        }
    }

    /// The correlation id sent upstream: the incoming one, else the request id.
    pub fn correlation_or_request_id(&self) -> &RequestId {
        self.correlation_id.as_ref().unwrap_or(&self.request_id)
    }
}

/// A new request id: a UUID written in its usual lower-case hyphenated form.
pub fn generate_request_id(generate: IdGeneration) -> RequestId {
    let uuid = match generate {
        IdGeneration::UuidV7 => uuid::Uuid::now_v7(),
        IdGeneration::UuidV4 => uuid::Uuid::new_v4(),
    };
    let mut buffer = uuid::Uuid::encode_buffer();
    RequestId::new(uuid.hyphenated().encode_lower(&mut buffer))
        .expect("a hyphenated UUID is a valid request id")
}

fn replace_reason(error: RequestIdError) -> &'static str {
    match error {
        RequestIdError::Empty => "empty",
        RequestIdError::TooLong { .. } => "too_long",
        RequestIdError::InvalidChar => "invalid_char",
        _ => "invalid",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

    #[test]
    fn missing_request_id_is_generated_as_uuid_v7() {
        let identity = Identity::read(&headers(&[]), &X_REQUEST_ID, IdGeneration::UuidV7);
        assert_eq!(identity.source, RequestIdSource::Generated);
        let uuid = uuid::Uuid::parse_str(identity.request_id.as_str()).unwrap();
        assert_eq!(uuid.get_version_num(), 7);
        assert_eq!(identity.correlation_or_request_id(), &identity.request_id);
        assert!(identity.parent.is_none());

        let v4 = Identity::read(&headers(&[]), &X_REQUEST_ID, IdGeneration::UuidV4);
        let uuid = uuid::Uuid::parse_str(v4.request_id.as_str()).unwrap();
        assert_eq!(uuid.get_version_num(), 4);
    }

    #[test]
    fn unusable_request_ids_are_replaced_with_a_reason() {
        let long = "r".repeat(RequestId::MAX_LEN + 1);
        for (value, reason) in [
            (long.as_str(), "too_long"),
            ("has space", "invalid_char"),
            ("", "empty"),
        ] {
            let identity = Identity::read(
                &headers(&[("x-request-id", value)]),
                &X_REQUEST_ID,
                IdGeneration::UuidV7,
            );
            assert_eq!(
                identity.source,
                RequestIdSource::Replaced(reason),
                "{value:?}"
            );
            assert_ne!(identity.request_id.as_str(), value);
        }
    }

    #[test]
    fn configured_header_and_correlation_id() {
        let name = HeaderName::from_static("x-trace-request");
        let identity = Identity::read(
            &headers(&[("x-trace-request", " r-1 "), ("x-correlation-id", "c-9")]),
            &name,
            IdGeneration::UuidV7,
        );
        assert_eq!(identity.request_id.as_str(), "r-1");
        assert_eq!(identity.source, RequestIdSource::Incoming);
        assert_eq!(identity.correlation_or_request_id().as_str(), "c-9");
        // A correlation id equal to the request id is not "different".
        let same = Identity::read(
            &headers(&[("x-request-id", "r-1"), ("x-correlation-id", "r-1")]),
            &X_REQUEST_ID,
            IdGeneration::UuidV7,
        );
        assert_eq!(same.correlation_id, None);
    }

    #[test]
    fn deferred_b3_sampling_counts_as_sampled() {
        let identity = Identity::read(
            &headers(&[("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1")]),
            &X_REQUEST_ID,
            IdGeneration::UuidV7,
        );
        let parent = identity.parent.unwrap();
        assert_eq!(parent.format, Format::B3Single);
        assert!(parent.sampled);
        assert_eq!(parent.tracestate, None);
    }
}
