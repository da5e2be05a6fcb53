//! Finding files: glob matching, walking the globs' static prefixes, and inotify.
//!
//! Each include glob is split into a static prefix directory (`/var/log/pods` for
//! `/var/log/pods/*/*/*.log`) and the rest. A scan walks every prefix directory (only as
//! deep as the glob can reach) and keeps the paths the include set matches and the exclude
//! set does not. inotify watches the prefixes recursively, on the reading thread: a
//! create, delete or rename asks for a scan soon; a write only wakes the reader.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use futures::FutureExt;
use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Which paths are tailed.
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    include: GlobSet,
    exclude: GlobSet,
    roots: Vec<Root>,
}

/// A directory to walk and how deep (None: no limit, the glob has `**`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Root {
    pub dir: PathBuf,
    pub depth: Option<usize>,
}

impl Matcher {
    /// Compiles the globs; problems are appended to `errors` naming the key.
    pub(crate) fn new(include: &[String], exclude: &[String], errors: &mut Vec<String>) -> Self {
        if include.is_empty() {
            errors.push("include: must list at least one glob".to_owned());
        }
        let mut inc = GlobSetBuilder::new();
        let mut roots: Vec<Root> = Vec::new();
        for (i, pattern) in include.iter().enumerate() {
            if !Path::new(pattern).is_absolute() {
                errors.push(format!(
                    "include[{i}]: must be an absolute path, got {pattern:?}"
                ));
                continue;
            }
            match GlobBuilder::new(pattern).literal_separator(true).build() {
                Ok(glob) => {
                    inc.add(glob);
                    let root = static_prefix(pattern);
                    if !roots.contains(&root) {
                        roots.push(root);
                    }
                }
                Err(e) => errors.push(format!("include[{i}]: invalid glob: {}", e.kind())),
            }
        }
        let mut exc = GlobSetBuilder::new();
        for (i, pattern) in exclude.iter().enumerate() {
            match Glob::new(pattern) {
                Ok(glob) => {
                    exc.add(glob);
                }
                Err(e) => errors.push(format!("exclude[{i}]: invalid glob: {}", e.kind())),
            }
        }
        let build = |b: GlobSetBuilder| b.build().unwrap_or_else(|_| GlobSet::empty());
        Matcher {
            include: build(inc),
            exclude: build(exc),
            roots,
        }
    }

    /// Whether `path` is tailed.
    pub(crate) fn is_match(&self, path: &Path) -> bool {
        self.include.is_match(path) && !self.exclude.is_match(path)
    }

    /// The directories to walk (and watch).
    pub(crate) fn roots(&self) -> &[Root] {
        &self.roots
    }

    /// Every matching path under the roots, in a stable order (sorted per directory).
    /// Symlinks to files are followed (`/var/log/containers`), symlinks to directories are
    /// not (they could loop).
    pub(crate) fn walk(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for root in &self.roots {
            self.walk_dir(&root.dir, root.depth, &mut found);
        }
        found
    }

    fn walk_dir(&self, dir: &Path, depth: Option<usize>, found: &mut Vec<PathBuf>) {
        if depth == Some(0) {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                self.walk_dir(&path, depth.map(|d| d - 1), found);
            } else if (kind.is_file() || kind.is_symlink()) && self.is_match(&path) {
                found.push(path);
            }
        }
    }
}

/// The longest leading directory of `pattern` without glob syntax, and how many more
/// components the glob can match below it.
pub(crate) fn static_prefix(pattern: &str) -> Root {
    let is_glob = |s: &str| s.contains(['*', '?', '[', '{', '\\']);
    let components: Vec<Component<'_>> = Path::new(pattern).components().collect();
    let first_glob = components
        .iter()
        .position(|c| is_glob(&c.as_os_str().to_string_lossy()))
        .unwrap_or(components.len().saturating_sub(1));
    let dir: PathBuf = components[..first_glob].iter().collect();
    let rest = &components[first_glob..];
    let depth = if rest
        .iter()
        .any(|c| c.as_os_str().to_string_lossy().contains("**"))
    {
        None
    } else {
        Some(rest.len())
    };
    Root { dir, depth }
}

