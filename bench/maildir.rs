//! Maildir library timings on a large folder. Not a test: it asserts nothing.
//!
//!   cargo bench --bench maildir -- [MESSAGES] [DIR] [--drop-caches]
//!
//! Builds a Maildir of MESSAGES (default 50,000) small messages in cur/ under
//! DIR (default a temporary directory; files written directly, without
//! fsync, to save setup time), then times: the first open (no index: every
//! file is stat'ed once), an open with the index (a new session), a sync with
//! nothing changed, a sync after one delivery, a sync after a flag change, a
//! delivery-id lookup, and rates of durable deliveries and APPENDs.
//! `--drop-caches` (root only) empties the page cache before the cold opens.

use std::fs;
use std::io::Cursor;
use std::path::Path;
use std::time::{Duration, Instant};

use kmpromail::maildir::{deliver_many, FlagOp, Flags, Maildir, Target, Uid};

fn rss_kb() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn drop_caches(enabled: bool) {
    if enabled {
        nix::unistd::sync();
        if fs::write("/proc/sys/vm/drop_caches", "3").is_err() {
            eprintln!("(cannot drop caches: not root)");
        }
    }
}

fn time<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    let d = t.elapsed();
    println!("{label:<44} {:>10.2} ms", d.as_secs_f64() * 1000.0);
    r
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let drop = args.iter().any(|a| a == "--drop-caches");
    let rest: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let n: usize = rest.first().and_then(|s| s.parse().ok()).unwrap_or(50_000);
    let tmp = tempfile::tempdir().expect("temporary directory");
    let base_dir = rest.get(1).map(Path::new).unwrap_or(tmp.path());
    let root = base_dir.join(format!("bench-maildir-{}", std::process::id()));
    let md = Maildir::create(&root).expect("create Maildir");

    let t = Instant::now();
    let body = "From: a@example.com\nSubject: bench\n\nhello\n";
    let host = "bench.example";
    for i in 0..n {
        let name = format!(
            "{}.M{}P1Q{i}.{host},S={},W={}:2,{}",
            1_700_000_000 + i,
            i % 1_000_000,
            body.len(),
            body.len() + 4,
            if i % 3 == 0 { "S" } else { "" }
        );
        fs::write(root.join("cur").join(name), body).expect("write message");
    }
    println!(
        "{n} messages written in {:.1} s (setup)",
        t.elapsed().as_secs_f64()
    );
    println!();

    drop_caches(drop);
    let rss0 = rss_kb();
    let mut first = time("open, no index (builds it)", || {
        md.inbox().open().expect("open")
    });
    println!(
        "{:<44} {:>10} KB",
        "RSS of one open view",
        rss_kb().saturating_sub(rss0)
    );
    let index_size = fs::metadata(root.join("kmpromail-uidlist"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "{:<44} {:>10} B ({} B/message)",
        "index file",
        index_size,
        index_size / n.max(1) as u64
    );
    drop_caches(drop);
    let mut second = time("open with index (new session, cold view)", || {
        md.inbox().open().expect("open")
    });
    time("open with index again (page cache warm)", || {
        md.inbox().open().expect("open")
    });
    // Directory mtimes are trusted once more than two seconds old.
    std::thread::sleep(Duration::from_millis(2100));
    second.sync().expect("sync");
    time("sync, nothing changed", || second.sync().expect("sync"));
    time("sync, nothing changed (forced rescan)", || {
        second.rescan().expect("rescan")
    });
    md.inbox()
        .deliver(&mut Cursor::new(body.as_bytes()), Some("bench-1"))
        .expect("deliver");
    let c = time("sync after one delivery", || second.sync().expect("sync"));
    assert_eq!(c.added.len(), 1);
    time("store \\Seen on one message", || {
        first
            .store(
                &[Uid(7)],
                FlagOp::Add,
                Flags::SEEN | Flags::FLAGGED,
                &[],
                None,
            )
            .expect("store")
    });
    let c = time("sync after another session's flag change", || {
        second.sync().expect("sync")
    });
    assert_eq!(c.changed.len(), 1);
    time("find_delivery, id absent (reads new/ and cur/)", || {
        md.inbox().find_delivery("not-there", None).expect("find")
    });
    let arrived = Some(std::time::SystemTime::now() + Duration::from_secs(600));
    time("find_delivery, absent, arrival after last change", || {
        md.inbox()
            .find_delivery("not-there", arrived)
            .expect("find")
    });
    time("find_delivery, id present in new/", || {
        md.inbox().find_delivery("bench-1", None).expect("find")
    });
    time("expunge one message", || {
        second.expunge(&[Uid(9)]).expect("expunge")
    });
    let c = time("sync after another session's expunge", || {
        first.sync().expect("sync")
    });
    assert_eq!(c.expunged.len(), 1);

    let k = 300;
    let t = Instant::now();
    for i in 0..k {
        md.inbox()
            .deliver(&mut Cursor::new(body.as_bytes()), Some(&format!("d{i}")))
            .expect("deliver");
    }
    let d = t.elapsed().as_secs_f64();
    println!(
        "{:<44} {:>10.0} /s",
        "durable deliveries, id checked in new/+cur/",
        k as f64 / d
    );
    let inbox = md.inbox();
    let t = Instant::now();
    for i in 0..k {
        let target = Target {
            folder: &inbox,
            delivery_id: Some(&format!("e{i}")),
            arrived: Some(std::time::SystemTime::now()),
        };
        let r = deliver_many(&[target], &mut Cursor::new(body.as_bytes()));
        r.into_iter().next().expect("one result").expect("deliver");
    }
    let d = t.elapsed().as_secs_f64();
    println!(
        "{:<44} {:>10.0} /s",
        "durable deliveries, id checked with arrival",
        k as f64 / d
    );
    let t = Instant::now();
    for _ in 0..k {
        md.inbox()
            .append(&mut Cursor::new(body.as_bytes()), Flags::SEEN, &[], None)
            .expect("append");
    }
    let d = t.elapsed().as_secs_f64();
    println!(
        "{:<44} {:>10.0} /s",
        "APPENDs returning a UID (50k folder)",
        k as f64 / d
    );
    let c = time("sync after 900 new messages", || {
        first.sync().expect("sync")
    });
    println!("({} added)", c.added.len());
    let _ = fs::remove_dir_all(&root);
}
