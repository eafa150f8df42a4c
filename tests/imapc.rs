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
    assert!(sel.highestmodseq.is_some(), "CONDSTORE is offered: {sel:?}");
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
    // Under UTF8=ACCEPT the text goes as UTF-8 without CHARSET.
    let mut c = login(&inst);
    assert!(c.enable_utf8().unwrap());
    c.select("S", true).unwrap();
    assert_eq!(
        c.search(&Criteria::Subject("测试".into())).unwrap(),
        vec![cn_uid]
    );
    assert_eq!(
        c.sort(SortKey::Date, false, &Criteria::Body("世界".into()))
            .unwrap(),
        vec![cn_uid]
    );
    c.logout().unwrap();
}

/// A multipart message: GB2312 text and HTML alternatives, an attachment
/// with a Chinese RFC 2231 file name, and X-Priority 1.
fn multipart() -> Vec<u8> {
    use base64::Engine;
    let gb = encoding_rs::GB18030.encode("你好，这是正文。").0;
    let text = base64::engine::general_purpose::STANDARD.encode(gb);
    format!(
        "From: =?gb2312?b?{}?= <zhang@x.example>\r\n\
         To: u@example.test, Li <li@x.example>\r\n\
         Cc: undisclosed:;\r\n\
         Subject: =?utf-8?b?{}?=\r\n\
         Message-ID: <m1@x.example>\r\n\
         X-Priority: 1 (Highest)\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n\
         --outer\r\n\
         Content-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n\
         --inner\r\n\
         Content-Type: text/plain; charset=gb2312\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n\
         {text}\r\n\
         --inner\r\n\
         Content-Type: text/html; charset=utf-8\r\n\r\n\
         <p>hello</p>\r\n\
         --inner--\r\n\
         --outer\r\n\
         Content-Type: application/pdf; name=\"report.pdf\"\r\n\
         Content-Disposition: attachment; filename*=utf-8''%E6%8A%A5%E5%91%8A.pdf\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n\
         JVBERi0xLjQK\r\n\
         --outer--\r\n",
        base64::engine::general_purpose::STANDARD.encode(encoding_rs::GB18030.encode("张三").0),
        base64::engine::general_purpose::STANDARD.encode("报告 第一季度"),
    )
    .into_bytes()
}

#[test]
fn summaries_in_the_asked_order_with_structure_and_sections() {
    let inst = common::imap_instance();
    let mut c = login(&inst);
    let plain = message("From: a@x.example\nSubject: plain\nImportance: low\n", 10);
    let mp = multipart();
    let u = fill(&mut c, "M", &[plain.clone(), mp.clone()]);
    c.store(&[u[1]], true, &["\\Flagged", "$Label1"]).unwrap();
    let s = c.summaries(&[u[1], 99999, u[0]]).unwrap();
    assert_eq!(
        s.iter().map(|s| s.uid).collect::<Vec<_>>(),
        vec![u[1], u[0]]
    );
    let m = &s[0];
    assert!(m.has_flag("\\flagged") && m.has_flag("$Label1") && !m.has_flag("\\Seen"));
    assert_eq!(m.size, mp.len() as u64);
    assert!(m.internal_date.as_deref().is_some_and(|d| d.contains('-')));
    assert_eq!(m.priority, Some(1));
    assert_eq!(s[1].priority, Some(5));
    let e = &m.envelope;
    assert_eq!(
        e.subject.as_deref(),
        Some(
            format!("=?utf-8?b?{}?=", {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode("报告 第一季度")
            })
            .as_bytes()
        )
    );
    assert_eq!(e.from[0].email().as_deref(), Some("zhang@x.example"));
    assert!(
        e.from[0].name.as_deref().unwrap().starts_with(b"=?"),
        "{:?}",
        String::from_utf8_lossy(e.from[0].name.as_deref().unwrap())
    );
    assert_eq!(e.to.len(), 2);
    assert_eq!(e.to[1].name.as_deref(), Some(&b"Li"[..]));
    assert_eq!(e.message_id.as_deref(), Some(&b"<m1@x.example>"[..]));
    let b = m.structure.as_ref().expect("BODYSTRUCTURE");
    assert_eq!(b.content_type(), "multipart/mixed");
    assert!(b.has_attachment());
    let parts = b.parts();
    let sections: Vec<_> = parts
        .iter()
        .map(|(s, p)| (s.as_str(), format!("{}/{}", p.mime_type, p.subtype)))
        .collect();
    assert_eq!(
        sections,
        [
            ("1.1", "text/plain".to_string()),
            ("1.2", "text/html".to_string()),
            ("2", "application/pdf".to_string())
        ]
    );
    assert_eq!(parts[0].1.param("charset"), Some(&b"gb2312"[..]));
    assert_eq!(parts[0].1.encoding, "base64");
    assert!(parts[2].1.is_attachment());
    assert!(!parts[0].1.is_attachment());
    let BodyStructure::Multi { parts: top, .. } = b else {
        panic!("{b:?}")
    };
    assert_eq!(top[0].content_type(), "multipart/alternative");
    // A text message's header leaves no room for an attachment: its
    // structure is not asked for (the server would read the whole file).
    assert_eq!(s[1].structure, None);

    // Whole message and sections, without setting \Seen.
    assert_eq!(c.fetch_raw(u[1]).unwrap().as_deref(), Some(&mp[..]));
    assert_eq!(c.fetch_raw(99999).unwrap(), None);
    let gb = c.fetch_section(u[1], "1.1").unwrap().unwrap();
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(String::from_utf8_lossy(&gb).trim())
        .unwrap();
    assert_eq!(encoding_rs::GB18030.decode(&decoded).0, "你好，这是正文。");
    let mime = c.fetch_section(u[1], "2.mime").unwrap().unwrap();
    assert!(String::from_utf8_lossy(&mime).contains("filename*=utf-8''%E6%8A%A5"));
    let header = c.fetch_section(u[1], "HEADER").unwrap().unwrap();
    assert!(header.ends_with(b"\r\n\r\n") && header.starts_with(b"From:"));
    assert_eq!(
        c.fetch_section(u[0], "TEXT").unwrap().unwrap(),
        b"xxxxxxxxxx\r\n"
    );
    assert_eq!(c.fetch_section(99999, "1").unwrap(), None);
    for bad in ["1 BODY[]", "HEADER.FIELDS (FROM)", "1]", "0"] {
        assert!(
            matches!(c.fetch_section(u[1], bad), Err(Error::Invalid(_))),
            "{bad}"
        );
    }
    let again = c.summaries(&[u[1]]).unwrap();
    assert!(!again[0].has_flag("\\Seen"), "PEEK must not set \\Seen");
    c.logout().unwrap();
}

