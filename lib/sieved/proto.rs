//! ManageSieve syntax (RFC 5804 4): commands in, responses out. Pure: no
//! I/O, no logging.
//!
//! A command is an atom and arguments separated by spaces, ending in CRLF.
//! An argument is a number, a quoted string (`\"` and `\\` escapes, at most
//! 1024 octets, no CR or LF) or a literal: `{n+}` CRLF and n octets (RFC
//! 5804 4, "literal-c2s"). Clients are not meant to send the synchronizing
//! `{n}` form, but some do; with nothing to wait for in this protocol we
//! take it alike. Every length has a named cap; bytes past the caps are
//! thrown away without being kept, and the answer is an error for that
//! command only.

use std::fmt::Write as _;

/// Longest command line, literals not counted.
pub const MAX_LINE: usize = 8192;
/// Longest quoted string (RFC 5804 4: "quoted ... limited to 1024 octets").
pub const MAX_QUOTED: usize = 1024;
/// Most arguments a command takes, with room to spare.
pub const MAX_ARGS: usize = 4;

/// One argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Atom(String),
    Number(u64),
    /// A quoted string or a literal, as octets.
    String(Vec<u8>),
}

/// A command, with typed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Capability,
    Logout,
    Noop(Option<Vec<u8>>),
    StartTls,
    Unauthenticate,
    Authenticate {
        mechanism: String,
        initial: Option<Vec<u8>>,
    },
    HaveSpace {
        name: String,
        size: u64,
    },
    PutScript {
        name: String,
        script: Vec<u8>,
    },
    CheckScript {
        script: Vec<u8>,
    },
    ListScripts,
    SetActive {
        name: String,
    },
    GetScript {
        name: String,
    },
    DeleteScript {
        name: String,
    },
    RenameScript {
        old: String,
        new: String,
    },
    Unknown(String),
}

/// A line that is not a command, and why. `code` is the response code to
/// send with the NO (RFC 5804 1.3), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadInput {
    pub message: &'static str,
    pub code: Option<&'static str>,
}

impl BadInput {
    const fn new(message: &'static str) -> BadInput {
        BadInput {
            message,
            code: None,
        }
    }
}

/// What the decoder found in the input.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The arguments of one whole line (the first one is the verb).
    Args(Vec<Arg>),
    /// A line that was thrown away.
    Bad(BadInput),
}

/// The incremental reader: feed it the input buffer, take lines out.
#[derive(Debug)]
pub struct Decoder {
    max_literal: u64,
    /// Octets of an over-large literal still to throw away.
    skip_literal: u64,
    /// Throwing away the rest of a bad line.
    skip_line: bool,
    /// What to answer once the skipping is done.
    pending: Option<BadInput>,
    /// The buffer must hold this much before parsing is worth another try.
    need: usize,
}

enum Lex {
    /// More input is needed: at least this many octets in all.
    More(usize),
    /// The line is bad; throw away to its end (after a literal of `skip`
    /// octets starting at `at`, when given).
    Bad(BadInput, Option<(usize, u64)>),
}

impl Decoder {
    /// A decoder taking literals of at most `max_literal` octets.
    pub fn new(max_literal: u64) -> Decoder {
        Decoder {
            max_literal,
            skip_literal: 0,
            skip_line: false,
            pending: None,
            need: 0,
        }
    }

    /// The next line in `buf`, removing what it used; None when more input
    /// is needed.
    pub fn next(&mut self, buf: &mut Vec<u8>) -> Option<Line> {
        loop {
            if self.skip_literal > 0 {
                let n = (self.skip_literal.min(buf.len() as u64)) as usize;
                buf.drain(..n);
                self.skip_literal -= n as u64;
                if self.skip_literal > 0 {
                    return None;
                }
            }
            if self.skip_line {
                match find_crlf(buf) {
                    Some(i) => {
                        buf.drain(..i + 2);
                        self.skip_line = false;
                        if let Some(b) = self.pending.take() {
                            return Some(Line::Bad(b));
                        }
                        continue;
                    }
                    None => {
                        // Keep a trailing CR: it may start the CRLF.
                        let keep = usize::from(buf.last() == Some(&b'\r'));
                        let n = buf.len() - keep;
                        buf.drain(..n);
                        return None;
                    }
                }
            }
            if buf.len() < self.need {
                return None;
            }
            match lex(buf, self.max_literal) {
                Ok((args, used)) => {
                    buf.drain(..used);
                    self.need = 0;
                    return Some(Line::Args(args));
                }
                Err(Lex::More(n)) => {
                    self.need = n;
                    return None;
                }
                Err(Lex::Bad(why, literal)) => {
                    self.need = 0;
                    if let Some((at, n)) = literal {
                        buf.drain(..at);
                        self.skip_literal = n;
                    }
                    self.skip_line = true;
                    self.pending = Some(why);
                }
            }
        }
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

fn is_atom_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'+' | b'=' | b'*')
}

