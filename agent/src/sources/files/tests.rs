//! The source driven end to end: real files in a temporary directory, a channel as the
//! pipeline, acknowledgements settled by the test.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::event::Stream;

const DEADLINE: Duration = Duration::from_secs(20);

struct Running {
    rx: mpsc::Receiver<Vec<LogEvent>>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), FilesError>>,
    metrics: FileSourceMetrics,
}

fn config(include: &Path) -> FilesConfig {
    let mut c = FilesConfig::new(vec![include.display().to_string()]);
    c.rescan_interval = Duration::from_millis(200);
    c.checkpoint_interval = Duration::from_millis(50);
    c.rotate_wait = Duration::from_millis(200);
    c
}

fn start(config: &FilesConfig, data_dir: &Path, capacity: usize) -> Running {
    let metrics = FileSourceMetrics::default();
    let source = config.build(data_dir, metrics.clone()).unwrap();
    let (tx, rx) = mpsc::channel(capacity);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(source.run(tx, shutdown.clone(), Duration::from_secs(5)));
    Running {
        rx,
        shutdown,
        task,
        metrics,
    }
}

impl Running {
    /// Receives until `n` events came (delivering each), or fails at the deadline.
    async fn take(&mut self, n: usize) -> Vec<LogEvent> {
        let mut got = Vec::new();
        let deadline = Instant::now() + DEADLINE;
        while got.len() < n {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(batch)) => got.extend(batch),
                Ok(None) => panic!("source stopped after {} of {n} events", got.len()),
                Err(_) => panic!(
                    "only {} of {n} events before the deadline: {:?}",
                    got.len(),
                    lines_of(&got)
                ),
            }
        }
        got
    }

    /// Receives and delivers `n` lines; returns their text.
    async fn take_lines(&mut self, n: usize) -> Vec<String> {
        let events = self.take(n).await;
        let lines = lines_of(&events);
        for e in events {
            e.ack.delivered();
        }
        lines
    }

    /// Asserts nothing more arrives for a short while.
    async fn expect_quiet(&mut self) {
        if let Ok(Some(batch)) =
            tokio::time::timeout(Duration::from_millis(700), self.rx.recv()).await
        {
            panic!("unexpected events: {:?}", lines_of(&batch));
        }
    }

    async fn stop(self) -> Result<(), FilesError> {
        self.shutdown.cancel();
        let Running { mut rx, task, .. } = self;
        // Keep the pipeline's end open while the source drains, delivering what comes.
        let sink = tokio::spawn(async move {
            while let Some(batch) = rx.recv().await {
                drop(batch);
            }
        });
        let result = tokio::time::timeout(DEADLINE, task)
            .await
            .expect("source stops")
            .unwrap();
        sink.abort();
        result
    }
}

fn lines_of(events: &[LogEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| String::from_utf8_lossy(&e.line).into_owned())
        .collect()
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn numbered(range: std::ops::Range<usize>) -> String {
    range.map(|i| format!("{{\"seq\":{i}}}\n")).collect()
}

/// Lines padded to about 1 KiB, so that a few hundred span several reads.
fn padded(range: std::ops::Range<usize>) -> String {
    let pad = "p".repeat(1000);
    range
        .map(|i| format!("{{\"seq\":{i},\"pad\":\"{pad}\"}}\n"))
        .collect()
}

fn seqs(lines: &[String]) -> Vec<usize> {
    lines
        .iter()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|_| panic!("not json: {l}"));
            v["seq"].as_u64().unwrap() as usize
        })
        .collect()
}

/// Every sequence number in `0..n` exactly once.
fn assert_exactly_once(lines: &[String], n: usize) {
    let mut counts = BTreeMap::new();
    for s in seqs(lines) {
        *counts.entry(s).or_insert(0) += 1;
    }
    let dups: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    let missing: Vec<_> = (0..n).filter(|i| !counts.contains_key(i)).collect();
    assert!(
        dups.is_empty() && missing.is_empty(),
        "duplicates {dups:?}, missing {missing:?}"
    );
    assert_eq!(lines.len(), n);
}

fn checkpoint_offsets(data_dir: &Path) -> Vec<(PathBuf, u64)> {
    checkpoint::load(&data_dir.join(checkpoint::FILE_NAME))
        .unwrap()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.path, e.offset))
        .collect()
}

