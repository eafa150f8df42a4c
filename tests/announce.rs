//! `kmpctl announce`: one stored file hard-linked into every chosen INBOX,
//! seen over IMAP and POP3 by real clients (Python's imaplib and poplib),
//! a Chinese subject right in ENVELOPE, re-runs that give nobody a second
//! copy, disabled users skipped, bad input refused with nothing written.

mod common;

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::{python, Instance};

/// `secret` as MD5-crypt: cheap to verify, so 10,000 logins stay quick.
const HASH: &str = "$1$kmpsalt1$K3.x/KNfVXY/h7768.UNo0";
const SUBJECT: &str = "系统维护通知：本周六凌晨邮件服务暂停两小时";

fn user_line(address: &str, state: &str) -> String {
    format!(
        "{{\"type\":\"user\",\"address\":\"{address}\",\"password\":\"{HASH}\",\"state\":\"{state}\"}}\n"
    )
}

/// An instance with `n` users u00000@example.test ... and d@example.test
/// (disabled), loaded in one transaction.
fn instance(n: usize) -> Instance {
    let inst = Instance::new();
    let mut dump = String::from("{\"type\":\"domain\",\"name\":\"example.test\"}\n");
    dump.push_str("{\"type\":\"domain\",\"name\":\"other.test\"}\n");
    for i in 0..n {
        dump.push_str(&user_line(&format!("u{i:05}@example.test"), "active"));
    }
    dump.push_str(&user_line("d@example.test", "disabled"));
    dump.push_str(&user_line("o@other.test", "active"));
    let out = inst.ctl_stdin(&["db", "load"], Some(dump.as_bytes()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    inst
}

fn maildir(inst: &Instance, address: &str) -> PathBuf {
    let (local, domain) = address.split_once('@').unwrap();
    inst.path().join("mail").join(domain).join(local)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = fs::read_dir(dir.join(sub)) {
            v.extend(rd.map(|e| e.unwrap().path()));
        }
    }
    v
}

fn announce(inst: &Instance, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let mut a = vec!["--json", "announce"];
    a.extend_from_slice(args);
    let out = inst.ctl(&a);
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code(),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn message_file(inst: &Instance, name: &str, subject: &str) -> PathBuf {
    let p = inst.path().join(name);
    fs::write(
        &p,
        format!(
            "From: 系统管理员 <postmaster@example.test>\nSubject: {subject}\n\n\
             尊敬的用户：\n本周六凌晨两点至四点进行系统维护。\n"
        ),
    )
    .unwrap();
    p
}

const CLIENTS: &str = r#"
import imaplib, poplib, sys, re, email.header
port, pop_port, subject, n, pop_every, imap_every = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
bad = []
for i in range(0, n, imap_every):
    user = "u%05d@example.test" % i
    M = imaplib.IMAP4("127.0.0.1", port)
    M.login(user, "secret")
    typ, data = M.select("INBOX")
    if data[0] != b"1":
        bad.append((user, "EXISTS", data))
    if i % 970 == 0:
        typ, data = M.fetch("1", "(ENVELOPE)")
        raw = b"".join(b"".join(d) if isinstance(d, tuple) else d for d in data).decode("ascii")
        # The subject is the second field of the envelope: encoded-words.
        words = re.findall(r"=\?UTF-8\?B\?[^?]*\?=", raw)
        got = str(email.header.make_header(email.header.decode_header(" ".join(words))))
        if got != subject:
            bad.append((user, "ENVELOPE", got))
    M.logout()
    if i % pop_every == 0:
        P = poplib.POP3("127.0.0.1", pop_port)
        P.user(user)
        P.pass_("secret")
        count, _ = P.stat()
        if count != 1:
            bad.append((user, "STAT", count))
        else:
            lines = P.retr(1)[1]
            if not any(l.startswith(b"X-Kmpromail-Announcement: ") for l in lines):
                bad.append((user, "RETR", lines[:3]))
        P.quit()
print("BAD", bad[:5], len(bad))
sys.exit(1 if bad else 0)
"#;

#[test]
fn ten_thousand_mailboxes_one_inode_every_client_sees_it_once() {
    const N: usize = 10_000;
    let mut inst = instance(N);
    // Mailboxes that exist, as most do (new ones, made with their folders,
    // are the other tests' case): 4 inodes each instead of 26 keeps the
    // test's own set-up and clean-up short.
    for i in 0..N {
        let md = maildir(&inst, &format!("u{i:05}@example.test"));
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(md.join(sub)).unwrap();
        }
    }
    let msg = message_file(&inst, "notice.txt", SUBJECT);
    let (code, v, err) = announce(&inst, &["--all", msg.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let a = &v["announcement"];
    assert_eq!(a["delivered"], N as u64 + 1, "{v}");
    assert_eq!(a["disabled"], 1, "{v}");
    assert_eq!(a["already"], 0, "{v}");
    assert_eq!(a["subject"], SUBJECT);
    let id = a["id"].as_str().unwrap().to_string();

    // One inode, N+1 names (the record's own name is gone once complete).
    let mut inodes = HashSet::new();
    let mut nlink = 0;
    for i in 0..N {
        let f = files(&maildir(&inst, &format!("u{i:05}@example.test")));
        assert_eq!(f.len(), 1, "u{i:05}");
        let md = fs::metadata(&f[0]).unwrap();
        inodes.insert((md.dev(), md.ino()));
        nlink = md.nlink();
        assert!(f[0].to_str().unwrap().contains(&format!("_announce-{id}.")));
    }
    assert_eq!(inodes.len(), 1);
    assert_eq!(nlink, N as u64 + 1, "o@other.test holds the last link");
    assert!(files(&maildir(&inst, "d@example.test")).is_empty());
    let record = inst.path().join("mail/.kmp-announce").join(&id);
    assert!(record.join("complete").exists());
    assert!(!record.join("message").exists());

    // A re-run gives nobody a second copy.
    let (code, v, err) = announce(&inst, &["--all", msg.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["announcement"]["delivered"], 0, "{v}");
    assert_eq!(v["announcement"]["already"], N as u64 + 1, "{v}");
    assert_eq!(files(&maildir(&inst, "u00042@example.test")).len(), 1);

    // Every tenth user sees it over IMAP (the subject right in ENVELOPE for
    // a sample), every hundredth over POP3: every mailbox was checked on
    // disk above, and a login costs a password hash.
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    inst.spawn("kmp-imapd", &[]);
    inst.spawn("kmp-pop3d", &[]);
    inst.wait_port(143);
    inst.wait_port(110);
    let out = python(
        CLIENTS,
        &[
            &(inst.base + 143).to_string(),
            &(inst.base + 110).to_string(),
            SUBJECT,
            &N.to_string(),
            "100",
            "10",
        ],
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_interrupted_run_is_finished_by_running_it_again() {
    let inst = instance(100);
    let msg = message_file(&inst, "notice.txt", "Maintenance 维护");
    let list = inst.path().join("users.txt");
    let mut text = String::from("# the first hundred\n");
    for i in 0..100 {
        text.push_str(&format!("u{i:05}@example.test\n"));
    }
    text.push_str("U00001@Example.TEST  # twice, in other case\nd@example.test\n");
    fs::write(&list, text).unwrap();
    // A Maildir that cannot be made: a file where its directory should be.
    let blocked = maildir(&inst, "u00050@example.test");
    fs::create_dir_all(blocked.parent().unwrap()).unwrap();
    fs::write(&blocked, b"not a maildir").unwrap();
    let (code, v, err) = announce(
        &inst,
        &["--users", list.to_str().unwrap(), msg.to_str().unwrap()],
    );
    assert_eq!(code, Some(75), "{v} {err}");
    assert!(err.contains("u00050@example.test"), "{err}");
    assert!(err.contains("run the same command again"), "{err}");
    assert_eq!(v["announcement"]["delivered"], 99, "{v}");
    assert_eq!(v["announcement"]["failed"], 1, "{v}");
    assert_eq!(v["announcement"]["disabled"], 1, "{v}");
    let id = v["announcement"]["id"].as_str().unwrap().to_string();
    let record = inst.path().join("mail/.kmp-announce").join(&id);
    assert!(!record.join("complete").exists());
    let stored = fs::metadata(record.join("message")).unwrap();
    assert_eq!(stored.nlink(), 100);
    // As after a crash: the journal lost its last lines.
    let done = fs::read_to_string(record.join("done")).unwrap();
    let kept: Vec<&str> = done.lines().take(60).collect();
    fs::write(record.join("done"), kept.join("\n") + "\n").unwrap();
    // A client moved one of the unjournalled copies to cur/ meanwhile.
    let md = maildir(&inst, "u00090@example.test");
    let f = files(&md).pop().unwrap();
    let name = f.file_name().unwrap().to_str().unwrap().to_string();
    fs::rename(&f, md.join("cur").join(format!("{name}:2,S"))).unwrap();

    fs::remove_file(&blocked).unwrap();
    let (code, v, err) = announce(
        &inst,
        &["--users", list.to_str().unwrap(), msg.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["announcement"]["delivered"], 1, "{v}");
    assert_eq!(v["announcement"]["already"], 99, "{v}");
    for i in 0..100 {
        let f = files(&maildir(&inst, &format!("u{i:05}@example.test")));
        assert_eq!(f.len(), 1, "u{i:05}");
        assert_eq!(fs::metadata(&f[0]).unwrap().ino(), stored.ino(), "u{i:05}");
    }
    assert!(record.join("complete").exists());
    assert_eq!(
        fs::metadata(&files(&maildir(&inst, "u00000@example.test"))[0])
            .unwrap()
            .nlink(),
        100
    );
}

#[test]
fn bad_input_is_refused_and_nothing_is_written() {
    let inst = instance(3);
    let good = message_file(&inst, "good.txt", "Hello");
    let mail = inst.path().join("mail");
    let before = fs::read_dir(&mail).map(|d| d.count()).unwrap_or(0);
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec!["--domain".into(), "nowhere.test".into()],
            67,
            "no domain nowhere.test",
        ),
        (vec!["--all".into()], 64, "MESSAGE"),
        (
            vec!["--all".into(), "--domain".into(), "example.test".into()],
            64,
            "cannot be used",
        ),
    ];
    for (args, code, says) in cases {
        let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
        if says != "MESSAGE" {
            a.push(good.to_str().unwrap());
        }
        let (c, _, err) = announce(&inst, &a);
        assert_eq!(c, Some(code), "{a:?}: {err}");
        assert!(err.contains(says), "{a:?}: {err}");
    }
    // Unknown users in a list: nobody gets it.
    let list = inst.path().join("list.txt");
    fs::write(&list, "u00000@example.test\nnobody@example.test\n").unwrap();
    let (c, _, err) = announce(
        &inst,
        &["--users", list.to_str().unwrap(), good.to_str().unwrap()],
    );
    assert_eq!(c, Some(67), "{err}");
    assert!(err.contains("list.txt:2: nobody@example.test"), "{err}");
    fs::write(&list, "not an address\n").unwrap();
    let (c, _, err) = announce(
        &inst,
        &["--users", list.to_str().unwrap(), good.to_str().unwrap()],
    );
    assert_eq!(c, Some(65), "{err}");
    assert!(err.contains("list.txt:1"), "{err}");
    // Messages that are refused, with the reason.
    let bad: &[(&[u8], &str)] = &[
        (b"Subject: x\nno blank line", "no blank line"),
        (b"From: a@b\n\nbody\n", "no Subject"),
        (
            b"Received: from x\nSubject: x\n\nb\n",
            "Received: is written by the system",
        ),
        (b"Subject: \xd6\xd0\xce\xc4\n\nb\n", "header is not UTF-8"),
        (b"Subject: x\n\n\xd6\xd0\xce\xc4\n", "body is not UTF-8"),
    ];
    for (text, says) in bad {
        let p = inst.path().join("bad.txt");
        fs::write(&p, text).unwrap();
        let (c, _, err) = announce(&inst, &["--all", p.to_str().unwrap()]);
        assert_eq!(c, Some(65), "{err}");
        assert!(err.contains(says), "{says}: {err}");
    }
    let (c, _, err) = announce(&inst, &["--all", "/nonexistent/file"]);
    assert_eq!(c, Some(66), "{err}");
    assert_eq!(fs::read_dir(&mail).map(|d| d.count()).unwrap_or(0), before);
    assert!(!mail.join(".kmp-announce").exists());
}

#[test]
fn a_domain_announcement_reaches_that_domain_only_and_the_summary_says_so() {
    let inst = instance(2);
    let msg = message_file(&inst, "n.txt", "Other domain");
    let out = inst.ctl(&["announce", "--domain", "OTHER.test", msg.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "delivered to 1 mailbox, 0 had it already, 0 disabled users skipped, 0 failures"
        ),
        "{text}"
    );
    assert_eq!(files(&maildir(&inst, "o@other.test")).len(), 1);
    assert!(files(&maildir(&inst, "u00000@example.test")).is_empty());
    // The message as stored: the announcement header first, the subject encoded.
    let stored = fs::read_to_string(&files(&maildir(&inst, "o@other.test"))[0]).unwrap();
    assert!(stored.starts_with("X-Kmpromail-Announcement: "), "{stored}");
    assert!(stored.contains("\nSubject: Other domain\n"), "{stored}");
    assert!(stored.contains("From: =?UTF-8?B?"), "{stored}");
}

#[test]
fn run_as_root_what_is_made_in_mailboxes_belongs_to_the_mailbox_owner() {
    let Ok(Some(nobody)) = nix::unistd::User::from_name("nobody") else {
        eprintln!("skipped: no user nobody");
        return;
    };
    if !kmpromail::sys::privs::is_root() {
        eprintln!("skipped: not root");
        return;
    }
    let inst = instance(2);
    let conf = fs::read_to_string(inst.config()).unwrap();
    let at = conf.find("[privileges]").unwrap();
    let (head, tail) = conf.split_at(at);
    let tail = tail.replacen("\nlocal = \"\"\n", "\nlocal = \"nobody\"\n", 1);
    assert!(tail.contains("local = \"nobody\""), "{conf}");
    fs::write(inst.config(), format!("{head}{tail}")).unwrap();
    let msg = message_file(&inst, "n.txt", "Owners");
    inst.ctl_ok(&[
        "announce",
        "--domain",
        "example.test",
        msg.to_str().unwrap(),
    ]);
    let uid = nobody.uid.as_raw();
    let md = maildir(&inst, "u00000@example.test");
    for p in [
        md.clone(),
        md.parent().unwrap().to_path_buf(),
        md.join("new"),
        md.join("cur"),
        md.join("tmp"),
        md.join(".Sent/cur"),
        md.join("subscriptions"),
        files(&md)[0].clone(),
    ] {
        assert_eq!(fs::metadata(&p).unwrap().uid(), uid, "{}", p.display());
    }
}
