//! A small blocking IMAP client (IMAP4rev1, RFC 3501, and what servers
//! offer of IMAP4rev2, RFC 9051): the webmail's one connection per request
//! to kmp-imapd, and later the fetch agent's to other servers.
//!
//! What it does: connects over plain TCP, implicit TLS or STARTTLS
//! (rustls; the certificate is checked against a CA file or the system's
//! authorities at [`conn::SYSTEM_ROOTS`]); sends ID; logs in with
//! AUTHENTICATE PLAIN (with SASL-IR when offered) or LOGIN; and runs the
//! commands a mail reader needs, always by UID: LIST with LIST-EXTENDED,
//! LIST-STATUS and SPECIAL-USE when offered, STATUS, SELECT/EXAMINE (with
//! CONDSTORE), SORT (or SEARCH and client order), SEARCH (ESEARCH when
//! offered), FETCH of summaries, whole messages and single sections, STORE,
//! COPY, MOVE (or COPY, STORE and UID EXPUNGE), UID EXPUNGE, folder
//! management, METADATA, GETQUOTAROOT and APPEND (APPENDUID).
//!
//! What it does not do: IDLE or NOTIFY (a CGI request does not wait),
//! CONDSTORE/QRESYNC resynchronisation, THREAD, partial fetches, message
//! sequence numbers, SASL mechanisms other than PLAIN, client
//! certificates, or decoding of header and body text (raw bytes are
//! handed back for `lib/mime/`). The server's capabilities are taken as
//! sent; a command the server lacks an extension for falls back as each
//! method documents.
//!
//! Safety: responses are framed and parsed by [`reply`] with caps on line
//! length ([`reply::MAX_LINE`]), literal size ([`reply::MAX_LITERAL`]) and
//! nesting; anything it cannot read is [`Error::Protocol`] and the
//! connection is then not used again. Untagged responses that arrive in the
//! middle of a command (EXISTS, EXPUNGE, FETCH flag updates, alerts) are
//! read and set aside; results are taken only from the data the command
//! asked for, keyed by UID. Every string the caller supplies (folder names,
//! search text, user name and password, metadata values, messages) goes
//! out as a quoted string or a literal (non-synchronising with LITERAL+),
//! never spliced into the command; CR and LF force a literal, and NUL is
//! refused ([`Error::Invalid`]) unless a literal8 can carry it. Folder names
//! are modified UTF-7 on the wire (lib/proto/utf7.rs) unless
//! [`Client::enable_utf8`] turned on UTF8=ACCEPT (RFC 6855).
//!
//! Beyond the agreed interface there are: [`Error::Invalid`] (a caller's
//! argument that cannot be sent: a NUL or control character, a bad flag,
//! section, metadata entry or date; nothing is sent then),
//! [`Client::capabilities`], [`Client::enable_utf8`],
//! [`Client::utf8_enabled`], the [`MetadataEntry`] name for the pairs
//! `get_metadata` returns, [`Date`] = (year, month, day) for
//! `Criteria::Since`/`Before`, and small helpers on the result types
//! ([`Folder::selectable`], [`Summary::has_flag`], [`Address::email`],
//! [`SinglePart::file_name`], [`SinglePart::is_attachment`],
//! [`BodyStructure::content_type`]). [`Client::expunge`] sets `\Deleted`
//! on the given UIDs itself before UID EXPUNGE, so it removes exactly
//! those messages whether or not the caller flagged them.
//!
//! The files: `mod.rs` the types, connecting and logging in; `folders.rs`
//! and `messages.rs` the commands; `wire.rs` sending commands and reading
//! their responses; `reply.rs` the response parser; `command.rs` argument
//! encoding, checks and search criteria; `types.rs` envelopes and body
//! structures; `conn.rs` TCP and TLS. The parser is our own rather than
//! imap-codec: a client needs only the response side, read from a blocking
//! buffered stream with our caps, and must tolerate the small liberties
//! real servers take (bare `\*`, a trailing space, no space between body
//! parts) that a strict codec refuses; kmp-imapd's parser is ours too.

