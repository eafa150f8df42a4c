//! Sender authentication at kmp-smtpd's door (`[auth]`): SPF, DKIM, DMARC
//! and the Authentication-Results header, against a name server run by the
//! test (common::dns) that publishes the test domains' records. Mail comes
//! in from Python's smtplib on the MX port and is read back from the
//! Maildir kmp-local delivered it into.
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::dns::Dns;
use common::Instance;
use kmpromail::mailauth::header::crlf;
use kmpromail::mailauth::keys::DomainKeys;
use kmpromail::mailauth::sign::Signer;

/// Sends the file `path` with smtplib; prints 250 or the refusal.
const PY_SEND: &str = r#"
import smtplib, sys
host, port, mail_from, rcpt, path = sys.argv[1:6]
msg = open(path, "rb").read()
s = smtplib.SMTP(host, int(port))
s.ehlo("client.test")
try:
    s.sendmail(mail_from, [rcpt], msg)
    print("250")
except smtplib.SMTPDataError as e:
    print(e.smtp_code, e.smtp_error.decode())
s.quit()
"#;

/// An instance whose checks ask `dns` (loopback not skipped), with
/// example.test and u@example.test, and authd, smtpd, local and send running.
pub fn start(dns: std::net::SocketAddr, auth: &[&str]) -> Instance {
    start_with(dns, auth, "")
}

