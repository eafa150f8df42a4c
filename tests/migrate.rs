//! Moving in from Dovecot and Courier (issue 22), with fixture Maildirs
//! written here in each format: dovecot-uidlist versions 1 and 3 (with the
//! POP3 UIDL extension), courierimapuiddb, dovecot-keywords, Dovecot 2's
//! subscriptions with nested levels, Courier's courierimapsubscribed. Then
//! checked over our IMAP and POP3 with Python's imaplib and poplib: every
//! UID, UIDVALIDITY, UIDNEXT, UIDL, flag, keyword and subscription as the
//! old server had them. And `kmpctl import` / `kmpctl export`.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::Instance;
use serde_json::Value;

const SNAPSHOT: &str = include_str!("data/migrate/snapshot.py");

/// An instance with kmp-authd, kmp-imapd, kmp-pop3d and u@example.test /
/// secret, whose Maildir does not exist yet.
fn start() -> Instance {
    let mut inst = common::imap_instance();
    inst.spawn("kmp-pop3d", &[]);
    let pid = inst.path().join("run/kmp-pop3d.pid");
    common::wait_until(Duration::from_secs(10), || pid.exists())
        .unwrap_or_else(|_| panic!("kmp-pop3d never got ready: {}", inst.log("kmp-pop3d")));
    inst
}

fn maildir(inst: &Instance) -> std::path::PathBuf {
    inst.path().join("mail/example.test/u")
}

/// What imaplib and poplib see of the account (snapshot.py).
fn snapshot(inst: &Instance) -> Value {
    let out = common::python(
        SNAPSHOT,
        &[
            "127.0.0.1",
            &(inst.base + 143).to_string(),
            &(inst.base + 110).to_string(),
            "u@example.test",
            "secret",
        ],
    );
    assert!(
        out.status.success(),
        "snapshot: {}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        inst.log("kmp-imapd"),
        inst.log("kmp-pop3d")
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// A Maildir folder with message files `(subdir, name)`.
fn folder(dir: &Path, files: &[(&str, &str)], marker: bool) {
    for sub in ["tmp", "new", "cur"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
    }
    if marker {
        fs::write(dir.join("maildirfolder"), "").unwrap();
    }
    for (i, (sub, name)) in files.iter().enumerate() {
        write(
            &dir.join(sub).join(name),
            &format!("From: a@example.test\nSubject: m{i}\n\nbody {i}\n"),
        );
    }
}

fn msgs(v: &Value, folder: &str) -> Vec<(u64, Vec<String>)> {
    v["folders"][folder]["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no folder {folder}: {v}"))
        .iter()
        .map(|m| {
            let flags = m[1]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_string())
                .collect();
            (m[0].as_u64().unwrap(), flags)
        })
        .collect()
}

fn fl(s: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = s.iter().map(|x| x.to_string()).collect();
    v.sort();
    v
}

