//! One SMTP session as a state machine, with no I/O.
//!
//! The server feeds it commands and the answers to what it asked for
//! (lookups, logins, the end of a message, the queue's verdict); it returns
//! [`Action`]s for the server to perform in order. Each command is first
//! checked ([`Session::check`]: sequencing and policy that need nothing from
//! outside, citing RFC 5321) and then carried out ([`Session::proceed`]).
//! The state is an enum whose variants carry only what is valid in them.

use std::net::IpAddr;
use std::sync::Arc;

use super::policy::Policy;
use crate::ipc::authd::{ClientError, Entry, LoginFailure, Reply as AuthReply};
use crate::proto::sasl::{self, Plain as Credentials, SaslError};
use crate::proto::smtp::reply::{self, Reply};
use crate::proto::smtp::{
    Body, Command, ForwardPath, MailParams, Mailbox, Mechanism, ParseError, Problem, RcptParams,
    Summary,
};
use crate::queue::envelope::{Envelope, Recipient};

/// Which listener a session came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// Port 25: mail for local domains from anyone.
    Mx,
    /// Port 587: AUTH required before MAIL.
    Submission,
    /// Port 465: as submission, over TLS from the first byte.
    Smtps,
}

impl Listener {
    /// Its name in logs: `mx`, `submission`, `smtps`.
    pub fn name(self) -> &'static str {
        match self {
            Listener::Mx => "mx",
            Listener::Submission => "submission",
            Listener::Smtps => "smtps",
        }
    }

    /// The authd service name for logins and reports.
    pub fn service(self) -> crate::ipc::authd::Service {
        match self {
            Listener::Mx => crate::ipc::authd::Service::Smtp,
            Listener::Submission | Listener::Smtps => crate::ipc::authd::Service::Submission,
        }
    }
}

/// The negotiated TLS parameters, for EHLO, logs and the Received header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    pub version: String,
    pub cipher: String,
}

/// What the server must do next, in order.
#[derive(Debug)]
pub enum Action {
    Reply(Reply),
    /// After the replies so far are flushed: drop any buffered input
    /// (RFC 3207 5: nothing sent before the handshake counts), handshake,
    /// then call [`Session::tls_started`] (or close on failure).
    StartTls,
    /// Ask kmp-authd to verify these, then call [`Session::login_result`].
    Login(Credentials),
    /// Look up the sender an authenticated user wants to use, then call
    /// [`Session::sender_result`].
    LookupSender(Mailbox, MailParams),
    /// Look up a recipient in kmp-authd, then call [`Session::recipient_result`].
    LookupRecipient(Mailbox, RcptParams),
    /// Read the message after 354 up to CRLF.CRLF (the server owns the body
    /// decoder and the queue file), then call [`Session::message_end`].
    ReceiveData,
    /// Read exactly `size` octets of BDAT. With `keep` they belong to the
    /// message; then call [`Session::chunk_end`]. Without, discard them and
    /// go on with the next action.
    ReceiveChunk {
        size: u64,
        last: bool,
        keep: bool,
    },
    /// Fetch what an IMAP URL names through kmp-imapd (BURL, RFC 4468),
    /// add it to the message as a chunk and call [`Session::chunk_end`];
    /// if it cannot be fetched, call [`Session::burl_failed`].
    FetchUrl {
        url: String,
        last: bool,
    },
    /// Commit the message with this envelope, then call [`Session::queued`].
    Queue(Box<Envelope>),
    /// Abandon the message being written, if any (nothing is queued).
    Abort,
    /// Log a line (refusals, logins).
    Log(String),
    /// Tell kmp-authd this client misbehaved (counts toward a ban).
    Report(&'static str),
    Close,
}

/// What the server reads next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Command,
    /// A SASL response line.
    AuthLine,
    /// Nothing: the session is over.
    Closed,
}

/// The client's introduction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helo {
    pub name: String,
    /// EHLO rather than HELO.
    pub extended: bool,
}

/// A mail transaction from MAIL on.
#[derive(Debug, Clone)]
pub struct Transaction {
    /// None: the null reverse path.
    pub sender: Option<Mailbox>,
    pub params: MailParams,
    pub recipients: Vec<Recipient>,
    /// Octets of BDAT received so far.
    pub chunked: u64,
    /// A BDAT chunk failed: every later chunk gets this until LAST or RSET.
    pub failed: Option<Reply>,
    /// The smallest message size ceiling of the recipients' domains
    /// (`kmpctl domain set --max-message-size`), checked at the end of data.
    pub ceiling: Option<u64>,
}

/// Where a SASL exchange stands.
#[derive(Debug)]
enum AuthStep {
    /// PLAIN without an initial response: the next line is it.
    Plain,
    /// LOGIN: the next line is the user name.
    LoginUser,
    /// LOGIN: the next line is the password.
    LoginPassword(String),
    /// Waiting for kmp-authd.
    Checking,
}

#[derive(Debug)]
enum State {
    /// Greeted; no HELO/EHLO yet (also right after STARTTLS).
    Fresh,
    Ready(Helo),
    /// MAIL accepted (or being checked); RCPTs being collected.
    Mail(Helo, Transaction),
    /// 354 sent; the message is arriving.
    Data(Helo, Transaction),
    /// BDAT chunks are arriving (between chunks too).
    Chunks(Helo, Transaction),
    /// Waiting for the queue's verdict on a complete message.
    Queueing(Helo, Transaction),
    Auth(Helo, AuthStep),
    /// RFC 5321 3.1: refused at the greeting; only QUIT is served.
    Refused,
    Closed,
}

