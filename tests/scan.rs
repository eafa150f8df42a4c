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
    assert!(h[0].contains("unchecked"), "{h:?}");
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
    use common::dns_static::{a, serve};
    let dns = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dns_addr = dns.local_addr().unwrap();
    // 127.0.0.1 is listed in bl.test (weight 10) and in small.test (weight 3).
    serve(
        dns,
        vec![
            a("1.0.0.127.bl.test", [127, 0, 0, 2]),
            a("1.0.0.127.small.test", [127, 0, 0, 4]),
        ],
    );
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
    use common::dns_static::{a, serve};
    let dns = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dns_addr = dns.local_addr().unwrap();
    // Listed in small.test (3); HELO without a dot (3). The reverse DNS of
    // 127.0.0.1 is confirmed (localhost, through /etc/hosts), so it adds nothing.
    serve(dns, vec![a("1.0.0.127.small.test", [127, 0, 0, 4])]);
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
