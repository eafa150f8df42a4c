//! The command transport of [`Client`]: tags, sending a command with its
//! literals (non-synchronising with LITERAL+ or LITERAL-, else waiting for
//! the continuation request), reading responses until the tagged
//! completion while setting untagged ones aside, AUTHENTICATE PLAIN, and
//! marking the connection unusable after anything it cannot trust.

use std::io::{self, Write};
use std::time::Instant;

use zeroize::Zeroizing;

use super::command::{encode_str, Cmd, Encoded, Part};
use super::reply::{self, Response, Status, Value};
use super::{conn, Client, Error};

/// The largest literal LITERAL- allows without waiting (RFC 7888).
const LITERAL_MINUS_MAX: usize = 4096;
/// The most untagged responses one command may bring.
const MAX_UNTAGGED: usize = 1_000_000;
/// The most bytes the responses to one command may bring (a whole
/// message of [`reply::MAX_LITERAL`] and its company fit).
const MAX_COMMAND_BYTES: usize = 4 * reply::MAX_LITERAL;
/// The most values the responses to one command may bring.
const MAX_COMMAND_VALUES: usize = 2 * reply::MAX_VALUES;

/// What a command's completion brought: its untagged responses (in order)
/// and the tagged OK's response code.
pub(super) struct Done {
    pub untagged: Vec<Response>,
    pub code: Option<(String, Vec<Value>)>,
}

