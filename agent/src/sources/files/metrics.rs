//! The file source's metrics. Names live here and nowhere else.
//!
//! Counter names are given without `_total`; the exposition adds it.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::metrics::EventsDropped;

/// `hindsight_files_watched`: files currently held open.
pub const FILES_WATCHED: &str = "hindsight_files_watched";
/// `hindsight_file_lines_read_total`: records read from files.
pub const LINES_READ: &str = "hindsight_file_lines_read";
/// `hindsight_file_bytes_read_total`: bytes read from files.
pub const BYTES_READ: &str = "hindsight_file_bytes_read";
/// `hindsight_file_lines_truncated_total`: lines cut at `max_line_bytes`.
pub const LINES_TRUNCATED: &str = "hindsight_file_lines_truncated";
/// `hindsight_file_partial_lines_joined_total`: records joined from CRI/Docker pieces.
pub const PARTIAL_LINES_JOINED: &str = "hindsight_file_partial_lines_joined";
/// `hindsight_file_unparsed_lines_total`: CRI/Docker lines that did not parse (kept raw).
pub const UNPARSED_LINES: &str = "hindsight_file_unparsed_lines";
/// `hindsight_file_rotations_total{kind}`: rotations seen (rename, truncate, delete).
pub const ROTATIONS: &str = "hindsight_file_rotations";
/// `hindsight_file_checkpoint_writes_total`: checkpoint file writes.
pub const CHECKPOINT_WRITES: &str = "hindsight_file_checkpoint_writes";
/// `hindsight_file_checkpoint_errors_total`: failed checkpoint file writes.
pub const CHECKPOINT_ERRORS: &str = "hindsight_file_checkpoint_errors";
/// `hindsight_file_read_errors_total`: I/O errors while opening or reading files.
pub const READ_ERRORS: &str = "hindsight_file_read_errors";
/// `hindsight_files_open_limit_reached_total`: files not opened because of `max_open_files`.
pub const OPEN_LIMIT_REACHED: &str = "hindsight_files_open_limit_reached";
/// `hindsight_file_bytes_behind{path}`: file size minus the checkpointed offset.
pub const BYTES_BEHIND: &str = "hindsight_file_bytes_behind";

/// The kind of a rotation.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum RotationKind {
    /// The file was renamed (away from its path, or out of the include globs).
    Rename,
    /// The file shrank below the read offset, or its first line changed (copytruncate).
    Truncate,
    /// The file was deleted while open.
    Delete,
}

impl RotationKind {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RotationKind::Rename => "rename",
            RotationKind::Truncate => "truncate",
            RotationKind::Delete => "delete",
        }
    }
}

impl EncodeLabelValue for RotationKind {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// `{kind}` of [`ROTATIONS`].
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RotationLabels {
    /// What happened.
    pub kind: RotationKind,
}

/// `{path}` of [`BYTES_BEHIND`].
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PathLabels {
    /// The path the file was discovered under.
    pub path: String,
}

/// Handles to the file source's metrics; clones share the same series.
#[derive(Debug, Clone, Default)]
pub struct FileSourceMetrics {
    pub(crate) files_watched: Gauge,
    pub(crate) lines_read: Counter,
    pub(crate) bytes_read: Counter,
    pub(crate) lines_truncated: Counter,
    /// Shared with the rest of the agent; empty lines are counted as `empty_line`.
    pub(crate) dropped: EventsDropped,
    pub(crate) partial_lines_joined: Counter,
    pub(crate) unparsed_lines: Counter,
    pub(crate) rotations: Family<RotationLabels, Counter>,
    pub(crate) checkpoint_writes: Counter,
    pub(crate) checkpoint_errors: Counter,
    pub(crate) read_errors: Counter,
    pub(crate) open_limit_reached: Counter,
    pub(crate) bytes_behind: Family<PathLabels, Gauge>,
}

impl FileSourceMetrics {
    /// Metrics that count dropped events (empty lines) in the agent's shared family.
    pub fn new(dropped: EventsDropped) -> Self {
        FileSourceMetrics {
            dropped,
            ..FileSourceMetrics::default()
        }
    }

    /// Registers every metric in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            FILES_WATCHED,
            "Files currently held open by the files input",
            self.files_watched.clone(),
        );
        registry.register(
            LINES_READ,
            "Records read from files",
            self.lines_read.clone(),
        );
        registry.register(BYTES_READ, "Bytes read from files", self.bytes_read.clone());
        registry.register(
            LINES_TRUNCATED,
            "Lines cut at max_line_bytes",
            self.lines_truncated.clone(),
        );
        registry.register(
            PARTIAL_LINES_JOINED,
            "Records joined from CRI partial lines or split Docker entries",
            self.partial_lines_joined.clone(),
        );
        registry.register(
            UNPARSED_LINES,
            "CRI/Docker lines that did not parse and were passed through raw",
            self.unparsed_lines.clone(),
        );
        registry.register(
            ROTATIONS,
            "File rotations seen, by kind",
            self.rotations.clone(),
        );
        registry.register(
            CHECKPOINT_WRITES,
            "Checkpoint file writes",
            self.checkpoint_writes.clone(),
        );
        registry.register(
            CHECKPOINT_ERRORS,
            "Failed checkpoint file writes",
            self.checkpoint_errors.clone(),
        );
        registry.register(
            READ_ERRORS,
            "I/O errors opening or reading tailed files",
            self.read_errors.clone(),
        );
        registry.register(
            OPEN_LIMIT_REACHED,
            "Files not opened because max_open_files was reached",
            self.open_limit_reached.clone(),
        );
        registry.register(
            BYTES_BEHIND,
            "File size minus the offset confirmed by the sink",
            self.bytes_behind.clone(),
        );
    }

    pub(crate) fn rotation(&self, kind: RotationKind) {
        self.rotations.get_or_create(&RotationLabels { kind }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_the_names() {
        let m = FileSourceMetrics::default();
        let mut registry = Registry::default();
        m.register(&mut registry);
        m.rotation(RotationKind::Truncate);
        m.bytes_behind
            .get_or_create(&PathLabels {
                path: "/a.log".into(),
            })
            .set(5);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for needle in [
            "hindsight_files_watched ",
            "hindsight_file_lines_read_total ",
            "hindsight_file_rotations_total{kind=\"truncate\"} 1",
            "hindsight_file_bytes_behind{path=\"/a.log\"} 5",
            "hindsight_file_checkpoint_writes_total ",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
    }
}
