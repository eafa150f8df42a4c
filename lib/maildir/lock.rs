//! File locks: flock(2) on small lock files, released by the kernel when the
//! holder closes the file or dies, so a crashed session never leaves a stale
//! lock behind (unlike dot-locks).
//!
//! Two locks exist:
//! - each folder's `kmpromail-uidlist.lock`, held for the few milliseconds it
//!   takes to read and update the UID index ([`super::index`]);
//! - the user's `kmpromail-pop3.lock` at the Maildir's root, held by one POP3
//!   session for its whole life ([`MaildropLock`], RFC 1939's exclusive-access
//!   lock; a second session gets [`Error::Locked`], i.e. `[IN-USE]`).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::error::{io_err, Error, Result};

/// The POP3 maildrop lock file at the Maildir's root.
pub const POP3_LOCK: &str = "kmpromail-pop3.lock";

/// An exclusive flock, released on drop.
#[derive(Debug)]
pub struct Lock {
    _held: Flock<File>,
}

/// Waits for and takes an exclusive lock on `path` (created if missing).
pub fn exclusive(path: &Path) -> Result<Lock> {
    let mut file = open(path)?;
    loop {
        match Flock::lock(file, FlockArg::LockExclusive) {
            Ok(held) => return Ok(Lock { _held: held }),
            Err((f, Errno::EINTR)) => file = f,
            Err((_, e)) => return Err(Error::io("flock", path, e.into())),
        }
    }
}

/// Takes an exclusive lock on `path` if nobody holds it: `Ok(None)` if busy.
pub fn try_exclusive(path: &Path) -> Result<Option<Lock>> {
    let mut file = open(path)?;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(held) => return Ok(Some(Lock { _held: held })),
            Err((f, Errno::EINTR)) => file = f,
            Err((_, Errno::EWOULDBLOCK)) => return Ok(None),
            Err((_, e)) => return Err(Error::io("flock", path, e.into())),
        }
    }
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io_err("open", path))
}

/// One POP3 session's exclusive hold on a maildrop (RFC 1939 section 8:
/// "the server should acquire an exclusive-access lock on the maildrop").
/// Dropping it, closing the process or the process dying releases it.
#[derive(Debug)]
pub struct MaildropLock {
    _lock: Lock,
}

impl MaildropLock {
    /// Takes the maildrop lock of the Maildir at `root` without waiting:
    /// [`Error::Locked`] when another session holds it.
    pub fn acquire(root: &Path) -> Result<MaildropLock> {
        match try_exclusive(&root.join(POP3_LOCK))? {
            Some(lock) => Ok(MaildropLock { _lock: lock }),
            None => Err(Error::Locked),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_release() {
        let dir = tempfile::tempdir().unwrap();
        let first = MaildropLock::acquire(dir.path()).unwrap();
        assert!(matches!(
            MaildropLock::acquire(dir.path()),
            Err(Error::Locked)
        ));
        drop(first);
        let again = MaildropLock::acquire(dir.path()).unwrap();
        drop(again);
        let l = exclusive(&dir.path().join("x.lock")).unwrap();
        assert!(try_exclusive(&dir.path().join("x.lock")).unwrap().is_none());
        drop(l);
        assert!(try_exclusive(&dir.path().join("x.lock")).unwrap().is_some());
    }
}
