//! The message from standard input into the queue as it is read: only the
//! header section is held in memory (up to [`MAX_HEAD`]); the body goes to
//! the queue file block by block, its CRLF made LF and, without `-i`, cut at
//! a line holding a single dot, exactly as [`super::prepare`] does for a
//! message in memory. The size limit counts the octets read and stops the
//! read as soon as it is passed; nothing is queued then.

use std::io::Read;

use super::message::{header_complete, prepare_head};
use super::{checked_recipients, envelope, Context, InjectError, Options};
use crate::queue::{Incoming, QueueId};

/// Past this many octets of header the header section is taken as it is.
pub const MAX_HEAD: usize = 1 << 20;

/// Input read at a time.
const BLOCK: usize = 64 * 1024;

/// CRLF to LF and the end-of-message dot, fed in pieces of any size.
#[derive(Debug)]
pub struct Normalizer {
    ignore_dots: bool,
    pending_cr: bool,
    at_line_start: bool,
    /// A dot at a line start, not yet known to be the line's only octet.
    pending_dot: bool,
    ended: bool,
}

impl Normalizer {
    pub fn new(ignore_dots: bool) -> Normalizer {
        Normalizer {
            ignore_dots,
            pending_cr: false,
            at_line_start: true,
            pending_dot: false,
            ended: false,
        }
    }

    /// Whether the end-of-message dot was seen: the rest is not the message.
    pub fn ended(&self) -> bool {
        self.ended
    }

    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) {
        for &b in data {
            if self.ended {
                return;
            }
            if self.pending_cr {
                self.pending_cr = false;
                if b == b'\n' {
                    self.byte(b'\n', out);
                    continue;
                }
                self.byte(b'\r', out);
            }
            if b == b'\r' {
                self.pending_cr = true;
            } else {
                self.byte(b, out);
            }
        }
    }

    /// The end of the input.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.pending_cr {
            self.pending_cr = false;
            self.byte(b'\r', out);
        }
        // "\n." at the very end: the dot ends the message.
        self.pending_dot = false;
    }

    /// One octet of the LF text.
    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        if self.pending_dot {
            self.pending_dot = false;
            if b == b'\n' {
                self.ended = true;
                return;
            }
            out.push(b'.');
        } else if b == b'.' && self.at_line_start && !self.ignore_dots {
            self.pending_dot = true;
            self.at_line_start = false;
            return;
        }
        out.push(b);
        self.at_line_start = b == b'\n';
    }
}

/// Why reading failed.
#[derive(Debug)]
pub enum StreamError {
    /// More than `max` octets: nothing was queued.
    TooBig,
    Read(std::io::Error),
    Inject(InjectError),
}

impl From<InjectError> for StreamError {
    fn from(e: InjectError) -> StreamError {
        StreamError::Inject(e)
    }
}

impl From<crate::queue::QueueError> for StreamError {
    fn from(e: crate::queue::QueueError) -> StreamError {
        StreamError::Inject(InjectError::Queue(e))
    }
}

/// A message on its way into the drop directory, fed as it is read: the
/// header section is gathered first, then everything goes to the file.
pub struct QueueWriter<'a> {
    ctx: &'a Context,
    opts: &'a Options,
    sender: &'a str,
    file: Incoming,
    norm: Normalizer,
    /// The start of the message while its header section is incomplete.
    head: Option<Vec<u8>>,
    rcpts: Vec<String>,
    out: Vec<u8>,
    last: u8,
    eight_bit: bool,
}

