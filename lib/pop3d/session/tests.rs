//! Session transcripts without sockets: a small driver performs the actions
//! the way the server does, against messages held in memory.

use std::path::PathBuf;

use super::*;
use crate::proto::pop3::encode;
use crate::proto::pop3::Decoder;

fn policy() -> Policy {
    Policy {
        tls_available: true,
        tls_active: false,
        plaintext_without_tls: true,
        expire: None,
        login_delay: 0,
        max_errors: 10,
    }
}

fn user_info(login_delay: u64) -> UserInfo {
    UserInfo {
        address: "u@example.test".into(),
        mail_path: PathBuf::from("/nonexistent"),
        quota_bytes: 0,
        quota_messages: 0,
        active: true,
        forwards: Vec::new(),
        keep_copy: false,
        pop3_subfolders: false,
        login_delay,
        spam: Default::default(),
        max_message_bytes: None,
    }
}

/// Performs actions as the server would.
struct Driver {
    s: Session,
    dec: Decoder,
    /// Bytes received and not yet a whole line.
    buf: Vec<u8>,
    messages: Vec<&'static [u8]>,
    locked: bool,
    authd_down: bool,
    since_last_login: Option<u64>,
    user_delay: u64,
    expunged: Option<Vec<usize>>,
    tls: bool,
    closed: bool,
    abuse: bool,
}

impl Driver {
    fn new(policy: Policy) -> Driver {
        Driver {
            s: Session::new(policy),
            dec: Decoder::new(),
            buf: Vec::new(),
            messages: vec![
                b"Subject: one\n\nfirst\n.dot\n",
                b"Subject: two\n\nsecond\nline 2\nline 3\n",
                b"Subject: three\n\nthird\n",
            ],
            locked: false,
            authd_down: false,
            since_last_login: None,
            user_delay: 0,
            expunged: None,
            tls: false,
            closed: false,
            abuse: false,
        }
    }

    /// Sends client text (one or more lines) and returns everything the server said.
    fn send(&mut self, text: &str) -> String {
        let mut buf = std::mem::take(&mut self.buf);
        buf.extend_from_slice(text.as_bytes());
        let mut out = String::new();
        loop {
            let acts = if self.s.wants_sasl() {
                match self.dec.next_sasl(&mut buf) {
                    Some(r) => self.s.sasl_response(r),
                    None => break,
                }
            } else {
                match self.dec.next_command(&mut buf) {
                    Some(r) => self.s.command(r),
                    None => break,
                }
            };
            self.perform(acts, &mut out);
            if self.closed {
                break;
            }
        }
        self.buf = buf;
        out
    }

    fn perform(&mut self, acts: Vec<Action>, out: &mut String) {
        for a in acts {
            let more = match a {
                Action::Reply(t) => {
                    out.push_str(&t);
                    Vec::new()
                }
                Action::SendMessage { index, size, top } => {
                    out.push_str(&match top {
                        None => reply::retr(size),
                        Some(_) => reply::TOP_FOLLOWS.to_string(),
                    });
                    let wire = encode::encode(self.messages[index], top);
                    out.push_str(&String::from_utf8(wire).unwrap());
                    Vec::new()
                }
                Action::StartTls => {
                    self.tls = true;
                    self.s.tls_started();
                    Vec::new()
                }
                Action::Authenticate { user, password } => {
                    let outcome = if self.authd_down {
                        LoginOutcome::Temporary
                    } else if user == "u@example.test" && password.as_bytes() == b"pw" {
                        LoginOutcome::Ok {
                            user: Box::new(user_info(self.user_delay)),
                            since_last_login: self.since_last_login,
                        }
                    } else if user == "banned" {
                        LoginOutcome::Failed(LoginFailure::Banned)
                    } else {
                        LoginOutcome::Failed(LoginFailure::BadCredentials)
                    };
                    self.s.authenticated(outcome)
                }
                Action::OpenMaildrop { .. } => {
                    if self.locked {
                        self.s.maildrop_opened(Err(OpenFailure::InUse))
                    } else {
                        let list = self
                            .messages
                            .iter()
                            .enumerate()
                            .map(|(i, m)| MessageInfo {
                                size: encode::wire_size(m),
                                uidl: format!("{:08X}{:08X}", i + 1, 7),
                            })
                            .collect();
                        self.s.maildrop_opened(Ok(list))
                    }
                }
                Action::Expunge { indexes } => {
                    let n = indexes.len();
                    let left = self.messages.len() - n;
                    self.expunged = Some(indexes);
                    self.s.updated(n, left, true)
                }
                Action::ReportAbuse => {
                    self.abuse = true;
                    Vec::new()
                }
                Action::Close => {
                    self.closed = true;
                    Vec::new()
                }
            };
            self.perform(more, out);
        }
    }

