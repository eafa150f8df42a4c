//! The Maildir library's one error type.
//!
//! Every failure a caller can act on is its own variant. The rule callers rely
//! on: [`Error::is_temporary`] is true for anything that may succeed later
//! without a change to the request (disk full, read-only file system,
//! permissions, a lock held elsewhere, an I/O error), and the library
//! guarantees that such a failure never loses a message and never leaves a
//! partial file in `new/` or `cur/`. kmp-local maps temporary errors to a
//! deferral (4.x.x, retried), IMAP to `NO [SERVERBUG]`/`[INUSE]`, POP3 to `-ERR`.

use std::io;
use std::path::{Path, PathBuf};

/// What went wrong in a Maildir operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file system (or the user's file system quota) is full: ENOSPC, EDQUOT.
    #[error("{}: no space left on the file system", path.display())]
    NoSpace { path: PathBuf },
    /// The file system is mounted read-only: EROFS.
    #[error("{}: read-only file system", path.display())]
    ReadOnly { path: PathBuf },
    /// The process may not write there: EACCES, EPERM.
    #[error("{}: permission denied", path.display())]
    Permission { path: PathBuf },
    /// Any other I/O failure, with the operation and path it happened on.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A folder name that is invalid or could escape the Maildir
    /// (`..`, `/`, NUL, leading dot, empty component, too long, bad UTF-7).
    #[error("invalid folder name {0:?}")]
    BadName(String),
    /// The folder exists already (CREATE, RENAME target).
    #[error("folder {0:?} exists already")]
    Exists(String),
    /// No such folder.
    #[error("no folder {0:?}")]
    NoFolder(String),
    /// The operation is not allowed on this folder (deleting or renaming a
    /// folder into itself, deleting INBOX).
    #[error("{0}")]
    NotAllowed(String),
    /// No message with this UID in the folder (expunged meanwhile).
    #[error("no message with UID {0}")]
    NoMessage(u32),
    /// A keyword name that cannot be stored, or all 26 keyword letters are used.
    #[error("keyword {0:?} cannot be stored (invalid, or 26 keywords in use)")]
    Keyword(String),
    /// Another session holds the maildrop (POP3 `[IN-USE]`).
    #[error("the maildrop is in use by another session")]
    Locked,
}

impl Error {
    /// True when the same request may succeed later: never bounce on these.
    pub fn is_temporary(&self) -> bool {
        match self {
            Error::NoSpace { .. }
            | Error::ReadOnly { .. }
            | Error::Permission { .. }
            | Error::Io { .. }
            | Error::Locked => true,
            Error::BadName(_)
            | Error::Exists(_)
            | Error::NoFolder(_)
            | Error::NotAllowed(_)
            | Error::NoMessage(_)
            | Error::Keyword(_) => false,
        }
    }

    /// True when a file or directory was not there (ENOENT): typically a
    /// message expunged or renamed by another session meanwhile.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }

    /// A copy of this error for another caller of the same failed operation
    /// (I/O errors are not `Clone`): same variant and path, same text.
    pub fn same(&self) -> Error {
        match self {
            Error::NoSpace { path } => Error::NoSpace { path: path.clone() },
            Error::ReadOnly { path } => Error::ReadOnly { path: path.clone() },
            Error::Permission { path } => Error::Permission { path: path.clone() },
            Error::Io { op, path, source } => Error::Io {
                op,
                path: path.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            Error::BadName(s) => Error::BadName(s.clone()),
            Error::Exists(s) => Error::Exists(s.clone()),
            Error::NoFolder(s) => Error::NoFolder(s.clone()),
            Error::NotAllowed(s) => Error::NotAllowed(s.clone()),
            Error::NoMessage(u) => Error::NoMessage(*u),
            Error::Keyword(s) => Error::Keyword(s.clone()),
            Error::Locked => Error::Locked,
        }
    }

    /// Classifies an I/O error by its errno.
    pub fn io(op: &'static str, path: &Path, source: io::Error) -> Error {
        let path = path.to_path_buf();
        match source.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => Error::NoSpace { path },
            Some(libc::EROFS) => Error::ReadOnly { path },
            Some(libc::EACCES) | Some(libc::EPERM) => Error::Permission { path },
            _ => Error::Io { op, path, source },
        }
    }
}

/// The library's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// `map_err` helper: `fs::x(p).map_err(io_err("x", p))`.
pub(crate) fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |e| Error::io(op, path, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_classes_are_typed_and_temporary() {
        let p = Path::new("/x");
        let e = Error::io("write", p, io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(matches!(e, Error::NoSpace { .. }) && e.is_temporary());
        let e = Error::io("write", p, io::Error::from_raw_os_error(libc::EDQUOT));
        assert!(matches!(e, Error::NoSpace { .. }));
        let e = Error::io("open", p, io::Error::from_raw_os_error(libc::EROFS));
        assert!(matches!(e, Error::ReadOnly { .. }) && e.is_temporary());
        let e = Error::io("open", p, io::Error::from_raw_os_error(libc::EACCES));
        assert!(matches!(e, Error::Permission { .. }) && e.is_temporary());
        let e = Error::io("open", p, io::Error::from_raw_os_error(libc::ENOENT));
        assert!(e.is_not_found() && e.is_temporary());
        assert!(!Error::BadName("..".into()).is_temporary());
    }
}
