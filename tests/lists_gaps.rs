//! Mailing lists, the cases around the edges, end to end: the whole system
//! under `kmpctl start`, mail sent with Python's smtplib to kmp-smtpd, the
//! list's mails to outside addresses caught by Postfix's smtp-sink behind a
//! static route (`far.test`).
//!
//! - a member whose local part is 60 octets subscribes by mail: the
//!   confirm, bounce and probe addresses that carry its address are longer
//!   than RFC 5321's 64 octets, and our own server takes them;
//! - one-click unsubscribe (RFC 8058): each remote member's copy carries its
//!   own link, which curl POSTs to the webmail; a forged token, or another
//!   member's token altered to name this one, changes nothing;
//! - `list-subscribe-USER=HOST@` asks USER@HOST, never the sender.
mod common;

use common::{combined_log as log, smtp_send as send};

use common::sink::Sink;
use std::time::Duration;

use common::sieve::Stop;
use common::{missing_tool, wait_until, Instance, TOOLS};

const LIST: &str = "dev@example.test";

fn members(inst: &Instance) -> String {
    inst.ctl_ok(&["list", "members", LIST])
}

/// The first `dev-KIND-...@example.test` address in `text`.
fn role_address(text: &str, kind: &str) -> Option<String> {
    let pat = format!("dev-{kind}-");
    let at = text.find(&pat)?;
    let rest = &text[at..];
    let end = rest.find("@example.test")?;
    Some(format!("{}@example.test", &rest[..end]))
}

/// The value of the header line `name: ` in a message as smtp-sink wrote it.
fn field<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    let head = msg
        .split("\r\n\r\n")
        .next()
        .unwrap_or(msg)
        .split("\n\n")
        .next()
        .unwrap_or(msg);
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(|v| v.trim_end_matches('\r'))
}

/// The instance with far.test behind a sink, the list dev@ (owner
/// s@example.test) and `web_url` (empty: none); started.
fn setup(web_url: &str) -> Option<(Instance, Sink)> {
    setup_with(web_url, &[])
}

/// [`setup`] with `(section, line)` settings.
fn setup_with(web_url: &str, extra: &[(&str, &str)]) -> Option<(Instance, Sink)> {
    if let Some(why) = missing_tool("/usr/sbin/smtp-sink", TOOLS) {
        eprintln!("SKIPPED: {why}");
        return None;
    }
    let inst = Instance::new();
    let far_port = inst.base + 26;
    let far = Sink::start(&inst.path().join(format!("sink-{far_port}")), far_port, &[]);
    common::set_config(&inst, "lists", "bounce_warn_days = 1");
    if !web_url.is_empty() {
        let url = web_url.replace("BASE80", &(inst.base + 80).to_string());
        common::set_config(&inst, "lists", &format!("web_url = \"{url}\""));
    }
    for (section, line) in extra {
        common::set_config(&inst, section, line);
    }
    inst.append_config(&format!(
        "[remote.routes]\n\"far.test\" = [\"127.0.0.1:{far_port}\"]\n"
    ));
    inst.ctl_ok(&["domain", "add", "example.test"]);
    inst.ctl_ok(&["user", "add", "s@example.test"]);
    inst.ctl_ok(&["user", "add", "u@example.test"]);
    inst.ctl_ok(&["list", "add", LIST, "--owner", "s@example.test"]);
    inst.ctl_ok(&["start"]);
    Some((inst, far))
}

/// Waits for a message at the sink that `pick` likes, and returns it.
fn wait_for(inst: &Instance, far: &Sink, what: &str, pick: impl Fn(&str) -> bool) -> String {
    wait_until(Duration::from_secs(90), || {
        far.messages().iter().any(|m| pick(m))
    })
    .unwrap_or_else(|_| panic!("no {what} at the sink\n{}", log(inst)));
    far.messages().into_iter().find(|m| pick(m)).unwrap()
}

