//! The Maildir operations local delivery needs: create a Maildir with its
//! special folders, deliver one message durably and idempotently into many
//! Maildirs at once (written once, hard-linked into each), and the
//! `maildirsize` quota file of Maildir++.
//!
//! Durability, step by step, for [`deliver_linked`]: the message is written
//! to `tmp/` of the first Maildir and fsynced (a crash leaves a file in
//! `tmp/`, which nobody reads and Maildir readers clean up after 36 hours);
//! then for each Maildir it is hard-linked into `new/` under a name that
//! carries the delivery id, and `new/` is fsynced (a crash between two links
//! leaves some Maildirs with the message and some without: the retry finds
//! the first by name and links only the others); then the `tmp/` name is
//! removed (a crash before leaves a second name of a delivered file in
//! `tmp/`, harmless).
//!
//! File names: `ARRIVED.K<id>.HOST,S=<size>,W=<size with CRLF>`, Dovecot's
//! convention for sizes. A retry finds an earlier delivery by the name's
//! `ARRIVED.K<id>.` prefix in `new/` or `cur/`, scanning only a directory
//! that changed after the message arrived.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::sys::fsync_dir;

/// The folders a new Maildir gets, as Dovecot's and Courier's clients expect them.
pub const SPECIAL_FOLDERS: &[&str] = &["Drafts", "Sent", "Trash", "Junk"];

/// Makes temporary names unique among the threads of this process.
fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Seconds of disagreement allowed between the queue's clock and file times.
const MTIME_MARGIN: i64 = 300;

/// Maildir++: past this size `maildirsize` is recalculated from the files.
const MAILDIRSIZE_LIMIT: u64 = 5120;

/// One Maildir to deliver into.
#[derive(Debug, Clone)]
pub struct Target {
    pub maildir: PathBuf,
    /// The file name's unique part (only `[A-Za-z0-9_-]` is kept).
    pub id: String,
}

/// Where a delivered message ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// Written now, under this path.
    New(PathBuf),
    /// Found from an earlier attempt with the same id: not written again.
    Already(PathBuf),
}

/// Creates the Maildir at `dir` (and its parents) with its special folders
/// when it is missing. Safe to race with another creator.
pub fn ensure(dir: &Path) -> io::Result<()> {
    if dir.join("new").is_dir() && dir.join("cur").is_dir() && dir.join("tmp").is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(parent)?;
    }
    mkdir(dir)?;
    for sub in ["tmp", "new", "cur"] {
        mkdir(&dir.join(sub))?;
    }
    for folder in SPECIAL_FOLDERS {
        let f = dir.join(format!(".{folder}"));
        mkdir(&f)?;
        for sub in ["tmp", "new", "cur"] {
            mkdir(&f.join(sub))?;
        }
        // Maildir++: a folder is marked by an empty `maildirfolder` file.
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(f.join("maildirfolder"))?;
    }
    fsync_dir(dir)?;
    if let Some(parent) = dir.parent() {
        fsync_dir(parent)?;
    }
    Ok(())
}

fn mkdir(p: &Path) -> io::Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(p) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        r => r,
    }
}

/// The device a path lives on: Maildirs on one device can share a file.
pub fn device(dir: &Path) -> io::Result<u64> {
    Ok(fs::metadata(dir)?.dev())
}

/// Keeps the characters a Maildir file name may carry.
pub fn clean_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect()
}

/// The base file name for a delivery (without the `:2,` info part).
pub fn file_name(arrived: u64, id: &str, host: &str, size: u64, wsize: u64) -> String {
    let host = host.replace('/', "\\057").replace(':', "\\072");
    format!("{arrived}.K{}.{host},S={size},W={wsize}", clean_id(id))
}

/// Finds an earlier delivery of `id` in `maildir`'s `new/` or `cur/`, by
/// the name's prefix `ARRIVED.K<id>.`: sizes are not part of the match, as
/// the prepended lines of a retry may differ (its job may hold fewer
/// recipients, so the file is shared differently).
pub fn find(maildir: &Path, id: &str, arrived: u64) -> io::Result<Option<PathBuf>> {
    let prefix = format!("{arrived}.K{}.", clean_id(id));
    for sub in ["new", "cur"] {
        let dir = maildir.join(sub);
        let meta = match fs::metadata(&dir) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        // A file is linked into new/ (or moved on to cur/) only after the
        // message arrived: a directory unchanged since cannot hold it. The
        // margin covers clocks that disagree a little.
        if meta.mtime().saturating_add(MTIME_MARGIN) < arrived as i64 {
            continue;
        }
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                return Ok(Some(entry.path()));
            }
        }
    }
    Ok(None)
}

/// The message's bytes: a prefix of our own, then the queued file read at
/// offsets (its descriptor is shared with kmp-send: its position is not ours).
pub struct Source<'a> {
    pub prefix: &'a [u8],
    pub file: &'a File,
    pub size: u64,
}

