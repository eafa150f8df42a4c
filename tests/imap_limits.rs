//! kmp-imapd against hostile and slow clients (issue 11): literals before
//! login, APPEND of a large message, connections per address, a client that
//! stops reading, a TLS client that never says hello, and garbage that ends
//! in a ban. Raw sockets and Python's imaplib against the real binaries.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{python, wait_until, Instance};
use kmpromail::maildir::Maildir;

/// An instance with kmp-authd, kmp-imapd and the user u@example.test /
/// secret; `imapd` and `authd` lines go into those sections first.
fn start(imapd: &[&str], authd: &[&str]) -> Instance {
    let imapd = imapd.iter().map(|l| ("imapd", *l));
    let authd = authd.iter().map(|l| ("authd", *l));
    common::imap_instance_with(&imapd.chain(authd).collect::<Vec<_>>())
}

fn maildir(inst: &Instance) -> PathBuf {
    inst.path().join("mail/example.test/u")
}

/// A field of /proc/PID/status of kmp-imapd, in KiB (VmRSS, VmHWM).
fn vm_kib(inst: &Instance, field: &str) -> u64 {
    let pid = inst.pid("kmp-imapd").unwrap();
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {s}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A raw client.
struct Raw {
    s: TcpStream,
    r: BufReader<TcpStream>,
}

impl Raw {
    /// Connects and returns the client and the greeting line.
    fn connect(inst: &Instance) -> (Raw, String) {
        let s = TcpStream::connect(inst.addr(143)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut c = Raw {
            r: BufReader::new(s.try_clone().unwrap()),
            s,
        };
        let g = c.line();
        (c, g)
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        let _ = self.r.read_line(&mut l);
        l
    }

    fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).unwrap();
    }

    /// Sends a command and returns every line up to its tagged answer.
    fn cmd(&mut self, tag: &str, c: &str) -> String {
        self.send(format!("{tag} {c}\r\n").as_bytes());
        let mut all = String::new();
        loop {
            let l = self.line();
            if l.is_empty() {
                return all;
            }
            all.push_str(&l);
            if l.starts_with(&format!("{tag} ")) {
                return all;
            }
        }
    }

    /// Reads until the server closes (or 10 s pass): what came, and
    /// whether it was the end of the connection.
    fn rest(&mut self) -> (Vec<u8>, bool) {
        let mut v = Vec::new();
        let mut chunk = [0u8; 65536];
        loop {
            match self.r.read(&mut chunk) {
                Ok(0) => return (v, true),
                Ok(n) => v.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (v, true),
                Err(_) => return (v, false),
            }
        }
    }
}

/// imaplib still gets a session (the server serves others).
fn still_serves(inst: &Instance) {
    let out = python(
        "import imaplib, sys\nM = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))\n\
         M.login('u@example.test', 'secret')\nassert M.select('INBOX')[0] == 'OK'\nM.logout()\nprint('OK')\n",
        &[&(inst.base + 143).to_string()],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("OK"),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        inst.log("kmp-imapd")
    );
}

#[test]
fn prelogin_literal_over_the_cap_is_refused_without_continuation() {
    let inst = start(&[], &[]);
    let hwm = vm_kib(&inst, "VmHWM");
    let (mut c, g) = Raw::connect(&inst);
    assert!(g.starts_with("* OK"), "{g}");
    // A whole message's worth before login: no "+", a BAD at once.
    for (tag, cmd) in [
        ("a1", "APPEND INBOX {50000000}"),
        ("a2", "LOGIN {100000000}"),
        ("a3", "LOGIN {5000}"),
    ] {
        c.send(format!("{tag} {cmd}\r\n").as_bytes());
        let l = c.line();
        assert!(l.starts_with(&format!("{tag} BAD")), "{cmd}: {l}");
    }
    // A client that sends the data anyway: thrown away as it comes.
    c.send(b"a4 APPEND INBOX {20000000}\r\n");
    assert!(c.line().starts_with("a4 BAD"));
    let junk = vec![b'x'; 1 << 20];
    for _ in 0..20 {
        c.send(&junk);
    }
    c.send(b"\r\n");
    let l = c.line();
    assert!(l.starts_with("* BAD"), "{l}");
    let t = c.cmd("a5", "LOGIN u@example.test secret");
    assert!(t.contains("a5 OK"), "{t}");
    let grown = vm_kib(&inst, "VmHWM").saturating_sub(hwm);
    assert!(grown < 8 * 1024, "kmp-imapd grew by {grown} KiB");
    // A non-synchronizing one (RFC 7888 4): BAD, BYE, closed.
    let (mut d, _) = Raw::connect(&inst);
    d.send(b"b1 LOGIN {100000000+}\r\n");
    let (rest, closed) = d.rest();
    let rest = String::from_utf8_lossy(&rest);
    assert!(
        closed && rest.starts_with("b1 BAD") && rest.contains("* BYE"),
        "{rest}"
    );
    still_serves(&inst);
}