#[test]
fn flags_copy_move_and_expunge_touch_only_the_given_uids() {
    let inst = common::imap_instance();
    let mut c = login(&inst);
    let msgs: Vec<Vec<u8>> = (1..=5)
        .map(|i| message(&format!("Subject: m{i}\n"), 10))
        .collect();
    let u = fill(&mut c, "A", &msgs);
    c.create("B", None).unwrap();
    // Flags on and off.
    c.store(&u[0..2], true, &["\\Seen", "\\Answered", "$Forwarded"])
        .unwrap();
    c.store(&u[1..2], false, &["\\Answered"]).unwrap();
    let s = c.summaries(&u).unwrap();
    assert!(s[0].has_flag("\\Seen") && s[0].has_flag("\\Answered") && s[0].has_flag("$Forwarded"));
    assert!(s[1].has_flag("\\Seen") && !s[1].has_flag("\\Answered"));
    assert!(
        s[2].flags.iter().all(|f| f == "\\Recent"),
        "{:?}",
        s[2].flags
    );
    for bad in ["\\Seen)", "a b", "x\r\nk9 LOGOUT", ""] {
        assert!(
            matches!(c.store(&u, true, &[bad]), Err(Error::Invalid(_))),
            "{bad:?}"
        );
    }
    // Another message is marked \Deleted by someone else: expunging ours
    // must not take it along.
    c.store(&[u[4]], true, &["\\Deleted"]).unwrap();
    c.expunge(&[u[0]]).unwrap();
    let left = c.search(&Criteria::All).unwrap();
    assert_eq!(left, u[1..].to_vec());
    // Copy leaves the source; move does not; neither touches the others.
    c.copy(&[u[1]], "B").unwrap();
    c.move_to(&[u[2], u[3]], "B").unwrap();
    assert_eq!(c.search(&Criteria::All).unwrap(), vec![u[1], u[4]]);
    let b = c.select("B", false).unwrap();
    assert_eq!(b.exists, 3);
    let all = c.search(&Criteria::All).unwrap();
    let subjects: Vec<_> = c
        .summaries(&all)
        .unwrap()
        .into_iter()
        .map(|s| String::from_utf8(s.envelope.subject.unwrap()).unwrap())
        .collect();
    assert_eq!(subjects, ["m2", "m3", "m4"]);
    // Copying into a folder that does not exist is the server's NO.
    c.select("A", false).unwrap();
    assert!(matches!(c.copy(&[u[1]], "没有"), Err(Error::No(_))));
    assert_eq!(c.status("A").unwrap().messages, 2);
    c.logout().unwrap();
}

