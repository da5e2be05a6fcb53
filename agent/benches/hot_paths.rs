//! Criterion micro-benchmarks of the agent's per-line hot paths: removing the container
//! runtime's framing (CRI, CRI split into pieces, Docker json-file) from 1,000 lines, and
//! building a record's document from a `LogEvent` with `RecordBuilder`. Inputs are fixed.
//!
//! ```text
//! cargo bench -p hindsight --bench hot_paths            # full run
//! cargo bench -p hindsight --bench hot_paths -- --quick # smoke run
//! ```
//!
//! `benches/file_source.rs` measures the whole files input (reading, unframing, batching).

use std::hint::black_box;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hindsight::bench_support::FramingDecoder;
use hindsight::event::{KubernetesOrigin, LineFlags, LogEvent, Origin, Stream};
use hindsight::records::RecordBuilder;
use hindsight::sources::files::Format;
use hindsight_correlation::extract::FieldSet;
use hindsight_correlation::request_delta::RequestClock;
use hindsight_exporters::ack::Ack;

#[path = "../../correlation/benches/common/records.rs"]
mod records;
use records::RECORDS;

/// Lines per framing benchmark iteration.
const LINES: usize = 1000;

/// A file's worth of raw lines in one buffer, as the file reader holds them after a read:
/// each line is cut out of it (a `Bytes` slice), without its `\n`.
struct RawLines {
    buffer: Bytes,
    lines: Vec<Range<usize>>,
}

impl RawLines {
    fn new(lines: impl Iterator<Item = String>) -> Self {
        let mut buffer = Vec::new();
        let mut ranges = Vec::new();
        for line in lines {
            let start = buffer.len();
            buffer.extend_from_slice(line.as_bytes());
            ranges.push(start..buffer.len());
            buffer.push(b'\n');
        }
        RawLines {
            buffer: Bytes::from(buffer),
            lines: ranges,
        }
    }
}

/// `LINES` lines cycling through the record shapes, each framed by `frame(i, record)`,
/// which may give more than one line per record.
fn framed(frame: impl Fn(usize, &str) -> Vec<String>) -> RawLines {
    RawLines::new(
        RECORDS
            .iter()
            .cycle()
            .take(LINES)
            .enumerate()
            .flat_map(|(i, (_, record))| frame(i, record)),
    )
}

fn cri_time(i: usize) -> String {
    format!(
        "2026-11-23T10:00:{:02}.{:09}Z",
        i % 60,
        i * 7919 % 1_000_000_000
    )
}

/// The framing decoder of the files input over 1,000 records: CRI full lines, CRI
/// records split into two pieces (`P` then `F`) and joined, Docker json-file entries.
fn framing(c: &mut Criterion) {
    let cases = [
        (
            "cri",
            Format::Cri,
            framed(|i, record| vec![format!("{} stdout F {record}", cri_time(i))]),
        ),
        (
            "cri_split",
            Format::Cri,
            framed(|i, record| {
                let (head, tail) = record.split_at(record.len() / 2);
                vec![
                    format!("{} stdout P {head}", cri_time(i)),
                    format!("{} stdout F {tail}", cri_time(i)),
                ]
            }),
        ),
        (
            "docker",
            Format::Docker,
            framed(|i, record| {
                let log = serde_json::to_string(&format!("{record}\n")).unwrap();
                vec![format!(
                    r#"{{"log":{log},"stream":"stdout","time":"{}"}}"#,
                    cri_time(i)
                )]
            }),
        ),
    ];
    let mut group = c.benchmark_group("framing");
    for (name, format, raw) in &cases {
        group.throughput(Throughput::Bytes(raw.buffer.len() as u64));
        // Each case must give back its 1,000 records, whole.
        let mut decoder = FramingDecoder::new(*format, 1 << 20);
        let (mut records, mut content) = (0, 0);
        for line in &raw.lines {
            decoder.push(raw.buffer.slice(line.clone()), |line, time| {
                assert!(time.is_some());
                records += 1;
                content += line.len();
            });
        }
        assert_eq!(records, LINES, "{name}");
        let expected: usize = RECORDS
            .iter()
            .cycle()
            .take(LINES)
            .map(|(_, r)| r.len())
            .sum();
        assert_eq!(content, expected, "{name}");

        group.bench_with_input(BenchmarkId::from_parameter(name), raw, |b, raw| {
            let mut decoder = FramingDecoder::new(*format, 1 << 20);
            b.iter(|| {
                let mut content = 0;
                for line in &raw.lines {
                    decoder.push(black_box(raw.buffer.slice(line.clone())), |line, time| {
                        black_box((line, time));
                        content += line.len();
                    });
                }
                content
            });
        });
    }
    group.finish();
}

/// `RecordBuilder::build`: one event (a CRI line from a Kubernetes pod) to its document,
/// with request deltas on, as the agent runs by default. The same request id every time,
/// so the request clock finds it.
fn record_builder(c: &mut Criterion) {
    let origin = Arc::new(Origin::new(
        PathBuf::from("/var/log/pods/shop_checkout-6f7d-x2v_0d3c2b1a/checkout/0.log"),
        Some(KubernetesOrigin {
            namespace: "shop".to_owned(),
            pod_name: "checkout-6f7d-x2v".to_owned(),
            pod_uid: Some("0d3c2b1a".to_owned()),
            container_name: "checkout".to_owned(),
            container_id: None,
        }),
    ));
    let runtime_time = Bytes::from_static(b"2026-11-23T10:00:00.123456789Z");
    let mut group = c.benchmark_group("record_builder");
    for (shape, record) in RECORDS {
        let line = Bytes::from(record.as_bytes().to_vec());
        let event = || LogEvent {
            line: line.clone(),
            runtime_time: Some(runtime_time.clone()),
            stream: Some(Stream::Stdout),
            origin: Arc::clone(&origin),
            flags: LineFlags::default(),
            ack: Ack::none(),
        };
        let mut builder =
            RecordBuilder::new("node-1", FieldSet::default(), Some(RequestClock::default()));
        let built = builder.build(event());
        assert!(
            built.outcome.wrapped.is_none(),
            "{shape} must not be wrapped"
        );
        group.throughput(Throughput::Bytes(line.len() as u64));
        group.bench_function(BenchmarkId::new("build", shape), |b| {
            b.iter(|| builder.build(black_box(event())));
        });
    }
    group.finish();
}

criterion_group!(benches, framing, record_builder);
criterion_main!(benches);
