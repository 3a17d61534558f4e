//! The database file under an embedded (SQLite) pool, and whether it is still the one
//! the pool opened.
//!
//! A connection keeps its file open by descriptor, so if the file is deleted or
//! replaced (a cleanup job, a restore that copies a backup over it) the connection
//! goes on reading and writing the old, now nameless file: every write succeeds and
//! is lost. [`FileWatch::check`] runs on every checkout and costs one `stat` call:
//! it compares the file's identity (device and inode on Unix, existence elsewhere)
//! with the one first seen.

use std::path::PathBuf;
use std::sync::OnceLock;

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
    path: PathBuf,
    seen: OnceLock<FileId>,
}

impl FileWatch {
    /// Watches `path`; its identity is taken at the first [`check`](Self::check).
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            seen: OnceLock::new(),
        }
    }

    /// `Ok` while the file is the one first seen; otherwise what happened to it, as
    /// the message of an `Unavailable` error.
    pub(crate) fn check(&self) -> Result<(), String> {
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
