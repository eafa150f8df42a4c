//! Changing messages: flags by UID, expunge, copy, move, append.
//!
//! Each operation takes the index lock of the folder it changes, first
//! catches up with what others appended to the index, then renames, links or
//! unlinks files and appends the matching index records, so concurrent
//! sessions see one consistent order of events. No operation holds two
//! folders' locks at once (a MOVE changes the destination, releases it, then
//! the source), so two sessions moving in opposite directions cannot deadlock.

use std::fs::{self, File};
use std::io::Read;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use super::deliver::{link_or_copy, write_tmp, TmpFile};
use super::error::{io_err, Error, Result};
use super::flags::{rewrite_info, FlagOp, Flags, Keywords, MailFlags};
use super::index::{Index, Loc, Message, ModSeq, Uid, LOCK_FILE};
use super::mailbox::{file_name, find_by_base, sub, Mailbox};
use super::{lock, name, quota, Folder};

/// The result of [`Mailbox::store`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreResult {
    /// Messages whose flags changed (they got a new MODSEQ).
    pub changed: Vec<Uid>,
    /// Messages left alone because their MODSEQ was above UNCHANGEDSINCE
    /// (RFC 7162 3.1.3: the `[MODIFIED ...]` set).
    pub modified: Vec<Uid>,
}

/// The result of [`Folder::append`]: what UIDPLUS's APPENDUID needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    pub uid: Uid,
    pub uid_validity: u32,
    pub base: String,
}

/// The result of [`Mailbox::copy`] and [`Mailbox::move_to`]: what UIDPLUS's
/// COPYUID needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyResult {
    /// The destination's UIDVALIDITY.
    pub uid_validity: u32,
    /// (source UID, destination UID), in source UID order. Source messages
    /// already expunged are left out.
    pub pairs: Vec<(Uid, Uid)>,
}

impl Mailbox {
    /// Changes flags and keywords of messages by UID (IMAP STORE / UID STORE).
    /// With `unchanged_since`, messages with a higher MODSEQ are left alone and
    /// reported in [`StoreResult::modified`]. UIDs not in the folder are
    /// ignored, as IMAP requires.
    pub fn store(
        &mut self,
        uids: &[Uid],
        op: FlagOp,
        flags: Flags,
        keywords: &[&str],
        unchanged_since: Option<ModSeq>,
    ) -> Result<StoreResult> {
        let dir = self.folder.dir.clone();
        let _lock = lock::exclusive(&dir.join(LOCK_FILE))?;
        self.index.refresh(&dir)?;
        self.load_keywords()?;
        let bits = match op {
            FlagOp::Remove => self.keywords.bits_of(keywords),
            FlagOp::Set | FlagOp::Add => self.keywords.ensure(&dir, keywords)?,
        };
        let update = MailFlags {
            flags,
            keywords: bits,
        };
        let mut res = StoreResult::default();
        for uid in uids {
            let Some(m) = self.index.msgs.get(&uid.0) else {
                continue;
            };
            if unchanged_since.is_some_and(|since| m.modseq > since) {
                res.modified.push(*uid);
                continue;
            }
            let (base, loc, info) = (m.base.clone(), m.loc, m.info.clone());
            if store_one(&mut self.index, &dir, uid.0, &base, (loc, info), op, update)? {
                res.changed.push(*uid);
            }
        }
        self.index.commit(&dir)?;
        Ok(res)
    }