impl<'a> QueueWriter<'a> {
    pub fn new(
        ctx: &'a Context,
        opts: &'a Options,
        sender: &'a str,
    ) -> Result<QueueWriter<'a>, InjectError> {
        Ok(QueueWriter {
            ctx,
            opts,
            sender,
            file: Incoming::create(&ctx.paths.incoming())?,
            norm: Normalizer::new(opts.ignore_dots),
            head: Some(Vec::new()),
            rcpts: Vec::new(),
            out: Vec::with_capacity(BLOCK),
            last: 0,
            eight_bit: false,
        })
    }

    /// Whether the end-of-message dot was seen: more input is not the message.
    pub fn ended(&self) -> bool {
        self.norm.ended()
    }

    /// The next octets of input, as the program wrote them.
    pub fn push(&mut self, data: &[u8]) -> Result<(), InjectError> {
        if let Some(text) = self.head.as_mut() {
            self.norm.feed(data, text);
            if self.norm.ended() || header_complete(text, false) || text.len() >= MAX_HEAD {
                self.start_body()?;
            }
            return Ok(());
        }
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        self.norm.feed(data, &mut out);
        let r = self.write(&out);
        self.out = out;
        r
    }

    /// The end of the input: the message is made durable; its queue id.
    pub fn finish(mut self) -> Result<QueueId, InjectError> {
        let mut tail = Vec::new();
        match self.head.as_mut() {
            Some(text) => {
                self.norm.finish(text);
                self.start_body()?;
            }
            None => {
                self.norm.finish(&mut tail);
                self.write(&tail)?;
            }
        }
        if self.last != b'\n' {
            self.write(b"\n")?;
        }
        let rcpts = std::mem::take(&mut self.rcpts);
        let env = envelope(self.ctx, self.opts, self.sender, rcpts, self.eight_bit);
        let id = self.file.commit(&env)?;
        crate::queue::kick(&self.ctx.paths.kick_socket());
        Ok(id)
    }

    /// The header section is complete: the new one, then what came after it.
    fn start_body(&mut self) -> Result<(), InjectError> {
        let Some(text) = self.head.take() else {
            return Ok(());
        };
        let head = prepare_head(self.ctx, self.opts, self.sender, &text, self.file.id());
        self.rcpts = checked_recipients(self.ctx, self.opts, &head.header_recipients)?;
        self.write(&head.bytes)?;
        self.write(&text[head.body_start..])
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), InjectError> {
        if let Some(&b) = bytes.last() {
            self.last = b;
        }
        self.eight_bit |= bytes.iter().any(|&b| b >= 0x80);
        self.file.write(bytes)?;
        Ok(())
    }
}

/// Reads a message from `r` (at most `max` octets) and queues it.
pub fn queue_stream(
    ctx: &Context,
    opts: &Options,
    sender: &str,
    mut r: impl Read,
    max: u64,
) -> Result<QueueId, StreamError> {
    let mut w = QueueWriter::new(ctx, opts, sender)?;
    let mut buf = vec![0u8; BLOCK];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StreamError::Read(e)),
        };
        total += n as u64;
        if total > max {
            return Err(StreamError::TooBig);
        }
        if n == 0 {
            break;
        }
        // After the dot the rest is read (within the limit) so the writer
        // does not get EPIPE, as sendmail does, but not kept.
        if !w.ended() {
            w.push(&buf[..n])?;
        }
    }
    Ok(w.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The streaming normaliser against the in-memory one, in pieces.
    #[test]
    fn normalizer_matches_crlf_to_lf_and_the_dot_rule() {
        let cases: &[&[u8]] = &[
            b"",
            b".",
            b".\n",
            b".\r\nafter",
            b"a\r\n.\r\nb",
            b"a\n.\n",
            b"a\n.",
            b"a\n..\nb\n",
            b"a\r\r\n.\rb\n.x\n",
            b"no end\r",
            b"x\n.\r",
        ];
        for input in cases {
            for ignore in [false, true] {
                let mut want = super::super::message::crlf_to_lf(input);
                if !ignore {
                    if want.starts_with(b".\n") || want == b"." {
                        want.clear();
                    } else if let Some(p) = want.windows(3).position(|w| w == b"\n.\n") {
                        want.truncate(p + 1);
                    } else if want.ends_with(b"\n.") {
                        want.truncate(want.len() - 1);
                    }
                }
                for chunk in [1, 2, 3, 64] {
                    let mut n = Normalizer::new(ignore);
                    let mut out = Vec::new();
                    for piece in input.chunks(chunk) {
                        n.feed(piece, &mut out);
                    }
                    n.finish(&mut out);
                    assert_eq!(
                        String::from_utf8_lossy(&out),
                        String::from_utf8_lossy(&want),
                        "{:?} ignore {ignore} chunk {chunk}",
                        String::from_utf8_lossy(input)
                    );
                }
            }
        }
    }
}
