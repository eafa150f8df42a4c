//! A blocking ManageSieve client (RFC 5804): what the rule editor needs of
//! kmp-sieved, with the user's own login. One connection per request, as
//! with IMAP.
//!
//! Responses are read as lines of atoms, quoted strings and literals
//! (`{N}` / `{N+}`, RFC 5804 4); a response code in parentheses is kept
//! as one token. Everything is capped: a script may be at most
//! [`MAX_SCRIPT`] bytes, a response [`MAX_LINES`] lines.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::time::Duration;

use base64::Engine;

use super::settings::Server;
use crate::imapc::conn::{self, Stream};

/// Largest script read back (kmp-sieved's own cap is smaller).
pub const MAX_SCRIPT: usize = 1 << 20;
/// Most lines in one response (LISTSCRIPTS of many scripts).
pub const MAX_LINES: usize = 10_000;
/// Longest line outside literals.
const MAX_LINE: usize = 16 << 10;

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The server cannot be reached or broke the protocol.
    Unavailable(String),
    /// The login was refused.
    Auth,
    /// The server said NO: the response code (`QUOTA`, `NONEXISTENT` ...)
    /// and its text (for a script's syntax error, the line and column).
    No { code: Option<String>, text: String },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Unavailable(d) => write!(f, "ManageSieve server unavailable: {d}"),
            Error::Auth => write!(f, "login refused"),
            Error::No {
                code: Some(c),
                text,
            } => write!(f, "({c}) {text}"),
            Error::No { code: None, text } => write!(f, "{text}"),
        }
    }
}

/// One token of a response line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Atom(String),
    Str(String),
    /// A response code, without its parentheses.
    Code(String),
}

/// One script in LISTSCRIPTS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptName {
    pub name: String,
    pub active: bool,
}

/// A logged-in ManageSieve connection.
pub struct Client {
    io: BufReader<Stream>,
}

/// Where and as whom.
pub struct Login<'a> {
    pub server: &'a Server,
    pub ca_file: Option<&'a Path>,
    pub timeout: Duration,
    pub user: &'a str,
    pub password: &'a str,
}

fn down(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(e.to_string())
}

