//! Elasticsearch / OpenSearch `_bulk` sink.
//!
//! The sink receives batches of [`LogRecord`](crate::LogRecord)s, groups them into bulk
//! requests bounded by bytes, count and time, sends up to `max_in_flight` of them at once,
//! reads each bulk response item by item and settles every record's
//! [`Ack`](crate::ack::Ack) only once the cluster confirmed it or it was written to the
//! dead-letter file. Nothing is dropped on a failed send: connection errors, throttling and
//! server errors are retried forever with capped exponential backoff and jitter, so a down
//! cluster stops the pipeline (backpressure) instead of losing data.
//!
//! | part | file |
//! |---|---|
//! | user configuration, validation, `build()` | `config.rs` |
//! | NDJSON encoding, gzip, daily index names | `encode.rs` |
//! | failure classification, backoff, `Retry-After` | `retry.rs` |
//! | bulk response parsing, per-item outcome | `response.rs` |
//! | endpoints, failover, auth headers | `transport.rs` |
//! | batching, in-flight requests, delivery loop | `sink.rs` |
//! | cluster version check, index template | `cluster.rs`, `template.rs` |
//! | dead-letter file | `dead_letter.rs` |
//! | metrics and log events | `metrics.rs`, `events.rs` |
//!
//! # Example
//!
//! ```no_run
//! use hindsight_exporters::ack::AckBatch;
//! use hindsight_exporters::elasticsearch::{ElasticsearchConfig, SinkMetrics};
//! use hindsight_exporters::{Document, LogRecord};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config: ElasticsearchConfig = serde_json::from_str(r#"{"endpoints": ["http://127.0.0.1:9200"]}"#)?;
//! let sink = config.build(std::path::Path::new("/var/lib/hindsight"), SinkMetrics::default())?;
//! let info = sink.healthcheck().await?;
//! println!("talking to {:?} {}", info.distribution, info.version);
//! sink.install_template().await?;
//!
//! let (tx, rx) = tokio::sync::mpsc::channel(4);
//! let running = tokio::spawn(sink.run(rx));
//! let batch = AckBatch::new(|status| println!("batch: {status:?}"));
//! let record = LogRecord {
//!     doc: Document::new(r#"{"@timestamp":"2026-11-23T10:00:00Z","message":"hello"}"#.into()),
//!     timestamp_millis: 1_795_428_000_000,
//!     ack: batch.ack(),
//! };
//! tx.send(vec![record]).await?;
//! drop(tx); // closing the channel lets `run` finish once everything is settled
//! running.await?;
//! # Ok(())
//! # }
//! ```

mod cluster;
mod config;
mod dead_letter;
pub(crate) mod encode;
mod error;
mod events;
mod metrics;
mod response;
mod retry;
mod sink;
mod template;
mod transport;

#[cfg(test)]
mod tests;

pub use cluster::{ClusterInfo, Distribution};
pub use config::{
    AuthConfig, BatchConfig, BulkMode, Compression, ElasticsearchConfig, RetryConfig, Secret,
    TemplateConfig, TlsConfig,
};
pub use error::ElasticsearchError;
pub use metrics::{names as metric_names, SinkMetrics};
pub use sink::ElasticsearchSink;
pub use transport::Readiness;
