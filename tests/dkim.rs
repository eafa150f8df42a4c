//! Our own DKIM signatures: `kmpctl dkim keygen|show|rotate` and kmp-remote
//! signing what it sends. A message sent through kmp-remote to Postfix's
//! smtp-sink is verified by Python's dkimpy (Debian python3-dkim, with
//! python3-nacl for Ed25519) and by our own checks at kmp-smtpd's door,
//! with the keys published by the test's name server (common::dns).
mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::dns::Dns;
use common::outbound::{add_user, route, send_mx, sink_message, start_daemons, wait_sink};
use common::sink::Sink;
use common::Instance;
use kmpromail::mailauth::keys::DomainKeys;

/// Verifies every DKIM-Signature of the message in argv[1] with dkimpy;
/// the keys come from argv[2:] as NAME=RECORD, not from DNS.
const PY_VERIFY: &str = r#"
import sys, dkim
msg = open(sys.argv[1], "rb").read()
keys = dict(a.split("=", 1) for a in sys.argv[2:])
def dnsfunc(name, timeout=5):
    return keys.get(name.decode().rstrip("."), "").encode()
n = msg.count(b"DKIM-Signature:")
ok = [dkim.DKIM(msg).verify(idx=i, dnsfunc=dnsfunc) for i in range(n)]
print(n, all(ok))
"#;

