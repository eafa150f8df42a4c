//! kmpctl init, check and config, as an administrator runs them.
mod common;

use common::Instance;

#[test]
fn init_makes_a_valid_instance_on_high_ports() {
    let inst = Instance::new();
    let out = inst.ctl_ok(&["check"]);
    assert!(out.contains("configuration is valid"), "{out}");
    let changed = inst.ctl_ok(&["config", "--changed"]);
    assert!(
        changed.contains(&format!("127.0.0.1:{}", inst.base + 25)),
        "{changed}"
    );
    assert!(changed.contains(&format!("127.0.0.1:{}", inst.base + 993)));
    assert!(inst.path().join("tls/cert.pem").exists());
    let key_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(inst.path().join("tls/key.pem"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(key_mode & 0o077, 0, "the private key is readable by others");
    // A second init over the same directory refuses without --force.
    let again = std::process::Command::new(common::bin("kmpctl"))
        .arg("init")
        .arg(inst.path())
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(73));
}

#[test]
fn check_reports_every_error_with_line_and_exits_78() {
    let inst = Instance::new();
    inst.append_config("[authd]\nmax_failurs = 3\nban_time = \"soon\"\n");
    let out = inst.ctl(&["check"]);
    assert_eq!(out.status.code(), Some(78));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("authd.max_failurs: unknown key"), "{text}");
    assert!(text.contains("authd.ban_time:"), "{text}");
    assert_eq!(text.lines().count(), 2, "{text}");
    let json = inst.ctl(&["check", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["errors"].as_array().unwrap().len(), 2);
    assert!(v["errors"][0]["line"].as_u64().unwrap() > 30);
}

#[test]
fn missing_config_is_a_config_error() {
    let out = std::process::Command::new(common::bin("kmpctl"))
        .args(["--config", "/nonexistent/kmpromail.toml", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/kmpromail.toml"));
}

#[test]
fn sample_config_is_the_annotated_table() {
    let sample =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/etc/kmpromail.toml"))
            .unwrap();
    let out = std::process::Command::new(common::bin("kmpctl"))
        .args(["config", "--annotated"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        sample,
        "etc/kmpromail.toml is stale: regenerate it with `kmpctl config --annotated > etc/kmpromail.toml`"
    );
}

#[test]
fn every_key_is_in_the_man_page() {
    let man = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/man/man5/kmpromail.toml.5"
    ))
    .unwrap();
    let out = std::process::Command::new(common::bin("kmpctl"))
        .args(["config", "--defaults", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let missing: Vec<_> = v
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| !man.contains(&k.replace('-', "\\-")))
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "keys missing from kmpromail.toml(5): {missing:?}"
    );
}
