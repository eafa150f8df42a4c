//! Sieve at delivery: the whole system under `kmpctl start`, scripts put
//! with `kmpctl sieve`, mail sent with Python's smtplib to kmp-smtpd, and
//! where it landed read back with Python's imaplib from kmp-imapd.
mod common;

use std::time::Duration;

use common::sieve::*;

#[test]
fn fileinto_flags_discard_reject_and_a_failing_script() {
    let inst = instance();
    put(
        &inst,
        U,
        r#"require ["fileinto", "imap4flags", "reject", "mailbox"];
if header :contains "subject" "report" {
  fileinto :create "Reports";
  stop;
}
if header :contains "subject" "中文" {
  fileinto :create "报告";
  stop;
}
if header :contains "subject" "urgent" {
  addflag "\\Flagged";
  keep;
  stop;
}
if header :contains "subject" "spam" {
  discard;
  stop;
}
if header :contains "subject" "refuse" {
  reject "I do not take these.";
}
"#,
    );
    inst.ctl_ok(&["start"]);
    let _stop = Stop(&inst);
    send(&inst, S, U, "monthly report", "");
    send(&inst, S, U, "中文 subject", "");
    send(&inst, S, U, "urgent thing", "");
    send(&inst, S, U, "spam offer", "");
    send(&inst, S, U, "refuse this", "");
    send(&inst, S, U, "plain", "");
    let reports = wait_for(&inst, U, "Reports", "monthly report");
    assert_eq!(reports.len(), 1, "{reports:?}");
    // The Chinese folder, by its modified UTF-7 name.
    wait_for(&inst, U, "&YqVUSg-", "中文 subject");
    let inbox = wait_for(&inst, U, "INBOX", "plain");
    let urgent = inbox
        .iter()
        .find(|l| l.contains("urgent thing"))
        .expect("urgent in INBOX");
    assert!(urgent.contains("\\Flagged"), "{urgent}");
    wait_queue_empty(&inst);
    let inbox = folder(&inst, U, "INBOX");
    assert!(!inbox.iter().any(|l| l.contains("spam offer")), "{inbox:?}");
    assert!(
        !inbox.iter().any(|l| l.contains("refuse this")),
        "{inbox:?}"
    );
    assert!(
        !inbox.iter().any(|l| l.contains("monthly report")),
        "{inbox:?}"
    );
    // The refused message came back to its sender as a DSN with the reason.
    wait_for(&inst, S, "INBOX", "Undelivered Mail Returned to Sender");
    let log = std::fs::read_to_string(inst.path().join("log/kmpromail.log")).unwrap();
    assert!(log.contains("I do not take these."), "{log}");

    // A broken script (put there by hand, past the checks): mail goes to
    // INBOX, and the user is told once.
    let home = inst.path().join("mail/example.test/u");
    std::fs::write(home.join("sieve/main.sieve"), "if { broken\n").unwrap();
    send(&inst, S, U, "after breakage 1", "");
    send(&inst, S, U, "after breakage 2", "");
    let inbox = wait_for(&inst, U, "INBOX", "after breakage 2");
    assert!(
        inbox.iter().any(|l| l.contains("after breakage 1")),
        "{inbox:?}"
    );
    let notices = inbox
        .iter()
        .filter(|l| l.contains("Your mail filter failed"))
        .count();
    assert_eq!(notices, 1, "{inbox:?}");
}

#[test]
fn redirect_vacation_once_per_sender_and_loops_stop() {
    let inst = instance();
    put(
        &inst,
        U,
        r#"require ["vacation", "enotify"];
if header :contains "subject" "notify me" {
  notify :message "New mail for u" "mailto:v@example.test";
  keep;
  stop;
}
if header :contains "subject" "forward me" {
  redirect "v@example.test";
  stop;
}
if header :contains "subject" "loop" {
  redirect "v@example.test";
  stop;
}
vacation :days 1 :subject "Away: 出差" "I am away until Monday.";
"#,
    );
    put(
        &inst,
        V,
        r#"if header :contains "subject" "loop" {
  redirect "u@example.test";
}
"#,
    );
    inst.ctl_ok(&["start"]);
    let _stop = Stop(&inst);
    // Redirect: v gets it, u keeps no copy.
    send(&inst, S, U, "forward me please", "");
    wait_for(&inst, V, "INBOX", "forward me please");
    // Notify: v is told, u keeps the message.
    send(&inst, S, U, "notify me now", "");
    wait_for(&inst, U, "INBOX", "notify me now");
    wait_for(&inst, V, "INBOX", "New mail for u");
    // Vacation: one reply to s for two messages.
    send(&inst, S, U, "first hello", "");
    send(&inst, S, U, "second hello", "");
    wait_for(&inst, U, "INBOX", "second hello");
    let replies = wait_for(&inst, S, "INBOX", "Away: 出差");
    wait_queue_empty(&inst);
    std::thread::sleep(Duration::from_secs(1));
    let replies2 = folder(&inst, S, "INBOX");
    assert_eq!(
        replies2.iter().filter(|l| l.contains("Away")).count(),
        1,
        "{replies:?} {replies2:?}"
    );
    // Never to a list or an automatic message.
    send(&inst, V, U, "list post", "List-Id: <l.example.test>");
    send(&inst, V, U, "auto", "Auto-Submitted: auto-generated");
    wait_for(&inst, U, "INBOX", "auto");
    wait_queue_empty(&inst);
    assert!(!folder(&inst, V, "INBOX").iter().any(|l| l.contains("Away")));
    assert!(!folder(&inst, U, "INBOX")
        .iter()
        .any(|l| l.contains("forward me")));
    // A redirect loop between u and v stops.
    send(&inst, S, U, "loop test", "");
    wait_queue_empty(&inst);
    std::thread::sleep(Duration::from_secs(2));
    wait_queue_empty(&inst);
    let log = std::fs::read_to_string(inst.path().join("log/kmpromail.log")).unwrap();
    let redirects = log.matches("sieve redirect").count();
    assert!(redirects < 10, "{redirects} redirects:\n{log}");
    assert!(log.contains("mail forwarding loop"), "{log}");
    wait_for(&inst, S, "INBOX", "Undelivered Mail Returned to Sender");
}