#[test]
fn keys_are_made_shown_and_rotated_with_their_dns_records() {
    let inst = Instance::new();
    let out = inst.ctl_ok(&["dkim", "keygen", "Example.TEST"]);
    assert!(
        out.contains("._domainkey.example.test. IN TXT ( \"v=DKIM1; k=ed25519; p="),
        "{out}"
    );
    assert!(
        out.contains("._domainkey.example.test. IN TXT ( \"v=DKIM1; k=rsa; p="),
        "{out}"
    );
    let dk = DomainKeys::new(&inst.path().join("dkim"), "example.test").unwrap();
    let first = dk.active();
    assert_eq!(first.len(), 2);
    assert!(
        first
            .iter()
            .all(|s| s.starts_with("ed20") || s.starts_with("rsa20")),
        "{first:?}"
    );
    // Only the owner reads the private keys.
    use std::os::unix::fs::PermissionsExt;
    for s in &first {
        let mode = std::fs::metadata(dk.dir.join(format!("{s}.pem")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A second keygen is refused; show prints the same records.
    let again = inst.ctl(&["dkim", "keygen", "example.test"]);
    assert_eq!(again.status.code(), Some(65));
    assert_eq!(inst.ctl_ok(&["dkim", "show", "example.test"]), out);
    let none = inst.ctl(&["dkim", "show", "nokeys.test"]);
    assert_eq!(none.status.code(), Some(66));
    let bad = inst.ctl(&["dkim", "keygen", "../etc"]);
    assert_eq!(bad.status.code(), Some(64));

    // Rotation: new keys sign, the old ones stay listed for the DNS.
    let out = inst.ctl_ok(&["dkim", "rotate", "example.test", "--algorithm", "ed25519"]);
    let now = dk.active();
    assert_eq!(now.len(), 1);
    assert!(
        now[0].starts_with("ed") && !first.contains(&now[0]),
        "{now:?}"
    );
    for s in &first {
        assert!(
            out.contains(&format!("replaced key {s}: keep its record until")),
            "{out}"
        );
        assert!(dk.dir.join(format!("{s}.pem")).exists());
    }
    let json = inst.ctl_ok(&["--json", "dkim", "show", "example.test"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3, "{json}");
    assert_eq!(v[0]["state"], "active");
    assert_eq!(v[1]["state"], "keep");
}

#[test]
fn kmp_remote_signs_what_it_sends_and_both_verifiers_agree() {
    let dns = Dns::start();
    let mut inst = Instance::new();
    let sink_port = inst.base + 28;
    let sink = Sink::start(&inst.path().join("sink"), sink_port, &[]);
    // A peer that refuses every recipient, for a bounce.
    let hard_port = inst.base + 27;
    let _hard = Sink::start(&inst.path().join("hard"), hard_port, &["-f", "RCPT"]);

    inst.ctl_ok(&["dkim", "keygen", "example.test"]);
    let dk = DomainKeys::new(&inst.path().join("dkim"), "example.test").unwrap();
    let mut records = Vec::new();
    for s in dk.active() {
        let name = format!("{s}._domainkey.example.test");
        let rec = dk.record(&s).unwrap();
        dns.txt(&name, &rec);
        records.push(format!("{name}={rec}"));
    }
    dns.txt("example.test", "v=spf1 ip4:127.0.0.1 -all");
    dns.txt("_dmarc.example.test", "v=DMARC1; p=reject");
    route(
        &inst,
        &[
            ("peer.test", sink_port),
            ("remote.test", sink_port),
            ("hard.test", hard_port),
        ],
    );
    common::set_config(&inst, "auth", &format!("dns_servers = [\"{}\"]", dns.addr));
    common::set_config(&inst, "auth", "skip_networks = []");
    inst.ctl_ok(&["domain", "add", "example.test"]);
    add_user(&inst, "u@example.test", "secret");
    start_daemons(&mut inst);

    let link = inst.path().join("sendmail");
    std::os::unix::fs::symlink(common::bin("kmp-inject"), &link).unwrap();
    let mut child = Command::new(&link)
        .arg("-C")
        .arg(inst.config())
        .args(["-f", "u@example.test", "bob@peer.test"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all("From: U <u@example.test>\nTo: bob@peer.test\nSubject: =?UTF-8?B?5L2g5aW9?=\nMIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\n你好, 世界.\n.a dot line\n\n\n".as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());

    // smtp-sink's envelope lines come first; the message follows.
    let msg = sink_message(&wait_sink(&inst, &sink, |m| m.contains(".a dot line\n")));
    // smtp-sink's own Received header, then our signatures on top of
    // what kmp-remote was given.
    let sig = msg.find("\nDKIM-Signature: ").expect("signed");
    assert!(
        sig < msg.find("\nReceived: by mx.example.test").unwrap(),
        "{msg}"
    );
    assert_eq!(msg.matches("DKIM-Signature: ").count(), 2, "{msg}");
    let eml = inst.path().join("received.eml");
    std::fs::write(&eml, msg.replace('\n', "\r\n")).unwrap();

    // dkimpy, with the records as kmpctl printed them.
    let mut args = vec![eml.to_str().unwrap().to_string()];
    args.extend(records.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Debian's python3-dkim lives in the system Python, which may not be
    // the first python3 on PATH.
    let dkimpy = ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import dkim, nacl"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("dkimpy: apt-get install python3-dkim python3-nacl");
    let out = Command::new(dkimpy)
        .arg("-c")
        .arg(PY_VERIFY)
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "2 True",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Our own door: the message comes back in on the MX port.
    let py = r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.sendmail("u@example.test", ["u@example.test"], open(sys.argv[2], "rb").read())
s.quit()
"#;
    let out = common::python(py, &[&(inst.base + 25).to_string(), eml.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = inst.path().join("mail/example.test/u/new");
    common::wait_until(Duration::from_secs(30), || {
        std::fs::read_dir(&md)
            .map(|d| d.count() > 0)
            .unwrap_or(false)
    })
    .unwrap_or_else(|_| panic!("not delivered: {}", inst.log("kmp-smtpd")));
    let got = std::fs::read_dir(&md)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let got = std::fs::read_to_string(got).unwrap();
    let head = got.split("\n\n").next().unwrap();
    assert_eq!(head.matches("dkim=pass").count(), 2, "{head}");
    assert!(head.contains("dmarc=pass"), "{head}");

    // A bounce from our MAILER-DAEMON (null reverse path, From at the host
    // name mx.example.test) is signed with the key of the host's domain.
    let mut child = Command::new(&link)
        .arg("-C")
        .arg(inst.config())
        .args(["-f", "x@remote.test", "nobody@hard.test"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"From: x@remote.test\nTo: nobody@hard.test\nSubject: to bounce\n\nhi\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let b = wait_sink(&inst, &sink, |m| {
        m.contains("X-Rcpt-Args: <x@remote.test>") && m.contains("to bounce")
    });
    assert!(
        b.contains("X-Mail-Args: <>") && b.contains("<MAILER-DAEMON@mx.example.test>"),
        "{b}"
    );
    assert_eq!(b.matches("d=example.test").count(), 2, "{b}");
    let beml = inst.path().join("bounce.eml");
    let b = sink_message(&b);
    std::fs::write(&beml, b.replace('\n', "\r\n")).unwrap();
    let mut args = vec![beml.to_str().unwrap().to_string()];
    args.extend(records.iter().cloned());
    let out = Command::new(dkimpy)
        .arg("-c")
        .arg(PY_VERIFY)
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "2 True",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kmpctl_check_warns_about_records_our_domains_do_not_publish() {
    let dns = Dns::start();
    let inst = Instance::new();
    common::set_config(&inst, "auth", &format!("dns_servers = [\"{}\"]", dns.addr));
    for d in ["kmptest.net", "bare.org", "example.test"] {
        inst.ctl_ok(&["domain", "add", d]);
        inst.ctl_ok(&[
            "alias",
            "add",
            &format!("postmaster@{d}"),
            "root@elsewhere.net",
        ]);
    }
    inst.ctl_ok(&["dkim", "keygen", "kmptest.net"]);
    let dk = DomainKeys::new(&inst.path().join("dkim"), "kmptest.net").unwrap();
    dns.txt("kmptest.net", "v=spf1 mx -all");
    // Only the Ed25519 key is published.
    let ed = dk
        .active()
        .into_iter()
        .find(|s| s.starts_with("ed"))
        .unwrap();
    let rsa = dk
        .active()
        .into_iter()
        .find(|s| s.starts_with("rsa"))
        .unwrap();
    dns.txt(
        &format!("{ed}._domainkey.kmptest.net"),
        &dk.record(&ed).unwrap(),
    );
    let out = inst.ctl_ok(&["check"]);
    let warnings: Vec<&str> = out.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(
        warnings,
        [
            "warning: domain bare.org publishes no SPF record (a TXT record \"v=spf1 ...\" at bare.org)",
            "warning: domain bare.org publishes no DMARC record (a TXT record \"v=DMARC1; p=...\" at _dmarc.bare.org)",
            "warning: domain bare.org has no DKIM key: kmpctl dkim keygen bare.org",
            "warning: domain kmptest.net publishes no DMARC record (a TXT record \"v=DMARC1; p=...\" at _dmarc.kmptest.net)",
            &format!("warning: domain kmptest.net: the DKIM key {rsa} is not published (kmpctl dkim show kmptest.net)"),
        ],
        "{out}"
    );
    // A name server that does not answer: said once, nothing checked.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    common::set_config(
        &inst,
        "auth",
        &format!("dns_servers = [\"{}\"]", silent.local_addr().unwrap()),
    );
    let text = std::fs::read_to_string(inst.config()).unwrap();
    // set_config put the new line first; drop the old one.
    let old = format!("dns_servers = [\"{}\"]\n", dns.addr);
    std::fs::write(inst.config(), text.replacen(&old, "", 1)).unwrap();
    let out = inst.ctl_ok(&["check"]);
    let warnings: Vec<&str> = out.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(
        warnings,
        ["warning: DNS did not answer: the SPF, DKIM and DMARC records of local domains were not checked"],
        "{out}"
    );
}

/// Verifies the ARC chain of the message in argv[1] with dkimpy (keys from
/// argv[2:] as NAME=RECORD); prints the chain's validation and why.
const PY_ARC_VERIFY: &str = r#"
import sys, dkim
msg = open(sys.argv[1], "rb").read()
keys = dict(a.split("=", 1) for a in sys.argv[2:])
def dnsfunc(name, timeout=5):
    return keys.get(name.decode().rstrip("."), "").encode()
cv, results, why = dkim.arc_verify(msg, dnsfunc=dnsfunc)
print(cv.decode() if isinstance(cv, bytes) else cv, why)
"#;

#[test]
fn forwarded_mail_is_arc_sealed_and_the_chain_verifies() {
    let dns = Dns::start();
    let mut inst = Instance::new();
    let sink_port = inst.base + 28;
    let sink = Sink::start(&inst.path().join("sink"), sink_port, &[]);
    inst.ctl_ok(&["dkim", "keygen", "example.test"]);
    let dk = DomainKeys::new(&inst.path().join("dkim"), "example.test").unwrap();
    let mut records = Vec::new();
    for s in dk.active() {
        let name = format!("{s}._domainkey.example.test");
        let rec = dk.record(&s).unwrap();
        dns.txt(&name, &rec);
        records.push(format!("{name}={rec}"));
    }
    // The original sender's domain: SPF passes for the test's client.
    dns.txt("remote.test", "v=spf1 ip4:127.0.0.1 -all");
    route(&inst, &[("peer.test", sink_port)]);
    common::set_config(&inst, "auth", &format!("dns_servers = [\"{}\"]", dns.addr));
    common::set_config(&inst, "auth", "skip_networks = []");
    inst.ctl_ok(&["domain", "add", "example.test"]);
    inst.ctl_ok(&["alias", "add", "fwd@example.test", "bob@peer.test"]);
    start_daemons(&mut inst);

    let body = "From: X <x@remote.test>\nTo: fwd@example.test\nSubject: =?UTF-8?B?5L2g5aW9?=\nMessage-ID: <arc.1@remote.test>\n\nforward and seal me\n";
    assert_eq!(
        send_mx(&inst, "x@remote.test", "fwd@example.test", body),
        "250"
    );
    let msg = sink_message(&wait_sink(&inst, &sink, |m| {
        m.contains("forward and seal me")
    }));
    // Our door's results, copied into the set; sealed by example.test
    // (the host name mx.example.test's domain) as the first hop.
    assert!(
        msg.contains("Authentication-Results: mx.example.test;"),
        "{msg}"
    );
    assert!(msg.contains("ARC-Seal: i=1;"), "{msg}");
    assert!(msg.contains("cv=none"), "{msg}");
    assert!(msg.contains("d=example.test"), "{msg}");
    assert!(
        msg.contains("ARC-Authentication-Results: i=1; mx.example.test;"),
        "{msg}"
    );
    assert!(msg.contains("spf=pass"), "{msg}");
    let eml = inst.path().join("forwarded.eml");
    std::fs::write(&eml, msg.replace('\n', "\r\n")).unwrap();

    // dkimpy validates the chain with the published key.
    let mut args = vec![eml.to_str().unwrap().to_string()];
    args.extend(records.iter().cloned());
    let dkimpy = ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import dkim, nacl"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("dkimpy: apt-get install python3-dkim python3-nacl");
    let out = Command::new(dkimpy)
        .arg("-c")
        .arg(PY_ARC_VERIFY)
        .args(&args)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with("pass"),
        "{said}{}\n{msg}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Our own door verifies it too: the message comes back in on the MX port.
    let py = r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.sendmail("bob@peer.test", ["fwd@example.test"], open(sys.argv[2], "rb").read())
s.quit()
"#;
    let out = common::python(py, &[&(inst.base + 25).to_string(), eml.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = || inst.log("kmp-smtpd");
    common::wait_until(Duration::from_secs(30), || {
        log().matches(" auth: ").count() >= 2
    })
    .unwrap_or_else(|_| panic!("not checked: {}", log()));
    let line = log()
        .lines()
        .filter(|l| l.contains(" auth: "))
        .nth(1)
        .unwrap_or_default()
        .to_string();
    assert!(line.contains("arc=pass"), "{line}");
}