/// One whole line from the start of `b`: its arguments and the octets used.
fn lex(b: &[u8], max_literal: u64) -> Result<(Vec<Arg>, usize), Lex> {
    let mut args = Vec::new();
    let mut i = 0;
    // Octets of the line outside literals.
    let mut line_len = 0usize;
    let bad = |m: &'static str| Err(Lex::Bad(BadInput::new(m), None));
    loop {
        if line_len > MAX_LINE {
            return bad("line too long");
        }
        let Some(&c) = b.get(i) else {
            return if line_len > MAX_LINE {
                bad("line too long")
            } else {
                Err(Lex::More(b.len() + 1))
            };
        };
        match c {
            b'\r' => {
                match b.get(i + 1) {
                    None => return Err(Lex::More(i + 2)),
                    Some(b'\n') => {}
                    Some(_) => return bad("bare CR"),
                }
                if args.is_empty() {
                    return bad("empty command");
                }
                return Ok((args, i + 2));
            }
            b' ' => {
                i += 1;
                line_len += 1;
                continue;
            }
            _ => {}
        }
        if args.len() >= MAX_ARGS {
            return bad("too many arguments");
        }
        if c == b'"' {
            let mut s = Vec::new();
            let mut j = i + 1;
            loop {
                let Some(&d) = b.get(j) else {
                    return if s.len() > MAX_QUOTED {
                        bad("quoted string too long")
                    } else {
                        Err(Lex::More(b.len() + 1))
                    };
                };
                match d {
                    b'"' => break,
                    b'\\' => match b.get(j + 1) {
                        None => return Err(Lex::More(j + 2)),
                        Some(&e) if e == b'"' || e == b'\\' => {
                            s.push(e);
                            j += 2;
                        }
                        Some(_) => return bad("bad escape in a quoted string"),
                    },
                    b'\r' | b'\n' | 0 => return bad("CR, LF or NUL in a quoted string"),
                    _ => {
                        s.push(d);
                        j += 1;
                    }
                }
                if s.len() > MAX_QUOTED {
                    return bad("quoted string too long");
                }
            }
            line_len += j + 1 - i;
            i = j + 1;
            args.push(Arg::String(s));
        } else if c == b'{' {
            let mut j = i + 1;
            let mut n: u64 = 0;
            let mut digits = 0;
            while let Some(&d) = b.get(j) {
                if !d.is_ascii_digit() {
                    break;
                }
                n = n.saturating_mul(10).saturating_add(u64::from(d - b'0'));
                digits += 1;
                j += 1;
                if digits > 10 {
                    return bad("literal length too long");
                }
            }
            if b.get(j) == Some(&b'+') {
                j += 1;
            }
            let head = [b.get(j), b.get(j + 1), b.get(j + 2)];
            match head {
                [None, ..] | [Some(b'}'), None, _] | [Some(b'}'), Some(b'\r'), None] => {
                    return Err(Lex::More(j + 3))
                }
                [Some(b'}'), Some(b'\r'), Some(b'\n')] if digits > 0 => {}
                _ => return bad("bad literal"),
            }
            let start = j + 3;
            line_len += start - i;
            if n > max_literal {
                return Err(Lex::Bad(
                    BadInput {
                        message: "literal too large",
                        code: Some("QUOTA/MAXSIZE"),
                    },
                    Some((start, n)),
                ));
            }
            // Invariant: n <= max_literal, which fits in memory by config bounds.
            let end = start + n as usize;
            if b.len() < end {
                return Err(Lex::More(end + 2));
            }
            args.push(Arg::String(b[start..end].to_vec()));
            i = end;
        } else if is_atom_char(c) {
            let mut j = i;
            while b.get(j).is_some_and(|&d| is_atom_char(d)) {
                j += 1;
            }
            if j == b.len() {
                return if j - i > MAX_LINE {
                    bad("line too long")
                } else {
                    Err(Lex::More(j + 1))
                };
            }
            let word = &b[i..j];
            line_len += j - i;
            i = j;
            if word.iter().all(u8::is_ascii_digit) {
                match std::str::from_utf8(word).ok().and_then(|w| w.parse().ok()) {
                    Some(n) => args.push(Arg::Number(n)),
                    None => return bad("number too large"),
                }
            } else {
                // Invariant: atom characters are ASCII.
                args.push(Arg::Atom(String::from_utf8_lossy(word).into_owned()));
            }
        } else {
            return bad("syntax error");
        }
        // After an argument: a space or the line end.
        match b.get(i) {
            None => return Err(Lex::More(i + 1)),
            Some(b' ') | Some(b'\r') => {}
            Some(_) => return bad("syntax error"),
        }
    }
}

