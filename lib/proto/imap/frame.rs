//! Finding where a command ends: lines and literals (RFC 3501 4.3, RFC 7888).
//!
//! The server keeps one growing input buffer that starts at the first byte of
//! the current command and asks [`Framer::frame`] after every read. The framer
//! remembers how far it has scanned, so a command arriving one byte at a time
//! costs linear work, and it caps every length before any byte is buffered
//! beyond it.

/// Caps on what a client may send.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest line between literals (RFC 7162 3.2.1 asks for at least 8192).
    pub max_line: usize,
    /// Largest literal in any command but APPEND.
    pub max_literal: u64,
    /// Largest literal in APPEND (the message size limit).
    pub max_append: u64,
    /// Most literals in one command.
    pub max_literals: usize,
}

impl Limits {
    /// The caps before login. A client that is not logged in may only say
    /// who it is: LOGIN takes two literals of a few bytes, AUTHENTICATE one
    /// line. Anything more (an APPEND, a literal announced as a whole
    /// message) is refused before a byte of it is buffered.
    pub const BEFORE_LOGIN: Limits = Limits {
        max_line: 8192,
        max_literal: 4096,
        max_append: 4096,
        max_literals: 2,
    };
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_line: 65_536,
            max_literal: 65_536,
            max_append: 64 << 20,
            max_literals: 64,
        }
    }
}

/// What the buffer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `buf[..n]` is one complete command: parse it, then drain it.
    Command(usize),
    /// More bytes are needed; read and ask again.
    Incomplete,
    /// The client announced a synchronizing literal and waits: send
    /// `+ Ready for literal data`, read, and ask again.
    Continue,
    /// The command is refused before it is complete. Reply `tag BAD reason`
    /// (`* BAD` without a tag), drain `consumed` bytes, and close the
    /// connection (after `* BYE`) when `close` says so.
    Reject {
        tag: Option<String>,
        reason: &'static str,
        consumed: usize,
        close: bool,
    },
    /// Input being thrown away after an over-long line: drain `n` bytes.
    Discard(usize),
    /// An APPEND message too large to keep in memory (over
    /// [`Limits::max_literal`], within [`Limits::max_append`]) follows
    /// `buf[..head]` (the command up to and including the line announcing it).
    /// Send the continuation when `sync` and nothing of it arrived yet,
    /// write the next `size` bytes somewhere else, put the head back in front
    /// of what follows with [`empty_literal`], then [`Framer::restart`] and
    /// ask again.
    Stream { head: usize, size: u64, sync: bool },
}

/// The framing state of the command at the start of the buffer.
#[derive(Debug, Default)]
pub struct Framer {
    limits: Limits,
    /// Start of the segment (line after the last literal) being scanned.
    seg: usize,
    /// How far the current segment was searched for a line end.
    searched: usize,
    /// Start offset of the literal a continuation was already requested for.
    continued: Option<usize>,
    literals: usize,
    /// Throwing bytes away until the next line end.
    skipping: bool,
}

impl Framer {
    pub fn new(limits: Limits) -> Framer {
        Framer {
            limits,
            ..Framer::default()
        }
    }

    /// Forgets the current command (after it was drained).
    fn reset(&mut self) {
        *self = Framer::new(self.limits);
    }

    /// Scans the buffer again from its start (after it was rewritten).
    pub fn restart(&mut self) {
        self.reset();
    }

    /// Changes the caps (after login) for the next command. Call it only
    /// between commands: the current one keeps being framed as it started.
    pub fn set_limits(&mut self, limits: Limits) {
        if self.seg == 0 && self.searched == 0 && !self.skipping {
            self.limits = limits;
        }
    }

