//! Bulk request bodies: NDJSON written straight into a reused buffer, or gzipped on the way.
//!
//! A body is, per record, one action line naming the target index and the document itself:
//!
//! ```text
//! {"index":{"_index":"logs-hindsight-2026.11.23"}}
//! {"@timestamp":"2026-11-23T10:00:00Z","message":"hello"}
//! ```

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};
use chrono::format::{Fixed, Item, Numeric, StrftimeItems};
use chrono::{DateTime, Utc};
use flate2::{FlushCompress, Status};

use super::config::{BulkMode, Compression};
use crate::{Document, LogRecord};

/// How finely the index name changes with time; the cache key of formatted names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Granularity {
    /// No time fields: one name.
    Constant,
    /// Date fields only.
    Day,
    /// Date and hour fields.
    Hour,
}

impl Granularity {
    fn bucket(self, timestamp_millis: i64) -> i64 {
        match self {
            Granularity::Constant => 0,
            Granularity::Day => timestamp_millis.div_euclid(86_400_000),
            Granularity::Hour => timestamp_millis.div_euclid(3_600_000),
        }
    }
}

/// A validated index name pattern: strftime items plus the bulk operation to use.
#[derive(Debug, Clone)]
pub(crate) struct IndexFormat {
    pattern: String,
    items: Vec<Item<'static>>,
    granularity: Granularity,
    mode: BulkMode,
}

impl IndexFormat {
    /// Parses and checks `pattern`; the error says what is wrong (the caller adds the key).
    pub(crate) fn parse(pattern: &str, mode: BulkMode) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("must not be empty".to_owned());
        }
        let items = StrftimeItems::new(pattern)
            .parse_to_owned()
            .map_err(|_| format!("`{pattern}` is not a valid strftime pattern"))?;
        let mut granularity = Granularity::Constant;
        for item in &items {
            let field = match item {
                Item::Literal(_) | Item::OwnedLiteral(_) | Item::Space(_) | Item::OwnedSpace(_) => {
                    continue
                }
                Item::Numeric(numeric, _) => match numeric {
                    Numeric::Year
                    | Numeric::YearDiv100
                    | Numeric::YearMod100
                    | Numeric::IsoYear
                    | Numeric::IsoYearDiv100
                    | Numeric::IsoYearMod100
                    | Numeric::Quarter
                    | Numeric::Month
                    | Numeric::Day
                    | Numeric::WeekFromSun
                    | Numeric::WeekFromMon
                    | Numeric::IsoWeek
                    | Numeric::NumDaysFromSun
                    | Numeric::WeekdayFromMon
                    | Numeric::Ordinal => Granularity::Day,
                    Numeric::Hour | Numeric::Hour12 => Granularity::Hour,
                    _ => return Err(finer_than_an_hour(pattern)),
                },
                Item::Fixed(fixed) => match fixed {
                    Fixed::ShortMonthName
                    | Fixed::LongMonthName
                    | Fixed::ShortWeekdayName
                    | Fixed::LongWeekdayName => Granularity::Day,
                    Fixed::LowerAmPm | Fixed::UpperAmPm => Granularity::Hour,
                    _ => return Err(finer_than_an_hour(pattern)),
                },
                Item::Error => return Err(format!("`{pattern}` is not a valid strftime pattern")),
            };
            granularity = match (granularity, field) {
                (Granularity::Hour, _) | (_, Granularity::Hour) => Granularity::Hour,
                _ => Granularity::Day,
            };
        }
        if mode == BulkMode::DataStream && granularity != Granularity::Constant {
            return Err(format!(
                "`{pattern}`: a data stream name cannot contain time fields (`%`); \
                 data streams roll over by themselves"
            ));
        }
        let format = IndexFormat {
            pattern: pattern.to_owned(),
            items,
            granularity,
            mode,
        };
        // Elasticsearch's index name rules, checked on a sample name.
        let sample = format.format(1_795_428_000_000);
        if sample != sample.to_lowercase() {
            return Err(format!("must be lowercase (`{pattern}` gives `{sample}`)"));
        }
        if let Some(bad) = sample.chars().find(|c| {
            matches!(
                c,
                '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ' ' | ',' | '#' | ':'
            )
        }) {
            return Err(format!(
                "must not contain `{bad}` (`{pattern}` gives `{sample}`)"
            ));
        }
        if sample.starts_with(['-', '_', '+']) || sample == "." || sample == ".." {
            return Err(format!("`{sample}` is not a valid index name"));
        }
        if sample.len() > 255 {
            return Err("the index name must be at most 255 bytes".to_owned());
        }
        Ok(format)
    }

    /// The index template's pattern: the text before the first `%`, then `*`.
    pub(crate) fn template_pattern(&self) -> String {
        let prefix = self.pattern.split('%').next().unwrap_or_default();
        format!("{prefix}*")
    }

    /// The bulk operation: `index` or `create`.
    pub(crate) fn op(&self) -> &'static str {
        match self.mode {
            BulkMode::Index => "index",
            BulkMode::DataStream => "create",
        }
    }

    /// The index name for a record time.
    pub(crate) fn format(&self, timestamp_millis: i64) -> String {
        let time =
            DateTime::<Utc>::from_timestamp_millis(timestamp_millis).unwrap_or_else(Utc::now);
        time.format_with_items(self.items.iter()).to_string()
    }
}

