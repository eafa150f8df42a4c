//! The test suite's own tooling: the check `make test` runs for the external
//! programs the tests drive, the harness's message when one is missing, and
//! the bench scripts' path to the comparison kit.
mod common;

use std::path::Path;
use std::process::Command;

use common::{missing_tool, TOOLS};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A missing swaks or mbsync made a test panic with a bare `NotFound`.
#[test]
fn missing_test_tool_is_named_with_its_package() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("tools.txt");
    std::fs::write(
        &list,
        "# program package\nsh dash\nkmp-no-such-tool kmp-tool-pkg\n/nonexistent/kmp-sink kmp-sink-pkg\nkmp-other-tool kmp-tool-pkg\n",
    )
    .unwrap();
    let out = Command::new("sh")
        .arg(Path::new(ROOT).join("tests/tools.sh"))
        .env("TOOLS_FILE", &list)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for name in [
        "kmp-no-such-tool",
        "/nonexistent/kmp-sink",
        "kmp-other-tool",
    ] {
        assert!(err.contains(name), "{name} not named: {err}");
    }
    assert!(!err.contains(" sh ") && !err.contains("dash"), "{err}");
    let install: Vec<&str> = err.lines().filter(|l| l.contains("install")).collect();
    assert!(
        install
            .iter()
            .any(|l| l.contains("kmp-tool-pkg kmp-sink-pkg")
                && l.matches("kmp-tool-pkg").count() == 1),
        "one install line, each package once: {err}"
    );

    // Everything present: silent success.
    std::fs::write(&list, "sh dash\n").unwrap();
    let out = Command::new("sh")
        .arg(Path::new(ROOT).join("tests/tools.sh"))
        .env("TOOLS_FILE", &list)
        .output()
        .unwrap();
    assert!(out.status.success() && out.stderr.is_empty());

    // The harness says the same when a test spawns a missing program.
    let why = missing_tool("kmp-no-such-tool", "kmp-no-such-tool kmp-tool-pkg\n").unwrap();
    assert!(
        why.contains("kmp-no-such-tool") && why.contains("apt-get install kmp-tool-pkg"),
        "{why}"
    );
    assert_eq!(missing_tool("sh", TOOLS), None);
}

/// `make test` checks the tools first; .ci/run installs the same list.
#[test]
fn make_test_and_ci_share_the_tool_list() {
    let make = std::fs::read_to_string(Path::new(ROOT).join("Makefile")).unwrap();
    let target = make.split("\ntest:").nth(1).expect("a test target");
    let first = target.lines().nth(1).unwrap_or_default();
    assert!(
        first.contains("tests/tools.sh"),
        "make test starts with: {first}"
    );
    let ci = std::fs::read_to_string(Path::new(ROOT).join(".ci/run")).unwrap();
    assert!(
        ci.contains("tests/tools.txt"),
        ".ci/run does not read tests/tools.txt"
    );
}

/// Every program a test starts through the harness is in tests/tools.txt.
#[test]
fn every_tool_the_tests_run_is_listed() {
    let listed: Vec<&str> = TOOLS
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut unlisted = Vec::new();
    for e in std::fs::read_dir(Path::new(ROOT).join("tests")).unwrap() {
        let path = e.unwrap().path();
        // This file names made-up programs on purpose.
        if path.extension().is_none_or(|x| x != "rs") || path.ends_with("tools.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for part in text.split("tool(\"").skip(1) {
            let name = part.split('"').next().unwrap_or_default();
            if !name.starts_with("kmp-") && !listed.contains(&name) {
                unlisted.push(format!("{}: {name}", path.display()));
            }
        }
    }
    assert!(unlisted.is_empty(), "not in tests/tools.txt: {unlisted:?}");
}

/// The bench scripts looked for the comparison kit at an absolute path of
/// one machine; it is `../shared/kit` beside the checkout (or `$KIT`).
#[test]
fn bench_scripts_find_the_kit_beside_the_checkout() {
    let mut bad = Vec::new();
    for e in std::fs::read_dir(Path::new(ROOT).join("bench")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "sh") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines().filter(|l| l.contains("${KIT:-")) {
            if !line.contains("/../shared/kit}") {
                bad.push(format!("{}: {line}", path.display()));
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

/// tests/tools.sh runs under any POSIX sh.
#[test]
fn tools_sh_is_shellcheck_clean() {
    let out = common::tool("shellcheck")
        .args(["-s", "sh"])
        .arg(Path::new(ROOT).join("tests/tools.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
