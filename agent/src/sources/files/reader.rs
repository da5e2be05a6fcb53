//! Reading one file: large positional reads, line splitting, the line length limit.
//!
//! Lines are found with `memchr` and handed on as `Bytes` slices of the read buffer (no
//! copy), except a line that straddles two reads, whose head is copied. A line longer than
//! `max_line_bytes` keeps its first `max_line_bytes` bytes; the rest is skipped as it is
//! read, so memory stays bounded whatever the line's length. An unterminated last line
//! waits for its `\n`.
//!
//! The reader tracks `resume_offset`: the offset just after the last line that is fully
//! accounted for (emitted, skipped, or part of a record that was emitted). That is where a
//! restart must begin, and what a batch reports as its end.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use bytes::{Buf, Bytes, BytesMut};

use super::config::Format;
use super::framing::{DecodeStats, Decoder, Record};

/// Bytes asked for by one read.
pub(crate) const READ_CHUNK: usize = 256 * 1024;

/// A read shorter than this is copied out of the shared buffer, so that a few short lines
/// do not pin a whole chunk in memory while they travel to the sink.
const COPY_BELOW: usize = READ_CHUNK / 4;

/// Records a batch makes room for at once (the default batch limit is 1,000), so that
/// filling it does not grow its vector ten times over, copying as it goes.
const RECORDS_RESERVED: usize = 1024;

/// The read buffer shared by all files of a source.
#[derive(Debug)]
pub(crate) struct Scratch(BytesMut);

impl Default for Scratch {
    fn default() -> Self {
        Scratch(BytesMut::zeroed(READ_CHUNK))
    }
}

/// Bounds of one batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_events: usize,
    pub max_bytes: usize,
}

/// What one call to [`FileReader::read_batch`] produced.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub records: Vec<Record>,
    /// The resume offset after this batch.
    pub end_offset: u64,
    /// Bytes read from the file.
    pub bytes_read: u64,
    /// The end of the file was reached.
    pub eof: bool,
    /// Lines cut at the limit.
    pub truncated: u64,
    pub decode: DecodeStats,
}

/// Reading state of one file's content.
#[derive(Debug)]
pub(crate) struct FileReader {
    file: Option<File>,
    /// Next byte to read from the file.
    read_offset: u64,
    /// Read but not yet split; starts at `read_offset - buf.len()`.
    buf: Bytes,
    /// Head of a line whose `\n` has not been read yet.
    partial: BytesMut,
    /// The line in `partial` hit the limit; the rest of it is being skipped.
    skipping: bool,
    decoder: Decoder,
    resume_offset: u64,
    max_line: usize,
}

impl FileReader {
    /// A reader starting at `offset`, which must be the start of a line unless
    /// `skip_first` says to discard everything up to the first `\n`.
    pub(crate) fn new(
        file: File,
        offset: u64,
        skip_first: bool,
        format: Format,
        max_line: usize,
    ) -> Self {
        FileReader {
            file: Some(file),
            read_offset: offset,
            buf: Bytes::new(),
            partial: BytesMut::new(),
            skipping: skip_first,
            decoder: Decoder::new(format, max_line),
            resume_offset: offset,
            max_line: max_line.max(1),
        }
    }

    /// The offset a restart would resume at.
    pub(crate) fn resume_offset(&self) -> u64 {
        self.resume_offset
    }

    /// The next byte to read.
    pub(crate) fn read_offset(&self) -> u64 {
        self.read_offset
    }

    /// The file being read, if any.
    pub(crate) fn file(&self) -> Option<&File> {
        self.file.as_ref()
    }

    /// Continues with the same content in another inode (a copytruncate copy); returns
    /// the previous one.
    pub(crate) fn replace_file(&mut self, file: Option<File>) -> Option<File> {
        std::mem::replace(&mut self.file, file)
    }

    /// Reads and decodes up to `limits`; stops at the end of the file.
    pub(crate) fn read_batch(
        &mut self,
        limits: Limits,
        scratch: &mut Scratch,
    ) -> io::Result<Batch> {
        let mut batch = Batch {
            records: Vec::with_capacity(limits.max_events.min(RECORDS_RESERVED)),
            ..Batch::default()
        };
        let mut record_bytes = 0;
        while batch.records.len() < limits.max_events && record_bytes < limits.max_bytes {
            if self.buf.is_empty() {
                if batch.bytes_read >= limits.max_bytes as u64 {
                    break;
                }
                let n = self.fill(scratch)?;
                if n == 0 {
                    batch.eof = true;
                    break;
                }
                batch.bytes_read += n as u64;
            }
            let before = batch.records.len();
            self.split_one(&mut batch);
            record_bytes += batch.records[before..]
                .iter()
                .map(|r| r.line.len())
                .sum::<usize>();
        }
        batch.end_offset = self.resume_offset;
        Ok(batch)
    }

