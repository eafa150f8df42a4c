//! The session cookie and the CSRF token, under the webmail key.
//!
//! The key is 32 random bytes in `webmail.key_file` (written by `kmpctl init`
//! and `kmpctl setup`, mode 0640, readable by the web server's user only).
//! Two keys are derived from it with HMAC-SHA-256, one per use: the AEAD key
//! (ChaCha20-Poly1305) that seals the cookie, and the HMAC key of the CSRF
//! tokens. The cookie is `base64url(nonce || ciphertext || tag)` with a
//! random 96-bit nonce per seal; its plaintext is the [`Sealed`] session.
//! See doc/ARCHITECTURE.md (Webmail sessions) for why it holds the password.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// Bytes in the key file.
pub const KEY_LEN: usize = 32;

/// Longest cookie value accepted for opening (a sealed session is far smaller).
const MAX_SEALED: usize = 4096;

/// Associated data: binds a sealed value to its use and format version.
const AAD: &[u8] = b"kmpromail webmail session v1";

/// The keys derived from the key file.
pub struct Keys {
    aead: LessSafeKey,
    csrf: hmac::Key,
}

/// What a session cookie holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sealed {
    /// The login name.
    #[serde(rename = "u")]
    pub user: String,
    /// The password, for the IMAP login of each request.
    #[serde(rename = "p")]
    pub password: String,
    /// The session id, listed in the user's METADATA while the session lives.
    #[serde(rename = "s")]
    pub sid: String,
    /// Unix seconds after which the cookie is refused.
    #[serde(rename = "e")]
    pub expires: u64,
    /// kmp-admind's session token, once an administration page logged in
    /// there (see `webmail::admin`).
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    /// How far the INBOX was searched for an unread announcement (see
    /// `pages::list`), so that each list page searches only what arrived
    /// since.
    #[serde(rename = "b", default, skip_serializing_if = "Option::is_none")]
    pub banner: Option<BannerMark>,
    /// Whether the navigation shows the list pages (kmp-admind's whoami,
    /// asked once at login; see `pages::lists`).
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    pub list_nav: Option<bool>,
    /// The administration roles kmp-admind's `/v1/whoami` gave at login
    /// (`admin`, `postmaster`, `list owner`), for the navigation only:
    /// kmp-admind checks the role again on every call.
    #[serde(rename = "r", default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// The INBOX's announcement search so far: its UIDVALIDITY, the UIDNEXT
/// it reached, and the unread announcement it found (0: none).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct BannerMark {
    #[serde(rename = "v")]
    pub uidvalidity: u32,
    #[serde(rename = "n")]
    pub next: u32,
    #[serde(rename = "f")]
    pub found: u32,
}

