//! Held posts: `STATE/held/ID.eml` (the post as it arrived) and
//! `STATE/held/ID.json` (who sent it, why it waits), and the approvals that
//! let a held post back in (`STATE/approved/TOKEN`).
//!
//! Holding writes the description to a temporary name, fsyncs it, renames
//! it into place, then the same for the message, which is what makes the
//! post held: a reader never finds a message without its description, and
//! a crash leaves at worst a description without message, which nobody
//! lists (a message from an older version without one is still shown,
//! reason unknown). An id is letters, digits, dots and hyphens only, so no id can
//! name a path outside the directory.
//!
//! Approval: the approver (kmpctl, or a moderator's reply in kmp-local)
//! takes the post out of `held/`, writes a random token to `approved/`, and
//! sends the post to the list again with an [`APPROVED_HEADER`] naming the
//! token. kmp-local lets a post with a token it finds in `approved/` pass
//! the policy, removes the header and the token: a header forged from
//! outside names no token and changes nothing.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The header field that carries an approval token.
pub const APPROVED_HEADER: &str = "X-Kmpromail-List-Approved";

/// The description of a held post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub id: String,
    /// The envelope sender.
    #[serde(default)]
    pub sender: String,
    /// The From: address.
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub size: u64,
    /// Seconds since the epoch.
    #[serde(default)]
    pub received: u64,
}

/// Why a held post could not be found or acted on.
#[derive(Debug, thiserror::Error)]
pub enum HeldError {
    #[error("{0:?} is not a held post id")]
    BadId(String),
    #[error("no held post {0}")]
    NotFound(String),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}

impl HeldError {
    pub fn exit_code(&self) -> i32 {
        match self {
            HeldError::BadId(_) => crate::exit::USAGE,
            HeldError::NotFound(_) => crate::exit::NOINPUT,
            HeldError::Io(_, e) => crate::exit::from_io(e),
        }
    }
}

/// Whether `id` is a well-formed held-post id (or token).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

fn held_dir(state: &Path) -> PathBuf {
    state.join("held")
}

/// Writes `data` to `path` durably: temporary name, fsync, rename, fsync
/// of the directory.
pub fn write_durable(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    super::store::make_dirs(dir)?;
    let tmp = dir.join(format!(
        ".tmp.{}.{}",
        std::process::id(),
        path.file_name().and_then(|n| n.to_str()).unwrap_or("x")
    ));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    // A crash here leaves a `.tmp.` file nobody lists.
    std::fs::rename(&tmp, path)?;
    crate::sys::dirsync::sync(dir)
}

/// Holds a post under `meta.id`.
pub fn hold(state: &Path, meta: &Held, data: &[u8]) -> Result<(), HeldError> {
    if !valid_id(&meta.id) {
        return Err(HeldError::BadId(meta.id.clone()));
    }
    let dir = held_dir(state);
    let json = dir.join(format!("{}.json", meta.id));
    // Invariant: a Held serialises infallibly.
    let text = serde_json::to_vec(meta).expect("held serialises");
    write_durable(&json, &text).map_err(|e| HeldError::Io(json, e))?;
    let eml = dir.join(format!("{}.eml", meta.id));
    write_durable(&eml, data).map_err(|e| HeldError::Io(eml, e))
}

/// Whether a post is held under `id` already.
pub fn is_held(state: &Path, id: &str) -> bool {
    valid_id(id) && held_dir(state).join(format!("{id}.eml")).is_file()
}

/// Every held post, oldest first.
pub fn list(state: &Path) -> Result<Vec<Held>, HeldError> {
    let dir = held_dir(state);
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(HeldError::Io(dir, e)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| HeldError::Io(dir.clone(), e))?;
        let name = ent.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".eml")) else {
            continue;
        };
        if !valid_id(id) {
            continue;
        }
        out.push(describe(
            state,
            id,
            ent.metadata().map(|m| m.len()).unwrap_or(0),
        ));
    }
    out.sort_by(|a, b| (a.received, &a.id).cmp(&(b.received, &b.id)));
    Ok(out)
}

