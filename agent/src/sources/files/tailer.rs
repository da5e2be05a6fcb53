//! The engine: one task owning every open file, its checkpoint and its acknowledgements.
//!
//! Content streams, not paths, are the unit: a [`Tracked`] stream is one file content
//! (one fingerprint) read from one inode at a time. A renamed file is the same inode, so
//! it simply gets a new path. A copytruncate copy (new inode, same first line, not larger
//! than the original) is parked as a *standby*; when the original shrinks below the read
//! offset or its first line changes, reading continues in the copy at the same offset,
//! and the truncated inode starts over as new content. A truncated file whose copy has not
//! been seen yet is kept *orphaned* for `rotate_wait`, waiting for it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::EventsDropped;
use hindsight_exporters::ack::{AckBatch, BatchStatus};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::checkpoint::{self, Entry, FileKey, Fingerprint};
use super::config::{ReadFrom, Settings};
use super::discovery::{Matcher, Watch};
use super::metrics::{FileSourceMetrics, PathLabels, RotationKind};
use super::origin::origin_for;
use super::reader::{end_position, Batch, FileReader, Limits, Scratch};
use super::{FileSource, FilesError};
use crate::event::{LineFlags, LogEvent, Origin};

/// How often open files are looked at when inotify says nothing (some filesystems do
/// not report writes).
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How often the per-file `bytes_behind` gauges are refreshed: each refresh costs an
/// fstat and a labelled lookup per open file (with 1,000 idle files, every 250 ms
/// checkpoint tick was a third of the idle agent's CPU), and Prometheus scrapes every
/// 15 s or more.
const GAUGE_REFRESH: Duration = Duration::from_secs(5);

/// The shortest gap between two scans asked for by inotify.
const RESCAN_DEBOUNCE: Duration = Duration::from_millis(50);

/// A file opened but not yet part of a stream.
#[derive(Debug)]
struct Opened {
    file: File,
    key: FileKey,
    path: PathBuf,
}

