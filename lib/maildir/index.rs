//! The per-folder UID index: `kmpromail-uidlist`, beside `new/` and `cur/`.
//!
//! It gives every message of a folder an IMAP UID (RFC 3501 2.3.1.1) and a
//! MODSEQ (RFC 7162), keyed by the message's base file name (the part before
//! `:2,`, which never changes while the message lives in this folder). POP3's
//! UIDL and IMAP use the same UIDs.
//!
//! The file is text, one record a line, written only under the folder's
//! flock (`kmpromail-uidlist.lock`, see [`super::lock`]) and only appended to;
//! it is rewritten (to a temporary name, fsynced, renamed) when the log has
//! grown to more than twice the live records, or after damage:
//!
//! ```text
//! kmpromail-uidlist 1 V<uidvalidity> N<uidnext> M<highestmodseq> [T<floor>]
//! + <uid> <modseq> <mtime> <size> <vsize> <where> <base>    a message seen
//! = <uid> <modseq> <where>                                  renamed (flags, new/→cur/)
//! - <uid> <modseq>                                          expunged
//! S N<ino>.<mtime>.<ctime> C<ino>.<mtime>.<ctime>           synced (stamp.rs)
//! ```
//!
//! `<where>` is `N` (in `new/`) or `C` (in `cur/`), followed by `:` and the
//! letters after `:2,` when the name has them (`C:FS`, `N`, `C:`).
//! UIDNEXT is the larger of the header's and the highest UID + 1, so UIDs of
//! expunged messages are never reused; HIGHESTMODSEQ likewise.
//!
//! Expunged UIDs are kept with their MODSEQ as tombstones (`-` records, also
//! written back by a rewrite, the newest [`MAX_TOMBSTONES`] of them), so
//! QRESYNC (RFC 7162 3.2.5) can tell a client which of its UIDs vanished
//! since the MODSEQ it knows. `T<floor>` says how far back that is complete:
//! every expunge with a MODSEQ above the floor has its record. A header
//! without `T` (a file rewritten before tombstones were kept) has its `M` as
//! the floor, since such a rewrite dropped every earlier `-` record.
//!
//! Every append that gives UIDs is fsynced before they are reported
//! (APPENDUID, a sync's new messages), and a rewrite fsyncs the file and the
//! directory: a UID a client saw is never lost in a crash and given again.
//! Appends of flag changes and expunges are not fsynced while this boot's
//! MODSEQ ceiling covers them (see [`ceiling`]): a crash may lose them, a
//! sync finds their file operations again, and the MODSEQs they carried are
//! never given again. UIDVALIDITY
//! comes from [`next_validity`]: the time, but never a value this Maildir
//! gave before, so a folder deleted and created again within a second
//! starts with a new one.
//!
//! The `S` record says that the records before it agree with `new/` and
//! `cur/` as they were then; while it is the last record and the
//! directories are unchanged, a session opening the folder reads this file
//! and no directory (see [`stamp`]).
//!
//! Damage: a torn last line (a crash mid-append) is cut off. Lines that do not
//! parse are skipped, the UIDs of every record that does are kept, and the file
//! is rewritten clean. A lost header means the previous UIDNEXT is unknown, so
//! UIDVALIDITY changes (the UIDs found are still kept for continuity). A
//! missing file while a session still has its view is rewritten from that view
//! (nothing changes for clients); a missing file with nobody holding it is
//! rebuilt from the message files with a new UIDVALIDITY.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::error::{io_err, Error, Result};
use super::flags::MailFlags;

pub mod ceiling;
pub mod stamp;
pub use stamp::{DirStamp, SyncStamp};

/// The index file in each folder.
pub const INDEX_FILE: &str = "kmpromail-uidlist";
/// The lock file that serialises index updates.
pub const LOCK_FILE: &str = "kmpromail-uidlist.lock";
const MAGIC: &str = "kmpromail-uidlist 1";
/// Tombstones a rewrite keeps (the newest); memory holds at most twice this.
pub const MAX_TOMBSTONES: usize = 5_000;

/// An IMAP UID: unique within a folder for one UIDVALIDITY, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uid(pub u32);

