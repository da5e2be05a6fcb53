//! Hindsight's sinks.
//!
//! A sink takes batches of [`LogRecord`]s — finished JSON documents with the
//! acknowledgement of where they came from — delivers them, and settles each record's
//! [`ack::Ack`] only when the backend confirmed it (or it was dead-lettered).
//!
//! - [`elasticsearch`]: the `_bulk` sink for Elasticsearch 7/8/9 and OpenSearch 2/3.

use std::ops::Deref;

use bytes::Bytes;

pub mod ack;
#[doc(hidden)]
pub mod bench_support;
pub mod elasticsearch;

/// A finished log document on its way to a sink.
#[derive(Debug)]
pub struct LogRecord {
    /// The complete JSON object.
    pub doc: Document,
    /// The record's time in milliseconds since the Unix epoch; chooses the daily index.
    pub timestamp_millis: i64,
    /// Settled by the sink once the record is delivered or dead-lettered.
    pub ack: ack::Ack,
}

/// A document that is one NDJSON line: it holds no raw newline (`\n`), trailing or not,
/// so a sink can write it between newlines as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document(Bytes);

impl Document {
    /// `doc` with every raw newline made a space, copied only when it has one. In a JSON
    /// document a raw newline can only be whitespace between tokens (a string cannot hold
    /// one), so the space means the same; in text that is not JSON it keeps the line whole.
    pub fn new(doc: Bytes) -> Self {
        if memchr::memchr(b'\n', &doc).is_none() {
            return Document(doc);
        }
        let mut one_line = doc.to_vec();
        hindsight_correlation::json::newlines_to_spaces(&mut one_line);
        Document(Bytes::from(one_line))
    }

    /// `doc` from a producer that writes no raw newline by construction, such as the
    /// agent's record builder, so that the document is not searched again here.
    ///
    /// Checked in debug builds only. A raw newline let through in a release build splits
    /// the document in the bulk request, and the cluster rejects the lines after it.
    pub fn from_one_line_unchecked(doc: Bytes) -> Self {
        debug_assert!(
            memchr::memchr(b'\n', &doc).is_none(),
            "a document said to be one line has a raw newline"
        );
        Document(doc)
    }
}

impl Deref for Document {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_makes_raw_newlines_spaces_and_copies_only_then() {
        let one_line = Bytes::from_static(b"{\"a\":1}");
        let kept = Document::new(one_line.clone());
        assert_eq!(kept.as_ptr(), one_line.as_ptr(), "not copied");
        let fixed = Document::new(Bytes::from_static(b"\n{\"a\":\n1}\n"));
        assert_eq!(&fixed[..], b" {\"a\": 1} ");
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "raw newline")]
    fn an_unchecked_document_with_a_newline_fails_in_debug_builds() {
        Document::from_one_line_unchecked(Bytes::from_static(b"{}\n"));
    }
}
