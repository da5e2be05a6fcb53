//! Removing the container runtime's framing from a line: CRI, Docker json-file, or none.
//!
//! The decoder is pure: it takes complete raw lines (without `\n`) and produces
//! [`Record`]s, joining the pieces of lines the runtime split (CRI `P` lines, Docker entries
//! whose `log` lacks the trailing `\n`). A line that claims a framing but does not parse is
//! passed through whole as the record: bad input is never dropped.

use std::borrow::Cow;

use bytes::{Buf, Bytes, BytesMut};
use serde::Deserialize;

use super::config::Format;
use crate::event::Stream;

/// One record found in a file, before it gets its origin and acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// The application's own line.
    pub line: Bytes,
    /// The time the runtime stamped on it (RFC 3339 text).
    pub time: Option<Bytes>,
    /// stdout or stderr, when the framing says.
    pub stream: Option<Stream>,
    /// The line (or one of its joined pieces) was cut at `max_line_bytes`.
    pub truncated: bool,
}

impl Record {
    fn raw(line: Bytes, truncated: bool) -> Self {
        Record {
            line,
            time: None,
            stream: None,
            truncated,
        }
    }
}

/// Counts kept while decoding, added to the source's metrics by the caller.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecodeStats {
    /// Empty lines skipped.
    pub empty_lines: u64,
    /// Records made of more than one piece.
    pub partials_joined: u64,
    /// Lines that claimed a framing but did not parse, passed through raw.
    pub unparsed: u64,
}

/// A framing that has been decided for a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Cri,
    Docker,
    Plain,
}

/// A record whose pieces are being joined.
#[derive(Debug)]
struct Join {
    buf: BytesMut,
    time: Option<Bytes>,
    stream: Option<Stream>,
    truncated: bool,
}

/// Per-file decoding state: the detected framing and the pieces of split lines.
#[derive(Debug)]
pub(crate) struct Decoder {
    framing: Option<Framing>,
    /// Pieces being joined, one slot per stream (runtimes interleave stdout and stderr).
    joins: [Option<Join>; 2],
    max_line: usize,
}

impl Decoder {
    /// A decoder for `format`; `auto` decides from the first non-empty line.
    pub(crate) fn new(format: Format, max_line: usize) -> Self {
        let framing = match format {
            Format::Auto => None,
            Format::Cri => Some(Framing::Cri),
            Format::Docker => Some(Framing::Docker),
            Format::Json => Some(Framing::Plain),
        };
        Decoder {
            framing,
            joins: [None, None],
            max_line: max_line.max(1),
        }
    }

    /// True when no split line is waiting for its last piece, i.e. a restart may resume
    /// right after the last line pushed.
    pub(crate) fn is_idle(&self) -> bool {
        self.joins.iter().all(Option::is_none)
    }

    /// Decodes one raw line (without its `\n`); returns [`Decoder::is_idle`] afterwards.
    pub(crate) fn push(
        &mut self,
        line: Bytes,
        truncated: bool,
        out: &mut Vec<Record>,
        stats: &mut DecodeStats,
    ) -> bool {
        if line.is_empty() {
            stats.empty_lines += 1;
            return self.is_idle();
        }
        let framing = *self.framing.get_or_insert_with(|| detect(&line));
        match framing {
            Framing::Plain => out.push(Record::raw(line, truncated)),
            Framing::Cri => match parse_cri(&line) {
                Some(cri) => {
                    // The time is the one new reference to the line's buffer; the line
                    // itself becomes the content (a suffix of it), with no count change.
                    let time = line.slice(..cri.time_end);
                    let mut content = line;
                    content.advance(cri.content_start);
                    let stream = Some(cri.stream);
                    self.piece(
                        content,
                        Some(time),
                        stream,
                        cri.partial,
                        truncated,
                        out,
                        stats,
                    );
                }
                None => self.unparsed(line, truncated, out, stats),
            },
            Framing::Docker => match parse_docker(&line) {
                Some(d) => self.piece(d.log, d.time, d.stream, d.partial, truncated, out, stats),
                None => self.unparsed(line, truncated, out, stats),
            },
        }
        self.is_idle()
    }

