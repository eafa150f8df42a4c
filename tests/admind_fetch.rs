//! Fetch accounts through kmp-admind, over HTTPS with Python's urllib:
//! a user manages their own accounts (the password sealed, never shown),
//! reaches nobody else's by any address or name trick, meets the per-user
//! and per-domain limits (409), and a domain without the `fetch` service
//! gets 403 while kmp-fetch leaves its accounts alone. Test runs against
//! a second instance's POP3 server.

mod common;

use std::time::Duration;

use common::admind::{admind_instance, login, raw, req, steps};
use common::fetch::{fill, remote, REMOTE_PASS, REMOTE_USER};
use common::{wait_until, Instance};
use serde_json::{json, Value};

fn account(name: &str, r: &Instance, password: &str) -> Value {
    json!({"name": name, "protocol": "pop3", "host": "localhost",
        "port": r.base + 995, "tls": "implicit", "username": REMOTE_USER,
        "password": password, "keep": "keep", "enabled": false})
}

fn start_fetch(inst: &mut Instance) {
    inst.spawn("kmp-fetch", &[]);
    wait_until(Duration::from_secs(20), || {
        inst.path().join("run/kmp-fetch.pid").exists()
    })
    .unwrap_or_else(|_| panic!("kmp-fetch did not start: {}", inst.log("kmp-fetch")));
}

