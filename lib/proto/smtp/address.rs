//! Envelope addresses (RFC 5321 4.1.2, with RFC 6531's UTF-8 extension).
//!
//! [`Mailbox`] can only be built by this parser: holding one means the text
//! was checked against the grammar and the length limits of RFC 5321
//! 4.5.3.1. Domains are lower-cased (ASCII), local parts kept as given, since
//! RFC 5321 2.4 leaves their case to the receiving host.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The longest local part taken: 255 octets. RFC 5321 4.5.3.1.1 names 64,
/// but 4.5.3.1 asks that "to the maximum extent possible, implementation
/// techniques that impose no limits on the length of these objects should be
/// used", and Postfix and qmail set none. Our own list addresses need the
/// room: a confirmation or bounce address carries a member's whole address
/// (`list-confirm-COOKIE.member=domain@`). User names keep their own limit
/// of 64 (`userdb::address::MAX_LOCAL`).
pub const MAX_LOCAL_PART: usize = 255;
/// RFC 5321 4.5.3.1.2: a domain of 255 octets at most.
pub const MAX_DOMAIN: usize = 255;
/// A path of 512 octets at most, brackets included: RFC 5321 4.5.3.1.3's
/// 256 widened with [`MAX_LOCAL_PART`], still well inside the RCPT line
/// limit (`command::MAX_RCPT_LINE`).
pub const MAX_PATH: usize = 512;
/// RFC 1035 2.3.4: a label of 63 octets at most.
pub const MAX_LABEL: usize = 63;

/// `local@domain`, checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mailbox {
    local: String,
    domain: String,
}

impl Mailbox {
    /// The local part as the client wrote it (quoted form included).
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The domain, lower-cased; an address literal keeps its brackets.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Whether the address is plain ASCII (else it needs SMTPUTF8).
    pub fn is_ascii(&self) -> bool {
        self.local.is_ascii() && self.domain.is_ascii()
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// Why an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressError {
    /// Not `<...>`, or text outside the grammar.
    Syntax,
    /// Over one of the limits of RFC 5321 4.5.3.1.
    TooLong,
}

/// Parses a path at the start of `s`: `<mailbox>`, `<@route:mailbox>`, or a
/// bare `mailbox` (RFC 1123 robustness: some clients leave the brackets out).
/// `<>` gives `None` when `allow_null`. Returns the mailbox and the rest of `s`.
pub fn parse_path(s: &str, allow_null: bool) -> Result<(Option<Mailbox>, &str), AddressError> {
    let (inner, rest) = if let Some(body) = s.strip_prefix('<') {
        let end = closing_bracket(body).ok_or(AddressError::Syntax)?;
        if end + 2 > MAX_PATH {
            return Err(AddressError::TooLong);
        }
        (&body[..end], &body[end + 1..])
    } else {
        let end = s.find(' ').unwrap_or(s.len());
        if end + 2 > MAX_PATH {
            return Err(AddressError::TooLong);
        }
        (&s[..end], &s[end..])
    };
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return Err(AddressError::Syntax);
    }
    if inner.is_empty() {
        return if allow_null {
            Ok((None, rest))
        } else {
            Err(AddressError::Syntax)
        };
    }
    // RFC 5321 4.1.2: a source route MUST be accepted and SHOULD be ignored.
    let mailbox = match inner.strip_prefix('@') {
        Some(_) => {
            let colon = inner.find(':').ok_or(AddressError::Syntax)?;
            for hop in inner[..colon].split(',') {
                let d = hop.strip_prefix('@').ok_or(AddressError::Syntax)?;
                parse_domain(d)?;
            }
            &inner[colon + 1..]
        }
        None => inner,
    };
    Ok((Some(parse_mailbox(mailbox)?), rest))
}

/// Parses `local@domain` (the whole of `s`).
pub fn parse_mailbox(s: &str) -> Result<Mailbox, AddressError> {
    let at = local_part_end(s)?;
    let (local, domain) = (&s[..at], &s[at + 1..]);
    if local.len() > MAX_LOCAL_PART {
        return Err(AddressError::TooLong);
    }
    let domain = if domain.starts_with('[') {
        parse_literal(domain)?
    } else {
        parse_domain(domain)?
    };
    Ok(Mailbox {
        local: local.to_string(),
        domain,
    })
}

/// Checks a domain name (A-labels or, for SMTPUTF8, U-labels) and returns it
/// lower-cased.
pub fn parse_domain(d: &str) -> Result<String, AddressError> {
    if d.len() > MAX_DOMAIN {
        return Err(AddressError::TooLong);
    }
    if d.is_empty() {
        return Err(AddressError::Syntax);
    }
    for label in d.split('.') {
        if label.len() > MAX_LABEL {
            return Err(AddressError::TooLong);
        }
        let ok = !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii() && !c.is_control());
        if !ok {
            return Err(AddressError::Syntax);
        }
    }
    Ok(d.to_lowercase())
}

