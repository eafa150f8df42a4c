//! An open mailbox: a session's view of one folder, kept in step with the
//! files and the UID index by [`Mailbox::sync`].
//!
//! A sync takes the folder's index lock, reads what other processes appended
//! to the index since the last sync, then reads `new/` and `cur/` — but only
//! those whose mtime changed since the previous read (and only when that mtime
//! is more than two seconds old, since a directory's mtime has a coarse clock
//! and could hide a second change in the same tick). Files not in the index
//! get the next UIDs, ordered by their delivery time then name; files gone are
//! expunged (after a second read confirms it, as a concurrent rename by a tool
//! that takes no lock can hide a file from one `readdir`); renamed files get
//! their new flags and a new MODSEQ. With a warm index and unchanged
//! directories a sync is two `stat`s and one of the index file.
//!
//! A new view (a new session) trusts the index without reading either
//! directory when the index ends with a sync stamp that matches both
//! (`index/stamp.rs`); a sync that read them with settled mtimes writes one.
//!
//! What changed since the last [`Mailbox::sync`] — by this session or others —
//! is reported as [`Changes`]; [`Mailbox::messages`] always shows the latest
//! state. An IMAP server keeps its own UID list for sequence numbers and
//! applies the reported changes when the protocol allows it (never an EXPUNGE
//! during FETCH, STORE or SEARCH).
//!
//! The operations that change messages (store, expunge, copy, move, append)
//! are in ops.rs.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::error::{io_err, Error, Result};
use super::flags::{Keywords, MailFlags, KEYWORDS_FILE};
use super::index::{DirStamp, Event, Index, Loc, Message, ModSeq, SyncStamp, Uid, LOCK_FILE};
use super::{lock, name, Folder};

pub use super::ops::{
    append, append_as, append_written_to, write_message, Appended, CopyResult, StoreResult, Written,
};

/// How old a directory mtime must be before an unchanged mtime is trusted.
const MTIME_SLACK: Duration = Duration::from_secs(2);

/// What changed in a folder since the previous [`Mailbox::sync`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// New messages, in UID order (IMAP EXISTS / POP3 ignores them).
    pub added: Vec<Uid>,
    /// Those this session moved from `new/` to `cur/` in this sync (new ones,
    /// or known ones that were waiting in `new/`): the ones that are IMAP
    /// `\Recent` for this session (only one session sees them so).
    pub recent: Vec<Uid>,
    /// Messages gone (IMAP EXPUNGE / VANISHED).
    pub expunged: Vec<Uid>,
    /// Messages whose flags or keywords changed (IMAP FETCH FLAGS).
    pub changed: Vec<Uid>,
    /// UIDVALIDITY changed (the index was lost): the session must start over.
    pub validity_changed: bool,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.expunged.is_empty()
            && self.changed.is_empty()
            && !self.validity_changed
    }
}

/// `new/` and `cur/` at their last read, when trusted.
#[derive(Clone, Copy, Debug, Default)]
struct Stamp {
    new: Option<DirStamp>,
    cur: Option<DirStamp>,
}

/// A file as `stat` last saw it: device, inode, size, mtime and ctime (ns);
/// None when it was missing.
type FileId = Option<(u64, u64, u64, i64, i64)>;

/// A session's view of one folder. Not shared between threads; each session
/// opens its own (kmp-imapd shares one between its sessions, behind a lock).
#[derive(Debug)]
pub struct Mailbox {
    pub(crate) folder: Folder,
    pub(crate) index: Index,
    pub(crate) keywords: Keywords,
    /// `dovecot-keywords` when `keywords` was read from it (None: never).
    keywords_id: Option<FileId>,
    stamp: Stamp,
    /// Read `new/` at the next sync whatever its stamp says.
    reread_new: bool,
    /// Whether the last scan read `new/`.
    read_new: bool,
    /// Directory reads by this view's syncs (see [`Mailbox::dir_reads`]).
    dir_reads: usize,
    move_new: bool,
    recent: BTreeSet<u32>,
    /// Base → UID from a foreign UID list, during the sync that imports it.
    imported: HashMap<String, u32>,
}

impl Mailbox {
    pub(crate) fn open(folder: Folder) -> Result<Mailbox> {
        if !folder.exists() {
            return Err(Error::NoFolder(folder.name().to_string()));
        }
        let mut mb = Mailbox {
            folder,
            index: Index::fresh(),
            keywords: Keywords::default(),
            keywords_id: None,
            stamp: Stamp::default(),
            reread_new: false,
            read_new: false,
            dir_reads: 0,
            move_new: false,
            recent: BTreeSet::new(),
            imported: HashMap::new(),
        };
        mb.sync()?;
        Ok(mb)
    }