    /// Emits everything still held (an unterminated last line, unfinished joins): the file
    /// is let go and nothing more will come.
    pub(crate) fn finish(&mut self) -> Batch {
        let mut batch = Batch::default();
        // Lines already read but not split yet (a batch limit stopped the split).
        while !self.buf.is_empty() {
            self.split_one(&mut batch);
        }
        if !self.partial.is_empty() {
            let truncated = self.skipping;
            batch.truncated += u64::from(truncated);
            let line = self.partial.split().freeze();
            self.decoder
                .push(line, truncated, &mut batch.records, &mut batch.decode);
        }
        self.skipping = false;
        self.decoder.flush(&mut batch.records, &mut batch.decode);
        self.resume_offset = self.read_offset;
        batch.end_offset = self.resume_offset;
        batch
    }

    fn fill(&mut self, scratch: &mut Scratch) -> io::Result<usize> {
        let Some(file) = self.file.as_ref() else {
            return Ok(0);
        };
        let n = loop {
            match file.read_at(&mut scratch.0[..], self.read_offset) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            return Ok(0);
        }
        self.buf = if n < COPY_BELOW {
            Bytes::copy_from_slice(&scratch.0[..n])
        } else {
            let mut full = std::mem::replace(&mut scratch.0, BytesMut::zeroed(READ_CHUNK));
            full.truncate(n);
            full.freeze()
        };
        self.read_offset += n as u64;
        Ok(n)
    }

    /// Consumes one line from `buf`, or all of `buf` into `partial` when it has no `\n`.
    ///
    /// A line found whole in `buf` becomes a `Bytes` slice of the chunk with a single
    /// reference-count increment (the chunk's counter is shared with the pipeline thread,
    /// which drops the lines): the limit and a trailing `\r` are applied to the length
    /// before the split, and the `\n` and any cut tail are skipped with `advance`.
    fn split_one(&mut self, batch: &mut Batch) {
        let Some(i) = memchr::memchr(b'\n', &self.buf) else {
            let rest = std::mem::take(&mut self.buf);
            self.append_partial(&rest);
            return;
        };
        let end_offset = self.read_offset - self.buf.len() as u64 + i as u64 + 1;
        if self.skipping && self.partial.is_empty() {
            // The rest of a line we started in the middle of (read from the end).
            self.consume(i + 1);
            self.skipping = false;
            if self.decoder.is_idle() {
                self.resume_offset = end_offset;
            }
            return;
        }
        let (line, truncated) = if self.partial.is_empty() && !self.skipping {
            let truncated = i > self.max_line;
            let mut len = i.min(self.max_line);
            if len > 0 && self.buf[len - 1] == b'\r' {
                len -= 1;
            }
            let line = self.buf.split_to(len);
            self.consume(i + 1 - len);
            (line, truncated)
        } else {
            let had_room = self.max_line - self.partial.len();
            let rest = std::mem::take(&mut self.buf);
            self.append_partial(&rest[..i]);
            self.buf = rest;
            self.consume(i + 1);
            let truncated = self.skipping || i > had_room;
            self.skipping = false;
            if self.partial.last() == Some(&b'\r') {
                self.partial.truncate(self.partial.len() - 1);
            }
            (self.partial.split().freeze(), truncated)
        };
        batch.truncated += u64::from(truncated);
        if self
            .decoder
            .push(line, truncated, &mut batch.records, &mut batch.decode)
        {
            self.resume_offset = end_offset;
        }
    }

    /// Skips the first `n` bytes of `buf`, without touching the chunk's reference count
    /// unless that empties `buf`, which then lets go of the chunk (an idle file must not
    /// pin it).
    fn consume(&mut self, n: usize) {
        if n == self.buf.len() {
            self.buf = Bytes::new();
        } else {
            self.buf.advance(n);
        }
    }

    /// Keeps the head of an unfinished line, up to the limit; beyond it, skips.
    fn append_partial(&mut self, bytes: &[u8]) {
        if self.skipping && self.partial.is_empty() {
            // Skipping to the first `\n` after a start in the middle of a line.
            return;
        }
        let room = self.max_line - self.partial.len();
        let take = room.min(bytes.len());
        self.partial.extend_from_slice(&bytes[..take]);
        if bytes.len() > room {
            self.skipping = true;
        }
    }
}

