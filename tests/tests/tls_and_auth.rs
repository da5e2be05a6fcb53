//! TLS and authentication, end to end: the agent → an HTTPS front with a throwaway CA
//! ([`TlsForwarder`]) → the real OpenSearch.
//!
//! Needs OpenSearch on 127.0.0.1:9200 (`scripts/services.sh up`); fails without it.

use std::path::Path;
use std::time::Duration;

use hindsight_e2e::*;

const WAIT: Duration = Duration::from_secs(60);

fn opensearch_address(opensearch: &OpenSearch) -> String {
    opensearch
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

fn include(root: &Path) -> Vec<String> {
    vec![format!("{}/logs/*.log", root.display())]
}

/// Writes `n` CRI lines with `seq` 0..n into `root/logs/app.log`.
fn write_lines(root: &Path, n: u64) {
    let mut writer = LogWriter::create(&root.join("logs/app.log"));
    for seq in 0..n {
        writer.write(cri_line("stdout", &app_line(seq, "tls")).as_bytes());
    }
}

fn tls_table(ca_file: Option<&Path>, verify: bool) -> String {
    let mut table = format!("[outputs.elasticsearch.tls]\nverify_certificates = {verify}\n");
    if let Some(path) = ca_file {
        table.push_str(&format!("ca_file = {:?}\n", path.display().to_string()));
    }
    table
}

/// With `tls.ca_file` naming the CA that signed the server's certificate, every line
/// arrives through HTTPS and the agent is ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_ca_file_delivers_everything() {
    const N: u64 = 2_000;
    let opensearch = opensearch().await;
    let work = tempfile::tempdir().expect("tempdir");
    let tls = TlsForwarder::start(work.path(), opensearch_address(&opensearch)).await;
    let prefix = unique_prefix("tls-ca");
    let index = format!("{prefix}-*");
    write_lines(work.path(), N);
    let agent = Agent::start(
        work.path(),
        &AgentSetup {
            include: include(work.path()),
            endpoint: tls.url(),
            prefix: prefix.clone(),
            tables_extra: tls_table(Some(&tls.ca_file), true),
            ..AgentSetup::default()
        },
    );

    let count = opensearch.wait_for_count(&index, N, WAIT).await;
    let duplicates = opensearch.duplicates_of_sequence(&index, "seq", N).await;
    assert_eq!(
        (count, duplicates),
        (N, Ok(0)),
        "log:\n{}",
        agent.log_tail()
    );
    let (status, body) = agent.admin_get("/readyz").await;
    assert_eq!(status, 200, "/readyz: {body}");
    assert!(
        tls.handshake_errors().is_empty(),
        "failed handshakes: {:?}",
        tls.handshake_errors()
    );
    let heads = tls.request_heads();
    assert!(!heads.is_empty(), "nothing went through the TLS front");
    assert!(
        heads
            .iter()
            .all(|head| head.header("authorization").is_none()),
        "no auth configured, yet an Authorization header was sent: {heads:?}"
    );
    opensearch.cleanup(&prefix).await;
}

/// Without `ca_file` the throwaway CA is unknown: the agent refuses the certificate, sends
/// nothing, is not ready and says why. With `verify_certificates = false` the same lines
/// arrive, and the agent warned that verification is off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ca_is_refused_until_verification_is_turned_off() {
    const N: u64 = 500;
    let opensearch = opensearch().await;
    let work = tempfile::tempdir().expect("tempdir");
    let tls = TlsForwarder::start(work.path(), opensearch_address(&opensearch)).await;
    let prefix = unique_prefix("tls-unknown");
    let index = format!("{prefix}-*");
    write_lines(work.path(), N);

    // System roots only.
    let strict_dir = work.path().join("strict");
    std::fs::create_dir_all(&strict_dir).expect("agent dir");
    let mut strict = Agent::start(
        &strict_dir,
        &AgentSetup {
            include: include(work.path()),
            endpoint: tls.url(),
            prefix: prefix.clone(),
            ..AgentSetup::default()
        },
    );
    let refused = strict
        .wait_for_log(&["certificate", "not reachable"], Duration::from_secs(20))
        .await;
    assert!(
        refused.is_some(),
        "the agent did not log a certificate error; log:\n{}",
        strict.log_tail()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let count = opensearch
        .wait_until_stable(&index, Duration::from_secs(1))
        .await;
    assert_eq!(count, 0, "delivered despite an untrusted certificate");
    let (status, body) = strict.admin_get("/readyz").await;
    assert_eq!(status, 503, "/readyz with a refused certificate: {body}");
    assert!(
        !tls.handshake_errors().is_empty(),
        "the TLS front saw no failed handshake; log:\n{}",
        strict.log_tail()
    );
    assert!(
        tls.request_heads().is_empty(),
        "a request got through: {:?}",
        tls.request_heads()
    );
    assert!(
        !strict.log_text().contains("verify_certificates is false"),
        "verification is on, yet the agent warned it is off"
    );
    assert!(strict.terminate().success(), "log:\n{}", strict.log_tail());

    // Verification off: a fresh data dir, the same file.
    let lax_dir = work.path().join("lax");
    std::fs::create_dir_all(&lax_dir).expect("agent dir");
    let lax = Agent::start(
        &lax_dir,
        &AgentSetup {
            include: include(work.path()),
            endpoint: tls.url(),
            prefix: prefix.clone(),
            tables_extra: tls_table(None, false),
            ..AgentSetup::default()
        },
    );
    let count = opensearch.wait_for_count(&index, N, WAIT).await;
    let duplicates = opensearch.duplicates_of_sequence(&index, "seq", N).await;
    assert_eq!((count, duplicates), (N, Ok(0)), "log:\n{}", lax.log_tail());
    let (status, body) = lax.admin_get("/readyz").await;
    assert_eq!(status, 200, "/readyz: {body}");
    let warning = lax
        .wait_for_log(&["verify_certificates is false", "WARN"], Duration::ZERO)
        .await;
    assert!(
        warning.is_some(),
        "no warning about verification being off; log:\n{}",
        lax.log_tail()
    );
    opensearch.cleanup(&prefix).await;
}