/// The inotify watches on the roots and every directory below them (as deep as the globs
/// reach), read on the reading thread itself.
///
/// Waiting for the descriptor to become readable does not read it: while the reader
/// sleeps for `read_delay`, the kernel merges a file's consecutive write events into one,
/// so a service writing one line at a time costs a few reads per second, not a wake-up
/// per line on a thread of its own.
pub(crate) struct Watch {
    /// `None` until the first [`Watch::ensure`] (it registers with the running reactor),
    /// or when inotify is unavailable.
    inotify: Option<AsyncFd<Inotify>>,
    /// inotify could not be set up: files are found by periodic scans only.
    unavailable: bool,
    /// Watched directories, and how many levels below each are watched too.
    dirs: HashMap<WatchDescriptor, (PathBuf, Option<usize>)>,
    /// Roots watched so far, with their depth.
    roots: Vec<Root>,
    /// Directories holding the targets of symlinked files (`/var/log/containers/*.log`
    /// point into `/var/log/pods`): a write to a target raises no event where the link is.
    targets: Vec<PathBuf>,
    /// Events were lost or a watched directory moved: watch every root afresh.
    stale: bool,
    /// A watch could not be added (e.g. `fs.inotify.max_user_watches` reached).
    add_failed: bool,
    /// A file may have been created, deleted or renamed, or events were lost: scan.
    pub(crate) rescan: bool,
    buffer: Vec<u8>,
}

