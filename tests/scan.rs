//! Checks at the SMTP door (lib/antispam/scan) under `kmpctl start`, with
//! real scanners started by the test (Debian's spamd and clamd, private
//! configurations, nothing downloaded), a name server of the test's own
//! for the DNSBL, and mail sent with Python's smtplib; where mail landed
//! is read back with imaplib.
mod common;

use std::time::Duration;

use common::scan::*;
use common::sieve::{folder, instance, put, wait_for, Stop, PASS, S, U, V};
use common::{set_config, wait_until};

/// V's script: files by the score the scanners gave (Sieve spamtest).
const SCORED: &str = r#"require ["spamtest", "relational", "comparator-i;ascii-numeric", "fileinto", "mailbox"];
if spamtest :value "ge" :comparator "i;ascii-numeric" "5" {
  fileinto :create "Scored";
}
"#;

/// Says why a test skips when a scanner is not installed.
fn skip(why: Option<String>) -> bool {
    if let Some(w) = why {
        eprintln!("skipped: {w}");
        return true;
    }
    false
}

#[test]
fn spamd_and_clamd_refuse_tag_and_file_into_junk() {
    if skip(spamd_missing()) || skip(clamd_missing()) {
        return;
    }
    let spamd = spamd();
    let clamd = clamd();
    let inst = instance();
    set_config(
        &inst,
        "scan",
        &format!("spamd = \"{}\"", spamd.socket.display()),
    );
    set_config(
        &inst,
        "scan",
        &format!("clamd = \"{}\"", clamd.socket.display()),
    );
    // V's own script sorts by the score spamd gave.
    put(
        &inst,
        V,
        r#"require ["spamtest", "relational", "comparator-i;ascii-numeric", "fileinto", "mailbox", "virustest"];
if spamtest :value "ge" :comparator "i;ascii-numeric" "5" {
  fileinto :create "Scored";
  stop;
}
if virustest :value "eq" :comparator "i;ascii-numeric" "1" {
  fileinto :create "VirusChecked";
}
"#,
    );
    inst.ctl_ok(&["user", "spam", U, "--allow-sender", "friend@allowed.test"]);
    inst.ctl_ok(&["user", "spam", U, "--block-sender", "@blocked.test"]);
    inst.ctl_ok(&["start"]);
    let _stop = Stop(&inst);
    let port = inst.base + 25;

    // GTUBE: over the reject score, refused at DATA.
    let r = send(
        port,
        "mail.sender.test",
        S,
        &[U],
        &message(S, U, "gtube", GTUBE),
    );
    assert!(r.starts_with("550 5.7.1"), "{r}");
    // EICAR: refused with the signature's name.
    let r = send(port, "mail.sender.test", S, &[U], &eicar_message(S, U));
    assert!(r.starts_with("554 5.7.0"), "{r}");
    assert!(r.contains(EICAR_NAME), "{r}");
    // A blocked sender: refused at RCPT for that user, not for another.
    let r = send(
        port,
        "mail.sender.test",
        "x@blocked.test",
        &[U],
        &message("x@blocked.test", U, "blocked", "hi"),
    );
    assert!(r.starts_with("550 5.7.1"), "{r}");
    let r = send(
        port,
        "mail.sender.test",
        "x@blocked.test",
        &[V],
        &message("x@blocked.test", V, "to v from blocked", "hi"),
    );
    assert_eq!(r, "ok");
    // Clean mail passes, tagged; a forged junk mark and score are removed.
    let forged = message(S, U, "clean one", "hello there").replacen(
        "Subject:",
        "X-Kmpromail-Junk: yes\r\nX-Spam-Score: 99\r\nSubject:",
        1,
    );
    assert_eq!(send(port, "mail.sender.test", S, &[U], &forged), "ok");
    // Between the tag and reject scores: delivered into Junk.
    let mid = message(S, U, "mid score", &format!("buy {MIDSPAM} now"));
    assert_eq!(send(port, "mail.sender.test", S, &[U], &mid), "ok");
    // The same from a sender U allows: INBOX.
    let f = "friend@allowed.test";
    let mid_friend = message(f, U, "mid from friend", &format!("buy {MIDSPAM} now"));
    assert_eq!(send(port, "mail.sender.test", f, &[U], &mid_friend), "ok");
    // V's Sieve sees the score (and files it itself), and clamd's verdict.
    let mid_v = message(S, V, "mid for v", &format!("buy {MIDSPAM} now"));
    assert_eq!(send(port, "mail.sender.test", S, &[V], &mid_v), "ok");
    assert_eq!(
        send(
            port,
            "mail.sender.test",
            S,
            &[V],
            &message(S, V, "clean for v", "hello")
        ),
        "ok"
    );

    let imap = inst.base + 143;
    wait_for(&inst, U, "Junk", "mid score");
    let inbox = wait_for(&inst, U, "INBOX", "mid from friend");
    assert!(inbox.iter().any(|l| l.contains("clean one")), "{inbox:?}");
    assert!(
        !inbox
            .iter()
            .any(|l| l.contains("gtube") || l.contains("attachment")),
        "{inbox:?}"
    );
    let junk = folder(&inst, U, "Junk");
    assert_eq!(junk.len(), 1, "{junk:?}");
    let h = headers(imap, U, PASS, "INBOX");
    let clean = h
        .iter()
        .find(|l| l.contains("clean one"))
        .expect("clean one");
    assert!(clean.contains("X-Spam-Status: No, score="), "{clean}");
    assert!(clean.contains("X-Virus-Scanned: clamd; clean"), "{clean}");
    assert!(!clean.contains("X-Kmpromail-Junk"), "{clean}");
    assert!(!clean.contains("X-Spam-Score: 99"), "{clean}");
    let friend = h.iter().find(|l| l.contains("mid from friend")).unwrap();
    assert!(friend.contains("KMP_ALLOWED_SENDER"), "{friend}");
    let j = headers(imap, U, PASS, "Junk");
    assert!(j[0].contains("X-Spam-Flag: YES"), "{j:?}");
    assert!(j[0].contains("KMP_MIDSPAM"), "{j:?}");
    assert!(j[0].contains("X-Kmpromail-Junk: spam score="), "{j:?}");
    wait_for(&inst, V, "Scored", "mid for v");
    wait_for(&inst, V, "VirusChecked", "clean for v");
}

