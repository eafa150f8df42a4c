//! The Sender Rewriting Scheme (SRS, as in Shevek's paper and libsrs2): the
//! reverse path of mail we forward to another host is rewritten into an
//! address of ours, so the receiver's SPF check sees our domain; a bounce to
//! that address is recognised here and sent back to the original sender.
//!
//! ```text
//! user@example.org                  -> SRS0=HHHH=TT=example.org=user@us
//! SRS0=HHHH=TT=example.org=user@fwd -> SRS1=HHHH=fwd==HHHH=TT=example.org=user@us
//! ```
//!
//! HHHH is the first four base64 characters of HMAC-SHA-256 under our secret
//! (so no one else can make an address we will forward), TT the day in base32
//! modulo 1024 (so an address expires). Pure: no I/O, the day is given.

use base64::Engine;
use ring::hmac;

/// Why an SRS address is not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SrsError {
    /// Not of the SRS0/SRS1 form.
    Malformed,
    /// The hash is not ours: forged, or made under another secret.
    BadHash,
    /// Older than the allowed age.
    Expired,
}

impl std::fmt::Display for SrsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SrsError::Malformed => "not an SRS address",
            SrsError::BadHash => "forged SRS address (bad hash)",
            SrsError::Expired => "expired SRS address",
        })
    }
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Our SRS settings.
#[derive(Clone)]
pub struct Srs {
    key: hmac::Key,
    /// The domain of the rewritten addresses (one we receive mail for).
    pub domain: String,
    /// Days an address stays valid.
    pub max_age_days: u64,
}

impl std::fmt::Debug for Srs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Srs")
            .field("domain", &self.domain)
            .field("max_age_days", &self.max_age_days)
            .finish_non_exhaustive()
    }
}

impl Srs {
    pub fn new(secret: &[u8], domain: &str, max_age_days: u64) -> Srs {
        Srs {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
            max_age_days,
        }
    }

    /// The reverse path to forward `sender` with on `day` (days since
    /// 1970). The null path and our own SRS addresses stay as they are.
    pub fn forward(&self, sender: &str, day: u64) -> String {
        let Some((local, domain)) = sender.rsplit_once('@') else {
            return sender.to_string();
        };
        if domain.eq_ignore_ascii_case(&self.domain) && is_srs(local) {
            return sender.to_string();
        }
        let upper = local.get(..5).map(str::to_ascii_uppercase);
        match upper.as_deref() {
            // Another forwarder's SRS0: SRS1 naming that forwarder.
            Some("SRS0=" | "SRS0+" | "SRS0-") => {
                let rest = &local[4..];
                let h = self.hash(&[domain, rest]);
                format!("SRS1={h}={domain}={rest}@{}", self.domain)
            }
            // Another forwarder's SRS1: keep its first forwarder.
            Some("SRS1=" | "SRS1+" | "SRS1-") => {
                let body = &local[5..];
                match body.split_once('=').and_then(|(_, r)| r.split_once('=')) {
                    Some((first, rest)) => {
                        let h = self.hash(&[first, rest]);
                        format!("SRS1={h}={first}={rest}@{}", self.domain)
                    }
                    None => self.srs0(local, domain, day),
                }
            }
            _ => self.srs0(local, domain, day),
        }
    }

    fn srs0(&self, local: &str, domain: &str, day: u64) -> String {
        let tt = timestamp(day);
        let h = self.hash(&[&tt, domain, local]);
        format!("SRS0={h}={tt}={domain}={local}@{}", self.domain)
    }

    /// Where a message to the local part `local` (of our SRS domain) goes
    /// back to on `day`: the original sender (SRS0) or the forwarder before
    /// us (SRS1).
    pub fn reverse(&self, local: &str, day: u64) -> Result<String, SrsError> {
        let upper = local.get(..5).map(str::to_ascii_uppercase);
        match upper.as_deref() {
            Some("SRS0=" | "SRS0+" | "SRS0-") => {
                let mut parts = local[5..].splitn(4, '=');
                let (Some(h), Some(tt), Some(domain), Some(user)) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return Err(SrsError::Malformed);
                };
                if domain.is_empty() || user.is_empty() {
                    return Err(SrsError::Malformed);
                }
                if !self.hash(&[tt, domain, user]).eq_ignore_ascii_case(h) {
                    return Err(SrsError::BadHash);
                }
                let made = day_of(tt).ok_or(SrsError::Malformed)?;
                if (day % 1024 + 1024 - made) % 1024 > self.max_age_days {
                    return Err(SrsError::Expired);
                }
                Ok(format!("{user}@{domain}"))
            }
            Some("SRS1=" | "SRS1+" | "SRS1-") => {
                let mut parts = local[5..].splitn(3, '=');
                let (Some(h), Some(first), Some(rest)) = (parts.next(), parts.next(), parts.next())
                else {
                    return Err(SrsError::Malformed);
                };
                if first.is_empty() || !rest.starts_with('=') {
                    return Err(SrsError::Malformed);
                }
                if !self.hash(&[first, rest]).eq_ignore_ascii_case(h) {
                    return Err(SrsError::BadHash);
                }
                Ok(format!("SRS0{rest}@{first}"))
            }
            _ => Err(SrsError::Malformed),
        }
    }

    fn hash(&self, parts: &[&str]) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        for p in parts {
            ctx.update(p.to_ascii_lowercase().as_bytes());
        }
        let tag = ctx.sign();
        base64::engine::general_purpose::STANDARD.encode(tag.as_ref())[..4].to_string()
    }
}