#[test]
fn a_user_manages_their_own_fetch_accounts_and_no_one_elses() {
    let r = remote();
    fill(&r, "", "api", 2, 300);
    let ca = format!("ca_file = \"{}\"", r.path().join("tls/cert.pem").display());
    let mut inst = admind_instance(&[
        ("fetch", "max_accounts_per_user = 2"),
        ("fetch", "min_interval = \"1s\""),
        ("fetch", &ca),
    ]);
    let u = "/v1/users/u@a.example/fetch";
    // Without kmp-fetch the accounts are kept all the same, and the list says so.
    let before = steps(
        &inst,
        &json!([
            login("u@a.example", "pw-u", "u"),
            req("POST", u, Some(account("新浪", &r, REMOTE_PASS)), "u"),
            req("GET", u, None, "u"),
            req("POST", &format!("{u}/%E6%96%B0%E6%B5%AA/test"), None, "u"),
        ]),
    );
    assert_eq!(before[1].0, 200, "{:?}", before[1]);
    assert_eq!(before[2].0, 200, "{:?}", before[2]);
    assert_eq!(before[2].1["agent_running"], false);
    assert_eq!(before[2].1["accounts"][0]["name"], "新浪");
    assert_eq!(before[2].1["accounts"][0]["password_set"], true);
    assert_eq!(before[3].0, 503, "{:?}", before[3]);
    for (_, body) in &before {
        assert!(!body.to_string().contains(REMOTE_PASS), "{body}");
    }
    // Stored sealed: kmpctl sees the record, and no password in it.
    let shown = inst.ctl_ok(&["fetch", "show", "u@a.example", "新浪", "--json"]);
    assert!(
        shown.contains("(sealed)") && !shown.contains(REMOTE_PASS),
        "{shown}"
    );
    let dump = inst.ctl_ok(&["db", "dump"]);
    assert!(!dump.contains(REMOTE_PASS));

    start_fetch(&mut inst);
    let acc = "/v1/users/u@a.example/fetch/%E6%96%B0%E6%B5%AA";
    let r1 = steps(
        &inst,
        &json!([
            login("u@a.example", "pw-u", "u"),
            login("bob@b.example", "pw-bob", "bob"),
            login("pm@a.example", "pw-pm", "pm"),
            login("admin@sys.example", "pw-admin", "admin"),
            // 4: the test logs in there and fetches nothing.
            req("POST", &format!("{acc}/test"), None, "u"),
            // 5: a wrong password is the test's answer, not a failure of the API.
            req(
                "POST",
                u,
                Some(account("wrong", &r, "not-the-password")),
                "u"
            ),
            req("POST", &format!("{u}/wrong/test"), None, "u"),
            // 7: the per-user limit (2).
            req("POST", u, Some(account("third", &r, REMOTE_PASS)), "u"),
            // 8: a change; the password is kept when none is given.
            req(
                "PATCH",
                acc,
                Some(json!({"keep": "delete-after-7", "target": "收件"})),
                "u"
            ),
            req("GET", acc, None, "u"),
            req("POST", &format!("{acc}/test"), None, "u"),
            // 11: the domain's postmaster sees them; the list has the status.
            req("GET", u, None, "pm"),
            // 12: bad requests.
            raw(
                "POST",
                u,
                "{\"name\":\"x\",\"password\":\"p\",\"protocol\":\"pop3\",\"port\":\"995\"}",
                "u"
            ),
            req("PATCH", acc, Some(json!({"name": "renamed"})), "u"),
            req(
                "POST",
                u,
                Some(json!({"name": "a.b", "protocol": "pop3", "password": "p"})),
                "u"
            ),
            req(
                "POST",
                u,
                Some(
                    json!({"name": "x", "protocol": "gopher", "host": "h", "username": "u", "password": "p"})
                ),
                "u"
            ),
        ]),
    );
    assert_eq!(r1[4].0, 200, "{:?}", r1[4]);
    assert_eq!(r1[4].1["ok"], true, "{:?}", r1[4]);
    assert_eq!(r1[4].1["messages"], 2, "{:?}", r1[4]);
    assert_eq!(r1[5].0, 200, "{:?}", r1[5]);
    assert_eq!(r1[6].0, 200, "{:?}", r1[6]);
    assert_eq!(r1[6].1["ok"], false, "{:?}", r1[6]);
    assert!(
        !r1[6].1["error"].as_str().unwrap().is_empty(),
        "{:?}",
        r1[6]
    );
    assert_eq!(r1[7].0, 409, "{:?}", r1[7]);
    assert_eq!(r1[8].0, 200, "{:?}", r1[8]);
    assert_eq!(r1[9].1["keep"], "delete-after-7", "{:?}", r1[9]);
    assert_eq!(r1[9].1["target_folder"], "收件", "{:?}", r1[9]);
    assert_eq!(r1[10].1["ok"], true, "the password was kept: {:?}", r1[10]);
    assert_eq!(r1[11].0, 200, "{:?}", r1[11]);
    assert_eq!(r1[11].1["agent_running"], true, "{:?}", r1[11]);
    assert_eq!(r1[11].1["accounts"].as_array().unwrap().len(), 2);
    for (i, want) in [(12, 400), (13, 400), (14, 400), (15, 400)] {
        assert_eq!(r1[i].0, want, "step {i}: {:?}", r1[i]);
    }

    // Another user, every way: the owner is the path's address, and names
    // are looked up under that owner only.
    let bob = "bob";
    let tries = vec![
        login("bob@b.example", "pw-bob", bob),
        req("GET", u, None, bob),
        req("GET", "/v1/users/U@A.EXAMPLE./fetch", None, bob),
        req("GET", "/v1/users/u%40a.example/fetch", None, bob),
        req("GET", acc, None, bob),
        req("PATCH", acc, Some(json!({"port": 1})), bob),
        req("DELETE", acc, None, bob),
        req("POST", &format!("{acc}/test"), None, bob),
        req("POST", &format!("{acc}/run"), None, bob),
        req("POST", u, Some(account("mine", &r, REMOTE_PASS)), bob),
        // A look-alike (Cyrillic у) is another address in a.example.
        req("GET", "/v1/users/%D1%83@a.example/fetch", None, bob),
    ];
    let r2 = steps(&inst, &Value::Array(tries));
    for (i, (status, body)) in r2[1..].iter().enumerate() {
        assert_eq!(*status, 403, "try {i}: {body}");
    }
    let r3 = steps(
        &inst,
        &json!([
            login("bob@b.example", "pw-bob", bob),
            // bob's own namespace holds no account of u's, whatever the name.
            req(
                "GET",
                "/v1/users/bob@b.example/fetch/%E6%96%B0%E6%B5%AA",
                None,
                bob
            ),
            req("GET", "/v1/users/bob@b.example/fetch/..", None, bob),
            req("GET", "/v1/users/bob@b.example/fetch", None, bob),
            // The per-domain limit, set by an administrator.
            login("admin@sys.example", "pw-admin", "admin"),
            req(
                "PATCH",
                "/v1/domains/b.example",
                Some(json!({"max_fetch_accounts": 1})),
                "admin"
            ),
            req(
                "POST",
                "/v1/users/bob@b.example/fetch",
                Some(account("one", &r, REMOTE_PASS)),
                bob
            ),
            req(
                "POST",
                "/v1/users/bob@b.example/fetch",
                Some(account("two", &r, REMOTE_PASS)),
                bob
            ),
        ]),
    );
    assert_eq!(r3[1].0, 404, "{:?}", r3[1]);
    assert_eq!(r3[2].0, 400, "{:?}", r3[2]);
    assert_eq!(r3[3].1["accounts"], json!([]), "{:?}", r3[3]);
    assert_eq!(r3[5].0, 200, "{:?}", r3[5]);
    assert_eq!(r3[6].0, 200, "{:?}", r3[6]);
    assert_eq!(r3[7].0, 409, "{:?}", r3[7]);
    assert!(
        r3[7].1["error"].as_str().unwrap().contains("b.example"),
        "{:?}",
        r3[7]
    );
    // Nothing of bob's touched u's accounts.
    let list = inst.ctl_ok(&["fetch", "list", "u@a.example", "--json"]);
    let v: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v[0]["port"], r.base + 995, "{v}");

    // A domain without the fetch service: 403 from the API, and kmp-fetch
    // leaves its accounts alone (run finds none; the schedule fetches none).
    let no_fetch = json!(["pop3", "imap", "webmail", "smtp", "managesieve"]);
    let r4 = steps(
        &inst,
        &json!([
            login("admin@sys.example", "pw-admin", "admin"),
            req(
                "PATCH",
                "/v1/domains/b.example",
                Some(json!({"services": no_fetch})),
                "admin"
            ),
        ]),
    );
    assert_eq!(r4[1].0, 200, "{:?}", r4[1]);
    // Due at once, were it allowed.
    inst.ctl_ok(&[
        "fetch",
        "edit",
        "bob@b.example",
        "one",
        "--enable",
        "--interval",
        "10s",
    ]);
    let r4 = steps(
        &inst,
        &json!([
            login("admin@sys.example", "pw-admin", "admin"),
            req("GET", "/v1/domains/b.example", None, "admin"),
            login("bob@b.example", "pw-bob", bob),
            req("GET", "/v1/users/bob@b.example/fetch", None, bob),
            req(
                "POST",
                "/v1/users/bob@b.example/fetch",
                Some(account("x", &r, REMOTE_PASS)),
                bob
            ),
            req("POST", "/v1/users/bob@b.example/fetch/one/run", None, bob),
            // An administrator is refused too: the domain's users may not use it.
            req("GET", "/v1/users/bob@b.example/fetch", None, "admin"),
        ]),
    );
    assert_eq!(r4[1].0, 200, "{:?}", r4[1]);
    for i in [3, 4, 5, 6] {
        assert_eq!(r4[i].0, 403, "step {i}: {:?}", r4[i]);
        assert!(
            r4[i].1["error"].as_str().unwrap().contains("fetch"),
            "{:?}",
            r4[i]
        );
    }
    let out = inst.ctl(&["fetch", "run", "bob@b.example", "one"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no fetch account"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_secs(3));
    let shown = inst.ctl_ok(&["fetch", "show", "bob@b.example", "one"]);
    assert!(shown.contains("last run     never"), "{shown}");
    // The refusals were logged with who asked.
    let log = inst.log("kmp-admind");
    assert!(
        log.contains("refused user=bob@b.example") && log.contains("op=fetch.show"),
        "{log}"
    );
    assert!(!log.contains(REMOTE_PASS) && !inst.log("kmp-fetch").contains(REMOTE_PASS));
}
