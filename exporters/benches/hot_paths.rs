//! Criterion micro-benchmarks of the Elasticsearch sink's hot path: encoding one bulk
//! body (action line + document per record, daily index names) from 1,000 log records of
//! about 600 bytes, uncompressed and gzipped. Inputs are fixed (seeded ids).
//!
//! ```text
//! cargo bench -p hindsight-exporters --bench hot_paths            # full run
//! cargo bench -p hindsight-exporters --bench hot_paths -- --quick # smoke run
//! ```
//!
//! Throughput is counted in NDJSON bytes before compression. Making the batch's records
//! and dropping the body and records afterwards are outside the measurement.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use hindsight_exporters::ack::Ack;
use hindsight_exporters::bench_support::BulkBodyEncoder;
use hindsight_exporters::elasticsearch::{BulkMode, Compression};
use hindsight_exporters::{Document, LogRecord};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Records per bulk body: the sink's default `batch.max_events`.
const RECORDS: usize = 1000;

/// 2026-11-23T10:00:00Z.
const START_MILLIS: i64 = 1_795_428_000_000;

/// Documents as the agent writes them: the application's record with the ECS fields and
/// the origin's fields spliced in; three shapes in turn, ids and times differing per record.
fn documents() -> Vec<(Bytes, i64)> {
    let mut rng = StdRng::seed_from_u64(3);
    (0..RECORDS)
        .map(|i| {
            let millis = START_MILLIS + i as i64 * 3;
            let (secs, ms) = (millis / 1000 % 60, millis % 1000);
            let trace: u128 = rng.random();
            let span: u64 = rng.random();
            let request: u64 = rng.random();
            let origin = r#""host":{"name":"node-1"},"log":{"file":{"path":"/var/log/pods/shop_checkout-6f7d-x2v_0d3c2b1a/checkout/0.log"}},"kubernetes":{"namespace":"shop","pod":{"name":"checkout-6f7d-x2v","uid":"0d3c2b1a"},"container":{"name":"checkout"}}"#;
            let doc = match i % 3 {
                0 => format!(
                    r#"{{"level":"info","ts":{}.{ms:03},"caller":"checkout/handler.go:142","msg":"payment authorized","request_id":"r-{request:016x}","trace_id":"{trace:032x}","span_id":"{span:016x}","amount_cents":{},"currency":"EUR","items":3,"@timestamp":"2026-11-23T10:00:{secs:02}.{ms:03}Z","trace":{{"id":"{trace:032x}"}},"span":{{"id":"{span:016x}"}},"http":{{"request":{{"id":"r-{request:016x}"}}}},{origin},"hindsight":{{"request":{{"elapsed_ms":{},"since_previous_ms":3}}}}}}"#,
                    millis / 1000,
                    rng.random_range(100..100_000),
                    i % 40,
                ),
                1 => format!(
                    r#"{{"level":30,"time":{millis},"pid":4711,"hostname":"checkout-6f7d-x2v","reqId":"req-{request:08x}","req":{{"method":"POST","url":"/checkout","remoteAddress":"10.0.3.7"}},"res":{{"statusCode":200}},"responseTime":{}.7,"msg":"request completed","@timestamp":"2026-11-23T10:00:{secs:02}.{ms:03}Z","http":{{"request":{{"id":"req-{request:08x}"}}}},{origin},"log.level":"info"}}"#,
                    i % 50,
                ),
                _ => format!(
                    r#"{{"@timestamp":"2026-11-23T10:00:{secs:02}.{ms:03}Z","log.level":"INFO","message":"order placed for customer","service.name":"checkout","trace.id":"{trace:032x}","transaction.id":"{span:016x}","http.request.id":"{request:016x}","order":{{"id":{},"total":19.99}},{origin}}}"#,
                    88_000 + i,
                ),
            };
            (Bytes::from(doc), millis)
        })
        .collect()
}

fn records(documents: &[(Bytes, i64)]) -> Vec<LogRecord> {
    documents
        .iter()
        .map(|(doc, millis)| LogRecord {
            doc: Document::from_one_line_unchecked(doc.clone()),
            timestamp_millis: *millis,
            ack: Ack::none(),
        })
        .collect()
}

/// `BulkEncoder::encode` of 1,000 records into one daily index, without compression and
/// with gzip (the sink's default), one encoder reused from body to body as the sink does.
fn bulk_encode(c: &mut Criterion) {
    let documents = documents();
    let mut group = c.benchmark_group("bulk_encode");
    for (name, compression) in [("none", Compression::None), ("gzip", Compression::Gzip)] {
        let mut encoder =
            BulkBodyEncoder::new(compression, "logs-hindsight-%Y.%m.%d", BulkMode::Index).unwrap();
        let (wire, raw_len) = encoder.encode(&mut records(&documents));
        assert!(!wire.is_empty() && raw_len >= wire.len());
        group.throughput(Throughput::Bytes(raw_len as u64));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_batched(
                || records(&documents),
                |mut records| {
                    let body = encoder.encode(black_box(&mut records));
                    black_box((records, body))
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, bulk_encode);
criterion_main!(benches);