fn finer_than_an_hour(pattern: &str) -> String {
    format!(
        "`{pattern}`: only date and hour fields (e.g. %Y %m %d %H) may be used; \
         an index per minute or second would overwhelm the cluster"
    )
}

/// One formatted index name and its ready-made action line.
#[derive(Debug, Clone)]
struct Target {
    bucket: i64,
    index: String,
    action: Vec<u8>,
}

/// Index names and action lines per day (or hour), formatted once, not per record.
#[derive(Debug, Clone)]
pub(crate) struct IndexNamer {
    format: IndexFormat,
    /// Most recently used first; a handful covers records around midnight.
    cache: Vec<Target>,
}

const CACHED_TARGETS: usize = 8;

impl IndexNamer {
    pub(crate) fn new(format: IndexFormat) -> Self {
        IndexNamer {
            format,
            cache: Vec::with_capacity(CACHED_TARGETS),
        }
    }

    /// The bulk operation: `index` or `create`.
    pub(crate) fn op(&self) -> &'static str {
        self.format.op()
    }

    fn target(&mut self, timestamp_millis: i64) -> &Target {
        let bucket = self.format.granularity.bucket(timestamp_millis);
        if let Some(pos) = self.cache.iter().position(|t| t.bucket == bucket) {
            if pos != 0 {
                self.cache[..=pos].rotate_right(1);
            }
        } else {
            let index = self.format.format(timestamp_millis);
            let mut action = Vec::with_capacity(index.len() + 32);
            action.extend_from_slice(b"{\"");
            action.extend_from_slice(self.format.op().as_bytes());
            action.extend_from_slice(b"\":{\"_index\":");
            // Validated names need no escaping, but never trust that to stay true.
            if serde_json::to_writer(&mut action, &index).is_err() {
                action.extend_from_slice(b"\"\"");
            }
            action.extend_from_slice(b"}}\n");
            if self.cache.len() == CACHED_TARGETS {
                self.cache.pop();
            }
            self.cache.insert(
                0,
                Target {
                    bucket,
                    index,
                    action,
                },
            );
        }
        &self.cache[0]
    }

    /// The index name for a record time.
    pub(crate) fn index(&mut self, timestamp_millis: i64) -> &str {
        &self.target(timestamp_millis).index
    }

    /// The action line (with its newline) for a record time.
    pub(crate) fn action_line(&mut self, timestamp_millis: i64) -> &[u8] {
        &self.target(timestamp_millis).action
    }
}

/// An encoded bulk body, ready to send (and to send again on retry).
#[derive(Debug, Clone)]
pub(crate) struct EncodedBody {
    /// The body as sent: gzipped or plain.
    pub wire: Bytes,
    /// The NDJSON length before compression.
    pub raw_len: usize,
}

/// Uncompressed bytes gathered before each call into the compressor: enough that calls
/// are few, little enough to stay in L2 cache next to the compressor's own state.
const GZIP_STAGE: usize = 64 * 1024;