    /// Removes messages by UID: unlinks their files, records the expunge in
    /// the index and `maildirsize` (IMAP EXPUNGE / UID EXPUNGE, POP3 QUIT).
    /// Returns the UIDs expunged (those already gone are left out).
    pub fn expunge(&mut self, uids: &[Uid]) -> Result<Vec<Uid>> {
        let dir = self.folder.dir.clone();
        let _lock = lock::exclusive(&dir.join(LOCK_FILE))?;
        self.index.refresh(&dir)?;
        let (mut gone, mut bytes) = (Vec::new(), 0i64);
        for uid in uids {
            let Some(m) = self.index.msgs.get(&uid.0) else {
                continue;
            };
            let path = dir.join(m.rel_path());
            let removed = match fs::remove_file(&path) {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    match find_by_base(&dir, &m.base)? {
                        Some((loc, info)) => fs::remove_file(
                            dir.join(super::mailbox::sub(loc))
                                .join(file_name(&m.base, info.as_deref())),
                        )
                        .is_ok(),
                        None => true,
                    }
                }
                Err(e) => return Err(Error::io("unlink", &path, e)),
            };
            if removed {
                if let Some(m) = self.index.expunge(uid.0) {
                    bytes += m.size as i64;
                    gone.push(*uid);
                }
            }
        }
        self.index.commit(&dir)?;
        quota::record(&self.folder, -bytes, -(gone.len() as i64));
        Ok(gone)
    }

    /// Copies messages into `dest` (IMAP COPY): hard links where possible,
    /// with the same flags, keywords and internal date; returns the new UIDs.
    pub fn copy(&mut self, uids: &[Uid], dest: &Folder) -> Result<CopyResult> {
        self.transfer(uids, dest, false)
    }

    /// Moves messages into `dest` (RFC 6851 MOVE): renames, then expunges
    /// them here. Returns the new UIDs; the expunges show in the next sync.
    pub fn move_to(&mut self, uids: &[Uid], dest: &Folder) -> Result<CopyResult> {
        if dest.dir == self.folder.dir {
            let r = self.transfer(uids, dest, false)?;
            let moved: Vec<Uid> = r.pairs.iter().map(|p| p.0).collect();
            self.expunge(&moved)?;
            return Ok(r);
        }
        let r = self.transfer(uids, dest, true)?;
        let dir = self.folder.dir.clone();
        let _lock = lock::exclusive(&dir.join(LOCK_FILE))?;
        self.index.refresh(&dir)?;
        for (src, _) in &r.pairs {
            self.index.expunge(src.0);
        }
        self.index.commit(&dir)?;
        Ok(r)
    }

    /// Links (copy) or renames (move) files into `dest/new/` under `dest`'s
    /// lock, then registers them in its index.
    fn transfer(&mut self, uids: &[Uid], dest: &Folder, rename: bool) -> Result<CopyResult> {
        if !dest.exists() {
            return Err(Error::NoFolder(dest.name().to_string()));
        }
        super::migrate::import_first(dest)?;
        let _lock = lock::exclusive(&dest.dir.join(LOCK_FILE))?;
        let mut idx = Index::load_tail(&dest.dir)?;
        let mut kw = Keywords::load(&dest.dir)?;
        self.load_keywords()?;
        let src_kw = self.keywords.clone();
        let mut placed = Vec::new();
        let mut bytes = 0i64;
        for uid in uids {
            let Some(m) = self.index.msgs.get(&uid.0).cloned() else {
                continue;
            };
            let Ok(src) = self.message_path(*uid) else {
                continue;
            };
            // The flags the file name has now, not this view's copy: another
            // session may have changed them since this one last synced.
            let now_info = src
                .file_name()
                .and_then(|n| n.to_str())
                .map_or(m.info.clone(), |n| name::split(n).1.map(str::to_string));
            let now = MailFlags::parse(now_info.as_deref().unwrap_or(""));
            let names = src_kw.names_of(now.keywords);
            let bits = kw.ensure(&dest.dir, &names)?;
            let flags = MailFlags {
                flags: now.flags,
                keywords: bits,
            };
            let info = rewrite_info(now_info.as_deref().unwrap_or(""), flags);
            let base = if rename {
                m.base.clone()
            } else {
                name::with_sizes(&name::unique(SystemTime::now(), None), m.size, m.vsize)
            };
            // In new/: the copy is \Recent for the next session that
            // selects the destination (RFC 3501 6.4.7).
            let to = dest.dir.join("new").join(file_name(&base, new_info(&info)));
            let mtime = UNIX_EPOCH + std::time::Duration::from_secs(m.internal_date.max(0) as u64);
            let done = if rename {
                match fs::rename(&src, &to) {
                    Ok(()) => Ok(()),
                    Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                        copy_across(&src, dest, &to, mtime)
                            .and_then(|()| fs::remove_file(&src).map_err(io_err("unlink", &src)))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => Err(Error::io("rename", &src, e)),
                }
            } else {
                let tmp = TmpFile {
                    path: src.clone(),
                    unique: String::new(),
                    size: m.size,
                    vsize: m.vsize,
                };
                link_or_copy(&tmp, &dest.dir, &to, Some(mtime))
            };
            if let Err(e) = done {
                // Keep what was placed so far registered, then report.
                register(&mut idx, dest, &mut placed)?;
                return Err(e);
            }
            bytes += m.size as i64;
            placed.push((
                *uid,
                Message {
                    base,
                    flags,
                    info: new_info(&info).map(str::to_string),
                    loc: Loc::New,
                    ..m
                },
            ));
        }
        crate::sys::fsync_dir(&dest.dir.join("new")).map_err(io_err("fsync", &dest.dir))?;
        if rename {
            crate::sys::fsync_dir(&self.folder.dir.join("cur"))
                .map_err(io_err("fsync", &self.folder.dir))?;
        }
        let pairs = register(&mut idx, dest, &mut placed)?;
        let n = pairs.len() as i64;
        if !rename {
            quota::record(dest, bytes, n);
        } else if quota::counts(&self.folder) != quota::counts(dest) {
            // Into or out of Trash: the messages stop or start counting.
            quota::record(&self.folder, -bytes, -n);
            quota::record(dest, bytes, n);
        }
        Ok(CopyResult {
            uid_validity: idx.validity,
            pairs,
        })
    }
}

