//! A message from disk onto the wire of a dot-terminated protocol: POP3's
//! multi-line response (RFC 1939 section 3) and SMTP's DATA (RFC 5321 4.5.2).
//! Every line ends in CRLF whatever it ends in on disk (the queue and our
//! Maildirs hold LF; files from other programs may hold CRLF), a line that
//! starts with "." gets one more, and ".CRLF" ends the output. A CR not
//! followed by LF is content, not a line end. For POP3 TOP, only the header,
//! the blank line and the first N body lines are sent; for SMTP BDAT only the
//! line ends change.
//!
//! The encoder is fed the file in pieces of any size, so a large message never
//! has to be in memory at once. kmp-pop3d and kmp-remote both use it.

/// Streams one message's bytes into its wire form.
#[derive(Debug)]
pub struct Encoder {
    at_line_start: bool,
    pending_cr: bool,
    in_header: bool,
    /// Body lines still to send, for TOP; `None` sends everything.
    lines_left: Option<u64>,
    done: bool,
    /// Whether leading dots are doubled and ".CRLF" ends the output
    /// (DATA, RETR); BDAT (RFC 3030) sends the bytes as they are.
    stuff: bool,
}

impl Encoder {
    /// For RETR and SMTP DATA: the whole message.
    pub fn whole() -> Encoder {
        Encoder::new(None)
    }

    /// For TOP: the header and the first `lines` lines of the body.
    pub fn top(lines: u64) -> Encoder {
        Encoder::new(Some(lines))
    }

    /// For SMTP BDAT (RFC 3030): CRLF line ends only, no dot-stuffing and no
    /// terminating ".CRLF"; the length of the output is RFC 1870's size.
    pub fn crlf_only() -> Encoder {
        Encoder {
            stuff: false,
            ..Encoder::new(None)
        }
    }

    /// For a message of `top` body lines (`None`: all of it).
    pub fn new(lines_left: Option<u64>) -> Encoder {
        Encoder {
            at_line_start: true,
            pending_cr: false,
            in_header: true,
            lines_left,
            done: false,
            stuff: true,
        }
    }

    /// Whether TOP has all it needs: the caller may stop reading the file.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Encodes the next piece of the file into `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) {
        out.reserve(data.len() + data.len() / 32 + 8);
        let mut i = 0;
        while i < data.len() && !self.done {
            if self.pending_cr {
                self.pending_cr = false;
                if data[i] == b'\n' {
                    self.end_line(out);
                    i += 1;
                } else {
                    // A CR alone is content, not a line end.
                    self.content(b"\r", out);
                }
                continue;
            }
            let rest = &data[i..];
            let j = rest
                .iter()
                .position(|&b| b == b'\n' || b == b'\r')
                .unwrap_or(rest.len());
            self.content(&rest[..j], out);
            if j == rest.len() {
                break;
            }
            if rest[j] == b'\n' {
                self.end_line(out);
            } else {
                self.pending_cr = true;
            }
            i += j + 1;
        }
    }

    /// Ends the output: a last line without a line end gets one, then ".CRLF"
    /// (unless [`Encoder::crlf_only`]).
    pub fn finish(mut self, out: &mut Vec<u8>) {
        if !self.done {
            if self.pending_cr {
                self.content(b"\r", out);
            }
            if !self.at_line_start {
                out.extend_from_slice(b"\r\n");
            }
        }
        if self.stuff {
            out.extend_from_slice(b".\r\n");
        }
    }

    fn content(&mut self, span: &[u8], out: &mut Vec<u8>) {
        if span.is_empty() {
            return;
        }
        // RFC 1939 section 3: "If any line of the multi-line response begins
        // with the termination octet, the line is "byte-stuffed" by
        // pre-pending the termination octet to that line of the response."
        // RFC 5321 4.5.2 says the same for SMTP DATA.
        if self.stuff && self.at_line_start && span[0] == b'.' {
            out.push(b'.');
        }
        out.extend_from_slice(span);
        self.at_line_start = false;
    }

    fn end_line(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\r\n");
        let empty = self.at_line_start;
        self.at_line_start = true;
        if self.in_header {
            if empty {
                self.in_header = false;
                self.done = self.lines_left == Some(0);
            }
            return;
        }
        if let Some(n) = self.lines_left.as_mut() {
            *n = n.saturating_sub(1);
            self.done = *n == 0;
        }
    }
}

/// The whole wire form of `msg` at once (tests and small messages).
pub fn encode(msg: &[u8], top: Option<u64>) -> Vec<u8> {
    let mut e = Encoder::new(top);
    let mut out = Vec::with_capacity(msg.len() + 64);
    e.feed(msg, &mut out);
    e.finish(&mut out);
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Messages, the TOP line count, and their wire form (also used by the
    /// POP3 size tests).
    pub(crate) const TABLE: &[(&[u8], Option<u64>, &[u8])] = &[
        (b"", None, b".\r\n"),
        (b"A: b\n\nbody\n", None, b"A: b\r\n\r\nbody\r\n.\r\n"),
        (b"A: b\r\n\r\nbody\r\n", None, b"A: b\r\n\r\nbody\r\n.\r\n"),
        (b"A: b\n\nno end", None, b"A: b\r\n\r\nno end\r\n.\r\n"),
        (
            b"A: b\n\n.\n..x\n.",
            None,
            b"A: b\r\n\r\n..\r\n...x\r\n..\r\n.\r\n",
        ),
        (
            b"A: b\n\nbare\rcr\n",
            None,
            b"A: b\r\n\r\nbare\rcr\r\n.\r\n",
        ),
        (b"A: b\n\nend cr\r", None, b"A: b\r\n\r\nend cr\r\r\n.\r\n"),
        (b"A: b\n\n\r.dot\n", None, b"A: b\r\n\r\n\r.dot\r\n.\r\n"),
        (
            b"A: b\nC: d\n\n1\n2\n3\n",
            Some(0),
            b"A: b\r\nC: d\r\n\r\n.\r\n",
        ),
        (
            b"A: b\n\n1\n.2\n3\n",
            Some(2),
            b"A: b\r\n\r\n1\r\n..2\r\n.\r\n",
        ),
        (b"A: b\n\n1\n", Some(5), b"A: b\r\n\r\n1\r\n.\r\n"),
        (b"A: b\n\n\n\n3\n", Some(2), b"A: b\r\n\r\n\r\n\r\n.\r\n"),
        (b"A: b\nno body", Some(3), b"A: b\r\nno body\r\n.\r\n"),
    ];

    #[test]
    fn table_in_chunks() {
        for (input, top, want) in TABLE {
            for chunk in [1, 2, 3, 7, 64, 512] {
                let mut e = Encoder::new(*top);
                let mut out = Vec::new();
                for piece in input.chunks(chunk) {
                    e.feed(piece, &mut out);
                }
                e.finish(&mut out);
                assert_eq!(
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(want),
                    "{:?} top {top:?} chunk {chunk}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn crlf_only_changes_line_ends_and_nothing_else() {
        for (input, want) in [
            (&b""[..], &b""[..]),
            (b"A: b\n\n.\n..x\n.", b"A: b\r\n\r\n.\r\n..x\r\n.\r\n"),
            (b"a\r\nb\rc\n", b"a\r\nb\rc\r\n"),
        ] {
            for chunk in [1, 2, 3, 7, 64] {
                let mut e = Encoder::crlf_only();
                let mut out = Vec::new();
                for piece in input.chunks(chunk) {
                    e.feed(piece, &mut out);
                }
                e.finish(&mut out);
                assert_eq!(out, want, "{input:?} chunk {chunk}");
            }
        }
    }
}