/// Writes bulk bodies into a buffer that is reused from request to request. Sent bodies
/// are frozen views of the buffer; once a request is done its memory is reclaimed by the
/// next `reserve`.
#[derive(Debug)]
pub(crate) struct BulkEncoder {
    /// The body being written: the NDJSON text, or with gzip its compressed form.
    body: BytesMut,
    /// Without compression: where each document of the last body starts and ends in it.
    spans: Vec<Range<usize>>,
    /// With gzip: the compressor, kept from body to body.
    gzip: Option<GzipStream>,
}

impl BulkEncoder {
    pub(crate) fn new(compression: Compression) -> Self {
        BulkEncoder {
            body: BytesMut::new(),
            spans: Vec::new(),
            gzip: match compression {
                Compression::None => None,
                Compression::Gzip => Some(GzipStream::new()),
            },
        }
    }

    /// Encodes `records` as one bulk body.
    ///
    /// Without compression the body holds each document as sent, so every record's
    /// document is replaced by its slice of the body: a batch in flight is in memory
    /// once, not twice. With gzip the NDJSON text is compressed as it is written, in
    /// stages of `GZIP_STAGE` (64 KiB), and never held whole.
    pub(crate) fn encode(
        &mut self,
        records: &mut [LogRecord],
        namer: &mut IndexNamer,
    ) -> EncodedBody {
        let estimate: usize = records.iter().map(|r| r.doc.len() + 64).sum();
        let body = &mut self.body;
        body.clear();
        match &mut self.gzip {
            None => {
                body.reserve(estimate);
                self.spans.clear();
                for record in records.iter() {
                    body.put_slice(namer.action_line(record.timestamp_millis));
                    let start = body.len();
                    body.put_slice(&record.doc);
                    self.spans.push(start..body.len());
                    body.put_u8(b'\n');
                }
                let raw_len = body.len();
                let wire = body.split().freeze();
                for (record, span) in records.iter_mut().zip(self.spans.drain(..)) {
                    record.doc = Document::from_one_line_unchecked(wire.slice(span));
                }
                EncodedBody { wire, raw_len }
            }
            Some(gzip) => {
                // Logs shrink at least four-fold at this level; the buffer grows if not.
                body.reserve(estimate / 4 + 64);
                gzip.begin();
                for record in records.iter() {
                    gzip.write(namer.action_line(record.timestamp_millis), body);
                    gzip.write(&record.doc, body);
                    gzip.write(b"\n", body);
                }
                let raw_len = gzip.finish(body);
                EncodedBody {
                    wire: body.split().freeze(),
                    raw_len,
                }
            }
        }
    }
}

/// A gzip stream written in pieces, reused from body to body: one compressor, whose
/// window and hash table are allocated once, and a small staging buffer in front of it.
#[derive(Debug)]
struct GzipStream {
    /// Writes the gzip header and trailer (CRC-32 and length) itself.
    deflate: flate2::Compress,
    /// Up to `GZIP_STAGE` bytes not yet handed to `deflate`.
    stage: Vec<u8>,
}

impl GzipStream {
    fn new() -> Self {
        GzipStream {
            deflate: flate2::Compress::new_gzip(flate2::Compression::fast(), 15),
            stage: Vec::with_capacity(GZIP_STAGE),
        }
    }

    /// Starts a new stream, keeping the compressor's memory.
    fn begin(&mut self) {
        self.deflate.reset();
        self.stage.clear();
    }

    /// Appends uncompressed bytes; each time the stage fills it is compressed onto `out`.
    fn write(&mut self, mut bytes: &[u8], out: &mut BytesMut) {
        while bytes.len() >= GZIP_STAGE - self.stage.len() {
            let (now, later) = bytes.split_at(GZIP_STAGE - self.stage.len());
            self.stage.extend_from_slice(now);
            compress(&mut self.deflate, &self.stage, out, FlushCompress::None);
            self.stage.clear();
            bytes = later;
        }
        self.stage.extend_from_slice(bytes);
    }