impl Drop for Sealed {
    fn drop(&mut self) {
        self.password.zeroize();
        if let Some(t) = self.admin_token.as_mut() {
            t.zeroize();
        }
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

impl Keys {
    /// Derives the keys from the 32 bytes of a key file.
    pub fn from_bytes(key: &[u8; KEY_LEN]) -> Keys {
        let master = hmac::Key::new(hmac::HMAC_SHA256, key);
        let aead_bytes = hmac::sign(&master, b"kmpromail webmail aead");
        let csrf_bytes = hmac::sign(&master, b"kmpromail webmail csrf");
        Keys {
            // Invariant: HMAC-SHA-256 gives 32 bytes, ChaCha20-Poly1305's key length.
            aead: LessSafeKey::new(
                UnboundKey::new(&CHACHA20_POLY1305, aead_bytes.as_ref()).expect("32-byte key"),
            ),
            csrf: hmac::Key::new(hmac::HMAC_SHA256, csrf_bytes.as_ref()),
        }
    }

    /// Reads the key file: exactly 32 bytes, not readable by others.
    pub fn load(path: &Path) -> Result<Keys, String> {
        let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let meta = f
            .metadata()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.mode() & 0o004 != 0 {
            return Err(format!(
                "{}: readable by every user; it must be mode 0640 or stricter",
                path.display()
            ));
        }
        let mut buf = Vec::with_capacity(KEY_LEN);
        f.by_ref()
            .take(KEY_LEN as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let Ok(key) = <[u8; KEY_LEN]>::try_from(buf.as_slice()) else {
            buf.zeroize();
            return Err(format!("{}: not a {KEY_LEN}-byte key", path.display()));
        };
        buf.zeroize();
        Ok(Keys::from_bytes(&key))
    }

    /// Seals a session into a cookie value.
    pub fn seal(&self, s: &Sealed) -> Result<String, String> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| "no random numbers".to_string())?;
        let mut data = serde_json::to_vec(s).map_err(|e| e.to_string())?;
        let sealed = self.aead.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(AAD),
            &mut data,
        );
        if sealed.is_err() {
            data.zeroize();
            return Err("cannot seal the session".into());
        }
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens a cookie value: None when it was not sealed by this key,
    /// was changed in any byte, or is not a session.
    pub fn open(&self, value: &str) -> Option<Sealed> {
        if value.len() > MAX_SEALED {
            return None;
        }
        let mut raw = URL_SAFE_NO_PAD.decode(value).ok()?;
        if raw.len() < NONCE_LEN + CHACHA20_POLY1305.tag_len() {
            return None;
        }
        let nonce = Nonce::try_assume_unique_for_key(&raw[..NONCE_LEN]).ok()?;
        let mut body = raw.split_off(NONCE_LEN);
        let opened = match self.aead.open_in_place(nonce, Aad::from(AAD), &mut body) {
            Ok(plain) => serde_json::from_slice::<Sealed>(plain).ok(),
            Err(_) => None,
        };
        body.zeroize();
        opened
    }

    /// The CSRF token of a session: HMAC(csrf key, sid), base64url.
    pub fn csrf_token(&self, sid: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.csrf, sid.as_bytes()))
    }

    /// Whether `token` is the CSRF token of `sid` (in constant time).
    pub fn csrf_ok(&self, sid: &str, token: &str) -> bool {
        match URL_SAFE_NO_PAD.decode(token) {
            Ok(t) => hmac::verify(&self.csrf, sid.as_bytes(), &t).is_ok(),
            Err(_) => false,
        }
    }
}

/// 32 random bytes for a new key file.
pub fn new_key() -> Result<[u8; KEY_LEN], String> {
    let mut k = [0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut k)
        .map_err(|_| "no random numbers".to_string())?;
    Ok(k)
}

/// A new session id: 16 random bytes, base64url (22 characters).
pub fn new_sid() -> Result<String, String> {
    let mut b = [0u8; 16];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| "no random numbers".to_string())?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(b: u8) -> Keys {
        Keys::from_bytes(&[b; KEY_LEN])
    }

    fn session() -> Sealed {
        Sealed {
            user: "张三@example.test".into(),
            password: "pa ss\"word".into(),
            sid: new_sid().unwrap(),
            expires: 1_900_000_000,
            admin_token: None,
            banner: None,
            list_nav: None,
            roles: Vec::new(),
        }
    }

    #[test]
    fn a_sealed_cookie_opens_only_with_its_key_and_unchanged() {
        let k = keys(7);
        let s = session();
        let c = k.seal(&s).unwrap();
        assert_eq!(k.open(&c), Some(s.clone()));
        assert!(!c.contains("pa ss"), "the password is not readable");
        assert_ne!(k.seal(&s).unwrap(), c, "a fresh nonce each time");
        assert_eq!(keys(8).open(&c), None, "another key");
        let raw = URL_SAFE_NO_PAD.decode(&c).unwrap();
        for i in [0, NONCE_LEN, raw.len() / 2, raw.len() - 1] {
            let mut t = raw.clone();
            t[i] ^= 1;
            assert_eq!(
                k.open(&URL_SAFE_NO_PAD.encode(&t)),
                None,
                "byte {i} flipped"
            );
        }
        assert_eq!(k.open(""), None);
        assert_eq!(k.open("!!!"), None);
        assert_eq!(k.open(&"A".repeat(5000)), None);
    }

    #[test]
    fn csrf_tokens_belong_to_one_session_and_key() {
        let k = keys(1);
        let t = k.csrf_token("sid1");
        assert!(k.csrf_ok("sid1", &t));
        assert!(!k.csrf_ok("sid2", &t));
        assert!(!keys(2).csrf_ok("sid1", &t));
        assert!(!k.csrf_ok("sid1", ""));
        assert!(!k.csrf_ok("sid1", "not base64 !"));
    }

    #[test]
    fn key_files_must_be_32_private_bytes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        std::fs::write(&p, new_key().unwrap()).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(Keys::load(&p).is_ok());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Keys::load(&p)
            .unwrap_err()
            .contains("readable by every user"));
        std::fs::write(&p, b"short").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Keys::load(&p).unwrap_err().contains("32-byte"));
    }
}
