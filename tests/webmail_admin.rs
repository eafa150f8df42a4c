//! The webmail's domain administration pages black-box: lighttpd, the
//! kmp-webmail CGI, kmp-imapd, kmp-authd and kmp-admind of one instance,
//! curl as the browser. A postmaster of a.example manages its users and
//! aliases through the pages, sees its limits and usage, gets kmp-admind's
//! refusals in the forms with what they typed, and reaches nothing of
//! b.example whatever the URL says; a system administrator sees every
//! domain, IDN ones in Unicode.

mod common;

use serde_json::Value;

use common::webmail::{webmail_admin_instance, Http, Webmail};

/// The user's record as `kmpctl --json user show` prints it, or None when
/// there is no such user.
fn user(w: &Webmail, address: &str) -> Option<Value> {
    let out = w.inst.ctl(&["--json", "user", "show", address]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).expect("JSON"))
}

/// GET with the session and the page's CSRF token for later POSTs.
fn page(w: &Webmail, path: &str, s: &str) -> Http {
    w.get(path, Some(s))
}

fn assert_status(r: &Http, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body);
}

/// Writes a `maildirsize` as kmp-local keeps it: the limits line, then
/// one line of `bytes count`.
fn set_used(w: &Webmail, address: &str, bytes: u64) {
    let u = user(w, address).expect("the user exists");
    let dir = std::path::PathBuf::from(u["mail_path"].as_str().unwrap());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("maildirsize"), format!("0S\n{bytes} 3\n")).unwrap();
}

#[test]
fn the_navigation_offers_administration_to_postmasters_and_admins_only() {
    let Some(w) = webmail_admin_instance(&[]) else {
        return;
    };
    let pm = w.login("pm@a.example", "pw-pm");
    let r = page(&w, "/folders", &pm);
    assert_status(&r, 200, "folders");
    assert!(r.body.contains("id=\"nav-admin\""), "{}", r.body);
    let admin = w.login("admin@sys.example", "pw-admin");
    assert!(page(&w, "/folders", &admin)
        .body
        .contains("id=\"nav-admin\""));
    // A plain user: no link, and the pages refuse.
    let u = w.login("u@a.example", "pw-u");
    let r = page(&w, "/folders", &u);
    assert_status(&r, 200, "folders of u");
    assert!(!r.body.contains("nav-admin"), "{}", r.body);
    assert_status(&page(&w, "/admin", &u), 403, "u's /admin");
    assert_status(
        &page(&w, "/admin/users?d=a.example", &u),
        403,
        "u's user list",
    );
    // The webmail's own user (no role) too, and without kmp-admind's
    // answer the mail pages still work.
    let plain = w.login("u@example.test", "secret");
    assert!(!page(&w, "/folders", &plain).body.contains("nav-admin"));
}

