//! `kmpctl sieve` for administrators, and kmp-sieved under `kmpctl start`
//! and `kmpctl status`.
mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::Instance;

const U: &str = "u@example.test";
const RULES: &str = "require \"fileinto\";\nif header :contains \"subject\" \"规则\" {\n  fileinto \"Reports\";\n}\n";
/// An error on line 3.
const BAD: &str = "require \"fileinto\";\n# fine so far\nif { keep; }\n";

fn instance(config: &[(&str, &str)]) -> Instance {
    let inst = Instance::new();
    for (s, l) in config {
        common::set_config(&inst, s, l);
    }
    inst.ctl_ok(&["domain", "add", "example.test"]);
    inst.ctl_ok(&["user", "add", U]);
    inst
}

fn code(inst: &Instance, args: &[&str]) -> (Option<i32>, String) {
    let o = inst.ctl(args);
    (
        o.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn kmpctl_sieve_puts_lists_shows_checks_activates_and_deletes() {
    let inst = instance(&[("sieve", "max_scripts = 2")]);
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.sieve");
    std::fs::write(&rules, RULES).unwrap();
    let bad = dir.path().join("bad.sieve");
    std::fs::write(&bad, BAD).unwrap();
    let home = inst.path().join("mail/example.test/u");
    assert!(!home.exists());
    // The Maildir is made for the first script.
    let out = inst.ctl_ok(&[
        "sieve",
        "put",
        U,
        "rules",
        rules.to_str().unwrap(),
        "--activate",
    ]);
    assert!(out.contains("stored script rules"), "{out}");
    assert!(home.join("cur").is_dir());
    assert_eq!(
        std::fs::read_to_string(home.join("sieve/rules.sieve")).unwrap(),
        RULES
    );
    assert_eq!(
        std::fs::read_link(home.join(".dovecot.sieve")).unwrap(),
        Path::new("sieve/rules.sieve")
    );
    let list = inst.ctl_ok(&["--json", "sieve", "list", U]);
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(v[0]["name"], "rules");
    assert_eq!(v[0]["active"], "yes");
    assert_eq!(inst.ctl_ok(&["sieve", "show", U, "rules"]), RULES);
    assert!(inst.ctl_ok(&["sieve", "check", U, "rules"]).contains("ok"));
    // A bad script: line 3 named, exit 65, nothing stored.
    let (c, text) = code(&inst, &["sieve", "check", "--file", bad.to_str().unwrap()]);
    assert_eq!(c, Some(65), "{text}");
    assert!(text.contains("line 3"), "{text}");
    let (c, _) = code(&inst, &["sieve", "put", U, "bad", bad.to_str().unwrap()]);
    assert_eq!(c, Some(65));
    assert!(!home.join("sieve/bad.sieve").exists());
    // From standard input.
    let o = inst.ctl_stdin(&["sieve", "put", U, "second"], Some(b"keep;\n"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Past sieve.max_scripts: 73.
    let o = inst.ctl_stdin(&["sieve", "put", U, "third"], Some(b"keep;\n"));
    assert_eq!(
        o.status.code(),
        Some(73),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The active script is not deleted.
    assert_eq!(code(&inst, &["sieve", "delete", U, "rules"]).0, Some(65));
    inst.ctl_ok(&["sieve", "activate", U, "second"]);
    inst.ctl_ok(&["sieve", "delete", U, "rules"]);
    inst.ctl_ok(&["sieve", "deactivate", U]);
    assert!(std::fs::symlink_metadata(home.join(".dovecot.sieve")).is_err());
    assert_eq!(code(&inst, &["sieve", "show", U, "rules"]).0, Some(66));
    assert_eq!(
        code(&inst, &["sieve", "show", U, "../../etc/passwd"]).0,
        Some(64)
    );
    assert_eq!(
        code(&inst, &["sieve", "list", "nobody@example.test"]).0,
        Some(67)
    );
    assert_eq!(code(&inst, &["sieve", "activate", U, "nope"]).0, Some(66));
}

#[test]
fn kmpctl_start_supervises_kmp_sieved_and_status_shows_it() {
    let inst = Instance::new();
    inst.ctl_ok(&["start"]);
    struct Stop<'a>(&'a Instance);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let _ = self.0.ctl(&["stop"]);
        }
    }
    let _stop = Stop(&inst);
    let c = TcpStream::connect(inst.addr(190)).expect("kmp-sieved listens on BASE+190");
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut line = String::new();
    BufReader::new(c).read_line(&mut line).unwrap();
    assert!(line.starts_with("\"IMPLEMENTATION\""), "{line}");
    let status = inst.ctl_ok(&["status"]);
    let row = status
        .lines()
        .find(|l| l.contains("kmp-sieved"))
        .unwrap_or_else(|| panic!("{status}"));
    assert!(
        row.contains(&format!("127.0.0.1:{}", inst.base + 190)),
        "{row}"
    );
}