/// Waits until the checkpoint file holds `expected`, or fails at the deadline.
async fn wait_for_checkpoints(data_dir: &Path, expected: &[(PathBuf, u64)]) {
    let deadline = Instant::now() + DEADLINE;
    while checkpoint_offsets(data_dir) != expected {
        assert!(
            Instant::now() < deadline,
            "checkpoint: {:?}",
            checkpoint_offsets(data_dir)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pod_dir(base: &Path) -> PathBuf {
    let dir = base.join("var/log/pods/shop_cart-1_uid-9/cart");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn cri_file_with_kubernetes_origin() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = pod_dir(tmp.path());
    let t = "2024-05-01T12:00:00.000000001Z";
    append(
        &dir.join("0.log"),
        &format!("{t} stdout F {{\"seq\":0}}\n{t} stderr P {{\"seq\":\n{t} stderr F 1}}\n"),
    );
    let include = tmp.path().join("var/log/pods/*/*/*.log");
    let mut run = start(&config(&include), &tmp.path().join("data"), 4);
    let events = run.take(2).await;
    assert_eq!(lines_of(&events), vec![r#"{"seq":0}"#, r#"{"seq":1}"#]);
    assert_eq!(events[0].stream, Some(Stream::Stdout));
    assert_eq!(events[1].stream, Some(Stream::Stderr));
    assert_eq!(events[0].runtime_time.as_deref(), Some(t.as_bytes()));
    let k = events[0].origin.kubernetes.as_ref().unwrap();
    assert_eq!(
        (
            k.namespace.as_str(),
            k.pod_name.as_str(),
            k.container_name.as_str()
        ),
        ("shop", "cart-1", "cart")
    );
    assert!(std::sync::Arc::ptr_eq(&events[0].origin, &events[1].origin));
    for e in events {
        e.ack.delivered();
    }
    assert_eq!(run.metrics.partial_lines_joined.get(), 1);
    run.stop().await.unwrap();
}

#[tokio::test]
async fn docker_file_and_a_5mb_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("containers");
    std::fs::create_dir_all(&dir).unwrap();
    let id = "a".repeat(64);
    let path = dir.join(format!("web-1_prod_app-{id}.log"));
    append(
        &path,
        "{\"log\":\"{\\\"seq\\\":0}\\n\",\"stream\":\"stdout\",\"time\":\"2024-05-01T12:00:00Z\"}\n",
    );
    let mut c = config(&dir.join("*.log"));
    c.max_line_bytes = bytesize::ByteSize::mib(1);
    let mut run = start(&c, &tmp.path().join("data"), 4);
    let events = run.take(1).await;
    assert_eq!(lines_of(&events), vec![r#"{"seq":0}"#]);
    let k = events[0].origin.kubernetes.as_ref().unwrap();
    assert_eq!(
        (
            k.pod_name.as_str(),
            k.namespace.as_str(),
            k.container_name.as_str()
        ),
        ("web-1", "prod", "app")
    );
    assert_eq!(k.container_id.as_deref(), Some(id.as_str()));
    drop(events);

    // A 5 MB line in a docker-framed file does not parse (cut); it passes raw, flagged.
    let mut big = String::from("{\"log\":\"");
    big.push_str(&"x".repeat(5 * 1024 * 1024));
    big.push_str("\\n\",\"stream\":\"stdout\"}\n");
    append(&path, &big);
    append(
        &path,
        "{\"log\":\"{\\\"seq\\\":2}\\n\",\"stream\":\"stderr\"}\n",
    );
    let events = run.take(2).await;
    assert_eq!(events[0].line.len(), 1024 * 1024);
    assert!(events[0].flags.truncated);
    assert_eq!(&events[1].line[..], br#"{"seq":2}"#);
    assert_eq!(events[1].stream, Some(Stream::Stderr));
    assert_eq!(run.metrics.lines_truncated.get(), 1);
    for e in events {
        e.ack.delivered();
    }
    run.stop().await.unwrap();
}

#[tokio::test]
async fn new_files_are_found_through_inotify() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut c = config(&logs.join("*.log"));
    c.rescan_interval = Duration::from_secs(3600);
    let mut run = start(&c, &tmp.path().join("data"), 4);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let begun = Instant::now();
    append(&logs.join("a.log"), &numbered(0..3));
    let lines = run.take_lines(3).await;
    assert_eq!(seqs(&lines), vec![0, 1, 2]);
    assert!(
        begun.elapsed() < Duration::from_secs(2),
        "took {:?}",
        begun.elapsed()
    );
    append(&logs.join("ignored.log.gz"), &numbered(9..10));
    append(&logs.join("a.log"), &numbered(3..4));
    assert_eq!(seqs(&run.take_lines(1).await), vec![3]);
    run.expect_quiet().await;
    run.stop().await.unwrap();
}

#[tokio::test]
async fn files_in_new_nested_directories_are_found_through_inotify() {
    // The kubelet's layout: the pod and container directories appear after the agent
    // started, so they are watched only because their parents reported them.
    let tmp = tempfile::tempdir().unwrap();
    let pods = tmp.path().join("pods");
    std::fs::create_dir_all(&pods).unwrap();
    let mut c = config(&pods.join("*/*/*.log"));
    c.rescan_interval = Duration::from_secs(3600);
    let mut run = start(&c, &tmp.path().join("data"), 4);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let container = pods.join("ns_pod_uid").join("app");
    std::fs::create_dir_all(&container).unwrap();
    // Give the new directories' watches a moment, as a kubelet creates the directory
    // before the runtime writes to it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let begun = Instant::now();
    append(&container.join("0.log"), &numbered(0..3));
    assert_eq!(seqs(&run.take_lines(3).await), vec![0, 1, 2]);
    append(&container.join("0.log"), &numbered(3..5));
    assert_eq!(seqs(&run.take_lines(2).await), vec![3, 4]);
    assert!(
        begun.elapsed() < Duration::from_secs(2),
        "took {:?}",
        begun.elapsed()
    );
    run.expect_quiet().await;
    run.stop().await.unwrap();
}

#[tokio::test]
async fn overlapping_roots_are_each_watched_as_deep_as_their_glob() {
    // `logs/*.log` alone would watch `logs` one level deep; `logs/pods/*/*.log` needs the
    // pod directories below `logs/pods` watched too.
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(logs.join("pods")).unwrap();
    let mut c = FilesConfig::new(vec![
        logs.join("*.log").display().to_string(),
        logs.join("pods/*/*.log").display().to_string(),
    ]);
    c.rescan_interval = Duration::from_secs(3600);
    c.checkpoint_interval = Duration::from_millis(50);
    let mut run = start(&c, &tmp.path().join("data"), 4);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let pod = logs.join("pods").join("p1");
    std::fs::create_dir_all(&pod).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let begun = Instant::now();
    append(&pod.join("a.log"), &numbered(0..2));
    assert_eq!(seqs(&run.take_lines(2).await), vec![0, 1]);
    append(&logs.join("top.log"), &numbered(2..3));
    assert_eq!(seqs(&run.take_lines(1).await), vec![2]);
    assert!(
        begun.elapsed() < Duration::from_secs(2),
        "took {:?}",
        begun.elapsed()
    );
    run.stop().await.unwrap();
}

#[tokio::test]
async fn restart_resumes_exactly_at_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let path = logs.join("app.log");
    let data = tmp.path().join("data");
    append(&path, &numbered(0..10));
    let c = config(&logs.join("*.log"));

    let mut run = start(&c, &data, 4);
    assert_exactly_once(&run.take_lines(10).await, 10);
    run.stop().await.unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    assert_eq!(checkpoint_offsets(&data), vec![(path.clone(), len)]);

    append(&path, &numbered(10..15));
    append(&path, "{\"seq\":15,\"x\":");
    let mut run = start(&c, &data, 4);
    assert_eq!(seqs(&run.take_lines(5).await), vec![10, 11, 12, 13, 14]);
    run.expect_quiet().await;
    append(&path, "1}\n");
    assert_eq!(seqs(&run.take_lines(1).await), vec![15]);
    run.stop().await.unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    assert_eq!(checkpoint_offsets(&data), vec![(path, len)]);
}

#[tokio::test]
async fn undelivered_batch_holds_the_checkpoint_back() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let path = logs.join("app.log");
    let data = tmp.path().join("data");
    append(&path, &numbered(0..6));
    let mut c = config(&logs.join("*.log"));
    c.max_batch_events = std::num::NonZeroUsize::new(2).unwrap();

    let mut run = start(&c, &data, 8);
    let mut batches = Vec::new();
    while batches.iter().map(Vec::len).sum::<usize>() < 6 {
        batches.push(
            tokio::time::timeout(DEADLINE, run.rx.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert_eq!(batches.len(), 3);
    let first_end = numbered(0..2).len() as u64;
    let [b0, b1, b2]: [Vec<LogEvent>; 3] = batches.try_into().unwrap();
    for e in b0 {
        e.ack.delivered();
    }
    // The second batch is lost downstream: one event settled, one dropped.
    let mut b1 = b1.into_iter();
    b1.next().unwrap().ack.delivered();
    drop(b1);
    for e in b2 {
        e.ack.delivered();
    }
    wait_for_checkpoints(&data, &[(path.clone(), first_end)]).await;
    run.stop().await.unwrap();
    assert_eq!(checkpoint_offsets(&data), vec![(path.clone(), first_end)]);

    // At-least-once: the undelivered lines (and the ones after) are read again.
    let mut run = start(&c, &data, 8);
    assert_eq!(seqs(&run.take_lines(4).await), vec![2, 3, 4, 5]);
    run.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_keeps_applying_acks_while_draining() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let path = logs.join("app.log");
    let data = tmp.path().join("data");
    append(&path, &numbered(0..5));
    let mut run = start(&config(&logs.join("*.log")), &data, 4);
    let events = run.take(5).await;
    run.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for e in events {
        e.ack.delivered();
    }
    tokio::time::timeout(DEADLINE, run.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    assert_eq!(checkpoint_offsets(&data), vec![(path, len)]);
}

#[tokio::test]
async fn rename_rotation_reads_both_files_once() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let path = logs.join("app.log");
    // The glob also matches rotated names: a renamed file must not be read twice.
    let mut run = start(&config(&logs.join("*.log*")), &tmp.path().join("data"), 4);
    let mut writer = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    writer.write_all(numbered(0..30).as_bytes()).unwrap();
    let mut lines = run.take_lines(10).await;
    std::fs::rename(&path, logs.join("app.log.1")).unwrap();
    // The application still writes to the renamed file for a moment.
    writer.write_all(numbered(30..40).as_bytes()).unwrap();
    drop(writer);
    append(&path, &numbered(40..100));
    lines.extend(run.take_lines(100 - lines.len()).await);
    run.expect_quiet().await;
    assert_exactly_once(&lines, 100);
    run.stop().await.unwrap();
}

#[tokio::test]
async fn rename_out_of_the_glob_is_read_to_the_end_then_let_go() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let path = logs.join("app.log");
    let data = tmp.path().join("data");
    append(&path, &padded(0..300));
    // Capacity 1 and small batches: the source is stuck after a few lines.
    let mut c = config(&logs.join("*.log"));
    c.max_batch_events = std::num::NonZeroUsize::new(5).unwrap();
    let mut run = start(&c, &data, 1);
    let mut lines = run.take_lines(5).await;
    std::fs::rename(&path, logs.join("app.log.1")).unwrap();
    append(&path, &padded(300..310));
    lines.extend(run.take_lines(310 - lines.len()).await);
    assert_exactly_once(&lines, 310);
    let deadline = Instant::now() + DEADLINE;
    while run.metrics.files_watched.get() != 1 {
        assert!(Instant::now() < deadline, "rotated file not let go");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    run.stop().await.unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    assert_eq!(checkpoint_offsets(&data), vec![(path, len)]);
}

#[tokio::test]
async fn copytruncate_resumes_in_the_copy_without_loss_or_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let path = logs.join("app.log");
    append(&path, &padded(0..600));
    let mut c = config(&logs.join("*.log*"));
    c.max_batch_events = std::num::NonZeroUsize::new(5).unwrap();
    // Capacity 1: the source has read part of the file when the rotation happens.
    let mut run = start(&c, &tmp.path().join("data"), 1);
    let mut lines = run.take_lines(5).await;
    std::fs::copy(&path, logs.join("app.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, &padded(600..650));
    lines.extend(run.take_lines(650 - lines.len()).await);
    run.expect_quiet().await;
    assert_exactly_once(&lines, 650);
    assert!(
        run.metrics
            .rotations
            .get_or_create(&RotationLabels {
                kind: RotationKind::Truncate
            })
            .get()
            >= 1
    );
    run.stop().await.unwrap();
}

#[tokio::test]
async fn copytruncate_with_the_copy_seen_first() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let path = logs.join("app.log");
    append(&path, &padded(0..600));
    let mut c = config(&logs.join("*.log*"));
    c.max_batch_events = std::num::NonZeroUsize::new(5).unwrap();
    let mut run = start(&c, &tmp.path().join("data"), 1);
    let mut lines = run.take_lines(5).await;
    std::fs::copy(&path, logs.join("app.log.1")).unwrap();
    // Let the source see the copy while the original still holds everything.
    lines.extend(run.take_lines(100).await);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, &padded(600..650));
    lines.extend(run.take_lines(650 - lines.len()).await);
    run.expect_quiet().await;
    assert_exactly_once(&lines, 650);
    run.stop().await.unwrap();
}

#[tokio::test]
async fn a_file_deleted_while_being_read_is_read_to_its_end() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let path = logs.join("app.log");
    let data = tmp.path().join("data");
    append(&path, &padded(0..600));
    let mut c = config(&logs.join("*.log"));
    c.max_batch_events = std::num::NonZeroUsize::new(5).unwrap();
    let mut run = start(&c, &data, 1);
    let mut lines = run.take_lines(5).await;
    std::fs::remove_file(&path).unwrap();
    lines.extend(run.take_lines(600 - lines.len()).await);
    assert_exactly_once(&lines, 600);
    let deadline = Instant::now() + DEADLINE;
    while run.metrics.files_watched.get() != 0 || !checkpoint_offsets(&data).is_empty() {
        assert!(Instant::now() < deadline, "deleted file not let go");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deletes = run
        .metrics
        .rotations
        .get_or_create(&RotationLabels {
            kind: RotationKind::Delete,
        })
        .get();
    assert_eq!(deletes, 1);
    run.stop().await.unwrap();
}

#[tokio::test]
async fn read_from_end_skips_existing_lines_only_at_first_start() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let path = logs.join("old.log");
    let data = tmp.path().join("data");
    append(&path, &numbered(0..5));
    append(&path, "{\"seq\":5");
    let mut c = config(&logs.join("*.log"));
    c.read_from = ReadFrom::End;
    let mut run = start(&c, &data, 4);
    // Let the first scan happen before anything else is written.
    let deadline = Instant::now() + DEADLINE;
    while checkpoint_offsets(&data).is_empty() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    append(&path, "}\n");
    append(&path, &numbered(6..8));
    append(&logs.join("new.log"), &numbered(100..102));
    let mut lines = run.take_lines(5).await;
    lines.sort();
    assert_eq!(
        lines,
        vec![
            r#"{"seq":100}"#,
            r#"{"seq":101}"#,
            r#"{"seq":5}"#,
            r#"{"seq":6}"#,
            r#"{"seq":7}"#
        ]
    );
    run.expect_quiet().await;
    run.stop().await.unwrap();
}

#[tokio::test]
async fn backpressure_stops_reading() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    append(&logs.join("a.log"), &numbered(0..1000));
    let mut c = config(&logs.join("*.log"));
    c.max_batch_events = std::num::NonZeroUsize::new(10).unwrap();
    let mut run = start(&c, &tmp.path().join("data"), 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Two batches in the channel, one waiting to be sent.
    assert!(
        run.metrics.lines_read.get() <= 30,
        "{}",
        run.metrics.lines_read.get()
    );
    assert_exactly_once(&run.take_lines(1000).await, 1000);
    run.stop().await.unwrap();
}

#[tokio::test]
async fn acks_move_the_checkpoint_while_the_output_is_full() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let path = logs.join("a.log");
    let data = tmp.path().join("data");
    append(&path, &numbered(0..100));
    let mut c = config(&logs.join("*.log"));
    c.max_batch_events = std::num::NonZeroUsize::new(10).unwrap();
    let mut run = start(&c, &data, 1);
    let first = tokio::time::timeout(DEADLINE, run.rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seqs(&lines_of(&first)), (0..10).collect::<Vec<_>>());
    // Nothing more is received: the source fills the channel again and waits to send a
    // third batch. The acknowledgement comes while it waits, and is applied there, at a
    // checkpoint tick.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(run.metrics.lines_read.get(), 30);
    for e in first {
        e.ack.delivered();
    }
    let first_end = numbered(0..10).len() as u64;
    wait_for_checkpoints(&data, &[(path.clone(), first_end)]).await;
    assert_eq!(run.metrics.lines_read.get(), 30);
    run.stop().await.unwrap();
}

#[tokio::test]
async fn a_corrupt_checkpoint_file_is_a_build_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join(checkpoint::FILE_NAME), "nonsense").unwrap();
    let err = config(&tmp.path().join("*.log"))
        .build(tmp.path(), FileSourceMetrics::default())
        .unwrap_err();
    assert!(matches!(err, FilesError::Checkpoint { .. }), "{err}");
}

/// The end-to-end scenario: CRI lines written while the source reads, a rename rotation
/// and a copytruncate rotation mid-stream, the glob matching rotated names too.
#[tokio::test]
async fn rename_and_copytruncate_mid_stream_deliver_every_line_once() {
    rotations_mid_stream(false).await;
}

/// The same, with the writer waiting for the reader to be close behind before each
/// rotation, so that the rotations happen in the middle of the reading.
#[tokio::test]
async fn rotations_while_the_reader_is_close_behind() {
    rotations_mid_stream(true).await;
}

async fn rotations_mid_stream(close_behind: bool) {
    const N: usize = 3000;
    let tmp = tempfile::tempdir().unwrap();
    let dir = pod_dir(tmp.path());
    let path = dir.join("0.log");
    let include = tmp.path().join("var/log/pods/*/*/*.log*");
    let mut c = config(&include);
    c.max_batch_events = std::num::NonZeroUsize::new(7).unwrap();
    let mut run = start(&c, &tmp.path().join("data"), 2);
    let read = run.metrics.lines_read.clone();
    let writer = std::thread::spawn(move || {
        let wait_for_reader = |i: usize| {
            let deadline = std::time::Instant::now() + DEADLINE;
            while close_behind && (read.get() as usize) + 50 < i {
                assert!(
                    std::time::Instant::now() < deadline,
                    "reader stuck at {}",
                    read.get()
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        let line = |i: usize| format!("2024-05-01T12:00:00.{i:09}Z stdout F {{\"seq\":{i}}}\n");
        let mut out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        for i in 0..N {
            if i == N / 3 || i == 2 * N / 3 {
                wait_for_reader(i);
            }
            if i == N / 3 {
                std::fs::rename(&path, path.with_extension("log.1")).unwrap();
                out = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .unwrap();
            }
            if i == 2 * N / 3 {
                std::fs::copy(&path, path.with_extension("log.2")).unwrap();
                out.set_len(0).unwrap();
            }
            // Split some lines into CRI partials.
            let text = line(i);
            if i % 10 == 0 {
                let (head, tail) = text.split_at(text.len() - 4);
                let stamp = &text[..30];
                out.write_all(format!("{} stdout P {}\n", stamp, &head[40..]).as_bytes())
                    .unwrap();
                out.write_all(format!("{stamp} stdout F {tail}").as_bytes())
                    .unwrap();
            } else {
                out.write_all(text.as_bytes()).unwrap();
            }
            if i % 100 == 0 {
                std::thread::yield_now();
            }
        }
    });
    let lines = run.take_lines(N).await;
    writer.join().unwrap();
    run.expect_quiet().await;
    assert_exactly_once(&lines, N);
    if close_behind {
        let rotations = |kind| {
            run.metrics
                .rotations
                .get_or_create(&RotationLabels { kind })
                .get()
        };
        assert!(rotations(RotationKind::Rename) >= 1);
        assert!(rotations(RotationKind::Truncate) >= 1);
    }
    run.stop().await.unwrap();
}
