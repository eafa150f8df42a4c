//! The drop directory: the one durable way into the queue.
//!
//! kmp-smtpd and kmp-inject write a message with [`Incoming`]: create it,
//! [`Incoming::write`] its bytes (LF line endings), then [`Incoming::commit`]
//! it with its envelope. Only when `commit` returns may the caller answer 250
//! or exit 0. [`kick`] then wakes kmp-send. Nothing else writes here but
//! kmp-send's own bounces, which go through the same door.
//!
//! One durable write per message: the envelope is appended to the message
//! file as a trailer (the JSON of [`Dropped`], then a fixed-size footer
//! giving its length), the file is fsynced once, renamed into `new/` (a
//! rename that never replaces a name: [`crate::sys::rename`]), and `new/`
//! is fsynced by [`crate::sys::dirsync`], which lets one directory fsync
//! serve every session of the process committing at the same time (group
//! commit; each commit announces itself before its file's fsync, so a
//! round about to start waits a moment for the sessions just behind).
//! kmp-send strips the trailer (`strip_envelope`) once the envelope is in
//! its index, so the file it hands to the delivery agents is the message
//! and nothing else.
//!
//! Files (see the state table in `queue/mod.rs`):
//! - `incoming/tmp/QID`: a message being written. Removed when the writer
//!   drops it uncommitted; left behind only by a crash, and then removed by
//!   kmp-send when it is old.
//! - `incoming/new/QID`: a committed message with its envelope trailer. The
//!   rename into `new/` is the commit point: before it the message does not
//!   exist for anyone.
//! - `incoming/env/QID`: the envelope as a file of its own, as versions
//!   before the trailer wrote it; still read when present, never written.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Envelope, QueueError, QueueId};

/// Mode of message files: the queue manager reads them, and cuts the
/// envelope trailer off, through the drop group.
const FILE_MODE: u32 = 0o660;

/// How many times a commit draws a new id when its id is taken (a clash needs
/// two writers in the same microsecond drawing the same 16 random bits).
const MAX_ID_CLASHES: usize = 8;

/// The footer after the envelope trailer: `\nkmp-envelope `, the JSON's
/// length in 16 hex digits, `\n`.
const FOOTER_TAG: &[u8] = b"\nkmp-envelope ";
/// Length of the footer.
pub const FOOTER_LEN: u64 = 14 + 16 + 1;
/// The largest envelope trailer read back (100,000 recipients fit).
const MAX_ENVELOPE: u64 = 64 << 20;

/// The envelope trailer of a committed message (and what an old
/// `incoming/env/QID` holds).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dropped {
    pub v: u32,
    /// Milliseconds since the epoch when the message was committed.
    pub arrived_ms: u64,
    pub envelope: Envelope,
}

/// The version of [`Dropped`] written now.
pub const DROPPED_VERSION: u32 = 1;

/// An open message being written into `incoming/tmp/`. Dropping it without
/// [`Incoming::commit`] removes what was written.
pub struct Incoming {
    dir: PathBuf,
    id: QueueId,
    out: Option<BufWriter<File>>,
    size: u64,
    committed: bool,
}

