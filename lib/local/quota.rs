//! Quota warnings, written straight into the Maildir.
//!
//! **The level.** When a delivery takes a mailbox to the user's level of its
//! quota (bytes or messages), the user receives one warning mail. The level
//! is the user's own choice when they made one in the webmail's settings
//! (`quota_warning=N` in the webmail's preferences entry, the METADATA
//! server entry [`PREFS_ENTRY`] in `kmpromail-server-metadata` at the
//! Maildir's root), else `local.quota_warning_percent`; a choice below
//! `local.quota_warning_min_percent` counts as that. The file
//! [`WARNED_MARKER`] in the Maildir remembers the warning (created with
//! O_EXCL, so two deliveries racing past the line warn once) and goes when a
//! delivery finds usage below the line again, so a later crossing warns again.
//!
//! **The cost.** The fan-out path is hot, so the user's file is read only
//! when the usage is at or above the lowest level anyone may choose: below
//! it (the common case) the level cannot matter and nothing is read. Above
//! it, one stat of the metadata file: the level is cached per Maildir with
//! the file's inode, size and mtime, and read again only when they change.
//!
//! **Refusals.** A delivery refused because the mailbox is full sends the
//! user one warning mail, and no other for `local.quota_full_warning_interval`
//! however many messages are refused: the time of the last one is in
//! [`REFUSED_MARKER`], read and written under a lock on it.

use std::collections::HashMap;
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::deliver::{fnv64, Settings};
use crate::clock::Clock;
use crate::maildir::metadata::SERVER_FILE;
use crate::maildir::quota::Usage;
use crate::maildir::Maildir;

/// The name of the file that records that a quota warning was sent.
pub const WARNED_MARKER: &str = "kmp-quota-warned";
/// The file that holds when the last refusal warning was sent.
pub const REFUSED_MARKER: &str = "kmp-quota-refused";
/// The webmail's preferences entry (`webmail::state::PREFS_ENTRY`; a test
/// checks they agree), where the user's level is kept.
pub const PREFS_ENTRY: &str = "/private/vendor/kmpromail/webmail/prefs";
/// The line of the preferences that holds the level.
pub const PREFS_KEY: &str = "quota_warning";
/// Most Maildirs whose level is cached; past it the cache starts again.
const CACHE_MAX: usize = 100_000;

thread_local! {
    /// How many times this thread looked at a user's metadata file (a stat
    /// each): the tests check that deliveries below the line cost none.
    pub static LEVEL_LOOKUPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A mailbox just delivered to, with its usage after the delivery.
pub struct Mailbox<'a> {
    pub maildir: &'a Path,
    pub address: &'a str,
    pub usage: Usage,
}

/// The level in a preferences value (`quota_warning=N` on a line of its
/// own), if one is there and is a percentage.
pub fn level_in_prefs(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?;
    text.lines().take(100).find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == PREFS_KEY)
            .then(|| v.trim().parse::<u64>().ok())
            .flatten()
            .filter(|n| (1..=100).contains(n))
    })
}

/// The level that counts for the Maildir at `maildir` (see the module doc).
pub fn level(settings: &Settings, maildir: &Path) -> u64 {
    let chosen = cached_choice(maildir);
    chosen
        .map(|n| n.max(settings.quota_warning_min_percent))
        .unwrap_or(settings.quota_warning_percent)
}

/// Identity of the metadata file as a stat sees it.
type Stamp = (u64, u64, i64, i64);

/// Each Maildir's metadata file as last seen, and the choice read from it.
type Cache = Mutex<HashMap<PathBuf, (Stamp, Option<u64>)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The user's choice: one stat, and a read only when the file changed.
fn cached_choice(maildir: &Path) -> Option<u64> {
    let path = maildir.join(SERVER_FILE);
    LEVEL_LOOKUPS.with(|n| n.set(n.get() + 1));
    let stamp: Stamp = match std::fs::metadata(&path) {
        Ok(m) => (m.ino(), m.size(), m.mtime(), m.mtime_nsec()),
        Err(_) => return None,
    };
    {
        let c = cache().lock().unwrap_or_else(|e| e.into_inner());
        if let Some((s, v)) = c.get(maildir) {
            if *s == stamp {
                return *v;
            }
        }
    }
    let choice = Maildir::new(maildir)
        .server_metadata()
        .ok()
        .and_then(|e| e.get(PREFS_ENTRY).and_then(|v| level_in_prefs(v)));
    let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
    if c.len() >= CACHE_MAX {
        c.clear();
    }
    c.insert(maildir.to_path_buf(), (stamp, choice));
    choice
}