/// An RFC 7162 modification sequence: bumped on every flag change and expunge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModSeq(pub u64);

/// Which subdirectory a message file is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Loc {
    New,
    Cur,
}

/// One message as the index and the last scan know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub uid: Uid,
    pub modseq: ModSeq,
    /// The file name before `:2,`: stable while the message is in the folder.
    pub base: String,
    /// System flags and keyword letters (names via the mailbox's keywords).
    pub flags: MailFlags,
    /// Bytes on disk (LF endings).
    pub size: u64,
    /// Bytes with CRLF endings: IMAP RFC822.SIZE, POP3 LIST/STAT.
    pub vsize: u64,
    /// IMAP INTERNALDATE: the file's mtime, seconds since the epoch.
    pub internal_date: i64,
    /// `new/` or `cur/`.
    pub loc: Loc,
    /// The raw letters after `:2,`, or None when the name has no `:2,`.
    pub info: Option<String>,
}

impl Message {
    /// The file name: `BASE` or `BASE:2,LETTERS`.
    pub fn file_name(&self) -> String {
        match &self.info {
            Some(i) => format!("{}{}{}", self.base, super::name::INFO_SEP, i),
            None => self.base.clone(),
        }
    }

    /// A POP3 UIDL string in Dovecot's default format (`%08Xu%08Xv`: UID then
    /// UIDVALIDITY, 8 hex digits each): stable as long as the UID is, and
    /// different if the index ever had to start over.
    pub fn uidl(&self, uid_validity: u32) -> String {
        format!("{:08X}{:08X}", self.uid.0, uid_validity)
    }

    /// The path below the folder: `new/NAME` or `cur/NAME`.
    pub fn rel_path(&self) -> String {
        let sub = if self.loc == Loc::New { "new" } else { "cur" };
        format!("{sub}/{}", self.file_name())
    }
}

