//! A small blocking POP3 client (RFC 1939, CAPA and STLS of RFC 2449 and
//! 2595, AUTH of RFC 5034) for the fetch agent: connect over implicit TLS,
//! STLS or (only when the account says so) plain TCP, log in with SASL
//! PLAIN or LOGIN when offered and USER/PASS otherwise, list by UIDL and
//! LIST, retrieve with RETR (TOP is never needed), DELE, QUIT.
//!
//! Every line read is capped ([`MAX_LINE`], [`MAX_DATA_LINE`]); a reply
//! that is not `+OK`/`-ERR` is a protocol error and the connection is not
//! used again. TCP and TLS come from `imapc::conn` (rustls with ring, the
//! certificate checked against `fetch.ca_file` or the system's authorities).

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::imapc::conn::{self, Stream};
use crate::ipc::fetch::Tls;
use crate::proto::sasl::Secret;

/// The longest status line or listing line.
pub const MAX_LINE: usize = 8 * 1024;
/// The longest line inside a message (RFC 5322 says 998; real mail is worse).
pub const MAX_DATA_LINE: usize = 1 << 20;
/// The most messages a listing may have.
pub const MAX_MESSAGES: usize = 1_000_000;

/// Why a POP3 exchange failed.
#[derive(Debug)]
pub enum Error {
    /// The connection failed, timed out or closed.
    Io(io::Error),
    /// TLS could not be set up (handshake, certificate, no STLS).
    Tls(String),
    /// The server sent something that is not POP3.
    Protocol(String),
    /// The server answered -ERR: the command and its text.
    Refused(String),
    /// The login was refused: the server's text.
    Auth(String),
    /// A message over the size limit.
    TooBig,
}

impl Error {
    /// Whether trying again later may succeed.
    pub fn is_temporary(&self) -> bool {
        match self {
            Error::Io(_) | Error::Refused(_) | Error::Protocol(_) => true,
            Error::Auth(t) => t.contains("[IN-USE]") || t.contains("[SYS/TEMP]"),
            Error::Tls(_) | Error::TooBig => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "POP3 connection: {e}"),
            Error::Tls(e) => write!(f, "POP3 TLS: {e}"),
            Error::Protocol(e) => write!(f, "POP3 protocol error: {e}"),
            Error::Refused(e) => write!(f, "POP3 server refused: {e}"),
            Error::Auth(e) => write!(f, "POP3 login refused: {e}"),
            Error::TooBig => write!(f, "the message is over the size limit"),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

impl From<crate::imapc::Error> for Error {
    fn from(e: crate::imapc::Error) -> Error {
        match e {
            crate::imapc::Error::Io(e) => Error::Io(e),
            crate::imapc::Error::Tls(t) => Error::Tls(t),
            other => Error::Protocol(other.to_string()),
        }
    }
}

/// How to reach the server.
pub struct Target<'a> {
    pub host: &'a str,
    pub port: u16,
    pub tls: Tls,
    /// Check the certificate (off only when the account says so).
    pub verify: bool,
    /// PEM authorities; None: the system's.
    pub ca_file: Option<&'a Path>,
    pub timeout: Duration,
}

/// A connection to a POP3 server.
pub struct Client {
    io: BufReader<Stream>,
    caps: Vec<String>,
}

fn tls_over(sock: std::net::TcpStream, t: &Target) -> Result<Stream, Error> {
    let ca = if t.verify {
        t.ca_file
    } else {
        Some(Path::new(conn::NO_VERIFY))
    };
    Ok(conn::tls(sock, t.host, ca)?)
}

impl Client {
    /// Connects, reads the greeting, runs STLS when asked, and reads the
    /// capabilities (empty when the server has no CAPA).
    pub fn connect(t: &Target) -> Result<Client, Error> {
        let sock = conn::tcp(t.host, t.port, t.timeout)?;
        let stream = match t.tls {
            Tls::Implicit => tls_over(sock, t)?,
            Tls::Starttls | Tls::None => Stream::Plain(sock),
        };
        let mut c = Client {
            io: BufReader::with_capacity(64 << 10, stream),
            caps: Vec::new(),
        };
        c.status("greeting")?;
        c.caps = c.capa()?;
        if t.tls == Tls::Starttls {
            if !c.has("STLS") {
                return Err(Error::Tls(
                    "the server does not offer STLS (the account requires TLS)".into(),
                ));
            }
            c.command("STLS")?;
            // Anything after the +OK came before TLS: a man in the middle's.
            if !c.io.buffer().is_empty() {
                return Err(Error::Protocol("data after the STLS reply".into()));
            }
            let old = std::mem::replace(c.io.get_mut(), Stream::Closed);
            let Stream::Plain(sock) = old else {
                return Err(Error::Protocol("STLS on a TLS connection".into()));
            };
            *c.io.get_mut() = tls_over(sock, t)?;
            c.caps = c.capa()?;
        }
        Ok(c)
    }

