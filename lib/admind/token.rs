//! Session tokens: what a client sends (`Authorization: Bearer TOKEN`)
//! instead of its password after `POST /v1/login`.
//!
//! A token is `base64url(payload) "." base64url(HMAC-SHA256(key, payload))`,
//! the payload `{"u": user, "e": expiry, "n": nonce}`. The key is drawn at
//! random when kmp-admind starts and never leaves its memory, so a restart
//! ends every session and no file holds a key that forges them. Logout puts
//! the nonce on a list of dead tokens until the token would have expired
//! anyway, so a token replayed after logout is refused.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// The longest token accepted (a longer one is refused unread).
pub const MAX_TOKEN: usize = 1024;
/// The most dead tokens remembered; past it, the oldest are dropped only
/// once expired, and new logouts still count (the list may grow by those).
const DEAD_PRUNE_AT: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    u: String,
    e: u64,
    n: String,
}

/// A session that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    pub expires: u64,
    nonce: String,
}

/// Why a token is refused (each a 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    Forged,
    Expired,
    LoggedOut,
}

impl TokenError {
    pub fn message(self) -> &'static str {
        match self {
            TokenError::Malformed => "the session token is malformed",
            TokenError::Forged => "the session token is not one this server made",
            TokenError::Expired => "the session has expired: log in again",
            TokenError::LoggedOut => "the session was ended by logout: log in again",
        }
    }
}

/// Makes and checks tokens.
pub struct Tokens {
    key: hmac::Key,
    rng: SystemRandom,
    dead: Mutex<HashMap<String, u64>>,
}

impl Tokens {
    /// With a fresh random key.
    pub fn new() -> Result<Tokens, String> {
        let rng = SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .map_err(|_| "no random numbers for the token key".to_string())?;
        Ok(Tokens {
            key,
            rng,
            dead: Mutex::new(HashMap::new()),
        })
    }

    /// A token for `user` good until `expires` (seconds since the epoch).
    pub fn issue(&self, user: &str, expires: u64) -> Result<String, String> {
        let mut n = [0u8; 16];
        self.rng
            .fill(&mut n)
            .map_err(|_| "no random numbers for a token".to_string())?;
        let p = Payload {
            u: user.to_string(),
            e: expires,
            n: URL_SAFE_NO_PAD.encode(n),
        };
        // Invariant: the payload is three plain fields and serialises.
        let body = serde_json::to_vec(&p).expect("payload serialises");
        let tag = hmac::sign(&self.key, &body);
        Ok(format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&body),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        ))
    }

    /// Checks a token at `now`.
    pub fn check(&self, token: &str, now: u64) -> Result<Session, TokenError> {
        if token.len() > MAX_TOKEN {
            return Err(TokenError::Malformed);
        }
        let (body, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed)?;
        hmac::verify(&self.key, &body, &tag).map_err(|_| TokenError::Forged)?;
        let p: Payload = serde_json::from_slice(&body).map_err(|_| TokenError::Malformed)?;
        if now >= p.e {
            return Err(TokenError::Expired);
        }
        if self.dead().contains_key(&p.n) {
            return Err(TokenError::LoggedOut);
        }
        Ok(Session {
            user: p.u,
            expires: p.e,
            nonce: p.n,
        })
    }

    /// Ends a session: its token is refused from now on.
    pub fn revoke(&self, s: &Session, now: u64) {
        let mut dead = self.dead();
        if dead.len() >= DEAD_PRUNE_AT {
            dead.retain(|_, e| *e > now);
        }
        dead.insert(s.nonce.clone(), s.expires);
    }

    fn dead(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.dead.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_are_revoked_and_cannot_be_forged() {
        let t = Tokens::new().unwrap();
        let tok = t.issue("pm@a.example", 100).unwrap();
        let s = t.check(&tok, 50).unwrap();
        assert_eq!(s.user, "pm@a.example");
        assert_eq!(t.check(&tok, 100), Err(TokenError::Expired));
        // Another server's key, or a payload changed to another user.
        let other = Tokens::new().unwrap();
        assert_eq!(other.check(&tok, 50), Err(TokenError::Forged));
        let (_, tag) = tok.split_once('.').unwrap();
        let evil = URL_SAFE_NO_PAD.encode(br#"{"u":"admin@a.example","e":999,"n":"x"}"#);
        assert_eq!(
            t.check(&format!("{evil}.{tag}"), 50),
            Err(TokenError::Forged)
        );
        for bad in ["", ".", "abc", "a.b.c", "!!.!!"] {
            assert!(t.check(bad, 50).is_err(), "{bad}");
        }
        t.revoke(&s, 50);
        assert_eq!(t.check(&tok, 50), Err(TokenError::LoggedOut));
        // Another session of the same user is not affected.
        let tok2 = t.issue("pm@a.example", 100).unwrap();
        assert!(t.check(&tok2, 50).is_ok());
    }
}
