//! Password hashes in crypt(3) form. New passwords are hashed as `$6$`
//! SHA-512-crypt; `$5$`, `$1$` MD5-crypt, `$2a$`/`$2b$`/`$2y$` bcrypt and
//! `$argon2id$` are verified too, so users imported from Dovecot, Courier or
//! vpopmail keep their hashes. Traditional DES crypt is not accepted.

use argon2::PasswordVerifier;

/// The longest password accepted, in bytes (the SASL decoders' limit too).
pub const MAX_PASSWORD: usize = crate::proto::sasl::MAX_PASSWORD;

/// The longest hash string accepted.
pub const MAX_HASH: usize = 512;

/// Why a password or hash is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is empty")]
    Empty,
    #[error("the password is longer than {MAX_PASSWORD} bytes")]
    TooLong,
    #[error("the password contains a NUL byte")]
    Nul,
    #[error("{0}")]
    BadHash(String),
    #[error("cannot hash the password: {0}")]
    Hashing(String),
}

/// The hash schemes this module knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Md5Crypt,
    Sha256Crypt,
    Sha512Crypt,
    Bcrypt,
    Argon2id,
}

impl Scheme {
    /// The scheme of a stored hash, from its prefix.
    pub fn of(hash: &str) -> Option<Scheme> {
        Some(if hash.starts_with("$6$") {
            Scheme::Sha512Crypt
        } else if hash.starts_with("$5$") {
            Scheme::Sha256Crypt
        } else if hash.starts_with("$1$") {
            Scheme::Md5Crypt
        } else if hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$") {
            Scheme::Bcrypt
        } else if hash.starts_with("$argon2id$") {
            Scheme::Argon2id
        } else {
            return None;
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Scheme::Md5Crypt => "md5-crypt",
            Scheme::Sha256Crypt => "sha256-crypt",
            Scheme::Sha512Crypt => "sha512-crypt",
            Scheme::Bcrypt => "bcrypt",
            Scheme::Argon2id => "argon2id",
        }
    }
}

/// Checks a clear-text password an administrator or user gives.
pub fn check_plain(pw: &[u8]) -> Result<(), PasswordError> {
    if pw.is_empty() {
        return Err(PasswordError::Empty);
    }
    if pw.len() > MAX_PASSWORD {
        return Err(PasswordError::TooLong);
    }
    if pw.contains(&0) {
        return Err(PasswordError::Nul);
    }
    Ok(())
}

/// Hashes a new password as `$6$` SHA-512-crypt with a random salt.
pub fn hash(pw: &[u8]) -> Result<String, PasswordError> {
    check_plain(pw)?;
    pwhash::sha512_crypt::hash(pw).map_err(|e| PasswordError::Hashing(e.to_string()))
}

/// Checks that `h` is a hash of a known scheme, well enough formed to store.
pub fn check_hash(h: &str) -> Result<Scheme, PasswordError> {
    let bad = |why: &str| PasswordError::BadHash(format!("{h:?} is not a usable hash: {why}"));
    if h.len() > MAX_HASH {
        return Err(bad("too long"));
    }
    if !h
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"$./=,+-_".contains(&b))
    {
        return Err(bad("a character no crypt hash has"));
    }
    let scheme = Scheme::of(h)
        .ok_or_else(|| bad("the scheme is not one of $6$, $5$, $1$, $2b$/$2y$/$2a$, $argon2id$"))?;
    let ok = match scheme {
        Scheme::Argon2id => argon2::PasswordHash::new(h).is_ok(),
        Scheme::Bcrypt => well_formed_bcrypt(h),
        Scheme::Md5Crypt => well_formed_crypt(h, 22, false),
        Scheme::Sha256Crypt => well_formed_crypt(h, 43, true),
        Scheme::Sha512Crypt => well_formed_crypt(h, 86, true),
    };
    if !ok {
        return Err(bad("malformed"));
    }
    Ok(scheme)
}

/// The crypt(3) base-64 alphabet.
fn is_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'/'
}

/// `$ID$[rounds=N$]SALT$HASH` with a hash of `len` characters. Checked by
/// shape only: computing a hash would make loading a million users take hours.
fn well_formed_crypt(h: &str, len: usize, rounds: bool) -> bool {
    let parts: Vec<&str> = h.split('$').collect();
    let (salt, out) = match parts.as_slice() {
        ["", _, r, salt, out] if rounds && r.starts_with("rounds=") => {
            match r["rounds=".len()..].parse::<u64>() {
                Ok(n) if (1000..=10_000_000).contains(&n) => (salt, out),
                _ => return false,
            }
        }
        ["", _, salt, out] => (salt, out),
        _ => return false,
    };
    !salt.is_empty()
        && salt.len() <= 16
        && salt.bytes().all(is_b64)
        && out.len() == len
        && out.bytes().all(is_b64)
}