/// Where to start reading a file that is to be read from its end: just after its last
/// complete line (found within the last `READ_CHUNK` bytes), else at the end with the
/// partial line there skipped.
pub(crate) fn end_position(file: &File, size: u64) -> io::Result<(u64, bool)> {
    if size == 0 {
        return Ok((0, false));
    }
    let start = size.saturating_sub(READ_CHUNK as u64);
    let mut tail = vec![0u8; (size - start) as usize];
    let mut len = 0;
    while len < tail.len() {
        match file.read_at(&mut tail[len..], start + len as u64) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    match memchr::memrchr(b'\n', &tail[..len]) {
        Some(i) => Ok((start + i as u64 + 1, false)),
        None if start == 0 && len == 0 => Ok((0, false)),
        None => Ok((size, true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const BIG: Limits = Limits {
        max_events: usize::MAX,
        max_bytes: usize::MAX,
    };

    fn file_with(content: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(content).unwrap();
        f.flush().unwrap();
        let r = File::open(f.path()).unwrap();
        (f, r)
    }

    fn lines(b: &Batch) -> Vec<&[u8]> {
        b.records.iter().map(|r| &r.line[..]).collect()
    }

    #[test]
    fn splits_lines_and_waits_for_the_partial_last_one() {
        let (mut f, file) = file_with(b"a\n\nbb\r\nccc");
        let mut r = FileReader::new(file, 0, false, Format::Json, 100);
        let mut s = Scratch::default();
        let b = r.read_batch(BIG, &mut s).unwrap();
        assert_eq!(lines(&b), vec![&b"a"[..], b"bb"]);
        assert_eq!(b.decode.empty_lines, 1);
        assert!(b.eof);
        assert_eq!(b.end_offset, 7);
        f.write_all(b"c\nd\n").unwrap();
        f.flush().unwrap();
        let b = r.read_batch(BIG, &mut s).unwrap();
        assert_eq!(lines(&b), vec![&b"cccc"[..], b"d"]);
        assert_eq!(b.end_offset, 14);
    }

    #[test]
    fn a_5mb_line_with_a_1mib_limit_is_truncated_and_the_next_line_survives() {
        let mut content = vec![b'x'; 5 * 1024 * 1024];
        content.extend_from_slice(b"\nnext\n");
        let (_f, file) = file_with(&content);
        let max = 1024 * 1024;
        let mut r = FileReader::new(file, 0, false, Format::Json, max);
        let mut s = Scratch::default();
        let limits = Limits {
            max_events: 1000,
            max_bytes: 1024 * 1024,
        };
        let mut records = Vec::new();
        let mut truncated = 0;
        for _ in 0..100 {
            let b = r.read_batch(limits, &mut s).unwrap();
            truncated += b.truncated;
            records.extend(b.records);
            if b.eof {
                break;
            }
        }
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].line.len(), max);
        assert!(records[0].truncated);
        assert_eq!(&records[1].line[..], b"next");
        assert!(!records[1].truncated);
        assert_eq!(truncated, 1);
        assert_eq!(r.resume_offset(), content.len() as u64);
    }

    #[test]
    fn long_line_within_one_chunk_is_cut_without_copy() {
        let (_f, file) = file_with(b"0123456789\nab\n");
        let mut r = FileReader::new(file, 0, false, Format::Json, 4);
        let b = r.read_batch(BIG, &mut Scratch::default()).unwrap();
        assert_eq!(lines(&b), vec![&b"0123"[..], b"ab"]);
        assert!(b.records[0].truncated && !b.records[1].truncated);
    }

    #[test]
    fn batch_limits_are_respected_and_offsets_are_line_ends() {
        let content: String = (0..10).map(|i| format!("line{i}\n")).collect();
        let (_f, file) = file_with(content.as_bytes());
        let mut r = FileReader::new(file, 0, false, Format::Json, 100);
        let mut s = Scratch::default();
        let limits = Limits {
            max_events: 3,
            max_bytes: usize::MAX,
        };
        let b = r.read_batch(limits, &mut s).unwrap();
        assert_eq!(lines(&b), vec![&b"line0"[..], b"line1", b"line2"]);
        assert_eq!(b.end_offset, 18);
        let b = r.read_batch(limits, &mut s).unwrap();
        assert_eq!(&b.records[0].line[..], b"line3");
    }

    #[test]
    fn resume_offset_stays_before_unfinished_cri_joins() {
        let t = "2024-05-01T12:00:00.000000001Z";
        let content = format!("{t} stdout F one\n{t} stdout P two-a\n{t} stdout P two-b\n");
        let (mut f, file) = file_with(content.as_bytes());
        let mut r = FileReader::new(file, 0, false, Format::Auto, 100);
        let mut s = Scratch::default();
        let b = r.read_batch(BIG, &mut s).unwrap();
        assert_eq!(lines(&b), vec![&b"one"[..]]);
        let first_end = (t.len() + " stdout F one\n".len()) as u64;
        assert_eq!(b.end_offset, first_end);
        writeln!(f, "{t} stdout F two-c").unwrap();
        f.flush().unwrap();
        let b = r.read_batch(BIG, &mut s).unwrap();
        assert_eq!(lines(&b), vec![&b"two-atwo-btwo-c"[..]]);
        assert_eq!(b.end_offset, std::fs::metadata(f.path()).unwrap().len());
    }

    #[test]
    fn finish_splits_what_was_read_but_not_split() {
        let (_f, file) = file_with(b"a\nb\nc\nd");
        let mut r = FileReader::new(file, 0, false, Format::Json, 100);
        let one = Limits {
            max_events: 1,
            max_bytes: usize::MAX,
        };
        let b = r.read_batch(one, &mut Scratch::default()).unwrap();
        assert_eq!(lines(&b), vec![&b"a"[..]]);
        let b = r.finish();
        assert_eq!(lines(&b), vec![&b"b"[..], b"c", b"d"]);
        assert_eq!(b.end_offset, 7);
    }

    #[test]
    fn finish_emits_the_unterminated_tail() {
        let (_f, file) = file_with(b"a\nlast words");
        let mut r = FileReader::new(file, 0, false, Format::Json, 100);
        let b = r.read_batch(BIG, &mut Scratch::default()).unwrap();
        assert_eq!(lines(&b), vec![&b"a"[..]]);
        let b = r.finish();
        assert_eq!(lines(&b), vec![&b"last words"[..]]);
        assert_eq!(b.end_offset, 12);
    }

    #[test]
    fn cri_lines_with_cr_limit_and_a_head_from_an_earlier_read() {
        let t = "2024-05-01T12:00:00.000000001Z";
        let head = format!("{t} stdout F ");
        let content = format!("{head}one\r\n{head}0123456789\r\n{head}tw");
        let (mut f, file) = file_with(content.as_bytes());
        let max = head.len() + 5;
        let mut r = FileReader::new(file, 0, false, Format::Auto, max);
        let mut s = Scratch::default();
        let b = r.read_batch(BIG, &mut s).unwrap();
        assert_eq!(lines(&b), vec![&b"one"[..], b"01234"]);
        assert!(b
            .records
            .iter()
            .all(|r| r.time.as_deref() == Some(t.as_bytes())));
        assert_eq!(b.truncated, 1);
        assert!(!b.records[0].truncated && b.records[1].truncated);
        // The rest of the last line arrives later: its head was kept in `partial`.
        f.write_all(b"o\r\n\r\n").unwrap();
        f.flush().unwrap();
        let b = r.read_batch(BIG, &mut s).unwrap();
        assert_eq!(lines(&b), vec![&b"two"[..]]);
        assert_eq!(b.records[0].time.as_deref(), Some(t.as_bytes()));
        assert!(!b.records[0].truncated);
        assert_eq!(b.decode.empty_lines, 1);
        assert_eq!(b.end_offset, std::fs::metadata(f.path()).unwrap().len());
    }

    #[test]
    fn cr_at_the_limit_is_stripped_after_the_cut() {
        // The `\r` counts towards the limit, as it did when it was stripped after the cut.
        let (_f, file) = file_with(b"ab\rcd\n\r\nxy\r\nxyz\r\n");
        let mut r = FileReader::new(file, 0, false, Format::Json, 3);
        let b = r.read_batch(BIG, &mut Scratch::default()).unwrap();
        assert_eq!(lines(&b), vec![&b"ab"[..], b"xy", b"xyz"]);
        let flags: Vec<_> = b.records.iter().map(|r| r.truncated).collect();
        assert_eq!(flags, vec![true, false, true]);
        assert_eq!(b.decode.empty_lines, 1);
    }

    #[test]
    fn a_reader_that_split_all_it_read_does_not_pin_the_chunk() {
        let (_f, file) = file_with(b"a\nb\n");
        let mut r = FileReader::new(file, 0, false, Format::Json, 100);
        let mut b = r.read_batch(BIG, &mut Scratch::default()).unwrap();
        let last = b.records.pop().unwrap();
        assert!(!last.line.is_unique());
        drop(b);
        assert!(last.line.is_unique());
    }

    #[test]
    fn end_position_is_after_the_last_complete_line() {
        let (_f, file) = file_with(b"a\nbb\ncc");
        assert_eq!(end_position(&file, 7).unwrap(), (5, false));
        let (_f, file) = file_with(b"no newline");
        assert_eq!(end_position(&file, 10).unwrap(), (10, true));
        let (_f, file) = file_with(b"");
        assert_eq!(end_position(&file, 0).unwrap(), (0, false));
    }

    #[test]
    fn skip_first_discards_up_to_the_first_newline() {
        let (_f, file) = file_with(b"tail of a line\nnext\n");
        let mut r = FileReader::new(file, 5, true, Format::Json, 100);
        let b = r.read_batch(BIG, &mut Scratch::default()).unwrap();
        assert_eq!(lines(&b), vec![&b"next"[..]]);
    }
}
