//! The database file under an embedded (SQLite) pool, and whether it is still the one
//! the pool opened.
//!
//! A connection keeps its file open by descriptor, so if the file is deleted or
//! replaced (a cleanup job, a restore that copies a backup over it) the connection
//! goes on reading and writing the old, now nameless file: every write succeeds and
//! is lost. [`FileWatch::check`] runs on every checkout: it compares the file's
//! identity (device and inode on Unix, existence elsewhere) with the one first seen.
//!
//! Where the file's path can be watched (Linux, module [`inotify`]), a check `stat`s
//! the path only after something on it changed, and at least once per
//! [`RESTAT_EVERY`]; a quiet check costs one `read` that finds no event. Elsewhere, or
//! when no watch can be placed, every check `stat`s the path.

use std::path::PathBuf;
use std::sync::OnceLock;
#[cfg(target_os = "linux")]
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(target_os = "linux")]
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
mod inotify;

/// The longest a watched pool goes without `stat`ing its file, for the changes inotify
/// cannot see (a mount over the path, another machine's change on a network file
/// system).
#[cfg(target_os = "linux")]
pub(crate) const RESTAT_EVERY: Duration = Duration::from_secs(1);

/// What identifies a file: device and inode on Unix; elsewhere only that it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    #[cfg(unix)]
    device: u64,
    #[cfg(unix)]
    inode: u64,
}

impl FileId {
    fn of(metadata: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Self {
                device: metadata.dev(),
                inode: metadata.ino(),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = metadata;
            Self {}
        }
    }
}

/// A pool's database file and the identity it had when the pool first used it.
#[derive(Debug)]
pub(crate) struct FileWatch {
    /// Made absolute when the pool is made, so a later change of the working directory
    /// cannot point the check at another file.
    path: PathBuf,
    seen: OnceLock<FileId>,
    /// Change notices for the path; `None` where there are none, and every check
    /// `stat`s.
    #[cfg(target_os = "linux")]
    notices: Option<inotify::Subscription>,
    #[cfg(target_os = "linux")]
    born: Instant,
    /// When the next `stat` is due regardless of notices, in nanoseconds after `born`.
    #[cfg(target_os = "linux")]
    restat_at: AtomicU64,
}

impl FileWatch {
    /// Watches `path`; its identity is taken at the first [`check`](Self::check).
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path: std::path::absolute(&path).unwrap_or(path),
            seen: OnceLock::new(),
            #[cfg(target_os = "linux")]
            notices: inotify::Subscription::new(),
            #[cfg(target_os = "linux")]
            born: Instant::now(),
            #[cfg(target_os = "linux")]
            restat_at: AtomicU64::new(0),
        }
    }

    /// `Ok` while the file is the one first seen; otherwise what happened to it, as
    /// the message of an `Unavailable` error.
    pub(crate) fn check(&self) -> Result<(), String> {
        #[cfg(target_os = "linux")]
        if let Some(notices) = &self.notices {
            let due = self.restat_due();
            if notices.quiet() {
                if !due {
                    return Ok(());
                }
                let result = self.compare();
                if result.is_err() {
                    notices.mark_stale();
                }
                return result;
            }
            // Something changed on the path: watch it as it is now, then look.
            let began = notices.arm(&self.path);
            let result = self.compare();
            if let (Ok(()), Some(began)) = (&result, began) {
                notices.confirm(began);
            }
            return result;
        }
        self.compare()
    }

    /// Whether the once-a-[`RESTAT_EVERY`] `stat` is due; if so, the next one is
    /// scheduled.
    #[cfg(target_os = "linux")]
    fn restat_due(&self) -> bool {
        let now = u64::try_from(self.born.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if now < self.restat_at.load(Ordering::Relaxed) {
            return false;
        }
        let every = u64::try_from(RESTAT_EVERY.as_nanos()).unwrap_or(u64::MAX);
        self.restat_at
            .store(now.saturating_add(every), Ordering::Relaxed);
        true
    }

    /// Compares the file's identity now with the one first seen.
    fn compare(&self) -> Result<(), String> {
        let now = std::fs::metadata(&self.path).ok().map(|m| FileId::of(&m));
        let what = match (self.seen.get(), now) {
            (Some(seen), Some(now)) if *seen == now => return Ok(()),
            (None, Some(now)) => {
                let first = *self.seen.get_or_init(|| now);
                if first == now {
                    return Ok(());
                }
                "replaced"
            }
            (_, None) => "removed",
            (Some(_), Some(_)) => "replaced",
        };
        Err(format!(
            "the database file {} was {what} while the pool had it open, so writes \
             would be lost; restore the file, or reopen the store to use the new one",
            self.path.display()
        ))
    }
}

#[cfg(test)]
mod tests;
