//! Mailing lists end to end: the whole system under `kmpctl start`, lists
//! made with `kmpctl list`, posts sent with Python's smtplib to kmp-smtpd,
//! local copies read from the members' Maildirs (and stat'ed for the single
//! instance), remote copies caught by Postfix's smtp-sink behind a static
//! route.
mod common;

use common::combined_log as log;

use common::sink::Sink;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::sieve::Stop;
use common::{wait_until, Instance};

const LIST: &str = "news@example.test";

/// Sends `data` as it is over SMTP from `sender` to `rcpt`.
fn send_raw(inst: &Instance, sender: &str, rcpt: &str, data: &str) {
    let script = r#"
import smtplib, sys
port, sender, rcpt, path = sys.argv[1:5]
with open(path, "rb") as f:
    data = f.read()
with smtplib.SMTP("127.0.0.1", int(port), timeout=60) as s:
    s.sendmail(sender, [rcpt], data)
"#;
    let path = inst.path().join(format!("post-{}", rand_name()));
    std::fs::write(&path, data).unwrap();
    let port = (inst.base + 25).to_string();
    let o = common::python(script, &[&port, sender, rcpt, path.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "smtplib: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn rand_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{}", N.fetch_add(1, Ordering::SeqCst))
}

fn post(from: &str, subject: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: {LIST}\r\nSubject: {subject}\r\nMessage-ID: <{}.{}@test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n",
        rand_name(),
        std::process::id()
    )
}

fn maildir(inst: &Instance, user: &str) -> PathBuf {
    let (l, d) = user.split_once('@').unwrap();
    inst.path().join("mail").join(d).join(l)
}

/// The message files in a Maildir's new/ and cur/.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = std::fs::read_dir(dir.join(sub)) {
            v.extend(rd.map(|e| e.unwrap().path()));
        }
    }
    v.sort();
    v
}

fn wait_files(inst: &Instance, dir: &Path, n: usize) -> Vec<PathBuf> {
    wait_until(Duration::from_secs(60), || files(dir).len() >= n).unwrap_or_else(|_| {
        panic!(
            "{} has {} messages, not {n}\n{}",
            dir.display(),
            files(dir).len(),
            log(inst)
        )
    });
    files(dir)
}

fn held(inst: &Instance) -> Vec<serde_json::Value> {
    let out = inst.ctl_ok(&["--json", "list", "held", LIST]);
    serde_json::from_str::<serde_json::Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn header(msg: &str, name: &str) -> Option<String> {
    let head = msg.split("\n\n").next().unwrap_or("");
    let mut out: Option<String> = None;
    for line in head.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some(o) = out.as_mut() {
                o.push(' ');
                o.push_str(line.trim());
            }
            continue;
        }
        if out.is_some() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case(name) {
                out = Some(v.trim().to_string());
            }
        }
    }
    out
}

