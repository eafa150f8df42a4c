//! The webmail's announcement banner in a real browser: Debian's chromium,
//! headless, driven by python3-selenium through chromium-driver
//! (tests/announce_browser.py), under lighttpd against a real kmp-imapd.
//! The announcement is put there by `kmpctl announce`, as an administrator
//! would. Skipped with a message when chromium, chromedriver, selenium or
//! lighttpd is missing.

mod common;

use std::process::Command;

use common::webmail::webmail_instance;

const SUBJECT: &str = "系统维护通知";

#[test]
fn the_banner_shows_an_unread_announcement_until_it_is_read() {
    let Some(py) = common::webmail::browser_python() else {
        return;
    };
    let Some(w) = webmail_instance() else { return };
    // An ordinary message first, over IMAP, so the INBOX is not the
    // announcement alone.
    let out = common::python(
        r#"
import imaplib, sys
M = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
M.login('u@example.test', 'secret')
M.append('INBOX', None, None, b'Subject: Ordinary mail\r\nFrom: a@example.test\r\n\r\nhi\r\n')
M.logout()
"#,
        &[&(w.inst.base + 143).to_string()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = w.inst.path().join("notice.txt");
    std::fs::write(
        &file,
        format!("Subject: {SUBJECT}\n\n维护期间无法收发邮件。\n"),
    )
    .unwrap();
    w.inst
        .ctl_ok(&["announce", "--all", file.to_str().unwrap()]);

    let root = env!("CARGO_MANIFEST_DIR");
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(py)
        .arg(format!("{root}/tests/announce_browser.py"))
        .arg(w.url(""))
        .arg(SUBJECT)
        .env("HOME", home.path())
        .output()
        .expect("run the browser driver");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ok"),
        "browser test failed:\n{stdout}\n{}\nwebmail: {}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(w.inst.path().join("log/webmail.log")).unwrap_or_default()
    );
}
