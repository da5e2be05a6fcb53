//! The sidecar story end to end: requests through the agent's proxy to the demo service;
//! the service's log lines in a real OpenSearch carry the request id and trace id the
//! proxy created, the proxy's span is in a real Jaeger under that trace id, and
//! fingers-crossed keeps the failing requests' lines whole and drops the healthy ones'.
//!
//! Needs OpenSearch and Jaeger (`scripts/services.sh up`); fails without them.

use std::time::Duration;

use hindsight_e2e::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_request_logs_and_trace_share_the_proxy_ids() {
    let opensearch = opensearch().await;
    // Fail early (not after a minute of waiting for documents) when Jaeger is absent.
    let services = reqwest::get(format!("{}/api/services", jaeger_url())).await;
    assert!(
        services.is_ok(),
        "Jaeger is not reachable at {}; start it with `scripts/services.sh up`",
        jaeger_url()
    );
    let work = tempfile::tempdir().expect("tempdir");
    let prefix = unique_prefix("sidecar");
    let index = format!("{prefix}-*");
    let log_file = work
        .path()
        .join("var/log/pods/shop_checkout-1_uid-1/checkout/0.log");
    let demo = DemoService::start(&log_file, 0).await;
    let proxy_port = free_port();
    let service_name = format!("hindsight-e2e-{prefix}");
    let agent = Agent::start(
        work.path(),
        &AgentSetup {
            include: vec![format!("{}/var/log/pods/*/*/*.log", work.path().display())],
            endpoint: opensearch.url.clone(),
            prefix: prefix.clone(),
            tables_extra: format!(
                r#"[fingers_crossed]
idle_timeout = "2s"

[proxy]
listen = "127.0.0.1:{proxy_port}"
upstream = "http://{demo}"

[proxy.otlp]
endpoint = "http://127.0.0.1:4318"
service_name = "{service_name}"
"#,
                demo = demo.address
            ),
            ..AgentSetup::default()
        },
    );

    let client = reqwest::Client::new();
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while client.get(format!("{proxy}/healthz")).send().await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "proxy did not start; log:\n{}",
            agent.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut failing = Vec::new();
    let mut healthy = Vec::new();
    for i in 0..20 {
        let mut request = client.post(format!("{proxy}/checkout"));
        if i % 5 == 3 {
            request = request.header("X-Demo-Fail", "1");
        }
        let response = request.send().await.expect("request through the proxy");
        let status = response.status().as_u16();
        let request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .expect("the proxy returns X-Request-ID")
            .to_owned();
        if status == 500 {
            failing.push(request_id);
        } else {
            assert_eq!(status, 200);
            healthy.push(request_id);
        }
    }
    assert_eq!(failing.len(), 4);

    // Each failing request: "cart loaded" (debug), "calling payment provider" (info),
    // "payment provider timed out" (error), "request finished" (error).
    let expected = 4 * failing.len() as u64;
    let count = opensearch
        .wait_for_count(&index, expected, Duration::from_secs(60))
        .await;
    tokio::time::sleep(Duration::from_secs(4)).await; // past idle_timeout: healthy ones are dropped
    let settled = opensearch
        .wait_until_stable(&index, Duration::from_secs(2))
        .await;
    assert_eq!(
        (count, settled),
        (expected, expected),
        "log:\n{}",
        agent.log_tail()
    );

    for request_id in &failing {
        let docs = opensearch
            .sources(&index, json!({"term": {"http.request.id": request_id}}), 20)
            .await;
        assert_eq!(docs.len(), 4, "every line of failing request {request_id}");
        let trace_id = docs[0]["trace"]["id"]
            .as_str()
            .expect("trace.id")
            .to_owned();
        assert_eq!(trace_id.len(), 32);
        for doc in &docs {
            assert_eq!(
                doc["trace"]["id"],
                trace_id.as_str(),
                "one trace per request"
            );
            assert_eq!(
                doc["request_id"],
                request_id.as_str(),
                "the service logged the proxy's id"
            );
            assert_eq!(doc["kubernetes"]["namespace"], "shop");
        }
        let levels: Vec<&str> = docs
            .iter()
            .filter_map(|d| d["log"]["level"].as_str())
            .collect();
        assert!(
            levels.contains(&"debug") && levels.contains(&"error"),
            "{levels:?}"
        );

        let trace = jaeger_trace(&trace_id, 1, Duration::from_secs(30)).await;
        let spans = trace["data"][0]["spans"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let span = spans
            .iter()
            .find(|span| span["traceID"] == trace_id.as_str())
            .unwrap_or_else(|| panic!("trace {trace_id} in Jaeger: {trace}"));
        let tags = span["tags"].as_array().cloned().unwrap_or_default();
        let tag = |key: &str| {
            tags.iter()
                .find(|t| t["key"] == key)
                .map(|t| t["value"].clone())
        };
        assert_eq!(tag("http.request.id"), Some(json!(request_id)), "{span}");
        assert_eq!(tag("http.response.status_code"), Some(json!(500)), "{span}");
        let process = &trace["data"][0]["processes"][span["processID"].as_str().unwrap_or("")];
        assert_eq!(process["serviceName"], service_name.as_str());
    }
    for request_id in &healthy {
        let count = opensearch
            .count(&index, json!({"term": {"http.request.id": request_id}}))
            .await;
        assert_eq!(
            count, 0,
            "healthy request {request_id} was dropped by fingers-crossed"
        );
    }
    let requests = agent
        .metric(
            "hindsight_proxy_requests_total{method=\"POST\",status_class=\"5xx\",route=\"other\"}",
        )
        .await;
    println!("proxy 5xx requests counted: {requests}");
    opensearch.cleanup(&prefix).await;
}
