//! The file check against what can happen to a database file and the path to it. Each
//! change is checked right after it is made, with no wait: the check must see it. The
//! file is held open throughout, as a pool's connections hold it, so an unlinked file
//! lives on (and raises no `DELETE_SELF`), as it does under a running pool.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::fs;
use std::path::Path;

use super::FileWatch;

/// A watch on `path`, checked once, and the file held open as a connection holds it.
fn watched(path: &Path) -> (FileWatch, fs::File) {
    let held = fs::File::open(path).unwrap();
    let watch = FileWatch::new(path.to_owned());
    assert_eq!(watch.check(), Ok(()), "first check of {}", path.display());
    (watch, held)
}

fn refused(watch: &FileWatch, what: &str) {
    // Seen by its event, not only by the `stat` that is due once a second anyway.
    #[cfg(target_os = "linux")]
    if let Some(notices) = &watch.notices {
        assert!(!notices.quiet(), "no event for a change to be {what}");
    }
    let message = watch.check().expect_err("the change was not seen");
    assert!(message.contains(what), "expected {what:?}: {message}");
    // And it stays refused: a failed check does not arm a quiet path.
    assert!(watch.check().is_err(), "refused only once");
}

/// Whether a check now would pass without a `stat`: no event read, no `stat` due.
#[cfg(target_os = "linux")]
fn skips_stat(watch: &FileWatch) -> bool {
    use std::sync::atomic::Ordering;
    let now = u64::try_from(watch.born.elapsed().as_nanos()).unwrap();
    watch.notices.as_ref().unwrap().quiet() && now < watch.restat_at.load(Ordering::Relaxed)
}

/// Where notices work, a check after a quiet time reads them instead of `stat`ing.
#[cfg(target_os = "linux")]
#[test]
fn a_quiet_file_is_not_stated_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    fs::write(&path, b"x").unwrap();
    let (watch, _held) = watched(&path);
    assert!(watch.notices.is_some(), "inotify is available on Linux");
    for _ in 0..100 {
        assert!(skips_stat(&watch), "a quiet check took the slow path");
    }
    // Writing to the file is no change of identity and raises no event.
    fs::write(&path, b"more").unwrap();
    assert!(skips_stat(&watch), "a write made the check stat");
    // A change of metadata raises one: the check stats, finds the same file, and is
    // quiet again afterwards.
    let file = fs::File::open(&path).unwrap();
    file.set_modified(std::time::SystemTime::UNIX_EPOCH)
        .unwrap();
    assert_eq!(watch.check(), Ok(()));
    assert!(skips_stat(&watch), "not quiet again after a harmless event");
}

#[test]
fn a_removed_file_is_refused_at_once_and_a_restored_one_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let aside = dir.path().join("aside.db");
    fs::write(&path, b"x").unwrap();
    let (watch, _held) = watched(&path);
    fs::rename(&path, &aside).unwrap();
    refused(&watch, "removed");
    fs::rename(&aside, &path).unwrap();
    assert_eq!(watch.check(), Ok(()), "the same file, moved back");
    fs::remove_file(&path).unwrap();
    refused(&watch, "removed");
}

/// A watched `keys.db` that a copy was renamed over after the watch's first check (the
/// copy made before, so the rename is the only change the watch can see).
fn watched_then_replaced() -> (tempfile::TempDir, FileWatch, fs::File) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let copy = dir.path().join("copy.db");
    fs::write(&path, b"x").unwrap();
    fs::copy(&path, &copy).unwrap();
    let (watch, held) = watched(&path);
    fs::rename(&copy, &path).unwrap();
    (dir, watch, held)
}

#[test]
fn a_file_renamed_over_the_database_is_refused() {
    let (_dir, watch, _held) = watched_then_replaced();
    refused(&watch, "replaced");
}

