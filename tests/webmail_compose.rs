//! Writing mail in the webmail, end to end under lighttpd: the compose
//! form (curl as the browser, multipart uploads), drafts kept in Drafts
//! over IMAP, sending through the instance's own submission port with the
//! user's login, and the recipients reading the mail with Python's imaplib
//! and poplib. Replies, forwards and read receipts; bad input.

mod common;

use common::compose::*;
use common::webmail::enc;

#[test]
fn compose_with_attachments_save_reopen_send_and_the_recipients_read_it() {
    let Some(w) = start(&[]) else { return };
    let s = w.login("u@example.test", "secret");
    let page = w.get("/compose", Some(&s));
    assert_eq!(page.status, 200, "{}", page.body);
    for id in [
        "id=\"to\" name=\"to\"",
        "id=\"cc\" name=\"cc\"",
        "id=\"bcc\" name=\"bcc\"",
    ] {
        assert!(page.body.contains(id), "stable inputs: {id}");
    }
    assert!(
        page.body.contains("data-limit=\""),
        "the limit is in the page"
    );
    assert!(
        page.header("content-security-policy")
            .unwrap_or_default()
            .contains("script-src 'self'"),
        "the compose script may run"
    );
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.bin");
    let b = dir.path().join("b.txt");
    let bin: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&a, &bin).unwrap();
    std::fs::write(&b, "第二个附件\r\nline 2\r\n").unwrap();
    let mut f = fields_of(&page.body);
    set(&mut f, "to", "Bob <bob@example.test>");
    set(&mut f, "cc", "\"Carol, C\" <carol@example.test>");
    set(&mut f, "bcc", "dave@example.test");
    set(&mut f, "subject", "季度报告 draft");
    set(&mut f, "body", "你好，\n.dot line\n附件见下。\n");
    set(&mut f, "priority", "high");
    set(&mut f, "action", "save");
    let a_path = a.display().to_string();
    let b_path = b.display().to_string();
    let r = post_compose(
        &w,
        &s,
        &as_refs(&f),
        &[(&a_path, "报告 2026.bin"), (&b_path, "../../etc/passwd")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let loc = r.header("location").unwrap().to_string();
    assert!(loc.contains("/compose?draft="), "{loc}");
    // Reopen: everything typed and both files are there.
    let reopened = w.get(&loc[loc.find("/compose").unwrap()..], Some(&s));
    assert_eq!(reopened.status, 200, "{}", reopened.body);
    let body = &reopened.body;
    assert!(body.contains("报告 2026.bin"), "{body}");
    assert!(body.contains(">passwd<"), "the path is dropped: {body}");
    assert!(!body.contains("etc/passwd") && !body.contains("etc&#x2f;passwd"));
    assert_eq!(input(body, "subject").as_deref(), Some("季度报告 draft"));
    assert_eq!(input(body, "bcc").as_deref(), Some("dave@example.test"));
    assert!(textarea(body, "body").contains(".dot line"));
    assert!(body.contains("value=\"high\" selected"));
    let first = input(body, "draft").unwrap();
    // Change and save again: still one draft, another UID.
    let mut f = fields_of(body);
    set(&mut f, "subject", "季度报告");
    set(&mut f, "action", "save");
    let r = post_compose(&w, &s, &as_refs(&f), &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    let loc = r.header("location").unwrap().to_string();
    let again = w.get(&loc[loc.find("/compose").unwrap()..], Some(&s));
    let second = input(&again.body, "draft").unwrap();
    assert_ne!(first, second);
    let out = run_py(
        &w,
        &format!(
            "{PY_HEAD}\nm = imap('u@example.test')\nm.select('Drafts')\n\
             typ, d = m.uid('SEARCH', None, 'ALL')\nprint(d[0].decode())\n"
        ),
        &[],
    );
    assert_eq!(out.trim(), second, "one draft, the newest");
    // Send from the draft.
    let mut f = fields_of(&again.body);
    set(&mut f, "action", "send");
    let r = post_compose(&w, &s, &as_refs(&f), &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.header("location").unwrap().contains("done=sent"));
    let sha = |d: &[u8]| {
        use std::fmt::Write;
        let digest = ring::digest::digest(&ring::digest::SHA256, d);
        digest.as_ref().iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    };
    let script = format!(
        r#"{PY_HEAD}
want_bin, want_txt = sys.argv[4], sys.argv[5]
def check(raw, who):
    msg = parse(raw)
    assert msg["Subject"] == "季度报告", msg["Subject"]
    assert "bcc" not in [k.lower() for k in msg.keys()], (who, msg.keys())
    assert "dave" not in raw.decode("utf-8", "replace").split("\r\n\r\n")[0], who
    assert msg["Message-ID"] and re.match(r"^<[^<>@ ]+@example\.test>$", msg["Message-ID"]), msg["Message-ID"]
    assert email.utils.parsedate_to_datetime(msg["Date"]) is not None
    assert msg["X-Priority"].startswith("1"), msg["X-Priority"]
    assert not any(k.lower().startswith("x-kmp") for k in msg.keys())
    body = msg.get_body(("plain",)).get_content()
    assert "你好" in body and ".dot line" in body, body
    atts = {{a.get_filename(): a.get_payload(decode=True) for a in msg.iter_attachments()}}
    assert set(atts) == {{"报告 2026.bin", "passwd"}}, atts.keys()
    assert hashlib.sha256(atts["报告 2026.bin"]).hexdigest() == want_bin
    assert hashlib.sha256(atts["passwd"]).hexdigest() == want_txt
for user in ["bob@example.test", "carol@example.test", "dave@example.test"]:
    m, uids = wait_inbox(user)
    raw, _ = fetch(m, uids[0])
    check(raw, user)
    m.logout()
# POP3 too.
p = poplib.POP3(host, ppop)
p.user("bob@example.test"); p.pass_("secret")
resp, lines, octets = p.retr(1)
check(b"\r\n".join(lines) + b"\r\n", "pop3")
p.quit()
# The draft is gone; a copy is in Sent.
m = imap("u@example.test")
m.select("Drafts")
typ, d = m.uid("SEARCH", None, "ALL")
assert d[0].split() == [], d
m.select("Sent")
typ, d = m.uid("SEARCH", None, "ALL")
assert len(d[0].split()) == 1, d
raw, flags = fetch(m, d[0].split()[0])
assert b"\\Seen" in flags, flags
check(raw, "sent")
print("ok")
"#
    );
    let out = run_py(
        &w,
        &script,
        &[&sha(&bin), &sha("第二个附件\r\nline 2\r\n".as_bytes())],
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn bad_input_is_explained_and_nothing_typed_is_lost() {
    let Some(w) = start(&[("webmail", "max_attachment_size = \"100K\"")]) else {
        return;
    };
    let s = w.login("u@example.test", "secret");
    let page = w.get("/compose", Some(&s));
    assert!(
        page.body.contains("data-limit=\"102400\""),
        "the limit, before upload"
    );
    let base = fields_of(&page.body);
    // An address list that does not parse: saved, not sent, all kept.
    let mut f = base.clone();
    set(&mut f, "to", "bob@example.test, not an address");
    set(&mut f, "subject", "主题 kept");
    set(&mut f, "body", "正文 kept");
    set(&mut f, "action", "send");
    let r = post_compose(&w, &s, &as_refs(&f), &[]);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("not an address"), "the bad piece is named");
    assert_eq!(input(&r.body, "subject").as_deref(), Some("主题 kept"));
    assert_eq!(textarea(&r.body, "body"), "正文 kept");
    assert_eq!(
        input(&r.body, "to").as_deref(),
        Some("bob@example.test, not an address")
    );
    let draft = input(&r.body, "draft").unwrap();
    assert!(!draft.is_empty(), "saved in Drafts");
    // An upload above the limit: refused, the text and draft kept.
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![7u8; 150 * 1024]).unwrap();
    let mut f = fields_of(&r.body);
    set(&mut f, "to", "bob@example.test");
    set(&mut f, "action", "attach");
    let big_path = big.display().to_string();
    let r = post_compose(&w, &s, &as_refs(&f), &[(&big_path, "big.bin")]);
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(
        r.body.contains("100.0 KB") || r.body.contains("100 KB"),
        "{}",
        r.body
    );
    assert!(!r.body.contains(">big.bin<"));
    assert_eq!(textarea(&r.body, "body"), "正文 kept");
    // Evil names: control characters and dots.
    let small = dir.path().join("s.txt");
    std::fs::write(&small, "x").unwrap();
    let small_path = small.display().to_string();
    let mut f = fields_of(&r.body);
    set(&mut f, "action", "attach");
    let r = post_compose(
        &w,
        &s,
        &as_refs(&f),
        &[(&small_path, "..\\..\\win.ini"), (&small_path, "..")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let loc = r.header("location").unwrap().to_string();
    let p = w.get(&loc[loc.find("/compose").unwrap()..], Some(&s));
    assert!(p.body.contains(">win.ini<"), "{}", p.body);
    assert!(p.body.contains(">attachment<"), "{}", p.body);
    // Removed before sending: the ticked one goes, the other stays.
    let mut f = fields_of(&p.body);
    f.push(("remove".into(), "1".into()));
    set(&mut f, "action", "remove");
    let r = post_compose(&w, &s, &as_refs(&f), &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    let loc = r.header("location").unwrap().to_string();
    let p = w.get(&loc[loc.find("/compose").unwrap()..], Some(&s));
    assert!(p.body.contains(">win.ini<"), "{}", p.body);
    assert!(!p.body.contains(">attachment<"), "{}", p.body);
    // A recipient the server refuses: its text shown, nothing sent.
    let mut f = fields_of(&p.body);
    set(&mut f, "to", "bob@example.test, nobody@example.test");
    set(&mut f, "action", "send");
    let r = post_compose(&w, &s, &as_refs(&f), &[]);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("&lt;nobody@example.test&gt;: 5"),
        "{}",
        r.body
    );
    assert_eq!(textarea(&r.body, "body"), "正文 kept");
    // The draft deleted in another session.
    let draft = input(&r.body, "draft").unwrap();
    run_py(
        &w,
        &format!(
            "{PY_HEAD}\nm = imap('u@example.test')\nm.select('Drafts')\n\
             m.uid('STORE', sys.argv[4], '+FLAGS', '(\\\\Deleted)')\nm.expunge()\n"
        ),
        &[&draft],
    );
    let mut f = fields_of(&r.body);
    set(&mut f, "subject", "typed after");
    set(&mut f, "action", "save");
    let r = post_compose(&w, &s, &as_refs(&f), &[]);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("compose-error"));
    assert_eq!(input(&r.body, "subject").as_deref(), Some("typed after"));
    assert_eq!(textarea(&r.body, "body"), "正文 kept");
    assert_eq!(input(&r.body, "draft").as_deref(), Some(""));
    let _ = enc;
}

#[test]
fn reply_all_forward_as_attachment_and_read_receipts() {
    let Some(w) = start(&[]) else { return };
    // A message to u from bob, copied to carol, asking for a receipt.
    let original: &[u8] = b"From: =?GB2312?B?sauyqg==?= <bob@example.test>\r\n\
To: u@example.test\r\n\
Cc: carol@example.test, U@example.test\r\n\
Subject: =?GB2312?B?yM7O8cfltaU=?=\r\n\
Message-ID: <orig-1@example.test>\r\n\
Date: Sat, 05 Dec 2026 03:00:00 +0000\r\n\
Disposition-Notification-To: bob@example.test\r\n\
Content-Type: text/plain; charset=GB2312\r\n\
\r\n\
\xd6\xd0\xce\xc4\xd5\xfd\xce\xc4\r\n";
    let dir = tempfile::tempdir().unwrap();
    let orig_path = dir.path().join("orig.eml");
    std::fs::write(&orig_path, original).unwrap();
    let out = run_py(
        &w,
        &format!(
            "{PY_HEAD}\nm = imap('u@example.test')\n\
             typ, d = m.append('INBOX', None, None, open(sys.argv[4], 'rb').read())\n\
             print(re.search(rb'APPENDUID \\d+ (\\d+)', d[0]).group(1).decode())\n"
        ),
        &[&orig_path.display().to_string()],
    );
    let uid = out.trim().to_string();
    let s = w.login("u@example.test", "secret");
    // The read page offers the receipt, reply and forward.
    let read = w.get(&format!("/read?folder=INBOX&uid={uid}"), Some(&s));
    assert_eq!(read.status, 200, "{}", read.body);
    assert!(read.body.contains("id=\"send-receipt\""), "{}", read.body);
    assert!(read.body.contains("id=\"reply-all\""));
    let r = w.post(
        "/read/receipt",
        Some(&s),
        &[("csrf", &read.csrf()), ("folder", "INBOX"), ("uid", &uid)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let read = w.get(&format!("/read?folder=INBOX&uid={uid}"), Some(&s));
    assert!(!read.body.contains("id=\"send-receipt\""), "offered once");
    // Reply to all: bob and carol, not u.
    let page = w.get(
        &format!("/compose?folder=INBOX&reply={uid}&all=1"),
        Some(&s),
    );
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        input(&page.body, "to").as_deref(),
        Some("鲍勃 <bob@example.test>")
    );
    assert_eq!(
        input(&page.body, "cc").as_deref(),
        Some("carol@example.test")
    );
    assert!(textarea(&page.body, "body").contains("> 中文正文"));
    let mut f = fields_of(&page.body);
    let body = format!("Agreed.{}", textarea(&page.body, "body"));
    set(&mut f, "body", &body);
    set(&mut f, "action", "send");
    let r = post_compose(&w, &s, &as_refs(&f), &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    // Forward as attachment to carol. kmp-imapd has URLAUTH and CATENATE
    // and kmp-smtpd BURL: the original stays on the server. The draft
    // names it and does not hold it.
    let page = w.get(
        &format!("/compose?folder=INBOX&forward={uid}&as=attachment"),
        Some(&s),
    );
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("任务清单.eml<"), "{}", page.body);
    let mut f = fields_of(&page.body);
    set(&mut f, "to", "carol@example.test");
    set(&mut f, "action", "save");
    let r = post_compose(&w, &s, &as_refs(&f), &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    let out = run_py(
        &w,
        &format!(
            "{PY_HEAD}\nm = imap('u@example.test')\nm.select('Drafts')\n\
             typ, d = m.uid('SEARCH', None, 'ALL')\n\
             raw, _ = fetch(m, d[0].split()[-1])\n\
             assert b'X-Kmp-Webmail-Attached-Message' in raw, raw\n\
             assert '中文正文'.encode('gb2312') not in raw, raw\nprint('ok')\n"
        ),
        &[],
    );
    assert_eq!(out.trim(), "ok");
    let loc = r.header("location").unwrap().to_string();
    let page = w.get(&loc[loc.find("/compose").unwrap()..], Some(&s));
    assert!(page.body.contains("任务清单.eml<"), "{}", page.body);
    let mut f = fields_of(&page.body);
    set(&mut f, "action", "send");
    let r = post_compose(&w, &s, &as_refs(&f), &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    let script = format!(
        r#"{PY_HEAD}
orig = open(sys.argv[4], "rb").read()
uid = sys.argv[5]
# bob: the receipt and the reply.
m, uids = wait_inbox("bob@example.test", 2)
kinds = {{}}
for u in uids:
    raw, _ = fetch(m, u)
    msg = parse(raw)
    kinds[msg.get_content_type()] = msg
mdn = kinds["multipart/report"]
assert mdn.get_param("report-type") == "disposition-notification"
parts = list(mdn.iter_parts())
assert parts[1].get_content_type() == "message/disposition-notification"
assert "Original-Message-ID: <orig-1@example.test>" in parts[1].as_string() or b"orig-1@example.test" in parts[1].as_bytes()
reply = kinds["text/plain"]
assert reply["In-Reply-To"] == "<orig-1@example.test>", reply["In-Reply-To"]
assert "<orig-1@example.test>" in reply["References"]
assert reply["Subject"] == "Re: 任务清单", reply["Subject"]
assert "u@example.test" not in (reply["Cc"] or "").lower() and "carol@example.test" in reply["Cc"]
assert "> 中文正文" in reply.get_content()
# carol: the reply (Cc) and the forward, whose attachment is the original.
m, uids = wait_inbox("carol@example.test", 2)
found = False
for u in uids:
    raw, _ = fetch(m, u)
    msg = parse(raw)
    if msg.get_content_type() == "multipart/mixed":
        att = [p for p in msg.iter_attachments()][0]
        assert att.get_content_type() == "message/rfc822"
        # The part's bytes as they are in the message.
        b = raw.split(b"Content-Type: message/rfc822", 1)[1]
        b = b.split(b"\r\n\r\n", 1)[1]
        assert b.startswith(orig), (b[:200], orig[:200])
        found = True
assert found
# The copy in Sent holds it too, put there by the IMAP server (CATENATE).
m = imap("u@example.test")
m.select("Sent")
typ, d = m.uid("SEARCH", None, "ALL")
raws = [fetch(m, u)[0] for u in d[0].split()]
assert any(orig in r for r in raws), raws
# The original is answered and forwarded.
m = imap("u@example.test")
m.select("INBOX")
typ, d = m.uid("FETCH", uid, "(FLAGS)")
flags = d[0].decode()
assert "\\Answered" in flags and "$Forwarded" in flags and "$MDNSent" in flags, flags
print("ok")
"#
    );
    let log = std::fs::read_to_string(w.inst.path().join("log/webmail.log")).unwrap_or_default();
    assert!(
        log.contains("nrcpt=1, burl=yes"),
        "the forward went by BURL: {log}"
    );
    let out = run_py(&w, &script, &[&orig_path.display().to_string(), &uid]);
    assert_eq!(out.trim(), "ok");
}

#[test]
fn a_message_over_the_servers_size_limit_shows_its_reply_and_keeps_the_files() {
    let Some(w) = start(&[
        ("smtpd", "max_message_size = \"20K\""),
        ("webmail", "max_attachment_size = \"100K\""),
    ]) else {
        return;
    };
    let s = w.login("u@example.test", "secret");
    let page = w.get("/compose", Some(&s));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.bin");
    std::fs::write(&file, vec![1u8; 30 * 1024]).unwrap();
    let path = file.display().to_string();
    let mut f = fields_of(&page.body);
    set(&mut f, "to", "bob@example.test");
    set(&mut f, "subject", "too big for the server");
    set(&mut f, "action", "send");
    let r = post_compose(&w, &s, &as_refs(&f), &[(&path, "大文件.bin")]);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("552"), "the server's reply: {}", r.body);
    assert!(
        r.body.contains(">大文件.bin<"),
        "the file is kept: {}",
        r.body
    );
    assert_eq!(
        input(&r.body, "subject").as_deref(),
        Some("too big for the server")
    );
}

#[test]
fn mail_is_submitted_over_starttls_and_implicit_tls_with_the_certificate_checked() {
    let Some(w) = start(&[]) else { return };
    let s = w.login("u@example.test", "secret");
    let cert = w.inst.path().join("tls/cert.pem");
    set_webmail(
        &w,
        "imap_ca_file",
        &format!("{:?}", cert.display().to_string()),
    );
    let send = |subject: &str| {
        let page = w.get("/compose", Some(&s));
        let mut f = fields_of(&page.body);
        set(&mut f, "to", "bob@example.test");
        set(&mut f, "subject", subject);
        set(&mut f, "action", "send");
        post_compose(&w, &s, &as_refs(&f), &[])
    };
    set_webmail(&w, "submission_security", "\"starttls\"");
    let r = send("over starttls");
    assert_eq!(r.status, 303, "{}", r.body);
    set_webmail(&w, "submission_security", "\"tls\"");
    set_webmail(
        &w,
        "submission",
        &format!("\"127.0.0.1:{}\"", w.inst.base + 465),
    );
    let r = send("over tls");
    assert_eq!(r.status, 303, "{}", r.body);
    // Authorities that did not sign the server's certificate: refused,
    // nothing sent, the text kept.
    let system = "/etc/ssl/certs/ca-certificates.crt";
    if std::path::Path::new(system).is_file() {
        set_webmail(&w, "imap_ca_file", &format!("{system:?}"));
        let r = send("never sent");
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.contains("compose-error"), "{}", r.body);
        assert_eq!(input(&r.body, "subject").as_deref(), Some("never sent"));
    }
    let out = run_py(
        &w,
        &format!(
            "{PY_HEAD}\nm, uids = wait_inbox('bob@example.test', 2)\n\
             subs = sorted(parse(fetch(m, u)[0])['Subject'] for u in uids)\n\
             assert subs == ['over starttls', 'over tls'], subs\nprint('ok')\n"
        ),
        &[],
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn forwarding_from_a_chinese_folder_by_reference_and_replying_to_big5_and_hz() {
    let Some(w) = start(&[]) else { return };
    // Big5 and HZ-GB-2312 (RFC 1842) messages in a folder named 工作.客戶 (the delimiter is a dot).
    let big5: &[u8] = b"From: a@example.test\r\nTo: u@example.test\r\n\
Subject: =?Big5?B?t3zEsw==?=\r\nMessage-ID: <big5@example.test>\r\n\
Content-Type: text/plain; charset=Big5\r\n\r\n\xa4\xa4\xa4\xe5\r\n";
    let hz: &[u8] = b"From: b@example.test\r\nTo: u@example.test\r\n\
Subject: =?HZ-GB-2312?B?fns7YVJpfn0=?=\r\nMessage-ID: <hz@example.test>\r\n\
Content-Type: text/plain; charset=HZ-GB-2312\r\n\r\n~{VPND~}\r\n";
    let dir = tempfile::tempdir().unwrap();
    let (p1, p2) = (dir.path().join("1.eml"), dir.path().join("2.eml"));
    std::fs::write(&p1, big5).unwrap();
    std::fs::write(&p2, hz).unwrap();
    let folder = "工作.客戶";
    let out = run_py(
        &w,
        &format!(
            "{PY_HEAD}\nimport base64\n{}\nm = imap('u@example.test')\n\
             assert m.create(quoted('工作'))[0] == 'OK'\n\
             assert m.create(quoted(sys.argv[6]))[0] == 'OK'\n\
             for p in sys.argv[4:6]:\n\
             \x20   typ, d = m.append(quoted(sys.argv[6]), None, None, open(p, 'rb').read())\n\
             \x20   print(re.search(rb'APPENDUID \\d+ (\\d+)', d[0]).group(1).decode())\n",
            common::webmail::PY_MUTF7
        ),
        &[&p1.display().to_string(), &p2.display().to_string(), folder],
    );
    let uids: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(uids.len(), 2, "{out}");
    let s = w.login("u@example.test", "secret");
    let q = |uid: &str, what: &str| format!("/compose?folder={}&{what}={uid}", enc(folder));
    // Replies quote the text decoded.
    let page = w.get(&q(uids[0], "reply"), Some(&s));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        textarea(&page.body, "body").contains("> 中文"),
        "{}",
        page.body
    );
    assert_eq!(input(&page.body, "subject").as_deref(), Some("Re: 會議"));
    let page = w.get(&q(uids[1], "reply"), Some(&s));
    assert!(
        textarea(&page.body, "body").contains("> 中文"),
        "{}",
        page.body
    );
    assert_eq!(input(&page.body, "subject").as_deref(), Some("Re: 会议"));
    // Forward the Big5 one as attachment, by reference from 工作.客戶.
    let page = w.get(
        &format!("{}&as=attachment", q(uids[0], "forward")),
        Some(&s),
    );
    let mut f = fields_of(&page.body);
    set(&mut f, "to", "carol@example.test");
    set(&mut f, "action", "send");
    let r = post_compose(&w, &s, &as_refs(&f), &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    let log = std::fs::read_to_string(w.inst.path().join("log/webmail.log")).unwrap_or_default();
    assert!(log.contains("burl=yes"), "{log}");
    let out = run_py(
        &w,
        &format!(
            "{PY_HEAD}\nimport base64\n{}\norig = open(sys.argv[4], 'rb').read()\n\
             m, uids = wait_inbox('carol@example.test')\nraw, _ = fetch(m, uids[0])\n\
             part = raw.split(b'Content-Type: message/rfc822', 1)[1].split(b'\\r\\n\\r\\n', 1)[1]\n\
             assert part.startswith(orig), part[:200]\n\
             assert parse(raw)['Subject'] == 'Fwd: 會議', parse(raw)['Subject']\n\
             m = imap('u@example.test')\nm.select(quoted(sys.argv[5]))\n\
             typ, d = m.uid('FETCH', sys.argv[6], '(FLAGS)')\n\
             assert b'$Forwarded' in d[0], d\nprint('ok')\n",
            common::webmail::PY_MUTF7
        ),
        &[&p1.display().to_string(), folder, uids[0]],
    );
    assert_eq!(out.trim(), "ok");
}

/// tests/webmail_compose_browser.py in headless Chromium. With
/// `KMP_WEBMAIL_SHOTS=DIR` it also saves compose.png (doc/webmail/).
#[test]
fn a_browser_composes_attaches_saves_reopens_sends_replies_and_forwards() {
    let Some(py) = common::webmail::browser_python() else {
        return;
    };
    let Some(w) = start(&[("webmail", "max_attachment_size = \"200K\"")]) else {
        return;
    };
    let root = env!("CARGO_MANIFEST_DIR");
    let mut cmd = std::process::Command::new(py);
    cmd.arg(format!("{root}/tests/webmail_compose_browser.py"))
        .arg(w.url(""))
        .arg((w.inst.base + 143).to_string())
        .arg((w.inst.base + 110).to_string())
        .arg((200 * 1024).to_string());
    let shots = std::env::var("KMP_WEBMAIL_SHOTS").unwrap_or_default();
    if !shots.is_empty() {
        cmd.arg(&shots);
    }
    let home = tempfile::tempdir().unwrap();
    cmd.env("HOME", home.path());
    let out = cmd.output().expect("run the browser driver");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ok"),
        "browser test failed:\n{stdout}\n{}\nlighttpd: {}\nsmtpd: {}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(w.inst.path().join("log/lighttpd-error.log")).unwrap_or_default(),
        w.inst.log("kmp-smtpd"),
    );
}

#[test]
fn signatures_name_and_sent_choice_come_from_the_settings() {
    let Some(w) = start(&[]) else { return };
    let s = w.login("u@example.test", "secret");
    let settings = w.get("/settings", Some(&s));
    assert_eq!(settings.status, 200, "{}", settings.body);
    assert!(settings.body.contains("id=\"compose-settings\""));
    // A control character in a signature's name: refused, nothing kept.
    let r = w.post(
        "/settings/compose",
        Some(&s),
        &[
            ("csrf", &settings.csrf()),
            ("sig_name_0", "a\u{7}b"),
            ("sig_text_0", "x"),
        ],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = w.post(
        "/settings/compose",
        Some(&s),
        &[
            ("csrf", &settings.csrf()),
            ("from_name", "张三"),
            ("sig_name_0", "Work"),
            ("sig_text_0", "Zhang San\r\nACME Ltd."),
            ("sig_name_1", "短"),
            ("sig_text_1", "— 三"),
            ("default_sig", "0"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let settings = w.get("/settings", Some(&s));
    assert!(
        settings.body.contains("Zhang San\nACME Ltd."),
        "{}",
        settings.body
    );
    assert!(
        !settings
            .body
            .contains("id=\"save_sent\" name=\"save_sent\" value=\"1\" checked"),
        "Sent copies turned off"
    );
    let page = w.get("/compose", Some(&s));
    assert!(
        page.body.contains("张三 &lt;u@example.test&gt;"),
        "the identity"
    );
    assert_eq!(
        textarea(&page.body, "body"),
        "\n-- \nZhang San\nACME Ltd.\n"
    );
    assert!(!page
        .body
        .contains("id=\"save_sent\" name=\"save_sent\" value=\"1\" checked"));
    // Another signature chosen without the script: the server swaps it.
    let mut f = fields_of(&page.body);
    set(&mut f, "to", "bob@example.test");
    set(&mut f, "subject", "signed");
    set(
        &mut f,
        "body",
        &format!("Hello{}", textarea(&page.body, "body")),
    );
    set(&mut f, "sig", "1");
    set(&mut f, "action", "send");
    let r = post_compose(&w, &s, &as_refs(&f), &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    let out = run_py(
        &w,
        &format!(
            r#"{PY_HEAD}
m, uids = wait_inbox("bob@example.test")
raw, _ = fetch(m, uids[0])
msg = parse(raw)
assert msg["From"].addresses[0].display_name == "张三", msg["From"]
assert msg["From"].addresses[0].addr_spec == "u@example.test"
assert msg.get_content().replace("\r\n", "\n") == "Hello\n-- \n— 三\n", repr(msg.get_content())
m = imap("u@example.test")
m.select("Sent")
typ, d = m.uid("SEARCH", None, "ALL")
assert d[0].split() == [], "no copy in Sent"
print("ok")
"#
        ),
        &[],
    );
    assert_eq!(out.trim(), "ok");
}
