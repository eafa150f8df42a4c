//! kmp-admind, black box over HTTPS with Python's urllib: the three roles,
//! a postmaster of a.example trying b.example every way, limits, malformed
//! requests, sessions, and a login flood.

mod common;

use std::time::Duration;

use common::admind::{admind_instance, login, raw, req, steps};
use serde_json::{json, Value};

fn statuses(r: &[(u16, Value)]) -> Vec<u16> {
    r.iter().map(|(s, _)| *s).collect()
}

#[test]
fn three_roles_and_a_postmaster_walled_into_their_domain() {
    let inst = admind_instance(&[]);
    let dump_before = inst.ctl_ok(&["db", "dump"]);
    let pm = "pm";
    let tries = vec![
        login("pm@a.example", "pw-pm", pm),
        req("GET", "/v1/domains/b.example", None, pm),
        req("GET", "/v1/domains/B.EXAMPLE./users", None, pm),
        req("GET", "/v1/domains/b.example/aliases", None, pm),
        req("GET", "/v1/domains/b.example/usage", None, pm),
        req("GET", "/v1/users/bob@b.example", None, pm),
        req("GET", "/v1/users/BOB@B.Example.", None, pm),
        req(
            "PATCH",
            "/v1/users/bob@b.example",
            Some(json!({"password": "taken"})),
            pm,
        ),
        req("DELETE", "/v1/users/bob@b.example", None, pm),
        req(
            "POST",
            "/v1/users",
            Some(json!({"address": "new@b.example", "password": "x"})),
            pm,
        ),
        req(
            "POST",
            "/v1/users",
            Some(json!({"address": "new@B.EXAMPLE.", "password": "x"})),
            pm,
        ),
        req(
            "POST",
            "/v1/aliases",
            Some(json!({"alias": "@b.example", "targets": ["pm@a.example"]})),
            pm,
        ),
        req(
            "POST",
            "/v1/aliases",
            Some(json!({"alias": "x@b.example", "targets": ["pm@a.example"]})),
            pm,
        ),
        req("DELETE", "/v1/aliases/@b.example", None, pm),
        // A Cyrillic a: another domain altogether, in its A-label form.
        req("GET", "/v1/domains/%D0%B0.example/users", None, pm),
        req(
            "POST",
            "/v1/users",
            Some(json!({"address": "x@\u{430}.example", "password": "x"})),
            pm,
        ),
        // Never system settings: not even their own domain's limits.
        req(
            "PATCH",
            "/v1/domains/a.example",
            Some(json!({"max_users": 1000})),
            pm,
        ),
        req(
            "PATCH",
            "/v1/domains/b.example",
            Some(json!({"max_users": 0})),
            pm,
        ),
    ];
    let n_refused = tries.len() - 1;
    let r = steps(&inst, &Value::Array(tries));
    assert_eq!(r[0].0, 200, "{:?}", r[0]);
    for (i, (status, body)) in r[1..].iter().enumerate() {
        assert_eq!(*status, 403, "try {i}: {body}");
    }
    assert_eq!(r.len() - 1, n_refused);
    // Address tricks that would name another domain are refused as such.
    let tricks = steps(
        &inst,
        &json!([
            login("pm@a.example", "pw-pm", pm),
            req(
                "POST",
                "/v1/users",
                Some(json!({"address": "bob%b.example@a.example", "password": "x"})),
                pm
            ),
            req(
                "POST",
                "/v1/users",
                Some(json!({"address": "\"bob@b.example\"@a.example", "password": "x"})),
                pm
            ),
            req(
                "POST",
                "/v1/users",
                Some(json!({"address": "b.example!bob@a.example", "password": "x"})),
                pm
            ),
            req("GET", "/v1/users/%22bob@b.example%22@a.example", None, pm),
            req(
                "POST",
                "/v1/users",
                Some(json!({"address": "bob@b.example@a.example", "password": "x"})),
                pm
            ),
        ]),
    );
    assert_eq!(
        statuses(&tricks),
        [200, 400, 400, 400, 400, 400],
        "{tricks:?}"
    );
    // Nothing changed anywhere.
    assert_eq!(inst.ctl_ok(&["db", "dump"]), dump_before);
    // Within a.example the postmaster does everything.
    let ok = steps(
        &inst,
        &json!([
            login("pm@a.example", "pw-pm", pm),
            req("GET", "/v1/whoami", None, pm),
            req("GET", "/v1/domains", None, pm),
            req(
                "POST",
                "/v1/users",
                Some(
                    json!({"address": "carol@A.example", "password": "pw-carol", "quota_bytes": 1000})
                ),
                pm
            ),
            req(
                "PATCH",
                "/v1/users/carol@a.example",
                Some(
                    json!({"quota_bytes": 2000, "forwards": ["bob@b.example"], "keep_copy": true})
                ),
                pm
            ),
            req(
                "PATCH",
                "/v1/users/carol@a.example",
                Some(json!({"state": "disabled"})),
                pm
            ),
            req(
                "POST",
                "/v1/aliases",
                Some(json!({"alias": "@a.example", "targets": ["pm@a.example"]})),
                pm
            ),
            req(
                "POST",
                "/v1/aliases",
                Some(json!({"alias": "info@a.example", "targets": ["carol@a.example"]})),
                pm
            ),
            req("GET", "/v1/domains/a.example/aliases", None, pm),
            req("GET", "/v1/domains/a.example/usage", None, pm),
            req("GET", "/v1/users/carol@a.example", None, pm),
            req("DELETE", "/v1/aliases/info@a.example", None, pm),
            req("DELETE", "/v1/users/carol@a.example", None, pm),
        ]),
    );
    assert!(ok.iter().all(|(s, _)| *s == 200), "{ok:#?}");
    assert_eq!(ok[1].1["role"], "postmaster");
    assert_eq!(ok[1].1["domains"], json!(["a.example"]));
    let doms: Vec<&str> = ok[2]
        .1
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["domain"].as_str().unwrap())
        .collect();
    assert_eq!(doms, ["a.example"]);
    assert_eq!(ok[10].1["state"], "disabled");
    assert_eq!(ok[10].1["forwards"], json!(["bob@b.example"]));
    assert_eq!(ok[10].1["quota_bytes"], 2000);
    assert_eq!(ok[12].1["deleted"]["user"], "carol@a.example");
    // kmpctl sees what the API did.
    let aliases = inst.ctl_ok(&["alias", "list", "a.example"]);
    assert!(aliases.contains("@a.example"), "{aliases}");
    assert!(!aliases.contains("info@a.example"), "{aliases}");
    assert!(!inst
        .ctl_ok(&["user", "list", "a.example"])
        .contains("carol"));
    // Every change is logged with who, from where, what.
    let log = inst.log("kmp-admind");
    assert!(
        log.contains("change user=pm@a.example ip=127.0.0.1 op=user.add object=carol@a.example"),
        "{log}"
    );
    assert!(
        log.contains(
            "refused user=pm@a.example ip=127.0.0.1 op=user.del object=bob@b.example status=403"
        ),
        "{log}"
    );

    // The system administrator reaches every domain and its limits; a plain
    // user sees only themselves.
    let r = steps(
        &inst,
        &json!([
            login("admin@sys.example", "pw-admin", "admin"),
            req("GET", "/v1/domains", None, "admin"),
            req(
                "PATCH",
                "/v1/domains/b.example",
                Some(json!({"max_users": 5, "services": ["imap", "smtp"]})),
                "admin"
            ),
            req("GET", "/v1/users/bob@b.example", None, "admin"),
            login("u@a.example", "pw-u", "u"),
            req("GET", "/v1/whoami", None, "u"),
            req("GET", "/v1/users/u@a.example", None, "u"),
            req("GET", "/v1/users/pm@a.example", None, "u"),
            req("GET", "/v1/domains/a.example/users", None, "u"),
            req(
                "PATCH",
                "/v1/users/u@a.example",
                Some(json!({"quota_bytes": 1})),
                "u"
            ),
            req("GET", "/v1/domains", None, "u"),
        ]),
    );
    assert_eq!(
        statuses(&r),
        [200, 200, 200, 200, 200, 200, 200, 403, 403, 403, 200],
        "{r:#?}"
    );
    assert_eq!(r[1].1.as_array().unwrap().len(), 3);
    assert_eq!(r[2].1["limits"]["max_users"], 5);
    assert_eq!(r[2].1["services"], json!(["imap", "smtp"]));
    assert_eq!(r[5].1["role"], "user");
    assert_eq!(r[10].1, json!([]));
    let show = inst.ctl_ok(&["domain", "show", "b.example"]);
    assert!(show.contains("users:           1 of 5"), "{show}");
    assert!(show.contains("services:        imap, smtp"), "{show}");
}

