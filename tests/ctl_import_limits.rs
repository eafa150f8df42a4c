//! `kmpctl import` keeps to the domains' limits: an import that would pass
//! one is refused whole with the reason, and nothing is written; `--force`
//! imports past them.

mod common;

use common::Instance;

fn users(inst: &Instance) -> String {
    inst.ctl_ok(&["user", "list", "a.example"])
}

#[test]
fn an_import_over_a_domain_limit_is_refused_whole_unless_forced() {
    let inst = Instance::new();
    inst.ctl_ok(&["domain", "add", "a.example"]);
    inst.ctl_ok(&["user", "add", "old@a.example"]);
    inst.ctl_ok(&[
        "domain",
        "set",
        "a.example",
        "--max-users",
        "3",
        "--max-aliases",
        "1",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let sha = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
    let three = dir.path().join("three");
    std::fs::write(
        &three,
        format!("ann@a.example:{sha}\nbea@a.example:{sha}\ncid@a.example:{sha}\n"),
    )
    .unwrap();
    let p = three.to_str().unwrap();
    let out = inst.ctl(&["import", "dovecot-passwd", p]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(73), "{err}");
    assert!(err.contains("at most 3 users"), "{err}");
    assert!(err.contains("cid@a.example"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    assert!(err.contains("--force"), "{err}");
    let list = users(&inst);
    assert!(!list.contains("ann@"), "a part was imported: {list}");

    // Aliases too (postfix-virtual), and a file within the limits goes in.
    let aliases = dir.path().join("virtual");
    std::fs::write(
        &aliases,
        "one@a.example old@a.example\ntwo@a.example old@a.example\n",
    )
    .unwrap();
    let out = inst.ctl(&["import", "postfix-virtual", aliases.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("at most 1 aliases"),
        "{err}"
    );
    assert!(!inst
        .ctl_ok(&["alias", "list", "a.example"])
        .contains("one@"));
    let two = dir.path().join("two");
    std::fs::write(&two, format!("ann@a.example:{sha}\nbea@a.example:{sha}\n")).unwrap();
    inst.ctl_ok(&["import", "dovecot-passwd", two.to_str().unwrap()]);
    assert!(users(&inst).contains("bea@a.example"));

    // --force goes past the limit.
    let more = dir.path().join("more");
    std::fs::write(&more, format!("cid@a.example:{sha}\ndan@a.example:{sha}\n")).unwrap();
    let m = more.to_str().unwrap();
    assert!(!inst.ctl(&["import", "dovecot-passwd", m]).status.success());
    inst.ctl_ok(&["import", "dovecot-passwd", m, "--force"]);
    let list = users(&inst);
    assert!(list.contains("cid@") && list.contains("dan@"), "{list}");
}
