//! The webmail's address book, black-box: the CGI under lighttpd against a
//! real kmp-imapd and kmp-authd, curl as the browser, files in Outlook's
//! own formats from tests/data/contacts/ (the Chinese Outlook's headings in
//! GBK, the English ones, vCard 3.0 and 4.0). Skipped with a message when
//! lighttpd is not installed.

mod common;

use common::python;
use common::webmail::{webmail_instance, Http, Webmail};
use std::path::{Path, PathBuf};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/contacts")
        .join(name)
}

/// Uploads `file` to the import form as a browser does.
fn import(w: &Webmail, s: &str, file: &Path) -> Http {
    let page = w.get("/contacts", Some(s));
    assert_eq!(page.status, 200, "{}", page.body);
    let cookie = format!("Cookie: kmpw={s}");
    let csrf = format!("csrf={}", page.csrf());
    let upload = format!("file=@{};type=text/csv", file.display());
    w.curl(&[
        "-H",
        &cookie,
        "-F",
        &csrf,
        "-F",
        &upload,
        &w.url("/contacts/import"),
    ])
}

/// GET a page, then POST `pairs` with its CSRF token.
fn post_from(w: &Webmail, s: &str, page: &str, path: &str, pairs: &[(&str, &str)]) -> Http {
    let p = w.get(page, Some(s));
    let csrf = p.csrf();
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(pairs);
    w.post(path, Some(s), &all)
}

/// The names in the list, in the page's order.
fn names(page: &Http) -> Vec<String> {
    page.body
        .split("<td class=\"name\">")
        .skip(1)
        .map(|cell| {
            let cell = &cell[..cell.find("</td>").unwrap()];
            strip_tags(cell)
        })
        .collect()
}

/// The id of the row of `name`.
fn id_of(page: &Http, name: &str) -> String {
    for row in page.body.split("<tr class=\"contact\" data-id=\"").skip(1) {
        let id = &row[..row.find('"').unwrap()];
        let end = row.find("</tr>").unwrap();
        if names_in(&row[..end]).contains(&name.to_string()) {
            return id.to_string();
        }
    }
    panic!("no row of {name} in\n{}", page.body)
}

fn names_in(row: &str) -> Vec<String> {
    row.split("<td class=\"name\">")
        .skip(1)
        .map(|c| strip_tags(&c[..c.find("</td>").unwrap()]))
        .collect()
}

fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in s.chars() {
        match c {
            '<' => inside = true,
            '>' => inside = false,
            c if !inside => out.push(c),
            _ => {}
        }
    }
    out.trim().to_string()
}

/// Downloads an export: the headers, and the body's bytes.
fn export(w: &Webmail, s: &str, query: &str, to: &Path) -> (Http, Vec<u8>) {
    let cookie = format!("Cookie: kmpw={s}");
    let heads = to.with_extension("headers");
    let out = common::tool("curl")
        .args(["-s", "--max-time", "60", "-H", &cookie, "-D"])
        .arg(&heads)
        .arg("-o")
        .arg(to)
        .arg(w.url(&format!("/contacts/export?{query}")))
        .output()
        .expect("run curl");
    assert!(out.status.success());
    let head = common::webmail::parse_http(&std::fs::read(&heads).unwrap());
    assert_eq!(head.status, 200, "{query}");
    (head, std::fs::read(to).unwrap())
}

