//! Change notices for a database file's path on Linux, so a pool need not `stat` the
//! file on every checkout to know it is still the one it opened.
//!
//! One inotify instance serves every pool in the process (a user gets 128 instances,
//! shared with every other program). A [`Subscription`] watches every inode its path
//! is resolved through: the file, each directory above it, and each symbolic link on
//! the way (the link itself, then the chain of its target). The mask is `ATTRIB` (a
//! link count change: the file unlinked, or another file renamed over it),
//! `MOVE_SELF` and `DELETE_SELF`, so SQLite's own writes and its `-wal`/`-shm` files
//! raise nothing. An event on any watched inode advances the epoch of the
//! subscriptions on it. A subscription is quiet while its epoch is the one its last
//! good `stat` confirmed; otherwise a check watches the path's chain again and then
//! `stat`s the path, as every check did before, and only a `stat` that finds the file
//! unchanged confirms the epoch it began at. Until then every concurrent check `stat`s
//! too, so none passes on the strength of watches another check has just placed.
//!
//! Exactness: the queue is drained by whoever checks, under one lock, with a read that
//! does not block. The kernel queues an event before the call that caused it (an
//! `unlink`, a `rename`) returns, so every change made before a check began is seen by
//! that check, as it was with a `stat` per checkout. The price of a quiet check is that
//! one `read` finding nothing, about 0.3 µs against 0.9-1.7 µs for the `stat`.
//!
//! What inotify cannot see (a mount placed over a directory of the path, a change made
//! by another machine on a network file system) is caught by a `stat` at least once
//! per [`RESTAT_EVERY`](super::RESTAT_EVERY) on each pool.

use std::collections::HashMap;
use std::io;
use std::mem::MaybeUninit;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use rustix::fd::OwnedFd;
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};

/// Symbolic links followed while listing a path's chain, as the kernel's own limit.
const MAX_LINKS: u32 = 40;

/// What every watch asks for; see the module documentation.
const MASK: WatchFlags = WatchFlags::ATTRIB
    .union(WatchFlags::MOVE_SELF)
    .union(WatchFlags::DELETE_SELF);

/// The process's inotify instance and, per watch descriptor, the epochs of the
/// subscriptions that watch its inode, by subscription. Thousands of pools (a database
/// per tenant) may share a directory's watch, so joining and leaving it is a map
/// operation, not a search.
struct Watcher {
    fd: OwnedFd,
    watches: HashMap<i32, HashMap<u64, Arc<AtomicU64>>>,
}

/// The shared watcher, made on first use; `None` when inotify is unavailable (the
/// instance limit is reached, or the kernel lacks it), and pools `stat` instead.
fn watcher() -> Option<MutexGuard<'static, Watcher>> {
    static WATCHER: OnceLock<Option<Mutex<Watcher>>> = OnceLock::new();
    let watcher = WATCHER.get_or_init(|| {
        match inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK) {
            Ok(fd) => Some(Mutex::new(Watcher {
                fd,
                watches: HashMap::new(),
            })),
            Err(error) => {
                tracing::debug!(%error, "no inotify instance; SQLite pools stat their file on every checkout");
                None
            }
        }
    });
    // A panic while the lock was held left no half-made state worth refusing: at worst
    // an epoch advanced or a watch left placed, which costs a `stat` or a watch.
    watcher.as_ref().map(|lock| {
        lock.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    })
}

impl Watcher {
    /// Reads every queued event and advances the epochs of the subscriptions they
    /// concern.
    fn drain(&mut self) {
        let mut buffer = [MaybeUninit::<u8>::uninit(); 4096];
        let mut events = inotify::Reader::new(&self.fd, &mut buffer);
        loop {
            let (wd, flags) = match events.next() {
                Ok(event) => (event.wd(), event.events()),
                Err(rustix::io::Errno::AGAIN) => return,
                Err(rustix::io::Errno::INTR) => continue,
                Err(error) => {
                    tracing::warn!(%error, "reading inotify events failed; SQLite pools will stat their files");
                    self.mark_all();
                    return;
                }
            };
            if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                // Events were lost, so no watch can be trusted.
                self.mark_all();
            } else if flags.contains(ReadFlags::IGNORED) {
                // The kernel dropped the watch (its inode is gone, or we removed it).
                if let Some(epochs) = self.watches.remove(&wd) {
                    epochs.values().for_each(|e| mark(e));
                }
            } else if let Some(epochs) = self.watches.get(&wd) {
                epochs.values().for_each(|e| mark(e));
            }
        }
    }

    /// Makes every subscription `stat` at its next check.
    fn mark_all(&self) {
        self.watches
            .values()
            .flat_map(HashMap::values)
            .for_each(|e| mark(e));
    }

    /// Puts subscription `id` on the watch `wd`.
    fn register(&mut self, wd: i32, id: u64, epoch: &Arc<AtomicU64>) {
        self.watches
            .entry(wd)
            .or_default()
            .insert(id, Arc::clone(epoch));
    }

    /// Takes subscription `id` off the watch `wd`, and removes the watch when nobody is
    /// left on it.
    fn unregister(&mut self, wd: i32, id: u64) {
        let Some(on_it) = self.watches.get_mut(&wd) else {
            return; // the kernel already dropped it
        };
        on_it.remove(&id);
        if on_it.is_empty() {
            self.watches.remove(&wd);
            // It may be gone already (its inode deleted); either way it is not ours now.
            let _ = inotify::remove_watch(&self.fd, wd);
        }
    }
}

