//! URLAUTH (RFC 4467) and URLAUTH=BINARY (RFC 5524) with Python's
//! imaplib: GENURLAUTH, URLFETCH by the owner and by another user as each
//! access identifier allows, RESETKEY, expiry, and the key file's mode.

mod common;

use std::os::unix::fs::PermissionsExt;

const SCRIPT: &str = r#"
import imaplib, re, sys, base64, time
host, port = sys.argv[1], int(sys.argv[2])
for c in ("GENURLAUTH", "URLFETCH", "RESETKEY"):
    imaplib.Commands[c] = ("AUTH", "SELECTED")
def login(u):
    m = imaplib.IMAP4(host, port)
    m.login(u, "secret")
    return m
def gen(m, rump):
    typ, data = m._simple_command("GENURLAUTH", '"%s"' % rump, "INTERNAL")
    assert typ == "OK", (rump, typ, data)
    return m._untagged_response(typ, data, "GENURLAUTH")[1][0].decode().strip('"')
def fetch(m, *args):
    typ, data = m._simple_command("URLFETCH", *args)
    assert typ == "OK", (typ, data)
    return m._untagged_response(typ, data, "URLFETCH")[1]

u = login("u@example.test")
assert b"URLAUTH=BINARY" in u.capability()[1][0]
typ, data = u.select("INBOX")
assert u.untagged_responses.get("OK") and any(b"[URLMECH INTERNAL]" in x for x in u.untagged_responses["OK"]), u.untagged_responses
part = base64.b64encode("\u4e2d\u6587 attachment".encode("gb2312")) + b"\r\n"
msg = (b"From: u@example.test\r\nSubject: =?GB2312?B?" + base64.b64encode("\u4f60\u597d".encode("gb2312")) +
       b"?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
       b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
       b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
       + part + b"--b--\r\n")
typ, data = u.append("INBOX", None, None, msg)
uid = re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1).decode()
base = "imap://u@example.test/INBOX/;uid=" + uid
mine = gen(u, base + ";urlauth=user+u@example.test")
anyone = gen(u, base + ";urlauth=authuser")
att = gen(u, base + "/;section=2;urlauth=anonymous")
expired = gen(u, base + ";expire=2001-01-01T00:00:00Z;urlauth=anonymous")
assert re.search(r";urlauth=user\+u@example\.test:internal:[0-9a-f]{64}$", mine), mine

# The owner fetches; the whole message comes back as stored.
d = fetch(u, '"%s"' % mine)
assert d[0][1] == msg, d
# Expired: NIL. A token changed by one digit: NIL.
d = fetch(u, '"%s"' % expired, '"%s"' % (mine[:-1] + ("0" if mine[-1] != "0" else "1")))
assert d[0].endswith(b" NIL NIL") or d[0].count(b"NIL") == 2, d
# Extended: the attachment decoded, with its structure.
d = fetch(u, '("%s" BINARY BODYPARTSTRUCTURE)' % att)
flat = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in d)
assert b'BODYPARTSTRUCTURE ("application" "octet-stream" NIL NIL NIL "base64"' in flat, flat
assert "\u4e2d\u6587 attachment".encode("gb2312") in flat, flat
# BINARY of the whole message: the attachment decoded in place, its
# Content-Transfer-Encoding field saying so, the rest as stored.
whole = gen(u, base + ";urlauth=anonymous")
d = fetch(u, '("%s" BINARY)' % whole)
flat = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in d)
want = msg.replace(b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: binary").replace(
    part, "\u4e2d\u6587 attachment".encode("gb2312") + b"\r\n")
assert want in flat, flat
# Signing a URL for another user's mailbox is refused.
typ, data = u._simple_command("GENURLAUTH", '"imap://v@example.test/INBOX/;uid=1;urlauth=anonymous"', "INTERNAL")
assert typ == "NO", (typ, data)

v = login("v@example.test")
# v may use authuser and anonymous URLs of u's, not u's user+u ones.
d = fetch(v, '"%s"' % anyone, '"%s"' % mine)
assert d[0][1] == msg, d
assert d[1].strip().endswith(b"NIL"), d
# RESETKEY: every URL of the mailbox stops working.
typ, data = u._simple_command("RESETKEY", "INBOX")
assert typ == "OK", data
d = fetch(v, '"%s"' % anyone)
assert d[0].endswith(b" NIL"), d
# A new key signs new URLs.
again = gen(u, base + ";urlauth=authuser")
assert again != anyone
assert fetch(v, '"%s"' % again)[0][1] == msg
print("ok")
"#;

#[test]
fn genurlauth_urlfetch_resetkey() {
    let inst = common::imap_instance();
    let out = inst.ctl_stdin(
        &["user", "add", "v@example.test", "--password-stdin"],
        Some(b"secret\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = common::python(SCRIPT, &["127.0.0.1", &(inst.base + 143).to_string()]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        inst.log("kmp-imapd")
    );
    // The key is the owner's alone.
    let key = inst
        .path()
        .join("mail/example.test/u/kmpromail-urlauth-key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", key.display());
}