#[test]
fn a_member_with_a_60_octet_local_part_subscribes_gets_posts_and_a_bounce_probe() {
    let Some((inst, far)) = setup("") else { return };
    let _stop = Stop(&inst);
    let local = format!("a{}", "0123456789".repeat(6))[..60].to_string();
    let member = format!("{local}@far.test");
    assert_eq!(local.len(), 60);

    // The request, and the confirmation round trip through an address
    // whose local part is well over 64 octets.
    send(
        &inst,
        &member,
        "dev-subscribe@example.test",
        &format!("From: {member}\r\nSubject: join\r\n\r\nplease\r\n"),
    );
    let request = wait_for(&inst, &far, "confirmation request", |m| {
        m.contains("dev-confirm-s.") && m.contains(&format!("X-Rcpt-Args: <{member}>"))
    });
    let confirm = role_address(&request, "confirm").unwrap();
    let confirm_local = confirm.split('@').next().unwrap();
    assert!(confirm_local.len() > 64, "{confirm}");
    assert!(
        confirm_local.ends_with(&format!("{local}=far.test")),
        "{confirm}"
    );
    send(
        &inst,
        &member,
        &confirm,
        &format!("From: {member}\r\nSubject: Re: Confirm\r\n\r\nyes\r\n"),
    );
    wait_until(Duration::from_secs(60), || members(&inst).contains(&member))
        .unwrap_or_else(|_| panic!("not subscribed\n{}", log(&inst)));

    // A post reaches it with the VERP return path that names it.
    inst.ctl_ok(&["list", "set", LIST, "policy=open"]);
    send(
        &inst,
        "s@example.test",
        LIST,
        "From: s@example.test\r\nTo: dev@example.test\r\nSubject: long news\r\n\r\nhello\r\n",
    );
    let verp = format!("dev-bounce-{local}=far.test@example.test");
    let post = wait_for(&inst, &far, "post", |m| {
        m.contains("Subject: long news") && m.contains(&format!("X-Rcpt-Args: <{member}>"))
    });
    assert!(post.contains(&format!("X-Mail-Args: <{verp}>")), "{post}");

    // Its server bounces the post (a plain-text bounce from the null
    // sender to the VERP address, as many servers send): with one day of
    // bounces the list warns with a probe, whose return path is a cookie
    // carrying the member's address again.
    send(
        &inst,
        "",
        &verp,
        &format!(
            "From: MAILER-DAEMON@far.test\r\nTo: {verp}\r\nSubject: failure notice\r\n\r\n\
             Sorry, I couldn't deliver to <{member}>: mailbox full.\r\n"
        ),
    );
    let probe = wait_for(&inst, &far, "bounce probe", |m| {
        m.contains("X-Mail-Args: <dev-confirm-w.")
            && m.contains(&format!("X-Rcpt-Args: <{member}>"))
    });
    let ret = field(&probe, "X-Mail-Args").unwrap();
    assert!(
        ret.contains(&format!("{local}=far.test@example.test")),
        "{ret}"
    );
    let l = log(&inst);
    assert!(
        l.contains(&format!(
            "member=<{member}> 1 day(s) of bounces, warning probe sent"
        )),
        "{l}"
    );
    assert!(members(&inst).contains(&member), "warned, not removed");
}

