//! The webmail's submission client (RFC 6409): a small blocking SMTP client
//! that sends one message with the user's own login, as any mail client
//! does, so the mail reaches the queue with the same limits, checks, DSN
//! and bounces as everyone's.
//!
//! One connection per message: greeting, EHLO, STARTTLS (RFC 3207) or TLS
//! from the first byte, EHLO again, AUTH PLAIN (RFC 4954, RFC 4616), MAIL
//! FROM with SIZE (RFC 1870) and BODY=8BITMIME (RFC 6152) when offered,
//! one RCPT TO per recipient, DATA with dot-stuffing (RFC 5321 4.5.2),
//! QUIT. A recipient the server refuses stops the transaction before DATA
//! (RSET): nothing is sent to anyone, and the caller shows every refused
//! address with the server's own text, so the user can fix them.
//!
//! Why not a crate: lettre 0.11 (MIT, rust-version 1.85) fits in licence
//! and rustc, but brings its own TLS set-up and has no BDAT or BURL; the
//! grammar needed here is small, and the TLS and timeouts are those of the
//! IMAP client (`crate::imapc::conn`).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::time::Duration;

use base64::Engine;

use super::settings::Server;
use crate::imapc::conn::{self, Stream};

/// Longest reply line and most lines of one reply we read.
const MAX_LINE: usize = 4096;
const MAX_LINES: usize = 100;

/// One SMTP reply: its code and its text lines (without the code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// The code and text as one line, as the server said it.
    pub fn text(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" "))
    }

    fn ok(&self) -> bool {
        (200..400).contains(&self.code)
    }
}

/// Why a message was not sent.
#[derive(Debug)]
pub enum SubmitError {
    /// The server could not be reached, broke the connection or timed out.
    Unavailable(String),
    /// The server refused our login.
    Auth(Reply),
    /// The server refused these recipients (address, reply); nothing sent.
    Recipients(Vec<(String, Reply)>),
    /// The server refused the sender or the message (size, content).
    Refused(Reply),
}

impl std::fmt::Display for SubmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubmitError::Unavailable(e) => write!(f, "submission server unavailable: {e}"),
            SubmitError::Auth(r) => write!(f, "login refused: {}", r.text()),
            SubmitError::Recipients(l) => {
                let parts: Vec<String> = l
                    .iter()
                    .map(|(a, r)| format!("<{a}>: {}", r.text()))
                    .collect();
                write!(f, "recipients refused: {}", parts.join("; "))
            }
            SubmitError::Refused(r) => write!(f, "refused: {}", r.text()),
        }
    }
}

/// What the message is made of: bytes sent with DATA, or for BURL (RFC
/// 4468) chunks of bytes (BDAT, RFC 3030) and URLAUTH URLs the server
/// fetches itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    Bytes(Vec<u8>),
    Url(String),
}

/// Where and as whom to submit.
pub struct Login<'a> {
    pub server: &'a Server,
    pub ca_file: Option<&'a Path>,
    pub timeout: Duration,
    /// The name given in EHLO.
    pub helo: &'a str,
    pub user: &'a str,
    pub password: &'a str,
}

/// One SMTP connection, logged in.
pub struct Session {
    io: BufReader<Stream>,
    extensions: Vec<String>,
}