/// What happened to a UID, in the order the index learnt it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    Added(u32),
    Changed(u32),
    Expunged(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileState {
    dev: u64,
    ino: u64,
    offset: u64,
    lines: usize,
}

/// The index of one folder, in memory.
#[derive(Debug, Default)]
pub(crate) struct Index {
    pub validity: u32,
    pub uid_next: u32,
    pub highest_modseq: u64,
    pub msgs: BTreeMap<u32, Message>,
    pub events: Vec<Event>,
    /// Set when UIDVALIDITY changed under an open view.
    pub validity_changed: bool,
    /// Expunged UIDs with the MODSEQ of their expunge, oldest first.
    pub tombstones: Vec<(u32, u64)>,
    /// Every expunge with a MODSEQ above this has a tombstone.
    pub tomb_floor: u64,
    /// The last record's sync stamp, while no other record followed it.
    pub sync_stamp: Option<SyncStamp>,
    file: Option<FileState>,
    pending: String,
    /// Whether `pending` holds a record that must be fsynced: a UID given.
    pending_durable: bool,
    /// Whether `pending` holds a record with a MODSEQ of its own (`=`,
    /// `-`): fsynced only when the ceiling does not cover it ([`ceiling`]).
    pending_modseq: bool,
    /// This boot's MODSEQ ceiling as this index last read or raised it.
    ceiling: Option<u64>,
    damaged: bool,
    /// Loaded by [`Index::load_tail`]: knows UIDNEXT and HIGHESTMODSEQ but
    /// not the records, so it may only append.
    partial: bool,
}

impl Index {
    /// An empty index for a folder seen for the first time. Its UIDVALIDITY
    /// (0 here) is given when the index is first written ([`next_validity`]).
    pub fn fresh() -> Index {
        Index {
            validity: 0,
            uid_next: 1,
            highest_modseq: 1,
            ..Index::default()
        }
    }

    /// Reads the folder's index completely (caller holds the lock).
    pub fn load(dir: &Path) -> Result<Index> {
        let mut idx = Index::fresh();
        idx.refresh(dir)?;
        idx.events.clear();
        Ok(idx)
    }

    /// Reads only what adding messages needs (caller holds the lock): the
    /// header and the file's last 64 KB. Records are appended in UID order
    /// and every UID or MODSEQ a record introduces is the highest so far, so
    /// the last `+` record gives UIDNEXT and the largest MODSEQ from it on
    /// gives HIGHESTMODSEQ. Falls back to a full load when the tail holds no
    /// `+` record, the last line is torn, or the file is missing or damaged.
    pub fn load_tail(dir: &Path) -> Result<Index> {
        const TAIL: u64 = 64 * 1024;
        let path = dir.join(INDEX_FILE);
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Index::load(dir),
            Err(e) => return Err(Error::io("open", &path, e)),
        };
        let md = f.metadata().map_err(io_err("stat", &path))?;
        let mut head = vec![0u8; 256.min(md.len() as usize)];
        f.read_exact(&mut head).map_err(io_err("read", &path))?;
        let header = head
            .split(|b| *b == b'\n')
            .next()
            .and_then(|l| std::str::from_utf8(l).ok())
            .and_then(parse_header);
        let start = md.len().saturating_sub(TAIL);
        f.seek(SeekFrom::Start(start))
            .map_err(io_err("seek", &path))?;
        let mut tail = Vec::with_capacity((md.len() - start) as usize);
        f.read_to_end(&mut tail).map_err(io_err("read", &path))?;
        let (Some((validity, n, m, _)), Some(b'\n')) = (header, tail.last()) else {
            return Index::load(dir);
        };
        let text = String::from_utf8_lossy(&tail);
        let mut lines = text.split('\n').filter(|l| !l.is_empty());
        if start > 0 {
            lines.next(); // most likely cut in the middle
        }
        let (mut last_add, mut modseq) = (None, m);
        for line in lines {
            let mut f = line.split(' ');
            let (op, uid, ms) = (f.next(), f.next(), f.next());
            if !matches!(op, Some("+" | "=" | "-")) {
                continue; // a sync stamp carries no UID or MODSEQ
            }
            let (Some(uid), Some(ms)) = (
                uid.and_then(|u| u.parse::<u32>().ok()),
                ms.and_then(|m| m.parse::<u64>().ok()),
            ) else {
                continue;
            };
            if op == Some("+") {
                last_add = Some(uid);
                modseq = modseq.max(ms);
            } else if last_add.is_some() {
                modseq = modseq.max(ms);
            }
        }
        let Some(last) = last_add.or((start == 0).then_some(0)) else {
            return Index::load(dir);
        };
        let (floor, ceiling) = ceiling::on_load(dir);
        Ok(Index {
            validity,
            uid_next: n.max(last.saturating_add(1)),
            highest_modseq: modseq.max(floor),
            ceiling,
            file: Some(FileState {
                dev: md.dev(),
                ino: md.ino(),
                offset: md.len(),
                lines: 0,
            }),
            partial: true,
            ..Index::default()
        })
    }

    /// Brings the in-memory index up to date with the file: reads only what
    /// was appended since the last call, or everything after a rewrite.
    /// Caller holds the lock.
    pub fn refresh(&mut self, dir: &Path) -> Result<()> {
        let path = dir.join(INDEX_FILE);
        // Nothing appended since the last read or write (the usual case
        // while this process is the only writer): one `stat`, no open.
        if let (Some(s), Ok(md)) = (self.file, fs::metadata(&path)) {
            if s.dev == md.dev() && s.ino == md.ino() && md.len() == s.offset {
                return Ok(());
            }
        }
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Deleted under us, or never written: the next commit writes
                // the whole file from memory, keeping this view's UIDs.
                self.file = None;
                self.damaged = true;
                return Ok(());
            }
            Err(e) => return Err(Error::io("open", &path, e)),
        };
        let md = f.metadata().map_err(io_err("stat", &path))?;
        let mut state = match self.file {
            Some(s) if s.dev == md.dev() && s.ino == md.ino() && md.len() >= s.offset => s,
            _ => return self.reload(&path, f, md.dev(), md.ino()),
        };
        if md.len() == state.offset {
            return Ok(());
        }
        f.seek(SeekFrom::Start(state.offset))
            .map_err(io_err("seek", &path))?;
        let mut buf = Vec::with_capacity((md.len() - state.offset) as usize);
        f.read_to_end(&mut buf).map_err(io_err("read", &path))?;
        let used = self.parse(&buf, false, &mut state.lines);
        state.offset += used as u64;
        self.file = Some(state);
        if used < buf.len() {
            truncate(&path, state.offset)?;
        }
        Ok(())
    }

    /// Rereads the whole file (after a rewrite by another process), then
    /// reports the difference to the previous view as events.
    fn reload(&mut self, path: &Path, mut f: File, dev: u64, ino: u64) -> Result<()> {
        let size = f.metadata().map(|m| m.len()).unwrap_or(0);
        let mut buf = Vec::with_capacity(size as usize + 1);
        f.read_to_end(&mut buf).map_err(io_err("read", path))?;
        let old = std::mem::take(&mut self.msgs);
        let had_view = self.file.is_some() || !old.is_empty();
        let old_validity = self.validity;
        self.uid_next = 1;
        self.highest_modseq = 1;
        self.tombstones.clear();
        self.sync_stamp = None;
        let mut lines = 0;
        let mark = self.events.len();
        let used = self.parse(&buf, true, &mut lines);
        self.events.truncate(mark);
        if used < buf.len() {
            truncate(path, used as u64)?;
        }
        self.file = Some(FileState {
            dev,
            ino,
            offset: used as u64,
            lines,
        });
        // After a crash of the machine, MODSEQs above every record may have
        // been given out in records it lost: start above them.
        let (floor, ceiling) = ceiling::on_load(path.parent().unwrap_or(Path::new(".")));
        self.highest_modseq = self.highest_modseq.max(floor);
        self.ceiling = ceiling;
        if had_view {
            self.validity_changed |= self.validity != old_validity;
            for (uid, m) in &old {
                match self.msgs.get(uid) {
                    None => self.events.push(Event::Expunged(*uid)),
                    Some(n) if n.modseq != m.modseq || n.info != m.info || n.loc != m.loc => {
                        self.events.push(Event::Changed(*uid))
                    }
                    Some(_) => {}
                }
            }
            for uid in self.msgs.keys() {
                if !old.contains_key(uid) {
                    self.events.push(Event::Added(*uid));
                }
            }
        }
        Ok(())
    }

    /// Applies complete lines of `buf`; returns how many bytes were used
    /// (a torn last line is not).
    fn parse(&mut self, buf: &[u8], from_start: bool, lines: &mut usize) -> usize {
        let used = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let text = String::from_utf8_lossy(&buf[..used]);
        let mut it = text.split('\n').filter(|l| !l.is_empty());
        if from_start {
            match it.next().and_then(parse_header) {
                Some((v, n, m, floor)) => {
                    self.validity = v;
                    self.uid_next = n;
                    self.highest_modseq = m;
                    self.tomb_floor = floor.unwrap_or(m);
                }
                None => {
                    // The old UIDNEXT is unknown: UIDs seen by clients could
                    // be reused, so this is a new UIDVALIDITY (given by the
                    // rewrite this damage forces).
                    self.validity = 0;
                    self.damaged = true;
                }
            }
            *lines += 1;
        }
        // A file read from the start is mostly `+` records in UID order (a
        // rewrite writes nothing else before its tombstones): those are
        // collected and the map built from them in one pass, instead of
        // 50,000 inserts one by one. Any other record first puts them in.
        let mut run: Vec<(u32, Message)> = Vec::new();
        for line in it {
            *lines += 1;
            if from_start && line.starts_with("+ ") {
                let after = run.last().map_or(0, |r| r.0);
                match parse_add(line) {
                    Some(m) if m.uid.0 > after && (!run.is_empty() || self.msgs.is_empty()) => {
                        self.uid_next = self.uid_next.max(m.uid.0.saturating_add(1));
                        self.highest_modseq = self.highest_modseq.max(m.modseq.0);
                        self.sync_stamp = None;
                        run.push((m.uid.0, m));
                        continue;
                    }
                    _ => {}
                }
            }
            self.put_run(&mut run);
            if self.apply_line(line).is_none() {
                self.damaged = true;
            }
        }
        self.put_run(&mut run);
        used
    }

    /// Adds the collected run of `+` records to the map (see
    /// [`Index::parse`]); the caller reports no events for them.
    fn put_run(&mut self, run: &mut Vec<(u32, Message)>) {
        if run.is_empty() {
            return;
        }
        if self.msgs.is_empty() {
            // Sorted and distinct: the map is built in bulk.
            self.msgs = std::mem::take(run).into_iter().collect();
        } else {
            self.msgs.extend(run.drain(..));
        }
    }

    fn apply_line(&mut self, line: &str) -> Option<()> {
        if let Some(fields) = line.strip_prefix("S ") {
            // A damaged stamp vouches for nothing, not even an earlier one.
            self.sync_stamp = SyncStamp::parse(fields);
            return self.sync_stamp.map(|_| ());
        }
        self.sync_stamp = None;
        let mut f = line.splitn(8, ' ');
        let op = f.next()?;
        let uid: u32 = f.next()?.parse().ok()?;
        let modseq: u64 = f.next()?.parse().ok()?;
        if uid == 0 {
            return None;
        }
        match op {
            "+" => {
                let m = parse_add(line)?;
                if self.msgs.contains_key(&uid) {
                    return None;
                }
                self.insert(m);
            }
            "=" => {
                let (loc, info) = parse_where(f.next()?)?;
                let m = self.msgs.get_mut(&uid)?;
                let flags = MailFlags::parse(info.as_deref().unwrap_or(""));
                let changed = flags != m.flags || modseq > m.modseq.0;
                m.modseq = ModSeq(modseq.max(m.modseq.0));
                m.flags = flags;
                m.loc = loc;
                m.info = info;
                if changed {
                    self.events.push(Event::Changed(uid));
                }
            }
            "-" => {
                // A tombstone written back by a rewrite names a UID that is
                // no longer there: only a live one is an expunge now.
                if self.msgs.remove(&uid).is_some() {
                    self.events.push(Event::Expunged(uid));
                }
                self.bury(uid, modseq);
            }
            _ => return None,
        }
        self.uid_next = self.uid_next.max(uid.saturating_add(1));
        self.highest_modseq = self.highest_modseq.max(modseq);
        Some(())
    }

    fn insert(&mut self, m: Message) {
        self.events.push(Event::Added(m.uid.0));
        self.msgs.insert(m.uid.0, m);
    }

    /// Gives a newly seen message the next UID and MODSEQ. The caller knows
    /// the base is not in the index (a file the scan did not find in it, or
    /// a name just made).
    pub fn add(&mut self, mut m: Message) -> Uid {
        let uid = self.uid_next;
        self.uid_next += 1;
        self.highest_modseq += 1;
        m.uid = Uid(uid);
        m.modseq = ModSeq(self.highest_modseq);
        push_add(&mut self.pending, &m);
        self.wrote_record(true);
        self.insert(m);
        Uid(uid)
    }

    /// Whether this index was never written nor read: no file, no view.
    /// Such a folder may bring a foreign UID list along (migrate.rs).
    pub fn is_blank(&self) -> bool {
        self.file.is_none()
            && !self.partial
            && self.validity == 0
            && self.msgs.is_empty()
            && self.tombstones.is_empty()
    }

    /// Takes UIDVALIDITY and UIDNEXT from an imported UID list (a blank
    /// index only; the rewrite that follows writes them).
    pub fn adopt(&mut self, validity: u32, uid_next: u32) {
        if self.is_blank() && validity != 0 {
            self.validity = validity;
            self.uid_next = self.uid_next.max(uid_next);
        }
    }

    /// Gives a newly seen message the UID an imported list gave it: one
    /// below UIDNEXT and not in use, else None (the caller then uses
    /// [`Index::add`]). Only while the index has no file, so the rewrite
    /// writes the records in UID order.
    pub fn add_as(&mut self, mut m: Message, uid: u32) -> Option<Uid> {
        if self.file.is_some() || uid == 0 || uid >= self.uid_next || self.msgs.contains_key(&uid) {
            return None;
        }
        self.highest_modseq += 1;
        m.uid = Uid(uid);
        m.modseq = ModSeq(self.highest_modseq);
        self.wrote_record(true);
        self.insert(m);
        Some(Uid(uid))
    }

    /// A record other than a sync stamp is pending: it voids the stamp
    /// before it, and is made durable by the commit if `durable` (a UID
    /// given) or if the MODSEQ ceiling does not cover it.
    fn wrote_record(&mut self, durable: bool) {
        if durable {
            self.pending_durable = true;
        } else {
            self.pending_modseq = true;
        }
        self.sync_stamp = None;
    }

    /// Records that the index, as it is with what is pending, agrees with
    /// the directories as `stamp` saw them (see [`stamp`]). Written with
    /// the next commit, without an fsync of its own.
    pub fn mark_synced(&mut self, stamp: SyncStamp) {
        if self.partial || self.sync_stamp == Some(stamp) {
            return;
        }
        self.pending.push_str(&stamp.record());
        self.sync_stamp = Some(stamp);
    }

    /// Records a rename of a message's file. MODSEQ moves only when the flags
    /// changed (a move from new/ to cur/ alone is no change for a client).
    pub fn relocate(&mut self, uid: u32, loc: Loc, info: Option<String>) {
        let flags = MailFlags::parse(info.as_deref().unwrap_or(""));
        let next = self.highest_modseq + 1;
        let Some(m) = self.msgs.get_mut(&uid) else {
            return;
        };
        if m.loc == loc && m.info == info {
            return;
        }
        let bump = m.flags != flags;
        if bump {
            m.modseq = ModSeq(next);
        }
        m.flags = flags;
        m.loc = loc;
        m.info = info;
        let (modseq, token) = (m.modseq.0, where_token(loc, m.info.as_deref()));
        if bump {
            self.highest_modseq = next;
            self.events.push(Event::Changed(uid));
        }
        self.pending
            .push_str(&format!("= {uid} {modseq} {token}\n"));
        self.wrote_record(false);
    }

    /// Forgets an expunged message (its UID is never given again).
    pub fn expunge(&mut self, uid: u32) -> Option<Message> {
        let m = self.msgs.remove(&uid)?;
        self.highest_modseq += 1;
        self.pending
            .push_str(&format!("- {uid} {}\n", self.highest_modseq));
        self.wrote_record(false);
        self.events.push(Event::Expunged(uid));
        self.bury(uid, self.highest_modseq);
        Some(m)
    }

    /// Remembers an expunge for QRESYNC, forgetting the oldest half when
    /// twice [`MAX_TOMBSTONES`] are held (the floor then says so).
    fn bury(&mut self, uid: u32, modseq: u64) {
        self.tombstones.push((uid, modseq));
        if self.tombstones.len() > 2 * MAX_TOMBSTONES {
            self.trim_tombstones();
        }
    }

    /// Keeps the newest [`MAX_TOMBSTONES`] tombstones, raising the floor
    /// past the ones dropped.
    fn trim_tombstones(&mut self) {
        if self.tombstones.len() <= MAX_TOMBSTONES {
            return;
        }
        let cut = self.tombstones.len() - MAX_TOMBSTONES;
        let dropped = self.tombstones.drain(..cut).map(|t| t.1).max();
        self.tomb_floor = self.tomb_floor.max(dropped.unwrap_or(0));
    }

    /// UIDs expunged after `modseq`, or None when tombstones that old were
    /// not kept (RFC 7162 3.2.5.2: the caller then answers without them).
    pub fn expunged_since(&self, modseq: u64) -> Option<Vec<u32>> {
        if modseq < self.tomb_floor {
            return None;
        }
        let mut v: Vec<u32> = self
            .tombstones
            .iter()
            .filter(|t| t.1 > modseq)
            .map(|t| t.0)
            .collect();
        v.sort_unstable();
        v.dedup();
        Some(v)
    }

    /// Writes what changed since the last refresh: an append, or a rewrite
    /// when the file is missing, damaged or mostly dead records.
    pub fn commit(&mut self, dir: &Path) -> Result<()> {
        let rewrite = match self.file {
            None => true,
            Some(_) if self.partial => false,
            Some(s) => {
                self.damaged || s.lines > 2 * (self.msgs.len() + self.tombstones.len()) + 1000
            }
        };
        if rewrite {
            return self.rewrite(dir);
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        let path = dir.join(INDEX_FILE);
        let mut f = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_err("open", &path))?;
        f.write_all(self.pending.as_bytes())
            .map_err(io_err("write", &path))?;
        // Durable before anyone is told: a UID given out (APPENDUID, a FETCH
        // UID) and then lost in a crash would be given again to another message.
        // A flag change or an expunge under this boot's MODSEQ ceiling
        // needs no fsync: lost, the file operation it records is found
        // again by a sync, with a MODSEQ above the ceiling (ceiling.rs).
        // A sync stamp alone needs none: lost, it costs a directory read.
        let covered = self.ceiling.is_some_and(|c| c >= self.highest_modseq);
        let raise = self.pending_modseq && !covered;
        if self.pending_durable || raise {
            durable_sync(&f).map_err(io_err("fsync", &path))?;
        }
        if let Some(s) = self.file.as_mut() {
            s.offset += self.pending.len() as u64;
            s.lines += self.pending.matches('\n').count();
        }
        self.pending.clear();
        self.pending_durable = false;
        self.pending_modseq = false;
        if raise {
            // So that the next changes need no fsync of their own. Failing,
            // they are fsynced as this one was.
            self.ceiling = ceiling::raise(dir, self.highest_modseq).ok();
        }
        Ok(())
    }

    /// Writes the whole index to a temporary file, fsyncs it, renames it over.
    fn rewrite(&mut self, dir: &Path) -> Result<()> {
        if self.validity == 0 {
            self.validity = next_validity(dir)?;
        }
        self.trim_tombstones();
        let mut text = format!(
            "{MAGIC} V{} N{} M{} T{}\n",
            self.validity, self.uid_next, self.highest_modseq, self.tomb_floor
        );
        text.reserve(self.msgs.len() * 96);
        for m in self.msgs.values() {
            push_add(&mut text, m);
        }
        for (uid, modseq) in &self.tombstones {
            text.push_str(&format!("- {uid} {modseq}\n"));
        }
        // The stamp stays valid: the records above are what it vouched for.
        let mut lines = self.msgs.len() + self.tombstones.len() + 1;
        if let Some(st) = self.sync_stamp {
            text.push_str(&st.record());
            lines += 1;
        }
        let path = dir.join(INDEX_FILE);
        // A name of its own, as every small file's (replace.rs): a process
        // rebuilding the index without the lock must not share it.
        let (mut f, tmp) = super::temp_file(&path)?;
        let written = (|| {
            f.write_all(text.as_bytes())
                .map_err(io_err("write", &tmp))?;
            durable_sync(&f).map_err(io_err("fsync", &tmp))?;
            let md = f.metadata().map_err(io_err("stat", &tmp))?;
            fs::rename(&tmp, &path).map_err(io_err("rename", &path))?;
            Ok(md)
        })();
        let md = match written {
            Ok(md) => md,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        // The rename too: lost, it would bring back the old file without the
        // UIDs this rewrite holds.
        crate::sys::fsync_dir(dir).map_err(io_err("fsync", dir))?;
        self.file = Some(FileState {
            dev: md.dev(),
            ino: md.ino(),
            offset: text.len() as u64,
            lines,
        });
        self.pending.clear();
        self.pending_durable = false;
        self.pending_modseq = false;
        self.damaged = false;
        Ok(())
    }
}

