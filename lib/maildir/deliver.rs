//! The one durable write into a Maildir.
//!
//! Every message that enters a Maildir — a delivery by kmp-local, an IMAP
//! APPEND, a COPY across file systems — is written by [`write_tmp`] and put in
//! place by a link, following the Maildir protocol (qmail's maildir(5)):
//!
//! 1. create `tmp/UNIQUE` exclusively (mode 0600);
//! 2. write the message, counting its size and its size with CRLF endings;
//! 3. fsync the file;
//! 4. link it as `new/UNIQUE,S=<size>,W=<crlf size>` (or into `cur/` with flags);
//! 5. fsync `new/`;
//! 6. unlink the `tmp/` name.
//!
//! A delivery's last target (for one mailbox, its only one) does steps 4 and
//! 6 in one: the `tmp/` file is renamed into `new/` with `RENAME_NOREPLACE`
//! ([`crate::sys::rename`]), which keeps the link's promise (an existing name
//! is never replaced) in one directory operation instead of two.
//!
//! Each step says below what a crash there leaves behind: never a partial
//! file in `new/` or `cur/`, at worst a stale file in `tmp/` (removed by
//! [`super::Folder::clean_tmp`] after 36 hours) or a message in `new/` the
//! caller was not told about — which the delivery id makes harmless.
//!
//! **Delivery ids.** kmp-send gives each message+recipient an id that stays the
//! same across retries. [`deliver`] embeds it in the file name (`_<id>.`,
//! sanitised, see [`super::name`]) and first looks whether a file with it is
//! already in `new/` or `cur/`; if so it reports a duplicate instead of
//! delivering again. So a crash after step 4 but before the queue records the
//! delivery costs a retry, never a second copy.
//!
//! **Single instance.** [`deliver_many`] writes the message once and hard-links
//! it into every target Maildir (`st_nlink` counts the mailboxes holding it);
//! a target on another file system gets its own copy, written the same way.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::error::{io_err, Error, Result};
use super::{name, quota, Folder};

/// Clock difference allowed between the queue's arrival time and file times.
const CLOCK_SKEW: Duration = Duration::from_secs(300);

/// A message placed in a Maildir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Its base name (without `:2,` flags): the key of the UID index.
    pub base: String,
    /// Where it is now (`FOLDER/new/BASE` or `FOLDER/cur/BASE:2,FLAGS`).
    pub path: PathBuf,
    /// Bytes on disk (LF line endings).
    pub size: u64,
    /// Bytes with CRLF line endings (IMAP RFC822.SIZE, POP3 LIST).
    pub vsize: u64,
    /// True when a message with the same delivery id was already there: this
    /// call wrote nothing, and the earlier copy is `path`.
    pub duplicate: bool,
}

/// One target of [`deliver_many`].
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub folder: &'a Folder,
    /// The id that makes retries idempotent for this recipient (kmp-send's
    /// `JobRecipient::delivery_id`), or None.
    pub delivery_id: Option<&'a str>,
    /// When the message was first accepted (`Job::arrived`), if known: the
    /// duplicate check then skips a directory unchanged since then, which
    /// makes it free for the common first attempt into a large `cur/`.
    pub arrived: Option<SystemTime>,
}

/// A message written and synced in `tmp/`, not yet visible to readers.
#[derive(Debug)]
pub(crate) struct TmpFile {
    pub path: PathBuf,
    pub unique: String,
    pub size: u64,
    pub vsize: u64,
}

/// Delivers one message into `folder`'s `new/`, durably (see the module doc).
/// With a `delivery_id` already present in `new/` or `cur/`, writes nothing
/// and returns the earlier copy with `duplicate: true`.
pub fn deliver(
    folder: &Folder,
    data: &mut dyn Read,
    delivery_id: Option<&str>,
) -> Result<Delivered> {
    let target = Target {
        folder,
        delivery_id,
        arrived: None,
    };
    match deliver_many(&[target], data).pop() {
        Some(r) => r,
        // Invariant: deliver_many returns one result per target.
        None => unreachable!("deliver_many returned no result for one target"),
    }
}

