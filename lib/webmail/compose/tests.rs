use super::build::{self, Identity, Purpose};
use super::reply;
use super::*;

fn me() -> Identity {
    Identity {
        name: Some("张三".into()),
        address: "u@example.test".into(),
    }
}

#[test]
fn address_lists_parse_as_people_type_them() {
    let l = parse_addresses(
        " a@b.example, \"Li, Lei\" <l@c.example>; 张三 <z@d.example>,, <x@y.example> ",
    )
    .unwrap();
    let got: Vec<(Option<&str>, &str)> = l
        .iter()
        .map(|r| (r.name.as_deref(), r.address.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (None, "a@b.example"),
            (Some("Li, Lei"), "l@c.example"),
            (Some("张三"), "z@d.example"),
            (None, "x@y.example"),
        ]
    );
    assert_eq!(l[1].display(), "\"Li, Lei\" <l@c.example>");
    assert_eq!(parse_addresses("").unwrap(), vec![]);
    assert_eq!(parse_addresses("用户@例子.中国").unwrap().len(), 1);
    for bad in [
        "nobody",
        "a@",
        "@b.example",
        "a b@c.example",
        "a@b..example",
        "x <a@b.example",
        "\"open <a@b.example>",
        "a@b.example, oops",
        "a@-b.example",
        "<a@b.example\r\nBcc: e@vil.example>",
    ] {
        assert!(parse_addresses(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        parse_addresses("a@b.example, oops").unwrap_err().item,
        "oops"
    );
}

#[test]
fn file_names_stay_inside_and_keep_chinese() {
    assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
    assert_eq!(clean_file_name("..\\..\\boot.ini"), "boot.ini");
    assert_eq!(clean_file_name(".."), "attachment");
    assert_eq!(clean_file_name("a\r\nb\u{0}c.txt"), "abc.txt");
    assert_eq!(clean_file_name(".hidden"), "hidden");
    assert_eq!(clean_file_name("报告 2026.pdf"), "报告 2026.pdf");
    assert_eq!(
        clean_file_name("x".repeat(500).as_str()).len(),
        MAX_FILE_NAME
    );
    assert_eq!(clean_content_type("text/plain"), "text/plain");
    assert_eq!(
        clean_content_type("text/html\r\nX: y"),
        "application/octet-stream"
    );
}

#[test]
fn signatures_are_replaced_not_piled_up() {
    let b = with_signature("Hello\n", Some("Zhang San\nACME"));
    assert_eq!(b, "Hello\n-- \nZhang San\nACME\n");
    let b2 = with_signature(&b, Some("Z."));
    assert_eq!(b2, "Hello\n-- \nZ.\n");
    assert_eq!(with_signature(&b2, None), "Hello\n");
    assert_eq!(with_signature("", Some("S")), "\n-- \nS\n");
    let p = ComposePrefs::parse(Some(
        br#"{"signatures":[{"name":"a","text":"x\r\ny"}],"default_signature":5}"#,
    ));
    assert_eq!(p.signatures[0].text, "x\ny");
    assert_eq!(p.default_signature, None, "out of range");
    assert!(p.save_sent, "default on");
    assert_eq!(ComposePrefs::parse(Some(b"junk")), ComposePrefs::default());
    assert_eq!(ComposePrefs::parse(Some(p.to_text().as_bytes())), p);
}

#[test]
fn dates_carry_the_users_zone() {
    // 2026-12-05 03:29:01 UTC.
    let t = 1_796_441_341;
    assert_eq!(build::rfc5322_date(t, 0), "Sat, 05 Dec 2026 03:29:01 +0000");
    assert_eq!(
        build::rfc5322_date(t, 480),
        "Sat, 05 Dec 2026 11:29:01 +0800"
    );
    assert_eq!(
        build::rfc5322_date(t, -570),
        "Fri, 04 Dec 2026 17:59:01 -0930"
    );
}

fn sample_draft() -> Draft {
    Draft {
        to: "李四 <l@example.test>, b@example.test".into(),
        cc: "c@example.test".into(),
        bcc: "hidden@example.test".into(),
        subject: "你好 report".into(),
        body: "第一行\n.second\n".into(),
        priority: Priority::High,
        receipt: true,
        save_sent: false,
        in_reply_to: Some("a1@x.example".into()),
        references: vec!["a0@x.example".into(), "a1@x.example".into()],
        origin: Some(Origin {
            forward: false,
            folder: "收件箱/子".into(),
            uid: 7,
        }),
        attachments: vec![
            Attachment {
                name: "报告 2026.pdf".into(),
                content_type: "application/pdf".into(),
                data: (0..=255u8).collect(),
            },
            Attachment {
                name: "orig.eml".into(),
                content_type: "message/rfc822".into(),
                data: b"From: a@b.example\r\nSubject: x\r\n\r\nbody \xe4\xb8\xad\r\n".to_vec(),
            },
        ],
        linked: None,
    }
}

#[test]
fn a_draft_round_trips_through_its_message() {
    let d = sample_draft();
    let b = build::build(&d, &me(), 1_796_441_341, 480, Purpose::Draft);
    let text = String::from_utf8_lossy(&b.bytes);
    assert!(
        text.contains("Date: Sat, 05 Dec 2026 11:29:01 +0800\r\n"),
        "{text}"
    );
    assert!(text.contains(&format!("Message-ID: <{}>", b.message_id)));
    assert!(b.message_id.ends_with("@example.test"));
    assert!(text.contains("filename*=UTF-8''"), "RFC 2231 name: {text}");
    assert!(text.contains("Subject: =?utf-8?"), "RFC 2047: {text}");
    let back = build::read_draft(&b.bytes);
    assert_eq!(back.subject, d.subject);
    assert_eq!(back.body.replace("\r\n", "\n"), d.body);
    assert_eq!(back.priority, Priority::High);
    assert!(back.receipt);
    assert!(!back.save_sent);
    assert_eq!(back.in_reply_to, d.in_reply_to);
    assert_eq!(back.references, d.references);
    assert_eq!(back.origin, d.origin);
    assert_eq!(
        parse_addresses(&back.to).unwrap(),
        parse_addresses(&d.to).unwrap()
    );
    assert_eq!(parse_addresses(&back.bcc).unwrap().len(), 1);
    assert_eq!(back.attachments, d.attachments, "names and bytes kept");
}

#[test]
fn the_mail_sent_has_no_bcc_and_none_of_our_headers() {
    let d = sample_draft();
    let b = build::build(&d, &me(), 0, 0, Purpose::Send);
    let text = String::from_utf8_lossy(&b.bytes);
    let head = &text[..text.find("\r\n\r\n").unwrap()];
    assert!(!head.contains("Bcc"), "{head}");
    assert!(!head.contains("hidden@"), "{head}");
    assert!(!head.contains("X-Kmp"), "{head}");
    assert!(head.contains("In-Reply-To: <a1@x.example>"), "{head}");
    assert!(head.contains("X-Priority: 1"), "{head}");
    assert!(head.contains("Disposition-Notification-To:"), "{head}");
    // The forwarded message is in there as it was.
    assert!(b
        .bytes
        .windows(d.attachments[1].data.len())
        .any(|w| w == d.attachments[1].data.as_slice()));
    // A draft whose address list does not parse keeps what was typed.
    let mut odd = d.clone();
    odd.to = "not an address, 王五".into();
    let kept = build::build(&odd, &me(), 0, 0, Purpose::Draft);
    assert_eq!(build::read_draft(&kept.bytes).to, odd.to);
}

const ORIGINAL: &[u8] = b"From: =?GB2312?B?wO7LxA==?= <l@example.test>\r\n\
To: u@example.test, b@example.test\r\n\
Cc: U@Example.Test, c@example.test\r\n\
Subject: =?GB2312?B?xOO6ww==?=\r\n\
Message-ID: <m2@x.example>\r\n\
References: <m0@x.example> <m1@x.example>\r\n\
Date: Sat, 05 Dec 2026 03:29:01 +0000\r\n\
Content-Type: text/plain; charset=GB2312\r\n\
\r\n\
\xd6\xd0\xce\xc4\r\n";

#[test]
fn replies_thread_quote_and_leave_out_the_user() {
    let o = Origin {
        forward: false,
        folder: "INBOX".into(),
        uid: 3,
    };
    let mine = vec!["u@example.test".to_string()];
    let r = reply::reply_draft(ORIGINAL, o.clone(), &mine, false, "");
    assert_eq!(r.to, "李四 <l@example.test>");
    assert_eq!(r.cc, "");
    assert_eq!(r.subject, "Re: 你好");
    assert!(r.body.contains("> 中文"), "{}", r.body);
    assert_eq!(r.in_reply_to.as_deref(), Some("m2@x.example"));
    assert_eq!(
        r.references,
        vec!["m0@x.example", "m1@x.example", "m2@x.example"]
    );
    let all = reply::reply_draft(ORIGINAL, o, &mine, true, "");
    assert_eq!(all.to, "李四 <l@example.test>");
    assert_eq!(all.cc, "b@example.test, c@example.test");
    assert_eq!(reply::reply_subject("RE: x"), "RE: x");
    assert_eq!(reply::reply_subject("回复: x"), "回复: x");
}

#[test]
fn forwards_keep_the_original() {
    let o = Origin {
        forward: true,
        folder: "INBOX".into(),
        uid: 3,
    };
    let f = reply::forward_draft(ORIGINAL, o.clone(), false, "");
    assert_eq!(f.subject, "Fwd: 你好");
    assert_eq!(f.attachments.len(), 1);
    assert_eq!(f.attachments[0].content_type, "message/rfc822");
    assert_eq!(f.attachments[0].data, ORIGINAL);
    assert_eq!(f.attachments[0].name, "你好.eml");
    let i = reply::forward_draft(ORIGINAL, o, true, "");
    assert!(i.body.contains("Forwarded message"));
    assert!(i.body.contains("中文"));
    assert!(i.attachments.is_empty());
}

#[test]
fn read_receipts_are_reports() {
    let m = build::mdn(
        &build::Receipt {
            to: "l@example.test",
            original_subject: "你好",
            original_message_id: Some("m2@x.example"),
            text: "read",
        },
        &me(),
        0,
        0,
    );
    let t = String::from_utf8_lossy(&m.bytes);
    assert!(t.contains("multipart/report"), "{t}");
    assert!(
        t.contains("report-type=\"disposition-notification\"")
            || t.contains("report-type=disposition-notification"),
        "{t}"
    );
    assert!(t.contains("Original-Message-ID: <m2@x.example>"));
    assert!(t.contains("Disposition: manual-action/MDN-sent-manually; displayed"));
    let raw = b"From: a@b.example\r\nDisposition-Notification-To: \"A\" <a@b.example>\r\n\r\nx";
    assert_eq!(reply::receipt_address(raw).as_deref(), Some("a@b.example"));
    assert_eq!(reply::receipt_address(b"From: a@b.example\r\n\r\nx"), None);
}

#[test]
fn a_linked_message_is_a_placeholder_in_the_mail_and_a_header_in_the_draft() {
    let l = Linked {
        folder: "收件箱 2".into(),
        uidvalidity: 9,
        uid: 4,
        size: 1234,
        name: "../x.eml".into(),
    };
    let back = Linked::parse(&l.to_text()).unwrap();
    assert_eq!(back.name, "x.eml", "the name made safe");
    assert_eq!(
        l.relative_url(),
        "/%E6%94%B6%E4%BB%B6%E7%AE%B1%202;UIDVALIDITY=9/;UID=4"
    );
    assert_eq!(
        l.submit_rump("u@example.test"),
        "imap://u@example.test/%E6%94%B6%E4%BB%B6%E7%AE%B1%202;UIDVALIDITY=9/;UID=4;urlauth=submit+u@example.test"
    );
    let d = Draft {
        to: "b@example.test".into(),
        body: "see".into(),
        linked: Some(back.clone()),
        ..Draft::default()
    };
    let sent = build::build(&d, &me(), 0, 0, Purpose::Send);
    let (before, after) = sent.split().expect("a place for the message");
    let before = String::from_utf8_lossy(before);
    assert!(before.ends_with("\r\n\r\n"), "{before}");
    assert!(before.contains("Content-Type: message/rfc822"), "{before}");
    assert!(String::from_utf8_lossy(after)
        .trim_start()
        .starts_with("--"));
    let draft = build::build(&d, &me(), 0, 0, Purpose::Draft);
    assert!(draft.linked_at.is_none());
    assert_eq!(build::read_draft(&draft.bytes).linked, Some(back));
    assert_eq!(d.attachments_size(), 1234);
}

#[test]
fn html_only_mail_is_quoted_as_text() {
    assert_eq!(
        reply::html_to_text(
            "<style>p{x}</style><p>你好 &amp; <b>hi</b></p><p>a<br>b&#x4e2d;&#25991;&nbsp;!</p>\n\n\n<div>end</div>"
        ),
        "你好 & hi\na\nb中文 !\n\nend\n"
    );
    let raw = b"From: a@b.example\r\nSubject: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>line one</p><p>line two</p>";
    let o = Origin {
        forward: false,
        folder: "INBOX".into(),
        uid: 1,
    };
    let r = reply::reply_draft(raw, o, &[], false, "");
    assert!(r.body.contains("> line one\n> line two"), "{}", r.body);
}