/// A session. See the module documentation.
#[derive(Debug)]
pub struct Session {
    policy: Arc<Policy>,
    id: String,
    ip: IpAddr,
    listener: Listener,
    tls: Option<TlsInfo>,
    /// The authenticated user's canonical address.
    user: Option<String>,
    state: State,
    messages: usize,
    errors: usize,
}

impl Session {
    /// How many messages this session has queued, for its last log line.
    pub fn messages(&self) -> usize {
        self.messages
    }

    /// A session for a client at `ip` on `listener`. `tls` is set for port 465.
    pub fn new(
        policy: Arc<Policy>,
        id: String,
        ip: IpAddr,
        listener: Listener,
        tls: Option<TlsInfo>,
    ) -> Session {
        Session {
            policy,
            id,
            ip,
            listener,
            tls,
            user: None,
            state: State::Fresh,
            messages: 0,
            errors: 0,
        }
    }

    /// The greeting. `banned` comes from kmp-authd's BanCheck.
    pub fn greet(&mut self, banned: bool) -> Vec<Action> {
        let host = &self.policy.hostname;
        if self.policy.client_denied(self.ip) {
            self.state = State::Refused;
            let r = reply::refused_greeting(host);
            return vec![self.log_refusal("CONNECT", &r, ""), Action::Reply(r)];
        }
        if banned {
            self.state = State::Closed;
            let r = reply::BANNED;
            return vec![
                self.log_refusal("CONNECT", &r, ""),
                Action::Reply(r),
                Action::Close,
            ];
        }
        vec![Action::Reply(reply::greeting(host))]
    }

    /// What to read next.
    pub fn input(&self) -> Input {
        match self.state {
            State::Closed => Input::Closed,
            State::Auth(_, AuthStep::Checking) => Input::Command,
            State::Auth(..) => Input::AuthLine,
            _ => Input::Command,
        }
    }

    /// The session id (for logs).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The authenticated user, if any.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The TLS parameters, if TLS is on.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    /// The client as logs name it: `unknown[192.0.2.1]` or
    /// `unknown[IPv6:2001:db8::1]` (no reverse lookups).
    pub fn client(&self) -> String {
        format!("unknown[{}]", crate::net::literal(self.ip))
    }

    /// A line that could not be parsed: its error reply.
    pub fn parse_error(&mut self, e: ParseError) -> Vec<Action> {
        let mut out = Vec::new();
        self.refuse(&mut out, "COMMAND", e.reply(), "");
        out
    }

    /// A command. `pipelined_after`: more input was already buffered behind
    /// it (only DATA cares: RFC 2920 3.1).
    pub fn command(&mut self, cmd: Command, pipelined_after: bool) -> Vec<Action> {
        let mut out = Vec::new();
        if matches!(self.state, State::Refused) {
            match cmd {
                Command::Quit => {
                    out.push(Action::Reply(reply::BYE));
                    out.push(Action::Close);
                    self.state = State::Closed;
                }
                _ => self.refuse(&mut out, cmd.verb(), reply::REFUSED_SESSION, ""),
            }
            return out;
        }
        if let Err(r) = self.check(&cmd, pipelined_after) {
            let verb = cmd.verb().to_string();
            let detail = match &cmd {
                Command::Rcpt {
                    to: ForwardPath::Mailbox(m),
                    ..
                } => format!(" to=<{m}>"),
                Command::Mail { from, .. } => format!(" from=<{}>", addr(from)),
                _ => String::new(),
            };
            self.refuse(&mut out, &verb, r, &detail);
            // RFC 2920 3.1: the message follows DATA only after 354. What is
            // already behind a refused DATA in a transaction is that message,
            // and read as commands it could run a whole forged transaction
            // (smuggling by pipelining): end the session, as Exim and
            // Postfix do on such a synchronization error.
            if matches!(cmd, Command::Data)
                && pipelined_after
                && matches!(self.state, State::Mail(..))
            {
                out.push(Action::Abort);
                out.push(Action::Log(format!(
                    "{}: improper pipelining after DATA from {}",
                    self.id,
                    self.client()
                )));
                out.push(Action::Close);
                self.state = State::Closed;
            }
            return out;
        }
        self.proceed(cmd, &mut out);
        out
    }