/// Registers `inotify` with the running reactor, for readability only.
fn register(inotify: Inotify) -> std::io::Result<AsyncFd<Inotify>> {
    // SAFETY: `Inotify` owns its descriptor, keeps it open until dropped and always
    // returns that same descriptor; the `AsyncFd` owns the `Inotify`.
    unsafe { AsyncFd::register_with_interest(inotify, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

/// What the watches report: writes, and everything that changes which files exist.
fn watch_mask() -> WatchMask {
    WatchMask::MODIFY
        | WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF
}

/// `a` reaches at least as deep as `b` (`None`: no limit).
fn deeper_or_equal(a: Option<usize>, b: Option<usize>) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => a >= b,
    }
}

impl Watch {
    /// No watches yet; [`Watch::ensure`] adds them.
    pub(crate) fn new() -> Self {
        Watch {
            inotify: None,
            unavailable: false,
            dirs: HashMap::new(),
            roots: Vec::new(),
            targets: Vec::new(),
            stale: false,
            add_failed: false,
            rescan: false,
            buffer: vec![0; 64 * 1024],
        }
    }

    /// Watches every root not watched yet that exists now (all of them again after lost
    /// events). Must run inside the reading thread's runtime (with I/O enabled).
    pub(crate) fn ensure(&mut self, roots: &[Root]) {
        if self.inotify.is_none() && !self.unavailable {
            match Inotify::init().and_then(register) {
                Ok(inotify) => self.inotify = Some(inotify),
                Err(e) => {
                    tracing::warn!(error = %e, "inotify unavailable; files are found by periodic scans only");
                    self.unavailable = true;
                }
            }
        }
        if self.stale {
            self.forget_all();
            for dir in std::mem::take(&mut self.targets) {
                self.watch_target_dir(&dir);
            }
        }
        for root in roots {
            if self.roots.contains(root) || !root.dir.is_dir() {
                continue;
            }
            // Directories below the root hold the files: a glob `n` components deep
            // reaches directories `n - 1` levels down.
            let below = root.depth.map(|d| d.saturating_sub(1));
            if self.watch_tree(&root.dir, below) {
                self.roots.push(root.clone());
                // Files may have appeared before the watch was in place.
                self.rescan = true;
            }
        }
    }

    /// Watches `dir`, the directory of a symlinked file's target, for writes to it.
    pub(crate) fn watch_target_dir(&mut self, dir: &Path) {
        if self.inotify.is_some()
            && !self.targets.iter().any(|known| known == dir)
            && self.watch_tree(dir, Some(0))
        {
            self.targets.push(dir.to_path_buf());
        }
    }

    /// Removes every watch, so that [`Watch::ensure`] adds them again from the roots.
    fn forget_all(&mut self) {
        self.stale = false;
        self.roots.clear();
        if let Some(inotify) = self.inotify.as_mut() {
            let mut watches = inotify.get_mut().watches();
            for (wd, _) in self.dirs.drain() {
                // Fails for directories already gone; nothing to do then.
                let _ = watches.remove(wd);
            }
        }
        // Events between removing and adding again are lost: look at everything.
        self.rescan = true;
    }

    /// Watches `dir` and its subdirectories down to `below` levels; false when `dir`
    /// itself could not be watched. A directory already watched (two roots may overlap)
    /// keeps the deeper of its depths.
    fn watch_tree(&mut self, dir: &Path, below: Option<usize>) -> bool {
        let Some(inotify) = self.inotify.as_mut() else {
            return false;
        };
        match inotify.get_mut().watches().add(dir, watch_mask()) {
            Ok(wd) => match self.dirs.get_mut(&wd) {
                Some((_, known)) if deeper_or_equal(*known, below) => return true,
                Some(entry) => *entry = (dir.to_path_buf(), below),
                None => {
                    self.dirs.insert(wd, (dir.to_path_buf(), below));
                }
            },
            Err(e) => {
                let gone = matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                );
                // Once, not per directory: past the watch limit every add fails. A
                // directory removed meanwhile is no problem.
                if !gone && !self.add_failed {
                    self.add_failed = true;
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory (more may follow, not logged); relying on periodic scans");
                }
                return false;
            }
        }
        if below != Some(0) {
            let subdirs = std::fs::read_dir(dir).into_iter().flatten().flatten();
            for entry in subdirs {
                if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                    self.watch_tree(&entry.path(), below.map(|d| d - 1));
                }
            }
        }
        true
    }

    /// Waits until inotify has something to say, without reading it; never returns
    /// without inotify.
    pub(crate) async fn changed(&self) {
        match &self.inotify {
            Some(inotify) => match inotify.readable().await {
                // The readiness is kept for [`Watch::take_events`].
                Ok(_guard) => {}
                Err(_) => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }

    /// Reads what inotify queued since the last call: sets `rescan` when files may have
    /// come or gone, and watches new directories. Cheap when nothing is queued; the
    /// reader calls it after `read_delay` and after every round that read something.
    pub(crate) fn take_events(&mut self) {
        let Some(inotify) = self.inotify.as_mut() else {
            return;
        };
        let mut new_dirs = Vec::new();
        let mut state = EventState {
            roots: &self.roots,
            targets: &mut self.targets,
            dirs: &mut self.dirs,
            new_dirs: &mut new_dirs,
            rescan: &mut self.rescan,
            stale: &mut self.stale,
        };
        match inotify.readable_mut().now_or_never() {
            // The reactor saw it readable: read through the guard, which clears the
            // readiness once the queue is empty.
            Some(Ok(mut guard)) => loop {
                match guard.try_io(|fd| fd.get_mut().read_events(&mut self.buffer)) {
                    Ok(Ok(events)) => events.for_each(|event| state.note(event)),
                    Ok(Err(e)) => {
                        guard.clear_ready();
                        state.read_failed(&e);
                        break;
                    }
                    Err(_would_block) => break,
                }
            },
            // The reactor has not looked since (the reader has been busy): read directly;
            // a readiness it notes later costs one empty read.
            _ => loop {
                match inotify.get_mut().read_events(&mut self.buffer) {
                    Ok(events) => events.for_each(|event| state.note(event)),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        state.read_failed(&e);
                        break;
                    }
                }
            },
        }
        for (dir, below) in new_dirs {
            self.watch_tree(&dir, below);
        }
    }
}

/// What reading events updates.
struct EventState<'a> {
    roots: &'a [Root],
    targets: &'a mut Vec<PathBuf>,
    dirs: &'a mut HashMap<WatchDescriptor, (PathBuf, Option<usize>)>,
    new_dirs: &'a mut Vec<(PathBuf, Option<usize>)>,
    rescan: &'a mut bool,
    stale: &'a mut bool,
}

