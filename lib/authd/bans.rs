//! Failure counting and bans.
//!
//! Failed logins (and abuse other daemons report with `Failure`) are counted
//! per client and per account over `authd.failure_window`. A client is an
//! IPv4 address, or the IPv6 network of `system.ipv6_prefix` bits the address
//! is in (`net::client_net`: one IPv6 host owns a whole /64, and would
//! otherwise get a fresh count with each address). A client past
//! `authd.max_failures` is banned for `authd.ban_time`, for every protocol:
//! the daemons ask `BanCheck` when a client connects. An account past the
//! limit is only logged: banning accounts would let anyone lock a user out.
//!
//! Bans survive restarts: the table is written to a small text file (one ban a
//! line: `NET UNTIL REASON`) with a write to a temporary file, fsync and
//! rename, so a crash leaves the old table or the new one.
//!
//! The same text is published in the run directory ([`PUBLISHED`]), where
//! every daemon may read it: a daemon checks a connecting client against it
//! ([`Published::banned`]: one `stat` per connection, the file read again
//! only when it changed) instead of asking kmp-authd, and asks kmp-authd
//! when the file cannot be read. kmp-authd writes it at start and on every
//! change, so a ban takes effect at the next connection either way.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::ipc::authd::Ban;
use crate::net::Cidr;

/// At most this many IPs and accounts are tracked; past it the oldest
/// counts are forgotten (an attacker cannot make us grow without bound).
const MAX_TRACKED: usize = 100_000;
/// At most this many bans are kept.
const MAX_BANS: usize = 100_000;

/// The limits from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_failures: u64,
    pub window_ms: u64,
    pub ban_secs: u64,
    /// IPv6 clients are counted and banned by this many leading bits.
    pub ipv6_prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    cidr: Cidr,
    until: u64,
    reason: String,
}

/// What a failure led to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    /// The IP was banned now, until this time.
    pub banned_until: Option<u64>,
    /// The account passed the limit (worth a log line).
    pub account_over: bool,
}

/// The ban table and failure counts.
#[derive(Debug)]
pub struct Bans {
    bans: Vec<Entry>,
    by_ip: HashMap<Cidr, VecDeque<u64>>,
    by_account: HashMap<String, VecDeque<u64>>,
    file: Option<PathBuf>,
    /// Where the table is published for the daemons.
    published: Option<PathBuf>,
}

/// The published table's name in the run directory.
pub const PUBLISHED: &str = "bans";

impl Bans {
    /// An empty table that persists to `file` (None: in memory only).
    pub fn new(file: Option<PathBuf>) -> Bans {
        Bans {
            bans: Vec::new(),
            by_ip: HashMap::new(),
            by_account: HashMap::new(),
            file,
            published: None,
        }
    }

    /// Publishes the table at `path` now and after every change.
    pub fn publish(&mut self, path: PathBuf) {
        self.published = Some(path);
        self.publish_text(&self.text());
    }

    /// Writes the published copy; if that fails, removes it, so that the
    /// daemons ask kmp-authd rather than read an old table.
    fn publish_text(&self, text: &str) {
        if let Err(e) = self.write_published(text) {
            if let Some(p) = &self.published {
                crate::warn!("cannot publish the ban table at {}: {e}", p.display());
                let _ = std::fs::remove_file(p);
            }
        }
    }

