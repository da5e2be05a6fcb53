//! Thin wrappers that let the criterion benches (`benches/hot_paths.rs`) reach hot paths
//! that are internal to this crate. Exists only for the benches and is not API: hidden
//! from the docs, and free to change or go away with the internals it wraps.

use bytes::Bytes;

use crate::elasticsearch::encode::{BulkEncoder, IndexFormat, IndexNamer};
use crate::elasticsearch::{BulkMode, Compression};
use crate::LogRecord;

/// The Elasticsearch sink's bulk body encoder with its index namer, as the sink keeps
/// them from request to request.
#[derive(Debug)]
pub struct BulkBodyEncoder {
    encoder: BulkEncoder,
    namer: IndexNamer,
}

impl BulkBodyEncoder {
    /// An encoder writing bodies with `compression`, into indices named by `index` (a
    /// strftime pattern, as in the sink's configuration) with `mode`'s operation. The
    /// error says what is wrong with the pattern.
    pub fn new(compression: Compression, index: &str, mode: BulkMode) -> Result<Self, String> {
        Ok(BulkBodyEncoder {
            encoder: BulkEncoder::new(compression),
            namer: IndexNamer::new(IndexFormat::parse(index, mode)?),
        })
    }

    /// Encodes `records` as one bulk body, exactly as the sink does (without compression
    /// each record's document becomes a slice of the body). Returns the body as sent and
    /// its length before compression.
    pub fn encode(&mut self, records: &mut [LogRecord]) -> (Bytes, usize) {
        let body = self.encoder.encode(records, &mut self.namer);
        (body.wire, body.raw_len)
    }
}