#[test]
fn a_moved_directory_above_the_file_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let deeper = data.join("app");
    fs::create_dir_all(&deeper).unwrap();
    let path = deeper.join("keys.db");
    fs::write(&path, b"x").unwrap();
    let (watch, _held) = watched(&path);
    let moved = dir.path().join("moved");
    fs::rename(&data, &moved).unwrap();
    refused(&watch, "removed");
    // Another directory put where the old one was, with a file of the same name.
    fs::create_dir_all(&deeper).unwrap();
    fs::write(&path, b"x").unwrap();
    refused(&watch, "replaced");
    // The original back in place.
    fs::remove_dir_all(&data).unwrap();
    fs::rename(&moved, &data).unwrap();
    assert_eq!(watch.check(), Ok(()));
    // And watched again where it now is.
    fs::rename(&deeper, data.join("elsewhere")).unwrap();
    refused(&watch, "removed");
}

#[cfg(unix)]
#[test]
fn a_symbolic_link_pointed_elsewhere_is_seen() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    let second = dir.path().join("second");
    fs::create_dir_all(&first).unwrap();
    fs::create_dir_all(&second).unwrap();
    fs::write(first.join("keys.db"), b"x").unwrap();
    fs::write(second.join("keys.db"), b"x").unwrap();
    // current -> first, and keys.db -> current/keys.db: two links on the way.
    symlink(&first, dir.path().join("current")).unwrap();
    symlink("current/keys.db", dir.path().join("keys.db")).unwrap();
    let (watch, _held) = watched(&dir.path().join("keys.db"));

    // Pointing the directory link elsewhere, atomically, as deploy tools do.
    symlink(&second, dir.path().join("next")).unwrap();
    fs::rename(dir.path().join("next"), dir.path().join("current")).unwrap();
    refused(&watch, "replaced");
    symlink(&first, dir.path().join("next")).unwrap();
    fs::rename(dir.path().join("next"), dir.path().join("current")).unwrap();
    assert_eq!(watch.check(), Ok(()), "pointed back");

    // The link's target's own directory moved.
    fs::rename(&first, dir.path().join("first-moved")).unwrap();
    refused(&watch, "removed");
}

/// Two pools on one file share watches; dropping one leaves the other watching.
#[test]
fn pools_on_one_file_keep_their_own_watches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    fs::write(&path, b"x").unwrap();
    let (one, _one) = watched(&path);
    let (other, _other) = watched(&path);
    drop(one);
    assert_eq!(other.check(), Ok(()));
    fs::remove_file(&path).unwrap();
    refused(&other, "removed");
}

/// Many pools, made and dropped, leave no watches behind and keep working.
#[test]
fn watches_are_released() {
    let dir = tempfile::tempdir().unwrap();
    for n in 0..200 {
        let path = dir.path().join(format!("{n}.db"));
        fs::write(&path, b"x").unwrap();
        let (watch, _held) = watched(&path);
        fs::remove_file(&path).unwrap();
        refused(&watch, "removed");
    }
}

/// Once a second a check `stat`s even when no event came, for the changes inotify
/// cannot see (a mount over the path, a network file system).
#[cfg(target_os = "linux")]
#[test]
fn a_stat_is_due_once_a_second_without_events() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    fs::write(&path, b"x").unwrap();
    let (watch, _held) = watched(&path);
    assert!(skips_stat(&watch));
    let due = watch.restat_at.load(Ordering::Relaxed);
    let now = u64::try_from(watch.born.elapsed().as_nanos()).unwrap();
    let every = u64::try_from(super::RESTAT_EVERY.as_nanos()).unwrap();
    assert!(
        due > now && due <= now + every,
        "next stat at {due} ns, now {now} ns"
    );
    watch.restat_at.store(0, Ordering::Relaxed);
    assert!(watch.restat_due(), "a due stat was skipped");
    assert!(!watch.restat_due(), "the next one was not put a second on");
    assert_eq!(watch.check(), Ok(()));
    assert!(skips_stat(&watch), "quiet again after the stat");
}

/// A check that begins while another is between reading an event and `stat`ing must not
/// pass on the strength of the other's re-armed watches: the change came before it began.
#[cfg(target_os = "linux")]
#[test]
fn a_check_racing_a_rearm_still_sees_the_change() {
    let (_dir, watch, _held) = watched_then_replaced();
    // One check reads the event and re-arms the watches, and has not `stat`ed yet...
    let notices = watch.notices.as_ref().unwrap();
    assert!(!notices.quiet());
    let _ = notices.arm(&watch.path);
    // ...when another begins.
    refused(&watch, "replaced");
}
