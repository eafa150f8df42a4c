//! A domain's allowed services: `kmpctl domain set --services` (or PATCH
//! through kmp-admind) and the daemons refuse the others' logins through
//! kmp-authd, with the right password; another domain is not affected.

mod common;

use std::time::Duration;

use common::{wait_until, Instance};

const PY: &str = r#"
import imaplib, poplib, smtplib, ssl, sys
host, p110, p143, p587, ca = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
def pop(u, p):
    s = poplib.POP3(host, p110, timeout=20)
    try:
        s.user(u); s.pass_(p); return "ok"
    except poplib.error_proto:
        return "refused"
    finally:
        s.close()
def imap(u, p):
    s = imaplib.IMAP4(host, p143, timeout=20)
    try:
        s.login(u, p); return "ok"
    except imaplib.IMAP4.error:
        return "refused"
    finally:
        s.shutdown()
def smtp(u, p):
    s = smtplib.SMTP(host, p587, timeout=20)
    s.ehlo("client.test"); s.starttls(context=ctx); s.ehlo("client.test")
    try:
        s.login(u, p); return "ok"
    except smtplib.SMTPAuthenticationError:
        return "refused"
    finally:
        s.close()
for u in ["ann@a.example", "bob@b.example"]:
    print(u, pop(u, "pw"), imap(u, "pw"), smtp(u, "pw"))
"#;

#[test]
fn a_domain_that_disallows_pop3_imap_and_smtp_auth_gets_its_logins_refused() {
    let mut inst = Instance::new();
    for d in ["a.example", "b.example"] {
        inst.ctl_ok(&["domain", "add", d]);
    }
    for u in ["ann@a.example", "bob@b.example"] {
        let out = inst.ctl_stdin(&["user", "add", u, "--password-stdin"], Some(b"pw\n"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    inst.ctl_ok(&[
        "domain",
        "set",
        "a.example",
        "--services",
        "webmail,fetch,managesieve",
    ]);
    let show = inst.ctl_ok(&["domain", "show", "a.example"]);
    assert!(
        show.contains("services:        webmail, fetch, managesieve"),
        "{show}"
    );
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    for d in ["kmp-pop3d", "kmp-imapd", "kmp-smtpd"] {
        inst.spawn(d, &[]);
        let pid = inst.path().join(format!("run/{d}.pid"));
        wait_until(Duration::from_secs(20), || pid.exists())
            .unwrap_or_else(|_| panic!("{d} did not start: {}", inst.log(d)));
    }
    let run = |inst: &Instance| {
        let out = common::python(
            PY,
            &[
                "127.0.0.1",
                &(inst.base + 110).to_string(),
                &(inst.base + 143).to_string(),
                &(inst.base + 587).to_string(),
                inst.path().join("tls/cert.pem").to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let text = run(&inst);
    assert!(
        text.contains("ann@a.example refused refused refused"),
        "{text}"
    );
    assert!(text.contains("bob@b.example ok ok ok"), "{text}");
    let log = inst.log("kmp-authd");
    assert!(
        log.contains("service pop3 not allowed in domain a.example"),
        "{log}"
    );
    // The right password was given: no failure counts toward a ban.
    assert!(!inst.ctl_ok(&["ban", "list"]).contains("127.0.0.1"));
    // Allowed again, at once (kmp-authd reads the domain on every login).
    inst.ctl_ok(&["domain", "set", "a.example", "--services", "all"]);
    let text = run(&inst);
    assert!(text.contains("ann@a.example ok ok ok"), "{text}");
}

const PY_SIZE: &str = r#"
import smtplib, sys
host, p25 = sys.argv[1], int(sys.argv[2])
big = b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 60
small = b"Subject: small\r\n\r\nhello\r\n"
out = []
s = smtplib.SMTP(host, p25, timeout=20)
s.ehlo("client.test")
# smtplib declares SIZE=: refused at RCPT for the limited domain only.
try:
    s.sendmail("x@remote.test", ["ann@a.example"], big)
    out.append("big-a accepted")
except smtplib.SMTPRecipientsRefused as e:
    out.append("big-a %d" % e.recipients["ann@a.example"][0])
s.sendmail("x@remote.test", ["bob@b.example"], big)
out.append("big-b accepted")
s.sendmail("x@remote.test", ["ann@a.example"], small)
out.append("small-a accepted")
# Without SIZE=: refused at the end of data, for the whole message.
s.mail("x@remote.test")
s.rcpt("bob@b.example")
s.rcpt("ann@a.example")
code, _ = s.data(big)
out.append("nosize %d" % code)
s.quit()
print(" | ".join(out))
"#;

#[test]
fn a_domain_message_size_ceiling_is_enforced_by_smtpd() {
    let mut inst = Instance::new();
    for d in ["a.example", "b.example"] {
        inst.ctl_ok(&["domain", "add", d]);
    }
    for u in ["ann@a.example", "bob@b.example"] {
        inst.ctl_ok(&["user", "add", u]);
    }
    inst.ctl_ok(&["domain", "set", "a.example", "--max-message-size", "2K"]);
    assert!(inst
        .ctl_ok(&["domain", "show", "a.example"])
        .contains("max message:     2K"));
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    inst.spawn("kmp-smtpd", &[]);
    let pid = inst.path().join("run/kmp-smtpd.pid");
    wait_until(Duration::from_secs(20), || pid.exists())
        .unwrap_or_else(|_| panic!("kmp-smtpd did not start: {}", inst.log("kmp-smtpd")));
    let out = common::python(PY_SIZE, &["127.0.0.1", &(inst.base + 25).to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "big-a 552 | big-b accepted | small-a accepted | nosize 552"
    );
}