impl Source<'_> {
    /// Copies everything into `out`; returns (bytes, bytes with CRLF line ends).
    fn copy_to(&self, out: &mut File) -> io::Result<(u64, u64)> {
        let mut w = io::BufWriter::with_capacity(256 * 1024, out);
        let mut sizes = Sizes::default();
        w.write_all(self.prefix)?;
        sizes.add(self.prefix);
        let mut buf = vec![0u8; 256 * 1024];
        let mut off = 0u64;
        loop {
            let n = match self.file.read_at(&mut buf, off) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            w.write_all(&buf[..n])?;
            sizes.add(&buf[..n]);
            off += n as u64;
        }
        w.flush()?;
        Ok((sizes.bytes, sizes.bytes + sizes.bare_lf))
    }
}

#[derive(Default)]
struct Sizes {
    bytes: u64,
    bare_lf: u64,
    last: u8,
}

impl Sizes {
    fn add(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if b == b'\n' && self.last != b'\r' {
                self.bare_lf += 1;
            }
            self.last = b;
        }
        self.bytes += chunk.len() as u64;
    }
}

/// Delivers `src` into every target (all on one device), written once and
/// hard-linked. Returns one result per target, in order.
pub fn deliver_linked(
    targets: &[Target],
    src: &Source<'_>,
    arrived: u64,
    host: &str,
) -> Vec<io::Result<Delivered>> {
    let Some(first) = targets.first() else {
        return Vec::new();
    };
    // Step 1: the single copy, in the first Maildir's tmp/.
    let tmp_name = format!("{arrived}.K{}_{}.{host}", clean_id(&first.id), unique());
    let tmp = first.maildir.join("tmp").join(tmp_name);
    let written = (|| -> io::Result<(u64, u64)> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        let sizes = src.copy_to(&mut f)?;
        f.sync_all()?;
        Ok(sizes)
    })();
    let (size, wsize) = match written {
        Ok(s) => s,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            let kind = e.kind();
            let text = e.to_string();
            return targets
                .iter()
                .map(|_| Err(io::Error::new(kind, text.clone())))
                .collect();
        }
    };
    // Step 2: a name in each new/.
    let results = targets
        .iter()
        .map(|t| {
            let name = file_name(arrived, &t.id, host, size, wsize);
            if let Some(p) = find(&t.maildir, &t.id, arrived)? {
                return Ok(Delivered::Already(p));
            }
            let dest = t.maildir.join("new").join(&name);
            match fs::hard_link(&tmp, &dest) {
                Ok(()) => {}
                // Another attempt with the same id got there first.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Ok(Delivered::Already(dest))
                }
                // Not on one device after all: a copy of its own.
                Err(e) if e.raw_os_error() == Some(libc::EXDEV) => copy_file(&tmp, &dest)?,
                Err(e) => return Err(e),
            }
            fsync_dir(&t.maildir.join("new"))?;
            Ok(Delivered::New(dest))
        })
        .collect();
    // Step 3: the tmp/ name goes.
    let _ = fs::remove_file(&tmp);
    results
}

/// Copies `from` to `to` durably (tmp/ then rename), for the rare cross-device case.
fn copy_file(from: &Path, to: &Path) -> io::Result<()> {
    let Some(maildir) = to.parent().and_then(|p| p.parent()) else {
        return Err(io::Error::other("bad maildir path"));
    };
    let tmp = maildir.join("tmp").join(format!("copy.{}", unique()));
    fs::copy(from, &tmp)?;
    File::open(&tmp)?.sync_all()?;
    fs::rename(&tmp, to)
}

/// A Maildir++ quota and usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub messages: u64,
}

