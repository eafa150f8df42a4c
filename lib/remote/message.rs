//! The message of a job, read from its queue file as a stream: never whole
//! in memory, whatever its size.
//!
//! When the job arrives, one pass over the file ([`body::Summary`]) finds
//! whether it holds 8-bit data, whether its header does, and its RFC 1870
//! size. Only when a server without 8BITMIME is met is the 7-bit plan made
//! (two more passes: [`Walker::scan`], then the converted size), once per
//! job. Each transaction then reads the file again and gets the wire form in
//! blocks of [`BLOCK`] bytes from a reader thread, through a channel of
//! [`DEPTH`] blocks: LF to CRLF with dot-stuffing for DATA, CRLF only for
//! BDAT (RFC 3030), converted to 7 bits on the way when a plan is given.
//!
//! The file is read with `pread` only: its descriptor's offset is shared with
//! kmp-send's open file and must not move.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use tokio::sync::{mpsc, OnceCell};

use super::body::{DowngradeError, Summary};
use super::downgrade::{Plan, Walker};
use crate::proto::dotstuff::Encoder;

/// Bytes read from the file at a time, and the size of a block on the wire.
pub const BLOCK: usize = 256 * 1024;

/// Blocks that may wait between the reader thread and the connection.
const DEPTH: usize = 2;

/// The 7-bit form's plan and its RFC 1870 size.
pub type SevenBit = Result<(Plan, u64), DowngradeError>;

/// A job's message file and what is known about it.
pub struct Message {
    file: File,
    /// The file's length when the job came: buffers are no larger than it needs.
    len: u64,
    /// Any byte above 127.
    pub eight_bit: bool,
    /// 8-bit bytes in the top-level header section.
    pub header_8bit: bool,
    /// RFC 1870 size as it is: CRLF line ends, no dot-stuffing.
    pub size: u64,
    seven_bit: OnceCell<SevenBit>,
    /// The DKIM signer and whether the reverse path is null (a bounce).
    signer: Option<(Arc<crate::mailauth::sign::Signer>, bool)>,
    /// The DKIM-Signature fields (and the ARC set of forwarded mail) of the
    /// 8-bit form and of the 7-bit form.
    signatures: [std::sync::OnceLock<Option<Vec<u8>>>; 2],
}

/// The form a transaction sends.
#[derive(Clone)]
pub struct Form {
    /// BDAT chunks (RFC 3030) rather than DATA.
    pub chunking: bool,
    /// The 7-bit conversion to apply, if any.
    pub plan: Option<Plan>,
}

impl Message {
    /// Reads `file` once for its summary (blocking: call off the runtime).
    pub fn open(file: File) -> io::Result<Message> {
        let len = file.metadata()?.len();
        let mut s = Summary::default();
        read_blocks(&file, len, |b| {
            s.feed(b);
            true
        })?;
        let s = s.finish();
        Ok(Message {
            file,
            len,
            eight_bit: s.eight_bit,
            header_8bit: s.header_8bit,
            size: s.size,
            seven_bit: OnceCell::new(),
            signer: None,
            signatures: Default::default(),
        })
    }

    /// Signs what is sent with `signer` (see `mailauth::sign`);
    /// `null_sender` for a bounce.
    pub fn with_signer(
        mut self,
        signer: Option<Arc<crate::mailauth::sign::Signer>>,
        null_sender: bool,
    ) -> Message {
        self.signer = signer.map(|s| (s, null_sender));
        self
    }

    /// The DKIM-Signature fields (LF form) for the form `plan` makes, made
    /// on first use by one more pass over the file (blocking); None when no
    /// key applies or signing failed (logged: the mail goes unsigned
    /// rather than not at all). Forwarded mail (our Authentication-Results
    /// in its header, see `mailauth::arc`) gets an ARC set after them,
    /// made from one more pass that holds the message in memory.
    fn signature(&self, plan: Option<&Plan>) -> Option<Vec<u8>> {
        let (signer, null_sender) = self.signer.as_ref()?;
        let slot = &self.signatures[usize::from(plan.is_some())];
        slot.get_or_init(|| {
            let mut head = vec![0u8; block_for(self.len)];
            let n = self.file.read_at(&mut head, 0).ok()?;
            head.truncate(n);
            let feed = |f: &mut dyn FnMut(&[u8])| {
                let mut walker = plan.cloned().map(Walker::emit);
                let mut lf = Vec::new();
                read_blocks(&self.file, self.len, |b| {
                    match walker.as_mut() {
                        Some(w) => {
                            w.feed(b, &mut lf);
                            f(&crate::mailauth::header::crlf(&lf));
                            lf.clear();
                        }
                        None => f(&crate::mailauth::header::crlf(b)),
                    }
                    true
                })?;
                if let Some(w) = walker {
                    w.finish(&mut lf)
                        .map_err(|e| io::Error::other(e.to_string()))?;
                    f(&crate::mailauth::header::crlf(&lf));
                }
                Ok(())
            };
            let dkim = match signer.sign(&head, *null_sender, feed) {
                Ok(sig) => sig,
                Err(e) => {
                    crate::warn!("DKIM: {e}; sending unsigned");
                    None
                }
            };
            let arc = signer.arc_results(&head).and_then(|results| {
                if self.len > crate::mailauth::arc::MAX_SIZE {
                    crate::info!(
                        "ARC: not sealed: larger than {} bytes",
                        crate::mailauth::arc::MAX_SIZE
                    );
                    return None;
                }
                // The sealer needs the whole message (bounded above).
                let mut wire = Vec::with_capacity(self.len as usize + self.len as usize / 16);
                if let Err(e) = feed(&mut |b: &[u8]| wire.extend_from_slice(b)) {
                    crate::warn!("ARC: cannot read the message: {e}; sending unsealed");
                    return None;
                }
                match signer.seal(&results, &wire) {
                    Ok(set) => set,
                    Err(e) => {
                        crate::warn!("{e}; sending unsealed");
                        None
                    }
                }
            });
            match (dkim, arc) {
                (None, None) => None,
                (dkim, arc) => Some([dkim.unwrap_or_default(), arc.unwrap_or_default()].concat()),
            }
        })
        .clone()
    }