pub mod command;
pub mod conn;
mod folders;
mod messages;
pub mod reply;
pub mod types;
mod urlauth;
mod wire;

use std::fmt;
use std::io::{self, BufReader};
use std::path::PathBuf;
use std::time::Duration;

use command::{Cmd, Part};
use conn::Stream;
use reply::{Response, Status, Value};

pub use command::{Criteria, Date, SortKey};
pub use types::{
    Address, BodyStructure, Disposition, Envelope, Folder, FolderStatus, Quota, Selected,
    SinglePart, Summary,
};
pub use urlauth::Catenate;

/// How the connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// No TLS (loopback or a trusted network only).
    Plain,
    /// Plain TCP, then STARTTLS before anything else; refused when the
    /// server does not offer it.
    StartTls,
    /// TLS from the first byte (port 993).
    Tls,
}

/// Where the server is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// A host name or address; also the name the certificate must carry.
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// PEM authorities to check the certificate with; None = the system's
    /// ([`conn::SYSTEM_ROOTS`]).
    pub ca_file: Option<PathBuf>,
    /// For connecting and for each read and write (zero means 30 s); a
    /// whole reply may take [`REPLY_TIME`] times as long.
    pub timeout: Duration,
}

/// How many times the endpoint's timeout one reply may take in all (a
/// reply that comes a byte at a time, each just before the timeout, ends).
pub const REPLY_TIME: u32 = 10;

/// One metadata entry (RFC 5464) and its value; None when it has none.
pub type MetadataEntry = (String, Option<Vec<u8>>);

/// Why a command failed.
#[derive(Debug)]
pub enum Error {
    /// The connection failed, timed out or closed.
    Io(io::Error),
    /// TLS could not be set up (handshake, certificate, no STARTTLS).
    Tls(String),
    /// The server sent something we cannot read; the connection is unusable.
    Protocol(String),
    /// The server refused the command (tagged NO): its code and text.
    No(String),
    /// The server rejected the command (tagged BAD): its code and text.
    Bad(String),
    /// The login was refused. No detail: the server's text may say which
    /// of user or password was wrong, and that must not reach a page.
    Auth,
    /// The server closed the connection with BYE: its text.
    Bye(String),
    /// An argument from the caller that cannot be sent (NUL in a string,
    /// a malformed flag, section, metadata entry or date). Nothing was sent.
    Invalid(String),
}

