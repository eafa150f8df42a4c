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
//! argument that cannot be sent: a NUL byte, a bad flag, section or date),
//! [`Client::capabilities`], [`Client::enable_utf8`] and
//! [`Client::utf8_enabled`]. `expunge` sets `\Deleted` on the given UIDs
//! itself before UID EXPUNGE, so it removes exactly those messages
//! whether or not the caller flagged them.

pub mod command;
pub mod conn;
pub mod reply;
pub mod types;

use std::fmt;
use std::io::{self, BufReader, Write};
use std::path::PathBuf;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::proto::utf7;
use command::{
    check_entry, check_flag, check_section, encode_str, uid_set, uid_sets, Cmd, Encoded, Part,
};
use conn::Stream;
use reply::{Response, Status, Value};

pub use command::{Criteria, Date, SortKey};
pub use types::{
    Address, BodyStructure, Disposition, Envelope, Folder, FolderStatus, Quota, Selected,
    SinglePart, Summary,
};

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
    /// For connecting and for each read and write (zero means 30 s).
    pub timeout: Duration,
}

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

/// What a command's completion brought: its untagged responses (in order)
/// and the tagged OK's response code.
struct Done {
    untagged: Vec<Response>,
    code: Option<(String, Vec<Value>)>,
}

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
    buf: Vec<u8>,
}

/// Longest UID set put in one command; longer lists are split.
const MAX_SET_LEN: usize = 4000;
/// The largest literal LITERAL- allows without waiting (RFC 7888).
const LITERAL_MINUS_MAX: usize = 4096;
/// The special-use attributes of RFC 6154 (and \Important of RFC 8457).
const SPECIAL_USE: [&str; 8] = [
    "\\All",
    "\\Archive",
    "\\Drafts",
    "\\Flagged",
    "\\Junk",
    "\\Sent",
    "\\Trash",
    "\\Important",
];