/// How often a STORE looks for a message's file again when another program
/// renamed it between our look and our rename.
const RENAME_TRIES: usize = 8;

/// Applies a flag update to one message against the flags its file name has
/// now: the index's name is tried first (right unless a program that takes
/// no lock renamed the file), and a rename that finds no file looks the
/// message up again by its base name and starts over from what that name
/// says, a bounded number of times. Returns whether the file was renamed.
/// The caller holds the folder's index lock.
fn store_one(
    index: &mut Index,
    dir: &std::path::Path,
    uid: u32,
    base: &str,
    (mut loc, mut info): (Loc, Option<String>),
    op: FlagOp,
    update: MailFlags,
) -> Result<bool> {
    for _ in 0..RENAME_TRIES {
        let old = MailFlags::parse(info.as_deref().unwrap_or(""));
        let flags = old.apply(op, update);
        let from = dir.join(sub(loc)).join(file_name(base, info.as_deref()));
        if flags == old {
            if fs::symlink_metadata(&from).is_ok() {
                // Nothing to change; the index learns the name if it lagged.
                index.relocate(uid, loc, info);
                return Ok(false);
            }
        } else {
            let new_info = rewrite_info(info.as_deref().unwrap_or(""), flags);
            let to = dir.join("cur").join(file_name(base, Some(&new_info)));
            match fs::rename(&from, &to) {
                Ok(()) => {
                    index.relocate(uid, Loc::Cur, Some(new_info));
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("rename", &from, e)),
            }
        }
        // Renamed meanwhile by a program that takes no lock: find it again.
        match find_by_base(dir, base)? {
            Some((l, i)) => (loc, info) = (l, i),
            None => return Ok(false),
        }
    }
    Ok(false)
}

/// Gives placed messages their UIDs in the destination and writes its index.
fn register(
    idx: &mut Index,
    dest: &Folder,
    placed: &mut Vec<(Uid, Message)>,
) -> Result<Vec<(Uid, Uid)>> {
    let pairs = placed.drain(..).map(|(src, m)| (src, idx.add(m))).collect();
    idx.commit(&dest.dir)?;
    Ok(pairs)
}

/// Copies a file into another file system's folder, durably.
fn copy_across(
    src: &std::path::Path,
    dest: &Folder,
    to: &std::path::Path,
    mtime: SystemTime,
) -> Result<()> {
    let mut f = File::open(src).map_err(io_err("open", src))?;
    let tmp = write_tmp(&dest.dir, &mut f as &mut dyn Read, Some(mtime), None)?;
    let r = fs::hard_link(&tmp.path, to).map_err(io_err("link", to));
    let _ = fs::remove_file(&tmp.path);
    r
}

/// The info part of a name in `new/`: none without flags (a plain
/// delivery's name), `:2,FLAGS` with them, which the session that moves the
/// file to `cur/` keeps.
fn new_info(letters: &str) -> Option<&str> {
    (!letters.is_empty()).then_some(letters)
}

/// Adds a message to a folder with flags and an internal date, durably
/// (the write of [`super::deliver`], with its flags), and gives it its UID at
/// once. Like a delivery it lands in `new/`: RFC 3501 6.3.11 wants an
/// appended message \Recent, and in a Maildir that is what `new/` means.
pub fn append(
    folder: &Folder,
    data: &mut dyn Read,
    flags: Flags,
    keywords: &[&str],
    internal_date: Option<SystemTime>,
) -> Result<Appended> {
    append_as(folder, data, flags, keywords, internal_date, false)
}

/// [`append`], with `verbatim`: the data is already in the form readers
/// send (CRLF line ends, bare LFs being content), so its size with CRLF
/// line ends (`W=`) is its size, and a reader whose file is as long as its
/// `W=` sends it unchanged.
pub fn append_as(
    folder: &Folder,
    data: &mut dyn Read,
    flags: Flags,
    keywords: &[&str],
    internal_date: Option<SystemTime>,
    verbatim: bool,
) -> Result<Appended> {
    if !folder.exists() {
        return Err(Error::NoFolder(folder.name().to_string()));
    }
    super::migrate::import_first(folder)?;
    let w = write_message(folder, data, internal_date, verbatim)?;
    link_new(folder, &w, flags, keywords, None)
}