#[test]
fn one_click_unsubscribe_takes_the_members_own_token_only() {
    let installed = ["/usr/sbin/lighttpd", "/usr/local/sbin/lighttpd"]
        .iter()
        .any(|p| std::path::Path::new(p).is_file());
    if !installed || missing_tool("curl", TOOLS).is_some() {
        eprintln!("SKIPPED: lighttpd or curl is not installed");
        return;
    }
    let Some((inst, far)) = setup("http://127.0.0.1:BASE80") else {
        return;
    };
    let _stop = Stop(&inst);
    inst.ctl_ok(&[
        "list",
        "subscribe",
        LIST,
        "bob@far.test",
        "carol@far.test",
        "u@example.test",
    ]);
    inst.ctl_ok(&["list", "set", LIST, "policy=open"]);
    send(
        &inst,
        "s@example.test",
        LIST,
        "From: s@example.test\r\nTo: dev@example.test\r\nSubject: one click\r\n\r\nhello\r\n",
    );
    let copy_of = |who: &str| {
        wait_for(&inst, &far, "post", |m| {
            m.contains("Subject: one click") && m.contains(&format!("X-Rcpt-Args: <{who}>"))
        })
    };
    let bob = copy_of("bob@far.test");
    let carol = copy_of("carol@far.test");
    let link = |msg: &str| {
        let v = field(msg, "List-Unsubscribe").unwrap_or_else(|| panic!("{msg}"));
        assert!(
            v.ends_with(", <mailto:dev-unsubscribe@example.test>"),
            "{v}"
        );
        assert_eq!(
            field(msg, "List-Unsubscribe-Post"),
            Some("List-Unsubscribe=One-Click"),
            "{msg}"
        );
        v[1..v.find('>').unwrap()].to_string()
    };
    let (bob_url, carol_url) = (link(&bob), link(&carol));
    let base = format!("http://127.0.0.1:{}/unsubscribe?", inst.base + 80);
    assert!(bob_url.starts_with(&base), "{bob_url}");
    assert_ne!(bob_url, carol_url);

    // The local members' shared copy: mailto only, no one-click.
    let inbox = inst.path().join("mail/example.test/u/new");
    wait_until(Duration::from_secs(30), || {
        std::fs::read_dir(&inbox).is_ok_and(|d| d.count() == 1)
    })
    .unwrap_or_else(|_| panic!("no local copy\n{}", log(&inst)));
    let file = std::fs::read_dir(&inbox).unwrap().next().unwrap().unwrap();
    let local = String::from_utf8_lossy(&std::fs::read(file.path()).unwrap()).into_owned();
    assert_eq!(
        field(&local, "List-Unsubscribe"),
        Some("<mailto:dev-unsubscribe@example.test>"),
        "{local}"
    );
    assert_eq!(field(&local, "List-Unsubscribe-Post"), None, "{local}");

    let post = |url: &str| {
        let out = common::tool("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "60",
            ])
            .args(["--data-binary", "List-Unsubscribe=One-Click", url])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // A forged token (one letter of bob's MAC changed) and carol's token
    // altered to name bob: the webmail passes both on, kmp-local refuses.
    let c = bob_url.find("&c=").unwrap() + 3;
    let token = &bob_url[c..];
    let parts: Vec<&str> = token.splitn(4, '.').collect();
    let mac = parts[2];
    let flipped: String = mac
        .chars()
        .enumerate()
        .map(|(i, ch)| match (i, ch) {
            (0, 'a') => 'b',
            (0, _) => 'a',
            (_, ch) => ch,
        })
        .collect();
    let forged = format!(
        "{}{}.{}.{flipped}.{}",
        &bob_url[..c],
        parts[0],
        parts[1],
        parts[3]
    );
    let altered = carol_url.replace("carol%3Dfar.test", "bob%3Dfar.test");
    assert_ne!(altered, carol_url, "{carol_url}");
    for url in [&forged, &altered] {
        assert_eq!(post(url), "200", "{url}");
    }
    wait_until(Duration::from_secs(60), || {
        log(&inst).matches("forged confirmation cookie").count() >= 2
    })
    .unwrap_or_else(|_| panic!("the forged tokens were not refused\n{}", log(&inst)));
    let m = members(&inst);
    assert!(
        m.contains("bob@far.test") && m.contains("carol@far.test"),
        "{m}"
    );

    // Bob's own link, POSTed as a mail client does: bob is gone, carol stays.
    assert_eq!(post(&bob_url), "200");
    wait_until(Duration::from_secs(60), || {
        !members(&inst).contains("bob@far.test")
    })
    .unwrap_or_else(|_| panic!("bob still a member\n{}", log(&inst)));
    assert!(members(&inst).contains("carol@far.test"));
    assert!(log(&inst).contains("<bob@far.test> unsubscribed (one-click unsubscribe)"));
}