    /// Whether CAPA listed `cap` (the first word of a line).
    pub fn has(&self, cap: &str) -> bool {
        self.caps.iter().any(|c| {
            c.split(' ')
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case(cap))
        })
    }

    fn sasl(&self, mech: &str) -> bool {
        self.caps.iter().any(|c| {
            let mut w = c.split(' ');
            w.next().is_some_and(|w| w.eq_ignore_ascii_case("SASL"))
                && w.any(|m| m.eq_ignore_ascii_case(mech))
        })
    }

    /// Logs in: SASL PLAIN, else SASL LOGIN, else USER/PASS.
    pub fn login(&mut self, user: &str, password: &Secret) -> Result<(), Error> {
        if user.contains(['\r', '\n', '\0']) {
            return Err(Error::Auth("the user name holds a line end or NUL".into()));
        }
        let auth = |r: Result<String, Error>| match r {
            Err(Error::Refused(t)) => Err(Error::Auth(t)),
            Err(e) => Err(e),
            Ok(_) => Ok(()),
        };
        if self.sasl("PLAIN") {
            let mut raw = zeroize::Zeroizing::new(Vec::new());
            raw.push(0);
            raw.extend_from_slice(user.as_bytes());
            raw.push(0);
            raw.extend_from_slice(password.as_bytes());
            let line = zeroize::Zeroizing::new(format!("AUTH PLAIN {}", B64.encode(&*raw)));
            return auth(self.sasl_exchange(&line, &[]));
        }
        if self.sasl("LOGIN") {
            let u = B64.encode(user.as_bytes());
            let p = zeroize::Zeroizing::new(B64.encode(password.as_bytes()));
            return auth(self.sasl_exchange("AUTH LOGIN", &[&u, &p]));
        }
        if password.as_bytes().contains(&b'\n') || password.as_bytes().contains(&b'\r') {
            return Err(Error::Auth("the password holds a line end".into()));
        }
        auth(self.command(&format!("USER {user}")))?;
        let mut line = zeroize::Zeroizing::new(b"PASS ".to_vec());
        line.extend_from_slice(password.as_bytes());
        line.extend_from_slice(b"\r\n");
        self.io.get_mut().write_all(&line)?;
        self.io.get_mut().flush()?;
        auth(self.status("PASS"))
    }

    /// A SASL exchange: the command, then one answer per `+ ` challenge.
    fn sasl_exchange(&mut self, first: &str, answers: &[&str]) -> Result<String, Error> {
        self.send(first)?;
        let mut answers = answers.iter();
        loop {
            let line = self.line(MAX_LINE)?;
            if line.starts_with(b"+OK") {
                return Ok(text(&line[3..]));
            }
            if line.starts_with(b"-ERR") {
                return Err(Error::Refused(text(&line[4..])));
            }
            if line.starts_with(b"+") {
                match answers.next() {
                    Some(a) => self.send(a)?,
                    None => self.send("*")?,
                }
                continue;
            }
            return Err(Error::Protocol(format!(
                "AUTH: unexpected reply {:?}",
                text(&line)
            )));
        }
    }