    /// The table from `file`, dropping bans that ended before `now`. A
    /// missing file is an empty table; a bad line is skipped and reported.
    pub fn load(file: &Path, now: u64) -> (Bans, Vec<String>) {
        let mut b = Bans::new(Some(file.to_path_buf()));
        let mut problems = Vec::new();
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (b, problems),
            Err(e) => {
                problems.push(format!("{}: {e}", file.display()));
                return (b, problems);
            }
        };
        for (i, line) in text.lines().enumerate() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            match parse_line(line) {
                Some(e) if e.until > now => b.bans.push(e),
                Some(_) => {}
                None => problems.push(format!("{}:{}: not a ban line", file.display(), i + 1)),
            }
        }
        (b, problems)
    }

    /// When a ban on `ip` ends, if there is one in force at `now`.
    pub fn banned(&self, ip: IpAddr, now: u64) -> Option<u64> {
        self.bans
            .iter()
            .filter(|e| e.until > now && e.cidr.contains(ip))
            .map(|e| e.until)
            .max()
    }

    /// Counts a failure from `ip` against `account` at `now_ms`.
    pub fn failure(
        &mut self,
        ip: Option<IpAddr>,
        account: Option<&str>,
        reason: &str,
        now_ms: u64,
        limits: Limits,
    ) -> Result<Outcome, std::io::Error> {
        let mut out = Outcome::default();
        if let Some(ip) = ip {
            let net = crate::net::client_net(ip, limits.ipv6_prefix);
            if count(&mut self.by_ip, net, now_ms, limits) {
                self.by_ip.remove(&net);
                let until = now_ms / 1000 + limits.ban_secs;
                if self.banned(ip, now_ms / 1000).unwrap_or(0) < until {
                    self.put(
                        net,
                        until,
                        format!("{} failures: {reason}", limits.max_failures),
                        now_ms / 1000,
                    );
                    out.banned_until = Some(until);
                    self.save()?;
                }
            }
        }
        if let Some(a) = account {
            if count(&mut self.by_account, a.to_string(), now_ms, limits) {
                self.by_account.remove(a);
                out.account_over = true;
            }
        }
        Ok(out)
    }

    /// Forgets the failures of `account` (after a good login).
    pub fn success(&mut self, account: &str) {
        self.by_account.remove(account);
    }

    /// Bans `cidr` until `until` (replacing a ban on the same network).
    pub fn add(&mut self, cidr: Cidr, until: u64, reason: String, now: u64) -> std::io::Result<()> {
        self.put(cidr, until, reason, now);
        self.save()
    }

    fn put(&mut self, cidr: Cidr, until: u64, reason: String, now: u64) {
        self.bans.retain(|e| e.until > now && e.cidr != cidr);
        if self.bans.len() >= MAX_BANS {
            // Keep the longest-lasting ones.
            self.bans.sort_by_key(|e| std::cmp::Reverse(e.until));
            self.bans.truncate(MAX_BANS - 1);
        }
        self.bans.push(Entry {
            cidr,
            until,
            reason: reason.replace(['\n', '\r'], " "),
        });
    }

    /// Lifts the ban on exactly `cidr`; false when there was none.
    pub fn del(&mut self, cidr: Cidr) -> std::io::Result<bool> {
        let before = self.bans.len();
        self.bans.retain(|e| e.cidr != cidr);
        let found = self.bans.len() != before;
        if found {
            self.save()?;
        }
        Ok(found)
    }

    /// The bans in force at `now`, longest first.
    pub fn list(&self, now: u64) -> Vec<Ban> {
        let mut v: Vec<Ban> = self
            .bans
            .iter()
            .filter(|e| e.until > now)
            .map(|e| Ban {
                net: e.cidr.to_string(),
                until: e.until,
                reason: e.reason.clone(),
            })
            .collect();
        v.sort_by(|a, b| b.until.cmp(&a.until).then(a.net.cmp(&b.net)));
        v
    }

    fn text(&self) -> String {
        let mut text = String::from("# kmp-authd bans: NET UNTIL(epoch seconds) REASON\n");
        for e in &self.bans {
            text.push_str(&format!("{} {} {}\n", e.cidr, e.until, e.reason));
        }
        text
    }

    /// The published copy: a temporary file renamed over it, readable by
    /// the daemons' group; not synced (the run directory may be a tmpfs,
    /// and kmp-authd writes it again at start).
    fn write_published(&self, text: &str) -> std::io::Result<()> {
        let Some(path) = &self.published else {
            return Ok(());
        };
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o640)
            .open(&tmp)?;
        // For the daemons' group (kmp-authd's user is in it), where there is
        // one; else the run directory's group decides.
        if let Ok(Some(g)) = nix::unistd::Group::from_name(crate::daemon::DAEMON_GROUP) {
            let _ = nix::unistd::fchown(&f, None, Some(g.gid));
        }
        f.write_all(text.as_bytes())?;
        drop(f);
        std::fs::rename(&tmp, path)
    }

    /// Writes the table: temporary file, fsync, rename, fsync the
    /// directory; then the published copy.
    fn save(&self) -> std::io::Result<()> {
        let text = self.text();
        self.publish_text(&text);
        let Some(file) = &self.file else {
            return Ok(());
        };
        let tmp = file.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        // A crash before this rename leaves the old table in place.
        std::fs::rename(&tmp, file)?;
        if let Some(dir) = file.parent() {
            crate::sys::fsync_dir(dir)?;
        }
        Ok(())
    }
}

/// One line of the table: `NET UNTIL REASON`.
fn parse_line(line: &str) -> Option<Entry> {
    let mut parts = line.splitn(3, ' ');
    let cidr: Cidr = parts.next()?.parse().ok()?;
    let until: u64 = parts.next()?.parse().ok()?;
    Some(Entry {
        cidr,
        until,
        reason: parts.next().unwrap_or("").to_string(),
    })
}