/// The header's UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and tombstone floor
/// (absent in files written before tombstones were kept).
fn parse_header(line: &str) -> Option<(u32, u32, u64, Option<u64>)> {
    let rest = line.strip_prefix(MAGIC)?.strip_prefix(' ')?;
    let mut f = rest.split(' ');
    let v = f.next()?.strip_prefix('V')?.parse().ok()?;
    let n = f.next()?.strip_prefix('N')?.parse().ok()?;
    let m = f.next()?.strip_prefix('M')?.parse().ok()?;
    let floor = f
        .next()
        .and_then(|t| t.strip_prefix('T'))
        .and_then(|t| t.parse().ok());
    (v != 0 && n != 0).then_some((v, n, m, floor))
}

/// A `+` record.
fn parse_add(line: &str) -> Option<Message> {
    let mut f = line.strip_prefix("+ ")?.splitn(7, ' ');
    let uid: u32 = f.next()?.parse().ok()?;
    let modseq: u64 = f.next()?.parse().ok()?;
    let mtime: i64 = f.next()?.parse().ok()?;
    let size: u64 = f.next()?.parse().ok()?;
    let vsize: u64 = f.next()?.parse().ok()?;
    let (loc, info) = parse_where(f.next()?)?;
    let base = f.next()?;
    if uid == 0 || base.is_empty() {
        return None;
    }
    Some(Message {
        uid: Uid(uid),
        modseq: ModSeq(modseq),
        base: base.to_string(),
        flags: MailFlags::parse(info.as_deref().unwrap_or("")),
        size,
        vsize,
        internal_date: mtime,
        loc,
        info,
    })
}

