//! [`MailStore`] and [`Folder`] over the project's Maildir library
//! (`crate::maildir`): the only place kmp-imapd meets the Maildir.
//!
//! Flags: `S` \Seen, `R` \Answered, `F` \Flagged, `T` \Deleted, `D` \Draft.
//! `$Forwarded` is a keyword like any other, kept in `dovecot-keywords` as
//! Dovecot 2.3 keeps it (Dovecot does not show Maildir's `P` letter, so a
//! `$Forwarded` stored as `P` would be lost on a move there). A `P` that
//! another program (mutt, an older Kmpromail) set is still shown as
//! `$Forwarded`, and removing `$Forwarded` removes it too.
//! \Recent is what was in `new/` when this session looked: a read-write
//! session moves it to `cur/`, so only one session sees it as recent.
//! APPEND, COPY and MOVE put messages in `new/` (the Maildir library does),
//! so they are \Recent for the next session that selects the folder, or for
//! the appending session itself when it has the folder selected.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::store::*;
use crate::maildir::{self, FlagOp, Flags, Loc, Mailbox, Maildir, Uid};
use crate::proto::imap::StoreMode;

/// The keyword that Maildir's `P` flag (passed) is also shown as.
const FORWARDED: &str = "$Forwarded";

/// The SORT key cache beside the UID index ([`super::sortkey`]).
pub const SORT_CACHE_FILE: &str = "kmpromail-sortcache";

/// One user's Maildir.
pub struct MaildirStore {
    md: Maildir,
    quota: maildir::quota::Limits,
}

impl MaildirStore {
    /// Opens (and completes, if need be) a user's Maildir.
    pub fn open(root: &Path, quota_bytes: u64, quota_messages: u64) -> StoreResult<MaildirStore> {
        let md = Maildir::open_or_create(root).map_err(err)?;
        Ok(MaildirStore {
            md,
            quota: maildir::quota::Limits {
                bytes: quota_bytes,
                messages: quota_messages,
            },
        })
    }
}

/// Library errors as the session sees them.
fn err(e: maildir::Error) -> StoreError {
    use maildir::Error as E;
    match e {
        E::NoFolder(_) => StoreError::NoSuchFolder,
        E::Exists(_) => StoreError::Exists,
        E::BadName(n) => StoreError::BadName(format!("Invalid mailbox name {n:?}")),
        E::NotAllowed(m) => StoreError::Refused(m),
        E::NoMessage(_) => StoreError::Gone,
        E::Keyword(k) => StoreError::Refused(format!("Keyword {k:?} cannot be stored")),
        E::NoSpace { .. } => StoreError::OverQuota,
        e if e.is_temporary() => StoreError::Temporary(e.to_string()),
        e => StoreError::Refused(e.to_string()),
    }
}

/// The library's flags and keywords for IMAP flags. `removing`: for a
/// `-FLAGS`, where `$Forwarded` also clears a `P` letter.
fn to_lib(f: &MsgFlags, removing: bool) -> (Flags, Vec<&str>) {
    let mut fl = Flags::empty();
    for (bit, lf) in [
        (SysFlags::SEEN, Flags::SEEN),
        (SysFlags::ANSWERED, Flags::REPLIED),
        (SysFlags::FLAGGED, Flags::FLAGGED),
        (SysFlags::DELETED, Flags::TRASHED),
        (SysFlags::DRAFT, Flags::DRAFT),
    ] {
        if f.sys.has(bit) {
            fl = fl | lf;
        }
    }
    let mut kws = Vec::new();
    for k in &f.keywords {
        if removing && k.eq_ignore_ascii_case(FORWARDED) {
            fl = fl | Flags::PASSED;
        }
        kws.push(k.as_str());
    }
    (fl, kws)
}

fn from_lib(mb: &Mailbox, m: &maildir::Message) -> MsgFlags {
    let mut f = MsgFlags::default();
    for (bit, lf) in [
        (SysFlags::SEEN, Flags::SEEN),
        (SysFlags::ANSWERED, Flags::REPLIED),
        (SysFlags::FLAGGED, Flags::FLAGGED),
        (SysFlags::DELETED, Flags::TRASHED),
        (SysFlags::DRAFT, Flags::DRAFT),
    ] {
        if m.flags.flags.contains(lf) {
            f.sys.0 |= bit;
        }
    }
    if m.flags.flags.contains(Flags::PASSED) {
        f.keywords.insert(FORWARDED.to_string());
    }
    for k in mb.keyword_names(m) {
        f.keywords.insert(k.to_string());
    }
    f
}

