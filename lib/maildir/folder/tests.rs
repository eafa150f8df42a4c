use super::*;
use std::io::Cursor;

fn user() -> (tempfile::TempDir, Maildir) {
    let d = tempfile::tempdir().unwrap();
    let md = Maildir::create(d.path().join("u")).unwrap();
    (d, md)
}

fn names(md: &Maildir) -> Vec<(String, bool, bool)> {
    md.list_folders()
        .unwrap()
        .into_iter()
        .map(|f| (f.name, f.selectable, f.has_children))
        .collect()
}

#[test]
fn new_users_get_the_special_folders_subscribed() {
    let (_d, md) = user();
    for (n, _) in SPECIAL {
        let dir = md.root().join(format!(".{n}"));
        assert!(dir.join("cur").is_dir() && dir.join(MAILDIRFOLDER).is_file());
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&fs::metadata(&dir).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o700);
    }
    let list = md.list_folders().unwrap();
    assert_eq!(list[0].name, "INBOX");
    let sent = list.iter().find(|f| f.name == "Sent").unwrap();
    assert_eq!(sent.special_use, Some(SpecialUse::Sent));
    assert!(sent.subscribed && sent.selectable);
    assert_eq!(
        md.subscriptions().unwrap(),
        vec!["Drafts", "INBOX", "Junk", "Sent", "Trash"]
    );
    // Creating again changes nothing.
    Maildir::create(md.root()).unwrap();
    assert_eq!(md.list_folders().unwrap(), list);
    // Metadata is private.
    md.inbox().open().unwrap();
    let mode = |p: &str| {
        std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(md.root().join(p)).unwrap().permissions(),
        ) & 0o777
    };
    for p in [
        SUBSCRIPTIONS,
        "kmpromail-uidlist",
        "kmpromail-uidlist.lock",
        ".Sent/maildirfolder",
    ] {
        assert_eq!(mode(p), 0o600, "{p}");
    }
    // A creation cut short (no cur/) is completed by the next CREATE.
    fs::create_dir(md.root().join(".Half")).unwrap();
    assert!(md.create_folder("Half").unwrap().exists());
}

#[test]
fn names_map_to_modified_utf7_directories() {
    assert_eq!(dir_name("Work").unwrap(), ".Work");
    assert_eq!(dir_name("Work.2024").unwrap(), ".Work.2024");
    assert_eq!(dir_name("邮件.已发送").unwrap(), ".&kK5O9g-.&XfJT0ZAB-");
    assert_eq!(dir_name("A&B").unwrap(), ".A&-B");
    assert_eq!(dir_name("inbox.x").unwrap(), ".INBOX.x");
    assert_eq!(
        folder_name(".&kK5O9g-.&XfJT0ZAB-").as_deref(),
        Some("邮件.已发送")
    );
    assert_eq!(folder_name(".Work"), Some("Work".to_string()));
    for bad in [
        ".", "..", ".Work..x", ".&Jjo", ".&AGE-", "Work", ".a/b", ".&-&",
    ] {
        assert_eq!(folder_name(bad), None, "{bad}");
    }
}

#[test]
fn hostile_names_are_refused() {
    let (_d, md) = user();
    let long = "x".repeat(300);
    let deep = vec!["a"; 40].join(".");
    let hostile = [
        "",
        ".",
        "..",
        "../x",
        "a/../../etc",
        "/etc",
        "a/b",
        ".hidden",
        "trailing.",
        "a..b",
        "nul\0x",
        "new\nline",
        "tab\t",
        "a\\b",
        "*",
        "a%",
        &long,
        &deep,
        "INBOX.",
        "\u{7f}",
    ];
    for name in hostile {
        assert!(
            matches!(md.create_folder(name), Err(Error::BadName(_))),
            "{name:?}"
        );
        assert!(md.folder(name).is_err() || name.is_empty(), "{name:?}");
        assert!(md.subscribe(name).is_err(), "{name:?}");
    }
    assert!(matches!(
        md.rename_folder("Sent", "../evil"),
        Err(Error::BadName(_))
    ));
    assert!(matches!(md.delete_folder("../u"), Err(Error::BadName(_))));
    // Nothing was created outside or inside.
    let entries = fs::read_dir(md.root().parent().unwrap()).unwrap().count();
    assert_eq!(entries, 1);
}