#[test]
fn a_scanner_that_is_down_gets_the_configured_action() {
    let inst = instance();
    let nowhere = inst.path().join("no-spamd.sock");
    set_config(&inst, "scan", &format!("spamd = \"{}\"", nowhere.display()));
    // rspamd at a loopback port where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    set_config(&inst, "scan", &format!("rspamd = \"{closed}\""));
    set_config(&inst, "scan", "connect_timeout = \"1s\"");
    inst.ctl_ok(&["start"]);
    let _stop = Stop(&inst);
    let port = inst.base + 25;
    // accept (the default): delivered, tagged unchecked.
    assert_eq!(
        send(
            port,
            "mail.sender.test",
            S,
            &[U],
            &message(S, U, "while down", "hi")
        ),
        "ok"
    );
    wait_for(&inst, U, "INBOX", "while down");
    let h = headers(inst.base + 143, U, PASS, "INBOX");
    assert!(h[0].contains("unchecked (spamd unavailable)"), "{h:?}");
    assert!(h[0].contains("unchecked (rspamd unavailable)"), "{h:?}");
    // tempfail: 451 4.7.1, nothing queued.
    set_config(&inst, "scan", "on_failure = \"tempfail\"");
    inst.ctl_ok(&["reload"]);
    let mut r = String::new();
    wait_until(Duration::from_secs(10), || {
        r = send(
            port,
            "mail.sender.test",
            S,
            &[U],
            &message(S, U, "tempfailed", "hi"),
        );
        r != "ok"
    })
    .unwrap_or_else(|_| panic!("never refused: {r}"));
    assert!(r.starts_with("451 4.7.1"), "{r}");
}