    /// Sequencing and policy that need nothing from outside.
    pub fn check(&self, cmd: &Command, pipelined_after: bool) -> Result<(), Reply> {
        let p = &self.policy;
        let in_tx = matches!(self.state, State::Mail(..));
        match cmd {
            // RFC 5321 4.1.4: HELO/EHLO may come at any time and reset the transaction.
            Command::Helo(_) | Command::Ehlo(_) => Ok(()),
            Command::Mail { from, params } => {
                let State::Ready(_) = &self.state else {
                    return Err(match self.state {
                        State::Fresh => reply::NEED_HELO,
                        _ => reply::NESTED_MAIL,
                    });
                };
                if self.listener != Listener::Mx && self.user.is_none() {
                    // RFC 3207 4 / RFC 4954 4: say what to do first.
                    return Err(if !self.auth_offered() && p.tls {
                        reply::MUST_STARTTLS
                    } else {
                        reply::AUTH_REQUIRED
                    });
                }
                if self.messages >= p.max_messages {
                    return Err(reply::TOO_MANY_MESSAGES);
                }
                if params.size.is_some_and(|s| s > p.max_message_size) {
                    return Err(reply::MESSAGE_TOO_BIG);
                }
                if let Some(m) = from {
                    if !m.is_ascii() && !params.smtputf8 {
                        return Err(reply::NEED_SMTPUTF8);
                    }
                    if p.sender_denied(&m.to_string(), m.domain()) {
                        return Err(reply::SENDER_DENIED);
                    }
                }
                Ok(())
            }
            Command::Rcpt { to, .. } => {
                let State::Mail(_, tx) = &self.state else {
                    return Err(match self.state {
                        State::Fresh => reply::NEED_HELO,
                        _ => reply::NEED_MAIL,
                    });
                };
                if tx.recipients.len() >= p.max_recipients {
                    return Err(reply::TOO_MANY_RECIPIENTS);
                }
                if let ForwardPath::Mailbox(m) = to {
                    if !m.is_ascii() && !tx.params.smtputf8 {
                        return Err(reply::NEED_SMTPUTF8);
                    }
                    if p.recipient_denied(&m.to_string()) {
                        return Err(reply::RECIPIENT_DENIED);
                    }
                }
                Ok(())
            }
            Command::Data => match &self.state {
                State::Mail(_, tx) if tx.recipients.is_empty() => Err(reply::NO_VALID_RECIPIENTS),
                // RFC 2920 3.1: DATA is the last command of a group.
                State::Mail(..) if pipelined_after => Err(reply::IMPROPER_PIPELINING),
                State::Mail(..) => Ok(()),
                State::Chunks(..) => Err(reply::MIXED_DATA_BDAT),
                State::Fresh => Err(reply::NEED_HELO),
                _ => Err(reply::NEED_MAIL),
            },
            // BDAT's errors are decided in proceed: its octets must be read first.
            Command::Bdat { .. } => Ok(()),
            Command::Burl { url, .. } => self.check_burl(url),
            Command::Rset | Command::Noop | Command::Quit | Command::Help | Command::Vrfy => Ok(()),
            Command::Expn => Err(reply::NOT_IMPLEMENTED),
            Command::StartTls => {
                if self.tls.is_some() {
                    Err(reply::ALREADY_TLS)
                } else if !p.tls {
                    Err(reply::NOT_IMPLEMENTED)
                } else if in_tx {
                    Err(reply::BAD_SEQUENCE)
                } else {
                    Ok(())
                }
            }
            Command::Auth { mechanism, .. } => {
                let helo = match &self.state {
                    State::Ready(h) => h,
                    State::Fresh => return Err(reply::NEED_HELO),
                    _ => return Err(reply::AUTH_IN_TRANSACTION),
                };
                if !helo.extended {
                    return Err(reply::NOT_IMPLEMENTED);
                }
                if self.user.is_some() {
                    return Err(reply::ALREADY_AUTHENTICATED);
                }
                if !self.auth_offered() {
                    return Err(if p.tls {
                        reply::ENCRYPTION_REQUIRED
                    } else {
                        reply::NOT_IMPLEMENTED
                    });
                }
                match mechanism {
                    Mechanism::Plain | Mechanism::Login => Ok(()),
                    Mechanism::Other(_) => Err(reply::UNKNOWN_MECHANISM),
                }
            }
            Command::Unknown(_) => Err(reply::UNKNOWN_COMMAND),
        }
    }

    /// Carries out a command that passed [`Session::check`].
    pub fn proceed(&mut self, cmd: Command, out: &mut Vec<Action>) {
        let state = std::mem::replace(&mut self.state, State::Closed);
        if matches!(state, State::Chunks(..))
            && !matches!(
                cmd,
                Command::Bdat { .. }
                    | Command::Burl { .. }
                    | Command::Noop
                    | Command::Help
                    | Command::Vrfy
            )
        {
            // A command other than BDAT ends a chunked transaction (RFC 3030 2).
            out.push(Action::Abort);
        }
        self.state = match (cmd, state) {
            (Command::Helo(name), _) => {
                out.push(Action::Reply(reply::helo(&self.policy.hostname)));
                State::Ready(Helo {
                    name,
                    extended: false,
                })
            }
            (Command::Ehlo(name), _) => {
                out.push(Action::Reply(reply::ehlo(
                    &self.policy.hostname,
                    &self.extensions(),
                )));
                State::Ready(Helo {
                    name,
                    extended: true,
                })
            }
            (Command::Mail { from, params }, State::Ready(h)) => {
                let own = |u: &str, m: &Mailbox| m.to_string().eq_ignore_ascii_case(u);
                match (&self.user, from) {
                    (Some(u), Some(m)) if self.policy.sender_login_check && !own(u, &m) => {
                        out.push(Action::LookupSender(m, params));
                        State::Ready(h)
                    }
                    (_, from) => {
                        out.push(Action::Reply(reply::SENDER_OK));
                        State::Mail(h, Transaction::new(from, params))
                    }
                }
            }
            (Command::Rcpt { to, params }, State::Mail(h, mut tx)) => {
                match to {
                    // RFC 5321 4.5.1: postmaster is always accepted.
                    ForwardPath::Postmaster => {
                        let pm = self.policy.postmaster.clone();
                        tx.add(pm, &params);
                        out.push(Action::Reply(reply::RECIPIENT_OK));
                    }
                    ForwardPath::Mailbox(m) => out.push(Action::LookupRecipient(m, params)),
                }
                State::Mail(h, tx)
            }
            (Command::Data, State::Mail(h, tx)) => {
                out.push(Action::Reply(reply::START_DATA));
                out.push(Action::ReceiveData);
                State::Data(h, tx)
            }
            (Command::Bdat { size, last }, state) => self.bdat(size, last, state, out),
            (Command::Burl { url, last }, State::Mail(h, tx) | State::Chunks(h, tx)) => {
                match tx.failed.clone() {
                    Some(r) => {
                        let h = if last {
                            State::Ready(h)
                        } else {
                            State::Chunks(h, tx)
                        };
                        self.state = h;
                        self.refuse(out, "BURL", r, "");
                        std::mem::replace(&mut self.state, State::Closed)
                    }
                    None => {
                        out.push(Action::FetchUrl { url, last });
                        State::Chunks(h, tx)
                    }
                }
            }
            (Command::Rset, state) => {
                out.push(Action::Reply(reply::RESET_OK));
                match state {
                    State::Fresh => State::Fresh,
                    other => match helo_of(other) {
                        Some(h) => State::Ready(h),
                        None => State::Fresh,
                    },
                }
            }
            (Command::Quit, _) => {
                out.push(Action::Reply(reply::BYE));
                out.push(Action::Close);
                State::Closed
            }
            (Command::Noop, state) => {
                out.push(Action::Reply(reply::NOOP_OK));
                state
            }
            (Command::Help, state) => {
                out.push(Action::Reply(reply::HELP));
                state
            }
            (Command::Vrfy, state) => {
                out.push(Action::Reply(reply::VRFY_CANNOT));
                state
            }
            // RFC 3207 4.2: after the handshake the client starts over with EHLO.
            (Command::StartTls, _) => {
                out.push(Action::Reply(reply::READY_FOR_TLS));
                out.push(Action::StartTls);
                State::Fresh
            }
            (Command::Auth { mechanism, initial }, State::Ready(h)) => {
                self.auth_start(h, mechanism, initial, out)
            }
            (_, state) => {
                // Invariant: check() let through only the pairs above; answer
                // politely rather than panic if that ever changes.
                out.push(Action::Reply(reply::BAD_SEQUENCE));
                state
            }
        };
    }

