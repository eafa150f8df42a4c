//! `maildirsize`: the Maildir++ quota file, as Courier and Dovecot keep it.
//!
//! The file sits at the Maildir's root. Its first line holds the limits
//! (`<bytes>S,<messages>C`, 0 or a missing part meaning no limit); every
//! further line is a change `<bytes> <messages>` (negative for removals).
//! Usage is the sum of those lines. Writers only append a line, in one
//! `write(2)` on an `O_APPEND` descriptor, so concurrent deliveries and
//! expunges need no lock. The file is recalculated from the message files
//! (their `S=` sizes) when it is missing, has grown past 5120 bytes, carries
//! other limits than the caller's, or is over quota and older than 15
//! minutes (the rules of Courier's maildirquota).
//!
//! The library never refuses a delivery for quota: [`usage`] tells the caller
//! where the user stands ([`Usage::would_exceed`], [`Usage::percent`] for
//! kmp-local's one-time warning) and the caller decides.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::error::{io_err, Error, Result};
use super::{name, Folder};

/// The quota file at a Maildir's root.
pub const MAILDIRSIZE: &str = "maildirsize";
/// The folder that does not count (Courier's rule, which kmp-local follows
/// too): moving mail to Trash never pushes a user over quota, and emptying
/// it gives nothing back that was counted.
pub const UNCOUNTED: &str = ".Trash";
/// Past this size the file is recalculated (Courier's rule).
const RECALC_SIZE: u64 = 5120;
/// An over-quota file older than this is recalculated (Courier's rule).
const STALE: Duration = Duration::from_secs(15 * 60);

/// A user's limits; 0 means no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub bytes: u64,
    pub messages: u64,
}

/// What a user's Maildir holds, against the limits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub messages: u64,
    pub limits: Limits,
}

impl Usage {
    /// The larger of bytes and messages used, in percent of its limit
    /// (0 when there is no limit; may exceed 100).
    pub fn percent(&self) -> u32 {
        let pct = |used: u64, limit: u64| {
            used.saturating_mul(100)
                .checked_div(limit)
                .map_or(0, |p| p.min(u64::from(u32::MAX)) as u32)
        };
        pct(self.bytes, self.limits.bytes).max(pct(self.messages, self.limits.messages))
    }

    /// Whether one more message of `size` bytes would go over a limit.
    pub fn would_exceed(&self, size: u64) -> bool {
        (self.limits.bytes > 0 && self.bytes.saturating_add(size) > self.limits.bytes)
            || (self.limits.messages > 0 && self.messages + 1 > self.limits.messages)
    }

    /// Whether `messages` more messages of `bytes` bytes in all would go
    /// over a limit (IMAP COPY of a set).
    pub fn would_exceed_by(&self, bytes: u64, messages: u64) -> bool {
        (self.limits.bytes > 0 && self.bytes.saturating_add(bytes) > self.limits.bytes)
            || (self.limits.messages > 0
                && self.messages.saturating_add(messages) > self.limits.messages)
    }

    /// Whether a limit is already exceeded.
    pub fn is_over(&self) -> bool {
        (self.limits.bytes > 0 && self.bytes > self.limits.bytes)
            || (self.limits.messages > 0 && self.messages > self.limits.messages)
    }

    /// What is in use against each limit, as a person reads it:
    /// `2048 of 10000 bytes, 1 message (no limit)`.
    pub fn describe(&self) -> String {
        let part = |used: u64, limit: u64, one: &str, many: &str| {
            let unit = if used == 1 { one } else { many };
            match limit {
                0 => format!("{used} {unit} (no limit)"),
                _ => format!("{used} of {limit} {many}"),
            }
        };
        format!(
            "{}, {}",
            part(self.bytes, self.limits.bytes, "byte", "bytes"),
            part(self.messages, self.limits.messages, "message", "messages")
        )
    }
}

