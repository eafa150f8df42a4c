//! SMTP replies as a client reads them (RFC 5321 section 4.2), with RFC 3463
//! enhanced status codes (RFC 2034). A pure, incremental parser: bytes in,
//! whole replies out; no I/O.
//!
//! It is lenient where being strict would only lose mail (a bare LF ends a
//! line, a code alone on a line is a reply, an over-long line is cut and the
//! rest of it skipped) and strict where guessing would be wrong: a line that
//! does not start with a code from 200 to 599, or a multi-line reply whose
//! lines disagree on the code, is [`ReplyError::Malformed`]; a reply of more
//! than [`MAX_LINES`] lines is [`ReplyError::TooLong`]. Either way the
//! connection is no longer trusted and the delivery is deferred.

use std::fmt;

/// The longest reply line kept, CRLF excluded. RFC 5321 4.5.3.1.5 allows 512
/// octets; longer lines are kept up to here, the rest is skipped.
pub const MAX_LINE: usize = 2048;

/// The most lines one reply may have.
pub const MAX_LINES: usize = 100;

/// An RFC 3463 enhanced status code, `class.subject.detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enhanced {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl fmt::Display for Enhanced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

impl Enhanced {
    /// Parses `2.1.5` (RFC 3463 section 2: class 2, 4 or 5; subject and
    /// detail 1 to 3 digits).
    pub fn parse(s: &str) -> Option<Enhanced> {
        let mut it = s.split('.');
        let (c, s, d) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() {
            return None;
        }
        let digits = |t: &str, max: usize| {
            !t.is_empty() && t.len() <= max && t.bytes().all(|b| b.is_ascii_digit())
        };
        if !(c.len() == 1 && matches!(c, "2" | "4" | "5") && digits(s, 3) && digits(d, 3)) {
            return None;
        }
        Some(Enhanced {
            class: c.parse().ok()?,
            subject: s.parse().ok()?,
            detail: d.parse().ok()?,
        })
    }

    /// The same code in another class (`5.7.1` → `4.7.1`).
    pub fn with_class(self, class: u8) -> Enhanced {
        Enhanced { class, ..self }
    }
}

/// One complete reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code, 200..=599.
    pub code: u16,
    /// The enhanced status code of the first line, when the server gave one
    /// whose class agrees with the code.
    pub enhanced: Option<Enhanced>,
    /// The text of each line, after the code and separator (the enhanced
    /// code, when present, is left in the text).
    pub lines: Vec<String>,
}

impl Reply {
    /// 2yz.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 3yz (354 to DATA).
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }

    /// 4yz.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5yz.
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The reply on one line, as logs and DSNs quote it: `550 5.1.1 <a@b>: no
    /// such user`, continuation lines joined by spaces.
    pub fn one_line(&self) -> String {
        let mut s = self.code.to_string();
        for l in &self.lines {
            let l = l.trim();
            if !l.is_empty() {
                s.push(' ');
                s.push_str(l);
            }
        }
        s
    }

    /// The enhanced code to report: the server's, else one made from the
    /// reply code's class (RFC 3463: `X.0.0`).
    pub fn dsn(&self) -> Enhanced {
        self.enhanced.unwrap_or(Enhanced {
            class: (self.code / 100) as u8,
            subject: 0,
            detail: 0,
        })
    }
}

/// Why the bytes received are not a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// A line without a valid code, or lines with different codes.
    Malformed(String),
    /// More than [`MAX_LINES`] lines.
    TooLong,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::Malformed(line) => write!(f, "malformed reply: {line}"),
            ReplyError::TooLong => write!(f, "reply of more than {MAX_LINES} lines"),
        }
    }
}

/// The incremental parser. Feed it with [`ReplyParser::push`], take replies
/// with [`ReplyParser::next_reply`] until it answers `Ok(None)` (needs more).
#[derive(Debug, Default)]
pub struct ReplyParser {
    /// The current line so far (at most MAX_LINE bytes).
    line: Vec<u8>,
    /// The current line was cut: skip to its LF.
    skipping: bool,
    /// Complete lines not yet taken.
    lines: std::collections::VecDeque<Vec<u8>>,
    /// Lines of the reply being assembled: (code, text).
    partial: Vec<(u16, String)>,
}

impl ReplyParser {
    pub fn new() -> ReplyParser {
        ReplyParser::default()
    }

