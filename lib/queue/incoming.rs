//! The drop directory: the one durable way into the queue.
//!
//! kmp-smtpd and kmp-inject write a message with [`Incoming`]: create it,
//! [`Incoming::write`] its bytes (LF line endings), then [`Incoming::commit`]
//! it with its envelope. Only when `commit` returns may the caller answer 250
//! or exit 0. [`kick`] then wakes kmp-send. Nothing else writes here but
//! kmp-send's own bounces, which go through the same door.
//!
//! Files (see the state table in `queue/mod.rs`):
//! - `incoming/tmp/QID`: a message being written. Removed when the writer
//!   drops it uncommitted; left behind only by a crash, and then removed by
//!   kmp-send when it is old.
//! - `incoming/env/QID`: the envelope (JSON), written and synced before the
//!   message is linked into `new/`, so that a message in `new/` always has one.
//! - `incoming/new/QID`: a committed message. The link into `new/` is the
//!   commit point: before it the message does not exist for anyone.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Envelope, QueueError, QueueId};
use crate::sys::fsync_dir;

/// Mode of message and envelope files: the queue manager reads them through
/// the drop group.
const FILE_MODE: u32 = 0o640;

/// How many times a commit draws a new id when its id is taken (a clash needs
/// two writers in the same microsecond drawing the same 16 random bits).
const MAX_ID_CLASHES: usize = 8;

/// What `incoming/env/QID` holds.
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
        for sub in ["tmp", "env", "new"] {
            let p = incoming_dir.join(sub);
            if !p.is_dir() {
                // `kmpctl setup` makes these (kmpq:kmpdrop 2770); in an
                // instance without privileges the first writer makes them.
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o2770)
                    .create(&p)
                    .map_err(|e| QueueError::io("create", &p, e))?;
            }
        }
        let mut last = None;
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
                    return Ok(Incoming {
                        dir: incoming_dir.to_path_buf(),
                        id,
                        out: Some(BufWriter::with_capacity(64 * 1024, f)),
                        size: 0,
                        committed: false,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
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
    pub fn commit(mut self, env: &Envelope) -> Result<QueueId, QueueError> {
        if env.recipients.is_empty() {
            return Err(QueueError::BadEnvelope("no recipients".into()));
        }
        let tmp = self.tmp_path();
        let out = self
            .out
            .take()
            .ok_or_else(|| QueueError::io("write", &tmp, io::Error::other("already closed")))?;
        let file = out
            .into_inner()
            .map_err(|e| QueueError::io("write", &tmp, e.into_error()))?;
        // Crash before this sync: only tmp/QID exists, half written; the
        // caller has not said yes, and kmp-send removes the file when old.
        crate::stats::fsync();
        file.sync_all()
            .map_err(|e| QueueError::io("fsync", &tmp, e))?;
        drop(file);
        let dropped = Dropped {
            v: DROPPED_VERSION,
            arrived_ms: crate::clock::Clock::System.now_ms(),
            envelope: env.clone(),
        };
        // Invariant: an Envelope is plain strings and flags; it always serialises.
        let body = serde_json::to_vec(&dropped).expect("envelope serialises");
        let mut clashes = 0;
        loop {
            let env_path = self.env_path();
            // Crash while writing the envelope: tmp/QID and a partial
            // env/QID exist, new/QID does not: the message was never
            // accepted; kmp-send removes both when old.
            write_synced(&env_path, &body)?;
            fsync_dir(&self.dir.join("env"))
                .map_err(|e| QueueError::io("fsync", &self.dir.join("env"), e))?;
            let new = self.dir.join("new").join(self.id.as_str());
            match fs::hard_link(&tmp, &new) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && clashes < MAX_ID_CLASHES => {
                    // Another message took this id: move ours to a fresh one.
                    clashes += 1;
                    let _ = fs::remove_file(&env_path);
                    let old_tmp = self.tmp_path();
                    self.id = QueueId::now();
                    fs::rename(&old_tmp, self.tmp_path())
                        .map_err(|e| QueueError::io("rename", &old_tmp, e))?;
                }
                Err(e) => {
                    let _ = fs::remove_file(&env_path);
                    return Err(QueueError::io("link", &new, e));
                }
            }
        }
        let tmp = self.tmp_path();
        // The link is the commit; syncing the directory makes it durable.
        // Crash before the sync: the message may or may not be in new/ after
        // reboot, and the caller has not been told yes: either is correct.
        fsync_dir(&self.dir.join("new"))
            .map_err(|e| QueueError::io("fsync", &self.dir.join("new"), e))?;
        // Crash before this unlink: tmp/QID is a second link to new/QID;
        // kmp-send removes tmp files whose id is already queued.
        let _ = fs::remove_file(&tmp);
        self.committed = true;
        Ok(self.id.clone())
    }

    fn tmp_path(&self) -> PathBuf {
        self.dir.join("tmp").join(self.id.as_str())
    }

    fn env_path(&self) -> PathBuf {
        self.dir.join("env").join(self.id.as_str())
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

/// Creates `path` exclusively with `body` and syncs it.
fn write_synced(path: &Path, body: &[u8]) -> Result<(), QueueError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|e| QueueError::io("create", path, e))?;
    f.write_all(body)
        .map_err(|e| QueueError::io("write", path, e))?;
    crate::stats::fsync();
    f.sync_all().map_err(|e| QueueError::io("fsync", path, e))
}

/// Wakes kmp-send: one datagram on its kick socket. Best effort: if kmp-send
/// is not running, its slow scan or its start finds the message.
pub fn kick(kick_socket: &Path) {
    if let Ok(s) = std::os::unix::net::UnixDatagram::unbound() {
        let _ = s.set_nonblocking(true);
        let _ = s.send_to(b"k", kick_socket);
    }
}

/// Reads the envelope of a committed message `incoming/env/QID`.
pub fn read_dropped(incoming_dir: &Path, id: &QueueId) -> Result<Dropped, QueueError> {
    let p = incoming_dir.join("env").join(id.as_str());
    let body = fs::read(&p).map_err(|e| QueueError::io("read", &p, e))?;
    serde_json::from_slice(&body).map_err(|e| QueueError::Corrupt(format!("{}: {e}", p.display())))
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

    #[test]
    fn commit_links_into_new_with_its_envelope() {
        let dir = tempfile::tempdir().unwrap();
        let inc = dir.path().join("incoming");
        let mut m = Incoming::create(&inc).unwrap();
        m.write(b"Subject: x\n\nbody\n").unwrap();
        let id = m.commit(&env()).unwrap();
        assert_eq!(
            fs::read(inc.join("new").join(id.as_str())).unwrap(),
            b"Subject: x\n\nbody\n"
        );
        assert!(!inc.join("tmp").join(id.as_str()).exists());
        let d = read_dropped(&inc, &id).unwrap();
        assert_eq!(d.envelope, env());
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
