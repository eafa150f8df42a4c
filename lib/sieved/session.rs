//! The ManageSieve session (RFC 5804): a state machine from lines to
//! actions. It does no network I/O: logins are asked for with
//! [`Action::Login`] and answered with [`Session::login_result`], TLS with
//! [`Action::StartTls`] and [`Session::tls_started`]. Script storage is the
//! user's [`Store`], called directly (small, local file operations), so the
//! tests drive a session over a temporary directory without any socket.

use std::path::PathBuf;

use crate::ipc::authd::LoginFailure;
use crate::proto::sasl::{self, Secret};
use crate::sieve::Extensions;
use crate::sievestore::{Limits, Store, StoreError};

use super::proto::{self, response, Arg, Command, Line};

/// What the server decided for this connection.
#[derive(Debug, Clone)]
pub struct Policy {
    pub tls_available: bool,
    pub tls_active: bool,
    /// AUTHENTICATE allowed without TLS (loopback, or `sieved.allow_plaintext`).
    pub plaintext_ok: bool,
    pub max_errors: u32,
    pub limits: Limits,
    pub extensions: Extensions,
    pub max_redirects: u64,
}

/// What the server is to do.
#[derive(Debug)]
pub enum Action {
    Reply(Vec<u8>),
    /// Start TLS now (the OK is already out), then call `tls_started`.
    StartTls,
    /// Ask kmp-authd, then call `login_result`.
    Login {
        user: String,
        password: Secret,
    },
    /// Count this session's abuse toward a ban.
    ReportAbuse,
    /// An event for the log (the server adds the session id).
    Log(String),
    Close,
}

/// kmp-authd's answer to a login.
#[derive(Debug)]
pub enum LoginResult {
    Ok { address: String, home: PathBuf },
    Failed(LoginFailure),
    Temporary,
}

#[derive(Debug)]
enum Sasl {
    Plain,
    LoginUser,
    LoginPassword { user: String },
}

#[derive(Debug)]
enum State {
    Anonymous,
    Sasl(Sasl),
    /// Waiting for kmp-authd.
    LoggingIn,
    Authenticated {
        address: String,
        store: Store,
    },
    Closed,
}

pub struct Session {
    policy: Policy,
    state: State,
    errors: u32,
}

impl Session {
    pub fn new(policy: Policy) -> Session {
        Session {
            policy,
            state: State::Anonymous,
            errors: 0,
        }
    }

    /// The greeting: the capabilities and OK (RFC 5804 1.7).
    pub fn greeting(&self) -> Vec<Action> {
        vec![Action::Reply(
            self.capabilities("Kmpromail ManageSieve ready."),
        )]
    }

