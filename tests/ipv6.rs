//! IPv6 as a first-class citizen, black-box: every protocol over ::1 with
//! real clients (Python's smtplib, poplib, imaplib; curl through the
//! webmail's lighttpd), listeners a host cannot bind skipped, IPv6 clients
//! banned and counted by prefix, and kmp-remote delivering to a sink on ::1 found
//! through AAAA records and through an `[IPv6:...]` literal. Tests that
//! need ::1 are skipped with a reason on a host without an IPv6 loopback.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{has_ipv6_loopback, python, set_config, wait_until, Instance};

/// Returns from the test with a reason when the host has no ::1.
macro_rules! need_ipv6 {
    () => {
        if !has_ipv6_loopback() {
            eprintln!("SKIPPED: this host has no IPv6 loopback (::1)");
            return;
        }
    };
}

/// An instance with example.test and the users alice and bob (password
/// `secret`); `config` lines as (section, line) first.
fn instance(config: &[(&str, &str)]) -> Instance {
    let inst = Instance::new();
    for (section, line) in config {
        set_config(&inst, section, line);
    }
    inst.ctl_ok(&["domain", "add", "example.test"]);
    for u in ["alice@example.test", "bob@example.test"] {
        let out = inst.ctl_stdin(&["user", "add", u, "--password-stdin"], Some(b"secret\n"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    inst
}

/// Sets `key = value` in `section`, replacing the line `kmpctl init` wrote.
fn set_key(inst: &Instance, section: &str, key: &str, value: &str) {
    let text = std::fs::read_to_string(inst.config()).unwrap();
    let mut out = String::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.starts_with('[') {
            current = line.trim_matches(['[', ']']).to_string();
        }
        if current == section && line.split('=').next().map(str::trim) == Some(key) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    std::fs::write(inst.config(), out).unwrap();
    set_config(inst, section, &format!("{key} = {value}"));
}

/// Starts `programs` in dependency order, each once it may.
fn start(inst: &mut Instance, programs: &[&str]) {
    for p in programs {
        inst.spawn(p, &[]);
        let pid = inst.path().join(format!("run/{p}.pid"));
        wait_until(Duration::from_secs(20), || pid.exists())
            .unwrap_or_else(|_| panic!("{p} did not start:\n{}", inst.log(p)));
    }
}

/// Runs a Python script; asserts it ended well and returns its output.
fn py(script: &str, args: &[&str]) -> String {
    let out = python(script, args);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "python failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Message files of a Maildir's new/ and cur/.
fn maildir_files(md: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(d) = std::fs::read_dir(md.join(sub)) {
            v.extend(d.filter_map(|e| e.ok()).map(|e| e.path()));
        }
    }
    v.sort();
    v
}

const PY_TLS: &str = r#"
import smtplib, ssl, sys, poplib, imaplib
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
"#;

#[test]
fn smtp_submission_pop3_and_imap_over_the_ipv6_loopback() {
    need_ipv6!();
    let mut inst = instance(&[]);
    start(
        &mut inst,
        &[
            "kmp-authd",
            "kmp-local",
            "kmp-remote",
            "kmp-send",
            "kmp-smtpd",
            "kmp-pop3d",
            "kmp-imapd",
        ],
    );
    let b = inst.base;
    let send = format!(
        "{PY_TLS}{}",
        r#"
b = int(sys.argv[1])
msg = "From: bob@example.test\r\nSubject: over six\r\n\r\nhello\r\n"
# The MX service: an address literal in EHLO, checked.
s = smtplib.SMTP("::1", b + 25, local_hostname="[IPv6:::1]", timeout=20)
print("ehlo", s.ehlo_resp is not None)
print("bad literal", s.docmd("EHLO", "[IPv6:::zz]")[0])
print("v4 literal", s.docmd("EHLO", "[127.0.0.1]")[0])
s.ehlo("[IPv6:::1]")
s.sendmail("bob@example.test", ["alice@example.test"], msg)
s.quit()
# Submission with STARTTLS and AUTH, and implicit TLS.
s = smtplib.SMTP("::1", b + 587, local_hostname="[IPv6:::1]", timeout=20)
s.starttls(context=ctx)
s.login("bob@example.test", "secret")
s.sendmail("bob@example.test", ["alice@example.test"], msg)
s.quit()
s = smtplib.SMTP_SSL("::1", b + 465, local_hostname="[IPv6:::1]", context=ctx, timeout=20)
s.login("bob@example.test", "secret")
s.sendmail("bob@example.test", ["alice@example.test"], msg)
s.quit()
print("sent")
"#
    );
    let out = py(&send, &[&b.to_string()]);
    assert!(out.contains("bad literal 501"), "{out}");
    assert!(out.contains("v4 literal 250"), "{out}");
    assert!(out.contains("sent"), "{out}");
    let md = inst.path().join("mail/example.test/alice");
    wait_until(Duration::from_secs(30), || maildir_files(&md).len() == 3).unwrap_or_else(|_| {
        panic!(
            "not delivered:\n{}\n{}",
            inst.log("kmp-send"),
            inst.log("kmp-local")
        )
    });
    // Received names the client as RFC 5321 writes an IPv6 address.
    for f in maildir_files(&md) {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            text.contains("Received: from [IPv6:::1] (unknown [IPv6:::1])"),
            "{text}"
        );
    }
    let smtpd = inst.log("kmp-smtpd");
    assert!(smtpd.contains("smtp connected address=::1 "), "{smtpd}");
    assert!(smtpd.contains("client=unknown[IPv6:::1]"), "{smtpd}");

    let read = format!(
        "{PY_TLS}{}",
        r#"
b = int(sys.argv[1])
p = poplib.POP3("::1", b + 110, timeout=20)
p.user("alice@example.test")
p.pass_("secret")
print("pop3", p.stat()[0])
print("retr", b"over six" in b"\n".join(p.retr(1)[1]))
p.quit()
p = poplib.POP3_SSL("::1", b + 995, context=ctx, timeout=20)
p.user("alice@example.test")
p.pass_("secret")
print("pop3s", p.stat()[0])
p.quit()
m = imaplib.IMAP4("::1", b + 143, timeout=20)
m.login("alice@example.test", "secret")
print("imap", m.select("INBOX")[1][0].decode())
m.logout()
m = imaplib.IMAP4_SSL("::1", b + 993, ssl_context=ctx, timeout=20)
m.login("alice@example.test", "secret")
typ, data = m.select("INBOX")
print("imaps", data[0].decode())
typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
print("subject", b"over six" in data[0][1])
m.logout()
"#
    );
    let out = py(&read, &[&b.to_string()]);
    for want in [
        "pop3 3",
        "retr True",
        "pop3s 3",
        "imap 3",
        "imaps 3",
        "subject True",
    ] {
        assert!(out.contains(want), "{want:?} not in {out}");
    }
    assert!(
        inst.log("kmp-imapd").contains("address=::1"),
        "{}",
        inst.log("kmp-imapd")
    );
    assert!(
        inst.log("kmp-pop3d").contains("address=::1"),
        "{}",
        inst.log("kmp-pop3d")
    );
}

#[test]
fn the_webmail_is_served_over_the_ipv6_loopback_too() {
    need_ipv6!();
    let Some(w) = common::webmail::webmail_instance() else {
        return;
    };
    let conf = std::fs::read_to_string(w.inst.path().join("webmail/lighttpd.conf")).unwrap();
    let v6 = format!("[::1]:{}", w.inst.base + 80);
    assert!(conf.contains(&v6), "{conf}");
    wait_until(Duration::from_secs(10), || {
        TcpStream::connect(v6.as_str()).is_ok()
    })
    .unwrap_or_else(|_| panic!("lighttpd does not listen on {v6}"));
    // A browser on ::1 is on the loopback: it may log in over plain HTTP.
    let site = format!("http://{v6}");
    let r = w.post_login_with(&["-g"], &site, "u@example.test", "secret");
    assert_eq!(r.status, 303, "{}", r.body);
    let session = r.session().expect("a session cookie");
    let page = w.curl(&[
        "-g",
        "-H",
        &format!("Cookie: kmpw={session}"),
        &format!("{site}/folders"),
    ]);
    assert_eq!(
        page.status,
        200,
        "{:?} {}",
        page.header("location"),
        page.body
    );
    assert!(page.body.contains("INBOX"), "{}", page.body);
    // HTTPS on [::1] too, when lighttpd has its TLS module.
    if conf.contains("ssl.engine") {
        let login = w.curl(&[
            "-g",
            "-k",
            &format!("https://[::1]:{}/login", w.inst.base + 443),
        ]);
        assert_eq!(login.status, 200, "{}", login.body);
    } else {
        eprintln!("SKIPPED the HTTPS part: lighttpd has no TLS module (lighttpd-mod-openssl)");
    }
    let access =
        std::fs::read_to_string(w.inst.path().join("log/lighttpd-access.log")).unwrap_or_default();
    assert!(access.contains("::1"), "{access}");
}

#[test]
fn a_listener_the_host_cannot_bind_is_skipped_and_the_wildcard_takes_both_families() {
    let mut inst = instance(&[]);
    let p = inst.base + 25;
    // 2001:db8::/32 is for documentation: on no interface of any host.
    set_key(
        &inst,
        "smtpd",
        "listen",
        &format!("[\"[::]:{p}\", \"[2001:db8:ffff::1]:{p}\"]"),
    );
    start(&mut inst, &["kmp-authd", "kmp-smtpd"]);
    let log = inst.log("kmp-smtpd");
    assert!(log.contains("skipping [2001:db8:ffff::1]"), "{log}");
    let greet = |addr: &str| {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        line
    };
    assert!(greet(&format!("127.0.0.1:{p}")).starts_with("220 "));
    wait_until(Duration::from_secs(5), || {
        inst.log("kmp-smtpd")
            .contains("smtp connected address=127.0.0.1 ")
    })
    .unwrap_or_else(|_| {
        panic!(
            "an IPv4 client of [::] is not logged as IPv4:\n{}",
            inst.log("kmp-smtpd")
        )
    });
    if has_ipv6_loopback() {
        assert!(greet(&format!("[::1]:{p}")).starts_with("220 "));
    }
}

/// SMTP AUTH failures on the submission port at `addr` from `source`
/// (empty: any), `n` times; prints each reply code.
const PY_FAIL: &str = r#"
host, port, src, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
for i in range(n):
    s = smtplib.SMTP(host, port, source_address=(src, 0) if src else None, timeout=20)
    s.starttls(context=ctx)
    s.ehlo("client.test")
    try:
        s.user, s.password = "alice@example.test", "wrong%d" % i
        s.auth("PLAIN", s.auth_plain)
        print("accepted")
    except smtplib.SMTPAuthenticationError as e:
        print(e.smtp_code)
    s.quit()
"#;

/// The first reply line a client at `source` gets from `host`:`port`.
const PY_GREET: &str = r#"
import socket, sys
host, port, src = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((host, port), timeout=20, source_address=(src, 0) if src else None)
print(s.makefile("rb").readline().decode().strip())
"#;

#[test]
fn ipv6_clients_are_banned_by_prefix_and_kmpctl_takes_prefixes() {
    need_ipv6!();
    let mut inst = instance(&[
        ("authd", "max_failures = 3"),
        ("system", "ipv6_prefix = 64"),
    ]);
    start(&mut inst, &["kmp-authd", "kmp-smtpd"]);
    let p587 = (inst.base + 587).to_string();
    let out = python(&format!("{PY_TLS}{PY_FAIL}"), &["::1", &p587, "", "3"]);
    let out = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.lines().filter(|l| *l == "535").count(),
        3,
        "{out}\n{}\n{}",
        inst.log("kmp-smtpd"),
        inst.log("kmp-authd")
    );
    // ::1 is in ::/64: that network is banned, not the one address.
    wait_until(Duration::from_secs(10), || {
        inst.ctl_ok(&["ban", "list"]).contains("::/64")
    })
    .unwrap_or_else(|_| panic!("no ban:\n{}", inst.log("kmp-authd")));
    let p25 = (inst.base + 25).to_string();
    let greeting = py(PY_GREET, &["::1", &p25, ""]);
    assert!(greeting.starts_with("421 "), "{greeting}");
    // The IPv4 loopback is another client.
    let greeting = py(PY_GREET, &["127.0.0.1", &p25, ""]);
    assert!(greeting.starts_with("220 "), "{greeting}");

    // kmpctl: a prefix is banned as a network, its host bits cleared.
    let out = inst.ctl_ok(&["ban", "add", "2001:db8:7::1/64", "--reason", "test"]);
    assert!(out.contains("banned 2001:db8:7::/64"), "{out}");
    let list = inst.ctl_ok(&["ban", "list"]);
    assert!(list.contains("2001:db8:7::/64"), "{list}");
    let json = inst.ctl_ok(&["--json", "ban", "list"]);
    assert!(json.contains("\"2001:db8:7::/64\""), "{json}");
    inst.ctl_ok(&["ban", "del", "2001:db8:7::/64"]);
    assert!(!inst.ctl_ok(&["ban", "list"]).contains("2001:db8:7::"));
}

/// Addresses put on the loopback interface for one test, taken off again.
struct LoAddresses(Vec<&'static str>);

impl LoAddresses {
    /// Adds every address, or None (nothing left behind) when the host
    /// does not let us: not root, or no `ip` command.
    fn add(addrs: &[&'static str]) -> Option<LoAddresses> {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("SKIPPED the two-address /64 part: not root (CI runs it as root)");
            return None;
        }
        let mut added = LoAddresses(Vec::new());
        for a in addrs {
            let ok = Command::new("ip")
                .args([
                    "-6",
                    "addr",
                    "add",
                    &format!("{a}/128"),
                    "dev",
                    "lo",
                    "nodad",
                ])
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!("SKIPPED the two-address /64 part: cannot add {a} to lo");
                return None;
            }
            added.0.push(a);
        }
        Some(added)
    }
}

impl Drop for LoAddresses {
    fn drop(&mut self) {
        for a in &self.0 {
            let _ = Command::new("ip")
                .args(["-6", "addr", "del", &format!("{a}/128"), "dev", "lo"])
                .status();
        }
    }
}

#[test]
fn failures_from_two_addresses_of_one_slash_64_ban_the_whole_prefix() {
    need_ipv6!();
    // Documentation addresses, on lo only for this test.
    let (server, a, b, c) = (
        "2001:db8:6464:ff::1",
        "2001:db8:6464:1::a",
        "2001:db8:6464:1::b",
        "2001:db8:6464:2::c",
    );
    let Some(_lo) = LoAddresses::add(&[server, a, b, c]) else {
        return;
    };
    let mut inst = instance(&[("authd", "max_failures = 4")]);
    let (p25, p587) = (inst.base + 25, inst.base + 587);
    set_key(&inst, "smtpd", "listen", &format!("[\"[{server}]:{p25}\"]"));
    set_key(
        &inst,
        "smtpd",
        "submission_listen",
        &format!("[\"[{server}]:{p587}\"]"),
    );
    start(&mut inst, &["kmp-authd", "kmp-smtpd"]);
    let fail = format!("{PY_TLS}{PY_FAIL}");
    let (p25, p587) = (p25.to_string(), p587.to_string());
    // Two failures from each of two addresses: four from one /64.
    for src in [a, b] {
        let out = py(&fail, &[server, &p587, src, "2"]);
        assert_eq!(out.lines().filter(|l| *l == "535").count(), 2, "{out}");
    }
    wait_until(Duration::from_secs(10), || {
        inst.ctl_ok(&["ban", "list"])
            .contains("2001:db8:6464:1::/64")
    })
    .unwrap_or_else(|_| {
        panic!(
            "no /64 ban:\n{}\n{}",
            inst.ctl_ok(&["ban", "list"]),
            inst.log("kmp-authd")
        )
    });
    for src in [a, b] {
        let g = py(PY_GREET, &[server, &p25, src]);
        assert!(g.starts_with("421 "), "{src}: {g}");
    }
    // The next /64 is someone else.
    let g = py(PY_GREET, &[server, &p25, c]);
    assert!(g.starts_with("220 "), "{g}");
    let log = inst.log("kmp-smtpd");
    assert!(log.contains("unknown[IPv6:2001:db8:6464:1::a]"), "{log}");
}

// ---------------------------------------------------------------------------
// kmp-remote to a sink on ::1.

/// What the sink was given: the client's address, the recipients and the data.
#[derive(Debug, Clone)]
struct Got {
    peer: SocketAddr,
    rcpts: Vec<String>,
    data: String,
}

/// A small SMTP server on ::1: accepts every recipient but `nobody@...`
/// (550 5.1.1) and records each message.
fn sink() -> (u16, Arc<Mutex<Vec<Got>>>) {
    let l = TcpListener::bind("[::1]:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for _ in 0..50 {
            let Ok((s, peer)) = l.accept() else { return };
            let g = g.clone();
            std::thread::spawn(move || session(s, peer, &g));
        }
    });
    (port, got)
}

