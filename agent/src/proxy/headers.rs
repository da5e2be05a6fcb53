//! Header rules of a gateway: hop-by-hop headers removed both ways, `Via`,
//! `X-Forwarded-For` and `X-Forwarded-Proto` added.
//!
//! Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection, not the message, so a
//! proxy must not forward them: `Connection` and every header it names, `Keep-Alive`,
//! `Proxy-Connection`, `TE`, `Transfer-Encoding`, `Upgrade`, plus `Trailer`,
//! `Proxy-Authenticate` and `Proxy-Authorization` (RFC 2616 §13.5.1, which proxies still
//! honour). Framing is redone by the proxy on each side.

use std::net::IpAddr;

use hindsight_correlation::propagation::{TRACEPARENT, TRACESTATE, X_CORRELATION_ID};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::Version;

/// `X-Forwarded-For`.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`.
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `Keep-Alive`.
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
/// `Proxy-Connection` (non-standard, sent by old clients).
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The proxy's name in `Via`.
pub const VIA_NAME: &str = "hindsight";

/// The fixed hop-by-hop headers.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
];

/// True for a fixed hop-by-hop header name.
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(name)
}

/// True for a header the proxy sets itself on the way upstream (so it cannot be the
/// request-id header).
pub fn is_managed(name: &HeaderName) -> bool {
    [TRACEPARENT, TRACESTATE, X_CORRELATION_ID].contains(&name.as_str())
        || *name == header::VIA
        || *name == header::HOST
        || *name == header::CONTENT_LENGTH
        || *name == X_FORWARDED_FOR
        || *name == X_FORWARDED_PROTO
}

/// Removes the hop-by-hop headers, including every header `Connection` names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The HTTP version as `Via` and the `network.protocol.version` span attribute write it
/// (`1.1`, `2`, ...).
pub(crate) fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// Appends this proxy to `Via` (RFC 9110 §7.6.3), e.g. `1.1 hindsight`.
pub fn append_via(headers: &mut HeaderMap, received: Version) {
    let value = match received {
        Version::HTTP_10 => HeaderValue::from_static("1.0 hindsight"),
        Version::HTTP_2 => HeaderValue::from_static("2 hindsight"),
        Version::HTTP_11 => HeaderValue::from_static("1.1 hindsight"),
        other => HeaderValue::from_str(&format!("{} {VIA_NAME}", protocol_version(other)))
            .unwrap_or(HeaderValue::from_static("1.1 hindsight")),
    };
    headers.append(header::VIA, value);
}

/// Adds the client's address to `X-Forwarded-For` (after any addresses already there) and
/// sets `X-Forwarded-Proto: http` unless an earlier proxy set it. The proxy only passes
/// these on; it never trusts them for anything itself.
pub fn add_forwarded(headers: &mut HeaderMap, client: IpAddr) {
    let client = client.to_canonical().to_string();
    let joined = {
        let mut existing = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .peekable();
        if existing.peek().is_none() {
            client
        } else {
            let mut joined = existing.collect::<Vec<_>>().join(", ");
            joined.push_str(", ");
            joined.push_str(&client);
            joined
        }
    };
    if let Ok(value) = HeaderValue::from_str(&joined) {
        headers.insert(X_FORWARDED_FOR, value);
    }
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_removed() {
        let mut headers = map(&[
            ("connection", "keep-alive, X-Foo"),
            ("connection", "x-bar"),
            ("x-foo", "1"),
            ("x-bar", "2"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("transfer-encoding", "chunked"),
            ("proxy-connection", "keep-alive"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("trailer", "x-checksum"),
            ("x-keep", "yes"),
            ("content-length", "3"),
        ]);
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-length", "x-keep"]);
    }

    #[test]
    fn via_and_forwarded_headers_are_appended() {
        let mut headers = map(&[("via", "1.1 ingress"), ("x-forwarded-for", "203.0.113.9")]);
        append_via(&mut headers, Version::HTTP_2);
        add_forwarded(&mut headers, "127.0.0.1".parse().unwrap());
        let via: Vec<_> = headers.get_all("via").iter().collect();
        assert_eq!(via, ["1.1 ingress", "2 hindsight"]);
        assert_eq!(headers["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
        assert_eq!(headers["x-forwarded-proto"], "http");

        let mut headers = map(&[("x-forwarded-proto", "https")]);
        add_forwarded(&mut headers, "::ffff:10.1.2.3".parse().unwrap());
        assert_eq!(headers["x-forwarded-for"], "10.1.2.3");
        assert_eq!(headers["x-forwarded-proto"], "https");
    }
}