/// One authentication strategy: the secret comes from `${ENV}` set on the agent process;
/// every connection's first request carries exactly `expected` as `Authorization`, and
/// the secret shows neither in the agent's log nor in `/_info` or `/metrics`.
async fn auth_reaches_the_server(name: &str, auth: &str, env: (&str, &str), expected: &str) {
    const N: u64 = 200;
    let opensearch = opensearch().await;
    let work = tempfile::tempdir().expect("tempdir");
    let tls = TlsForwarder::start(work.path(), opensearch_address(&opensearch)).await;
    let prefix = unique_prefix(name);
    let index = format!("{prefix}-*");
    write_lines(work.path(), N);
    let (variable, secret) = env;
    let agent = Agent::start(
        work.path(),
        &AgentSetup {
            include: include(work.path()),
            endpoint: tls.url(),
            prefix: prefix.clone(),
            output_extra: format!("auth = {auth}"),
            tables_extra: tls_table(Some(&tls.ca_file), true),
            env: vec![(variable.to_owned(), secret.to_owned())],
            ..AgentSetup::default()
        },
    );

    let count = opensearch.wait_for_count(&index, N, WAIT).await;
    assert_eq!(count, N, "log:\n{}", agent.log_tail());
    let (status, body) = agent.admin_get("/readyz").await;
    assert_eq!(status, 200, "/readyz: {body}");

    let heads = tls.request_heads();
    assert!(!heads.is_empty(), "nothing went through the TLS front");
    for head in &heads {
        assert_eq!(
            head.header("authorization"),
            Some(expected),
            "{}: wrong or missing Authorization",
            head.request_line
        );
    }
    assert!(
        heads
            .iter()
            .any(|head| head.request_line.starts_with("GET / ")),
        "the health check went through another way: {heads:?}"
    );

    let config = std::fs::read_to_string(work.path().join("hindsight.toml")).expect("config");
    assert!(
        config.contains(&format!("${{{variable}}}")) && !config.contains(secret),
        "the secret must come from the environment"
    );
    let log = agent.log_text();
    let credential = expected
        .split_once(' ')
        .map_or(expected, |(_, value)| value);
    for leaked in [secret, credential] {
        assert!(
            !log.contains(leaked),
            "the agent's log shows a secret ({leaked}):\n{log}"
        );
    }
    for path in ["/_info", "/metrics"] {
        let (status, body) = agent.admin_get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(
            !body.contains(secret) && !body.contains(credential),
            "{path} shows a secret: {body}"
        );
    }
    opensearch.cleanup(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_reaches_the_server() {
    // base64("hindsight-e2e:pa55:w0rd-Xq7Zbasic"), computed apart from the agent's encoder;
    // the password's `:` is legal (only the user may not hold one).
    auth_reaches_the_server(
        "auth-basic",
        r#"{ strategy = "basic", user = "hindsight-e2e", password = "${E2E_ES_PASSWORD}" }"#,
        ("E2E_ES_PASSWORD", "pa55:w0rd-Xq7Zbasic"),
        "Basic aGluZHNpZ2h0LWUyZTpwYTU1OncwcmQtWHE3WmJhc2lj",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_reaches_the_server() {
    auth_reaches_the_server(
        "auth-apikey",
        r#"{ strategy = "api_key", key = "${E2E_ES_API_KEY}" }"#,
        (
            "E2E_ES_API_KEY",
            "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==",
        ),
        "ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_reaches_the_server() {
    auth_reaches_the_server(
        "auth-bearer",
        r#"{ strategy = "bearer", token = "${E2E_ES_TOKEN}" }"#,
        (
            "E2E_ES_TOKEN",
            "eyJhbGciOiJIUzI1NiJ9.e2e-Bearer-Zk9.sig_Xq7",
        ),
        "Bearer eyJhbGciOiJIUzI1NiJ9.e2e-Bearer-Zk9.sig_Xq7",
    )
    .await;
}