impl Client {
    /// AUTHENTICATE PLAIN; the secret is zeroed after use.
    pub(super) fn authenticate_plain(&mut self, user: &str, password: &str) -> Result<Done, Error> {
        use base64::Engine;
        let mut raw = Zeroizing::new(Vec::with_capacity(user.len() + password.len() + 2));
        raw.push(0);
        raw.extend_from_slice(user.as_bytes());
        raw.push(0);
        raw.extend_from_slice(password.as_bytes());
        let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&*raw));
        let tag = self.begin();
        if self.has("SASL-IR") {
            let line = Zeroizing::new(format!("{tag} AUTHENTICATE PLAIN {}\r\n", &*b64));
            self.write(line.as_bytes())?;
        } else {
            self.write(format!("{tag} AUTHENTICATE PLAIN\r\n").as_bytes())?;
            self.wait_continue(&tag)?;
            let line = Zeroizing::new(format!("{}\r\n", &*b64));
            self.write(line.as_bytes())?;
        }
        loop {
            match self.read()? {
                Response::Continue(_) => {
                    // PLAIN has one round; a second challenge is cancelled.
                    self.write(b"*\r\n")?;
                }
                r => {
                    if let Some(done) = self.complete(&tag, r)? {
                        return Ok(done);
                    }
                }
            }
        }
    }

    /// Runs one command to its tagged completion.
    pub(super) fn run(&mut self, cmd: &Cmd) -> Result<Done, Error> {
        let tag = self.begin();
        self.send(&tag, cmd)?;
        loop {
            let r = self.read()?;
            if let Response::Continue(_) = r {
                return Err(self.fail("unexpected continuation request"));
            }
            if let Some(done) = self.complete(&tag, r)? {
                return Ok(done);
            }
        }
    }

    /// Files one response of the command tagged `tag`: Some when it is the
    /// completion.
    pub(super) fn complete(&mut self, tag: &str, r: Response) -> Result<Option<Done>, Error> {
        match r {
            Response::Status {
                tag: Some(t),
                status,
                code,
                text,
            } => {
                if t != tag.as_bytes() {
                    return Err(self.fail("a reply with another command's tag"));
                }
                let what = match &code {
                    Some((c, _)) => format!("[{c}] {text}"),
                    None => text,
                };
                match status {
                    Status::Ok => Ok(Some(Done {
                        untagged: std::mem::take(&mut self.untagged),
                        code,
                    })),
                    Status::No => Err(Error::No(what)),
                    Status::Bad => Err(Error::Bad(what)),
                    _ => Err(self.fail("a tagged BYE or PREAUTH")),
                }
            }
            Response::Status {
                tag: None,
                status: Status::Bye,
                text,
                ..
            } => {
                self.bye = Some(text);
                Ok(None)
            }
            r => {
                if self.untagged.len() >= MAX_UNTAGGED {
                    return Err(self.fail("too many untagged responses"));
                }
                self.untagged.push(r);
                Ok(None)
            }
        }
    }

    /// Sends a command, waiting for continuation requests before
    /// synchronising literals.
    pub(super) fn send(&mut self, tag: &str, cmd: &Cmd) -> Result<(), Error> {
        // Check every part before the first byte goes out.
        for p in &cmd.parts {
            if let Part::Str(s) = p {
                encode_str(s, self.utf8)?;
            }
        }
        let plus = self.has("LITERAL+");
        let minus = self.has("LITERAL-");
        // The line may hold a password (LOGIN): zeroed when dropped.
        let mut line = Zeroizing::new(format!("{tag} ").into_bytes());
        for p in &cmd.parts {
            let (prefix, body): (&str, &[u8]) = match p {
                Part::Syntax(s) => {
                    line.extend_from_slice(s.as_bytes());
                    continue;
                }
                Part::Str(s) => match encode_str(s, self.utf8)? {
                    Encoded::Quoted(q) => {
                        let q = Zeroizing::new(q);
                        line.extend_from_slice(&q);
                        continue;
                    }
                    Encoded::Literal => ("", s),
                },
                Part::Literal(s) => ("", s),
                Part::Literal8(s) => ("~", s),
            };
            let nonsync = plus || (minus && body.len() <= LITERAL_MINUS_MAX);
            let mark = if nonsync { "+" } else { "" };
            line.extend_from_slice(format!("{prefix}{{{}{mark}}}\r\n", body.len()).as_bytes());
            if body.len() < 4096 && nonsync {
                line.extend_from_slice(body);
                continue;
            }
            self.write(&line)?;
            line.clear();
            if !nonsync {
                self.wait_continue(tag)?;
            }
            // A big literal goes straight out, not through another buffer.
            self.write(body)?;
        }
        line.extend_from_slice(b"\r\n");
        self.write(&line)
    }

    /// Waits for `+` (untagged responses meanwhile are kept for the command).
    pub(super) fn wait_continue(&mut self, tag: &str) -> Result<(), Error> {
        loop {
            match self.read()? {
                Response::Continue(_) => return Ok(()),
                r => {
                    if self.complete(tag, r)?.is_some() {
                        return Err(self.fail("command completed before its literal was sent"));
                    }
                }
            }
        }
    }

    pub(super) fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if let Some(why) = &self.broken {
            return Err(Error::Protocol(format!("connection unusable: {why}")));
        }
        let s = self.io.get_mut();
        match s.write_all(bytes).and_then(|_| s.flush()) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.broken = Some(e.to_string());
                Err(Error::Io(e))
            }
        }
    }

    /// Reads and parses one response.
    pub(super) fn read(&mut self) -> Result<Response, Error> {
        if let Some(why) = &self.broken {
            return Err(Error::Protocol(format!("connection unusable: {why}")));
        }
        let mut buf = std::mem::take(&mut self.buf);
        let mut io = conn::Deadline {
            inner: &mut self.io,
            until: Instant::now() + self.reply_time,
        };
        let r = reply::read_response(&mut io, &mut buf).and_then(|()| reply::parse_counted(&buf));
        self.received.0 += buf.len();
        buf.clear();
        if buf.capacity() <= 1 << 20 {
            self.buf = buf;
        }
        match r {
            Ok((r, values)) => {
                self.received.1 += values;
                if self.received.0 > MAX_COMMAND_BYTES || self.received.1 > MAX_COMMAND_VALUES {
                    return Err(self.fail("too much data in reply to one command"));
                }
                Ok(r)
            }
            Err(reply::ReplyError::Io(e)) => {
                self.broken = Some(e.to_string());
                Err(Error::Io(e))
            }
            Err(reply::ReplyError::Closed) => {
                self.broken = Some("closed by the server".into());
                Err(match &self.bye {
                    Some(t) => Error::Bye(t.clone()),
                    None => Error::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    )),
                })
            }
            Err(reply::ReplyError::Syntax(e)) => Err(self.fail(&e)),
        }
    }

    /// Marks the connection unusable and says why.
    pub(super) fn fail(&mut self, why: &str) -> Error {
        self.broken = Some(why.to_string());
        Error::Protocol(why.to_string())
    }

    /// Starts a command: its tag, and nothing received yet.
    fn begin(&mut self) -> String {
        self.untagged.clear();
        self.received = (0, 0);
        self.next_tag()
    }

    pub(super) fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("k{}", self.tag)
    }

    /// The tag the next command will carry.
    pub(super) fn peek_tag(&self) -> String {
        format!("k{}", self.tag + 1)
    }
}