#[test]
fn dnsbl_listed_clients_are_refused_or_scored_and_greylisting_delays() {
    use common::dns::{a, Dns};
    // 127.0.0.1 is listed in bl.test (weight 10) and in small.test (weight 3).
    let dns = Dns::serving(vec![
        a("1.0.0.127.bl.test", [127, 0, 0, 2]),
        a("1.0.0.127.small.test", [127, 0, 0, 4]),
    ]);
    let dns_addr = dns.addr;
    let inst = instance();
    set_config(&inst, "scan", &format!("dns_servers = [\"{dns_addr}\"]"));
    set_config(
        &inst,
        "scan",
        "dnsbl = [\"bl.test 10\", \"small.test 3\", \"notlisted.test 50\"]",
    );
    set_config(&inst, "scan", "greylist = true");
    set_config(&inst, "scan", "greylist_delay = \"1s\"");
    // V does not want the connection checks: greylisted only.
    inst.ctl_ok(&["user", "spam", V, "--dnsbl", "no"]);
    inst.ctl_ok(&["start"]);
    let _stop = Stop(&inst);
    let port = inst.base + 25;
    let r = send(
        port,
        "mail.sender.test",
        "a@remote.test",
        &[U],
        &message("a@remote.test", U, "listed", "hi"),
    );
    assert!(r.starts_with("554 5.7.1"), "{r}");
    assert!(r.contains("bl.test"), "{r}");
    // Greylisting: the first attempt waits, a retry after the delay passes.
    let m = message("a@remote.test", V, "greylisted", "hi");
    let r = send(port, "mail.sender.test", "a@remote.test", &[V], &m);
    assert!(r.starts_with("451 4.7.1"), "{r}");
    assert!(r.contains("Greylisted"), "{r}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        send(port, "mail.sender.test", "a@remote.test", &[V], &m),
        "ok"
    );
    wait_for(&inst, V, "INBOX", "greylisted");
    // kmp-authd keeps the table in a file, so it survives a restart.
    assert!(inst.path().join("db/authd-greylist").exists());
}

#[test]
fn connection_scores_below_the_threshold_add_up_into_the_spam_score() {
    use common::dns::{a, Dns};
    // Listed in small.test (3); HELO without a dot (3). The reverse DNS of
    // 127.0.0.1 is confirmed (localhost, through /etc/hosts), so it adds nothing.
    let dns = Dns::serving(vec![a("1.0.0.127.small.test", [127, 0, 0, 4])]);
    let dns_addr = dns.addr;
    let inst = instance();
    set_config(&inst, "scan", &format!("dns_servers = [\"{dns_addr}\"]"));
    set_config(&inst, "scan", "dnsbl = [\"small.test 3\"]");
    set_config(&inst, "scan", "fcrdns = \"score\"");
    set_config(&inst, "scan", "helo = \"score\"");
    inst.ctl_ok(&["start"]);
    let _stop = Stop(&inst);
    let port = inst.base + 25;
    let m = message("a@remote.test", U, "scored by connection", "hi");
    assert_eq!(send(port, "localhost", "a@remote.test", &[U], &m), "ok");
    wait_for(&inst, U, "Junk", "scored by connection");
    let h = headers(inst.base + 143, U, PASS, "Junk");
    assert!(h[0].contains("X-Spam-Score: 6.0"), "{h:?}");
    for t in ["KMP_DNSBL_small.test", "KMP_HELO_NOT_FQDN"] {
        assert!(h[0].contains(t), "{t}: {h:?}");
    }
    assert!(!h[0].contains("KMP_NO_FCRDNS"), "{h:?}");
    // With a proper HELO the score is 3: under the tag score, INBOX.
    let m = message("a@remote.test", U, "second", "hi");
    assert_eq!(
        send(port, "mail.remote.test", "a@remote.test", &[U], &m),
        "ok"
    );
    let inbox = wait_for(&inst, U, "INBOX", "second");
    assert_eq!(inbox.len(), 1, "{inbox:?}");
}

