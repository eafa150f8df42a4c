use super::*;

fn store(dir: &Path) -> Store {
    Store::new(
        dir,
        Limits {
            max_scripts: 3,
            max_script_size: 100,
            quota_bytes: 150,
        },
    )
}

#[test]
fn names_are_checked() {
    for good in ["a", "my rules", "规则", "x.y", "vacation-2026"] {
        assert!(check_name(good).is_ok(), "{good}");
    }
    let long = "a".repeat(MAX_NAME_BYTES + 1);
    for bad in [
        "", "a/b", "..", ".hidden", "a..b", "a\nb", "a\u{7f}", "a\u{85}", &long,
    ] {
        assert!(check_name(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn put_list_get_activate_rename_delete() {
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path());
    assert!(s.list().unwrap().is_empty());
    s.put("one", b"keep;\n").unwrap();
    s.put("二", b"discard;\n").unwrap();
    assert_eq!(s.get("one").unwrap(), b"keep;\n");
    assert!(d.path().join("sieve/one.sieve").is_file());
    s.set_active(Some("one")).unwrap();
    assert_eq!(
        fs::read_link(d.path().join(".dovecot.sieve")).unwrap(),
        Path::new("sieve/one.sieve")
    );
    let l = s.list().unwrap();
    assert_eq!(l.len(), 2);
    assert!(l.iter().any(|x| x.name == "one" && x.active));
    assert!(l.iter().any(|x| x.name == "二" && !x.active));
    assert!(matches!(s.delete("one"), Err(StoreError::Active)));
    assert!(matches!(s.rename("one", "二"), Err(StoreError::Exists)));
    s.rename("one", "uno").unwrap();
    assert_eq!(s.active().unwrap().as_deref(), Some("uno"));
    assert!(matches!(s.get("one"), Err(StoreError::NotFound)));
    s.set_active(None).unwrap();
    assert!(s.active().unwrap().is_none());
    s.delete("uno").unwrap();
    assert!(matches!(s.delete("uno"), Err(StoreError::NotFound)));
    assert!(matches!(
        s.set_active(Some("nope")),
        Err(StoreError::NotFound)
    ));
    // Nothing left behind in tmp/.
    assert_eq!(fs::read_dir(d.path().join("sieve/tmp")).unwrap().count(), 0);
}

#[test]
fn quota_counts_scripts_and_bytes_but_not_the_one_replaced() {
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path());
    assert!(matches!(
        s.put("big", &[b'x'; 101]),
        Err(StoreError::TooLarge)
    ));
    s.put("a", &[b'x'; 60]).unwrap();
    s.put("b", &[b'x'; 60]).unwrap();
    assert!(matches!(
        s.put("c", &[b'x'; 60]),
        Err(StoreError::OverQuota)
    ));
    s.put("c", &[b'x'; 30]).unwrap();
    assert!(matches!(s.have_space("d", 0), Err(StoreError::TooMany)));
    // Replacing a script counts its new size only.
    s.put("a", &[b'x'; 60]).unwrap();
    assert!(s.have_space("a", 60).is_ok());
    assert!(!d.path().join("sieve/big.sieve").exists());
}

#[test]
fn a_dovecot_regular_file_is_kept_when_another_script_is_activated() {
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path());
    fs::write(d.path().join(".dovecot.sieve"), b"keep;\n").unwrap();
    assert!(s.active().unwrap().is_none());
    s.put("new", b"stop;\n").unwrap();
    s.set_active(Some("new")).unwrap();
    assert_eq!(s.get(ORIGINAL_NAME).unwrap(), b"keep;\n");
    assert_eq!(s.active().unwrap().as_deref(), Some("new"));
}

#[test]
fn a_link_outside_the_directory_is_not_active() {
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path());
    s.put("a", b"keep;\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", d.path().join(".dovecot.sieve")).unwrap();
    assert!(s.active().unwrap().is_none());
    std::os::unix::fs::symlink("../x/a.sieve", d.path().join("l")).unwrap();
    fs::rename(d.path().join("l"), d.path().join(".dovecot.sieve")).unwrap();
    assert!(s.active().unwrap().is_none());
}

#[test]
fn no_home_is_an_error_not_a_new_directory() {
    let d = tempfile::tempdir().unwrap();
    let s = store(&d.path().join("missing"));
    assert!(matches!(s.put("a", b"keep;"), Err(StoreError::Io(_))));
    assert!(!d.path().join("missing").exists());
    assert!(s.list().unwrap().is_empty());
}

#[test]
fn a_stored_script_may_include_what_is_not_there_yet() {
    use crate::sieve::Extensions;
    let ok = "require \"include\";\ninclude :global \"spam\";\ninclude :personal \"later\";\n";
    assert!(check_script(ok, &Extensions::all()).is_ok());
    let bad = "require \"include\";\ninclude :global \"../etc/x\";\n";
    let e = check_script(bad, &Extensions::all())
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2"), "{e}");
    assert!(check_script("include \"x\";\n", &Extensions::all()).is_err());
}