    /// CAPA: the capability lines, or none when the server has no CAPA.
    fn capa(&mut self) -> Result<Vec<String>, Error> {
        match self.command("CAPA") {
            Ok(_) => Ok(self
                .multiline_lines(1000)?
                .into_iter()
                .map(|l| text(&l))
                .collect()),
            Err(Error::Refused(_)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// UIDL: (message number, unique id) of every message. A server
    /// without UIDL cannot be fetched from exactly once: an error.
    pub fn uidl(&mut self) -> Result<Vec<(u32, String)>, Error> {
        match self.command("UIDL") {
            Ok(_) => {}
            Err(Error::Refused(t)) => {
                return Err(Error::Refused(format!(
                    "UIDL: {t} (without UIDL a message cannot be fetched only once)"
                )))
            }
            Err(e) => return Err(e),
        }
        let mut out = Vec::new();
        for l in self.multiline_lines(MAX_MESSAGES)? {
            let l = text(&l);
            let mut w = l.split_ascii_whitespace();
            match (w.next().and_then(|n| n.parse().ok()), w.next()) {
                (Some(n), Some(id)) if super::state::valid_key(id) => out.push((n, id.to_string())),
                _ => return Err(Error::Protocol(format!("bad UIDL line {l:?}"))),
            }
        }
        Ok(out)
    }

    /// LIST: each message's size.
    pub fn list(&mut self) -> Result<HashMap<u32, u64>, Error> {
        self.command("LIST")?;
        let mut out = HashMap::new();
        for l in self.multiline_lines(MAX_MESSAGES)? {
            let l = text(&l);
            let mut w = l.split_ascii_whitespace();
            match (
                w.next().and_then(|n| n.parse().ok()),
                w.next().and_then(|n| n.parse().ok()),
            ) {
                (Some(n), Some(size)) => {
                    out.insert(n, size);
                }
                _ => return Err(Error::Protocol(format!("bad LIST line {l:?}"))),
            }
        }
        Ok(out)
    }

    /// RETR: the message, line by line with LF ends and dot-stuffing
    /// undone, into `sink`; at most `max` octets.
    pub fn retr(
        &mut self,
        n: u32,
        max: u64,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.command(&format!("RETR {n}"))?;
        let mut total = 0u64;
        let mut too_big = false;
        loop {
            let mut line = self.line(MAX_DATA_LINE)?;
            if line == b"." {
                break;
            }
            if line.starts_with(b".") {
                line.remove(0);
            }
            line.push(b'\n');
            total += line.len() as u64;
            if total > max {
                // Read to the end so the connection stays usable.
                too_big = true;
                continue;
            }
            if !too_big {
                sink(&line)?;
            }
        }
        if too_big {
            return Err(Error::TooBig);
        }
        Ok(())
    }

    /// DELE: marks a message for deletion at QUIT.
    pub fn dele(&mut self, n: u32) -> Result<(), Error> {
        self.command(&format!("DELE {n}")).map(|_| ())
    }

    /// QUIT: the deletions take effect (RFC 1939 6, the UPDATE state).
    pub fn quit(mut self) -> Result<(), Error> {
        self.command("QUIT")?;
        self.io.get_mut().close();
        Ok(())
    }

    fn send(&mut self, line: &str) -> Result<(), Error> {
        let s = self.io.get_mut();
        s.write_all(line.as_bytes())?;
        s.write_all(b"\r\n")?;
        s.flush()?;
        Ok(())
    }

    /// Sends a command and reads its status line: `+OK`'s text, or `-ERR`.
    fn command(&mut self, line: &str) -> Result<String, Error> {
        self.send(line)?;
        let verb = line.split(' ').next().unwrap_or(line).to_string();
        self.status(&verb)
    }

    fn status(&mut self, what: &str) -> Result<String, Error> {
        let line = self.line(MAX_LINE)?;
        if line.starts_with(b"+OK") {
            Ok(text(&line[3..]))
        } else if line.starts_with(b"-ERR") {
            Err(Error::Refused(format!("{what}: {}", text(&line[4..]))))
        } else {
            Err(Error::Protocol(format!(
                "{what}: not +OK or -ERR: {:?}",
                text(&line)
            )))
        }
    }

    /// The lines of a multi-line reply up to the lone dot, unstuffed.
    fn multiline_lines(&mut self, max_lines: usize) -> Result<Vec<Vec<u8>>, Error> {
        let mut out = Vec::new();
        loop {
            let mut line = self.line(MAX_LINE)?;
            if line == b"." {
                return Ok(out);
            }
            if line.starts_with(b".") {
                line.remove(0);
            }
            if out.len() >= max_lines {
                return Err(Error::Protocol(format!("more than {max_lines} lines")));
            }
            out.push(line);
        }
    }

    /// One line without its CRLF (or LF), at most `max` octets.
    fn line(&mut self, max: usize) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        loop {
            let buf = self.io.fill_buf()?;
            if buf.is_empty() {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                )));
            }
            match buf.iter().position(|&b| b == b'\n') {
                Some(p) => {
                    out.extend_from_slice(&buf[..p]);
                    self.io.consume(p + 1);
                    if out.last() == Some(&b'\r') {
                        out.pop();
                    }
                    if out.len() > max {
                        return Err(Error::Protocol(format!("a line over {max} octets")));
                    }
                    return Ok(out);
                }
                None => {
                    let n = buf.len();
                    out.extend_from_slice(buf);
                    self.io.consume(n);
                    if out.len() > max {
                        return Err(Error::Protocol(format!("a line over {max} octets")));
                    }
                }
            }
        }
    }
}

/// A server's text for messages: printable, trimmed, at most 200 characters.
fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect::<String>()
        .trim()
        .to_string()
}