fn session(s: TcpStream, peer: SocketAddr, got: &Mutex<Vec<Got>>) {
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut say = |t: &str| w.write_all(format!("{t}\r\n").as_bytes()).is_ok();
    say("220 sink.test ESMTP");
    let mut rcpts = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let up = line.to_ascii_uppercase();
        let ok = if up.starts_with("EHLO") || up.starts_with("HELO") {
            say("250 sink.test")
        } else if up.starts_with("MAIL") {
            rcpts.clear();
            say("250 2.1.0 Ok")
        } else if up.starts_with("RCPT") {
            if up.contains("NOBODY@") {
                say("550 5.1.1 No such user here")
            } else {
                rcpts.push(line.trim().to_string());
                say("250 2.1.5 Ok")
            }
        } else if up.starts_with("DATA") {
            say("354 go on");
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if r.read_line(&mut l).unwrap_or(0) == 0 {
                    return;
                }
                if l == ".\r\n" {
                    break;
                }
                data.push_str(&l);
            }
            got.lock().unwrap().push(Got {
                peer,
                rcpts: std::mem::take(&mut rcpts),
                data,
            });
            say("250 2.0.0 Ok: taken")
        } else if up.starts_with("QUIT") {
            say("221 2.0.0 Bye");
            return;
        } else {
            say("250 Ok")
        };
        if !ok {
            return;
        }
    }
}