impl Client {
    /// Connects, protects the connection as `server.security` asks, and
    /// logs in with SASL PLAIN.
    pub fn login(l: &Login) -> Result<Client, Error> {
        let stream = l.server.connect(l.ca_file, l.timeout).map_err(down)?;
        let mut c = Client {
            io: BufReader::new(stream),
        };
        let caps = c.response()?;
        if l.server.security == "starttls" {
            if !caps.iter().any(
                |t| matches!(t.first(), Some(Tok::Str(s)) if s.eq_ignore_ascii_case("STARTTLS")),
            ) {
                return Err(down("the server does not offer STARTTLS"));
            }
            c.send(b"STARTTLS\r\n")?;
            c.response()?;
            let Stream::Plain(sock) = std::mem::replace(c.io.get_mut(), Stream::Closed) else {
                return Err(down("STARTTLS twice"));
            };
            c.io = BufReader::new(conn::tls(sock, &l.server.host, l.ca_file).map_err(down)?);
            // RFC 5804 2.2: the capabilities again, now under TLS.
            c.response()?;
        }
        let mut token = Vec::with_capacity(l.user.len() + l.password.len() + 2);
        token.push(0);
        token.extend_from_slice(l.user.as_bytes());
        token.push(0);
        token.extend_from_slice(l.password.as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(&token);
        token.fill(0);
        c.send(format!("AUTHENTICATE \"PLAIN\" \"{b64}\"\r\n").as_bytes())?;
        match c.response() {
            Ok(_) => Ok(c),
            Err(Error::No { .. }) => Err(Error::Auth),
            Err(e) => Err(e),
        }
    }

    /// LISTSCRIPTS.
    pub fn list(&mut self) -> Result<Vec<ScriptName>, Error> {
        self.send(b"LISTSCRIPTS\r\n")?;
        let lines = self.response()?;
        Ok(lines
            .into_iter()
            .filter_map(|l| match l.as_slice() {
                [Tok::Str(n)] => Some(ScriptName {
                    name: n.clone(),
                    active: false,
                }),
                [Tok::Str(n), Tok::Atom(a)] => Some(ScriptName {
                    name: n.clone(),
                    active: a.eq_ignore_ascii_case("ACTIVE"),
                }),
                _ => None,
            })
            .collect())
    }

    /// GETSCRIPT: the script's text.
    pub fn get(&mut self, name: &str) -> Result<String, Error> {
        self.send(format!("GETSCRIPT {}\r\n", literal_or_quoted(name)).as_bytes())?;
        let lines = self.response()?;
        match lines.first().and_then(|l| l.first()) {
            Some(Tok::Str(s)) => Ok(s.clone()),
            _ => Err(down("GETSCRIPT returned no script")),
        }
    }

    /// PUTSCRIPT: stores `text` as `name` (checked by the server first).
    pub fn put(&mut self, name: &str, text: &str) -> Result<(), Error> {
        let text = crlf(text);
        let mut cmd = format!(
            "PUTSCRIPT {} {{{}+}}\r\n",
            literal_or_quoted(name),
            text.len()
        )
        .into_bytes();
        cmd.extend_from_slice(text.as_bytes());
        cmd.extend_from_slice(b"\r\n");
        self.send(&cmd)?;
        self.response().map(|_| ())
    }

    /// CHECKSCRIPT: the server's syntax check, nothing stored.
    pub fn check(&mut self, text: &str) -> Result<(), Error> {
        let text = crlf(text);
        let mut cmd = format!("CHECKSCRIPT {{{}+}}\r\n", text.len()).into_bytes();
        cmd.extend_from_slice(text.as_bytes());
        cmd.extend_from_slice(b"\r\n");
        self.send(&cmd)?;
        self.response().map(|_| ())
    }

    /// SETACTIVE.
    pub fn set_active(&mut self, name: &str) -> Result<(), Error> {
        self.send(format!("SETACTIVE {}\r\n", literal_or_quoted(name)).as_bytes())?;
        self.response().map(|_| ())
    }

    /// LOGOUT, best effort.
    pub fn logout(mut self) {
        if self.send(b"LOGOUT\r\n").is_ok() {
            let _ = self.response();
        }
        self.io.get_mut().close();
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let s = self.io.get_mut();
        s.write_all(bytes).and_then(|_| s.flush()).map_err(down)
    }

    /// The data lines up to OK; NO and BYE become errors.
    fn response(&mut self) -> Result<Vec<Vec<Tok>>, Error> {
        let mut lines = Vec::new();
        loop {
            let line = self.line()?;
            let verdict = match line.first() {
                Some(Tok::Atom(a)) => a.to_ascii_uppercase(),
                _ => String::new(),
            };
            match verdict.as_str() {
                "OK" => return Ok(lines),
                "NO" | "BYE" => {
                    let code = line.iter().find_map(|t| match t {
                        Tok::Code(c) => Some(c.clone()),
                        _ => None,
                    });
                    let text = line
                        .iter()
                        .find_map(|t| match t {
                            Tok::Str(s) => Some(s.clone()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    if verdict == "BYE" {
                        return Err(down(format!("BYE {text}")));
                    }
                    return Err(Error::No { code, text });
                }
                _ => lines.push(line),
            }
            if lines.len() > MAX_LINES {
                return Err(down("response too long"));
            }
        }
    }

    /// One response line as tokens, literals read in.
    fn line(&mut self) -> Result<Vec<Tok>, Error> {
        let mut toks = Vec::new();
        loop {
            let mut raw = Vec::new();
            let n = (&mut self.io)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut raw)
                .map_err(down)?;
            if n == 0 {
                return Err(down("connection closed"));
            }
            if raw.last() != Some(&b'\n') {
                return Err(down("line too long"));
            }
            let text = String::from_utf8(raw).map_err(|_| down("not UTF-8"))?;
            let text = text.trim_end_matches(['\r', '\n']);
            match tokens(text, &mut toks)? {
                None => return Ok(toks),
                Some(len) => {
                    if len > MAX_SCRIPT {
                        return Err(down("literal too large"));
                    }
                    let mut buf = vec![0; len];
                    self.io.read_exact(&mut buf).map_err(down)?;
                    toks.push(Tok::Str(
                        String::from_utf8(buf).map_err(|_| down("not UTF-8"))?,
                    ));
                }
            }
        }
    }
}

/// Splits `text` into `out`; Some(N) when it ends with a literal `{N}`.
fn tokens(text: &str, out: &mut Vec<Tok>) -> Result<Option<usize>, Error> {
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            ' ' => {}
            '"' => {
                let mut s = String::new();
                let mut closed = false;
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, e)) = chars.next() {
                                s.push(e);
                            }
                        }
                        '"' => {
                            closed = true;
                            break;
                        }
                        c => s.push(c),
                    }
                }
                if !closed {
                    return Err(down("unterminated string"));
                }
                out.push(Tok::Str(s));
            }
            '(' => {
                let mut s = String::new();
                let mut quoted = false;
                for (_, c) in chars.by_ref() {
                    match c {
                        '"' => quoted = !quoted,
                        ')' if !quoted => break,
                        _ => {}
                    }
                    s.push(c);
                }
                out.push(Tok::Code(s));
            }
            '{' => {
                let rest = &text[i + 1..];
                let end = rest.find('}').ok_or_else(|| down("bad literal"))?;
                if end + 1 != rest.len() {
                    return Err(down("bad literal"));
                }
                let n = rest[..end].trim_end_matches('+');
                return n.parse().map(Some).map_err(|_| down("bad literal"));
            }
            _ => {
                let mut s = String::from(c);
                while let Some((_, c)) = chars.peek() {
                    if *c == ' ' {
                        break;
                    }
                    s.push(*c);
                    chars.next();
                }
                out.push(Tok::Atom(s));
            }
        }
    }
    Ok(None)
}

