//! The URLAUTH key of a folder (RFC 4467 section 7: "a per-mailbox,
//! per-user secret"): 32 random octets, hex, in `kmpromail-urlauth-key`
//! in the folder's own directory (the Maildir root for INBOX), mode 0600
//! like every metadata file of ours. Keeping it with the folder makes it go
//! away with the folder: URLs to a deleted folder stop working, and a new
//! folder of the same name gets a new key. RESETKEY removes the file.
//!
//! A key is made once: the new one is written to a temporary file and
//! hard-linked into place, which fails if another session made one first;
//! that one is then read, so two sessions never hand out tokens of two
//! different keys.

use std::fs;
use std::io::{ErrorKind, Write};

use super::error::{io_err, Error, Result};
use super::Folder;

/// The key file's name in the folder directory.
pub const KEY_FILE: &str = "kmpromail-urlauth-key";

/// A folder's URLAUTH key.
pub type UrlAuthKey = [u8; 32];

impl Folder {
    /// The folder's key; with `create`, one is made when there is none.
    /// None when there is none (and `create` is false).
    pub fn urlauth_key(&self, create: bool) -> Result<Option<UrlAuthKey>> {
        if !self.exists() {
            return Err(Error::NoFolder(self.name().to_string()));
        }
        let path = self.path().join(KEY_FILE);
        if let Some(k) = read_key(&path)? {
            return Ok(Some(k));
        }
        if !create {
            return Ok(None);
        }
        let mut key = [0u8; 32];
        use ring::rand::SecureRandom;
        ring::rand::SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| Error::Io {
                op: "random",
                path: path.clone(),
                source: std::io::Error::other("no random numbers"),
            })?;
        let (mut f, tmp) = super::replace::temp_file(&path)?;
        let r = (|| {
            f.write_all(hex(&key).as_bytes())
                .map_err(io_err("write", &tmp))?;
            f.sync_all().map_err(io_err("fsync", &tmp))?;
            match fs::hard_link(&tmp, &path) {
                Ok(()) => Ok(Some(key)),
                // Another session made one meanwhile: use that.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => read_key(&path),
                Err(e) => Err(io_err("link", &path)(e)),
            }
        })();
        let _ = fs::remove_file(&tmp);
        r
    }

    /// Forgets the folder's key: every URL it authorised stops working.
    pub fn reset_urlauth_key(&self) -> Result<()> {
        let path = self.path().join(KEY_FILE);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(io_err("unlink", &path)(e)),
            _ => Ok(()),
        }
    }
}

fn read_key(path: &std::path::Path) -> Result<Option<UrlAuthKey>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", path)(e)),
    };
    let t = text.trim();
    let mut key = [0u8; 32];
    if t.len() != 64 {
        // A damaged file authorises nothing; a new key replaces it.
        let _ = fs::remove_file(path);
        return Ok(None);
    }
    for (i, k) in key.iter_mut().enumerate() {
        match u8::from_str_radix(&t[2 * i..2 * i + 2], 16) {
            Ok(b) => *k = b,
            Err(_) => {
                let _ = fs::remove_file(path);
                return Ok(None);
            }
        }
    }
    Ok(Some(key))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::super::Maildir;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_key_is_made_once_kept_private_and_reset() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::create(dir.path().join("u")).unwrap();
        let inbox = md.inbox();
        assert_eq!(inbox.urlauth_key(false).unwrap(), None);
        let k = inbox.urlauth_key(true).unwrap().unwrap();
        assert_eq!(inbox.urlauth_key(true).unwrap(), Some(k));
        assert_eq!(inbox.urlauth_key(false).unwrap(), Some(k));
        let mode = std::fs::metadata(inbox.path().join(super::KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(md.root().join("tmp")).unwrap().count(), 0);
        inbox.reset_urlauth_key().unwrap();
        assert_eq!(inbox.urlauth_key(false).unwrap(), None);
        assert_ne!(inbox.urlauth_key(true).unwrap(), Some(k));
        assert!(md.folder("Nope").unwrap().urlauth_key(true).is_err());
    }
}