#[test]
fn limits_are_refused_with_409_and_nothing_changes_by_either_door() {
    let inst = admind_instance(&[]);
    inst.ctl_ok(&[
        "domain",
        "set",
        "a.example",
        "--max-users",
        "3",
        "--max-aliases",
        "1",
        "--max-user-quota",
        "10M",
        "--max-quota",
        "25M",
        "--max-forwards",
        "1",
    ]);
    inst.ctl_ok(&["domain", "set", "a.example", "--quota", "5M"]);
    let pm = "pm";
    let r = steps(
        &inst,
        &json!([
            login("pm@a.example", "pw-pm", pm),
            // pm and u are there (no quota): quota limits refuse those with none.
            req(
                "POST",
                "/v1/users",
                Some(json!({"address": "c1@a.example", "password": "x"})),
                pm
            ),
            req(
                "POST",
                "/v1/users",
                Some(json!({"address": "c2@a.example", "password": "x"})),
                pm
            ),
            req(
                "POST",
                "/v1/users",
                Some(json!({"address": "c3@a.example", "quota_bytes": 20971520u64})),
                pm
            ),
            req(
                "PATCH",
                "/v1/users/c1@a.example",
                Some(json!({"quota_bytes": 11534336u64})),
                pm
            ),
            req(
                "POST",
                "/v1/aliases",
                Some(json!({"alias": "a1@a.example", "targets": ["c1@a.example"]})),
                pm
            ),
            req(
                "POST",
                "/v1/aliases",
                Some(json!({"alias": "a2@a.example", "targets": ["c1@a.example"]})),
                pm
            ),
            req(
                "PATCH",
                "/v1/users/c1@a.example",
                Some(json!({"forwards": ["x@elsewhere.example"]})),
                pm
            ),
            req(
                "PATCH",
                "/v1/users/pm@a.example",
                Some(json!({"forwards": ["x@elsewhere.example"]})),
                pm
            ),
        ]),
    );
    assert_eq!(
        statuses(&r),
        [200, 200, 409, 409, 409, 200, 409, 200, 409],
        "{r:#?}"
    );
    assert!(
        r[2].1["error"]
            .as_str()
            .unwrap()
            .contains("at most 3 users"),
        "{:?}",
        r[2]
    );
    let users = inst.ctl_ok(&["user", "list", "a.example"]);
    assert!(
        users.contains("c1@a.example") && !users.contains("c2@a.example"),
        "{users}"
    );
    assert!(inst
        .ctl_ok(&["--json", "user", "show", "c1@a.example"])
        .contains("\"quota_bytes\":5242880"));
    // kmpctl goes through the same checks.
    let out = inst.ctl_stdin(
        &["user", "add", "c4@a.example", "--password-stdin"],
        Some(b"x\n"),
    );
    assert_eq!(
        out.status.code(),
        Some(73),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 3 users"));
    let out = inst.ctl(&["alias", "add", "a3@a.example", "c1@a.example"]);
    assert_eq!(out.status.code(), Some(73));
    let show = inst.ctl_ok(&["domain", "show", "a.example"]);
    assert!(show.contains("users:           3 of 3"), "{show}");
    assert!(show.contains("aliases:         1 of 1"), "{show}");
}

#[test]
fn malformed_requests_get_400_413_and_sessions_401() {
    let inst = admind_instance(&[("admind", "session_lifetime = \"6s\"")]);
    let a = "admin";
    let big = format!(
        "{{\"address\":\"x@a.example\",\"password\":\"{}\"}}",
        "p".repeat(70 * 1024)
    );
    let r = steps(
        &inst,
        &json!([
            login("admin@sys.example", "pw-admin", a),
            raw("POST", "/v1/users", "{\"address\":", a),
            raw("POST", "/v1/users", "[1,2]", a),
            raw(
                "POST",
                "/v1/users",
                "{\"address\":\"x@a.example\",\"quota_bytes\":\"big\"}",
                a
            ),
            raw(
                "POST",
                "/v1/users",
                "{\"address\":\"x@a.example\",\"admin\":true}",
                a
            ),
            raw("PATCH", "/v1/users/u@a.example", "{\"state\":\"root\"}", a),
            raw("PATCH", "/v1/domains/a.example", "{\"max_users\":-3}", a),
            raw("POST", "/v1/login", "{\"user\":[],\"password\":\"x\"}", ""),
            raw("POST", "/v1/users", &big, a),
            req("GET", "/v1/users/nobody@a.example", None, a),
            req("GET", "/v1/domains/c.example", None, a),
            req(
                "POST",
                "/v1/users",
                Some(json!({"address": "u@a.example"})),
                a
            ),
            req("DELETE", "/v1/domains/a.example", None, a),
        ]),
    );
    assert_eq!(
        statuses(&r),
        [200, 400, 400, 400, 400, 400, 400, 400, 413, 404, 404, 409, 405],
        "{r:#?}"
    );
    for (_, body) in &r[1..] {
        assert!(
            body["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    assert!(!inst.ctl_ok(&["user", "list"]).contains("x@a.example"));

    // Sessions: none, forged, logged out, expired.
    let r = steps(
        &inst,
        &json!([
            req("GET", "/v1/whoami", None, ""),
            req(
                "GET",
                "/v1/whoami",
                None,
                "raw:eyJ1IjoiYWRtaW5Ac3lzLmV4YW1wbGUiLCJlIjo5OTk5OTk5OTk5LCJuIjoieCJ9.AAAA"
            ),
            req("GET", "/v1/whoami", None, "raw:garbage"),
            login("pm@a.example", "pw-pm", "pm"),
            req("GET", "/v1/whoami", None, "pm"),
            req("POST", "/v1/logout", None, "pm"),
            req("GET", "/v1/whoami", None, "pm"),
            req("GET", "/v1/domains/a.example", None, "pm"),
            login("pm@a.example", "pw-pm", "pm2"),
        ]),
    );
    assert_eq!(
        statuses(&r),
        [401, 401, 401, 200, 200, 200, 401, 401, 200],
        "{r:#?}"
    );
    assert!(
        r[6].1["error"].as_str().unwrap().contains("logout"),
        "{:?}",
        r[6]
    );
    // A token bound to one user cannot be turned into another's: take a
    // real token and change its payload.
    let t = steps(
        &inst,
        &json!([login("pm@a.example", "pw-pm", "pm"), {"m": "GET", "p": "/v1/whoami", "t": "pm", "show_token": "pm"}]),
    );
    let tok = t[1].1["token"].as_str().unwrap().to_string();
    let (_, tag) = tok.split_once('.').unwrap();
    use base64::Engine;
    let evil = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"{"u":"admin@sys.example","e":9999999999,"n":"AAAAAAAAAAAAAAAAAAAAAA"}"#);
    let r = steps(
        &inst,
        &json!([
            req("GET", "/v1/domains", None, &format!("raw:{evil}.{tag}")),
            req("GET", "/v1/whoami", None, &format!("raw:{tok}"))
        ]),
    );
    assert_eq!(statuses(&r), [401, 200], "{r:?}");
    std::thread::sleep(Duration::from_millis(6500));
    let r = steps(
        &inst,
        &json!([req("GET", "/v1/whoami", None, &format!("raw:{tok}"))]),
    );
    assert_eq!(r[0].0, 401);
    assert!(
        r[0].1["error"].as_str().unwrap().contains("expired"),
        "{:?}",
        r[0]
    );
}

#[test]
fn a_login_failure_flood_is_banned() {
    let inst = admind_instance(&[("authd", "max_failures = 3")]);
    let mut s: Vec<Value> = (0..4)
        .map(|i| login("pm@a.example", &format!("wrong{i}"), "x"))
        .collect();
    s.push(login("pm@a.example", "pw-pm", "pm"));
    s.push(req("GET", "/v1/whoami", None, "pm"));
    let r = steps(&inst, &Value::Array(s));
    let st = statuses(&r);
    assert_eq!(st[0], 401, "{r:?}");
    assert!(st[..4].iter().all(|s| *s == 401 || *s == 429), "{r:?}");
    // Banned now: even the right password is refused, with 429.
    assert_eq!(st[4], 429, "{r:?}");
    assert_eq!(st[5], 401, "{r:?}");
    let bans = inst.ctl_ok(&["ban", "list"]);
    assert!(bans.contains("127.0.0.1"), "{bans}");
}

#[test]
fn a_list_owner_sees_their_list_and_the_lists_limit_holds() {
    let inst = admind_instance(&[]);
    inst.ctl_ok(&["list", "add", "news@b.example", "--owner", "U@a.example"]);
    inst.ctl_ok(&["list", "add", "other@b.example", "--owner", "bob@b.example"]);
    inst.ctl_ok(&["domain", "set", "b.example", "--max-lists", "2"]);
    let out = inst.ctl(&["list", "add", "third@b.example", "--owner", "bob@b.example"]);
    assert_eq!(
        out.status.code(),
        Some(73),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 2 lists"));
    assert!(inst
        .ctl_ok(&["domain", "show", "b.example"])
        .contains("lists:           2 of 2"));
    let r = steps(
        &inst,
        &json!([
            login("u@a.example", "pw-u", "u"),
            req("GET", "/v1/whoami", None, "u"),
            req("GET", "/v1/lists/NEWS@b.example", None, "u"),
            req("GET", "/v1/lists/other@b.example", None, "u"),
            req("GET", "/v1/domains/b.example/lists", None, "u"),
            login("admin@sys.example", "pw-admin", "admin"),
            req("GET", "/v1/domains/b.example/lists", None, "admin"),
        ]),
    );
    assert_eq!(statuses(&r), [200, 200, 200, 403, 403, 200, 200], "{r:#?}");
    assert_eq!(r[1].1["role"], "list owner");
    assert_eq!(r[2].1["address"], "news@b.example");
    assert_eq!(r[6].1.as_array().unwrap().len(), 2);
}
