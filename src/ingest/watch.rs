//! Wake-ups for a followed file: a notify watch on its parent directory (a
//! watch on the file itself goes silent once the file is renamed away), and
//! nothing when that fails, the follower then relying on its periodic poll.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::file_id::{FileId, file_id};

/// Why the follower thread wakes up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Something happened to the file (or its directory).
    Changed,
    Stop,
}

pub(crate) struct DirWatch {
    wake: Sender<Wake>,
    watcher: Option<RecommendedWatcher>,
    /// The directory, the name in it (None: any) and the directory's
    /// identity the watch (or the failed try) was for.
    target: Option<(PathBuf, Option<OsString>, FileId)>,
}

impl DirWatch {
    pub(crate) fn new(wake: Sender<Wake>) -> Self {
        DirWatch {
            wake,
            watcher: None,
            target: None,
        }
    }

    /// Watches the directory of `file`, again if that directory was
    /// replaced. A failure is tried again only once the directory changes.
    pub(crate) fn ensure(&mut self, file: &Path) {
        let dir = match file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let Some(name) = file.file_name().map(|n| n.to_os_string()) else {
            return;
        };
        self.ensure_target(dir, Some(name));
    }

    /// Watches a directory for any change to the files in it.
    pub(crate) fn ensure_dir(&mut self, dir: &Path) {
        self.ensure_target(dir.to_path_buf(), None);
    }

    fn ensure_target(&mut self, dir: PathBuf, name: Option<OsString>) {
        let Some(id) = fs::metadata(&dir).ok().map(|m| file_id(&m)) else {
            // No directory, nothing to watch: poll until it appears.
            self.watcher = None;
            self.target = None;
            return;
        };
        let target = (dir, name, id);
        if self.target.as_ref() == Some(&target) {
            return;
        }
        self.watcher = self.watch(&target.0, target.1.clone());
        self.target = Some(target);
    }

    fn watch(&self, dir: &Path, name: Option<OsString>) -> Option<RecommendedWatcher> {
        let wake = self.wake.clone();
        let handler = move |event: notify::Result<notify::Event>| {
            let relevant = match &event {
                Ok(event) => {
                    event.paths.is_empty()
                        || event.paths.iter().any(|p| match &name {
                            Some(name) => p.file_name() == Some(name.as_os_str()),
                            None => true,
                        })
                }
                Err(_) => true,
            };
            if relevant {
                let _ = wake.send(Wake::Changed);
            }
        };
        let mut watcher = notify::recommended_watcher(handler).ok()?;
        watcher.watch(dir, RecursiveMode::NonRecursive).ok()?;
        Some(watcher)
    }
}
