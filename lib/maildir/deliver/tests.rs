use super::*;
use crate::maildir::Maildir;
use std::io::Cursor;
use std::os::unix::fs::MetadataExt;

fn user() -> (tempfile::TempDir, Maildir) {
    let d = tempfile::tempdir().unwrap();
    let md = Maildir::create(d.path().join("u")).unwrap();
    (d, md)
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn delivers_into_new_with_both_sizes_and_clean_tmp() {
    let (_d, md) = user();
    let msg = b"Subject: t\n\nline 1\nline 2\r\n";
    let got = md.inbox().deliver(&mut Cursor::new(msg), None).unwrap();
    assert!(!got.duplicate);
    assert_eq!(got.size, msg.len() as u64);
    assert_eq!(got.vsize, msg.len() as u64 + 3, "three bare LFs");
    assert!(got
        .base
        .ends_with(&format!(",S={},W={}", got.size, got.vsize)));
    assert_eq!(fs::read(&got.path).unwrap(), msg);
    assert_eq!(names(&md.root().join("new")), vec![got.base.clone()]);
    assert!(names(&md.root().join("tmp")).is_empty());
    assert_eq!(fs::metadata(&got.path).unwrap().mode() & 0o777, 0o600);
}

#[test]
fn delivery_id_makes_retries_idempotent_even_after_a_crash() {
    let (_d, md) = user();
    let inbox = md.inbox();
    // A crash after the link into new/ but before kmp-send recorded success:
    // simulated by delivering, then "retrying" with the same id.
    let first = inbox
        .deliver(&mut Cursor::new(b"a\n"), Some("Q1.0/x"))
        .unwrap();
    assert!(!first.duplicate);
    let retry = inbox
        .deliver(&mut Cursor::new(b"a\n"), Some("Q1.0/x"))
        .unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.path, first.path);
    assert_eq!(names(&md.root().join("new")).len(), 1);
    // Still found once an IMAP session moved it to cur/ and flagged it.
    let to = md.root().join("cur").join(format!("{}:2,S", first.base));
    fs::rename(&first.path, &to).unwrap();
    let again = inbox
        .deliver(&mut Cursor::new(b"a\n"), Some("Q1.0/x"))
        .unwrap();
    assert!(again.duplicate && again.path == to);
    // Another id is another delivery.
    let other = inbox
        .deliver(&mut Cursor::new(b"a\n"), Some("Q1.1"))
        .unwrap();
    assert!(!other.duplicate);
    assert!(inbox.find_delivery("Q1.2", None).unwrap().is_none());
    // A leftover tmp/ file from a crash before the link is not a delivery.
    fs::write(
        md.root()
            .join("tmp")
            .join(name::unique(SystemTime::now(), Some("Q9"))),
        b"part",
    )
    .unwrap();
    assert!(inbox.find_delivery("Q9", None).unwrap().is_none());
}

#[test]
fn the_arrival_time_skips_directories_unchanged_since() {
    let (_d, md) = user();
    let inbox = md.inbox();
    inbox
        .deliver(&mut Cursor::new(b"a\n"), Some("Q7.0"))
        .unwrap();
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    assert!(inbox
        .find_delivery("Q7.0", Some(now - hour))
        .unwrap()
        .is_some());
    assert!(inbox
        .find_delivery("Q7.0", Some(now + hour))
        .unwrap()
        .is_none());
    assert!(
        inbox.find_delivery("Q7.0", Some(now)).unwrap().is_some(),
        "within the clock skew"
    );
}

#[test]
fn single_instance_links_one_file_into_many_maildirs() {
    let d = tempfile::tempdir().unwrap();
    let users: Vec<Maildir> = (0..3)
        .map(|i| Maildir::create(d.path().join(format!("u{i}"))).unwrap())
        .collect();
    let inboxes: Vec<Folder> = users.iter().map(Maildir::inbox).collect();
    let ids = ["m.0", "m.1", "m.2"];
    let targets: Vec<Target> = inboxes
        .iter()
        .zip(ids)
        .map(|(f, id)| Target {
            folder: f,
            delivery_id: Some(id),
            arrived: None,
        })
        .collect();
    let res = deliver_many(&targets, &mut Cursor::new(b"Subject: all\n\nhi\n"));
    let paths: Vec<PathBuf> = res.into_iter().map(|r| r.unwrap().path).collect();
    let ino = fs::metadata(&paths[0]).unwrap().ino();
    for p in &paths {
        let md = fs::metadata(p).unwrap();
        assert_eq!(md.ino(), ino);
        assert_eq!(
            md.nlink(),
            3,
            "one inode, three mailboxes, no tmp link left"
        );
    }
    for u in &users {
        assert!(names(&u.root().join("tmp")).is_empty());
    }
    // A retry of the whole job: every target already has it.
    let res = deliver_many(&targets, &mut Cursor::new(b"Subject: all\n\nhi\n"));
    assert!(res.iter().all(|r| r.as_ref().unwrap().duplicate));
}

#[test]
fn a_failing_target_does_not_stop_the_others_nor_leave_files() {
    let d = tempfile::tempdir().unwrap();
    let good = Maildir::create(d.path().join("good")).unwrap().inbox();
    let missing = Maildir::new(d.path().join("missing")).inbox();
    let targets = [
        Target {
            folder: &missing,
            delivery_id: None,
            arrived: None,
        },
        Target {
            folder: &good,
            delivery_id: None,
            arrived: None,
        },
    ];
    let res = deliver_many(&targets, &mut Cursor::new(b"x\n"));
    assert!(res[0].as_ref().unwrap_err().is_temporary());
    // The first target could not even hold the tmp file: everyone fails
    // temporarily and will be retried; nothing is half-written anywhere.
    assert!(res[1].is_err());
    assert!(names(&good.path().join("new")).is_empty());
    let targets = [
        Target {
            folder: &good,
            delivery_id: None,
            arrived: None,
        },
        Target {
            folder: &missing,
            delivery_id: None,
            arrived: None,
        },
    ];
    let res = deliver_many(&targets, &mut Cursor::new(b"x\n"));
    assert!(res[0].is_ok() && res[1].is_err());
    assert!(names(&good.path().join("tmp")).is_empty());
}

#[test]
fn read_errors_leave_nothing_behind() {
    struct Broken(usize);
    impl Read for Broken {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("queue file vanished"));
            }
            self.0 -= 1;
            buf[0] = b'x';
            Ok(1)
        }
    }
    let (_d, md) = user();
    let err = md.inbox().deliver(&mut Broken(10), Some("id")).unwrap_err();
    assert!(err.is_temporary());
    assert!(names(&md.root().join("tmp")).is_empty());
    assert!(names(&md.root().join("new")).is_empty());
}

#[test]
fn read_only_maildir_is_a_typed_temporary_error() {
    if nix::unistd::Uid::effective().is_root() {
        return; // root ignores permissions
    }
    let (_d, md) = user();
    let tmp = md.root().join("tmp");
    let mut perm = fs::metadata(&tmp).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o500);
    fs::set_permissions(&tmp, perm.clone()).unwrap();
    let err = md
        .inbox()
        .deliver(&mut Cursor::new(b"x\n"), None)
        .unwrap_err();
    assert!(matches!(err, Error::Permission { .. }), "{err:?}");
    assert!(err.is_temporary());
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o700);
    fs::set_permissions(&tmp, perm).unwrap();
}
