//! DKIM signing in kmp-remote (RFC 6376 5, RFC 8463 for Ed25519).
//!
//! kmp-remote signs, after any 8BITMIME downgrade, so that the signed bytes
//! are the bytes sent: a signature made before the conversion to 7 bits
//! would break on it. The message is hashed in one streaming pass over the
//! queue file (never whole in memory); the signature header then goes on
//! top of the stream. Mail is signed with every active key of its From
//! domain (`kmpctl dkim`); a bounce (null reverse path) from our own
//! MAILER-DAEMON, whose From is at the host name, with the key of the host
//! name or of its parent domain.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};

use super::keys::{DomainKeys, SigningKey};

/// The header fields we sign (RFC 6376 5.4.1's list, where present; From
/// is required and signed twice so that none can be added).
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Id",
    "List-Unsubscribe",
];

/// One key made ready to sign.
enum Ready {
    Ed25519(DkimSigner<Ed25519Key, Done>),
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
}

/// The keys of one domain as last read, and the `active` file's time then.
struct Loaded {
    stamp: Option<SystemTime>,
    keys: Arc<Vec<Ready>>,
}

/// kmp-remote's signer: keys read from `auth.dkim_keys` on first use and
/// again when `kmpctl dkim` changes a domain's active list.
pub struct Signer {
    root: PathBuf,
    hostname: String,
    loaded: Mutex<HashMap<String, Loaded>>,
    /// Our authserv-id, when forwarded mail is ARC-sealed (`auth.arc_seal`).
    arc: Option<String>,
}

impl Signer {
    /// A signer over the key directory `root`; `hostname` is system.hostname.
    pub fn new(root: PathBuf, hostname: &str) -> Signer {
        Signer {
            root,
            hostname: hostname.to_ascii_lowercase(),
            loaded: Mutex::new(HashMap::new()),
            arc: None,
        }
    }

    /// Also seals forwarded mail (see `mailauth::arc`): mail whose header
    /// carries an Authentication-Results of `authserv_id`.
    pub fn with_arc(mut self, authserv_id: &str) -> Signer {
        self.arc = Some(authserv_id.to_lowercase());
        self
    }

    /// Whether the message whose header section (LF form) starts `head`
    /// is to be sealed: our results as one line. None when sealing is off,
    /// the message is not from outside, or it cannot be sealed (logged).
    pub fn arc_results(&self, head: &[u8]) -> Option<String> {
        let ours = self.arc.as_deref()?;
        match super::arc::our_results(head, ours) {
            Ok(r) => Some(r),
            Err(super::arc::Skip::NotOurs) => None,
            Err(why) => {
                crate::info!("ARC: not sealed: {why:?}");
                None
            }
        }
    }

    /// The ARC set for `wire` (the whole message as sent, CRLF), sealed
    /// with a key of the host name's domain (the host name's own, else its
    /// parent's; RSA before Ed25519, which fewer verifiers know): LF
    /// header fields, or None when there is no key.
    pub fn seal(&self, results: &str, wire: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let mut candidates = vec![self.hostname.clone()];
        if let Some((_, parent)) = self.hostname.split_once('.') {
            if parent.contains('.') {
                candidates.push(parent.to_string());
            }
        }
        for d in candidates {
            let dk = DomainKeys::new(&self.root, &d)?;
            let mut active = dk.active();
            active.sort_by_key(|s| !s.starts_with("rsa"));
            if let Some(selector) = active.first() {
                let key = dk.load(selector)?;
                return super::arc::seal(key, &dk.domain, selector, wire, results).map(Some);
            }
        }
        Ok(None)
    }