#[test]
fn rspamd_refuses_gtube_tags_and_gives_sieve_its_score() {
    if skip(rspamd_missing()) {
        return;
    }
    let rspamd = match rspamd() {
        Ok(d) => d,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let inst = instance();
    set_config(&inst, "scan", &format!("rspamd = \"{}\"", rspamd.addr));
    put(&inst, V, SCORED);
    inst.ctl_ok(&["start"]);
    let _stop = Stop(&inst);
    let port = inst.base + 25;
    // GTUBE: rspamd's reject, refused at DATA.
    let r = send(
        port,
        "mail.sender.test",
        S,
        &[U],
        &message(S, U, "gtube", GTUBE),
    );
    assert!(r.starts_with("550 5.7.1"), "{r}");
    // Our rule's 7: over the tag score, into Junk, with rspamd's symbols.
    let mid = message(S, U, "mid score", &format!("buy {MIDSPAM} now"));
    assert_eq!(send(port, "mail.sender.test", S, &[U], &mid), "ok");
    let clean = message(S, U, "clean one", "hello there");
    assert_eq!(send(port, "mail.sender.test", S, &[U], &clean), "ok");
    let mid_v = message(S, V, "mid for v", &format!("buy {MIDSPAM} now"));
    assert_eq!(send(port, "mail.sender.test", S, &[V], &mid_v), "ok");

    let imap = inst.base + 143;
    wait_for(&inst, U, "Junk", "mid score");
    wait_for(&inst, U, "INBOX", "clean one");
    let j = headers(imap, U, PASS, "Junk");
    assert!(j[0].contains("X-Spam-Flag: YES"), "{j:?}");
    assert!(j[0].contains("KMP_MIDSPAM"), "{j:?}");
    assert!(j[0].contains("X-Spam-Score: 7.0"), "{j:?}");
    let h = headers(imap, U, PASS, "INBOX");
    assert!(h[0].contains("X-Spam-Status: No, score="), "{h:?}");
    assert!(!h[0].contains("unchecked"), "{h:?}");
    // V's Sieve sees rspamd's score as spamtest.
    wait_for(&inst, V, "Scored", "mid for v");
    let log = std::fs::read_to_string(rspamd.dir.path().join("rspamd.log")).unwrap_or_default();
    assert!(log.contains("GTUBE"), "{log}");
}

#[test]
fn locally_submitted_mail_cannot_set_the_junk_mark() {
    let inst = instance();
    inst.ctl_ok(&["start"]);
    let _stop = Stop(&inst);
    // kmp-inject (sendmail) from a local program, with the fields only
    // the scanners write.
    let mut child = std::process::Command::new(common::bin("kmp-inject"))
        .arg("-C")
        .arg(inst.config())
        .args(["-i", "-f", S, U])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            format!(
                "From: <{S}>\nTo: <{U}>\nSubject: local junk mark\nX-Kmpromail-Junk: spam score=99\nX-Spam-Flag: YES\nX-Spam-Score: 99\n\nhi\n"
            )
            .as_bytes(),
        )
        .unwrap();
    assert!(child.wait().unwrap().success());
    wait_for(&inst, U, "INBOX", "local junk mark");
    let h = headers(inst.base + 143, U, PASS, "INBOX");
    assert!(h[0].contains("local junk mark"), "{h:?}");
    for gone in ["X-Kmpromail-Junk", "X-Spam-Flag", "X-Spam-Score"] {
        assert!(!h[0].contains(gone), "{gone}: {h:?}");
    }
    assert!(
        folder(&inst, U, "Junk").iter().all(|l| l == "NOFOLDER"),
        "{:?}",
        folder(&inst, U, "Junk")
    );
}

