//! kmp-fetch against a second Kmpromail instance (and a small scripted
//! server): POP3 and IMAP fetches into the account's folder, keep and
//! delete, a kill -9 in the middle of 1,000 messages, a wrong password, a
//! server that drops the connection mid-message, a certificate that does
//! not check out, a Chinese folder name.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

use common::fetch::*;
use common::{wait_until, Instance};

fn run(l: &Instance, name: &str) -> (bool, String) {
    let out = l.ctl(&["fetch", "run", LOCAL_USER, name]);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn pop3s(r: &Instance) -> Vec<String> {
    vec![
        "--protocol".into(),
        "pop3".into(),
        "--host".into(),
        "localhost".into(),
        "--port".into(),
        (r.base + 995).to_string(),
        "--username".into(),
        REMOTE_USER.into(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn pop3_keeps_then_deletes_into_a_chinese_folder() {
    let r = remote();
    fill(&r, "", "keep", 3, 500);
    let l = local(&r, &[]);
    let mut args = pop3s(&r);
    // Disabled: only `run` fetches it, so each run's counts are its own.
    args.extend(["--target".into(), "新浪邮箱".into(), "--disable".into()]);
    add_account(&l, "sina", REMOTE_PASS, &strs(&args));
    // The stored record never shows the password.
    let shown = l.ctl_ok(&["fetch", "show", LOCAL_USER, "sina", "--json"]);
    assert!(
        shown.contains("(sealed)") && !shown.contains(REMOTE_PASS),
        "{shown}"
    );

    let (ok, out) = run(&l, "sina");
    assert!(ok, "{out}");
    assert!(out.contains("fetched 3"), "{out}");
    let folder = local_folder(&l, "新浪邮箱");
    assert_eq!(
        wait_count(&folder, 3, Duration::from_secs(20)),
        3,
        "{}",
        l.log("kmp-local")
    );
    // The folder's name is modified UTF-7 on disk, as kmp-imapd reads it.
    assert!(folder.ends_with(".&ZbBtapCue7E-"), "{}", folder.display());
    let ids = message_ids(&folder);
    assert!(ids.values().all(|&n| n == 1), "{ids:?}");
    let one = std::fs::read_dir(folder.join("new"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let text = std::fs::read_to_string(one.path()).unwrap();
    assert!(
        text.contains("by mx.example.test (Kmpromail kmp-fetch) with POP3S"),
        "{text}"
    );
    assert!(text.contains("(account \"sina\")"), "{text}");

    // Again: nothing new, and the server still has all three.
    let (ok, out) = run(&l, "sina");
    assert!(ok && out.contains("fetched 0, deleted 0"), "{out}");
    assert_eq!(count(&remote_folder(&r, "")), 3);

    // Switched to delete: the three fetched earlier go from the server,
    // and nothing is fetched twice.
    l.ctl_ok(&["fetch", "edit", LOCAL_USER, "sina", "--keep", "delete"]);
    let (ok, out) = run(&l, "sina");
    assert!(ok && out.contains("fetched 0, deleted 3"), "{out}");
    assert_eq!(count(&remote_folder(&r, "")), 0);
    fill(&r, "", "more", 2, 500);
    let (ok, out) = run(&l, "sina");
    assert!(ok && out.contains("fetched 2, deleted 2"), "{out}");
    assert_eq!(count(&remote_folder(&r, "")), 0);
    assert_eq!(wait_count(&folder, 5, Duration::from_secs(20)), 5);

    let list = l.ctl_ok(&["fetch", "list", LOCAL_USER]);
    assert!(list.contains("sina") && list.contains("ok"), "{list}");
    l.ctl_ok(&["fetch", "del", LOCAL_USER, "sina"]);
    assert!(!l.ctl_ok(&["fetch", "list"]).contains("sina"));
}

#[test]
fn imap_fetches_several_folders_and_expunges() {
    let r = remote();
    fill(&r, "", "inbox", 2, 300);
    fill(&r, "工作", "work", 3, 300);
    let l = local(&r, &[]);
    add_account(
        &l,
        "office",
        REMOTE_PASS,
        &[
            "--protocol",
            "imap",
            "--host",
            "localhost",
            "--port",
            &(r.base + 143).to_string(),
            "--tls",
            "starttls",
            "--username",
            REMOTE_USER,
            "--folder",
            "INBOX",
            "--folder",
            "工作",
            "--keep",
            "delete",
            "--disable",
        ],
    );
    let test = l.ctl_ok(&["fetch", "test", LOCAL_USER, "office"]);
    assert!(test.contains("5 messages"), "{test}");
    let (ok, out) = run(&l, "office");
    assert!(ok && out.contains("fetched 5, deleted 5"), "{out}");
    let folder = local_folder(&l, "office");
    assert_eq!(wait_count(&folder, 5, Duration::from_secs(20)), 5);
    assert_eq!(count(&remote_folder(&r, "")), 0);
    assert_eq!(count(&remote_folder(&r, "工作")), 0);
    let (ok, out) = run(&l, "office");
    assert!(ok && out.contains("fetched 0"), "{out}");
}

#[test]
fn a_wrong_password_is_reported_and_other_accounts_go_on() {
    let r = remote();
    fill(&r, "", "good", 4, 300);
    let l = local(&r, &[]);
    let mut args = pop3s(&r);
    args.extend(["--interval".into(), "1s".into()]);
    add_account(&l, "bad", "wrong-password", &strs(&args));
    add_account(&l, "good", REMOTE_PASS, &strs(&args));
    // The schedule, not `run`: both are due at once.
    let folder = local_folder(&l, "good");
    assert_eq!(
        wait_count(&folder, 4, Duration::from_secs(60)),
        4,
        "{}",
        l.log("kmp-fetch")
    );
    wait_until(Duration::from_secs(30), || {
        l.ctl_ok(&["fetch", "show", LOCAL_USER, "bad"])
            .contains("login refused")
    })
    .unwrap_or_else(|_| panic!("{}", l.ctl_ok(&["fetch", "show", LOCAL_USER, "bad"])));
    let shown = l.ctl_ok(&["fetch", "show", LOCAL_USER, "bad", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert!(v["status"]["failures"].as_u64().unwrap() >= 1, "{v}");
    assert!(
        v["status"]["next_run"].as_u64() > v["status"]["last_run"].as_u64(),
        "{v}"
    );
    assert_eq!(count(&local_folder(&l, "bad")), 0);
    // kmp-fetch's socket tells the same, for kmp-admind's pages.
    let reply = kmpromail::ipc::fetch::call(
        &l.path().join("run/fetch.sock"),
        kmpromail::ipc::fetch::Request::Status {
            owner: LOCAL_USER.into(),
        },
        Duration::from_secs(10),
    )
    .unwrap();
    let kmpromail::ipc::fetch::Reply::Status { accounts } = reply else {
        panic!("{reply:?}");
    };
    assert_eq!(accounts.len(), 2, "{accounts:?}");
    let bad = accounts.iter().find(|a| a.name == "bad").unwrap();
    let good = accounts.iter().find(|a| a.name == "good").unwrap();
    assert!(
        bad.error.contains("login refused") && bad.failures >= 1,
        "{bad:?}"
    );
    assert!(good.error.is_empty() && good.total == 4, "{good:?}");
    // The password never reaches a log.
    assert!(!l.log("kmp-fetch").contains("wrong-password"));
    assert!(!l.log("kmp-fetch").contains(REMOTE_PASS));
}

#[test]
fn kill_9_in_the_middle_of_1000_messages_loses_and_doubles_nothing() {
    let r = remote();
    fill(&r, "", "bulk", 1000, 2000);
    let mut l = local(&r, &[]);
    let mut args = pop3s(&r);
    args.extend([
        "--interval".into(),
        "1s".into(),
        "--keep".into(),
        "delete".into(),
    ]);
    add_account(&l, "bulk", REMOTE_PASS, &strs(&args));
    let folder = local_folder(&l, "bulk");
    let seen = l.path().join("fetch");
    let seen = &seen;
    // Messages marked fetched so far, from the seen log.
    let marked = || -> usize {
        std::fs::read_dir(seen)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "seen"))
                    .map(|e| {
                        std::fs::read_to_string(e.path())
                            .unwrap_or_default()
                            .lines()
                            .filter(|l| l.starts_with("+ "))
                            .count()
                    })
                    .sum()
            })
            .unwrap_or(0)
    };
    // Kill it twice in the middle of the fetch: once early, once later.
    for at in [150, 500] {
        wait_until(Duration::from_secs(120), || marked() >= at)
            .unwrap_or_else(|_| panic!("stuck at {}: {}", marked(), l.log("kmp-fetch")));
        let before = marked();
        l.kill("kmp-fetch");
        assert!(before < 1000, "the fetch was over before the kill");
        start_fetch(&mut l);
    }
    let n = wait_count(&folder, 1000, Duration::from_secs(300));
    // Let any last deliveries land before counting.
    std::thread::sleep(Duration::from_secs(2));
    let ids = message_ids(&folder);
    let doubled: Vec<_> = ids.iter().filter(|(_, &c)| c > 1).collect();
    assert!(doubled.is_empty(), "doubled: {doubled:?}");
    assert_eq!(ids.len(), 1000, "{n} files, {} distinct", ids.len());
    assert_eq!(count(&folder), 1000);
    wait_until(Duration::from_secs(30), || {
        count(&remote_folder(&r, "")) == 0
    })
    .unwrap_or_else(|_| panic!("{} left on the server", count(&remote_folder(&r, ""))));
}

/// A POP3 server that sends half of message 2 and closes the first time,
/// and everything the second time.
fn dropping_server() -> (u16, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let msg = |i: u32| {
        format!(
            "Message-Id: <drop.{i}@remote.test>\r\nSubject: {i}\r\n\r\n{}\r\n",
            "line of the body\r\n".repeat(200)
        )
    };
    let h = std::thread::spawn(move || {
        for round in 0..2 {
            let (s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut w = s.try_clone().unwrap();
            let mut rd = BufReader::new(s);
            w.write_all(b"+OK ready\r\n").unwrap();
            loop {
                let mut line = String::new();
                if rd.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let cmd = line.trim_end();
                let reply = match cmd.split(' ').next().unwrap_or("") {
                    "CAPA" => "+OK\r\nUSER\r\nUIDL\r\n.\r\n".to_string(),
                    "USER" | "PASS" | "NOOP" => "+OK\r\n".to_string(),
                    "UIDL" => "+OK\r\n1 drop-one\r\n2 drop-two\r\n.\r\n".to_string(),
                    "LIST" => format!("+OK\r\n1 {}\r\n2 {}\r\n.\r\n", msg(1).len(), msg(2).len()),
                    "RETR" if cmd.ends_with('1') => format!("+OK\r\n{}.\r\n", msg(1)),
                    "RETR" if round == 0 => {
                        let m = msg(2);
                        w.write_all(format!("+OK\r\n{}", &m[..m.len() / 2]).as_bytes())
                            .unwrap();
                        break; // dropped mid-message
                    }
                    "RETR" => format!("+OK\r\n{}.\r\n", msg(2)),
                    "QUIT" => {
                        w.write_all(b"+OK bye\r\n").unwrap();
                        break;
                    }
                    _ => "-ERR unknown\r\n".to_string(),
                };
                w.write_all(reply.as_bytes()).unwrap();
            }
        }
    });
    (port, h)
}

#[test]
fn a_server_that_drops_the_connection_mid_message() {
    let r = remote();
    let l = local(&r, &[]);
    let (port, server) = dropping_server();
    add_account(
        &l,
        "flaky",
        "pw",
        &[
            "--protocol",
            "pop3",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--tls",
            "none",
            "--username",
            "x",
            "--disable",
        ],
    );
    let (ok, out) = run(&l, "flaky");
    assert!(!ok, "{out}");
    assert!(
        out.contains("fetched 1") && out.contains("drop-two"),
        "{out}"
    );
    let shown = l.ctl_ok(&["fetch", "show", LOCAL_USER, "flaky"]);
    assert!(shown.contains("error"), "{shown}");
    let (ok, out) = run(&l, "flaky");
    assert!(ok && out.contains("fetched 1"), "{out}");
    server.join().unwrap();
    let folder = local_folder(&l, "flaky");
    assert_eq!(wait_count(&folder, 2, Duration::from_secs(20)), 2);
    std::thread::sleep(Duration::from_millis(500));
    let ids = message_ids(&folder);
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.values().all(|&n| n == 1), "{ids:?}");
    // Nothing of the half message was queued.
    let files: Vec<_> = std::fs::read_dir(folder.join("new"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(files
        .iter()
        .all(|t| t.matches("line of the body").count() == 200));
}

#[test]
fn a_certificate_that_does_not_check_out_is_refused() {
    let r = remote();
    fill(&r, "", "tls", 1, 100);
    // The system's authorities do not know the remote's self-signed certificate.
    let l = local(&r, &["ca_file = \"\""]);
    let mut args = pop3s(&r);
    args.push("--disable".into());
    add_account(&l, "strict", REMOTE_PASS, &strs(&args));
    let out = l.ctl(&["fetch", "test", LOCAL_USER, "strict"]);
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("TLS") && text.to_lowercase().contains("certificate"),
        "{text}"
    );
    let (ok, out) = run(&l, "strict");
    assert!(!ok && out.contains("fetched 0"), "{out}");
    assert_eq!(count(&local_folder(&l, "strict")), 0);
    // The owner may say not to check: then it works.
    l.ctl_ok(&["fetch", "edit", LOCAL_USER, "strict", "--no-verify"]);
    let (ok, out) = run(&l, "strict");
    assert!(ok && out.contains("fetched 1"), "{out}");
}

#[test]
fn bad_input_changes_nothing() {
    let r = remote();
    let l = local(&r, &[]);
    for (args, why) in [
        (
            vec!["--protocol", "smtp", "--host", "h", "--username", "u"],
            "pop3 or imap",
        ),
        (
            vec!["--protocol", "pop3", "--host", "a b", "--username", "u"],
            "host",
        ),
        (
            vec![
                "--protocol",
                "pop3",
                "--host",
                "h",
                "--username",
                "u",
                "--keep",
                "later",
            ],
            "keep",
        ),
    ] {
        let mut all = vec!["fetch", "add", LOCAL_USER, "x"];
        all.extend(args);
        all.push("--password-stdin");
        let out = l.ctl_stdin(&all, Some(b"pw\n"));
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(why),
            "{all:?}"
        );
    }
    let out = l.ctl_stdin(
        &[
            "fetch",
            "add",
            LOCAL_USER,
            "a/b",
            "--protocol",
            "pop3",
            "--host",
            "h",
            "--username",
            "u",
            "--password-stdin",
        ],
        Some(b"pw\n"),
    );
    assert!(!out.status.success());
    let out = l.ctl_stdin(
        &[
            "fetch",
            "add",
            "nobody@example.test",
            "n",
            "--protocol",
            "pop3",
            "--host",
            "h",
            "--username",
            "u",
            "--password-stdin",
        ],
        Some(b"pw\n"),
    );
    assert!(!out.status.success());
    assert_eq!(l.ctl_ok(&["fetch", "list", "--json"]).trim(), "[]");
}

#[test]
fn pop3_over_stls_leaves_a_message_over_the_size_limit() {
    let r = remote();
    fill(&r, "", "small", 1, 200);
    fill(&r, "", "big", 1, 5000);
    let l = local(&r, &["max_message_size = \"2K\""]);
    let mut args = pop3s(&r);
    args[5] = (r.base + 110).to_string();
    args.extend([
        "--tls".into(),
        "starttls".into(),
        "--keep".into(),
        "delete".into(),
        "--disable".into(),
    ]);
    add_account(&l, "stls", REMOTE_PASS, &strs(&args));
    let (ok, out) = run(&l, "stls");
    assert!(ok, "{out}");
    assert!(
        out.contains("fetched 1, deleted 1, over the size limit 1"),
        "{out}"
    );
    // The big one stays on the server, and is not tried again.
    let left = message_ids(&remote_folder(&r, ""));
    assert!(
        left.contains_key("<big.0@remote.test>") && left.len() == 1,
        "{left:?}"
    );
    let (ok, out) = run(&l, "stls");
    assert!(
        ok && out.contains("fetched 0, deleted 0, over the size limit 0"),
        "{out}"
    );
    let folder = local_folder(&l, "stls");
    assert_eq!(wait_count(&folder, 1, Duration::from_secs(20)), 1);
    assert!(message_ids(&folder).contains_key("<small.0@remote.test>"));
}