    /// The 7-bit plan and size, made on first use.
    pub async fn seven_bit(self: &Arc<Self>) -> &SevenBit {
        let me = self.clone();
        self.seven_bit
            .get_or_init(|| async move {
                match tokio::task::spawn_blocking(move || me.plan()).await {
                    Ok(r) => r,
                    Err(e) => Err(DowngradeError::CannotEncode(format!(
                        "the conversion failed: {e}"
                    ))),
                }
            })
            .await
    }

    /// Scans for the plan, then counts the converted form's size.
    fn plan(&self) -> SevenBit {
        let io_err = |e: io::Error| DowngradeError::CannotEncode(format!("cannot read: {e}"));
        let mut scan = Walker::scan();
        let mut sink = Vec::new();
        read_blocks(&self.file, self.len, |b| {
            scan.feed(b, &mut sink);
            true
        })
        .map_err(io_err)?;
        let plan = scan.finish(&mut sink)?;
        let mut size = 0u64;
        let mut emit = Walker::emit(plan.clone());
        let mut crlf = Encoder::crlf_only();
        let mut wire = Vec::new();
        let mut count = |lf: &mut Vec<u8>, wire: &mut Vec<u8>, crlf: &mut Encoder| {
            crlf.feed(lf, wire);
            size += wire.len() as u64;
            lf.clear();
            wire.clear();
        };
        read_blocks(&self.file, self.len, |b| {
            emit.feed(b, &mut sink);
            count(&mut sink, &mut wire, &mut crlf);
            true
        })
        .map_err(io_err)?;
        emit.finish(&mut sink)?;
        count(&mut sink, &mut wire, &mut crlf);
        crlf.finish(&mut wire);
        size += wire.len() as u64;
        Ok((plan, size))
    }

    /// The wire form in blocks, from a reader thread. The stream ends after
    /// the last block (for DATA, the one with the final ".CRLF"); an `Err`
    /// means the file could not be read and the transaction must not end.
    pub fn stream(self: &Arc<Self>, form: Form) -> mpsc::Receiver<io::Result<Vec<u8>>> {
        let (tx, rx) = mpsc::channel(DEPTH);
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut enc = if form.chunking {
                Encoder::crlf_only()
            } else {
                Encoder::whole()
            };
            let signature = me.signature(form.plan.as_ref());
            let mut walker = form.plan.map(Walker::emit);
            let mut lf = Vec::new();
            let room = block_for(me.len) + block_for(me.len) / 8;
            let mut out = Vec::with_capacity(room);
            if let Some(sig) = &signature {
                enc.feed(sig, &mut out);
            }
            let read = read_blocks(&me.file, me.len, |b| {
                match walker.as_mut() {
                    Some(w) => {
                        w.feed(b, &mut lf);
                        enc.feed(&lf, &mut out);
                        lf.clear();
                    }
                    None => enc.feed(b, &mut out),
                }
                if out.len() >= BLOCK {
                    let block = std::mem::replace(&mut out, Vec::with_capacity(room));
                    return tx.blocking_send(Ok(block)).is_ok();
                }
                true
            });
            if let Err(e) = read {
                let _ = tx.blocking_send(Err(e));
                return;
            }
            if let Some(w) = walker {
                // The plan came from a scan of the same file: it cannot fail now.
                if let Err(e) = w.finish(&mut lf) {
                    let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
                    return;
                }
                enc.feed(&lf, &mut out);
            }
            enc.finish(&mut out);
            let _ = tx.blocking_send(Ok(out));
        });
        rx
    }
}

/// The buffer size for a file of `len` bytes: small messages, small buffers.
fn block_for(len: u64) -> usize {
    usize::try_from(len.saturating_add(1)).map_or(BLOCK, |l| l.clamp(4096, BLOCK))
}

/// Reads `file` (`len` bytes long when the job came; it may not change, but
/// the read goes to its end whatever it is) from offset 0 in blocks with
/// `pread`, until `f` says stop.
fn read_blocks(file: &File, len: u64, mut f: impl FnMut(&[u8]) -> bool) -> io::Result<()> {
    let mut buf = vec![0u8; block_for(len)];
    let mut off = 0u64;
    loop {
        let n = match file.read_at(&mut buf, off) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 || !f(&buf[..n]) {
            return Ok(());
        }
        off += n as u64;
    }
}