/// A script name as a quoted string, or a literal when it holds what a
/// quoted string may not.
fn literal_or_quoted(s: &str) -> String {
    if s.contains(['"', '\\', '\r', '\n']) {
        format!("{{{}+}}\r\n{s}", s.len())
    } else {
        format!("\"{s}\"")
    }
}

/// The script with CRLF line ends, as RFC 5804 and Sieve want.
fn crlf(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\n', "\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_lines_split_into_tokens() {
        let mut t = Vec::new();
        assert_eq!(tokens(r#""规则" ACTIVE"#, &mut t).unwrap(), None);
        assert_eq!(t, [Tok::Str("规则".into()), Tok::Atom("ACTIVE".into())]);
        let mut t = Vec::new();
        assert_eq!(
            tokens(r#"NO (QUOTA/MAXSIZE) "too \"big\"""#, &mut t).unwrap(),
            None
        );
        assert_eq!(
            t,
            [
                Tok::Atom("NO".into()),
                Tok::Code("QUOTA/MAXSIZE".into()),
                Tok::Str("too \"big\"".into())
            ]
        );
        let mut t = Vec::new();
        assert_eq!(tokens("NO {12}", &mut t).unwrap(), Some(12));
        assert_eq!(tokens("{5+}", &mut Vec::new()).unwrap(), Some(5));
        assert!(tokens("\"open", &mut Vec::new()).is_err());
        assert!(tokens("{x}", &mut Vec::new()).is_err());
    }

    #[test]
    fn names_and_scripts_are_sent_safely() {
        assert_eq!(literal_or_quoted("kmpromail-rules"), "\"kmpromail-rules\"");
        assert_eq!(literal_or_quoted("a\"b"), "{3+}\r\na\"b");
        assert_eq!(crlf("a\nb\r\nc"), "a\r\nb\r\nc");
    }
}
