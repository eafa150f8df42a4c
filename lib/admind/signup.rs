//! Sign-up through kmp-admind: the API's two calls without a login.
//!
//! | method | path | body | what |
//! |---|---|---|---|
//! | GET | /v1/signup | — | the domains open for sign-up |
//! | POST | /v1/signup | [`SignupBody`] | a new account (or one waiting for approval) |
//!
//! The checks of the account itself are [`crate::admin::signup`]'s. Here:
//! the caller's address, its ban (kmp-authd's table: a banned address gets
//! 429) and its own rate limit, `admind.signup_max` attempts per
//! `admind.signup_window`, counted whether they succeed or not; an address
//! over it gets 429 and is reported to kmp-authd as a failure, so a flood
//! ends in a ban across every protocol. The address is the peer's, or, for
//! a peer in `admind.trusted_networks` (the webmail host), the browser's
//! that the webmail names in `client_ip`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use serde::Deserialize;
use serde_json::{json, Value};

use super::api::{ApiError, MAX_CREDENTIAL};
use super::handlers::db_error;
use crate::admin::signup::{open_domains, signup};
use crate::userdb::lmdb::Lmdb;
use crate::userdb::Address;

/// The most client addresses remembered at once (older ones are dropped
/// first when there are more).
const MAX_TRACKED: usize = 100_000;

/// `POST /v1/signup`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupBody {
    pub address: String,
    pub password: String,
    /// The browser's address, from a trusted front end (the webmail).
    #[serde(default)]
    pub client_ip: Option<String>,
}

/// Checks the body's form; the address parsed.
pub fn parse(body: &[u8]) -> Result<(Address, SignupBody), ApiError> {
    let b: SignupBody = super::api::json(body)?;
    if b.password.is_empty() || b.password.len() > MAX_CREDENTIAL {
        return Err(ApiError::bad(format!(
            "a password must have 1 to {MAX_CREDENTIAL} bytes"
        )));
    }
    if b.client_ip.as_ref().is_some_and(|c| c.len() > 64) {
        return Err(ApiError::bad("client_ip is not an address"));
    }
    let a = super::api::address(&b.address)?;
    Ok((a, b))
}

/// Attempts per client address within a window.
#[derive(Debug, Default)]
pub struct RateLimit {
    seen: Mutex<HashMap<IpAddr, Vec<u64>>>,
}

impl RateLimit {
    /// Counts an attempt of `ip` at `now`; false when it is one too many
    /// (`max` in the last `window` seconds).
    pub fn allow(&self, ip: IpAddr, now: u64, max: usize, window: u64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= MAX_TRACKED {
            seen.retain(|_, v| v.last().is_some_and(|t| t + window > now));
            if seen.len() >= MAX_TRACKED {
                seen.clear();
            }
        }
        let v = seen.entry(ip).or_default();
        v.retain(|t| t + window > now);
        if v.len() >= max {
            return false;
        }
        v.push(now);
        true
    }
}

/// `GET /v1/signup`.
pub fn domains(db: &Lmdb) -> Result<Value, ApiError> {
    let list: Vec<Value> = open_domains(db)
        .map_err(db_error)?
        .into_iter()
        .map(|(d, u, approve)| json!({"domain": d, "unicode": u, "approval": approve}))
        .collect();
    Ok(json!({ "domains": list }))
}

/// `POST /v1/signup`, once the address has passed its ban and rate checks.
pub fn execute(db: &Lmdb, addr: &Address, password: &str) -> Result<Value, ApiError> {
    let done = signup(db, addr, password).map_err(db_error)?;
    Ok(json!({"signed_up": done.address, "pending_approval": done.pending}))
}

/// The client's address: the peer, or the one a trusted peer names.
pub fn client(peer: IpAddr, named: Option<&str>, trusted: &[crate::net::Cidr]) -> IpAddr {
    let peer = peer.to_canonical();
    match named.and_then(|n| n.trim().parse::<IpAddr>().ok()) {
        Some(ip) if trusted.iter().any(|c| c.contains(peer)) => ip.to_canonical(),
        _ => peer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_counts_per_address_within_the_window() {
        let r = RateLimit::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(r.allow(a, 100, 2, 60));
        assert!(r.allow(a, 101, 2, 60));
        assert!(!r.allow(a, 102, 2, 60));
        assert!(r.allow(b, 102, 2, 60), "another address has its own count");
        assert!(r.allow(a, 161, 2, 60), "the window moved on");
    }

    #[test]
    fn only_a_trusted_peer_names_the_client() {
        let trusted = vec!["127.0.0.1/32".parse::<crate::net::Cidr>().unwrap()];
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "192.0.2.9".parse().unwrap();
        assert_eq!(
            client(lo, Some("198.51.100.7"), &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client(other, Some("198.51.100.7"), &trusted), other);
        assert_eq!(client(lo, Some("junk"), &trusted), lo);
        assert!(parse(br#"{"address":"a%b@c.d","password":"x"}"#).is_err());
        assert!(parse(br#"{"address":"a@c.d","password":""}"#).is_err());
        assert!(parse(br#"{"address":"a@c.d","password":"x","admin":true}"#).is_err());
    }
}