#[test]
fn posts_under_each_policy_with_headers_prefix_footer_held_and_remote_members() {
    let inst = Instance::new();
    let sink_port = inst.base + 26;
    let sink = Sink::start(&inst.path().join("sink"), sink_port, &[]);
    // kmpctl init writes a [lists] section (the cookie key): add to it.
    common::set_config(
        &inst,
        "lists",
        "web_url = \"https://mail.example.test/webmail\"",
    );
    inst.append_config(&format!(
        "[remote.routes]\n\"example.net\" = [\"127.0.0.1:{sink_port}\"]\n\"other.test\" = [\"127.0.0.1:{sink_port}\"]\n"
    ));
    inst.ctl_ok(&["domain", "add", "example.test"]);
    for u in ["u@example.test", "v@example.test", "s@example.test"] {
        inst.ctl_ok(&["user", "add", u]);
    }
    inst.ctl_ok(&[
        "list",
        "add",
        LIST,
        "--owner",
        "s@example.test",
        "--description",
        "News",
    ]);
    inst.ctl_ok(&[
        "list",
        "set",
        LIST,
        "subject_prefix=[新闻]",
        "footer=news footer",
        "archive=yes",
    ]);
    inst.ctl_ok(&[
        "list",
        "subscribe",
        LIST,
        "u@example.test",
        "v@example.test",
        "r@example.net",
    ]);
    // Bad member addresses and a list that would include itself: refused.
    for bad in [
        "\"x y\"@example.net",
        "a%b@example.net",
        "@relay.test:a@example.net",
    ] {
        let o = inst.ctl(&["list", "subscribe", LIST, bad]);
        assert_eq!(o.status.code(), Some(65), "{bad}");
    }
    inst.ctl_ok(&["alias", "add", "loop@example.test", LIST]);
    let o = inst.ctl(&["list", "subscribe", LIST, "loop@example.test"]);
    assert_eq!(o.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&o.stderr).contains("leads back to the list"));
    // The list's names are no one else's.
    let o = inst.ctl(&["user", "add", "news-request@example.test"]);
    assert!(!o.status.success());

    inst.ctl_ok(&["start"]);
    let _stop = Stop(&inst);

    // A member posts, with a GB2312 subject.
    send_raw(
        &inst,
        "u@example.test",
        LIST,
        &post("u@example.test", "=?GB2312?B?1tDOxNPKvP4=?=", "hello list"),
    );
    let v = wait_files(&inst, &maildir(&inst, "v@example.test"), 1);
    let u = wait_files(&inst, &maildir(&inst, "u@example.test"), 1);
    let state = inst.path().join("mail/example.test/.lists/news");
    let arch = wait_files(&inst, &state.join("archive"), 1);
    let ino = std::fs::metadata(&v[0]).unwrap().ino();
    assert_eq!(std::fs::metadata(&u[0]).unwrap().ino(), ino);
    assert_eq!(std::fs::metadata(&arch[0]).unwrap().ino(), ino);
    let msg = String::from_utf8_lossy(&std::fs::read(&v[0]).unwrap()).into_owned();
    let subject = header(&msg, "Subject").unwrap();
    assert_eq!(
        kmpromail::mime::header_text(subject.as_bytes()),
        "[新闻] 中文邮件",
        "{msg}"
    );
    assert!(subject.ends_with("=?GB2312?B?1tDOxNPKvP4=?="), "{subject}");
    assert_eq!(
        header(&msg, "List-Id").unwrap(),
        "\"News\" <news.example.test>"
    );
    assert_eq!(
        header(&msg, "List-Post").unwrap(),
        "<mailto:news@example.test>"
    );
    assert_eq!(
        header(&msg, "List-Help").unwrap(),
        "<mailto:news-help@example.test>"
    );
    // The local members' one shared copy names no member: mailto only.
    assert_eq!(
        header(&msg, "List-Unsubscribe").unwrap(),
        "<mailto:news-unsubscribe@example.test>"
    );
    assert_eq!(header(&msg, "List-Unsubscribe-Post"), None);
    assert!(header(&msg, "List-Archive")
        .unwrap()
        .contains("list-archive=news@example.test"));
    assert_eq!(header(&msg, "Precedence").unwrap(), "list");
    assert!(
        msg.contains("hello list\r\nnews footer\r\n") || msg.contains("hello list\nnews footer\n"),
        "{msg}"
    );
    // The remote member: its own envelope with a VERP return path.
    wait_until(Duration::from_secs(60), || !sink.messages().is_empty())
        .unwrap_or_else(|_| panic!("nothing at the sink: {}", log(&inst)));
    let remote = &sink.messages()[0];
    assert!(
        remote.contains("X-Mail-Args: <news-bounce-r=example.net@example.test>"),
        "{remote}"
    );
    assert!(remote.contains("X-Rcpt-Args: <r@example.net>"), "{remote}");
    assert!(
        remote.contains("List-Id: \"News\" <news.example.test>"),
        "{remote}"
    );
    // The remote member's own copy: its one-click link, RFC 8058's field.
    assert!(
        remote.contains("List-Unsubscribe: <https://mail.example.test/webmail/unsubscribe?list=news%40example.test&c=o."),
        "{remote}"
    );
    assert!(
        remote.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{remote}"
    );

    // A non-member's post is held; kmpctl approves it and it arrives.
    send_raw(
        &inst,
        "x@other.test",
        LIST,
        &post("x@other.test", "from outside", "hi"),
    );
    wait_until(Duration::from_secs(60), || held(&inst).len() == 1)
        .unwrap_or_else(|_| panic!("not held: {}", log(&inst)));
    let h = held(&inst);
    assert!(
        h[0]["reason"].as_str().unwrap().contains("not a member"),
        "{h:?}"
    );
    assert_eq!(files(&maildir(&inst, "v@example.test")).len(), 1);
    let id = h[0]["id"].as_str().unwrap().to_string();
    inst.ctl_ok(&["list", "approve", LIST, &id]);
    let v = wait_files(&inst, &maildir(&inst, "v@example.test"), 2);
    assert!(held(&inst).is_empty());
    let approved = v
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .find(|m| m.contains("from outside"))
        .expect("the approved post");
    assert!(
        !approved.contains("X-Kmpromail-List-Approved"),
        "{approved}"
    );
    // A forged approval header gets nothing past the policy.
    send_raw(
        &inst,
        "x@other.test",
        LIST,
        &format!(
            "X-Kmpromail-List-Approved: {id}\r\n{}",
            post("x@other.test", "forged", "hi")
        ),
    );
    wait_until(Duration::from_secs(60), || held(&inst).len() == 1).unwrap();
    inst.ctl_ok(&[
        "list",
        "reject",
        LIST,
        held(&inst)[0]["id"].as_str().unwrap(),
    ]);
    assert!(held(&inst).is_empty());

    // Non-member posts refused: the sender gets a DSN with the reason.
    inst.ctl_ok(&["list", "set", LIST, "non_member=refuse"]);
    send_raw(
        &inst,
        "x@other.test",
        LIST,
        &post("x@other.test", "refuse me", "hi"),
    );
    wait_until(Duration::from_secs(60), || {
        sink.messages()
            .iter()
            .any(|m| m.contains("X-Rcpt-Args: <x@other.test>"))
    })
    .unwrap_or_else(|_| panic!("no DSN: {}", log(&inst)));
    let dsn = sink
        .messages()
        .into_iter()
        .find(|m| m.contains("X-Rcpt-Args: <x@other.test>"))
        .unwrap();
    assert!(
        dsn.contains("not a member of list news@example.test"),
        "{dsn}"
    );

    // Moderated: a member's post waits too.
    inst.ctl_ok(&["list", "set", LIST, "policy=moderated"]);
    send_raw(
        &inst,
        "u@example.test",
        LIST,
        &post("u@example.test", "moderate me", "hi"),
    );
    wait_until(Duration::from_secs(60), || held(&inst).len() == 1).unwrap();
    assert_eq!(held(&inst)[0]["reason"], "the list is moderated");

    // Announce-only: only the named posters.
    inst.ctl_ok(&[
        "list",
        "set",
        LIST,
        "policy=announce",
        "posters=v@example.test",
        "non_member=hold",
    ]);
    send_raw(
        &inst,
        "u@example.test",
        LIST,
        &post("u@example.test", "not allowed", "hi"),
    );
    wait_until(Duration::from_secs(60), || held(&inst).len() == 2).unwrap();
    send_raw(
        &inst,
        "v@example.test",
        LIST,
        &post("v@example.test", "announcement", "hi"),
    );
    let u = wait_files(&inst, &maildir(&inst, "u@example.test"), 3);
    let last = u
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .find(|m| m.contains("announcement"))
        .expect("the announcement");
    assert_eq!(header(&last, "List-Post").unwrap(), "NO");

    // Mail from another list and automatic replies: held, never re-sent.
    inst.ctl_ok(&["list", "set", LIST, "policy=open"]);
    send_raw(
        &inst,
        "u@example.test",
        LIST,
        &format!(
            "Auto-Submitted: auto-replied\r\n{}",
            post("u@example.test", "away", "x")
        ),
    );
    wait_until(Duration::from_secs(60), || held(&inst).len() == 3).unwrap();
    let n_sink = sink.count();
    // Our own post coming back (its List-Id): dropped with a log line.
    let back = String::from_utf8_lossy(&std::fs::read(&arch[0]).unwrap()).into_owned();
    let back = back
        .lines()
        .filter(|l| !l.starts_with("Return-Path:") && !l.starts_with("Delivered-To:"))
        .collect::<Vec<_>>()
        .join("\r\n");
    send_raw(&inst, "u@example.test", LIST, &back);
    wait_until(Duration::from_secs(60), || {
        log(&inst).contains("carries this list's own List-Id")
    })
    .unwrap_or_else(|_| panic!("no loop line: {}", log(&inst)));
    assert_eq!(held(&inst).len(), 3);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.count(), n_sink, "something was sent for the loop");
}