#[test]
fn metadata_set_get_and_remove() {
    let inst = common::imap_instance();
    let mut c = login(&inst);
    let prefs = "{\"lang\": \"zh-CN\", \"签名\": \"张三\\r\\n\"}\r\nsecond line".as_bytes();
    c.set_metadata(
        "",
        &[
            ("/private/vendor/kmpromail/prefs", Some(prefs)),
            ("/private/vendor/kmpromail/empty", Some(b"")),
        ],
    )
    .unwrap();
    c.set_metadata("INBOX", &[("/private/comment", Some("收件箱".as_bytes()))])
        .unwrap();
    let got = c
        .get_metadata(
            "",
            &[
                "/private/vendor/kmpromail/prefs",
                "/private/vendor/kmpromail/none",
                "/private/vendor/kmpromail/empty",
            ],
        )
        .unwrap();
    assert_eq!(
        got[0],
        (
            "/private/vendor/kmpromail/prefs".to_string(),
            Some(prefs.to_vec())
        )
    );
    assert_eq!(got[1].1, None);
    assert_eq!(got[2].1.as_deref(), Some(&b""[..]));
    let inbox = c.get_metadata("INBOX", &["/private/comment"]).unwrap();
    assert_eq!(inbox[0].1.as_deref(), Some("收件箱".as_bytes()));
    // DEPTH 1: the entries one level below, not deeper, not beside.
    c.set_metadata(
        "",
        &[
            ("/private/vendor/kmpromail/s/a", Some(b"1")),
            ("/private/vendor/kmpromail/s/b", Some(b"2")),
            ("/private/vendor/kmpromail/s/b/deep", Some(b"3")),
            ("/private/vendor/kmpromail/sx", Some(b"4")),
        ],
    )
    .unwrap();
    let mut below = c
        .get_metadata_below("", "/private/vendor/kmpromail/s")
        .unwrap();
    below.sort();
    assert_eq!(
        below,
        vec![
            (
                "/private/vendor/kmpromail/s/a".to_string(),
                Some(b"1".to_vec())
            ),
            (
                "/private/vendor/kmpromail/s/b".to_string(),
                Some(b"2".to_vec())
            ),
        ]
    );
    // The server's entry and the folder's are apart.
    assert_eq!(
        c.get_metadata("", &["/private/comment"]).unwrap()[0].1,
        None
    );
    c.set_metadata("", &[("/private/vendor/kmpromail/prefs", None)])
        .unwrap();
    assert_eq!(
        c.get_metadata("", &["/private/vendor/kmpromail/prefs"])
            .unwrap()[0]
            .1,
        None
    );
    for bad in ["private/x", "/private/*", "/private/a b", "/other/x"] {
        assert!(
            matches!(c.get_metadata("", &[bad]), Err(Error::Invalid(_))),
            "{bad}"
        );
        assert!(
            matches!(c.set_metadata("", &[(bad, None)]), Err(Error::Invalid(_))),
            "{bad}"
        );
    }
    c.set_metadata("", &[("/private/vendor/kmpromail/prefs", Some(b"mine"))])
        .unwrap();
    c.logout().unwrap();
    // Another user of the same server does not see it.
    let out = inst.ctl_stdin(
        &["user", "add", "v@example.test", "--password-stdin"],
        Some(b"other\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v = Client::connect(&endpoint(&inst, Security::Plain)).unwrap();
    v.login("v@example.test", "other").unwrap();
    let got = v
        .get_metadata("", &["/private/vendor/kmpromail/prefs"])
        .unwrap();
    assert_eq!(got[0].1, None);
    assert_eq!(
        v.get_metadata("INBOX", &["/private/comment"]).unwrap()[0].1,
        None
    );
    v.logout().unwrap();
}

#[test]
fn quota_root_reports_usage_and_limits() {
    let mut inst = Instance::new();
    inst.ctl_ok(&["domain", "add", "example.test"]);
    let out = inst.ctl_stdin(
        &[
            "user",
            "add",
            "q@example.test",
            "--password-stdin",
            "--quota",
            "1M",
            "--quota-messages",
            "100",
        ],
        Some(b"secret\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    inst.spawn("kmp-imapd", &[]);
    inst.wait_port(143);
    let mut c = Client::connect(&endpoint(&inst, Security::Plain)).unwrap();
    c.login("q@example.test", "secret").unwrap();
    let msg = message("Subject: q\n", 3000);
    c.append("INBOX", &[], &msg).unwrap();
    let q = c.quota_root("INBOX").unwrap();
    let storage = q.iter().find(|q| q.resource == "STORAGE").expect("STORAGE");
    assert_eq!(storage.limit, 1024);
    assert!(storage.usage >= 3, "{q:?}");
    let count = q.iter().find(|q| q.resource == "MESSAGE").expect("MESSAGE");
    assert_eq!((count.usage, count.limit), (1, 100));
    c.logout().unwrap();
}

#[test]
fn append_returns_appenduid_and_arguments_never_inject() {
    let inst = common::imap_instance();
    let mut c = login(&inst);
    let sel = c.select("INBOX", false).unwrap();
    let msg = message("Subject: hi\n", 100);
    let (validity, uid) = c
        .append("INBOX", &["\\Seen", "$Label2"], &msg)
        .unwrap()
        .unwrap();
    assert_eq!((validity, uid), (sel.uidvalidity, sel.uidnext));
    let s = c.summaries(&[uid]).unwrap();
    assert!(s[0].has_flag("\\Seen") && s[0].has_flag("$Label2"));
    assert_eq!(c.fetch_raw(uid).unwrap().unwrap(), msg);
    // A big message (past any LITERAL- limit) goes whole.
    let big = message("Subject: big\n", 300_000);
    let (_, big_uid) = c.append("INBOX", &[], &big).unwrap().unwrap();
    assert_eq!(c.fetch_raw(big_uid).unwrap().unwrap(), big);
    // Names with CR LF go as literals: the "command" in them is not run.
    let evil = "x\r\nk99 DELETE INBOX";
    let r = c.search(&Criteria::Subject(evil.into()));
    assert_eq!(r.unwrap(), Vec::<u32>::new());
    assert!(c.list().unwrap().iter().any(|f| f.name == "INBOX"));
    assert_eq!(c.status("INBOX").unwrap().messages, 2);
    // Control characters make no folder name: refused, nothing sent.
    for bad in ["a\0b", "a\tb", "x\r\ny", "\u{7f}"] {
        assert!(
            matches!(c.create(bad, None), Err(Error::Invalid(_))),
            "{bad:?}"
        );
    }
    assert!(matches!(c.login("a\0", "b"), Err(Error::Invalid(_))));
    // A quote and a backslash in a name are quoted, not spliced.
    c.create("引号 \"b\"", None).unwrap();
    assert!(c.list().unwrap().iter().any(|f| f.name == "引号 \"b\""));
    let odd = message("Subject: a \"b\" \\c\n", 5);
    let (_, odd_uid) = c.append("INBOX", &[], &odd).unwrap().unwrap();
    c.select("INBOX", false).unwrap();
    assert_eq!(
        c.search(&Criteria::Subject("\"b\" \\c".into())).unwrap(),
        vec![odd_uid]
    );
    // The connection still works after all that.
    assert_eq!(c.select("INBOX", true).unwrap().exists, 3);
    c.logout().unwrap();
}

#[test]
fn changes_by_another_session_do_not_confuse_results() {
    let inst = common::imap_instance();
    let mut c = login(&inst);
    let msgs: Vec<Vec<u8>> = (1..=4)
        .map(|i| message(&format!("Subject: n{i}\n"), 10))
        .collect();
    let u = fill(&mut c, "N", &msgs);
    // Another session flags one, expunges another and adds a fifth.
    let mut d = login(&inst);
    d.select("N", false).unwrap();
    d.store(&[u[0]], true, &["\\Flagged"]).unwrap();
    d.expunge(&[u[1]]).unwrap();
    let (_, u5) = d
        .append("N", &[], &message("Subject: n5\n", 10))
        .unwrap()
        .unwrap();
    // The first session's next commands bring EXPUNGE, EXISTS and FETCH
    // updates along with their own data.
    let s = c.summaries(&u).unwrap();
    assert_eq!(
        s.iter().map(|s| s.uid).collect::<Vec<_>>(),
        vec![u[0], u[2], u[3]]
    );
    assert!(s[0].has_flag("\\Flagged"));
    assert!(!s[1].has_flag("\\Flagged"));
    assert_eq!(
        c.search(&Criteria::All).unwrap(),
        vec![u[0], u[2], u[3], u5]
    );
    assert_eq!(
        c.sort(SortKey::Subject, true, &Criteria::All).unwrap(),
        vec![u5, u[3], u[2], u[0]]
    );
    assert_eq!(c.fetch_raw(u[1]).unwrap(), None);
    assert_eq!(c.fetch_raw(u[2]).unwrap().unwrap(), msgs[2]);
    c.logout().unwrap();
    d.logout().unwrap();
}