/// Something changed on `epoch`'s path: its subscription is no longer quiet.
fn mark(epoch: &AtomicU64) {
    epoch.fetch_add(1, Ordering::AcqRel);
}

/// One pool's watches on its database file's path.
#[derive(Debug)]
pub(super) struct Subscription {
    /// Tells this subscription from the others on a watch.
    id: u64,
    /// Advanced by every event on a watched inode.
    epoch: Arc<AtomicU64>,
    /// The epoch a `stat` last found the file unchanged at, with every watch placed.
    confirmed: AtomicU64,
    /// The watch descriptors this subscription is on.
    wds: Mutex<Vec<i32>>,
}

impl Subscription {
    /// A subscription that watches nothing yet (not quiet, so the first check arms it),
    /// or `None` when inotify is unavailable.
    pub(super) fn new() -> Option<Self> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        watcher().map(|_| Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            epoch: Arc::new(AtomicU64::new(1)),
            confirmed: AtomicU64::new(0),
            wds: Mutex::new(Vec::new()),
        })
    }

    /// `true` when no watched inode changed since a `stat` last
    /// [confirmed](Self::confirm) the file: every event queued before this call is
    /// read first.
    pub(super) fn quiet(&self) -> bool {
        let quiet = || self.epoch.load(Ordering::Acquire) == self.confirmed.load(Ordering::Acquire);
        if !quiet() {
            return false;
        }
        let Some(mut watcher) = watcher() else {
            return false;
        };
        watcher.drain();
        quiet()
    }

    /// Watches the inodes `path` resolves through now, in place of the ones watched
    /// before, and returns the epoch this began at, for [`confirm`](Self::confirm)
    /// once a `stat` afterwards finds the file unchanged: a change made while this
    /// runs is seen by that `stat` or advances the epoch. `None` when a watch cannot
    /// be placed (the path is gone, or the watch limit `fs.inotify.max_user_watches`
    /// is reached): nothing can be confirmed, and checks go on `stat`ing.
    pub(super) fn arm(&self, path: &Path) -> Option<u64> {
        let mut watcher = watcher()?;
        watcher.drain();
        let began = self.epoch.load(Ordering::Acquire);
        let mut complete = true;
        let mut placed = Vec::new();
        let mut chain = Vec::new();
        let listed = links_and_dirs(path, 0, &mut chain);
        for (inode, follow) in &chain {
            let flags = if *follow {
                MASK
            } else {
                MASK | WatchFlags::DONT_FOLLOW
            };
            match inotify::add_watch(&watcher.fd, inode.as_path(), flags) {
                Ok(wd) if !placed.contains(&wd) => placed.push(wd),
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(%error, path = %inode.display(), "cannot watch; stat on every checkout until it can");
                    complete = false;
                }
            }
        }
        let mut wds = self
            .wds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for &wd in placed.iter().filter(|wd| !wds.contains(wd)) {
            watcher.register(wd, self.id, &self.epoch);
        }
        for &wd in wds.iter().filter(|wd| !placed.contains(wd)) {
            watcher.unregister(wd, self.id);
        }
        *wds = placed;
        (complete && listed.is_ok()).then_some(began)
    }

    /// A `stat` after [`arm`](Self::arm) returned `began` found the file unchanged:
    /// quiet from here, unless an event came since.
    pub(super) fn confirm(&self, began: u64) {
        self.confirmed.fetch_max(began, Ordering::AcqRel);
    }

    /// Makes the next check `stat` again.
    pub(super) fn mark_stale(&self) {
        mark(&self.epoch);
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let wds = std::mem::take(
            self.wds
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if let Some(mut watcher) = watcher() {
            for wd in wds {
                watcher.unregister(wd, self.id);
            }
        }
    }
}

/// Every inode the resolution of `path` passes through, each with whether to follow
/// it: directories and the file are watched themselves (followed), a symbolic link is
/// watched as a link (not followed) and then its target's chain is listed too.
/// `links` counts the links followed so far.
fn links_and_dirs(path: &Path, links: u32, out: &mut Vec<(PathBuf, bool)>) -> io::Result<()> {
    let mut prefix = PathBuf::new();
    for component in path.components() {
        prefix.push(component);
        if !matches!(component, Component::Normal(_)) {
            continue; // the root, `.` and `..` name no new inode
        }
        let is_link = std::fs::symlink_metadata(&prefix)?.file_type().is_symlink();
        out.push((prefix.clone(), !is_link));
        if is_link {
            if links >= MAX_LINKS {
                return Err(io::Error::other("too many levels of symbolic links"));
            }
            let target = std::fs::read_link(&prefix)?;
            let base = prefix.parent().unwrap_or(Path::new("/")).join(target);
            links_and_dirs(&base, links + 1, out)?;
        }
    }
    Ok(())
}
