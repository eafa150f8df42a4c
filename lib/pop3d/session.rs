//! One POP3 session as a state machine (RFC 1939 section 3): AUTHORIZATION,
//! TRANSACTION and UPDATE, each an enum variant carrying only the data valid
//! in it. Every command is checked (sequencing and policy, citing the RFC)
//! and then carried out as a list of [`Action`]s the server performs: the
//! session itself touches no socket, file or clock, so it is tested without
//! either.

use std::borrow::Cow;

use crate::ipc::authd::{LoginFailure, UserInfo};
use crate::proto::pop3::reply;
use crate::proto::pop3::{Command, MsgNum, ParseError, SaslData, Secret};
use crate::proto::sasl::{self, SaslError};

/// What the server has decided about this connection before it starts.
#[derive(Debug, Clone)]
pub struct Policy {
    /// A certificate is configured: STLS can be offered on a plain connection.
    pub tls_available: bool,
    /// The connection is TLS already (port 995).
    pub tls_active: bool,
    /// Plain-text logins are allowed without TLS: the peer is on loopback,
    /// or `pop3d.allow_plaintext` is set.
    pub plaintext_without_tls: bool,
    /// `pop3d.expire`, announced in CAPA when set.
    pub expire: Option<String>,
    /// `pop3d.login_delay` in seconds, announced in CAPA when not 0.
    pub login_delay: u64,
    /// Bad commands before the connection is closed.
    pub max_errors: u32,
}

/// One message of the maildrop as POP3 shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInfo {
    /// RFC 1939's size: octets with CRLF line ends, before dot-stuffing.
    pub size: u64,
    /// The unique-id listing string (RFC 1939 section 7: 1 to 70 characters
    /// in 0x21..0x7E).
    pub uidl: String,
}

/// kmp-authd's answer to a login, as the server hands it over.
#[derive(Debug)]
pub enum LoginOutcome {
    Ok {
        user: Box<UserInfo>,
        /// Seconds since this user's last POP3 login through this server, if known.
        since_last_login: Option<u64>,
    },
    Failed(LoginFailure),
    /// kmp-authd is down or busy.
    Temporary,
}

/// Why a maildrop could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenFailure {
    /// Another session holds its lock.
    InUse,
    /// Anything else (I/O): try again later.
    Temporary,
}

/// What the server must do, in order.
#[derive(Debug)]
pub enum Action {
    /// Send this text.
    Reply(Cow<'static, str>),
    /// Send message `index` (from 0): the `+OK` line and the message with
    /// CRLF and dot-stuffing, all of it or its top for TOP.
    SendMessage {
        index: usize,
        size: u64,
        top: Option<u64>,
    },
    /// Flush, then start TLS on the connection and call [`Session::tls_started`].
    StartTls,
    /// Ask kmp-authd, then call [`Session::authenticated`].
    Authenticate { user: String, password: Secret },
    /// Lock and list the user's maildrop, then call [`Session::maildrop_opened`].
    OpenMaildrop { user: UserInfo },
    /// RFC 1939 section 6: remove these messages (indexes from 0), then call
    /// [`Session::updated`].
    Expunge { indexes: Vec<usize> },
    /// Tell kmp-authd this client keeps sending garbage (counts toward a ban).
    ReportAbuse,
    /// Close the connection (after sending what is queued).
    Close,
}

/// The state of the session (RFC 1939 section 3).
#[derive(Debug)]
pub enum State {
    /// Before login. `user` is the name a USER command gave; `sasl` is set
    /// while an AUTH exchange waits for the client's response.
    Authorization { user: Option<String>, sasl: bool },
    /// Logged in; waiting for the maildrop to be locked and listed.
    Opening { user: UserInfo },
    /// Logged in with the maildrop locked.
    Transaction { user: UserInfo, drop: Maildrop },
    /// After QUIT in TRANSACTION: deletions under way, then the end.
    Update,
    /// Nothing more to do: the connection is closing.
    Closed,
}

/// The listing taken when the maildrop was opened, and what is marked deleted.
#[derive(Debug)]
pub struct Maildrop {
    messages: Vec<MessageInfo>,
    deleted: Vec<bool>,
}

impl Maildrop {
    pub fn new(messages: Vec<MessageInfo>) -> Maildrop {
        let deleted = vec![false; messages.len()];
        Maildrop { messages, deleted }
    }