impl MailStore for MaildirStore {
    fn metadata(&mut self, folder: Option<&str>) -> StoreResult<Metadata> {
        match folder {
            None => self.md.server_metadata().map_err(err),
            Some(name) => {
                let f = self.md.folder(name).map_err(err)?;
                if !f.exists() {
                    return Err(StoreError::NoSuchFolder);
                }
                f.metadata().map_err(err)
            }
        }
    }

    fn set_metadata(
        &mut self,
        folder: Option<&str>,
        changes: &[(String, Option<Vec<u8>>)],
        max_entries: usize,
    ) -> StoreResult<bool> {
        use maildir::metadata::Updated;
        let r = match folder {
            None => self.md.set_server_metadata(changes, max_entries),
            Some(name) => self
                .md
                .folder(name)
                .map_err(err)?
                .set_metadata(changes, max_entries),
        };
        Ok(r.map_err(err)? == Updated::Done)
    }

    fn folders(&mut self) -> StoreResult<Vec<FolderInfo>> {
        Ok(self
            .md
            .list_folders()
            .map_err(err)?
            .into_iter()
            .filter(|f| f.selectable)
            .map(|f| FolderInfo {
                name: f.name,
                special_use: f.special_use.map(|s| s.attribute()),
            })
            .collect())
    }

    fn create(&mut self, name: &str) -> StoreResult<()> {
        self.md.create_folder(name).map(|_| ()).map_err(err)
    }

    fn delete(&mut self, name: &str) -> StoreResult<()> {
        self.md.delete_folder(name).map_err(err)
    }

    fn rename(&mut self, from: &str, to: &str) -> StoreResult<()> {
        self.md.rename_folder(from, to).map_err(err)
    }

    fn subscriptions(&mut self) -> StoreResult<Vec<String>> {
        self.md.subscriptions().map_err(err)
    }

    fn set_subscribed(&mut self, name: &str, on: bool) -> StoreResult<()> {
        if on {
            self.md.subscribe(name).map_err(err)
        } else {
            self.md.unsubscribe(name).map_err(err)
        }
    }

    fn open(&mut self, name: &str) -> StoreResult<Box<dyn Folder>> {
        let folder = self.md.folder(name).map_err(err)?;
        if !folder.exists() {
            return Err(StoreError::NoSuchFolder);
        }
        // \Recent is decided by the first state: what a read-write
        // session moves out of new/, or what an EXAMINE finds there.
        Ok(Box::new(MaildirFolder {
            md: self.md.clone(),
            dir: folder.path().to_path_buf(),
            shared: Shared::get(&folder)?,
            recent: HashSet::new(),
            seen_uid: 0,
            generation: 0,
            checked: None,
            quota: self.quota,
        }))
    }

    fn status(&mut self, name: &str) -> StoreResult<FolderStatus> {
        // From the folder's shared state: the one its sessions have
        // selected, one kept from a while ago, or a new one kept for the
        // next STATUS (clients ask for the same folders again and again),
        // so a STATUS costs the state's check of the files (three `stat`s
        // when nothing changed), not a read of the whole UID index.
        let folder = self.md.folder(name).map_err(err)?;
        if !folder.exists() {
            return Err(StoreError::NoSuchFolder);
        }
        let sh = Shared::get(&folder)?;
        let taken = SystemTime::now();
        let st = lock(&sh).status(stamp_of(folder.path()), taken);
        Registry::with(|r| {
            // Made by this call: nobody else holds it.
            if Arc::strong_count(&sh) == 1 {
                r.keep(folder.path(), &sh);
            }
        });
        st
    }

    fn append(
        &mut self,
        folder: &str,
        message: &[u8],
        flags: &MsgFlags,
        internal_date: Option<i64>,
    ) -> StoreResult<(u32, u32)> {
        let usage = self.md.quota(Some(self.quota)).map_err(err)?;
        if usage.would_exceed(message.len() as u64) {
            return Err(StoreError::OverQuota);
        }
        let f = self.md.folder(folder).map_err(err)?;
        let (fl, kws) = to_lib(flags, false);
        let date = internal_date.map(date_of);
        let mut scan = FormScan::default();
        scan.feed(message);
        let w = if scan.verbatim() {
            f.write_message(&mut &message[..], date, true)
        } else {
            // Stored with LF line ends, as everything in our Maildirs.
            f.write_message(&mut &crlf_to_lf(message)[..], date, false)
        };
        let a = append_written(&f, w.map_err(err)?, fl, &kws)?;
        Ok((a.uid_validity, a.uid.0))
    }

