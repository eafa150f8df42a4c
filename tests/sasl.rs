//! SASL PLAIN as clients see it in all three servers, which share one
//! decoder (`proto::sasl`): SMTP AUTH PLAIN (port 465), POP3 AUTH PLAIN and
//! IMAP AUTHENTICATE PLAIN each refuse the same malformed payloads with their
//! protocol's error, the session goes on, and a good login then works in that
//! same session. Driven by Python over real sockets.
mod common;

use std::time::Duration;

use common::Instance;

const USER: &str = "u@example.test";
const PASS: &str = "pw with space";

fn start() -> Instance {
    let mut inst = Instance::new();
    // Many refusals from 127.0.0.1 on purpose: no ban in the middle.
    common::set_config(&inst, "authd", "max_failures = 1000");
    common::set_config(&inst, "smtpd", "max_bad_commands = 1000");
    common::set_config(&inst, "pop3d", "max_errors = 1000");
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
    for d in ["kmp-smtpd", "kmp-pop3d", "kmp-imapd"] {
        inst.spawn(d, &[]);
        let pid = inst.path().join(format!("run/{d}.pid"));
        common::wait_until(Duration::from_secs(20), || pid.exists())
            .unwrap_or_else(|_| panic!("{d} did not start: {}", inst.log(d)));
    }
    inst
}

/// The payloads every server must refuse, and the good one, as Python
/// byte strings (before base64).
const PY_TABLE: &str = r#"
import base64, socket, ssl, sys
socket.setdefaulttimeout(20)
base = int(sys.argv[1])
b64 = lambda b: base64.b64encode(b)
GOOD = b64(b"\0u@example.test\0pw with space")
# (response line, kind): kind is the class of error the server must give.
BAD = [
    (b"!!!notbase64", "base64"),
    (b"AHUAcHc", "base64"),                          # no padding
    (b64(b"u@example.test\0pw"), "malformed"),        # one NUL
    (b64(b"\0u@example.test\0"), "malformed"),        # empty password
    (b64(b"\0\0pw"), "malformed"),                    # empty user
    (b64(b"\0u@example.test\0p\0w"), "malformed"),   # a third NUL
    (b64(b"\0u@example.test\0\xff\xfe"), "malformed"),  # not UTF-8
    (b64(b"\0" + b"a" * 300 + b"\0pw"), "malformed"), # identity too long
    (b64(b"other@example.test\0u@example.test\0pw with space"), "identity"),
    (b"*", "cancel"),
]
"#;

#[test]
fn auth_plain_refuses_malformed_payloads_alike_and_the_session_goes_on() {
    let inst = start();
    let script = format!(
        "{PY_TABLE}{}",
        r#"
def lines(f):
    return f.readline().decode()

# SMTP on port 465 (implicit TLS): each bad payload with and without an
# initial response.
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", base + 465)))
f = s.makefile("rwb")
assert lines(f).startswith("220")
f.write(b"EHLO c.test\r\n"); f.flush()
while True:
    l = lines(f)
    if l.startswith("250 "): break
want = {"base64": "501 5.5.2", "malformed": "501 5.5.2", "identity": "535 5.7.8", "cancel": "501 5.0.0"}
for line, kind in BAD:
    if line != b"*":
        f.write(b"AUTH PLAIN " + line + b"\r\n"); f.flush()
        l = lines(f)
        assert l.startswith(want[kind]), ("smtp ir", line, l)
    f.write(b"AUTH PLAIN\r\n"); f.flush()
    l = lines(f)
    assert l.startswith("334"), l
    f.write(line + b"\r\n"); f.flush()
    l = lines(f)
    assert l.startswith(want[kind]), ("smtp", line, l)
f.write(b"NOOP\r\n"); f.flush()
assert lines(f).startswith("250")
f.write(b"AUTH PLAIN " + GOOD + b"\r\n"); f.flush()
l = lines(f)
assert l.startswith("235"), l
f.write(b"QUIT\r\n"); f.flush()
s.close()

# POP3 on port 110 (plain text is allowed from loopback).
s = socket.create_connection(("127.0.0.1", base + 110))
f = s.makefile("rwb")
assert lines(f).startswith("+OK")
for line, kind in BAD:
    f.write(b"AUTH PLAIN\r\n"); f.flush()
    l = lines(f)
    assert l.startswith("+ "), l
    f.write(line + b"\r\n"); f.flush()
    l = lines(f)
    assert l.startswith("-ERR"), ("pop3", line, l)
    if kind == "identity":
        assert "another user" in l, l
f.write(b"CAPA\r\n"); f.flush()
assert lines(f).startswith("+OK")
while lines(f) != ".\r\n": pass
f.write(b"AUTH PLAIN " + GOOD + b"\r\n"); f.flush()
l = lines(f)
assert l.startswith("+OK"), l
f.write(b"STAT\r\n"); f.flush()
assert lines(f).startswith("+OK 0 0")
f.write(b"QUIT\r\n"); f.flush()
s.close()

# IMAP on port 143: BAD for base64 and cancel (RFC 9051 6.2.2), NO for the rest.
s = socket.create_connection(("127.0.0.1", base + 143))
f = s.makefile("rwb")
assert lines(f).startswith("* OK")
want = {"base64": "BAD", "malformed": "NO [AUTHENTICATIONFAILED]", "identity": "NO [AUTHORIZATIONFAILED]", "cancel": "BAD"}
for i, (line, kind) in enumerate(BAD):
    tag = "a%d" % i
    f.write(tag.encode() + b" AUTHENTICATE PLAIN\r\n"); f.flush()
    l = lines(f)
    assert l.startswith("+"), l
    f.write(line + b"\r\n"); f.flush()
    l = lines(f)
    assert l.startswith(tag + " " + want[kind]), ("imap", line, l)
    if line != b"*":
        tag = "i%d" % i
        f.write(tag.encode() + b" AUTHENTICATE PLAIN " + line + b"\r\n"); f.flush()
        l = lines(f)
        assert l.startswith(tag + " " + want[kind]), ("imap ir", line, l)
f.write(b"n NOOP\r\n"); f.flush()
assert lines(f).startswith("n OK")
f.write(b"g AUTHENTICATE PLAIN " + GOOD + b"\r\n"); f.flush()
while True:
    l = lines(f)
    if l.startswith("g "): break
assert l.startswith("g OK"), l
f.write(b"s SELECT INBOX\r\n"); f.flush()
while True:
    l = lines(f)
    if l.startswith("s "): break
assert l.startswith("s OK"), l
f.write(b"z LOGOUT\r\n"); f.flush()
s.close()
print("ok")
"#
    );
    let out = common::python(&script, &[&inst.base.to_string()]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "python failed:\n{}\n{}\nsmtpd: {}\npop3d: {}\nimapd: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        inst.log("kmp-smtpd"),
        inst.log("kmp-pop3d"),
        inst.log("kmp-imapd"),
    );
    // No log of any server shows a password.
    for d in ["kmp-smtpd", "kmp-pop3d", "kmp-imapd", "kmp-authd"] {
        let log = inst.log(d);
        assert!(
            !log.contains("pw with space"),
            "{d} logged a password: {log}"
        );
    }
}