    /// Adds received bytes.
    pub fn push(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let nl = data.iter().position(|&b| b == b'\n');
            let (chunk, rest, done) = match nl {
                Some(i) => (&data[..i], &data[i + 1..], true),
                None => (data, &[][..], false),
            };
            if !self.skipping {
                let room = MAX_LINE + 1 - self.line.len().min(MAX_LINE + 1);
                let take = chunk.len().min(room);
                self.line.extend_from_slice(&chunk[..take]);
                if self.line.len() > MAX_LINE {
                    // Over-long: keep the first MAX_LINE bytes, skip to LF.
                    self.line.truncate(MAX_LINE);
                    self.skipping = true;
                }
            }
            if done {
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.lines.push_back(line);
                self.skipping = false;
            }
            data = rest;
        }
    }

    /// Whether bytes are waiting that no reply has consumed yet (after a
    /// reply to STARTTLS this means the peer sent ahead: RFC 3207 section 5
    /// says to discard them, and we drop the connection instead).
    pub fn has_pending(&self) -> bool {
        !self.line.is_empty() || !self.lines.is_empty() || !self.partial.is_empty()
    }

    /// Forgets everything buffered.
    pub fn clear(&mut self) {
        *self = ReplyParser::default();
    }

    /// The next complete reply, `Ok(None)` when more bytes are needed.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, ReplyError> {
        while let Some(raw) = self.lines.pop_front() {
            let (code, more, text) = parse_line(&raw)?;
            if let Some(&(first, _)) = self.partial.first() {
                if first != code {
                    self.partial.clear();
                    return Err(ReplyError::Malformed(lossy(&raw)));
                }
            }
            self.partial.push((code, text));
            if more {
                if self.partial.len() >= MAX_LINES {
                    self.partial.clear();
                    return Err(ReplyError::TooLong);
                }
                continue;
            }
            let lines: Vec<String> = std::mem::take(&mut self.partial)
                .into_iter()
                .map(|(_, t)| t)
                .collect();
            let enhanced = lines
                .first()
                .and_then(|t| t.split(' ').next())
                .and_then(Enhanced::parse)
                .filter(|e| u16::from(e.class) == code / 100);
            return Ok(Some(Reply {
                code,
                enhanced,
                lines,
            }));
        }
        Ok(None)
    }
}

/// One line: its code, whether more lines follow, and its text.
fn parse_line(raw: &[u8]) -> Result<(u16, bool, String), ReplyError> {
    let bad = || ReplyError::Malformed(lossy(raw));
    if raw.len() < 3 || !raw[..3].iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let code =
        u16::from(raw[0] - b'0') * 100 + u16::from(raw[1] - b'0') * 10 + u16::from(raw[2] - b'0');
    // RFC 5321 4.2: first digit 2 to 5; second digit 0 to 5.
    if !(200..600).contains(&code) || raw[1] > b'5' {
        return Err(bad());
    }
    let (more, text) = match raw.get(3) {
        None => (false, &raw[3..]),
        Some(b' ') => (false, &raw[4..]),
        Some(b'-') => (true, &raw[4..]),
        Some(_) => return Err(bad()),
    };
    Ok((code, more, lossy(text)))
}

