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
use super::mailbox::{file_name, find_by_base, Mailbox};
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
        self.keywords = Keywords::load(&dir)?;
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
            let flags = m.flags.apply(op, update);
            if flags == m.flags {
                continue;
            }
            let info = rewrite_info(m.info.as_deref().unwrap_or(""), flags);
            let (base, from) = (m.base.clone(), dir.join(m.rel_path()));
            let to = dir.join("cur").join(file_name(&base, Some(&info)));
            let moved = match fs::rename(&from, &to) {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // Renamed by a program that takes no lock: find it.
                    match find_by_base(&dir, &base)? {
                        Some((loc, old)) => {
                            let from = dir
                                .join(super::mailbox::sub(loc))
                                .join(file_name(&base, old.as_deref()));
                            fs::rename(&from, &to).is_ok()
                        }
                        None => false,
                    }
                }
                Err(e) => return Err(Error::io("rename", &from, e)),
            };
            if moved {
                self.index.relocate(uid.0, Loc::Cur, Some(info));
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

    /// Links (copy) or renames (move) files into `dest/cur/` under `dest`'s
    /// lock, then registers them in its index.
    fn transfer(&mut self, uids: &[Uid], dest: &Folder, rename: bool) -> Result<CopyResult> {
        if !dest.exists() {
            return Err(Error::NoFolder(dest.name().to_string()));
        }
        let _lock = lock::exclusive(&dest.dir.join(LOCK_FILE))?;
        let mut idx = Index::load_tail(&dest.dir)?;
        let mut kw = Keywords::load(&dest.dir)?;
        let mut placed = Vec::new();
        let mut bytes = 0i64;
        for uid in uids {
            let Some(m) = self.index.msgs.get(&uid.0).cloned() else {
                continue;
            };
            let Ok(src) = self.message_path(*uid) else {
                continue;
            };
            let names = self.keywords.names_of(m.flags.keywords);
            let bits = kw.ensure(&dest.dir, &names)?;
            let flags = MailFlags {
                flags: m.flags.flags,
                keywords: bits,
            };
            let info = rewrite_info(m.info.as_deref().unwrap_or(""), flags);
            let base = if rename {
                m.base.clone()
            } else {
                name::with_sizes(&name::unique(SystemTime::now(), None), m.size, m.vsize)
            };
            let to = dest.dir.join("cur").join(file_name(&base, Some(&info)));
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
                    info: Some(info),
                    loc: Loc::Cur,
                    ..m
                },
            ));
        }
        crate::sys::fsync_dir(&dest.dir.join("cur")).map_err(io_err("fsync", &dest.dir))?;
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

/// Adds a message to a folder with flags and an internal date, durably
/// (the write of [`super::deliver`], but into `cur/` with its flags), and
/// gives it its UID at once.
pub fn append(
    folder: &Folder,
    data: &mut dyn Read,
    flags: Flags,
    keywords: &[&str],
    internal_date: Option<SystemTime>,
) -> Result<Appended> {
    if !folder.exists() {
        return Err(Error::NoFolder(folder.name().to_string()));
    }
    // Steps 1-3 of a delivery: in tmp/, fsynced, invisible until linked.
    let tmp = write_tmp(&folder.dir, data, internal_date, None)?;
    let result = (|| {
        let _lock = lock::exclusive(&folder.dir.join(LOCK_FILE))?;
        let mut idx = Index::load_tail(&folder.dir)?;
        let mut kw = Keywords::load(&folder.dir)?;
        let bits = kw.ensure(&folder.dir, keywords)?;
        let mf = MailFlags {
            flags,
            keywords: bits,
        };
        let info = mf.letters();
        let base = name::with_sizes(&tmp.unique, tmp.size, tmp.vsize);
        let dest: PathBuf = folder.dir.join("cur").join(file_name(&base, Some(&info)));
        // Step 4: visible in cur/ with its flags. Step 5: durable.
        fs::hard_link(&tmp.path, &dest).map_err(io_err("link", &dest))?;
        crate::sys::fsync_dir(&folder.dir.join("cur")).map_err(io_err("fsync", &folder.dir))?;
        let date = internal_date.unwrap_or_else(SystemTime::now);
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
            loc: Loc::Cur,
            info: Some(info),
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
    })();
    // Step 6: the tmp/ name goes; a crash before leaves it for clean_tmp.
    let _ = fs::remove_file(&tmp.path);
    result
}