    fn stage(&mut self) -> StoreResult<std::fs::File> {
        self.md.stage().map_err(err)
    }

    fn append_file(
        &mut self,
        folder: &str,
        file: &mut std::fs::File,
        size: u64,
        flags: &MsgFlags,
        internal_date: Option<i64>,
    ) -> StoreResult<(u32, u32)> {
        use std::io::{Read, Seek};
        let usage = self.md.quota(Some(self.quota)).map_err(err)?;
        if usage.would_exceed(size) {
            return Err(StoreError::OverQuota);
        }
        let f = self.md.folder(folder).map_err(err)?;
        let staged = |e: std::io::Error| StoreError::Temporary(format!("staged message: {e}"));
        // One pass to learn the message's form, a second to store it.
        file.rewind().map_err(staged)?;
        let mut scan = FormScan::default();
        let mut part = file.take(size);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match part.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => scan.feed(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(staged(e)),
            }
        }
        let file = part.into_inner();
        file.rewind().map_err(staged)?;
        let (fl, kws) = to_lib(flags, false);
        let date = internal_date.map(date_of);
        let w = if scan.verbatim() {
            f.write_message(&mut file.take(size), date, true)
        } else {
            // Stored with LF line ends, converted as it is copied.
            let mut lf = LfReader::new(std::io::BufReader::new(file.take(size)));
            f.write_message(&mut lf, date, false)
        };
        let a = append_written(&f, w.map_err(err)?, fl, &kws)?;
        Ok((a.uid_validity, a.uid.0))
    }

    fn quota(&mut self) -> StoreResult<Quota> {
        let u = self.md.quota(Some(self.quota)).map_err(err)?;
        Ok(Quota {
            used_bytes: u.bytes,
            limit_bytes: u.limits.bytes,
            used_messages: u.messages,
            limit_messages: u.limits.messages,
        })
    }

    fn exists(&mut self, name: &str) -> StoreResult<bool> {
        Ok(self.md.folder(name).map_err(err)?.exists())
    }

    fn urlauth_key(&mut self, folder: &str, create: bool) -> StoreResult<Option<[u8; 32]>> {
        self.md
            .folder(folder)
            .map_err(err)?
            .urlauth_key(create)
            .map_err(err)
    }

    fn reset_urlauth_keys(&mut self, folder: Option<&str>) -> StoreResult<()> {
        let names = match folder {
            Some(f) => vec![f.to_string()],
            None => self
                .md
                .list_folders()
                .map_err(err)?
                .into_iter()
                .map(|f| f.name)
                .collect(),
        };
        for n in names {
            let f = self.md.folder(&n).map_err(err)?;
            if folder.is_some() && !f.exists() {
                return Err(StoreError::NoSuchFolder);
            }
            f.reset_urlauth_key().map_err(err)?;
        }
        Ok(())
    }
}

/// Links a message written into `tmp/` into its folder and gives it its
/// UID: through the folder's shared state when this process holds one
/// (the state learns of it at once and need not read the UID index back),
/// else through the index on disk. The message was written without the
/// state's lock, so a large APPEND does not hold up the folder's sessions.
fn append_written(
    f: &maildir::Folder,
    w: maildir::Written,
    fl: Flags,
    kws: &[&str],
) -> StoreResult<maildir::Appended> {
    if !f.exists() {
        return Err(StoreError::NoSuchFolder);
    }
    match Registry::with(|r| r.find(f.path())) {
        Some(sh) => {
            let mut sh = lock(&sh);
            let a = sh.mb.append_written(w, fl, kws);
            sh.absorb_pending();
            a.map_err(err)
        }
        None => f.append_written(w, fl, kws).map_err(err),
    }
}

/// An INTERNALDATE as a file time (dates before 1970 become 1970).
fn date_of(t: i64) -> SystemTime {
    if t >= 0 {
        UNIX_EPOCH + Duration::from_secs(t as u64)
    } else {
        UNIX_EPOCH
    }
}

/// Whether an APPENDed message must be stored verbatim: it is CRLF text
/// (its first line ends in CRLF) whose LF form would not read back the
/// same, because it holds a bare LF (content of a binary part, RFC 3516) or
/// a CR just before a CRLF. Everything else is stored in LF form, LF-only
/// text included (its line ends are line ends, sent back as CRLF).
#[derive(Default)]
struct FormScan {
    /// Whether the first line ends in CRLF; None before the first LF.
    crlf: Option<bool>,
    lossy: bool,
    prev: u8,
    prev2: u8,
}