    fn login(&mut self) {
        assert_eq!(self.send("USER u@example.test\r\n"), reply::USER_OK);
        assert!(self
            .send("PASS pw\r\n")
            .starts_with("+OK Maildrop has 3 messages"));
    }
}

/// Replays a transcript: `C: ` lines are sent, `S: ` lines are what must come back.
fn transcript(d: &mut Driver, script: &str) {
    let mut pending_c = String::new();
    let mut want = String::new();
    let flush = |d: &mut Driver, c: &mut String, w: &mut String| {
        if !c.is_empty() || !w.is_empty() {
            let got = d.send(c);
            assert_eq!(got, *w, "after C: {c:?}");
            c.clear();
            w.clear();
        }
    };
    for line in script
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty())
    {
        let line = if line == "C:" { "C: " } else { line };
        if let Some(c) = line.strip_prefix("C: ") {
            if !want.is_empty() {
                flush(d, &mut pending_c, &mut want);
            }
            pending_c.push_str(c);
            pending_c.push_str("\r\n");
        } else if let Some(s) = line.strip_prefix("S:") {
            // The SASL continuation is "+ " with its space.
            let s = s.strip_prefix(' ').unwrap_or(s);
            want.push_str(if s == "+" { "+ " } else { s });
            want.push_str("\r\n");
        }
    }
    flush(d, &mut pending_c, &mut want);
}

#[test]
fn every_rfc1939_command_in_a_session() {
    let mut d = Driver::new(policy());
    transcript(
        &mut d,
        "C: STAT
         S: -ERR Not logged in: use USER and PASS, or AUTH
         C: PASS pw
         S: -ERR Send USER first
         C: USER u@example.test
         S: +OK Send the password
         C: PASS pw
         S: +OK Maildrop has 3 messages (94 octets)
         C: STAT
         S: +OK 3 94
         C: LIST
         S: +OK 3 messages (94 octets)
         S: 1 29
         S: 2 40
         S: 3 25
         S: .
         C: LIST 2
         S: +OK 2 40
         C: LIST 4
         S: -ERR No such message
         C: UIDL
         S: +OK
         S: 1 0000000100000007
         S: 2 0000000200000007
         S: 3 0000000300000007
         S: .
         C: UIDL 3
         S: +OK 3 0000000300000007
         C: RETR 1
         S: +OK 29 octets
         S: Subject: one
         S:
         S: first
         S: ..dot
         S: .
         C: TOP 2 1
         S: +OK Top of message follows
         S: Subject: two
         S:
         S: second
         S: .
         C: DELE 1
         S: +OK Message deleted
         C: DELE 1
         S: -ERR Message already deleted
         C: RETR 1
         S: -ERR Message already deleted
         C: LIST
         S: +OK 2 messages (65 octets)
         S: 2 40
         S: 3 25
         S: .
         C: STAT
         S: +OK 2 65
         C: RSET
         S: +OK Maildrop has 3 messages (94 octets)
         C: NOOP
         S: +OK
         C: DELE 2
         S: +OK Message deleted
         C: QUIT
         S: +OK Bye (1 message deleted, 2 left)",
    );
    assert_eq!(d.expunged, Some(vec![1]));
    assert!(d.closed);
}

#[test]
fn bad_input_gets_errors_and_the_session_goes_on() {
    let mut d = Driver::new(policy());
    d.login();
    transcript(
        &mut d,
        "C: RETR 9
         S: -ERR No such message
         C: RETR x
         S: -ERR RETR: the message number is not a number from 1 up
         C: TOP 1
         S: -ERR TOP: takes a message number and a line count
         C: XYZZY
         S: -ERR Unknown command
         C: USER again
         S: -ERR Already logged in
         C: STLS
         S: -ERR STLS is only allowed before login
         C:
         S: -ERR Empty command
         C: STAT
         S: +OK 3 94",
    );
    let long = format!("LIST {}\r\nNOOP\r\n", "9".repeat(3000));
    assert_eq!(
        d.send(&long),
        format!("{}{}", reply::LINE_TOO_LONG, reply::OK)
    );
    assert!(!d.closed);
}

#[test]
fn quit_before_login_deletes_nothing_and_dropping_in_transaction_neither() {
    let mut d = Driver::new(policy());
    d.login();
    assert_eq!(d.send("DELE 1\r\nDELE 2\r\n"), reply::DELETED.repeat(2));
    // The connection drops here: no QUIT, so no Expunge action ever came.
    assert_eq!(d.expunged, None);
    let mut d = Driver::new(policy());
    assert_eq!(d.send("QUIT\r\n"), reply::BYE);
    assert!(d.closed);
    assert_eq!(d.expunged, None);
}