#[test]
fn append_of_a_large_message_is_streamed_and_arrives_intact() {
    let inst = start(&[], &[]);
    let hwm = vm_kib(&inst, "VmHWM");
    // 40 MB of CRLF lines with 8-bit bytes.
    let script = r#"
import imaplib, sys, hashlib
M = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
M.login('u@example.test', 'secret')
lines = [b'From: big@example.test', b'Subject: large', b'']
i = total = 0
while total < 40_000_000:
    lines.append(b'line %08d \x80\xff ' % i + b'y' * (i % 97))
    total += len(lines[-1]) + 2
    i += 1
msg = b'\r\n'.join(lines) + b'\r\n'
typ, data = M.append('INBOX', '(\\Seen)', None, msg)
assert typ == 'OK' and b'APPENDUID' in data[0], data
print('APPENDED', len(msg), hashlib.sha256(msg.replace(b'\r\n', b'\n')).hexdigest(), flush=True)
sys.stdin.readline()
M.select('INBOX')
typ, data = M.fetch('1', '(BODY.PEEK[])')
assert data[0][1] == msg, 'message changed'
typ, data = M.fetch('1', '(FLAGS)')
assert b'\\Seen' in data[0], data
M.logout()
print('OK')
"#;
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg((inst.base + 143).to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Measured before the FETCH (which reads the message whole).
    let grown = vm_kib(&inst, "VmHWM").saturating_sub(hwm);
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        first.starts_with("APPENDED") && rest.contains("OK"),
        "{first}{rest}\n{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        inst.log("kmp-imapd")
    );
    assert!(
        grown < 16 * 1024,
        "kmp-imapd grew by {grown} KiB for a 40 MB APPEND"
    );
    // On disk: LF line ends, the same bytes otherwise.
    let sha = first.split_whitespace().nth(2).unwrap().to_string();
    let md = maildir(&inst);
    let mut files = Vec::new();
    for sub in ["new", "cur"] {
        files.extend(
            std::fs::read_dir(md.join(sub))
                .unwrap()
                .map(|e| e.unwrap().path()),
        );
    }
    assert_eq!(files.len(), 1, "{files:?}");
    let disk = std::fs::read(&files[0]).unwrap();
    let out = python(
        "import sys, hashlib\nprint(hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest())",
        &[files[0].to_str().unwrap()],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), sha);
    assert!(!disk.windows(2).any(|w| w == b"\r\n"));
    // Nothing left behind in tmp/.
    assert_eq!(std::fs::read_dir(md.join("tmp")).unwrap().count(), 0);
}

#[test]
fn the_21st_connection_from_one_address_is_refused_by_default() {
    let inst = start(&[], &[]);
    let mut open = Vec::new();
    for i in 0..20 {
        let (c, g) = Raw::connect(&inst);
        assert!(g.starts_with("* OK"), "connection {}: {g}", i + 1);
        open.push(c);
    }
    let (mut c, g) = Raw::connect(&inst);
    assert!(g.starts_with("* BYE Too many connections"), "{g}");
    assert!(c.rest().1);
    // One goes away: there is room again.
    drop(open.pop());
    wait_until(Duration::from_secs(5), || {
        Raw::connect(&inst).1.starts_with("* OK")
    })
    .expect("a place came free");
}

#[test]
fn a_client_that_stops_reading_is_dropped_after_the_write_timeout() {
    let inst = start(&["write_timeout = \"1s\""], &[]);
    let md = Maildir::create(maildir(&inst)).unwrap();
    let mut big = b"From: a@example.test\nSubject: big\n\n".to_vec();
    while big.len() < 32 << 20 {
        big.extend_from_slice(
            b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuv\n",
        );
    }
    md.inbox().deliver(&mut &big[..], None).unwrap();
    let (mut c, _) = Raw::connect(&inst);
    assert!(c.cmd("a", "LOGIN u@example.test secret").contains("a OK"));
    assert!(c.cmd("b", "SELECT INBOX").contains("b OK"));
    c.send(b"c FETCH 1 BODY.PEEK[]\r\n");
    // The response has begun (making it takes a while in a debug build)...
    c.s.set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let first = c.line();
    assert!(first.starts_with("* 1 FETCH"), "{first}");
    c.s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // ...and the client stops reading: the server's writes stall, and
    // after one second it gives up on this client.
    std::thread::sleep(Duration::from_secs(4));
    let started = Instant::now();
    let (got, closed) = c.rest();
    assert!(closed, "still open after {:?}", started.elapsed());
    assert!(got.len() < big.len(), "the whole message was sent");
    still_serves(&inst);
}

#[test]
fn a_tls_client_that_never_handshakes_is_dropped_after_the_handshake_timeout() {
    let inst = start(&["handshake_timeout = \"1s\""], &[]);
    inst.wait_port(993);
    let s = TcpStream::connect(inst.addr(993)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let r = (&s).read(&mut buf);
    assert!(
        matches!(r, Ok(0))
            || matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{r:?} after {:?}",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_client_sending_garbage_is_banned() {
    let inst = start(&["max_errors = 5"], &["max_failures = 2"]);
    for round in 0..2 {
        let (mut c, g) = Raw::connect(&inst);
        assert!(g.starts_with("* OK"), "round {round}: {g}");
        c.send(&b"x GARBAGE\r\n".repeat(10));
        let (rest, closed) = c.rest();
        let rest = String::from_utf8_lossy(&rest);
        assert!(
            closed && rest.contains("* BYE Too many bad commands"),
            "{rest}"
        );
        assert_eq!(rest.matches("x BAD").count(), 5, "{rest}");
    }
    let bans = inst.ctl_ok(&["ban", "list"]);
    assert!(bans.contains("127.0.0.1"), "{bans}");
    let (mut c, g) = Raw::connect(&inst);
    assert!(g.starts_with("* BYE Your address is blocked"), "{g}");
    assert!(c.rest().1);
}
