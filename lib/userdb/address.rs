//! Addresses as the user database stores them.
//!
//! The domain is case-insensitive (RFC 5321 section 2.4) and stored lower-case,
//! an internationalised domain in its A-label (`xn--`) form (RFC 5890). The
//! local part is kept as the administrator typed it, but matched without
//! regard to case, as every mail system people use does: the database key is
//! `domain NUL lower-case(local)`, so all of a domain's entries sit together.

use std::fmt;

/// The longest local part of a name we create: a user, alias or list
/// (RFC 5321 section 4.5.3.1.1).
pub const MAX_LOCAL: usize = 64;
/// The longest local part looked up as a recipient
/// ([`Address::parse_recipient`]): as kmp-smtpd takes them
/// (`proto::smtp::address::MAX_LOCAL_PART`), so that the list addresses
/// that carry a member's address (`list-confirm-...`, `list-bounce-...`),
/// plus-addresses and catch-alls work past 64 octets.
pub const MAX_RECIPIENT_LOCAL: usize = crate::proto::smtp::address::MAX_LOCAL_PART;
/// The longest domain (RFC 5321 section 4.5.3.1.2, less the dot).
pub const MAX_DOMAIN: usize = 253;

/// Why an address or domain is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("{0:?} has no @domain")]
    NoDomain(String),
    #[error("{0:?} has an empty local part")]
    EmptyLocal(String),
    #[error("the local part of {0:?} is longer than {1} bytes")]
    LocalTooLong(String, usize),
    #[error("the local part of {0:?} has a character not allowed in a mailbox name ({1:?})")]
    BadLocalChar(String, char),
    #[error("the local part of {0:?} may not start or end with a dot or have two in a row")]
    BadDots(String),
    #[error("{0:?} is not a valid domain name: {1}")]
    BadDomain(String, String),
}

/// A mailbox address with its domain normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    local: String,
    domain: String,
}

impl Address {
    /// Parses `local@domain` (split at the last `@`).
    pub fn parse(s: &str) -> Result<Address, AddressError> {
        let (local, domain) = s
            .rsplit_once('@')
            .ok_or_else(|| AddressError::NoDomain(s.to_string()))?;
        if local.is_empty() {
            return Err(AddressError::EmptyLocal(s.to_string()));
        }
        check_local(s, local, MAX_LOCAL)?;
        Ok(Address {
            local: local.to_string(),
            domain: normalize_domain(domain)?,
        })
    }

    /// Parses a recipient to look up: as [`Address::parse`], but with local
    /// parts up to [`MAX_RECIPIENT_LOCAL`] octets. Such an address can be
    /// found (a list's role address, a plus-address, the catch-all) but
    /// never made: the database's writers take [`Address::parse`]'s.
    pub fn parse_recipient(s: &str) -> Result<Address, AddressError> {
        let (local, domain) = s
            .rsplit_once('@')
            .ok_or_else(|| AddressError::NoDomain(s.to_string()))?;
        if local.is_empty() {
            return Err(AddressError::EmptyLocal(s.to_string()));
        }
        check_local(s, local, MAX_RECIPIENT_LOCAL)?;
        Ok(Address {
            local: local.to_string(),
            domain: normalize_domain(domain)?,
        })
    }

    /// Parses an alias name: an address, or `@domain` for the domain's catch-all.
    pub fn parse_alias(s: &str) -> Result<Address, AddressError> {
        match s.strip_prefix('@') {
            Some(d) => Ok(Address {
                local: String::new(),
                domain: normalize_domain(d)?,
            }),
            None => Address::parse(s),
        }
    }

    /// The catch-all of `domain` (already normalised).
    pub fn catch_all(domain: &str) -> Address {
        Address {
            local: String::new(),
            domain: domain.to_string(),
        }
    }

    /// Builds an address from parts already validated (a stored record).
    pub fn from_parts(local: &str, domain: &str) -> Address {
        Address {
            local: local.to_string(),
            domain: domain.to_string(),
        }
    }

    /// The local part as given; empty for a catch-all.
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The domain, lower-case A-label form.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Whether this is a domain's catch-all (`@domain`).
    pub fn is_catch_all(&self) -> bool {
        self.local.is_empty()
    }

    /// The database key: `domain NUL lower(local)`.
    pub fn key(&self) -> Vec<u8> {
        key_of(&self.domain, &self.local)
    }

    /// The local part folded for matching and for directory names.
    pub fn local_folded(&self) -> String {
        self.local.to_lowercase()
    }