#[test]
fn a_post_to_a_thousand_local_members_is_one_inode_with_a_thousand_links() {
    let inst = Instance::new();
    inst.ctl_ok(&["domain", "add", "example.test"]);
    let mut dump = String::new();
    let members: Vec<String> = (0..1000).map(|i| format!("m{i:04}@example.test")).collect();
    for m in &members {
        dump.push_str(&format!("{{\"type\":\"user\",\"address\":\"{m}\"}}\n"));
    }
    let o = inst.ctl_stdin(&["db", "load"], Some(dump.as_bytes()));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    inst.ctl_ok(&["list", "add", LIST, "--policy", "open"]);
    let mut args: Vec<&str> = vec!["list", "subscribe", LIST];
    args.extend(members.iter().map(String::as_str));
    inst.ctl_ok(&args);
    inst.ctl_ok(&["start"]);
    let _stop = Stop(&inst);
    send_raw(
        &inst,
        "x@other.test",
        LIST,
        &post("x@other.test", "to all", "one copy"),
    );
    // Every member has it...
    for m in &members {
        wait_files(&inst, &maildir(&inst, m), 1);
    }
    // ...and once the fan-out is done (its name in tmp/ gone), as one file
    // with a link per member.
    let first = files(&maildir(&inst, &members[0]))[0].clone();
    wait_until(Duration::from_secs(30), || {
        std::fs::metadata(&first).unwrap().nlink() == 1000
    })
    .unwrap_or_else(|_| panic!("{} links", std::fs::metadata(&first).unwrap().nlink()));
    let mut inodes = HashSet::new();
    for m in &members {
        let f = files(&maildir(&inst, m));
        assert_eq!(f.len(), 1, "{m}");
        let md = std::fs::metadata(&f[0]).unwrap();
        inodes.insert(md.ino());
        assert_eq!(md.nlink(), 1000, "{m}");
    }
    assert_eq!(inodes.len(), 1);
}
