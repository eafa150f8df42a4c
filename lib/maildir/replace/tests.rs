use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::*;

/// The text writer `w` puts in its `n`th version: 64 lines that all name
/// the same writer and version, so a reader can tell a whole file from a
/// mix of two or a truncated one.
fn version(w: usize, n: usize) -> String {
    let mut s = String::new();
    for i in 0..64 {
        s.push_str(&format!(
            "{w} {n} {i:02} ................................\n"
        ));
    }
    s
}

fn is_whole(text: &str) -> bool {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() != 64 || !text.ends_with('\n') {
        return false;
    }
    let mut f = lines[0].split(' ');
    match (f.next().map(str::parse), f.next().map(str::parse)) {
        (Some(Ok(w)), Some(Ok(n))) => text == version(w, n),
        _ => false,
    }
}

/// Issue 12: the threads of one kmp-imapd shared the temporary name
/// `maildirsize.PID.tmp`, so one's rename took the other's file away
/// (`rename: No such file or directory`) or one truncated what the other
/// was writing.
#[test]
fn concurrent_rewrites_of_one_file_never_fail_and_leave_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("tmp")).unwrap();
    let path = dir.path().join("maildirsize");
    write_atomic(&path, version(99, 0).as_bytes()).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (path, done) = (path.clone(), done.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !done.load(Ordering::Relaxed) {
                    let text = fs::read_to_string(&path).unwrap();
                    assert!(is_whole(&text), "a reader saw a partial file:\n{text}");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let path = path.clone();
            std::thread::spawn(move || {
                for n in 0..150 {
                    write_atomic(&path, version(w, n).as_bytes())
                        .unwrap_or_else(|e| panic!("writer {w}, version {n}: {e}"));
                }
            })
        })
        .collect();
    for t in writers {
        t.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    for t in readers {
        assert!(t.join().unwrap() > 0);
    }
    assert!(is_whole(&fs::read_to_string(&path).unwrap()));
    // Nothing left behind: every temporary file was renamed into place.
    assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn temporary_names_differ_and_go_into_tmp() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("tmp")).unwrap();
    let path = dir.path().join("subscriptions");
    let (_a, pa) = temp_file(&path).unwrap();
    let (_b, pb) = temp_file(&path).unwrap();
    assert_ne!(pa, pb);
    for p in [&pa, &pb] {
        assert_eq!(p.parent().unwrap(), dir.path().join("tmp"));
        let name = p.file_name().unwrap().to_str().unwrap();
        let pid = format!("subscriptions.{}.", std::process::id());
        assert!(name.starts_with(&pid), "{name}");
        assert_eq!(fs::metadata(p).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

#[test]
fn a_directory_without_tmp_gets_the_temporary_file_beside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kmpromail-uidvalidity");
    write_atomic(&path, b"1\n").unwrap();
    write_atomic(&path, b"2\n").unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "2\n");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn a_failed_rename_removes_the_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("tmp")).unwrap();
    // A directory in the way: the rename fails, the file in tmp/ goes.
    let path = dir.path().join("maildirsize");
    fs::create_dir(&path).unwrap();
    fs::write(path.join("x"), b"x").unwrap();
    assert!(write_atomic(&path, b"0S,0C\n").is_err());
    assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
}