impl Client {
    /// Connects, reads the greeting and the capabilities, and runs
    /// STARTTLS when the endpoint asks for it (the capabilities are then
    /// asked again, as RFC 9051 section 6.2.1 requires).
    pub fn connect(e: &Endpoint) -> Result<Client, Error> {
        let sock = conn::tcp(&e.host, e.port, e.timeout)?;
        let stream = match e.security {
            Security::Tls => conn::tls(sock, &e.host, e.ca_file.as_deref())?,
            Security::Plain | Security::StartTls => Stream::Plain(sock),
        };
        let mut c = Client {
            io: BufReader::with_capacity(64 << 10, stream),
            caps: Vec::new(),
            tag: 0,
            utf8: false,
            broken: None,
            bye: None,
            untagged: Vec::new(),
            buf: Vec::new(),
        };
        match c.read()? {
            Response::Status {
                tag: None,
                status: Status::Ok | Status::Preauth,
                code,
                ..
            } => {
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
            c.capability()?;
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

    /// Every folder: `LIST "" "*" RETURN (SUBSCRIBED SPECIAL-USE CHILDREN
    /// STATUS (MESSAGES UNSEEN SIZE))` with what of that the server offers;
    /// without LIST-STATUS, one STATUS per selectable folder; without
    /// LIST-EXTENDED, LSUB for the subscriptions. In the server's order.
    pub fn list(&mut self) -> Result<Vec<Folder>, Error> {
        let extended = self.has("LIST-EXTENDED");
        let with_status = extended && self.has("LIST-STATUS");
        let mut cmd = Cmd::new("LIST");
        cmd.str("").str("*");
        if extended {
            cmd.syn("RETURN").syn("(").syn("SUBSCRIBED").syn("CHILDREN");
            if self.has("SPECIAL-USE") {
                cmd.syn("SPECIAL-USE");
            }
            if with_status {
                cmd.syn("STATUS").syn(&self.status_items());
            }
            cmd.syn(")");
        }
        let done = self.run(&cmd)?;
        let mut folders: Vec<Folder> = Vec::new();
        for r in &done.untagged {
            let Response::Data { name, values, .. } = r else {
                continue;
            };
            if name == "LIST" {
                if let Some(f) = self.list_entry(values) {
                    folders.push(f);
                }
            } else if name == "STATUS" {
                if let Some((mbox, st)) = self.status_entry(values) {
                    if let Some(f) = folders.iter_mut().rev().find(|f| f.name == mbox) {
                        f.status = Some(st);
                    }
                }
            }
        }
        if !extended {
            let mut cmd = Cmd::new("LSUB");
            cmd.str("").str("*");
            let done = self.run(&cmd)?;
            for r in &done.untagged {
                if let Response::Data { name, values, .. } = r {
                    if name == "LSUB" {
                        if let Some(s) = self.list_entry(values) {
                            if let Some(f) = folders.iter_mut().find(|f| f.name == s.name) {
                                f.subscribed = true;
                            }
                        }
                    }
                }
            }
        }
        if !with_status {
            for i in 0..folders.len() {
                if folders[i].selectable() {
                    let name = folders[i].name.clone();
                    folders[i].status = match self.status(&name) {
                        Ok(s) => Some(s),
                        Err(Error::No(_)) => None,
                        Err(e) => return Err(e),
                    };
                }
            }
        }
        Ok(folders)
    }

    /// STATUS of one folder: messages, unseen and (STATUS=SIZE) size.
    pub fn status(&mut self, folder: &str) -> Result<FolderStatus, Error> {
        let mut cmd = Cmd::new("STATUS");
        cmd.str(self.mailbox(folder)?);
        cmd.syn(&self.status_items());
        let done = self.run(&cmd)?;
        done.untagged
            .iter()
            .filter_map(|r| match r {
                Response::Data { name, values, .. } if name == "STATUS" => {
                    self.status_entry(values)
                }
                _ => None,
            })
            .find(|(n, _)| n == &normalise(folder))
            .map(|(_, s)| s)
            .ok_or_else(|| Error::Protocol("no STATUS data in the reply".into()))
    }

    /// SELECT (or EXAMINE when `read_only`), with CONDSTORE when offered.
    pub fn select(&mut self, folder: &str, read_only: bool) -> Result<Selected, Error> {
        let mut cmd = Cmd::new(if read_only { "EXAMINE" } else { "SELECT" });
        cmd.str(self.mailbox(folder)?);
        if self.has("CONDSTORE") {
            cmd.syn("(CONDSTORE)");
        }
        let done = self.run(&cmd)?;
        let mut sel = Selected {
            read_only,
            ..Selected::default()
        };
        for r in &done.untagged {
            match r {
                Response::Data {
                    number: Some(n),
                    name,
                    ..
                } if name == "EXISTS" => sel.exists = *n,
                Response::Status {
                    code: Some((code, values)),
                    ..
                } => {
                    let n = values.first().and_then(Value::number);
                    match code.as_str() {
                        "UIDVALIDITY" => sel.uidvalidity = n.unwrap_or(0) as u32,
                        "UIDNEXT" => sel.uidnext = n.unwrap_or(0) as u32,
                        "HIGHESTMODSEQ" => sel.highestmodseq = n,
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        match done.code.as_ref().map(|(c, _)| c.as_str()) {
            Some("READ-ONLY") => sel.read_only = true,
            Some("READ-WRITE") => sel.read_only = false,
            _ => {}
        }
        Ok(sel)
    }

    /// UIDs of the selected folder's messages matching `criteria`, sorted
    /// by `key` (UID SORT, RFC 5256). Without SORT: UID SEARCH, in UID
    /// order (which is arrival order for ARRIVAL; other keys get the same
    /// order, as the server cannot sort).
    pub fn sort(
        &mut self,
        key: SortKey,
        reverse: bool,
        criteria: &Criteria,
    ) -> Result<Vec<u32>, Error> {
        if !self.has("SORT") {
            let mut uids = self.search(criteria)?;
            uids.sort_unstable();
            if reverse {
                uids.reverse();
            }
            return Ok(uids);
        }
        let mut cmd = Cmd::new("UID SORT");
        cmd.syn(&key.program(reverse)).syn("UTF-8");
        criteria.write(&mut cmd)?;
        let done = self.run(&cmd)?;
        let mut out = Vec::new();
        for r in &done.untagged {
            if let Response::Data { name, values, .. } = r {
                if name == "SORT" {
                    for v in values {
                        out.push(v.number32().ok_or_else(|| bad_number("SORT"))?);
                        if out.len() > command::MAX_SET {
                            return Err(Error::Protocol("SORT result too large".into()));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// UIDs of the selected folder's messages matching `criteria`, in
    /// ascending order: UID SEARCH (RETURN (ALL) with ESEARCH), CHARSET
    /// UTF-8 when a string is not ASCII (none under UTF8=ACCEPT).
    pub fn search(&mut self, criteria: &Criteria) -> Result<Vec<u32>, Error> {
        let esearch = self.has("ESEARCH");
        let mut cmd = Cmd::new("UID SEARCH");
        if esearch {
            cmd.syn("RETURN (ALL)");
        }
        if criteria.has_8bit() && !self.utf8 {
            cmd.syn("CHARSET UTF-8");
        }
        criteria.write(&mut cmd)?;
        let tag = self.peek_tag();
        let done = self.run(&cmd)?;
        let mut out = Vec::new();
        for r in &done.untagged {
            let Response::Data { name, values, .. } = r else {
                continue;
            };
            if name == "SEARCH" {
                for v in values {
                    // A trailing (MODSEQ n) under CONDSTORE is not a UID.
                    if matches!(v, Value::List(_)) {
                        continue;
                    }
                    out.push(v.number32().ok_or_else(|| bad_number("SEARCH"))?);
                    if out.len() > command::MAX_SET {
                        return Err(Error::Protocol("SEARCH result too large".into()));
                    }
                }
            } else if name == "ESEARCH" {
                // (TAG "k3") UID ALL 1:3,5
                let ours = values.first().and_then(Value::list).is_some_and(|l| {
                    l.len() == 2 && l[0].is_atom("TAG") && l[1].bytes() == Some(tag.as_bytes())
                });
                if !ours {
                    continue;
                }
                let mut i = 1;
                while i < values.len() {
                    if values[i].is_atom("ALL") {
                        let set = values
                            .get(i + 1)
                            .and_then(Value::text)
                            .ok_or_else(|| bad_number("ESEARCH"))?;
                        out.extend(command::expand_set(&set)?);
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// What a message list shows of each message (flags, size, dates,
    /// envelope, structure, priority), in the order of `uids`; UIDs that
    /// do not exist (any more) are left out.
    pub fn summaries(&mut self, uids: &[u32]) -> Result<Vec<Summary>, Error> {
        use std::collections::HashMap;
        let mut found: HashMap<u32, Summary> = HashMap::new();
        let mut has_env: std::collections::HashSet<u32> = Default::default();
        for set in uid_sets(uids, MAX_SET_LEN) {
            let mut cmd = Cmd::new("UID FETCH");
            cmd.syn(&set).syn(
                "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE \
                 BODY.PEEK[HEADER.FIELDS (X-PRIORITY IMPORTANCE)])",
            );
            let done = self.run(&cmd)?;
            for r in &done.untagged {
                let Some((uid, items)) = fetch_items(r) else {
                    continue;
                };
                let s = found.entry(uid).or_insert_with(|| Summary {
                    uid,
                    flags: Vec::new(),
                    size: 0,
                    internal_date: None,
                    envelope: Envelope::default(),
                    structure: None,
                    priority: None,
                });
                for (name, v) in items {
                    match name.as_str() {
                        "FLAGS" => {
                            s.flags = v
                                .list()
                                .map(|l| l.iter().filter_map(Value::text).collect())
                                .unwrap_or_default()
                        }
                        "RFC822.SIZE" => s.size = v.number().unwrap_or(0),
                        "INTERNALDATE" => s.internal_date = v.text(),
                        "ENVELOPE" => {
                            if let Some(e) = types::envelope(v) {
                                s.envelope = e;
                                has_env.insert(uid);
                            }
                        }
                        "BODYSTRUCTURE" => s.structure = types::body_structure(v),
                        n if n.starts_with("BODY[HEADER.FIELDS") => {
                            s.priority = v.bytes().and_then(types::priority)
                        }
                        _ => {}
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(uids.len());
        for uid in uids {
            if has_env.remove(uid) {
                if let Some(s) = found.remove(uid) {
                    out.push(s);
                }
            }
        }
        Ok(out)
    }

    /// The whole message (BODY.PEEK[], so \Seen is not set); None when the
    /// folder has no message with this UID.
    pub fn fetch_raw(&mut self, uid: u32) -> Result<Option<Vec<u8>>, Error> {
        self.fetch_body(uid, "")
    }

    /// One section of a message: a part number (`1.2`), `HEADER`, `TEXT`,
    /// or a part number with `.HEADER`, `.TEXT` or `.MIME`; still in its
    /// transfer encoding. None when there is no message with this UID.
    pub fn fetch_section(&mut self, uid: u32, section: &str) -> Result<Option<Vec<u8>>, Error> {
        let section = check_section(section)?;
        self.fetch_body(uid, &section)
    }

    /// Adds (`add`) or removes flags on these messages, silently.
    pub fn store(&mut self, uids: &[u32], add: bool, flags: &[&str]) -> Result<(), Error> {
        for f in flags {
            check_flag(f)?;
        }
        if flags.is_empty() {
            return Ok(());
        }
        let list = format!("({})", flags.join(" "));
        for set in uid_sets(uids, MAX_SET_LEN) {
            let mut cmd = Cmd::new("UID STORE");
            cmd.syn(&set)
                .syn(if add {
                    "+FLAGS.SILENT"
                } else {
                    "-FLAGS.SILENT"
                })
                .syn(&list);
            self.run(&cmd)?;
        }
        Ok(())
    }

    /// Copies these messages into another folder.
    pub fn copy(&mut self, uids: &[u32], to: &str) -> Result<(), Error> {
        self.uid_to("UID COPY", uids, to)
    }

    /// Moves these messages into another folder: UID MOVE (RFC 6851), or
    /// COPY, then `\Deleted` and an expunge of only these UIDs.
    pub fn move_to(&mut self, uids: &[u32], to: &str) -> Result<(), Error> {
        if self.has("MOVE") {
            return self.uid_to("UID MOVE", uids, to);
        }
        self.copy(uids, to)?;
        self.expunge(uids)
    }

    /// Removes exactly these messages: sets `\Deleted` on them and runs
    /// UID EXPUNGE (UIDPLUS). Without UIDPLUS a plain EXPUNGE is used only
    /// when no other message is marked `\Deleted`; otherwise they stay
    /// marked and the answer is [`Error::No`].
    pub fn expunge(&mut self, uids: &[u32]) -> Result<(), Error> {
        if uid_set(uids).is_empty() {
            return Ok(());
        }
        self.store(uids, true, &["\\Deleted"])?;
        if self.has("UIDPLUS") {
            for set in uid_sets(uids, MAX_SET_LEN) {
                let mut cmd = Cmd::new("UID EXPUNGE");
                cmd.syn(&set);
                self.run(&cmd)?;
            }
            return Ok(());
        }
        let deleted = self.search_raw("DELETED")?;
        if deleted.iter().all(|u| uids.contains(u)) {
            self.run(&Cmd::new("EXPUNGE"))?;
            Ok(())
        } else {
            Err(Error::No(
                "the server has no UIDPLUS and other messages are marked \\Deleted; \
                 these were only marked"
                    .into(),
            ))
        }
    }

    /// Creates a folder, with a special use (`\Sent`, RFC 6154) when the
    /// server has CREATE-SPECIAL-USE (otherwise the use is not set).
    pub fn create(&mut self, folder: &str, special_use: Option<&str>) -> Result<(), Error> {
        let mut cmd = Cmd::new("CREATE");
        cmd.str(self.mailbox(folder)?);
        if let Some(u) = special_use {
            check_flag(u)?;
            if !u.starts_with('\\') {
                return Err(Error::Invalid(format!("not a special use: {u:?}")));
            }
            if self.has("CREATE-SPECIAL-USE") {
                cmd.syn(&format!("(USE ({u}))"));
            }
        }
        self.run(&cmd).map(|_| ())
    }

    /// Renames a folder (its subfolders follow, RFC 9051 section 6.3.6).
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), Error> {
        let mut cmd = Cmd::new("RENAME");
        cmd.str(self.mailbox(from)?).str(self.mailbox(to)?);
        self.run(&cmd).map(|_| ())
    }

    /// Deletes a folder.
    pub fn delete(&mut self, folder: &str) -> Result<(), Error> {
        let mut cmd = Cmd::new("DELETE");
        cmd.str(self.mailbox(folder)?);
        self.run(&cmd).map(|_| ())
    }

    /// SUBSCRIBE (`on`) or UNSUBSCRIBE.
    pub fn subscribe(&mut self, folder: &str, on: bool) -> Result<(), Error> {
        let mut cmd = Cmd::new(if on { "SUBSCRIBE" } else { "UNSUBSCRIBE" });
        cmd.str(self.mailbox(folder)?);
        self.run(&cmd).map(|_| ())
    }

    /// GETMETADATA (RFC 5464) of a folder ("" = the server): each entry
    /// asked for, in order, with its value or None when it has none.
    pub fn get_metadata(
        &mut self,
        folder: &str,
        entries: &[&str],
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, Error> {
        for e in entries {
            check_entry(e)?;
        }
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = Cmd::new("GETMETADATA");
        cmd.str(self.mailbox_or_server(folder)?).syn("(");
        for e in entries {
            cmd.str(e);
        }
        cmd.syn(")");
        let done = self.run(&cmd)?;
        let mut got: Vec<(String, Option<Vec<u8>>)> = Vec::new();
        for r in &done.untagged {
            let Response::Data { name, values, .. } = r else {
                continue;
            };
            if name != "METADATA" {
                continue;
            }
            let Some(l) = values.get(1).and_then(Value::list) else {
                continue;
            };
            for kv in l.chunks(2) {
                if let [k, v] = kv {
                    if let Some(k) = k.text() {
                        got.push((k, v.nstring()));
                    }
                }
            }
        }
        Ok(entries
            .iter()
            .map(|e| {
                let v = got
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(e))
                    .and_then(|(_, v)| v.clone());
                (e.to_string(), v)
            })
            .collect())
    }

    /// SETMETADATA: sets each entry to its value, or removes it (None).
    pub fn set_metadata(
        &mut self,
        folder: &str,
        entries: &[(&str, Option<&[u8]>)],
    ) -> Result<(), Error> {
        for (e, _) in entries {
            check_entry(e)?;
        }
        if entries.is_empty() {
            return Ok(());
        }
        let mut cmd = Cmd::new("SETMETADATA");
        cmd.str(self.mailbox_or_server(folder)?).syn("(");
        for (e, v) in entries {
            cmd.str(e);
            match v {
                None => {
                    cmd.syn("NIL");
                }
                Some(v) if v.contains(&0) => {
                    if !self.has("BINARY") {
                        return Err(Error::Invalid(
                            "a metadata value holds NUL and the server has no BINARY".into(),
                        ));
                    }
                    cmd.lit8(v);
                }
                Some(v) => {
                    cmd.str(v);
                }
            }
        }
        cmd.syn(")");
        self.run(&cmd).map(|_| ())
    }

    /// GETQUOTAROOT (RFC 9208): every resource of every quota root of the
    /// folder. Empty when the server has no QUOTA.
    pub fn quota_root(&mut self, folder: &str) -> Result<Vec<Quota>, Error> {
        if !self.has("QUOTA") {
            return Ok(Vec::new());
        }
        let mut cmd = Cmd::new("GETQUOTAROOT");
        cmd.str(self.mailbox(folder)?);
        let done = self.run(&cmd)?;
        let mut out = Vec::new();
        for r in &done.untagged {
            let Response::Data { name, values, .. } = r else {
                continue;
            };
            if name != "QUOTA" {
                continue;
            }
            let root = values.first().and_then(Value::text).unwrap_or_default();
            let Some(l) = values.get(1).and_then(Value::list) else {
                continue;
            };
            for t in l.chunks(3) {
                if let [res, usage, limit] = t {
                    out.push(Quota {
                        root: root.clone(),
                        resource: res.text().unwrap_or_default().to_ascii_uppercase(),
                        usage: usage.number().ok_or_else(|| bad_number("QUOTA"))?,
                        limit: limit.number().ok_or_else(|| bad_number("QUOTA"))?,
                    });
                }
            }
        }
        Ok(out)
    }

    /// APPENDs a message with these flags; its (UIDVALIDITY, UID) when the
    /// server says (APPENDUID, UIDPLUS). A message holding NUL goes as a
    /// literal8 when the server has BINARY and is refused otherwise.
    pub fn append(
        &mut self,
        folder: &str,
        flags: &[&str],
        message: &[u8],
    ) -> Result<Option<(u32, u32)>, Error> {
        for f in flags {
            check_flag(f)?;
        }
        let mut cmd = Cmd::new("APPEND");
        cmd.str(self.mailbox(folder)?);
        cmd.syn(&format!("({})", flags.join(" ")));
        if message.contains(&0) {
            if !self.has("BINARY") {
                return Err(Error::Invalid(
                    "the message holds NUL and the server has no BINARY".into(),
                ));
            }
            cmd.lit8(message);
        } else {
            cmd.lit(message);
        }
        let done = self.run(&cmd)?;
        Ok(match done.code {
            Some((c, v)) if c == "APPENDUID" => v
                .first()
                .and_then(Value::number32)
                .zip(v.get(1).and_then(Value::number32)),
            _ => None,
        })
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

    /// `(MESSAGES UNSEEN SIZE)`, SIZE only with STATUS=SIZE.
    fn status_items(&self) -> String {
        if self.has("STATUS=SIZE") {
            "(MESSAGES UNSEEN SIZE)".into()
        } else {
            "(MESSAGES UNSEEN)".into()
        }
    }

    /// A folder name as it goes on the wire; control characters make
    /// no folder name (modified UTF-7 would carry them, but no one should).
    fn mailbox(&self, name: &str) -> Result<Vec<u8>, Error> {
        if name.chars().any(char::is_control) {
            return Err(Error::Invalid(format!(
                "a control character in the folder name {name:?}"
            )));
        }
        Ok(if self.utf8 {
            name.as_bytes().to_vec()
        } else {
            utf7::encode(name).into_bytes()
        })
    }

    fn mailbox_or_server(&self, name: &str) -> Result<Vec<u8>, Error> {
        if name.is_empty() {
            Ok(Vec::new())
        } else {
            self.mailbox(name)
        }
    }

    /// A folder name from the wire, in UTF-8.
    fn decode_mailbox(&self, v: &Value) -> Option<String> {
        let b = v.bytes()?;
        let s = if self.utf8 {
            String::from_utf8_lossy(b).into_owned()
        } else {
            let raw = String::from_utf8_lossy(b);
            utf7::decode(&raw).unwrap_or_else(|_| raw.into_owned())
        };
        Some(normalise(&s))
    }

    /// One LIST or LSUB response: `(attributes) delimiter name [extended]`.
    fn list_entry(&self, values: &[Value]) -> Option<Folder> {
        let attributes: Vec<String> = values
            .first()?
            .list()?
            .iter()
            .filter_map(Value::text)
            .collect();
        let delimiter = match values.get(1)? {
            Value::Nil => None,
            v => v.bytes().and_then(|b| b.first()).map(|c| *c as char),
        };
        let name = self.decode_mailbox(values.get(2)?)?;
        let special = attributes
            .iter()
            .find_map(|a| SPECIAL_USE.iter().find(|s| s.eq_ignore_ascii_case(a)))
            .map(|s| s.to_string());
        let subscribed = attributes
            .iter()
            .any(|a| a.eq_ignore_ascii_case("\\Subscribed"));
        Some(Folder {
            name,
            delimiter,
            attributes,
            special,
            subscribed,
            status: None,
        })
    }

    /// One STATUS response: `name (MESSAGES n UNSEEN n SIZE n)`.
    fn status_entry(&self, values: &[Value]) -> Option<(String, FolderStatus)> {
        let name = self.decode_mailbox(values.first()?)?;
        let mut st = FolderStatus::default();
        for kv in values.get(1)?.list()?.chunks(2) {
            if let [k, v] = kv {
                if k.is_atom("MESSAGES") {
                    st.messages = v.number32()?;
                } else if k.is_atom("UNSEEN") {
                    st.unseen = v.number32()?;
                } else if k.is_atom("SIZE") {
                    st.size = v.number();
                }
            }
        }
        Some((name, st))
    }

    fn fetch_body(&mut self, uid: u32, section: &str) -> Result<Option<Vec<u8>>, Error> {
        if uid == 0 {
            return Ok(None);
        }
        let mut cmd = Cmd::new("UID FETCH");
        cmd.syn(&uid.to_string())
            .syn(&format!("(UID BODY.PEEK[{section}])"));
        let done = self.run(&cmd)?;
        let want = format!("BODY[{section}]");
        for r in &done.untagged {
            let Some((u, items)) = fetch_items(r) else {
                continue;
            };
            if u != uid {
                continue;
            }
            if let Some((_, v)) = items.iter().find(|(n, _)| *n == want) {
                return Ok(Some(v.nstring().unwrap_or_default()));
            }
        }
        Ok(None)
    }

    fn uid_to(&mut self, verb: &str, uids: &[u32], to: &str) -> Result<(), Error> {
        for set in uid_sets(uids, MAX_SET_LEN) {
            let mut cmd = Cmd::new(verb);
            cmd.syn(&set).str(self.mailbox(to)?);
            self.run(&cmd)?;
        }
        Ok(())
    }

    /// UID SEARCH with a fixed key of our own (no strings).
    fn search_raw(&mut self, key: &str) -> Result<Vec<u32>, Error> {
        let mut cmd = Cmd::new("UID SEARCH");
        cmd.syn(key);
        let done = self.run(&cmd)?;
        let mut out = Vec::new();
        for r in &done.untagged {
            if let Response::Data { name, values, .. } = r {
                if name == "SEARCH" {
                    out.extend(values.iter().filter_map(Value::number32));
                }
            }
        }
        Ok(out)
    }

    /// AUTHENTICATE PLAIN; the secret is zeroed after use.
    fn authenticate_plain(&mut self, user: &str, password: &str) -> Result<Done, Error> {
        use base64::Engine;
        let mut raw = Zeroizing::new(Vec::with_capacity(user.len() + password.len() + 2));
        raw.push(0);
        raw.extend_from_slice(user.as_bytes());
        raw.push(0);
        raw.extend_from_slice(password.as_bytes());
        let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&*raw));
        let tag = self.next_tag();
        self.untagged.clear();
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
    fn run(&mut self, cmd: &Cmd) -> Result<Done, Error> {
        let tag = self.next_tag();
        self.untagged.clear();
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
    fn complete(&mut self, tag: &str, r: Response) -> Result<Option<Done>, Error> {
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
                if self.untagged.len() >= 1_000_000 {
                    return Err(self.fail("too many untagged responses"));
                }
                self.untagged.push(r);
                Ok(None)
            }
        }
    }

    /// Sends a command, waiting for continuation requests before
    /// synchronising literals.
    fn send(&mut self, tag: &str, cmd: &Cmd) -> Result<(), Error> {
        // Check every part before the first byte goes out.
        for p in &cmd.parts {
            if let Part::Str(s) = p {
                encode_str(s, self.utf8)?;
            }
        }
        let plus = self.has("LITERAL+");
        let minus = self.has("LITERAL-");
        let mut line: Vec<u8> = format!("{tag} ").into_bytes();
        for p in &cmd.parts {
            let (prefix, body): (&str, &[u8]) = match p {
                Part::Syntax(s) => {
                    line.extend_from_slice(s.as_bytes());
                    continue;
                }
                Part::Str(s) => match encode_str(s, self.utf8)? {
                    Encoded::Quoted(q) => {
                        line.extend_from_slice(&q);
                        continue;
                    }
                    Encoded::Literal => ("", s),
                },
                Part::Literal(s) => ("", s),
                Part::Literal8(s) => ("~", s),
            };
            let nonsync = plus || (minus && body.len() <= LITERAL_MINUS_MAX);
            if nonsync {
                line.extend_from_slice(format!("{prefix}{{{}+}}\r\n", body.len()).as_bytes());
                line.extend_from_slice(body);
            } else {
                line.extend_from_slice(format!("{prefix}{{{}}}\r\n", body.len()).as_bytes());
                self.write(&line)?;
                line.clear();
                self.wait_continue(tag)?;
                line.extend_from_slice(body);
            }
        }
        line.extend_from_slice(b"\r\n");
        self.write(&line)
    }

    /// Waits for `+` (untagged responses meanwhile are kept for the command).
    fn wait_continue(&mut self, tag: &str) -> Result<(), Error> {
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

    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
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
    fn read(&mut self) -> Result<Response, Error> {
        if let Some(why) = &self.broken {
            return Err(Error::Protocol(format!("connection unusable: {why}")));
        }
        let mut buf = std::mem::take(&mut self.buf);
        let r = reply::read_response(&mut self.io, &mut buf).and_then(|()| reply::parse(&buf));
        buf.clear();
        if buf.capacity() <= 1 << 20 {
            self.buf = buf;
        }
        match r {
            Ok(r) => Ok(r),
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
    fn fail(&mut self, why: &str) -> Error {
        self.broken = Some(why.to_string());
        Error::Protocol(why.to_string())
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("k{}", self.tag)
    }

    /// The tag the next command will carry.
    fn peek_tag(&self) -> String {
        format!("k{}", self.tag + 1)
    }
}

/// INBOX in any case is INBOX (RFC 9051 section 5.1).
fn normalise(name: &str) -> String {
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX".into()
    } else {
        name.to_string()
    }
}

fn bad_number(what: &str) -> Error {
    Error::Protocol(format!("a {what} reply holds something that is not a UID"))
}

/// A FETCH response's UID and its items (names upper-cased), when it has a UID.
fn fetch_items(r: &Response) -> Option<(u32, Vec<(String, &Value)>)> {
    let Response::Data { name, values, .. } = r else {
        return None;
    };
    if name != "FETCH" {
        return None;
    }
    let l = values.first()?.list()?;
    let items: Vec<(String, &Value)> = l
        .chunks(2)
        .filter_map(|kv| match kv {
            [k, v] => Some((k.text()?.to_ascii_uppercase(), v)),
            _ => None,
        })
        .collect();
    let uid = items
        .iter()
        .find(|(n, _)| n == "UID")
        .and_then(|(_, v)| v.number32())?;
    Some((uid, items))
}
