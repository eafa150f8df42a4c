//! `kmpctl db dump` carries fetch accounts with their passwords sealed as
//! stored, and `db load` gives them back working: after a dump, a delete
//! and a load, the account still logs in to the remote server (the sealed
//! password still opens) and fetches.

mod common;

use std::time::Duration;

use common::fetch::{
    add_account, fill, local, local_folder, remote, wait_count, LOCAL_USER, REMOTE_PASS,
    REMOTE_USER,
};

#[test]
fn a_dump_carries_fetch_accounts_sealed_and_a_load_restores_them() {
    let r = remote();
    fill(&r, "", "dump", 2, 300);
    let l = local(&r, &[]);
    let port = (r.base + 995).to_string();
    add_account(
        &l,
        "新浪",
        REMOTE_PASS,
        &[
            "--protocol",
            "pop3",
            "--host",
            "localhost",
            "--port",
            &port,
            "--username",
            REMOTE_USER,
            "--target",
            "新浪邮箱",
            "--disable",
        ],
    );
    let dump = l.ctl_ok(&["db", "dump"]);
    let line = dump
        .lines()
        .find(|l| l.starts_with("{\"type\":\"fetch\""))
        .unwrap_or_else(|| panic!("no fetch line in:\n{dump}"));
    assert!(line.contains("\"name\":\"新浪\""), "{line}");
    assert!(!dump.contains(REMOTE_PASS), "{dump}");
    let file = l.path().join("users.dump");
    std::fs::write(&file, &dump).unwrap();
    let out = l.ctl_ok(&["db", "dump", l.path().join("again.dump").to_str().unwrap()]);
    let _ = out;

    l.ctl_ok(&["fetch", "del", LOCAL_USER, "新浪"]);
    assert_eq!(
        l.ctl_ok(&["fetch", "list", LOCAL_USER, "--json"]).trim(),
        "[]"
    );
    let out = l.ctl(&["db", "load", "--replace", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 fetch account"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        l.ctl_ok(&["db", "dump"]),
        dump,
        "a loaded dump dumps the same"
    );
    let shown = l.ctl_ok(&["fetch", "show", LOCAL_USER, "新浪"]);
    assert!(shown.contains("新浪邮箱"), "{shown}");
    // The sealed password opens: the account fetches.
    let ran = l.ctl_ok(&["fetch", "run", LOCAL_USER, "新浪"]);
    assert!(ran.contains("fetched 2"), "{ran}");
    assert_eq!(
        wait_count(&local_folder(&l, "新浪邮箱"), 2, Duration::from_secs(30)),
        2,
        "{}",
        l.log("kmp-local")
    );
}
