//! The rule editor in a real browser (tests/webmail_rules_browser.py):
//! headless Chromium builds "Subject contains 发票 → move to 财务", a
//! matching message sent with smtplib lands in 财务 through kmp-local's
//! Sieve, found there over IMAP. Skipped with a message when chromium,
//! chromedriver, selenium or lighttpd is missing.
//!
//! With `KMP_WEBMAIL_SHOTS=DIR` the driver saves DIR/rules.png; that is
//! how doc/webmail/rules.png is made.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[test]
fn a_browser_makes_a_rule_and_mail_is_filed_by_it() {
    let Some(py) = common::webmail::browser_python() else {
        return;
    };
    let Some(mut w) = common::compose::start(&[]) else {
        return;
    };
    w.inst.spawn("kmp-sieved", &[]);
    let pid = w.inst.path().join("run/kmp-sieved.pid");
    common::wait_until(Duration::from_secs(10), || pid.exists())
        .unwrap_or_else(|_| panic!("kmp-sieved did not start: {}", w.inst.log("kmp-sieved")));
    let root = env!("CARGO_MANIFEST_DIR");
    let shots = std::env::var("KMP_WEBMAIL_SHOTS").unwrap_or_default();
    let mut cmd = Command::new(py);
    cmd.arg(format!("{root}/tests/webmail_rules_browser.py"))
        .arg(w.url(""))
        .arg((w.inst.base + 143).to_string())
        .arg((w.inst.base + 25).to_string());
    if !shots.is_empty() {
        cmd.arg(Path::new(&shots).join("rules.png"));
    }
    let home = tempfile::tempdir().unwrap();
    cmd.env("HOME", home.path());
    let out = cmd.output().expect("run the browser driver");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ok"),
        "browser test failed:\n{stdout}\n{}\nlog: {}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(w.inst.path().join("log/kmpromail.log")).unwrap_or_default()
    );
    let script = w
        .inst
        .ctl_ok(&["sieve", "show", "u@example.test", "kmpromail-rules"]);
    assert!(script.contains("fileinto \"财务\";"), "{script}");
}
