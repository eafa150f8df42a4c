//! SMTP commands (RFC 5321 4.1) and the incremental reader that cuts them out
//! of the byte stream.
//!
//! [`CommandReader::command`] takes whatever bytes have arrived and answers
//! with how many it used and either a command, a parse error (the session
//! replies and goes on), or [`ParseError::NeedsMoreData`]. A line over its
//! cap is reported once and then skipped up to its end, so a client cannot
//! make the server buffer without bound.

use super::address::{parse_path, AddressError, Mailbox};
use super::params::{mail_params, rcpt_params, MailParams, RcptParams};
use super::ParseError;

/// RFC 5321 4.5.3.1.4: a command line is at most 512 octets with its CRLF.
pub const MAX_COMMAND_LINE: usize = 512;
/// MAIL may grow by 26 (SIZE, RFC 1870), 100 (RET/ENVID, RFC 3461 5) and
/// 500 (AUTH=, RFC 4954 5) octets; plus SMTPUTF8 and BODY.
pub const MAX_MAIL_LINE: usize = MAX_COMMAND_LINE + 26 + 100 + 500 + 30;
/// RCPT may grow by 500 octets (NOTIFY/ORCPT, RFC 3461 5).
pub const MAX_RCPT_LINE: usize = MAX_COMMAND_LINE + 500;
/// RFC 4954 4: AUTH commands and responses may be 12288 octets.
pub const MAX_AUTH_LINE: usize = 12288;
/// The longest HELO argument kept (a domain is at most 255 octets).
pub const MAX_HELO: usize = 255;
/// RFC 4468 sets no cap on a BURL line; an IMAP URL with a token and a
/// long mailbox name fits easily in this.
pub const MAX_BURL_LINE: usize = 4096;
/// BDAT chunk sizes: at most 20 digits.
pub const MAX_BDAT_DIGITS: usize = 20;

/// One command with typed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Helo(String),
    Ehlo(String),
    Mail {
        /// None for the null reverse path `<>`.
        from: Option<Mailbox>,
        params: MailParams,
    },
    Rcpt {
        to: ForwardPath,
        params: RcptParams,
    },
    Data,
    /// RFC 3030 BDAT: `size` octets follow the command line.
    Bdat {
        size: u64,
        last: bool,
    },
    /// RFC 4468 BURL: the content an IMAP URL names is the next part of
    /// the message.
    Burl {
        url: String,
        last: bool,
    },
    Rset,
    Noop,
    Quit,
    Help,
    Vrfy,
    Expn,
    StartTls,
    Auth {
        mechanism: Mechanism,
        /// RFC 4954 initial response, base64 (`=` for an empty one).
        initial: Option<String>,
    },
    /// A verb we do not know (upper-cased, at most 16 characters).
    Unknown(String),
}

/// RCPT's argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardPath {
    /// RFC 5321 4.1.1.3: `<Postmaster>` without a domain.
    Postmaster,
    Mailbox(Mailbox),
}

/// SASL mechanisms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
    Other(String),
}

impl Command {
    /// RFC 2920 3.1: whether this command must be the last of a pipelined
    /// group (the client waits for its reply before sending more).
    pub fn ends_group(&self) -> bool {
        match self {
            Command::Helo(_)
            | Command::Ehlo(_)
            | Command::Data
            | Command::Vrfy
            | Command::Expn
            | Command::Quit
            | Command::Noop
            | Command::StartTls
            | Command::Auth { .. } => true,
            Command::Mail { .. }
            | Command::Rcpt { .. }
            | Command::Bdat { .. }
            | Command::Burl { .. }
            | Command::Rset
            | Command::Help
            | Command::Unknown(_) => false,
        }
    }

    /// The verb, for logs.
    pub fn verb(&self) -> &str {
        match self {
            Command::Helo(_) => "HELO",
            Command::Ehlo(_) => "EHLO",
            Command::Mail { .. } => "MAIL",
            Command::Rcpt { .. } => "RCPT",
            Command::Data => "DATA",
            Command::Bdat { .. } => "BDAT",
            Command::Burl { .. } => "BURL",
            Command::Rset => "RSET",
            Command::Noop => "NOOP",
            Command::Quit => "QUIT",
            Command::Help => "HELP",
            Command::Vrfy => "VRFY",
            Command::Expn => "EXPN",
            Command::StartTls => "STARTTLS",
            Command::Auth { .. } => "AUTH",
            Command::Unknown(v) => v,
        }
    }
}

