//! Mailing list requests end to end: the whole system under `kmpctl
//! start`, mail sent with Python's smtplib to kmp-smtpd, the list's mails to
//! outside addresses caught by Postfix's smtp-sink behind static routes
//! (`far.test` accepts, `bad.test` answers 550 to every RCPT).
//!
//! - an outside address subscribes by mail with the confirmation round trip,
//!   and gets a welcome;
//! - a forged and an expired cookie change nothing;
//! - a member whose server refuses everything is warned (the probe) and,
//!   when the probe bounces too, removed: the real DSNs of kmp-send to the
//!   VERP and probe return paths drive it.
mod common;

use common::{combined_log as log, smtp_send as send};

use common::sink::Sink;
use std::time::Duration;

use common::sieve::Stop;
use common::{missing_tool, wait_until, Instance, TOOLS};
use kmpromail::lists::cookie::{Action, CookieKey, KEY_LEN};

const LIST: &str = "dev@example.test";

fn members(inst: &Instance) -> String {
    inst.ctl_ok(&["list", "members", LIST])
}

/// The first `dev-confirm-...@example.test` address in `text`.
fn confirm_address(text: &str) -> Option<String> {
    let at = text.find("dev-confirm-")?;
    let rest = &text[at..];
    let end = rest.find("@example.test")?;
    Some(format!("{}@example.test", &rest[..end]))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn key(inst: &Instance) -> CookieKey {
    let b = std::fs::read(inst.path().join("lists.key")).unwrap();
    CookieKey::from_bytes(&<[u8; KEY_LEN]>::try_from(b.as_slice()).unwrap())
}

struct Setup {
    inst: Instance,
    far: Sink,
    _bad: Sink,
}

fn setup() -> Option<Setup> {
    if let Some(why) = missing_tool("/usr/sbin/smtp-sink", TOOLS) {
        eprintln!("SKIPPED: {why}");
        return None;
    }
    let inst = Instance::new();
    let (far_port, bad_port) = (inst.base + 26, inst.base + 27);
    let far = Sink::start(&inst.path().join(format!("sink-{far_port}")), far_port, &[]);
    let bad = Sink::start(
        &inst.path().join(format!("sink-{bad_port}")),
        bad_port,
        &["-f", "RCPT"],
    );
    // One day of bounces warns; a bounced probe removes.
    common::set_config(&inst, "lists", "bounce_warn_days = 1");
    inst.append_config(&format!(
        "[remote.routes]\n\"far.test\" = [\"127.0.0.1:{far_port}\"]\n\"bad.test\" = [\"127.0.0.1:{bad_port}\"]\n"
    ));
    inst.ctl_ok(&["domain", "add", "example.test"]);
    inst.ctl_ok(&["user", "add", "s@example.test"]);
    inst.ctl_ok(&["list", "add", LIST, "--owner", "s@example.test"]);
    inst.ctl_ok(&["start"]);
    Some(Setup {
        inst,
        far,
        _bad: bad,
    })
}

#[test]
fn an_outside_address_subscribes_with_the_confirmation_round_trip() {
    let Some(s) = setup() else { return };
    let inst = &s.inst;
    let _stop = Stop(inst);
    send(
        inst,
        "outsider@far.test",
        "dev-subscribe@example.test",
        "From: outsider@far.test\r\nSubject: join\r\n\r\nplease\r\n",
    );
    wait_until(Duration::from_secs(60), || {
        s.far
            .messages()
            .iter()
            .any(|m| m.contains("dev-confirm-s."))
    })
    .unwrap_or_else(|_| panic!("no confirmation request at the sink\n{}", log(inst)));
    let request = s
        .far
        .messages()
        .into_iter()
        .find(|m| m.contains("dev-confirm-s."))
        .unwrap();
    assert!(
        request.contains("Auto-Submitted: auto-replied"),
        "{request}"
    );
    let confirm = confirm_address(&request).unwrap();
    assert!(
        !members(inst).contains("outsider@far.test"),
        "not before the reply"
    );

    // A forged cookie (another address under the same MAC) and an expired
    // one (minted with the instance's key an hour ago) change nothing.
    let forged = confirm.replace(".outsider=far.test", ".mallory=far.test");
    send(
        inst,
        "mallory@far.test",
        &forged,
        "Subject: Re: confirm\r\n\r\nyes\r\n",
    );
    let old = key(inst).mint(LIST, Action::Subscribe, "late@far.test", now() - 3600);
    send(
        inst,
        "late@far.test",
        &format!("dev-confirm-{old}@example.test"),
        "Subject: Re\r\n\r\nyes\r\n",
    );
    wait_until(Duration::from_secs(60), || {
        let l = log(inst);
        l.contains("forged confirmation cookie") && l.contains("expired confirmation cookie")
    })
    .unwrap_or_else(|_| panic!("no refusals logged\n{}", log(inst)));
    let m = members(inst);
    assert!(!m.contains("mallory") && !m.contains("late@"), "{m}");

    // The genuine reply subscribes, and a welcome follows.
    send(
        inst,
        "outsider@far.test",
        &confirm,
        "From: outsider@far.test\r\nSubject: Re: Confirm your subscription\r\n\r\nyes\r\n",
    );
    wait_until(Duration::from_secs(60), || {
        members(inst).contains("outsider@far.test")
    })
    .unwrap_or_else(|_| panic!("not subscribed\n{}", log(inst)));
    wait_until(Duration::from_secs(60), || {
        s.far
            .messages()
            .iter()
            .any(|m| m.contains("Welcome to dev@example.test"))
    })
    .unwrap_or_else(|_| panic!("no welcome\n{}", log(inst)));
    // A request from a mailer daemon is never answered.
    let before = s.far.count();
    send(
        inst,
        "MAILER-DAEMON@far.test",
        "dev-help@example.test",
        "Subject: help\r\n\r\n",
    );
    wait_until(Duration::from_secs(30), || {
        log(inst).contains("help request from MAILER-DAEMON@far.test ignored")
    })
    .unwrap_or_else(|_| panic!("not logged\n{}", log(inst)));
    assert_eq!(s.far.count(), before);
}

#[test]
fn a_member_whose_server_bounces_is_warned_then_removed() {
    let Some(s) = setup() else { return };
    let inst = &s.inst;
    let _stop = Stop(inst);
    inst.ctl_ok(&[
        "list",
        "subscribe",
        LIST,
        "dave@bad.test",
        "outsider@far.test",
    ]);
    inst.ctl_ok(&["list", "set", LIST, "policy=open"]);
    send(
        inst,
        "s@example.test",
        LIST,
        "From: s@example.test\r\nTo: dev@example.test\r\nSubject: news\r\n\r\nhello\r\n",
    );
    // The copy to bad.test is refused (550); kmp-send's DSN goes to the VERP
    // address, the list counts it and sends the probe, which is refused too;
    // its DSN reaches the probe's cookie return path: dave is removed.
    wait_until(Duration::from_secs(90), || {
        !members(inst).contains("dave@bad.test")
    })
    .unwrap_or_else(|_| panic!("dave still a member\n{}", log(inst)));
    let l = log(inst);
    assert!(
        l.contains("member=<dave@bad.test> 1 day(s) of bounces, warning probe sent"),
        "{l}"
    );
    assert!(
        l.contains("<dave@bad.test> unsubscribed (its warning probe bounced)"),
        "{l}"
    );
    assert!(members(inst).contains("outsider@far.test"));
}

/// The first `dev-KIND-...@example.test` address in `text`.
fn role_address(text: &str, kind: &str) -> Option<String> {
    let pat = format!("dev-{kind}-");
    let at = text.find(&pat)?;
    let rest = &text[at..];
    let end = rest.find("@example.test")?;
    Some(format!("{}@example.test", &rest[..end]))
}

#[test]
fn held_posts_are_approved_and_rejected_by_reply() {
    let Some(s) = setup() else { return };
    let inst = &s.inst;
    let _stop = Stop(inst);
    inst.ctl_ok(&["user", "add", "u@example.test"]);
    inst.ctl_ok(&[
        "list",
        "subscribe",
        LIST,
        "u@example.test",
        "carol@far.test",
    ]);
    inst.ctl_ok(&["list", "set", LIST, "policy=moderated"]);
    inst.ctl_ok(&["list", "mods", LIST, "--add", "mod@far.test"]);
    let inbox = inst.path().join("mail/example.test/u");
    let count = || {
        ["new", "cur"]
            .iter()
            .map(|d| {
                std::fs::read_dir(inbox.join(d))
                    .map(|r| r.count())
                    .unwrap_or(0)
            })
            .sum::<usize>()
    };
    let post = |subject: &str| {
        format!(
            "From: carol@far.test\r\nTo: dev@example.test\r\nSubject: {subject}\r\n\r\nhello\r\n"
        )
    };

    // Held: the moderator is asked, with approve and reject addresses.
    send(inst, "carol@far.test", LIST, &post("first"));
    let ask = |subject: &str| {
        wait_until(Duration::from_secs(60), || {
            s.far
                .messages()
                .iter()
                .any(|m| m.contains("dev-approve-") && m.contains(subject))
        })
        .unwrap_or_else(|_| panic!("no moderation request\n{}", log(inst)));
        s.far
            .messages()
            .into_iter()
            .rev()
            .find(|m| m.contains("dev-approve-") && m.contains(subject))
            .unwrap()
    };
    let req = ask("first");
    assert_eq!(count(), 0, "held, not delivered");
    let approve = role_address(&req, "approve").unwrap();
    assert!(approve.split('@').next().unwrap().len() <= 64, "{approve}");
    // The moderator replies to the approve address: the post goes out.
    send(
        inst,
        "mod@far.test",
        &approve,
        "From: mod@far.test\r\nSubject: Re: held\r\n\r\nok\r\n",
    );
    wait_until(Duration::from_secs(60), || count() == 1)
        .unwrap_or_else(|_| panic!("approved post not delivered\n{}", log(inst)));

    // A second post, rejected with a reason: carol hears why.
    send(inst, "carol@far.test", LIST, &post("second"));
    let req = ask("second");
    let reject = role_address(&req, "reject").unwrap();
    send(
        inst,
        "mod@far.test",
        &reject,
        "From: mod@far.test\r\nSubject: Re: held\r\n\r\nOff topic here.\r\n",
    );
    wait_until(Duration::from_secs(60), || {
        s.far
            .messages()
            .iter()
            .any(|m| m.contains("was not accepted") && m.contains("Off topic here."))
    })
    .unwrap_or_else(|_| panic!("no rejection notice\n{}", log(inst)));
    assert!(
        inst.ctl_ok(&["list", "held", LIST]).lines().count() <= 1,
        "nothing left held"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(count(), 1, "the rejected post is not delivered");
}