#[test]
fn dovecot_and_courier_lists_keep_every_uid_uidl_flag_keyword_and_subscription() {
    let inst = start();
    let md = maildir(&inst);
    // INBOX, from Dovecot (version 3): UIDs 5, 9, 12 with gaps, a POP3
    // UIDL of its own for 12, a Postfix-named file, one in new/, and one
    // file Dovecot never saw (mail that came after the list was written).
    let b1 = "1796000000.M100P1.old,S=48,W=51";
    let b2 = "1796000001.V801I2bM5.old";
    let b3 = "1796000002.M1P2.old";
    let late = "1796000003.M2P3.old";
    folder(
        &md,
        &[
            ("cur", &format!("{b1}:2,Sa")),
            ("cur", &format!("{b2}:2,FRb")),
            ("new", b3),
            ("new", late),
        ],
        false,
    );
    write(
        &md.join("dovecot-uidlist"),
        &format!(
            "3 V1234567 N20 G0123456789abcdef0123456789abcdef\n5 :{b1}\n9 W60 :{b2}:2,\n12 P7c8d-keep :{b3}\n"
        ),
    );
    write(&md.join("dovecot-keywords"), "0 $Forwarded\n1 Work\n");
    // 邮件 from Dovecot 1 (version 1 list), header UIDNEXT behind its record.
    let cn = md.join(".&kK5O9g-");
    folder(&cn, &[("cur", "1796000010.M1P1.old:2,S")], true);
    write(
        &cn.join("dovecot-uidlist"),
        "1 777 3\n7 1796000010.M1P1.old:2,S\n",
    );
    // Work.2024 from Courier.
    let w = md.join(".Work.2024");
    folder(&w, &[("cur", "1796000020.M1P1.old:2,T")], true);
    write(
        &w.join("courierimapuiddb"),
        "1 888 41\n40 1796000020.M1P1.old\n",
    );
    folder(&md.join(".Work"), &[], true);
    // Dovecot 2's subscriptions, nested levels, one of a folder that is gone.
    write(
        &md.join("subscriptions"),
        "V\t2\n\nWork\nWork\t2024\n&kK5O9g-\n&kK5O9g-\t&XfJT0ZAB-\n",
    );

    // POP3 first (it imports INBOX on its own), then IMAP.
    let v = snapshot(&inst);
    assert_eq!(
        v["uidl"],
        serde_json::json!([
            "000000050012d687",
            "000000090012d687",
            "7c8d-keep",
            "000000140012D687"
        ]),
        "Dovecot's UIDLs in its lowercase hex; the late message gets ours"
    );
    let inbox = &v["folders"]["INBOX"];
    assert_eq!(inbox["uidvalidity"], 1234567);
    assert_eq!(inbox["uidnext"], 21);
    assert_eq!(
        msgs(&v, "INBOX"),
        vec![
            (5, fl(&["\\Seen", "$Forwarded"])),
            (9, fl(&["\\Flagged", "\\Answered", "Work"])),
            (12, vec![]),
            (20, vec![]),
        ]
    );
    let c = &v["folders"]["邮件"];
    assert_eq!(
        (c["uidvalidity"].as_u64(), c["uidnext"].as_u64()),
        (Some(777), Some(8))
    );
    assert_eq!(msgs(&v, "邮件"), vec![(7, fl(&["\\Seen"]))]);
    let c = &v["folders"]["Work.2024"];
    assert_eq!(
        (c["uidvalidity"].as_u64(), c["uidnext"].as_u64()),
        (Some(888), Some(41))
    );
    assert_eq!(msgs(&v, "Work.2024"), vec![(40, fl(&["\\Deleted"]))]);
    assert_eq!(
        v["subscribed"],
        serde_json::json!(["Work", "Work.2024", "邮件", "邮件.已发送"])
    );
    // One rule: a Maildir that exists gets no special folders, by POP3 or IMAP.
    let names: Vec<&String> = v["folders"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["INBOX", "Work", "Work.2024", "邮件"], "{v}");
    // The same again: nothing moved.
    assert_eq!(snapshot(&inst), v);

    // A SUBSCRIBE keeps Dovecot's format and every nested line; a
    // $Forwarded set here is a keyword letter, as Dovecot keeps it.
    let out = common::python(
        r#"
import imaplib, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
m.login('u@example.test', 'secret')
assert m.subscribe('Other')[0] == 'OK'
m.select('INBOX')
assert m.uid('STORE', '12', '+FLAGS', '($Forwarded)')[0] == 'OK'
assert m.uid('STORE', '9', '+FLAGS', '($Forwarded NewWord)')[0] == 'OK'
typ, d = m.uid('FETCH', '9,12', '(FLAGS)')
print(d)
assert m.uid('STORE', '5', '-FLAGS', '($Forwarded)')[0] == 'OK'
m.logout()
"#,
        &[&(inst.base + 143).to_string()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read_to_string(md.join("subscriptions")).unwrap(),
        "V\t2\n\nOther\nWork\nWork\t2024\n&kK5O9g-\n&kK5O9g-\t&XfJT0ZAB-\n"
    );
    assert_eq!(
        fs::read_to_string(md.join("dovecot-keywords")).unwrap(),
        "0 $Forwarded\n1 Work\n2 NewWord\n"
    );
    let names: Vec<String> = fs::read_dir(md.join("cur"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let flags_of = |base: &str| {
        names
            .iter()
            .find(|n| n.starts_with(base))
            .map(|n| n.rsplit_once(":2,").unwrap().1.to_string())
            .unwrap()
    };
    assert_eq!(flags_of(b3), "a", "{names:?}");
    assert_eq!(flags_of(b2), "FRabc", "{names:?}");
    assert_eq!(flags_of(b1), "S", "{names:?}");
    // Dovecot's list is only read, never changed.
    assert!(fs::read_to_string(md.join("dovecot-uidlist"))
        .unwrap()
        .starts_with("3 V1234567 N20 "));
}

#[test]
fn an_append_into_a_folder_never_opened_keeps_the_imported_uids() {
    let inst = start();
    let md = maildir(&inst);
    folder(&md, &[], false);
    let a = md.join(".Archive");
    folder(&a, &[("cur", "1796000000.M1P1.old:2,S")], true);
    write(
        &a.join("dovecot-uidlist"),
        "3 V4242 N30\n29 :1796000000.M1P1.old\n",
    );
    let out = common::python(
        r#"
import imaplib, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
m.login('u@example.test', 'secret')
typ, d = m.append('Archive', None, None, b'Subject: new\r\n\r\nx\r\n')
print(d[0].decode())
"#,
        &[&(inst.base + 143).to_string()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("[APPENDUID 4242 30]"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v = snapshot(&inst);
    assert_eq!(
        msgs(&v, "Archive").iter().map(|m| m.0).collect::<Vec<_>>(),
        [29, 30]
    );
}

#[test]
fn courier_subscriptions_are_read_when_there_is_no_other_file() {
    let inst = start();
    let md = maildir(&inst);
    folder(&md, &[], false);
    folder(&md.join(".Sent"), &[], true);
    folder(&md.join(".&kK5O9g-"), &[], true);
    write(
        &md.join("courierimapsubscribed"),
        "INBOX\nINBOX.Sent\nINBOX.&kK5O9g-\n",
    );
    let v = snapshot(&inst);
    assert_eq!(
        v["subscribed"],
        serde_json::json!(["INBOX", "Sent", "邮件"])
    );
}

#[test]
fn export_writes_what_dovecot_reads_back_the_same() {
    use kmpromail::maildir::{migrate, FlagOp, Flags, Maildir};
    let d = tempfile::tempdir().unwrap();
    let md = Maildir::create(d.path().join("u")).unwrap();
    md.create_folder("邮件.2024").unwrap();
    md.subscribe("邮件.2024").unwrap();
    for i in 0..3 {
        md.inbox()
            .append(
                &mut format!("Subject: {i}\n\nx\n").as_bytes(),
                Flags::SEEN,
                &["$Forwarded"],
                None,
            )
            .unwrap();
    }
    let mut inbox = md.inbox().open().unwrap();
    let first = inbox.messages().next().unwrap().uid;
    inbox.expunge(&[first]).unwrap();
    inbox
        .store(
            &[kmpromail::maildir::Uid(3)],
            FlagOp::Add,
            Flags::FLAGGED,
            &[],
            None,
        )
        .unwrap();
    let r = migrate::export_dovecot(&md).unwrap();
    assert_eq!(r.messages, 2);
    let text = fs::read_to_string(md.root().join("dovecot-uidlist")).unwrap();
    let list = migrate::parse_uidlist(&text, migrate::Source::Dovecot).unwrap();
    let inbox = md.inbox().open().unwrap();
    assert_eq!(list.validity, inbox.uid_validity());
    assert_eq!(list.uid_next, inbox.uid_next().0);
    for m in inbox.messages() {
        assert_eq!(list.uids.get(&m.base), Some(&m.uid.0), "{text}");
        assert_eq!(
            list.uidls.get(&m.uid.0).cloned(),
            Some(format!("{:08X}{:08X}", m.uid.0, inbox.uid_validity()))
        );
    }
    assert_eq!(
        fs::read_to_string(md.root().join("subscriptions")).unwrap(),
        "V\t2\n\nDrafts\nINBOX\nJunk\nSent\nTrash\n&kK5O9g-\t2024\n"
    );
    // Read back: the same list comes in again on a fresh copy.
    let copy = d.path().join("copy");
    fs::create_dir(&copy).unwrap();
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir(copy.join(sub)).unwrap();
        for e in fs::read_dir(md.root().join(sub)).unwrap() {
            let e = e.unwrap();
            fs::copy(e.path(), copy.join(sub).join(e.file_name())).unwrap();
        }
    }
    for f in ["dovecot-uidlist", "dovecot-keywords"] {
        fs::copy(md.root().join(f), copy.join(f)).unwrap();
    }
    let back = Maildir::new(&copy).inbox().open().unwrap();
    assert_eq!(back.uid_validity(), inbox.uid_validity());
    assert_eq!(back.uid_next(), inbox.uid_next());
    let a: Vec<_> = inbox.messages().map(|m| (m.uid, m.flags)).collect();
    let b: Vec<_> = back.messages().map(|m| (m.uid, m.flags)).collect();
    assert_eq!(a, b);
}

fn ctl(inst: &Instance, args: &[&str]) -> (bool, String, String) {
    let out = inst.ctl(args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn kmpctl_import_dry_run_then_all_or_nothing() {
    let inst = Instance::new();
    inst.ctl_ok(&["domain", "add", "example.test"]);
    let files = inst.path().join("import");
    fs::create_dir(&files).unwrap();
    let md5 = "$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1";
    let sha = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
    let passwd = files.join("passwd");
    write(
        &passwd,
        &format!(
            "joe@example.test:{{SHA512-CRYPT}}{sha}:1000:1000::/home/joe::userdb_quota_rule=*:storage=1M\n\
             ann@example.test:{{MD5-CRYPT}}{md5}:::::\n"
        ),
    );
    let p = passwd.to_str().unwrap();
    let (ok, out, err) = ctl(&inst, &["import", "dovecot-passwd", p, "--dry-run"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("would add user joe@example.test (quota 1048576 bytes)"),
        "{out}"
    );
    assert!(out.contains("dry run: 2 users"), "{out}");
    assert!(ctl(&inst, &["user", "list"]).1.trim().lines().count() <= 1);
    // A bad line refuses the whole file.
    let bad = files.join("bad");
    write(
        &bad,
        &format!("zed@example.test:{sha}\nbob@example.test:{{PLAIN}}secret\n"),
    );
    let (ok, _, err) = ctl(&inst, &["import", "dovecot-passwd", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("line 2") && err.contains("nothing was imported"),
        "{err}"
    );
    let (ok, out, err) = ctl(&inst, &["import", "dovecot-passwd", p]);
    assert!(ok, "{err}");
    assert!(out.contains("imported: 2 users"), "{out}");
    let (_, list, _) = ctl(&inst, &["user", "list"]);
    assert!(
        list.contains("joe@example.test") && list.contains("ann@example.test"),
        "{list}"
    );
    assert!(!list.contains("zed@"), "{list}");
    // Again: the names are taken, nothing changes.
    let (ok, _, err) = ctl(&inst, &["import", "dovecot-passwd", p]);
    assert!(!ok && err.contains("nothing was imported"), "{err}");

    // vpopmail's vpasswd, then a Postfix virtual map: a line for a user is
    // its forwards, the others aliases; a program target is skipped.
    let vp = files.join("vpasswd");
    write(
        &vp,
        &format!("kim:{md5}:1:0:Kim:/home/vpopmail/domains/example.test/kim:10485760S\n"),
    );
    let (ok, _, err) = ctl(&inst, &["import", "vpasswd", vp.to_str().unwrap()]);
    assert!(!ok && err.contains("--domain"), "{err}");
    let (ok, out, err) = ctl(
        &inst,
        &[
            "import",
            "vpasswd",
            vp.to_str().unwrap(),
            "--domain",
            "example.test",
        ],
    );
    assert!(ok && out.contains("1 user"), "{out}{err}");
    let virt = files.join("virtual");
    write(
        &virt,
        "example.test anything\ninfo@example.test joe@example.test, ann@example.test\n\
         kim@example.test kim@example.test, kim@elsewhere.test\nsales@example.test |/usr/bin/crm\n",
    );
    let (ok, out, err) = ctl(
        &inst,
        &["import", "postfix-virtual", virt.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("1 alias") && out.contains("1 forward"),
        "{out}"
    );
    assert!(
        out.contains("skipped") && out.contains("program delivery"),
        "{out}"
    );
    let (_, show, _) = ctl(&inst, &["--json", "user", "show", "kim@example.test"]);
    let kim: Value = serde_json::from_str(&show).unwrap();
    assert_eq!(
        kim["forwards"],
        serde_json::json!(["kim@elsewhere.test"]),
        "{show}"
    );
    assert_eq!(kim["keep_copy"], true, "{show}");
    let (_, aliases, _) = ctl(&inst, &["alias", "list"]);
    assert!(aliases.contains("info@example.test"), "{aliases}");
}

#[test]
fn an_index_lost_after_the_move_is_not_rebuilt_from_the_old_list() {
    use kmpromail::maildir::Maildir;
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("u");
    folder(&root, &[("cur", "1796000000.M1P1.old:2,S")], false);
    write(
        &root.join("dovecot-uidlist"),
        "3 V4242 N8\n7 :1796000000.M1P1.old\n",
    );
    let md = Maildir::new(&root);
    let inbox = md.inbox().open().unwrap();
    assert_eq!((inbox.uid_validity(), inbox.uid_next().0), (4242, 8));
    assert_eq!(
        fs::read_to_string(root.join("kmpromail-pop3-uidl")).unwrap(),
        "7 0000000700001092\n"
    );
    md.inbox()
        .deliver(&mut &b"Subject: later\n\nx\n"[..], None)
        .unwrap();
    let inbox = md.inbox().open().unwrap();
    assert_eq!(
        inbox.messages().map(|m| m.uid.0).collect::<Vec<_>>(),
        [7, 8]
    );
    // Our index lost: the old list would give the later mail UID 8 again
    // (right here, wrong in general); a new UIDVALIDITY is the safe answer.
    fs::remove_file(root.join("kmpromail-uidlist")).unwrap();
    let again = md.inbox().open().unwrap();
    assert_ne!(again.uid_validity(), 4242);
    assert_eq!(again.len(), 2);
}