impl FormScan {
    fn feed(&mut self, data: &[u8]) {
        for &b in data {
            if b == b'\n' {
                let crlf = self.prev == b'\r';
                self.crlf.get_or_insert(crlf);
                if !crlf || self.prev2 == b'\r' {
                    self.lossy = true;
                }
            }
            self.prev2 = self.prev;
            self.prev = b;
        }
    }

    fn verbatim(&self) -> bool {
        self.crlf == Some(true) && self.lossy
    }
}

/// [`crlf_to_lf`] as a stream: reads CRLF (or LF) text, gives LF text.
struct LfReader<R> {
    inner: R,
    /// Converted bytes not yet handed out: `out[pos..]`.
    out: Vec<u8>,
    pos: usize,
    /// The last byte read was a CR whose fate depends on the next one.
    cr: bool,
}

impl<R: std::io::Read> LfReader<R> {
    fn new(inner: R) -> LfReader<R> {
        LfReader {
            inner,
            out: Vec::new(),
            pos: 0,
            cr: false,
        }
    }
}

impl<R: std::io::Read> std::io::Read for LfReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.out.len() {
            self.out.clear();
            self.pos = 0;
            let mut chunk = [0u8; 64 * 1024];
            let n = self.inner.read(&mut chunk)?;
            if n == 0 {
                if std::mem::take(&mut self.cr) {
                    self.out.push(b'\r');
                    break;
                }
                return Ok(0);
            }
            for &b in &chunk[..n] {
                if std::mem::take(&mut self.cr) && b != b'\n' {
                    self.out.push(b'\r');
                }
                if b == b'\r' {
                    self.cr = true;
                } else {
                    self.out.push(b);
                }
            }
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Converts CRLF to LF (a lone CR is kept).
pub fn crlf_to_lf(m: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(m.len());
    let mut i = 0;
    while i < m.len() {
        if m[i] == b'\r' && m.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(m[i]);
        i += 1;
    }
    out
}

/// One folder's state, shared by every session of this process that has
/// it selected: one library [`Mailbox`] kept in step with the files, and the
/// messages as sessions see them. A change by one session (or found on
/// disk by any) is merged in once, from the library's incremental
/// [`maildir::Changes`]; sessions then compare pointers to find what to
/// announce, instead of each rebuilding the folder from a snapshot.
struct Shared {
    mb: Mailbox,
    /// Modification times of new/, cur/ and the index at the last sync.
    stamp: Option<[Option<SystemTime>; 3]>,
    /// Those times at a STATUS's sync, when they were settled then (see
    /// [`Shared::status`]).
    trusted: Option<[Option<SystemTime>; 3]>,
    generation: u64,
    messages: Arc<Vec<Arc<MsgMeta>>>,
}

/// The shared states by folder directory. A state lives while a session
/// has its folder selected, and a little longer: the last few let go are
/// kept for [`KEEP_CLOSED`] (at most [`KEEP_MESSAGES`] messages in all), so
/// a client that logs in again, or selects the folder again, finds it warm
/// (checked against the files by its next sync, as any state is).
struct Registry {
    open: HashMap<PathBuf, Weak<Mutex<Shared>>>,
    /// When let go, how many messages, the state; oldest first.
    closed: std::collections::VecDeque<(Instant, usize, Arc<Mutex<Shared>>)>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

/// How long a folder's state is kept after its last session let it go.
const KEEP_CLOSED: Duration = Duration::from_secs(60);
/// The most messages kept in states no session has open.
const KEEP_MESSAGES: usize = 200_000;
/// The most states kept that no session has open.
const KEEP_FOLDERS: usize = 16;

impl Registry {
    fn with<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
        let mut reg = lock(&REGISTRY);
        let reg = reg.get_or_insert_with(|| Registry {
            open: HashMap::new(),
            closed: Default::default(),
        });
        f(reg)
    }

    fn find(&mut self, dir: &Path) -> Option<Arc<Mutex<Shared>>> {
        self.expire();
        let sh = self.open.get(dir).and_then(Weak::upgrade)?;
        // A state no session had open is not taken again if the index was
        // rewritten meanwhile (compacted by another process): the
        // incremental merge follows appends, a new file is read whole.
        // (One that a session took again meanwhile is that session's: the
        // list's reference and ours are then not the only ones.)
        let kept = self.closed.iter().any(|c| Arc::ptr_eq(&c.2, &sh));
        if kept && Arc::strong_count(&sh) <= 2 {
            let now = std::fs::metadata(dir.join(maildir::index::INDEX_FILE))
                .and_then(|m| m.modified())
                .ok();
            if lock(&sh).stamp.is_some_and(|s| s[2] != now) {
                self.closed.retain(|c| !Arc::ptr_eq(&c.2, &sh));
                self.open.remove(dir);
                return None;
            }
        }
        Some(sh)
    }