/// Sends the warning if `m` is at or past the line and none was sent since
/// it last was below; forgets the warning when it is below.
pub fn warn(settings: &Settings, m: &Mailbox<'_>, clock: &Clock) -> Result<(), String> {
    if settings.quota_warning_percent == 0 {
        return Ok(());
    }
    let used = u64::from(m.usage.percent());
    // Below the lowest level anyone may choose, the user's is not read.
    let lowest = settings
        .quota_warning_min_percent
        .min(settings.quota_warning_percent);
    let pct = if used < lowest {
        lowest
    } else {
        level(settings, m.maildir)
    };
    let marker = m.maildir.join(WARNED_MARKER);
    if used < pct {
        if marker.exists() {
            std::fs::remove_file(&marker).map_err(|e| e.to_string())?;
        }
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&marker)
    {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e.to_string()),
    }
    let text = warning_mail(&settings.hostname, m, pct, clock.now());
    Maildir::new(m.maildir)
        .inbox()
        .deliver(&mut &text[..], None)
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Sends the \"mail was refused\" warning unless one was sent in the last
/// `local.quota_full_warning_interval`; returns whether it was sent.
pub fn refused(settings: &Settings, m: &Mailbox<'_>, clock: &Clock) -> Result<bool, String> {
    if settings.quota_warning_percent == 0 {
        return Ok(false);
    }
    let path = m.maildir.join(REFUSED_MARKER);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // Two refusals at once: the second waits here and finds the first's time.
    let mut f = lock(f, &path)?;
    let mut text = String::new();
    f.read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let now = clock.now();
    let last: u64 = text.trim().parse().unwrap_or(0);
    if last <= now && now - last < settings.quota_full_warning_interval {
        return Ok(false);
    }
    let mail = refused_mail(
        &settings.hostname,
        m,
        now,
        settings.quota_full_warning_interval,
    );
    Maildir::new(m.maildir)
        .inbox()
        .deliver(&mut &mail[..], None)
        .map_err(|e| e.to_string())?;
    f.rewind().map_err(|e| format!("{}: {e}", path.display()))?;
    f.set_len(0)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(format!("{now}\n").as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(true)
}

fn warning_mail(host: &str, m: &Mailbox<'_>, pct: u64, now: u64) -> Vec<u8> {
    let u = m.usage;
    let used = u.percent();
    let date = mail_builder::headers::date::Date::new(now as i64).to_rfc822();
    let to = m.address;
    format!(
        "Return-Path: <>\n\
         Delivered-To: {to}\n\
         From: Mail Delivery System <MAILER-DAEMON@{host}>\n\
         To: <{to}>\n\
         Subject: Your mailbox is {used}% full\n\
         Date: {date}\n\
         Message-ID: <{now}.{id:016x}.quota@{host}>\n\
         Auto-Submitted: auto-generated\n\
         MIME-Version: 1.0\n\
         Content-Type: text/plain; charset=us-ascii\n\
         \n\
         Your mailbox {to} has reached {used}% of its quota\n\
         (the warning is sent at {pct}%).\n\
         \n\
         In use: {}.\n\
         \n\
         When it is full, new mail waits on the server and is returned to its\n\
         senders after a few days. Please delete or archive some messages.\n",
        u.describe(),
        id = fnv64(to),
    )
    .into_bytes()
}

fn lock(f: std::fs::File, path: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, String> {
    let mut f = f;
    loop {
        match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive) {
            Ok(held) => return Ok(held),
            Err((back, nix::errno::Errno::EINTR)) => f = back,
            Err((_, e)) => return Err(format!("{}: flock: {e}", path.display())),
        }
    }
}

fn refused_mail(host: &str, m: &Mailbox<'_>, now: u64, interval: u64) -> Vec<u8> {
    let again = match interval {
        i if i % 86400 == 0 => format!("{} day(s)", i / 86400),
        i if i % 3600 == 0 => format!("{} hour(s)", i / 3600),
        i => format!("{} minute(s)", i.div_ceil(60)),
    };
    let date = mail_builder::headers::date::Date::new(now as i64).to_rfc822();
    let to = m.address;
    format!(
        "Return-Path: <>\n\
         Delivered-To: {to}\n\
         From: Mail Delivery System <MAILER-DAEMON@{host}>\n\
         To: <{to}>\n\
         Subject: Your mailbox is full: mail to you is being refused\n\
         Date: {date}\n\
         Message-ID: <{now}.{id:016x}.quotafull@{host}>\n\
         Auto-Submitted: auto-generated\n\
         MIME-Version: 1.0\n\
         Content-Type: text/plain; charset=us-ascii\n\
         \n\
         Your mailbox {to} is full, and a message to you could not be\n\
         delivered. In use: {}.\n\
         \n\
         Refused mail waits on the server and is returned to its senders\n\
         after a few days. Please delete or archive some messages now.\n\
         You will not be told again for {again}, however much mail is refused.\n",
        m.usage.describe(),
        id = fnv64(to),
    )
    .into_bytes()
}