    /// The signatures for a message whose header section (LF form) starts
    /// `head`, the whole wire form (CRLF, no dot-stuffing) given by `feed`
    /// block by block: DKIM-Signature header fields in LF form, or None
    /// when no key applies. An unreadable key is an error (the caller logs
    /// it and sends unsigned).
    pub fn sign(
        &self,
        head: &[u8],
        null_sender: bool,
        feed: impl FnOnce(&mut dyn FnMut(&[u8])) -> std::io::Result<()>,
    ) -> Result<Option<Vec<u8>>, String> {
        let Some(from) = from_domain(head) else {
            return Ok(None);
        };
        let mut candidates = vec![from.clone()];
        if null_sender && from == self.hostname {
            if let Some((_, parent)) = from.split_once('.') {
                if parent.contains('.') {
                    candidates.push(parent.to_string());
                }
            }
        }
        let mut found = None;
        for d in candidates {
            let keys = self.keys(&d)?;
            if !keys.is_empty() {
                found = Some(keys);
                break;
            }
        }
        let Some(keys) = found else {
            return Ok(None);
        };
        enum Stream<'a> {
            Ed(mail_auth::dkim::streaming::DkimSigningStream<'a, Ed25519Key>),
            Rsa(mail_auth::dkim::streaming::DkimSigningStream<'a, RsaKey<Sha256>>),
        }
        let mut streams: Vec<Stream<'_>> = keys
            .iter()
            .map(|k| match k {
                Ready::Ed25519(s) => Stream::Ed(s.sign_streaming()),
                Ready::Rsa(s) => Stream::Rsa(s.sign_streaming()),
            })
            .collect();
        feed(&mut |block: &[u8]| {
            for s in streams.iter_mut() {
                match s {
                    Stream::Ed(s) => s.write(block),
                    Stream::Rsa(s) => s.write(block),
                }
            }
        })
        .map_err(|e| format!("cannot read the message: {e}"))?;
        let mut out = String::new();
        for s in streams {
            let sig = match s {
                Stream::Ed(s) => s.finish(),
                Stream::Rsa(s) => s.finish(),
            }
            .map_err(|e| format!("cannot sign: {e}"))?;
            out.push_str(&super::header::to_lf(&sig.to_header()));
        }
        Ok(Some(out.into_bytes()))
    }

    /// The active keys of `domain` (empty when it has none).
    fn keys(&self, domain: &str) -> Result<Arc<Vec<Ready>>, String> {
        let dk = DomainKeys::new(&self.root, domain)?;
        let stamp = std::fs::metadata(dk.dir.join("active"))
            .and_then(|m| m.modified())
            .ok();
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = loaded.get(&dk.domain) {
            if l.stamp == stamp {
                return Ok(l.keys.clone());
            }
        }
        let mut keys = Vec::new();
        if stamp.is_some() {
            for selector in dk.active() {
                let ready = match dk.load(&selector)? {
                    SigningKey::Ed25519(k) => Ready::Ed25519(configure(k, &dk.domain, &selector)),
                    SigningKey::Rsa(k) => Ready::Rsa(configure(k, &dk.domain, &selector)),
                };
                keys.push(ready);
            }
        }
        let keys = Arc::new(keys);
        // Bounded by the domains that have key directories.
        if loaded.len() > 10_000 {
            loaded.clear();
        }
        loaded.insert(
            dk.domain.clone(),
            Loaded {
                stamp,
                keys: keys.clone(),
            },
        );
        Ok(keys)
    }
}

fn configure<K: mail_auth::common::crypto::SigningKey>(
    key: K,
    domain: &str,
    selector: &str,
) -> DkimSigner<K, Done> {
    DkimSigner::from_key(key)
        .domain(domain)
        .selector(selector)
        .headers(SIGNED_HEADERS.iter().copied())
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
}

/// The domain of the (first) From address in a header section, lower-cased.
pub fn from_domain(head: &[u8]) -> Option<String> {
    let hlen = super::header::header_len(head);
    let header = &head[..hlen];
    let field = super::header::fields(header).into_iter().find(|r| {
        super::header::split_field(&header[r.clone()]).is_some_and(|(n, _)| {
            String::from_utf8_lossy(n)
                .trim()
                .eq_ignore_ascii_case("from")
        })
    })?;
    let parsed = mail_parser::MessageParser::default().parse_headers(&header[field])?;
    let addr = parsed.from()?.first()?.address()?.to_string();
    let domain = addr.rsplit_once('@')?.1.trim().trim_end_matches('.');
    (!domain.is_empty()).then(|| domain.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_from_domain_is_found_in_folded_and_named_forms() {
        assert_eq!(
            from_domain(b"Subject: x\nFROM: \"A, B\" <a@Example.COM>\n\nbody").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            from_domain(b"From:\n\t=?utf-8?b?5byg5LiJ?= <z@example.org>\nTo: b@c.test\n\n")
                .as_deref(),
            Some("example.org")
        );
        assert_eq!(from_domain(b"To: b@c.test\n\n"), None);
    }

    #[test]
    fn mail_is_signed_with_every_active_key_and_bounces_with_the_hosts() {
        let t = tempfile::tempdir().unwrap();
        let k = DomainKeys::new(t.path(), "example.com").unwrap();
        let s = k
            .generate(super::super::keys::Algorithm::Ed25519, "20261205")
            .unwrap();
        k.activate(&[s], 1).unwrap();
        let signer = Signer::new(t.path().to_path_buf(), "mx.example.com");
        let msg = b"From: a@example.com\nSubject: hi\n\nbody\n";
        let wire = super::super::header::crlf(msg);
        let sig = signer
            .sign(msg, false, |f| {
                f(&wire);
                Ok(())
            })
            .unwrap()
            .unwrap();
        let sig = String::from_utf8(sig).unwrap();
        assert!(sig.starts_with("DKIM-Signature: "), "{sig}");
        assert!(
            sig.contains("d=example.com") && sig.contains("s=ed20261205"),
            "{sig}"
        );
        assert!(!sig.contains('\r'));
        // Another domain: nothing.
        let other = b"From: a@other.test\n\nbody\n";
        assert!(signer.sign(other, false, |_| Ok(())).unwrap().is_none());
        // A bounce from MAILER-DAEMON@mx.example.com takes example.com's key.
        let bounce = b"From: MAILER-DAEMON@mx.example.com\n\nbody\n";
        let wire = super::super::header::crlf(bounce);
        let sig = signer
            .sign(bounce, true, |f| {
                f(&wire);
                Ok(())
            })
            .unwrap()
            .unwrap();
        assert!(String::from_utf8(sig).unwrap().contains("d=example.com"));
    }
}