    /// A SASL response line.
    pub fn auth_line(&mut self, line: &str) -> Vec<Action> {
        let mut out = Vec::new();
        let state = std::mem::replace(&mut self.state, State::Closed);
        let State::Auth(h, step) = state else {
            self.state = state;
            return out;
        };
        let fail = |s: &mut Session, h: Helo, e: SaslError, out: &mut Vec<Action>| {
            s.state = State::Ready(h);
            let r = match e {
                SaslError::Cancelled => reply::AUTH_CANCELLED,
                SaslError::BadBase64 | SaslError::Malformed => reply::BAD_BASE64,
                // RFC 4616 2: an authzid the server does not allow fails the exchange.
                SaslError::OtherIdentity => reply::AUTH_FAILED,
            };
            s.refuse(out, "AUTH", r, "");
        };
        match step {
            AuthStep::Plain => match sasl::plain_response(line.as_bytes()) {
                Ok(c) => {
                    out.push(Action::Login(c));
                    self.state = State::Auth(h, AuthStep::Checking);
                }
                Err(e) => fail(self, h, e, &mut out),
            },
            AuthStep::LoginUser => match sasl::login_response(line.as_bytes()) {
                Ok(u) if !u.is_empty() => {
                    out.push(Action::Reply(reply::challenge(PASSWORD_PROMPT)));
                    let u = u.as_str().unwrap_or_default().to_string();
                    self.state = State::Auth(h, AuthStep::LoginPassword(u));
                }
                Ok(_) => fail(self, h, SaslError::Malformed, &mut out),
                Err(e) => fail(self, h, e, &mut out),
            },
            AuthStep::LoginPassword(user) => match sasl::login_response(line.as_bytes()) {
                Ok(password) => {
                    out.push(Action::Login(Credentials { user, password }));
                    self.state = State::Auth(h, AuthStep::Checking);
                }
                Err(e) => fail(self, h, e, &mut out),
            },
            AuthStep::Checking => self.state = State::Auth(h, AuthStep::Checking),
        }
        out
    }

    /// kmp-authd's answer to a login for `typed` (the name the client gave).
    pub fn login_result(
        &mut self,
        typed: &str,
        result: Result<AuthReply, ClientError>,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        let state = std::mem::replace(&mut self.state, State::Closed);
        let h = match state {
            State::Auth(h, _) => h,
            other => {
                self.state = other;
                return out;
            }
        };
        self.state = State::Ready(h);
        let typed = sanitize(typed);
        match result {
            Ok(AuthReply::LoginOk { user }) => {
                out.push(Action::Log(format!(
                    "{}: login: client={}, sasl_username={}",
                    self.id,
                    self.client(),
                    user.address
                )));
                self.user = Some(user.address);
                out.push(Action::Reply(reply::AUTH_OK));
            }
            Ok(AuthReply::LoginFailed {
                reason: LoginFailure::Banned,
            }) => {
                let r = reply::BANNED;
                out.push(self.log_refusal("AUTH", &r, &format!(" sasl_username={typed}")));
                out.push(Action::Reply(r));
                out.push(Action::Close);
                self.state = State::Closed;
            }
            Ok(AuthReply::LoginFailed { .. }) => {
                self.refuse(
                    &mut out,
                    "AUTH",
                    reply::AUTH_FAILED,
                    &format!(" sasl_username={typed}"),
                );
            }
            Ok(_) | Err(_) => {
                if let Err(e) = &result {
                    out.push(Action::Log(format!("{}: warning: login: {e}", self.id)));
                }
                self.refuse(&mut out, "AUTH", reply::AUTH_TEMPFAIL, "");
            }
        }
        out
    }

