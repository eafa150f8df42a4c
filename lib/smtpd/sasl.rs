//! The two SASL mechanisms kmp-smtpd offers, PLAIN (RFC 4616) and LOGIN
//! (draft-murchison-sasl-login), decoded into credentials. The password is
//! held in a [`Secret`] that is wiped when dropped and never printed.

use base64::Engine;

/// A password: wiped on drop, `Debug` prints nothing of it.
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    /// The text, to hand to kmp-authd.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.fill(0);
        std::hint::black_box(&bytes);
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// What a client offered.
#[derive(Debug)]
pub struct Credentials {
    pub user: String,
    pub password: Secret,
}

/// Why a SASL response could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslError {
    /// Not base64, not UTF-8, or not the mechanism's form.
    Malformed,
    /// The client sent `*` (RFC 4954 4).
    Cancelled,
}

/// Decodes one base64 response (`=` is the empty response of RFC 4954).
pub fn decode(line: &str) -> Result<Vec<u8>, SaslError> {
    if line == "*" {
        return Err(SaslError::Cancelled);
    }
    if line == "=" {
        return Ok(Vec::new());
    }
    base64::engine::general_purpose::STANDARD
        .decode(line)
        .map_err(|_| SaslError::Malformed)
}

/// PLAIN: `authzid NUL authcid NUL passwd`. An authzid other than the
/// authcid (acting as someone else) is refused as malformed.
pub fn plain(line: &str) -> Result<Credentials, SaslError> {
    let raw = decode(line)?;
    let text = String::from_utf8(raw).map_err(|_| SaslError::Malformed)?;
    let secret = Secret::new(text);
    let mut parts = secret.expose().splitn(3, '\0');
    let (authz, user, pass) = match (parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(u), Some(p)) => (a, u, p),
        _ => return Err(SaslError::Malformed),
    };
    if user.is_empty() || (!authz.is_empty() && authz != user) || pass.contains('\0') {
        return Err(SaslError::Malformed);
    }
    Ok(Credentials {
        user: user.to_string(),
        password: Secret::new(pass.to_string()),
    })
}

/// One LOGIN response as text.
pub fn login_text(line: &str) -> Result<String, SaslError> {
    let raw = decode(line)?;
    let s = String::from_utf8(raw).map_err(|_| SaslError::Malformed)?;
    if s.contains('\0') {
        return Err(SaslError::Malformed);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn plain_and_login_decode() {
        let c = plain(&b64(b"\0u@example.test\0pw")).unwrap();
        assert_eq!(
            (c.user.as_str(), c.password.expose()),
            ("u@example.test", "pw")
        );
        let c = plain(&b64(b"u@example.test\0u@example.test\0pw")).unwrap();
        assert_eq!(c.user, "u@example.test");
        assert_eq!(format!("{:?}", c.password), "Secret(..)");
        for bad in [
            b64(b"other\0u\0pw"),
            b64(b"\0\0pw"),
            b64(b"u\0pw"),
            "!!".into(),
        ] {
            assert_eq!(plain(&bad).err(), Some(SaslError::Malformed), "{bad}");
        }
        assert_eq!(plain("*").err(), Some(SaslError::Cancelled));
        assert_eq!(login_text(&b64(b"user")).unwrap(), "user");
        assert_eq!(login_text("=").unwrap(), "");
        assert_eq!(login_text(&b64(b"a\0b")).err(), Some(SaslError::Malformed));
    }
}
