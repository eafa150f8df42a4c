//! List owners, moderators and postmasters change lists through kmp-admind,
//! black box over HTTPS (Python's urllib) with the whole system under
//! `kmpctl start`: members, settings and held posts of their lists and no
//! other; postmasters create and delete lists of their domain only, within
//! its list limit; a user creates a list only where the domain allows it.
//! Held posts arrive over SMTP, are read with their Chinese subjects
//! decoded, approved (the members' Maildirs get the post) and rejected
//! (the sender gets the reason). kmp-admind never touches the lists' state:
//! kmp-local does, on its lists socket.

mod common;

use common::combined_log as log;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::admind::{login, req, steps, USERS};
use common::sieve::Stop;
use common::{set_config, wait_until, Instance};
use serde_json::{json, Value};

fn statuses(r: &[(u16, Value)]) -> Vec<u16> {
    r.iter().map(|(s, _)| *s).collect()
}

/// The admind test instance (admin@sys.example, pm@a.example postmaster of
/// a.example, u@a.example, bob@b.example) with lists, under `kmpctl start`.
fn instance() -> Instance {
    let inst = Instance::new();
    set_config(&inst, "admind", "admins = [\"admin@sys.example\"]");
    for d in ["sys.example", "a.example", "b.example"] {
        inst.ctl_ok(&["domain", "add", d]);
    }
    for (u, p) in USERS {
        let out = inst.ctl_stdin(
            &["user", "add", u, "--password-stdin"],
            Some(format!("{p}\n").as_bytes()),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    inst.ctl_ok(&["domain", "admin", "add", "a.example", "pm@a.example"]);
    inst.ctl_ok(&["list", "add", "news@b.example", "--owner", "u@a.example"]);
    inst.ctl_ok(&["list", "add", "other@b.example", "--owner", "bob@b.example"]);
    inst.ctl_ok(&["list", "add", "team@a.example", "--owner", "bob@b.example"]);
    inst.ctl_ok(&["start"]);
    inst
}

fn members(inst: &Instance, list: &str) -> String {
    inst.ctl_ok(&["list", "members", list])
}

#[test]
fn owners_change_their_lists_and_reach_no_other() {
    let inst = instance();
    let _stop = Stop(&inst);
    let r = steps(
        &inst,
        &json!([
            login("u@a.example", "pw-u", "u"),
            // 1-3: members of their own list, paged.
            req(
                "POST",
                "/v1/lists/news@b.example/members",
                Some(json!({"addresses": ["x@far.example", "bob@b.example"]})),
                "u"
            ),
            req(
                "GET",
                "/v1/lists/NEWS@b.example/members?offset=1&limit=1",
                None,
                "u"
            ),
            req(
                "PATCH",
                "/v1/lists/news@b.example/members/bob@b.example",
                Some(json!({"digest": true})),
                "u"
            ),
            // 4-6: settings (not the owners), then digest is allowed.
            req(
                "PATCH",
                "/v1/lists/news@b.example",
                Some(json!({
                "description": "新闻", "policy": "moderated", "moderators": ["pm@a.example"],
                "subject_prefix": "[news]", "footer": "bye", "max_size": 100000,
                "digest": true})),
                "u"
            ),
            req(
                "PATCH",
                "/v1/lists/news@b.example",
                Some(json!({"owners": ["u@a.example", "pm@a.example"]})),
                "u"
            ),
            req(
                "PATCH",
                "/v1/lists/news@b.example/members/bob@b.example",
                Some(json!({"digest": true})),
                "u"
            ),
            // 7-8: remove, twice.
            req(
                "DELETE",
                "/v1/lists/news@b.example/members/x@far.example",
                None,
                "u"
            ),
            req(
                "DELETE",
                "/v1/lists/news@b.example/members/x@far.example",
                None,
                "u"
            ),
            // 9-13: another owner's list, and deleting their own.
            req(
                "POST",
                "/v1/lists/other@b.example/members",
                Some(json!({"addresses": ["x@far.example"]})),
                "u"
            ),
            req("GET", "/v1/lists/other@b.example/members", None, "u"),
            req("GET", "/v1/lists/other@b.example/held", None, "u"),
            req(
                "PATCH",
                "/v1/lists/other@b.example",
                Some(json!({"footer": "x"})),
                "u"
            ),
            req("DELETE", "/v1/lists/news@b.example", None, "u"),
            // 14: a list cannot be its own member.
            req(
                "POST",
                "/v1/lists/news@b.example/members",
                Some(json!({"addresses": ["news@b.example"]})),
                "u"
            ),
            // 15: a %-hack member is refused.
            req(
                "POST",
                "/v1/lists/news@b.example/members",
                Some(json!({"addresses": ["a%b@far.example"]})),
                "u"
            ),
        ]),
    );
    assert_eq!(
        statuses(&r),
        [200, 200, 200, 400, 200, 403, 200, 200, 404, 403, 403, 403, 403, 403, 400, 400],
        "{r:#?}"
    );
    assert_eq!(r[1].1["subscribed"].as_array().unwrap().len(), 2);
    assert_eq!(r[2].1["total"], 2);
    assert_eq!(r[2].1["members"].as_array().unwrap().len(), 1);
    assert_eq!(r[4].1["policy"], "moderated");
    assert_eq!(r[4].1["moderators"], json!(["pm@a.example"]));
    assert_eq!(r[6].1["member"]["digest"], true);
    let show: Value =
        serde_json::from_str(&inst.ctl_ok(&["--json", "list", "show", "news@b.example"])).unwrap();
    assert_eq!(show["owners"], json!(["u@a.example"]));
    assert_eq!(show["description"], "新闻");
    assert_eq!(show["footer"], "bye");
    let m = members(&inst, "news@b.example");
    assert!(
        m.contains("bob@b.example") && !m.contains("x@far.example"),
        "{m}"
    );
    assert!(!members(&inst, "other@b.example").contains("x@far.example"));
    assert!(
        log(&inst).contains("lists: list=news@b.example <bob@b.example> subscribed by=u@a.example")
    );
}

#[test]
fn postmasters_make_and_delete_lists_in_their_domain_only() {
    let inst = instance();
    let _stop = Stop(&inst);
    let r = steps(
        &inst,
        &json!([
            login("pm@a.example", "pw-pm", "pm"),
            // 1-5: b.example's lists are out of reach, every way.
            req("GET", "/v1/lists/news@b.example/members", None, "pm"),
            req(
                "POST",
                "/v1/lists",
                Some(json!({"address": "x@b.example"})),
                "pm"
            ),
            req("DELETE", "/v1/lists/other@B.EXAMPLE.", None, "pm"),
            req(
                "PATCH",
                "/v1/lists/other@b.example",
                Some(json!({"footer": "x"})),
                "pm"
            ),
            req(
                "POST",
                "/v1/lists/other@b.example/held/Q1.x/approve",
                None,
                "pm"
            ),
            // 6-9: a.example's: made, used, a list of another owner changed.
            req(
                "POST",
                "/v1/lists",
                Some(json!({"address": "team2@a.example",
                "description": "T", "policy": "announce"})),
                "pm"
            ),
            req("GET", "/v1/lists/team2@a.example/members", None, "pm"),
            req(
                "PATCH",
                "/v1/lists/team@a.example",
                Some(json!({"owners": ["bob@b.example", "pm@a.example"]})),
                "pm"
            ),
            req(
                "POST",
                "/v1/lists/team@a.example/members",
                Some(json!({"addresses": ["u@a.example"]})),
                "pm"
            ),
            // 10-13: a user may not make lists until the domain allows it,
            // and then only in their own domain.
            login("u@a.example", "pw-u", "u"),
            req(
                "POST",
                "/v1/lists",
                Some(json!({"address": "mine@a.example"})),
                "u"
            ),
            login("admin@sys.example", "pw-admin", "admin"),
            req(
                "PATCH",
                "/v1/domains/a.example",
                Some(json!({"user_lists": true})),
                "admin"
            ),
            // 14-17
            req("GET", "/v1/whoami", None, "u"),
            req(
                "POST",
                "/v1/lists",
                Some(json!({"address": "mine@a.example"})),
                "u"
            ),
            req(
                "POST",
                "/v1/lists",
                Some(json!({"address": "mine@b.example"})),
                "u"
            ),
            req(
                "POST",
                "/v1/lists",
                Some(json!({"address": "yours@a.example",
                "owners": ["pm@a.example"]})),
                "u"
            ),
            // 18-19: within the domain's list limit (4 lists now: 3 at most).
            req(
                "PATCH",
                "/v1/domains/a.example",
                Some(json!({"max_lists": 3})),
                "admin"
            ),
            req(
                "POST",
                "/v1/lists",
                Some(json!({"address": "four@a.example"})),
                "pm"
            ),
            // 20-21: deleted by the postmaster, not by the owner.
            req("DELETE", "/v1/lists/mine@a.example", None, "u"),
            req("DELETE", "/v1/lists/team2@a.example", None, "pm"),
        ]),
    );
    assert_eq!(
        statuses(&r),
        [
            200, 403, 403, 403, 403, 403, 200, 200, 200, 200, 200, 403, 200, 200, 200, 200, 403,
            403, 200, 409, 403, 200
        ],
        "{r:#?}"
    );
    assert_eq!(r[6].1["owners"], json!(["pm@a.example"]));
    assert_eq!(r[7].1["total"], 0);
    assert_eq!(r[14].1["create_lists"], true);
    assert_eq!(r[15].1["owners"], json!(["u@a.example"]));
    assert!(members(&inst, "team@a.example").contains("u@a.example"));
    let out = inst.ctl(&["list", "show", "team2@a.example"]);
    assert!(!out.status.success());
    assert!(!inst.path().join("mail/a.example/.lists/team2").exists());
    assert!(inst.ctl(&["list", "show", "x@b.example"]).status.code() != Some(0));
    assert!(inst
        .ctl_ok(&["list", "show", "other@b.example"])
        .contains("other@b.example"));
    let l = log(&inst);
    assert!(
        l.contains("refused user=pm@a.example") && l.contains("op=list.del"),
        "{l}"
    );
}

fn send(inst: &Instance, sender: &str, rcpt: &str, data: &[u8]) {
    let script = r#"
import smtplib, sys
port, sender, rcpt, path = sys.argv[1:5]
with open(path, "rb") as f:
    data = f.read()
with smtplib.SMTP("127.0.0.1", int(port), timeout=60) as s:
    s.sendmail(sender, [rcpt], data)
"#;
    let path = inst.path().join(format!("post-{}", data.len()));
    std::fs::write(&path, data).unwrap();
    let port = (inst.base + 25).to_string();
    let o = common::python(script, &[&port, sender, rcpt, path.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "smtplib: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn maildir(inst: &Instance, user: &str) -> PathBuf {
    let (l, d) = user.split_once('@').unwrap();
    inst.path().join("mail").join(d).join(l)
}

/// The contents of the messages in a Maildir's new/ and cur/.
fn messages(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        for e in std::fs::read_dir(dir.join(sub))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(b) = std::fs::read(e.path()) {
                out.push(String::from_utf8_lossy(&b).into_owned());
            }
        }
    }
    out
}

#[test]
fn held_posts_are_read_decoded_approved_and_rejected_with_a_reason() {
    let inst = instance();
    let _stop = Stop(&inst);
    inst.ctl_ok(&["list", "set", "news@b.example", "policy=moderated"]);
    inst.ctl_ok(&["list", "mods", "news@b.example", "--add", "pm@a.example"]);
    inst.ctl_ok(&[
        "list",
        "subscribe",
        "news@b.example",
        "u@a.example",
        "admin@sys.example",
    ]);
    // GB2312 subject and body; a Big5 subject.
    let mut gb = b"From: bob@b.example\r\nTo: news@b.example\r\nSubject: =?GB2312?B?1tDOxA==?=\r\n\
Message-ID: <gb.1@b.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=gb2312\r\n\r\n"
        .to_vec();
    gb.extend_from_slice(b"\xc4\xe3\xba\xc3, list\r\n");
    send(&inst, "bob@b.example", "news@b.example", &gb);
    let big5 = b"From: bob@b.example\r\nTo: news@b.example\r\nSubject: =?big5?B?pKSk5Q==?= two\r\n\
Message-ID: <b5.2@b.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsecond\r\n";
    send(&inst, "bob@b.example", "news@b.example", big5);
    wait_until(Duration::from_secs(60), || {
        inst.ctl_ok(&["list", "held", "news@b.example"])
            .lines()
            .count()
            >= 3
    })
    .unwrap_or_else(|_| panic!("not held\n{}", log(&inst)));
    let r = steps(
        &inst,
        &json!([
            login("pm@a.example", "pw-pm", "pm"),
            req("GET", "/v1/lists/news@b.example/held", None, "pm"),
        ]),
    );
    assert_eq!(statuses(&r), [200, 200], "{r:#?}");
    let held = r[1].1["held"].as_array().unwrap().clone();
    assert_eq!(held.len(), 2, "{held:?}");
    let mut ids: Vec<String> = held
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_string())
        .collect();
    let r = steps(
        &inst,
        &json!([
            login("pm@a.example", "pw-pm", "pm"),
            req(
                "GET",
                &format!("/v1/lists/news@b.example/held/{}", ids[0]),
                None,
                "pm"
            ),
        ]),
    );
    // ids[0]: the GB2312 post.
    if r[1].1["subject"] != "中文" {
        ids.swap(0, 1);
    }
    let r = steps(
        &inst,
        &json!([
            login("pm@a.example", "pw-pm", "pm"),
            req(
                "GET",
                &format!("/v1/lists/news@b.example/held/{}", ids[0]),
                None,
                "pm"
            ),
            req(
                "GET",
                &format!("/v1/lists/news@b.example/held/{}", ids[1]),
                None,
                "pm"
            ),
            req("GET", "/v1/lists/news@b.example/held/..%2Fx", None, "pm"),
            // The moderator approves one; the owner (u) rejects the other.
            req(
                "POST",
                &format!("/v1/lists/news@b.example/held/{}/approve", ids[0]),
                None,
                "pm"
            ),
            req(
                "POST",
                &format!("/v1/lists/news@b.example/held/{}/approve", ids[0]),
                None,
                "pm"
            ),
            // A moderator cannot touch members.
            req("GET", "/v1/lists/news@b.example/members", None, "pm"),
            login("u@a.example", "pw-u", "u"),
            req(
                "POST",
                &format!("/v1/lists/news@b.example/held/{}/reject", ids[1]),
                Some(json!({"reason": "请只发与项目有关的邮件"})),
                "u"
            ),
            req("GET", "/v1/lists/news@b.example/held", None, "u"),
        ]),
    );
    assert_eq!(
        statuses(&r),
        [200, 200, 200, 400, 200, 404, 403, 200, 200, 200],
        "{r:#?}"
    );
    assert_eq!(r[1].1["subject"], "中文");
    assert_eq!(r[1].1["text"].as_str().unwrap().trim(), "你好, list");
    assert_eq!(r[1].1["held"]["sender"], "bob@b.example");
    assert_eq!(r[2].1["subject"], "中文 two");
    assert_eq!(r[9].1["held"], json!([]));
    // The approved post reaches the members.
    wait_until(Duration::from_secs(60), || {
        ["u@a.example", "admin@sys.example"].iter().all(|m| {
            messages(&maildir(&inst, m))
                .iter()
                .any(|t| t.contains("Message-ID: <gb.1@b.example>"))
        })
    })
    .unwrap_or_else(|_| panic!("approved post not delivered\n{}", log(&inst)));
    // The rejected post's sender gets the reason; no member gets the post.
    wait_until(Duration::from_secs(60), || {
        messages(&maildir(&inst, "bob@b.example")).iter().any(|t| {
            let p = mail_parser::MessageParser::default().parse(t.as_bytes());
            p.and_then(|p| p.body_text(0).map(|b| b.contains("请只发与项目有关的邮件")))
                .unwrap_or(false)
        })
    })
    .unwrap_or_else(|_| panic!("no reason sent\n{}", log(&inst)));
    assert!(!messages(&maildir(&inst, "u@a.example"))
        .iter()
        .any(|t| t.contains("<b5.2@b.example>")));
    let l = log(&inst);
    assert!(l.contains("approved by pm@a.example"), "{l}");
    assert!(l.contains("rejected by u@a.example"), "{l}");
}
