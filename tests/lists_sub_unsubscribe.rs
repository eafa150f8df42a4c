//! One-click unsubscribe (RFC 8058) through the webmail, with curl: the
//! link of a list post shows a button on GET and changes nothing; a POST
//! with `List-Unsubscribe=One-Click` is passed on as a mail from the null
//! sender to the list's confirm address (here Postfix's smtp-sink on the
//! instance's port 25, the address kmp-webmail is configured with); a link
//! that is not a one-click cookie, or a POST without the One-Click field,
//! sends nothing.

mod common;

use common::sink::Sink;
use std::time::Duration;

use common::webmail::{webmail_instance, Webmail};
use common::{missing_tool, wait_until, TOOLS};
use kmpromail::lists::cookie::{Action, CookieKey, KEY_LEN};

const LIST: &str = "dev@example.test";

fn key(w: &Webmail) -> CookieKey {
    let bytes = std::fs::read(w.inst.path().join("lists.key")).unwrap();
    let k: [u8; KEY_LEN] = bytes.as_slice().try_into().unwrap();
    CookieKey::from_bytes(&k)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn link(token: &str) -> String {
    format!(
        "/unsubscribe?list=dev%40example.test&c={}",
        token.replace('=', "%3D")
    )
}

#[test]
fn one_click_post_passes_the_cookie_on_and_get_changes_nothing() {
    if let Some(why) = missing_tool("/usr/sbin/smtp-sink", TOOLS) {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let Some(w) = webmail_instance() else { return };
    let sink = Sink::start(&w.inst.path().join("sink"), w.inst.base + 25, &[]);
    let k = key(&w);
    let token = k.mint(LIST, Action::OneClick, "bob@far.example", now() + 86400);

    // GET: a page with the button, and nothing sent.
    let r = w.get(&link(&token), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains("name=\"List-Unsubscribe\" value=\"One-Click\""),
        "{}",
        r.body
    );
    assert!(r.body.contains(LIST), "{}", r.body);
    std::thread::sleep(Duration::from_millis(300));
    assert!(sink.messages().is_empty());

    // POST as a mail client does (RFC 8058 3.2): the URL as it is, the body
    // List-Unsubscribe=One-Click, no cookie.
    let r = w.curl(&[
        "--data-binary",
        "List-Unsubscribe=One-Click",
        &w.url(&link(&token)),
    ]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"unsubscribe-done\""), "{}", r.body);
    assert!(r.set_cookies().is_empty());
    wait_until(Duration::from_secs(10), || !sink.messages().is_empty())
        .expect("a mail at the sink");
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    let to = format!("dev-confirm-{token}@example.test");
    assert!(msgs[0].contains(&format!("To: <{to}>")), "{}", msgs[0]);
    // Nothing in it makes the list take it for an auto-reply.
    assert!(
        !msgs[0].to_ascii_lowercase().contains("auto-submitted"),
        "{}",
        msgs[0]
    );
    // The token still checks at the far end.
    let c = k.check(LIST, &token, now()).unwrap();
    assert_eq!(c.subject, "bob@far.example");
}

#[test]
fn links_that_are_not_one_click_cookies_send_nothing() {
    if let Some(why) = missing_tool("/usr/sbin/smtp-sink", TOOLS) {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let Some(w) = webmail_instance() else { return };
    let sink = Sink::start(&w.inst.path().join("sink"), w.inst.base + 25, &[]);
    let k = key(&w);
    let good = k.mint(LIST, Action::OneClick, "bob@far.example", now() + 86400);
    let subscribe = k.mint(LIST, Action::Subscribe, "bob@far.example", now() + 86400);
    let one_click = "List-Unsubscribe=One-Click";
    for (path, body) in [
        // Another action's cookie: the webmail is no relay for those.
        (link(&subscribe), one_click),
        // Garbage, an injection attempt, a routed list address.
        (link("o.x.y.z"), one_click),
        (
            format!("{}%0D%0ARCPT%20TO:%3Cx@evil.example%3E", link(&good)),
            one_click,
        ),
        (
            format!(
                "/unsubscribe?list=dev%25evil.example%40example.test&c={}",
                good.replace('=', "%3D")
            ),
            one_click,
        ),
        (
            format!("/unsubscribe?c={}", good.replace('=', "%3D")),
            one_click,
        ),
        // The right link without the One-Click field.
        (link(&good), "List-Unsubscribe=Yes"),
    ] {
        let r = w.curl(&["--data-binary", body, &w.url(&path)]);
        assert_eq!(r.status, 400, "{path}: {}", r.body);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(sink.messages().is_empty(), "{:?}", sink.messages());
}