#[test]
fn pipelined_commands_answer_in_order() {
    let mut d = Driver::new(policy());
    let got = d.send("USER u@example.test\r\nPASS pw\r\nSTAT\r\nDELE 3\r\nSTAT\r\nQUIT\r\n");
    assert_eq!(
        got,
        "+OK Send the password\r\n+OK Maildrop has 3 messages (94 octets)\r\n+OK 3 94\r\n\
         +OK Message deleted\r\n+OK 2 69\r\n+OK Bye (1 message deleted, 2 left)\r\n"
    );
    assert_eq!(d.expunged, Some(vec![2]));
}

#[test]
fn failed_logins_and_in_use() {
    let mut d = Driver::new(policy());
    transcript(
        &mut d,
        "C: USER u@example.test
         S: +OK Send the password
         C: PASS wrong
         S: -ERR [AUTH] Authentication failed
         C: PASS pw
         S: -ERR Send USER first
         C: APOP u@example.test 0123456789abcdef0123456789abcdef
         S: -ERR APOP is not offered (passwords are stored hashed): use USER/PASS or AUTH PLAIN",
    );
    d.locked = true;
    transcript(
        &mut d,
        "C: USER u@example.test
         S: +OK Send the password
         C: PASS pw
         S: -ERR [IN-USE] Mailbox is in use by another POP3 session",
    );
    d.authd_down = true;
    transcript(
        &mut d,
        "C: USER u@example.test
         S: +OK Send the password
         C: PASS pw
         S: -ERR [SYS/TEMP] Authentication service unavailable: try again later",
    );
    d.authd_down = false;
    transcript(
        &mut d,
        "C: USER banned
         S: +OK Send the password
         C: PASS pw
         S: -ERR [AUTH] Too many failed logins from your address: try again later",
    );
    assert!(d.closed);
}

#[test]
fn sasl_plain_with_and_without_initial_response() {
    let mut d = Driver::new(policy());
    // "\0u@example.test\0pw" and "\0u@example.test\0no".
    transcript(
        &mut d,
        "C: AUTH
         S: +OK Mechanisms follow
         S: PLAIN
         S: .
         C: AUTH CRAM-MD5
         S: -ERR Unsupported authentication mechanism
         C: AUTH PLAIN
         S: +
         C: *
         S: -ERR Authentication cancelled
         C: AUTH PLAIN
         S: +
         C: this is not base64!
         S: -ERR Response is not valid base64
         C: AUTH PLAIN
         S: +
         C: AGFiYw==
         S: -ERR [AUTH] Malformed PLAIN response
         C: AUTH PLAIN AHVAZXhhbXBsZS50ZXN0AG5v
         S: -ERR [AUTH] Authentication failed
         C: AUTH PLAIN YWRtaW4AdUBleGFtcGxlLnRlc3QAcHc=
         S: -ERR [AUTH] Logging in as another user is not allowed
         C: AUTH PLAIN
         S: +
         C: AHVAZXhhbXBsZS50ZXN0AHB3
         S: +OK Maildrop has 3 messages (94 octets)",
    );
    let mut d = Driver::new(policy());
    transcript(
        &mut d,
        "C: AUTH PLAIN AHVAZXhhbXBsZS50ZXN0AHB3
         S: +OK Maildrop has 3 messages (94 octets)
         C: AUTH PLAIN
         S: -ERR Already logged in",
    );
}

#[test]
fn plain_text_refused_without_tls_until_stls() {
    let mut p = policy();
    p.plaintext_without_tls = false;
    let mut d = Driver::new(p);
    transcript(
        &mut d,
        "C: CAPA
         S: +OK Capability list follows
         S: TOP
         S: UIDL
         S: RESP-CODES
         S: AUTH-RESP-CODE
         S: PIPELINING
         S: STLS
         S: IMPLEMENTATION Kmpromail
         S: .
         C: USER u@example.test
         S: -ERR [AUTH] Plain-text authentication is not allowed without TLS: use STLS
         C: AUTH PLAIN AHVAZXhhbXBsZS50ZXN0AHB3
         S: -ERR [AUTH] Plain-text authentication is not allowed without TLS: use STLS
         C: STLS
         S: +OK Begin TLS negotiation
         C: STLS
         S: -ERR TLS is already active
         C: CAPA
         S: +OK Capability list follows
         S: TOP
         S: UIDL
         S: RESP-CODES
         S: AUTH-RESP-CODE
         S: PIPELINING
         S: USER
         S: SASL PLAIN
         S: IMPLEMENTATION Kmpromail
         S: .
         C: USER u@example.test
         S: +OK Send the password
         C: PASS pw
         S: +OK Maildrop has 3 messages (94 octets)",
    );
    assert!(d.tls);
}

