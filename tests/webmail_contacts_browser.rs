//! The address book in a real browser: Debian's chromium, headless, driven
//! by python3-selenium through chromium-driver
//! (tests/webmail_contacts_browser.py), under lighttpd against a real
//! kmp-imapd. Skipped with a message when chromium, chromedriver, selenium
//! or lighttpd is missing.
//!
//! With `KMP_WEBMAIL_SHOTS=DIR` the driver also saves screenshots of the
//! address book (desktop and phone sizes) into DIR: doc/webmail/contacts*.png.

mod common;

use std::process::Command;

use common::webmail::webmail_instance;

#[test]
fn a_browser_imports_groups_exports_and_reimports_chinese_contacts() {
    let Some(py) = common::webmail::browser_python() else {
        return;
    };
    let Some(w) = webmail_instance() else { return };
    let root = env!("CARGO_MANIFEST_DIR");
    let shots = std::env::var("KMP_WEBMAIL_SHOTS").unwrap_or_default();
    let mut cmd = Command::new(py);
    cmd.arg(format!("{root}/tests/webmail_contacts_browser.py"))
        .arg(w.url(""))
        .arg((w.inst.base + 143).to_string())
        .arg(format!("{root}/tests/data/contacts"));
    if !shots.is_empty() {
        cmd.arg(&shots);
    }
    let home = tempfile::tempdir().unwrap();
    cmd.env("HOME", home.path());
    let out = cmd.output().expect("run the browser driver");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ok"),
        "browser test failed:\n{stdout}\n{}\nlighttpd: {}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(w.inst.path().join("log/lighttpd-error.log")).unwrap_or_default()
    );
}
