//! Member addresses inside our own local parts: `MEMBER=DOMAIN`.
//!
//! A list's return path for a member (`list-bounce-MEMBER=DOMAIN@`, the
//! VERP form qmail and Postfix use), its warning probe
//! (`list-probe-MEMBER=DOMAIN@`), a request for someone else
//! (`list-subscribe-MEMBER=DOMAIN@`) and the subject of a confirmation
//! cookie all carry a member address this way. A domain never holds `=`,
//! so the address is split at the last one: a member whose local part has
//! `=` or `+` in it (`a=b+tag@example.org` becomes `a=b+tag=example.org`)
//! comes back whole.
//!
//! Only plain member addresses are taken ([`member`]): a dot-atom local
//! part without the routing characters `%` and `!` (RFC 1123 5.2.16's `%`
//! hack, UUCP's bang paths), at an ASCII domain with a dot in it. A quoted
//! local part cannot be written into another local part unquoted, and a
//! routed one would let a subscriber send list mail on through someone
//! else's relay, so both are refused with a reason and nothing is done.

use std::fmt;

use crate::proto::smtp::address::parse_mailbox;

/// The longest member local part: RFC 5321's 64 octets. Our own server
/// takes longer ones (`proto::smtp::address::MAX_LOCAL_PART`, 255) so that
/// the list's addresses that carry a member's whole address
/// (`list-confirm-COOKIE.MEMBER=DOMAIN@`) fit; the member's own part is
/// kept to what every mail system delivers.
pub const MAX_MEMBER_LOCAL: usize = 64;

/// A member address that passed [`member`]: ASCII, domain lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Member {
    local: String,
    domain: String,
}

/// Why an address cannot be a list member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberError {
    /// Not an address at all.
    Syntax,
    /// A quoted local part (`"john doe"@example.org`).
    Quoted,
    /// `%` or `!` in the local part: a route through another host.
    Routed,
    /// Non-ASCII text, an address literal or a domain without a dot.
    Domain,
    /// A local part over [`MAX_MEMBER_LOCAL`] octets.
    TooLong,
}

impl fmt::Display for MemberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MemberError::Syntax => "not a mail address",
            MemberError::Quoted => "quoted local parts are not taken as list members",
            MemberError::Routed => "addresses routed with % or ! are not taken as list members",
            MemberError::Domain => "the domain must be a plain ASCII host name with a dot",
            MemberError::TooLong => "the local part is longer than 64 octets",
        })
    }
}

impl Member {
    /// The local part, as given.
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The domain, lower-cased.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// `local=domain`, for a local part of ours.
    pub fn encode(&self) -> String {
        format!("{}={}", self.local, self.domain)
    }

    /// The address lower-cased whole: the form cookies are signed over, so
    /// that a mail system that folds the case of local parts does not break
    /// them.
    pub fn folded(&self) -> String {
        self.to_string().to_ascii_lowercase()
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// Checks `addr` (`local@domain`, no brackets) as a member address.
pub fn member(addr: &str) -> Result<Member, MemberError> {
    let addr = addr.trim();
    if addr.starts_with('"') {
        return Err(MemberError::Quoted);
    }
    if !addr.is_ascii() {
        return Err(MemberError::Domain);
    }
    let m = parse_mailbox(addr).map_err(|_| MemberError::Syntax)?;
    let local = m.local();
    if local.len() > MAX_MEMBER_LOCAL {
        return Err(MemberError::TooLong);
    }
    if local.contains('"') || local.contains('\\') {
        return Err(MemberError::Quoted);
    }
    if local.contains('%') || local.contains('!') {
        return Err(MemberError::Routed);
    }
    let domain = m.domain();
    if domain.starts_with('[') || !domain.contains('.') {
        return Err(MemberError::Domain);
    }
    Ok(Member {
        local: local.to_string(),
        domain: domain.to_string(),
    })
}

/// Reads `local=domain` back (split at the last `=`), checked as [`member`].
pub fn decode(s: &str) -> Result<Member, MemberError> {
    let (local, domain) = s.rsplit_once('=').ok_or(MemberError::Syntax)?;
    if local.is_empty() {
        return Err(MemberError::Syntax);
    }
    if local.len() > MAX_MEMBER_LOCAL {
        return Err(MemberError::TooLong);
    }
    member(&format!("{local}@{domain}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_equals_and_plus_in_the_local_part() {
        for a in [
            "alice@example.org",
            "a=b@example.org",
            "user+tag@example.org",
            "x=y+z=w@mail.example.org",
            "first.last-1@sub.example.co.uk",
        ] {
            let m = member(a).unwrap();
            assert_eq!(decode(&m.encode()).unwrap(), m, "{a}");
        }
        assert_eq!(
            member("user+tag@example.org").unwrap().encode(),
            "user+tag=example.org"
        );
    }

    #[test]
    fn domains_are_lower_cased_local_parts_kept() {
        let m = member("Bob.Smith@Example.ORG").unwrap();
        assert_eq!(m.to_string(), "Bob.Smith@example.org");
        assert_eq!(m.folded(), "bob.smith@example.org");
        assert_eq!(decode("Bob.Smith=EXAMPLE.org").unwrap(), m);
    }

    #[test]
    fn tricky_addresses_are_refused_with_a_reason() {
        assert_eq!(member("\"john doe\"@example.org"), Err(MemberError::Quoted));
        assert_eq!(
            member("user%other.org@example.org"),
            Err(MemberError::Routed)
        );
        assert_eq!(member("host!user@example.org"), Err(MemberError::Routed));
        assert_eq!(member("user@[192.0.2.1]"), Err(MemberError::Domain));
        assert_eq!(member("user@localhost"), Err(MemberError::Domain));
        assert_eq!(member("用户@例子.中国"), Err(MemberError::Domain));
        assert_eq!(member("no-at-sign"), Err(MemberError::Syntax));
        assert_eq!(member("a@b@example.org"), Err(MemberError::Syntax));
        assert_eq!(decode("no-equals"), Err(MemberError::Syntax));
        assert_eq!(decode("=example.org"), Err(MemberError::Syntax));
        assert_eq!(decode("user="), Err(MemberError::Syntax));
        let long = format!("{}@example.org", "x".repeat(MAX_MEMBER_LOCAL + 1));
        assert_eq!(member(&long), Err(MemberError::TooLong));
        let sixty = format!("{}@example.org", "x".repeat(60));
        assert_eq!(
            decode(&member(&sixty).unwrap().encode())
                .unwrap()
                .to_string(),
            sixty
        );
    }
}