/// Delivers one message to several Maildirs, writing it once and hard-linking
/// it into each (copying where a target is on another file system). Returns
/// one result per target, in order; a failure of one target does not stop the
/// others.
pub fn deliver_many(targets: &[Target<'_>], data: &mut dyn Read) -> Vec<Result<Delivered>> {
    let mut results: Vec<Option<Result<Delivered>>> = Vec::with_capacity(targets.len());
    for t in targets {
        results.push(
            match t
                .delivery_id
                .map(|id| find_delivery(t.folder, id, t.arrived))
            {
                Some(Ok(Some(d))) => Some(Ok(d)),
                Some(Err(e)) => Some(Err(e)),
                _ => None,
            },
        );
    }
    let Some(first) = results.iter().position(Option::is_none) else {
        return results.into_iter().flatten().collect();
    };
    // Steps 1-3, once, in the first target that needs the message.
    let tmp = match write_tmp(
        &targets[first].folder.dir,
        data,
        None,
        targets[first].delivery_id,
    ) {
        Ok(tmp) => tmp,
        Err(e) => {
            return results
                .into_iter()
                .map(|r| r.unwrap_or_else(|| Err(e.same())))
                .collect();
        }
    };
    // The last target takes the tmp/ file itself (steps 4 and 6 at once).
    let last = results.iter().rposition(Option::is_none);
    let mut taken = false;
    for (i, t) in targets.iter().enumerate() {
        if results[i].is_none() {
            let (r, took) = place(&tmp, t, Some(i) == last);
            results[i] = Some(r);
            taken |= took;
        }
    }
    // Step 6. A crash before this leaves the tmp/ name: a second link to a
    // message already delivered, removed by clean_tmp later.
    if !taken {
        let _ = fs::remove_file(&tmp.path);
    }
    results.into_iter().flatten().collect()
}

/// Looks for a message delivered with `delivery_id` in `new/` and `cur/`:
/// one directory read of each, names only (no stat). With `arrived` (when
/// the message entered the queue), a directory whose mtime is older than
/// that (less 5 minutes for clock skew) cannot hold it and is not read.
pub fn find_delivery(
    folder: &Folder,
    delivery_id: &str,
    arrived: Option<SystemTime>,
) -> Result<Option<Delivered>> {
    let marker = name::id_marker(delivery_id);
    for sub in ["new", "cur"] {
        let dir = folder.dir.join(sub);
        if let Some(arrived) = arrived {
            let md = fs::metadata(&dir).map_err(io_err("stat", &dir))?;
            let changed = md.modified().map_err(io_err("stat", &dir))?;
            if changed + CLOCK_SKEW < arrived {
                continue;
            }
        }
        let entries = fs::read_dir(&dir).map_err(io_err("readdir", &dir))?;
        for entry in entries {
            let entry = entry.map_err(io_err("readdir", &dir))?;
            let file = entry.file_name();
            let Some(file) = file.to_str() else { continue };
            if file.contains(&marker) {
                let (base, _) = name::split(file);
                return Ok(Some(Delivered {
                    base: base.to_string(),
                    path: dir.join(file),
                    size: name::field(base, 'S').unwrap_or(0),
                    vsize: name::field(base, 'W').unwrap_or(0),
                    duplicate: true,
                }));
            }
        }
    }
    Ok(None)
}

/// Steps 4-5 for one target: link (or copy) the synced tmp file into `new/`;
/// with `take`, rename it there instead (see [`move_or_copy`]). Returns
/// whether the tmp file's own name was taken (then step 6 has nothing to do).
fn place(tmp: &TmpFile, t: &Target<'_>, take: bool) -> (Result<Delivered>, bool) {
    let folder = t.folder;
    let base = name::with_sizes(
        &name::unique(SystemTime::now(), t.delivery_id),
        tmp.size,
        tmp.vsize,
    );
    let dest = folder.dir.join("new").join(&base);
    let taken = if take {
        move_or_copy(tmp, &folder.dir, &dest)
    } else {
        link_or_copy(tmp, &folder.dir, &dest, None).map(|()| false)
    };
    let taken = match taken {
        Ok(t) => t,
        Err(e) => return (Err(e), false),
    };
    // Step 4 done: the message is visible in new/. A crash from here on may
    // lose the name on power failure (until step 5), and the caller was not
    // told: it retries, and the delivery id finds this copy if it survived.
    // Step 5: make the new directory entry durable.
    if let Err(e) = crate::sys::fsync_dir(&folder.dir.join("new")) {
        return (Err(Error::io("fsync", &folder.dir, e)), taken);
    }
    quota::record(folder, tmp.size as i64, 1);
    let d = Delivered {
        base,
        path: dest,
        size: tmp.size,
        vsize: tmp.vsize,
        duplicate: false,
    };
    (Ok(d), taken)
}

/// Step 4 and 6 at once for the last target of a delivery: renames the
/// synced `tmp` file to `dest` without ever replacing a name. Returns true
/// when the file moved (its `tmp/` name is gone); where it cannot (another
/// file system, or a file system without `RENAME_NOREPLACE` whose link
/// fallback meets the link limit) links or copies as [`link_or_copy`] does
/// and returns false. A crash after the rename, before `new/` is synced,
/// may leave the message in `tmp/`, in `new/`, or (on a file system without
/// a journal, which writes the two directories independently) in neither,
/// the file then in `lost+found` after fsck: the caller was not told, and
/// its retry finds the copy by its delivery id or writes it again.
pub(crate) fn move_or_copy(tmp: &TmpFile, dest_folder: &Path, dest: &Path) -> Result<bool> {
    match crate::sys::rename::rename_noreplace(&tmp.path, dest) {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EXDEV | libc::EMLINK)) => {
            link_or_copy(tmp, dest_folder, dest, None).map(|()| false)
        }
        Err(e) => Err(Error::io("rename", dest, e)),
    }
}

