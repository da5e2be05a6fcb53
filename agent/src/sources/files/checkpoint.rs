//! File identity and the checkpoint file.
//!
//! A file's *content* is identified by a [`Fingerprint`] of its first line (at most
//! [`FINGERPRINT_BYTES`] bytes), its *inode* by device and inode number. A checkpoint
//! records both with the offset up to which the sink confirmed the lines. At a restart a
//! file resumes from the checkpoint with the same fingerprint and inode; failing that, from
//! one with the same fingerprint whose inode is gone (a copytruncate copy made while the
//! agent was down), provided the file is long enough. A new file that reuses an inode has a
//! different first line, so inode reuse does not fool it.
//!
//! `<data_dir>/checkpoints.json` is written atomically: to a temporary file, fsynced,
//! renamed over the old one, and the directory fsynced.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::FilesError;

/// The checkpoint file's name under the data dir.
pub(crate) const FILE_NAME: &str = "checkpoints.json";

/// The version written into the checkpoint file.
const VERSION: u32 = 1;

/// At most this many leading bytes make the fingerprint.
pub(crate) const FINGERPRINT_BYTES: usize = 256;

/// A hash of a file's first line (or first [`FINGERPRINT_BYTES`] bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Fingerprint(pub u64);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Fingerprint {
    /// The fingerprint of `file`, or `None` while its first line is incomplete.
    pub(crate) fn of(file: &File) -> io::Result<Option<Fingerprint>> {
        let mut head = [0u8; FINGERPRINT_BYTES];
        let mut len = 0;
        while len < head.len() {
            match file.read_at(&mut head[len..], len as u64) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Self::of_head(&head[..len]))
    }

    /// The fingerprint of a file that starts with `head`.
    pub(crate) fn of_head(head: &[u8]) -> Option<Fingerprint> {
        let end = match memchr::memchr(b'\n', head) {
            Some(i) => i + 1,
            None if head.len() >= FINGERPRINT_BYTES => FINGERPRINT_BYTES,
            None => return None,
        };
        let digest = Sha256::digest(&head[..end.min(FINGERPRINT_BYTES)]);
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Some(Fingerprint(u64::from_be_bytes(first)))
    }
}

/// Device and inode number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FileKey {
    pub dev: u64,
    pub ino: u64,
}

impl FileKey {
    pub(crate) fn of(meta: &std::fs::Metadata) -> Self {
        FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// One file's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub fingerprint: Fingerprint,
    pub key: FileKey,
    /// Lines before this byte offset were delivered.
    pub offset: u64,
    /// Where the file was seen (informational).
    pub path: PathBuf,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    version: u32,
    files: Vec<OnDiskEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDiskEntry {
    fingerprint: String,
    dev: u64,
    ino: u64,
    offset: u64,
    path: PathBuf,
}

/// Reads the checkpoint file; `Ok(None)` when there is none yet (the first start).
pub(crate) fn load(path: &Path) -> Result<Option<Vec<Entry>>, FilesError> {
    let bad = |reason: String| FilesError::Checkpoint {
        path: path.to_path_buf(),
        reason,
    };
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(e.to_string())),
    };
    let on_disk: OnDisk = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
    if on_disk.version != VERSION {
        return Err(bad(format!(
            "unsupported version {} (this agent reads version {VERSION})",
            on_disk.version
        )));
    }
    on_disk
        .files
        .into_iter()
        .map(|e| {
            let fp = u64::from_str_radix(&e.fingerprint, 16)
                .map_err(|_| bad(format!("invalid fingerprint {:?}", e.fingerprint)))?;
            Ok(Entry {
                fingerprint: Fingerprint(fp),
                key: FileKey {
                    dev: e.dev,
                    ino: e.ino,
                },
                offset: e.offset,
                path: e.path,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Replaces the checkpoint file atomically with `entries`.
pub(crate) fn store(path: &Path, entries: &[Entry]) -> io::Result<()> {
    let on_disk = OnDisk {
        version: VERSION,
        files: entries
            .iter()
            .map(|e| OnDiskEntry {
                fingerprint: e.fingerprint.to_string(),
                dev: e.key.dev,
                ino: e.key.ino,
                offset: e.offset,
                path: e.path.clone(),
            })
            .collect(),
    };
    let json = serde_json::to_vec_pretty(&on_disk).map_err(io::Error::other)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_waits_for_the_first_line() {
        assert_eq!(Fingerprint::of_head(b"partial"), None);
        assert_eq!(Fingerprint::of_head(b""), None);
        let a = Fingerprint::of_head(b"first\nsecond").unwrap();
        assert_eq!(Some(a), Fingerprint::of_head(b"first\nother and longer"));
        assert_ne!(Some(a), Fingerprint::of_head(b"First\n"));
        let long = vec![b'x'; 300];
        assert_eq!(
            Fingerprint::of_head(&long[..256]),
            Fingerprint::of_head(&long)
        );
        assert!(Fingerprint::of_head(&long[..256]).is_some());
    }

    #[test]
    fn fingerprint_of_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "abc").unwrap();
        assert_eq!(Fingerprint::of(&File::open(&p).unwrap()).unwrap(), None);
        std::fs::write(&p, "abc\ndef\n").unwrap();
        let fp = Fingerprint::of(&File::open(&p).unwrap()).unwrap();
        assert_eq!(fp, Fingerprint::of_head(b"abc\n"));
    }

    #[test]
    fn roundtrip_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE_NAME);
        assert_eq!(load(&p).unwrap(), None);
        let entries = vec![
            Entry {
                fingerprint: Fingerprint(0xdead_beef_0123_4567),
                key: FileKey { dev: 1, ino: 2 },
                offset: 42,
                path: "/var/log/pods/a/b/0.log".into(),
            },
            Entry {
                fingerprint: Fingerprint(7),
                key: FileKey { dev: 3, ino: 4 },
                offset: 0,
                path: "/x".into(),
            },
        ];
        store(&p, &entries).unwrap();
        assert_eq!(load(&p).unwrap(), Some(entries.clone()));
        store(&p, &entries[..1]).unwrap();
        assert_eq!(load(&p).unwrap(), Some(entries[..1].to_vec()));
        assert!(!p.with_extension("json.tmp").exists());
    }

    #[test]
    fn corrupt_or_future_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE_NAME);
        std::fs::write(&p, "{not json").unwrap();
        let err = load(&p).unwrap_err().to_string();
        assert!(err.contains("checkpoints.json"), "{err}");
        std::fs::write(&p, r#"{"version":99,"files":[]}"#).unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("version 99"));
    }
}