/// Cuts lines out of the input and parses them. Its only state is whether it
/// is skipping the rest of an over-long line.
#[derive(Debug, Default, Clone)]
pub struct CommandReader {
    skipping: bool,
}

impl CommandReader {
    pub fn new() -> CommandReader {
        CommandReader::default()
    }

    /// Reads one command from the front of `input`. Returns the number of
    /// bytes used (drop them from the buffer) and the outcome.
    pub fn command(&mut self, input: &[u8]) -> (usize, Result<Command, ParseError>) {
        let (used, line) = self.line(input, command_cap);
        match line {
            Ok(l) => (used, parse_command(l)),
            Err(e) => (used, Err(e)),
        }
    }

    /// Reads one line of an AUTH exchange (a base64 response or `*`).
    pub fn auth_line(&mut self, input: &[u8]) -> (usize, Result<String, ParseError>) {
        let (used, line) = self.line(input, |_| MAX_AUTH_LINE);
        let r = line.and_then(|l| {
            std::str::from_utf8(l)
                .ok()
                .filter(|s| s.bytes().all(|b| b.is_ascii_graphic()))
                .map(str::to_string)
                .ok_or(ParseError::InvalidCharacters)
        });
        (used, r)
    }

    /// The bytes of one line without its end (CRLF, or a bare LF, which
    /// RFC 1123 robustness accepts in commands), or an error.
    fn line<'a>(
        &mut self,
        input: &'a [u8],
        cap: fn(&[u8]) -> usize,
    ) -> (usize, Result<&'a [u8], ParseError>) {
        let mut start = 0;
        if self.skipping {
            match input.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.skipping = false;
                    start = i + 1;
                }
                None => return (input.len(), Err(ParseError::NeedsMoreData)),
            }
        }
        let rest = &input[start..];
        let limit = cap(rest);
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) if i + 1 > limit => (start + i + 1, Err(ParseError::LineTooLong)),
            Some(i) => {
                let line = &rest[..i];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                (start + i + 1, Ok(line))
            }
            None if rest.len() >= limit => {
                self.skipping = true;
                (input.len(), Err(ParseError::LineTooLong))
            }
            None => (start, Err(ParseError::NeedsMoreData)),
        }
    }
}

/// The cap for the line that starts `rest`, by its verb.
fn command_cap(rest: &[u8]) -> usize {
    let verb = rest.get(..5).unwrap_or(rest);
    let is = |v: &[u8]| verb.len() == 5 && verb[..4].eq_ignore_ascii_case(v) && verb[4] == b' ';
    if is(b"MAIL") {
        MAX_MAIL_LINE
    } else if is(b"RCPT") {
        MAX_RCPT_LINE
    } else if is(b"AUTH") {
        MAX_AUTH_LINE
    } else if is(b"BURL") {
        MAX_BURL_LINE
    } else {
        MAX_COMMAND_LINE
    }
}

/// Parses one command line (without its line end).
pub fn parse_command(line: &[u8]) -> Result<Command, ParseError> {
    let text = std::str::from_utf8(line).map_err(|_| ParseError::InvalidCharacters)?;
    if text.chars().any(|c| c.is_control() && c != '\t') {
        return Err(ParseError::InvalidCharacters);
    }
    let (verb, arg) = match text.split_once(' ') {
        Some((v, a)) => (v, a),
        None => (text, ""),
    };
    let arg = arg.trim_matches(|c| c == ' ' || c == '\t');
    let no_arg = |c: Command| {
        if arg.is_empty() {
            Ok(c)
        } else {
            Err(ParseError::Arguments)
        }
    };
    match verb.to_ascii_uppercase().as_str() {
        "HELO" => helo_arg(arg).map(Command::Helo),
        "EHLO" => helo_arg(arg).map(Command::Ehlo),
        "MAIL" => mail(arg),
        "RCPT" => rcpt(arg),
        "DATA" => no_arg(Command::Data),
        "BDAT" => bdat(arg),
        "BURL" => burl(arg),
        "RSET" => no_arg(Command::Rset),
        "NOOP" => Ok(Command::Noop),
        "QUIT" => no_arg(Command::Quit),
        "HELP" => Ok(Command::Help),
        "VRFY" if !arg.is_empty() => Ok(Command::Vrfy),
        "EXPN" if !arg.is_empty() => Ok(Command::Expn),
        "VRFY" | "EXPN" => Err(ParseError::Arguments),
        "STARTTLS" => no_arg(Command::StartTls),
        "AUTH" => auth(arg),
        "" => Err(ParseError::InvalidCharacters),
        other => {
            let v: String = other.chars().take(16).collect();
            Ok(Command::Unknown(v))
        }
    }
}

