//! kmp-smtpd as clients see it: Python's smtplib, swaks and raw sockets
//! against the real daemon, with the real kmp-authd behind it; what was
//! queued is read back from the queue's drop directory.
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Instance;
use kmpromail::queue::incoming::{read_dropped, read_message, Dropped};
use kmpromail::queue::QueueId;

/// An instance with example.test, users alice and bob (password "secret"),
/// the alias sales -> alice, kmp-authd and kmp-smtpd running. `smtpd` lines
/// go into `[smtpd]`, or `[authd]` when they start with `authd.`.
fn start(smtpd: &[&str]) -> Instance {
    let mut inst = Instance::new();
    for line in smtpd {
        match line.strip_prefix("authd.") {
            Some(l) => common::set_config(&inst, "authd", l),
            None => common::set_config(&inst, "smtpd", line),
        }
    }
    inst.ctl_ok(&["domain", "add", "example.test"]);
    for u in ["alice@example.test", "bob@example.test"] {
        let out = inst.ctl_stdin(&["user", "add", u, "--password-stdin"], Some(b"secret\n"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    inst.ctl_ok(&["alias", "add", "sales@example.test", "alice@example.test"]);
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    inst.spawn("kmp-smtpd", &[]);
    let pid = inst.path().join("run/kmp-smtpd.pid");
    common::wait_until(Duration::from_secs(20), || pid.exists())
        .unwrap_or_else(|_| panic!("kmp-smtpd did not start: {}", inst.log("kmp-smtpd")));
    inst
}

/// Messages in incoming/new: envelope and bytes, oldest first.
fn queued(inst: &Instance) -> Vec<(Dropped, String)> {
    let dir = inst.path().join("queue/incoming");
    let mut ids: Vec<String> = std::fs::read_dir(dir.join("new"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids.iter()
        .map(|id| {
            let qid: QueueId = id.parse().unwrap();
            let env = read_dropped(&dir, &qid).unwrap();
            let body = read_message(&dir, &qid).unwrap();
            (env, String::from_utf8_lossy(&body).into_owned())
        })
        .collect()
}

/// Files left in incoming/tmp (a half-written message would be one).
fn tmp_files(inst: &Instance) -> usize {
    std::fs::read_dir(inst.path().join("queue/incoming/tmp"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Runs a Python script with HOST PORT25 PORT587 PORT465 as arguments.
fn py(inst: &Instance, script: &str) -> String {
    let out = common::python(
        script,
        &[
            "127.0.0.1",
            &(inst.base + 25).to_string(),
            &(inst.base + 587).to_string(),
            &(inst.base + 465).to_string(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python failed: {stdout}{}\nkmp-smtpd log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        inst.log("kmp-smtpd")
    );
    stdout
}

const PY_HEAD: &str = r#"
import smtplib, ssl, sys, socket
host, p25, p587, p465 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
def expect(fn, code):
    try:
        r = fn()
    except smtplib.SMTPResponseException as e:
        r = (e.smtp_code, e.smtp_error)
    except smtplib.SMTPRecipientsRefused as e:
        r = list(e.recipients.values())[0]
    assert r[0] == code, (r, code)
    return r
"#;

/// A raw SMTP conversation.
struct Raw {
    s: TcpStream,
    pending: Vec<u8>,
}

impl Raw {
    fn connect(inst: &Instance, offset: u16) -> Raw {
        let s = TcpStream::connect(inst.addr(offset)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        Raw {
            s,
            pending: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> &mut Raw {
        self.s.write_all(bytes).unwrap();
        self
    }

    /// The next complete reply (all its lines), or "" when the server closed.
    fn reply(&mut self) -> String {
        let mut text = String::new();
        loop {
            while let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=i).collect();
                let line = String::from_utf8_lossy(&line).into_owned();
                text.push_str(&line);
                if line.as_bytes().get(3) != Some(&b'-') {
                    return text;
                }
            }
            let mut buf = [0u8; 4096];
            match self.s.read(&mut buf) {
                Ok(0) | Err(_) => return text,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// The codes of the next `n` replies (`250 2.1.0`: code and status).
    fn codes(&mut self, n: usize) -> Vec<String> {
        (0..n).map(|_| code_of(&self.reply())).collect()
    }

    /// Whether the server closed the connection (reads EOF soon).
    fn closed(&mut self) -> bool {
        let mut b = [0u8; 256];
        loop {
            match self.s.read(&mut b) {
                Ok(0) => return true,
                // A TLS alert, or replies still on their way.
                Ok(_) => continue,
                Err(e) => {
                    return !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    )
                }
            }
        }
    }
}

fn code_of(reply: &str) -> String {
    let last = reply.lines().last().unwrap_or("");
    let mut w = last.split(' ');
    let code = w.next().unwrap_or("").to_string();
    match w.next() {
        Some(s) if s.contains('.') && s.starts_with(|c: char| c.is_ascii_digit()) => {
            format!("{code} {s}")
        }
        _ => code,
    }
}

fn ehlo(r: &mut Raw) {
    assert_eq!(code_of(&r.reply()), "220");
    r.send(b"EHLO client.test\r\n");
    assert_eq!(code_of(&r.reply()), "250");
}

#[test]
fn smtplib_plain_starttls_implicit_tls_auth_and_relay_control() {
    let inst = start(&[]);
    let out = py(
        &inst,
        &format!(
            "{PY_HEAD}{}",
            r#"
msg = b"From: x@remote.test\r\nTo: alice@example.test\r\nSubject: plain\r\n\r\nhello\r\n.leading dot\r\n"
# Port 25, no TLS: a local recipient is accepted from anyone.
s = smtplib.SMTP(host, p25)
code, text = s.ehlo("client.test")
assert b"AUTH" not in text, text          # no AUTH without TLS
assert b"STARTTLS" in text and b"CHUNKING" in text and b"SMTPUTF8" in text
s.sendmail("x@remote.test", ["Alice@Example.test"], msg)
# The open-relay attempt: refused, from loopback too.
expect(lambda: s.sendmail("x@remote.test", ["victim@elsewhere.test"], msg), 554)
expect(lambda: s.sendmail("x@remote.test", ["nobody@example.test"], msg), 550)
s.quit()
# Port 587: STARTTLS, AUTH PLAIN, then relaying is allowed.
s = smtplib.SMTP(host, p587)
s.ehlo("client.test")
expect(lambda: s.mail("alice@example.test"), 530)
s.starttls(context=ctx)
s.ehlo("client.test")
assert s.has_extn("auth"), s.esmtp_features
expect(lambda: s.login("alice@example.test", "wrong"), 535)
s.login("alice@example.test", "secret")
s.sendmail("alice@example.test", ["friend@elsewhere.test"], b"Subject: relay\r\n\r\nout\r\n")
expect(lambda: s.sendmail("bob@example.test", ["friend@elsewhere.test"], b"Subject: forged\r\n\r\nx\r\n"), 553)
s.quit()
# Port 465: implicit TLS, AUTH LOGIN, an alias of the user as sender.
s = smtplib.SMTP_SSL(host, p465, context=ctx)
s.ehlo("client.test")
s.user, s.password = "bob@example.test", "secret"
s.auth("LOGIN", s.auth_login)
s.sendmail("bob@example.test", ["alice@example.test", "sales@example.test"], b"Subject: tls\r\n\r\nsecure\r\n")
s.quit()
print("ok")
"#
        ),
    );
    assert_eq!(out.trim(), "ok");
    let q = queued(&inst);
    assert_eq!(
        q.len(),
        3,
        "{:?}",
        q.iter().map(|m| &m.0.envelope).collect::<Vec<_>>()
    );
    let (plain, text) = &q[0];
    assert_eq!(plain.envelope.sender, "x@remote.test");
    assert_eq!(plain.envelope.recipients[0].address, "Alice@example.test");
    assert!(text.starts_with("Received: from client.test (unknown [127.0.0.1])\n\tby mx.example.test (Kmpromail) with ESMTP id "), "{text}");
    assert!(text.ends_with("\n\nhello\n.leading dot\n"), "{text:?}");
    assert!(!text.contains('\r'));
    let (relay, text) = &q[1];
    assert_eq!(
        relay.envelope.auth_user.as_deref(),
        Some("alice@example.test")
    );
    assert_eq!(
        relay.envelope.recipients[0].address,
        "friend@elsewhere.test"
    );
    assert!(text.contains("(using TLSv1.3 with cipher"), "{text}");
    assert!(text.contains("(authenticated sender: alice@example.test)\n\tby mx.example.test (Kmpromail) with ESMTPSA id "), "{text}");
    let (tls, _) = &q[2];
    assert_eq!(tls.envelope.recipients.len(), 2);
    assert_eq!(tls.envelope.auth_user.as_deref(), Some("bob@example.test"));
    // Queue ids in the replies and logs; no password anywhere in the log.
    let log = inst.log("kmp-smtpd");
    assert!(
        log.contains(&format!(
            "{}: client=unknown[127.0.0.1], sasl_username=alice@example.test",
            relay_id(&inst, 1)
        )),
        "{log}"
    );
    assert!(log.contains("reject: RCPT from unknown[127.0.0.1]: 554 5.7.1 Relay access denied; to=<victim@elsewhere.test>"), "{log}");
    assert!(log.contains("smtp connected address=127.0.0.1"), "{log}");
    assert!(!log.contains("secret") && !log.contains("wrong"), "{log}");
}

/// The queue id of the `i`th message in incoming/new.
fn relay_id(inst: &Instance, i: usize) -> String {
    let mut ids: Vec<String> = std::fs::read_dir(inst.path().join("queue/incoming/new"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids[i].clone()
}

#[test]
fn swaks_pipelining_8bit_utf8_and_dsn() {
    let inst = start(&[]);
    let run = |args: &[&str]| {
        let out = common::tool("swaks")
            .args(["--server", &inst.addr(25), "--helo", "swaks.test"])
            .args(args)
            .output()
            .expect("swaks runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "swaks {args:?}: {text}");
        text
    };
    let t = run(&[
        "--to",
        "bob@example.test",
        "--from",
        "s@remote.test",
        "--pipeline",
    ]);
    assert!(t.contains("queued as"), "{t}");
    let t = run(&[
        "--to",
        "alice@example.test",
        "--from",
        "alice@example.test",
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        "alice@example.test",
        "--auth-password",
        "secret",
        "--data",
        "Subject: caf\u{e9}\n\n8-bit body: \u{fc}ber\n",
    ]);
    assert!(t.contains("235 2.7.0") && t.contains("queued as"), "{t}");
    // DSN parameters and SMTPUTF8 over raw socket.
    let mut r = Raw::connect(&inst, 25);
    ehlo(&mut r);
    r.send("MAIL FROM:<j\u{f6}rg@remote.test> SMTPUTF8 BODY=8BITMIME RET=HDRS ENVID=abc+2Bdef\r\nRCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.test\r\nDATA\r\n".as_bytes());
    assert_eq!(r.codes(3), ["250 2.1.0", "250 2.1.5", "354"]);
    r.send("Subject: gr\u{fc}\u{df}e\r\n\r\n\u{4f60}\u{597d}\r\n.\r\n".as_bytes());
    assert_eq!(r.codes(1), ["250 2.0.0"]);
    let q = queued(&inst);
    assert_eq!(q.len(), 3);
    assert!(q[1].1.contains("8-bit body: \u{fc}ber"), "{}", q[1].1);
    let (utf8, text) = &q[2];
    assert_eq!(utf8.envelope.sender, "j\u{f6}rg@remote.test");
    assert!(utf8.envelope.smtputf8 && utf8.envelope.body_8bit);
    assert_eq!(utf8.envelope.envid.as_deref(), Some("abc+def"));
    assert_eq!(utf8.envelope.ret, Some(kmpromail::queue::Ret::Hdrs));
    let rc = &utf8.envelope.recipients[0];
    assert!(rc.notify.success && rc.notify.failure && !rc.notify.delay && rc.notify_given);
    assert_eq!(rc.orcpt.as_deref(), Some("rfc822;alice@example.test"));
    assert!(
        text.contains("with UTF8SMTP id") && text.contains("\u{4f60}\u{597d}"),
        "{text}"
    );
}

#[test]
fn pipelining_bdat_and_malformed_input_over_raw_sockets() {
    let inst = start(&["max_message_size = \"10K\"", "max_recipients = 2"]);
    // A whole transaction in one write (RFC 2920), then BDAT in two chunks.
    let mut r = Raw::connect(&inst, 25);
    ehlo(&mut r);
    r.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<bob@example.test>\r\nRCPT TO:<sales@example.test>\r\nDATA\r\n");
    assert_eq!(
        r.codes(6),
        [
            "250 2.1.0",
            "250 2.1.5",
            "550 5.1.1",
            "250 2.1.5",
            "452 4.5.3",
            "354"
        ]
    );
    r.send(b"Subject: piped\r\n\r\nx\r\n.\r\n");
    assert_eq!(r.codes(1), ["250 2.0.0"]);
    r.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nBDAT 11\r\nSubject: y\rBDAT 9 LAST\r\n\n\r\nbody\r\n");
    assert_eq!(
        r.codes(4),
        ["250 2.1.0", "250 2.1.5", "250 2.0.0", "250 2.0.0"]
    );
    // Oversize: declared, and undeclared.
    r.send(b"MAIL FROM:<a@remote.test> SIZE=20000\r\n");
    assert_eq!(r.codes(1), ["552 5.3.4"]);
    r.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
    assert_eq!(r.codes(3), ["250 2.1.0", "250 2.1.5", "354"]);
    let line = format!("{}\r\n", "z".repeat(500));
    r.send(line.repeat(30).as_bytes()).send(b".\r\n");
    assert_eq!(r.codes(1), ["552 5.3.4"]);
    // Bad content: bare LF, NUL, a 1001-octet line; the session goes on.
    for body in [
        &b"a\nb\r\n.\r\n"[..],
        b"a\x00b\r\n.\r\n",
        format!("{}\r\n.\r\n", "q".repeat(1001)).as_bytes(),
    ] {
        r.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
        assert_eq!(r.codes(3), ["250 2.1.0", "250 2.1.5", "354"]);
        r.send(body);
        assert_eq!(r.codes(1), ["550 5.6.0"], "{body:?}");
    }
    // "\n.\n" does not end DATA (no smuggling); only CRLF.CRLF does.
    r.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
    assert_eq!(r.codes(3), ["250 2.1.0", "250 2.1.5", "354"]);
    r.send(b"x\n.\nMAIL FROM:<evil@remote.test>\nRCPT TO:<alice@example.test>\r\n.\r\n");
    assert_eq!(r.codes(1), ["550 5.6.0"]);
    // Commands over 512 octets, NUL, out of sequence, unknown.
    r.send(format!("NOOP {}\r\n", "n".repeat(600)).as_bytes());
    r.send(b"NO\x00OP\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nBDAT 4 LAST\r\nabcdFOO\r\nNOOP\r\n");
    assert_eq!(
        r.codes(7),
        [
            "500 5.5.2",
            "500 5.5.2",
            "503 5.5.1",
            "503 5.5.1",
            "503 5.5.1",
            "500 5.5.1",
            "250 2.0.0"
        ]
    );
    // Junk pipelined after DATA is not taken as a message, nor as commands.
    r.send(
        b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nSubject: early\r\n",
    );
    assert_eq!(r.codes(3), ["250 2.1.0", "250 2.1.5", "554 5.5.0"]);
    assert!(r.closed());
    let q = queued(&inst);
    assert_eq!(q.len(), 2);
    assert_eq!(q[0].0.envelope.recipients.len(), 2);
    assert!(q[1].1.ends_with("\nSubject: y\n\nbody\n"), "{:?}", q[1].1);
    assert_eq!(tmp_files(&inst), 0);
}

#[test]
fn disconnect_mid_data_queues_nothing_and_slow_clients_time_out() {
    let inst = start(&["command_timeout = \"2s\"", "data_timeout = \"2s\""]);
    let mut r = Raw::connect(&inst, 25);
    ehlo(&mut r);
    r.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
    assert_eq!(r.codes(3), ["250 2.1.0", "250 2.1.5", "354"]);
    r.send(b"Subject: half\r\n\r\nhalf a message\r\n");
    drop(r);
    // Slowloris: a command dribbled a byte at a time is cut off whole.
    let mut slow = Raw::connect(&inst, 25);
    assert_eq!(code_of(&slow.reply()), "220");
    let start = Instant::now();
    for b in b"EHLO slow" {
        if slow.s.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(400));
    }
    assert_eq!(code_of(&slow.reply()), "421 4.4.2");
    assert!(start.elapsed() < Duration::from_secs(6));
    // And a client that stops in the middle of DATA.
    let mut stall = Raw::connect(&inst, 25);
    ehlo(&mut stall);
    stall.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
    assert_eq!(stall.codes(3), ["250 2.1.0", "250 2.1.5", "354"]);
    stall.send(b"Subject: stalled\r\n");
    assert_eq!(stall.codes(1), ["421 4.4.2"]);
    assert!(stall.closed());
    common::wait_until(Duration::from_secs(5), || tmp_files(&inst) == 0).expect("tmp emptied");
    assert!(queued(&inst).is_empty());
    let log = inst.log("kmp-smtpd");
    assert!(
        log.contains("lost connection") && log.contains("timeout from unknown[127.0.0.1]"),
        "{log}"
    );
    // SIGTERM: a waiting session is told 421, then the pid file goes.
    let mut idle = Raw::connect(&inst, 25);
    ehlo(&mut idle);
    let pid = inst.pid("kmp-smtpd").unwrap().to_string();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(term.success());
    assert_eq!(idle.codes(1), ["421 4.3.2"]);
    assert!(idle.closed());
    let pid_file = inst.path().join("run/kmp-smtpd.pid");
    common::wait_until(Duration::from_secs(10), || !pid_file.exists()).expect("pid file removed");
}

#[test]
fn connection_limits_bans_and_tls_garbage() {
    let mut inst = start(&["max_connections_per_ip = 20", "max_bad_commands = 3"]);
    // Many concurrent connections from one address: 20 served, the rest 421.
    let mut conns: Vec<Raw> = (0..1000).map(|_| Raw::connect(&inst, 25)).collect();
    let codes: Vec<String> = conns.iter_mut().map(|c| code_of(&c.reply())).collect();
    assert_eq!(
        codes.iter().filter(|c| *c == "220").count(),
        20,
        "{codes:?}"
    );
    assert_eq!(codes.iter().filter(|c| *c == "421 4.7.0").count(), 980);
    conns.clear();
    // TLS handshake garbage on 465 and after STARTTLS: closed, others served.
    let mut g = Raw::connect(&inst, 465);
    g.send(b"\x16\x03\x01\x00\x05hello garbage\r\nEHLO x\r\n");
    assert!(g.closed());
    let mut g = Raw::connect(&inst, 25);
    ehlo(&mut g);
    g.send(b"STARTTLS\r\n");
    assert_eq!(g.codes(1), ["220 2.0.0"]);
    g.send(b"GET / HTTP/1.0\r\n\r\nnot a TLS record at all");
    assert!(g.closed());
    // Too many errors: closed and reported to kmp-authd.
    let served = common::wait_until(Duration::from_secs(5), || {
        let mut r = Raw::connect(&inst, 25);
        code_of(&r.reply()) == "220"
    });
    assert!(served.is_ok(), "slots were given back");
    let mut bad = Raw::connect(&inst, 25);
    assert_eq!(code_of(&bad.reply()), "220");
    bad.send(b"A\r\nB\r\nC\r\n");
    assert_eq!(
        bad.codes(4),
        ["500 5.5.1", "500 5.5.1", "500 5.5.1", "421 4.7.0"]
    );
    assert!(bad.closed());
    // A banned address is turned away at the greeting.
    inst.ctl_ok(&["ban", "add", "127.0.0.1", "--time", "1h"]);
    let mut banned = Raw::connect(&inst, 25);
    assert_eq!(code_of(&banned.reply()), "421 4.7.0");
    assert!(banned.closed());
    inst.ctl_ok(&["ban", "del", "127.0.0.1"]);
    let mut back = Raw::connect(&inst, 25);
    assert_eq!(code_of(&back.reply()), "220");
    // kmp-authd down: lookups are temporary failures, never 5xx.
    inst.kill("kmp-authd");
    let mut r = Raw::connect(&inst, 25);
    ehlo(&mut r);
    r.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\n");
    assert_eq!(r.codes(2), ["250 2.1.0", "451 4.3.0"]);
}

#[test]
fn denied_clients_and_connection_rate() {
    let inst = start(&[]);
    let mut r = Raw::connect(&inst, 25);
    assert_eq!(code_of(&r.reply()), "220");
    // The deny list, put in force by SIGHUP.
    common::set_config(&inst, "smtpd", "deny_clients = [\"127.0.0.0/8\", \"::1\"]");
    let pid = inst.pid("kmp-smtpd").unwrap().to_string();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(hup.success());
    common::wait_until(Duration::from_secs(5), || {
        inst.log("kmp-smtpd").contains("configuration reloaded")
    })
    .expect("reloaded");
    let mut r = Raw::connect(&inst, 25);
    assert_eq!(code_of(&r.reply()), "554 5.7.1");
    r.send(b"EHLO x\r\nQUIT\r\n");
    assert_eq!(r.codes(2), ["503 5.5.1", "221 2.0.0"]);
    let inst = start(&["max_connection_rate = 3"]);
    let codes: Vec<String> = (0..5)
        .map(|_| {
            let mut r = Raw::connect(&inst, 25);
            code_of(&r.reply())
        })
        .collect();
    assert_eq!(codes, ["220", "220", "220", "421 4.7.0", "421 4.7.0"]);
}

/// Messages in a Maildir's new/ and cur/.
fn maildir_files(md: &std::path::Path) -> Vec<std::path::PathBuf> {
    ["new", "cur"]
        .iter()
        .flat_map(|d| std::fs::read_dir(md.join(d)).into_iter().flatten())
        .map(|e| e.unwrap().path())
        .collect()
}

#[test]
fn end_to_end_into_maildirs_through_the_queue() {
    let mut inst = start(&[]);
    inst.spawn("kmp-local", &[]);
    inst.wait_socket("local.sock");
    inst.spawn("kmp-send", &[]);
    let pid = inst.path().join("run/kmp-send.pid");
    common::wait_until(Duration::from_secs(20), || pid.exists())
        .unwrap_or_else(|_| panic!("kmp-send did not start: {}", inst.log("kmp-send")));
    let out = py(
        &inst,
        &format!(
            "{PY_HEAD}{}",
            r#"
s = smtplib.SMTP(host, p25)
s.ehlo("client.test")
# One message to a user and an alias of another, pipelined; one with UTF-8.
s.sendmail("x@remote.test", ["bob@example.test", "sales@example.test"],
           b"Subject: to two\r\n\r\nline\r\n..dot\r\n")
s.sendmail("j\xc3\xb6rg@remote.test".encode().decode("utf-8"), ["alice@example.test"],
           "Subject: gr\u00fc\u00dfe\r\n\r\n\u4f60\u597d\r\n".encode(), mail_options=["SMTPUTF8", "BODY=8BITMIME"])
s.quit()
print("ok")
"#
        ),
    );
    assert_eq!(out.trim(), "ok");
    let alice = inst.path().join("mail/example.test/alice");
    let bob = inst.path().join("mail/example.test/bob");
    common::wait_until(Duration::from_secs(30), || {
        maildir_files(&alice).len() == 2 && maildir_files(&bob).len() == 1
    })
    .unwrap_or_else(|_| {
        panic!(
            "not delivered:\n{}\n{}\n{}",
            inst.log("kmp-smtpd"),
            inst.log("kmp-send"),
            inst.log("kmp-local")
        )
    });
    let text: Vec<String> = maildir_files(&alice)
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .collect();
    let two = text.iter().find(|t| t.contains("Subject: to two")).unwrap();
    assert!(
        two.contains("Received: from client.test (unknown [127.0.0.1])"),
        "{two}"
    );
    // smtplib stuffed the dots; what arrives is what was given.
    assert!(two.ends_with("\n\nline\n..dot\n"), "{two:?}");
    let utf8 = text.iter().find(|t| t.contains("gr\u{fc}\u{df}e")).unwrap();
    assert!(
        utf8.contains("with UTF8SMTP id") && utf8.contains("\u{4f60}\u{597d}"),
        "{utf8}"
    );
    // The drop directory is empty again: kmp-send took everything in.
    common::wait_until(Duration::from_secs(10), || queued(&inst).is_empty()).expect("taken in");
}

#[test]
fn failed_logins_and_connection_floods_ban_the_address() {
    // Failed AUTH is counted by kmp-authd, in the ban list every service shares.
    let inst = start(&["authd.max_failures = 3"]);
    let out = py(
        &inst,
        &format!(
            "{PY_HEAD}{}",
            r#"
for i in range(3):
    s = smtplib.SMTP(host, p587)
    s.starttls(context=ctx)
    s.ehlo("client.test")
    s.user, s.password = "alice@example.test", "wrong%d" % i
    expect(lambda: s.auth("PLAIN", s.auth_plain), 535)
    s.quit()
try:
    smtplib.SMTP(host, p587)
    print("served")
except smtplib.SMTPConnectError as e:
    print(e.smtp_code)
"#
        ),
    );
    assert_eq!(out.trim(), "421");
    let mut r = Raw::connect(&inst, 25);
    let greeting = r.reply();
    assert!(
        greeting.starts_with("421 4.7.0 Too many errors"),
        "{greeting}"
    );
    let bans = inst.ctl_ok(&["ban", "list"]);
    assert!(bans.contains("127.0.0.1"), "{bans}");
    // A connection flood: each refused connection is reported, then the ban.
    let inst = start(&["max_connection_rate = 2", "authd.max_failures = 3"]);
    for _ in 0..5 {
        let mut r = Raw::connect(&inst, 25);
        r.reply();
    }
    common::wait_until(Duration::from_secs(5), || {
        inst.ctl_ok(&["ban", "list"]).contains("127.0.0.1")
    })
    .unwrap_or_else(|_| panic!("no ban: {}", inst.log("kmp-authd")));
}

#[test]
fn started_as_root_it_reads_the_key_then_drops_to_its_user() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Ok(Some(nobody)) = nix::unistd::User::from_name("nobody") else {
        eprintln!("skipped: no user nobody");
        return;
    };
    if !kmpromail::sys::privs::is_root() {
        eprintln!("skipped: not root");
        return;
    }
    let mut inst = Instance::new();
    inst.ctl_ok(&["domain", "add", "example.test"]);
    inst.ctl_ok(&["user", "add", "own@example.test"]);
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    // What `kmpctl setup` arranges with groups, done bluntly for the test:
    // the unprivileged user may reach kmp-authd, the run directory and the
    // queue's drop directory, but not the TLS key (0600, root's).
    let mode = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    mode(inst.path(), 0o755);
    mode(&inst.path().join("run"), 0o777);
    mode(&inst.path().join("run/authd.sock"), 0o666);
    let queue = inst.path().join("queue");
    let incoming = queue.join("incoming");
    for d in [
        &queue,
        &incoming,
        &incoming.join("tmp"),
        &incoming.join("env"),
        &incoming.join("new"),
    ] {
        std::fs::create_dir_all(d).unwrap();
        nix::unistd::chown(d.as_path(), Some(nobody.uid), Some(nobody.gid)).unwrap();
    }
    let key = std::fs::metadata(inst.path().join("tls/key.pem")).unwrap();
    assert_eq!((key.uid(), key.mode() & 0o777), (0, 0o600));
    let conf = std::fs::read_to_string(inst.config()).unwrap();
    let at = conf.find("[privileges]").unwrap();
    let (head, tail) = conf.split_at(at);
    let tail = tail.replacen("\nsmtpd = \"\"\n", "\nsmtpd = \"nobody\"\n", 1);
    assert!(tail.contains("smtpd = \"nobody\""), "{conf}");
    std::fs::write(inst.config(), format!("{head}{tail}")).unwrap();
    inst.spawn("kmp-smtpd", &[]);
    let pid_file = inst.path().join("run/kmp-smtpd.pid");
    common::wait_until(Duration::from_secs(20), || pid_file.exists())
        .unwrap_or_else(|_| panic!("{}", inst.log("kmp-smtpd")));
    let pid = inst.pid("kmp-smtpd").unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|u| u == nobody.uid.to_string()),
        "{uid_line}"
    );
    // STARTTLS works with the key read before the drop, and the message lands.
    let out = py(
        &inst,
        &format!(
            "{PY_HEAD}{}",
            r#"
s = smtplib.SMTP(host, p25)
s.starttls(context=ctx)
s.sendmail("x@remote.test", ["own@example.test"], b"Subject: dropped\r\n\r\nx\r\n")
s.quit()
print("ok")
"#
        ),
    );
    assert_eq!(out.trim(), "ok");
    let q = queued(&inst);
    assert_eq!(q.len(), 1);
    let id = relay_id(&inst, 0);
    let m = std::fs::metadata(incoming.join("new").join(id)).unwrap();
    assert_eq!(m.uid(), nobody.uid.as_raw());
}
