//! The cache of good logins, so that POP3 clients polling every minute do
//! not cost a password hash each time.
//!
//! An entry is keyed by the user and holds an HMAC-SHA-256 of the password
//! under a key drawn at random when the process starts (never the password
//! itself, and useless outside this process), and the stored hash it was
//! checked against. A login is taken from the cache only when the tag
//! matches *and* the user's stored hash is still the one the entry was made
//! with: a changed password (kmpctl user passwd) misses at once, a wrong
//! password never matches the tag. Entries also expire after [`TTL_MS`].

use std::collections::HashMap;

use ring::hmac;

use crate::proto::sasl::ct_eq;

/// How long a good login is remembered.
pub const TTL_MS: u64 = 3600 * 1000;
/// How many users are remembered at most.
pub const MAX_ENTRIES: usize = 200_000;

/// The HMAC of a (user, password) pair.
#[derive(Clone, Copy)]
pub struct Tag([u8; 32]);

impl PartialEq for Tag {
    fn eq(&self, other: &Tag) -> bool {
        ct_eq(&self.0, &other.0)
    }
}

impl Eq for Tag {}

impl std::fmt::Debug for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tag(..)")
    }
}

struct Entry {
    tag: Tag,
    hash: String,
    at_ms: u64,
}

/// The cache.
pub struct LoginCache {
    key: hmac::Key,
    entries: HashMap<Vec<u8>, Entry>,
}

impl LoginCache {
    /// An empty cache with a fresh random key.
    pub fn new() -> LoginCache {
        let rng = ring::rand::SystemRandom::new();
        // Invariant: the system's random source works (ring reads getrandom).
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("random key");
        LoginCache {
            key,
            entries: HashMap::new(),
        }
    }

    /// The tag of `password` for the user whose key is `user`.
    pub fn tag(&self, user: &[u8], password: &[u8]) -> Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&(user.len() as u32).to_be_bytes());
        ctx.update(user);
        ctx.update(password);
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        Tag(out)
    }

    /// Whether this login was verified before against the same stored hash.
    pub fn hit(&self, user: &[u8], tag: &Tag, stored_hash: &str, now_ms: u64) -> bool {
        match self.entries.get(user) {
            Some(e) => {
                // Both in constant time: the tag is password-derived, and
                // neither comparison may stop early on a partial match.
                let same_tag = ct_eq(&e.tag.0, &tag.0);
                let same_hash = ct_eq(e.hash.as_bytes(), stored_hash.as_bytes());
                same_tag & same_hash && now_ms.saturating_sub(e.at_ms) < TTL_MS
            }
            None => false,
        }
    }

    /// Remembers a verified login.
    pub fn insert(&mut self, user: &[u8], tag: Tag, stored_hash: &str, now_ms: u64) {
        if self.entries.len() >= MAX_ENTRIES && !self.entries.contains_key(user) {
            self.entries
                .retain(|_, e| now_ms.saturating_sub(e.at_ms) < TTL_MS);
            if self.entries.len() >= MAX_ENTRIES {
                self.entries.clear();
            }
        }
        self.entries.insert(
            user.to_vec(),
            Entry {
                tag,
                hash: stored_hash.to_string(),
                at_ms: now_ms,
            },
        );
    }

    /// Forgets a user (after a failed login, to be safe).
    pub fn forget(&mut self, user: &[u8]) {
        self.entries.remove(user);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Default for LoginCache {
    fn default() -> Self {
        LoginCache::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_password_and_hash_hit() {
        let mut c = LoginCache::new();
        let t = c.tag(b"d\0u", b"pw");
        assert!(!c.hit(b"d\0u", &t, "$6$a", 0));
        c.insert(b"d\0u", t, "$6$a", 1000);
        assert!(c.hit(b"d\0u", &t, "$6$a", 2000));
        // A changed stored hash misses.
        assert!(!c.hit(b"d\0u", &t, "$6$b", 2000));
        // A wrong password misses.
        assert!(!c.hit(b"d\0u", &c.tag(b"d\0u", b"pX"), "$6$a", 2000));
        // The same password for another user has another tag.
        assert_ne!(c.tag(b"d\0v", b"pw"), t);
        assert!(!c.hit(b"d\0v", &t, "$6$a", 2000));
        // Entries expire.
        assert!(!c.hit(b"d\0u", &t, "$6$a", 1000 + TTL_MS));
        // Another process (another key) makes other tags.
        assert_ne!(LoginCache::new().tag(b"d\0u", b"pw"), t);
        c.forget(b"d\0u");
        assert!(c.is_empty());
    }
}
