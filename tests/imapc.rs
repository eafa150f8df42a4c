//! The IMAP client library (lib/imapc) against the real kmp-imapd: every
//! method over loopback, plain, STARTTLS and implicit TLS.
mod common;

use std::time::Duration;

use common::Instance;
use kmpromail::imapc::{BodyStructure, Client, Criteria, Endpoint, Error, Security, SortKey};

fn endpoint(inst: &Instance, security: Security) -> Endpoint {
    let port = match security {
        Security::Tls => inst.base + 993,
        _ => inst.base + 143,
    };
    Endpoint {
        host: "127.0.0.1".into(),
        port,
        security,
        ca_file: Some(inst.path().join("tls/cert.pem")),
        timeout: Duration::from_secs(30),
    }
}

fn login(inst: &Instance) -> Client {
    inst.wait_port(143);
    let mut c = Client::connect(&endpoint(inst, Security::Plain)).expect("connect");
    c.login("u@example.test", "secret").expect("login");
    c
}

#[test]
fn connect_login_list_select_logout() {
    let inst = common::imap_instance();
    inst.wait_port(143);
    let mut c = Client::connect(&endpoint(&inst, Security::Plain)).unwrap();
    assert!(c.has("imap4rev1") && c.has("AUTH=PLAIN"));
    c.id(&[("name", "kmp-webmail"), ("x-originating-ip", "192.0.2.7")])
        .unwrap();
    c.login("u@example.test", "secret").unwrap();
    assert!(
        c.has("UIDPLUS"),
        "capabilities after login: {:?}",
        c.capabilities()
    );
    let folders = c.list().unwrap();
    let inbox = folders
        .iter()
        .find(|f| f.name == "INBOX")
        .expect("INBOX listed");
    assert_eq!(inbox.status.map(|s| s.messages), Some(0));
    let sel = c.select("INBOX", false).unwrap();
    assert_eq!(sel.exists, 0);
    assert!(sel.uidvalidity > 0 && sel.uidnext > 0);
    assert!(!sel.read_only);
    let sel = c.select("inbox", true).unwrap();
    assert!(sel.read_only);
    c.logout().unwrap();
}

#[test]
fn refused_login_is_auth_without_detail() {
    let inst = common::imap_instance();
    inst.wait_port(143);
    let mut c = Client::connect(&endpoint(&inst, Security::Plain)).unwrap();
    assert!(matches!(
        c.login("u@example.test", "wrong"),
        Err(Error::Auth)
    ));
    let mut c = Client::connect(&endpoint(&inst, Security::Plain)).unwrap();
    assert!(matches!(
        c.login("nobody@example.test", "x"),
        Err(Error::Auth)
    ));
}

#[test]
fn implicit_tls_and_starttls_check_the_certificate() {
    let inst = common::imap_instance();
    inst.wait_port(993);
    for security in [Security::Tls, Security::StartTls] {
        let mut c = Client::connect(&endpoint(&inst, security))
            .unwrap_or_else(|e| panic!("{security:?}: {e}"));
        assert!(!c.has("STARTTLS"), "{security:?}: {:?}", c.capabilities());
        c.login("u@example.test", "secret").unwrap();
        assert!(c.list().unwrap().iter().any(|f| f.name == "INBOX"));
        c.logout().unwrap();
    }
    // Another authority: the handshake fails, and says it is TLS.
    let other = tempfile::tempdir().unwrap();
    kmpromail::ctl::init::write_self_signed(
        "other.test",
        &other.path().join("c.pem"),
        &other.path().join("k.pem"),
    )
    .unwrap();
    let mut e = endpoint(&inst, Security::Tls);
    e.ca_file = Some(other.path().join("c.pem"));
    assert!(matches!(Client::connect(&e), Err(Error::Tls(_))));
    // A name the certificate does not carry.
    let mut e = endpoint(&inst, Security::StartTls);
    e.host = "localhost".into();
    Client::connect(&e).expect("localhost is in the certificate");
    // A missing CA file is a TLS error, not a panic.
    let mut e = endpoint(&inst, Security::Tls);
    e.ca_file = Some(inst.path().join("nonexistent.pem"));
    assert!(matches!(Client::connect(&e), Err(Error::Tls(_))));
}

/// A message with these headers and a body of `size` bytes.
fn message(headers: &str, size: usize) -> Vec<u8> {
    let mut m = headers.replace('\n', "\r\n").into_bytes();
    m.extend_from_slice(b"\r\n");
    m.extend(std::iter::repeat_n(b'x', size));
    m.extend_from_slice(b"\r\n");
    m
}

/// Appends `msgs` to `folder` (created) and selects it; their UIDs.
fn fill(c: &mut Client, folder: &str, msgs: &[Vec<u8>]) -> Vec<u32> {
    c.create(folder, None).unwrap();
    let mut uids = Vec::new();
    for m in msgs {
        let (validity, uid) = c.append(folder, &[], m).unwrap().expect("APPENDUID");
        assert!(validity > 0);
        uids.push(uid);
    }
    let sel = c.select(folder, false).unwrap();
    assert_eq!(sel.exists as usize, msgs.len());
    uids
}