/// A daemon's copy of the published table, read again when the file
/// changes (its inode, size or modification time).
#[derive(Default)]
pub struct Published {
    seen: Option<(u64, u64, i64, i64)>,
    bans: Vec<(Cidr, u64)>,
}

impl Published {
    /// Whether `ip` is banned at `now` by the table at `path`; None when
    /// the table cannot be read (kmp-authd never published it, or the
    /// file went) or is not kmp-authd's (`owner`: the run directory is
    /// writable by every daemon's group, so only a file of kmp-authd's
    /// user is believed): ask kmp-authd then.
    pub fn banned(&mut self, path: &Path, owner: u32, ip: IpAddr, now: u64) -> Option<bool> {
        use std::os::unix::fs::MetadataExt;
        let m = match std::fs::metadata(path) {
            Ok(m) if m.uid() == owner => m,
            _ => {
                self.seen = None;
                return None;
            }
        };
        let id = (m.ino(), m.size(), m.mtime(), m.mtime_nsec());
        // Two changes within one tick of the file system's clock, the
        // second reusing the first's inode number at the same size, would
        // look the same: a table changed in the last two seconds is read
        // every time.
        let recent = m.mtime() >= now as i64 - 2;
        if self.seen != Some(id) || recent {
            let text = std::fs::read_to_string(path).ok()?;
            self.bans = text
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(parse_line)
                .map(|e| (e.cidr, e.until))
                .collect();
            self.seen = Some(id);
        }
        Some(
            self.bans
                .iter()
                .any(|(cidr, until)| *until > now && cidr.contains(ip)),
        )
    }
}