/// `$2b$CC$` then 53 characters of salt and hash, cost 4 to 20.
fn well_formed_bcrypt(h: &str) -> bool {
    let parts: Vec<&str> = h.split('$').collect();
    match parts.as_slice() {
        ["", _, cost, rest] => {
            matches!(cost.parse::<u32>(), Ok(4..=20))
                && cost.len() == 2
                && rest.len() == 53
                && rest.bytes().all(is_b64)
        }
        _ => false,
    }
}

/// Whether `pw` matches the stored hash `h`. An empty or unknown hash matches
/// nothing (an account without a password cannot log in).
pub fn verify(pw: &[u8], h: &str) -> bool {
    match Scheme::of(h) {
        None => false,
        Some(Scheme::Argon2id) => match argon2::PasswordHash::new(h) {
            Ok(ph) => argon2::Argon2::default().verify_password(pw, &ph).is_ok(),
            Err(_) => false,
        },
        Some(_) => pwhash::unix::verify(pw, h),
    }
}

/// A well-formed `$6$` hash, used only if the system's random source fails
/// when [`dummy_hash`] is first made.
const FALLBACK_DUMMY: &str = "$6$kmpromaildummy$aQIUpypjqp.yXl/fYiO9SqGvuGIWkZxUJUL0zdWlQrrBKjtqP6OFes7xroNS/4QYXE9J7cWfC30WDZ5423kYc/";

/// A hash that verifies nothing anyone can type, made once per process by
/// [`hash`] itself: the default scheme at the default cost. kmp-authd checks
/// an unknown user's password against it, so a login costs the same hash
/// work whether the user exists or not, and a change of the default scheme
/// or cost changes the dummy with it.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        use ring::rand::SecureRandom;
        let mut raw = [0u8; 32];
        if ring::rand::SystemRandom::new().fill(&mut raw).is_err() {
            return FALLBACK_DUMMY.to_string();
        }
        // Printable, no NUL: a password `hash` accepts, never stored anywhere.
        let pw: Vec<u8> = raw.iter().map(|b| b'!' + b % 90).collect();
        let h = hash(&pw).unwrap_or_else(|_| FALLBACK_DUMMY.to_string());
        raw.fill(0);
        h
    })
}

/// A password held in memory only as long as needed: the one type every
/// program uses (wiped on drop, never printed).
pub use crate::proto::sasl::Secret;

#[cfg(test)]
mod tests {
    use super::*;

    // Reference hashes of "password" made by other systems' tools.
    pub const MD5: &str = "$1$5pZSV9va$azfrPr6af3Fc7dLblQXVa0";
    pub const BCRYPT_2Y: &str = "$2y$05$bvIG6Nmid91Mu9RcmmWZfO5HJIMCT8riNW0hEp8f6/FuA2/mHZFpe";

    #[test]
    fn new_hashes_are_sha512_crypt_and_verify() {
        let h = hash(b"s3cret").unwrap();
        assert!(h.starts_with("$6$"), "{h}");
        assert!(verify(b"s3cret", &h));
        assert!(!verify(b"s3cret ", &h));
        assert_eq!(check_hash(&h).unwrap(), Scheme::Sha512Crypt);
    }

    #[test]
    fn imported_schemes_verify() {
        assert!(verify(b"password", MD5));
        assert!(!verify(b"Password", MD5));
        assert!(verify(b"password", BCRYPT_2Y));
        let b2b = BCRYPT_2Y.replacen("$2y$", "$2b$", 1);
        assert!(verify(b"password", &b2b));
        #[allow(deprecated)]
        let s256 = pwhash::sha256_crypt::hash("pw").unwrap();
        assert!(verify(b"pw", &s256));
        use argon2::PasswordHasher;
        let a = argon2::Argon2::default()
            .hash_password(b"pw")
            .unwrap()
            .to_string();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert!(verify(b"pw", &a));
        assert!(!verify(b"px", &a));
        for h in [MD5, BCRYPT_2Y, &s256, &a] {
            check_hash(h).unwrap();
        }
    }

    #[test]
    fn bad_hashes_and_passwords_are_refused() {
        assert!(!verify(b"x", ""));
        assert!(!verify(b"x", "aZGJuE6EXrjEE"));
        assert!(!verify(b"x", dummy_hash()));
        assert!(verify(b"dummy-password-never-used", FALLBACK_DUMMY));
        // The dummy is of the default scheme and cost: what `hash` makes.
        let real = hash(b"pw").unwrap();
        assert_eq!(check_hash(dummy_hash()), Ok(Scheme::Sha512Crypt));
        assert_eq!(dummy_hash().matches('$').count(), real.matches('$').count());
        assert_eq!(dummy_hash(), dummy_hash());
        for h in [
            "",
            "plain",
            "aZGJuE6EXrjEE",
            "$6$",
            "$argon2id$junk",
            "$1$a b",
        ] {
            assert!(check_hash(h).is_err(), "{h} accepted");
        }
        assert_eq!(check_plain(b""), Err(PasswordError::Empty));
        assert_eq!(check_plain(&[b'x'; 1025]), Err(PasswordError::TooLong));
        assert!(check_plain(&[b'x'; 1024]).is_ok());
        assert_eq!(check_plain(b"a\0b"), Err(PasswordError::Nul));
    }
}