/// Links the synced `tmp` file to `dest`; on another file system, or when
/// the file has as many links as the file system allows (EMLINK: 65,000 on
/// ext4, so a stored copy shared by more mailboxes than that), writes a
/// copy into `dest_folder/tmp/` first (durably) and links that. `mtime` is
/// set on a copy so it keeps the original's internal date.
pub(crate) fn link_or_copy(
    tmp: &TmpFile,
    dest_folder: &Path,
    dest: &Path,
    mtime: Option<SystemTime>,
) -> Result<()> {
    match fs::hard_link(&tmp.path, dest) {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EXDEV | libc::EMLINK)) => {
            let mut src = File::open(&tmp.path).map_err(io_err("open", &tmp.path))?;
            let copy = write_tmp(dest_folder, &mut src, mtime, None)?;
            let r = fs::hard_link(&copy.path, dest).map_err(io_err("link", dest));
            let _ = fs::remove_file(&copy.path);
            r
        }
        Err(e) => Err(Error::io("link", dest, e)),
    }
}

/// Steps 1-3: writes `data` to a new exclusive file in `folder/tmp/` and
/// fsyncs it, setting its mtime (the IMAP internal date) when given. On any
/// failure the tmp file is removed: nothing half-written stays behind.
pub(crate) fn write_tmp(
    folder: &Path,
    data: &mut dyn Read,
    mtime: Option<SystemTime>,
    delivery_id: Option<&str>,
) -> Result<TmpFile> {
    let unique = name::unique(SystemTime::now(), delivery_id);
    let path = folder.join("tmp").join(&unique);
    // Step 1: O_EXCL, so two writers can never share a file. A crash here
    // leaves an empty or partial file in tmp/, which no reader looks at.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io_err("create", &path))?;
    let written = copy_counting(data, &mut file, &path).and_then(|(size, vsize)| {
        if let Some(t) = mtime {
            file.set_modified(t).map_err(io_err("utimes", &path))?;
        }
        // Step 3: the data is on disk before any name in new/ points to it.
        // A crash before this leaves only the tmp/ file.
        crate::stats::fsync();
        file.sync_all().map_err(io_err("fsync", &path))?;
        Ok((size, vsize))
    });
    match written {
        Ok((size, vsize)) => Ok(TmpFile {
            path,
            unique,
            size,
            vsize,
        }),
        Err(e) => {
            let _ = fs::remove_file(&path);
            Err(e)
        }
    }
}

/// Step 2: copies, returning (bytes, bytes if every bare LF were CRLF).
fn copy_counting(data: &mut dyn Read, out: &mut File, path: &Path) -> Result<(u64, u64)> {
    let mut buf = vec![0u8; 64 * 1024];
    let (mut size, mut bare_lf, mut prev) = (0u64, 0u64, 0u8);
    loop {
        let n = match data.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("read message", path, e)),
        };
        for &b in &buf[..n] {
            if b == b'\n' && prev != b'\r' {
                bare_lf += 1;
            }
            prev = b;
        }
        out.write_all(&buf[..n]).map_err(io_err("write", path))?;
        size += n as u64;
    }
    Ok((size, size + bare_lf))
}

#[cfg(test)]
mod tests;