#[test]
fn create_rename_delete_nested_folders() {
    let (_d, md) = user();
    md.create_folder("Work").unwrap();
    md.create_folder("Work.2024").unwrap();
    md.create_folder("Work.2024.Q1").unwrap();
    md.create_folder("项目.报告").unwrap();
    assert!(matches!(md.create_folder("Work"), Err(Error::Exists(_))));
    assert!(matches!(md.create_folder("INBOX"), Err(Error::Exists(_))));
    let l = names(&md);
    assert!(l.contains(&("Work".into(), true, true)));
    assert!(l.contains(&("Work.2024.Q1".into(), true, false)));
    assert!(
        l.contains(&("项目".into(), false, true)),
        "implied parent: {l:?}"
    );
    assert!(l.contains(&("项目.报告".into(), true, false)));
    md.subscribe("Work.2024").unwrap();
    md.inbox().deliver(&mut Cursor::new(b"x\n"), None).unwrap();
    md.folder("Work.2024")
        .unwrap()
        .deliver(&mut Cursor::new(b"in 2024\n"), None)
        .unwrap();
    md.rename_folder("Work", "Archive.Old").unwrap();
    let l = names(&md);
    assert!(!l.iter().any(|f| f.0.starts_with("Work")), "{l:?}");
    assert!(l.contains(&("Archive.Old.2024.Q1".into(), true, false)));
    assert!(l.contains(&("Archive".into(), false, true)));
    assert!(md
        .subscriptions()
        .unwrap()
        .contains(&"Archive.Old.2024".to_string()));
    let moved = md.folder("Archive.Old.2024").unwrap().open().unwrap();
    assert_eq!(moved.len(), 1);
    assert!(matches!(
        md.rename_folder("Archive.Old", "Archive.Old.x"),
        Err(Error::NotAllowed(_))
    ));
    assert!(matches!(
        md.rename_folder("Archive.Old", "Sent"),
        Err(Error::Exists(_))
    ));
    assert!(matches!(
        md.rename_folder("Nope", "Other"),
        Err(Error::NoFolder(_))
    ));
    // DELETE keeps the children; the name stays as a \Noselect parent.
    md.delete_folder("Archive.Old").unwrap();
    let l = names(&md);
    assert!(l.contains(&("Archive.Old".into(), false, true)), "{l:?}");
    assert!(matches!(
        md.delete_folder("INBOX"),
        Err(Error::NotAllowed(_))
    ));
    assert!(matches!(md.delete_folder("Nope"), Err(Error::NoFolder(_))));
    // RENAME INBOX moves its messages and leaves it empty.
    md.rename_folder("INBOX", "Old mail").unwrap();
    assert_eq!(md.inbox().open().unwrap().len(), 0);
    assert_eq!(md.folder("Old mail").unwrap().open().unwrap().len(), 1);
    md.unsubscribe("Sent").unwrap();
    assert!(!md.subscriptions().unwrap().contains(&"Sent".to_string()));
}

#[test]
fn chinese_subscriptions_are_stored_in_modified_utf7() {
    let (_d, md) = user();
    md.create_folder("邮件").unwrap();
    md.subscribe("邮件").unwrap();
    let text = fs::read_to_string(md.root().join(SUBSCRIPTIONS)).unwrap();
    assert!(text.lines().any(|l| l == "&kK5O9g-"), "{text}");
    assert!(md.subscriptions().unwrap().contains(&"邮件".to_string()));
}

#[test]
fn every_accepted_name_stays_inside_and_round_trips() {
    // The fuzz target's property (fuzz/fuzz_targets/utf7.rs) over a table
    // of tricky names and all short strings over a hostile alphabet.
    let mut inputs: Vec<String> = [
        "INBOX",
        "inbox.Sub",
        "Inbox.x.y",
        "a.b.c",
        "&",
        "&-",
        "邮件",
        "a/b",
        "~root",
        "-",
        ".",
        "..",
        "a..",
        "😀.😀",
        "x\u{0}y",
        "\u{202e}evil",
        "con",
        "a b",
        " lead",
        "trail ",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let alphabet = ['.', '/', '&', '-', 'a', 'I', '\u{e9}', '\0', ' '];
    for len in 1..=4u32 {
        for mut n in 0..alphabet.len().pow(len) {
            let mut s = String::new();
            for _ in 0..len {
                s.push(alphabet[n % alphabet.len()]);
                n /= alphabet.len();
            }
            inputs.push(s);
        }
    }
    for s in &inputs {
        let Ok(dir) = dir_name(s) else { continue };
        assert!(
            dir.starts_with('.') && !dir.contains('/') && !dir.contains(".."),
            "{s:?} → {dir}"
        );
        assert!(!dir.bytes().any(|b| b < 0x20) && dir.len() <= MAX_DIR_NAME);
        let expected = match s.split_once('.') {
            Some((first, rest)) if first.eq_ignore_ascii_case("INBOX") => format!("INBOX.{rest}"),
            _ => s.to_string(),
        };
        assert_eq!(folder_name(&dir), Some(expected), "{s:?}");
    }
}
