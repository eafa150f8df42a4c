//! ARC sealing (RFC 8617) of mail we forward, in kmp-remote.
//!
//! A message that leaves through kmp-remote carrying our own
//! Authentication-Results (the one kmp-smtpd wrote at the door) is mail
//! from outside going out again: an alias or a forward to another host, a
//! Sieve redirect, a list post to a remote member. Its receiver cannot
//! check SPF against the original sender any more, and a list may have
//! changed the message, so we add an ARC set: our door's results
//! (ARC-Authentication-Results), our signature over the message
//! (ARC-Message-Signature) and the seal over the chain (ARC-Seal), with a
//! DKIM key of the host name's domain (`kmpctl dkim`).
//!
//! Only a message that has no ARC set yet is sealed (`i=1`, `cv=none`):
//! extending a chain needs its validation here, which is not done yet, so
//! such mail goes on unsealed (its earlier sets stay). A message larger
//! than [`MAX_SIZE`] is not sealed either: the sealer needs the whole
//! message in memory, which kmp-remote otherwise never holds.

use mail_auth::arc::ArcSealer;
use mail_auth::common::crypto::Sha256;
use mail_auth::common::crypto::SigningKey as Key;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::{ArcOutput, AuthenticatedMessage, AuthenticationResults};

use super::header::{authserv_id, fields, header_len, split_field, to_lf};
use super::keys::SigningKey;

/// Larger messages are not sealed.
pub const MAX_SIZE: u64 = 16 << 20;
/// A longer Authentication-Results value is not copied (it must fit on one
/// line of ARC-Authentication-Results, see [`one_line`]).
const MAX_RESULTS: usize = 900;

/// The header fields the ARC-Message-Signature covers: as DKIM's, plus
/// the Authentication-Results fields (ours among them). Not
/// DKIM-Signature: a name the message lacks is still listed (so none can
/// be added), and our own DKIM signature goes on top after the seal.
pub const SEALED_HEADERS: &[&str] = &[
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
    "Authentication-Results",
];

/// Why a message is not sealed, when it carries our results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// No Authentication-Results of ours: not mail from outside.
    NotOurs,
    /// It has an ARC chain already.
    Chained,
    /// Our results do not fit on one line.
    TooLong,
}

/// Our Authentication-Results value in the header section at the start of
/// `msg` (LF form), as one line, when it calls for a seal.
pub fn our_results(msg: &[u8], ours: &str) -> Result<String, Skip> {
    let header = &msg[..header_len(msg)];
    let ours = ours.to_lowercase();
    let mut found = None;
    for r in fields(header) {
        let Some((name, value)) = split_field(&header[r]) else {
            continue;
        };
        let name = String::from_utf8_lossy(name);
        let name = name.trim();
        if name.eq_ignore_ascii_case("ARC-Seal") {
            return Err(Skip::Chained);
        }
        if found.is_none()
            && name.eq_ignore_ascii_case("Authentication-Results")
            && authserv_id(value).as_deref() == Some(ours.as_str())
        {
            found = Some(one_line(&String::from_utf8_lossy(value)));
        }
    }
    match found {
        None => Err(Skip::NotOurs),
        Some(v) if v.len() > MAX_RESULTS => Err(Skip::TooLong),
        Some(v) => Ok(v),
    }
}

/// A header value unfolded, every run of white space made one space, no
/// space at either end: the form relaxed canonicalisation (RFC 6376
/// 3.4.2) gives it. mail-auth writes the copied results into the seal's
/// input as they are, so they must already be in that form.
pub fn one_line(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The ARC set (three header fields, LF form, ARC-Seal first) for the
/// message `wire` (CRLF, as sent), sealed by `domain`'s key `selector`,
/// with `results` (from [`our_results`]) as its ARC-Authentication-Results.
pub fn seal(
    key: SigningKey,
    domain: &str,
    selector: &str,
    wire: &[u8],
    results: &str,
) -> Result<Vec<u8>, String> {
    match key {
        SigningKey::Ed25519(k) => seal_with(k, domain, selector, wire, results),
        SigningKey::Rsa(k) => seal_with(k, domain, selector, wire, results),
    }
}

fn seal_with<K: Key<Hasher = Sha256>>(
    key: K,
    domain: &str,
    selector: &str,
    wire: &[u8],
    results: &str,
) -> Result<Vec<u8>, String> {
    let message = AuthenticatedMessage::parse(wire).ok_or("ARC: the message cannot be parsed")?;
    let results = AuthenticationResults::new(results);
    let set = ArcSealer::from_key(key)
        .domain(domain)
        .selector(selector)
        .headers(SEALED_HEADERS.iter().copied())
        .seal(&message, &results, &ArcOutput::default())
        .map_err(|e| format!("ARC: cannot seal: {e}"))?;
    Ok(to_lf(&set.to_header()).into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_results_without_a_chain_call_for_a_seal() {
        let msg = b"Received: by mx\nAuthentication-Results: other.test; spf=fail\nAuthentication-Results: MX.example.test;\n\tspf=pass smtp.mailfrom=a@b.test;\n  dkim=none\nSubject: x\n\nAuthentication-Results: mx.example.test; in the body\n";
        assert_eq!(
            our_results(msg, "mx.example.test").unwrap(),
            "MX.example.test; spf=pass smtp.mailfrom=a@b.test; dkim=none"
        );
        assert_eq!(
            our_results(b"Subject: x\n\nbody\n", "mx.example.test"),
            Err(Skip::NotOurs)
        );
        let chained = b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=x; s=y; b=z\nAuthentication-Results: mx.example.test; spf=pass\n\n";
        assert_eq!(our_results(chained, "mx.example.test"), Err(Skip::Chained));
        let long = format!(
            "Authentication-Results: mx.example.test; {}\n\n",
            "dkim=pass ".repeat(100)
        );
        assert_eq!(
            our_results(long.as_bytes(), "mx.example.test"),
            Err(Skip::TooLong)
        );
    }

    #[test]
    fn a_sealed_set_has_its_three_fields() {
        let t = tempfile::tempdir().unwrap();
        let k = super::super::keys::DomainKeys::new(t.path(), "example.test").unwrap();
        let s = k
            .generate(super::super::keys::Algorithm::Ed25519, "20261205")
            .unwrap();
        let key = k.load(&s).unwrap();
        let wire = b"From: a@b.test\r\nSubject: hi\r\n\r\nbody\r\n";
        let set = seal(
            key,
            "example.test",
            &s,
            wire,
            "mx.example.test; spf=pass smtp.mailfrom=a@b.test",
        )
        .unwrap();
        let set = String::from_utf8(set).unwrap();
        assert!(set.starts_with("ARC-Seal: i=1;"), "{set}");
        assert!(set.contains("cv=none"), "{set}");
        assert!(set.contains("\nARC-Message-Signature: i=1;"), "{set}");
        assert!(
            set.contains("\nARC-Authentication-Results: i=1; mx.example.test; spf=pass smtp.mailfrom=a@b.test\n"),
            "{set}"
        );
        assert!(!set.contains('\r'));
    }
}
