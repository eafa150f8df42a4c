//! The MODSEQ ceiling of a folder: `kmpromail-modseq` beside the UID index,
//! which lets flag changes and expunges skip the fsync of their index record.
//!
//! What a crash may lose, record by record:
//!
//! - `+` (a UID given to a message): never. A UID a client saw and a crash
//!   lost would be given again to another message under the same
//!   UIDVALIDITY, so every commit holding one is fsynced before the UID is
//!   reported (APPENDUID, a FETCH UID).
//! - `=` (a file renamed: flags, `new/` to `cur/`) and `-` (a file
//!   unlinked): the file names are the truth, and a sync after the crash
//!   finds the rename or the unlink again (the directories' times no longer
//!   match the sync stamp, so they are read). What such a record must not
//!   lose is its MODSEQ: given again to another change, a CONDSTORE client
//!   that saw it would miss that change (`CHANGEDSINCE`, QRESYNC).
//!
//! So MODSEQs are given out under a ceiling kept in this file,
//! `<boot id> <ceiling>`, written durably (fsync, rename, fsync of the
//! folder) before any unsynced record may carry a MODSEQ above the
//! ceiling before it: a writer whose records would go past the ceiling it
//! knows fsyncs that commit and raises the ceiling [`STEP`] above the
//! highest MODSEQ. Records written while the ceiling covers them are not
//! fsynced.
//!
//! Only a crash of the machine loses written data (a process that dies
//! leaves its writes in the page cache), and a machine that comes back has
//! a new boot id (`/proc/sys/kernel/random/boot_id`). A load of the index
//! that finds the ceiling of another boot takes HIGHESTMODSEQ up to it, so
//! every MODSEQ given from then on is above any a lost record carried; the
//! first writer of the new boot that wants to skip an fsync writes a
//! ceiling of its own first. The ceiling only grows within a boot (a writer
//! raises it under the folder's lock, from what the file holds), so an
//! index that knows an older, lower value of this boot is still covered.
//!
//! Without a boot id (no `/proc`), every record is fsynced as before, and
//! a missing or unreadable file means that every record was (no unsynced
//! record is written before the file is).

use std::path::Path;
use std::sync::OnceLock;

use super::super::error::{io_err, Error, Result};

/// The ceiling file in each folder.
pub const CEILING_FILE: &str = "kmpromail-modseq";

/// How far above the highest MODSEQ a ceiling is raised: one durable write
/// of this file per this many flag changes and expunges.
pub const STEP: u64 = 4096;

/// This boot's id, or None where the system gives none.
pub fn boot_id() -> Option<String> {
    #[cfg(test)]
    if let Some(b) = BOOT.with(|b| b.borrow().clone()) {
        return Some(b);
    }
    static ID: OnceLock<Option<String>> = OnceLock::new();
    ID.get_or_init(|| {
        let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let id = id.trim();
        (!id.is_empty() && !id.contains(char::is_whitespace)).then(|| id.to_string())
    })
    .clone()
}

#[cfg(test)]
thread_local! {
    /// A boot id for this thread's tests (a "reboot" is a new value).
    pub(crate) static BOOT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The file's boot id and ceiling; None when missing or damaged.
fn read(dir: &Path) -> Option<(String, u64)> {
    let text = std::fs::read_to_string(dir.join(CEILING_FILE)).ok()?;
    let (boot, value) = text.trim_end().split_once(' ')?;
    Some((boot.to_string(), value.parse().ok()?))
}

/// What a load of the index learns from the file: the least HIGHESTMODSEQ
/// may be (the ceiling of an earlier boot, or 0), and this boot's ceiling,
/// under which records need no fsync (None: every record is fsynced until
/// [`raise`] writes one).
pub fn on_load(dir: &Path) -> (u64, Option<u64>) {
    match (read(dir), boot_id()) {
        (Some((b, c)), Some(now)) if b == now => (0, Some(c)),
        (Some((_, c)), _) => (c, None),
        (None, _) => (0, None),
    }
}

/// Makes the ceiling of this boot at least `highest` + [`STEP`], durably,
/// and returns it (or the file's own, when it is already above `highest`:
/// another writer raised it). The caller holds the folder's index lock.
pub fn raise(dir: &Path, highest: u64) -> Result<u64> {
    let Some(boot) = boot_id() else {
        return Err(Error::io(
            "read",
            Path::new("/proc/sys/kernel/random/boot_id"),
            std::io::ErrorKind::NotFound.into(),
        ));
    };
    let now = read(dir).filter(|(b, _)| *b == boot).map_or(0, |(_, c)| c);
    if now > highest {
        return Ok(now);
    }
    let value = highest.saturating_add(STEP);
    let path = dir.join(CEILING_FILE);
    super::super::write_atomic(&path, format!("{boot} {value}\n").as_bytes())?;
    // The rename too: the ceiling must be on disk before a record above the
    // old one is written unsynced.
    crate::sys::fsync_dir(dir).map_err(io_err("fsync", dir))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ceiling_of_this_boot_covers_and_one_of_another_raises_the_floor() {
        let d = tempfile::tempdir().unwrap();
        BOOT.with(|b| *b.borrow_mut() = Some("boot-a".into()));
        assert_eq!(on_load(d.path()), (0, None));
        assert_eq!(raise(d.path(), 10).unwrap(), 10 + STEP);
        assert_eq!(on_load(d.path()), (0, Some(10 + STEP)));
        // Raised by another writer already: taken as it is.
        assert_eq!(raise(d.path(), 20).unwrap(), 10 + STEP);
        // Never lowered.
        assert_eq!(raise(d.path(), 10 + STEP).unwrap(), 10 + 2 * STEP);
        BOOT.with(|b| *b.borrow_mut() = Some("boot-b".into()));
        assert_eq!(on_load(d.path()), (10 + 2 * STEP, None));
        assert_eq!(raise(d.path(), 10 + 2 * STEP).unwrap(), 10 + 3 * STEP);
        assert_eq!(on_load(d.path()), (0, Some(10 + 3 * STEP)));
        std::fs::write(d.path().join(CEILING_FILE), "garbage").unwrap();
        assert_eq!(on_load(d.path()), (0, None));
    }
}
