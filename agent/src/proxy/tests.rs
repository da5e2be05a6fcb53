//! Configuration and request-target tests; the proxy on real sockets is tested in
//! `agent/tests/proxy.rs`.

use std::time::Duration;

use http::Version;

use super::config::{IdGeneration, OtlpProtocol, ProxyConfig};
use super::ProxyError;

fn parse(text: &str) -> ProxyConfig {
    toml::from_str(text).unwrap()
}

fn problems(config: &ProxyConfig) -> Vec<String> {
    match config.build(crate::handoff::channel(1).0) {
        Err(ProxyError::Config(problems)) => problems,
        other => panic!("expected config errors, got {other:?}"),
    }
}

#[test]
fn defaults() {
    let config = parse(r#"upstream = "http://127.0.0.1:8080""#);
    assert_eq!(config.listen, "127.0.0.1:8619".parse().unwrap());
    assert_eq!(config.header_read_timeout, Duration::from_secs(10));
    assert_eq!(config.max_header_bytes.as_u64(), 64 * 1024);
    assert_eq!(config.request_id_header, "x-request-id");
    assert_eq!(config.generate, IdGeneration::UuidV7);
    assert!(config.otlp.enabled);
    assert_eq!(config.otlp.endpoint, "http://127.0.0.1:4318");
    assert_eq!(config.otlp.protocol, OtlpProtocol::HttpProtobuf);
    assert_eq!(config.otlp.service_name, "hindsight-proxy");
    let settings = config.settings().unwrap();
    assert_eq!(settings.upstream.as_str(), "127.0.0.1:8080");
    assert_eq!(
        settings.otlp.unwrap().traces_url,
        "http://127.0.0.1:4318/v1/traces"
    );
}

#[test]
fn every_key_parses() {
    let config = parse(
        r#"
listen = "0.0.0.0:9000"
upstream = "http://localhost"
header_read_timeout = "2s"
idle_timeout = "30s"
upstream_connect_timeout = "1s"
upstream_response_timeout = "15s"
max_header_bytes = "32KiB"
request_id_header = "X-Req-Id"
generate = "uuid_v4"
route_labels = ["/api/{id}"]
[otlp]
enabled = false
endpoint = "http://jaeger:4318/v1/traces"
protocol = "http/protobuf"
service_name = "svc"
timeout = "3s"
max_queue_spans = 100
"#,
    );
    let settings = config.settings().unwrap();
    assert_eq!(settings.request_id_header.as_str(), "x-req-id");
    assert_eq!(settings.generate, IdGeneration::UuidV4);
    assert!(settings.otlp.is_none());
    assert_eq!(settings.max_header_bytes, 32 * 1024);
}

#[test]
fn unknown_keys_and_values_are_rejected() {
    assert!(toml::from_str::<ProxyConfig>("upstream = \"http://a\"\nupstrem = 1").is_err());
    assert!(
        toml::from_str::<ProxyConfig>("upstream = \"http://a\"\ngenerate = \"uuid_v1\"").is_err()
    );
    assert!(
        toml::from_str::<ProxyConfig>("upstream = \"http://a\"\n[otlp]\nprotocol = \"grpc\"")
            .is_err()
    );
}

#[test]
fn all_problems_are_reported_at_once() {
    let mut config = ProxyConfig::new("https://service:8443");
    config.header_read_timeout = Duration::ZERO;
    config.max_header_bytes = bytesize::ByteSize::kib(1);
    config.request_id_header = "traceparent".to_owned();
    config.route_labels = vec!["api".to_owned()];
    config.otlp.endpoint = "jaeger:4318".to_owned();
    config.otlp.service_name = " ".to_owned();
    let problems = problems(&config);
    let keys: Vec<&str> = problems
        .iter()
        .map(|problem| problem.split(':').next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "upstream",
            "header_read_timeout",
            "max_header_bytes",
            "request_id_header",
            "route_labels",
            "otlp.endpoint",
            "otlp.service_name"
        ],
        "{problems:#?}"
    );
}

#[test]
fn upstream_must_be_exactly_scheme_host_port() {
    for bad in [
        "127.0.0.1:8080",
        "ftp://a",
        "http://user:pw@a:80",
        "http://a/base",
        "http://a/?q=1",
        "http://",
        "not a url",
    ] {
        let problems = problems(&ProxyConfig::new(bad));
        assert!(problems[0].starts_with("upstream: "), "{bad}: {problems:?}");
    }
    for good in ["http://a", "http://a:8080/", "http://[::1]:8080"] {
        assert!(ProxyConfig::new(good).settings().is_ok(), "{good}");
    }
}

#[test]
fn request_targets_other_than_the_upstream_are_refused() {
    use super::service::upstream_uri;
    let upstream: http::uri::Authority = "127.0.0.1:8080".parse().unwrap();
    let uri = |text: &str| text.parse::<http::Uri>().unwrap();
    assert_eq!(
        upstream_uri(&uri("/a?b=1"), Version::HTTP_11, &upstream).unwrap(),
        "http://127.0.0.1:8080/a?b=1"
    );
    assert_eq!(
        upstream_uri(&uri("http://127.0.0.1:8080/x"), Version::HTTP_11, &upstream).unwrap(),
        "http://127.0.0.1:8080/x"
    );
    assert!(upstream_uri(&uri("http://example.com/"), Version::HTTP_11, &upstream).is_none());
    assert!(upstream_uri(&uri("https://127.0.0.1:8080/"), Version::HTTP_11, &upstream).is_none());
    assert!(upstream_uri(&uri("example.com:443"), Version::HTTP_11, &upstream).is_none());
    assert!(upstream_uri(&uri("*"), Version::HTTP_11, &upstream).is_none());
    // HTTP/2 always carries an authority: the client's name for the proxy.
    assert_eq!(
        upstream_uri(&uri("http://proxy.local/p"), Version::HTTP_2, &upstream).unwrap(),
        "http://127.0.0.1:8080/p"
    );
}