/// The user's usage. With `limits` (from the user database) the file is
/// created or rewritten to carry them; without, the file's own limits count
/// and a missing file is computed but not created.
pub fn usage(root: &Path, limits: Option<Limits>) -> Result<Usage> {
    let path = root.join(MAILDIRSIZE);
    let (text, meta) = match fs::read_to_string(&path) {
        Ok(t) => {
            let md = fs::metadata(&path).map_err(io_err("stat", &path))?;
            (t, md)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return match limits {
                Some(l) => recalculate(root, l),
                None => compute(root, Limits::default()),
            };
        }
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    let Some(u) = parse(&text) else {
        return recalculate(root, limits.unwrap_or_default());
    };
    let age = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok());
    let stale = u.is_over() && age.is_some_and(|a| a > STALE);
    if meta.len() > RECALC_SIZE || limits.is_some_and(|l| l != u.limits) || stale {
        return recalculate(root, limits.unwrap_or(u.limits));
    }
    Ok(u)
}

/// Recounts every message of the Maildir and rewrites `maildirsize`
/// (temporary name, then rename).
pub fn recalculate(root: &Path, limits: Limits) -> Result<Usage> {
    let u = compute(root, limits)?;
    let text = format!("{}\n{} {}\n", limits_line(limits), u.bytes, u.messages);
    super::write_atomic(&root.join(MAILDIRSIZE), text.as_bytes())?;
    Ok(u)
}

/// Whether a folder's messages count against the quota: all but Trash's.
pub fn counts(folder: &Folder) -> bool {
    folder.dir != folder.root.join(UNCOUNTED)
}

/// Appends a change in `folder` to `maildirsize`, if the folder counts and
/// the file exists. Quota bookkeeping never fails a delivery or an expunge:
/// a lost line is corrected by the next recalculation.
pub fn record(folder: &Folder, bytes: i64, messages: i64) {
    if (bytes == 0 && messages == 0) || !counts(folder) {
        return;
    }
    let path = folder.root.join(MAILDIRSIZE);
    if let Ok(mut f) = OpenOptions::new().append(true).open(&path) {
        let _ = f.write_all(format!("{bytes} {messages}\n").as_bytes());
    }
}

fn limits_line(l: Limits) -> String {
    format!("{}S,{}C", l.bytes, l.messages)
}

/// Parses the file; None when the limits line is unreadable.
fn parse(text: &str) -> Option<Usage> {
    let mut lines = text.lines();
    let mut limits = Limits::default();
    for part in lines
        .next()?
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        if let Some(n) = part.strip_suffix('S') {
            limits.bytes = n.parse().ok()?;
        } else if let Some(n) = part.strip_suffix('C') {
            limits.messages = n.parse().ok()?;
        } else {
            return None;
        }
    }
    let (mut bytes, mut messages) = (0i64, 0i64);
    for line in lines {
        let mut f = line.split_whitespace();
        // A torn or foreign line is skipped, as Courier does.
        let (Some(b), Some(c)) = (f.next(), f.next()) else {
            continue;
        };
        if let (Ok(b), Ok(c)) = (b.parse::<i64>(), c.parse::<i64>()) {
            bytes = bytes.saturating_add(b);
            messages = messages.saturating_add(c);
        }
    }
    Some(Usage {
        bytes: bytes.max(0) as u64,
        messages: messages.max(0) as u64,
        limits,
    })
}