impl EventState<'_> {
    fn note(&mut self, event: inotify::Event<&std::ffi::OsStr>) {
        if event.mask == EventMask::MODIFY {
            return;
        }
        *self.rescan = true;
        if event.mask.contains(EventMask::Q_OVERFLOW) {
            // Events were lost, new directories among them perhaps.
            *self.stale = true;
        }
        if event.mask.contains(EventMask::MOVE_SELF) {
            // A watched directory moved: its watch and those below follow it under paths
            // that are no longer true.
            *self.stale = true;
        }
        if event.mask.contains(EventMask::IGNORED) {
            // The directory is gone, and its watch with it; a root is watched again
            // when it reappears.
            if let Some((dir, _)) = self.dirs.remove(&event.wd) {
                if self.roots.iter().any(|root| root.dir == dir) {
                    *self.stale = true;
                }
                self.targets.retain(|target| *target != dir);
            }
            return;
        }
        let is_new_dir = event.mask.contains(EventMask::ISDIR)
            && event
                .mask
                .intersects(EventMask::CREATE | EventMask::MOVED_TO);
        if let (true, Some(name), Some((parent, below))) =
            (is_new_dir, event.name, self.dirs.get(&event.wd))
        {
            if *below != Some(0) {
                self.new_dirs
                    .push((parent.join(name), below.map(|d| d - 1)));
            }
        }
    }

    fn read_failed(&mut self, error: &std::io::Error) {
        tracing::warn!(%error, "reading inotify events failed; scanning");
        *self.rescan = true;
        *self.stale = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_to_symlink_targets_wake_once_their_directory_is_watched() {
        use std::time::Duration;
        let tmp = tempfile::tempdir().unwrap();
        let (links, data) = (tmp.path().join("links"), tmp.path().join("data"));
        std::fs::create_dir_all(&links).unwrap();
        std::fs::create_dir_all(&data).unwrap();
        let target = data.join("real.log");
        std::fs::write(&target, "").unwrap();
        std::os::unix::fs::symlink(&target, links.join("a.log")).unwrap();
        let mut watch = Watch::new();
        watch.ensure(&[static_prefix(&format!("{}/*.log", links.display()))]);
        watch.take_events();
        let append = || {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&target)
                .unwrap();
            file.write_all(b"{}\n").unwrap();
        };

        // The link's directory hears nothing of a write to the target.
        append();
        let quiet = tokio::time::timeout(Duration::from_millis(300), watch.changed()).await;
        assert!(
            quiet.is_err(),
            "a write to the target woke the link's watch"
        );

        watch.watch_target_dir(&data);
        append();
        tokio::time::timeout(Duration::from_secs(5), watch.changed())
            .await
            .expect("a write to the target wakes the reader");
    }

    #[test]
    fn static_prefixes() {
        let r = static_prefix("/var/log/pods/*/*/*.log");
        assert_eq!(
            r,
            Root {
                dir: "/var/log/pods".into(),
                depth: Some(3)
            }
        );
        let r = static_prefix("/var/log/containers/*.log");
        assert_eq!(
            r,
            Root {
                dir: "/var/log/containers".into(),
                depth: Some(1)
            }
        );
        let r = static_prefix("/data/**/app.log");
        assert_eq!(
            r,
            Root {
                dir: "/data".into(),
                depth: None
            }
        );
        let r = static_prefix("/var/log/app.log");
        assert_eq!(
            r,
            Root {
                dir: "/var/log".into(),
                depth: Some(1)
            }
        );
    }

    #[test]
    fn walk_matches_and_excludes() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let pod = base.join("pods/ns_p_u/c");
        std::fs::create_dir_all(&pod).unwrap();
        for f in ["0.log", "0.log.1", "0.log.2.gz", "notes.txt"] {
            std::fs::write(pod.join(f), "x\n").unwrap();
        }
        std::fs::create_dir_all(base.join("pods/ns_p_u/c/deeper")).unwrap();
        std::fs::write(base.join("pods/ns_p_u/c/deeper/1.log"), "x\n").unwrap();
        let include = vec![format!("{}/pods/*/*/*.log*", base.display())];
        let mut errors = Vec::new();
        let m = Matcher::new(&include, &["*.gz".to_owned()], &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let found = m.walk();
        assert_eq!(found, vec![pod.join("0.log"), pod.join("0.log.1")]);
    }

    #[test]
    fn symlinked_files_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.log");
        std::fs::write(&target, "x\n").unwrap();
        std::fs::create_dir(dir.path().join("containers")).unwrap();
        let link = dir.path().join("containers/a.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let include = vec![format!("{}/containers/*.log", dir.path().display())];
        let m = Matcher::new(&include, &[], &mut Vec::new());
        assert_eq!(m.walk(), vec![link]);
    }
}