fn describe(state: &Path, id: &str, size: u64) -> Held {
    let json = held_dir(state).join(format!("{id}.json"));
    std::fs::read(&json)
        .ok()
        .and_then(|b| serde_json::from_slice::<Held>(&b).ok())
        .unwrap_or_else(|| Held {
            id: id.to_string(),
            sender: String::new(),
            from: String::new(),
            subject: String::new(),
            reason: "unknown (no description)".into(),
            size,
            received: 0,
        })
}

/// A held post: its description and the message.
pub fn get(state: &Path, id: &str) -> Result<(Held, Vec<u8>), HeldError> {
    if !valid_id(id) {
        return Err(HeldError::BadId(id.to_string()));
    }
    let eml = held_dir(state).join(format!("{id}.eml"));
    let data = match std::fs::read(&eml) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(HeldError::NotFound(id.to_string()))
        }
        Err(e) => return Err(HeldError::Io(eml, e)),
    };
    Ok((describe(state, id, data.len() as u64), data))
}

/// Removes a held post (after it was approved and sent on, or rejected).
pub fn remove(state: &Path, id: &str) -> Result<(), HeldError> {
    if !valid_id(id) {
        return Err(HeldError::BadId(id.to_string()));
    }
    let dir = held_dir(state);
    let eml = dir.join(format!("{id}.eml"));
    match std::fs::remove_file(&eml) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(HeldError::NotFound(id.to_string()))
        }
        Err(e) => return Err(HeldError::Io(eml, e)),
    }
    let _ = std::fs::remove_file(dir.join(format!("{id}.json")));
    let _ = crate::sys::dirsync::sync(&dir);
    Ok(())
}

/// A fresh random token (128 bits, hex).
pub fn new_token() -> String {
    let b: [u8; 16] = rand::random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Records an approval: returns the token and the post with the approval
/// header in front, ready to be sent to the list again.
pub fn approve(state: &Path, id: &str) -> Result<(String, Held, Vec<u8>), HeldError> {
    let (meta, data) = get(state, id)?;
    let token = new_token();
    let path = state.join("approved").join(&token);
    write_durable(&path, id.as_bytes()).map_err(|e| HeldError::Io(path, e))?;
    let mut out = format!("{APPROVED_HEADER}: {token}\r\n").into_bytes();
    out.extend_from_slice(&data);
    Ok((token, meta, out))
}

/// Whether `token` is an approval on record; consumes it when `take`.
pub fn approved(state: &Path, token: &str, take: bool) -> bool {
    if !valid_id(token) {
        return false;
    }
    let p = state.join("approved").join(token);
    if !p.is_file() {
        return false;
    }
    if take {
        let _ = std::fs::remove_file(&p);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_posts_are_kept_listed_approved_and_removed() {
        let d = tempfile::tempdir().unwrap();
        let meta = Held {
            id: "Q1.2".into(),
            sender: "x@y.test".into(),
            from: "x@y.test".into(),
            subject: "hi".into(),
            reason: "not a member".into(),
            size: 5,
            received: 7,
        };
        hold(d.path(), &meta, b"hello").unwrap();
        assert!(is_held(d.path(), "Q1.2"));
        assert_eq!(list(d.path()).unwrap(), std::slice::from_ref(&meta));
        let (token, m, data) = approve(d.path(), "Q1.2").unwrap();
        assert_eq!(m, meta);
        assert!(data.starts_with(format!("{APPROVED_HEADER}: {token}\r\n").as_bytes()));
        assert!(data.ends_with(b"hello"));
        assert!(approved(d.path(), &token, false));
        assert!(approved(d.path(), &token, true));
        assert!(!approved(d.path(), &token, true));
        remove(d.path(), "Q1.2").unwrap();
        assert!(list(d.path()).unwrap().is_empty());
        for bad in ["../x", "", ".hidden", "a/b"] {
            assert!(matches!(get(d.path(), bad), Err(HeldError::BadId(_))));
            assert!(!approved(d.path(), bad, false));
        }
        assert!(matches!(get(d.path(), "nope"), Err(HeldError::NotFound(_))));
    }
}