#[test]
fn subscribe_user_at_host_asks_that_address_never_the_sender() {
    let Some((inst, far)) = setup("") else { return };
    let _stop = Stop(&inst);
    send(
        &inst,
        "mallory@far.test",
        "dev-subscribe-carol=far.test@example.test",
        "From: mallory@far.test\r\nSubject: sign carol up\r\n\r\nplease\r\n",
    );
    let request = wait_for(&inst, &far, "confirmation request", |m| {
        m.contains("dev-confirm-s.")
    });
    assert!(
        request.contains("X-Rcpt-Args: <carol@far.test>"),
        "{request}"
    );
    let confirm = role_address(&request, "confirm").unwrap();
    assert!(confirm.contains(".carol=far.test@"), "{confirm}");
    // Nothing went to the sender, and carol is no member before she answers.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !far.messages()
            .iter()
            .any(|m| m.contains("X-Rcpt-Args: <mallory@far.test>")),
        "{:?}",
        far.messages()
    );
    assert!(!members(&inst).contains("carol@far.test"));
    // Carol confirms: subscribed.
    send(
        &inst,
        "carol@far.test",
        &confirm,
        "From: carol@far.test\r\nSubject: Re: Confirm\r\n\r\nyes\r\n",
    );
    wait_until(Duration::from_secs(60), || {
        members(&inst).contains("carol@far.test")
    })
    .unwrap_or_else(|_| panic!("carol not subscribed\n{}", log(&inst)));
    // The same form for leaving asks carol too.
    send(
        &inst,
        "mallory@far.test",
        "dev-unsubscribe-carol=far.test@example.test",
        "From: mallory@far.test\r\nSubject: drop carol\r\n\r\nplease\r\n",
    );
    wait_for(&inst, &far, "unsubscribe confirmation", |m| {
        m.contains("dev-confirm-u.") && m.contains("X-Rcpt-Args: <carol@far.test>")
    });
    assert!(
        members(&inst).contains("carol@far.test"),
        "not before she answers"
    );
}

/// The message files in a local user's new/ and cur/.
fn mails(inst: &Instance, user: &str) -> Vec<String> {
    let dir = inst.path().join("mail/example.test").join(user);
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        for e in std::fs::read_dir(dir.join(sub))
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned());
        }
    }
    out
}

#[test]
fn a_member_over_quota_gets_no_copy_and_it_counts_as_a_bounce() {
    let Some((inst, far)) = setup("") else { return };
    let _stop = Stop(&inst);
    inst.ctl_ok(&["user", "add", "full@example.test", "--quota-messages", "1"]);
    inst.ctl_ok(&["user", "add", "v@example.test"]);
    inst.ctl_ok(&[
        "list",
        "subscribe",
        LIST,
        "full@example.test",
        "v@example.test",
        "bob@far.test",
    ]);
    inst.ctl_ok(&["list", "set", LIST, "policy=open"]);
    let post = |subject: &str| {
        send(
            &inst,
            "s@example.test",
            LIST,
            &format!("From: s@example.test\r\nTo: {LIST}\r\nSubject: {subject}\r\n\r\nhello\r\n"),
        )
    };
    post("quota one");
    wait_until(Duration::from_secs(60), || {
        mails(&inst, "v").len() == 1 && mails(&inst, "full").len() == 1
    })
    .unwrap_or_else(|_| panic!("first post not delivered\n{}", log(&inst)));
    // The second would take full@ over its one message: it gets none; the
    // others get theirs, and the bounce is counted (a probe with one day).
    post("quota two");
    wait_until(Duration::from_secs(60), || {
        mails(&inst, "v").len() == 2
            && far
                .messages()
                .iter()
                .filter(|m| m.contains("X-Rcpt-Args: <bob@far.test>"))
                .count()
                == 2
    })
    .unwrap_or_else(|_| panic!("second post not delivered to the others\n{}", log(&inst)));
    wait_until(Duration::from_secs(30), || {
        log(&inst).contains("member=<full@example.test> 1 day(s) of bounces, warning probe sent")
    })
    .unwrap_or_else(|_| panic!("the bounce was not counted\n{}", log(&inst)));
    let l = log(&inst);
    assert!(
        l.contains("member full@example.test is over quota: no copy (counted as a bounce)"),
        "{l}"
    );
    assert!(l.contains("1 over quota"), "{l}");
    // The first post, and no second (kmp-local's own quota warning may
    // be there too: it is written past the quota on purpose).
    let full = mails(&inst, "full");
    assert_eq!(
        full.iter()
            .filter(|m| m.contains("Subject: quota one"))
            .count(),
        1
    );
    assert!(
        !full.iter().any(|m| m.contains("Subject: quota two")),
        "{full:?}"
    );
    assert!(
        members(&inst).contains("full@example.test"),
        "warned, not removed"
    );
}