    /// kmp-authd's answer about a sender an authenticated user asked for.
    pub fn sender_result(
        &mut self,
        from: Mailbox,
        params: MailParams,
        result: Result<AuthReply, ClientError>,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        let user = self.user.clone().unwrap_or_default();
        let owned = match &result {
            Ok(AuthReply::Found { entry, .. }) => match entry {
                Entry::User { user: u } => u.address.eq_ignore_ascii_case(&user),
                Entry::Alias { targets, .. } => {
                    targets.iter().any(|t| t.eq_ignore_ascii_case(&user))
                }
                // A list's owners may send as the list's addresses.
                Entry::List { list, .. } => crate::lists::List::names(&list.owners, &user),
                Entry::NotFound => false,
            },
            _ => false,
        };
        let state = std::mem::replace(&mut self.state, State::Closed);
        let State::Ready(h) = state else {
            self.state = state;
            return out;
        };
        let detail = format!(" from=<{from}> sasl_username={user}");
        if owned {
            out.push(Action::Reply(reply::SENDER_OK));
            self.state = State::Mail(h, Transaction::new(Some(from), params));
        } else {
            self.state = State::Ready(h);
            let r = match result {
                Ok(AuthReply::Found { .. }) => reply::NOT_OWNER,
                _ => reply::LOCAL_ERROR,
            };
            self.refuse(&mut out, "MAIL", r, &detail);
        }
        out
    }

    /// kmp-authd's answer about a recipient.
    pub fn recipient_result(
        &mut self,
        to: Mailbox,
        params: RcptParams,
        result: Result<AuthReply, ClientError>,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        let may_relay = self.user.is_some() || self.policy.may_relay(self.ip);
        let verdict = match &result {
            Ok(AuthReply::Found {
                entry,
                local_domain,
            }) => match entry {
                Entry::User { user } if !user.active => Err(reply::MAILBOX_DISABLED),
                Entry::User { .. } | Entry::Alias { .. } | Entry::List { .. } => Ok(()),
                Entry::NotFound if *local_domain => Err(reply::USER_UNKNOWN),
                Entry::NotFound if may_relay => Ok(()),
                Entry::NotFound => Err(reply::RELAY_DENIED),
            },
            Ok(_) | Err(_) => Err(reply::LOOKUP_FAILED),
        };
        if let Err(e) = &result {
            out.push(Action::Log(format!("{}: warning: lookup: {e}", self.id)));
        }
        let detail = format!(" to=<{to}>");
        let ceiling = match &result {
            Ok(AuthReply::Found {
                entry: Entry::User { user },
                ..
            }) => user.max_message_bytes,
            _ => None,
        };
        // RFC 1870 6.1: a declared SIZE over what the recipient's domain
        // takes is refused at RCPT with 552.
        let verdict = match (&verdict, &self.state, ceiling) {
            (Ok(()), State::Mail(_, tx), Some(c)) if tx.params.size.is_some_and(|s| s > c) => {
                Err(reply::MESSAGE_TOO_BIG)
            }
            _ => verdict,
        };
        match (verdict, &mut self.state) {
            (Ok(()), State::Mail(_, tx)) => {
                if let Some(c) = ceiling {
                    tx.ceiling = Some(tx.ceiling.map_or(c, |t| t.min(c)));
                }
                tx.add(to.to_string(), &params);
                out.push(Action::Reply(reply::RECIPIENT_OK));
            }
            (Err(r), State::Mail(..)) => self.refuse(&mut out, "RCPT", r, &detail),
            _ => {}
        }
        out
    }

    /// The HELO/EHLO name given, if any (for the connection checks).
    pub fn helo_name(&self) -> Option<&str> {
        match &self.state {
            State::Ready(h)
            | State::Mail(h, _)
            | State::Data(h, _)
            | State::Chunks(h, _)
            | State::Queueing(h, _)
            | State::Auth(h, _) => Some(&h.name),
            _ => None,
        }
    }

    /// The sender of the transaction ("" for the null sender), and how many
    /// recipients it has so far.
    pub fn transaction(&self) -> Option<(String, usize)> {
        match &self.state {
            State::Mail(_, tx)
            | State::Data(_, tx)
            | State::Chunks(_, tx)
            | State::Queueing(_, tx) => Some((addr(&tx.sender), tx.recipients.len())),
            _ => None,
        }
    }

    /// A recipient refused by the server's own checks (block lists,
    /// DNSBL, greylisting: lib/antispam/scan), not by the lookup.
    pub fn recipient_refused(&mut self, to: Mailbox, r: Reply, detail: &str) -> Vec<Action> {
        let mut out = Vec::new();
        if matches!(self.state, State::Mail(..)) {
            let detail = format!(
                " from=<{}> to=<{to}>{detail}",
                self.transaction().map(|t| t.0).unwrap_or_default()
            );
            self.refuse(&mut out, "RCPT", r, &detail);
        }
        out
    }

