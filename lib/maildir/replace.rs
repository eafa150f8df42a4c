//! Replacing a small file whole: `maildirsize`, `subscriptions`,
//! `dovecot-keywords`, `kmpromail-uidvalidity` and the UID index rewrite.
//!
//! Readers never lock these files, so an update is a new file renamed over
//! the old one: a reader sees the old text or the new, never a mix. Many
//! writers run at once — the threads of one kmp-imapd, several kmp-imapd and
//! kmp-pop3d processes, kmp-local — so each writer needs a temporary name of
//! its own. A name shared by two writers lets one truncate the other's half
//! written file, or rename it away before the other's rename, which then
//! fails with `ENOENT` (issue 12: APPEND and LOGIN answered
//! `[UNAVAILABLE] .../maildirsize: rename: No such file or directory`).
//!
//! The temporary file goes into the Maildir's `tmp/` when the directory has
//! one, as the Maildir++ quota specification writes `maildirsize`: a crash
//! leaves the file where every Maildir program expects leftovers and
//! [`super::Folder::clean_tmp`] removes them. Its name is
//! `FILE.PID.N.RANDOM`: the process id tells processes apart, a counter the
//! threads and calls of one process, and 32 random bits the processes of
//! other hosts sharing the Maildir over NFS. The file is created with
//! `O_EXCL`, so should two names still meet, the second writer gets an error
//! and draws another name instead of sharing the file.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::{io_err, Error, Result};

/// Names tried before giving up (each one new: a clash is already a
/// one-in-four-billion event).
const TRIES: usize = 8;

/// Replaces `path` atomically with `data`: a new file of its own name,
/// written, fsynced, renamed over `path`. The directory is not synced: the
/// callers whose update must survive a crash sync it themselves.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let (mut f, tmp) = temp_file(path)?;
    let r = (|| {
        f.write_all(data).map_err(io_err("write", &tmp))?;
        crate::stats::fsync();
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        // A crash before the rename leaves `path` as it was and `tmp` for
        // clean_tmp; after it, the new text whole.
        fs::rename(&tmp, path).map_err(io_err("rename", path))
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r
}

/// Creates a new, empty file (mode 0600) that no other writer uses, on the
/// file system of `path`, for the caller to fill and rename over `path`.
pub(crate) fn temp_file(path: &Path) -> Result<(File, PathBuf)> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp_dir = dir.join("tmp");
    let mut last = None;
    for _ in 0..TRIES {
        let name = unique_name(&file);
        let tmp = tmp_dir.join(&name);
        match create_new(&tmp) {
            Ok(f) => return Ok((f, tmp)),
            // No tmp/ (a directory that is not a Maildir): beside the file.
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let beside = dir.join(format!("{name}.tmp"));
                match create_new(&beside) {
                    Ok(f) => return Ok((f, beside)),
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => last = Some((beside, e)),
                    Err(e) => return Err(Error::io("create", &beside, e)),
                }
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => last = Some((tmp, e)),
            Err(e) => return Err(Error::io("create", &tmp, e)),
        }
    }
    let (p, e) = last.unwrap_or_else(|| (dir.to_path_buf(), ErrorKind::AlreadyExists.into()));
    Err(Error::io("create", &p, e))
}

/// `FILE.PID.N.RANDOM`, never the same twice in this process.
fn unique_name(file: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let r: u32 = rand::random();
    format!("{file}.{}.{n}.{r:08x}", std::process::id())
}

fn create_new(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
mod tests;
