//! The SASL pieces POP3 needs: base64 as RFC 5034 uses it, and the PLAIN
//! mechanism's message (RFC 4616).

use base64::Engine;

use super::Secret;

/// The longest PLAIN message: three strings of 255 octets and two NULs (RFC 4616 section 2).
pub const MAX_PLAIN: usize = 3 * 255 + 2;

/// Decodes standard base64 with padding; `None` if it is not that.
pub fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// Why a PLAIN message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainError {
    /// Not `authzid NUL authcid NUL passwd`, or a part is empty or too long.
    Malformed,
    /// An authorization identity other than the user's own: we do not let
    /// one user act as another.
    OtherIdentity,
}

/// A decoded PLAIN message.
#[derive(Debug)]
pub struct Plain {
    pub user: String,
    pub password: Secret,
}

/// RFC 4616 section 2: `message = [authzid] UTF8NUL authcid UTF8NUL passwd`.
pub fn decode_plain(msg: &[u8]) -> Result<Plain, PlainError> {
    if msg.len() > MAX_PLAIN {
        return Err(PlainError::Malformed);
    }
    let mut parts = msg.splitn(3, |&b| b == 0);
    let (Some(authz), Some(authc), Some(pass)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(PlainError::Malformed);
    };
    if authc.is_empty() || pass.is_empty() || pass.contains(&0) || authc.len() > 255 {
        return Err(PlainError::Malformed);
    }
    let user = std::str::from_utf8(authc).map_err(|_| PlainError::Malformed)?;
    if !authz.is_empty() && authz != authc {
        return Err(PlainError::OtherIdentity);
    }
    Ok(Plain {
        user: user.to_string(),
        password: Secret::new(pass.to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_messages() {
        let ok = decode_plain(b"\0u@example.test\0pw with space").unwrap();
        assert_eq!(ok.user, "u@example.test");
        assert_eq!(ok.password.as_bytes(), b"pw with space");
        assert!(decode_plain(b"u\0u\0pw").is_ok());
        let table: &[(&[u8], PlainError)] = &[
            (b"", PlainError::Malformed),
            (b"\0u", PlainError::Malformed),
            (b"\0\0pw", PlainError::Malformed),
            (b"\0u\0", PlainError::Malformed),
            (b"\0u\0p\0w", PlainError::Malformed),
            (b"\0\xff\xfe\0pw", PlainError::Malformed),
            (b"admin\0u\0pw", PlainError::OtherIdentity),
        ];
        for (input, want) in table {
            assert_eq!(decode_plain(input).unwrap_err(), *want, "{input:?}");
        }
        let long = [vec![0u8], vec![b'a'; 300], vec![0], vec![b'p']].concat();
        assert_eq!(decode_plain(&long).unwrap_err(), PlainError::Malformed);
    }

    #[test]
    fn base64_is_strict() {
        assert_eq!(base64_decode(b"AHUAcHc=").unwrap(), b"\0u\0pw");
        assert!(base64_decode(b"AHUAcHc").is_none());
        assert!(base64_decode(b"!!!!").is_none());
    }
}
