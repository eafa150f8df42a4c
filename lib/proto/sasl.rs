//! The SASL pieces every server here shares: the [`Secret`] that holds a
//! password, the base64 response line (RFC 4954 4, RFC 5034 4, RFC 9051
//! 6.2.2), the PLAIN message (RFC 4616) and the LOGIN mechanism's texts
//! (draft-murchison-sasl-login). kmp-smtpd, kmp-pop3d and kmp-imapd decode
//! with these functions only, so a malformed payload is refused alike in
//! each and a password is held in one type that wipes itself.
//!
//! Pure: no I/O, no logging. Each protocol maps [`SaslError`] to its own reply.

use std::fmt;

use base64::Engine;
use zeroize::Zeroize;

/// The longest authorization or authentication identity, in bytes (RFC 4616 2).
pub const MAX_IDENTITY: usize = 255;

/// The longest password, in bytes: the same as kmp-authd accepts
/// (`userdb::password::MAX_PASSWORD`).
pub const MAX_PASSWORD: usize = 1024;

/// The longest PLAIN message: two identities, a password and two NULs.
pub const MAX_PLAIN: usize = 2 * MAX_IDENTITY + MAX_PASSWORD + 2;

/// A password or a SASL payload that holds one. `Debug` prints nothing of
/// it, equality is checked in constant time, and the bytes are overwritten
/// when it is dropped. It travels to kmp-authd as a JSON string.
#[derive(Clone, Default)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Takes the buffer over (no copy is made).
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The text, when it is UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s.into_bytes())
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.as_bytes().to_vec())
    }
}

impl From<Vec<u8>> for Secret {
    fn from(v: Vec<u8>) -> Secret {
        Secret(v)
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        ct_eq(&self.0, &other.0)
    }
}

impl Eq for Secret {}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.as_str() {
            Some(t) => s.serialize_str(t),
            None => Err(serde::ser::Error::custom("a password that is not UTF-8")),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret::from)
    }
}

/// Whether `a` and `b` are equal, in a time that depends on their lengths
/// only. For anything derived from a password: cache tags, HMACs, tokens.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let acc = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(acc) == 0
}

/// Why a SASL response cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslError {
    /// The client sent `*` (RFC 4954 4, RFC 5034 4, RFC 9051 6.2.2).
    Cancelled,
    /// Not canonical base64 with padding.
    BadBase64,
    /// Decoded, but not the mechanism's form: a part missing, empty, too
    /// long, not UTF-8, or an extra NUL.
    Malformed,
    /// PLAIN with an authorization identity other than the user's own: we
    /// do not let one user act as another.
    OtherIdentity,
}

impl fmt::Display for SaslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SaslError::Cancelled => "authentication cancelled",
            SaslError::BadBase64 => "the response is not base64",
            SaslError::Malformed => "the response is malformed",
            SaslError::OtherIdentity => "acting as another user is not allowed",
        })
    }
}

/// One response line, without its line end: `*` cancels, `=` is the empty
/// response, anything else must be base64. The decoded bytes are a
/// [`Secret`], since they may hold a password.
pub fn decode_response(line: &[u8]) -> Result<Secret, SaslError> {
    match line {
        b"*" => Err(SaslError::Cancelled),
        b"=" => Ok(Secret::default()),
        // Longer than any message we accept, before anything is allocated.
        _ if line.len() > MAX_PLAIN.div_ceil(3) * 4 => Err(SaslError::Malformed),
        _ => base64::engine::general_purpose::STANDARD
            .decode(line)
            .map(Secret::new)
            .map_err(|_| SaslError::BadBase64),
    }
}

/// A decoded PLAIN message.
#[derive(Debug)]
pub struct Plain {
    /// The authentication identity, as typed.
    pub user: String,
    pub password: Secret,
}

/// RFC 4616 2: `message = [authzid] UTF8NUL authcid UTF8NUL passwd`. Every
/// part is UTF-8 without NUL; the identity and password are not empty; an
/// authorization identity, when given, is the authentication identity.
pub fn decode_plain(msg: &[u8]) -> Result<Plain, SaslError> {
    if msg.len() > MAX_PLAIN {
        return Err(SaslError::Malformed);
    }
    let mut parts = msg.splitn(3, |&b| b == 0);
    let (Some(authz), Some(authc), Some(pass)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(SaslError::Malformed);
    };
    if authc.is_empty()
        || pass.is_empty()
        || pass.contains(&0)
        || authc.len() > MAX_IDENTITY
        || authz.len() > MAX_IDENTITY
        || pass.len() > MAX_PASSWORD
    {
        return Err(SaslError::Malformed);
    }
    let user = std::str::from_utf8(authc).map_err(|_| SaslError::Malformed)?;
    if std::str::from_utf8(authz).is_err() || std::str::from_utf8(pass).is_err() {
        return Err(SaslError::Malformed);
    }
    if !authz.is_empty() && authz != authc {
        return Err(SaslError::OtherIdentity);
    }
    Ok(Plain {
        user: user.to_string(),
        password: Secret::new(pass.to_vec()),
    })
}

/// A PLAIN response line: [`decode_response`] then [`decode_plain`]; the
/// decoded message is wiped before this returns.
pub fn plain_response(line: &[u8]) -> Result<Plain, SaslError> {
    decode_plain(decode_response(line)?.as_bytes())
}