#[test]
fn a_recipient_behind_an_alias_is_judged_by_its_users_settings() {
    use common::dns::{a, Dns};
    // Every client here scores 6 by the connection checks (127.0.0.1 is
    // listed in six.test): under the threshold (10), into the spam score.
    let dns = Dns::serving(vec![a("1.0.0.127.six.test", [127, 0, 0, 2])]);
    let inst = instance();
    set_config(&inst, "scan", &format!("dns_servers = [\"{}\"]", dns.addr));
    set_config(&inst, "scan", "dnsbl = [\"six.test 6\"]");
    // U tolerates up to 10 and blocks a domain; V is strict (tag 3,
    // refuse from 5) but allows a friend. The system: tag 5, refuse 15.
    inst.ctl_ok(&["user", "spam", U, "--tag-score", "10"]);
    inst.ctl_ok(&["user", "spam", U, "--block-sender", "@blocked.test"]);
    inst.ctl_ok(&["user", "spam", V, "--tag-score", "3", "--reject-score", "5"]);
    inst.ctl_ok(&["user", "spam", V, "--allow-sender", "friend@allowed.test"]);
    inst.ctl_ok(&["alias", "add", "high@example.test", U]);
    inst.ctl_ok(&["alias", "add", "low@example.test", V]);
    inst.ctl_ok(&["alias", "add", "both@example.test", "high@example.test"]);
    inst.ctl_ok(&["start"]);
    let _stop = Stop(&inst);
    let port = inst.base + 25;
    let sender = "a@remote.test";
    let helo = "mail.remote.test";

    // Through the alias to U: U's tag score, so not spam.
    let m = message(sender, "high@example.test", "to high", "hi");
    assert_eq!(send(port, helo, sender, &["high@example.test"], &m), "ok");
    // An alias of that alias: the same.
    let m = message(sender, "both@example.test", "to both", "hi");
    assert_eq!(send(port, helo, sender, &["both@example.test"], &m), "ok");
    // Through the alias to V: over V's reject score, refused at DATA.
    let m = message(sender, "low@example.test", "to low", "hi");
    let r = send(port, helo, sender, &["low@example.test"], &m);
    assert!(r.starts_with("550 5.7.1"), "{r}");
    // ... unless V allows the sender.
    let f = "friend@allowed.test";
    let m = message(f, "low@example.test", "friend to low", "hi");
    assert_eq!(send(port, helo, f, &["low@example.test"], &m), "ok");
    // U's block list holds through the alias, at RCPT.
    let b = "x@blocked.test";
    let m = message(b, "high@example.test", "blocked to high", "hi");
    let r = send(port, helo, b, &["high@example.test"], &m);
    assert!(r.starts_with("550 5.7.1"), "{r}");
    assert!(r.contains("blocked by the recipient"), "{r}");

    let imap = inst.base + 143;
    let inbox = wait_for(&inst, U, "INBOX", "to both");
    assert!(inbox.iter().any(|l| l.contains("to high")), "{inbox:?}");
    assert!(!inbox.iter().any(|l| l.contains("blocked")), "{inbox:?}");
    for h in headers(imap, U, PASS, "INBOX") {
        assert!(
            h.contains("X-Spam-Status: No, score=6.0 required=10"),
            "{h}"
        );
        assert!(!h.contains("X-Spam-Flag"), "{h}");
    }
    wait_for(&inst, V, "INBOX", "friend to low");
    let h = headers(imap, V, PASS, "INBOX");
    assert_eq!(h.len(), 1, "{h:?}");
    assert!(h[0].contains("KMP_ALLOWED_SENDER"), "{h:?}");
}