/// [`fill`] with a second between messages.
fn fill_slowly(c: &mut Client, folder: &str, msgs: &[Vec<u8>]) -> Vec<u32> {
    c.create(folder, None).unwrap();
    let mut uids = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(1050));
        }
        uids.push(c.append(folder, &[], m).unwrap().expect("APPENDUID").1);
    }
    c.select(folder, false).unwrap();
    uids
}

#[test]
fn chinese_folder_names_round_trip() {
    let inst = common::imap_instance();
    let mut c = login(&inst);
    let names = ["中文邮件", "工作.项目 & 计划", "繁體郵件"];
    c.create(names[0], None).unwrap();
    c.create("工作", None).unwrap();
    c.create(names[1], None).unwrap();
    // kmp-imapd takes CREATE's USE and gives special uses by name.
    c.create("已发送", Some("\\Archive")).unwrap();
    assert!(matches!(
        c.create("x", Some("Sent")),
        Err(Error::Invalid(_))
    ));
    let list = c.list().unwrap();
    for n in [names[0], names[1], "工作", "已发送"] {
        let f = list.iter().find(|f| f.name == n);
        assert!(f.is_some(), "{n} not in {list:?}");
        assert_eq!(f.unwrap().delimiter, Some('.'));
    }
    let work = list.iter().find(|f| f.name == "工作").unwrap();
    assert!(
        work.attributes.iter().any(|a| a == "\\HasChildren"),
        "{work:?}"
    );
    let sent = list.iter().find(|f| f.name == "Sent").unwrap();
    assert_eq!(sent.special.as_deref(), Some("\\Sent"));
    assert!(sent.attributes.iter().any(|a| a == "\\Sent"), "{sent:?}");
    // Subscriptions show in the list.
    c.subscribe(names[0], true).unwrap();
    let list = c.list().unwrap();
    assert!(list.iter().find(|f| f.name == names[0]).unwrap().subscribed);
    c.subscribe(names[0], false).unwrap();
    let list = c.list().unwrap();
    assert!(!list.iter().find(|f| f.name == names[0]).unwrap().subscribed);
    // Status per folder, by name.
    c.append(names[0], &["\\Seen"], &message("Subject: a\n", 10))
        .unwrap();
    c.append(names[0], &[], &message("Subject: b\n", 10))
        .unwrap();
    let st = c.status(names[0]).unwrap();
    assert_eq!((st.messages, st.unseen), (2, 1));
    assert!(st.size.unwrap() > 20);
    let listed = c.list().unwrap();
    let f = listed.iter().find(|f| f.name == names[0]).unwrap();
    assert_eq!(f.status, Some(st));
    // Rename keeps the messages; the old name is gone.
    c.rename(names[0], names[2]).unwrap();
    let list = c.list().unwrap();
    assert!(!list.iter().any(|f| f.name == names[0]));
    assert_eq!(c.status(names[2]).unwrap().messages, 2);
    // On disk, the folder is the modified UTF-7 name.
    let maildir = inst.path().join("mail/example.test/u");
    assert!(
        maildir
            .join(format!(".{}", kmpromail::proto::utf7::encode(names[2])))
            .is_dir(),
        "{:?}",
        std::fs::read_dir(&maildir).unwrap().collect::<Vec<_>>()
    );
    // A second connection with UTF8=ACCEPT sees the same names.
    let mut u = login(&inst);
    assert!(u.enable_utf8().unwrap());
    let list = u.list().unwrap();
    assert!(list.iter().any(|f| f.name == names[2]), "{list:?}");
    u.create("日本語", None).unwrap();
    assert!(c.list().unwrap().iter().any(|f| f.name == "日本語"));
    // Delete.
    c.delete(names[2]).unwrap();
    c.delete(names[1]).unwrap();
    let list = c.list().unwrap();
    assert!(!list
        .iter()
        .any(|f| f.name == names[2] || f.name == names[1]));
    assert!(matches!(c.select(names[2], false), Err(Error::No(_))));
    assert!(matches!(c.delete("没有"), Err(Error::No(_))));
    c.logout().unwrap();
    u.logout().unwrap();
}

