//! Hindsight's sinks.
//!
//! A sink takes batches of [`LogRecord`]s — finished JSON documents with the
//! acknowledgement of where they came from — delivers them, and settles each record's
//! [`ack::Ack`] only when the backend confirmed it (or it was dead-lettered).
//!
//! - [`elasticsearch`]: the `_bulk` sink for Elasticsearch 7/8/9 and OpenSearch 2/3.

pub mod ack;
#[doc(hidden)]
pub mod bench_support;
pub mod elasticsearch;

/// A finished log document on its way to a sink.
#[derive(Debug)]
pub struct LogRecord {
    /// The complete JSON object, one line, no trailing newline.
    pub doc: bytes::Bytes,
    /// The record's time in milliseconds since the Unix epoch; chooses the daily index.
    pub timestamp_millis: i64,
    /// Settled by the sink once the record is delivered or dead-lettered.
    pub ack: ack::Ack,
}