/// Reads the usage from `maildirsize`, recalculating it from the files when
/// it is missing, too long or unreadable. `quota` is written as its first line.
pub fn usage(maildir: &Path, quota: Usage) -> io::Result<Usage> {
    let p = maildir.join("maildirsize");
    match fs::read(&p) {
        // A changed quota is written anew, so other readers see it too.
        Ok(text)
            if (text.len() as u64) <= MAILDIRSIZE_LIMIT
                && text.starts_with(quota_line(quota).as_bytes()) =>
        {
            if let Some(u) = parse_maildirsize(&text) {
                return Ok(u);
            }
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    recalculate(maildir, quota)
}

/// Adds a delivered message to `maildirsize` (one appended line, as Maildir++ says).
pub fn add_usage(maildir: &Path, bytes: u64, messages: u64) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .append(true)
        .open(maildir.join("maildirsize"))?;
    f.write_all(format!("{bytes} {messages}\n").as_bytes())
}

fn parse_maildirsize(text: &[u8]) -> Option<Usage> {
    let text = std::str::from_utf8(text).ok()?;
    let mut lines = text.lines();
    lines.next()?;
    let mut u = Usage::default();
    for l in lines {
        let mut it = l.split_whitespace();
        let (Some(b), Some(m)) = (it.next(), it.next()) else {
            continue;
        };
        let b: i64 = b.parse().ok()?;
        let m: i64 = m.parse().ok()?;
        u.bytes = (u.bytes as i64 + b).max(0) as u64;
        u.messages = (u.messages as i64 + m).max(0) as u64;
    }
    Some(u)
}

/// Counts every message in every folder (sizes from `S=` in names, else stat)
/// and rewrites `maildirsize` atomically.
pub fn recalculate(maildir: &Path, quota: Usage) -> io::Result<Usage> {
    let mut u = Usage::default();
    let mut dirs = vec![maildir.to_path_buf()];
    for e in fs::read_dir(maildir)? {
        let e = e?;
        let n = e.file_name();
        let n = n.to_string_lossy();
        // Maildir++: Trash does not count against the quota.
        if n.starts_with('.') && n != "." && n != ".." && n != ".Trash" && e.path().is_dir() {
            dirs.push(e.path());
        }
    }
    for d in dirs {
        for sub in ["new", "cur"] {
            let Ok(rd) = fs::read_dir(d.join(sub)) else {
                continue;
            };
            for e in rd.flatten() {
                let n = e.file_name();
                let n = n.to_string_lossy();
                if n.starts_with('.') {
                    continue;
                }
                let size = size_from_name(&n)
                    .or_else(|| e.metadata().ok().map(|m| m.len()))
                    .unwrap_or(0);
                u.bytes += size;
                u.messages += 1;
            }
        }
    }
    let text = format!("{}{} {}\n", quota_line(quota), u.bytes, u.messages);
    let tmp = maildir.join(format!("tmp/maildirsize.{}", unique()));
    fs::write(&tmp, text)?;
    fs::rename(&tmp, maildir.join("maildirsize"))?;
    Ok(u)
}

/// The first line of `maildirsize`: the quota definition.
fn quota_line(quota: Usage) -> String {
    format!("{}S,{}C\n", quota.bytes, quota.messages)
}

fn size_from_name(name: &str) -> Option<u64> {
    let base = name.split(':').next()?;
    base.split(',')
        .find_map(|p| p.strip_prefix("S="))
        .and_then(|s| s.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Seek;

    fn message(text: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(text).unwrap();
        // The shared position must not matter.
        f.seek(io::SeekFrom::Start(3)).unwrap();
        f
    }

    #[test]
    fn linked_delivery_is_written_once_and_found_again() {
        let root = tempfile::tempdir().unwrap();
        let a = root.path().join("d/a");
        let b = root.path().join("d/b");
        ensure(&a).unwrap();
        ensure(&b).unwrap();
        assert!(a.join(".Trash/maildirfolder").exists());
        let f = message(b"Subject: x\n\nbody\n");
        let src = Source {
            prefix: b"Return-Path: <s@x>\n",
            file: &f,
            size: 17,
        };
        let targets = [
            Target {
                maildir: a.clone(),
                id: "q1.0".into(),
            },
            Target {
                maildir: b.clone(),
                id: "q1.1".into(),
            },
        ];
        let r = deliver_linked(&targets, &src, 1000, "mx");
        let paths: Vec<PathBuf> = r
            .into_iter()
            .map(|r| match r.unwrap() {
                Delivered::New(p) => p,
                d => panic!("{d:?}"),
            })
            .collect();
        assert_eq!(fs::metadata(&paths[0]).unwrap().nlink(), 2);
        let body = fs::read(&paths[1]).unwrap();
        assert_eq!(body, b"Return-Path: <s@x>\nSubject: x\n\nbody\n");
        let name = paths[0].file_name().unwrap().to_string_lossy().to_string();
        assert!(name.ends_with(",S=36,W=40"), "{name}");
        assert_eq!(fs::read_dir(a.join("tmp")).unwrap().count(), 0);
        // Moved to cur/ by a reader: the retry still finds it.
        let cur = a.join("cur").join(format!("{name}:2,S"));
        fs::rename(&paths[0], &cur).unwrap();
        let r = deliver_linked(&targets, &src, 1000, "mx");
        assert_eq!(r[0].as_ref().unwrap(), &Delivered::Already(cur));
        assert_eq!(
            r[1].as_ref().unwrap(),
            &Delivered::Already(paths[1].clone())
        );
    }

    #[test]
    fn maildirsize_is_recalculated_and_appended() {
        let root = tempfile::tempdir().unwrap();
        let m = root.path().join("u");
        ensure(&m).unwrap();
        fs::write(m.join("cur/1.x.h,S=100:2,S"), b"x").unwrap();
        fs::write(m.join(".Sent/cur/2.x.h,S=50:2,S"), b"x").unwrap();
        fs::write(m.join(".Trash/cur/3.x.h,S=7:2,S"), b"x").unwrap();
        fs::write(m.join("new/4.x.h"), b"four").unwrap();
        let q = Usage {
            bytes: 1000,
            messages: 10,
        };
        assert_eq!(
            usage(&m, q).unwrap(),
            Usage {
                bytes: 154,
                messages: 3
            }
        );
        add_usage(&m, 10, 1).unwrap();
        assert_eq!(
            usage(&m, q).unwrap(),
            Usage {
                bytes: 164,
                messages: 4
            }
        );
        assert!(fs::read_to_string(m.join("maildirsize"))
            .unwrap()
            .starts_with("1000S,10C\n"));
    }
}