impl Session {
    /// Connects, says EHLO, protects the connection as the server entry
    /// asks (`tls`, `starttls`, `plain`), and logs in (not with an empty
    /// user: the one-click unsubscribe's mail to a list on port 25).
    pub fn open(l: &Login) -> Result<Session, SubmitError> {
        let down = |e: crate::imapc::Error| SubmitError::Unavailable(e.to_string());
        let stream = l.server.connect(l.ca_file, l.timeout).map_err(down)?;
        let mut s = Session {
            io: BufReader::new(stream),
            extensions: Vec::new(),
        };
        let greeting = s.read_reply()?;
        if greeting.code != 220 {
            return Err(SubmitError::Unavailable(greeting.text()));
        }
        s.ehlo(l.helo)?;
        if l.server.security == "starttls" {
            if !s.has("STARTTLS") {
                return Err(SubmitError::Unavailable(
                    "the server does not offer STARTTLS".into(),
                ));
            }
            let r = s.command("STARTTLS")?;
            if r.code != 220 {
                return Err(SubmitError::Unavailable(r.text()));
            }
            let Stream::Plain(sock) = std::mem::replace(s.io.get_mut(), Stream::Closed) else {
                return Err(SubmitError::Unavailable("STARTTLS twice".into()));
            };
            let tls = conn::tls(sock, &l.server.host, l.ca_file).map_err(down)?;
            s.io = BufReader::new(tls);
            s.ehlo(l.helo)?;
        }
        if l.user.is_empty() {
            return Ok(s);
        }
        let mut token = Vec::with_capacity(l.user.len() + l.password.len() + 2);
        token.push(0);
        token.extend_from_slice(l.user.as_bytes());
        token.push(0);
        token.extend_from_slice(l.password.as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(&token);
        token.fill(0);
        let r = s.command(&format!("AUTH PLAIN {b64}"))?;
        if r.code != 235 {
            return Err(SubmitError::Auth(r));
        }
        // Some extensions (BURL, RFC 4468 3) are offered only after AUTH.
        s.ehlo(l.helo)?;
        Ok(s)
    }

    /// Whether the server offered this extension (keyword, any case).
    pub fn has(&self, ext: &str) -> bool {
        self.extensions.iter().any(|e| {
            e.split(' ')
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case(ext))
        })
    }

    /// Whether the server takes BURL with IMAP URLs and BDAT (RFC 4468,
    /// RFC 3030), as sending a linked message needs.
    pub fn burl_imap(&self) -> bool {
        self.has("CHUNKING")
            && self.extensions.iter().any(|e| {
                let mut w = e.split_whitespace();
                w.next().is_some_and(|k| k.eq_ignore_ascii_case("BURL"))
                    && w.any(|x| x.eq_ignore_ascii_case("imap"))
            })
    }

    /// The SIZE the server offered, when it named one.
    pub fn size_limit(&self) -> Option<u64> {
        self.extensions.iter().find_map(|e| {
            let (k, v) = e.split_once(' ')?;
            k.eq_ignore_ascii_case("SIZE")
                .then(|| v.trim().parse().ok())
                .flatten()
                .filter(|n| *n > 0)
        })
    }

    /// Sends one message from `from` to `rcpts`.
    pub fn send(
        &mut self,
        from: &str,
        rcpts: &[String],
        body: &[Chunk],
    ) -> Result<(), SubmitError> {
        let size: usize = body
            .iter()
            .map(|c| match c {
                Chunk::Bytes(b) => b.len(),
                Chunk::Url(_) => 0,
            })
            .sum();
        let eight_bit = body.iter().any(|c| match c {
            Chunk::Bytes(b) => b.iter().any(|x| *x >= 0x80),
            Chunk::Url(_) => true,
        });
        let mut mail = format!("MAIL FROM:<{from}>");
        if self.has("SIZE") && body.iter().all(|c| matches!(c, Chunk::Bytes(_))) {
            mail.push_str(&format!(" SIZE={size}"));
        }
        if eight_bit && self.has("8BITMIME") {
            mail.push_str(" BODY=8BITMIME");
        }
        let r = self.command(&mail)?;
        if !r.ok() {
            let _ = self.command("RSET");
            return Err(SubmitError::Refused(r));
        }
        let mut refused = Vec::new();
        for to in rcpts {
            let r = self.command(&format!("RCPT TO:<{to}>"))?;
            if !r.ok() {
                refused.push((to.clone(), r));
            }
        }
        if !refused.is_empty() {
            let _ = self.command("RSET");
            return Err(SubmitError::Recipients(refused));
        }
        let done = match body {
            [Chunk::Bytes(b)] => {
                let r = self.command("DATA")?;
                if r.code != 354 {
                    let _ = self.command("RSET");
                    return Err(SubmitError::Refused(r));
                }
                self.write(&dot_stuff(b))?;
                self.write(b".\r\n")?;
                self.read_reply()?
            }
            chunks => self.chunks(chunks)?,
        };
        if !done.ok() {
            let _ = self.command("RSET");
            return Err(SubmitError::Refused(done));
        }
        Ok(())
    }