impl Opened {
    fn size(&self) -> u64 {
        self.file.metadata().map(|m| m.len()).unwrap_or(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Being read.
    Live,
    /// Its inode was truncated before its copy was found; waiting for the copy.
    Orphaned { since: Instant },
    /// Let go; waiting for its last acknowledgements.
    Closing,
}

/// A batch handed downstream and not yet settled.
#[derive(Debug)]
struct InFlight {
    seq: u64,
    end: u64,
    status: Option<BatchStatus>,
}

/// One file content being tailed.
#[derive(Debug)]
struct Tracked {
    fingerprint: Fingerprint,
    /// The inode being read.
    key: FileKey,
    /// Where that inode was last seen.
    path: PathBuf,
    origin: Arc<Origin>,
    label: PathLabels,
    reader: FileReader,
    /// Copies of this content in other inodes (copytruncate), not read.
    standby: Vec<Opened>,
    state: State,
    /// A path matching the globs leads to the inode.
    watched: bool,
    deleted: bool,
    /// Since when every read found the end of the file.
    eof_since: Option<Instant>,
    next_seq: u64,
    inflight: VecDeque<InFlight>,
    /// End of the last batch registered (or the starting offset).
    pushed_end: u64,
    /// A batch came back undelivered: the checkpoint stays before it for this run.
    blocked: bool,
    /// Lines before this offset were delivered.
    acked: u64,
    size: u64,
}

/// A batch's outcome, sent by its callback.
#[derive(Debug)]
struct AckMsg {
    id: u64,
    seq: u64,
    status: BatchStatus,
}

/// Whether `path` is still tailed and still leads to the inode `key`.
fn still_at(path: &std::path::Path, key: FileKey, matcher: &Matcher) -> bool {
    matcher.is_match(path) && std::fs::metadata(path).is_ok_and(|m| FileKey::of(&m) == key)
}

/// The source stopped reading (shutdown, or nobody receives any more).
struct Stopped;

pub(crate) struct Tailer {
    settings: Settings,
    matcher: Matcher,
    metrics: FileSourceMetrics,
    checkpoint_path: PathBuf,
    first_start: bool,
    /// Checkpoints loaded at start that no file has claimed yet.
    unclaimed: Vec<Entry>,
    streams: BTreeMap<u64, Tracked>,
    /// Files whose first line is not complete yet.
    pending: Vec<Opened>,
    next_id: u64,
    scratch: Scratch,
    acks_tx: mpsc::UnboundedSender<AckMsg>,
    acks_rx: mpsc::UnboundedReceiver<AckMsg>,
    dirty: bool,
    next_checkpoint: Instant,
    next_gauges: Instant,
    watch: Watch,
    limit_warned: bool,
    limit_hit: bool,
}

impl Tailer {
    pub(crate) fn new(source: FileSource) -> Self {
        let (acks_tx, acks_rx) = mpsc::unbounded_channel();
        let first_start = source.checkpoints.is_none();
        Tailer {
            next_checkpoint: Instant::now() + source.settings.checkpoint_interval,
            next_gauges: Instant::now(),
            settings: source.settings,
            matcher: source.matcher,
            metrics: source.metrics,
            checkpoint_path: source.checkpoint_path,
            first_start,
            unclaimed: source.checkpoints.unwrap_or_default(),
            streams: BTreeMap::new(),
            pending: Vec::new(),
            next_id: 0,
            scratch: Scratch::default(),
            acks_tx,
            acks_rx,
            dirty: first_start,
            watch: Watch::new(),
            limit_warned: false,
            limit_hit: false,
        }
    }

    pub(crate) async fn run(
        mut self,
        out: mpsc::Sender<Vec<LogEvent>>,
        shutdown: CancellationToken,
        drain: Duration,
    ) -> Result<(), FilesError> {
        self.scan(true);
        let mut last_scan = Instant::now();
        let mut next_rescan = last_scan + self.settings.rescan_interval;
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            self.drain_acks();
            let now = Instant::now();
            if now >= next_rescan || (self.watch.rescan && now >= last_scan + RESCAN_DEBOUNCE) {
                self.watch.rescan = false;
                self.scan(false);
                last_scan = now;
                next_rescan = now + self.settings.rescan_interval;
            }
            self.check_pending();
            if now >= self.next_checkpoint {
                self.checkpoint_tick();
            }
            match self.read_round(&out, &shutdown).await {
                Err(Stopped) => break,
                Ok(true) => {
                    // Busy reading: events are read between rounds too, so that new
                    // files are noticed soon and the queue never fills up.
                    self.watch.take_events();
                    continue;
                }
                Ok(false) => {}
            }
            let mut wake_at = (now + POLL_INTERVAL)
                .min(next_rescan)
                .min(self.next_checkpoint);
            if self.watch.rescan {
                wake_at = wake_at.min(last_scan + RESCAN_DEBOUNCE);
            }
            let ack = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.watch.changed() => {
                    // A write wakes the tailer; lines written within `read_delay` after it
                    // are read in the same round, so a service writing every few
                    // milliseconds is read in a few rounds per second, not hundreds. The
                    // events are read after the delay, merged by the kernel meanwhile.
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = tokio::time::sleep(self.settings.read_delay) => {}
                    }
                    self.watch.take_events();
                    None
                }
                ack = self.acks_rx.recv() => ack,
                _ = tokio::time::sleep_until(wake_at) => None,
            };
            if let Some(ack) = ack {
                self.apply_ack(ack);
            }
        }
        drop(out);
        self.drain(drain).await;
        self.write_checkpoints()
            .map_err(|e| FilesError::Checkpoint {
                path: self.checkpoint_path.clone(),
                reason: e.to_string(),
            })
    }

    // ---- discovery ------------------------------------------------------------------

    fn open_count(&self) -> usize {
        let held = self
            .streams
            .values()
            .map(|t| usize::from(t.reader.file().is_some()) + t.standby.len())
            .sum::<usize>();
        held + self.pending.len()
    }

    fn is_known(&self, key: FileKey) -> bool {
        self.streams.values().any(|t| {
            (t.reader.file().is_some() && t.key == key) || t.standby.iter().any(|o| o.key == key)
        }) || self.pending.iter().any(|o| o.key == key)
    }

    /// Walks the globs, opens new files and notes which open files are still reachable.
    fn scan(&mut self, initial: bool) {
        self.watch.ensure(self.matcher.roots());
        let mut seen: HashMap<FileKey, PathBuf> = HashMap::new();
        let mut fresh: Vec<(Opened, Option<Fingerprint>)> = Vec::new();
        self.limit_hit = false;
        for path in self.matcher.walk() {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let key = FileKey::of(&meta);
            if seen.contains_key(&key) {
                continue;
            }
            seen.insert(key, path.clone());
            if self.is_known(key) {
                continue;
            }
            if self.open_count() + fresh.len() >= self.settings.max_open_files {
                self.metrics.open_limit_reached.inc();
                self.limit_hit = true;
                if !self.limit_warned {
                    self.limit_warned = true;
                    tracing::warn!(
                        limit = self.settings.max_open_files,
                        path = %path.display(),
                        "max_open_files reached; more files wait until others are let go"
                    );
                }
                continue;
            }
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(e) => {
                    self.metrics.read_errors.inc();
                    tracing::debug!(path = %path.display(), error = %e, "cannot open file");
                    continue;
                }
            };
            // The inode actually opened (the path may have been replaced meanwhile).
            let Ok(key) = file.metadata().map(|m| FileKey::of(&m)) else {
                continue;
            };
            if key != FileKey::of(&meta)
                && (self.is_known(key) || fresh.iter().any(|(o, _)| o.key == key))
            {
                continue;
            }
            seen.insert(key, path.clone());
            let fp = match Fingerprint::of(&file) {
                Ok(fp) => fp,
                Err(e) => {
                    self.metrics.read_errors.inc();
                    tracing::debug!(path = %path.display(), error = %e, "cannot read file");
                    continue;
                }
            };
            if path.is_symlink() {
                // `/var/log/containers/*.log`: writes raise events where the target is.
                let target = std::fs::canonicalize(&path);
                if let Some(dir) = target.as_deref().ok().and_then(Path::parent) {
                    self.watch.watch_target_dir(dir);
                }
            }
            fresh.push((Opened { file, key, path }, fp));
        }

        // Files that resume their own checkpoint first, so that a checkpoint is not taken
        // by a copy when the original is still there.
        let carried: HashMap<FileKey, Fingerprint> = fresh
            .iter()
            .filter_map(|(o, fp)| fp.map(|fp| (o.key, fp)))
            .collect();
        fresh.sort_by_key(|(o, fp)| {
            !fp.is_some_and(|fp| {
                self.unclaimed
                    .iter()
                    .any(|e| e.fingerprint == fp && e.key == o.key)
            })
        });
        for (opened, fp) in fresh {
            match fp {
                Some(fp) => self.place(opened, fp, initial, &carried),
                None => self.pending.push(opened),
            }
        }

        for t in self.streams.values_mut() {
            if t.state != State::Live {
                continue;
            }
            match seen.get(&t.key) {
                Some(path) => {
                    if *path != t.path {
                        self.metrics.rotation(RotationKind::Rename);
                        t.path = path.clone();
                    }
                    t.watched = true;
                }
                None if t.watched && still_at(&t.path, t.key, &self.matcher) => {
                    // The walk missed it (a transient directory error): not a rotation.
                }
                None if t.watched => {
                    t.watched = false;
                    let gone = t
                        .reader
                        .file()
                        .and_then(|f| f.metadata().ok())
                        .is_none_or(|m| m.nlink() == 0);
                    if gone {
                        if !t.deleted {
                            t.deleted = true;
                            self.metrics.rotation(RotationKind::Delete);
                        }
                    } else {
                        self.metrics.rotation(RotationKind::Rename);
                    }
                }
                None => {}
            }
            t.standby
                .retain(|o| seen.contains_key(&o.key) || still_at(&o.path, o.key, &self.matcher));
        }
        let matcher = &self.matcher;
        self.pending
            .retain(|o| seen.contains_key(&o.key) || still_at(&o.path, o.key, matcher));
        if initial && !self.limit_hit {
            // Checkpoints of files that are gone; keeping them would only grow the file.
            self.unclaimed.clear();
        }
        self.metrics.files_watched.set(self.open_count() as i64);
    }

    /// Gives a fingerprinted file its place: its checkpoint, a stream with the same
    /// content, or a new stream.
    fn place(
        &mut self,
        o: Opened,
        fp: Fingerprint,
        initial: bool,
        carried: &HashMap<FileKey, Fingerprint>,
    ) {
        let size = o.size();
        let claim = self
            .unclaimed
            .iter()
            .position(|e| e.fingerprint == fp && e.key == o.key)
            .or_else(|| {
                self.unclaimed.iter().position(|e| {
                    e.fingerprint == fp && size >= e.offset && carried.get(&e.key) != Some(&fp)
                })
            });
        if let Some(i) = claim {
            let entry = self.unclaimed.swap_remove(i);
            let offset = if size >= entry.offset {
                entry.offset
            } else {
                // Truncated while the agent was down; its first line was written again.
                self.metrics.rotation(RotationKind::Truncate);
                0
            };
            tracing::debug!(path = %o.path.display(), offset, "resuming from checkpoint");
            self.add_stream(o, fp, offset, false);
            return;
        }
        let same = self
            .streams
            .iter()
            .find(|(_, t)| t.fingerprint == fp && t.state != State::Closing)
            .map(|(id, _)| *id);
        if let Some(id) = same {
            // Before taking the new inode for a copy, make sure the original still holds
            // the content: with copytruncate it may have been truncated already.
            if !self.holds_content(id) {
                self.truncated(id, Instant::now());
            }
            if let Some(t) = self.streams.get_mut(&id) {
                match t.state {
                    State::Orphaned { .. } if size >= t.reader.read_offset() => {
                        tracing::debug!(path = %o.path.display(), "copy of a truncated file found; reading on in it");
                        t.reader.replace_file(Some(o.file));
                        t.key = o.key;
                        t.path = o.path;
                        t.state = State::Live;
                        t.watched = true;
                        t.deleted = false;
                        t.eof_since = None;
                        return;
                    }
                    State::Live => {
                        let cur = t
                            .reader
                            .file()
                            .and_then(|f| f.metadata().ok())
                            .map_or(0, |m| m.len());
                        if size <= cur {
                            t.standby.push(o);
                            return;
                        }
                    }
                    _ => {}
                }
            }
        }
        let (offset, skip) =
            if initial && self.first_start && self.settings.read_from == ReadFrom::End {
                end_position(&o.file, size).unwrap_or((size, true))
            } else {
                (0, false)
            };
        self.add_stream(o, fp, offset, skip);
    }

    fn add_stream(&mut self, o: Opened, fingerprint: Fingerprint, offset: u64, skip: bool) {
        let id = self.next_id;
        self.next_id += 1;
        let label = PathLabels {
            path: o.path.display().to_string(),
        };
        let origin = Arc::new(origin_for(&o.path));
        let size = o.size();
        tracing::debug!(path = %o.path.display(), offset, "tailing file");
        self.streams.insert(
            id,
            Tracked {
                fingerprint,
                key: o.key,
                path: o.path,
                origin,
                label,
                reader: FileReader::new(
                    o.file,
                    offset,
                    skip,
                    self.settings.format,
                    self.settings.max_line,
                ),
                standby: Vec::new(),
                state: State::Live,
                watched: true,
                deleted: false,
                eof_since: None,
                next_seq: 0,
                inflight: VecDeque::new(),
                pushed_end: offset,
                blocked: false,
                acked: offset,
                size,
            },
        );
        self.dirty = true;
    }

    /// Files whose first line was incomplete: place those that have one now.
    fn check_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut still = Vec::new();
        for o in std::mem::take(&mut self.pending) {
            match Fingerprint::of(&o.file) {
                Ok(Some(fp)) => self.place(o, fp, false, &HashMap::new()),
                Ok(None) => still.push(o),
                Err(_) => {
                    self.metrics.read_errors.inc();
                }
            }
        }
        self.pending.append(&mut still);
    }

    // ---- reading --------------------------------------------------------------------

    /// Reads one batch from every stream; true when any byte was read or anything sent.
    async fn read_round(
        &mut self,
        out: &mpsc::Sender<Vec<LogEvent>>,
        shutdown: &CancellationToken,
    ) -> Result<bool, Stopped> {
        let ids: Vec<u64> = self.streams.keys().copied().collect();
        let mut progressed = false;
        for id in ids {
            if shutdown.is_cancelled() {
                return Err(Stopped);
            }
            let Some((batch, let_go)) = self.next_batch(id, Instant::now()) else {
                continue;
            };
            progressed |= batch.bytes_read > 0 || !batch.records.is_empty();
            self.dispatch(id, batch, out, shutdown).await?;
            if let_go {
                self.let_go(id);
            }
        }
        Ok(progressed)
    }

    /// The synchronous part of a read: rotation checks, the read itself, end-of-file checks.
    fn next_batch(&mut self, id: u64, now: Instant) -> Option<(Batch, bool)> {
        let rotate_wait = self.settings.rotate_wait;
        let limits = Limits {
            max_events: self.settings.max_batch_events,
            max_bytes: self.settings.max_batch_bytes,
        };
        let t = self.streams.get_mut(&id)?;
        match t.state {
            State::Closing => return None,
            State::Orphaned { since } if now.duration_since(since) >= rotate_wait => {
                return Some((t.reader.finish(), true));
            }
            State::Orphaned { .. } => return None,
            State::Live => {}
        }
        if (t.deleted || !t.watched)
            && t.eof_since
                .is_some_and(|s| now.duration_since(s) >= rotate_wait)
        {
            tracing::debug!(path = %t.path.display(), "letting go of rotated file");
            return Some((t.reader.finish(), true));
        }
        // Idle at the end: nothing to read, only the end-of-file checks (one fstat).
        if t.eof_since.is_some() {
            if let Some(meta) = t.reader.file().and_then(|f| f.metadata().ok()) {
                if meta.len() == t.reader.read_offset() {
                    self.at_eof(id, now, &meta);
                    return None;
                }
            }
        }
        // The first line changed (or the file shrank): it was truncated, and may have been
        // written again past the read offset already; none of that may be read as old content.
        if !self.holds_content(id) {
            self.truncated(id, now);
            return None;
        }
        let t = self.streams.get_mut(&id)?;
        let batch = match t.reader.read_batch(limits, &mut self.scratch) {
            Ok(batch) => batch,
            Err(e) => {
                self.metrics.read_errors.inc();
                tracing::warn!(path = %t.path.display(), error = %e, "read failed");
                Batch {
                    end_offset: t.reader.resume_offset(),
                    eof: true,
                    ..Batch::default()
                }
            }
        };
        if batch.bytes_read > 0 {
            t.eof_since = None;
        }
        if batch.eof {
            t.eof_since.get_or_insert(now);
            if let Some(meta) = t.reader.file().and_then(|f| f.metadata().ok()) {
                self.at_eof(id, now, &meta);
            }
        }
        Some((batch, false))
    }

    /// At the end of a file: deleted? truncated? are the standby copies still copies?
    fn at_eof(&mut self, id: u64, now: Instant, meta: &std::fs::Metadata) {
        let Some(t) = self.streams.get_mut(&id) else {
            return;
        };
        t.size = meta.len();
        if meta.nlink() == 0 && !t.deleted {
            t.deleted = true;
            t.watched = false;
            self.metrics.rotation(RotationKind::Delete);
        }
        if meta.len() < t.reader.read_offset() {
            self.truncated(id, now);
            return;
        }
        // A "copy" that outgrew the original is another file with the same first line.
        let cur = meta.len();
        let mut outgrown = Vec::new();
        let mut i = 0;
        while i < t.standby.len() {
            let m = t.standby[i].file.metadata().ok();
            if m.as_ref().is_none_or(|m| m.nlink() == 0) {
                t.standby.swap_remove(i);
            } else if m.is_some_and(|m| m.len() > cur) {
                outgrown.push(t.standby.swap_remove(i));
            } else {
                i += 1;
            }
        }
        let fingerprint = t.fingerprint;
        for o in outgrown {
            tracing::debug!(path = %o.path.display(), "same first line but different content; tailing it on its own");
            self.add_stream(o, fingerprint, 0, false);
        }
    }

    /// The inode being read lost the content (copytruncate): go on in a copy, or wait
    /// for one; the inode itself starts over as new content.
    fn truncated(&mut self, id: u64, now: Instant) {
        let Some(t) = self.streams.get_mut(&id) else {
            return;
        };
        self.metrics.rotation(RotationKind::Truncate);
        let old = t.reader.replace_file(None).map(|file| Opened {
            file,
            key: t.key,
            path: t.path.clone(),
        });
        let offset = t.reader.read_offset();
        let copy = t.standby.iter().position(|o| {
            o.size() >= offset
                && matches!(Fingerprint::of(&o.file), Ok(Some(fp)) if fp == t.fingerprint)
        });
        match copy {
            Some(i) => {
                let o = t.standby.swap_remove(i);
                tracing::debug!(from = %t.path.display(), to = %o.path.display(), offset, "file truncated; reading on in its copy");
                t.reader.replace_file(Some(o.file));
                t.key = o.key;
                t.path = o.path;
                t.watched = true;
                t.deleted = false;
                t.eof_since = None;
            }
            None => {
                tracing::debug!(path = %t.path.display(), offset, "file truncated; waiting for its copy");
                t.state = State::Orphaned { since: now };
            }
        }
        if let Some(old) = old {
            self.pending.push(old);
        }
    }

    /// Whether a live stream's inode still starts with its first line and is not shorter
    /// than what was read.
    fn holds_content(&self, id: u64) -> bool {
        let Some(t) = self.streams.get(&id) else {
            return false;
        };
        if t.state != State::Live {
            return true;
        }
        let Some(file) = t.reader.file() else {
            return false;
        };
        let long_enough = file
            .metadata()
            .is_ok_and(|m| m.len() >= t.reader.read_offset());
        // A read error is not taken for a truncation; the read that follows reports it.
        long_enough && Fingerprint::of(file).map_or(true, |fp| fp == Some(t.fingerprint))
    }

    /// Hands a batch's records downstream with their acknowledgements.
    async fn dispatch(
        &mut self,
        id: u64,
        batch: Batch,
        out: &mpsc::Sender<Vec<LogEvent>>,
        shutdown: &CancellationToken,
    ) -> Result<(), Stopped> {
        let m = &self.metrics;
        m.bytes_read.inc_by(batch.bytes_read);
        m.lines_read.inc_by(batch.records.len() as u64);
        m.lines_truncated.inc_by(batch.truncated);
        m.dropped
            .add(EventsDropped::EMPTY_LINE, batch.decode.empty_lines);
        m.partial_lines_joined.inc_by(batch.decode.partials_joined);
        m.unparsed_lines.inc_by(batch.decode.unparsed);
        let Some(t) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        let advanced = batch.end_offset > t.pushed_end;
        if batch.records.is_empty() && !advanced {
            return Ok(());
        }
        let seq = t.next_seq;
        t.next_seq += 1;
        if !t.blocked {
            t.inflight.push_back(InFlight {
                seq,
                end: batch.end_offset,
                status: None,
            });
        }
        t.pushed_end = t.pushed_end.max(batch.end_offset);
        let tx = self.acks_tx.clone();
        let acks = AckBatch::new(move |status| {
            let _ = tx.send(AckMsg { id, seq, status });
        });
        let events: Vec<LogEvent> = batch
            .records
            .into_iter()
            .map(|r| LogEvent {
                line: r.line,
                runtime_time: r.time,
                stream: r.stream,
                origin: t.origin.clone(),
                flags: LineFlags {
                    truncated: r.truncated,
                },
                ack: acks.ack(),
            })
            .collect();
        drop(acks);
        if events.is_empty() {
            return Ok(());
        }
        self.send(events, out, shutdown).await
    }

    /// Sends with backpressure. Acknowledgements wait in their channel meanwhile, to be
    /// applied at the next round or checkpoint tick: waking the tailer for each delivered
    /// batch was a quarter of the agent's context switches at full speed.
    async fn send(
        &mut self,
        events: Vec<LogEvent>,
        out: &mpsc::Sender<Vec<LogEvent>>,
        shutdown: &CancellationToken,
    ) -> Result<(), Stopped> {
        enum Woke<'a> {
            Permit(Result<mpsc::Permit<'a, Vec<LogEvent>>, mpsc::error::SendError<()>>),
            Tick,
        }
        loop {
            let woke = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Err(Stopped),
                permit = out.reserve() => Woke::Permit(permit),
                _ = tokio::time::sleep_until(self.next_checkpoint) => Woke::Tick,
            };
            match woke {
                Woke::Permit(Ok(permit)) => {
                    permit.send(events);
                    return Ok(());
                }
                Woke::Permit(Err(_)) => return Err(Stopped),
                Woke::Tick => self.checkpoint_tick(),
            }
        }
    }

    fn let_go(&mut self, id: u64) {
        let Some(t) = self.streams.get_mut(&id) else {
            return;
        };
        t.state = State::Closing;
        t.reader.replace_file(None);
        t.standby.clear();
        self.remove_if_settled(id);
        self.metrics.files_watched.set(self.open_count() as i64);
    }

    fn remove_if_settled(&mut self, id: u64) {
        let settled = self
            .streams
            .get(&id)
            .is_some_and(|t| t.state == State::Closing && (t.blocked || t.inflight.is_empty()));
        if settled {
            if let Some(t) = self.streams.remove(&id) {
                self.metrics.bytes_behind.remove(&t.label);
                self.dirty = true;
            }
        }
    }

    // ---- acknowledgements and checkpoints -------------------------------------------

    fn drain_acks(&mut self) {
        while let Ok(ack) = self.acks_rx.try_recv() {
            self.apply_ack(ack);
        }
    }

    /// Records a batch's outcome and moves the checkpoint past every delivered batch at
    /// the front of the file's queue.
    fn apply_ack(&mut self, ack: AckMsg) {
        let Some(t) = self.streams.get_mut(&ack.id) else {
            return;
        };
        if t.blocked {
            return;
        }
        let Some(front) = t.inflight.front() else {
            return;
        };
        let Some(index) = ack
            .seq
            .checked_sub(front.seq)
            .and_then(|i| usize::try_from(i).ok())
        else {
            return;
        };
        let Some(slot) = t.inflight.get_mut(index) else {
            return;
        };
        slot.status = Some(ack.status);
        while let Some(front) = t.inflight.front() {
            match front.status {
                Some(BatchStatus::Delivered) => {
                    if front.end > t.acked {
                        t.acked = front.end;
                        self.dirty = true;
                    }
                    t.inflight.pop_front();
                }
                Some(BatchStatus::Undelivered) => {
                    tracing::warn!(
                        path = %t.path.display(),
                        offset = t.acked,
                        "a batch was not delivered; its checkpoint stays before it until restart"
                    );
                    t.blocked = true;
                    t.inflight.clear();
                    break;
                }
                None => break,
            }
        }
        self.remove_if_settled(ack.id);
    }

    fn checkpoint_tick(&mut self) {
        self.drain_acks();
        let now = Instant::now();
        self.next_checkpoint = now + self.settings.checkpoint_interval;
        if now >= self.next_gauges {
            self.next_gauges = now + GAUGE_REFRESH;
            for t in self.streams.values_mut() {
                if let Some(meta) = t.reader.file().and_then(|f| f.metadata().ok()) {
                    t.size = meta.len();
                }
                self.metrics
                    .bytes_behind
                    .get_or_create(&t.label)
                    .set(t.size.saturating_sub(t.acked) as i64);
            }
        }
        self.metrics.files_watched.set(self.open_count() as i64);
        if self.dirty {
            if let Err(e) = self.write_checkpoints() {
                self.metrics.checkpoint_errors.inc();
                tracing::warn!(path = %self.checkpoint_path.display(), error = %e, "cannot write checkpoints");
            }
        }
    }

    fn write_checkpoints(&mut self) -> std::io::Result<()> {
        let mut entries: Vec<Entry> = self
            .streams
            .values()
            .map(|t| Entry {
                fingerprint: t.fingerprint,
                key: t.key,
                offset: t.acked,
                path: t.path.clone(),
            })
            .collect();
        entries.extend(self.unclaimed.iter().cloned());
        checkpoint::store(&self.checkpoint_path, &entries)?;
        self.metrics.checkpoint_writes.inc();
        self.dirty = false;
        Ok(())
    }

    /// After reading stopped: apply acknowledgements until every batch is settled or
    /// `drain` is over.
    async fn drain(&mut self, drain: Duration) {
        let deadline = Instant::now() + drain;
        loop {
            self.drain_acks();
            let unsettled = self
                .streams
                .values()
                .any(|t| !t.blocked && !t.inflight.is_empty());
            if !unsettled {
                break;
            }
            tokio::select! {
                ack = self.acks_rx.recv() => match ack {
                    Some(ack) => self.apply_ack(ack),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::warn!("shutdown: some read lines were not confirmed in time; they will be read again");
                    break;
                }
            }
        }
    }
}