    /// The logged-in user's address, if any.
    pub fn user(&self) -> Option<&str> {
        match &self.state {
            State::Authenticated { address, .. } => Some(address),
            _ => None,
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Whether the next line is a SASL response rather than a command.
    pub fn wants_sasl(&self) -> bool {
        matches!(self.state, State::Sasl(_))
    }

    /// One line of input.
    pub fn line(&mut self, line: Line) -> Vec<Action> {
        if matches!(self.state, State::Closed | State::LoggingIn) {
            return Vec::new();
        }
        let args = match line {
            Line::Args(a) => a,
            Line::Bad(b) => {
                if let State::Sasl(_) = self.state {
                    self.state = State::Anonymous;
                }
                return self.error(b.code, &format!("Syntax error: {}.", b.message));
            }
        };
        if self.wants_sasl() {
            if let State::Sasl(step) = std::mem::replace(&mut self.state, State::Anonymous) {
                return self.sasl_step(step, args);
            }
        }
        match proto::command(args) {
            Ok(c) => self.command(c),
            Err(why) => self.error(None, &format!("Syntax error: {why}.")),
        }
    }

    fn command(&mut self, c: Command) -> Vec<Action> {
        match c {
            Command::Capability => vec![Action::Reply(self.capabilities("Capability completed."))],
            Command::Logout => {
                self.state = State::Closed;
                vec![ok("Logout completed."), Action::Close]
            }
            Command::Noop(tag) => {
                let mut r = b"OK".to_vec();
                if let Some(t) = tag {
                    r.extend_from_slice(b" (TAG ");
                    r.extend_from_slice(&proto::string(&t));
                    r.push(b')');
                }
                r.extend_from_slice(b" \"Done\"\r\n");
                vec![Action::Reply(r)]
            }
            Command::StartTls => {
                if self.policy.tls_active {
                    return self.error(None, "TLS is already active.");
                }
                if !self.policy.tls_available {
                    return self.error(None, "TLS is not available.");
                }
                if !matches!(self.state, State::Anonymous) {
                    return self.error(None, "STARTTLS is only allowed before AUTHENTICATE.");
                }
                vec![ok("Begin TLS negotiation now."), Action::StartTls]
            }
            Command::Unauthenticate => match self.state {
                State::Authenticated { .. } => {
                    self.state = State::Anonymous;
                    vec![ok("Unauthenticate completed.")]
                }
                _ => self.error(None, "Not authenticated."),
            },
            Command::Authenticate { mechanism, initial } => self.authenticate(&mechanism, initial),
            Command::Unknown(verb) => {
                let v: String = verb.chars().take(32).collect();
                self.error(None, &format!("Unknown command {v}."))
            }
            c => self.store_command(c),
        }
    }

    fn authenticate(&mut self, mechanism: &str, initial: Option<Vec<u8>>) -> Vec<Action> {
        if !matches!(self.state, State::Anonymous) {
            return self.error(None, "Already authenticated.");
        }
        if !self.policy.tls_active && !self.policy.plaintext_ok {
            return self.error(
                Some("ENCRYPT-NEEDED"),
                "Use STARTTLS before authenticating.",
            );
        }
        match (mechanism, initial) {
            ("PLAIN", None) => {
                self.state = State::Sasl(Sasl::Plain);
                vec![Action::Reply(b"\"\"\r\n".to_vec())]
            }
            ("PLAIN", Some(i)) => self.sasl_step(Sasl::Plain, vec![Arg::String(i)]),
            ("LOGIN", None) => {
                self.state = State::Sasl(Sasl::LoginUser);
                vec![Action::Reply(b"\"VXNlcm5hbWU6\"\r\n".to_vec())]
            }
            ("LOGIN", Some(i)) => self.sasl_step(Sasl::LoginUser, vec![Arg::String(i)]),
            _ => self.error(None, "Unsupported SASL mechanism."),
        }
    }

    fn sasl_step(&mut self, step: Sasl, args: Vec<Arg>) -> Vec<Action> {
        let data = match args.as_slice() {
            [Arg::String(s)] => s.clone(),
            _ => return self.error(None, "Authentication failed: a string was expected."),
        };
        let r = match step {
            Sasl::Plain => sasl::plain_response(&data).map(|p| (p.user, p.password)),
            Sasl::LoginUser => match sasl::login_response(&data) {
                Ok(u) => {
                    let user = u.as_str().unwrap_or_default().to_string();
                    self.state = State::Sasl(Sasl::LoginPassword { user });
                    return vec![Action::Reply(b"\"UGFzc3dvcmQ6\"\r\n".to_vec())];
                }
                Err(e) => Err(e),
            },
            Sasl::LoginPassword { user } => sasl::login_response(&data).map(|p| (user, p)),
        };
        match r {
            Ok((user, password)) => {
                self.state = State::LoggingIn;
                vec![Action::Login { user, password }]
            }
            Err(sasl::SaslError::Cancelled) => vec![no(None, "Authentication cancelled.")],
            Err(e) => self.error(None, &format!("Authentication failed: {e}.")),
        }
    }

    /// kmp-authd's answer.
    pub fn login_result(&mut self, r: LoginResult) -> Vec<Action> {
        self.state = State::Anonymous;
        match r {
            LoginResult::Ok { address, home } => {
                let store = Store::new(&home, self.policy.limits);
                let log = format!("login user={address}");
                self.state = State::Authenticated { address, store };
                vec![Action::Log(log), ok("Logged in.")]
            }
            LoginResult::Failed(LoginFailure::Banned) => {
                self.state = State::Closed;
                vec![
                    Action::Reply(response("BYE", None, "Too many failures: try again later.")),
                    Action::Close,
                ]
            }
            LoginResult::Failed(LoginFailure::Disabled) => {
                self.error(None, "Authentication failed: the account is disabled.")
            }
            LoginResult::Failed(LoginFailure::BadCredentials) => {
                self.error(None, "Authentication failed.")
            }
            LoginResult::Temporary => vec![no(
                Some("TRYLATER"),
                "Authentication is not possible now: try again later.",
            )],
        }
    }

    /// TLS is up: the capabilities again (RFC 5804 2.2).
    pub fn tls_started(&mut self) -> Vec<Action> {
        self.policy.tls_active = true;
        vec![Action::Reply(
            self.capabilities("TLS negotiation successful."),
        )]
    }

    fn store_command(&mut self, c: Command) -> Vec<Action> {
        let State::Authenticated { address, store } = &self.state else {
            return self.error(None, "Authenticate first.");
        };
        let address = address.clone();
        let store = store.clone();
        let r: Result<Vec<Action>, StoreError> = match c {
            Command::HaveSpace { name, size } => {
                store.have_space(&name, size).map(|()| vec![ok("")])
            }
            Command::CheckScript { script } => Ok(vec![self.check(&script)]),
            Command::PutScript { name, script } => {
                match store.have_space(&name, script.len() as u64) {
                    Err(e) => Err(e),
                    Ok(()) => match self.check(&script) {
                        Action::Reply(r) if r.starts_with(b"OK") => {
                            store.put(&name, &script).map(|()| {
                                vec![
                                    Action::Log(format!(
                                        "putscript user={address} name=\"{}\" size={}",
                                        printable(&name),
                                        script.len()
                                    )),
                                    ok("Stored."),
                                ]
                            })
                        }
                        refusal => Ok(vec![refusal]),
                    },
                }
            }
            Command::ListScripts => store.list().map(|l| {
                let mut r = Vec::new();
                for s in l {
                    r.extend_from_slice(&proto::string(s.name.as_bytes()));
                    if s.active {
                        r.extend_from_slice(b" ACTIVE");
                    }
                    r.extend_from_slice(b"\r\n");
                }
                r.extend_from_slice(b"OK \"Listscripts completed.\"\r\n");
                vec![Action::Reply(r)]
            }),
            Command::SetActive { name } => {
                let n = (!name.is_empty()).then_some(name.as_str());
                store.set_active(n).map(|()| {
                    vec![
                        Action::Log(format!(
                            "setactive user={address} name=\"{}\"",
                            printable(&name)
                        )),
                        ok(if n.is_some() {
                            "Script activated."
                        } else {
                            "Scripts deactivated."
                        }),
                    ]
                })
            }
            Command::GetScript { name } => store.get(&name).map(|text| {
                let mut r = format!("{{{}}}\r\n", text.len()).into_bytes();
                r.extend_from_slice(&text);
                r.extend_from_slice(b"\r\nOK \"Getscript completed.\"\r\n");
                vec![Action::Reply(r)]
            }),
            Command::DeleteScript { name } => store.delete(&name).map(|()| {
                vec![
                    Action::Log(format!(
                        "deletescript user={address} name=\"{}\"",
                        printable(&name)
                    )),
                    ok("Deleted."),
                ]
            }),
            Command::RenameScript { old, new } => store.rename(&old, &new).map(|()| {
                vec![
                    Action::Log(format!(
                        "renamescript user={address} name=\"{}\" new=\"{}\"",
                        printable(&old),
                        printable(&new)
                    )),
                    ok("Renamed."),
                ]
            }),
            // Invariant: `command` handled every other variant.
            other => unreachable!("store_command got {other:?}"),
        };
        match r {
            Ok(a) => a,
            Err(StoreError::Io(e)) => vec![
                Action::Log(format!("error user={address}: {e}")),
                no(Some("TRYLATER"), "The scripts cannot be reached now."),
            ],
            Err(e) => vec![no(
                store_code(&e),
                &format!("{}{}", capital(&e.to_string()), "."),
            )],
        }
    }

    /// Compiles a script: OK, or NO with the line and column of the error.
    fn check(&self, script: &[u8]) -> Action {
        let Ok(text) = std::str::from_utf8(script) else {
            return no(None, "The script is not UTF-8.");
        };
        match crate::sievestore::check_script(text, &self.policy.extensions) {
            Ok(_) => ok(""),
            Err(e) => no(None, &e.to_string()),
        }
    }

    /// A refusal that counts toward `sieved.max_errors`.
    fn error(&mut self, code: Option<&str>, text: &str) -> Vec<Action> {
        self.errors += 1;
        if self.errors >= self.policy.max_errors {
            self.state = State::Closed;
            return vec![
                Action::Reply(response("BYE", None, "Too many errors.")),
                Action::ReportAbuse,
                Action::Close,
            ];
        }
        vec![no(code, text)]
    }

    fn capabilities(&self, done: &str) -> Vec<u8> {
        let p = &self.policy;
        let mut lines: Vec<(&str, String)> = vec![(
            "IMPLEMENTATION",
            format!("Kmpromail {}", env!("CARGO_PKG_VERSION")),
        )];
        let sasl = if p.tls_active || p.plaintext_ok {
            "PLAIN LOGIN"
        } else {
            ""
        };
        lines.push(("SASL", sasl.into()));
        lines.push(("SIEVE", p.extensions.names()));
        if p.tls_available && !p.tls_active && matches!(self.state, State::Anonymous) {
            lines.push(("STARTTLS", String::new()));
        }
        lines.push(("NOTIFY", "mailto".into()));
        lines.push(("MAXREDIRECTS", p.max_redirects.to_string()));
        if let State::Authenticated { address, .. } = &self.state {
            lines.push(("OWNER", address.clone()));
        }
        lines.push(("UNAUTHENTICATE", String::new()));
        lines.push(("VERSION", "1.0".into()));
        let mut r = Vec::new();
        for (k, v) in lines {
            r.extend_from_slice(&proto::string(k.as_bytes()));
            if !v.is_empty() || k == "SASL" {
                r.push(b' ');
                r.extend_from_slice(&proto::string(v.as_bytes()));
            }
            r.extend_from_slice(b"\r\n");
        }
        r.extend_from_slice(&response("OK", None, done));
        r
    }
}

fn ok(text: &str) -> Action {
    Action::Reply(response("OK", None, text))
}

fn no(code: Option<&str>, text: &str) -> Action {
    Action::Reply(response("NO", code, text))
}

/// RFC 5804 1.3's response code for a store refusal.
fn store_code(e: &StoreError) -> Option<&'static str> {
    match e {
        StoreError::NotFound => Some("NONEXISTENT"),
        StoreError::Exists => Some("ALREADYEXISTS"),
        StoreError::Active => Some("ACTIVE"),
        StoreError::TooMany => Some("QUOTA/MAXSCRIPTS"),
        StoreError::TooLarge => Some("QUOTA/MAXSIZE"),
        StoreError::OverQuota => Some("QUOTA"),
        StoreError::BadName(_) | StoreError::Io(_) => None,
    }
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A script name as it may appear in a log line.
pub fn printable(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| if c.is_control() || c == '"' { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests;