    /// Keeps a state its last session lets go.
    fn keep(&mut self, dir: &Path, sh: &Arc<Mutex<Shared>>) {
        let n = lock(sh).messages.len();
        if n <= KEEP_MESSAGES {
            self.closed.push_back((Instant::now(), n, sh.clone()));
        } else {
            self.open.remove(dir);
        }
        self.expire();
    }

    /// Drops kept states that are too old or too many.
    fn expire(&mut self) {
        let mut total: usize = self.closed.iter().map(|c| c.1).sum();
        let mut dropped = false;
        while let Some((at, n, _)) = self.closed.front() {
            let (at, n) = (*at, *n);
            if at.elapsed() < KEEP_CLOSED
                && total <= KEEP_MESSAGES
                && self.closed.len() <= KEEP_FOLDERS
            {
                break;
            }
            self.closed.pop_front();
            total -= n;
            dropped = true;
        }
        if dropped {
            self.open.retain(|_, w| w.strong_count() > 0);
        }
    }
}

/// A lock that a panicking holder left is still usable: every update of
/// [`Shared`] leaves it consistent (a half-merged change set is merged again
/// from the files at the next sync, which compares with the index).
fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// The shared state of a folder, opened if no session has it.
    fn get(folder: &maildir::Folder) -> StoreResult<Arc<Mutex<Shared>>> {
        if let Some(sh) = Registry::with(|r| r.find(folder.path())) {
            return Ok(sh);
        }
        // Opened without the registry's lock (a large folder takes a while
        // and other sessions select other folders meanwhile); a session
        // that opened it at the same time wins.
        let mb = folder.open().map_err(err)?;
        let mut sh = Shared {
            mb,
            stamp: None,
            trusted: None,
            generation: 1,
            messages: Arc::default(),
        };
        sh.rebuild();
        let sh = Arc::new(Mutex::new(sh));
        Ok(Registry::with(|r| {
            if let Some(other) = r.find(folder.path()) {
                return other;
            }
            r.open
                .insert(folder.path().to_path_buf(), Arc::downgrade(&sh));
            sh
        }))
    }

    fn meta(&self, m: &maildir::Message) -> Arc<MsgMeta> {
        Arc::new(MsgMeta {
            uid: m.uid.0,
            flags: from_lib(&self.mb, m),
            modseq: m.modseq.0,
            internal_date: m.internal_date,
            size: m.vsize,
            recent: false,
        })
    }

    /// Every message again (first open, or UIDVALIDITY changed).
    fn rebuild(&mut self) {
        let all = self.mb.messages().map(|m| self.meta(m)).collect();
        self.messages = Arc::new(all);
        self.generation += 1;
    }

    /// Folds the library's changes into the shared messages.
    fn absorb(&mut self, c: &maildir::Changes) {
        if c.validity_changed {
            self.rebuild();
            return;
        }
        if c.is_empty() {
            return;
        }
        let mut msgs = std::mem::take(&mut self.messages);
        let v = Arc::make_mut(&mut msgs);
        if !c.expunged.is_empty() {
            let gone: HashSet<u32> = c.expunged.iter().map(|u| u.0).collect();
            v.retain(|m| !gone.contains(&m.uid));
        }
        for uid in &c.changed {
            if let (Ok(i), Some(m)) = (v.binary_search_by_key(&uid.0, |m| m.uid), self.mb.get(*uid))
            {
                v[i] = self.meta(m);
            }
        }
        for uid in &c.added {
            let Some(m) = self.mb.get(*uid) else { continue };
            let meta = self.meta(m);
            match v.binary_search_by_key(&uid.0, |m| m.uid) {
                Ok(i) => v[i] = meta,
                Err(i) => v.insert(i, meta),
            }
        }
        self.messages = msgs;
        self.generation += 1;
    }