/// `[192.0.2.1]` or `[IPv6:2001:db8::1]` (RFC 5321 4.1.3), the IPv6 form
/// with its tag as written there and the address lower-cased.
pub fn parse_literal(d: &str) -> Result<String, AddressError> {
    let inner = d
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .ok_or(AddressError::Syntax)?;
    if inner.parse::<Ipv4Addr>().is_ok() {
        return Ok(d.to_string());
    }
    match inner.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => {
            inner[5..]
                .parse::<Ipv6Addr>()
                .map_err(|_| AddressError::Syntax)?;
            Ok(format!("[IPv6:{}]", &inner[5..].to_lowercase()))
        }
        _ => Err(AddressError::Syntax),
    }
}

/// The index of the `@` that ends the local part: a dot-string of atoms or a
/// quoted string (RFC 5321 4.1.2).
fn local_part_end(s: &str) -> Result<usize, AddressError> {
    let b = s.as_bytes();
    if b.first() == Some(&b'"') {
        let mut i = 1;
        while i < b.len() {
            match b[i] {
                b'\\' if i + 1 < b.len() && (32..=126).contains(&b[i + 1]) => i += 2,
                b'"' => break,
                c if c == 32 || c == 33 || (35..=91).contains(&c) || (93..=126).contains(&c) => {
                    i += 1
                }
                c if c >= 0x80 => i += 1,
                _ => return Err(AddressError::Syntax),
            }
        }
        if b.get(i) != Some(&b'"') || b.get(i + 1) != Some(&b'@') {
            return Err(AddressError::Syntax);
        }
        return Ok(i + 1);
    }
    let at = s.rfind('@').ok_or(AddressError::Syntax)?;
    let local = &s[..at];
    let atom_ok = |a: &str| {
        !a.is_empty()
            && a.chars().all(|c| {
                c.is_ascii_alphanumeric()
                    || "!#$%&'*+-/=?^_`{|}~".contains(c)
                    || !c.is_ascii() && !c.is_control()
            })
    };
    if local.split('.').all(atom_ok) {
        Ok(at)
    } else {
        Err(AddressError::Syntax)
    }
}

/// The index of the `>` that closes a path, skipping quoted strings.
fn closing_bracket(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut quoted = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'>' if !quoted => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_paths_parse() {
        let table: &[(&str, &str, &str)] = &[
            ("<user@example.test>", "user@example.test", ""),
            (
                "<User@EXAMPLE.Test> SIZE=10",
                "User@example.test",
                " SIZE=10",
            ),
            ("<@relay.test,@b.test:u@example.test>", "u@example.test", ""),
            (
                "<\"john smith\"@example.test>",
                "\"john smith\"@example.test",
                "",
            ),
            ("<\"a>b\"@example.test>", "\"a>b\"@example.test", ""),
            ("u@example.test", "u@example.test", ""),
            ("<u@[192.0.2.1]>", "u@[192.0.2.1]", ""),
            ("<u@[IPv6:2001:DB8::1]>", "u@[IPv6:2001:db8::1]", ""),
            ("<用户@例子.测试>", "用户@例子.测试", ""),
            ("<a.b+tag@x-y.example.test>", "a.b+tag@x-y.example.test", ""),
        ];
        // Local parts over RFC 5321's 64 octets (up to 255) are taken.
        let long = format!("{}@example.test", "l".repeat(255));
        let (m, _) = parse_path(&format!("<{long}>"), false).unwrap();
        assert_eq!(m.unwrap().to_string(), long);
        for (input, want, rest) in table {
            let (m, r) = parse_path(input, false).unwrap_or_else(|e| panic!("{input}: {e:?}"));
            assert_eq!(m.unwrap().to_string(), *want, "{input}");
            assert_eq!(r, *rest, "{input}");
        }
        assert_eq!(parse_path("<>", true).unwrap(), (None, ""));
        assert!(!parse_path("<用户@例子.测试>", false)
            .unwrap()
            .0
            .unwrap()
            .is_ascii());
    }

    #[test]
    fn bad_paths_are_refused() {
        let long_local = format!("<{}@example.test>", "a".repeat(256));
        let long_label = format!("<u@{}.test>", "a".repeat(64));
        let long_path = format!("<{}@{}>", "a".repeat(255), ["abcdefghi"; 26].join("."));
        let table: &[(&str, AddressError)] = &[
            ("<>", AddressError::Syntax),
            ("<user>", AddressError::Syntax),
            ("<user@>", AddressError::Syntax),
            ("<@example.test>", AddressError::Syntax),
            ("<a..b@example.test>", AddressError::Syntax),
            ("<.a@example.test>", AddressError::Syntax),
            ("<a b@example.test>", AddressError::Syntax),
            ("<u@-bad.test>", AddressError::Syntax),
            ("<u@a..test>", AddressError::Syntax),
            ("<u@exa_mple.test>", AddressError::Syntax),
            ("<u@[300.1.1.1]>", AddressError::Syntax),
            ("<u@[IPv6:zz]>", AddressError::Syntax),
            ("<u@example.test", AddressError::Syntax),
            ("<u@example.test>x", AddressError::Syntax),
            ("<\"unterminated@example.test>", AddressError::Syntax),
            ("<u\u{1}@example.test>", AddressError::Syntax),
            (&long_local, AddressError::TooLong),
            (&long_label, AddressError::TooLong),
            (&long_path, AddressError::TooLong),
        ];
        for (input, want) in table {
            assert_eq!(parse_path(input, false).err(), Some(*want), "{input}");
        }
    }
}