    /// Messages not marked deleted, and their total size.
    fn stat(&self) -> (usize, u64) {
        self.live()
            .fold((0, 0), |(n, s), (_, m)| (n + 1, s + m.size))
    }

    fn live(&self) -> impl Iterator<Item = (usize, &MessageInfo)> {
        self.messages
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.deleted[*i])
    }

    /// RFC 1939 section 5: a message number "may not refer to a message
    /// marked as deleted".
    fn get(&self, n: MsgNum) -> Result<(usize, &MessageInfo), &'static str> {
        let i = n.index();
        match self.messages.get(i) {
            None => Err(reply::NO_SUCH_MESSAGE),
            Some(_) if self.deleted[i] => Err(reply::MESSAGE_DELETED),
            Some(m) => Ok((i, m)),
        }
    }
}

/// One session.
#[derive(Debug)]
pub struct Session {
    policy: Policy,
    tls_active: bool,
    state: State,
    errors: u32,
}

impl Session {
    pub fn new(policy: Policy) -> Session {
        let tls_active = policy.tls_active;
        Session {
            policy,
            tls_active,
            state: State::Authorization {
                user: None,
                sasl: false,
            },
            errors: 0,
        }
    }

    /// The greeting (RFC 1939 section 4). No APOP timestamp: APOP is not offered.
    pub fn greeting(&self) -> Action {
        Action::Reply(reply::GREETING.into())
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// The logged-in user, if any.
    pub fn user(&self) -> Option<&UserInfo> {
        match &self.state {
            State::Opening { user } | State::Transaction { user, .. } => Some(user),
            _ => None,
        }
    }

    /// Whether the next line is a SASL response rather than a command.
    pub fn wants_sasl(&self) -> bool {
        matches!(self.state, State::Authorization { sasl: true, .. })
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Whether plain-text passwords may be sent now (RFC 2595 section 2.1:
    /// "clients and servers SHOULD implement a configurable option to
    /// prohibit plain-text passwords" on unprotected connections).
    fn plaintext_ok(&self) -> bool {
        self.tls_active || self.policy.plaintext_without_tls
    }

    /// One command line, or the decoder's error for it.
    pub fn command(&mut self, input: Result<Command, ParseError>) -> Vec<Action> {
        let cmd = match input {
            Ok(c) => c,
            Err(e) => {
                let text = match e {
                    ParseError::LineTooLong => reply::LINE_TOO_LONG.into(),
                    ParseError::Empty => reply::EMPTY.into(),
                    ParseError::BadVerb => reply::BAD_VERB.into(),
                    ParseError::BadArguments { .. } | ParseError::BadBase64 => {
                        reply::bad_arguments(&e.to_string()).into()
                    }
                };
                return self.error(text);
            }
        };
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Authorization { user, .. } => self.authorization(user, cmd),
            State::Transaction { user, drop } => self.transaction(user, drop, cmd),
            // The server runs no command while it waits for an answer or ends.
            s @ (State::Opening { .. } | State::Update | State::Closed) => {
                self.state = s;
                Vec::new()
            }
        }
    }

    /// The client's line during an AUTH exchange (RFC 5034 section 4).
    pub fn sasl_response(&mut self, input: Result<SaslData, ParseError>) -> Vec<Action> {
        self.state = State::Authorization {
            user: None,
            sasl: false,
        };
        match input {
            Ok(data) => self.plain(data),
            Err(ParseError::LineTooLong) => self.error(reply::LINE_TOO_LONG.into()),
            // "If the server cannot base64 decode any client response, it MUST
            // reject the AUTH command with a -ERR response."
            Err(_) => self.error(reply::AUTH_BAD_BASE64.into()),
        }
    }

    /// kmp-authd's answer to an [`Action::Authenticate`].
    pub fn authenticated(&mut self, outcome: LoginOutcome) -> Vec<Action> {
        let idle = State::Authorization {
            user: None,
            sasl: false,
        };
        match outcome {
            LoginOutcome::Ok {
                user,
                since_last_login,
            } => {
                // RFC 2449 section 6.5: "the server MAY reject an
                // authentication attempt that occurs too soon".
                let delay = self.login_delay(Some(&user));
                if delay > 0 && since_last_login.is_some_and(|s| s < delay) {
                    self.state = idle;
                    return vec![Action::Reply(reply::LOGIN_DELAY.into())];
                }
                self.state = State::Opening {
                    user: (*user).clone(),
                };
                vec![Action::OpenMaildrop { user: *user }]
            }
            LoginOutcome::Failed(LoginFailure::Banned) => {
                self.state = State::Closed;
                vec![Action::Reply(reply::AUTH_BANNED.into()), Action::Close]
            }
            LoginOutcome::Failed(LoginFailure::Disabled) => {
                self.state = idle;
                vec![Action::Reply(reply::AUTH_DISABLED.into())]
            }
            LoginOutcome::Failed(LoginFailure::BadCredentials) => {
                self.state = idle;
                // Failed logins are counted by kmp-authd; here they also count
                // as bad commands, so a guesser is cut off.
                self.error(reply::AUTH_FAILED.into())
            }
            LoginOutcome::Temporary => {
                self.state = idle;
                vec![Action::Reply(reply::AUTH_TEMP.into())]
            }
        }
    }

    /// The answer to an [`Action::OpenMaildrop`].
    pub fn maildrop_opened(&mut self, r: Result<Vec<MessageInfo>, OpenFailure>) -> Vec<Action> {
        let State::Opening { user } = std::mem::replace(&mut self.state, State::Closed) else {
            // Invariant: the server calls this only after OpenMaildrop.
            panic!("maildrop_opened outside the Opening state");
        };
        match r {
            Ok(messages) => {
                let drop = Maildrop::new(messages);
                let (n, size) = drop.stat();
                self.state = State::Transaction { user, drop };
                vec![Action::Reply(reply::maildrop(n, size).into())]
            }
            Err(f) => {
                self.state = State::Authorization {
                    user: None,
                    sasl: false,
                };
                let text = match f {
                    // RFC 2449 section 8.1.1: "[IN-USE] ... the maildrop is
                    // already locked by another session".
                    OpenFailure::InUse => reply::IN_USE,
                    OpenFailure::Temporary => reply::MAILDROP_TEMP,
                };
                vec![Action::Reply(text.into())]
            }
        }
    }

    /// The answer to an [`Action::StartTls`]: RFC 2595 section 4, "the
    /// server MUST discard any knowledge obtained from the client, such as
    /// the argument to the USER command, which was not obtained from the TLS
    /// negotiation itself".
    pub fn tls_started(&mut self) {
        self.tls_active = true;
        self.state = State::Authorization {
            user: None,
            sasl: false,
        };
    }

    /// The answer to an [`Action::Expunge`]: how many were removed, and
    /// whether all were.
    pub fn updated(&mut self, removed: usize, left: usize, all: bool) -> Vec<Action> {
        self.state = State::Closed;
        let text: Cow<'static, str> = if all {
            reply::bye_update(removed, left).into()
        } else {
            // RFC 1939 section 6: "-ERR some deleted messages not removed".
            reply::UPDATE_FAILED.into()
        };
        vec![Action::Reply(text), Action::Close]
    }

    fn authorization(&mut self, user: Option<String>, cmd: Command) -> Vec<Action> {
        let idle = |user| State::Authorization { user, sasl: false };
        self.state = idle(None);
        match cmd {
            Command::User(name) => {
                if !self.plaintext_ok() {
                    return self.error(reply::PLAINTEXT_REFUSED.into());
                }
                self.state = idle(Some(name));
                vec![Action::Reply(reply::USER_OK.into())]
            }
            Command::Pass(password) => match user {
                None => self.error(reply::PASS_WITHOUT_USER.into()),
                Some(_) if !self.plaintext_ok() => self.error(reply::PLAINTEXT_REFUSED.into()),
                Some(user) => vec![Action::Authenticate { user, password }],
            },
            Command::Auth { mechanism, initial } => {
                self.state = idle(user);
                match mechanism.as_deref() {
                    None => vec![Action::Reply(reply::MECHANISMS.into())],
                    Some("PLAIN") if !self.plaintext_ok() => {
                        self.error(reply::PLAINTEXT_REFUSED.into())
                    }
                    Some("PLAIN") => match initial {
                        Some(data) => {
                            self.state = idle(None);
                            self.plain(data)
                        }
                        None => {
                            self.state = State::Authorization {
                                user: None,
                                sasl: true,
                            };
                            vec![Action::Reply(reply::SASL_CONTINUE.into())]
                        }
                    },
                    Some(_) => self.error(reply::AUTH_UNKNOWN_MECH.into()),
                }
            }
            Command::Stls => {
                self.state = idle(user);
                if self.tls_active {
                    self.error(reply::STLS_ACTIVE.into())
                } else if !self.policy.tls_available {
                    self.error(reply::STLS_UNAVAILABLE.into())
                } else {
                    vec![Action::Reply(reply::STLS_BEGIN.into()), Action::StartTls]
                }
            }
            Command::Capa => {
                self.state = idle(user);
                vec![Action::Reply(self.capabilities(None).into())]
            }
            Command::Quit => {
                // RFC 1939 section 6: QUIT in AUTHORIZATION does not enter UPDATE.
                self.state = State::Closed;
                vec![Action::Reply(reply::BYE.into()), Action::Close]
            }
            Command::Apop => {
                self.state = idle(user);
                self.error(reply::APOP_REFUSED.into())
            }
            Command::Unknown(_) => {
                self.state = idle(user);
                self.error(reply::UNKNOWN.into())
            }
            Command::Stat
            | Command::List(_)
            | Command::Retr(_)
            | Command::Dele(_)
            | Command::Noop
            | Command::Rset
            | Command::Top(..)
            | Command::Uidl(_) => {
                self.state = idle(user);
                self.error(reply::NOT_LOGGED_IN.into())
            }
        }
    }

    /// A PLAIN response, initial or after the continuation.
    fn plain(&mut self, data: SaslData) -> Vec<Action> {
        let bytes = match data {
            // RFC 5034 section 4: "If the client wishes to cancel the
            // authentication exchange, it issues a line with a single "*".
            // If the server receives such a response, it MUST reject the AUTH
            // command by sending an -ERR reply."
            SaslData::Cancel => return vec![Action::Reply(reply::AUTH_CANCELLED.into())],
            SaslData::Data(b) => b,
        };
        match sasl::decode_plain(bytes.as_bytes()) {
            Ok(p) => vec![Action::Authenticate {
                user: p.user,
                password: p.password,
            }],
            Err(SaslError::OtherIdentity) => self.error(reply::AUTH_OTHER_IDENTITY.into()),
            Err(_) => self.error(reply::AUTH_BAD_PLAIN.into()),
        }
    }

    fn transaction(&mut self, user: UserInfo, mut drop: Maildrop, cmd: Command) -> Vec<Action> {
        let mut out = Vec::new();
        let mut err: Option<Cow<'static, str>> = None;
        match cmd {
            Command::Stat => {
                let (n, size) = drop.stat();
                out.push(Action::Reply(reply::stat(n, size).into()));
            }
            Command::List(None) => {
                let (n, size) = drop.stat();
                let mut text = reply::list_header(n, size);
                for (i, m) in drop.live() {
                    text.push_str(&reply::scan_line(i + 1, m.size));
                }
                text.push_str(".\r\n");
                out.push(Action::Reply(text.into()));
            }
            Command::List(Some(n)) => match drop.get(n) {
                Ok((i, m)) => out.push(Action::Reply(
                    format!("+OK {}", reply::scan_line(i + 1, m.size)).into(),
                )),
                Err(e) => err = Some(e.into()),
            },
            Command::Uidl(None) => {
                let mut text = String::from(reply::OK);
                for (i, m) in drop.live() {
                    text.push_str(&reply::uidl_line(i + 1, &m.uidl));
                }
                text.push_str(".\r\n");
                out.push(Action::Reply(text.into()));
            }
            Command::Uidl(Some(n)) => match drop.get(n) {
                Ok((i, m)) => out.push(Action::Reply(
                    format!("+OK {}", reply::uidl_line(i + 1, &m.uidl)).into(),
                )),
                Err(e) => err = Some(e.into()),
            },
            Command::Retr(n) => match drop.get(n) {
                Ok((index, m)) => out.push(Action::SendMessage {
                    index,
                    size: m.size,
                    top: None,
                }),
                Err(e) => err = Some(e.into()),
            },
            Command::Top(n, lines) => match drop.get(n) {
                Ok((index, m)) => out.push(Action::SendMessage {
                    index,
                    size: m.size,
                    top: Some(lines),
                }),
                Err(e) => err = Some(e.into()),
            },
            Command::Dele(n) => match drop.get(n) {
                Ok((i, _)) => {
                    drop.deleted[i] = true;
                    out.push(Action::Reply(reply::DELETED.into()));
                }
                Err(e) => err = Some(e.into()),
            },
            Command::Rset => {
                drop.deleted.iter_mut().for_each(|d| *d = false);
                let (n, size) = drop.stat();
                out.push(Action::Reply(reply::maildrop(n, size).into()));
            }
            Command::Noop => out.push(Action::Reply(reply::OK.into())),
            Command::Capa => {
                out.push(Action::Reply(self.capabilities(Some(&user)).into()));
            }
            Command::Quit => {
                // RFC 1939 section 6: "the POP3 session enters the UPDATE
                // state. The POP3 server removes all messages marked as
                // deleted from the maildrop".
                let indexes = (0..drop.messages.len())
                    .filter(|&i| drop.deleted[i])
                    .collect();
                self.state = State::Update;
                return vec![Action::Expunge { indexes }];
            }
            Command::Stls => err = Some(reply::STLS_AFTER_LOGIN.into()),
            Command::User(_) | Command::Pass(_) | Command::Auth { .. } | Command::Apop => {
                err = Some(reply::ALREADY_LOGGED_IN.into())
            }
            Command::Unknown(_) => err = Some(reply::UNKNOWN.into()),
        }
        self.state = State::Transaction { user, drop };
        match err {
            Some(e) => self.error(e),
            None => out,
        }
    }

    /// The LOGIN-DELAY in force for `user` (theirs if set, else the server's).
    fn login_delay(&self, user: Option<&UserInfo>) -> u64 {
        match user {
            Some(u) if u.login_delay > 0 => u.login_delay,
            _ => self.policy.login_delay,
        }
    }

    /// RFC 2449 section 5: the CAPA response, which differs before and after login.
    fn capabilities(&self, user: Option<&UserInfo>) -> String {
        let mut c = String::from(reply::CAPA_FOLLOWS);
        c.push_str("TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
        if user.is_none() && self.plaintext_ok() {
            c.push_str("USER\r\nSASL PLAIN\r\n");
        }
        if let Some(e) = &self.policy.expire {
            c.push_str(&format!("EXPIRE {e}\r\n"));
        }
        match user {
            // RFC 2449 section 6.5: in AUTHORIZATION the value may be
            // followed by USER "to indicate that the value may vary per user".
            None if self.policy.login_delay > 0 => {
                c.push_str(&format!("LOGIN-DELAY {} USER\r\n", self.policy.login_delay));
            }
            Some(u) if self.login_delay(Some(u)) > 0 => {
                c.push_str(&format!("LOGIN-DELAY {}\r\n", self.login_delay(Some(u))));
            }
            _ => {}
        }
        if user.is_none() && self.policy.tls_available && !self.tls_active {
            c.push_str("STLS\r\n");
        }
        c.push_str("IMPLEMENTATION Kmpromail\r\n.\r\n");
        c
    }

    /// A `-ERR` for a client's mistake; too many of them end the session.
    fn error(&mut self, text: Cow<'static, str>) -> Vec<Action> {
        self.errors += 1;
        if self.errors >= self.policy.max_errors {
            self.state = State::Closed;
            return vec![
                Action::Reply(text),
                Action::Reply(reply::TOO_MANY_ERRORS.into()),
                Action::ReportAbuse,
                Action::Close,
            ];
        }
        vec![Action::Reply(text)]
    }
}

#[cfg(test)]
mod tests;