    /// For plus-addressing: `user+tag@d` gives `user@d`; None without a `+`
    /// or when nothing comes before it.
    pub fn without_detail(&self, separator: char) -> Option<Address> {
        let (base, _) = self.local.split_once(separator)?;
        if base.is_empty() {
            return None;
        }
        Some(Address {
            local: base.to_string(),
            domain: self.domain.clone(),
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// The key of `local` in `domain`.
pub fn key_of(domain: &str, local: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(domain.len() + 1 + local.len());
    k.extend_from_slice(domain.as_bytes());
    k.push(0);
    if local.is_ascii() {
        k.extend(local.bytes().map(|b| b.to_ascii_lowercase()));
    } else {
        k.extend_from_slice(local.to_lowercase().as_bytes());
    }
    k
}

/// The key prefix shared by every entry of `domain`.
pub fn domain_prefix(domain: &str) -> Vec<u8> {
    let mut k = domain.as_bytes().to_vec();
    k.push(0);
    k
}

/// A domain in lower-case A-label form, or why it is not a domain.
pub fn normalize_domain(d: &str) -> Result<String, AddressError> {
    let bad = |why: &str| AddressError::BadDomain(d.to_string(), why.to_string());
    let d2 = d.strip_suffix('.').unwrap_or(d);
    if d2.is_empty() {
        return Err(bad("it is empty"));
    }
    // The common case needs no IDNA tables: plain lower-case letters, digits,
    // hyphens and dots.
    let ascii = if d2
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !d2.contains("xn--")
    {
        d2.to_string()
    } else {
        idna::domain_to_ascii_strict(d2).map_err(|_| bad("IDNA conversion refuses it"))?
    };
    if ascii.len() > MAX_DOMAIN {
        return Err(bad("it is longer than 253 characters"));
    }
    for label in ascii.split('.') {
        if label.is_empty() {
            return Err(bad("it has an empty label"));
        }
        if label.len() > 63 {
            return Err(bad("a label is longer than 63 characters"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("a label starts or ends with a hyphen"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(bad("only letters, digits and hyphens are allowed"));
        }
    }
    Ok(ascii)
}

/// The Unicode (U-label) form of a stored domain, for display.
pub fn domain_unicode(d: &str) -> String {
    idna::domain_to_unicode(d).0
}

fn check_local(whole: &str, local: &str, max: usize) -> Result<(), AddressError> {
    if local.len() > max {
        return Err(AddressError::LocalTooLong(whole.to_string(), max));
    }
    if let Some(c) = local.chars().find(|c| {
        c.is_control()
            || c.is_whitespace()
            || matches!(
                c,
                '@' | '<' | '>' | '(' | ')' | '[' | ']' | '\\' | ',' | ';' | ':' | '"' | '/'
            )
    }) {
        return Err(AddressError::BadLocalChar(whole.to_string(), c));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(AddressError::BadDots(whole.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_lower_case_a_labels() {
        let a = Address::parse("Jo.Smith@EXAMPLE.Test").unwrap();
        assert_eq!(a.to_string(), "Jo.Smith@example.test");
        assert_eq!(a.key(), b"example.test\0jo.smith");
        let i = Address::parse("ana@Bücher.example").unwrap();
        assert_eq!(i.domain(), "xn--bcher-kva.example");
        assert_eq!(domain_unicode(i.domain()), "bücher.example");
        assert_eq!(normalize_domain("example.test.").unwrap(), "example.test");
        assert_eq!(
            normalize_domain("xn--bcher-kva.example").unwrap(),
            "xn--bcher-kva.example"
        );
    }

    #[test]
    fn bad_addresses_are_refused_with_a_reason() {
        for bad in [
            "nodomain",
            "@example.test",
            "a b@example.test",
            "a@exa mple.test",
            "a@-x.test",
            "a@x..test",
            ".a@example.test",
            "a..b@example.test",
            "a/b@example.test",
            "a\u{0}@example.test",
            "a@",
            "a@under_score.test",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad} accepted");
        }
        let long = format!("{}@example.test", "x".repeat(65));
        assert!(matches!(
            Address::parse(&long),
            Err(AddressError::LocalTooLong(_, 64))
        ));
        // Looked up, a recipient may be longer; a user name may not.
        assert_eq!(Address::parse_recipient(&long).unwrap().local().len(), 65);
        let longer = format!("{}@example.test", "x".repeat(MAX_RECIPIENT_LOCAL + 1));
        assert!(Address::parse_recipient(&longer).is_err());
    }

    #[test]
    fn catch_all_and_detail() {
        let c = Address::parse_alias("@Example.Test").unwrap();
        assert!(c.is_catch_all());
        assert_eq!(c.key(), b"example.test\0");
        let p = Address::parse("Bob+Lists@example.test").unwrap();
        assert_eq!(
            p.without_detail('+').unwrap().to_string(),
            "Bob@example.test"
        );
        assert!(Address::parse("+x@example.test")
            .unwrap()
            .without_detail('+')
            .is_none());
        assert_eq!(
            Address::parse("Ünï@example.test").unwrap().local_folded(),
            "ünï"
        );
    }
}