#[test]
fn stls_forgets_the_user_name() {
    let mut d = Driver::new(policy());
    assert_eq!(
        d.send("USER u@example.test\r\nSTLS\r\n"),
        format!("{}{}", reply::USER_OK, reply::STLS_BEGIN)
    );
    assert_eq!(d.send("PASS pw\r\n"), reply::PASS_WITHOUT_USER);
    let mut p = policy();
    p.tls_available = false;
    let mut d = Driver::new(p);
    assert_eq!(d.send("STLS\r\n"), reply::STLS_UNAVAILABLE);
}

#[test]
fn capa_announces_expire_and_login_delay_and_enforces_the_delay() {
    let mut p = policy();
    p.expire = Some("NEVER".into());
    p.login_delay = 60;
    p.tls_active = true;
    let mut d = Driver::new(p);
    let capa = d.send("CAPA\r\n");
    assert!(capa.contains("\r\nEXPIRE NEVER\r\n"), "{capa}");
    assert!(capa.contains("\r\nLOGIN-DELAY 60 USER\r\n"), "{capa}");
    assert!(!capa.contains("STLS"), "{capa}");
    d.user_delay = 900;
    d.since_last_login = Some(120);
    assert_eq!(
        d.send("USER u@example.test\r\nPASS pw\r\n"),
        format!("{}{}", reply::USER_OK, reply::LOGIN_DELAY)
    );
    d.since_last_login = Some(901);
    d.login();
    let capa = d.send("CAPA\r\n");
    assert!(capa.contains("\r\nLOGIN-DELAY 900\r\n"), "{capa}");
    assert!(!capa.contains("USER\r\n"), "{capa}");
}

#[test]
fn too_many_errors_close_and_report() {
    let mut p = policy();
    p.max_errors = 3;
    let mut d = Driver::new(p);
    let got = d.send("A\r\nB\r\nC\r\nNOOP\r\n");
    assert_eq!(
        got,
        format!(
            "{}{}{}{}",
            reply::UNKNOWN,
            reply::UNKNOWN,
            reply::UNKNOWN,
            reply::TOO_MANY_ERRORS
        )
    );
    assert!(d.closed && d.abuse);
}

#[test]
fn random_input_never_panics_and_deletes_only_at_quit() {
    // A fixed pseudo-random walk over command fragments and raw bytes (the
    // fuzz target in fuzz/ does the same without the vocabulary).
    const WORDS: &[&str] = &[
        "USER u@example.test\r\n",
        "PASS pw\r\n",
        "PASS x\r\n",
        "STAT\r\n",
        "LIST\r\n",
        "LIST 2\r\n",
        "RETR 1\r\n",
        "RETR 9\r\n",
        "DELE 1\r\n",
        "DELE 3\r\n",
        "RSET\r\n",
        "TOP 2 1\r\n",
        "UIDL\r\n",
        "UIDL 0\r\n",
        "NOOP\r\n",
        "CAPA\r\n",
        "STLS\r\n",
        "AUTH PLAIN\r\n",
        "AUTH PLAIN AHVAZXhhbXBsZS50ZXN0AHB3\r\n",
        "*\r\n",
        "=\r\n",
        "AUTH\r\n",
        "APOP a b\r\n",
        "QUIT\r\n",
        "\r\n",
        "\n",
        "\r",
        " ",
        "RETR ",
        "\u{0}\u{1}\u{ff}",
        "LIST 99999999999\r\n",
    ];
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..2000 {
        let mut p = policy();
        p.max_errors = 1 + (next() % 50) as u32;
        p.plaintext_without_tls = next() % 3 != 0;
        let mut d = Driver::new(p);
        let mut input = String::new();
        for _ in 0..(next() % 40) {
            if next() % 8 == 0 {
                input.push(char::from((next() % 128) as u8));
            } else {
                input.push_str(WORDS[(next() % WORDS.len() as u64) as usize]);
            }
        }
        let chars: Vec<char> = input.chars().collect();
        let chunk = 1 + (next() % 64) as usize;
        for piece in chars.chunks(chunk) {
            d.send(&piece.iter().collect::<String>());
            if d.closed {
                break;
            }
        }
        if let Some(gone) = &d.expunged {
            assert!(input.contains("QUIT"), "{input:?}");
            assert!(gone.iter().all(|&i| i < 3));
        }
    }
}
