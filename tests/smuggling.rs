//! SMTP smuggling against the real kmp-smtpd, over raw sockets.
//!
//! A relay that passes a bare LF or CR through unchanged lets a sender hide
//! a fake end of data (`<LF>.<CR><LF>` and friends) and a second, forged
//! transaction inside one message. Only `<CR><LF>.<CR><LF>` may end DATA
//! (RFC 5321 4.1.1.4), so every other arrangement of CR, LF and dot must
//! leave the rest in the body: the server answers once, at the real end,
//! queues at most that one message, and runs nothing after the fake end as
//! a command. The smuggled part is sent in the same write as the fake end
//! and in a later one (after the server has read and decoded the first).
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::Instance;

/// What follows the fake end: a whole forged transaction, whose own end
/// is the real end the relay adds after the body.
const SMUGGLED: &[u8] = b"MAIL FROM:<evil@forged.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nFrom: <ceo@example.test>\r\nSubject: smuggled\r\n\r\nPay now.";

/// An instance with example.test (users alice and bob), kmp-authd and
/// kmp-smtpd running.
fn start() -> Instance {
    let mut inst = Instance::new();
    inst.ctl_ok(&["domain", "add", "example.test"]);
    for u in ["alice@example.test", "bob@example.test"] {
        let out = inst.ctl_stdin(&["user", "add", u, "--password-stdin"], Some(b"secret\n"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    inst.spawn("kmp-smtpd", &[]);
    let pid = inst.path().join("run/kmp-smtpd.pid");
    common::wait_until(Duration::from_secs(20), || pid.exists())
        .unwrap_or_else(|_| panic!("kmp-smtpd did not start: {}", inst.log("kmp-smtpd")));
    inst.wait_port(25);
    inst
}

/// Every fake end of data: a line end and a dot written with CR and LF in
/// any way but CRLF . CRLF (which may not appear inside it either).
fn fake_ends() -> Vec<Vec<u8>> {
    let before: &[&[u8]] = &[b"\n", b"\r", b"\r\n", b"\n\r", b"\r\r", b"\n\n"];
    let after: &[&[u8]] = &[b"\n", b"\r", b"\r\n", b"\n\r", b"\r\r", b"\n\n", b"\r\r\n"];
    let mut out = Vec::new();
    for b in before {
        for a in after {
            let t = [*b, b".", *a].concat();
            if !t.windows(5).any(|w| w == b"\r\n.\r\n") {
                out.push(t);
            }
        }
    }
    out
}

/// Messages in the queue's drop directory, and files left half-written.
fn queued(inst: &Instance) -> (Vec<String>, usize) {
    let count = |d: &str| -> Vec<String> {
        std::fs::read_dir(inst.path().join("queue/incoming").join(d))
            .map(|d| {
                d.map(|e| e.unwrap().path().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let bodies = count("new")
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .collect();
    (bodies, count("tmp").len())
}

/// A raw SMTP conversation.
struct Raw {
    s: TcpStream,
    pending: Vec<u8>,
}

impl Raw {
    fn connect(inst: &Instance) -> Raw {
        let s = TcpStream::connect(inst.addr(25)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s.set_nodelay(true).unwrap();
        let mut r = Raw {
            s,
            pending: Vec::new(),
        };
        assert_eq!(r.code(), "220");
        r.send(b"EHLO relay.test\r\n");
        assert_eq!(r.code(), "250");
        r
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// The code of the next complete reply (`250 2.0.0`, or `354`); "" when
    /// the server closed or went quiet.
    fn code(&mut self) -> String {
        loop {
            while let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=i).collect();
                let line = String::from_utf8_lossy(&line).into_owned();
                if line.as_bytes().get(3) == Some(&b'-') {
                    continue;
                }
                let mut w = line.split(' ');
                let code = w.next().unwrap_or("").trim().to_string();
                return match w.next() {
                    Some(s) if s.starts_with(|c: char| c.is_ascii_digit()) && s.contains('.') => {
                        format!("{code} {s}")
                    }
                    _ => code,
                };
            }
            let mut buf = [0u8; 4096];
            match self.s.read(&mut buf) {
                Ok(0) | Err(_) => return String::new(),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// Every reply up to the one to HELP (214), which is sent last: what
    /// the server answered to everything before it.
    fn codes_until_help(&mut self) -> Vec<String> {
        self.send(b"HELP\r\n");
        let mut out = Vec::new();
        for _ in 0..20 {
            match self.code().as_str() {
                "214" | "214 2.0.0" => return out,
                "" => panic!("no answer to HELP after {out:?}"),
                c => out.push(c.to_string()),
            }
        }
        panic!("HELP never answered: {out:?}")
    }
}

/// One message with `fake` inside it, the smuggled transaction after it,
/// and the real end last; `split`: the smuggled part in a later write.
fn smuggle(r: &mut Raw, fake: &[u8], split: bool) -> Vec<String> {
    r.send(b"MAIL FROM:<news@relay.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
    assert_eq!(
        [r.code(), r.code(), r.code()],
        ["250 2.1.0", "250 2.1.5", "354"]
    );
    let head = [
        b"From: <news@relay.test>\r\nSubject: hello\r\n\r\nHello",
        fake,
    ]
    .concat();
    if split {
        r.send(&head);
        // Let the server read and decode the first part on its own.
        std::thread::sleep(Duration::from_millis(60));
        r.send(&[SMUGGLED, b"\r\n.\r\n"].concat());
    } else {
        r.send(&[&head[..], SMUGGLED, b"\r\n.\r\n"].concat());
    }
    r.codes_until_help()
}

#[test]
fn smtp_smuggling_fake_ends_of_data_neither_end_the_message_nor_run_commands() {
    let inst = start();
    let fakes = fake_ends();
    assert!(fakes.len() >= 40, "{} variants", fakes.len());
    for fake in &fakes {
        let mut r = Raw::connect(&inst);
        for split in [false, true] {
            let codes = smuggle(&mut r, fake, split);
            // One answer, at the real end: the message has a bare CR or LF
            // and is refused (RFC 5321 2.3.8). An extra answer would be the
            // smuggled MAIL, RCPT or DATA being run.
            assert_eq!(
                codes,
                ["550 5.6.0"],
                "fake end {fake:?}, smuggled part {}",
                if split {
                    "in a later write"
                } else {
                    "in the same write"
                }
            );
        }
        r.send(b"QUIT\r\n");
        assert_eq!(r.code(), "221 2.0.0");
    }
    let (bodies, tmp) = queued(&inst);
    assert!(bodies.is_empty(), "queued: {bodies:?}");
    assert_eq!(tmp, 0, "half-written messages left in incoming/tmp");
    let log = inst.log("kmp-smtpd");
    assert!(
        !log.contains("forged.test"),
        "smuggled MAIL was run:\n{log}"
    );
    assert!(!log.contains("alice@example.test"), "smuggled RCPT was run");
}

#[test]
fn smtp_smuggling_real_end_and_bdat_count_are_the_only_ends() {
    let inst = start();
    let mut r = Raw::connect(&inst);
    // A clean message whose body quotes a transaction: one message, which
    // holds the text, and nothing run.
    r.send(b"MAIL FROM:<news@relay.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
    assert_eq!(
        [r.code(), r.code(), r.code()],
        ["250 2.1.0", "250 2.1.5", "354"]
    );
    r.send(&[b"Subject: quoted\r\n\r\n", SMUGGLED, b"\r\n.\r\n"].concat());
    let codes = r.codes_until_help();
    assert_eq!(codes.len(), 1, "{codes:?}");
    assert_eq!(codes[0], "250 2.0.0");
    // BDAT ends by its count only: a CRLF.CRLF inside a chunk is content,
    // and so is everything after it up to the count.
    let chunk = [
        b"Subject: chunked\r\n\r\nHi\r\n.\r\n".as_slice(),
        SMUGGLED,
        b"\r\n",
    ]
    .concat();
    r.send(b"MAIL FROM:<news@relay.test>\r\nRCPT TO:<bob@example.test>\r\n");
    r.send(format!("BDAT {} LAST\r\n", chunk.len()).as_bytes());
    r.send(&chunk);
    let codes = r.codes_until_help();
    assert_eq!(codes, ["250 2.1.0", "250 2.1.5", "250 2.0.0"]);
    r.send(b"QUIT\r\n");
    assert_eq!(r.code(), "221 2.0.0");
    let (bodies, tmp) = queued(&inst);
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert_eq!(tmp, 0);
    for b in &bodies {
        assert!(b.contains("MAIL FROM:<evil@forged.test>\nRCPT"), "{b:?}");
        assert!(b.contains("\nPay now.\n"), "{b:?}");
    }
    assert!(bodies.iter().any(|b| b.contains("\nHi\n.\nMAIL FROM")));
    let log = inst.log("kmp-smtpd");
    assert!(
        !log.contains("forged.test"),
        "smuggled MAIL was run:\n{log}"
    );
}

#[test]
fn smtp_smuggling_by_pipelining_a_body_behind_a_refused_data_runs_nothing() {
    let inst = start();
    // The message sent before 354 (RFC 2920 3.1), with a forged transaction
    // in it: DATA is refused, for its pipelining or for want of a valid
    // recipient, and the session ends instead of reading the body as commands.
    for rcpt in ["bob@example.test", "nobody@example.test"] {
        let mut r = Raw::connect(&inst);
        let first = format!("MAIL FROM:<news@relay.test>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n");
        r.send(&[first.as_bytes(), SMUGGLED, b"\r\n.\r\nQUIT\r\n"].concat());
        let codes = [r.code(), r.code(), r.code(), r.code()];
        let want = if rcpt.starts_with("bob") {
            ["250 2.1.0", "250 2.1.5", "554 5.5.0", ""]
        } else {
            ["250 2.1.0", "550 5.1.1", "554 5.5.1", ""]
        };
        assert_eq!(codes, want, "{rcpt}");
    }
    let (bodies, tmp) = queued(&inst);
    assert!(bodies.is_empty(), "queued: {bodies:?}");
    assert_eq!(tmp, 0);
    let log = inst.log("kmp-smtpd");
    assert!(
        !log.contains("forged.test"),
        "smuggled MAIL was run:\n{log}"
    );
    assert!(log.contains("improper pipelining after DATA"), "{log}");
}