    /// Whether syncs move what waits in `new/` ([`Mailbox::set_move_new`]).
    pub fn moves_new(&self) -> bool {
        self.move_new
    }

    /// Whether syncs move new messages from `new/` to `cur/` (IMAP SELECT
    /// does; EXAMINE, STATUS and POP3 need not). Off by default.
    pub fn set_move_new(&mut self, yes: bool) {
        if yes && !self.move_new {
            // Messages already indexed may wait in new/: read it again.
            self.reread_new = true;
        }
        self.move_new = yes;
    }

    /// How many times this view's syncs read `new/` or `cur/` (each read
    /// of one directory counts one): 0 after an open that trusted the
    /// index's sync stamp. For tests and measurements.
    pub fn dir_reads(&self) -> usize {
        self.dir_reads
    }

    /// The folder this view is of.
    pub fn folder(&self) -> &Folder {
        &self.folder
    }

    /// IMAP UIDVALIDITY.
    pub fn uid_validity(&self) -> u32 {
        self.index.validity
    }

    /// IMAP UIDNEXT: the UID the next new message will get (at least).
    pub fn uid_next(&self) -> Uid {
        Uid(self.index.uid_next)
    }

    /// RFC 7162 HIGHESTMODSEQ.
    pub fn highest_modseq(&self) -> ModSeq {
        ModSeq(self.index.highest_modseq)
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.index.msgs.len()
    }

    /// Whether the folder is empty.
    pub fn is_empty(&self) -> bool {
        self.index.msgs.is_empty()
    }

    /// The messages in UID order: POP3's message numbers are positions + 1.
    pub fn messages(&self) -> impl DoubleEndedIterator<Item = &Message> + ExactSizeIterator {
        self.index.msgs.values()
    }

    /// One message by UID.
    pub fn get(&self, uid: Uid) -> Option<&Message> {
        self.index.msgs.get(&uid.0)
    }

    /// UIDs expunged after `modseq` (RFC 7162 QRESYNC), as of the last
    /// sync; None when the index no longer reaches back that far.
    pub fn expunged_since(&self, modseq: ModSeq) -> Option<Vec<Uid>> {
        let v = self.index.expunged_since(modseq.0)?;
        Some(v.into_iter().map(Uid).collect())
    }

    /// The folder's keyword names (for IMAP FLAGS / PERMANENTFLAGS).
    pub fn keywords(&self) -> &Keywords {
        &self.keywords
    }

    /// The keyword names set on a message.
    pub fn keyword_names(&self, m: &Message) -> Vec<&str> {
        self.keywords.names_of(m.flags.keywords)
    }

    /// Catches up with the index and the files; see the module doc.
    pub fn sync(&mut self) -> Result<Changes> {
        self.sync_with(false)
    }

    /// Like [`Mailbox::sync`], but rereads both directories whatever their
    /// mtimes say (after an outside tool changed files, or to check).
    pub fn rescan(&mut self) -> Result<Changes> {
        self.sync_with(true)
    }

    /// Like [`Mailbox::sync`], but moves nothing from `new/` to `cur/`
    /// whatever [`Mailbox::set_move_new`] said, and so claims no message
    /// as \Recent: for a look at a folder that others hold open for a
    /// session (IMAP STATUS on a selected folder), which must leave
    /// \Recent to the session that claims it. That session's next sync
    /// still moves what waits in `new/`.
    pub fn sync_keep_new(&mut self) -> Result<Changes> {
        let claim = self.move_new;
        self.move_new = false;
        self.read_new = false;
        let r = self.sync_with(false);
        self.move_new = claim;
        if claim && self.read_new {
            // What this sync found in new/ stays there: the next sync that
            // moves must look at new/ whatever its stamp says.
            self.reread_new = true;
        }
        r
    }

    fn sync_with(&mut self, force: bool) -> Result<Changes> {
        let dir = self.folder.dir.clone();
        let _lock = lock::exclusive(&dir.join(LOCK_FILE))?;
        self.index.refresh(&dir)?;
        let uidls = match self.index.is_blank() {
            true => self.import(&dir)?,
            false => None,
        };
        let scanned = self.scan(force);
        self.imported.clear();
        scanned?;
        self.index.commit(&dir)?;
        if let Some(text) = uidls {
            // After the index: this file also says that the folder's list
            // was taken over, so that an index lost later is rebuilt with
            // a new UIDVALIDITY instead of from the list again (which would
            // number mail that came since differently under the same one).
            // Lost in a crash before it, the POP3 ids fall back to ours.
            super::write_atomic(&dir.join(super::migrate::POP3_UIDL_FILE), text.as_bytes())?;
        }
        self.load_keywords()?;
        Ok(self.take_changes())
    }