    /// Compresses the rest and ends the stream; returns the uncompressed length.
    fn finish(&mut self, out: &mut BytesMut) -> usize {
        compress(&mut self.deflate, &self.stage, out, FlushCompress::Finish);
        self.stage.clear();
        self.deflate.total_in() as usize
    }
}

/// Compresses all of `input` onto the end of `out` (output the compressor holds back
/// comes with later calls); with `Finish`, ends the stream too.
///
/// The compressor fails only when misused (say, written to after its end), which this
/// module does not do; should it happen anyway, the body is cut short and the cluster
/// rejects it, rather than the agent panicking.
fn compress(
    deflate: &mut flate2::Compress,
    mut input: &[u8],
    out: &mut BytesMut,
    flush: FlushCompress,
) {
    loop {
        let start = out.len();
        // Room in what the body reserved, grown only once that is used up. Zeroed, as
        // safe code must hand the compressor initialised memory: a fraction of the
        // input, which costs little next to compressing it.
        // At least 4 KiB, so the output the compressor holds back at `Finish` comes out
        // in a few calls, not hundreds.
        let want = (input.len() / 4).max(4096);
        if out.capacity() == start {
            out.reserve(want);
        }
        let room = (out.capacity() - start).min(want);
        out.resize(start + room, 0);
        let (read_before, written_before) = (deflate.total_in(), deflate.total_out());
        let status = deflate.compress(input, &mut out[start..], flush);
        let read = (deflate.total_in() - read_before) as usize;
        let written = (deflate.total_out() - written_before) as usize;
        out.truncate(start + written);
        input = &input[read..];
        match status {
            Ok(Status::StreamEnd) => return,
            Ok(_) if flush == FlushCompress::None && input.is_empty() => return,
            Ok(_) if read + written > 0 => {}
            other => {
                debug_assert!(false, "gzip stream stuck: {other:?}");
                return;
            }
        }
    }
}

