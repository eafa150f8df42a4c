//! Sign-up: people make their own account in a domain that allows it
//! (`kmpctl domain set D --signup open|approve`; off by default).
//!
//! What is checked here, once for every door: the domain's policy, the
//! name (no reserved names such as postmaster or abuse, no list's or
//! role's address: the database's own name check refuses those), the
//! password's strength, and then the domain's limits (users, quota), which
//! the database's writer enforces. `approve` stores the user disabled: a
//! postmaster enables it (`PATCH /v1/users/A {"state":"active"}`, or
//! `kmpctl user enable`). The rate limit per client address lives with the
//! door (kmp-admind), which alone sees the address.

use crate::userdb::limits::Signup;
use crate::userdb::lmdb::Lmdb;
use crate::userdb::{password, Address, DbError, Directory, State, User};

/// Local parts nobody may sign up for (RFC 2142 role addresses and the
/// names a system keeps for itself); compared without regard to case,
/// dots, dashes and underscores, so `Post.Master` is refused too.
pub const RESERVED: &[&str] = &[
    "postmaster",
    "abuse",
    "hostmaster",
    "webmaster",
    "security",
    "noc",
    "root",
    "admin",
    "administrator",
    "mailerdaemon",
    "daemon",
    "nobody",
    "noreply",
    "support",
    "info",
    "sales",
    "marketing",
    "billing",
    "www",
    "ftp",
    "uucp",
    "usenet",
    "news",
    "mail",
    "system",
    "kmpromail",
];

/// The shortest password taken.
pub const MIN_PASSWORD: usize = 10;

/// Passwords refused whatever their length (the most common ones that pass
/// the length rule).
const COMMON: &[&str] = &[
    "1234567890",
    "12345678910",
    "0123456789",
    "qwertyuiop",
    "1q2w3e4r5t",
    "password123",
    "password1234",
    "passwordpassword",
    "iloveyou123",
    "abcdefghij",
    "aaaaaaaaaa",
    "qwerty123456",
    "woaini1314",
    "woaini520",
    "5201314520",
];

/// Whether `local` is reserved.
pub fn is_reserved(local: &str) -> bool {
    let folded: String = local
        .chars()
        .filter(|c| !matches!(c, '.' | '-' | '_' | '+'))
        .flat_map(char::to_lowercase)
        .collect();
    folded.is_empty() || RESERVED.contains(&folded.as_str())
}

/// Why a password is too weak, if it is: at least [`MIN_PASSWORD`]
/// characters of at least two kinds (letters, digits, others), not the
/// address or its local part, not a well-known password.
pub fn weakness(pw: &str, addr: &Address) -> Option<String> {
    let n = pw.chars().count();
    if n < MIN_PASSWORD {
        return Some(format!(
            "the password needs at least {MIN_PASSWORD} characters"
        ));
    }
    if pw.len() > password::MAX_PASSWORD {
        return Some("the password is too long".into());
    }
    let kinds = [
        pw.chars().any(char::is_alphabetic),
        pw.chars().any(|c| c.is_ascii_digit()),
        pw.chars().any(|c| !c.is_alphanumeric()),
    ]
    .iter()
    .filter(|k| **k)
    .count();
    if kinds < 2 {
        return Some("the password needs letters and digits or other signs, not one kind".into());
    }
    let lower = pw.to_lowercase();
    let local = addr.local().to_lowercase();
    if (local.chars().count() >= 3 && lower.contains(&local))
        || lower == addr.to_string().to_lowercase()
    {
        return Some("the password may not contain the name".into());
    }
    if COMMON.contains(&lower.as_str()) {
        return Some("the password is too well known".into());
    }
    let first = pw.chars().next();
    if pw.chars().all(|c| Some(c) == first) {
        return Some("the password is one character repeated".into());
    }
    None
}

/// The outcome of a sign-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedUp {
    pub address: String,
    /// True: the account waits for a postmaster (disabled).
    pub pending: bool,
}

/// Makes the account `addr` with `pw` if the domain allows sign-up and the
/// checks pass. Errors: NotFound (no such domain, or sign-up off: the same
/// answer, so the call tells nothing about which domains exist), Invalid
/// (reserved name, weak password), Exists, Limit.
pub fn signup(db: &Lmdb, addr: &Address, pw: &str) -> Result<SignedUp, DbError> {
    let closed = || DbError::NotFound(format!("sign-up is not open in domain {}", addr.domain()));
    let dom = db.domain(addr.domain())?.ok_or_else(closed)?;
    let pending = match dom.limits.signup {
        Signup::Off => return Err(closed()),
        Signup::Open => false,
        Signup::Approve => true,
    };
    if is_reserved(addr.local()) {
        return Err(DbError::Invalid(format!(
            "the name {} is reserved",
            addr.local()
        )));
    }
    if let Some(why) = weakness(pw, addr) {
        return Err(DbError::Invalid(why));
    }
    let hash = password::hash(pw.as_bytes())?;
    let mut u: User = super::new_user(
        db,
        addr,
        super::NewUser {
            hash: Some(hash),
            ..Default::default()
        },
    )?;
    if pending {
        u.state = State::Disabled;
    }
    // The database checks the name (users, aliases, lists and their role
    // addresses) and the domain's limits in the same write.
    db.add_user(&u)?;
    Ok(SignedUp {
        address: u.address,
        pending,
    })
}

/// The domains open for sign-up: (A-label, Unicode form, needs approval).
pub fn open_domains(db: &Lmdb) -> Result<Vec<(String, String, bool)>, DbError> {
    Ok(db
        .domains()?
        .into_iter()
        .filter(|d| !d.limits.signup.is_off())
        .map(|d| {
            let u = crate::userdb::address::domain_unicode(&d.name);
            (d.name, u, d.limits.signup == Signup::Approve)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names_and_weak_passwords() {
        for r in [
            "postmaster",
            "Post.Master",
            "ABUSE",
            "mailer-daemon",
            "root",
            "...",
        ] {
            assert!(is_reserved(r), "{r}");
        }
        for ok in ["zhang.wei", "bob", "postmasters"] {
            assert!(!is_reserved(ok), "{ok}");
        }
        let a = Address::parse("zhangwei@example.test").unwrap();
        for weak in [
            "short1",
            "onlyletterslong",
            "12345678901234",
            "zhangwei2026!",
            "1234567890",
            "qwertyuiop",
            "PASSWORD123",
        ] {
            assert!(weakness(weak, &a).is_some(), "{weak}");
        }
        for strong in ["correct horse 9", "长城-2026-上海", "tr0ub4dor&3x"] {
            assert_eq!(weakness(strong, &a), None, "{strong}");
        }
    }
}