    /// The content checks refused the complete message (spam, a virus, a
    /// scanner down under `tempfail`): nothing is queued.
    pub fn content_refused(&mut self, r: Reply, detail: &str) -> Vec<Action> {
        let mut out = Vec::new();
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Queueing(h, tx) => {
                out.push(Action::Abort);
                let detail = format!(" from=<{}> {detail}", addr(&tx.sender));
                self.state = State::Ready(h);
                self.refuse(&mut out, "DATA", r, &detail);
            }
            other => self.state = other,
        }
        out
    }

    /// DATA's end-of-data line arrived; `summary` says what the body was.
    pub fn message_end(&mut self, summary: Summary) -> Vec<Action> {
        let mut out = Vec::new();
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Data(h, tx) => self.complete(h, tx, summary, &mut out),
            other => self.state = other,
        }
        out
    }

    /// A BDAT chunk of `size` octets was read; `summary` is the body so far
    /// (with `finish` applied when `last`).
    pub fn chunk_end(&mut self, size: u64, last: bool, summary: Summary) -> Vec<Action> {
        let mut out = Vec::new();
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Chunks(h, mut tx) => {
                tx.chunked = tx.chunked.saturating_add(size);
                if summary.too_big {
                    out.push(Action::Abort);
                    tx.failed = Some(reply::MESSAGE_TOO_BIG);
                    self.refuse(&mut out, "BDAT", reply::MESSAGE_TOO_BIG, "");
                    self.state = if last {
                        State::Ready(h)
                    } else {
                        State::Chunks(h, tx)
                    };
                } else if !last {
                    out.push(Action::Reply(reply::chunk_ok(tx.chunked)));
                    self.state = State::Chunks(h, tx);
                } else {
                    self.complete(h, tx, summary, &mut out);
                }
            }
            other => self.state = other,
        }
        out
    }

    /// A BURL URL could not be fetched: the whole transaction fails
    /// (RFC 4468 3.2: "If the URL fetch fails, the server will fail the
    /// entire transaction").
    pub fn burl_failed(&mut self, r: Reply) -> Vec<Action> {
        let mut out = Vec::new();
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Chunks(h, _) | State::Mail(h, _) => {
                out.push(Action::Abort);
                self.state = State::Ready(h);
                self.refuse(&mut out, "BURL", r, "");
            }
            other => self.state = other,
        }
        out
    }

    /// BURL's checks (RFC 4468 3): submission only, after AUTH, in a
    /// transaction with a recipient, and only a URLAUTH URL for the user
    /// who logged in ("the submit server MUST refuse the BURL command
    /// unless the userid in the URL's <access> token matches the submit
    /// client's authorization identity", 3.3). Nothing is fetched before
    /// all of this holds.
    fn check_burl(&self, url: &str) -> Result<(), Reply> {
        if self.listener == Listener::Mx {
            return Err(reply::UNKNOWN_COMMAND);
        }
        let Some(user) = &self.user else {
            return Err(reply::AUTH_REQUIRED);
        };
        match &self.state {
            State::Mail(_, tx) if tx.recipients.is_empty() => {
                return Err(reply::NO_VALID_RECIPIENTS)
            }
            State::Mail(..) | State::Chunks(..) => {}
            State::Fresh => return Err(reply::NEED_HELO),
            _ => return Err(reply::NEED_MAIL),
        }
        let Ok(u) = crate::proto::imap::url::parse(url.as_bytes()) else {
            return Err(reply::BURL_TRUST_REQUIRED);
        };
        use crate::proto::imap::url::Access;
        match u.urlauth.map(|a| a.access) {
            Some(Access::Submit(who)) if who.eq_ignore_ascii_case(user) => Ok(()),
            Some(_) => Err(reply::BURL_NOT_AUTHORISED),
            // A plain IMAP URL would need the user's own IMAP login.
            None => Err(reply::BURL_TRUST_REQUIRED),
        }
    }

    /// The queue's verdict on the message: its id, or a failure (always
    /// temporary on the wire: the fault is ours).
    pub fn queued(&mut self, result: Result<String, String>) -> Vec<Action> {
        let mut out = Vec::new();
        let (h, tx) = match std::mem::replace(&mut self.state, State::Closed) {
            State::Queueing(h, tx) => (h, tx),
            other => {
                self.state = other;
                return out;
            }
        };
        self.state = State::Ready(h);
        match result {
            Ok(qid) => {
                self.messages += 1;
                out.push(Action::Log(format!(
                    "{qid}: client={}, sasl_username={}, from=<{}>, nrcpt={}, proto={}, session={}",
                    self.client(),
                    self.user.as_deref().unwrap_or(""),
                    addr(&tx.sender),
                    tx.recipients.len(),
                    self.protocol(&tx),
                    self.id
                )));
                out.push(Action::Reply(reply::queued(&qid)));
            }
            Err(e) => {
                out.push(Action::Log(format!(
                    "{}: error: cannot queue: {e}",
                    self.id
                )));
                self.refuse(&mut out, "DATA", reply::LOCAL_ERROR, "");
            }
        }
        out
    }

    /// Whether the sender checks of `[auth]` apply to this session's mail:
    /// the MX listener, no login, not a relay network (they are us).
    pub fn auth_checked(&self) -> bool {
        self.listener == Listener::Mx
            && self.user.is_none()
            && !self.policy.may_relay(self.ip)
            && self
                .policy
                .auth
                .as_ref()
                .is_some_and(|c| c.applies(self.ip))
    }

    /// The HELO/EHLO name of the session, once given.
    pub fn helo(&self) -> Option<&str> {
        match &self.state {
            State::Ready(h)
            | State::Mail(h, _)
            | State::Data(h, _)
            | State::Chunks(h, _)
            | State::Queueing(h, _)
            | State::Auth(h, _) => Some(&h.name),
            _ => None,
        }
    }

    /// The sender checks refused the message waiting in the queue file (a
    /// DMARC reject, an SPF fail, a temporary DNS error): `r` instead of
    /// the 250, and nothing is queued.
    pub fn refused_by_checks(&mut self, r: Reply, detail: &str) -> Vec<Action> {
        let mut out = Vec::new();
        let (h, tx) = match std::mem::replace(&mut self.state, State::Closed) {
            State::Queueing(h, tx) => (h, tx),
            other => {
                self.state = other;
                return out;
            }
        };
        self.state = State::Ready(h);
        let detail = format!(" from=<{}>{detail}", addr(&tx.sender));
        self.refuse(&mut out, "DATA", r, &detail);
        out
    }

    /// The TLS handshake after STARTTLS succeeded.
    pub fn tls_started(&mut self, info: TlsInfo) {
        self.tls = Some(info);
        self.state = State::Fresh;
    }

    /// The client took too long.
    pub fn timeout(&mut self) -> Vec<Action> {
        self.state = State::Closed;
        vec![
            Action::Abort,
            Action::Log(format!("{}: timeout from {}", self.id, self.client())),
            Action::Reply(reply::TIMEOUT),
            Action::Close,
        ]
    }

    /// The server is stopping (RFC 5321 3.8: 421, then close).
    pub fn shutdown(&mut self) -> Vec<Action> {
        self.state = State::Closed;
        vec![
            Action::Abort,
            Action::Reply(reply::SHUTTING_DOWN),
            Action::Close,
        ]
    }

    /// The Received header (RFC 5321 4.4) for the message now arriving,
    /// ending in LF as the queue stores lines. `date` is RFC 5322 text.
    pub fn received_header(&self, id: &str, date: &str) -> String {
        let (h, tx) = match &self.state {
            State::Data(h, tx) | State::Chunks(h, tx) | State::Mail(h, tx) => (h, Some(tx)),
            State::Ready(h) | State::Auth(h, _) | State::Queueing(h, _) => (h, None),
            _ => return String::new(),
        };
        let mut s = format!(
            "Received: from {} (unknown [{}])\n",
            sanitize(&h.name),
            crate::net::literal(self.ip)
        );
        if let Some(t) = &self.tls {
            s.push_str(&format!(
                "\t(using {} with cipher {})\n",
                t.version, t.cipher
            ));
        }
        if let Some(u) = &self.user {
            s.push_str(&format!("\t(authenticated sender: {u})\n"));
        }
        let proto = tx.map(|t| self.protocol(t)).unwrap_or("ESMTP");
        s.push_str(&format!(
            "\tby {} (Kmpromail) with {} id {}",
            self.policy.hostname, proto, id
        ));
        if let Some([r]) = tx.map(|t| t.recipients.as_slice()) {
            s.push_str(&format!("\n\tfor <{}>", r.address));
        }
        s.push_str(&format!("; {date}\n"));
        s
    }

    /// The largest message accepted (the body decoder's limit).
    pub fn max_message_size(&self) -> u64 {
        self.policy.max_message_size
    }

    fn bdat(&mut self, size: u64, last: bool, state: State, out: &mut Vec<Action>) -> State {
        let discard = |s: &mut Session, out: &mut Vec<Action>, r: Reply| {
            out.push(Action::ReceiveChunk {
                size,
                last,
                keep: false,
            });
            s.refuse(out, "BDAT", r, "");
        };
        match state {
            State::Mail(h, tx) if tx.recipients.is_empty() => {
                discard(self, out, reply::NO_VALID_RECIPIENTS);
                State::Mail(h, tx)
            }
            State::Mail(h, tx) | State::Chunks(h, tx) => match tx.failed.clone() {
                Some(r) => {
                    discard(self, out, r);
                    if last {
                        State::Ready(h)
                    } else {
                        State::Chunks(h, tx)
                    }
                }
                None => {
                    out.push(Action::ReceiveChunk {
                        size,
                        last,
                        keep: true,
                    });
                    State::Chunks(h, tx)
                }
            },
            State::Fresh => {
                discard(self, out, reply::NEED_HELO);
                State::Fresh
            }
            other => {
                discard(self, out, reply::NEED_MAIL);
                other
            }
        }
    }

    fn complete(&mut self, h: Helo, tx: Transaction, summary: Summary, out: &mut Vec<Action>) {
        let refusal = if summary.too_big || tx.ceiling.is_some_and(|c| summary.size > c) {
            Some(reply::MESSAGE_TOO_BIG)
        } else if summary.hops > self.policy.max_hops {
            Some(reply::TOO_MANY_HOPS)
        } else {
            summary.problem.map(|p| match p {
                Problem::BareLineEnd => reply::BARE_LINE_END,
                Problem::Nul => reply::NUL_IN_MESSAGE,
                Problem::LongLine => reply::LONG_LINE_IN_MESSAGE,
            })
        };
        if let Some(r) = refusal {
            out.push(Action::Abort);
            let detail = format!(" from=<{}> size={}", addr(&tx.sender), summary.size);
            self.state = State::Ready(h);
            self.refuse(out, "DATA", r, &detail);
            return;
        }
        let mut env = Envelope::new(addr(&tx.sender), tx.recipients.clone());
        env.ret = tx.params.ret;
        env.envid = tx.params.envid.clone();
        env.smtputf8 = tx.params.smtputf8;
        env.body_8bit = tx.params.body == Some(Body::EightBitMime);
        env.origin = format!("smtp {} ({})", self.ip, sanitize(&h.name));
        env.auth_user = self.user.clone();
        out.push(Action::Queue(Box::new(env)));
        self.state = State::Queueing(h, tx);
    }

    fn auth_start(
        &mut self,
        h: Helo,
        mechanism: Mechanism,
        initial: Option<String>,
        out: &mut Vec<Action>,
    ) -> State {
        match (mechanism, initial) {
            (Mechanism::Plain, None) => {
                out.push(Action::Reply(reply::challenge("")));
                State::Auth(h, AuthStep::Plain)
            }
            (Mechanism::Plain, Some(i)) => {
                self.state = State::Auth(h, AuthStep::Plain);
                out.extend(self.auth_line(&i));
                std::mem::replace(&mut self.state, State::Closed)
            }
            (Mechanism::Login, None) => {
                out.push(Action::Reply(reply::challenge(USER_PROMPT)));
                State::Auth(h, AuthStep::LoginUser)
            }
            (Mechanism::Login, Some(i)) => {
                self.state = State::Auth(h, AuthStep::LoginUser);
                out.extend(self.auth_line(&i));
                std::mem::replace(&mut self.state, State::Closed)
            }
            (Mechanism::Other(_), _) => {
                out.push(Action::Reply(reply::UNKNOWN_MECHANISM));
                State::Ready(h)
            }
        }
    }

    /// The EHLO keywords, as RFC 5321 4.1.1.1 lists them after the name.
    fn extensions(&self) -> Vec<String> {
        let mut e = vec![
            "PIPELINING".to_string(),
            format!("SIZE {}", self.policy.max_message_size),
        ];
        if self.policy.tls && self.tls.is_none() {
            e.push("STARTTLS".into());
        }
        if self.auth_offered() && self.user.is_none() {
            e.push("AUTH PLAIN LOGIN".into());
        }
        for k in [
            "ENHANCEDSTATUSCODES",
            "8BITMIME",
            "DSN",
            "SMTPUTF8",
            "CHUNKING",
        ] {
            e.push(k.into());
        }
        // RFC 4468 3.1: submission only; "imap" once the user is known,
        // since only URLAUTH URLs for that user are taken.
        if self.listener != Listener::Mx && self.user.is_some() {
            e.push("BURL imap".into());
        }
        e
    }

    /// RFC 4954 4: AUTH only under TLS unless configured otherwise.
    fn auth_offered(&self) -> bool {
        self.tls.is_some() || self.policy.auth_plaintext
    }

    /// RFC 3848 / RFC 6531 protocol names for the Received header.
    fn protocol(&self, tx: &Transaction) -> &'static str {
        let ehlo = match &self.state {
            State::Ready(h)
            | State::Mail(h, _)
            | State::Data(h, _)
            | State::Chunks(h, _)
            | State::Queueing(h, _)
            | State::Auth(h, _) => h.extended,
            _ => true,
        };
        match (
            ehlo,
            tx.params.smtputf8,
            self.tls.is_some(),
            self.user.is_some(),
        ) {
            (false, _, _, _) => "SMTP",
            (true, false, false, false) => "ESMTP",
            (true, false, true, false) => "ESMTPS",
            (true, false, false, true) => "ESMTPA",
            (true, false, true, true) => "ESMTPSA",
            (true, true, false, false) => "UTF8SMTP",
            (true, true, true, false) => "UTF8SMTPS",
            (true, true, false, true) => "UTF8SMTPA",
            (true, true, true, true) => "UTF8SMTPSA",
        }
    }

    /// Sends an error reply, logs it, and counts it; past the limit, closes.
    fn refuse(&mut self, out: &mut Vec<Action>, verb: &str, r: Reply, detail: &str) {
        out.push(self.log_refusal(verb, &r, detail));
        let counts = r.code >= 500;
        // RFC 5321 4.2.2: 421 means the server closes the channel.
        let closes = r.code == 421;
        out.push(Action::Reply(r));
        if closes {
            out.push(Action::Abort);
            out.push(Action::Close);
            self.state = State::Closed;
            return;
        }
        if counts {
            self.errors += 1;
        }
        if self.errors >= self.policy.max_bad_commands && !matches!(self.state, State::Closed) {
            out.push(Action::Abort);
            out.push(Action::Log(format!(
                "{}: too many errors from {}",
                self.id,
                self.client()
            )));
            out.push(Action::Reply(reply::TOO_MANY_ERRORS));
            out.push(Action::Report("too many SMTP errors"));
            out.push(Action::Close);
            self.state = State::Closed;
        }
    }

    fn log_refusal(&self, verb: &str, r: &Reply, detail: &str) -> Action {
        let helo = match &self.state {
            State::Ready(h)
            | State::Mail(h, _)
            | State::Data(h, _)
            | State::Chunks(h, _)
            | State::Queueing(h, _)
            | State::Auth(h, _) => format!(" helo=<{}>", sanitize(&h.name)),
            _ => String::new(),
        };
        Action::Log(format!(
            "{}: reject: {} from {}: {};{}{}",
            self.id,
            sanitize(verb),
            self.client(),
            r.summary(),
            detail,
            helo
        ))
    }
}