    /// Reads `dovecot-keywords` again only if it changed since the last
    /// read: one `stat` instead of an open and a read on every sync and
    /// STORE. It is stat'ed before it is read, so a file replaced between
    /// the two is read again next time, never missed. Every writer
    /// replaces it whole (a new inode) and only adds names (so the size
    /// grows): an unchanged inode, size, mtime and ctime is an unchanged
    /// file.
    pub(crate) fn load_keywords(&mut self) -> Result<()> {
        let path = self.folder.dir.join(KEYWORDS_FILE);
        let id = file_id(&path)?;
        if self.keywords_id == Some(id) {
            return Ok(());
        }
        self.keywords = Keywords::load(&self.folder.dir)?;
        self.keywords_id = Some(id);
        Ok(())
    }

    /// Opens a message's file for reading. If another program renamed it
    /// meanwhile (new flags), it is found again by its base name.
    ///
    /// Another session may rename the file (a flag change) between finding
    /// its name and opening it; the name is then looked up again, at most
    /// eight times. Once open, the file reads whole whatever its name
    /// becomes. A file gone for good is [`Error::NoMessage`].
    pub fn open_message(&self, uid: Uid) -> Result<File> {
        // Where the index says, first: no `stat` before the open.
        let m = self.get(uid).ok_or(Error::NoMessage(uid.0))?;
        let path = self.folder.dir.join(m.rel_path());
        match File::open(&path) {
            Ok(f) => return Ok(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("open", &path, e)),
        }
        let mut missed = false;
        for _ in 0..8 {
            let path = match self.message_path(uid) {
                Ok(p) => p,
                // One readdir can miss a file renamed while it ran: a
                // second one confirms that the message is gone.
                Err(Error::NoMessage(_)) if !missed => {
                    missed = true;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match File::open(&path) {
                Ok(f) => return Ok(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("open", &path, e)),
            }
        }
        Err(Error::NoMessage(uid.0))
    }

    /// The current path of a message's file (found again by its base name
    /// if it was renamed by another program).
    pub fn message_path(&self, uid: Uid) -> Result<PathBuf> {
        let m = self.get(uid).ok_or(Error::NoMessage(uid.0))?;
        let path = self.folder.dir.join(m.rel_path());
        if fs::symlink_metadata(&path).is_ok() {
            return Ok(path);
        }
        match find_by_base(&self.folder.dir, &m.base)? {
            Some((loc, info)) => Ok(self
                .folder
                .dir
                .join(sub(loc))
                .join(file_name(&m.base, info.as_deref()))),
            None => Err(Error::NoMessage(uid.0)),
        }
    }

    /// What this view's own operations (store, expunge, copy, move) changed
    /// since the last report, without reading the index or the files again:
    /// a holder that shares one `Mailbox` between several readers folds each
    /// operation's effect in at once. The next [`Mailbox::sync`] does not
    /// report these again.
    pub fn take_pending(&mut self) -> Changes {
        self.take_changes()
    }

    /// Turns the index's event log into a report.
    fn take_changes(&mut self) -> Changes {
        let mut c = Changes {
            validity_changed: std::mem::take(&mut self.index.validity_changed),
            ..Changes::default()
        };
        let (mut added, mut expunged, mut changed) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for e in std::mem::take(&mut self.index.events) {
            match e {
                Event::Added(u) => {
                    added.insert(u);
                }
                Event::Changed(u) => {
                    if !added.contains(&u) {
                        changed.insert(u);
                    }
                }
                Event::Expunged(u) => {
                    if !added.remove(&u) {
                        changed.remove(&u);
                        expunged.insert(u);
                    }
                }
            }
        }
        c.recent = std::mem::take(&mut self.recent)
            .into_iter()
            .filter(|u| self.index.msgs.contains_key(u))
            .map(Uid)
            .collect();
        c.added = added.into_iter().map(Uid).collect();
        c.expunged = expunged.into_iter().map(Uid).collect();
        c.changed = changed.into_iter().map(Uid).collect();
        c
    }

    /// A folder opened for the first time (no index) that another server
    /// kept: its UID list is taken over (see migrate.rs). Returns what the
    /// POP3 UIDL file is to hold, written once the index is. A folder
    /// whose list was taken over before (it has that file) is not taken
    /// over again. Caller holds the lock.
    fn import(&mut self, dir: &Path) -> Result<Option<String>> {
        if dir.join(super::migrate::POP3_UIDL_FILE).exists() {
            return Ok(None);
        }
        let Some(list) = super::migrate::read_foreign(dir)? else {
            return Ok(None);
        };
        let text = super::migrate::uidl_file(&list);
        self.index.adopt(list.validity, list.uid_next);
        self.imported = list.uids;
        Ok(Some(text))
    }

    /// Reconciles the index with `new/` and `cur/` (caller holds the lock).
    fn scan(&mut self, force: bool) -> Result<()> {
        let dir = self.folder.dir.clone();
        let started = SystemTime::now();
        let new_s = dir_stamp(&dir.join("new"))?;
        let cur_s = dir_stamp(&dir.join("cur"))?;
        // Unchanged since this view read it, or since the sync whose stamp
        // ends the index (nothing was recorded after it).
        let vouched = self.index.sync_stamp;
        let known_new = self.stamp.new == Some(new_s) || vouched.is_some_and(|v| v.new == new_s);
        let known_cur = self.stamp.cur == Some(cur_s) || vouched.is_some_and(|v| v.cur == cur_s);
        let read_new = force || std::mem::take(&mut self.reread_new) || !known_new;
        let read_cur = force || !known_cur;
        self.read_new = read_new;
        if !read_new {
            self.stamp.new = Some(new_s);
        }
        if !read_cur {
            self.stamp.cur = Some(cur_s);
        }
        if !read_new && !read_cur {
            self.mark_synced();
            return Ok(());
        }
        // Names are read once into one vector; the map borrows from it, so a
        // 50,000-message directory costs one allocation per file.
        let mut names = Vec::new();
        if read_new {
            read_names(&dir, Loc::New, &mut names, &mut self.dir_reads)?;
        }
        if read_cur {
            read_names(&dir, Loc::Cur, &mut names, &mut self.dir_reads)?;
        }
        let mut listing = by_base(&names);
        let mut moves = Vec::new();
        let mut missing = Vec::new();
        for m in self.index.msgs.values() {
            match listing.remove(m.base.as_str()) {
                Some((loc, info)) if loc != m.loc || info != m.info.as_deref() => {
                    moves.push((m.uid.0, loc, info.map(str::to_string)));
                }
                Some(_) => {}
                None if (m.loc == Loc::New && read_new) || (m.loc == Loc::Cur && read_cur) => {
                    missing.push(m.uid.0)
                }
                None => {}
            }
        }
        if !missing.is_empty() {
            // Confirm with a second, full read before calling anything gone.
            let mut again_names = Vec::new();
            read_names(&dir, Loc::New, &mut again_names, &mut self.dir_reads)?;
            read_names(&dir, Loc::Cur, &mut again_names, &mut self.dir_reads)?;
            let mut again = by_base(&again_names);
            for uid in missing {
                let Some(m) = self.index.msgs.get(&uid) else {
                    continue;
                };
                match again.remove(m.base.as_str()) {
                    Some((loc, info)) => moves.push((uid, loc, info.map(str::to_string))),
                    None => {
                        self.index.expunge(uid);
                    }
                }
            }
        }
        for (uid, loc, info) in moves {
            self.index.relocate(uid, loc, info);
        }
        let mut renamed = false;
        if self.move_new && read_new {
            // Indexed but still in new/ (appended, copied, or seen by a
            // session that does not move): this session takes them.
            let waiting: Vec<(u32, String, Option<String>)> = self
                .index
                .msgs
                .values()
                .filter(|m| m.loc == Loc::New)
                .map(|m| (m.uid.0, m.base.clone(), m.info.clone()))
                .collect();
            for (uid, base, info) in waiting {
                let new_info = info.clone().unwrap_or_default();
                let from = dir.join("new").join(file_name(&base, info.as_deref()));
                let to = dir.join("cur").join(file_name(&base, Some(&new_info)));
                match fs::rename(&from, &to) {
                    Ok(()) => {
                        self.index.relocate(uid, Loc::Cur, Some(new_info));
                        self.recent.insert(uid);
                        renamed = true;
                    }
                    // Moved by a program that takes no lock: the next scan
                    // finds it where it went.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => renamed = true,
                    Err(e) => return Err(Error::io("rename", &from, e)),
                }
            }
        }
        // Files an imported list names come first, in its UID order; the
        // others after them, by delivery time.
        let imported = &self.imported;
        let mut fresh: Vec<_> = listing
            .into_iter()
            .map(|(b, (l, i))| {
                let key = match imported.get(b) {
                    Some(uid) => (0, u64::from(*uid), 0),
                    None => {
                        let (s, u) = name::time_of(b);
                        (1, s, u)
                    }
                };
                (key, b.to_string(), (l, i.map(str::to_string)))
            })
            .collect();
        fresh.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let mut placed = Vec::with_capacity(fresh.len());
        for (_, base, (mut loc, mut info)) in fresh {
            let mut moved = false;
            if self.move_new && loc == Loc::New {
                let new_info = info.clone().unwrap_or_default();
                let from = dir.join("new").join(file_name(&base, info.as_deref()));
                let to = dir.join("cur").join(file_name(&base, Some(&new_info)));
                match fs::rename(&from, &to) {
                    Ok(()) => {
                        (loc, info, moved, renamed) = (Loc::Cur, Some(new_info), true, true);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::io("rename", &from, e)),
                }
            }
            placed.push((base, loc, info, moved));
        }
        let found = stat_messages(&dir, &placed)?;
        for ((base, loc, info, moved), found) in placed.into_iter().zip(found) {
            let Some((md, vsize)) = found else {
                continue; // gone meanwhile
            };
            let size = name::field(&base, 'S').unwrap_or(md.len());
            let kept = self.imported.get(&base).copied();
            let m = Message {
                uid: Uid(0),
                modseq: ModSeq(0),
                flags: MailFlags::parse(info.as_deref().unwrap_or("")),
                base,
                size,
                vsize,
                internal_date: md.mtime(),
                loc,
                info,
            };
            let uid = match kept {
                Some(k) => match self.index.add_as(m.clone(), k) {
                    Some(u) => u,
                    None => self.index.add(m),
                },
                None => self.index.add(m),
            };
            if moved {
                self.recent.insert(uid.0);
            }
        }
        // Trust a directory's mtime next time only if it is old enough that
        // a later change must show as a different mtime, and we did not
        // change the directory ourselves.
        let trust = |s: DirStamp| s.settled(started, MTIME_SLACK).then_some(s);
        if read_new {
            self.stamp.new = trust(new_s);
        }
        if read_cur {
            self.stamp.cur = trust(cur_s);
        }
        if renamed {
            self.stamp = Stamp::default();
        }
        self.mark_synced();
        Ok(())
    }

    /// When both directories are trusted, tells the index so: the stamp
    /// follows whatever this sync recorded (caller holds the lock).
    fn mark_synced(&mut self) {
        if let (Some(new), Some(cur)) = (self.stamp.new, self.stamp.cur) {
            self.index.mark_synced(SyncStamp { new, cur });
        }
    }
}

/// `new` or `cur`.
pub(crate) fn sub(loc: Loc) -> &'static str {
    match loc {
        Loc::New => "new",
        Loc::Cur => "cur",
    }
}

/// `BASE` or `BASE:2,INFO`.
pub(crate) fn file_name(base: &str, info: Option<&str>) -> String {
    match info {
        Some(i) => format!("{base}{}{i}", name::INFO_SEP),
        None => base.to_string(),
    }
}

/// See [`FileId`].
fn file_id(path: &Path) -> Result<FileId> {
    let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
    match fs::metadata(path) {
        Ok(md) => Ok(Some((
            md.dev(),
            md.ino(),
            md.len(),
            ns(md.mtime(), md.mtime_nsec()),
            ns(md.ctime(), md.ctime_nsec()),
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("stat", path, e)),
    }
}

fn dir_stamp(dir: &Path) -> Result<DirStamp> {
    DirStamp::of(dir).map_err(io_err("stat", dir))
}

/// A new file as a scan placed it: base, directory, flag letters, and
/// whether this scan moved it from `new/`.
type Placed = (String, Loc, Option<String>, bool);

/// [`stat_message`] for each file a scan found, in order. Files whose
/// names carry no size are read whole to count their line ends: a folder
/// written by another program (50,000 files on a first SELECT) is spread
/// over a few threads, which keep the disk and the cores busy at once.
fn stat_messages(dir: &Path, placed: &[Placed]) -> Result<Vec<Option<(fs::Metadata, u64)>>> {
    const PER_THREAD: usize = 2048;
    const THREADS: usize = 4;
    let one = |chunk: &[Placed]| {
        // One buffer for every file of the chunk whose name carries no size.
        let mut buf = Vec::new();
        chunk
            .iter()
            .map(|(base, loc, info, _)| {
                let path = dir.join(sub(*loc)).join(file_name(base, info.as_deref()));
                stat_message(&path, name::field(base, 'W'), &mut buf)
            })
            .collect::<Result<Vec<_>>>()
    };
    if placed.len() < 2 * PER_THREAD {
        return one(placed);
    }
    let size = placed.len().div_ceil(THREADS);
    let parts: Vec<Result<Vec<_>>> = std::thread::scope(|s| {
        let handles: Vec<_> = placed
            .chunks(size)
            .map(|chunk| s.spawn(move || one(chunk)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut all = Vec::with_capacity(placed.len());
    for p in parts {
        all.extend(p?);
    }
    Ok(all)
}

/// The metadata of a message file found by a scan, and its size with CRLF
/// line ends (`known` when its name says, else counted in `buf`, which is
/// reused from file to file). None when the file is gone.
fn stat_message(
    path: &Path,
    known: Option<u64>,
    buf: &mut Vec<u8>,
) -> Result<Option<(fs::Metadata, u64)>> {
    if let Some(w) = known {
        return match fs::metadata(path) {
            Ok(md) => Ok(Some((md, w))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("stat", path, e)),
        };
    }
    // One open for both: the descriptor's metadata and its bytes.
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", path, e)),
    };
    let md = f.metadata().map_err(io_err("stat", path))?;
    let vsize = crlf_size(&mut f, path, buf)?;
    Ok(Some((md, vsize)))
}

/// Appends the message file names of `dir/new` or `dir/cur` to `out`.
/// Names that cannot be an index record (dot files, non-UTF-8, spaces or
/// control characters, an empty base) are left alone.
fn read_names(dir: &Path, loc: Loc, out: &mut Vec<(Loc, String)>, reads: &mut usize) -> Result<()> {
    *reads += 1;
    let d = dir.join(sub(loc));
    for e in fs::read_dir(&d).map_err(io_err("readdir", &d))? {
        let e = e.map_err(io_err("readdir", &d))?;
        let Ok(n) = e.file_name().into_string() else {
            continue;
        };
        if n.starts_with('.') || n.starts_with(':') || n.bytes().any(|b| b <= b' ' || b == 0x7f) {
            continue;
        }
        out.push((loc, n));
    }
    Ok(())
}

/// Base → (directory, flag letters), borrowing the names; a base in both
/// `new/` and `cur/` (a crash mid-move) counts as in `cur/`.
fn by_base(names: &[(Loc, String)]) -> HashMap<&str, (Loc, Option<&str>)> {
    let mut map = HashMap::with_capacity(names.len());
    for (loc, n) in names {
        let (base, info) = name::split(n);
        match map.get(base) {
            Some((Loc::Cur, _)) if *loc == Loc::New => {}
            _ => {
                map.insert(base, (*loc, info));
            }
        }
    }
    map
}

/// Where a message with this base is now, by reading both directories.
pub(crate) fn find_by_base(dir: &Path, base: &str) -> Result<Option<(Loc, Option<String>)>> {
    for loc in [Loc::Cur, Loc::New] {
        let d = dir.join(sub(loc));
        for e in fs::read_dir(&d).map_err(io_err("readdir", &d))?.flatten() {
            let n = e.file_name();
            let Some(n) = n.to_str() else { continue };
            let (b, info) = name::split(n);
            if b == base {
                return Ok(Some((loc, info.map(str::to_string))));
            }
        }
    }
    Ok(None)
}

/// The size a file would have with CRLF line endings (for files whose name
/// carries no `W=`, written by other programs).
fn crlf_size(f: &mut File, path: &Path, buf: &mut Vec<u8>) -> Result<u64> {
    if buf.len() < 64 * 1024 {
        buf.resize(64 * 1024, 0);
    }
    let (mut size, mut bare, mut prev) = (0u64, 0u64, 0u8);
    loop {
        let n = f.read(buf).map_err(io_err("read", path))?;
        if n == 0 {
            break;
        }
        for &b in &buf[..n] {
            if b == b'\n' && prev != b'\r' {
                bare += 1;
            }
            prev = b;
        }
        size += n as u64;
    }
    Ok(size + bare)
}

#[cfg(test)]
mod tests;