#[test]
fn posts_from_strict_dmarc_domains_go_out_as_from_the_list() {
    let dns = common::dns::Dns::start();
    dns.txt(
        "_dmarc.strict-post.net",
        "v=DMARC1; p=reject; rua=mailto:d@strict-post.net",
    );
    dns.txt("_dmarc.relaxed-post.net", "v=DMARC1; p=none");
    dns.txt("_dmarc.quar-post.org", "v=DMARC1; p=quarantine");
    let servers = format!("dns_servers = [\"{}\"]", dns.addr);
    let Some((inst, far)) = setup_with("", &[("auth", &servers)]) else {
        return;
    };
    let _stop = Stop(&inst);
    inst.ctl_ok(&["list", "subscribe", LIST, "u@example.test", "bob@far.test"]);
    inst.ctl_ok(&["list", "set", LIST, "policy=open"]);
    let post = |from: &str, header_from: &str, subject: &str| {
        send(
            &inst,
            from,
            LIST,
            &format!("From: {header_from}\r\nTo: {LIST}\r\nSubject: {subject}\r\n\r\nhello\r\n"),
        )
    };
    post(
        "alice@strict-post.net",
        "Alice Smith <alice@strict-post.net>",
        "strict one",
    );
    post(
        "carol@relaxed-post.net",
        "carol@relaxed-post.net",
        "relaxed one",
    );
    wait_until(Duration::from_secs(60), || mails(&inst, "u").len() == 2)
        .unwrap_or_else(|_| panic!("posts not delivered\n{}", log(&inst)));
    inst.ctl_ok(&["list", "set", LIST, "dmarc_original=cc"]);
    // A GB2312 name: "王伟".
    post(
        "wang@quar-post.org",
        "=?GB2312?B?zfXOsA==?= <wang@quar-post.org>",
        "quarantine one",
    );
    wait_until(Duration::from_secs(60), || mails(&inst, "u").len() == 3)
        .unwrap_or_else(|_| panic!("third post not delivered\n{}", log(&inst)));
    let got = mails(&inst, "u");
    let find = |subject: &str| {
        got.iter()
            .find(|m| m.contains(&format!("Subject: {subject}")))
            .unwrap_or_else(|| panic!("{subject}: {got:?}"))
            .clone()
    };
    let strict = find("strict one");
    assert_eq!(
        field(&strict, "From"),
        Some("\"Alice Smith via dev\" <dev@example.test>"),
        "{strict}"
    );
    assert_eq!(
        field(&strict, "Reply-To"),
        Some("Alice Smith <alice@strict-post.net>"),
        "{strict}"
    );
    let relaxed = find("relaxed one");
    assert_eq!(
        field(&relaxed, "From"),
        Some("carol@relaxed-post.net"),
        "{relaxed}"
    );
    assert_eq!(field(&relaxed, "Reply-To"), None, "{relaxed}");
    let quarantine = find("quarantine one");
    assert_eq!(
        field(&quarantine, "Cc"),
        Some("=?GB2312?B?zfXOsA==?= <wang@quar-post.org>"),
        "{quarantine}"
    );
    let from = field(&quarantine, "From").unwrap();
    let mb = &kmpromail::mime::address_list(from.as_bytes())[0];
    assert_eq!(mb.name.as_deref(), Some("王伟 via dev"), "{from}");
    assert_eq!(mb.address, "dev@example.test");
    // The remote member's copy says the same.
    let bob = wait_for(&inst, &far, "strict post", |m| {
        m.contains("Subject: strict one") && m.contains("X-Rcpt-Args: <bob@far.test>")
    });
    assert_eq!(
        field(&bob, "From"),
        Some("\"Alice Smith via dev\" <dev@example.test>"),
        "{bob}"
    );
    let l = log(&inst);
    assert!(
        l.contains("strict-post.net publishes DMARC Reject: sent as from the list"),
        "{l}"
    );
    assert!(
        l.contains("quar-post.org publishes DMARC Quarantine"),
        "{l}"
    );
}
