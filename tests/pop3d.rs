//! kmp-pop3d as clients see it: Python's poplib for every command, STLS and
//! port 995, SASL PLAIN and pipelining over a raw socket, fetchmail pulling
//! mail into an MDA, a second client's [IN-USE], and bad input.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::Instance;

const USER: &str = "u@example.test";
const PASS: &str = "pw with space";

/// An instance with kmp-authd, one user and kmp-pop3d running, with
/// `extra_config` lines in its [pop3d] section. Returns the user's Maildir
/// (which does not exist yet).
fn start(extra_config: &str) -> (Instance, PathBuf) {
    let mut inst = Instance::new();
    if !extra_config.is_empty() {
        common::set_config(&inst, "pop3d", extra_config);
    }
    inst.ctl_ok(&["domain", "add", "example.test"]);
    let out = inst.ctl_stdin(
        &["user", "add", USER, "--password-stdin"],
        Some(format!("{PASS}\n").as_bytes()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    inst.spawn("kmp-pop3d", &[]);
    let pid = inst.path().join("run/kmp-pop3d.pid");
    common::wait_until(Duration::from_secs(10), || pid.exists())
        .unwrap_or_else(|_| panic!("kmp-pop3d never got ready: {}", inst.log("kmp-pop3d")));
    let maildir = inst.path().join("mail/example.test/u");
    (inst, maildir)
}

/// Puts messages into a Maildir with Python's mailbox module (another
/// program's writer, as a real site has) in a Maildir the library made.
fn put(maildir: &Path, messages: &[&[u8]]) {
    kmpromail::maildir::Maildir::create(maildir).unwrap();
    let script = r#"
import mailbox, sys, time
md = mailbox.Maildir(sys.argv[1], create=True)
for path in sys.argv[2:]:
    with open(path, 'rb') as f:
        md.add(f.read())
    time.sleep(0.01)
"#;
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![maildir.to_str().unwrap().to_string()];
    for (i, m) in messages.iter().enumerate() {
        let p = dir.path().join(format!("m{i}"));
        std::fs::write(&p, m).unwrap();
        args.push(p.to_str().unwrap().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = common::python(script, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The message files in new/ and cur/.
fn files(maildir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = std::fs::read_dir(maildir.join(sub)) {
            v.extend(rd.map(|e| e.unwrap().path()));
        }
    }
    v.sort();
    v
}

fn py_ok(script: &str, args: &[&str]) -> String {
    let out = common::python(script, args);
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A raw client: send lines, read replies.
struct Raw {
    r: BufReader<TcpStream>,
}

impl Raw {
    fn connect(addr: &str) -> Raw {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = Raw {
            r: BufReader::new(s),
        };
        let g = r.line();
        assert!(g.starts_with("+OK"), "{g}");
        r
    }

    fn send(&mut self, text: &str) {
        self.r.get_mut().write_all(text.as_bytes()).unwrap();
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        l
    }

    /// Sends one command and returns the first line of the answer.
    fn cmd(&mut self, c: &str) -> String {
        self.send(&format!("{c}\r\n"));
        self.line()
    }

    /// Reads a multi-line body up to ".".
    fn body(&mut self) -> Vec<String> {
        let mut v = Vec::new();
        loop {
            let l = self.line();
            assert!(!l.is_empty(), "connection closed in a multi-line answer");
            if l == ".\r\n" {
                return v;
            }
            v.push(l);
        }
    }

    fn login(&mut self) -> String {
        assert!(self.cmd(&format!("USER {USER}")).starts_with("+OK"));
        self.cmd(&format!("PASS {PASS}"))
    }

    /// Reads until the server closes; returns what came.
    fn rest(&mut self) -> String {
        let mut s = String::new();
        let _ = self.r.read_to_string(&mut s);
        s
    }
}

const M1: &[u8] =
    b"From: a@example.test\nSubject: first\n\nline one\n.starts with a dot\n..two dots\n";
const M2: &[u8] =
    b"From: b@example.test\r\nSubject: crlf on disk\r\n\r\nbody\r\n.\r\nafter a lone dot\r\n";

fn big() -> Vec<u8> {
    let mut m = b"From: c@example.test\nSubject: big\n\n".to_vec();
    for i in 0..3000 {
        m.extend_from_slice(format!("{i:05} {}\n", "x".repeat(60)).as_bytes());
    }
    m
}

#[test]
fn poplib_every_command() {
    let (inst, md) = start("");
    let m3 = big();
    put(&md, &[M1, M2, &m3]);
    let script = r#"
import poplib, sys
host, port, user, pw, m3 = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
p = poplib.POP3(host, port, timeout=10)
print("welcome", p.getwelcome().decode())
caps = p.capa()
for k in ["TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "STLS", "IMPLEMENTATION"]:
    assert k in caps, (k, caps)
assert caps["SASL"] == ["PLAIN"], caps
p.user(user)
p.pass_(pw)
count, size = p.stat()
assert count == 3, count
resp, listing, _ = p.list()
sizes = [int(l.split()[1]) for l in listing]
assert sum(sizes) == size, (sizes, size)
resp, uidl, _ = p.uidl()
uids = [l.split()[1].decode() for l in uidl]
assert len(set(uids)) == 3 and all(len(u) == 16 for u in uids), uids
assert p.uidl(2).split()[2].decode() == uids[1]
assert p.list(3).split()[2] == str(sizes[2]).encode()
want1 = [b"From: a@example.test", b"Subject: first", b"", b"line one", b".starts with a dot", b"..two dots"]
resp, lines, octets = p.retr(1)
assert lines == want1, lines
assert resp == b"+OK %d octets" % sizes[0], resp
resp, lines, octets = p.retr(2)
assert lines == [b"From: b@example.test", b"Subject: crlf on disk", b"", b"body", b".", b"after a lone dot"], lines
resp, lines, octets = p.retr(3)
with open(m3, "rb") as f:
    assert lines == f.read().split(b"\n")[:-1]
# The size LIST gave is what RETR sent (CRLF counted, stuffing not).
assert sum(len(l) + 2 for l in lines) == sizes[2], (sum(len(l) + 2 for l in lines), sizes[2])
resp, lines, _ = p.top(1, 1)
assert lines == want1[:4], lines
resp, lines, _ = p.top(3, 0)
assert lines == [b"From: c@example.test", b"Subject: big", b""], lines
p.dele(1)
try:
    p.retr(1)
    raise SystemExit("RETR of a deleted message worked")
except poplib.error_proto as e:
    assert str(e).startswith("b'-ERR"), e
assert p.stat()[0] == 2
p.rset()
assert p.stat()[0] == 3
p.noop()
p.dele(1)
p.dele(3)
print(p.quit().decode())
print("uids", " ".join(uids))
"#;
    let out = py_ok(
        script,
        &["127.0.0.1", &(inst.base + 110).to_string(), USER, PASS, &{
            let p = inst.path().join("m3");
            std::fs::write(&p, &m3).unwrap();
            p.to_str().unwrap().to_string()
        }],
    );
    assert!(
        out.contains("+OK Bye (2 messages deleted, 1 left)"),
        "{out}"
    );
    let uids: Vec<String> = out
        .lines()
        .find_map(|l| l.strip_prefix("uids "))
        .unwrap()
        .split(' ')
        .map(str::to_string)
        .collect();
    let left = files(&md);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(std::fs::read(&left[0])
        .unwrap()
        .ends_with(b"after a lone dot\r\n"));
    // The id is the message's IMAP UID and UIDVALIDITY in the shared index,
    // so IMAP (kmp-imapd, or anything on the Maildir library) sees the same.
    let inbox = kmpromail::maildir::Maildir::new(&md)
        .inbox()
        .open()
        .unwrap();
    let m = inbox.messages().next().unwrap();
    assert_eq!(
        uids[1],
        format!("{:08X}{:08X}", m.uid.0, inbox.uid_validity())
    );
    drop(inbox);
    // A new session: the survivor keeps its unique id, and is now number 1.
    let mut c = Raw::connect(&inst.addr(110));
    assert!(c.login().starts_with("+OK Maildrop has 1 message "));
    assert_eq!(c.cmd("UIDL 1"), format!("+OK 1 {}\r\n", uids[1]));
    // New mail gets a new id, never one of the deleted ones.
    assert!(c.cmd("QUIT").starts_with("+OK"));
    put(&md, &[b"Subject: new\n\nnew\n"]);
    let mut c = Raw::connect(&inst.addr(110));
    c.login();
    assert!(c.cmd("UIDL").starts_with("+OK"));
    let l = c.body();
    assert_eq!(l.len(), 2);
    assert_eq!(l[0], format!("1 {}\r\n", uids[1]));
    let new = l[1].split_whitespace().nth(1).unwrap();
    assert!(!uids.iter().any(|u| u == new), "{new} reused");
    // The ids survive a restart of the server.
    drop(c);
    let mut inst = inst;
    inst.kill("kmp-pop3d");
    inst.spawn("kmp-pop3d", &[]);
    inst.wait_port(110);
    let mut c = Raw::connect(&inst.addr(110));
    c.login();
    c.cmd("UIDL");
    assert_eq!(c.body(), l);
}

#[test]
fn stls_and_port_995() {
    let (inst, md) = start("");
    put(&md, &[M1]);
    let script = r#"
import poplib, ssl, sys
host, p110, p995, user, pw = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
p = poplib.POP3(host, p110, timeout=10)
p.stls(context=ctx)
caps = p.capa()
assert "STLS" not in caps and "USER" in caps, caps
p.user(user); p.pass_(pw)
assert p.stat()[0] == 1
assert p.retr(1)[1][1] == b"Subject: first"
p.quit()
s = poplib.POP3_SSL(host, p995, context=ctx, timeout=10)
assert "STLS" not in s.capa()
s.user(user); s.pass_(pw)
assert s.retr(1)[1][0] == b"From: a@example.test"
s.dele(1)
print(s.quit().decode())
"#;
    let out = py_ok(
        script,
        &[
            "127.0.0.1",
            &(inst.base + 110).to_string(),
            &(inst.base + 995).to_string(),
            USER,
            PASS,
        ],
    );
    assert!(out.contains("1 message deleted"), "{out}");
    assert!(files(&md).is_empty());
    // Commands pipelined after STLS in the clear are thrown away
    // (CVE-2011-0411): the first answer inside TLS is to the first command
    // sent inside TLS.
    let script = r#"
import socket, ssl, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
f = s.makefile("rb")
assert f.readline().startswith(b"+OK")
s.sendall(b"STLS\r\nCAPA\r\n")
assert f.readline() == b"+OK Begin TLS negotiation\r\n"
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s)
t.sendall(b"NOOP\r\n")
print(t.makefile("rb").readline().decode().strip())
"#;
    let out = py_ok(script, &["127.0.0.1", &(inst.base + 110).to_string()]);
    assert_eq!(out.trim(), "-ERR Not logged in: use USER and PASS, or AUTH");
}

#[test]
fn sasl_plain_raw() {
    let (inst, md) = start("");
    put(&md, &[M1]);
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut c = Raw::connect(&inst.addr(110));
    assert_eq!(c.cmd("AUTH"), "+OK Mechanisms follow\r\n");
    assert_eq!(c.body(), vec!["PLAIN\r\n"]);
    assert_eq!(c.cmd("AUTH PLAIN"), "+ \r\n");
    assert_eq!(c.cmd("*"), "-ERR Authentication cancelled\r\n");
    assert_eq!(c.cmd("AUTH PLAIN"), "+ \r\n");
    assert_eq!(
        c.cmd("%%% garbage %%%"),
        "-ERR Response is not valid base64\r\n"
    );
    let bad = b64(&format!("\0{USER}\0wrong"));
    assert!(c
        .cmd(&format!("AUTH PLAIN {bad}"))
        .starts_with("-ERR [AUTH]"));
    assert!(c.cmd("AUTH CRAM-MD5").starts_with("-ERR"));
    assert_eq!(c.cmd("AUTH PLAIN"), "+ \r\n");
    let good = b64(&format!("\0{USER}\0{PASS}"));
    assert!(c.cmd(&good).starts_with("+OK Maildrop has 1 message "));
    assert_eq!(c.cmd("STAT"), format!("+OK 1 {}\r\n", M1.len() + 6));
    assert!(c.cmd("QUIT").starts_with("+OK"));
    // With the initial response on the AUTH line.
    let mut c = Raw::connect(&inst.addr(110));
    assert!(c
        .cmd(&format!("AUTH PLAIN {good}"))
        .starts_with("+OK Maildrop"));
}

#[test]
fn pipelining_and_in_use() {
    let (inst, md) = start("");
    put(&md, &[M1, M2, b"Subject: 3\n\nthree\n"]);
    let mut a = Raw::connect(&inst.addr(110));
    a.send(&format!(
        "CAPA\r\nUSER {USER}\r\nPASS {PASS}\r\nSTAT\r\nLIST 2\r\nRETR 3\r\nDELE 3\r\nNOOP\r\n"
    ));
    assert_eq!(a.line(), "+OK Capability list follows\r\n");
    assert!(a.body().contains(&"PIPELINING\r\n".to_string()));
    assert!(a.line().starts_with("+OK"));
    assert!(a.line().starts_with("+OK Maildrop has 3"));
    assert!(a.line().starts_with("+OK 3 "));
    assert_eq!(a.line(), format!("+OK 2 {}\r\n", M2.len()));
    assert!(a.line().starts_with("+OK "));
    assert_eq!(a.body(), vec!["Subject: 3\r\n", "\r\n", "three\r\n"]);
    assert_eq!(a.line(), "+OK Message deleted\r\n");
    assert_eq!(a.line(), "+OK\r\n");
    // A second client is refused while the first holds the maildrop.
    let mut b = Raw::connect(&inst.addr(110));
    assert!(b.login().starts_with("-ERR [IN-USE]"));
    // It may try again in the same session once the first has gone.
    assert!(a.cmd("QUIT").starts_with("+OK Bye (1 message deleted"));
    assert!(b.login().starts_with("+OK Maildrop has 2"));
    // A client that drops without QUIT releases the lock and deletes nothing.
    assert_eq!(b.cmd("DELE 1"), "+OK Message deleted\r\n");
    drop(b);
    let mut c = Raw::connect(&inst.addr(110));
    let mut tries = 0;
    loop {
        let r = c.login();
        if r.starts_with("+OK Maildrop has 2") {
            break;
        }
        assert!(r.starts_with("-ERR [IN-USE]") && tries < 50, "{r}");
        tries += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(files(&md).len(), 2);
    // A server killed outright leaves no lock behind either.
    let mut inst = inst;
    inst.kill("kmp-pop3d");
    drop(c);
    inst.spawn("kmp-pop3d", &[]);
    inst.wait_port(110);
    let mut d = Raw::connect(&inst.addr(110));
    assert!(d.login().starts_with("+OK Maildrop has 2"));
}

#[test]
fn bad_input_gets_errors_and_loses_nothing() {
    let (inst, md) = start("max_errors = 40");
    put(&md, &[M1, M2]);
    let mut c = Raw::connect(&inst.addr(110));
    for cmd in [
        "STAT", "LIST", "RETR 1", "DELE 1", "UIDL", "TOP 1 1", "RSET", "NOOP",
    ] {
        assert!(c.cmd(cmd).starts_with("-ERR Not logged in"), "{cmd}");
    }
    assert!(c
        .cmd(&format!("PASS {PASS}"))
        .starts_with("-ERR Send USER first"));
    assert!(c
        .cmd("APOP u 0123456789abcdef0123456789abcdef")
        .starts_with("-ERR APOP is not offered"));
    assert_eq!(
        c.cmd(&format!("USER {}", "x".repeat(5000))),
        "-ERR Line too long\r\n"
    );
    assert!(c.cmd("XYZZY").starts_with("-ERR Unknown command"));
    assert!(c.login().starts_with("+OK Maildrop has 2"));
    for (cmd, want) in [
        ("RETR", "-ERR RETR: takes one message number"),
        ("RETR one", "-ERR RETR: the message number"),
        ("RETR 0", "-ERR RETR: the message number"),
        ("RETR -1", "-ERR RETR: the message number"),
        ("RETR 3", "-ERR No such message"),
        ("RETR 99999999999", "-ERR RETR: the message number"),
        ("LIST 7", "-ERR No such message"),
        ("TOP 1", "-ERR TOP: takes a message number and a line count"),
        ("TOP 1 x", "-ERR TOP: the line count is not a number"),
        ("DELE x", "-ERR DELE: the message number"),
        ("UIDL 3", "-ERR No such message"),
        ("STLS", "-ERR STLS is only allowed before login"),
        ("USER again", "-ERR Already logged in"),
        ("BOGUS", "-ERR Unknown command"),
    ] {
        let got = c.cmd(cmd);
        assert!(got.starts_with(want), "{cmd}: {got}");
    }
    assert_eq!(c.cmd("DELE 1"), "+OK Message deleted\r\n");
    assert!(c.cmd("RETR 1").starts_with("-ERR Message already deleted"));
    assert!(c.cmd("DELE 1").starts_with("-ERR Message already deleted"));
    assert!(c.cmd("LIST 1").starts_with("-ERR Message already deleted"));
    // Still alive after all that.
    assert!(c.cmd("STAT").starts_with("+OK 1 "));
    // Dropping the connection deletes nothing.
    drop(c);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(files(&md).len(), 2);
    // A client that says QUIT and goes away without reading the answer: the
    // deletion it asked for happens, nothing else is lost.
    let mut c = Raw::connect(&inst.addr(110));
    c.send(&format!("USER {USER}\r\nPASS {PASS}\r\nDELE 2\r\nQUIT\r\n"));
    c.r.get_mut().shutdown(std::net::Shutdown::Both).unwrap();
    drop(c);
    common::wait_until(Duration::from_secs(5), || files(&md).len() == 1).unwrap();
    let left = std::fs::read(&files(&md)[0]).unwrap();
    assert_eq!(left, M1);
    // A client that keeps sending garbage is cut off.
    let mut c = Raw::connect(&inst.addr(110));
    c.send(&"JUNK\r\n".repeat(60));
    let rest = c.rest();
    assert!(rest.contains("-ERR Too many bad commands"), "{rest}");
}

#[test]
fn fetchmail_with_and_without_keep() {
    let (inst, md) = start("");
    let msgs: Vec<Vec<u8>> = (0..5)
        .map(|i| {
            format!("From: s{i}@example.test\nSubject: fetch {i}\n\nbody {i}\n.dot line\n")
                .into_bytes()
        })
        .collect();
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    put(&md, &refs);
    let dir = inst.path().join("fetchmail");
    std::fs::create_dir_all(&dir).unwrap();
    let run = |keep: bool, out: &Path| {
        let rc = dir.join("rc");
        std::fs::write(
            &rc,
            format!(
                "set no syslog\nset idfile \"{}\"\npoll 127.0.0.1 port {} proto pop3 uidl\n  user \"{USER}\" there with password \"{PASS}\" is \"nobody\" here\n  {} no sslcertck\n  mda \"cat >> {}\"\n",
                dir.join("ids").display(),
                inst.base + 110,
                if keep { "keep" } else { "nokeep fetchall" },
                out.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&rc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let o = common::tool("fetchmail")
            .args(["-f", rc.to_str().unwrap(), "--nodetach", "-v"])
            .env("HOME", &dir)
            .env("FETCHMAILHOME", &dir)
            .output()
            .expect("fetchmail runs");
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.status.success(),
            "fetchmail failed ({:?}):\n{log}",
            o.status.code()
        );
        log
    };
    let kept = dir.join("kept.mbox");
    run(true, &kept);
    let got = std::fs::read_to_string(&kept).unwrap();
    for i in 0..5 {
        assert!(got.contains(&format!("Subject: fetch {i}\n")), "{got}");
    }
    assert!(got.contains("\n.dot line\n"), "dot-stuffing undone: {got}");
    assert_eq!(files(&md).len(), 5, "--keep deleted mail");
    let all = dir.join("all.mbox");
    run(false, &all);
    let got = std::fs::read_to_string(&all).unwrap();
    assert_eq!(got.matches("Subject: fetch ").count(), 5, "{got}");
    assert!(
        files(&md).is_empty(),
        "mail left after fetchmail without keep"
    );
}

#[test]
fn failed_logins_lead_to_a_ban_for_the_address() {
    let mut inst = Instance::new();
    common::set_config(&inst, "authd", "max_failures = 3");
    inst.ctl_ok(&["domain", "add", "example.test"]);
    let out = inst.ctl_stdin(&["user", "add", USER, "--password-stdin"], Some(b"right\n"));
    assert!(out.status.success());
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    inst.spawn("kmp-pop3d", &[]);
    inst.wait_port(110);
    let mut c = Raw::connect(&inst.addr(110));
    for _ in 0..3 {
        c.cmd(&format!("USER {USER}"));
        let r = c.cmd("PASS wrong");
        assert!(r.starts_with("-ERR [AUTH]"), "{r}");
    }
    // Banned now: even the right password is refused, and new connections
    // are told so and closed.
    c.cmd(&format!("USER {USER}"));
    let r = c.cmd("PASS right");
    assert!(r.starts_with("-ERR [AUTH]"), "{r}");
    let s = TcpStream::connect(inst.addr(110)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut all = String::new();
    BufReader::new(s).read_to_string(&mut all).unwrap();
    assert!(all.starts_with("-ERR [AUTH]"), "{all}");
    // The administrator lifts it.
    inst.ctl_ok(&["ban", "del", "127.0.0.1"]);
    let mut c = Raw::connect(&inst.addr(110));
    c.cmd(&format!("USER {USER}"));
    assert!(c.cmd("PASS right").starts_with("+OK"));
}

#[test]
fn idle_timeout_closes_without_deleting() {
    let (inst, md) = start("timeout = \"1s\"");
    put(&md, &[M1, M2]);
    let mut c = Raw::connect(&inst.addr(110));
    assert!(c.login().starts_with("+OK"));
    assert!(c.cmd("DELE 1").starts_with("+OK"));
    let rest = c.rest();
    assert_eq!(rest, "-ERR Disconnected for inactivity\r\n");
    assert_eq!(files(&md).len(), 2);
}

#[test]
fn per_account_subfolders_and_login_delay() {
    let (mut inst, md) = start("");
    // Per-account options are set through the database's text form.
    let dump = inst.ctl_ok(&["db", "dump"]);
    let dump = dump.replace(
        "\"pop3_subfolders\":false,\"login_delay\":0",
        "\"pop3_subfolders\":true,\"login_delay\":3600",
    );
    assert!(dump.contains("\"login_delay\":3600"), "{dump}");
    let out = inst.ctl_stdin(&["db", "load", "--replace"], Some(dump.as_bytes()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    inst.kill("kmp-authd");
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    put(&md, &[M1]);
    let maildir = kmpromail::maildir::Maildir::new(&md);
    for (folder, body) in [("Junk", "in junk"), ("Trash", "in trash")] {
        let text = format!("Subject: {body}\n\n{body}\n");
        maildir
            .folder(folder)
            .unwrap()
            .deliver(&mut text.as_bytes(), None)
            .unwrap();
    }
    let mut c = Raw::connect(&inst.addr(110));
    assert!(c.login().starts_with("+OK Maildrop has 2 messages"));
    assert!(c.cmd("CAPA").starts_with("+OK"));
    let capa = c.body();
    assert!(
        capa.contains(&"LOGIN-DELAY 3600\r\n".to_string()),
        "{capa:?}"
    );
    c.cmd("UIDL");
    let uidl = c.body();
    assert_ne!(
        uidl[0].split_whitespace().nth(1),
        uidl[1].split_whitespace().nth(1)
    );
    assert!(c.cmd("TOP 2 0").starts_with("+OK"));
    assert!(c.body().contains(&"Subject: in junk\r\n".to_string()));
    assert!(c.cmd("DELE 2").starts_with("+OK"));
    assert!(c.cmd("QUIT").starts_with("+OK Bye (1 message deleted"));
    assert!(files(&md.join(".Junk")).is_empty());
    assert_eq!(files(&md.join(".Trash")).len(), 1);
    // Too soon for another login.
    let mut c = Raw::connect(&inst.addr(110));
    assert!(c.login().starts_with("-ERR [LOGIN-DELAY]"));
}

#[test]
fn end_to_end_through_smtp_and_the_queue() {
    let (mut inst, md) = start("");
    inst.spawn("kmp-local", &[]);
    inst.wait_socket("local.sock");
    for p in ["kmp-send", "kmp-smtpd"] {
        inst.spawn(p, &[]);
        let pid = inst.path().join(format!("run/{p}.pid"));
        common::wait_until(Duration::from_secs(20), || pid.exists())
            .unwrap_or_else(|_| panic!("{p} never got ready:\n{}", inst.log(p)));
    }
    let script = r#"
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=20)
s.sendmail("sender@remote.test", [sys.argv[3]],
           b"From: sender@remote.test\r\nSubject: via smtp\r\n\r\nfirst line\r\n.leading dot\r\nlast line\r\n")
s.quit()
"#;
    py_ok(script, &["127.0.0.1", &(inst.base + 25).to_string(), USER]);
    common::wait_until(Duration::from_secs(20), || files(&md).len() == 1).unwrap_or_else(|_| {
        panic!(
            "not delivered:\n{}\n{}",
            inst.log("kmp-send"),
            inst.log("kmp-local")
        )
    });
    let script = r#"
import poplib, sys
p = poplib.POP3(sys.argv[1], int(sys.argv[2]), timeout=10)
p.user(sys.argv[3]); p.pass_(sys.argv[4])
resp, lines, octets = p.retr(1)
assert b"Subject: via smtp" in lines, lines
i = lines.index(b"")
assert lines[i + 1:] == [b"first line", b".leading dot", b"last line"], lines
# The size LIST announced is what came.
assert int(p.list(1).split()[2]) == sum(len(l) + 2 for l in lines), (p.list(1), lines)
p.dele(1)
print(p.quit().decode())
"#;
    let out = py_ok(
        script,
        &["127.0.0.1", &(inst.base + 110).to_string(), USER, PASS],
    );
    assert!(out.contains("1 message deleted"), "{out}");
    assert!(files(&md).is_empty());
}

#[test]
fn sighup_rereads_the_configuration_and_sigterm_stops_cleanly() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let (inst, md) = start("");
    put(&md, &[M1]);
    let pid = Pid::from_raw(inst.pid("kmp-pop3d").unwrap() as i32);
    let capa = |inst: &Instance| {
        let mut c = Raw::connect(&inst.addr(110));
        assert!(c.cmd("CAPA").starts_with("+OK"));
        c.body()
    };
    assert!(!capa(&inst).iter().any(|l| l.starts_with("EXPIRE")));
    common::set_config(&inst, "pop3d", "expire = \"30\"");
    kill(pid, Signal::SIGHUP).unwrap();
    common::wait_until(Duration::from_secs(10), || {
        capa(&inst).contains(&"EXPIRE 30\r\n".to_string())
    })
    .unwrap_or_else(|_| panic!("no EXPIRE after SIGHUP:\n{}", inst.log("kmp-pop3d")));
    // One line per event, with the user named.
    let mut c = Raw::connect(&inst.addr(110));
    c.login();
    assert!(c.cmd("QUIT").starts_with("+OK"));
    common::wait_until(Duration::from_secs(5), || {
        inst.log("kmp-pop3d").contains(&format!(
            "pop3 logout user={USER} retrieved=0 deleted=0 left=1"
        ))
    })
    .unwrap_or_else(|_| panic!("{}", inst.log("kmp-pop3d")));
    assert!(
        !inst.log("kmp-pop3d").contains(PASS),
        "a password was logged"
    );
    kill(pid, Signal::SIGTERM).unwrap();
    let pid_file = inst.path().join("run/kmp-pop3d.pid");
    common::wait_until(Duration::from_secs(10), || !pid_file.exists())
        .unwrap_or_else(|_| panic!("pid file left after SIGTERM"));
}
