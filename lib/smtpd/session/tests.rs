//! Session transcripts without sockets: the client's bytes go in, the
//! replies come out, kmp-authd and the queue are played by a small
//! in-memory directory.

use std::collections::VecDeque;

use super::*;
use crate::config::Config;
use crate::ipc::authd::UserInfo;
use crate::proto::smtp::{BodyDecoder, CommandReader, Mode};

/// The directory the fake kmp-authd answers from.
struct Directory {
    users: &'static [&'static str],
    aliases: &'static [(&'static str, &'static [&'static str])],
    disabled: &'static [&'static str],
    password: &'static str,
    down: bool,
}

const DIR: Directory = Directory {
    users: &["alice@example.test", "bob@example.test"],
    aliases: &[("sales@example.test", &["alice@example.test"])],
    disabled: &["gone@example.test"],
    password: "secret",
    down: false,
};

impl Directory {
    fn lookup(&self, address: &str) -> Result<AuthReply, ClientError> {
        if self.down {
            return Err(down());
        }
        let a = address.to_lowercase();
        let local_domain = a.ends_with("@example.test");
        let user = |addr: &str, active| UserInfo {
            address: addr.into(),
            mail_path: "/nonexistent".into(),
            quota_bytes: 0,
            quota_messages: 0,
            active,
            forwards: vec![],
            keep_copy: false,
            pop3_subfolders: false,
            login_delay: 0,
            spam: Default::default(),
            max_message_bytes: None,
        };
        let entry = if self.users.contains(&a.as_str()) {
            Entry::User {
                user: user(&a, true),
            }
        } else if self.disabled.contains(&a.as_str()) {
            Entry::User {
                user: user(&a, false),
            }
        } else if let Some((_, t)) = self.aliases.iter().find(|(n, _)| *n == a) {
            Entry::Alias {
                address: a.clone(),
                targets: t.iter().map(|s| s.to_string()).collect(),
            }
        } else {
            Entry::NotFound
        };
        Ok(AuthReply::Found {
            entry,
            local_domain,
        })
    }

    fn login(&self, c: &Credentials) -> Result<AuthReply, ClientError> {
        if self.down {
            return Err(down());
        }
        if self.users.contains(&c.user.as_str())
            && c.password.as_bytes() == self.password.as_bytes()
        {
            match self.lookup(&c.user)? {
                AuthReply::Found {
                    entry: Entry::User { user },
                    ..
                } => return Ok(AuthReply::LoginOk { user }),
                _ => unreachable!(),
            }
        }
        Ok(AuthReply::LoginFailed {
            reason: LoginFailure::BadCredentials,
        })
    }
}

fn down() -> ClientError {
    ClientError::Unavailable(
        "/run/authd.sock".into(),
        std::io::ErrorKind::NotFound.into(),
    )
}

/// What a transcript produced.
struct Run {
    /// Every reply as sent.
    wire: String,
    /// The messages queued: envelope and stored bytes.
    queued: Vec<(Envelope, Vec<u8>)>,
    logs: Vec<String>,
    reports: usize,
    closed: bool,
}

impl Run {
    /// The code and status of each reply's last line: `250 2.1.0`, `354`.
    fn codes(&self) -> Vec<String> {
        self.wire
            .lines()
            .filter(|l| l.as_bytes().get(3) == Some(&b' '))
            .map(|l| {
                let mut w = l.split(' ');
                let code = w.next().unwrap_or("");
                match w.next() {
                    Some(s)
                        if s.chars().next().is_some_and(|c| c.is_ascii_digit())
                            && s.contains('.') =>
                    {
                        format!("{code} {s}")
                    }
                    _ => code.to_string(),
                }
            })
            .collect()
    }
}

fn policy(set: &[(&str, &str)]) -> Arc<Policy> {
    let mut cfg = Config::defaults();
    cfg.set("system.hostname", "mx.example.test").unwrap();
    for (k, v) in set {
        cfg.set(k, v).unwrap();
    }
    Arc::new(Policy::from_config(&cfg, true))
}