impl Error {
    /// Whether trying again later may succeed (network trouble, a server
    /// going away or saying it is unavailable).
    pub fn is_temporary(&self) -> bool {
        match self {
            Error::Io(_) | Error::Bye(_) => true,
            Error::No(t) => t.starts_with("[UNAVAILABLE]") || t.starts_with("[INUSE]"),
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "IMAP connection: {e}"),
            Error::Tls(e) => write!(f, "IMAP TLS: {e}"),
            Error::Protocol(e) => write!(f, "IMAP protocol error: {e}"),
            Error::No(e) => write!(f, "IMAP server refused: {e}"),
            Error::Bad(e) => write!(f, "IMAP server rejected the command: {e}"),
            Error::Auth => write!(f, "IMAP login refused"),
            Error::Bye(e) => write!(f, "IMAP server closed the connection: {e}"),
            Error::Invalid(e) => write!(f, "IMAP argument refused: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// A connection to an IMAP server.
pub struct Client {
    io: BufReader<Stream>,
    caps: Vec<String>,
    tag: u32,
    utf8: bool,
    /// Why the connection may not be used any more.
    broken: Option<String>,
    /// The text of an untagged BYE, if one came.
    bye: Option<String>,
    /// Untagged responses of the command in progress.
    untagged: Vec<Response>,
    /// The time one reply may take.
    reply_time: Duration,
    /// Bytes and values received for the command in progress.
    received: (usize, usize),
    buf: Vec<u8>,
}

impl fmt::Debug for Client {
    /// The capabilities and the state, never what was sent.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("capabilities", &self.caps)
            .field("commands", &self.tag)
            .field("utf8", &self.utf8)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects, reads the greeting and the capabilities, and runs
    /// STARTTLS when the endpoint asks for it (the capabilities are then
    /// asked again, as RFC 9051 section 6.2.1 requires).
    pub fn connect(e: &Endpoint) -> Result<Client, Error> {
        let stream = conn::open(
            &e.host,
            e.port,
            e.security == Security::Tls,
            e.ca_file.as_deref(),
            e.timeout,
        )?;
        let mut c = Client {
            io: BufReader::with_capacity(64 << 10, stream),
            caps: Vec::new(),
            tag: 0,
            utf8: false,
            broken: None,
            bye: None,
            untagged: Vec::new(),
            received: (0, 0),
            reply_time: conn::effective(e.timeout).saturating_mul(REPLY_TIME),
            buf: Vec::new(),
        };
        match c.read()? {
            Response::Status {
                tag: None,
                status: status @ (Status::Ok | Status::Preauth),
                code,
                ..
            } => {
                // RFC 9051 section 6.2.1: no STARTTLS after PREAUTH, and a
                // man in the middle would send PREAUTH to stay in plain text.
                if status == Status::Preauth && e.security == Security::StartTls {
                    return Err(Error::Tls(
                        "PREAUTH greeting: STARTTLS is impossible".into(),
                    ));
                }
                if let Some((name, values)) = code {
                    if name == "CAPABILITY" {
                        c.set_caps(&values);
                    }
                }
            }
            Response::Status {
                tag: None,
                status: Status::Bye,
                text,
                ..
            } => return Err(Error::Bye(text)),
            _ => return Err(c.fail("the greeting is not OK, PREAUTH or BYE")),
        }
        if e.security == Security::StartTls {
            if c.caps.is_empty() {
                c.capability()?;
            }
            if !c.has("STARTTLS") {
                return Err(Error::Tls("the server does not offer STARTTLS".into()));
            }
            c.run(&Cmd::new("STARTTLS"))?;
            // Anything the server sent after its OK came before TLS and
            // could have been injected by a man in the middle.
            if !c.io.buffer().is_empty() {
                return Err(c.fail("data after the STARTTLS reply"));
            }
            let old = std::mem::replace(c.io.get_mut(), Stream::Closed);
            let Stream::Plain(sock) = old else {
                return Err(c.fail("STARTTLS on a TLS connection"));
            };
            *c.io.get_mut() = conn::tls(sock, &e.host, e.ca_file.as_deref())?;
            c.caps.clear();
        }
        if c.caps.is_empty() {
            c.capability()?;
        }
        Ok(c)
    }

    /// Whether the server announced a capability (case-insensitive).
    pub fn has(&self, cap: &str) -> bool {
        self.caps.iter().any(|c| c.eq_ignore_ascii_case(cap))
    }

    /// Every capability as the server last announced it (upper-cased).
    pub fn capabilities(&self) -> &[String] {
        &self.caps
    }

    /// Sends ID (RFC 2971) with these fields, e.g. `("x-originating-ip",
    /// "192.0.2.1")`; does nothing when the server has no ID.
    pub fn id(&mut self, fields: &[(&str, &str)]) -> Result<(), Error> {
        if !self.has("ID") {
            return Ok(());
        }
        let mut cmd = Cmd::new("ID");
        if fields.is_empty() {
            cmd.syn("NIL");
        } else {
            cmd.syn("(");
            for (k, v) in fields {
                cmd.str(k).str(v);
            }
            cmd.syn(")");
        }
        self.run(&cmd).map(|_| ())
    }

    /// Logs in: AUTHENTICATE PLAIN (the initial response inline with
    /// SASL-IR) when the server offers it, else LOGIN. A refusal is
    /// [`Error::Auth`] whatever the server said (except a temporary
    /// `[UNAVAILABLE]`, which is [`Error::No`]). The capabilities are
    /// read again afterwards.
    pub fn login(&mut self, user: &str, password: &str) -> Result<(), Error> {
        if user.contains('\0') || password.contains('\0') {
            return Err(Error::Invalid("NUL in user name or password".into()));
        }
        let done = if self.has("AUTH=PLAIN") {
            self.authenticate_plain(user, password)
        } else if self.has("LOGINDISABLED") {
            return Err(Error::No(
                "the server allows no login on this connection (LOGINDISABLED)".into(),
            ));
        } else {
            let mut cmd = Cmd::new("LOGIN");
            cmd.str(user).str(password);
            let r = self.run(&cmd);
            for p in cmd.parts.iter_mut() {
                if let Part::Str(b) = p {
                    zeroize::Zeroize::zeroize(b);
                }
            }
            r
        };
        let done = match done {
            Ok(d) => d,
            Err(Error::No(t)) if t.starts_with("[UNAVAILABLE]") => return Err(Error::No(t)),
            Err(Error::No(_)) | Err(Error::Bad(_)) => return Err(Error::Auth),
            Err(e) => return Err(e),
        };
        self.caps.clear();
        if let Some((name, values)) = &done.code {
            if name == "CAPABILITY" {
                self.set_caps(values);
            }
        }
        for r in &done.untagged {
            if let Response::Data { name, values, .. } = r {
                if name == "CAPABILITY" {
                    self.set_caps(values);
                }
            }
        }
        if self.caps.is_empty() {
            self.capability()?;
        }
        Ok(())
    }

    /// Turns on UTF8=ACCEPT (RFC 6855) when the server offers it: folder
    /// names then travel as UTF-8 instead of modified UTF-7. Returns
    /// whether it is on. Call after login.
    pub fn enable_utf8(&mut self) -> Result<bool, Error> {
        if self.utf8 {
            return Ok(true);
        }
        if !self.has("UTF8=ACCEPT") || !self.has("ENABLE") {
            return Ok(false);
        }
        let done = self.run(Cmd::new("ENABLE").syn("UTF8=ACCEPT"))?;
        self.utf8 = done.untagged.iter().any(|r| {
            matches!(r, Response::Data { name, values, .. }
                if name == "ENABLED" && values.iter().any(|v| v.is_atom("UTF8=ACCEPT")))
        });
        Ok(self.utf8)
    }

    /// Whether UTF8=ACCEPT is on.
    pub fn utf8_enabled(&self) -> bool {
        self.utf8
    }

    /// LOGOUT, and the connection is closed.
    pub fn logout(mut self) -> Result<(), Error> {
        let r = match self.run(&Cmd::new("LOGOUT")) {
            Ok(_) => Ok(()),
            // The server may close right after its BYE.
            Err(Error::Bye(_)) => Ok(()),
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(()),
            Err(e) => Err(e),
        };
        self.io.get_mut().close();
        r
    }

    /// LOGOUT sent without waiting for the server's BYE, and the connection
    /// closed: for a short-lived client whose answer is already given (a CGI
    /// request), the server's reply would only delay its exit.
    pub fn quit(mut self) {
        let tag = self.next_tag();
        let _ = self.send(&tag, &Cmd::new("LOGOUT"));
        self.io.get_mut().close();
    }

    // --- private helpers ---

    fn capability(&mut self) -> Result<(), Error> {
        let done = self.run(&Cmd::new("CAPABILITY"))?;
        for r in &done.untagged {
            if let Response::Data { name, values, .. } = r {
                if name == "CAPABILITY" {
                    self.set_caps(values);
                }
            }
        }
        Ok(())
    }

    fn set_caps(&mut self, values: &[Value]) {
        self.caps = values
            .iter()
            .filter_map(Value::text)
            .map(|c| c.to_ascii_uppercase())
            .collect();
    }
}

#[cfg(test)]
mod tests;
