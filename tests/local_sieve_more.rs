//! Sieve at delivery, the rest: imap4flags keywords stored as Maildir
//! keywords, `include :global` and changes to included scripts, the local
//! time zone of currentdate, Maildirs without new/ or tmp/, and redirects
//! not sent twice when a job is retried. The whole system under `kmpctl
//! start`; mail sent with Python's smtplib, read back with imaplib.
mod common;

use std::time::Duration;

use common::sieve::*;
use common::wait_until;

#[test]
fn imap4flags_keywords_are_stored_and_shown_by_imap() {
    let inst = instance();
    put(
        &inst,
        U,
        r#"require ["fileinto", "imap4flags", "mailbox"];
if header :contains "subject" "tagged" {
  addflag ["$Work", "\\Seen", "Project-X"];
  keep;
  stop;
}
if header :contains "subject" "filed" {
  fileinto :create :flags ["$Forwarded", "Later"] "Tagged";
  stop;
}
"#,
    );
    inst.ctl_ok(&["start"]);
    let _stop = Stop(&inst);
    send(&inst, S, U, "tagged one", "");
    send(&inst, S, U, "filed one", "");
    send(&inst, S, U, "plain one", "");
    let inbox = wait_for(&inst, U, "INBOX", "plain one");
    let tagged = wait_for(&inst, U, "INBOX", "tagged one");
    let line = tagged
        .iter()
        .find(|l| l.contains("tagged one"))
        .expect("tagged in INBOX");
    for f in ["$Work", "\\Seen", "Project-X"] {
        assert!(line.contains(f), "{f} in {line}");
    }
    let plain = inbox.iter().find(|l| l.contains("plain one")).unwrap();
    assert!(!plain.contains("$Work"), "{plain}");
    let filed = wait_for(&inst, U, "Tagged", "filed one");
    assert!(filed[0].contains("$Forwarded"), "{filed:?}");
    assert!(filed[0].contains("Later"), "{filed:?}");
    // Dovecot's file, so Dovecot sees the same keywords.
    let home = inst.path().join("mail/example.test/u");
    let kw = std::fs::read_to_string(home.join("dovecot-keywords")).unwrap();
    assert!(kw.contains("$Work") && kw.contains("Project-X"), "{kw}");
}

#[test]
fn a_maildir_without_new_or_tmp_is_completed_without_special_folders() {
    let inst = instance();
    // u's Maildir came from elsewhere: cur/ and a folder of its own only.
    let home = inst.path().join("mail/example.test/u");
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(home.join("cur")).unwrap();
    std::fs::create_dir_all(home.join(".Archive/cur")).unwrap();
    inst.ctl_ok(&["start"]);
    let _stop = Stop(&inst);
    send(&inst, S, U, "into an old maildir", "");
    send(&inst, S, V, "into a new maildir", "");
    wait_for(&inst, U, "INBOX", "into an old maildir");
    wait_for(&inst, V, "INBOX", "into a new maildir");
    assert!(home.join("new").is_dir() && home.join("tmp").is_dir());
    for special in [".Sent", ".Drafts", ".Trash", ".Junk"] {
        assert!(!home.join(special).exists(), "{special} made in u's");
        let v = inst.path().join("mail/example.test/v").join(special);
        assert!(v.is_dir(), "{special} not made in v's new Maildir");
    }
}

#[test]
fn currentdate_uses_the_configured_zone() {
    let inst = instance();
    common::set_config(&inst, "sieve", "time_zone = \"+0545\"");
    put(
        &inst,
        U,
        r#"require ["date", "fileinto", "mailbox", "variables"];
if currentdate "zone" "+0545" {
  if currentdate :zone "+0000" :matches "zone" "*" {
    fileinto :create "Zoned-${1}";
    stop;
  }
}
"#,
    );
    inst.ctl_ok(&["start"]);
    let _stop = Stop(&inst);
    send(&inst, S, U, "what time is it", "");
    wait_for(&inst, U, "Zoned-+0000", "what time is it");
}

#[test]
fn a_redirect_is_not_sent_again_when_the_job_is_retried() {
    let inst = instance();
    const W: &str = "w@example.test";
    let o = inst.ctl_stdin(&["user", "add", W, "--password-stdin"], Some(b"secret\n"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // One recipient, two mailboxes: u's script redirects a copy, w's
    // Maildir cannot take mail, so the recipient is deferred and retried.
    inst.ctl_ok(&["alias", "add", "team@example.test", U, W]);
    for line in [
        "min_backoff = \"1s\"",
        "max_backoff = \"1s\"",
        "scan_interval = \"1s\"",
    ] {
        common::set_config(&inst, "send", line);
    }
    put(
        &inst,
        U,
        "require \"copy\";\nredirect :copy \"v@example.test\";\n",
    );
    let w_home = inst.path().join("mail/example.test/w");
    let _ = std::fs::remove_dir_all(&w_home);
    std::fs::create_dir_all(w_home.join("cur")).unwrap();
    std::fs::create_dir_all(w_home.join("tmp")).unwrap();
    std::fs::write(w_home.join("new"), "not a directory").unwrap();
    inst.ctl_ok(&["start"]);
    let _stop = Stop(&inst);
    send(&inst, S, "team@example.test", "to the team", "");
    wait_for(&inst, U, "INBOX", "to the team");
    wait_for(&inst, V, "INBOX", "to the team");
    // Retried a few times while w's Maildir is broken.
    let log_path = inst.path().join("log/kmpromail.log");
    let r = wait_until(Duration::from_secs(30), || {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        log.matches("already sent").count() >= 2
    });
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(r.is_ok(), "no retry seen:\n{log}");
    std::fs::remove_file(w_home.join("new")).unwrap();
    std::fs::create_dir(w_home.join("new")).unwrap();
    wait_for(&inst, W, "INBOX", "to the team");
    wait_queue_empty(&inst);
    let v = folder(&inst, V, "INBOX");
    assert_eq!(
        v.iter().filter(|l| l.contains("to the team")).count(),
        1,
        "{v:?}"
    );
    let u = folder(&inst, U, "INBOX");
    assert_eq!(
        u.iter().filter(|l| l.contains("to the team")).count(),
        1,
        "{u:?}"
    );
}

#[test]
fn include_global_and_its_change_seen_without_a_restart() {
    let inst = instance();
    let global = inst.path().join("sieve-global");
    std::fs::create_dir(&global).unwrap();
    std::fs::write(
        global.join("sorting.sieve"),
        "require [\"fileinto\", \"mailbox\"];\nif header :contains \"subject\" \"news\" { fileinto :create \"First\"; }\n",
    )
    .unwrap();
    common::set_config(
        &inst,
        "sieve",
        &format!("global_dir = \"{}\"", global.display()),
    );
    put(
        &inst,
        U,
        "require \"include\";\ninclude :global \"sorting\";\n",
    );
    inst.ctl_ok(&["start"]);
    let _stop = Stop(&inst);
    send(&inst, S, U, "news one", "");
    wait_for(&inst, U, "First", "news one");
    // The administrator changes the global script; kmp-local runs on.
    std::fs::write(
        global.join("sorting.sieve"),
        "require [\"fileinto\", \"mailbox\"];\nif header :contains \"subject\" \"news\" { fileinto :create \"Second\"; }\n",
    )
    .unwrap();
    send(&inst, S, U, "news two", "");
    wait_for(&inst, U, "Second", "news two");
    let first = folder(&inst, U, "First");
    assert_eq!(first.len(), 1, "{first:?}");
}