/// [`start`] with a line for `[smtpd]` too.
pub fn start_with(dns: std::net::SocketAddr, auth: &[&str], smtpd: &str) -> Instance {
    let mut inst = Instance::new();
    if !smtpd.is_empty() {
        common::set_config(&inst, "smtpd", smtpd);
    }
    common::set_config(&inst, "auth", &format!("dns_servers = [\"{dns}\"]"));
    common::set_config(&inst, "auth", "skip_networks = []");
    for line in auth {
        common::set_config(&inst, "auth", line);
    }
    inst.ctl_ok(&["domain", "add", "example.test"]);
    let out = inst.ctl_stdin(
        &["user", "add", "u@example.test", "--password-stdin"],
        Some(b"secret\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    inst.spawn("kmp-local", &[]);
    inst.wait_socket("local.sock");
    for p in ["kmp-smtpd", "kmp-send"] {
        inst.spawn(p, &[]);
        let pid = inst.path().join(format!("run/{p}.pid"));
        common::wait_until(Duration::from_secs(20), || pid.exists())
            .unwrap_or_else(|_| panic!("{p} did not start: {}", inst.log(p)));
    }
    inst
}

/// Sends `msg` (LF line ends) to u@example.test on the MX port: "250" or
/// the refusal's code and text.
pub fn send(inst: &Instance, mail_from: &str, msg: &[u8]) -> String {
    let path = inst.path().join("outgoing.eml");
    std::fs::write(&path, crlf(msg)).unwrap();
    let out = common::python(
        PY_SEND,
        &[
            "127.0.0.1",
            &(inst.base + 25).to_string(),
            mail_from,
            "u@example.test",
            path.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The messages in u's Maildir (INBOX and Junk), once there are `n` of them.
pub fn delivered(inst: &Instance, n: usize) -> Vec<String> {
    let md = inst.path().join("mail/example.test/u");
    let files = |md: &Path| -> Vec<PathBuf> {
        ["new", "cur", ".Junk/new", ".Junk/cur"]
            .iter()
            .flat_map(|d| std::fs::read_dir(md.join(d)).into_iter().flatten())
            .map(|e| e.unwrap().path())
            .collect()
    };
    common::wait_until(Duration::from_secs(30), || files(&md).len() >= n).unwrap_or_else(|_| {
        panic!(
            "{} of {n} delivered:\n{}\n{}",
            files(&md).len(),
            inst.log("kmp-smtpd"),
            inst.log("kmp-local")
        )
    });
    files(&md)
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .collect()
}

/// The message whose Subject is `subject`.
fn with_subject<'a>(msgs: &'a [String], subject: &str) -> &'a str {
    msgs.iter()
        .find(|m| m.contains(&format!("\nSubject: {subject}\n")))
        .unwrap_or_else(|| panic!("no message {subject:?} in {msgs:#?}"))
}

/// The header section of a message.
fn head(m: &str) -> &str {
    m.split("\n\n").next().unwrap()
}

/// Makes `domain`'s keys with kmpctl, publishes them and returns a signer.
fn keys(inst: &Instance, dns: &Dns, domain: &str) -> Signer {
    inst.ctl_ok(&["dkim", "keygen", domain]);
    let root = inst.path().join("dkim");
    let dk = DomainKeys::new(&root, domain).unwrap();
    for s in dk.active() {
        dns.txt(&format!("{s}._domainkey.{domain}"), &dk.record(&s).unwrap());
    }
    Signer::new(root, "mx.example.test")
}

fn sign(signer: &Signer, msg: &[u8]) -> Vec<u8> {
    let wire = crlf(msg);
    let mut sig = signer
        .sign(msg, false, |f| {
            f(&wire);
            Ok(())
        })
        .unwrap()
        .expect("a key applies");
    sig.extend_from_slice(msg);
    sig
}

#[test]
fn spf_dkim_and_dmarc_decide_at_the_door_and_say_so_in_one_header() {
    let dns = Dns::start();
    dns.txt("good.test", "v=spf1 ip4:127.0.0.1 -all");
    dns.txt("_dmarc.good.test", "v=DMARC1; p=reject");
    dns.txt("spf.test", "v=spf1 ip4:192.0.2.1 -all");
    dns.txt("quar.test", "v=spf1 -all");
    dns.txt("_dmarc.quar.test", "v=DMARC1; p=quarantine");
    let inst = start(dns.addr, &[]);
    let signer = keys(&inst, &dns, "good.test");

    // Signed with Ed25519 and RSA; forged results above the signature.
    let body = "From: Alice <alice@good.test>\nTo: u@example.test\nSubject: signed\nDate: Sat, 5 Dec 2026 06:00:00 +0000\nMessage-ID: <1@good.test>\n\n你好, signed.\n";
    let mut signed = b"Authentication-Results: mx.example.test; dkim=pass (forged)\nAuthentication-Results: other.test; spf=pass\nX-Kmpromail-Junk: no\n".to_vec();
    signed.extend(sign(&signer, body.as_bytes()));
    assert_eq!(send(&inst, "alice@good.test", &signed), "250");

    // The same, with its body changed after signing.
    let tampered = String::from_utf8(sign(
        &signer,
        body.replace("Subject: signed", "Subject: tampered")
            .as_bytes(),
    ))
    .unwrap()
    .replace("signed.\n", "changed.\n");
    assert_eq!(send(&inst, "alice@good.test", tampered.as_bytes()), "250");
    // And one whose signed Subject changed after signing.
    let resubject = String::from_utf8(sign(
        &signer,
        body.replace("Subject: signed", "Subject: original")
            .as_bytes(),
    ))
    .unwrap()
    .replace("Subject: original", "Subject: header changed");
    assert_eq!(send(&inst, "alice@good.test", resubject.as_bytes()), "250");

    // SPF fails; spf.test has no DMARC record: delivered, recorded.
    let spf = b"From: x@spf.test\nTo: u@example.test\nSubject: spf fail\n\nhi\n";
    assert_eq!(send(&inst, "x@spf.test", spf), "250");

    // A forgery of good.test's From from elsewhere: DMARC p=reject.
    let forged = b"From: ceo@good.test\nTo: u@example.test\nSubject: forged\n\npay now\n";
    let r = send(&inst, "x@evil.test", forged);
    assert!(r.starts_with("550 5.7.1 DMARC policy of good.test"), "{r}");

    // p=quarantine: delivered, marked for Junk.
    let quar = b"From: x@quar.test\nTo: u@example.test\nSubject: quarantined\n\nhi\n";
    assert_eq!(send(&inst, "x@quar.test", quar), "250");

    let msgs = delivered(&inst, 5);
    assert_eq!(msgs.len(), 5, "the forgery was not delivered");
    assert!(!msgs.iter().any(|m| m.contains("pay now")));

    let m = head(with_subject(&msgs, "signed"));
    assert_eq!(
        m.matches("Authentication-Results: mx.example.test").count(),
        1,
        "{m}"
    );
    assert!(
        !m.contains("(forged)") && !m.contains("X-Kmpromail-Junk"),
        "{m}"
    );
    assert!(
        m.contains("Authentication-Results: other.test; spf=pass"),
        "{m}"
    );
    assert_eq!(m.matches("dkim=pass").count(), 2, "{m}");
    assert!(m.contains("header.d=good.test"), "{m}");
    assert!(m.contains("spf=pass") && m.contains("dmarc=pass"), "{m}");
    // Our header sits right under our Received header, above the message's own.
    let ours = m.find("Authentication-Results: mx.example.test").unwrap();
    assert!(
        m.find("\nReceived: from client.test").unwrap() < ours
            && ours < m.find("DKIM-Signature").unwrap(),
        "{m}"
    );

    // A changed body: mail-auth says neutral (RFC 6376 6.3 leaves the
    // word to the verifier); a changed signed header breaks the signature.
    let m = head(with_subject(&msgs, "tampered"));
    assert_eq!(
        m.matches("dkim=neutral (body hash did not verify)").count(),
        2,
        "{m}"
    );
    assert!(!m.contains("dkim=pass"), "{m}");
    assert!(m.contains("dmarc=pass"), "{m}");
    let m = head(with_subject(&msgs, "header changed"));
    assert_eq!(m.matches("dkim=fail").count(), 2, "{m}");

    let m = head(with_subject(&msgs, "spf fail"));
    assert!(
        m.contains("spf=fail") && m.contains("smtp.mailfrom=x@spf.test"),
        "{m}"
    );
    assert!(m.contains("dkim=none"), "{m}");
    assert!(!m.contains("X-Kmpromail-Junk"), "{m}");

    // Quarantined mail is filed into Junk by kmp-local, the rest in INBOX.
    let junk = std::fs::read_dir(inst.path().join("mail/example.test/u/.Junk/new"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(junk, 1, "the quarantined message in Junk");
    let m = head(with_subject(&msgs, "quarantined"));
    assert!(
        m.contains("dmarc=fail") && m.contains("policy.dmarc=quarantine"),
        "{m}"
    );
    assert!(
        m.contains("X-Kmpromail-Junk: yes (DMARC quarantine policy of quar.test)"),
        "{m}"
    );

    let log = inst.log("kmp-smtpd");
    assert!(
        log.contains(
            "auth: spf=none dkim=none dmarc=fail (reject) reject (DMARC policy of good.test"
        ),
        "{log}"
    );
}

#[test]
fn settings_turn_actions_into_tags_rejects_and_tempfails() {
    let dns = Dns::start();
    dns.txt("spf.test", "v=spf1 ip4:192.0.2.1 -all");
    dns.txt("good.test", "v=spf1 ip4:192.0.2.1 -all");
    dns.txt("_dmarc.good.test", "v=DMARC1; p=reject");
    let inst = start(
        dns.addr,
        &["spf_fail = \"reject\"", "dmarc_reject = \"tag\""],
    );
    let r = send(&inst, "x@spf.test", b"From: x@spf.test\nSubject: a\n\nhi\n");
    assert!(
        r.starts_with("550 5.7.23 SPF of spf.test does not allow 127.0.0.1"),
        "{r}"
    );
    // DMARC fails under p=reject, which this site only tags.
    let r = send(
        &inst,
        "x@other.test",
        b"From: ceo@good.test\nSubject: tagged\n\nhi\n",
    );
    assert_eq!(r, "250");
    let msgs = delivered(&inst, 1);
    let m = head(with_subject(&msgs, "tagged"));
    assert!(
        m.contains("dmarc=fail") && !m.contains("X-Kmpromail-Junk"),
        "{m}"
    );

    // A name server that never answers: 451 when told so.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead = silent.local_addr().unwrap();
    let inst = start(dead, &["temp_error = \"tempfail\"", "dns_timeout = \"1s\""]);
    let r = send(
        &inst,
        "x@slow.test",
        b"From: x@slow.test\nSubject: b\n\nhi\n",
    );
    assert!(r.starts_with("451 4.7.5"), "{r}\n{}", inst.log("kmp-smtpd"));
    drop(silent);
}

#[test]
fn relay_networks_are_us_and_go_unchecked() {
    let dns = Dns::start();
    dns.txt("good.test", "v=spf1 ip4:192.0.2.1 -all");
    dns.txt("_dmarc.good.test", "v=DMARC1; p=reject");
    // The same forgery that is refused from outside passes from a logged-in
    // client and from a relay network, unchecked and without our header.
    let inst = start(dns.addr, &[]);
    let r = send(
        &inst,
        "x@evil.test",
        b"From: ceo@good.test\nSubject: ours\n\nhi\n",
    );
    assert!(r.starts_with("550 5.7.1"), "{r}");
    // A logged-in client (submission) is us too.
    let py = r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.starttls(context=ctx)
s.login("u@example.test", "secret")
s.sendmail("u@example.test", ["u@example.test"], b"From: ceo@good.test\r\nSubject: submitted\r\n\r\nhi\r\n")
s.quit()
print("250")
"#;
    let out = common::python(py, &[&(inst.base + 587).to_string()]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "250",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let msgs = delivered(&inst, 1);
    let m = head(with_subject(&msgs, "submitted"));
    assert!(!m.contains("Authentication-Results"), "{m}");
    drop(inst);
    let inst = start_with(dns.addr, &[], "relay_networks = [\"127.0.0.0/8\"]");
    let r = send(
        &inst,
        "x@evil.test",
        b"From: ceo@good.test\nSubject: ours\n\nhi\n",
    );
    assert_eq!(r, "250");
    let msgs = delivered(&inst, 1);
    let m = head(with_subject(&msgs, "ours"));
    assert!(!m.contains("Authentication-Results"), "{m}");
    assert!(!inst.log("kmp-smtpd").contains("auth: "));
}