    /// STATUS: brought up to date if the files changed since the last
    /// look (`stamp`), without claiming what waits in `new/` (that is
    /// \Recent for the session that claims it, and counted as RECENT
    /// here while it waits).
    ///
    /// The files are looked at unless their times are those of an earlier
    /// STATUS's look and were more than two seconds old then: a time in
    /// the last two seconds may hide a second change in the same clock
    /// tick (the library trusts a directory's mtime only once it is that
    /// old, too). `taken`: when `stamp` was read.
    fn status(
        &mut self,
        stamp: [Option<SystemTime>; 3],
        taken: SystemTime,
    ) -> StoreResult<FolderStatus> {
        if self.trusted != Some(stamp) {
            let c = self.mb.sync_keep_new().map_err(err)?;
            self.absorb(&c);
            if !self.mb.moves_new() {
                // A claiming session must still look at new/ itself.
                self.stamp = Some(stamp);
            }
            let settled = stamp.iter().flatten().all(|t| {
                taken
                    .duration_since(*t)
                    .is_ok_and(|d| d > Duration::from_secs(2))
            });
            self.trusted = settled.then_some(stamp);
        }
        let mb = &self.mb;
        let mut st = FolderStatus {
            uidnext: mb.uid_next().0,
            uidvalidity: mb.uid_validity(),
            highest_modseq: mb.highest_modseq().0,
            ..FolderStatus::default()
        };
        for m in mb.messages() {
            st.messages += 1;
            st.size += m.vsize;
            if m.loc == Loc::New {
                st.recent += 1;
            }
            if !m.flags.flags.contains(Flags::SEEN) {
                st.unseen += 1;
            }
            if m.flags.flags.contains(Flags::TRASHED) {
                st.deleted += 1;
            }
        }
        Ok(st)
    }

    /// Folds in what an operation of a session just did.
    fn absorb_pending(&mut self) {
        let c = self.mb.take_pending();
        self.absorb(&c);
    }
}

/// Modification times of a folder's `new/`, `cur/` and UID index.
fn stamp_of(dir: &Path) -> [Option<SystemTime>; 3] {
    let t = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    [
        t(dir.join("new")),
        t(dir.join("cur")),
        t(dir.join(maildir::index::INDEX_FILE)),
    ]
}

/// An open folder: this session's handle on the shared state, and its own
/// \Recent set.
pub struct MaildirFolder {
    md: Maildir,
    dir: PathBuf,
    shared: Arc<Mutex<Shared>>,
    /// \Recent for this session: what it moved out of new/ (read-write) or
    /// found there (read-only).
    recent: HashSet<u32>,
    /// Read-only sessions: the highest UID looked at for \Recent.
    seen_uid: u32,
    /// The shared generation at this session's last [`Folder::state`].
    generation: u64,
    /// The times [`Folder::changed`] found different, for the
    /// [`Folder::state`] that follows it (taken before the sync, as
    /// `state` would take them: a change after them shows next time).
    checked: Option<[Option<SystemTime>; 3]>,
    /// The user's limits, for COPY.
    quota: maildir::quota::Limits,
}

impl MaildirFolder {
    fn stamp_now(&self) -> [Option<SystemTime>; 3] {
        stamp_of(&self.dir)
    }

    /// After this session's own change of `cur/` and the index (folded in
    /// already): when the folder had not changed on disk since the last
    /// sync, the times those two have now are this change's, so other
    /// sessions need not read `cur/` again to learn what the state already
    /// says. `new/` keeps its time from before: a delivery meanwhile still
    /// shows.
    fn own_change(&self, sh: &mut Shared, before: [Option<SystemTime>; 3]) {
        if sh.stamp == Some(before) {
            let after = self.stamp_now();
            sh.stamp = Some([before[0], after[1], after[2]]);
        }
    }

    fn dest(&self, name: &str) -> StoreResult<maildir::Folder> {
        let f = self.md.folder(name).map_err(err)?;
        if !f.exists() {
            return Err(StoreError::NoSuchFolder);
        }
        Ok(f)
    }
}

impl Drop for MaildirFolder {
    fn drop(&mut self) {
        // The last session hands the state to the registry to keep for a
        // while (no other session can take it meanwhile: the registry's
        // lock is held).
        Registry::with(|r| {
            if Arc::strong_count(&self.shared) == 1 {
                r.keep(&self.dir, &self.shared);
            }
        });
    }
}

impl Folder for MaildirFolder {
    fn changed(&mut self) -> bool {
        let (generation, stamp) = {
            let sh = lock(&self.shared);
            (sh.generation, sh.stamp)
        };
        if generation != self.generation {
            return true;
        }
        let now = self.stamp_now();
        if stamp == Some(now) {
            return false;
        }
        self.checked = Some(now);
        true
    }