/// Text for logs: invalid UTF-8 and control characters made harmless.
fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (code, enhanced code, number of lines) of a parsed reply.
    type Summary = (u16, Option<String>, usize);
    type Expected<'a> = &'a [(u16, Option<&'a str>, usize)];

    /// Feeds `input` in chunks of `n` bytes and collects every reply or error.
    fn replay(input: &[u8], n: usize) -> Vec<Result<Reply, ReplyError>> {
        let mut p = ReplyParser::new();
        let mut out = Vec::new();
        for chunk in input.chunks(n) {
            p.push(chunk);
            loop {
                match p.next_reply() {
                    Ok(Some(r)) => out.push(Ok(r)),
                    Ok(None) => break,
                    Err(e) => out.push(Err(e)),
                }
            }
        }
        out
    }

    fn codes(input: &[u8]) -> Vec<Result<Summary, ReplyError>> {
        let mut all = Vec::new();
        for n in [1, 2, 3, 7, 64, 512, input.len().max(1)] {
            let got: Vec<_> = replay(input, n)
                .into_iter()
                .map(|r| r.map(|r| (r.code, r.enhanced.map(|e| e.to_string()), r.lines.len())))
                .collect();
            if let Some(prev) = all.last() {
                assert_eq!(prev, &got, "chunk size {n} differs for {input:?}");
            }
            all.push(got);
        }
        all.pop().unwrap_or_default()
    }

    #[test]
    fn well_formed_replies_in_any_chunking() {
        let table: &[(&[u8], Expected)] = &[
            (b"220 mx.example.com ESMTP\r\n", &[(220, None, 1)]),
            (
                b"250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n",
                &[(250, None, 4)],
            ),
            (b"250 2.1.0 Ok\r\n", &[(250, Some("2.1.0"), 1)]),
            (
                b"550 5.1.1 <a@b>: no such user\r\n",
                &[(550, Some("5.1.1"), 1)],
            ),
            (b"250\r\n", &[(250, None, 1)]),
            (b"354 go ahead\n", &[(354, None, 1)]),
            // Pipelined replies arrive together.
            (
                b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n450 4.2.0 busy\r\n354 End data\r\n",
                &[
                    (250, Some("2.1.0"), 1),
                    (250, Some("2.1.5"), 1),
                    (450, Some("4.2.0"), 1),
                    (354, None, 1),
                ],
            ),
            // An enhanced code of the wrong class is just text.
            (b"550 2.0.0 odd\r\n", &[(550, None, 1)]),
            (
                b"421-4.4.2 bye\r\n421 4.4.2 closing\r\n",
                &[(421, Some("4.4.2"), 2)],
            ),
        ];
        for (input, want) in table {
            let got = codes(input);
            let want: Vec<_> = want
                .iter()
                .map(|(c, e, n)| Ok((*c, e.map(str::to_string), *n)))
                .collect();
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn malformed_replies_are_errors_and_parsing_goes_on() {
        let table: &[&[u8]] = &[
            b"hello\r\n",
            b"25\r\n",
            b"2500 x\r\n",
            b"250x\r\n",
            b"199 too low\r\n",
            b"600 too high\r\n",
            b"260 second digit\r\n",
            b"\r\n",
            b"250-a\r\n251 b\r\n",
        ];
        for input in table {
            let got = codes(input);
            assert!(
                matches!(got.as_slice(), [Err(ReplyError::Malformed(_))]),
                "{:?} gave {got:?}",
                String::from_utf8_lossy(input)
            );
        }
        // After an error, a good reply still parses.
        let got = codes(b"junk\r\n250 ok\r\n");
        assert!(matches!(got[0], Err(ReplyError::Malformed(_))));
        assert_eq!(got[1], Ok((250, None, 1)));
    }

    #[test]
    fn over_long_lines_are_cut_and_endless_replies_stop() {
        let mut long = b"550 5.7.1 ".to_vec();
        long.extend(std::iter::repeat_n(b'x', 10_000));
        long.extend_from_slice(b"\r\n250 next\r\n");
        for n in [1, 7, 512, long.len()] {
            let got = replay(&long, n);
            let r = got[0].as_ref().unwrap();
            assert_eq!(r.code, 550);
            assert_eq!(r.lines[0].len(), MAX_LINE - 4);
            assert_eq!(r.enhanced.unwrap().to_string(), "5.7.1");
            assert_eq!(got[1].as_ref().unwrap().code, 250);
        }
        let mut endless = Vec::new();
        for _ in 0..MAX_LINES + 5 {
            endless.extend_from_slice(b"250-more\r\n");
        }
        let got = replay(&endless, 64);
        assert_eq!(got[0], Err(ReplyError::TooLong));
    }

    #[test]
    fn one_line_and_dsn() {
        let mut p = ReplyParser::new();
        p.push(b"550-5.1.1 no such\r\n550 5.1.1 user here\r\n");
        let r = p.next_reply().unwrap().unwrap();
        assert_eq!(r.one_line(), "550 5.1.1 no such 5.1.1 user here");
        assert_eq!(r.dsn().to_string(), "5.1.1");
        p.push(b"451 try later\r\n");
        let r = p.next_reply().unwrap().unwrap();
        assert_eq!(r.dsn().to_string(), "4.0.0");
        assert!(!p.has_pending());
        p.push(b"250 o");
        assert!(p.has_pending());
        assert_eq!(
            Enhanced::parse("5.7.1").unwrap().with_class(4).to_string(),
            "4.7.1"
        );
        assert!(Enhanced::parse("3.1.1").is_none());
        assert!(Enhanced::parse("5.1234.1").is_none());
    }
}