/// Whether a document is blank and so cannot be sent at all.
pub(crate) fn is_blank(doc: &[u8]) -> bool {
    doc.iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::Ack;
    use std::io::Read as _;

    const NOV_23_2026_10H: i64 = 1_795_428_000_000;
    const HOUR: i64 = 3_600_000;

    fn record(doc: &str, timestamp_millis: i64) -> LogRecord {
        LogRecord {
            doc: Document::from_one_line_unchecked(Bytes::copy_from_slice(doc.as_bytes())),
            timestamp_millis,
            ack: Ack::none(),
        }
    }

    fn namer(pattern: &str, mode: BulkMode) -> IndexNamer {
        IndexNamer::new(IndexFormat::parse(pattern, mode).unwrap())
    }

    #[test]
    fn daily_index_follows_the_record_time_in_utc() {
        let mut namer = namer("logs-hindsight-%Y.%m.%d", BulkMode::Index);
        assert_eq!(namer.index(NOV_23_2026_10H), "logs-hindsight-2026.11.23");
        assert_eq!(
            namer.index(NOV_23_2026_10H + 14 * HOUR - 1),
            "logs-hindsight-2026.11.23"
        );
        assert_eq!(
            namer.index(NOV_23_2026_10H + 14 * HOUR),
            "logs-hindsight-2026.11.24"
        );
        assert_eq!(namer.index(0), "logs-hindsight-1970.01.01");
        assert_eq!(namer.index(-1), "logs-hindsight-1969.12.31");
        // Back and forth over midnight uses the cache, not stale entries.
        assert_eq!(namer.index(NOV_23_2026_10H), "logs-hindsight-2026.11.23");
    }

    #[test]
    fn hourly_and_constant_names() {
        let mut hourly = namer("logs-%Y.%m.%d.%H", BulkMode::Index);
        assert_eq!(hourly.index(NOV_23_2026_10H), "logs-2026.11.23.10");
        assert_eq!(hourly.index(NOV_23_2026_10H + HOUR), "logs-2026.11.23.11");
        let mut fixed = namer("logs-hindsight-default", BulkMode::DataStream);
        assert_eq!(fixed.index(NOV_23_2026_10H), "logs-hindsight-default");
        assert_eq!(fixed.index(0), "logs-hindsight-default");
    }

    #[test]
    fn cache_stays_bounded() {
        let mut namer = namer("x-%Y.%m.%d", BulkMode::Index);
        for day in 0..100 {
            namer.index(day * 24 * HOUR);
        }
        assert_eq!(namer.cache.len(), CACHED_TARGETS);
        assert_eq!(namer.index(99 * 24 * HOUR), "x-1970.04.10");
    }

    #[test]
    fn out_of_range_time_falls_back_to_now() {
        let mut namer = namer("x-%Y", BulkMode::Index);
        let year = Utc::now().format("x-%Y").to_string();
        assert_eq!(namer.index(i64::MAX), year);
    }

    #[test]
    fn bad_patterns_are_explained() {
        let bad = |pattern: &str, mode| IndexFormat::parse(pattern, mode).unwrap_err();
        assert!(bad("logs-%Y-%M", BulkMode::Index).contains("only date and hour fields"));
        assert!(bad("logs-%s", BulkMode::Index).contains("only date and hour fields"));
        assert!(bad("logs-%Q", BulkMode::Index).contains("not a valid strftime"));
        assert!(bad("logs-%b", BulkMode::Index).contains("must be lowercase"));
        assert!(bad("Logs", BulkMode::Index).contains("must be lowercase"));
        assert!(bad("logs *", BulkMode::Index).contains("must not contain ` `"));
        assert!(bad("_logs", BulkMode::Index).contains("not a valid index name"));
        assert!(bad("", BulkMode::Index).contains("must not be empty"));
        assert!(bad("logs-%Y", BulkMode::DataStream).contains("data stream"));
    }

    #[test]
    fn template_pattern_is_the_fixed_prefix() {
        let format = IndexFormat::parse("logs-hindsight-%Y.%m.%d", BulkMode::Index).unwrap();
        assert_eq!(format.template_pattern(), "logs-hindsight-*");
        let format = IndexFormat::parse("logs-hindsight-default", BulkMode::DataStream).unwrap();
        assert_eq!(format.template_pattern(), "logs-hindsight-default*");
    }

    fn decode(body: &EncodedBody, compression: Compression) -> String {
        let mut text = String::new();
        match compression {
            Compression::None => text = String::from_utf8(body.wire.to_vec()).unwrap(),
            Compression::Gzip => {
                flate2::read::GzDecoder::new(&body.wire[..])
                    .read_to_string(&mut text)
                    .unwrap();
            }
        }
        assert_eq!(text.len(), body.raw_len);
        text
    }

    #[test]
    fn body_is_action_line_then_document_per_record() {
        for compression in [Compression::None, Compression::Gzip] {
            let mut namer = namer("logs-hindsight-%Y.%m.%d", BulkMode::Index);
            let mut encoder = BulkEncoder::new(compression);
            let mut records = [
                record(r#"{"message":"a"}"#, NOV_23_2026_10H),
                record(r#"{"message":"b"}"#, NOV_23_2026_10H + 14 * HOUR),
            ];
            let body = encoder.encode(&mut records, &mut namer);
            assert_eq!(
                decode(&body, compression),
                "{\"index\":{\"_index\":\"logs-hindsight-2026.11.23\"}}\n{\"message\":\"a\"}\n\
                 {\"index\":{\"_index\":\"logs-hindsight-2026.11.24\"}}\n{\"message\":\"b\"}\n"
            );
        }
    }

    #[test]
    fn data_stream_mode_uses_create() {
        let mut namer = namer("logs-hindsight-default", BulkMode::DataStream);
        let mut encoder = BulkEncoder::new(Compression::None);
        let body = encoder.encode(&mut [record("{}", 0)], &mut namer);
        assert_eq!(
            decode(&body, Compression::None),
            "{\"create\":{\"_index\":\"logs-hindsight-default\"}}\n{}\n"
        );
    }

    #[test]
    fn buffers_are_reused_once_bodies_and_their_records_are_released() {
        let mut namer = namer("x", BulkMode::Index);
        let batch = || -> Vec<LogRecord> {
            (0..100)
                .map(|i| record(&format!("{{\"n\":{i}}}"), 0))
                .collect()
        };
        for compression in [Compression::None, Compression::Gzip] {
            let mut encoder = BulkEncoder::new(compression);
            let mut records = batch();
            let first = encoder.encode(&mut records, &mut namer);
            let first_ptr = first.wire.as_ptr();
            let first_text = decode(&first, compression);
            if compression == Compression::None {
                // The records now hold their documents as slices of the body.
                let body = first.wire.as_ptr_range();
                assert!(records.iter().all(|r| body.contains(&r.doc.as_ptr())));
                assert_eq!(&records[7].doc[..], b"{\"n\":7}");
            }
            drop((first, records));
            let second = encoder.encode(&mut batch(), &mut namer);
            assert_eq!(
                second.wire.as_ptr(),
                first_ptr,
                "{compression:?}: buffer not reused"
            );
            assert_eq!(decode(&second, compression), first_text);
        }
    }

    #[test]
    fn gzip_shrinks_repetitive_logs() {
        let mut namer = namer("x", BulkMode::Index);
        let mut encoder = BulkEncoder::new(Compression::Gzip);
        let mut records: Vec<_> = (0..1000)
            .map(|i| {
                record(
                    &format!(r#"{{"level":"info","message":"request {i} served"}}"#),
                    0,
                )
            })
            .collect();
        let body = encoder.encode(&mut records, &mut namer);
        assert!(
            body.wire.len() * 5 < body.raw_len,
            "{} vs {}",
            body.wire.len(),
            body.raw_len
        );
    }

    #[test]
    fn one_gzip_encoder_encodes_batch_after_batch_like_plain_text() {
        let big = |len: usize| -> String {
            // Spaces throughout, some of them on either side of a stage boundary.
            let mut doc = String::from("{\"m\":\"");
            let mut i = 0;
            while doc.len() < len - 2 {
                doc.push(if i % 1000 == 999 {
                    ' '
                } else {
                    (b'a' + (i % 26) as u8) as char
                });
                i += 1;
            }
            doc.push_str("\"}");
            doc
        };
        let batches: Vec<Vec<(String, i64)>> = vec![
            vec![
                ("{\"a\": 1 }".to_owned(), NOV_23_2026_10H),
                (" {}  ".to_owned(), NOV_23_2026_10H + 14 * HOUR),
            ],
            vec![],
            vec![
                ("{}".to_owned(), 0),
                (big(3 * GZIP_STAGE + 17), 0),
                (big(GZIP_STAGE), NOV_23_2026_10H),
                ("{\"b\":2}".to_owned(), 0),
            ],
            (0..3000)
                .map(|i| {
                    (
                        format!("{{\"n\":{i}, \"x\":\"{}\"}}", "y".repeat(i % 97)),
                        i as i64 * HOUR,
                    )
                })
                .collect(),
            vec![("{\"a\": 1 }".to_owned(), NOV_23_2026_10H)],
        ];
        let mut namer = namer("logs-%Y.%m.%d", BulkMode::Index);
        let mut plain = BulkEncoder::new(Compression::None);
        let mut gzip = BulkEncoder::new(Compression::Gzip);
        let mut first_wire = None;
        for (n, batch) in batches.iter().chain(&batches[..1]).enumerate() {
            let records = || -> Vec<LogRecord> {
                batch.iter().map(|(doc, time)| record(doc, *time)).collect()
            };
            let expected = plain.encode(&mut records(), &mut namer);
            let body = gzip.encode(&mut records(), &mut namer);
            assert_eq!(body.raw_len, expected.raw_len, "batch {n}");
            let mut text = Vec::new();
            flate2::read::GzDecoder::new(&body.wire[..])
                .read_to_end(&mut text)
                .unwrap();
            assert!(text == expected.wire, "batch {n}: decoded body differs");
            // A reset compressor is as good as a new one: same input, same bytes.
            match &first_wire {
                None => first_wire = Some(body.wire),
                Some(first) if n == batches.len() => assert_eq!(&body.wire, first),
                Some(_) => {}
            }
        }
    }

    #[test]
    fn blank_documents_are_recognised() {
        assert!(is_blank(b""));
        assert!(is_blank(b" \t\r\n"));
        assert!(!is_blank(b"{}"));
    }
}