/// Sums `S=` sizes (or file sizes) over INBOX and every `.folder` but Trash.
fn compute(root: &Path, limits: Limits) -> Result<Usage> {
    let mut u = Usage {
        limits,
        ..Usage::default()
    };
    let mut dirs = vec![root.to_path_buf()];
    let entries = fs::read_dir(root).map_err(io_err("readdir", root))?;
    for e in entries.flatten() {
        let n = e.file_name();
        let n = n.to_string_lossy();
        if n.starts_with('.') && n != UNCOUNTED && e.path().join("cur").is_dir() {
            dirs.push(e.path());
        }
    }
    for dir in dirs {
        for sub in ["new", "cur"] {
            let d = dir.join(sub);
            let Ok(entries) = fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let n = e.file_name();
                let n = n.to_string_lossy();
                if n.starts_with('.') {
                    continue;
                }
                let size = match name::field(name::split(&n).0, 'S') {
                    Some(s) => s,
                    None => e.metadata().map(|m| m.len()).unwrap_or(0),
                };
                u.bytes += size;
                u.messages += 1;
            }
        }
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maildir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for s in [
            "new",
            "cur",
            "tmp",
            ".Sent/cur",
            ".Sent/new",
            ".Trash/cur",
            ".Trash/new",
        ] {
            fs::create_dir_all(d.path().join(s)).unwrap();
        }
        fs::write(d.path().join("cur/1.a.h,S=100,W=104:2,S"), "x").unwrap();
        fs::write(d.path().join("new/2.b.h,S=50,W=52"), "y").unwrap();
        fs::write(d.path().join(".Sent/cur/3.c.h:2,S"), "12345").unwrap();
        fs::write(d.path().join(".Trash/cur/4.d.h,S=999:2,S"), "x").unwrap();
        d
    }

    #[test]
    fn recalculates_when_missing_then_appends() {
        let d = maildir();
        let lim = Limits {
            bytes: 1000,
            messages: 10,
        };
        let u = usage(d.path(), Some(lim)).unwrap();
        assert_eq!((u.bytes, u.messages), (155, 3));
        assert_eq!(
            fs::read_to_string(d.path().join(MAILDIRSIZE)).unwrap(),
            "1000S,10C\n155 3\n"
        );
        let inbox = crate::maildir::Maildir::new(d.path()).inbox();
        record(&inbox, 45, 1);
        record(&inbox, -100, -1);
        let u = usage(d.path(), Some(lim)).unwrap();
        assert_eq!((u.bytes, u.messages), (100, 3));
        assert_eq!(u.percent(), 30);
        assert!(!u.would_exceed(900) && u.would_exceed(901));
        assert_eq!(u.describe(), "100 of 1000 bytes, 3 of 10 messages");
        let one = Usage {
            bytes: 5,
            messages: 1,
            limits: Limits {
                bytes: 10,
                messages: 0,
            },
        };
        assert_eq!(one.describe(), "5 of 10 bytes, 1 message (no limit)");
    }

    #[test]
    fn reads_courier_files_and_rewrites_on_growth_or_new_limits() {
        let d = maildir();
        let path = d.path().join(MAILDIRSIZE);
        fs::write(&path, "500S\n10 1\ngarbage\n20 1\n").unwrap();
        let u = usage(d.path(), None).unwrap();
        assert_eq!(
            (u.bytes, u.messages, u.limits.bytes, u.limits.messages),
            (30, 2, 500, 0)
        );
        assert_eq!(u.percent(), 6);
        let u = usage(
            d.path(),
            Some(Limits {
                bytes: 200,
                messages: 0,
            }),
        )
        .unwrap();
        assert_eq!(
            (u.bytes, u.messages),
            (155, 3),
            "other limits: recalculated"
        );
        let mut big = String::from("200S,0C\n");
        for _ in 0..2000 {
            big.push_str("1 0\n");
        }
        fs::write(&path, big).unwrap();
        let u = usage(d.path(), None).unwrap();
        assert_eq!(u.bytes, 155, "over 5120 bytes: recalculated");
        assert!(fs::metadata(&path).unwrap().len() < 100);
        assert_eq!(parse("nonsense\n"), None);
    }

    #[test]
    fn no_file_and_no_limits_creates_nothing() {
        let d = maildir();
        let u = usage(d.path(), None).unwrap();
        assert_eq!(u.messages, 3);
        assert_eq!(u.percent(), 0);
        assert!(!d.path().join(MAILDIRSIZE).exists());
        record(&crate::maildir::Maildir::new(d.path()).inbox(), 1, 1);
        assert!(!d.path().join(MAILDIRSIZE).exists());
    }
}