    /// Looks at `buf`, which starts at the current command's first byte.
    pub fn frame(&mut self, buf: &[u8]) -> Frame {
        if self.skipping {
            return match memchr(b'\n', buf) {
                Some(i) => {
                    self.reset();
                    Frame::Discard(i + 1)
                }
                None => Frame::Discard(buf.len()),
            };
        }
        loop {
            let max_line = self.line_cap(buf);
            let from = self.searched.max(self.seg);
            let window_end = buf.len().min(self.seg + max_line);
            let found = if from < window_end {
                memchr(b'\n', &buf[from..window_end]).map(|i| from + i)
            } else {
                None
            };
            let Some(nl) = found else {
                if buf.len() - self.seg >= max_line {
                    let tag = tag_of(buf);
                    self.reset();
                    self.skipping = true;
                    return Frame::Reject {
                        tag,
                        reason: "Command line too long",
                        consumed: 0,
                        close: false,
                    };
                }
                self.searched = buf.len();
                return Frame::Incomplete;
            };
            let line = &buf[self.seg..nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some((size, sync)) = literal_marker(line) else {
                self.reset();
                return Frame::Command(nl + 1);
            };
            // Literals after the first line of an APPEND are messages too.
            let append = is_append(buf);
            let cap = if append {
                self.limits.max_append
            } else {
                self.limits.max_literal
            };
            self.literals += 1;
            if size > cap || self.literals > self.limits.max_literals {
                let tag = tag_of(buf);
                self.reset();
                return Frame::Reject {
                    tag,
                    reason: if size > cap {
                        "Literal too large"
                    } else {
                        "Too many literals"
                    },
                    consumed: nl + 1,
                    // A non-synchronizing literal is on its way: there is no
                    // telling where the command ends without reading it all
                    // (RFC 7888 section 4 lets the server close).
                    close: !sync,
                };
            }
            let start = nl + 1;
            if append && size > self.limits.max_literal {
                // An APPEND message: it goes to the store as it arrives.
                self.reset();
                return Frame::Stream {
                    head: start,
                    size,
                    sync,
                };
            }
            if sync && self.continued != Some(start) && buf.len() == start {
                self.continued = Some(start);
                self.literals -= 1;
                return Frame::Continue;
            }
            // Invariant: size <= cap, which fits in memory by configuration.
            let end = start + size as usize;
            if buf.len() < end {
                self.literals -= 1;
                self.continued = Some(start);
                return Frame::Incomplete;
            }
            self.seg = end;
            self.searched = end;
        }
    }
}

/// The head of a command whose last literal was taken away
/// ([`Frame::Stream`]), with that literal announced as empty (`{0+}`, which
/// needs no continuation), so the rest of the command frames and parses as
/// usual. `head` ends with the line announcing the literal.
pub fn empty_literal(head: &[u8]) -> Vec<u8> {
    let line_end = head.len().saturating_sub(1);
    let open = head[..line_end]
        .iter()
        .rposition(|b| *b == b'{')
        .unwrap_or(line_end);
    let mut v = head[..open].to_vec();
    v.extend_from_slice(b"{0+}\r\n");
    v
}

/// The longest first line of an ID command: RFC 2971 3.3 allows 30 fields
/// of 30 octets with values of 1024 (about 31.8 KiB quoted), longer than
/// other lines before login may be.
pub const MAX_ID_LINE: usize = 33 * 1024;

impl Framer {
    /// The cap on the line being scanned: [`Limits::max_line`], or
    /// [`MAX_ID_LINE`] for the first line of an ID command.
    fn line_cap(&self, buf: &[u8]) -> usize {
        // Only the tag and the verb are looked at: this runs at every read,
        // and a line trickling in must not cost a scan of all of it each time.
        let head = &buf[..buf.len().min(super::MAX_TAG + 4)];
        let mut words = head.splitn(3, |b| *b == b' ');
        let _tag = words.next();
        let id = self.seg == 0
            && matches!((words.next(), words.next()),
                (Some(v), Some(_)) if v.eq_ignore_ascii_case(b"ID"));
        if id {
            self.limits.max_line.max(MAX_ID_LINE)
        } else {
            self.limits.max_line
        }
    }
}

/// Whether the command's verb is APPEND.
fn is_append(buf: &[u8]) -> bool {
    let mut words = buf.splitn(3, |b| *b == b' ');
    let _tag = words.next();
    match words.next() {
        Some(v) => v.eq_ignore_ascii_case(b"APPEND"),
        None => false,
    }
}

/// The tag at the start of a command, if it looks like one.
fn tag_of(buf: &[u8]) -> Option<String> {
    let end = buf
        .iter()
        .position(|b| *b == b' ' || *b == b'\r' || *b == b'\n')?;
    let t = &buf[..end];
    if t.is_empty() || t.len() > super::MAX_TAG || !t.iter().all(|b| super::lexer::is_tag_char(*b))
    {
        return None;
    }
    Some(String::from_utf8_lossy(t).into_owned())
}

/// `{N}` or `{N+}` (or `~{N}`, RFC 3516) at the end of a line: the size and whether it
/// is synchronizing.
fn literal_marker(line: &[u8]) -> Option<(u64, bool)> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|b| *b == b'{')?;
    let mut digits = &inner[open + 1..];
    let sync = match digits.strip_suffix(b"+") {
        Some(d) => {
            digits = d;
            false
        }
        None => true,
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Over-long numbers saturate: they are refused as too large anyway.
    let n = digits.iter().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add((d - b'0') as u64)
    });
    Some((n, sync))
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|b| *b == needle)
}