#[test]
fn sort_by_each_key_and_search_with_chinese_text() {
    let inst = common::imap_instance();
    let mut c = login(&inst);
    let m = |from: &str, to: &str, cc: &str, day: u8, subject: &str, size: usize| {
        message(
            &format!(
                "From: {from}@x.example\nTo: {to}@x.example\nCc: {cc}@x.example\n\
                 Date: Mon, {day:02} Mar 2024 10:00:00 +0000\nSubject: {subject}\n"
            ),
            size,
        )
    };
    // INTERNALDATE has seconds: one second apart, so ARRIVAL has no ties.
    let u = fill_slowly(
        &mut c,
        "S",
        &[
            m("b", "a", "d", 3, "delta", 200),
            m("d", "c", "b", 1, "charlie", 100),
            m("a", "b", "c", 4, "bravo", 400),
            m("c", "d", "a", 2, "alpha", 300),
        ],
    );
    let order = |idx: &[usize]| idx.iter().map(|i| u[i - 1]).collect::<Vec<_>>();
    let all = Criteria::All;
    for (key, expected) in [
        (SortKey::Arrival, [1, 2, 3, 4]),
        (SortKey::Date, [2, 4, 1, 3]),
        (SortKey::From, [3, 1, 4, 2]),
        (SortKey::Subject, [4, 3, 2, 1]),
        (SortKey::Size, [2, 1, 4, 3]),
        (SortKey::To, [1, 3, 2, 4]),
        (SortKey::Cc, [4, 2, 3, 1]),
    ] {
        assert_eq!(
            c.sort(key, false, &all).unwrap(),
            order(&expected),
            "{key:?}"
        );
        let mut rev = expected;
        rev.reverse();
        assert_eq!(
            c.sort(key, true, &all).unwrap(),
            order(&rev),
            "reverse {key:?}"
        );
    }
    let not_first = Criteria::Not(Box::new(Criteria::Uids(vec![u[0]])));
    assert_eq!(
        c.sort(SortKey::Subject, false, &not_first).unwrap(),
        order(&[4, 3, 2])
    );

    // Chinese text: a GB2312 encoded-word subject, a GBK body, a Big5 sender name.
    use base64::Engine;
    let b64 = |s: &str, enc: &'static encoding_rs::Encoding| {
        base64::engine::general_purpose::STANDARD.encode(enc.encode(s).0)
    };
    let mut cn = format!(
        "From: =?big5?b?{}?= <li@x.example>\r\nTo: wang@x.example\r\n\
         Subject: =?gb2312?b?{}?=\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=gbk\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        b64("李小龍", encoding_rs::BIG5),
        b64("测试邮件", encoding_rs::GB18030)
    )
    .into_bytes();
    cn.extend_from_slice(&encoding_rs::GBK.encode("你好，世界。\r\n").0);
    let (_, cn_uid) = c.append("S", &["\\Flagged"], &cn).unwrap().unwrap();
    c.select("S", false).unwrap();
    assert_eq!(
        c.search(&Criteria::Subject("测试".into())).unwrap(),
        vec![cn_uid]
    );
    assert_eq!(
        c.search(&Criteria::Body("你好".into())).unwrap(),
        vec![cn_uid]
    );
    assert_eq!(
        c.search(&Criteria::Text("世界".into())).unwrap(),
        vec![cn_uid]
    );
    assert_eq!(
        c.search(&Criteria::From("小龍".into())).unwrap(),
        vec![cn_uid]
    );
    assert_eq!(
        c.search(&Criteria::Subject("没有".into())).unwrap(),
        Vec::<u32>::new()
    );
    assert_eq!(
        c.sort(
            SortKey::Arrival,
            false,
            &Criteria::Subject("测试邮件".into())
        )
        .unwrap(),
        vec![cn_uid]
    );
    // The other criteria.
    assert_eq!(c.search(&Criteria::Flagged).unwrap(), vec![cn_uid]);
    assert_eq!(
        c.search(&Criteria::To("wang".into())).unwrap(),
        vec![cn_uid]
    );
    assert_eq!(c.search(&Criteria::Unseen).unwrap().len(), 5);
    c.store(&[u[0], u[1]], true, &["\\Seen"]).unwrap();
    assert_eq!(
        c.search(&Criteria::Unseen).unwrap(),
        vec![u[2], u[3], cn_uid]
    );
    assert_eq!(c.search(&Criteria::Since((2000, 1, 1))).unwrap().len(), 5);
    assert_eq!(
        c.search(&Criteria::Before((2000, 1, 1))).unwrap(),
        Vec::<u32>::new()
    );
    let either = Criteria::Or(
        Box::new(Criteria::Subject("alpha".into())),
        Box::new(Criteria::Subject("delta".into())),
    );
    assert_eq!(c.search(&either).unwrap(), vec![u[0], u[3]]);
    let both = Criteria::And(vec![either, Criteria::Not(Box::new(Criteria::Unseen))]);
    assert_eq!(c.search(&both).unwrap(), vec![u[0]]);
    assert_eq!(
        c.search(&Criteria::Uids(vec![u[3], u[1]])).unwrap(),
        vec![u[1], u[3]]
    );
    assert_eq!(
        c.search(&Criteria::Uids(vec![])).unwrap(),
        Vec::<u32>::new()
    );
    assert_eq!(c.search(&Criteria::And(vec![])).unwrap().len(), 5);
    // Text that would break a command goes as a literal and matches nothing.
    assert_eq!(
        c.search(&Criteria::Subject("x\r\nk99 DELETE S".into()))
            .unwrap(),
        Vec::<u32>::new()
    );
    assert!(matches!(
        c.search(&Criteria::Subject("a\0b".into())),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        c.search(&Criteria::Since((2024, 2, 30 + 2))),
        Err(Error::Invalid(_))
    ));
    assert_eq!(c.status("S").unwrap().messages, 5);
    c.logout().unwrap();
}
