//! The `files` source: tails container log files into batches of [`LogEvent`]s.
//!
//! - **Discovery** (`discovery.rs`): include/exclude globs; inotify on the globs' static
//!   prefix directories finds new files within milliseconds, a periodic walk is the
//!   safety net.
//! - **Reading** (`reader.rs`): 256 KiB positional reads, lines split with `memchr` and
//!   kept as slices of the read buffer, over-long lines cut and flagged, an unterminated
//!   last line waits for its `\n`.
//! - **Framing** (`framing.rs`): CRI and Docker json-file framing removed (split lines
//!   joined), or plain lines kept; `auto` detects per file.
//! - **Origin** (`origin.rs`): Kubernetes namespace/pod/container from the kubelet's paths.
//! - **Identity and checkpoints** (`checkpoint.rs`): a file's content is known by a hash of
//!   its first line, its inode by device and inode number; checkpoints move only past
//!   batches the sink confirmed ([`hindsight_exporters::ack`]), and are written atomically.
//! - **Rotation**: a renamed or deleted file is read to its end and let go after
//!   `rotate_wait`; with copytruncate the copy (same first line, new inode) takes over at
//!   the offset already read, so nothing is read twice or missed.
//!
//! One thread owns every open file (blocking reads are cheap and simple there); batches go
//! out through a bounded channel, so a slow sink stops the reading.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hindsight::sources::files::FilesError> {
//! use hindsight::sources::files::{FilesConfig, FileSourceMetrics};
//! use std::time::Duration;
//!
//! let config = FilesConfig::new(vec!["/var/log/pods/*/*/*.log".to_owned()]);
//! let source = config.build("/var/lib/hindsight".as_ref(), FileSourceMetrics::default())?;
//! let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<hindsight::event::LogEvent>>(8);
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! tokio::spawn(async move {
//!     while let Some(batch) = rx.recv().await {
//!         for event in batch {
//!             event.ack.delivered(); // once the sink confirmed it
//!         }
//!     }
//! });
//! source.run(tx, shutdown, Duration::from_secs(5)).await
//! # }
//! ```
//!
//! [`LogEvent`]: crate::event::LogEvent

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::event::LogEvent;

pub(crate) mod checkpoint;
mod config;
pub(crate) mod discovery;
pub(crate) mod framing;
mod metrics;
pub(crate) mod origin;
pub(crate) mod reader;
mod tailer;
#[cfg(test)]
mod tests;

pub use config::{FilesConfig, Format, ReadFrom};
pub use metrics::{
    FileSourceMetrics, PathLabels, RotationKind, RotationLabels, BYTES_BEHIND, BYTES_READ,
    CHECKPOINT_ERRORS, CHECKPOINT_WRITES, FILES_WATCHED, LINES_READ, LINES_TRUNCATED,
    OPEN_LIMIT_REACHED, PARTIAL_LINES_JOINED, READ_ERRORS, ROTATIONS, UNPARSED_LINES,
};

/// Why the file source could not be built or did not finish cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FilesError {
    /// Configuration problems, each naming its key (e.g. `include[0]: invalid glob: ...`).
    #[error("{}", .0.join("; "))]
    Config(Vec<String>),
    /// The data dir could not be created.
    #[error("data_dir {}: {source}", path.display())]
    DataDir {
        /// The data dir.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The checkpoint file could not be read or written.
    #[error("checkpoint file {}: {reason}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The reading thread could not be started or ended abnormally.
    #[error("files source thread: {0}")]
    Thread(String),
}

/// A built file source; see [`FilesConfig::build`].
pub struct FileSource {
    settings: config::Settings,
    matcher: discovery::Matcher,
    checkpoint_path: PathBuf,
    /// `None` when there was no checkpoint file: the first start.
    checkpoints: Option<Vec<checkpoint::Entry>>,
    metrics: FileSourceMetrics,
}

impl std::fmt::Debug for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSource")
            .field("checkpoint_path", &self.checkpoint_path)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl FileSource {
    /// Reads until `shutdown` is cancelled (or `out`'s receiver is gone); then stops
    /// reading, drops `out`, keeps applying acknowledgements for up to `drain` so that the
    /// checkpoints reflect delivered lines, writes the checkpoint file a last time and
    /// returns.
    ///
    /// The work happens on a dedicated thread; this future only waits for it.
    pub async fn run(
        self,
        out: mpsc::Sender<Vec<LogEvent>>,
        shutdown: CancellationToken,
        drain: Duration,
    ) -> Result<(), FilesError> {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("hindsight-files".to_owned())
            .spawn(move || {
                let result = match tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .enable_io()
                    .build()
                {
                    Ok(runtime) => {
                        runtime.block_on(tailer::Tailer::new(self).run(out, shutdown, drain))
                    }
                    Err(e) => Err(FilesError::Thread(e.to_string())),
                };
                let _ = done_tx.send(result);
            })
            .map_err(|e| FilesError::Thread(e.to_string()))?;
        done_rx
            .await
            .unwrap_or_else(|_| Err(FilesError::Thread("the reading thread panicked".to_owned())))
    }
}
