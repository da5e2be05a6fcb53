//! Finding files: glob matching, walking the globs' static prefixes, and inotify.
//!
//! Each include glob is split into a static prefix directory (`/var/log/pods` for
//! `/var/log/pods/*/*/*.log`) and the rest. A scan walks every prefix directory (only as
//! deep as the glob can reach) and keeps the paths the include set matches and the exclude
//! set does not. inotify watches the prefixes recursively: a create, delete or rename asks
//! for a scan soon; a write only wakes the reader.

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use notify::event::{EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;

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

/// What the inotify thread tells the source.
#[derive(Debug, Default)]
pub(crate) struct Signals {
    /// A file may have been created, deleted or renamed (or events were lost): scan.
    pub rescan: AtomicBool,
    /// Something changed: wake the reader.
    pub wake: Notify,
}

/// The inotify watches on the roots; roots that do not exist yet are retried.
pub(crate) struct Watch {
    watcher: Option<RecommendedWatcher>,
    watched: Vec<PathBuf>,
    signals: Arc<Signals>,
}

impl Watch {
    /// Starts the watcher thread; without inotify the periodic scan still finds files.
    pub(crate) fn new(signals: Arc<Signals>) -> Self {
        let handler_signals = signals.clone();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let structural = match res {
                Ok(event) => !matches!(
                    event.kind,
                    EventKind::Access(_)
                        | EventKind::Modify(ModifyKind::Data(_))
                        | EventKind::Modify(ModifyKind::Metadata(_))
                ),
                Err(_) => true,
            };
            if structural {
                handler_signals.rescan.store(true, Ordering::Release);
            }
            handler_signals.wake.notify_one();
        });
        let watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "inotify unavailable; files are found by periodic scans only");
                None
            }
        };
        Watch {
            watcher,
            watched: Vec::new(),
            signals,
        }
    }

    /// Watches every root not watched yet that exists now.
    pub(crate) fn ensure(&mut self, roots: &[Root]) {
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        for root in roots {
            if self.watched.iter().any(|w| root.dir.starts_with(w)) || !root.dir.is_dir() {
                continue;
            }
            match watcher.watch(&root.dir, RecursiveMode::Recursive) {
                Ok(()) => {
                    self.watched.push(root.dir.clone());
                    // Files may have appeared before the watch was in place.
                    self.signals.rescan.store(true, Ordering::Release);
                }
                Err(e) => {
                    tracing::warn!(dir = %root.dir.display(), error = %e, "cannot watch directory; relying on periodic scans");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