    /// BDAT and BURL (RFC 3030, RFC 4468), the last one with LAST.
    fn chunks(&mut self, chunks: &[Chunk]) -> Result<Reply, SubmitError> {
        let mut last = Reply {
            code: 554,
            lines: vec!["empty message".into()],
        };
        for (i, c) in chunks.iter().enumerate() {
            let tail = if i + 1 == chunks.len() { " LAST" } else { "" };
            last = match c {
                Chunk::Bytes(b) => {
                    let mut line = format!("BDAT {}{tail}\r\n", b.len()).into_bytes();
                    line.extend_from_slice(b);
                    self.write(&line)?;
                    self.read_reply()?
                }
                Chunk::Url(u) => self.command(&format!("BURL {u}{tail}"))?,
            };
            if !last.ok() {
                return Ok(last);
            }
        }
        Ok(last)
    }

    /// Says QUIT and closes.
    pub fn quit(mut self) {
        let _ = self.command("QUIT");
        self.io.get_mut().close();
    }

    fn ehlo(&mut self, helo: &str) -> Result<(), SubmitError> {
        let r = self.command(&format!("EHLO {helo}"))?;
        if r.code != 250 {
            return Err(SubmitError::Unavailable(r.text()));
        }
        self.extensions = r.lines.iter().skip(1).cloned().collect();
        Ok(())
    }

    fn command(&mut self, line: &str) -> Result<Reply, SubmitError> {
        self.write(format!("{line}\r\n").as_bytes())?;
        self.read_reply()
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), SubmitError> {
        let s = self.io.get_mut();
        s.write_all(bytes)
            .and_then(|_| s.flush())
            .map_err(|e| SubmitError::Unavailable(e.to_string()))
    }

    fn read_reply(&mut self) -> Result<Reply, SubmitError> {
        let mut lines = Vec::new();
        loop {
            let mut raw = Vec::new();
            let n = (&mut self.io)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut raw)
                .map_err(|e| SubmitError::Unavailable(e.to_string()))?;
            if n == 0 {
                return Err(SubmitError::Unavailable("connection closed".into()));
            }
            let line = String::from_utf8_lossy(&raw).trim_end().to_string();
            let (code, more, text) = parse_reply_line(&line)
                .ok_or_else(|| SubmitError::Unavailable(format!("bad reply {line:?}")))?;
            lines.push(text.to_string());
            if !more {
                return Ok(Reply { code, lines });
            }
            if lines.len() >= MAX_LINES {
                return Err(SubmitError::Unavailable("reply too long".into()));
            }
        }
    }
}

/// `250-text` → (250, true, "text"); `250 text` and `250` → (250, false, ..).
pub fn parse_reply_line(line: &str) -> Option<(u16, bool, &str)> {
    let code = line.get(..3)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let code: u16 = code.parse().ok()?;
    match line.as_bytes().get(3) {
        None => Some((code, false, "")),
        Some(b'-') => Some((code, true, &line[4..])),
        Some(b' ') => Some((code, false, &line[4..])),
        _ => None,
    }
}

/// The message for DATA: CRLF line ends, a line starting with `.` gets
/// another (RFC 5321 4.5.2), and a last line end when there is none.
pub fn dot_stuff(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + msg.len() / 64 + 4);
    let mut at_line_start = true;
    let mut prev = 0u8;
    for &b in msg {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
        prev = b;
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_lines_parse() {
        assert_eq!(
            parse_reply_line("250-SIZE 100"),
            Some((250, true, "SIZE 100"))
        );
        assert_eq!(
            parse_reply_line("550 5.1.1 no"),
            Some((550, false, "5.1.1 no"))
        );
        assert_eq!(parse_reply_line("354"), Some((354, false, "")));
        assert_eq!(parse_reply_line("25x ok"), None);
        assert_eq!(parse_reply_line("250_ok"), None);
        assert_eq!(parse_reply_line(""), None);
    }

    #[test]
    fn data_is_dot_stuffed_with_crlf() {
        assert_eq!(dot_stuff(b".a\n..b\r\nc"), b"..a\r\n...b\r\nc\r\n");
        assert_eq!(dot_stuff(b"x\r\n.\r\n"), b"x\r\n..\r\n");
        assert_eq!(dot_stuff(b""), b"\r\n");
    }
}