/// A command from a line's arguments, or why not.
pub fn command(args: Vec<Arg>) -> Result<Command, &'static str> {
    let mut it = args.into_iter();
    let Some(Arg::Atom(verb)) = it.next() else {
        return Err("a command starts with a word");
    };
    let rest: Vec<Arg> = it.collect();
    let verb_uc = verb.to_ascii_uppercase();
    let c = match (verb_uc.as_str(), rest.as_slice()) {
        ("CAPABILITY", []) => Command::Capability,
        ("LOGOUT", []) => Command::Logout,
        ("NOOP", []) => Command::Noop(None),
        ("NOOP", [Arg::String(t)]) => Command::Noop(Some(t.clone())),
        ("STARTTLS", []) => Command::StartTls,
        ("UNAUTHENTICATE", []) => Command::Unauthenticate,
        ("AUTHENTICATE", [Arg::String(m)]) => Command::Authenticate {
            mechanism: utf8(m)?.to_ascii_uppercase(),
            initial: None,
        },
        ("AUTHENTICATE", [Arg::String(m), Arg::String(i)]) => Command::Authenticate {
            mechanism: utf8(m)?.to_ascii_uppercase(),
            initial: Some(i.clone()),
        },
        ("HAVESPACE", [Arg::String(n), Arg::Number(s)]) => Command::HaveSpace {
            name: utf8(n)?,
            size: *s,
        },
        ("PUTSCRIPT", [Arg::String(n), Arg::String(s)]) => Command::PutScript {
            name: utf8(n)?,
            script: s.clone(),
        },
        ("CHECKSCRIPT", [Arg::String(s)]) => Command::CheckScript { script: s.clone() },
        ("LISTSCRIPTS", []) => Command::ListScripts,
        ("SETACTIVE", [Arg::String(n)]) => Command::SetActive { name: utf8(n)? },
        ("GETSCRIPT", [Arg::String(n)]) => Command::GetScript { name: utf8(n)? },
        ("DELETESCRIPT", [Arg::String(n)]) => Command::DeleteScript { name: utf8(n)? },
        ("RENAMESCRIPT", [Arg::String(o), Arg::String(n)]) => Command::RenameScript {
            old: utf8(o)?,
            new: utf8(n)?,
        },
        (
            "CAPABILITY" | "LOGOUT" | "NOOP" | "STARTTLS" | "UNAUTHENTICATE" | "AUTHENTICATE"
            | "HAVESPACE" | "PUTSCRIPT" | "CHECKSCRIPT" | "LISTSCRIPTS" | "SETACTIVE" | "GETSCRIPT"
            | "DELETESCRIPT" | "RENAMESCRIPT",
            _,
        ) => return Err("wrong arguments for this command"),
        _ => Command::Unknown(verb),
    };
    Ok(c)
}

fn utf8(b: &[u8]) -> Result<String, &'static str> {
    String::from_utf8(b.to_vec()).map_err(|_| "a name must be UTF-8")
}

/// A string as the server sends it: quoted when short and plain, else a
/// literal (`{n}` CRLF octets, RFC 5804 4 "literal-s2c").
pub fn string(s: &[u8]) -> Vec<u8> {
    let plain = s.len() <= MAX_QUOTED && !s.iter().any(|&c| matches!(c, b'\r' | b'\n' | 0));
    if plain {
        let mut o = Vec::with_capacity(s.len() + 2);
        o.push(b'"');
        for &c in s {
            if c == b'"' || c == b'\\' {
                o.push(b'\\');
            }
            o.push(c);
        }
        o.push(b'"');
        o
    } else {
        let mut o = format!("{{{}}}\r\n", s.len()).into_bytes();
        o.extend_from_slice(s);
        o
    }
}

/// A response line: `OK`, `NO` or `BYE`, an optional code, optional text.
pub fn response(kind: &str, code: Option<&str>, text: &str) -> Vec<u8> {
    let mut o = kind.to_string();
    if let Some(c) = code {
        let _ = write!(o, " ({c})");
    }
    let mut o = o.into_bytes();
    if !text.is_empty() {
        o.push(b' ');
        o.extend_from_slice(&string(text.as_bytes()));
    }
    o.extend_from_slice(b"\r\n");
    o
}

#[cfg(test)]
mod tests;
