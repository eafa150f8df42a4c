//! Confirmation cookies: a signed, expiring token in a reply address.
//!
//! A request that must be confirmed (a subscription, an unsubscription, a
//! held post to approve) is answered with a reply address
//! `LIST-confirm-TOKEN@DOMAIN`. TOKEN is `A.EXPIRY.MAC.SUBJECT`:
//!
//! - `A`, one letter: the [`Action`];
//! - `EXPIRY`, the hour (since 1970) after which the cookie is refused, in
//!   three bytes of base32 (five letters; enough until the year 3800);
//! - `MAC`, the first 80 bits of HMAC-SHA-256 over the list address, the
//!   action, the subject and the expiry, in base32;
//! - `SUBJECT`, what the action is about: a member address as `local=domain`
//!   ([`super::verp`]) or a held post's id.
//!
//! Lower-case base32 and a MAC over the lower-cased list and subject keep
//! the token valid through mail systems that fold the case of local parts.
//! With a member's address in it, the local part often passes RFC 5321's
//! 64 octets (`dev-confirm-s.aaaaa.<16>.alice=example.org` is 54); our
//! server takes up to 255 (`proto::smtp::address::MAX_LOCAL_PART`). The key is 32 random bytes in `lists.cookie_key_file`, made by
//! `kmpctl init` and `kmpctl setup`, readable only by vmail: kmp-local
//! mints and checks cookies; the webmail only passes one on. The check
//! compares MACs in constant time and tells forged, expired and malformed
//! tokens apart for the log, and a cookie of another list, action or
//! subject fails as forged since all three are under the MAC.

use std::fmt;
use std::io::Read;
use std::path::Path;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use super::verp;

/// Bytes in the key file.
pub const KEY_LEN: usize = 32;
/// Bytes of the MAC kept in a token (80 bits).
const MAC_LEN: usize = 10;
/// Separates the inputs of the MAC from one another and from other uses.
const DOMAIN_SEP: &[u8] = b"kmpromail list cookie v1";
/// Longest token taken for checking.
const MAX_TOKEN: usize = 512;

/// What a cookie lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Confirms a subscription of the subject address.
    Subscribe,
    /// Confirms an unsubscription of the subject address.
    Unsubscribe,
    /// Unsubscribes the subject at once (RFC 8058 one-click link).
    OneClick,
    /// The owner approves a subscription the subject confirmed.
    Permit,
    /// A moderator approves the held post named by the subject.
    Approve,
    /// A moderator rejects the held post named by the subject.
    Reject,
    /// The return path of a bounce warning probe: a message back here
    /// means the probe to the subject bounced.
    Probe,
}

impl Action {
    /// The letter in the token.
    pub fn letter(self) -> char {
        match self {
            Action::Subscribe => 's',
            Action::Unsubscribe => 'u',
            Action::OneClick => 'o',
            Action::Permit => 'p',
            Action::Approve => 'a',
            Action::Reject => 'r',
            Action::Probe => 'w',
        }
    }

    /// The action of a token letter.
    pub fn from_letter(c: char) -> Option<Action> {
        Some(match c.to_ascii_lowercase() {
            's' => Action::Subscribe,
            'u' => Action::Unsubscribe,
            'o' => Action::OneClick,
            'p' => Action::Permit,
            'a' => Action::Approve,
            'r' => Action::Reject,
            'w' => Action::Probe,
            _ => return None,
        })
    }

    /// Whether the subject is a member address (else a held post's id).
    pub fn about_member(self) -> bool {
        !matches!(self, Action::Approve | Action::Reject)
    }
}

/// A checked cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    pub action: Action,
    /// A member address (`local@domain`) or a held post's id.
    pub subject: String,
    /// Unix seconds after which the cookie is refused.
    pub expires: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieError {
    /// Not a token of ours.
    Malformed,
    /// The MAC does not match: made up, altered, or for another list,
    /// action or subject.
    Forged,
    /// Genuine but too old.
    Expired,
}

impl fmt::Display for CookieError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CookieError::Malformed => "malformed confirmation cookie",
            CookieError::Forged => "forged confirmation cookie",
            CookieError::Expired => "expired confirmation cookie",
        })
    }
}

