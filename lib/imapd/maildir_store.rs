//! [`MailStore`] and [`Folder`] over the project's Maildir library
//! (`crate::maildir`): the only place kmp-imapd meets the Maildir.
//!
//! Flags: `S` \Seen, `R` \Answered, `F` \Flagged, `T` \Deleted, `D` \Draft;
//! `P` (passed) is shown as the keyword `$Forwarded`, as Dovecot does.
//! \Recent is what was in `new/` when this session looked: a read-write
//! session moves it to `cur/`, so only one session sees it as recent.
//! APPEND, COPY and MOVE put messages in `new/` (the Maildir library does),
//! so they are \Recent for the next session that selects the folder, or for
//! the appending session itself when it has the folder selected.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::store::*;
use crate::maildir::{self, FlagOp, Flags, Loc, Mailbox, Maildir, Uid};
use crate::proto::imap::StoreMode;

/// The keyword that stands for Maildir's `P` flag.
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
        let md = if root.join("cur").is_dir() {
            Maildir::new(root)
        } else {
            Maildir::create(root).map_err(err)?
        };
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

fn to_lib(f: &MsgFlags) -> (Flags, Vec<&str>) {
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
        if k.eq_ignore_ascii_case(FORWARDED) {
            fl = fl | Flags::PASSED;
        } else {
            kws.push(k.as_str());
        }
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
        let mb = folder.open().map_err(err)?;
        // \Recent is decided by the first snapshot: what a read-write
        // session moves out of new/, or what an EXAMINE finds there.
        Ok(Box::new(MaildirFolder {
            md: self.md.clone(),
            dir: folder.path().to_path_buf(),
            folder,
            mb: Some(mb),
            recent: HashSet::new(),
            stamp: None,
            dirty: true,
        }))
    }

    fn status(&mut self, name: &str) -> StoreResult<FolderStatus> {
        let mb = self.md.folder(name).map_err(err)?.open().map_err(err)?;
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
        let (fl, kws) = to_lib(flags);
        let date = internal_date.map(date_of);
        let mut scan = FormScan::default();
        scan.feed(message);
        let a = if scan.verbatim() {
            f.append_verbatim(&mut &message[..], fl, &kws, date)
        } else {
            // Stored with LF line ends, as everything in our Maildirs.
            f.append(&mut &crlf_to_lf(message)[..], fl, &kws, date)
        }
        .map_err(err)?;
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
        let (fl, kws) = to_lib(flags);
        let date = internal_date.map(date_of);
        let a = if scan.verbatim() {
            f.append_verbatim(&mut file.take(size), fl, &kws, date)
        } else {
            // Stored with LF line ends, converted as it is copied.
            let mut lf = LfReader::new(std::io::BufReader::new(file.take(size)));
            f.append(&mut lf, fl, &kws, date)
        }
        .map_err(err)?;
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

/// An open folder.
pub struct MaildirFolder {
    md: Maildir,
    dir: PathBuf,
    folder: maildir::Folder,
    /// The library's view; dropped while the session idles (memory), opened
    /// again when needed.
    mb: Option<Mailbox>,
    recent: HashSet<u32>,
    /// Modification times of new/, cur/ and the index at the last sync.
    stamp: Option<[Option<SystemTime>; 3]>,
    /// Changed by this session since the last snapshot.
    dirty: bool,
}

impl MaildirFolder {
    fn stamp_now(&self) -> [Option<SystemTime>; 3] {
        let t = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        [
            t(self.dir.join("new")),
            t(self.dir.join("cur")),
            t(self.dir.join(maildir::index::INDEX_FILE)),
        ]
    }

    /// The open mailbox, opened again after [`Folder::release`]. Messages
    /// that arrived in `new/` meanwhile become \\Recent for this session at
    /// its next snapshot, as they would have without the release.
    fn mb(&mut self) -> StoreResult<&mut Mailbox> {
        if self.mb.is_none() {
            self.mb = Some(self.folder.open().map_err(err)?);
        }
        // Invariant: set just above when it was None.
        Ok(self.mb.as_mut().expect("mailbox open"))
    }

    fn dest(&self, name: &str) -> StoreResult<maildir::Folder> {
        let f = self.md.folder(name).map_err(err)?;
        if !f.exists() {
            return Err(StoreError::NoSuchFolder);
        }
        Ok(f)
    }
}

impl Folder for MaildirFolder {
    fn changed(&mut self) -> bool {
        self.dirty || self.stamp != Some(self.stamp_now())
    }

    fn snapshot(&mut self, claim_recent: bool) -> StoreResult<Snapshot> {
        let stamp = self.stamp_now();
        let mb = self.mb()?;
        mb.set_move_new(claim_recent);
        let changes = mb.sync().map_err(err)?;
        if claim_recent {
            self.recent.extend(changes.recent.iter().map(|u| u.0));
        } else {
            let mb = self.mb()?;
            let fresh: Vec<u32> = mb
                .messages()
                .filter(|m| m.loc == Loc::New)
                .map(|m| m.uid.0)
                .collect();
            self.recent.extend(fresh);
        }
        self.stamp = Some(stamp);
        self.dirty = false;
        self.mb()?;
        let recent = &self.recent;
        // Invariant: opened by the call above.
        let mb = self.mb.as_ref().expect("mailbox open");
        Ok(Snapshot {
            uidvalidity: mb.uid_validity(),
            uidnext: mb.uid_next().0,
            highest_modseq: mb.highest_modseq().0,
            messages: mb
                .messages()
                .map(|m| MsgMeta {
                    uid: m.uid.0,
                    flags: from_lib(mb, m),
                    modseq: m.modseq.0,
                    internal_date: m.internal_date,
                    size: m.vsize,
                    recent: recent.contains(&m.uid.0),
                })
                .collect(),
        })
    }

    fn store_flags(
        &mut self,
        uids: &[u32],
        mode: StoreMode,
        change: &MsgFlags,
        unchanged_since: Option<u64>,
    ) -> StoreResult<Vec<Stored>> {
        let (fl, kws) = to_lib(change);
        let op = match mode {
            StoreMode::Replace => FlagOp::Set,
            StoreMode::Add => FlagOp::Add,
            StoreMode::Remove => FlagOp::Remove,
        };
        let since = unchanged_since.map(maildir::ModSeq);
        let lib_uids: Vec<Uid> = uids.iter().map(|u| Uid(*u)).collect();
        let mb = self.mb()?;
        let r = mb.store(&lib_uids, op, fl, &kws, since).map_err(err)?;
        self.dirty |= !r.changed.is_empty();
        let changed: HashSet<u32> = r.changed.iter().map(|u| u.0).collect();
        let modified: HashSet<u32> = r.modified.iter().map(|u| u.0).collect();
        let mb = self.mb()?;
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
        // open_message follows a rename by another session (flags).
        let mut f = self.mb()?.open_message(Uid(uid)).map_err(err)?;
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut data)
            .map_err(|e| StoreError::Temporary(e.to_string()))?;
        Ok(data)
    }

    fn header(&mut self, uid: u32) -> StoreResult<Vec<u8>> {
        let f = self.mb()?.open_message(Uid(uid)).map_err(err)?;
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
        let r = self.mb()?.copy(&u, &d).map_err(err)?;
        self.dirty = true;
        Ok((
            r.uid_validity,
            r.pairs.iter().map(|(a, b)| (a.0, b.0)).collect(),
        ))
    }

    fn move_to(&mut self, uids: &[u32], dest: &str) -> StoreResult<(u32, Vec<(u32, u32)>)> {
        let d = self.dest(dest)?;
        let u: Vec<Uid> = uids.iter().map(|u| Uid(*u)).collect();
        let r = self.mb()?.move_to(&u, &d).map_err(err)?;
        self.dirty = true;
        Ok((
            r.uid_validity,
            r.pairs.iter().map(|(a, b)| (a.0, b.0)).collect(),
        ))
    }

    fn release(&mut self) {
        self.mb = None;
    }

    fn expunge(&mut self, uids: &[u32]) -> StoreResult<()> {
        let u: Vec<Uid> = uids.iter().map(|u| Uid(*u)).collect();
        self.mb()?.expunge(&u).map_err(err)?;
        self.dirty = true;
        Ok(())
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