    fn state(&mut self, claim_recent: bool) -> StoreResult<State> {
        let stamp = match self.checked.take() {
            Some(s) => s,
            None => self.stamp_now(),
        };
        let mut sh = lock(&self.shared);
        let mut recent = Vec::new();
        // A read-write session that has not yet claimed must look in new/
        // even when nothing changed since another session's sync.
        if sh.stamp != Some(stamp) || (claim_recent && self.generation == 0) {
            sh.mb.set_move_new(claim_recent);
            let changes = sh.mb.sync().map_err(err)?;
            sh.absorb(&changes);
            sh.stamp = Some(stamp);
            if claim_recent {
                for u in &changes.recent {
                    if self.recent.insert(u.0) {
                        recent.push(u.0);
                    }
                }
            }
        }
        if !claim_recent {
            // What waits in new/ is \Recent for an EXAMINE (it moves nothing).
            let mut fresh: Vec<u32> = sh
                .mb
                .messages()
                .rev()
                .take_while(|m| m.uid.0 > self.seen_uid)
                .filter(|m| m.loc == Loc::New)
                .map(|m| m.uid.0)
                .collect();
            fresh.reverse();
            self.seen_uid = sh.mb.uid_next().0.saturating_sub(1).max(self.seen_uid);
            for u in fresh {
                if self.recent.insert(u) {
                    recent.push(u);
                }
            }
        }
        self.generation = sh.generation;
        Ok(State {
            generation: sh.generation,
            uidvalidity: sh.mb.uid_validity(),
            uidnext: sh.mb.uid_next().0,
            highest_modseq: sh.mb.highest_modseq().0,
            messages: sh.messages.clone(),
            recent,
        })
    }

    fn store_flags(
        &mut self,
        uids: &[u32],
        mode: StoreMode,
        change: &MsgFlags,
        unchanged_since: Option<u64>,
    ) -> StoreResult<Vec<Stored>> {
        let (fl, kws) = to_lib(change, mode == StoreMode::Remove);
        let op = match mode {
            StoreMode::Replace => FlagOp::Set,
            StoreMode::Add => FlagOp::Add,
            StoreMode::Remove => FlagOp::Remove,
        };
        let since = unchanged_since.map(maildir::ModSeq);
        let lib_uids: Vec<Uid> = uids.iter().map(|u| Uid(*u)).collect();
        let mut sh = lock(&self.shared);
        let before = self.stamp_now();
        let r = sh.mb.store(&lib_uids, op, fl, &kws, since);
        sh.absorb_pending();
        self.own_change(&mut sh, before);
        let r = r.map_err(err)?;
        let changed: HashSet<u32> = r.changed.iter().map(|u| u.0).collect();
        let modified: HashSet<u32> = r.modified.iter().map(|u| u.0).collect();
        let mb = &sh.mb;
        Ok(uids
            .iter()
            .map(|uid| match mb.get(Uid(*uid)) {
                _ if modified.contains(uid) => Stored::Modified,
                Some(m) => Stored::Done {
                    flags: from_lib(mb, m),
                    modseq: m.modseq.0,
                    changed: changed.contains(uid),
                },
                None => Stored::Gone,
            })
            .collect())
    }

