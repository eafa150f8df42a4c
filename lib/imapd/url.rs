//! What an IMAP URL (RFC 5092) names, for CATENATE (RFC 4469), URLFETCH
//! (RFC 4467) and the submission server's BURL (RFC 4468, through
//! [`super::submit`]): the checks of URLAUTH, then the message, section
//! and partial range. The URL syntax is `proto::imap::url`.
//!
//! A URLAUTH token is HMAC-SHA-256 over the URL's rump (the URL up to and
//! including `;URLAUTH=access`), keyed with the folder's key, in hex: 256
//! bits where RFC 4467 asks for at least 128. The key lives beside the
//! folder (`maildir::urlauth`); RESETKEY removes it and every token it
//! signed stops working.

use ring::hmac;

use super::message;
use super::store::{MailStore, StoreError, StoreResult};
use crate::proto::imap::url::{self, Access, ImapUrl};

/// The one URLAUTH mechanism (RFC 4467 7).
pub const MECHANISM: &str = "INTERNAL";

/// Other users' stores: a URLAUTH URL may name a mailbox of a user other
/// than the one asking (`authuser`, `anonymous`, `submit+`). The server
/// implements it over kmp-authd's user lookup.
pub trait Accounts: Send + Sync {
    /// The store of the user at `address`; None when there is no such user.
    fn open(&self, address: &str) -> StoreResult<Option<Box<dyn MailStore>>>;

    /// The addresses of `domain`'s active users (the domain's address
    /// book); none where the server has no user list.
    fn domain_users(&self, _domain: &str) -> StoreResult<Vec<String>> {
        Ok(Vec::new())
    }
}

/// Who asks for a URLAUTH URL's content.
pub enum Asker<'a> {
    /// A logged-in IMAP user, with their own store.
    User {
        name: &'a str,
        store: &'a mut dyn MailStore,
    },
    /// The submission server on the local socket (BURL): `submit+` URLs.
    Submit,
}

/// Why a URL gives nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The URL is wrong, names nothing, or is not authorised: BADURL, NIL.
    Bad(&'static str),
    /// The store failed: try again later.
    Temporary(String),
}

fn refused(e: StoreError) -> Refused {
    match e {
        StoreError::Temporary(m) => Refused::Temporary(m),
        _ => Refused::Bad("no such message"),
    }
}

/// The token for a rump under a key.
pub fn token(key: &[u8; 32], rump: &[u8]) -> String {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&k, rump)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `token` (hex) signs `rump` under `key`, compared in constant time.
fn verify(key: &[u8; 32], rump: &[u8], token: &str) -> bool {
    let t = token.as_bytes();
    if t.len() != 64 {
        return false;
    }
    let mut raw = [0u8; 32];
    for (i, r) in raw.iter_mut().enumerate() {
        match std::str::from_utf8(&t[2 * i..2 * i + 2])
            .ok()
            .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            Some(b) => *r = b,
            None => return false,
        }
    }
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, key), rump, &raw).is_ok()
}

/// The message a URL names in `store` (the URL's UIDVALIDITY checked), in
/// the form IMAP sends it (CRLF).
pub fn message(store: &mut dyn MailStore, u: &ImapUrl) -> Result<Vec<u8>, Refused> {
    let mut folder = store.open(&u.mailbox).map_err(refused)?;
    let snap = folder.state(false).map_err(refused)?;
    if u.uidvalidity.is_some_and(|v| v != snap.uidvalidity) {
        return Err(Refused::Bad("UIDVALIDITY does not match"));
    }
    let Ok(i) = snap.messages.binary_search_by_key(&u.uid, |m| m.uid) else {
        return Err(Refused::Bad("no such message"));
    };
    let raw = folder.read(u.uid).map_err(refused)?;
    Ok(message::wire(raw, snap.messages[i].size))
}

/// The section and partial range of the message a URL names; None when
/// the section does not exist. A range past the end is empty.
pub fn content(u: &ImapUrl, wire: &[u8]) -> Option<Vec<u8>> {
    let data = if u.section_text.is_none() {
        wire.to_vec()
    } else {
        let parsed = message::parse(wire);
        message::section(wire, parsed.as_ref(), &u.section)?
    };
    Some(match u.partial {
        None => data,
        Some((start, len)) => {
            let a = (start as usize).min(data.len());
            let b = match len {
                Some(l) => a.saturating_add(l as usize).min(data.len()),
                None => data.len(),
            };
            data[a..b].to_vec()
        }
    })
}

/// Checks a URLAUTH URL for `asker` (RFC 4467 6 and 7) and returns it
/// parsed with the message it names (wire form). `now`: seconds since the
/// epoch, for `;EXPIRE=`.
pub fn authorized(
    text: &[u8],
    asker: Asker,
    accounts: Option<&dyn Accounts>,
    now: i64,
) -> Result<(ImapUrl, Vec<u8>), Refused> {
    let u = url::parse(text).map_err(|e| Refused::Bad(e.0))?;
    let Some(auth) = &u.urlauth else {
        return Err(Refused::Bad("not a URLAUTH URL"));
    };
    let Some((mech, tok)) = &auth.verifier else {
        return Err(Refused::Bad("URLAUTH URL without a token"));
    };
    if !u.absolute || mech != MECHANISM {
        return Err(Refused::Bad("not an authorised URL"));
    }
    let Some(owner) = u.owner() else {
        return Err(Refused::Bad("URL names no user"));
    };
    if u.expire.is_some_and(|e| e <= now) {
        return Err(Refused::Bad("URL expired"));
    }
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let allowed = match (&auth.access, &asker) {
        (Access::Anonymous, _) => true,
        (Access::AuthUser, Asker::User { .. }) => true,
        (Access::User(who), Asker::User { name, .. }) => same(who, name),
        // kmp-smtpd checked that the user is the one who logged in to it.
        (Access::Submit(_), Asker::Submit) => true,
        _ => false,
    };
    if !allowed {
        return Err(Refused::Bad("not authorised"));
    }
    let rump = &text[..auth.rump_len];
    let mut other;
    let store: &mut dyn MailStore = match asker {
        Asker::User { name, store } if same(name, &owner) => store,
        _ => {
            let Some(acc) = accounts else {
                return Err(Refused::Bad("no such user"));
            };
            other = acc
                .open(&owner)
                .map_err(refused)?
                .ok_or(Refused::Bad("no such user"))?;
            other.as_mut()
        }
    };
    let key = store
        .urlauth_key(&u.mailbox, false)
        .map_err(refused)?
        .ok_or(Refused::Bad("no key"))?;
    if !verify(&key, rump, tok) {
        return Err(Refused::Bad("bad token"));
    }
    let wire = message(store, &u)?;
    Ok((u, wire))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_their_rump_and_key() {
        let k = [7u8; 32];
        let t = token(&k, b"imap://a@b/INBOX/;uid=1;urlauth=anonymous");
        assert_eq!(t.len(), 64);
        assert!(verify(&k, b"imap://a@b/INBOX/;uid=1;urlauth=anonymous", &t));
        assert!(!verify(
            &k,
            b"imap://a@b/INBOX/;uid=2;urlauth=anonymous",
            &t
        ));
        assert!(!verify(
            &[8u8; 32],
            b"imap://a@b/INBOX/;uid=1;urlauth=anonymous",
            &t
        ));
        assert!(!verify(
            &k,
            b"imap://a@b/INBOX/;uid=1;urlauth=anonymous",
            &t[..62]
        ));
    }
}
