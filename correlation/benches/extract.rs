//! Nanoseconds per record for finding ids in a ~300-byte log record, and for building
//! the spliced output. A measurement that prints figures, not a test.
//!
//! ```text
//! cargo bench -p hindsight-correlation --bench extract
//! ```

use std::hash::BuildHasher;
use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::records::RECORDS;
use hindsight_correlation::ecs::Layouts;
use hindsight_correlation::extract::FieldSet;
use hindsight_correlation::ids::{SpanId, TraceId};
use hindsight_correlation::request_delta::RequestClock;
use hindsight_correlation::time::parse_text;
use rand::rngs::StdRng;
use rand::SeedableRng;

mod common;

fn main() {
    parse_text_figures();
    let fields = FieldSet::default();
    let iterations = 1_000_000;
    let mut out = BytesMut::with_capacity(1024);
    for (shape, record) in RECORDS {
        let line = record.as_bytes();
        let begun = Instant::now();
        for _ in 0..iterations {
            black_box(fields.scan(black_box(line)).is_ok());
        }
        let scan_ns = begun.elapsed().as_nanos() as f64 / iterations as f64;
        // One layout cache across records, as the agent's record builder keeps.
        let mut layouts = Layouts::default();
        let begun = Instant::now();
        for _ in 0..iterations {
            common::splice(&fields, black_box(line), &mut layouts, &mut out);
            black_box(&out);
        }
        let splice_ns = begun.elapsed().as_nanos() as f64 / iterations as f64;
        println!(
            "{shape:<5} {} bytes: find ids {scan_ns:.0} ns/record, find + splice ECS fields {splice_ns:.0} ns/record",
            line.len()
        );
    }
    id_parse_figures();
    request_clock_figures();
}

/// Nanoseconds per trace id and span id parsed: one id over and over (which branch
/// prediction learns), and 4096 random ones (which it cannot, as in real logs).
fn id_parse_figures() {
    let mut rng = StdRng::seed_from_u64(7);
    let random: Vec<(String, String)> = (0..4096)
        .map(|_| {
            let trace = TraceId::random(&mut rng).to_string();
            (trace, SpanId::random(&mut rng).to_string())
        })
        .collect();
    let fixed = vec![(
        String::from("4bf92f3577b34da6a3ce929d0e0e4736"),
        String::from("00f067aa0ba902b7"),
    )];
    let iterations = 10_000_000;
    for (name, ids) in [("one id", &fixed), ("random ids", &random)] {
        let begun = Instant::now();
        for (trace, _) in ids.iter().cycle().take(iterations) {
            black_box(TraceId::from_hex(black_box(trace)).is_ok());
        }
        let trace_ns = begun.elapsed().as_nanos() as f64 / iterations as f64;
        let begun = Instant::now();
        for (_, span) in ids.iter().cycle().take(iterations) {
            black_box(SpanId::from_hex(black_box(span)).is_ok());
        }
        let span_ns = begun.elapsed().as_nanos() as f64 / iterations as f64;
        println!("ids   parse hex, {name:<10}: trace id {trace_ns:.1} ns, span id {span_ns:.1} ns");
    }
}

/// Nanoseconds per record time parsed by `time::parse_text`, for the shapes loggers write.
fn parse_text_figures() {
    const TIMES: &[&str] = &[
        "2024-05-01T12:00:00.000068Z",
        "2026-11-23T10:00:00.5+01:00",
        "2026-11-23T10:00:00.123Z",
        "2026-11-23 10:00:00.123456",
    ];
    let iterations = 1_000_000;
    for text in TIMES {
        let begun = Instant::now();
        for _ in 0..iterations {
            black_box(parse_text(black_box(text)));
        }
        let ns = begun.elapsed().as_nanos() as f64 / iterations as f64;
        println!("time  parse_text {text:<28} {ns:.1} ns");
    }
}

/// Nanoseconds per `RequestClock::observe` as the agent sees it: 285,000 request ids
/// (UUID text) of 3–12 lines each, 256 requests interleaved at a time, about 0.1 ms
/// apart, through a clock of the default 100,000 ids: it sits full and every new id
/// evicts one. The id's keyed hash is included; "hash only" shows its share.
fn request_clock_figures() {
    const IDS: usize = 285_000;
    const INTERLEAVED: usize = 256;
    let (ids, lines) = common::request_lines(IDS, INTERLEAVED);
    let capacity = NonZeroUsize::new(100_000).expect("non-zero");
    let mut best = f64::MAX;
    for _ in 0..5 {
        let mut clock = RequestClock::new(capacity, Duration::from_secs(300));
        let begun = Instant::now();
        for &(id, at) in &lines {
            black_box(clock.observe(black_box(&ids[id as usize]), at));
        }
        best = best.min(begun.elapsed().as_nanos() as f64 / lines.len() as f64);
        black_box(clock.stats());
    }
    let hasher = std::hash::RandomState::new();
    let begun = Instant::now();
    for &(id, _) in &lines {
        black_box(hasher.hash_one(black_box(&ids[id as usize])));
    }
    let hash_ns = begun.elapsed().as_nanos() as f64 / lines.len() as f64;
    println!(
        "clock observe, {} lines over {IDS} ids, capacity 100k: {best:.1} ns/observe (hash only {hash_ns:.1} ns)",
        lines.len()
    );
}