/// A message written into a folder's `tmp/` and fsynced (steps 1-3 of a
/// delivery), not yet visible: [`Mailbox::append_written`] links it into
/// `new/` and gives it its UID. Dropped, its `tmp/` file goes (step 6; a
/// crash before leaves it for [`Folder::clean_tmp`]).
#[derive(Debug)]
pub struct Written {
    tmp: TmpFile,
    internal_date: Option<SystemTime>,
}

impl Drop for Written {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.tmp.path);
    }
}

/// Writes an APPEND's message into `folder`'s `tmp/` (see [`append_as`]
/// for `verbatim`). Nothing is locked meanwhile: a large message is
/// written while other sessions go on with the folder.
pub fn write_message(
    folder: &Folder,
    data: &mut dyn Read,
    internal_date: Option<SystemTime>,
    verbatim: bool,
) -> Result<Written> {
    if !folder.exists() {
        return Err(Error::NoFolder(folder.name().to_string()));
    }
    let mut tmp = write_tmp(&folder.dir, data, internal_date, None)?;
    if verbatim {
        tmp.vsize = tmp.size;
    }
    Ok(Written { tmp, internal_date })
}

impl Mailbox {
    /// Steps 4 and 5 of [`append_as`] for a message written by
    /// [`write_message`] into this folder: the UID is given from the index
    /// this view holds (brought up to date with what others appended, not
    /// read again from the file's header and tail), and the message is in
    /// this view at once, reported as added by the next
    /// [`Mailbox::take_pending`] or sync. kmp-imapd appends so into a
    /// folder its sessions have open, and its shared state learns of the
    /// message without reading the index back.
    pub fn append_written(
        &mut self,
        written: Written,
        flags: Flags,
        keywords: &[&str],
    ) -> Result<Appended> {
        let folder = self.folder.clone();
        link_new(&folder, &written, flags, keywords, Some(self))
    }
}

/// [`Mailbox::append_written`] into a folder without an open view: the
/// UID comes from the folder's index on disk (its header and tail).
pub fn append_written_to(
    folder: &Folder,
    written: Written,
    flags: Flags,
    keywords: &[&str],
) -> Result<Appended> {
    super::migrate::import_first(folder)?;
    link_new(folder, &written, flags, keywords, None)
}

/// Steps 4 and 5 of an APPEND (linked into `new/`, the directory synced)
/// and the index record, made durable before the UID is reported: by
/// `mb`'s index, or without one by the folder's index read for the purpose
/// (its header and tail only).
fn link_new(
    folder: &Folder,
    written: &Written,
    flags: Flags,
    keywords: &[&str],
    mb: Option<&mut Mailbox>,
) -> Result<Appended> {
    let tmp = &written.tmp;
    let _lock = lock::exclusive(&folder.dir.join(LOCK_FILE))?;
    let mut own = None;
    let (idx, kw) = match mb {
        Some(mb) => {
            mb.index.refresh(&folder.dir)?;
            mb.load_keywords()?;
            (&mut mb.index, &mut mb.keywords)
        }
        None => {
            let o = own.insert((Index::load_tail(&folder.dir)?, Keywords::load(&folder.dir)?));
            (&mut o.0, &mut o.1)
        }
    };
    let bits = kw.ensure(&folder.dir, keywords)?;
    let mf = MailFlags {
        flags,
        keywords: bits,
    };
    let letters = mf.letters();
    let info = new_info(&letters);
    let base = name::with_sizes(&tmp.unique, tmp.size, tmp.vsize);
    let dest: PathBuf = folder.dir.join("new").join(file_name(&base, info));
    // Step 4: visible in new/ (so \Recent for the next session that
    // selects the folder) with its flags. Step 5: durable.
    fs::hard_link(&tmp.path, &dest).map_err(io_err("link", &dest))?;
    crate::sys::fsync_dir(&folder.dir.join("new")).map_err(io_err("fsync", &folder.dir))?;
    let date = written.internal_date.unwrap_or_else(SystemTime::now);
    let secs = date
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let uid = idx.add(Message {
        uid: Uid(0),
        modseq: ModSeq(0),
        base: base.clone(),
        flags: mf,
        size: tmp.size,
        vsize: tmp.vsize,
        internal_date: secs,
        loc: Loc::New,
        info: info.map(str::to_string),
    });
    // A crash before this commit leaves the file unregistered: the next
    // sync finds it and gives it a UID (a higher one than promised, but
    // never one given to another message).
    idx.commit(&folder.dir)?;
    quota::record(folder, tmp.size as i64, 1);
    Ok(Appended {
        uid,
        uid_validity: idx.validity,
        base,
    })
}
