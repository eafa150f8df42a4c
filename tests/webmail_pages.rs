//! kmp-webmail's mail pages black-box: the message list, reading, parts
//! and source, actions on ticked messages, search and quota, through the
//! lighttpd `kmpctl init` configured, against a real kmp-imapd, with curl
//! as the browser and Python's imaplib to put mail in and look behind the
//! pages. The messages are the decoding corpus of tests/data/mail/.

mod common;

use common::webmail::{webmail_instance, Http, Webmail, PY_MUTF7};
use common::{python, tool};

/// The corpus messages delivered to INBOX, in this order: the nth has UID n.
const CORPUS: &[&str] = &[
    "gb2312.eml",
    "big5.eml",
    "hz.eml",
    "undeclared-gbk.eml",
    "related-cid.eml",
    "rfc2231-attachment.eml",
    "base64-attachment.eml",
    "rfc2047-names.eml",
    "alternative.eml",
    "gbk.eml",
    "utf7.eml",
    "wrong-charset.eml",
];

fn uid(file: &str) -> u32 {
    CORPUS.iter().position(|f| *f == file).unwrap() as u32 + 1
}

/// A corpus file with CRLF line ends, as it is stored.
fn corpus(file: &str) -> Vec<u8> {
    let raw = std::fs::read(format!(
        "{}/tests/data/mail/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
    for (i, b) in raw.iter().enumerate() {
        if *b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(*b);
    }
    out
}

const PY_LOGIN: &str = r#"
import imaplib, sys, base64, os
c = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
c.login('u@example.test', 'secret')
"#;

/// Runs Python `code` with `c` logged in to the instance's IMAP as u; its
/// standard output. Extra arguments follow the port in sys.argv.
fn imap_py(w: &Webmail, code: &str, args: &[&str]) -> String {
    let port = (w.inst.base + 143).to_string();
    let mut all = vec![port.as_str()];
    all.extend_from_slice(args);
    let out = python(&format!("{PY_MUTF7}{PY_LOGIN}{code}\nc.logout()\n"), &all);
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Appends files (CRLF) to `folder`.
fn deliver(w: &Webmail, folder: &str, files: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let p = dir.path().join(format!("{i:03}.eml"));
        std::fs::write(&p, corpus(f)).unwrap();
        paths.push(p.to_string_lossy().to_string());
    }
    let mut args = vec![folder];
    args.extend(paths.iter().map(String::as_str));
    let out = imap_py(
        w,
        r#"
folder = sys.argv[2]
if folder != 'INBOX':
    c.create(quoted(folder))
for p in sys.argv[3:]:
    typ, data = c.append(quoted(folder), None, None, open(p, 'rb').read())
    assert typ == 'OK', data
print('ok')
"#,
        &args,
    );
    assert!(out.contains("ok"), "{out}");
}

/// Appends `n` small ASCII messages to INBOX.
fn deliver_small(w: &Webmail, n: usize) {
    let out = imap_py(
        w,
        r#"
for i in range(int(sys.argv[2])):
    m = ('From: a%d@example.test\r\nSubject: note %d\r\nDate: Sat, 05 Dec 2026 09:%02d:00 +0000\r\n\r\nbody %d\r\n' % (i, i, i, i)).encode()
    assert c.append('INBOX', None, None, m)[0] == 'OK'
print('ok')
"#,
        &[&n.to_string()],
    );
    assert!(out.contains("ok"));
}

/// The FLAGS of a UID of a folder, as imaplib prints them.
fn flags(w: &Webmail, folder: &str, uid: u32) -> String {
    imap_py(
        w,
        r#"
c.select(quoted(sys.argv[2]))
print(c.uid('FETCH', sys.argv[3], '(FLAGS)')[1])
"#,
        &[folder, &uid.to_string()],
    )
}

/// The UIDs of a folder.
fn uids(w: &Webmail, folder: &str) -> Vec<u32> {
    let out = imap_py(
        w,
        r#"
c.select(quoted(sys.argv[2]))
print(c.uid('SEARCH', 'ALL')[1][0].decode())
"#,
        &[folder],
    );
    out.split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The data-uid values of a list page's rows, in order.
fn rows(page: &Http) -> Vec<u32> {
    page.body
        .match_indices("<tr class=\"msg")
        .filter_map(|(at, _)| {
            let rest = &page.body[at..];
            let d = rest.find("data-uid=\"")? + 10;
            rest[d..d + rest[d..].find('"')?].parse().ok()
        })
        .collect()
}

/// The row of `uid` on a list page.
fn row_of(page: &Http, uid: u32) -> String {
    let at = page
        .body
        .find(&format!("data-uid=\"{uid}\""))
        .unwrap_or_else(|| panic!("no row {uid}"));
    let start = page.body[..at].rfind("<tr").unwrap();
    let rest = &page.body[start..];
    rest[..rest.find("</tr>").unwrap()].to_string()
}

/// GET with the session, body kept as bytes.
fn download(w: &Webmail, path: &str, session: &str) -> (Http, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let (head, body) = (dir.path().join("h"), dir.path().join("b"));
    let out = tool("curl")
        .args(["-s", "--max-time", "60", "-D"])
        .arg(&head)
        .arg("-o")
        .arg(&body)
        .args(["-H", &format!("Cookie: kmpw={session}")])
        .arg(w.url(path))
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut h = common::webmail::parse_http(&std::fs::read(&head).unwrap());
    let b = std::fs::read(&body).unwrap_or_default();
    h.body = String::from_utf8_lossy(&b).to_string();
    (h, b)
}

fn set_page_size(w: &Webmail, s: &str, n: &str, tz: &str) {
    let csrf = w.get("/settings", Some(s)).csrf();
    let r = w.post(
        "/settings",
        Some(s),
        &[
            ("csrf", &csrf),
            ("page_size", n),
            ("lang", "en"),
            ("skin", "default"),
            ("tz", tz),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
}

#[test]
fn the_list_sorts_pages_and_marks_with_decoded_chinese() {
    let Some(w) = webmail_instance() else { return };
    deliver(&w, "INBOX", CORPUS);
    imap_py(
        &w,
        "c.select('INBOX')\nc.uid('STORE', sys.argv[2], '+FLAGS', '(\\\\Flagged \\\\Answered)')",
        &[&uid("gb2312.eml").to_string()],
    );
    let s = w.login("u@example.test", "secret");
    set_page_size(&w, &s, "10", "UTC");

    let p = w.get("/list?folder=INBOX", Some(&s));
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("12 messages"), "{}", p.body);
    assert_eq!(rows(&p).len(), 10, "a page of the user's size");
    assert!(p.body.contains("Page 1 of 2"));
    let p2 = w.get("/list?folder=INBOX&sort=date&rev=1&page=2", Some(&s));
    assert_eq!(rows(&p2).len(), 2);
    let mut all = rows(&p);
    all.extend(rows(&p2));
    all.sort_unstable();
    assert_eq!(all, (1..=12).collect::<Vec<u32>>(), "every message once");
    // A page past the end (messages went meanwhile) shows the last one.
    let past = w.get("/list?folder=INBOX&sort=date&rev=1&page=9", Some(&s));
    assert_eq!(rows(&past), rows(&p2), "{}", past.body);
    assert!(past.body.contains("Page 2 of 2"), "{}", past.body);

    // Decoded subjects and names, whatever page they are on.
    let both = format!("{}{}", p.body, p2.body);
    for text in [
        "会议通知",
        "张三",
        "會議通知",
        "陳大文",
        "汉字标题",
        "无字符集声明的邮件",
        "李四",
        "王五",
    ] {
        assert!(both.contains(text), "{text} not shown");
    }

    // Marks: flagged and answered, attachment, priority, unread.
    let all_pages = w.get("/list?folder=INBOX&sort=size&rev=0&page=1", Some(&s));
    let mut big = all_pages.clone();
    big.body.push_str(
        &w.get("/list?folder=INBOX&sort=size&rev=0&page=2", Some(&s))
            .body,
    );
    let r = row_of(&big, uid("gb2312.eml"));
    assert!(
        r.contains("flagged") && r.contains("mark flag") && r.contains("mark answered"),
        "{r}"
    );
    assert!(r.contains("unread"), "{r}");
    let r = row_of(&big, uid("base64-attachment.eml"));
    assert!(r.contains("mark attachment"), "{r}");
    let r = row_of(&big, uid("rfc2047-names.eml"));
    assert!(r.contains("prio-high"), "{r}");
    assert!(!row_of(&big, uid("hz.eml")).contains("mark attachment"));

    // The order is IMAP SORT's, both ways.
    for (key, rev) in [
        ("size", "0"),
        ("size", "1"),
        ("subject", "0"),
        ("from", "1"),
        ("date", "0"),
    ] {
        let want = imap_py(
            &w,
            r#"
c.select('INBOX')
prog = '(REVERSE %s)' % sys.argv[2].upper() if sys.argv[3] == '1' else '(%s)' % sys.argv[2].upper()
print(c.uid('SORT', prog, 'UTF-8', 'ALL')[1][0].decode())
"#,
            &[key, rev],
        );
        let want: Vec<u32> = want
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        let got = rows(&w.get(
            &format!("/list?folder=INBOX&sort={key}&rev={rev}"),
            Some(&s),
        ));
        assert_eq!(got, want[..10], "sort {key} rev {rev}");
    }
    // The active sort's link turns the direction round.
    let p = w.get("/list?folder=INBOX&sort=subject&rev=0", Some(&s));
    assert!(p.body.contains("sort=subject&amp;rev=1"), "{}", p.body);

    // Bad folders: a clear error, not a server failure.
    let bad = w.get("/list?folder=Nope", Some(&s));
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("There is no such folder."),
        "{}",
        bad.body
    );
    // A list GET changes nothing: still unread.
    assert!(!flags(&w, "INBOX", uid("hz.eml")).contains("\\Seen"));
}

#[test]
fn reading_every_charset_parts_source_and_bad_requests() {
    let Some(w) = webmail_instance() else { return };
    deliver(&w, "INBOX", CORPUS);
    let s = w.login("u@example.test", "secret");
    set_page_size(&w, &s, "10", "+08:00");
    let read = |f: &str| {
        let r = w.get(&format!("/read?folder=INBOX&uid={}", uid(f)), Some(&s));
        assert_eq!(r.status, 200, "{f}: {}", r.body);
        r
    };

    // Headers and text in each charset; the date in the user's zone.
    let g = read("gb2312.eml");
    for t in [
        "会议通知",
        "张三",
        "zhangsan@example.cn",
        "朱镕基和王堃参加了会议",
        "2026-12-05 09:30 (+08:00)",
    ] {
        assert!(g.body.contains(t), "gb2312: {t} in {}", g.body);
    }
    assert!(
        flags(&w, "INBOX", uid("gb2312.eml")).contains("\\Seen"),
        "opened is read"
    );
    assert!(read("big5.eml").body.contains("您好，這是一封繁體中文郵件"));
    assert!(read("hz.eml").body.contains("欢迎使用HZ编码"));
    let u = read("undeclared-gbk.eml");
    assert!(
        u.body.contains("您好，这是一封没有声明字符集的中文邮件"),
        "{}",
        u.body
    );
    assert!(u.body.contains("无字符集声明的邮件") && u.body.contains("李四"));
    assert!(read("wrong-charset.eml")
        .body
        .contains("這是一封標錯字符集的繁體中文郵件"));
    let n = read("rfc2047-names.eml");
    for t in ["王五", "赵六", "臺灣同事", "长标题的第一部分，第二部分"] {
        assert!(n.body.contains(t), "{t}");
    }

    // HTML: in a sandboxed frame without scripts, served with its own policy.
    let h = read("related-cid.eml");
    let at = h.body.find("<iframe").expect("a frame");
    let tag = &h.body[at..at + h.body[at..].find('>').unwrap()];
    assert!(
        tag.contains("sandbox=\"") && !tag.contains("allow-scripts"),
        "{tag}"
    );
    assert!(
        h.body
            .contains("Remote images blocked to protect your privacy: 1."),
        "{}",
        h.body
    );
    let id = uid("related-cid.eml");
    let f = w.get(&format!("/frame?folder=INBOX&uid={id}"), Some(&s));
    assert_eq!(f.status, 200, "{}", f.body);
    let csp = f.header("content-security-policy").unwrap();
    assert!(
        csp.starts_with("default-src 'none'; img-src 'self' data:;"),
        "{csp}"
    );
    assert!(!csp.contains("script") && csp.contains("sandbox"), "{csp}");
    assert_eq!(f.header("x-frame-options"), Some("SAMEORIGIN"));
    assert!(f.body.contains("图片如下"), "{}", f.body);
    assert!(!f.body.to_ascii_lowercase().contains("<script"));
    let img = format!("/part?folder=INBOX&amp;uid={id}&amp;section=2.2");
    assert!(f.body.contains(&img), "cid image through /part: {}", f.body);
    let (ph, pb) = download(&w, &img.replace("&amp;", "&"), &s);
    assert_eq!(ph.status, 200);
    assert!(ph.header("content-type").unwrap().starts_with("image/"));
    assert!(ph
        .header("content-disposition")
        .unwrap()
        .starts_with("inline"));
    assert!(!pb.is_empty());
    let fr = w.get(&format!("/frame?folder=INBOX&uid={id}&images=1"), Some(&s));
    assert!(fr
        .header("content-security-policy")
        .unwrap()
        .contains("img-src 'self' data: https:;"));
    // The main page itself never holds the mail's HTML.
    assert!(!h.body.contains("图片如下"));

    // "Always for this sender" is kept in METADATA and used next time.
    let csrf = h.csrf();
    let t = w.post(
        "/read/images",
        Some(&s),
        &[
            ("csrf", &csrf),
            ("folder", "INBOX"),
            ("uid", &id.to_string()),
        ],
    );
    assert_eq!(t.status, 303, "{}", t.body);
    let again = read("related-cid.eml");
    assert!(again.body.contains("&amp;images=1\""), "{}", again.body);
    let meta = imap_py(
        &w,
        r#"
imaplib.Commands['GETMETADATA'] = ('AUTH', 'SELECTED')
print(c._simple_command('GETMETADATA', '""', '/private/vendor/kmpromail/webmail/remote-images'))
print(c.response('METADATA'))
"#,
        &[],
    );
    assert!(meta.contains("sender@example.cn"), "{meta}");

    // Attachments with their names, downloaded byte for byte.
    let a = read("rfc2231-attachment.eml");
    for name in [
        "季度销售报告（最终版）.pdf",
        "数据.xls",
        "合同草案.doc",
        "说明.txt",
    ] {
        assert!(a.body.contains(name), "{name} listed");
    }
    let (dh, db) = download(
        &w,
        &format!(
            "/part?folder=INBOX&uid={}&section=2&download=1",
            uid("rfc2231-attachment.eml")
        ),
        &s,
    );
    let cd = dh.header("content-disposition").unwrap();
    assert!(
        cd.starts_with("attachment") && cd.contains("filename*=UTF-8''"),
        "{cd}"
    );
    assert!(cd.contains("%E5%AD%A3%E5%BA%A6"), "{cd}");
    assert_eq!(db.len(), 293);
    let (_, bin) = download(
        &w,
        &format!(
            "/part?folder=INBOX&uid={}&section=2&download=1",
            uid("base64-attachment.eml")
        ),
        &s,
    );
    let want: Vec<u8> = (0..3000u32).map(|i| ((7 * i + 3) % 256) as u8).collect();
    assert_eq!(bin, want, "the attachment's bytes");

    // Source: the stored bytes, as plain text shown inline.
    let (sh, sb) = download(
        &w,
        &format!("/source?folder=INBOX&uid={}", uid("big5.eml")),
        &s,
    );
    assert_eq!(sb, corpus("big5.eml"));
    assert_eq!(sh.header("content-type"), Some("text/plain"));
    assert!(sh
        .header("content-disposition")
        .unwrap()
        .starts_with("inline"));

    // Next and previous in the list's order, with their places in it: from
    // the whole order, from the place the list gave (three UIDs asked for),
    // and from a place that is wrong (the whole order again).
    for at in ["", "&at=4", "&at=0", "&at=99999"] {
        let mid = w.get(
            &format!("/read?folder=INBOX&uid=5{at}&sort=arrival&rev=0"),
            Some(&s),
        );
        assert!(
            mid.body
                .contains("uid=4&amp;at=3&amp;sort=arrival&amp;rev=0\">‹"),
            "{at}: {}",
            mid.body
        );
        assert!(
            mid.body
                .contains("uid=6&amp;at=5&amp;sort=arrival&amp;rev=0\">Next"),
            "{at}: {}",
            mid.body
        );
    }

    // Bad requests: a clear error page, nothing changed.
    for (path, status, text) in [
        (
            "/read?folder=INBOX&uid=999",
            400,
            "There is no such message",
        ),
        (
            "/read?folder=INBOX&uid=abc",
            400,
            "There is no such message",
        ),
        ("/read?folder=Nope&uid=1", 400, "There is no such folder"),
        ("/part?folder=INBOX&uid=1&section=../1", 400, "no such part"),
        ("/part?folder=INBOX&uid=1&section=9", 400, "no such part"),
        (
            "/part?folder=INBOX&uid=77&section=1",
            400,
            "There is no such message",
        ),
        ("/frame?folder=INBOX&uid=1", 400, "no formatted"),
        (
            "/source?folder=INBOX&uid=0",
            400,
            "There is no such message",
        ),
    ] {
        let r = w.get(path, Some(&s));
        assert_eq!(r.status, status, "{path}: {}", r.body);
        assert!(r.body.contains(text), "{path}: {}", r.body);
    }
    // Without a session, nothing is served.
    let r = w.get(
        &format!(
            "/part?folder=INBOX&uid={}&section=2",
            uid("base64-attachment.eml")
        ),
        None,
    );
    assert_eq!(r.status, 303);
}

#[test]
fn ticked_messages_are_marked_moved_copied_and_deleted() {
    let Some(w) = webmail_instance() else { return };
    deliver_small(&w, 5);
    imap_py(&w, "c.create(quoted('工作'))", &[]);
    let s = w.login("u@example.test", "secret");
    let csrf = w.get("/list", Some(&s)).csrf();
    let act = |action: &str, ids: &[u32], extra: &[(&str, &str)]| {
        let ids: Vec<String> = ids.iter().map(u32::to_string).collect();
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("folder", "INBOX"),
            ("action", action),
        ];
        form.extend(ids.iter().map(|u| ("uid", u.as_str())));
        form.extend_from_slice(extra);
        w.post("/list/act", Some(&s), &form)
    };

    let r = act("flag", &[1, 2], &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.header("location").unwrap().contains("done=marked"));
    assert!(
        flags(&w, "INBOX", 1).contains("\\Flagged") && flags(&w, "INBOX", 2).contains("\\Flagged")
    );
    assert!(!flags(&w, "INBOX", 3).contains("\\Flagged"));
    act("seen", &[1, 3], &[]);
    assert!(flags(&w, "INBOX", 3).contains("\\Seen"));
    act("unseen", &[3], &[]);
    assert!(!flags(&w, "INBOX", 3).contains("\\Seen"));
    act("unflag", &[2], &[]);
    assert!(!flags(&w, "INBOX", 2).contains("\\Flagged"));

    let r = act("copy", &[3], &[("target", "工作")]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(uids(&w, "工作").len(), 1);
    assert_eq!(uids(&w, "INBOX").len(), 5);
    act("move", &[4], &[("target", "工作")]);
    assert_eq!(uids(&w, "工作").len(), 2);
    assert_eq!(uids(&w, "INBOX"), [1, 2, 3, 5]);
    let r = act("delete", &[1, 5], &[]);
    assert!(
        r.header("location").unwrap().contains("done=trashed"),
        "{:?}",
        r.headers
    );
    assert_eq!(uids(&w, "INBOX"), [2, 3]);
    assert_eq!(uids(&w, "Trash").len(), 2);
    let p = w.get(r.header("location").unwrap(), Some(&s));
    assert!(p.body.contains("The messages were moved to Trash."));

    // In Trash, delete is for good.
    let trash: Vec<String> = uids(&w, "Trash").iter().map(u32::to_string).collect();
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("folder", "Trash"),
        ("action", "delete"),
    ];
    form.extend(trash.iter().map(|u| ("uid", u.as_str())));
    let r = w.post("/list/act", Some(&s), &form);
    assert!(r.header("location").unwrap().contains("done=removed"));
    assert!(uids(&w, "Trash").is_empty());

    // Bad requests change nothing.
    for (action, ids, extra, status) in [
        ("evil", vec![2], vec![], 400),
        ("flag", vec![], vec![], 400),
        ("flag", vec![2, 999], vec![], 400),
        ("move", vec![2], vec![("target", "Nope")], 400),
        ("move", vec![2], vec![("target", "INBOX")], 400),
    ] {
        let r = act(action, &ids, &extra);
        assert_eq!(r.status, status, "{action} {ids:?}: {}", r.body);
        assert!(r.body.contains("Nothing was changed"), "{}", r.body);
    }
    assert!(!flags(&w, "INBOX", 2).contains("\\Flagged"));
    assert_eq!(uids(&w, "INBOX"), [2, 3]);
    let forged = w.post(
        "/list/act",
        Some(&s),
        &[("folder", "INBOX"), ("action", "delete"), ("uid", "2")],
    );
    assert_eq!(forged.status, 403);
    assert_eq!(uids(&w, "INBOX"), [2, 3]);
}

#[test]
fn search_finds_chinese_text_in_a_folder_and_across_folders() {
    let Some(w) = webmail_instance() else { return };
    deliver(&w, "INBOX", &["gb2312.eml", "big5.eml", "hz.eml"]);
    deliver(&w, "工作", &["gbk.eml"]);
    let s = w.login("u@example.test", "secret");
    let count = |p: &Http| p.body.matches("<tr class=\"msg").count();

    let form = w.get("/search", Some(&s));
    assert_eq!(form.status, 200);
    assert_eq!(count(&form), 0);
    let r = w.get("/search?subject=%E4%BC%9A%E8%AE%AE&in=INBOX", Some(&s));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(count(&r), 1, "{}", r.body);
    assert!(r.body.contains("会议通知"));
    // 镕 is in the GB2312 body (INBOX) and the GBK one (工作).
    let r = w.get("/search?body=%E9%95%95", Some(&s));
    assert_eq!(count(&r), 2, "{}", r.body);
    assert!(r.body.contains("data-folder=\"工作\"") && r.body.contains("data-folder=\"INBOX\""));
    let r = w.get("/search?body=%E9%95%95&in=%E5%B7%A5%E4%BD%9C", Some(&s));
    assert_eq!(count(&r), 1);
    let r = w.get("/search?from=zhangsan", Some(&s));
    assert_eq!(count(&r), 1);
    assert!(r.body.contains("会议通知"));
    let r = w.get("/search?from=%E9%99%B3%E5%A4%A7%E6%96%87", Some(&s));
    assert_eq!(count(&r), 1, "a Big5 name found: {}", r.body);
    let r = w.get("/search?since=2000-01-01", Some(&s));
    assert_eq!(count(&r), 4);
    let r = w.get("/search?until=2000-01-01", Some(&s));
    assert_eq!(count(&r), 0);
    assert!(r.body.contains("0 messages found"));
    let r = w.get("/search?since=2000-13-01", Some(&s));
    assert_eq!(r.status, 400);
    let r = w.get("/search?subject=x&in=Nope", Some(&s));
    assert_eq!(r.status, 400);
}

#[test]
fn the_quota_page_shows_use_per_folder() {
    let Some(w) = webmail_instance() else { return };
    w.inst.ctl_ok(&[
        "user",
        "quota",
        "u@example.test",
        "1M",
        "--quota-messages",
        "100",
    ]);
    deliver(&w, "INBOX", &["gb2312.eml", "big5.eml"]);
    deliver(&w, "工作", &["gbk.eml"]);
    imap_py(
        &w,
        "c.select('INBOX'); c.uid('STORE', '1', '+FLAGS', '(\\\\Seen)')",
        &[],
    );
    let s = w.login("u@example.test", "secret");
    let q = w.get("/quota", Some(&s));
    assert_eq!(q.status, 200, "{}", q.body);
    assert!(q.body.contains("data-resource=\"STORAGE\""), "{}", q.body);
    assert!(q.body.contains("of 1.0 MB used"), "{}", q.body);
    assert!(q.body.contains("data-resource=\"MESSAGE\""));
    assert!(q.body.contains("3 of 100 used"), "{}", q.body);
    assert!(q.body.contains("<meter"));
    assert!(!q.body.contains("<script"));
    let work = &q.body[q.body.find("data-folder=\"工作\"").unwrap()..];
    let work = &work[..work.find("</tr>").unwrap()];
    assert!(work.contains("class=\"num total\">1<"), "{work}");
    let size = corpus("gbk.eml").len();
    assert!(work.contains(&format!("data-bytes=\"{size}\"")), "{work}");
    let totals = &q.body[q.body.find("class=\"totals\"").unwrap()..];
    assert!(totals.contains("class=\"num total\">3<"), "{totals}");
    assert!(totals.contains("class=\"num unread\">2<"), "{totals}");
}
