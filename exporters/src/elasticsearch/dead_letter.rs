//! The dead-letter file: documents the cluster will never accept, with the reason.
//!
//! One JSON object per line:
//!
//! ```text
//! {"time":"2026-11-23T10:00:01.5Z","index":"logs-hindsight-2026.11.23","status":400,
//!  "error_type":"document_parsing_exception","reason":"...","document":{...}}
//! ```
//!
//! A line is on disk (`fsync`ed) before its record's acknowledgement is settled, so a
//! rejected record is never lost: it is either here or read again after a restart.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::value::RawValue;

use crate::Document;

/// The file name under `<data_dir>/dead-letter/`.
const FILE_NAME: &str = "elasticsearch.ndjson";

/// One rejected document and why.
#[derive(Debug, Clone)]
pub(crate) struct DeadLetter {
    pub index: String,
    pub status: u16,
    pub error_type: String,
    pub reason: String,
    pub document: Document,
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    index: &'a str,
    status: u16,
    error_type: &'a str,
    reason: &'a str,
    document: Embedded<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Embedded<'a> {
    Json(&'a RawValue),
    Text(String),
}

/// Appends dead letters to `<data_dir>/dead-letter/elasticsearch.ndjson`.
#[derive(Debug, Clone)]
pub(crate) struct DeadLetterFile {
    path: PathBuf,
    /// Opened on first use; closed (and reopened) after a write error.
    file: Arc<Mutex<Option<File>>>,
}

impl DeadLetterFile {
    pub(crate) fn new(data_dir: &Path) -> Self {
        DeadLetterFile {
            path: data_dir.join("dead-letter").join(FILE_NAME),
            file: Arc::new(Mutex::new(None)),
        }
    }

    /// Where the file is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line per letter and syncs the file; on success every letter is on disk.
    pub(crate) async fn append(&self, letters: &[DeadLetter]) -> io::Result<()> {
        let lines = render(
            letters,
            &chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        );
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.append_blocking(&lines))
            .await
            .map_err(io::Error::other)?
    }

    fn append_blocking(&self, lines: &[u8]) -> io::Result<()> {
        let mut slot = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if slot.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            *slot = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            );
        }
        let result = match slot.as_mut() {
            Some(file) => file.write_all(lines).and_then(|()| file.sync_data()),
            None => Err(io::Error::other("dead-letter file not open")),
        };
        if result.is_err() {
            // A half-written line may be there; reopen so the next attempt starts clean.
            *slot = None;
        }
        result
    }
}

/// Renders the letters as NDJSON. A document that is valid JSON is embedded as it is; one
/// that is not is embedded as a string (invalid UTF-8 replaced).
fn render(letters: &[DeadLetter], time: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(letters.iter().map(|l| l.document.len() + 256).sum());
    for letter in letters {
        let document = match serde_json::from_slice::<&RawValue>(&letter.document) {
            Ok(raw) => Embedded::Json(raw),
            Err(_) => Embedded::Text(String::from_utf8_lossy(&letter.document).into_owned()),
        };
        let line = Line {
            time: time.to_owned(),
            index: &letter.index,
            status: letter.status,
            error_type: &letter.error_type,
            reason: &letter.reason,
            document,
        };
        if serde_json::to_writer(&mut out, &line).is_ok() {
            out.push(b'\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(document: &[u8]) -> DeadLetter {
        DeadLetter {
            index: "logs-x".into(),
            status: 400,
            error_type: "mapper_parsing_exception".into(),
            reason: "failed to parse field [n]".into(),
            document: Document::new(bytes::Bytes::copy_from_slice(document)),
        }
    }

    #[test]
    fn valid_json_is_embedded_raw_and_the_rest_as_a_string() {
        let text = render(
            &[
                letter(br#"{"n": "abc"}"#),
                letter(b"not json \xff"),
                letter(b"{\"a\": 1}"),
            ],
            "2026-11-23T10:00:00.000Z",
        );
        let text = String::from_utf8(text).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(
            lines[0],
            r#"{"time":"2026-11-23T10:00:00.000Z","index":"logs-x","status":400,"error_type":"mapper_parsing_exception","reason":"failed to parse field [n]","document":{"n": "abc"}}"#
        );
        let second: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(second["document"], "not json \u{fffd}");
        let third: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(third["document"]["a"], 1);
    }

    #[tokio::test]
    async fn append_creates_the_directory_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        let file = DeadLetterFile::new(dir.path());
        file.append(&[letter(b"{}")]).await.unwrap();
        file.append(&[letter(b"[1]"), letter(b"2")]).await.unwrap();
        assert_eq!(
            file.path(),
            dir.path().join("dead-letter/elasticsearch.ndjson")
        );
        let text = std::fs::read_to_string(file.path()).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    }

    #[tokio::test]
    async fn unwritable_directory_is_an_error_not_a_loss() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("dead-letter"), b"a file, not a directory").unwrap();
        let file = DeadLetterFile::new(dir.path());
        assert!(file.append(&[letter(b"{}")]).await.is_err());
    }
}
