//! The webmail's rule editor under lighttpd with curl, against real
//! kmp-imapd and kmp-sieved: rules made on the page appear as a Sieve
//! script over ManageSieve (seen with `kmpctl sieve`), come back as the
//! same rules on reload, are reordered, disabled and deleted; bad input is
//! explained with what was typed kept; a hand-written script is shown as
//! text, checked with the server's error line, and never rewritten.
mod common;

use std::time::Duration;

use common::compose::{input, set_webmail};
use common::webmail::{webmail_instance_with, Webmail};

const U: &str = "u@example.test";

fn start() -> Option<Webmail> {
    start_with(&[])
}

fn start_with(config: &[(&str, &str)]) -> Option<Webmail> {
    let mut w = webmail_instance_with(config)?;
    w.inst.spawn("kmp-sieved", &[]);
    let pid = w.inst.path().join("run/kmp-sieved.pid");
    common::wait_until(Duration::from_secs(10), || pid.exists())
        .unwrap_or_else(|_| panic!("kmp-sieved did not start: {}", w.inst.log("kmp-sieved")));
    Some(w)
}

fn show(w: &Webmail, name: &str) -> String {
    let o = w.inst.ctl(&["sieve", "show", U, name]);
    // Stored as sent over ManageSieve, with CRLF.
    String::from_utf8_lossy(&o.stdout).replace("\r\n", "\n")
}

fn create_folder(w: &Webmail, name: &str) {
    let o = common::python(
        r#"
import imaplib, sys
c = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
c._encoding = "utf-8"
c.login("u@example.test", "secret")
c.enable("UTF8=ACCEPT")
typ, data = c.create('"%s"' % sys.argv[2])
assert typ == "OK", data
"#,
        &[&(w.inst.base + 143).to_string(), name],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The add form's fields for "Subject contains VALUE → move to FOLDER".
fn subject_rule<'a>(name: &'a str, value: &'a str, folder: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", name),
        ("match", "all"),
        ("field_0", "subject"),
        ("op_0", "contains"),
        ("value_0", value),
        ("action", "move"),
        ("folder", folder),
        ("enabled", "1"),
    ]
}

fn with_csrf<'a>(csrf: &'a str, fields: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut v = vec![("csrf", csrf)];
    v.extend_from_slice(fields);
    v
}