    /// Emits whatever is being joined, as it is (the file is let go).
    pub(crate) fn flush(&mut self, out: &mut Vec<Record>, stats: &mut DecodeStats) {
        for slot in &mut self.joins {
            if let Some(join) = slot.take() {
                stats.partials_joined += 1;
                out.push(join.into_record());
            }
        }
    }

    fn unparsed(
        &mut self,
        line: Bytes,
        truncated: bool,
        out: &mut Vec<Record>,
        stats: &mut DecodeStats,
    ) {
        // Keep file order: whatever was being joined came before this line.
        self.flush(out, stats);
        stats.unparsed += 1;
        out.push(Record::raw(line, truncated));
    }

    #[allow(clippy::too_many_arguments)]
    fn piece(
        &mut self,
        content: Bytes,
        time: Option<Bytes>,
        stream: Option<Stream>,
        partial: bool,
        truncated: bool,
        out: &mut Vec<Record>,
        stats: &mut DecodeStats,
    ) {
        let slot = &mut self.joins[usize::from(stream == Some(Stream::Stderr))];
        match slot.take() {
            None if !partial => out.push(Record {
                line: content,
                time,
                stream,
                truncated,
            }),
            None => {
                let mut join = Join {
                    buf: BytesMut::new(),
                    time,
                    stream,
                    truncated,
                };
                join.append(&content, truncated, self.max_line);
                *slot = Some(join);
            }
            Some(mut join) => {
                join.append(&content, truncated, self.max_line);
                if partial {
                    *slot = Some(join);
                } else {
                    stats.partials_joined += 1;
                    out.push(join.into_record());
                }
            }
        }
    }
}

impl Join {
    fn append(&mut self, piece: &[u8], truncated: bool, max: usize) {
        let room = max.saturating_sub(self.buf.len());
        let take = room.min(piece.len());
        self.buf.extend_from_slice(&piece[..take]);
        self.truncated |= truncated || take < piece.len();
    }

    fn into_record(self) -> Record {
        Record {
            line: self.buf.freeze(),
            time: self.time,
            stream: self.stream,
            truncated: self.truncated,
        }
    }
}

/// Decides a file's framing from its first non-empty line.
fn detect(line: &[u8]) -> Framing {
    if line.starts_with(br#"{"log":"#) {
        Framing::Docker
    } else if parse_cri(line).is_some() {
        Framing::Cri
    } else {
        Framing::Plain
    }
}

/// Where the parts of a CRI line are: `<RFC 3339 time> <stdout|stderr> <P|F>[:tags] <content>`.
///
/// Positions rather than `Bytes`, so that the caller decides how to cut them out of the
/// line: the time is `line[..time_end]`, the content `line[content_start..]`.
#[derive(Debug, PartialEq, Eq)]
struct CriLine {
    time_end: usize,
    stream: Stream,
    partial: bool,
    content_start: usize,
}

