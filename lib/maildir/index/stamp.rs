//! The sync stamp of a folder: what `new/` and `cur/` looked like when a
//! sync last found the UID index in agreement with them.
//!
//! A full read of a 50,000-message folder's two directories costs more than
//! everything else a SELECT does, so a new session (a restarted server, the
//! webmail's connection per page) should not pay it when nothing changed.
//! Dovecot trusts its index when the directories' mtimes say nothing
//! changed; so do we, with the same care:
//!
//! - A sync that read a directory (or found it unchanged since such a read)
//!   appends `S N<ino>.<mtime>.<ctime> C<ino>.<mtime>.<ctime>` (times in
//!   nanoseconds) to the index, after the records that sync wrote, but only
//!   when both directories' mtimes were more than two seconds old when it
//!   began: a file system clock ticks coarsely, and a change in the same tick
//!   as the read would leave the mtime as it was. The record is not fsynced:
//!   lost in a crash, it costs the next session one read of the directories.
//! - The stamp holds only while it is the index's last record: any record
//!   after it (a message added, renamed or expunged by any process) voids it,
//!   so a crash between a record and the change it describes cannot leave a
//!   stamp that vouches for a wrong index.
//! - A directory is trusted unread when its inode, mtime and ctime all equal
//!   the stamp's. Every entry added, removed or renamed in it moves mtime and
//!   ctime; ctime cannot be set back by a program (a backup restored with its
//!   old mtimes still changes it), and the inode changes when the directory
//!   is made again.
//!
//! Older readers of the index see an `S` line as damage and rewrite the file
//! without it: they lose the shortcut, never a UID.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::SystemTime;

/// One directory as `stat` saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirStamp {
    pub ino: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime: i64,
    /// Status change time, nanoseconds since the epoch.
    pub ctime: i64,
}

impl DirStamp {
    /// Stats a directory.
    pub fn of(dir: &Path) -> io::Result<DirStamp> {
        let md = fs::metadata(dir)?;
        Ok(DirStamp {
            ino: md.ino(),
            mtime: md.mtime().saturating_mul(1_000_000_000) + md.mtime_nsec(),
            ctime: md.ctime().saturating_mul(1_000_000_000) + md.ctime_nsec(),
        })
    }

    /// Whether the directory's mtime is more than `slack` before `now`, so
    /// that a later change must show as another mtime. (Only the mtime
    /// counts: a ctime moved by `utime` after the last change, as when a
    /// test or a restore sets the mtime back, is still compared for
    /// equality, and a change after it moves the mtime to now.)
    pub fn settled(&self, now: SystemTime, slack: std::time::Duration) -> bool {
        let now_ns = match now.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
            Err(_) => return false,
        };
        let slack_ns = i64::try_from(slack.as_nanos()).unwrap_or(i64::MAX);
        now_ns.saturating_sub(self.mtime) > slack_ns
    }

    fn token(&self, letter: char) -> String {
        format!("{letter}{}.{}.{}", self.ino, self.mtime, self.ctime)
    }

    fn parse(token: &str, letter: char) -> Option<DirStamp> {
        let mut f = token.strip_prefix(letter)?.splitn(3, '.');
        Some(DirStamp {
            ino: f.next()?.parse().ok()?,
            mtime: f.next()?.parse().ok()?,
            ctime: f.next()?.parse().ok()?,
        })
    }
}

/// Both directories of a folder at a sync that found the index right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncStamp {
    pub new: DirStamp,
    pub cur: DirStamp,
}

impl SyncStamp {
    /// The index record, with its newline.
    pub(crate) fn record(&self) -> String {
        format!("S {} {}\n", self.new.token('N'), self.cur.token('C'))
    }

    /// Parses the record's fields after `S ` (None when damaged).
    pub(crate) fn parse(fields: &str) -> Option<SyncStamp> {
        let mut f = fields.split(' ');
        let new = DirStamp::parse(f.next()?, 'N')?;
        let cur = DirStamp::parse(f.next()?, 'C')?;
        f.next().is_none().then_some(SyncStamp { new, cur })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_record_reads_back_and_damage_is_refused() {
        let s = SyncStamp {
            new: DirStamp {
                ino: 12,
                mtime: 1_700_000_000_123_456_789,
                ctime: 1_700_000_001_000_000_000,
            },
            cur: DirStamp {
                ino: 13,
                mtime: -5,
                ctime: 0,
            },
        };
        let rec = s.record();
        let fields = rec.strip_prefix("S ").unwrap().trim_end();
        assert_eq!(SyncStamp::parse(fields), Some(s));
        for bad in [
            "",
            "N1.2.3",
            "N1.2.3 C1.2",
            "C1.2.3 N1.2.3",
            "N1.2.3 C1.2.x",
            "N1.2.3 C1.2.3 extra",
            "N1.2.3 C1.2.3.4",
        ] {
            assert_eq!(SyncStamp::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_a_directory_older_than_the_slack_is_settled() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let at = |s: i64| DirStamp {
            ino: 1,
            mtime: s * 1_000_000_000,
            ctime: s * 1_000_000_000,
        };
        assert!(at(97).settled(now, Duration::from_secs(2)));
        assert!(!at(98).settled(now, Duration::from_secs(2)));
        assert!(!at(101).settled(now, Duration::from_secs(2)));
        let mut touched = at(90);
        touched.ctime = 99 * 1_000_000_000;
        assert!(
            touched.settled(now, Duration::from_secs(2)),
            "mtime decides"
        );
    }
}