/// Plays `input` against a fresh session, as the server would.
fn run_with(p: Arc<Policy>, listener: Listener, tls: bool, dir: &Directory, input: &[u8]) -> Run {
    play(p, listener, tls, dir, input, false)
}

/// As [`run_with`]; `eager`: the client sends everything at once, so input
/// is buffered behind DATA (a client that waits for 354 never has that).
fn play(
    p: Arc<Policy>,
    listener: Listener,
    tls: bool,
    dir: &Directory,
    input: &[u8],
    eager: bool,
) -> Run {
    let tls = tls.then(|| TlsInfo {
        version: "TLSv1.3".into(),
        cipher: "TLS13_AES_256_GCM_SHA384".into(),
    });
    let mut s = Session::new(p, "S1".into(), "192.0.2.7".parse().unwrap(), listener, tls);
    let mut run = Run {
        wire: String::new(),
        queued: Vec::new(),
        logs: Vec::new(),
        reports: 0,
        closed: false,
    };
    let mut reader = CommandReader::new();
    let mut pos = 0;
    let mut message: Option<(BodyDecoder, Vec<u8>)> = None;
    let mut actions: VecDeque<Action> = s.greet(false).into();
    loop {
        while let Some(a) = actions.pop_front() {
            let more = match a {
                Action::Reply(r) => {
                    run.wire.push_str(&r.to_wire());
                    vec![]
                }
                Action::Log(l) => {
                    assert!(!l.contains(dir.password), "a password was logged: {l}");
                    run.logs.push(l);
                    vec![]
                }
                Action::Report(_) => {
                    run.reports += 1;
                    vec![]
                }
                Action::Close => {
                    run.closed = true;
                    return run;
                }
                Action::Abort => {
                    message = None;
                    vec![]
                }
                Action::StartTls => {
                    pos = input.len().min(pos);
                    s.tls_started(TlsInfo {
                        version: "TLSv1.3".into(),
                        cipher: "X".into(),
                    });
                    vec![]
                }
                Action::Login(c) => {
                    let r = dir.login(&c);
                    s.login_result(&c.user, r)
                }
                Action::LookupSender(m, p) => {
                    let r = dir.lookup(&m.to_string());
                    s.sender_result(m, p, r)
                }
                Action::LookupRecipient(m, p) => {
                    let r = dir.lookup(&m.to_string());
                    s.recipient_result(m, p, r)
                }
                Action::ReceiveData => {
                    let mut d = BodyDecoder::new(Mode::Data, s.max_message_size());
                    let mut out = s
                        .received_header("QID1", "Thu, 1 Jan 2026 00:00:00 +0000")
                        .into_bytes();
                    let (used, done) = d.decode(&input[pos..], &mut out);
                    pos += used;
                    if !done {
                        return run;
                    }
                    let summary = d.summary();
                    message = Some((d, out));
                    s.message_end(summary)
                }
                Action::ReceiveChunk { size, last, keep } => {
                    let n = (size as usize).min(input.len() - pos);
                    if keep {
                        let (d, out) = message.get_or_insert_with(|| {
                            (
                                BodyDecoder::new(Mode::Chunks, s.max_message_size()),
                                Vec::new(),
                            )
                        });
                        d.decode(&input[pos..pos + n], out);
                        pos += n;
                        let summary = if last {
                            d.clone().finish(out)
                        } else {
                            d.summary()
                        };
                        s.chunk_end(size, last, summary)
                    } else {
                        pos += n;
                        vec![]
                    }
                }
                // The IMAP server of these tests knows one message; a URL
                // with "gone" in it names nothing.
                Action::FetchUrl { url, last } => {
                    if url.contains("gone") {
                        s.burl_failed(crate::proto::smtp::reply::BURL_FETCH_FAILED)
                    } else {
                        let data = b"Subject: fetched\r\n\r\nfrom imap\r\n";
                        let (d, out) = message.get_or_insert_with(|| {
                            (
                                BodyDecoder::new(Mode::Chunks, s.max_message_size()),
                                Vec::new(),
                            )
                        });
                        d.decode(data, out);
                        let summary = if last {
                            d.clone().finish(out)
                        } else {
                            d.summary()
                        };
                        s.chunk_end(data.len() as u64, last, summary)
                    }
                }
                Action::Queue(env) => {
                    let (_, bytes) = message.take().expect("a message is open");
                    run.queued.push((*env, bytes));
                    s.queued(Ok("QID1".into()))
                }
            };
            for a in more.into_iter().rev() {
                actions.push_front(a);
            }
        }
        let (used, r) = match s.input() {
            Input::Closed => return run,
            Input::Command => {
                let (u, r) = reader.command(&input[pos..]);
                (u, r.map(Ok))
            }
            Input::AuthLine => {
                let (u, r) = reader.auth_line(&input[pos..]);
                (u, r.map(Err))
            }
        };
        pos += used;
        actions = match r {
            Err(ParseError::NeedsMoreData) => return run,
            Err(e) => s.parse_error(e),
            Ok(Ok(cmd)) => s.command(cmd, eager && pos < input.len()),
            Ok(Err(line)) => s.auth_line(&line),
        }
        .into();
    }
}