#[test]
fn a_postmaster_manages_users_within_limits_and_never_another_domain() {
    let Some(w) = webmail_admin_instance(&[]) else {
        return;
    };
    let pm = w.login("pm@a.example", "pw-pm");
    let csrf = page(&w, "/folders", &pm).csrf();

    // The overview: limits used against allowed, usage per user by use.
    w.inst.ctl_ok(&[
        "domain",
        "set",
        "a.example",
        "--max-users",
        "3",
        "--max-user-quota",
        "20M",
        "--max-aliases",
        "2",
    ]);
    w.inst.ctl_ok(&["user", "quota", "u@a.example", "10M"]);
    w.inst.ctl_ok(&["user", "quota", "pm@a.example", "10M"]);
    set_used(&w, "u@a.example", 5 << 20);
    set_used(&w, "pm@a.example", 1 << 20);
    let r = page(&w, "/admin", &pm);
    assert_status(&r, 200, "overview");
    assert!(r.body.contains("data-limit=\"users\""), "{}", r.body);
    assert!(
        !r.body.contains("b.example"),
        "another domain shown: {}",
        r.body
    );
    assert!(!r.body.contains("admin-domains"), "{}", r.body);
    let by_use = (
        r.body.find("data-user=\"u@a.example\""),
        r.body.find("data-user=\"pm@a.example\""),
    );
    assert!(
        by_use.0.unwrap() < by_use.1.unwrap(),
        "sorted by use: {}",
        r.body
    );
    let r = page(&w, "/admin?d=a.example&sort=address", &pm);
    let by_name = (
        r.body.find("data-user=\"u@a.example\""),
        r.body.find("data-user=\"pm@a.example\""),
    );
    assert!(by_name.1.unwrap() < by_name.0.unwrap(), "sorted by address");
    assert!(r.body.contains("5.0 MB"), "{}", r.body);

    // b.example, however it is named, is refused on every page.
    for path in [
        "/admin?d=b.example",
        "/admin?d=B.Example.",
        "/admin/users?d=b.example",
        "/admin/aliases?d=b.example",
        "/admin/user?a=bob@b.example",
        "/admin/user?a=bob@B.EXAMPLE",
        "/admin/user/delete?a=bob@b.example",
    ] {
        let r = page(&w, path, &pm);
        assert_status(&r, 403, path);
        assert!(!r.body.contains("bob@"), "{path}: {}", r.body);
    }
    // A Cyrillic look-alike of a.example is another domain.
    let r = page(&w, "/admin/users?d=%D0%B0.example", &pm);
    assert!(
        r.status == 403 || r.status == 400,
        "{}: {}",
        r.status,
        r.body
    );
    for (path, form) in [
        (
            "/admin/users/add",
            vec![
                ("d", "b.example"),
                ("local", "x"),
                ("password", "p1"),
                ("password2", "p1"),
            ],
        ),
        (
            "/admin/user",
            vec![
                ("a", "bob@b.example"),
                ("state", "disabled"),
                ("quota_mb", "1"),
            ],
        ),
        (
            "/admin/user/delete",
            vec![
                ("a", "bob@b.example"),
                ("confirm", "yes"),
                ("keep_mail", "no"),
            ],
        ),
        (
            "/admin/aliases/add",
            vec![
                ("d", "b.example"),
                ("local", "x"),
                ("targets", "pm@a.example"),
            ],
        ),
    ] {
        let mut f = vec![("csrf", csrf.as_str())];
        f.extend(form);
        assert_status(&w.post(path, Some(&pm), &f), 403, path);
    }
    let bob = user(&w, "bob@b.example").expect("bob is still there");
    assert_eq!(bob["state"], "active");
    assert!(user(&w, "x@b.example").is_none());
    // Without the CSRF token nothing is done.
    let r = w.post(
        "/admin/users/add",
        Some(&pm),
        &[
            ("d", "a.example"),
            ("local", "nocsrf"),
            ("password", "p"),
            ("password2", "p"),
        ],
    );
    assert_status(&r, 403, "no CSRF token");
    assert!(user(&w, "nocsrf@a.example").is_none());

    // Adding: the passwords must agree; the input is kept, never the password.
    let add = |local: &str, p1: &str, p2: &str, quota: &str| {
        w.post(
            "/admin/users/add",
            Some(&pm),
            &[
                ("csrf", &csrf),
                ("d", "a.example"),
                ("local", local),
                ("password", p1),
                ("password2", p2),
                ("quota_mb", quota),
            ],
        )
    };
    let r = add("张三", "s3cret-1", "s3cret-2", "5");
    assert_status(&r, 400, "passwords differ");
    assert!(r.body.contains("id=\"refused\""), "{}", r.body);
    assert!(r.body.contains("value=\"张三\""), "{}", r.body);
    assert!(!r.body.contains("s3cret"), "a password echoed: {}", r.body);
    assert!(user(&w, "张三@a.example").is_none());
    // Over the per-user ceiling: kmp-admind's 409, in the form.
    let r = add("张三", "s3cret-1", "s3cret-1", "50");
    assert_status(&r, 409, "over the quota ceiling");
    assert!(r.body.contains("at most"), "{}", r.body);
    assert!(r.body.contains("value=\"50\""), "{}", r.body);
    assert!(user(&w, "张三@a.example").is_none());
    // Bad input: kmp-admind's 400, in the form.
    let r = add("a b", "s3cret-1", "s3cret-1", "5");
    assert_status(&r, 400, "a space in the name");
    assert!(r.body.contains("value=\"a b\""), "{}", r.body);
    // Within the limits: added, with the quota asked.
    let r = add("张三", "s3cret-1", "s3cret-1", "5");
    assert_status(&r, 303, "add 张三");
    let z = user(&w, "张三@a.example").expect("张三 was added");
    assert_eq!(z["quota_bytes"], 5u64 << 20);
    let r = page(&w, "/admin/users?d=a.example&done=admin_user_added", &pm);
    assert!(r.body.contains(">张三@a.example<"), "{}", r.body);
    // The third user was the last the domain may have.
    let r = add("wang", "s3cret-1", "s3cret-1", "1");
    assert_status(&r, 409, "over max users");
    assert!(r.body.contains("at most 3 users"), "{}", r.body);
    assert!(r.body.contains("value=\"wang\""), "{}", r.body);
    assert!(user(&w, "wang@a.example").is_none());

    // Editing: quota, forwards and a password reset, in one save.
    let r = page(&w, "/admin/user?a=u@a.example", &pm);
    assert_status(&r, 200, "edit u");
    assert!(r.body.contains("value=\"10\""), "{}", r.body);
    // The header still names the one logged in, not the user shown.
    assert!(
        r.body.contains("<span class=\"who\">pm@a.example</span>"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("mail_path"), "{}", r.body);
    let save = |f: &[(&str, &str)]| {
        let mut all = vec![("csrf", csrf.as_str()), ("a", "u@a.example")];
        all.extend_from_slice(f);
        w.post("/admin/user", Some(&pm), &all)
    };
    let r = save(&[
        ("state", "active"),
        ("quota_mb", "15"),
        ("forwards", "bob@b.example\n"),
        ("keep_copy", "1"),
        ("password", "new-pw-1"),
        ("password2", "new-pw-1"),
    ]);
    assert_status(&r, 303, "save u");
    let u = user(&w, "u@a.example").unwrap();
    assert_eq!(u["quota_bytes"], 15u64 << 20);
    assert_eq!(u["forwards"], serde_json::json!(["bob@b.example"]));
    assert_eq!(u["keep_copy"], true);
    // The new password is the one that logs in now.
    assert_eq!(w.post_login("u@a.example", "pw-u").status, 403);
    w.login("u@a.example", "new-pw-1");
    // A refused save (over the ceiling) changes nothing, and keeps the input.
    let r = save(&[("state", "disabled"), ("quota_mb", "25"), ("forwards", "")]);
    assert_status(&r, 409, "over the ceiling");
    assert!(r.body.contains("value=\"25\""), "{}", r.body);
    let u = user(&w, "u@a.example").unwrap();
    assert_eq!(u["state"], "active");
    assert_eq!(u["quota_bytes"], 15u64 << 20);
    // Disabled.
    assert_status(
        &save(&[("state", "disabled"), ("quota_mb", "15"), ("forwards", "")]),
        303,
        "disable u",
    );
    let u = user(&w, "u@a.example").unwrap();
    assert_eq!(u["state"], "disabled");
    assert_eq!(u["forwards"], serde_json::json!([]));

    // Deleting asks first, and keeps the mail when asked to.
    let r = page(&w, "/admin/user/delete?a=%E5%BC%A0%E4%B8%89@a.example", &pm);
    assert_status(&r, 200, "confirmation");
    assert!(r.body.contains("张三@a.example"), "{}", r.body);
    assert!(r.body.contains("id=\"keep-yes\""), "{}", r.body);
    assert!(
        r.body.contains("<span class=\"who\">pm@a.example</span>"),
        "{}",
        r.body
    );
    let r = w.post(
        "/admin/user/delete",
        Some(&pm),
        &[
            ("csrf", &csrf),
            ("a", "张三@a.example"),
            ("keep_mail", "yes"),
        ],
    );
    assert_status(&r, 400, "unconfirmed deletion");
    assert!(user(&w, "张三@a.example").is_some());
    let mail = std::path::PathBuf::from(z["mail_path"].as_str().unwrap());
    std::fs::create_dir_all(mail.join("cur")).unwrap();
    let r = w.post(
        "/admin/user/delete",
        Some(&pm),
        &[
            ("csrf", &csrf),
            ("a", "张三@a.example"),
            ("confirm", "yes"),
            ("keep_mail", "yes"),
        ],
    );
    assert_status(&r, 303, "deletion");
    assert!(user(&w, "张三@a.example").is_none());
    assert!(mail.is_dir(), "the mail was kept");
}

#[test]
fn a_postmaster_manages_aliases_and_the_catch_all() {
    let Some(w) = webmail_admin_instance(&[]) else {
        return;
    };
    w.inst
        .ctl_ok(&["domain", "set", "a.example", "--max-aliases", "2"]);
    let pm = w.login("pm@a.example", "pw-pm");
    let csrf = page(&w, "/folders", &pm).csrf();
    let add = |f: &[(&str, &str)]| {
        let mut all = vec![("csrf", csrf.as_str()), ("d", "a.example")];
        all.extend_from_slice(f);
        w.post("/admin/aliases/add", Some(&pm), &all)
    };
    let aliases = || {
        let out = w.inst.ctl_ok(&["--json", "alias", "list", "a.example"]);
        serde_json::from_str::<Value>(&out).unwrap()
    };
    assert_status(
        &add(&[
            ("local", "sales"),
            ("targets", "u@a.example, bob@b.example"),
        ]),
        303,
        "add sales",
    );
    assert_status(
        &add(&[("catch_all", "1"), ("targets", "pm@a.example")]),
        303,
        "add the catch-all",
    );
    let r = page(&w, "/admin/aliases?d=a.example", &pm);
    assert_status(&r, 200, "aliases");
    assert!(
        r.body.contains("data-alias=\"sales@a.example\""),
        "{}",
        r.body
    );
    assert!(r.body.contains("data-alias=\"@a.example\""), "{}", r.body);
    assert!(r.body.contains("bob@b.example"), "{}", r.body);
    // A third is over the limit: 409 in the form, input kept.
    let r = add(&[("local", "info"), ("targets", "pm@a.example")]);
    assert_status(&r, 409, "over max aliases");
    assert!(r.body.contains("at most 2 aliases"), "{}", r.body);
    assert!(r.body.contains("value=\"info\""), "{}", r.body);
    // A bad target: 400 in the form.
    let r = add(&[("local", "sales"), ("targets", "not an address")]);
    assert_status(&r, 400, "bad target");
    // More targets to an existing alias are no new alias.
    assert_status(
        &add(&[("local", "sales"), ("targets", "pm@a.example")]),
        303,
        "add a target",
    );
    let all = aliases().to_string();
    assert!(all.contains("pm@a.example"), "{all}");
    // One target off, then the alias.
    let del = |f: &[(&str, &str)]| {
        let mut all = vec![("csrf", csrf.as_str()), ("d", "a.example")];
        all.extend_from_slice(f);
        w.post("/admin/aliases/delete", Some(&pm), &all)
    };
    assert_status(
        &del(&[("alias", "sales@a.example"), ("target", "bob@b.example")]),
        303,
        "remove a target",
    );
    let all = aliases().to_string();
    assert!(!all.contains("bob@b.example"), "{all}");
    assert_status(
        &del(&[("alias", "@a.example")]),
        303,
        "delete the catch-all",
    );
    let all = aliases().to_string();
    assert!(!all.contains("\"@a.example\""), "{all}");
    // Never another domain's.
    w.inst
        .ctl_ok(&["alias", "add", "x@b.example", "bob@b.example"]);
    assert_status(&del(&[("alias", "x@b.example")]), 403, "b's alias");
    assert!(w
        .inst
        .ctl_ok(&["--json", "alias", "list", "b.example"])
        .contains("x@b.example"));
}

#[test]
fn an_admin_sees_every_domain_idn_in_unicode_and_long_lists_are_paged() {
    let Some(w) = webmail_admin_instance(&[]) else {
        return;
    };
    w.inst.ctl_ok(&["domain", "add", "例子.测试"]);
    w.inst.ctl_ok(&["user", "add", "张三@例子.测试"]);
    for i in 0..120 {
        w.inst.ctl_ok(&[
            "user",
            "add",
            &format!("user{i:03}@xn--fsqu00a.xn--0zwm56d"),
        ]);
    }
    let admin = w.login("admin@sys.example", "pw-admin");
    let r = page(&w, "/admin", &admin);
    assert_status(&r, 200, "admin's overview");
    assert!(r.body.contains("admin-domains"), "{}", r.body);
    for d in ["a.example", "b.example", "例子.测试"] {
        assert!(r.body.contains(d), "{d} missing: {}", r.body);
    }
    let r = page(&w, "/admin/users?d=xn--fsqu00a.xn--0zwm56d", &admin);
    assert_status(&r, 200, "IDN users");
    assert!(r.body.contains("例子.测试"), "{}", r.body);
    assert!(r.body.contains("121"), "the count: {}", r.body);
    assert!(r.body.contains("id=\"page-next\""), "{}", r.body);
    assert!(!r.body.contains("user100@"), "page 1 shows 50: {}", r.body);
    let r = page(&w, "/admin/users?d=xn--fsqu00a.xn--0zwm56d&page=3", &admin);
    assert!(r.body.contains("user119@例子.测试"), "{}", r.body);
    assert!(r.body.contains(">张三@例子.测试<"), "{}", r.body);
    assert!(r.body.contains("id=\"page-prev\""), "{}", r.body);
    // The filter finds one among thousands without paging through them.
    let r = page(
        &w,
        "/admin/users?d=xn--fsqu00a.xn--0zwm56d&q=user07",
        &admin,
    );
    assert!(r.body.contains("user070@"), "{}", r.body);
    assert!(!r.body.contains("user080@"), "{}", r.body);
    // The admin reaches b.example too.
    assert_status(&page(&w, "/admin?d=b.example", &admin), 200, "b for admin");
}