/// A name server on 127.0.0.1 for six.test: MX mx.six.test, which has the
/// AAAA ::1 and the A 127.0.0.1 (where nothing listens on the sink's port).
fn dns_server() -> SocketAddr {
    use common::dns::{a, mx, Dns, Rr};
    let mut zone = vec![
        mx("six.test", 10, "mx.six.test."),
        a("mx.six.test", [127, 0, 0, 1]),
    ];
    zone.push((
        "mx.six.test".into(),
        Rr::Aaaa(std::net::Ipv6Addr::LOCALHOST),
    ));
    Dns::serving(zone).addr
}

#[test]
fn kmp_remote_delivers_to_a_sink_on_ipv6_through_aaaa_and_literals() {
    need_ipv6!();
    let (port, got) = sink();
    let dns = dns_server();
    let mut inst = instance(&[("smtpd", "relay_networks = [\"::1/128\"]")]);
    inst.append_config(&format!(
        "[remote]\nsmtp_port = {port}\ndns_servers = [\"{dns}\"]\nconnect_timeout = \"5s\"\n"
    ));
    start(
        &mut inst,
        &[
            "kmp-authd",
            "kmp-local",
            "kmp-remote",
            "kmp-send",
            "kmp-smtpd",
        ],
    );
    let send = r#"
import smtplib, sys
s = smtplib.SMTP("::1", int(sys.argv[1]), local_hostname="[IPv6:::1]", timeout=20)
for rcpt in sys.argv[2:]:
    s.sendmail("alice@example.test", [rcpt], "From: alice@example.test\r\nSubject: to %s\r\n\r\nhi\r\n" % rcpt)
s.quit()
print("sent")
"#;
    let p25 = (inst.base + 25).to_string();
    let out = py(
        send,
        &[&p25, "x@six.test", "y@[IPv6:::1]", "nobody@six.test"],
    );
    assert!(out.contains("sent"), "{out}");
    wait_until(Duration::from_secs(30), || got.lock().unwrap().len() >= 2).unwrap_or_else(|_| {
        panic!(
            "the sink got {:?}:\n{}\n{}",
            got.lock().unwrap(),
            inst.log("kmp-send"),
            inst.log("kmp-remote")
        )
    });
    let got = got.lock().unwrap().clone();
    for g in &got {
        assert_eq!(g.peer.ip().to_string(), "::1", "{g:?}");
    }
    let rcpts: Vec<String> = got.iter().flat_map(|g| g.rcpts.clone()).collect();
    assert!(
        rcpts.iter().any(|r| r.contains("<x@six.test>")),
        "{rcpts:?}"
    );
    assert!(
        rcpts.iter().any(|r| r.contains("<y@[IPv6:::1]>")),
        "{rcpts:?}"
    );
    assert!(got[0].data.contains("(unknown [IPv6:::1])"), "{:?}", got[0]);
    let log = inst.log("kmp-remote");
    assert!(
        log.contains(&format!("relay=mx.six.test[::1]:{port}")),
        "{log}"
    );
    // The refused recipient comes back to alice, naming the address tried.
    let md = inst.path().join("mail/example.test/alice");
    wait_until(Duration::from_secs(30), || !maildir_files(&md).is_empty())
        .unwrap_or_else(|_| panic!("no bounce:\n{}", inst.log("kmp-send")));
    let dsn = std::fs::read_to_string(&maildir_files(&md)[0]).unwrap();
    assert!(
        dsn.contains("Final-Recipient: rfc822; nobody@six.test"),
        "{dsn}"
    );
    assert!(
        dsn.contains("host mx.six.test[::1] said: 550 5.1.1"),
        "{dsn}"
    );
    assert!(dsn.contains("Remote-MTA: dns; mx.six.test"), "{dsn}");

    // IPv4 only: the same MX is tried at its A record, where nothing listens.
    inst.kill("kmp-remote");
    std::fs::remove_file(inst.path().join("run/kmp-remote.pid")).ok();
    set_config(&inst, "remote", "address_family = \"ipv4\"");
    start(&mut inst, &["kmp-remote"]);
    py(send, &[&p25, "z@six.test"]);
    wait_until(Duration::from_secs(60), || {
        inst.log("kmp-remote").contains("to=<z@six.test>")
    })
    .unwrap_or_else(|_| {
        panic!(
            "no attempt for z:\n{}\n{}",
            inst.log("kmp-send"),
            inst.log("kmp-remote")
        )
    });
    let log = inst.log("kmp-remote");
    let line = log.lines().find(|l| l.contains("to=<z@six.test>")).unwrap();
    assert!(line.contains("status=deferred"), "{line}");
    assert!(line.contains("mx.six.test[127.0.0.1]"), "{line}");
}