fn run(input: &str) -> Run {
    run_with(policy(&[]), Listener::Mx, false, &DIR, input.as_bytes())
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn a_plain_message_for_a_local_user_is_queued() {
    let r = run(
        "EHLO client.test\r\nMAIL FROM:<x@remote.test>\r\nRCPT TO:<Alice@Example.TEST>\r\nDATA\r\n",
    );
    assert_eq!(r.codes(), ["220", "250", "250 2.1.0", "250 2.1.5", "354"]);
    let r = run("EHLO client.test\r\nMAIL FROM:<x@remote.test> BODY=8BITMIME\r\nRCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.test\r\nRCPT TO:<sales@example.test>\r\nDATA\r\nSubject: hi\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n");
    assert_eq!(
        r.codes(),
        [
            "220",
            "250",
            "250 2.1.0",
            "250 2.1.5",
            "250 2.1.5",
            "354",
            "250 2.0.0",
            "221 2.0.0"
        ]
    );
    assert!(r.wire.contains("250 2.0.0 Ok: queued as QID1\r\n"));
    let (env, bytes) = &r.queued[0];
    assert_eq!(env.sender, "x@remote.test");
    assert_eq!(env.recipients[0].address, "alice@example.test");
    assert!(env.recipients[0].notify.success && env.recipients[0].notify_given);
    assert_eq!(
        env.recipients[0].orcpt.as_deref(),
        Some("rfc822;alice@example.test")
    );
    assert!(!env.recipients[1].notify_given);
    assert!(env.body_8bit);
    let text = String::from_utf8_lossy(bytes);
    assert!(text.starts_with("Received: from client.test (unknown [192.0.2.7])\n\tby mx.example.test (Kmpromail) with ESMTP id QID1; Thu"), "{text}");
    assert!(text.ends_with("\nSubject: hi\n\n.dot\nbody\n"), "{text}");
    assert!(r
        .logs
        .iter()
        .any(|l| l.starts_with("QID1: client=unknown[192.0.2.7], sasl_username=")));
}

#[test]
fn relaying_is_refused_unless_authenticated_or_trusted() {
    // The worst bug a mail server can have: an open relay.
    let open = "EHLO c\r\nMAIL FROM:<x@example.test>\r\nRCPT TO:<victim@elsewhere.test>\r\nRCPT TO:<v@[192.0.2.1]>\r\nDATA\r\n";
    let r = run(open);
    assert_eq!(
        r.codes(),
        [
            "220",
            "250",
            "250 2.1.0",
            "554 5.7.1",
            "554 5.7.1",
            "554 5.5.1"
        ]
    );
    assert!(r.logs.iter().any(|l| l.contains("reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 Relay access denied; to=<victim@elsewhere.test>")));
    // Loopback is not trusted by default either, nor any network.
    let trusted = policy(&[("smtpd.relay_networks", "192.0.2.0/24")]);
    let r = run_with(trusted, Listener::Mx, false, &DIR, open.as_bytes());
    assert_eq!(
        r.codes(),
        ["220", "250", "250 2.1.0", "250 2.1.5", "250 2.1.5", "354"]
    );
    // An authenticated user may relay.
    let auth = format!(
        "EHLO c\r\nAUTH PLAIN {}\r\nMAIL FROM:<alice@example.test>\r\nRCPT TO:<friend@elsewhere.test>\r\n",
        b64("\0alice@example.test\0secret")
    );
    let r = run_with(
        policy(&[]),
        Listener::Submission,
        true,
        &DIR,
        auth.as_bytes(),
    );
    assert_eq!(
        r.codes(),
        ["220", "250", "235 2.7.0", "250 2.1.0", "250 2.1.5"]
    );
}

#[test]
fn unknown_and_disabled_local_users_are_refused_and_authd_trouble_is_temporary() {
    let r = run("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<gone@example.test>\r\nRCPT TO:<postmaster>\r\n");
    assert_eq!(
        r.codes(),
        [
            "220",
            "250",
            "250 2.1.0",
            "550 5.1.1",
            "550 5.2.1",
            "250 2.1.5"
        ]
    );
    let dir = Directory { down: true, ..DIR };
    let r = run_with(
        policy(&[]),
        Listener::Mx,
        false,
        &dir,
        b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\n",
    );
    assert_eq!(r.codes(), ["220", "250", "250 2.1.0", "451 4.3.0"]);
    let login = format!(
        "EHLO c\r\nAUTH PLAIN {}\r\n",
        b64("\0alice@example.test\0secret")
    );
    let r = run_with(
        policy(&[]),
        Listener::Submission,
        true,
        &dir,
        login.as_bytes(),
    );
    assert_eq!(r.codes(), ["220", "250", "454 4.7.0"]);
}

#[test]
fn submission_requires_auth_and_auth_requires_tls() {
    let r = run_with(
        policy(&[]),
        Listener::Submission,
        false,
        &DIR,
        b"EHLO c\r\nMAIL FROM:<alice@example.test>\r\nAUTH PLAIN AGEAYg==\r\nAUTH CRAM-MD5\r\n",
    );
    assert_eq!(
        r.codes(),
        ["220", "250", "530 5.7.0", "538 5.7.11", "538 5.7.11"]
    );
    assert!(!r.wire.contains("AUTH PLAIN LOGIN"));
    assert!(r
        .wire
        .contains("530 5.7.0 Must issue a STARTTLS command first\r\n"));
    let plain_ok = policy(&[("smtpd.auth_plaintext", "true")]);
    let r = run_with(
        plain_ok,
        Listener::Submission,
        false,
        &DIR,
        b"EHLO c\r\nAUTH CRAM-MD5\r\n",
    );
    assert!(r.wire.contains("250-AUTH PLAIN LOGIN\r\n"));
    assert_eq!(r.codes(), ["220", "250", "504 5.5.4"]);
}

#[test]
fn auth_login_and_plain_exchanges() {
    let input = format!(
        "EHLO c\r\nAUTH LOGIN\r\n{}\r\n{}\r\nAUTH PLAIN\r\n",
        b64("bob@example.test"),
        b64("wrong")
    );
    let r = run_with(
        policy(&[]),
        Listener::Submission,
        true,
        &DIR,
        input.as_bytes(),
    );
    assert_eq!(r.codes(), ["220", "250", "334", "334", "535 5.7.8", "334"]);
    assert!(r.wire.contains("334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n"));
    assert!(r
        .logs
        .iter()
        .any(|l| l.contains("535 5.7.8") && l.contains("sasl_username=bob@example.test")));
    let input = format!(
        "EHLO c\r\nAUTH LOGIN {}\r\n{}\r\nAUTH PLAIN\r\nMAIL FROM:<bob@example.test>\r\n",
        b64("bob@example.test"),
        b64("secret")
    );
    let r = run_with(
        policy(&[]),
        Listener::Submission,
        true,
        &DIR,
        input.as_bytes(),
    );
    assert_eq!(
        r.codes(),
        ["220", "250", "334", "235 2.7.0", "503 5.5.1", "250 2.1.0"]
    );
    let r = run_with(
        policy(&[]),
        Listener::Submission,
        true,
        &DIR,
        b"EHLO c\r\nAUTH PLAIN\r\n*\r\nAUTH LOGIN\r\n!!!\r\n",
    );
    assert_eq!(
        r.codes(),
        ["220", "250", "334", "501 5.0.0", "334", "501 5.5.2"]
    );
}

#[test]
fn authenticated_senders_use_only_their_own_addresses() {
    let mk = |from: &str| {
        format!(
            "EHLO c\r\nAUTH PLAIN {}\r\nMAIL FROM:<{from}>\r\n",
            b64("\0alice@example.test\0secret")
        )
    };
    for (from, want) in [
        ("alice@example.test", "250 2.1.0"),
        ("ALICE@example.test", "250 2.1.0"),
        ("sales@example.test", "250 2.1.0"),
        ("bob@example.test", "553 5.7.1"),
        ("ceo@elsewhere.test", "553 5.7.1"),
    ] {
        let r = run_with(
            policy(&[]),
            Listener::Submission,
            true,
            &DIR,
            mk(from).as_bytes(),
        );
        assert_eq!(r.codes().last().unwrap(), want, "{from}");
    }
    let off = policy(&[("smtpd.sender_login_check", "false")]);
    let r = run_with(
        off,
        Listener::Submission,
        true,
        &DIR,
        mk("bob@example.test").as_bytes(),
    );
    assert_eq!(r.codes().last().unwrap(), "250 2.1.0");
}

#[test]
fn commands_out_of_sequence_get_503() {
    let r = run("MAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nHELO c\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nMAIL FROM:<>\r\nMAIL FROM:<>\r\nDATA\r\nBDAT 3 LAST\r\nabcRSET\r\nNOOP\r\nVRFY alice\r\nEXPN x\r\nHELP\r\nFOO\r\nQUIT\r\n");
    assert_eq!(
        r.codes(),
        [
            "220",
            "503 5.5.1",
            "503 5.5.1",
            "503 5.5.1",
            "250",
            "503 5.5.1",
            "503 5.5.1",
            "250 2.1.0",
            "503 5.5.1",
            "554 5.5.1",
            "554 5.5.1",
            "250 2.0.0",
            "250 2.0.0",
            "252 2.5.0",
            "502 5.5.1",
            "214 2.0.0",
            "500 5.5.1",
            "221 2.0.0"
        ]
    );
}

#[test]
fn limits_on_size_recipients_hops_and_messages() {
    let p = policy(&[
        ("smtpd.max_message_size", "2K"),
        ("smtpd.max_recipients", "2"),
        ("smtpd.max_hops", "2"),
        ("smtpd.max_messages_per_connection", "1"),
    ]);
    let big = format!("EHLO c\r\nMAIL FROM:<> SIZE=4096\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nRCPT TO:<sales@example.test>\r\nDATA\r\n{}\r\n.\r\n", "x".repeat(900).repeat(3).replace(&"x".repeat(900), &format!("{}\r\n", "x".repeat(900))));
    let r = run_with(p.clone(), Listener::Mx, false, &DIR, big.as_bytes());
    assert_eq!(
        r.codes(),
        [
            "220",
            "250",
            "552 5.3.4",
            "250 2.1.0",
            "250 2.1.5",
            "250 2.1.5",
            "452 4.5.3",
            "354",
            "552 5.3.4"
        ]
    );
    assert!(r.queued.is_empty());
    let hops = "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nReceived: a\r\nReceived: b\r\nReceived: c\r\n\r\nx\r\n.\r\n";
    let r = run_with(p.clone(), Listener::Mx, false, &DIR, hops.as_bytes());
    assert_eq!(r.codes().last().unwrap(), "554 5.4.6");
    let two = "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nx\r\n.\r\nMAIL FROM:<>\r\n";
    let r = run_with(p, Listener::Mx, false, &DIR, two.as_bytes());
    assert_eq!(
        r.codes(),
        [
            "220",
            "250",
            "250 2.1.0",
            "250 2.1.5",
            "354",
            "250 2.0.0",
            "421 4.7.0"
        ]
    );
    assert!(r.closed);
}

#[test]
fn bad_content_is_refused_and_nothing_queued() {
    for (body, want) in [
        ("a\nb\r\n.\r\n", "550 5.6.0"),
        ("a\0b\r\n.\r\n", "550 5.6.0"),
        (&format!("{}\r\n.\r\n", "y".repeat(1200)), "550 5.6.0"),
    ] {
        let input = format!(
            "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n{body}NOOP\r\n"
        );
        let r = run(&input);
        assert_eq!(r.codes()[5..], [want, "250 2.0.0"], "{body:?}");
        assert!(r.queued.is_empty());
    }
}

#[test]
fn junk_pipelined_behind_data_is_refused() {
    let input = b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: early\r\n\r\nbody\r\n.\r\n";
    let r = play(policy(&[]), Listener::Mx, false, &DIR, input, true);
    // The body is never read as commands (no 500s for its lines): closed.
    assert_eq!(
        r.codes(),
        ["220", "250", "250 2.1.0", "250 2.1.5", "554 5.5.0"]
    );
    assert!(r.closed);
    assert!(r.queued.is_empty());
}

#[test]
fn smuggling_by_pipelining_behind_a_refused_data_runs_nothing() {
    // No valid recipient, and a forged transaction pipelined as the body.
    let input = b"EHLO c
MAIL FROM:<>
RCPT TO:<nobody@example.test>
DATA
MAIL FROM:<evil@forged.test>
RCPT TO:<alice@example.test>
DATA
Subject: forged

x
.
";
    let r = play(policy(&[]), Listener::Mx, false, &DIR, input, true);
    assert_eq!(
        r.codes(),
        ["220", "250", "250 2.1.0", "550 5.1.1", "554 5.5.1"]
    );
    assert!(r.closed);
    assert!(r.queued.is_empty());
    assert!(!r.logs.iter().any(|l| l.contains("forged.test")));
}

#[test]
fn pipelined_transaction_with_bdat_chunks() {
    let r = run("EHLO c\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nBDAT 11\r\nSubject: x\rBDAT 9 LAST\r\n\n\r\nbody\r\nQUIT\r\n");
    assert_eq!(
        r.codes(),
        [
            "220",
            "250",
            "250 2.1.0",
            "250 2.1.5",
            "250 2.0.0",
            "250 2.0.0",
            "221 2.0.0"
        ]
    );
    assert!(r.wire.contains("250 2.0.0 11 octets received\r\n"));
    assert_eq!(r.queued[0].1, b"Subject: x\n\nbody\n");
    // A chunk without recipients is read and thrown away.
    let r = run("EHLO c\r\nMAIL FROM:<>\r\nBDAT 6 LAST\r\nQUIT\r\nNOOP\r\n");
    assert_eq!(
        r.codes(),
        ["220", "250", "250 2.1.0", "554 5.5.1", "250 2.0.0"]
    );
}

#[test]
fn utf8_addresses_need_smtputf8() {
    let r = run("EHLO c\r\nMAIL FROM:<ü@remote.test>\r\nMAIL FROM:<ü@remote.test> SMTPUTF8\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: é\r\n\r\nü\r\n.\r\n");
    assert_eq!(
        r.codes(),
        [
            "220",
            "250",
            "553 5.6.7",
            "250 2.1.0",
            "250 2.1.5",
            "354",
            "250 2.0.0"
        ]
    );
    assert!(r.queued[0].0.smtputf8);
    assert!(String::from_utf8_lossy(&r.queued[0].1).contains("with UTF8SMTP id"));
}

#[test]
fn too_many_errors_close_the_session_and_report() {
    let p = policy(&[("smtpd.max_bad_commands", "3")]);
    let r = run_with(
        p,
        Listener::Mx,
        false,
        &DIR,
        b"FOO\r\nBAR\r\nBAZ\r\nNOOP\r\n",
    );
    assert_eq!(
        r.codes(),
        ["220", "500 5.5.1", "500 5.5.1", "500 5.5.1", "421 4.7.0"]
    );
    assert!(r.closed);
    assert_eq!(r.reports, 1);
}

#[test]
fn denied_clients_senders_and_recipients() {
    let p = policy(&[("smtpd.deny_clients", "192.0.2.0/28")]);
    let r = run_with(
        p,
        Listener::Mx,
        false,
        &DIR,
        b"EHLO c\r\nMAIL FROM:<>\r\nQUIT\r\n",
    );
    assert_eq!(
        r.codes(),
        ["554 5.7.1", "503 5.5.1", "503 5.5.1", "221 2.0.0"]
    );
    let p = policy(&[
        ("smtpd.deny_sender_domains", "spam.test"),
        ("smtpd.deny_recipients", "bob@example.test"),
    ]);
    let r = run_with(p, Listener::Mx, false, &DIR, b"EHLO c\r\nMAIL FROM:<x@spam.test>\r\nMAIL FROM:<x@ok.test>\r\nRCPT TO:<BOB@example.test>\r\n");
    assert_eq!(
        r.codes(),
        ["220", "250", "550 5.7.1", "250 2.1.0", "550 5.7.1"]
    );
}

#[test]
fn starttls_resets_the_session_and_received_names_tls_and_user() {
    let input = format!(
        "EHLO c\r\nSTARTTLS\r\nMAIL FROM:<>\r\nEHLO c\r\nAUTH PLAIN {}\r\nMAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n",
        b64("\0alice@example.test\0secret")
    );
    let r = run_with(policy(&[]), Listener::Mx, false, &DIR, input.as_bytes());
    assert_eq!(
        r.codes(),
        [
            "220",
            "250",
            "220 2.0.0",
            "503 5.5.1",
            "250",
            "235 2.7.0",
            "250 2.1.0",
            "250 2.1.5",
            "354"
        ]
    );
    let r = run_with(
        policy(&[]),
        Listener::Mx,
        false,
        &DIR,
        format!("{input}hi\r\n.\r\n").as_bytes(),
    );
    let text = String::from_utf8_lossy(&r.queued[0].1).into_owned();
    assert!(text.contains("\t(using TLSv1.3 with cipher X)\n\t(authenticated sender: alice@example.test)\n\tby mx.example.test (Kmpromail) with ESMTPSA id QID1\n\tfor <bob@example.test>; "), "{text}");
    assert_eq!(
        r.queued[0].0.auth_user.as_deref(),
        Some("alice@example.test")
    );
}

#[test]
fn burl_only_on_submission_after_auth_and_for_the_user_who_logged_in() {
    let url = |user: &str, extra: &str| {
        format!(
            "imap://alice@example.test/INBOX{extra}/;uid=1;urlauth=submit+{user}:internal:{}",
            "0".repeat(64)
        )
    };
    // Port 25: not a command there.
    let r = run_with(
        policy(&[]),
        Listener::Mx,
        false,
        &DIR,
        format!(
            "EHLO c\r\nMAIL FROM:<x@remote.test>\r\nRCPT TO:<bob@example.test>\r\nBURL {} LAST\r\n",
            url("alice@example.test", "")
        )
        .as_bytes(),
    );
    assert_eq!(
        r.codes(),
        ["220", "250", "250 2.1.0", "250 2.1.5", "500 5.5.1"]
    );
    assert!(!r.wire.contains("BURL"));
    // Submission: not before AUTH; offered after it.
    let script = format!(
        "EHLO c\r\nBURL {u} LAST\r\nAUTH PLAIN {}\r\nEHLO c\r\n\
         MAIL FROM:<alice@example.test>\r\nBURL {u} LAST\r\nRCPT TO:<bob@example.test>\r\n\
         BURL {other} LAST\r\nBURL {plain} LAST\r\n\
         BURL {gone} LAST\r\n\
         MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n\
         BDAT 14\r\nX-First: yes\r\nBURL {u} LAST\r\n",
        b64("\0alice@example.test\0secret"),
        u = url("alice@example.test", ""),
        other = url("bob@example.test", ""),
        plain = "imap://alice@example.test/INBOX/;uid=1",
        gone = url("alice@example.test", "gone"),
    );
    let r = run_with(
        policy(&[]),
        Listener::Submission,
        true,
        &DIR,
        script.as_bytes(),
    );
    assert_eq!(
        r.codes(),
        [
            "220",
            "250",
            "530 5.7.0",
            "235 2.7.0",
            "250",
            "250 2.1.0",
            "554 5.5.1",
            "250 2.1.5",
            "554 5.7.0",
            "554 5.7.8",
            "554 5.6.6",
            "250 2.1.0",
            "250 2.1.5",
            "250 2.0.0",
            "250 2.0.0",
        ],
        "{}",
        r.wire
    );
    assert!(r.wire.contains("250 BURL imap\r\n"), "{}", r.wire);
    assert_eq!(r.queued.len(), 1);
    let text = String::from_utf8_lossy(&r.queued[0].1);
    assert!(
        text.ends_with("X-First: yes\nSubject: fetched\n\nfrom imap\n"),
        "{text:?}"
    );
}

#[test]
fn scan_refusals_at_rcpt_and_data_leave_the_session_usable() {
    let cmd = |line: &str| -> Command {
        let (_, c) = CommandReader::new().command(line.as_bytes());
        c.unwrap()
    };
    let reply_codes = |actions: &[Action]| -> Vec<u16> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Reply(r) => Some(r.code),
                _ => None,
            })
            .collect()
    };
    let mut s = Session::new(
        policy(&[]),
        "S9".into(),
        "192.0.2.7".parse().unwrap(),
        Listener::Mx,
        None,
    );
    s.greet(false);
    s.command(cmd("EHLO client.test\r\n"), false);
    assert_eq!(s.helo_name(), Some("client.test"));
    s.command(cmd("MAIL FROM:<a@remote.test>\r\n"), false);
    assert_eq!(s.transaction(), Some(("a@remote.test".to_string(), 0)));
    let Command::Rcpt {
        to: ForwardPath::Mailbox(m),
        ..
    } = cmd("RCPT TO:<alice@example.test>\r\n")
    else {
        panic!("not a RCPT");
    };
    let out = s.recipient_refused(
        m.clone(),
        Reply::new(451, "4.7.1", "Greylisted"),
        " reason=greylisted",
    );
    assert_eq!(reply_codes(&out), vec![451]);
    assert!(out
        .iter()
        .any(|a| matches!(a, Action::Log(l) if l.contains("reason=greylisted"))));
    // The transaction goes on: the next recipient is looked up.
    let out = s.recipient_result(m, RcptParams::default(), DIR.lookup("alice@example.test"));
    assert_eq!(reply_codes(&out), vec![250]);
    s.command(cmd("DATA\r\n"), false);
    let mut dec = BodyDecoder::new(Mode::Data, 1 << 20);
    let mut stored = Vec::new();
    dec.decode(b"Subject: x\r\n\r\nvirus\r\n.\r\n", &mut stored);
    let out = s.message_end(dec.summary());
    assert!(out.iter().any(|a| matches!(a, Action::Queue(_))));
    let out = s.content_refused(
        Reply::new(554, "5.7.0", "Message refused: virus X found"),
        "virus=X",
    );
    assert!(matches!(out[0], Action::Abort));
    assert_eq!(reply_codes(&out), vec![554]);
    assert_eq!(s.transaction(), None);
    // A new transaction starts at once.
    let out = s.command(cmd("MAIL FROM:<b@remote.test>\r\n"), false);
    assert_eq!(reply_codes(&out), vec![250]);
}