/// IPv4 addresses put on the loopback interface for one test, taken off
/// again: clients outside 127/8, whose reverse DNS the resolver asks the
/// test's name server for (it answers 127/8 itself, as RFC 6761 says).
struct LoAddresses(Vec<&'static str>);

impl LoAddresses {
    /// Adds every address, or says why not (not root, no `ip`).
    fn add(addrs: &[&'static str]) -> Result<LoAddresses, String> {
        if !nix::unistd::Uid::effective().is_root() {
            return Err("not root: cannot add client addresses to lo (CI runs as root)".into());
        }
        let mut added = LoAddresses(Vec::new());
        for a in addrs {
            let ok = common::tool("ip")
                .args(["addr", "add", &format!("{a}/32"), "dev", "lo"])
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(format!("cannot add {a} to lo"));
            }
            added.0.push(a);
        }
        Ok(added)
    }
}

impl Drop for LoAddresses {
    fn drop(&mut self) {
        for a in &self.0 {
            let _ = std::process::Command::new("ip")
                .args(["addr", "del", &format!("{a}/32"), "dev", "lo"])
                .status();
        }
    }
}

#[test]
fn failing_reverse_dns_is_refused_at_the_door_or_scored() {
    use common::dns::{a, ptr, Dns};
    // Clients from documentation addresses: .61 has no PTR record, .62
    // one that resolves back, .63 one that points at another address,
    // .64 none (for the scored part).
    let (none, good, liar, scored) = ("192.0.2.61", "192.0.2.62", "192.0.2.63", "192.0.2.64");
    let _lo = match LoAddresses::add(&[none, good, liar, scored]) {
        Ok(l) => l,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let dns = Dns::serving(vec![
        ptr(ip(good), "good.remote.test."),
        a("good.remote.test", [192, 0, 2, 62]),
        ptr(ip(liar), "liar.remote.test."),
        a("liar.remote.test", [192, 0, 2, 99]),
    ]);
    let inst = instance();
    set_config(&inst, "scan", &format!("dns_servers = [\"{}\"]", dns.addr));
    set_config(&inst, "scan", "fcrdns = \"reject\"");
    inst.ctl_ok(&["start"]);
    let _stop = Stop(&inst);
    let port = inst.base + 25;
    let sender = "a@remote.test";
    let helo = "mail.remote.test";
    let m = |subject: &str| message(sender, U, subject, "hi");
    for (source, subject) in [(none, "no ptr"), (liar, "liar")] {
        let r = send_from(source, port, helo, sender, &[U], &m(subject));
        assert!(r.starts_with("550 5.7.25"), "{source}: {r}");
        assert!(r.contains(&format!("[{source}]")), "{r}");
    }
    assert_eq!(
        send_from(good, port, helo, sender, &[U], &m("confirmed")),
        "ok"
    );
    wait_for(&inst, U, "INBOX", "confirmed");
    let log = std::fs::read_to_string(inst.path().join("log/kmpromail.log")).unwrap_or_default();
    assert!(log.contains("reason=fcrdns"), "{log}");
    // Scored instead: a client without reverse DNS gets scan.fcrdns_score
    // (5 here, the tag score): delivered into Junk, named in the header.
    let conf = std::fs::read_to_string(inst.config()).unwrap();
    let conf = conf.replacen(
        "fcrdns = \"reject\"",
        "fcrdns = \"score\"\nfcrdns_score = 5",
        1,
    );
    std::fs::write(inst.config(), conf).unwrap();
    inst.ctl_ok(&["reload"]);
    let mut r = String::new();
    wait_until(Duration::from_secs(10), || {
        r = send_from(scored, port, helo, sender, &[U], &m("scored"));
        r == "ok"
    })
    .unwrap_or_else(|_| panic!("still refused: {r}"));
    wait_for(&inst, U, "Junk", "scored");
    let j = headers(inst.base + 143, U, PASS, "Junk");
    assert!(j[0].contains("KMP_NO_FCRDNS"), "{j:?}");
    assert!(j[0].contains("X-Spam-Score: 5.0"), "{j:?}");
}

#[test]
fn the_demo_has_the_checks_a_small_isp_runs_and_check_names_absent_scanners() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::bin("kmpctl"))
        .arg("init")
        .arg(dir.path())
        .args(["--port-base", &common::free_port_base().to_string()])
        .args(["--hostname", "mail.example.test", "--spam-checks"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    let conf = dir.path().join("kmpromail.toml");
    let ctl = |args: &[&str]| {
        let o = std::process::Command::new(common::bin("kmpctl"))
            .arg("-c")
            .arg(&conf)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
    };
    let changed = ctl(&["config", "--changed"]);
    for want in [
        "fcrdns = \"score\"",
        "helo = \"score\"",
        "zen.spamhaus.org 10",
        "list.dnswl.org -5",
    ] {
        assert!(changed.contains(want), "{want}: {changed}");
    }
    assert!(!changed.contains("greylist = true"), "{changed}");
    // Each scanner is on where it is installed, at Debian's address, and
    // kmpctl check says when nothing answers there; otherwise init said
    // it is off.
    let check = ctl(&["check"]);
    let answers = |a: &str| std::net::TcpStream::connect(a).is_ok();
    if std::path::Path::new("/usr/sbin/spamd").is_file() {
        assert!(changed.contains("spamd = \"127.0.0.1:783\""), "{changed}");
        if !answers("127.0.0.1:783") {
            assert!(
                check.contains("scan.spamd: nothing answers at 127.0.0.1:783"),
                "{check}"
            );
        }
    } else if std::path::Path::new("/usr/bin/rspamd").is_file() {
        assert!(
            changed.contains("rspamd = \"127.0.0.1:11333\""),
            "{changed}"
        );
    } else {
        assert!(said.contains("spam scanning off"), "{said}");
    }
    if std::path::Path::new("/usr/sbin/clamd").is_file() {
        assert!(changed.contains("/run/clamav/clamd.ctl"), "{changed}");
    } else {
        assert!(said.contains("virus scanning off"), "{said}");
    }
}