/// Holds a connection from the first source, then prints the greeting a
/// client at each other source gets.
const PY_HOLD: &str = r#"
import socket, sys
host, port, hold = sys.argv[1], int(sys.argv[2]), sys.argv[3]
held = socket.create_connection((host, port), timeout=20, source_address=(hold, 0))
print("held", held.makefile("rb").readline().decode().strip()[:3])
for src in sys.argv[4:]:
    s = socket.create_connection((host, port), timeout=20, source_address=(src, 0))
    print(src, s.makefile("rb").readline().decode().strip())
    s.close()
"#;

#[test]
fn connections_per_client_count_an_ipv6_slash_64_as_one_client() {
    need_ipv6!();
    let (server, a, b, c) = (
        "2001:db8:6465:ff::1",
        "2001:db8:6465:1::a",
        "2001:db8:6465:1::b",
        "2001:db8:6465:2::c",
    );
    let Some(_lo) = LoAddresses::add(&[server, a, b, c]) else {
        return;
    };
    let mut inst = instance(&[("smtpd", "max_connections_per_ip = 1")]);
    let p25 = inst.base + 25;
    set_key(&inst, "smtpd", "listen", &format!("[\"[{server}]:{p25}\"]"));
    start(&mut inst, &["kmp-authd", "kmp-smtpd"]);
    let out = py(PY_HOLD, &[server, &p25.to_string(), a, b, c]);
    assert!(out.contains("held 220"), "{out}");
    // b is in a's /64: the same client, over its one connection.
    assert!(out.contains(&format!("{b} 421")), "{out}");
    assert!(out.contains(&format!("{c} 220")), "{out}");
}
