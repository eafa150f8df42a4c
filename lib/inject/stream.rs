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

/// Reads a message from `r` (at most `max` octets) and queues it.
pub fn queue_stream(
    ctx: &Context,
    opts: &Options,
    sender: &str,
    mut r: impl Read,
    max: u64,
) -> Result<QueueId, StreamError> {
    let mut m = Incoming::create(&ctx.paths.incoming())?;
    let mut norm = Normalizer::new(opts.ignore_dots);
    let mut buf = vec![0u8; BLOCK];
    let mut total = 0u64;
    let mut read = |r: &mut dyn Read, buf: &mut [u8]| -> Result<usize, StreamError> {
        let n = loop {
            match r.read(buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(StreamError::Read(e)),
            }
        };
        total += n as u64;
        if total > max {
            return Err(StreamError::TooBig);
        }
        Ok(n)
    };
    // The header section, and whatever came with it.
    let mut text = Vec::new();
    let mut eof = false;
    while !norm.ended() && !header_complete(&text, false) && text.len() < MAX_HEAD {
        let n = read(&mut r, &mut buf)?;
        if n == 0 {
            norm.finish(&mut text);
            eof = true;
            break;
        }
        norm.feed(&buf[..n], &mut text);
    }
    let head = prepare_head(ctx, opts, sender, &text, m.id());
    let rcpts = checked_recipients(ctx, opts, &head.header_recipients)?;
    // The last octet written, and whether any had the high bit.
    let mut state = (0u8, false);
    let write = |m: &mut Incoming, state: &mut (u8, bool), bytes: &[u8]| {
        if let Some(&b) = bytes.last() {
            state.0 = b;
        }
        state.1 |= bytes.iter().any(|&b| b >= 0x80);
        m.write(bytes)
    };
    write(&mut m, &mut state, &head.bytes)?;
    write(&mut m, &mut state, &text[head.body_start..])?;
    drop(text);
    let mut out = Vec::with_capacity(BLOCK);
    while !eof && !norm.ended() {
        let n = read(&mut r, &mut buf)?;
        out.clear();
        if n == 0 {
            norm.finish(&mut out);
            eof = true;
        } else {
            norm.feed(&buf[..n], &mut out);
        }
        write(&mut m, &mut state, &out)?;
    }
    // After the dot: read the rest (within the limit) so the writer does not
    // get EPIPE, as sendmail does.
    while !eof {
        eof = read(&mut r, &mut buf)? == 0;
    }
    if state.0 != b'\n' {
        write(&mut m, &mut state, b"\n")?;
    }
    let env = envelope(ctx, opts, sender, rcpts, state.1);
    let id = m.commit(&env)?;
    crate::queue::kick(&ctx.paths.kick_socket());
    Ok(id)
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
