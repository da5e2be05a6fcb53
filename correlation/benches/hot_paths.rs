//! Criterion micro-benchmarks of the correlation crate's per-record hot paths: the
//! validating scan that finds ids, level and time; splicing the ECS fields into the
//! document; `RequestClock::observe`; time parsing and formatting; trace and span id hex;
//! level names. Inputs are fixed (seeded where random).
//!
//! ```text
//! cargo bench -p hindsight-correlation --bench hot_paths            # full run
//! cargo bench -p hindsight-correlation --bench hot_paths -- --quick # smoke run
//! ```
//!
//! `benches/extract.rs` prints the same kinds of figures for `scripts/bench.sh`.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::Duration;

use bytes::BytesMut;
use common::records::RECORDS;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use hindsight_correlation::ecs::Layouts;
use hindsight_correlation::extract::FieldSet;
use hindsight_correlation::ids::{SpanId, TraceId};
use hindsight_correlation::level::Level;
use hindsight_correlation::request_delta::RequestClock;
use hindsight_correlation::time::{parse_epoch, parse_text};
use rand::rngs::StdRng;
use rand::SeedableRng;

mod common;

/// `FieldSet::scan`: validating one record and finding its ids, level and time.
fn scan(c: &mut Criterion) {
    let fields = FieldSet::default();
    let mut group = c.benchmark_group("scan");
    for (shape, record) in RECORDS {
        let line = record.as_bytes();
        assert!(fields.scan(line).is_ok(), "{shape} must scan");
        group.throughput(Throughput::Bytes(line.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(shape), line, |b, line| {
            b.iter(|| fields.scan(black_box(line)).is_ok());
        });
    }
    group.finish();
}

/// The scan plus writing the document with its ECS fields spliced in, as the agent's
/// record builder does: one output buffer and one layout cache across records.
fn splice(c: &mut Criterion) {
    let fields = FieldSet::default();
    let mut group = c.benchmark_group("splice");
    for (shape, record) in RECORDS {
        let line = record.as_bytes();
        group.throughput(Throughput::Bytes(line.len() as u64));
        let mut out = BytesMut::with_capacity(1024);
        let mut layouts = Layouts::default();
        group.bench_with_input(BenchmarkId::from_parameter(shape), line, |b, line| {
            b.iter(|| {
                common::splice(&fields, black_box(line), &mut layouts, &mut out);
                black_box(&out).len()
            });
        });
    }
    group.finish();
}

/// `RequestClock::observe` over 20,000 request ids (about 150,000 lines) per iteration,
/// from an empty clock: one large enough for all ids (it grows), and one of 4,096 that
/// sits full and evicts an id for every new one, as the agent's clock does under load.
fn request_clock(c: &mut Criterion) {
    let (ids, lines) = common::request_lines(20_000, 256);
    let mut group = c.benchmark_group("request_clock");
    group.sample_size(20);
    group.throughput(Throughput::Elements(lines.len() as u64));
    for (name, capacity) in [("observe_growing", 100_000), ("observe_full", 4_096)] {
        let capacity = NonZeroUsize::new(capacity).expect("non-zero");
        group.bench_function(name, |b| {
            b.iter_batched(
                || RequestClock::new(capacity, Duration::from_secs(300)),
                |mut clock| {
                    for &(id, at) in &lines {
                        black_box(clock.observe(black_box(&ids[id as usize]), at));
                    }
                    clock
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

/// `time::parse_text` on the shapes loggers write, `Timestamp::write_rfc3339`, and
/// `time::parse_epoch` on seconds (zap), milliseconds (pino) and nanoseconds.
fn time(c: &mut Criterion) {
    const TEXTS: &[(&str, &str)] = &[
        ("micros_z", "2024-05-01T12:00:00.000068Z"),
        ("offset", "2026-11-23T10:00:00.5+01:00"),
        ("millis_z", "2026-11-23T10:00:00.123Z"),
        ("space_no_zone", "2026-11-23 10:00:00.123456"),
    ];
    const EPOCHS: &[(&str, f64)] = &[
        ("seconds", 1_700_000_000.123_456),
        ("millis", 1_700_000_000_123.0),
        ("nanos", 1_700_000_000_123_456_789.0),
    ];
    let mut group = c.benchmark_group("time");
    for (name, text) in TEXTS {
        assert!(parse_text(text).is_some(), "{text} must parse");
        group.bench_with_input(BenchmarkId::new("parse_text", name), text, |b, text| {
            b.iter(|| parse_text(black_box(text)));
        });
    }
    for (name, text) in [
        ("millis", "2026-11-23T10:00:00.123Z"),
        ("nanos", "2024-05-01T12:00:00.123456789Z"),
    ] {
        let at = parse_text(text).expect("a valid time");
        let mut out = BytesMut::with_capacity(64);
        group.bench_with_input(BenchmarkId::new("write_rfc3339", name), &at, |b, &at| {
            b.iter(|| {
                out.clear();
                black_box(at).write_rfc3339(&mut out);
                black_box(&out).len()
            });
        });
    }
    for &(name, value) in EPOCHS {
        assert!(parse_epoch(value).is_some(), "{value} must parse");
        group.bench_with_input(BenchmarkId::new("parse_epoch", name), &value, |b, &v| {
            b.iter(|| parse_epoch(black_box(v)));
        });
    }
    group.finish();
}

/// Trace and span ids from and to hex, over 1,024 random ids per iteration (one id
/// repeated would let branch prediction learn it).
fn ids(c: &mut Criterion) {
    const COUNT: usize = 1024;
    let mut rng = StdRng::seed_from_u64(7);
    let traces: Vec<TraceId> = (0..COUNT).map(|_| TraceId::random(&mut rng)).collect();
    let spans: Vec<SpanId> = (0..COUNT).map(|_| SpanId::random(&mut rng)).collect();
    let trace_hex: Vec<String> = traces.iter().map(ToString::to_string).collect();
    let span_hex: Vec<String> = spans.iter().map(ToString::to_string).collect();
    let mut group = c.benchmark_group("ids");
    group.throughput(Throughput::Elements(COUNT as u64));
    group.bench_function("trace_from_hex", |b| {
        b.iter(|| {
            for text in &trace_hex {
                black_box(TraceId::from_hex(black_box(text)).is_ok());
            }
        });
    });
    group.bench_function("span_from_hex", |b| {
        b.iter(|| {
            for text in &span_hex {
                black_box(SpanId::from_hex(black_box(text)).is_ok());
            }
        });
    });
    group.bench_function("trace_to_hex", |b| {
        b.iter(|| {
            for &id in &traces {
                black_box(black_box(id).to_hex());
            }
        });
    });
    group.bench_function("span_to_hex", |b| {
        b.iter(|| {
            for &id in &spans {
                black_box(black_box(id).to_hex());
            }
        });
    });
    group.finish();
}

/// `Level::from_text` over the spellings libraries write, all of them per iteration.
fn level(c: &mut Criterion) {
    const TEXTS: &[&str] = &[
        "info",
        "INFO",
        "warning",
        "Error",
        "debug",
        "30",
        "WARN+2",
        "dpanic",
        "Information",
        "fatal",
    ];
    let mut group = c.benchmark_group("level");
    group.throughput(Throughput::Elements(TEXTS.len() as u64));
    group.bench_function("from_text", |b| {
        b.iter(|| {
            for text in TEXTS {
                black_box(Level::from_text(black_box(text)));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, scan, splice, request_clock, time, ids, level);
criterion_main!(benches);
