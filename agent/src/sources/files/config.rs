//! The user-facing configuration of the `files` input.

use std::num::NonZeroUsize;
use std::path::Path;
use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;

use super::discovery::Matcher;
use super::metrics::FileSourceMetrics;
use super::{checkpoint, FileSource, FilesError};

/// Tails container log files (the `files` input).
///
/// ```toml
/// [inputs.files]
/// include = ["/var/log/pods/*/*/*.log"]
/// format = "auto"
/// read_from = "beginning"
/// max_line_bytes = "1MiB"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// Absolute path globs of the files to tail, e.g. `/var/log/pods/*/*/*.log`.
    /// `*` stays within one path component; `**` crosses directories. Required, non-empty.
    pub include: Vec<String>,

    /// Globs matched against the full path (`*` crosses `/` here) of files to leave alone,
    /// even when `include` matches them. Default: compressed and temporary files.
    #[serde(default = "default_exclude")]
    pub exclude: Vec<String>,

    /// How lines are framed: `auto` (detect per file from its first line), `cri`
    /// (containerd/CRI-O), `docker` (Docker json-file) or `json` (plain lines, kept as is).
    #[serde(default)]
    pub format: Format,

    /// Where to start in files that are present at the agent's very first start (no
    /// checkpoint file yet): `beginning` or `end`. Files that appear later, and files
    /// without a checkpoint at a restart, are always read from the beginning.
    #[serde(default)]
    pub read_from: ReadFrom,

    /// Lines longer than this are cut to this length and flagged `truncated`; the rest of
    /// the line is skipped without being buffered. Joined CRI/Docker pieces obey it too.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: ByteSize,

    /// How often all globs are walked again, as a safety net beside inotify (which can
    /// overflow, and which some filesystems do not support).
    #[serde(default = "default_rescan_interval", with = "humantime_serde")]
    pub rescan_interval: Duration,

    /// After a write wakes the source, it waits this long before reading, so the lines
    /// written meanwhile are read in one round: fewer wake-ups of every stage (CPU) for at
    /// most this much more latency. `0s` reads at once.
    #[serde(default = "default_read_delay", with = "humantime_serde")]
    pub read_delay: Duration,

    /// At most this many records go into one batch (one read from one file).
    #[serde(default = "default_max_batch_events")]
    pub max_batch_events: NonZeroUsize,

    /// At most about this many bytes are read from one file into one batch.
    #[serde(default = "default_max_batch_bytes")]
    pub max_batch_bytes: ByteSize,

    /// How often the checkpoint file is written when checkpoints moved. After a crash,
    /// what was delivered since the last write is sent again, so a shorter interval means
    /// fewer duplicates; each write is one small file, fsynced.
    #[serde(default = "default_checkpoint_interval", with = "humantime_serde")]
    pub checkpoint_interval: Duration,

    /// How long a file that was rotated away (renamed out of `include`, deleted or
    /// truncated) is kept open after its last byte was read, before it is let go.
    #[serde(default = "default_rotate_wait", with = "humantime_serde")]
    pub rotate_wait: Duration,

    /// At most this many files are held open; files beyond it wait (and are counted in
    /// `hindsight_files_open_limit_reached_total`) until others are let go.
    #[serde(default = "default_max_open_files")]
    pub max_open_files: NonZeroUsize,
}

/// How a file's lines are framed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Decide per file from its first line.
    #[default]
    Auto,
    /// `<time> <stdout|stderr> <P|F> <line>` (containerd, CRI-O).
    Cri,
    /// `{"log":"...","stream":"...","time":"..."}` (Docker json-file).
    Docker,
    /// The line is the record.
    Json,
}

/// Where files present at the first start are read from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadFrom {
    /// Read existing content.
    #[default]
    Beginning,
    /// Skip existing content; read only what is written from now on.
    End,
}

fn default_exclude() -> Vec<String> {
    ["*.gz", "*.zip", "*.bz2", "*.xz", "*.zst", "*.tmp"]
        .map(String::from)
        .to_vec()
}

fn default_max_line_bytes() -> ByteSize {
    ByteSize::mib(1)
}

fn default_rescan_interval() -> Duration {
    Duration::from_secs(10)
}

fn default_read_delay() -> Duration {
    Duration::from_millis(100)
}

fn default_max_batch_events() -> NonZeroUsize {
    NonZeroUsize::new(1000).expect("non-zero")
}

fn default_max_batch_bytes() -> ByteSize {
    ByteSize::mib(1)
}

fn default_checkpoint_interval() -> Duration {
    Duration::from_millis(250)
}

fn default_rotate_wait() -> Duration {
    Duration::from_secs(5)
}

fn default_max_open_files() -> NonZeroUsize {
    NonZeroUsize::new(1024).expect("non-zero")
}

/// Validated runtime settings derived from [`FilesConfig`].
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub format: Format,
    pub read_from: ReadFrom,
    pub max_line: usize,
    pub rescan_interval: Duration,
    pub read_delay: Duration,
    pub max_batch_events: usize,
    pub max_batch_bytes: usize,
    pub checkpoint_interval: Duration,
    pub rotate_wait: Duration,
    pub max_open_files: usize,
}

