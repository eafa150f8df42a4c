//! A list's state store: its members and its memory of distributed posts, in
//! a small LMDB environment `STATE/members/` of the list's directory.
//!
//! | database  | key                         | value                  |
//! |-----------|-----------------------------|------------------------|
//! | `members` | lower-case member address   | [`Member`] (JSON)      |
//! | `posts`   | `QID` / `QID NUL member`    | seconds since epoch    |
//!
//! One write transaction per subscribe or unsubscribe; reading 100,000
//! members is one pass over a B-tree. `posts` is how a retried delivery of a
//! post (kmp-local or kmp-send restarted in the middle) knows which remote
//! members already have their copy queued, and that the post is done.
//!
//! LMDB refuses a second open of one environment in a process, and
//! kmp-local runs several jobs at once: [`Store::open`] hands out one shared
//! handle per directory.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use heed::types::Bytes;
use heed::{CommitOrAbort, Env, WithoutTls};
use serde::{Deserialize, Serialize};

/// Address space reserved for one list's store (not disk).
pub const MAP_SIZE: usize = 1 << 30;

type Db = heed::Database<'static, Bytes, Bytes>;

/// A member and the options it chose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub address: String,
    /// Gets digests instead of each post.
    #[serde(default, skip_serializing_if = "is_false")]
    pub digest: bool,
    /// Gets nothing (stays a member, so may post).
    #[serde(default, skip_serializing_if = "is_false")]
    pub nomail: bool,
    /// Bounces counted against the member.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bounces: u32,
    /// Seconds since the epoch.
    #[serde(default)]
    pub since: u64,
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Member {
    pub fn new(address: &str, since: u64) -> Member {
        Member {
            address: address.to_string(),
            digest: false,
            nomail: false,
            bounces: 0,
            since,
        }
    }
}

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("list state {0}: {1}")]
    Io(PathBuf, String),
    #[error("list state {0} is damaged: {1}")]
    Corrupt(PathBuf, String),
}

impl StoreError {
    pub fn exit_code(&self) -> i32 {
        match self {
            StoreError::Io(..) => crate::exit::IOERR,
            StoreError::Corrupt(..) => crate::exit::OSFILE,
        }
    }
}

/// One list's member store.
pub struct Store {
    env: Env<WithoutTls>,
    members: Db,
    posts: Db,
    dir: PathBuf,
}

static OPEN: Mutex<Vec<(PathBuf, Arc<Store>)>> = Mutex::new(Vec::new());

/// The key of a member address.
pub fn member_key(address: &str) -> Vec<u8> {
    address.trim().to_lowercase().into_bytes()
}