fn parse_cri(b: &[u8]) -> Option<CriLine> {
    let time_end = memchr::memchr(b' ', b)?;
    if !looks_like_rfc3339(&b[..time_end]) {
        return None;
    }
    let rest = &b[time_end + 1..];
    let stream = if rest.starts_with(b"stdout ") {
        Stream::Stdout
    } else if rest.starts_with(b"stderr ") {
        Stream::Stderr
    } else {
        return None;
    };
    let tag_start = time_end + 1 + 7;
    let tag_end = memchr::memchr(b' ', &b[tag_start..]).map_or(b.len(), |i| tag_start + i);
    let tag = &b[tag_start..tag_end];
    let first_tag = tag.split(|&c| c == b':').next().unwrap_or_default();
    let partial = match first_tag {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    Some(CriLine {
        time_end,
        stream,
        partial,
        content_start: (tag_end + 1).min(b.len()),
    })
}

/// `YYYY-MM-DDTHH:MM:SS` followed by anything (fraction, zone): enough to tell framing
/// from an application's text without a full date parse per line.
fn looks_like_rfc3339(t: &[u8]) -> bool {
    const DIGITS: [usize; 14] = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    t.len() >= 20
        && DIGITS.iter().all(|&i| t[i].is_ascii_digit())
        && t[4] == b'-'
        && t[7] == b'-'
        && (t[10] == b'T' || t[10] == b't')
        && t[13] == b':'
        && t[16] == b':'
}

/// A parsed Docker json-file entry.
#[derive(Debug, PartialEq, Eq)]
struct DockerLine {
    /// The `log` text without its trailing `\n`.
    log: Bytes,
    /// The `log` text had no trailing `\n`: the runtime split the line there.
    partial: bool,
    stream: Option<Stream>,
    time: Option<Bytes>,
}

fn parse_docker(line: &[u8]) -> Option<DockerLine> {
    #[derive(Deserialize)]
    struct Entry<'a> {
        #[serde(borrow)]
        log: Cow<'a, str>,
        #[serde(borrow, default)]
        stream: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        time: Option<Cow<'a, str>>,
    }
    let entry: Entry<'_> = serde_json::from_slice(line).ok()?;
    let stream = match entry.stream.as_deref() {
        Some("stdout") => Some(Stream::Stdout),
        Some("stderr") => Some(Stream::Stderr),
        _ => None,
    };
    // Strip the `\n` from the text, before it becomes `Bytes` (whose `truncate` would
    // promote a fresh buffer to a shared one: an allocation and two atomic operations).
    let mut log = entry.log.into_owned();
    let partial = !log.ends_with('\n');
    if !partial {
        log.pop();
    }
    Some(DockerLine {
        log: Bytes::from(log),
        partial,
        stream,
        time: entry.time.map(|t| Bytes::from(t.into_owned())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(format: Format, max: usize, lines: &[&[u8]]) -> (Vec<Record>, DecodeStats, bool) {
        let mut d = Decoder::new(format, max);
        let mut out = Vec::new();
        let mut stats = DecodeStats::default();
        let mut idle = true;
        for l in lines {
            idle = d.push(Bytes::copy_from_slice(l), false, &mut out, &mut stats);
        }
        (out, stats, idle)
    }

    fn lines(records: &[Record]) -> Vec<&[u8]> {
        records.iter().map(|r| &r.line[..]).collect()
    }

    const T: &str = "2024-05-01T12:00:00.123456789Z";

    #[test]
    fn cri_full_line() {
        let l = format!(r#"{T} stdout F {{"msg":"hi"}}"#);
        let (out, _, idle) = decode(Format::Cri, 1 << 20, &[l.as_bytes()]);
        assert!(idle);
        assert_eq!(
            out,
            vec![Record {
                line: Bytes::from_static(br#"{"msg":"hi"}"#),
                time: Some(Bytes::from(T)),
                stream: Some(Stream::Stdout),
                truncated: false,
            }]
        );
    }

    #[test]
    fn cri_partials_are_joined_per_stream() {
        let a = format!("{T} stdout P hello ");
        let e = format!("{T} stderr F oops");
        let b = format!("{T} stdout P big ");
        let c = format!("{T} stdout F world");
        let mut d = Decoder::new(Format::Auto, 1 << 20);
        let mut out = Vec::new();
        let mut stats = DecodeStats::default();
        assert!(!d.push(Bytes::from(a), false, &mut out, &mut stats));
        assert!(!d.push(Bytes::from(e), false, &mut out, &mut stats));
        assert!(!d.push(Bytes::from(b), false, &mut out, &mut stats));
        assert!(d.push(Bytes::from(c), false, &mut out, &mut stats));
        assert_eq!(lines(&out), vec![&b"oops"[..], b"hello big world"]);
        assert_eq!(out[0].stream, Some(Stream::Stderr));
        assert_eq!(out[1].stream, Some(Stream::Stdout));
        assert_eq!(stats.partials_joined, 1);
    }

    #[test]
    fn cri_join_is_bounded_and_flagged() {
        let a = format!("{T} stdout P 0123456789");
        let b = format!("{T} stdout P abcdefghij");
        let c = format!("{T} stdout F XYZ");
        let (out, _, _) = decode(Format::Cri, 15, &[a.as_bytes(), b.as_bytes(), c.as_bytes()]);
        assert_eq!(lines(&out), vec![&b"0123456789abcde"[..]]);
        assert!(out[0].truncated);
    }

    #[test]
    fn cri_empty_content_and_tags() {
        let a = format!("{T} stdout F");
        let b = format!("{T} stderr F:x ");
        let (out, _, _) = decode(Format::Cri, 100, &[a.as_bytes(), b.as_bytes()]);
        assert_eq!(lines(&out), vec![&b""[..], b""]);
        assert_eq!(out[1].stream, Some(Stream::Stderr));
    }

    #[test]
    fn docker_unescapes_and_strips_newline() {
        let l = br#"{"log":"{\"msg\":\"\u00e9\\t\"}\n","stream":"stderr","time":"2024-05-01T12:00:00.1Z"}"#;
        let (out, _, _) = decode(Format::Auto, 1 << 20, &[l]);
        assert_eq!(lines(&out), vec![r#"{"msg":"é\t"}"#.as_bytes()]);
        assert_eq!(out[0].stream, Some(Stream::Stderr));
        assert_eq!(out[0].time.as_deref(), Some(&b"2024-05-01T12:00:00.1Z"[..]));
    }

    #[test]
    fn docker_16k_split_is_joined() {
        let first = "x".repeat(16 * 1024);
        let a = format!(r#"{{"log":"{first}","stream":"stdout","time":"t1"}}"#);
        let b = r#"{"log":"tail\n","stream":"stdout","time":"t2"}"#;
        let (out, stats, idle) = decode(Format::Docker, 1 << 20, &[a.as_bytes(), b.as_bytes()]);
        assert!(idle);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].line.len(), 16 * 1024 + 4);
        assert!(out[0].line.ends_with(b"xtail"));
        assert_eq!(out[0].time.as_deref(), Some(&b"t1"[..]));
        assert_eq!(stats.partials_joined, 1);
    }

    #[test]
    fn plain_json_is_kept_as_is() {
        let (out, _, _) = decode(Format::Auto, 100, &[br#"{"level":"info"}"#, b"not json"]);
        assert_eq!(lines(&out), vec![&br#"{"level":"info"}"#[..], b"not json"]);
        assert!(out.iter().all(|r| r.time.is_none() && r.stream.is_none()));
    }

    #[test]
    fn garbage_in_framed_files_passes_through_raw() {
        let good = format!("{T} stdout P part");
        let (out, stats, idle) = decode(
            Format::Cri,
            100,
            &[good.as_bytes(), b"garbage line", b"2024 stdout F x"],
        );
        assert!(idle);
        assert_eq!(
            lines(&out),
            vec![&b"part"[..], b"garbage line", b"2024 stdout F x"]
        );
        assert_eq!(stats.unparsed, 2);
        let (out, _, _) = decode(Format::Docker, 100, &[br#"{"log":1}"#, b"\xff\xfe", b"{"]);
        assert_eq!(lines(&out), vec![&br#"{"log":1}"#[..], b"\xff\xfe", b"{"]);
    }

    #[test]
    fn empty_lines_are_skipped_and_counted() {
        let (out, stats, idle) = decode(Format::Json, 100, &[b"", b"a", b""]);
        assert_eq!(lines(&out), vec![&b"a"[..]]);
        assert_eq!(stats.empty_lines, 2);
        assert!(idle);
    }

    #[test]
    fn auto_detects_from_first_line() {
        assert_eq!(detect(br#"{"log":"x\n"}"#), Framing::Docker);
        assert_eq!(detect(format!("{T} stdout F x").as_bytes()), Framing::Cri);
        assert_eq!(detect(br#"{"msg":"x"}"#), Framing::Plain);
        assert_eq!(detect(b"2024-05-01T12:00:00Z something"), Framing::Plain);
    }

    #[test]
    fn flush_emits_unfinished_joins() {
        let mut d = Decoder::new(Format::Cri, 100);
        let mut out = Vec::new();
        let mut stats = DecodeStats::default();
        d.push(
            Bytes::from(format!("{T} stdout P half")),
            false,
            &mut out,
            &mut stats,
        );
        assert!(out.is_empty() && !d.is_idle());
        d.flush(&mut out, &mut stats);
        assert_eq!(lines(&out), vec![&b"half"[..]]);
        assert!(d.is_idle());
    }

    fn cri(time: &str, rest: &str) -> Bytes {
        Bytes::from(format!("{time} {rest}"))
    }

    #[test]
    fn cri_time_and_content_are_cut_exactly() {
        let t2 = "2024-05-01T12:00:01+02:00";
        let mut d = Decoder::new(Format::Cri, 100);
        let mut out = Vec::new();
        let mut stats = DecodeStats::default();
        for l in [
            cri(T, "stdout F  two  spaces "),
            cri(t2, "stderr F:x:y a b"),
            cri(T, "stdout F"),
            cri(t2, "stdout F "),
            cri(T, "stderr F  "),
        ] {
            assert!(d.push(l, false, &mut out, &mut stats));
        }
        let got: Vec<_> = out
            .iter()
            .map(|r| (&r.line[..], r.time.as_deref().unwrap(), r.stream.unwrap()))
            .collect();
        assert_eq!(
            got,
            vec![
                (&b" two  spaces "[..], T.as_bytes(), Stream::Stdout),
                (b"a b", t2.as_bytes(), Stream::Stderr),
                (b"", T.as_bytes(), Stream::Stdout),
                (b"", t2.as_bytes(), Stream::Stdout),
                (b" ", T.as_bytes(), Stream::Stderr),
            ]
        );
        assert_eq!(stats, DecodeStats::default());
    }

    #[test]
    fn cri_join_keeps_the_first_pieces_time() {
        let t2 = "2024-05-01T12:00:01.5Z";
        let mut d = Decoder::new(Format::Cri, 100);
        let mut out = Vec::new();
        let mut stats = DecodeStats::default();
        assert!(!d.push(cri(T, "stdout P "), false, &mut out, &mut stats));
        assert!(!d.push(cri(T, "stdout P {\"a\":"), false, &mut out, &mut stats));
        assert!(d.push(cri(t2, "stdout F 1}"), false, &mut out, &mut stats));
        assert!(!d.push(cri(t2, "stderr P x"), false, &mut out, &mut stats));
        assert!(d.push(cri(T, "stderr F"), false, &mut out, &mut stats));
        assert_eq!(
            out,
            vec![
                Record {
                    line: Bytes::from_static(br#"{"a":1}"#),
                    time: Some(Bytes::from(T)),
                    stream: Some(Stream::Stdout),
                    truncated: false,
                },
                Record {
                    line: Bytes::from_static(b"x"),
                    time: Some(Bytes::from(t2)),
                    stream: Some(Stream::Stderr),
                    truncated: false,
                },
            ]
        );
        assert_eq!(stats.partials_joined, 2);
    }

    #[test]
    fn docker_content_time_and_partials_are_exact() {
        let (out, stats, idle) = decode(
            Format::Docker,
            100,
            &[
                br#"{"log":"plain\n","stream":"stdout","time":"t1"}"#,
                br#"{"log":"\n","time":"t2"}"#,
                br#"{"log":"a\n\n"}"#,
                br#"{"log":"he","stream":"stderr","time":"t3"}"#,
                br#"{"log":"llo\n","stream":"stderr","time":"t4"}"#,
                br#"{"log":"unfinished","stream":"stdout","time":"t5"}"#,
            ],
        );
        assert!(!idle);
        let got: Vec<_> = out
            .iter()
            .map(|r| (&r.line[..], r.time.as_deref(), r.stream))
            .collect();
        assert_eq!(
            got,
            vec![
                (&b"plain"[..], Some(&b"t1"[..]), Some(Stream::Stdout)),
                (b"", Some(b"t2"), None),
                (b"a\n", None, None),
                (b"hello", Some(b"t3"), Some(Stream::Stderr)),
            ]
        );
        assert_eq!(stats.partials_joined, 1);
    }

    #[test]
    fn truncated_raw_line_keeps_its_flag() {
        let mut d = Decoder::new(Format::Cri, 100);
        let mut out = Vec::new();
        let mut stats = DecodeStats::default();
        d.push(
            Bytes::from(format!("{T} stdout F abc")),
            true,
            &mut out,
            &mut stats,
        );
        assert!(out[0].truncated);
    }
}