    fn read(&mut self, uid: u32) -> StoreResult<Vec<u8>> {
        // open_message follows a rename by another session (flags); the
        // file is read without holding the shared state.
        let mut f = lock(&self.shared).mb.open_message(Uid(uid)).map_err(err)?;
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut data)
            .map_err(|e| StoreError::Temporary(e.to_string()))?;
        Ok(data)
    }

    fn open_message(&mut self, uid: u32) -> StoreResult<std::fs::File> {
        lock(&self.shared).mb.open_message(Uid(uid)).map_err(err)
    }

    fn header(&mut self, uid: u32) -> StoreResult<Vec<u8>> {
        let f = lock(&self.shared).mb.open_message(Uid(uid)).map_err(err)?;
        let mut r = std::io::BufReader::new(f);
        let mut data = Vec::new();
        // Line by line up to the blank line: the body is never read.
        loop {
            let n = std::io::BufRead::read_until(&mut r, b'\n', &mut data)
                .map_err(|e| StoreError::Temporary(e.to_string()))?;
            let line_start = data.len() - n;
            let line = &data[line_start..];
            if n == 0 || line == b"\n" || line == b"\r\n" {
                break;
            }
            if data.len() >= super::sortkey::MAX_HEADER {
                data.truncate(super::sortkey::MAX_HEADER);
                break;
            }
        }
        Ok(data)
    }

    fn sort_cache_path(&self) -> Option<std::path::PathBuf> {
        Some(self.dir.join(SORT_CACHE_FILE))
    }

    fn sort_cache_load(&mut self) -> Option<Vec<u8>> {
        std::fs::read(self.dir.join(SORT_CACHE_FILE)).ok()
    }

    fn sort_cache_append(&mut self, lines: &[u8]) {
        use std::io::Write;
        // One write with O_APPEND: lines of concurrent sessions do not mix.
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join(SORT_CACHE_FILE));
        if let Ok(mut f) = f {
            let _ = f.write_all(lines);
        }
    }

    fn sort_cache_replace(&mut self, data: &[u8]) {
        let _ = maildir::replace::write_atomic(&self.dir.join(SORT_CACHE_FILE), data);
    }

    fn copy(&mut self, uids: &[u32], dest: &str) -> StoreResult<(u32, Vec<(u32, u32)>)> {
        let d = self.dest(dest)?;
        let u: Vec<Uid> = uids.iter().map(|u| Uid(*u)).collect();
        let mut sh = lock(&self.shared);
        // Every folder is under the one quota root: a copy adds to it (a
        // move does not, and is never refused for quota: it is how a full
        // mailbox empties into Trash).
        let (bytes, count) = u
            .iter()
            .filter_map(|x| sh.mb.get(*x))
            .fold((0u64, 0u64), |(b, n), m| (b + m.size, n + 1));
        let usage = self.md.quota(Some(self.quota)).map_err(err)?;
        if count > 0 && usage.would_exceed_by(bytes, count) {
            return Err(StoreError::OverQuota);
        }
        let r = sh.mb.copy(&u, &d);
        sh.absorb_pending();
        let r = r.map_err(err)?;
        Ok((
            r.uid_validity,
            r.pairs.iter().map(|(a, b)| (a.0, b.0)).collect(),
        ))
    }

    fn move_to(&mut self, uids: &[u32], dest: &str) -> StoreResult<(u32, Vec<(u32, u32)>)> {
        let d = self.dest(dest)?;
        let u: Vec<Uid> = uids.iter().map(|u| Uid(*u)).collect();
        let mut sh = lock(&self.shared);
        let before = self.stamp_now();
        let r = sh.mb.move_to(&u, &d);
        sh.absorb_pending();
        self.own_change(&mut sh, before);
        let r = r.map_err(err)?;
        Ok((
            r.uid_validity,
            r.pairs.iter().map(|(a, b)| (a.0, b.0)).collect(),
        ))
    }

    fn release(&mut self) {
        // The state is shared and stays while any session has the folder
        // selected; this session holds only its view.
    }

    fn expunge(&mut self, uids: &[u32]) -> StoreResult<()> {
        let u: Vec<Uid> = uids.iter().map(|u| Uid(*u)).collect();
        let mut sh = lock(&self.shared);
        let before = self.stamp_now();
        let r = sh.mb.expunge(&u);
        sh.absorb_pending();
        self.own_change(&mut sh, before);
        r.map_err(err)?;
        Ok(())
    }

    fn expunged_since(&mut self, modseq: u64) -> StoreResult<Option<Vec<u32>>> {
        let v = lock(&self.shared)
            .mb
            .expunged_since(maildir::ModSeq(modseq));
        Ok(v.map(|v| v.into_iter().map(|u| u.0).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Reads through `LfReader` in pieces of `n` bytes at most.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn streamed_conversion_matches_the_whole_one() {
        let text = b"a\r\nb\rc\r\r\nd\n\r";
        for n in 1..=text.len() {
            let mut got = Vec::new();
            LfReader::new(Trickle(text, n))
                .read_to_end(&mut got)
                .unwrap();
            assert_eq!(got, crlf_to_lf(text), "pieces of {n}");
        }
    }

    #[test]
    fn a_crlf_message_with_bare_lfs_is_stored_verbatim() {
        let table: &[(&[u8], bool)] = &[
            (b"A: b\r\n\r\nx\ny\r\n", true),
            (b"A: b\r\n\r\nx\r\r\n", true),
            (b"A: b\r\n\r\nx\r\ny\r\n", false),
            (b"A: b\r\n\r\nx\ry\r\n", false),
            // LF text: its line ends are line ends.
            (b"A: b\n\nx\ny\r\n", false),
            (b"A: b", false),
        ];
        for (text, want) in table {
            for n in 1..=text.len() {
                let mut scan = FormScan::default();
                for piece in text.chunks(n) {
                    scan.feed(piece);
                }
                assert_eq!(scan.verbatim(), *want, "{text:?} in pieces of {n}");
            }
        }
    }
}