/// The key cookies are signed with.
#[derive(Clone)]
pub struct CookieKey(hmac::Key);

impl fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CookieKey(..)")
    }
}

impl CookieKey {
    /// The key of the 32 bytes of a key file.
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> CookieKey {
        CookieKey(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// Reads the key file: exactly 32 bytes, not readable by others.
    pub fn load(path: &Path) -> Result<CookieKey, String> {
        use std::os::unix::fs::MetadataExt;
        let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let md = f
            .metadata()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if md.mode() & 0o007 != 0 {
            return Err(format!(
                "{}: readable by others (mode {:04o}); it must be 0600",
                path.display(),
                md.mode() & 0o7777
            ));
        }
        let mut buf = Vec::with_capacity(KEY_LEN + 1);
        f.by_ref()
            .take(KEY_LEN as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let bytes: [u8; KEY_LEN] = buf
            .as_slice()
            .try_into()
            .map_err(|_| format!("{}: not {KEY_LEN} bytes", path.display()))?;
        Ok(CookieKey::from_bytes(&bytes))
    }

    /// The MAC over one cookie's fields.
    fn mac(&self, list: &str, action: Action, subject: &str, hour: u64) -> [u8; MAC_LEN] {
        let mut ctx = hmac::Context::with_key(&self.0);
        for part in [
            DOMAIN_SEP,
            list.to_ascii_lowercase().as_bytes(),
            action.letter().to_string().as_bytes(),
            subject.to_ascii_lowercase().as_bytes(),
            hour.to_string().as_bytes(),
        ] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        let tag = ctx.sign();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&tag.as_ref()[..MAC_LEN]);
        out
    }

    /// A token for `action` on `subject` (a member address `local@domain`,
    /// or a held post's id of letters, digits, `.` and `-`) of the list
    /// `list` (`name@domain`), valid until `expires` (Unix seconds, rounded
    /// up to the hour).
    pub fn mint(&self, list: &str, action: Action, subject: &str, expires: u64) -> String {
        let hour = expires.div_ceil(3600);
        let carried = carried_subject(action, subject);
        let mac = self.mac(list, action, &canonical_subject(action, subject), hour);
        format!(
            "{}.{}.{}.{}",
            action.letter(),
            base32(&hour.to_be_bytes()[5..]),
            base32(&mac),
            carried
        )
    }

    /// Checks `token` for the list `list` at `now` (Unix seconds).
    pub fn check(&self, list: &str, token: &str, now: u64) -> Result<Cookie, CookieError> {
        if token.len() > MAX_TOKEN || !token.is_ascii() {
            return Err(CookieError::Malformed);
        }
        let mut it = token.splitn(4, '.');
        let (Some(a), Some(exp), Some(mac), Some(subj)) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            return Err(CookieError::Malformed);
        };
        let mut letters = a.chars();
        let action = match (letters.next(), letters.next()) {
            (Some(c), None) => Action::from_letter(c).ok_or(CookieError::Malformed)?,
            _ => return Err(CookieError::Malformed),
        };
        let hour_bytes = unbase32(exp)
            .filter(|b| b.len() == 3)
            .ok_or(CookieError::Malformed)?;
        let mac = unbase32(mac)
            .filter(|b| b.len() == MAC_LEN)
            .ok_or(CookieError::Malformed)?;
        let subject = match action.about_member() {
            true => verp::decode(subj)
                .map_err(|_| CookieError::Malformed)?
                .to_string(),
            false if held_id_ok(subj) => subj.to_string(),
            false => return Err(CookieError::Malformed),
        };
        let mut hb = [0u8; 8];
        hb[5..].copy_from_slice(&hour_bytes);
        let hour = u64::from_be_bytes(hb);
        let want = self.mac(list, action, &canonical_subject(action, &subject), hour);
        if !same(&want, &mac) {
            return Err(CookieError::Forged);
        }
        let expires = hour.saturating_mul(3600);
        if now > expires {
            return Err(CookieError::Expired);
        }
        Ok(Cookie {
            action,
            subject,
            expires,
        })
    }
}

/// Whether `token` has the form of a one-click unsubscribe cookie (what
/// the webmail, which has no key, can check before passing it on).
pub fn one_click_well_formed(token: &str) -> bool {
    let mut it = token.splitn(4, '.');
    let (Some(a), Some(exp), Some(mac), Some(subj)) = (it.next(), it.next(), it.next(), it.next())
    else {
        return false;
    };
    token.len() <= MAX_TOKEN
        && a.eq_ignore_ascii_case("o")
        && unbase32(exp).is_some_and(|b| b.len() == 3)
        && unbase32(mac).is_some_and(|b| b.len() == MAC_LEN)
        && verp::decode(subj).is_ok()
}

/// 32 fresh random bytes for a key file.
pub fn new_key() -> Result<[u8; KEY_LEN], String> {
    let mut k = [0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut k)
        .map_err(|_| "no random numbers from the system".to_string())?;
    Ok(k)
}

/// The subject as signed: member addresses lower-cased whole.
fn canonical_subject(action: Action, subject: &str) -> String {
    if action.about_member() {
        subject.to_ascii_lowercase()
    } else {
        subject.to_string()
    }
}

/// The subject as written into the token.
fn carried_subject(action: Action, subject: &str) -> String {
    if action.about_member() {
        match verp::member(subject) {
            Ok(m) => m.encode(),
            Err(_) => subject.replacen('@', "=", 1),
        }
    } else {
        subject.to_string()
    }
}

/// A held post's id: letters, digits, `.`, `-`, at most 64.
pub fn held_id_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// Compares in time that depends only on the length.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// RFC 4648 base32, lower case, no padding (inputs of 5 and 10 bytes here).
fn base32(bytes: &[u8]) -> String {
    let mut out = String::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Base32 back to bytes, either case; None on any other character or on
/// left-over bits that are not zero (so each value has one spelling).
fn unbase32(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c.to_ascii_lowercase())? as u32;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    (acc == 0 && bits < 5).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "dev@example.org";
    const NOW: u64 = 1_796_000_000;
    const WEEK: u64 = 7 * 86400;

    fn key() -> CookieKey {
        CookieKey::from_bytes(&[7u8; KEY_LEN])
    }

    #[test]
    fn a_minted_cookie_checks_and_names_its_action_and_subject() {
        let k = key();
        let t = k.mint(LIST, Action::Subscribe, "Alice+x=y@Example.org", NOW + WEEK);
        assert!(t.starts_with("s."), "{t}");
        assert!(t.ends_with(".Alice+x=y=example.org"), "{t}");
        let c = k.check(LIST, &t, NOW).unwrap();
        assert_eq!(c.action, Action::Subscribe);
        assert_eq!(c.subject, "Alice+x=y@example.org");
        assert!(c.expires >= NOW + WEEK && c.expires < NOW + WEEK + 3600);
        // A usual address keeps the whole local part within 64 octets.
        let t = k.mint(LIST, Action::Unsubscribe, "alice@example.org", NOW + WEEK);
        assert_eq!(format!("dev-confirm-{t}").len(), 54);
    }

    #[test]
    fn a_cookie_survives_case_folding_of_the_local_part() {
        let k = key();
        let t = k.mint(LIST, Action::Subscribe, "Alice@example.org", NOW + WEEK);
        let c = k
            .check("DEV@example.org", &t.to_ascii_lowercase(), NOW)
            .unwrap();
        assert_eq!(c.subject, "alice@example.org");
        assert!(k.check(LIST, &t.to_ascii_uppercase(), NOW).is_ok());
    }

    #[test]
    fn forged_expired_and_misused_cookies_are_refused() {
        let k = key();
        let t = k.mint(LIST, Action::Subscribe, "alice@example.org", NOW + WEEK);
        // Expired: one hour past the rounded expiry.
        assert_eq!(
            k.check(LIST, &t, NOW + WEEK + 7200),
            Err(CookieError::Expired)
        );
        // Another list.
        assert_eq!(
            k.check("ops@example.org", &t, NOW),
            Err(CookieError::Forged)
        );
        // Another action with the same MAC.
        let u = format!("u{}", &t[1..]);
        assert_eq!(k.check(LIST, &u, NOW), Err(CookieError::Forged));
        // Another subject.
        let m = t.replace("alice=", "mallory=");
        assert_eq!(k.check(LIST, &m, NOW), Err(CookieError::Forged));
        // A later expiry.
        let parts: Vec<&str> = t.splitn(4, '.').collect();
        let later = base32(&(NOW / 3600 + 10_000).to_be_bytes()[5..]);
        let l = format!("{}.{}.{}.{}", parts[0], later, parts[2], parts[3]);
        assert_eq!(k.check(LIST, &l, NOW), Err(CookieError::Forged));
        // Another key.
        let other = CookieKey::from_bytes(&[8u8; KEY_LEN]);
        assert_eq!(other.check(LIST, &t, NOW), Err(CookieError::Forged));
        // A flipped MAC character.
        let mut bad: Vec<char> = t.chars().collect();
        let i = "s.aaaaa.".len() + 3;
        bad[i] = if bad[i] == 'a' { 'b' } else { 'a' };
        let bad: String = bad.into_iter().collect();
        assert_eq!(k.check(LIST, &bad, NOW), Err(CookieError::Forged));
    }

    #[test]
    fn malformed_tokens_are_told_apart() {
        let k = key();
        for t in [
            "",
            "s",
            "s.aaaaa",
            "x.aaaaa.aaaaaaaaaaaaaaaa.alice=example.org",
            "ss.aaaaa.aaaaaaaaaaaaaaaa.alice=example.org",
            "s.aaaa.aaaaaaaaaaaaaaaa.alice=example.org",
            "s.aaaaa.aaaaaaaaaaaaaaa.alice=example.org",
            "s.aaaaa.aaaaaaaaaaaaaaa1.alice=example.org",
            "s.aaaaa.aaaaaaaaaaaaaaaa.alice",
            "s.aaaaa.aaaaaaaaaaaaaaaa.user%x=example.org",
            "a.aaaaa.aaaaaaaaaaaaaaaa.../../etc",
            "a.aaaaa.aaaaaaaaaaaaaaaa.ab cd",
        ] {
            assert_eq!(k.check(LIST, t, NOW), Err(CookieError::Malformed), "{t}");
        }
        let long = format!("s.aaaaa.aaaaaaaaaaaaaaaa.{}=example.org", "a".repeat(600));
        assert_eq!(k.check(LIST, &long, NOW), Err(CookieError::Malformed));
    }

    #[test]
    fn one_click_tokens_are_told_by_their_form() {
        let k = key();
        let t = k.mint(LIST, Action::OneClick, "bob@example.org", NOW + WEEK);
        assert!(one_click_well_formed(&t));
        let s = k.mint(LIST, Action::Subscribe, "bob@example.org", NOW + WEEK);
        assert!(!one_click_well_formed(&s));
        assert!(!one_click_well_formed(&format!("{t}\r\nRCPT TO:<x@y.org>")));
        assert!(!one_click_well_formed(
            "o.aaaaa.aaaaaaaaaaaaaaaa.bob@example.org"
        ));
        assert!(!one_click_well_formed(
            "o.aaaaa.aaaaaaaaaaaaaaaa.bob=example.org>"
        ));
    }

    #[test]
    fn held_posts_are_named_by_id() {
        let k = key();
        let t = k.mint(LIST, Action::Approve, "1796000000.42", NOW + WEEK);
        let c = k.check(LIST, &t, NOW).unwrap();
        assert_eq!(
            (c.action, c.subject.as_str()),
            (Action::Approve, "1796000000.42")
        );
        let r = format!("r{}", &t[1..]);
        assert_eq!(k.check(LIST, &r, NOW), Err(CookieError::Forged));
    }

    #[test]
    fn base32_round_trips_and_has_one_spelling() {
        for v in [&[][..], &[0], &[255, 1, 2, 3, 4], &[9; 10]] {
            assert_eq!(unbase32(&base32(v)).unwrap(), v);
        }
        assert_eq!(base32(b"\x00\x00\x00\x00\x01"), "aaaaaaab");
        assert_eq!(unbase32("aaaaaaab"), Some(vec![0, 0, 0, 0, 1]));
        assert_eq!(unbase32("aaaaaaAB"), Some(vec![0, 0, 0, 0, 1]));
        assert_eq!(unbase32("ab"), None);
        assert_eq!(unbase32("a1"), None);
    }
}