/// The SRS settings of `cfg`, or None when `auth.srs_secret_file` is
/// empty. An unreadable or empty secret file is an error naming it.
pub fn from_config(cfg: &crate::config::Config) -> Result<Option<Srs>, String> {
    let path = cfg.str("auth.srs_secret_file");
    if path.is_empty() {
        return Ok(None);
    }
    let secret = std::fs::read(path).map_err(|e| format!("auth.srs_secret_file {path}: {e}"))?;
    if secret.len() < 16 {
        return Err(format!("auth.srs_secret_file {path}: fewer than 16 bytes"));
    }
    let domain = match cfg.str("auth.srs_domain") {
        "" => cfg.str("system.hostname"),
        d => d,
    };
    let days = cfg.duration("auth.srs_max_age").as_secs() / 86400;
    Ok(Some(Srs::new(&secret, domain, days)))
}

/// Whether a local part is of the SRS form.
pub fn is_srs(local: &str) -> bool {
    let upper = local.get(..5).map(str::to_ascii_uppercase);
    matches!(
        upper.as_deref(),
        Some("SRS0=" | "SRS0+" | "SRS0-" | "SRS1=" | "SRS1+" | "SRS1-")
    )
}

/// Today as days since 1970, for [`Srs::forward`] and [`Srs::reverse`].
pub fn today() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86400)
}

fn timestamp(day: u64) -> String {
    let t = day % 1024;
    let a = BASE32[(t >> 5) as usize] as char;
    let b = BASE32[(t & 31) as usize] as char;
    format!("{a}{b}")
}

fn day_of(tt: &str) -> Option<u64> {
    let b = tt.as_bytes();
    if b.len() != 2 {
        return None;
    }
    let v = |c: u8| {
        BASE32
            .iter()
            .position(|&x| x == c.to_ascii_uppercase())
            .map(|p| p as u64)
    };
    Some(v(b[0])? << 5 | v(b[1])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srs0_round_trips_and_refuses_forgeries_and_old_addresses() {
        let s = Srs::new(b"secret", "MX.Example.TEST", 21);
        let day = 20_000;
        let a = s.forward("Alice@remote.test", day);
        assert!(
            a.starts_with("SRS0=") && a.ends_with("=remote.test=Alice@mx.example.test"),
            "{a}"
        );
        let local = a.rsplit_once('@').unwrap().0;
        assert_eq!(s.reverse(local, day).unwrap(), "Alice@remote.test");
        assert_eq!(s.reverse(local, day + 21).unwrap(), "Alice@remote.test");
        assert_eq!(s.reverse(local, day + 22), Err(SrsError::Expired));
        // Some MTAs lower-case local parts.
        assert_eq!(
            s.reverse(&local.to_lowercase(), day).unwrap(),
            "alice@remote.test"
        );
        let forged = local.replace("=remote.test=", "=victim.test=");
        assert_eq!(s.reverse(&forged, day), Err(SrsError::BadHash));
        let other = Srs::new(b"other", "mx.example.test", 21);
        assert_eq!(other.reverse(local, day), Err(SrsError::BadHash));
        assert_eq!(s.reverse("SRS0=abcd=AB=x", day), Err(SrsError::Malformed));
        assert_eq!(s.reverse("alice", day), Err(SrsError::Malformed));
        // Wrapping of the 1024-day timestamp.
        let w = s.forward("a@b.test", 1023);
        assert!(s.reverse(w.rsplit_once('@').unwrap().0, 1025).is_ok());
        // Ours are not rewritten again; the null path stays null.
        assert_eq!(s.forward(&a, day), a);
        assert_eq!(s.forward("", day), "");
    }

    #[test]
    fn another_forwarders_address_becomes_srs1_and_goes_back_to_it() {
        let first = Srs::new(b"one", "fwd.test", 21);
        let us = Srs::new(b"two", "mx.example.test", 21);
        let a = first.forward("u@orig.test", 5);
        let b = us.forward(&a, 5);
        assert!(
            b.starts_with("SRS1=") && b.contains("=fwd.test==") && b.ends_with("@mx.example.test"),
            "{b}"
        );
        let back = us.reverse(b.rsplit_once('@').unwrap().0, 5).unwrap();
        assert_eq!(back, a);
        assert_eq!(
            first.reverse(back.rsplit_once('@').unwrap().0, 5).unwrap(),
            "u@orig.test"
        );
        // An SRS1 from a third forwarder keeps the first one.
        let third = Srs::new(b"three", "third.test", 21);
        let c = third.forward(&b, 5);
        assert!(c.contains("=fwd.test=="), "{c}");
    }
}
