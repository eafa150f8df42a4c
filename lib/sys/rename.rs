//! Giving a file a new name without ever replacing another: `renameat2(2)`
//! with `RENAME_NOREPLACE`.
//!
//! The queue and the Maildir writer used to put a finished file in place
//! with `link()` and then `unlink()` its `tmp/` name: a link never replaces
//! an existing name (a clash is `EEXIST`), which a plain `rename()` would.
//! `RENAME_NOREPLACE` keeps that promise in one directory operation instead
//! of two (one lock of each directory, no second name to clean up after a
//! crash, no inode link count going up and down). Where the system or the
//! file system cannot do it (`EINVAL`, `ENOSYS`, `EOPNOTSUPP`; every system
//! but Linux), [`rename_noreplace`] links and unlinks as before.

use std::io;
use std::path::Path;

/// How [`rename_noreplace`] moved the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    /// One rename: the old name is gone with the same operation.
    Renamed,
    /// Linked to the new name, then the old name unlinked (the file system
    /// cannot rename without replacing). A crash between the two, or a
    /// failed unlink, leaves both names.
    Linked,
}

/// Gives the file at `from` the name `to` and takes `from` away. Fails with
/// `AlreadyExists` (`EEXIST`) when `to` exists, which is then left as it
/// was, as is `from`. Other errors are the rename's (or the link's).
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<Moved> {
    match renameat2_noreplace(from, to) {
        Ok(()) => Ok(Moved::Renamed),
        Err(e) if unsupported(&e) => link_unlink(from, to),
        Err(e) => Err(e),
    }
}

/// The fallback: link, then unlink the old name (its failure only leaves a
/// second name, as a crash at that point would).
fn link_unlink(from: &Path, to: &Path) -> io::Result<Moved> {
    std::fs::hard_link(from, to)?;
    let _ = std::fs::remove_file(from);
    Ok(Moved::Linked)
}

/// Whether `e` says the rename flag is not available here.
fn unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
    )
}

#[cfg(target_os = "linux")]
fn renameat2_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let cstr = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))
    };
    let (from, to) = (cstr(from)?, cstr(to)?);
    // SAFETY: both pointers are to NUL-terminated strings that outlive the
    // call, which only reads them; AT_FDCWD makes relative paths resolve as
    // rename(2) resolves them. No memory is handed to the kernel to keep.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn renameat2_noreplace(_from: &Path, _to: &Path) -> io::Result<()> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn renames_in_one_step_and_never_replaces() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        fs::write(&a, b"first").unwrap();
        assert_eq!(rename_noreplace(&a, &b).unwrap(), Moved::Renamed);
        assert!(!a.exists());
        assert_eq!(fs::read(&b).unwrap(), b"first");
        // A clash is EEXIST, and both files stay as they were.
        fs::write(&a, b"second").unwrap();
        let e = rename_noreplace(&a, &b).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&a).unwrap(), b"second");
        assert_eq!(fs::read(&b).unwrap(), b"first");
        // Across directories of one file system too.
        fs::create_dir(d.path().join("new")).unwrap();
        let c = d.path().join("new").join("c");
        rename_noreplace(&a, &c).unwrap();
        assert_eq!(fs::read(&c).unwrap(), b"second");
        let missing = rename_noreplace(&d.path().join("nope"), &d.path().join("x"));
        assert_eq!(missing.unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn the_fallback_keeps_the_same_promises() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        fs::write(&a, b"first").unwrap();
        assert_eq!(link_unlink(&a, &b).unwrap(), Moved::Linked);
        assert!(!a.exists());
        fs::write(&a, b"second").unwrap();
        let e = link_unlink(&a, &b).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&b).unwrap(), b"first");
        assert!(unsupported(&io::Error::from_raw_os_error(libc::EINVAL)));
        assert!(!unsupported(&io::Error::from_raw_os_error(libc::EEXIST)));
    }
}
