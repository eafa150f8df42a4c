//! The domain administration pages in a real browser
//! (tests/webmail_admin_browser.py): a postmaster adds, edits and asks to
//! delete users and adds aliases through the pages in headless Chromium;
//! an admin sees every domain. Skipped with a message when chromium,
//! chromedriver, selenium or lighttpd is missing.
//!
//! With `KMP_WEBMAIL_SHOTS=DIR` the driver saves DIR/admin-*.png; that is
//! how doc/webmail/admin-*.png are made.

mod common;

use std::process::Command;

#[test]
fn a_browser_administers_a_domain() {
    let Some(py) = common::webmail::browser_python() else {
        return;
    };
    let Some(w) = common::webmail::webmail_admin_instance(&[]) else {
        return;
    };
    // Something to show: limits, quotas, usage, an IDN domain.
    w.inst.ctl_ok(&[
        "domain",
        "set",
        "a.example",
        "--max-users",
        "10",
        "--max-aliases",
        "5",
        "--max-quota",
        "500M",
        "--max-user-quota",
        "100M",
    ]);
    for (u, q, used) in [
        ("u@a.example", "50M", 31u64 << 20),
        ("pm@a.example", "20M", 3 << 20),
    ] {
        w.inst.ctl_ok(&["user", "quota", u, q]);
        let v: serde_json::Value =
            serde_json::from_str(&w.inst.ctl_ok(&["--json", "user", "show", u])).unwrap();
        let dir = std::path::PathBuf::from(v["mail_path"].as_str().unwrap());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("maildirsize"), format!("0S\n{used} 12\n")).unwrap();
    }
    w.inst.ctl_ok(&["domain", "add", "例子.测试"]);
    w.inst.ctl_ok(&["user", "add", "王五@例子.测试"]);
    let root = env!("CARGO_MANIFEST_DIR");
    let shots = std::env::var("KMP_WEBMAIL_SHOTS").unwrap_or_default();
    let mut cmd = Command::new(py);
    cmd.arg(format!("{root}/tests/webmail_admin_browser.py"))
        .arg(w.url(""));
    if !shots.is_empty() {
        cmd.arg(&shots);
    }
    let home = tempfile::tempdir().unwrap();
    cmd.env("HOME", home.path());
    let out = cmd.output().expect("run the browser driver");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ok"),
        "browser test failed:\n{stdout}\n{}\nwebmail: {}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(w.inst.path().join("log/webmail.log")).unwrap_or_default()
    );
    let z: serde_json::Value =
        serde_json::from_str(&w.inst.ctl_ok(&["--json", "user", "show", "张三@a.example"]))
            .unwrap();
    assert_eq!(z["quota_bytes"], 50u64 << 20);
    let u = w.inst.ctl_ok(&["--json", "user", "show", "u@a.example"]);
    assert!(u.contains("李四@b.example"), "{u}");
}
