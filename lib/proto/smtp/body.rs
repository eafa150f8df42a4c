//! The message body as it crosses the wire: DATA (RFC 5321 4.1.4, 4.5.2:
//! dot-stuffed, ended by CRLF.CRLF) and BDAT chunks (RFC 3030: counted, no
//! stuffing). Both are decoded to the queue's form: LF line ends, no stuffing.
//!
//! Only `CRLF . CRLF` ends DATA. A bare LF or CR never does (that is how
//! SMTP smuggling works): it is not a line end at all, so a dot after it
//! does not start a line and cannot end the data, whatever follows. The
//! decoder notes it, and the session refuses the message (RFC 5321 2.3.8:
//! "CR and LF MUST only occur together as CRLF"). NUL bytes and lines over
//! 1000 octets are noted the same way. Past the size limit the decoder keeps counting but stops
//! producing output, so memory stays bounded whatever the client sends.

/// RFC 5321 4.5.3.1.6: a text line is at most 1000 octets with its CRLF.
pub const MAX_TEXT_LINE: usize = 998;
/// The header name whose count is the hop count (RFC 5321 6.3).
const RECEIVED: &[u8] = b"received:";

/// DATA or BDAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Data,
    Chunks,
}

/// What was wrong with a message's content, first found first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    BareLineEnd,
    Nul,
    LongLine,
}

/// The facts the session needs once the body is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// The size in octets counting CRLF line ends (as SIZE measures).
    pub size: u64,
    /// Whether `size` went past the limit (output was cut off there).
    pub too_big: bool,
    /// Received headers in the header section.
    pub hops: usize,
    pub problem: Option<Problem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    LineStart,
    Dot,
    DotCr,
    Mid,
    Cr,
}

/// An incremental body decoder.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    mode: Mode,
    state: State,
    max_size: u64,
    size: u64,
    line_len: usize,
    in_headers: bool,
    prefix: [u8; 9],
    hops: usize,
    problem: Option<Problem>,
}

impl BodyDecoder {
    /// A decoder that produces at most `max_size` octets (counted with CRLF).
    pub fn new(mode: Mode, max_size: u64) -> BodyDecoder {
        BodyDecoder {
            mode,
            state: State::LineStart,
            max_size,
            size: 0,
            line_len: 0,
            in_headers: true,
            prefix: [0; 9],
            hops: 0,
            problem: None,
        }
    }