/// Adds a failure for `key`; true when the count within the window reaches
/// the limit.
fn count<K: std::hash::Hash + Eq + Clone>(
    map: &mut HashMap<K, VecDeque<u64>>,
    key: K,
    now_ms: u64,
    limits: Limits,
) -> bool {
    if map.len() >= MAX_TRACKED && !map.contains_key(&key) {
        let cutoff = now_ms.saturating_sub(limits.window_ms);
        map.retain(|_, q| q.back().is_some_and(|&t| t > cutoff));
        if map.len() >= MAX_TRACKED {
            map.clear();
        }
    }
    let q = map.entry(key).or_default();
    let cutoff = now_ms.saturating_sub(limits.window_ms);
    while q.front().is_some_and(|&t| t <= cutoff) {
        q.pop_front();
    }
    q.push_back(now_ms);
    while q.len() as u64 > limits.max_failures {
        q.pop_front();
    }
    q.len() as u64 >= limits.max_failures
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        max_failures: 3,
        window_ms: 60_000,
        ban_secs: 3600,
        ipv6_prefix: 64,
    };

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn failures_within_the_window_ban_the_ip() {
        let mut b = Bans::new(None);
        let t = 1_000_000_000;
        let a = ip("192.0.2.7");
        assert_eq!(
            b.failure(Some(a), Some("u@x"), "pw", t, L)
                .unwrap()
                .banned_until,
            None
        );
        // One falls out of the window before the third arrives.
        assert_eq!(
            b.failure(Some(a), None, "pw", t + 30_000, L)
                .unwrap()
                .banned_until,
            None
        );
        assert_eq!(
            b.failure(Some(a), None, "pw", t + 61_000, L)
                .unwrap()
                .banned_until,
            None
        );
        assert!(b.banned(a, (t + 61_000) / 1000).is_none());
        let o = b
            .failure(Some(a), Some("u@x"), "pw", t + 62_000, L)
            .unwrap();
        assert_eq!(o.banned_until, Some((t + 62_000) / 1000 + 3600));
        assert!(b.banned(a, (t + 62_000) / 1000).is_some());
        // The mapped form of the same address is banned too; others are not.
        assert!(b
            .banned(ip("::ffff:192.0.2.7"), (t + 62_000) / 1000)
            .is_some());
        assert!(b.banned(ip("192.0.2.8"), (t + 62_000) / 1000).is_none());
        // The ban ends.
        assert!(b.banned(a, (t + 62_000) / 1000 + 3601).is_none());
    }

    #[test]
    fn ipv6_failures_count_and_ban_by_prefix() {
        let mut b = Bans::new(None);
        let t = 2_000_000_000;
        // Three addresses of one /64: one client, banned as the /64.
        for (i, a) in ["2001:db8:5:6::a", "2001:db8:5:6::b", "2001:db8:5:6:1::c"]
            .iter()
            .enumerate()
        {
            let o = b.failure(Some(ip(a)), None, "pw", t + i as u64, L).unwrap();
            assert_eq!(o.banned_until.is_some(), i == 2, "{a}");
        }
        let now = t / 1000;
        let l = b.list(now);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].net, "2001:db8:5:6::/64");
        assert!(b.banned(ip("2001:db8:5:6:ffff::1"), now).is_some());
        assert!(b.banned(ip("2001:db8:5:7::a"), now).is_none());
        // At /128 every address is a client of its own.
        let per_address = Limits {
            ipv6_prefix: 128,
            ..L
        };
        let mut b = Bans::new(None);
        for a in ["2001:db8::a", "2001:db8::b", "2001:db8::c"] {
            let o = b.failure(Some(ip(a)), None, "pw", t, per_address).unwrap();
            assert!(o.banned_until.is_none());
        }
        for _ in 0..2 {
            b.failure(Some(ip("2001:db8::a")), None, "pw", t, per_address)
                .unwrap();
        }
        assert_eq!(b.list(now)[0].net, "2001:db8::a/128");
        assert!(b.banned(ip("2001:db8::b"), now).is_none());
    }

    #[test]
    fn accounts_over_the_limit_are_reported_not_banned() {
        let mut b = Bans::new(None);
        let mut over = false;
        for i in 0..3 {
            let ipi = ip(&format!("198.51.100.{i}"));
            over |= b
                .failure(Some(ipi), Some("victim@x"), "pw", 5000 + i, L)
                .unwrap()
                .account_over;
        }
        assert!(over);
        assert!(b.list(5).is_empty());
    }

    /// What a daemon reads of the published table follows every change,
    /// and says "ask kmp-authd" when there is no table.
    #[test]
    fn the_published_table_follows_every_change() {
        let d = tempfile::tempdir().unwrap();
        let published = d.path().join(PUBLISHED);
        let me = nix::unistd::geteuid().as_raw();
        let mut seen = Published::default();
        assert_eq!(seen.banned(&published, me, ip("203.0.113.9"), 1000), None);
        let mut b = Bans::new(Some(d.path().join("db-bans")));
        b.publish(published.clone());
        assert_eq!(
            seen.banned(&published, me, ip("203.0.113.9"), 1000),
            Some(false)
        );
        b.add(
            "203.0.113.0/24".parse().unwrap(),
            2000,
            "by hand".into(),
            1000,
        )
        .unwrap();
        assert_eq!(
            seen.banned(&published, me, ip("203.0.113.9"), 1000),
            Some(true)
        );
        assert_eq!(
            seen.banned(&published, me, ip("198.51.100.1"), 1000),
            Some(false)
        );
        // Ended by time, as kmp-authd ends it.
        assert_eq!(
            seen.banned(&published, me, ip("203.0.113.9"), 2000),
            Some(false)
        );
        // A failure past the limit bans, and the table says so at once.
        let t = 1_000_000;
        for i in 0..L.max_failures {
            b.failure(Some(ip("192.0.2.5")), None, "pw", t + i, L)
                .unwrap();
        }
        assert_eq!(
            seen.banned(&published, me, ip("192.0.2.5"), t / 1000),
            Some(true)
        );
        assert!(b.del("203.0.113.0/24".parse().unwrap()).unwrap());
        assert_eq!(
            seen.banned(&published, me, ip("203.0.113.9"), 1000),
            Some(false)
        );
        // A table not of kmp-authd's user is not believed.
        assert_eq!(
            seen.banned(&published, me + 1, ip("192.0.2.5"), t / 1000),
            None
        );
        std::fs::remove_file(&published).unwrap();
        assert_eq!(seen.banned(&published, me, ip("192.0.2.5"), t / 1000), None);
    }

    #[test]
    fn bans_persist_and_expired_ones_are_dropped() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("bans");
        let mut b = Bans::new(Some(f.clone()));
        b.add(
            "203.0.113.0/24".parse().unwrap(),
            2000,
            "by hand".into(),
            1000,
        )
        .unwrap();
        b.add("2001:db8::/32".parse().unwrap(), 1500, "short".into(), 1000)
            .unwrap();
        let (again, problems) = Bans::load(&f, 1600);
        assert!(problems.is_empty());
        let l = again.list(1600);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].net, "203.0.113.0/24");
        assert_eq!(l[0].reason, "by hand");
        assert!(again.banned(ip("203.0.113.9"), 1600).is_some());
        let mut again = again;
        assert!(again.del("203.0.113.0/24".parse().unwrap()).unwrap());
        assert!(!again.del("203.0.113.0/24".parse().unwrap()).unwrap());
        assert!(Bans::load(&f, 1600).0.list(1600).is_empty());
        std::fs::write(&f, "junk line\n198.51.100.1 99999 ok\n").unwrap();
        let (b, problems) = Bans::load(&f, 1);
        assert_eq!(problems.len(), 1);
        assert_eq!(b.list(1).len(), 1);
    }
}