impl Store {
    /// Opens the store of the list whose state directory is `state`,
    /// creating it (and the directory) if missing.
    pub fn open(state: &Path) -> Result<Arc<Store>, StoreError> {
        let dir = state.join("members");
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, s)) = open.iter().find(|(p, _)| *p == dir) {
            return Ok(s.clone());
        }
        let io = |e: String| StoreError::Io(dir.clone(), e);
        make_dirs(&dir).map_err(|e| io(e.to_string()))?;
        let env = crate::sys::lmdb::open_env(&dir, MAP_SIZE, 4).map_err(|e| io(e.to_string()))?;
        let wtxn = env.write_txn().map_err(|e| io(e.to_string()))?;
        let (members, posts) = env
            .create_databases_and_commit(wtxn, |o, t| -> Result<_, heed::Error> {
                Ok(CommitOrAbort::<_, ()>::Commit((
                    o.create_database::<Bytes, Bytes>(t, Some("members"))?,
                    o.create_database::<Bytes, Bytes>(t, Some("posts"))?,
                )))
            })
            .map_err(|e| io(e.to_string()))?
            .commit()
            .ok_or_else(|| io("creating the databases was aborted".into()))?;
        let s = Arc::new(Store {
            env,
            members,
            posts,
            dir: dir.clone(),
        });
        // Few lists per process; a plain vector is enough and bounded below.
        if open.len() >= 256 {
            open.remove(0);
        }
        open.push((dir, s.clone()));
        Ok(s)
    }

    /// Forgets the shared handle of a store (before its directory goes).
    pub fn close(state: &Path) {
        let dir = state.join("members");
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|(p, _)| *p != dir);
    }

    fn err(&self, e: heed::Error) -> StoreError {
        StoreError::Io(self.dir.clone(), e.to_string())
    }

    fn decode(&self, k: &[u8], v: &[u8]) -> Result<Member, StoreError> {
        serde_json::from_slice(v).map_err(|e| {
            StoreError::Corrupt(
                self.dir.clone(),
                format!("member {}: {e}", String::from_utf8_lossy(k)),
            )
        })
    }

    /// Adds a member; false when it was one already (nothing changed).
    pub fn subscribe(&self, m: &Member) -> Result<bool, StoreError> {
        let mut t = self.env.write_txn().map_err(|e| self.err(e))?;
        let key = member_key(&m.address);
        if self
            .members
            .get(&t, &key)
            .map_err(|e| self.err(e))?
            .is_some()
        {
            return Ok(false);
        }
        // Invariant: a Member serialises infallibly.
        let v = serde_json::to_vec(m).expect("member serialises");
        self.members
            .put(&mut t, &key, &v)
            .map_err(|e| self.err(e))?;
        t.commit().map_err(|e| self.err(e))?;
        Ok(true)
    }

    /// Removes a member; false when it was none.
    pub fn unsubscribe(&self, address: &str) -> Result<bool, StoreError> {
        let mut t = self.env.write_txn().map_err(|e| self.err(e))?;
        let gone = self
            .members
            .delete(&mut t, &member_key(address))
            .map_err(|e| self.err(e))?;
        t.commit().map_err(|e| self.err(e))?;
        Ok(gone)
    }

    /// One member.
    pub fn member(&self, address: &str) -> Result<Option<Member>, StoreError> {
        let t = self.env.read_txn().map_err(|e| self.err(e))?;
        let key = member_key(address);
        match self.members.get(&t, &key).map_err(|e| self.err(e))? {
            Some(v) => self.decode(&key, v).map(Some),
            None => Ok(None),
        }
    }

    /// Changes a member in place; None when it is no member.
    pub fn update(
        &self,
        address: &str,
        f: impl FnOnce(&mut Member),
    ) -> Result<Option<Member>, StoreError> {
        let mut t = self.env.write_txn().map_err(|e| self.err(e))?;
        let key = member_key(address);
        let Some(v) = self.members.get(&t, &key).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        let mut m = self.decode(&key, v)?;
        f(&mut m);
        // Invariant: a Member serialises infallibly.
        let v = serde_json::to_vec(&m).expect("member serialises");
        self.members
            .put(&mut t, &key, &v)
            .map_err(|e| self.err(e))?;
        t.commit().map_err(|e| self.err(e))?;
        Ok(Some(m))
    }

    /// Every member, in address order.
    pub fn members(&self) -> Result<Vec<Member>, StoreError> {
        let t = self.env.read_txn().map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for kv in self.members.iter(&t).map_err(|e| self.err(e))? {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            out.push(self.decode(k, v)?);
        }
        Ok(out)
    }

    /// How many members.
    pub fn count(&self) -> Result<u64, StoreError> {
        let t = self.env.read_txn().map_err(|e| self.err(e))?;
        self.members.len(&t).map_err(|e| self.err(e))
    }

    /// Whether `key` (a post's queue id, or `QID NUL member`) is recorded.
    pub fn done(&self, key: &str) -> Result<bool, StoreError> {
        let t = self.env.read_txn().map_err(|e| self.err(e))?;
        Ok(self
            .posts
            .get(&t, key.as_bytes())
            .map_err(|e| self.err(e))?
            .is_some())
    }

    /// Records `keys` as done, in one transaction.
    pub fn mark_done(&self, keys: &[String], now: u64) -> Result<(), StoreError> {
        let mut t = self.env.write_txn().map_err(|e| self.err(e))?;
        let v = now.to_string();
        for k in keys {
            self.posts
                .put(&mut t, k.as_bytes(), v.as_bytes())
                .map_err(|e| self.err(e))?;
        }
        t.commit().map_err(|e| self.err(e))
    }

    /// Forgets done-marks older than `before` (seconds since the epoch).
    pub fn sweep(&self, before: u64) -> Result<usize, StoreError> {
        let mut t = self.env.write_txn().map_err(|e| self.err(e))?;
        let old: Vec<Vec<u8>> = self
            .posts
            .iter(&t)
            .map_err(|e| self.err(e))?
            .filter_map(|kv| kv.ok())
            .filter(|(_, v)| {
                std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .is_some_and(|at| at < before)
            })
            .map(|(k, _)| k.to_vec())
            .collect();
        for k in &old {
            self.posts.delete(&mut t, k).map_err(|e| self.err(e))?;
        }
        t.commit().map_err(|e| self.err(e))?;
        Ok(old.len())
    }
}

/// Creates `dir` and the missing directories above it (0750). Run as root
/// (kmpctl), each directory it makes takes the owner of the nearest one
/// that existed, so that `vmail` (owner of the mail root) can write them.
pub fn make_dirs(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let mut made = Vec::new();
    let mut p = Some(dir);
    let mut base = None;
    while let Some(d) = p {
        if d.is_dir() {
            base = Some(d);
            break;
        }
        made.push(d.to_path_buf());
        p = d.parent();
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir)?;
    if crate::sys::privs::is_root() {
        if let Some(b) = base {
            let m = std::fs::metadata(b)?;
            for d in made {
                std::os::unix::fs::chown(&d, Some(m.uid()), Some(m.gid()))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_come_and_go_once_each_and_posts_are_remembered() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        assert!(Arc::ptr_eq(&s, &Store::open(d.path()).unwrap()));
        assert!(s.subscribe(&Member::new("Bob@Example.org", 1)).unwrap());
        assert!(!s.subscribe(&Member::new("bob@example.org", 2)).unwrap());
        assert!(s.subscribe(&Member::new("ann@example.org", 2)).unwrap());
        assert_eq!(s.count().unwrap(), 2);
        let all: Vec<String> = s
            .members()
            .unwrap()
            .into_iter()
            .map(|m| m.address)
            .collect();
        assert_eq!(all, ["ann@example.org", "Bob@Example.org"]);
        let m = s.update("BOB@example.org", |m| m.digest = true).unwrap();
        assert!(m.unwrap().digest);
        assert!(s.member("bob@example.org").unwrap().unwrap().digest);
        assert!(s.unsubscribe("bob@EXAMPLE.org").unwrap());
        assert!(!s.unsubscribe("bob@example.org").unwrap());
        assert!(!s.done("Q1").unwrap());
        s.mark_done(&["Q1".into(), "Q1\0x@y".into()], 100).unwrap();
        assert!(s.done("Q1").unwrap() && s.done("Q1\0x@y").unwrap());
        assert_eq!(s.sweep(101).unwrap(), 2);
        assert!(!s.done("Q1").unwrap());
        Store::close(d.path());
    }
}