/// Appends a message's `+` record to `out`.
fn push_add(out: &mut String, m: &Message) {
    use std::fmt::Write as _;
    // Invariant: writing to a String cannot fail.
    let _ = writeln!(
        out,
        "+ {} {} {} {} {} {} {}",
        m.uid.0,
        m.modseq.0,
        m.internal_date,
        m.size,
        m.vsize,
        where_token(m.loc, m.info.as_deref()),
        m.base
    );
}

fn parse_where(token: &str) -> Option<(Loc, Option<String>)> {
    let loc = match token.as_bytes().first()? {
        b'N' => Loc::New,
        b'C' => Loc::Cur,
        _ => return None,
    };
    match &token[1..] {
        "" => Some((loc, None)),
        rest => Some((loc, Some(rest.strip_prefix(':')?.to_string()))),
    }
}

fn where_token(loc: Loc, info: Option<&str>) -> String {
    let l = if loc == Loc::New { 'N' } else { 'C' };
    match info {
        Some(i) => format!("{l}:{i}"),
        None => l.to_string(),
    }
}

/// The file at a Maildir's root that remembers the last UIDVALIDITY given to
/// any of its folders, and its lock.
pub const VALIDITY_FILE: &str = "kmpromail-uidvalidity";
const VALIDITY_LOCK: &str = "kmpromail-uidvalidity.lock";