impl Incoming {
    /// Opens a new message file in `incoming_dir/tmp/`, creating the drop
    /// directory's parts if they are missing.
    pub fn create(incoming_dir: &Path) -> Result<Incoming, QueueError> {
        let mut last = None;
        let mut made_dirs = false;
        for _ in 0..MAX_ID_CLASHES {
            let id = QueueId::now();
            let path = incoming_dir.join("tmp").join(id.as_str());
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(FILE_MODE)
                .open(&path)
            {
                Ok(f) => {
                    // The caller's umask (a user running sendmail) must not
                    // take away the group's read and write: kmp-send reads
                    // the file and cuts the envelope off through the group.
                    f.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
                        .map_err(|e| QueueError::io("chmod", &path, e))?;
                    return Ok(Incoming {
                        dir: incoming_dir.to_path_buf(),
                        id,
                        out: Some(BufWriter::with_capacity(64 * 1024, f)),
                        size: 0,
                        committed: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                // `kmpctl setup` makes the directories (kmpq:kmpdrop 2770);
                // in an instance without privileges the first writer makes
                // them, once.
                Err(e) if e.kind() == io::ErrorKind::NotFound && !made_dirs => {
                    made_dirs = true;
                    for sub in ["tmp", "new"] {
                        let p = incoming_dir.join(sub);
                        std::fs::DirBuilder::new()
                            .recursive(true)
                            .mode(0o2770)
                            .create(&p)
                            .map_err(|e| QueueError::io("create", &p, e))?;
                    }
                }
                Err(e) => return Err(QueueError::io("create", &path, e)),
            }
        }
        Err(QueueError::io(
            "create",
            &incoming_dir.join("tmp"),
            last.unwrap_or_else(|| io::Error::other("id clash")),
        ))
    }

    /// The id the message will have once committed.
    pub fn id(&self) -> &QueueId {
        &self.id
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends message bytes (LF line endings, dot-stuffing undone).
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), QueueError> {
        let path = self.tmp_path();
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| QueueError::io("write", &path, io::Error::other("already closed")))?;
        out.write_all(bytes)
            .map_err(|e| QueueError::io("write", &path, e))?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Makes the message durable and hands it to the queue manager. Returns
    /// its queue id; only then may the caller say the message is accepted.
    ///
    /// One fsync of the file (message and envelope trailer together) and a
    /// share of one fsync of `new/` (see [`crate::sys::dirsync`]).
    pub fn commit(mut self, env: &Envelope) -> Result<QueueId, QueueError> {
        if env.recipients.is_empty() {
            return Err(QueueError::BadEnvelope("no recipients".into()));
        }
        let tmp = self.tmp_path();
        let dropped = Dropped {
            v: DROPPED_VERSION,
            arrived_ms: crate::clock::Clock::System.now_ms(),
            envelope: env.clone(),
        };
        let trailer = trailer(&dropped);
        let mut out = self
            .out
            .take()
            .ok_or_else(|| QueueError::io("write", &tmp, io::Error::other("already closed")))?;
        out.write_all(&trailer)
            .map_err(|e| QueueError::io("write", &tmp, e))?;
        let file = out
            .into_inner()
            .map_err(|e| QueueError::io("write", &tmp, e.into_error()))?;
        // Announced to the group commit of new/: a round starting while
        // this file is synced waits for its entry (see sys::dirsync).
        let new_dir = self.dir.join("new");
        let coming = crate::sys::dirsync::coming(&new_dir);
        // Crash before this sync ends: only tmp/QID exists, perhaps half
        // written; the caller has not said yes, and kmp-send removes the file
        // when old. After it, message and envelope are durable together.
        crate::stats::fsync();
        file.sync_all()
            .map_err(|e| QueueError::io("fsync", &tmp, e))?;
        drop(file);
        let mut clashes = 0;
        let mut made_new = false;
        loop {
            let new = new_dir.join(self.id.as_str());
            // The commit point: one rename that never replaces a name, so an
            // id clash is EEXIST and not an overwrite (as a link would be,
            // in one directory operation instead of link and unlink). Crash
            // before it: only tmp/QID. After it: new/QID alone (with the
            // link-and-unlink fallback of file systems that cannot rename
            // without replacing, a crash between leaves tmp/QID as a second
            // name, which kmp-send removes once the id is queued).
            match crate::sys::rename::rename_noreplace(&self.tmp_path(), &new) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && clashes < MAX_ID_CLASHES => {
                    // Another message took this id: move ours to a fresh one.
                    // (The trailer does not name the id, so it stays right.)
                    clashes += 1;
                    let old_tmp = self.tmp_path();
                    self.id = QueueId::now();
                    fs::rename(&old_tmp, self.tmp_path())
                        .map_err(|e| QueueError::io("rename", &old_tmp, e))?;
                }
                // new/ went missing since `create` (which makes it only
                // when tmp/ is missing too): made once, as there.
                Err(e) if e.kind() == io::ErrorKind::NotFound && !made_new => {
                    made_new = true;
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o2770)
                        .create(&new_dir)
                        .map_err(|e| QueueError::io("create", &new_dir, e))?;
                }
                Err(e) => return Err(QueueError::io("rename", &new, e)),
            }
        }
        // Nothing is left in tmp/ to remove, whatever happens next.
        self.committed = true;
        // The rename is the commit; syncing the directory makes it durable.
        // Crash before the sync: the message may or may not be in new/ after
        // reboot (or, on a file system without a journal, which writes the
        // two directories independently, in neither: fsck puts the file in
        // lost+found), and the caller has not been told yes: all are
        // correct. The sync is shared with the other commits of this
        // process.
        coming
            .sync()
            .map_err(|e| QueueError::io("fsync", &new_dir, e))?;
        Ok(self.id.clone())
    }

    fn tmp_path(&self) -> PathBuf {
        self.dir.join("tmp").join(self.id.as_str())
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.committed {
            self.out = None;
            let _ = fs::remove_file(self.tmp_path());
        }
    }
}

/// The envelope trailer: the JSON of `dropped`, then the footer.
fn trailer(dropped: &Dropped) -> Vec<u8> {
    // Invariant: a Dropped is plain strings, numbers and flags; it always serialises.
    let mut out = serde_json::to_vec(dropped).expect("envelope serialises");
    let len = out.len();
    out.extend_from_slice(FOOTER_TAG);
    out.extend_from_slice(format!("{len:016x}\n").as_bytes());
    out
}

/// The length of the envelope JSON before the footer that ends `file`, if
/// `file` (of `len` bytes) ends with one.
fn footer(file: &File, len: u64) -> io::Result<Option<u64>> {
    if len < FOOTER_LEN {
        return Ok(None);
    }
    let mut buf = [0u8; FOOTER_LEN as usize];
    file.read_exact_at(&mut buf, len - FOOTER_LEN)?;
    let (tag, rest) = buf.split_at(FOOTER_TAG.len());
    if tag != FOOTER_TAG || rest[16] != b'\n' {
        return Ok(None);
    }
    let json = std::str::from_utf8(&rest[..16])
        .ok()
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .filter(|&j| j <= MAX_ENVELOPE && j + FOOTER_LEN <= len);
    Ok(json)
}

/// A committed message's envelope and the size of the message without it,
/// from the trailer of the file at `path`.
pub fn read_trailer(path: &Path) -> Result<(Dropped, u64), QueueError> {
    let f = File::open(path).map_err(|e| QueueError::io("open", path, e))?;
    let len = f
        .metadata()
        .map_err(|e| QueueError::io("stat", path, e))?
        .len();
    let json = footer(&f, len)
        .map_err(|e| QueueError::io("read", path, e))?
        .ok_or_else(|| QueueError::Corrupt(format!("{}: no envelope trailer", path.display())))?;
    let size = len - FOOTER_LEN - json;
    let mut body = vec![0u8; json as usize];
    f.read_exact_at(&mut body, size)
        .map_err(|e| QueueError::io("read", path, e))?;
    let d = serde_json::from_slice(&body)
        .map_err(|e| QueueError::Corrupt(format!("{}: {e}", path.display())))?;
    Ok((d, size))
}

/// Cuts the envelope trailer off the message file at `path`, leaving its
/// first `size` bytes (the message). Does nothing to a file of `size` bytes
/// already, and refuses to cut a file that does not end with a footer.
///
/// Not synced: a crash may bring the trailer back, and kmp-send cuts it
/// again on start before any delivery (the index keeps the size).
pub fn strip_envelope(path: &Path, size: u64) -> Result<(), QueueError> {
    let f = OpenOptions::new()
        .write(true)
        .read(true)
        .open(path)
        .map_err(|e| QueueError::io("open", path, e))?;
    let len = f
        .metadata()
        .map_err(|e| QueueError::io("stat", path, e))?
        .len();
    if len == size {
        return Ok(());
    }
    match footer(&f, len).map_err(|e| QueueError::io("read", path, e))? {
        Some(json) if len - FOOTER_LEN - json == size => f
            .set_len(size)
            .map_err(|e| QueueError::io("truncate", path, e)),
        _ => Err(QueueError::Corrupt(format!(
            "{}: {len} bytes, expected {size} and an envelope trailer",
            path.display()
        ))),
    }
}

/// Wakes kmp-send: one datagram on its kick socket. Best effort: if kmp-send
/// is not running, its slow scan or its start finds the message.
pub fn kick(kick_socket: &Path) {
    // One unbound socket per process serves every kick.
    static SOCKET: std::sync::OnceLock<Option<std::os::unix::net::UnixDatagram>> =
        std::sync::OnceLock::new();
    let s = SOCKET.get_or_init(|| {
        let s = std::os::unix::net::UnixDatagram::unbound().ok()?;
        s.set_nonblocking(true).ok()?;
        Some(s)
    });
    if let Some(s) = s {
        let _ = s.send_to(b"k", kick_socket);
    }
}

/// Reads the envelope of a committed message `incoming/new/QID`: from an
/// old-style `incoming/env/QID` if there is one, else from its trailer.
/// Returns it with the size of the message alone.
pub fn read_committed(incoming_dir: &Path, id: &QueueId) -> Result<(Dropped, u64), QueueError> {
    let msg = incoming_dir.join("new").join(id.as_str());
    let p = incoming_dir.join("env").join(id.as_str());
    match fs::read(&p) {
        Ok(body) => {
            let d = serde_json::from_slice(&body)
                .map_err(|e| QueueError::Corrupt(format!("{}: {e}", p.display())))?;
            let size = fs::metadata(&msg)
                .map_err(|e| QueueError::io("stat", &msg, e))?
                .len();
            Ok((d, size))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => read_trailer(&msg),
        Err(e) => Err(QueueError::io("read", &p, e)),
    }
}

/// Reads the envelope of a committed message `incoming/new/QID`.
pub fn read_dropped(incoming_dir: &Path, id: &QueueId) -> Result<Dropped, QueueError> {
    read_committed(incoming_dir, id).map(|(d, _)| d)
}

/// The bytes of a committed message `incoming/new/QID` without its envelope.
pub fn read_message(incoming_dir: &Path, id: &QueueId) -> Result<Vec<u8>, QueueError> {
    let (_, size) = read_committed(incoming_dir, id)?;
    let p = incoming_dir.join("new").join(id.as_str());
    let mut body = fs::read(&p).map_err(|e| QueueError::io("read", &p, e))?;
    body.truncate(size as usize);
    Ok(body)
}

/// Normalises line endings to LF: CRLF and bare CR become LF.
pub fn to_lf(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'\r' => {
                out.push(b'\n');
                if input.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Recipient;

    fn env() -> Envelope {
        Envelope::new("a@example.test", vec![Recipient::new("b@example.test")])
    }

    /// The drop directory's parts are made by the first writer, and a
    /// `new/` removed behind a writer's back is made again at its commit.
    #[test]
    fn missing_drop_directories_are_made_when_needed() {
        let dir = tempfile::tempdir().unwrap();
        let inc = dir.path().join("incoming");
        let mut m = Incoming::create(&inc).unwrap();
        assert!(inc.join("tmp").is_dir() && inc.join("new").is_dir());
        fs::remove_dir(inc.join("new")).unwrap();
        m.write(b"Subject: x\n\nbody\n").unwrap();
        let id = m.commit(&env()).unwrap();
        assert_eq!(read_message(&inc, &id).unwrap(), b"Subject: x\n\nbody\n");
        assert!(!inc.join("tmp").join(id.as_str()).exists());
    }

    #[test]
    fn commit_renames_into_new_with_its_envelope() {
        let dir = tempfile::tempdir().unwrap();
        let inc = dir.path().join("incoming");
        let mut m = Incoming::create(&inc).unwrap();
        m.write(b"Subject: x\n\nbody\n").unwrap();
        let id = m.commit(&env()).unwrap();
        assert_eq!(read_message(&inc, &id).unwrap(), b"Subject: x\n\nbody\n");
        assert!(!inc.join("tmp").join(id.as_str()).exists());
        assert!(!inc.join("env").join(id.as_str()).exists());
        let mode = fs::metadata(inc.join("new").join(id.as_str()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o660);
        let (d, size) = read_committed(&inc, &id).unwrap();
        assert_eq!((d.envelope, size), (env(), 17));
        let path = inc.join("new").join(id.as_str());
        strip_envelope(&path, size).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"Subject: x\n\nbody\n");
        // Once cut, again is nothing; a wrong size is refused, not cut.
        strip_envelope(&path, size).unwrap();
        assert!(strip_envelope(&path, 3).is_err());
        assert_eq!(fs::metadata(&path).unwrap().len(), 17);
    }

    #[test]
    fn a_message_ending_like_a_footer_keeps_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let inc = dir.path().join("incoming");
        let mut m = Incoming::create(&inc).unwrap();
        let body = b"x\n{}\nkmp-envelope 0000000000000002\n";
        m.write(body).unwrap();
        let id = m.commit(&env()).unwrap();
        assert_eq!(read_message(&inc, &id).unwrap(), body);
    }

    #[test]
    fn an_old_style_envelope_file_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let inc = dir.path().join("incoming");
        for sub in ["new", "env"] {
            fs::create_dir_all(inc.join(sub)).unwrap();
        }
        let id = QueueId::now();
        fs::write(inc.join("new").join(id.as_str()), b"Subject: old\n\n").unwrap();
        let d = Dropped {
            v: 1,
            arrived_ms: 5,
            envelope: env(),
        };
        fs::write(
            inc.join("env").join(id.as_str()),
            serde_json::to_vec(&d).unwrap(),
        )
        .unwrap();
        let (got, size) = read_committed(&inc, &id).unwrap();
        assert_eq!((got.arrived_ms, size), (5, 14));
        assert_eq!(read_message(&inc, &id).unwrap(), b"Subject: old\n\n");
    }

    #[test]
    fn a_dropped_message_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let inc = dir.path().join("incoming");
        let mut m = Incoming::create(&inc).unwrap();
        m.write(b"half").unwrap();
        drop(m);
        assert_eq!(fs::read_dir(inc.join("tmp")).unwrap().count(), 0);
        assert_eq!(fs::read_dir(inc.join("new")).unwrap().count(), 0);
        let m = Incoming::create(&inc).unwrap();
        let none = Envelope::new("a@example.test", vec![]);
        assert!(matches!(m.commit(&none), Err(QueueError::BadEnvelope(_))));
        assert_eq!(fs::read_dir(inc.join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn line_endings_become_lf() {
        assert_eq!(to_lf(b"a\r\nb\rc\n\r\n"), b"a\nb\nc\n\n");
        assert_eq!(to_lf(b""), b"");
    }
}
