//! Sieve at delivery under `kmpctl start`: users u, v and s of
//! example.test, scripts put with `kmpctl sieve`, mail sent with Python's
//! smtplib to kmp-smtpd, folders read back with imaplib from kmp-imapd.

use std::time::Duration;

use super::{wait_until, Instance};

pub const U: &str = "u@example.test";
pub const V: &str = "v@example.test";
pub const S: &str = "s@example.test";
pub const PASS: &str = "secret";

/// Stops the instance's supervisor even when a test fails half-way.
pub struct Stop<'a>(pub &'a Instance);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        let _ = self.0.ctl(&["stop"]);
    }
}

pub fn instance() -> Instance {
    let inst = Instance::new();
    inst.ctl_ok(&["domain", "add", "example.test"]);
    for u in [U, V, S] {
        let o = inst.ctl_stdin(&["user", "add", u, "--password-stdin"], Some(b"secret\n"));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    inst
}

pub fn put(inst: &Instance, user: &str, script: &str) {
    let o = inst.ctl_stdin(
        &["sieve", "put", user, "main", "--activate"],
        Some(script.as_bytes()),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Sends one message over SMTP (port BASE+25).
pub fn send(inst: &Instance, from: &str, to: &str, subject: &str, extra: &str) {
    let script = r#"
import smtplib, sys
from email.message import EmailMessage
port, sender, rcpt, subject, extra = sys.argv[1:6]
m = EmailMessage()
m["From"] = sender
m["To"] = rcpt
m["Subject"] = subject
m["Message-ID"] = "<%s.%s@example.test>" % (abs(hash(subject)), abs(hash(sender)))
for line in filter(None, extra.split("\n")):
    k, v = line.split(": ", 1)
    m[k] = v
m.set_content("hello\n")
with smtplib.SMTP("127.0.0.1", int(port), timeout=30) as s:
    s.send_message(m, from_addr=sender, to_addrs=[rcpt])
"#;
    let port = (inst.base + 25).to_string();
    let o = super::python(script, &[&port, from, to, subject, extra]);
    assert!(
        o.status.success(),
        "smtplib: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The messages of a folder over IMAP: one line per message, `FLAGS|Subject`.
pub fn folder(inst: &Instance, user: &str, name: &str) -> Vec<String> {
    let script = r#"
import imaplib, sys, email, email.header
port, user, pw, folder = sys.argv[1:5]
c = imaplib.IMAP4("127.0.0.1", int(port))
c.login(user, pw)
typ, n = c.select('"%s"' % folder, readonly=True)
if typ != "OK":
    print("NOFOLDER")
    sys.exit(0)
if int(n[0]) == 0:
    sys.exit(0)
typ, data = c.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
for item in data:
    if isinstance(item, tuple):
        flags = item[0].decode()
        flags = flags[flags.index("FLAGS (") + 7:]
        flags = flags[:flags.index(")")]
        subj = str(email.header.make_header(email.header.decode_header(
            email.message_from_bytes(item[1]).get("Subject", ""))))
        print("%s|%s" % (flags, subj))
c.logout()
"#;
    let port = (inst.base + 143).to_string();
    let o = super::python(script, &[&port, user, PASS, name]);
    assert!(
        o.status.success(),
        "imaplib: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Waits until `user`'s `name` folder holds a message whose line contains
/// `what`; returns the folder's lines.
pub fn wait_for(inst: &Instance, user: &str, name: &str, what: &str) -> Vec<String> {
    let mut last = Vec::new();
    let r = wait_until(Duration::from_secs(20), || {
        last = folder(inst, user, name);
        last.iter().any(|l| l.contains(what))
    });
    if r.is_err() {
        let log =
            std::fs::read_to_string(inst.path().join("log/kmpromail.log")).unwrap_or_default();
        panic!("{user} {name}: no {what:?} in {last:?}\n{log}");
    }
    last
}

/// The queue is empty: everything was delivered or bounced.
pub fn wait_queue_empty(inst: &Instance) {
    let _ = wait_until(Duration::from_secs(20), || {
        inst.ctl(&["--json", "queue", "list"])
            .stdout
            .starts_with(b"[]")
    });
}