/// One LOGIN response line (the user name or the password): UTF-8 text
/// without NUL, at most [`MAX_PASSWORD`] bytes.
pub fn login_response(line: &[u8]) -> Result<Secret, SaslError> {
    let s = decode_response(line)?;
    if s.len() > MAX_PASSWORD || s.as_bytes().contains(&0) || s.as_str().is_none() {
        return Err(SaslError::Malformed);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .encode(s)
            .into_bytes()
    }

    #[test]
    fn plain_messages_decode() {
        let ok = decode_plain(b"\0u@example.test\0pw with space").unwrap();
        assert_eq!(ok.user, "u@example.test");
        assert_eq!(ok.password.as_bytes(), b"pw with space");
        let ok = decode_plain(b"u\0u\0p\xc3\xa4ss").unwrap();
        assert_eq!(
            (ok.user.as_str(), ok.password.as_str()),
            ("u", Some("päss"))
        );
        let long_pw = [&b"\0u\0"[..], &[b'p'; MAX_PASSWORD]].concat();
        assert_eq!(decode_plain(&long_pw).unwrap().password.len(), MAX_PASSWORD);
        let ok = plain_response(&b64(b"\0bob\0secret")).unwrap();
        assert_eq!(
            (ok.user.as_str(), ok.password.as_bytes()),
            ("bob", &b"secret"[..])
        );
    }

    #[test]
    fn malformed_plain_messages_are_refused() {
        let long_user = [&b"\0"[..], &[b'a'; 256], b"\0pw"].concat();
        let long_authz = [&[b'a'; 256][..], b"\0u\0pw"].concat();
        let long_pw = [&b"\0u\0"[..], &[b'p'; MAX_PASSWORD + 1]].concat();
        let table: &[(&[u8], SaslError)] = &[
            (b"", SaslError::Malformed),
            (b"u", SaslError::Malformed),
            (b"\0u", SaslError::Malformed),
            (b"u\0pw", SaslError::Malformed),
            (b"\0\0pw", SaslError::Malformed),
            (b"\0u\0", SaslError::Malformed),
            (b"\0u\0p\0w", SaslError::Malformed),
            (b"\0\xff\xfe\0pw", SaslError::Malformed),
            (b"\0u\0\xff\xfe", SaslError::Malformed),
            (b"\xff\0u\0pw", SaslError::Malformed),
            (&long_user, SaslError::Malformed),
            (&long_authz, SaslError::Malformed),
            (&long_pw, SaslError::Malformed),
            (b"admin\0u\0pw", SaslError::OtherIdentity),
            (b"U\0u\0pw", SaslError::OtherIdentity),
        ];
        for (input, want) in table {
            assert_eq!(decode_plain(input).unwrap_err(), *want, "{input:?}");
        }
    }

    #[test]
    fn response_lines() {
        type Row<'a> = (&'a [u8], Result<&'a [u8], SaslError>);
        let table: &[Row] = &[
            (b"*", Err(SaslError::Cancelled)),
            (b"=", Ok(b"")),
            (b"AHUAcHc=", Ok(b"\0u\0pw")),
            (b"AHUAcHc", Err(SaslError::BadBase64)),
            (b"AHUAcHc==", Err(SaslError::BadBase64)),
            (b"!!!!", Err(SaslError::BadBase64)),
            (b"AHUA cHc=", Err(SaslError::BadBase64)),
            (b"**", Err(SaslError::BadBase64)),
            (b"", Ok(b"")),
        ];
        for (line, want) in table {
            let got = decode_response(line);
            assert_eq!(
                got.as_ref().map(|s| s.as_bytes()).map_err(|e| *e),
                *want,
                "{line:?}"
            );
        }
        let huge = vec![b'A'; 4 * MAX_PLAIN];
        assert_eq!(decode_response(&huge).unwrap_err(), SaslError::Malformed);
        for (line, want) in [
            (b"*".to_vec(), SaslError::Cancelled),
            (b"AHUAcHc".to_vec(), SaslError::BadBase64),
            (b64(b"u\0pw"), SaslError::Malformed),
            (b64(b"other\0u\0pw"), SaslError::OtherIdentity),
        ] {
            assert_eq!(plain_response(&line).unwrap_err(), want, "{line:?}");
        }
    }

    #[test]
    fn login_texts() {
        assert_eq!(
            login_response(&b64(b"user")).unwrap().as_str(),
            Some("user")
        );
        assert!(login_response(b"=").unwrap().is_empty());
        assert_eq!(
            login_response(&b64(b"a\0b")).unwrap_err(),
            SaslError::Malformed
        );
        assert_eq!(
            login_response(&b64(b"\xff")).unwrap_err(),
            SaslError::Malformed
        );
        assert_eq!(login_response(b"*").unwrap_err(), SaslError::Cancelled);
        assert_eq!(login_response(b"#").unwrap_err(), SaslError::BadBase64);
    }

    #[test]
    fn secrets_are_not_printed_and_compare_by_value() {
        let s = Secret::from("hunter2".to_string());
        assert_eq!(format!("{s:?}"), "Secret(..)");
        assert_eq!(format!("{:?}", Some(&s)), "Some(Secret(..))");
        let p = decode_plain(b"\0u\0hunter2").unwrap();
        let shown = format!("{p:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(s, Secret::new(b"hunter2".to_vec()));
        assert_ne!(s, Secret::new(b"hunter3".to_vec()));
        assert_ne!(s, Secret::new(b"hunter".to_vec()));
        assert!(ct_eq(b"", b""));
        assert!(!ct_eq(b"a", b""));
        // As JSON it is the plain string kmp-authd reads back.
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "\"hunter2\"");
        let back: Secret = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        assert!(serde_json::to_string(&Secret::new(vec![0xff])).is_err());
    }
}
