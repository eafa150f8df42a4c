//! BURL (RFC 4468) end to end: a user stores a message over IMAP, signs a
//! `submit+` URL for it with GENURLAUTH (RFC 4467), and sends it over
//! submission with BURL instead of DATA; kmp-smtpd fetches the content
//! through kmp-imapd's URLFETCH socket and the message arrives in another
//! user's Maildir through the queue. Raw SMTP, Python's imaplib.

mod common;

use std::time::Duration;

use common::Instance;

/// authd, imapd, smtpd (AUTH over plaintext on loopback), local, send;
/// users alice and bob.
fn start() -> Instance {
    let mut inst = Instance::new();
    common::set_config(&inst, "smtpd", "auth_plaintext = true");
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
    inst.spawn("kmp-imapd", &[]);
    inst.wait_socket("urlfetch.sock");
    inst.spawn("kmp-local", &[]);
    inst.wait_socket("local.sock");
    inst.spawn("kmp-send", &[]);
    inst.spawn("kmp-smtpd", &[]);
    for p in ["kmp-imapd", "kmp-send", "kmp-smtpd"] {
        let pid = inst.path().join(format!("run/{p}.pid"));
        common::wait_until(Duration::from_secs(20), || pid.exists())
            .unwrap_or_else(|_| panic!("{p} did not start: {}", inst.log(p)));
    }
    inst
}

const SCRIPT: &str = r#"
import imaplib, re, smtplib, sys, base64, socket
host, pimap, p587, p25 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

# A draft with a GB2312 subject and body, stored by alice over IMAP.
draft = (b"From: alice@example.test\r\nTo: bob@example.test\r\n"
         b"Subject: =?GB2312?B?" + base64.b64encode("\u4f60\u597d".encode("gb2312")) + b"?=\r\n"
         b"Content-Type: text/plain; charset=GB2312\r\n\r\n"
         + "\u4e2d\u6587\u6b63\u6587".encode("gb2312") + b"\r\nforwarded without download\r\n")
imaplib.Commands["GENURLAUTH"] = ("AUTH", "SELECTED")
m = imaplib.IMAP4(host, pimap)
m.login("alice@example.test", "secret")
typ, data = m.append("INBOX", None, None, draft)
assert typ == "OK", data
uid = re.search(rb"APPENDUID (\d+) (\d+)", data[0]).group(2).decode()
def gen(access):
    rump = "imap://alice@example.test/INBOX/;uid=%s;urlauth=%s" % (uid, access)
    typ, data = m._simple_command("GENURLAUTH", '"%s"' % rump, "INTERNAL")
    assert typ == "OK", (typ, data)
    typ, data = m._untagged_response(typ, data, "GENURLAUTH")
    return data[0].decode().strip('"')
url = gen("submit+alice@example.test")
other = gen("submit+bob@example.test")
m.logout()

def smtp(port):
    s = smtplib.SMTP(host, port)
    s.ehlo("client.test")
    return s
def burl_lines(s):
    return [l for l in s.esmtp_features if l == "burl"]

# Port 25 never offers or takes BURL.
s = smtp(p25)
assert "burl" not in s.esmtp_features, s.esmtp_features
s.docmd("MAIL FROM:<x@remote.test>")
s.docmd("RCPT TO:<bob@example.test>")
code, text = s.docmd("BURL " + url + " LAST")
assert code == 500, (code, text)
s.quit()

s = smtp(p587)
assert "burl" not in s.esmtp_features, s.esmtp_features
code, _ = s.docmd("BURL " + url + " LAST")
assert code == 530, code
s.login("alice@example.test", "secret")
s.ehlo("client.test")
assert s.esmtp_features.get("burl") == "imap", s.esmtp_features
# No recipient: refused before the URL is looked at.
s.docmd("MAIL FROM:<alice@example.test>")
code, _ = s.docmd("BURL " + url + " LAST")
assert code == 554, code
s.docmd("RSET")
# A URL for another user's submission, a bad token, a plain URL: refused.
for bad, want in [(other, (554, b"5.7.0")),
                  (url[:-4] + "0000", (554, b"5.6.6")),
                  ("imap://alice@example.test/INBOX/;uid=" + uid, (554, b"5.7.8"))]:
    s.docmd("MAIL FROM:<alice@example.test>")
    s.docmd("RCPT TO:<bob@example.test>")
    code, text = s.docmd("BURL " + bad + " LAST")
    assert (code, text[:5]) == want, (bad, code, text)
    s.docmd("RSET")
# The real thing: a header chunk by BDAT, then the stored message by BURL.
s.docmd("MAIL FROM:<alice@example.test>")
s.docmd("RCPT TO:<bob@example.test>")
hdr = b"X-Burl-Test: yes\r\n"
s.send(b"BDAT %d\r\n" % len(hdr) + hdr)
code, text = s.getreply()
assert code == 250, (code, text)
code, text = s.docmd("BURL " + url + " LAST")
assert code == 250, (code, text)
s.quit()
print("ok")
"#;

#[test]
fn burl_sends_a_stored_message_signed_with_genurlauth() {
    let inst = start();
    let out = common::python(
        SCRIPT,
        &[
            "127.0.0.1",
            &(inst.base + 143).to_string(),
            &(inst.base + 587).to_string(),
            &(inst.base + 25).to_string(),
        ],
    );
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "{}{}\nsmtpd:\n{}\nimapd:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        inst.log("kmp-smtpd"),
        inst.log("kmp-imapd")
    );
    let bob = inst.path().join("mail/example.test/bob");
    let files = || -> Vec<std::path::PathBuf> {
        ["new", "cur"]
            .iter()
            .filter_map(|d| std::fs::read_dir(bob.join(d)).ok())
            .flat_map(|r| r.flatten().map(|e| e.path()))
            .collect()
    };
    common::wait_until(Duration::from_secs(30), || files().len() == 1).unwrap_or_else(|_| {
        panic!(
            "not delivered:\n{}\n{}\n{}",
            inst.log("kmp-smtpd"),
            inst.log("kmp-send"),
            inst.log("kmp-local")
        )
    });
    let got = std::fs::read(&files()[0]).unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("X-Burl-Test: yes\n"), "{text}");
    assert!(text.contains("\nforwarded without download\n"), "{text}");
    // The GB2312 body arrives byte for byte.
    let (body, _, _) = encoding_rs::GB18030.decode(&got);
    assert!(body.contains("\u{4e2d}\u{6587}\u{6b63}\u{6587}"), "{body}");
    let log = inst.log("kmp-smtpd");
    assert!(log.contains("sasl_username=alice@example.test"), "{log}");
}
