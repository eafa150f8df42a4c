//! The IMAP session: state machine over typed commands.
//!
//! States are enum variants carrying only what is valid in them (RFC 3501
//! 3): not authenticated, authenticated (with the user's store), selected
//! (with the open folder's view), logout. Each command is checked against
//! the state (a `match` over every command, [`allowed`]) and then run by its
//! handler in `cmd/`, which writes responses to an [`Out`] and may return an
//! [`Action`] the server performs (TLS, a login through kmp-authd, IDLE).

use std::io;

use super::store::MailStore;
use super::view::View;
use super::Settings;
use crate::proto::imap::response::{self, Code, Response, Wire};
use crate::proto::imap::{Command, CommandBody, Limits};

/// Where responses go. The handler appends; when the buffer grows past a
/// threshold the server's sink takes it (so a large FETCH is streamed with
/// bounded memory).
pub struct Out<'a> {
    pub buf: Vec<u8>,
    /// How names go on the wire for this session ([`Session::wire`]).
    pub wire: Wire,
    sink: &'a mut dyn FnMut(&[u8]) -> io::Result<()>,
}

impl<'a> Out<'a> {
    pub fn new(sink: &'a mut dyn FnMut(&[u8]) -> io::Result<()>) -> Out<'a> {
        Out {
            buf: Vec::with_capacity(4096),
            wire: Wire::default(),
            sink,
        }
    }

    /// Appends a response, encoded by `proto::imap::response`.
    pub fn send(&mut self, r: Response) {
        response::write(&mut self.buf, &r, self.wire);
    }

    /// Appends a line; CRLF is added.
    pub fn line(&mut self, s: &str) {
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// Hands the buffer to the sink when it is large.
    pub fn maybe_flush(&mut self) -> io::Result<()> {
        if self.buf.len() >= 256 * 1024 {
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            (self.sink)(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

/// What the server must do after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing: read the next command.
    None,
    /// Start TLS now (the OK was written).
    StartTls,
    /// Verify these credentials with kmp-authd, then call
    /// [`Session::finish_login`].
    Login {
        tag: String,
        user: String,
        password: crate::proto::sasl::Secret,
    },
    /// Send `+ ` and pass the client's next line to [`Session::sasl_line`].
    SaslContinue,
    /// Enter IDLE (the `+ idling` was written): poll the folder until DONE.
    Idle { tag: String },
    /// Too many bad commands (the BYE was written): report the address to
    /// kmp-authd, where it counts toward a ban, and close.
    Abuse,
    /// A trusted front end named the client it serves (ID
    /// `x-originating-ip`, before login): from now on the session is that
    /// client's for logs, bans and the per-address limit.
    Forwarded {
        ip: std::net::IpAddr,
        port: Option<u16>,
        /// The front end is the webmail (ID `name` `kmp-webmail`): its
        /// logins are checked as service `webmail` as well as `imap`.
        webmail: bool,
    },
    /// Close the connection (BYE and the tagged OK were written).
    Close,
}

/// The user once logged in.
pub struct Auth {
    pub user: String,
    pub store: Box<dyn MailStore>,
}

/// RFC 3501 section 3.
pub enum State {
    NotAuthenticated,
    Authenticated(Auth),
    Selected(Auth, Box<View>),
    Logout,
}

/// Extensions the client turned on with ENABLE (RFC 5161).
#[derive(Debug, Default, Clone, Copy)]
pub struct Enabled {
    pub rev2: bool,
    pub utf8: bool,
    pub condstore: bool,
    /// RFC 7162 3.2: VANISHED instead of EXPUNGE, SELECT (QRESYNC ...).
    pub qresync: bool,
}

/// APPEND literals the server wrote to staging files: where each starts in
/// the command, and the file and its size, or why it could not be kept.
pub type Staged = Vec<(usize, Result<(std::fs::File, u64), String>)>;

/// What a login came to: the user and their store, or the refusal's
/// response code and text.
pub type LoginResult<'a> = Result<(String, Box<dyn MailStore>), (Code<'a>, &'a str)>;

/// One connection's session.
pub struct Session {
    pub state: State,
    pub settings: std::sync::Arc<Settings>,
    /// The connection is under TLS.
    pub tls: bool,
    /// The client is on a loopback address (plaintext login allowed).
    pub local: bool,
    /// The peer is a trusted front end (`imapd.trusted_networks`): its ID
    /// may name the client it serves, and it may log in without TLS.
    pub trusted: bool,
    pub enabled: Enabled,
    /// AUTHENTICATE waiting for its continuation line: the tag.
    pub sasl_tag: Option<String>,
    /// The messages of the APPEND being run that the server wrote to
    /// files as they arrived ([`MailStore::stage`]): where each literal
    /// starts in the command, and the file and its size, or why it could
    /// not be kept.
    pub staged: Staged,
    /// Other users' stores, for URLAUTH URLs that name them.
    pub accounts: Option<std::sync::Arc<dyn super::url::Accounts>>,
    /// Bad commands so far.
    errors: u32,
    /// What NOTIFY SET asked to watch (RFC 5465), and what was seen last.
    pub notify: Option<Box<super::cmd::notify::Watch>>,
}

impl Session {
    pub fn new(settings: std::sync::Arc<Settings>, tls: bool, local: bool) -> Session {
        Session {
            state: State::NotAuthenticated,
            settings,
            tls,
            local,
            trusted: false,
            enabled: Enabled::default(),
            sasl_tag: None,
            staged: Vec::new(),
            accounts: None,
            errors: 0,
            notify: None,
        }
    }

    /// The caps on the next command: small until the client logged in.
    pub fn limits(&self) -> Limits {
        match self.state {
            State::NotAuthenticated | State::Logout => Limits::BEFORE_LOGIN,
            State::Authenticated(_) | State::Selected(..) => self.settings.limits,
        }
    }

    /// Answers `TAG BAD text` (`* BAD` without a tag) to a command the
    /// client got wrong. Too many of them end the session: [`Action::Abuse`].
    pub fn bad(&mut self, tag: &str, text: &str, out: &mut Out) -> Action {
        out.send(Response::bad(tag, text));
        self.errors = self.errors.saturating_add(1);
        if self.errors >= self.settings.max_errors {
            out.send(Response::bye("Too many bad commands"));
            self.state = State::Logout;
            return Action::Abuse;
        }
        Action::None
    }

    /// The greeting (RFC 3501 7.1.1).
    pub fn greeting(&self, out: &mut Out) {
        let caps = super::cmd::any::capabilities(self);
        let text = format!("{} IMAP ready", self.settings.hostname);
        out.send(Response::info(Some(Code::Capability(&caps)), &text));
    }

    /// How this session's responses write names (ENABLE UTF8=ACCEPT or
    /// IMAP4rev2 make them UTF-8).
    pub fn wire(&self) -> Wire {
        Wire {
            utf8: self.enabled.utf8,
        }
    }

    /// Whether plaintext passwords may be sent now (RFC 9051 6.2.3:
    /// LOGINDISABLED until TLS, except on loopback).
    pub fn login_allowed(&self) -> bool {
        self.tls || self.local || self.trusted || !self.settings.tls_available
    }

    /// Runs one parsed command.
    pub fn handle(&mut self, cmd: Command, out: &mut Out) -> io::Result<Action> {
        out.wire = self.wire();
        let Command { tag, body } = cmd;
        if !allowed(&self.state, &body) {
            let why = match self.state {
                State::NotAuthenticated => "Log in first",
                State::Authenticated(_) => "No mailbox selected",
                State::Selected(..) => "Not allowed while a mailbox is selected",
                State::Logout => "Logging out",
            };
            self.staged.clear();
            return Ok(self.bad(&tag, why, out));
        }
        if let CommandBody::Unknown(verb) = &body {
            return Ok(self.bad(&tag, &format!("Unknown command {verb}"), out));
        }
        if let State::Selected(_, view) = &mut self.state {
            view.unpark();
        }
        let r = super::cmd::run(self, tag, body, out);
        // A staged message no APPEND took is dropped (its file was unlinked).
        self.staged.clear();
        r
    }

    /// The line that answers an AUTHENTICATE continuation.
    pub fn sasl_line(&mut self, line: &[u8], out: &mut Out) -> Action {
        let Some(tag) = self.sasl_tag.take() else {
            return Action::None;
        };
        super::cmd::login::sasl_plain(self, tag, line, out)
    }

    /// kmp-authd's answer to [`Action::Login`]: the store on success, or the
    /// text of the NO.
    pub fn finish_login(&mut self, tag: &str, result: LoginResult, out: &mut Out) {
        match result {
            Ok((user, store)) => {
                self.state = State::Authenticated(Auth { user, store });
                let caps = super::cmd::any::capabilities(self);
                out.send(Response::tagged(
                    tag,
                    response::Status::Ok,
                    Some(Code::Capability(&caps)),
                    "Logged in",
                ));
            }
            Err((code, text)) => out.send(Response::no(tag, Some(code), text)),
        }
    }

    /// Frees the selected folder's cached state (IDLE: many sessions wait).
    pub fn release(&mut self) {
        if let State::Selected(_, view) = &mut self.state {
            view.folder.release();
            view.park();
            // SORT keys come back from the folder's cache file when needed.
            view.sort_cache = Default::default();
        }
    }

    /// The user name, once logged in.
    pub fn user(&self) -> Option<&str> {
        match &self.state {
            State::Authenticated(a) | State::Selected(a, _) => Some(&a.user),
            _ => None,
        }
    }

    /// Whether [`Session::poll`] would have anything to say (cheap enough
    /// to ask without leaving the async thread: IDLE asks it four times a
    /// second).
    pub fn poll_needed(&mut self, expunge: bool) -> bool {
        let watch = self.notify.as_ref().is_some_and(|w| w.due());
        watch
            || match &mut self.state {
                State::Selected(_, view) => view.needs_sync(expunge),
                _ => false,
            }
    }

    /// Whether the client asked to be told of changes while it waits for
    /// input, with no command running (NOTIFY, RFC 5465).
    pub fn pushes(&self) -> bool {
        self.notify.is_some()
    }

    /// Whether [`Session::push`] would have anything to say now (as cheap
    /// as [`Session::poll_needed`]).
    pub fn push_needed(&mut self) -> bool {
        use super::cmd::notify::SelectedMode;
        let Some(w) = &self.notify else {
            return false;
        };
        let mode = w.selected_mode();
        let watch = w.due();
        watch
            || match (&mut self.state, mode) {
                (State::Selected(_, view), SelectedMode::Immediate) => view.needs_sync(true),
                (State::Selected(_, view), SelectedMode::Delayed) => view.needs_sync(false),
                _ => false,
            }
    }

    /// What NOTIFY asked to be told while no command runs: the selected
    /// mailbox's updates as its SELECTED group says (RFC 5465 6; EXPUNGE
    /// only for SELECTED, not SELECTED-DELAYED), and the watched mailboxes.
    pub fn push(&mut self, out: &mut Out) {
        use super::cmd::notify::SelectedMode;
        let Some(mode) = self.notify.as_ref().map(|w| w.selected_mode()) else {
            return;
        };
        out.wire = self.wire();
        match mode {
            SelectedMode::Immediate => self.poll(out, true),
            SelectedMode::Delayed => self.poll(out, false),
            SelectedMode::Commands | SelectedMode::Silent => super::cmd::notify::poll(self, out),
        }
    }

    /// Untagged updates for the selected folder (NOOP, IDLE polling).
    /// `expunge`: whether EXPUNGE responses may be sent now.
    pub fn poll(&mut self, out: &mut Out, expunge: bool) {
        out.wire = self.wire();
        let mut before = None;
        if let State::Selected(_, view) = &mut self.state {
            before = Some(view.max_uid());
            view.sync(out, expunge, self.enabled);
        }
        if let Some(before) = before {
            super::cmd::notify::new_messages(self, before, out);
        }
        super::cmd::notify::poll(self, out);
    }
}

/// Whether a command may run in a state (RFC 3501 6, RFC 9051 6).
pub fn allowed(state: &State, body: &CommandBody) -> bool {
    use CommandBody::*;
    let (auth, selected) = match state {
        State::NotAuthenticated => (false, false),
        State::Authenticated(_) => (true, false),
        State::Selected(..) => (true, true),
        State::Logout => return false,
    };
    match body {
        Capability | Noop | Logout | Id(_) | Unknown(_) => true,
        StartTls | Authenticate { .. } | Login { .. } => !auth,
        Enable(_)
        | Select { .. }
        | Create(_)
        | Delete(_)
        | Rename { .. }
        | Subscribe(_)
        | Unsubscribe(_)
        | List(_)
        | Namespace
        | Status { .. }
        | Append { .. }
        | GenUrlAuth(_)
        | ResetKey { .. }
        | UrlFetch(_)
        | Idle
        | GetQuota(_)
        | GetQuotaRoot(_)
        | SetQuota(_)
        | GetMetadata { .. }
        | SetMetadata { .. }
        | Notify(_) => auth,
        Check
        | Close
        | Unselect
        | Expunge { .. }
        | Search { .. }
        | Sort { .. }
        | Thread { .. }
        | Fetch { .. }
        | Store { .. }
        | Copy { .. }
        | Move { .. }
        | CancelUpdate(_) => selected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::imap::parse_command;

    #[test]
    fn bad_commands_are_counted_and_end_the_session() {
        let mut settings = Settings::for_tests();
        settings.max_errors = 3;
        let mut s = Session::new(std::sync::Arc::new(settings), false, true);
        assert_eq!(s.limits().max_literal, Limits::BEFORE_LOGIN.max_literal);
        let mut sink = |_: &[u8]| Ok(());
        let mut out = Out::new(&mut sink);
        for c in [&b"a FROB\r\n"[..], b"b SELECT INBOX\r\n"] {
            let a = s.handle(parse_command(c).unwrap(), &mut out).unwrap();
            assert_eq!(a, Action::None);
        }
        let a = s.bad("*", "Command line too long", &mut out);
        assert_eq!(a, Action::Abuse);
        let text = String::from_utf8_lossy(&out.buf).into_owned();
        assert!(text.starts_with("a BAD Unknown command FROB\r\nb BAD Log in first\r\n"));
        assert!(text.ends_with("* BAD Command line too long\r\n* BYE Too many bad commands\r\n"));
        assert!(matches!(s.state, State::Logout));
    }
}