fn add_user(w: &Webmail, addr: &str) {
    let out = w.inst.ctl_stdin(
        &["user", "add", addr, "--password-stdin"],
        Some(b"secret\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The user's contact entries as any IMAP client sees them.
fn stored_entries(w: &Webmail, user: &str) -> String {
    let script = r#"
import imaplib, sys
imaplib.Commands['GETMETADATA'] = ('AUTH', 'SELECTED')
c = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
c.login(sys.argv[2], 'secret')
typ, data = c._simple_command('GETMETADATA', '(DEPTH 1)', '""', '/private/vendor/kmpromail/contacts')
typ, data = c._untagged_response(typ, data, 'METADATA')
for d in data:
    if isinstance(d, tuple):
        print(d[0].decode('utf-8', 'replace'), d[1].decode('utf-8', 'replace'))
    elif d:
        print(d.decode('utf-8', 'replace'))
c.logout()
"#;
    let out = python(script, &[&(w.inst.base + 143).to_string(), user]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn outlook_gbk_import_groups_export_and_reimport() {
    let Some(w) = webmail_instance() else { return };
    let s = w.login("u@example.test", "secret");
    let r = import(&w, &s, &data("outlook-zh-gbk.csv"));
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.header("location").unwrap().contains("done=imported&n=6"));
    let page = w.get("/contacts?n=6&skipped=0&done=imported", Some(&s));
    assert_eq!(page.status, 200);
    // By reading (chen, li, ouyang, wang, zhang); a traditional form
    // outside GB2312 (黃) after them.
    assert_eq!(
        names(&page),
        ["陈小明", "李四", "欧阳娜娜", "王五", "张三", "黃大仙"]
    );
    assert!(page.body.contains("zhangsan@example.cn"));
    assert!(page.body.contains("北京某某科技有限公司"));
    assert!(page.body.contains("6 contacts imported"), "{}", page.body);
    // The groups of the file's Categories.
    assert!(page.body.contains(">同事 <span class=\"count\">2</span>"));
    // Search, in Chinese and by address.
    let found = w.get(
        &format!("/contacts?q={}", common::webmail::enc("张")),
        Some(&s),
    );
    assert_eq!(names(&found), ["张三"]);
    let found = w.get("/contacts?q=LISI@", Some(&s));
    assert_eq!(names(&found), ["李四"]);
    // The same file again adds nothing.
    let again = import(&w, &s, &data("outlook-zh-utf8-bom.csv"));
    assert!(again.header("location").unwrap().contains("n=0&skipped=6"));

    // A group, and three contacts put into it at once.
    let r = post_from(
        &w,
        &s,
        "/contacts",
        "/contacts/groups",
        &[("do", "create"), ("name", "项目组")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let page = w.get("/contacts", Some(&s));
    let ids: Vec<String> = ["张三", "王五", "黃大仙"]
        .iter()
        .map(|n| id_of(&page, n))
        .collect();
    let mut form = vec![("do", "add"), ("group", "项目组")];
    form.extend(ids.iter().map(|i| ("id", i.as_str())));
    let r = post_from(&w, &s, "/contacts", "/contacts/act", &form);
    assert_eq!(r.status, 303, "{}", r.body);
    let g = w.get(
        &format!("/contacts?group={}", common::webmail::enc("项目组")),
        Some(&s),
    );
    assert_eq!(names(&g), ["王五", "张三", "黃大仙"]);
    // "Write to this group" carries every member.
    assert!(g.body.contains("write-group"), "{}", g.body);
    // Rename it; the members follow.
    let r = post_from(
        &w,
        &s,
        "/contacts",
        "/contacts/groups",
        &[("do", "rename"), ("name", "项目组"), ("new_name", "专项组")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let g = w.get(
        &format!("/contacts?group={}", common::webmail::enc("专项组")),
        Some(&s),
    );
    assert_eq!(names(&g).len(), 3);
    // Kept in the user's store, readable by any IMAP client.
    let stored = stored_entries(&w, "u@example.test");
    assert!(stored.contains("专项组"), "{stored}");
    assert!(stored.contains("FN:张三"), "{stored}");

    // Export in each format and import into another user's empty book:
    // the same contacts come back.
    add_user(&w, "v@example.test");
    let v = w.login("v@example.test", "secret");
    let dir = tempfile::tempdir().unwrap();
    let (head, zh) = export(&w, &s, "format=csv-zh", &dir.path().join("zh.csv"));
    assert!(head.header("content-type").unwrap().contains("gbk"));
    let (text, _, bad) = encoding_rs::GBK.decode(&zh);
    assert!(!bad);
    assert!(text.starts_with("\"英文称谓\",\"名\",\"中间名\",\"姓\""));
    assert!(std::str::from_utf8(&zh).is_err(), "GBK bytes");
    let r = import(&w, &v, &dir.path().join("zh.csv"));
    assert!(r.header("location").unwrap().contains("n=6"), "{r:?}");
    let (_, vcf_u) = export(&w, &s, "format=vcf", &dir.path().join("u.vcf"));
    let (_, vcf_v) = export(&w, &v, "format=vcf", &dir.path().join("v.vcf"));
    assert_eq!(without_uids(&vcf_u), without_uids(&vcf_v));
    assert!(String::from_utf8_lossy(&vcf_u).contains("CATEGORIES:"));
    // English CSV and vCard 3.0 round trips into a third user.
    add_user(&w, "x@example.test");
    let x = w.login("x@example.test", "secret");
    let (_, _) = export(&w, &s, "format=csv", &dir.path().join("en.csv"));
    let r = import(&w, &x, &dir.path().join("en.csv"));
    assert!(r.header("location").unwrap().contains("n=6"), "{r:?}");
    let (_, vcf_x) = export(&w, &x, "format=vcf", &dir.path().join("x.vcf"));
    assert_eq!(without_uids(&vcf_u), without_uids(&vcf_x));
    let (_, v3) = export(&w, &s, "format=vcf3", &dir.path().join("u3.vcf"));
    assert!(String::from_utf8_lossy(&v3).contains("VERSION:3.0"));
}

/// The cards with their UID lines left out (ids are per book).
fn without_uids(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .split("\r\n")
        .filter(|l| !l.starts_with("UID:"))
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[test]
fn bad_files_are_refused_with_a_message_and_nothing_is_lost() {
    let Some(w) = webmail_instance() else { return };
    let s = w.login("u@example.test", "secret");
    let r = import(&w, &s, &data("outlook-en.csv"));
    assert_eq!(r.status, 303, "{}", r.body);
    let r = import(&w, &s, &data("contacts.vcf"));
    assert!(r.header("location").unwrap().contains("n=2"), "{r:?}");
    let before = names(&w.get("/contacts", Some(&s)));
    assert_eq!(
        before,
        ["Ann Lee", "John Q. Public", "Maria García", "张三", "赵六"]
    );
    for (file, says) in [
        ("broken-quoting.csv", "quote that is never closed"),
        ("unknown-encoding.csv", "encoding is not UTF-8"),
        ("no-email.vcf", "no EMAIL"),
    ] {
        let r = import(&w, &s, &data(file));
        assert_eq!(r.status, 400, "{file}: {}", r.body);
        assert!(r.body.contains("id=\"contacts-error\""), "{file}");
        assert!(r.body.contains(says), "{file}: {}", r.body);
        assert!(r.body.contains("Nothing was changed."));
        assert_eq!(names(&r), before, "{file}: the list is still shown whole");
        assert_eq!(names(&w.get("/contacts", Some(&s))), before, "{file}");
    }
    let r = import(&w, &s, &data("broken-quoting.csv"));
    assert!(r.body.contains("(at line or card 3)"), "{}", r.body);
    // A contact without an address is shown again as typed.
    let r = post_from(
        &w,
        &s,
        "/contacts/edit",
        "/contacts/save",
        &[
            ("full_name", "无地址的人"),
            ("email", ""),
            ("company", "某公司"),
        ],
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("value=\"某公司\""), "{}", r.body);
    let r = post_from(
        &w,
        &s,
        "/contacts/edit",
        "/contacts/save",
        &[("full_name", "X"), ("email", "not an address")],
    );
    assert_eq!(r.status, 400);
    // Forged or malformed requests change nothing.
    let r = w.post("/contacts/act", Some(&s), &[("do", "delete"), ("id", "x")]);
    assert_eq!(r.status, 403);
    let r = post_from(
        &w,
        &s,
        "/contacts",
        "/contacts/act",
        &[("do", "delete"), ("id", "../../x")],
    );
    assert_eq!(r.status, 400);
    assert_eq!(names(&w.get("/contacts", Some(&s))), before);
}

#[test]
fn edit_delete_add_sender_and_users_apart() {
    let Some(w) = webmail_instance() else { return };
    let s = w.login("u@example.test", "secret");
    let r = post_from(
        &w,
        &s,
        "/contacts/edit",
        "/contacts/save",
        &[
            ("full_name", ""),
            ("family", "周"),
            ("given", "八"),
            ("email", "zhouba@example.cn"),
            ("email", "zb@example.org"),
            ("mobile", "13700000008"),
            ("group", "家人"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let page = w.get("/contacts", Some(&s));
    assert_eq!(names(&page), ["周八"]);
    let id = id_of(&page, "周八");
    let edit = w.get(&format!("/contacts/edit?id={id}"), Some(&s));
    assert!(edit.body.contains("value=\"zb@example.org\""));
    assert!(edit.body.contains("value=\"家人\" checked"));
    // Change it.
    let r = post_from(
        &w,
        &s,
        "/contacts/edit",
        "/contacts/save",
        &[
            ("id", &id),
            ("full_name", "周八 (Bob)"),
            ("email", "zhouba@example.cn"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(names(&w.get("/contacts", Some(&s))), ["周八 (Bob)"]);

    // The sender of a message, in one click: "王老师" in GB2312.
    let msg =
        "From: =?GB2312?B?zfXAz8qm?= <teacher@school.example.cn>\r\nSubject: hi\r\n\r\nbody\r\n";
    let script = r#"
import imaplib, sys
c = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
c.login('u@example.test', 'secret')
assert c.append('INBOX', None, None, sys.argv[2].encode())[0] == 'OK'
c.logout()
"#;
    let out = python(script, &[&(w.inst.base + 143).to_string(), msg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = w.get("/read?folder=INBOX&uid=1", Some(&s));
    assert_eq!(read.status, 200, "{}", read.body);
    assert!(read.body.contains("add-sender"), "{}", read.body);
    let r = post_from(
        &w,
        &s,
        "/read?folder=INBOX&uid=1",
        "/contacts/add-sender",
        &[
            ("folder", "INBOX"),
            ("uid", "1"),
            ("name", "王老师"),
            ("email", "teacher@school.example.cn"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.header("location").unwrap().contains("done=sender_added"));
    let page = w.get("/contacts", Some(&s));
    assert_eq!(names(&page), ["王老师", "周八 (Bob)"]);
    let r = post_from(
        &w,
        &s,
        "/read?folder=INBOX&uid=1",
        "/contacts/add-sender",
        &[
            ("folder", "INBOX"),
            ("uid", "1"),
            ("name", "王老师"),
            ("email", "TEACHER@school.example.cn"),
        ],
    );
    assert!(r.header("location").unwrap().contains("done=sender_known"));

    // Another user of the domain sees none of it, and cannot edit it.
    add_user(&w, "v@example.test");
    let v = w.login("v@example.test", "secret");
    let theirs = w.get("/contacts", Some(&v));
    assert!(names(&theirs).is_empty(), "{}", theirs.body);
    assert_eq!(
        w.get(&format!("/contacts/edit?id={id}"), Some(&v)).status,
        404
    );
    let r = post_from(
        &w,
        &v,
        "/contacts",
        "/contacts/act",
        &[("do", "delete"), ("id", &id)],
    );
    assert_eq!(r.status, 404);
    assert_eq!(names(&w.get("/contacts", Some(&s))).len(), 2);

    // Delete, from the list's checkboxes.
    let r = post_from(
        &w,
        &s,
        "/contacts",
        "/contacts/act",
        &[("do", "delete"), ("id", &id)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(names(&w.get("/contacts", Some(&s))), ["王老师"]);
}

#[test]
fn twelve_hundred_contacts_fit_and_list() {
    let Some(w) = webmail_instance() else { return };
    let s = w.login("u@example.test", "secret");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("many.csv");
    let mut text =
        String::from("\"First Name\",\"Last Name\",\"E-mail Address\",\"Categories\"\r\n");
    for i in 0..1200 {
        text.push_str(&format!(
            "\"名{i}\",\"张\",\"user{i}@example.cn\",\"{}\"\r\n",
            if i % 2 == 0 { "偶数" } else { "奇数" }
        ));
    }
    std::fs::write(&file, encoding_rs::GBK.encode(&text).0).unwrap();
    let started = std::time::Instant::now();
    let r = import(&w, &s, &file);
    assert!(
        r.header("location").unwrap_or_default().contains("n=1200"),
        "{r:?}"
    );
    eprintln!("import of 1200: {:?}", started.elapsed());
    let started = std::time::Instant::now();
    let page = w.get("/contacts", Some(&s));
    eprintln!("list of 1200: {:?}", started.elapsed());
    assert_eq!(names(&page).len(), 1200);
    let g = w.get(
        &format!("/contacts?group={}", common::webmail::enc("奇数")),
        Some(&s),
    );
    assert_eq!(names(&g).len(), 600);
    let found = w.get("/contacts?q=user1199@", Some(&s));
    assert_eq!(names(&found), ["张名1199"]);
}