/// A UIDVALIDITY for a new or rebuilt index of the folder in `dir`: the time,
/// as Dovecot does, but always above every value given before in this
/// Maildir (`ROOT/kmpromail-uidvalidity`, which outlives any folder). So a
/// folder deleted and created again in the same second, or an index rebuilt
/// twice in one second, never shows an old UIDVALIDITY with new UIDs
/// (RFC 3501 2.3.1.1). The caller holds the folder's index lock.
pub(crate) fn next_validity(dir: &Path) -> Result<u32> {
    // A folder is `ROOT/.NAME` (marked by `maildirfolder`, which a folder
    // made by an older program may lack); INBOX is the root itself.
    let dotted = dir
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'));
    let root = match dir.parent() {
        Some(p)
            if dir.join(super::folder::MAILDIRFOLDER).exists()
                || (dotted && p.join("cur").is_dir()) =>
        {
            p
        }
        _ => dir,
    };
    let _lock = super::lock::exclusive(&root.join(VALIDITY_LOCK))?;
    let path = root.join(VALIDITY_FILE);
    let last = match fs::read_to_string(&path) {
        Ok(t) => t.trim().parse::<u32>().unwrap_or(0),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(1);
    let v = (now.min(u32::MAX as u64) as u32)
        .max(last.saturating_add(1))
        .max(1);
    super::write_atomic(&path, format!("{v}\n").as_bytes())?;
    crate::sys::fsync_dir(root).map_err(io_err("fsync", root))?;
    Ok(v)
}

/// fsync of an index file. Tests count the calls of this thread, to check
/// that every path that gives out UIDs makes them durable first.
fn durable_sync(f: &File) -> std::io::Result<()> {
    #[cfg(test)]
    SYNCS.with(|c| c.set(c.get() + 1));
    crate::stats::fsync();
    f.sync_data()
}

#[cfg(test)]
thread_local! {
    /// Index fsyncs done by this thread (see [`durable_sync`]).
    pub(crate) static SYNCS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn truncate(path: &Path, len: u64) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err("open", path))?;
    f.set_len(len).map_err(io_err("truncate", path))
}

#[cfg(test)]
mod tests;
