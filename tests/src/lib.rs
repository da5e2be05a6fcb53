//! Harness for Hindsight's end-to-end tests.
//!
//! The tests run the real `hindsight` binary against the real OpenSearch that
//! `scripts/services.sh up` starts on 127.0.0.1:9200. When OpenSearch is not there the
//! tests fail with a message saying so; they never skip.
//!
//! Every test writes to its own indices (`e2e-<test>-<unique>-*`) with its own index
//! template, so tests can run in parallel against one node.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// How long a search waits for a just-created index's shard to start.
const SHARD_START: Duration = Duration::from_secs(10);

/// The OpenSearch the tests use: `HINDSIGHT_TEST_OPENSEARCH`, default `http://127.0.0.1:9200`.
pub fn opensearch_url() -> String {
    std::env::var("HINDSIGHT_TEST_OPENSEARCH")
        .unwrap_or_else(|_| "http://127.0.0.1:9200".to_owned())
}

/// The agent binary: `HINDSIGHT_BIN`, else `hindsight` next to the test executable's
/// `deps/` folder (built by `cargo build -p hindsight` with the same target dir).
pub fn agent_binary() -> PathBuf {
    if let Ok(path) = std::env::var("HINDSIGHT_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir");
    let path = dir.join("hindsight");
    assert!(
        path.exists(),
        "agent binary not found at {}: run `cargo build -p hindsight` first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A client for the test OpenSearch; panics with instructions if it does not answer.
pub async fn opensearch() -> OpenSearch {
    let url = opensearch_url();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client");
    match http.get(format!("{url}/_cluster/health")).send().await {
        Ok(response) if response.status().is_success() => {}
        Ok(response) => panic!("OpenSearch at {url} answered {}: is it healthy? (scripts/services.sh status)", response.status()),
        Err(error) => panic!("OpenSearch is not reachable at {url} ({error}); start it with `scripts/services.sh up`"),
    }
    OpenSearch { url, http }
}

/// The test OpenSearch.
#[derive(Clone)]
pub struct OpenSearch {
    /// Base URL.
    pub url: String,
    http: reqwest::Client,
}

impl OpenSearch {
    /// Refreshes `index` (a pattern) so that what was indexed is searchable.
    pub async fn refresh(&self, index: &str) {
        let _ = self
            .http
            .post(format!(
                "{}/{index}/_refresh?ignore_unavailable=true&allow_no_indices=true",
                self.url
            ))
            .send()
            .await;
    }

    /// Runs a search body against `index` and returns the response.
    ///
    /// An index the agent has just created answers 503 ("all shards failed") until its
    /// shard has started; that is waited out for up to [`SHARD_START`], anything else fails.
    pub async fn search(&self, index: &str, body: Value) -> Value {
        let deadline = Instant::now() + SHARD_START;
        loop {
            self.refresh(index).await;
            let response = self
                .http
                .post(format!(
                    "{}/{index}/_search?ignore_unavailable=true&allow_no_indices=true",
                    self.url
                ))
                .json(&body)
                .send()
                .await
                .expect("search request");
            let status = response.status();
            let value: Value = response.json().await.expect("search response is JSON");
            if status == reqwest::StatusCode::SERVICE_UNAVAILABLE && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            assert!(status.is_success(), "search failed: {status} {value}");
            return value;
        }
    }

    /// Counts documents in `index` matching `query`.
    pub async fn count(&self, index: &str, query: Value) -> u64 {
        let response = self
            .search(
                index,
                json!({"size": 0, "track_total_hits": true, "query": query}),
            )
            .await;
        response["hits"]["total"]["value"].as_u64().unwrap_or(0)
    }

    /// Polls until `index` holds at least `expected` documents or `timeout` passes;
    /// returns the last count.
    pub async fn wait_for_count(&self, index: &str, expected: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let count = self.count(index, json!({"match_all": {}})).await;
            if count >= expected || Instant::now() > deadline {
                return count;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Polls until the count stops changing for `quiet` (all in flight has landed).
    pub async fn wait_until_stable(&self, index: &str, quiet: Duration) -> u64 {
        let mut last = self.count(index, json!({"match_all": {}})).await;
        let mut since = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let count = self.count(index, json!({"match_all": {}})).await;
            if count != last {
                last = count;
                since = Instant::now();
            } else if since.elapsed() >= quiet {
                return count;
            }
        }
    }

    /// Checks that the numeric `field` takes every value in `0..n` (and only those), and
    /// returns how many documents are extra copies of a value (duplicates).
    ///
    /// Exact, not approximate: no value may repeat beyond the returned duplicates, and with
    /// min 0, max n-1 and `n + duplicates` documents every value must be there.
    pub async fn duplicates_of_sequence(
        &self,
        index: &str,
        field: &str,
        n: u64,
    ) -> Result<u64, String> {
        let response = self
            .search(
                index,
                json!({
                    "size": 0,
                    "track_total_hits": true,
                    "aggs": {
                        "range": {"stats": {"field": field}},
                        "repeated": {"terms": {"field": field, "min_doc_count": 2, "size": n.max(1)}}
                    }
                }),
            )
            .await;
        let total = response["hits"]["total"]["value"].as_u64().unwrap_or(0);
        let stats = &response["aggregations"]["range"];
        let buckets = response["aggregations"]["repeated"]["buckets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let duplicates: u64 = buckets
            .iter()
            .map(|bucket| bucket["doc_count"].as_u64().unwrap_or(1) - 1)
            .sum();
        let (min, max, counted) = (
            stats["min"].as_f64(),
            stats["max"].as_f64(),
            stats["count"].as_u64(),
        );
        if counted != Some(total) {
            return Err(format!(
                "{total} documents but {counted:?} have a numeric `{field}`"
            ));
        }
        if n > 0 && (min != Some(0.0) || max != Some((n - 1) as f64)) {
            return Err(format!(
                "`{field}` spans {min:?}..={max:?}, expected 0..={}",
                n - 1
            ));
        }
        if total != n + duplicates {
            return Err(format!(
                "{total} documents, {duplicates} duplicates: {} of {n} values missing",
                (n + duplicates).saturating_sub(total)
            ));
        }
        Ok(duplicates)
    }

    /// The first `size` documents' `_source`, sorted by `sort` field.
    pub async fn sources(&self, index: &str, query: Value, size: usize) -> Vec<Value> {
        let response = self
            .search(index, json!({"size": size, "query": query}))
            .await;
        response["hits"]["hits"]
            .as_array()
            .map(|hits| hits.iter().map(|hit| hit["_source"].clone()).collect())
            .unwrap_or_default()
    }

    /// Deletes the test's indices and template.
    pub async fn cleanup(&self, prefix: &str) {
        let _ = self
            .http
            .delete(format!("{}/{prefix}-*", self.url))
            .send()
            .await;
        let _ = self
            .http
            .delete(format!("{}/_index_template/{prefix}", self.url))
            .send()
            .await;
    }
}

/// A name no other test run uses: `e2e-<test>-<pid><millis>`.
pub fn unique_prefix(test: &str) -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("e2e-{test}-{}{}", std::process::id(), millis % 100_000_000)
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// What a test agent needs to know to write its config.
#[derive(Debug, Clone, Default)]
pub struct AgentSetup {
    /// Globs for `inputs.files.include`.
    pub include: Vec<String>,
    /// The `outputs.elasticsearch.endpoints` URL.
    pub endpoint: String,
    /// The index prefix; the index is `<prefix>-%Y.%m.%d`, the template `<prefix>`.
    pub prefix: String,
    /// Extra TOML appended under `[inputs.files]`.
    pub files_extra: String,
    /// Extra TOML appended under `[outputs.elasticsearch]` (before its sub-tables).
    pub output_extra: String,
    /// Extra TOML tables appended at the end of the file (e.g. `[pipeline.x]` sections).
    pub tables_extra: String,
    /// Environment variables set on the agent process (e.g. secrets for `${VAR}` in the
    /// config), in addition to the test's own environment.
    pub env: Vec<(String, String)>,
}

/// A running `hindsight run` process with its own data dir and admin port.
pub struct Agent {
    child: Option<Child>,
    /// The admin server's address.
    pub admin: SocketAddr,
    /// The agent's data dir (checkpoints, dead-letter file).
    pub data_dir: PathBuf,
    config_path: PathBuf,
    log_path: PathBuf,
    env: Vec<(String, String)>,
}

impl Agent {
    /// Writes a config under `work` and starts the agent.
    pub fn start(work: &Path, setup: &AgentSetup) -> Agent {
        let data_dir = work.join("data");
        let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let include = setup
            .include
            .iter()
            .map(|glob| format!("{glob:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let config = format!(
            r#"data_dir = {data_dir:?}
host_name = "e2e-host"
shutdown_grace = "10s"

[log]
level = "info"

[admin]
address = "{admin}"

[inputs.files]
include = [{include}]
rescan_interval = "1s"
{files_extra}

[outputs.elasticsearch]
endpoints = ["{endpoint}"]
index = "{prefix}-%Y.%m.%d"
{output_extra}

[outputs.elasticsearch.template]
name = "{prefix}"

[outputs.elasticsearch.batch]
timeout = "200ms"

[outputs.elasticsearch.retry]
max_backoff = "1s"

{tables_extra}
"#,
            data_dir = data_dir.display().to_string(),
            endpoint = setup.endpoint,
            prefix = setup.prefix,
            files_extra = setup.files_extra,
            output_extra = setup.output_extra,
            tables_extra = setup.tables_extra,
        );
        let config_path = work.join("hindsight.toml");
        std::fs::write(&config_path, config).expect("write config");
        let log_path = work.join("agent.log");
        let mut agent = Agent {
            child: None,
            admin,
            data_dir,
            config_path,
            log_path,
            env: setup.env.clone(),
        };
        agent.spawn();
        agent
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("agent log file");
        let child = Command::new(agent_binary())
            .args(["run", "--config"])
            .arg(&self.config_path)
            .env("HINDSIGHT_LOG", "info")
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start hindsight");
        self.child = Some(child);
    }

    /// Starts the agent again with the same config and data dir.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "agent still running");
        self.spawn();
    }

    /// `kill -9`: no chance to flush or checkpoint.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("agent running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait agent") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "agent did not exit within 30 s of SIGTERM; log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last lines of the agent's stderr, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// GETs an admin path; returns (status, body).
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match reqwest::get(format!("http://{}{path}", self.admin)).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    return (status, response.text().await.unwrap_or_default());
                }
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(error) => panic!("admin server {path}: {error}; log:\n{}", self.log_tail()),
            }
        }
    }

    /// Polls `checkpoints.json` until some file's offset is past 0; returns the largest
    /// offset (0 if none within `timeout`).
    pub async fn wait_for_checkpoint(&self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let offset = std::fs::read(self.data_dir.join("checkpoints.json"))
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
                .and_then(|value| {
                    value["files"]
                        .as_array()
                        .and_then(|files| files.iter().filter_map(|f| f["offset"].as_u64()).max())
                })
                .unwrap_or(0);
            if offset > 0 || Instant::now() > deadline {
                return offset;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The value of one metric sample line (`name{labels}`) in `/metrics`, or 0.
    pub async fn metric(&self, series: &str) -> f64 {
        let (_, body) = self.admin_get("/metrics").await;
        body.lines()
            .find_map(|line| {
                line.strip_prefix(series)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Appends lines to a file, flushing each write, like a container runtime does.
pub struct LogWriter {
    path: PathBuf,
    file: std::fs::File,
}

impl LogWriter {
    /// Creates (or appends to) `path`, creating its parent folders.
    pub fn create(path: &Path) -> LogWriter {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("log dir");
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open log file");
        LogWriter {
            path: path.to_owned(),
            file,
        }
    }

    /// Appends raw bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        self.file.write_all(bytes).expect("write log");
    }

    /// Rotates by rename-and-create: the current file moves to `rotated`, writing goes on
    /// in a new file at the original path.
    pub fn rotate_rename(&mut self, rotated: &Path) {
        std::fs::rename(&self.path, rotated).expect("rename");
        *self = LogWriter::create(&self.path.clone());
    }

    /// Rotates by copytruncate: the content is copied to `rotated`, then the original is
    /// truncated in place and writing goes on in it.
    pub fn rotate_copytruncate(&mut self, rotated: &Path) {
        std::fs::copy(&self.path, rotated).expect("copy");
        self.file.set_len(0).expect("truncate");
    }
}

/// A CRI line: `<time> <stream> F <content>\n`.
pub fn cri_line(stream: &str, content: &str) -> String {
    format!("2026-11-23T10:00:00.000000001Z {stream} F {content}\n")
}

/// A CRI line split into `P` partials of `chunk` bytes and a final `F`.
pub fn cri_partial_lines(stream: &str, content: &str, chunk: usize) -> String {
    let mut out = String::new();
    let bytes = content.as_bytes();
    let mut start = 0;
    while bytes.len() - start > chunk {
        let end = (start + chunk..=bytes.len())
            .find(|&i| content.is_char_boundary(i))
            .unwrap_or(bytes.len());
        out.push_str(&format!(
            "2026-11-23T10:00:00.000000001Z {stream} P {}\n",
            &content[start..end]
        ));
        start = end;
    }
    out.push_str(&format!(
        "2026-11-23T10:00:00.000000001Z {stream} F {}\n",
        &content[start..]
    ));
    out
}

/// A Docker json-file line wrapping `content`.
pub fn docker_line(stream: &str, content: &str) -> String {
    format!(
        "{}\n",
        json!({"log": format!("{content}\n"), "stream": stream, "time": "2026-11-23T10:00:00.000000002Z"})
    )
}

/// An application's JSON log line with a unique sequence number.
pub fn app_line(seq: u64, source: &str) -> String {
    json!({"level": "info", "msg": "request handled", "seq": seq, "source": source, "ts": "2026-11-23T10:00:00.123Z"}).to_string()
}

/// A TCP forwarder to a real server that a test can cut and restore, to make the
/// backend unreachable on demand (a real OpenSearch cannot be paused per test).
pub struct Cuttable {
    /// The address the agent connects to.
    pub address: SocketAddr,
    up: Arc<AtomicBool>,
    generation: Arc<std::sync::atomic::AtomicU64>,
}

impl Cuttable {
    /// Forwards a local port to `target` (host:port); starts `up` or cut.
    pub async fn start(target: String, up: bool) -> Cuttable {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let address = listener.local_addr().expect("proxy address");
        let state = Arc::new(AtomicBool::new(up));
        let generation = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (accept_state, accept_generation) = (state.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if !accept_state.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let my_generation = accept_generation.load(Ordering::SeqCst);
                let watch = accept_generation.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    let copy = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                    let cut = async {
                        while watch.load(Ordering::SeqCst) == my_generation {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    };
                    tokio::select! { _ = copy => {}, _ = cut => {} }
                });
            }
        });
        Cuttable {
            address,
            up: state,
            generation,
        }
    }

    /// Refuses new connections and breaks open ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Accepts and forwards connections again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Agent {
    /// Everything the agent wrote to stderr so far (its JSON log lines).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Polls the agent's log until some line contains every one of `needles`
    /// (case-insensitive) or `timeout` passes; returns that line.
    pub async fn wait_for_log(&self, needles: &[&str], timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .log_text()
                .lines()
                .find(|line| {
                    let line = line.to_lowercase();
                    needles
                        .iter()
                        .all(|needle| line.contains(&needle.to_lowercase()))
                })
                .map(str::to_owned);
            if found.is_some() || Instant::now() > deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The head of the first HTTP/1.1 request a [`TlsForwarder`] saw on one connection.
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// `METHOD /path HTTP/1.1`.
    pub request_line: String,
    /// The header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn parse(head: &[u8]) -> Option<RequestHead> {
        let text = std::str::from_utf8(head).ok()?;
        let mut lines = text.split("\r\n");
        let request_line = lines.next()?.to_owned();
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
            .collect();
        Some(RequestHead {
            request_line,
            headers,
        })
    }
}

/// What a [`TlsForwarder`] saw, shared with its connection tasks.
#[derive(Default)]
struct TlsSeen {
    heads: std::sync::Mutex<Vec<RequestHead>>,
    handshake_errors: std::sync::Mutex<Vec<String>>,
}

/// An HTTPS front for a real plain-HTTP server (the test OpenSearch has no TLS of its own):
/// terminates TLS with a certificate for `localhost` and `127.0.0.1` signed by a throwaway
/// CA made at start, and forwards the decrypted bytes to the target. It records the head
/// of the first request on each connection (to check the `Authorization` header) and the
/// handshakes that failed (a client that refused the certificate).
pub struct TlsForwarder {
    /// The address the agent connects to.
    pub address: SocketAddr,
    /// The PEM file of the CA that signed the server certificate (in the test's dir).
    pub ca_file: PathBuf,
    seen: Arc<TlsSeen>,
}

impl TlsForwarder {
    /// Makes the CA (written to `dir/ca.pem`) and the server certificate, and forwards a
    /// local port to `target` (host:port).
    pub async fn start(dir: &Path, target: String) -> TlsForwarder {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        use tokio_rustls::rustls;

        let (ca_pem, chain, key) = test_certificates();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca_pem).expect("write CA file");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server certificate");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind TLS forwarder");
        let address = listener.local_addr().expect("TLS forwarder address");
        let seen = Arc::new(TlsSeen::default());
        let accept_seen = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, target, seen) =
                    (acceptor.clone(), target.clone(), accept_seen.clone());
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(inbound));
                    let mut inbound = match handshake.await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(error)) => {
                            lock(&seen.handshake_errors).push(error.to_string());
                            return;
                        }
                        Err(_) => {
                            lock(&seen.handshake_errors).push("handshake timed out".to_owned());
                            return;
                        }
                    };
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    // Read up to the end of the first request's head, then pass it on
                    // with whatever followed it and forward the rest untouched.
                    let mut head = Vec::new();
                    let mut chunk = vec![0u8; 16 * 1024];
                    loop {
                        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                            if let Some(parsed) = RequestHead::parse(&head[..end]) {
                                lock(&seen.heads).push(parsed);
                            }
                            break;
                        }
                        if head.len() > 256 * 1024 {
                            break;
                        }
                        match inbound.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&chunk[..n]),
                        }
                    }
                    if outbound.write_all(&head).await.is_err() {
                        return;
                    }
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
        TlsForwarder {
            address,
            ca_file,
            seen,
        }
    }

    /// `https://127.0.0.1:<port>` (the certificate names the IP address).
    pub fn url(&self) -> String {
        format!("https://{}", self.address)
    }

    /// The head of the first request of every connection that got through the handshake.
    pub fn request_heads(&self) -> Vec<RequestHead> {
        lock(&self.seen.heads).clone()
    }

    /// Why handshakes failed (e.g. the client refused the certificate), one per failure.
    pub fn handshake_errors(&self) -> Vec<String> {
        lock(&self.seen.handshake_errors).clone()
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A CA (its PEM) and a server certificate chain and key for `localhost` and `127.0.0.1`
/// that it signed.
fn test_certificates() -> (
    String,
    Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>,
    tokio_rustls::rustls::pki_types::PrivateKeyDer<'static>,
) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "hindsight e2e throwaway CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("server params");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let server_cert = params
        .signed_by(&server_key, &issuer)
        .expect("server certificate");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    (
        ca_cert.pem(),
        vec![server_cert.der().clone(), ca_cert.der().clone()],
        key,
    )
}

