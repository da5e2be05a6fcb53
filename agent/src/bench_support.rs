//! Thin wrappers that let the criterion benches (`benches/hot_paths.rs`) reach hot paths
//! that are internal to this crate. Exists only for the benches and is not API: hidden
//! from the docs, and free to change or go away with the internals it wraps.

use bytes::Bytes;

use crate::sources::files::framing::{DecodeStats, Decoder, Record};
use crate::sources::files::Format;

/// The files input's framing decoder (CRI, Docker json-file or none), with the output
/// buffer and counters the file reader keeps next to it.
#[derive(Debug)]
pub struct FramingDecoder {
    decoder: Decoder,
    records: Vec<Record>,
    stats: DecodeStats,
}

impl FramingDecoder {
    /// A decoder for `format` that joins split lines up to `max_line_bytes`.
    pub fn new(format: Format, max_line_bytes: usize) -> Self {
        FramingDecoder {
            decoder: Decoder::new(format, max_line_bytes),
            records: Vec::new(),
            stats: DecodeStats::default(),
        }
    }

    /// Decodes one raw line (without its `\n`) as the file reader does, hands each record
    /// it completes to `each` (the application's line and the runtime's time), then drops
    /// it. Returns true when no split line is waiting for its last piece.
    pub fn push(&mut self, line: Bytes, mut each: impl FnMut(&[u8], Option<&[u8]>)) -> bool {
        let idle = self
            .decoder
            .push(line, false, &mut self.records, &mut self.stats);
        for record in self.records.drain(..) {
            each(&record.line, record.time.as_deref());
        }
        idle
    }
}