/// RFC 4954's LOGIN prompts, base64: "Username:" and "Password:".
const USER_PROMPT: &str = "VXNlcm5hbWU6";
const PASSWORD_PROMPT: &str = "UGFzc3dvcmQ6";

impl Transaction {
    fn new(sender: Option<Mailbox>, params: MailParams) -> Transaction {
        Transaction {
            sender,
            params,
            recipients: Vec::new(),
            chunked: 0,
            failed: None,
            ceiling: None,
        }
    }

    /// Adds a recipient once (a repeated RCPT is accepted but not doubled).
    fn add(&mut self, address: String, params: &RcptParams) {
        if self.recipients.iter().any(|r| r.address == address) {
            return;
        }
        let mut r = Recipient::new(address);
        if let Some(n) = params.notify {
            r.notify = n;
            r.notify_given = true;
        }
        r.orcpt = params.orcpt.clone();
        self.recipients.push(r);
    }
}

fn helo_of(s: State) -> Option<Helo> {
    match s {
        State::Ready(h)
        | State::Mail(h, _)
        | State::Data(h, _)
        | State::Chunks(h, _)
        | State::Queueing(h, _)
        | State::Auth(h, _) => Some(h),
        State::Fresh | State::Refused | State::Closed => None,
    }
}

fn addr(m: &Option<Mailbox>) -> String {
    m.as_ref().map(|m| m.to_string()).unwrap_or_default()
}

/// Text from the client made safe for one log line or header line.
fn sanitize(s: &str) -> String {
    s.chars()
        .take(255)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests;