fn helo_arg(arg: &str) -> Result<String, ParseError> {
    let word = arg.split([' ', '\t']).next().unwrap_or("");
    if word.is_empty() || word.len() > MAX_HELO {
        return Err(ParseError::HeloSyntax);
    }
    // RFC 5321 4.1.4: the argument is a domain or, without one, an address
    // literal (4.1.3). A bracketed word must be a literal we can read.
    if word.starts_with('[') {
        return super::address::parse_literal(word).map_err(|_| ParseError::HeloLiteral);
    }
    Ok(word.to_string())
}

/// `FROM:<path> params`, allowing a space after the colon (common practice).
fn mail(arg: &str) -> Result<Command, ParseError> {
    let rest = strip_keyword(arg, "FROM:").ok_or(ParseError::MailSyntax)?;
    let (from, rest) = parse_path(rest.trim_start(), true).map_err(ParseError::BadSender)?;
    let params = mail_params(rest)?;
    Ok(Command::Mail { from, params })
}

/// `TO:<path> params`.
fn rcpt(arg: &str) -> Result<Command, ParseError> {
    let rest = strip_keyword(arg, "TO:").ok_or(ParseError::RcptSyntax)?;
    let rest = rest.trim_start();
    let (to, rest) = match rest.get(..12) {
        Some(p) if p.eq_ignore_ascii_case("<postmaster>") => (ForwardPath::Postmaster, &rest[12..]),
        _ => {
            let (m, rest) = parse_path(rest, false).map_err(ParseError::BadRecipient)?;
            // Invariant: parse_path with allow_null false never returns None.
            let m = m.ok_or(ParseError::BadRecipient(AddressError::Syntax))?;
            (ForwardPath::Mailbox(m), rest)
        }
    };
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return Err(ParseError::BadRecipient(AddressError::Syntax));
    }
    let params = rcpt_params(rest)?;
    Ok(Command::Rcpt { to, params })
}

fn bdat(arg: &str) -> Result<Command, ParseError> {
    let mut words = arg.split(' ').filter(|w| !w.is_empty());
    let size = words.next().ok_or(ParseError::Arguments)?;
    if size.len() > MAX_BDAT_DIGITS || !size.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::Arguments);
    }
    let size = size.parse::<u64>().map_err(|_| ParseError::Arguments)?;
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(ParseError::Arguments),
    };
    if words.next().is_some() {
        return Err(ParseError::Arguments);
    }
    Ok(Command::Bdat { size, last })
}

/// burl-cmd = "BURL" SP absolute-URI [SP end-marker] (RFC 4468 3.5).
fn burl(arg: &str) -> Result<Command, ParseError> {
    let mut words = arg.split(' ').filter(|w| !w.is_empty());
    let url = words.next().ok_or(ParseError::Arguments)?;
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(ParseError::Arguments),
    };
    if words.next().is_some() || !url.contains(':') {
        return Err(ParseError::Arguments);
    }
    Ok(Command::Burl {
        url: url.to_string(),
        last,
    })
}

fn auth(arg: &str) -> Result<Command, ParseError> {
    let mut words = arg.split(' ').filter(|w| !w.is_empty());
    let mech = words.next().ok_or(ParseError::Arguments)?;
    let initial = words.next().map(str::to_string);
    if words.next().is_some()
        || mech.len() > 20
        || !mech
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ParseError::Arguments);
    }
    let mechanism = match mech.to_ascii_uppercase().as_str() {
        "PLAIN" => Mechanism::Plain,
        "LOGIN" => Mechanism::Login,
        other => Mechanism::Other(other.to_string()),
    };
    Ok(Command::Auth { mechanism, initial })
}

fn strip_keyword<'a>(arg: &'a str, kw: &str) -> Option<&'a str> {
    let head = arg.get(..kw.len())?;
    head.eq_ignore_ascii_case(kw).then(|| &arg[kw.len()..])
}