#[test]
fn rules_are_written_over_managesieve_and_read_back_the_same() {
    let Some(w) = start() else { return };
    create_folder(&w, "财务");
    let s = w.login(U, "secret");
    let page = w.get("/rules", Some(&s));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("<option value=\"财务\""),
        "{}",
        page.body
    );
    let csrf = page.csrf();

    // Subject contains 发票 → 财务, then a second rule with a NOT, any-of,
    // a size and a vacation.
    let r = w.post(
        "/rules/add",
        Some(&s),
        &with_csrf(&csrf, &subject_rule("发票", "发票", "财务")),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let script = show(&w, "kmpromail-rules");
    assert!(script.starts_with("# kmpromail-rules 1"), "{script}");
    assert!(
        script.contains("if header :contains \"subject\" \"发票\" {\n    fileinto \"财务\";"),
        "{script}"
    );
    let list = w.inst.ctl_ok(&["sieve", "list", U]);
    assert!(list.contains("kmpromail-rules"), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("kmpromail-rules") && l.ends_with("yes")),
        "{list}"
    );
    let r = w.post(
        "/rules/add",
        Some(&s),
        &with_csrf(
            &csrf,
            &[
                ("name", "away 休假"),
                ("match", "any"),
                ("field_0", "from"),
                ("op_0", "notcontains"),
                ("value_0", "@example.test"),
                ("field_1", "size"),
                ("op_1", "over"),
                ("value_1", "1M"),
                ("action", "reply"),
                ("subject", "休假中"),
                ("text", "我下周回来。\r\nBack next week."),
                ("days", "5"),
                ("seen", "1"),
                ("stop", "1"),
                ("enabled", "1"),
            ],
        ),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let script = show(&w, "kmpromail-rules");
    assert!(
        script.contains(
            "if anyof(not header :contains \"from\" \"@example.test\", size :over 1048576) {"
        ),
        "{script}"
    );
    assert!(
        script.contains("vacation :days 5 :subject \"休假中\""),
        "{script}"
    );
    assert!(script.contains("addflag \"\\\\Seen\";"), "{script}");
    let check = w.inst.ctl(&["sieve", "check", U, "kmpromail-rules"]);
    assert!(check.status.success(), "{script}");

    // Reloaded, the page shows the same rules in order.
    let page = w.get("/rules", Some(&s));
    let first = page.body.find("data-rule=\"0\"").unwrap();
    let second = page.body.find("data-rule=\"1\"").unwrap();
    assert!(page.body[first..second].contains("发票"), "{}", page.body);
    assert!(page.body[second..].contains("away 休假"), "{}", page.body);
    assert!(
        page.body[second..].contains("does not contain"),
        "{}",
        page.body
    );

    // Edit the first: the form comes filled, saving replaces it in place.
    let page = w.get("/rules?edit=0", Some(&s));
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(input(&page.body, "index").as_deref(), Some("0"));
    assert_eq!(input(&page.body, "value_0").as_deref(), Some("发票"));
    assert!(
        page.body.contains("<option value=\"财务\" selected>"),
        "{}",
        page.body
    );
    let mut edited = subject_rule("发票", "发票号", "财务");
    edited.push(("index", "0"));
    let r = w.post("/rules/add", Some(&s), &with_csrf(&csrf, &edited));
    assert_eq!(r.status, 303, "{}", r.body);
    let script = show(&w, "kmpromail-rules");
    assert_eq!(script.matches("\n# rule ").count(), 2, "{script}");
    assert!(
        script.contains("if header :contains \"subject\" \"发票号\" {"),
        "{script}"
    );
    let page = w.get("/rules?edit=1", Some(&s));
    assert_eq!(input(&page.body, "subject").as_deref(), Some("休假中"));
    assert!(
        page.body.contains("我下周回来。\nBack next week."),
        "{}",
        page.body
    );

    // Move the second up, disable it: both kept in the script.
    let r = w.post(
        "/rules/act",
        Some(&s),
        &[("csrf", &csrf), ("index", "1"), ("op", "up")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let r = w.post(
        "/rules/act",
        Some(&s),
        &[("csrf", &csrf), ("index", "0"), ("op", "toggle")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let script = show(&w, "kmpromail-rules");
    let away = script.find("allof(false, anyof(").expect(&script);
    let invoice = script.find("fileinto \"财务\"").unwrap();
    assert!(away < invoice, "{script}");
    let page = w.get("/rules", Some(&s));
    assert!(
        page.body
            .contains("class=\"rule disabled\" data-rule=\"0\""),
        "{}",
        page.body
    );

    // Bad input: explained, typed values sent back, nothing written.
    let before = show(&w, "kmpromail-rules");
    let r = w.post(
        "/rules/add",
        Some(&s),
        &with_csrf(
            &csrf,
            &[
                ("name", "大的"),
                ("field_0", "size"),
                ("op_0", "over"),
                ("value_0", "很大"),
                ("action", "discard"),
            ],
        ),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("id=\"rules-error\""), "{}", r.body);
    assert_eq!(input(&r.body, "value_0").as_deref(), Some("很大"));
    assert_eq!(input(&r.body, "name").as_deref(), Some("大的"));
    assert_eq!(show(&w, "kmpromail-rules"), before);
    // No CSRF token: refused, nothing written.
    let r = w.post("/rules/add", Some(&s), &subject_rule("x", "x", "INBOX"));
    assert_eq!(r.status, 403, "{}", r.body);
    let r = w.post(
        "/rules/act",
        Some(&s),
        &[("csrf", &csrf), ("index", "7"), ("op", "delete")],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(show(&w, "kmpromail-rules"), before);

    // Delete both: an empty script, still the editor's.
    for _ in 0..2 {
        let r = w.post(
            "/rules/act",
            Some(&s),
            &[("csrf", &csrf), ("index", "0"), ("op", "delete")],
        );
        assert_eq!(r.status, 303, "{}", r.body);
    }
    assert!(!show(&w, "kmpromail-rules").contains("\nif "));
    let page = w.get("/rules", Some(&s));
    assert!(page.body.contains("id=\"rule-form\""), "{}", page.body);
}

#[test]
fn the_form_grows_to_as_many_conditions_as_a_rule_holds() {
    let Some(w) = start() else { return };
    let s = w.login(U, "secret");
    let page = w.get("/rules", Some(&s));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("name=\"field_2\""), "{}", page.body);
    assert!(!page.body.contains("name=\"field_3\""), "{}", page.body);
    let csrf = page.csrf();
    // "Another condition" keeps what was typed and adds a row; nothing is saved.
    let mut typed = subject_rule("五个条件", "发票", "INBOX");
    typed.extend_from_slice(&[("rows", "3"), ("more", "1")]);
    let r = w.post("/rules/add", Some(&s), &with_csrf(&csrf, &typed));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("name=\"field_3\""), "{}", r.body);
    assert!(!r.body.contains("name=\"field_4\""), "{}", r.body);
    assert!(r.body.contains("value=\"发票\""), "{}", r.body);
    assert!(!show(&w, "kmpromail-rules").contains("发票"));
    // A rule of five conditions is saved, and edited again with its five.
    let fields: Vec<(String, String)> = (0..5)
        .flat_map(|i| {
            [
                (format!("field_{i}"), "subject".to_string()),
                (format!("op_{i}"), "contains".to_string()),
                (format!("value_{i}"), format!("词{i}")),
            ]
        })
        .collect();
    let mut form: Vec<(&str, &str)> = vec![
        ("name", "五个条件"),
        ("match", "any"),
        ("action", "move"),
        ("folder", "INBOX"),
        ("enabled", "1"),
        ("rows", "5"),
    ];
    form.extend(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let r = w.post("/rules/add", Some(&s), &with_csrf(&csrf, &form));
    assert_eq!(r.status, 303, "{}", r.body);
    let script = show(&w, "kmpromail-rules");
    for i in 0..5 {
        assert!(script.contains(&format!("\"词{i}\"")), "{script}");
    }
    let edit = w.get("/rules?edit=0", Some(&s));
    assert_eq!(edit.status, 200, "{}", edit.body);
    assert!(edit.body.contains("value=\"词4\""), "{}", edit.body);
    assert!(edit.body.contains("name=\"field_4\""), "{}", edit.body);
}

#[test]
fn a_hand_written_script_is_shown_as_text_checked_and_never_rewritten() {
    let Some(w) = start() else { return };
    let hand = "require \"fileinto\";\n# 手写的规则\nif header :contains \"subject\" \"报告\" {\n  fileinto \"Reports\";\n}\n";
    let o = w.inst.ctl_stdin(
        &["sieve", "put", U, "main", "--activate"],
        Some(hand.as_bytes()),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = w.login(U, "secret");
    let page = w.get("/rules", Some(&s));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"script-text\""), "{}", page.body);
    assert!(page.body.contains("手写的规则"), "{}", page.body);
    assert!(!page.body.contains("id=\"rule-form\""));
    let csrf = page.csrf();

    // The editor refuses to add a rule over it.
    let r = w.post(
        "/rules/add",
        Some(&s),
        &with_csrf(&csrf, &subject_rule("x", "x", "INBOX")),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(show(&w, "kmpromail-rules").is_empty());
    assert_eq!(show(&w, "main"), hand);

    // A syntax error from the server, with its line; the text typed stays.
    let bad = "require \"fileinto\";\nif header :contains \"subject\" \"报告\" {\n  fileinto \"Reports\"\n}\n";
    let r = w.post(
        "/rules/script",
        Some(&s),
        &[
            ("csrf", &csrf),
            ("name", "main"),
            ("text", bad),
            ("op", "check"),
        ],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("id=\"rules-error\""), "{}", r.body);
    assert!(r.body.contains("line 3, column 21"), "{}", r.body);
    assert!(
        r.body.contains("fileinto &quot;Reports&quot;\n}"),
        "{}",
        r.body
    );
    let r = w.post(
        "/rules/script",
        Some(&s),
        &[
            ("csrf", &csrf),
            ("name", "main"),
            ("text", bad),
            ("op", "save"),
        ],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(show(&w, "main"), hand);

    // Checked and saved as the user edited it.
    let good = hand.replace("Reports", "报告");
    let r = w.post(
        "/rules/script",
        Some(&s),
        &[
            ("csrf", &csrf),
            ("name", "main"),
            ("text", &good),
            ("op", "check"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"rules-notice\""), "{}", r.body);
    assert_eq!(show(&w, "main"), hand);
    let r = w.post(
        "/rules/script",
        Some(&s),
        &[
            ("csrf", &csrf),
            ("name", "main"),
            ("text", &good),
            ("op", "save"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(show(&w, "main"), good);

    // Switching to the editor keeps the hand-written script, inactive.
    let r = w.post("/rules/editor", Some(&s), &[("csrf", &csrf)]);
    assert_eq!(r.status, 303, "{}", r.body);
    let list = w.inst.ctl_ok(&["sieve", "list", U]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("kmpromail-rules") && l.ends_with("yes")),
        "{list}"
    );
    assert_eq!(show(&w, "main"), good);
    let page = w.get("/rules", Some(&s));
    assert!(page.body.contains("id=\"rule-form\""), "{}", page.body);
    let r = w.post(
        "/rules/add",
        Some(&s),
        &with_csrf(&csrf, &subject_rule("x", "x", "INBOX")),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(show(&w, "main"), good);
}

#[test]
fn the_editors_script_changed_by_hand_is_kept_as_text() {
    let Some(w) = start() else { return };
    let s = w.login(U, "secret");
    let csrf = w.get("/rules", Some(&s)).csrf();
    let r = w.post(
        "/rules/add",
        Some(&s),
        &with_csrf(&csrf, &subject_rule("a", "a", "INBOX")),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let edited = show(&w, "kmpromail-rules")
        .replace("fileinto \"INBOX\";", "fileinto \"INBOX\";\n    keep;");
    let o = w.inst.ctl_stdin(
        &["sieve", "put", U, "kmpromail-rules"],
        Some(edited.as_bytes()),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = w.get("/rules", Some(&s));
    assert!(page.body.contains("id=\"script-text\""), "{}", page.body);
    let r = w.post(
        "/rules/act",
        Some(&s),
        &[("csrf", &csrf), ("index", "0"), ("op", "delete")],
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(show(&w, "kmpromail-rules"), edited);
}

#[test]
fn a_full_sieve_quota_is_shown_and_what_was_typed_is_kept() {
    let Some(w) = start_with(&[("sieve", "max_script_size = \"1K\"")]) else {
        return;
    };
    let s = w.login(U, "secret");
    let csrf = w.get("/rules", Some(&s)).csrf();
    let long = "我不在办公室。".repeat(60);
    let r = w.post(
        "/rules/add",
        Some(&s),
        &with_csrf(
            &csrf,
            &[
                ("name", "away"),
                ("action", "reply"),
                ("subject", "休假"),
                ("text", &long),
                ("days", "3"),
                ("enabled", "1"),
            ],
        ),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("quota is full"), "{}", r.body);
    assert!(
        r.body.contains(&long),
        "the reply text was lost: {}",
        r.body
    );
    assert_eq!(input(&r.body, "subject").as_deref(), Some("休假"));
    assert!(show(&w, "kmpromail-rules").is_empty());
}

#[test]
fn managesieve_over_starttls_with_the_certificate_checked() {
    let Some(w) = start() else { return };
    let s = w.login(U, "secret");
    let cert = w.inst.path().join("tls/cert.pem");
    set_webmail(
        &w,
        "imap_ca_file",
        &format!("{:?}", cert.display().to_string()),
    );
    set_webmail(&w, "managesieve_security", "\"starttls\"");
    let page = w.get("/rules", Some(&s));
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.csrf();
    let r = w.post(
        "/rules/add",
        Some(&s),
        &with_csrf(&csrf, &subject_rule("tls", "加密", "INBOX")),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(show(&w, "kmpromail-rules").contains("\"加密\""));
    // Authorities that did not sign kmp-sieved's certificate: no page,
    // nothing written.
    let system = "/etc/ssl/certs/ca-certificates.crt";
    if std::path::Path::new(system).is_file() {
        set_webmail(&w, "imap_ca_file", &format!("{system:?}"));
        let before = show(&w, "kmpromail-rules");
        let r = w.post(
            "/rules/act",
            Some(&s),
            &[("csrf", &csrf), ("index", "0"), ("op", "delete")],
        );
        assert_eq!(r.status, 503, "{}", r.body);
        assert_eq!(show(&w, "kmpromail-rules"), before);
    }
}