/// The test Jaeger's query API: `HINDSIGHT_TEST_JAEGER`, default `http://127.0.0.1:16686`.
pub fn jaeger_url() -> String {
    std::env::var("HINDSIGHT_TEST_JAEGER").unwrap_or_else(|_| "http://127.0.0.1:16686".to_owned())
}

/// Fetches a trace from Jaeger's query API, polling until it has at least `spans` spans
/// or `timeout` passes. Panics with instructions when Jaeger does not answer.
pub async fn jaeger_trace(trace_id: &str, spans: usize, timeout: Duration) -> Value {
    let url = format!("{}/api/traces/{trace_id}", jaeger_url());
    let deadline = Instant::now() + timeout;
    loop {
        let response = match reqwest::get(&url).await {
            Ok(response) => response,
            Err(error) => panic!(
                "Jaeger is not reachable at {} ({error}); start it with `scripts/services.sh up`",
                jaeger_url()
            ),
        };
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let found = body["data"][0]["spans"].as_array().map_or(0, Vec::len);
        if found >= spans || Instant::now() > deadline {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A binary built next to the agent (same target dir), e.g. `demo-service`.
pub fn sibling_binary(name: &str) -> PathBuf {
    let path = agent_binary().with_file_name(name);
    assert!(
        path.exists(),
        "{} not found: run `cargo build -p {name}` first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// The demo service (`examples/demo-service`), writing its JSON logs to a file.
pub struct DemoService {
    child: Child,
    /// Where it listens.
    pub address: SocketAddr,
}

impl DemoService {
    /// Starts it on a free port, logging to `log_file`; waits until `/healthz` answers.
    pub async fn start(log_file: &Path, fail_every: u32) -> DemoService {
        if let Some(parent) = log_file.parent() {
            std::fs::create_dir_all(parent).expect("demo log dir");
        }
        let address = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let child = Command::new(sibling_binary("demo-service"))
            .args([
                "--listen",
                &address.to_string(),
                "--fail-every",
                &fail_every.to_string(),
            ])
            .arg("--log-file")
            .arg(log_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start demo-service");
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::get(format!("http://{address}/healthz"))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "demo-service did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        DemoService { child, address }
    }
}

impl Drop for DemoService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