impl FilesConfig {
    /// A configuration tailing `include` with every other key at its default.
    pub fn new(include: Vec<String>) -> Self {
        FilesConfig {
            include,
            exclude: default_exclude(),
            format: Format::default(),
            read_from: ReadFrom::default(),
            max_line_bytes: default_max_line_bytes(),
            rescan_interval: default_rescan_interval(),
            read_delay: default_read_delay(),
            max_batch_events: default_max_batch_events(),
            max_batch_bytes: default_max_batch_bytes(),
            checkpoint_interval: default_checkpoint_interval(),
            rotate_wait: default_rotate_wait(),
            max_open_files: default_max_open_files(),
        }
    }

    /// Checks every key (reporting all problems at once), loads the checkpoints from
    /// `<data_dir>/checkpoints.json` and returns the source, ready to [`FileSource::run`].
    pub fn build(
        &self,
        data_dir: &Path,
        metrics: FileSourceMetrics,
    ) -> Result<FileSource, FilesError> {
        let mut errors = Vec::new();
        let matcher = Matcher::new(&self.include, &self.exclude, &mut errors);
        let max_line = usize::try_from(self.max_line_bytes.as_u64()).unwrap_or(usize::MAX);
        if max_line == 0 {
            errors.push("max_line_bytes: must be at least 1 byte".to_owned());
        }
        let max_batch_bytes = usize::try_from(self.max_batch_bytes.as_u64()).unwrap_or(usize::MAX);
        if max_batch_bytes == 0 {
            errors.push("max_batch_bytes: must be at least 1 byte".to_owned());
        }
        for (key, value) in [
            ("rescan_interval", self.rescan_interval),
            ("checkpoint_interval", self.checkpoint_interval),
        ] {
            if value.is_zero() {
                errors.push(format!("{key}: must be greater than zero"));
            }
        }
        if !errors.is_empty() {
            return Err(FilesError::Config(errors));
        }
        std::fs::create_dir_all(data_dir).map_err(|source| FilesError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let checkpoint_path = data_dir.join(checkpoint::FILE_NAME);
        let checkpoints = checkpoint::load(&checkpoint_path)?;
        Ok(FileSource {
            settings: Settings {
                format: self.format,
                read_from: self.read_from,
                max_line,
                rescan_interval: self.rescan_interval,
                read_delay: self.read_delay,
                max_batch_events: self.max_batch_events.get(),
                max_batch_bytes,
                checkpoint_interval: self.checkpoint_interval,
                rotate_wait: self.rotate_wait,
                max_open_files: self.max_open_files.get(),
            },
            matcher,
            checkpoint_path,
            checkpoints,
            metrics,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<FilesConfig, serde_json::Error> {
        serde_json::from_value(json)
    }

    #[test]
    fn defaults() {
        let c = parse(serde_json::json!({"include": ["/var/log/pods/*/*/*.log"]})).unwrap();
        assert_eq!(c.format, Format::Auto);
        assert_eq!(c.read_from, ReadFrom::Beginning);
        assert_eq!(c.max_line_bytes, ByteSize::mib(1));
        assert_eq!(c.rescan_interval, Duration::from_secs(10));
        assert_eq!(c.read_delay, Duration::from_millis(100));
        assert_eq!(c.max_batch_events.get(), 1000);
        assert!(c.exclude.contains(&"*.gz".to_owned()));
    }

    #[test]
    fn human_values_and_unknown_keys() {
        let c = parse(serde_json::json!({
            "include": ["/a/*.log"], "format": "cri", "read_from": "end",
            "max_line_bytes": "64KiB", "rescan_interval": "250ms", "rotate_wait": "1m",
            "read_delay": "0s"
        }))
        .unwrap();
        assert_eq!(c.format, Format::Cri);
        assert_eq!(c.read_from, ReadFrom::End);
        assert_eq!(c.max_line_bytes, ByteSize::kib(64));
        assert_eq!(c.rescan_interval, Duration::from_millis(250));
        assert_eq!(c.rotate_wait, Duration::from_secs(60));
        assert_eq!(c.read_delay, Duration::ZERO);
        assert!(parse(serde_json::json!({"include": [], "bogus": 1})).is_err());
        assert!(parse(serde_json::json!({})).is_err());
    }

    #[test]
    fn build_reports_every_problem_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = FilesConfig::new(vec![
            "/ok/*.log".into(),
            "/bad/[.log".into(),
            "rel/*.log".into(),
        ]);
        c.exclude = vec!["{".into()];
        c.max_line_bytes = ByteSize::b(0);
        c.rescan_interval = Duration::ZERO;
        let Err(FilesError::Config(errors)) = c.build(dir.path(), FileSourceMetrics::default())
        else {
            panic!("expected config errors");
        };
        let all = errors.join("\n");
        assert!(all.contains("include[1]: invalid glob"), "{all}");
        assert!(
            all.contains("include[2]: must be an absolute path"),
            "{all}"
        );
        assert!(all.contains("exclude[0]: invalid glob"), "{all}");
        assert!(all.contains("max_line_bytes"), "{all}");
        assert!(all.contains("rescan_interval"), "{all}");
        let empty = FilesConfig::new(vec![]);
        let err = empty
            .build(dir.path(), FileSourceMetrics::default())
            .unwrap_err();
        assert!(err.to_string().contains("include: "), "{err}");
    }
}