    /// Decodes from the front of `input`, appending to `out`. Returns the
    /// bytes used and, in DATA mode, whether the end-of-data line was seen
    /// (the bytes after it are not used). In chunk mode all of `input` is used.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, bool) {
        for (i, &b) in input.iter().enumerate() {
            match self.state {
                State::LineStart if b == b'.' && self.mode == Mode::Data => self.state = State::Dot,
                State::LineStart | State::Mid => self.byte(b, out),
                // RFC 5321 4.5.2: a leading period on a line with more on it is deleted.
                State::Dot if b == b'\r' => self.state = State::DotCr,
                State::Dot => {
                    self.line_len += 1;
                    self.byte(b, out);
                }
                State::DotCr if b == b'\n' => {
                    self.state = State::LineStart;
                    return (i + 1, true);
                }
                State::DotCr => {
                    self.line_len += 1;
                    self.bare_cr(out);
                    self.byte(b, out);
                }
                State::Cr if b == b'\n' => self.end_line(out),
                State::Cr => {
                    self.bare_cr(out);
                    self.byte(b, out);
                }
            }
        }
        (input.len(), false)
    }

    /// Ends a chunked body (BDAT LAST): a CR left over is bare, and a last
    /// line without an end gets one, so the stored message ends in LF.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Summary {
        match self.state {
            State::Cr | State::DotCr => {
                self.bare_cr(out);
                self.end_line(out);
            }
            State::Dot => {
                self.emit(b'.', out);
                self.end_line(out);
            }
            State::Mid => self.end_line(out),
            State::LineStart => {}
        }
        self.summary()
    }

    /// The facts so far.
    pub fn summary(&self) -> Summary {
        Summary {
            size: self.size,
            too_big: self.size > self.max_size,
            hops: self.hops,
            problem: self.problem,
        }
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        match b {
            b'\r' => self.state = State::Cr,
            // A bare LF ends no line (so the next byte is never at a line
            // start, where a dot could end DATA): it is content, noted.
            b'\n' => {
                self.note(Problem::BareLineEnd);
                self.line_len += 1;
                self.emit(b'\n', out);
                self.state = State::Mid;
            }
            _ => {
                if b == 0 {
                    self.note(Problem::Nul);
                }
                if self.in_headers && self.line_len < self.prefix.len() {
                    self.prefix[self.line_len] = b.to_ascii_lowercase();
                }
                self.line_len += 1;
                self.emit(b, out);
                self.state = State::Mid;
            }
        }
    }

    fn bare_cr(&mut self, out: &mut Vec<u8>) {
        self.note(Problem::BareLineEnd);
        self.line_len += 1;
        self.emit(b'\r', out);
        self.state = State::Mid;
    }

    fn end_line(&mut self, out: &mut Vec<u8>) {
        if self.line_len > MAX_TEXT_LINE {
            self.note(Problem::LongLine);
        }
        if self.in_headers {
            if self.line_len == 0 {
                self.in_headers = false;
            } else if self.line_len >= RECEIVED.len() && self.prefix == RECEIVED {
                self.hops += 1;
            }
        }
        // The LF stands for CRLF on the wire: count both.
        self.size += 1;
        self.emit(b'\n', out);
        self.line_len = 0;
        self.state = State::LineStart;
    }

    fn emit(&mut self, b: u8, out: &mut Vec<u8>) {
        self.size += 1;
        if self.size <= self.max_size {
            out.push(b);
        }
    }

    fn note(&mut self, p: Problem) {
        self.problem.get_or_insert(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNKS: &[usize] = &[1, 2, 3, 7, 64, 512];

    /// Feeds `input` in pieces of `n`, as the network would, until the end.
    fn run(mode: Mode, input: &[u8], n: usize, max: u64) -> (Vec<u8>, Option<usize>, Summary) {
        let mut d = BodyDecoder::new(mode, max);
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < input.len() {
            let end = (pos + n).min(input.len());
            let (used, done) = d.decode(&input[pos..end], &mut out);
            pos += used;
            if done {
                return (out, Some(pos), d.summary());
            }
        }
        let s = if mode == Mode::Chunks {
            d.finish(&mut out)
        } else {
            d.summary()
        };
        (out, None, s)
    }

    #[test]
    fn data_bodies_decode_in_any_chunking() {
        let table: &[(&[u8], &[u8], usize, usize)] = &[
            // wire, stored, bytes used, hops
            (b".\r\n", b"", 3, 0),
            (b"a\r\n.\r\n", b"a\n", 6, 0),
            (b"..\r\n.\r\n", b".\n", 7, 0),
            (b"..a\r\n.b\r\n.\r\nQUIT\r\n", b".a\nb\n", 12, 0),
            (
                b"Received: x\r\nreceived: y\r\nX: 1\r\n\r\nReceived: body\r\n.\r\n",
                b"Received: x\nreceived: y\nX: 1\n\nReceived: body\n",
                53,
                2,
            ),
            (
                b"h: \xc3\xa9\r\n\r\n\xff\xfe\r\n.\r\n",
                b"h: \xc3\xa9\n\n\xff\xfe\n",
                16,
                0,
            ),
        ];
        for (wire, stored, used, hops) in table {
            for &n in CHUNKS {
                let (out, end, s) = run(Mode::Data, wire, n, 1 << 20);
                assert_eq!(&out, stored, "{wire:?} by {n}");
                assert_eq!(end, Some(*used), "{wire:?} by {n}");
                assert_eq!(s.hops, *hops, "{wire:?}");
                assert_eq!(s.problem, None, "{wire:?}");
                assert_eq!(
                    s.size as usize,
                    stored.len() + stored.iter().filter(|&&b| b == b'\n').count()
                );
            }
        }
    }

    #[test]
    fn malformed_bodies_are_noted_and_never_end_early() {
        let long = [b"x".repeat(999), b"\r\n.\r\n".to_vec()].concat();
        let ok_long = [b"x".repeat(998), b"\r\n.\r\n".to_vec()].concat();
        let table: &[(&[u8], Option<Problem>, Option<usize>)] = &[
            // Smuggling attempts: none of these end the data.
            (b"a\n.\n", Some(Problem::BareLineEnd), None),
            (b"a\r\n.\n", Some(Problem::BareLineEnd), None),
            (b"a\n.\r\n", Some(Problem::BareLineEnd), None),
            (b"a\n.\r\nb\r\n.\r\n", Some(Problem::BareLineEnd), Some(11)),
            (b"a\r.\r", Some(Problem::BareLineEnd), None),
            (b"a\r\n.\rX\r\n", Some(Problem::BareLineEnd), None),
            (b"a\x00b\r\n.\r\n", Some(Problem::Nul), Some(8)),
            (&long, Some(Problem::LongLine), Some(long.len())),
            (&ok_long, None, Some(ok_long.len())),
        ];
        for (wire, problem, end) in table {
            for &n in CHUNKS {
                let (_, e, s) = run(Mode::Data, wire, n, 1 << 20);
                assert_eq!(s.problem, *problem, "{wire:?} by {n}");
                assert_eq!(e, *end, "{wire:?} by {n}");
            }
        }
    }

    /// Every way to write a line end and a dot with CR and LF but
    /// `CRLF . CRLF`, at the start of the data and after text.
    fn fake_terminators() -> Vec<Vec<u8>> {
        let before: &[&[u8]] = &[b"", b"\n", b"\r", b"\r\n", b"\n\r", b"\r\r", b"\n\n"];
        let after: &[&[u8]] = &[b"\n", b"\r", b"\r\n", b"\n\r", b"\r\r", b"\n\n", b"\r\r\n"];
        let mut out = Vec::new();
        for b in before {
            for a in after {
                let t = [*b, b".", *a].concat();
                let real_end = t.windows(5).any(|w| w == b"\r\n.\r\n");
                // `.CRLF` right at the start of the data is the real end too.
                let empty_message = b.is_empty() && *a == b"\r\n";
                if !real_end && !empty_message {
                    out.push(t);
                }
            }
        }
        out
    }

    #[test]
    fn smuggled_commands_after_a_fake_end_stay_in_the_body() {
        // SMTP smuggling: a fake end of data followed by a second
        // transaction. Only the real CRLF.CRLF at the end may end it.
        let smuggled =
            b"MAIL FROM:<evil@forged.test>\r\nRCPT TO:<v@x.test>\r\nDATA\r\nFrom: evil\r\n\r\nhi";
        let fakes = fake_terminators();
        assert!(fakes.len() > 40, "{}", fakes.len());
        for fake in &fakes {
            for start in [&b""[..], b"Subject: a\r\n\r\nbody"] {
                let wire = [start, fake, smuggled, b"\r\n.\r\n"].concat();
                for &n in CHUNKS {
                    let (out, end, s) = run(Mode::Data, &wire, n, 1 << 20);
                    assert_eq!(end, Some(wire.len()), "{wire:?} by {n}");
                    assert_eq!(s.problem, Some(Problem::BareLineEnd), "{wire:?} by {n}");
                    let out = String::from_utf8_lossy(&out);
                    assert!(out.contains("MAIL FROM:<evil@forged.test>"), "{wire:?}");
                }
                // Cut right after the fake end: the data goes on.
                let cut = [start, fake].concat();
                for &n in CHUNKS {
                    let (_, end, _) = run(Mode::Data, &cut, n, 1 << 20);
                    assert_eq!(end, None, "{cut:?} by {n}");
                }
            }
        }
    }

    #[test]
    fn data_ends_at_the_first_crlf_dot_crlf_and_nowhere_else() {
        // Exhaustive over CR, LF, dot and a letter up to 8 octets: DATA ends
        // exactly where the first CRLF.CRLF ends (the DATA line's CRLF
        // counting as the first CRLF), whatever else is around it.
        let alphabet = [b'\r', b'\n', b'.', b'a'];
        let mut input = Vec::new();
        for len in 0..=8u32 {
            for mut k in 0..4usize.pow(len) {
                input.clear();
                for _ in 0..len {
                    input.push(alphabet[k % 4]);
                    k /= 4;
                }
                let wire = [&b"\r\n"[..], &input].concat();
                let want = wire
                    .windows(5)
                    .position(|w| w == b"\r\n.\r\n")
                    .map(|p| p + 3);
                let mut d = BodyDecoder::new(Mode::Data, 1 << 20);
                let (used, done) = d.decode(&input, &mut Vec::new());
                assert_eq!(done.then_some(used), want, "{input:?}");
            }
        }
    }

    #[test]
    fn size_limit_stops_output_but_not_counting() {
        let wire = b"0123456789\r\n0123456789\r\n.\r\n";
        for &n in CHUNKS {
            let (out, end, s) = run(Mode::Data, wire, n, 15);
            assert_eq!(out, b"0123456789\n012");
            assert_eq!(end, Some(wire.len()));
            assert!(s.too_big);
            assert_eq!(s.size, 24);
        }
    }

    #[test]
    fn chunks_are_counted_not_stuffed() {
        let table: &[(&[u8], &[u8], Option<Problem>)] = &[
            (b"a\r\n.\r\nb\r\n", b"a\n.\nb\n", None),
            (b"..x\r\nlast", b"..x\nlast\n", None),
            (b"x\r", b"x\r\n", Some(Problem::BareLineEnd)),
            (b"", b"", None),
        ];
        for (wire, stored, problem) in table {
            for &n in CHUNKS {
                let (out, end, s) = run(Mode::Chunks, wire, n, 1 << 20);
                assert_eq!(&out, stored, "{wire:?} by {n}");
                assert_eq!(end, None);
                assert_eq!(s.problem, *problem, "{wire:?}");
            }
        }
    }
}
