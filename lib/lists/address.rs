//! The addresses of a list: the one place that parses them.
//!
//! A list `news@example.test` answers at `news@` (posts) and at
//! `news-SUFFIX@` for the fixed roles (`owner`, `request`, `subscribe`,
//! `unsubscribe`, `help`) and `news-KIND-ARGUMENT@` for the roles that
//! carry data: `bounce-MEMBER=DOMAIN` (VERP, RFC-less but as ezmlm and
//! Mailman do), and the cookies of `confirm-`, `approve-` and `reject-`.
//! List names may hold hyphens themselves, so a local part can be read more
//! than one way: [`forms`] gives every reading, the most specific list name
//! last, and the directory tries them in order.
//!
//! Also here: the check of a member's address ([`check_member`]), which
//! refuses the forms that route mail somewhere else than they seem to.

use serde::{Deserialize, Serialize};

use crate::userdb::Address;

/// What an address of a list is for. The delivery side dispatches on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", content = "arg", rename_all = "snake_case")]
pub enum Role {
    /// `list@`: a post.
    Post,
    /// `list-owner@`: to the owners.
    Owner,
    /// `list-request@`: commands by mail.
    Request,
    Subscribe,
    Unsubscribe,
    Help,
    /// `list-bounce-MEMBER=DOMAIN@`: a bounce naming the member.
    Bounce(String),
    /// `list-confirm-COOKIE@`: a subscriber's confirmation.
    Confirm(String),
    /// `list-approve-COOKIE@`: a moderator's approval of a held post.
    Approve(String),
    /// `list-reject-COOKIE@`: a moderator's rejection.
    Reject(String),
    /// `list-subscribe-USER=HOST@` (ezmlm's form): a subscription asked
    /// for another address; the confirmation goes to that address.
    SubscribeAddress(String),
    /// `list-unsubscribe-USER=HOST@`: the same for leaving.
    UnsubscribeAddress(String),
    /// `list-digest-N@`: issue N of the digest is ready in the list's state
    /// (`super::issue`); the mail itself carries nothing.
    Digest(String),
}

/// Roles with a fixed suffix.
pub const FIXED: &[(&str, Role)] = &[
    ("owner", Role::Owner),
    ("request", Role::Request),
    ("subscribe", Role::Subscribe),
    ("unsubscribe", Role::Unsubscribe),
    ("help", Role::Help),
];

/// Roles with an argument after their keyword.
const WITH_ARG: &[&str] = &[
    "bounce",
    "confirm",
    "approve",
    "reject",
    "subscribe",
    "unsubscribe",
    "digest",
];

impl Role {
    /// The role's suffix keyword; empty for a post.
    pub fn keyword(&self) -> &'static str {
        match self {
            Role::Post => "",
            Role::Owner => "owner",
            Role::Request => "request",
            Role::Subscribe => "subscribe",
            Role::Unsubscribe => "unsubscribe",
            Role::Help => "help",
            Role::Bounce(_) => "bounce",
            Role::Confirm(_) => "confirm",
            Role::Approve(_) => "approve",
            Role::Reject(_) => "reject",
            Role::SubscribeAddress(_) => "subscribe",
            Role::UnsubscribeAddress(_) => "unsubscribe",
            Role::Digest(_) => "digest",
        }
    }

    fn with_arg(keyword: &str, arg: String) -> Role {
        match keyword {
            "bounce" => Role::Bounce(arg),
            "confirm" => Role::Confirm(arg),
            "approve" => Role::Approve(arg),
            "subscribe" => Role::SubscribeAddress(arg),
            "unsubscribe" => Role::UnsubscribeAddress(arg),
            "digest" => Role::Digest(arg),
            _ => Role::Reject(arg),
        }
    }
}

/// The local part of a list's role address: `local`, `local-owner`,
/// `local-bounce-ARG`.
pub fn local_of(list_local: &str, role: &Role) -> String {
    match role {
        Role::Post => list_local.to_string(),
        Role::Bounce(a)
        | Role::Confirm(a)
        | Role::Approve(a)
        | Role::Reject(a)
        | Role::SubscribeAddress(a)
        | Role::UnsubscribeAddress(a)
        | Role::Digest(a) => {
            format!("{list_local}-{}-{a}", role.keyword())
        }
        r => format!("{list_local}-{}", r.keyword()),
    }
}

/// Every way `local` can name a list's role, other than the post address
/// itself: `(list local part, role)`. The keywords match without regard to
/// case; arguments keep theirs.
pub fn forms(local: &str) -> Vec<(String, Role)> {
    let lower = local.to_ascii_lowercase();
    let mut out = Vec::new();
    for (kw, role) in FIXED {
        if let Some(base) = lower.strip_suffix(kw).and_then(|b| b.strip_suffix('-')) {
            if !base.is_empty() {
                out.push((local[..base.len()].to_string(), role.clone()));
            }
        }
    }
    for kw in WITH_ARG {
        let pat = format!("-{kw}-");
        for (i, _) in lower.match_indices(&pat) {
            let arg = &local[i + pat.len()..];
            if i > 0 && !arg.is_empty() {
                out.push((local[..i].to_string(), Role::with_arg(kw, arg.to_string())));
            }
        }
    }
    out
}

/// The VERP argument for a member: `user=domain` (`list-bounce-user=domain@`).
pub fn verp_arg(member: &str) -> String {
    match member.rsplit_once('@') {
        Some((l, d)) => format!("{l}={d}"),
        None => member.to_string(),
    }
}

/// The member a VERP argument names: `user=domain` back to `user@domain`.
pub fn verp_member(arg: &str) -> Option<String> {
    let (l, d) = arg.rsplit_once('=')?;
    (!l.is_empty() && !d.is_empty()).then(|| format!("{l}@{d}"))
}

/// Checks an address to subscribe: an ordinary `local@domain` that routes
/// where it says. Refused, each with its reason: quoted local parts,
/// `%`-hacks and `!` paths (which relay through the named host), source
/// routes (`@a,@b:u@d`), and anything the user database would refuse.
pub fn check_member(s: &str) -> Result<Address, String> {
    let s = s.trim();
    if s.starts_with('@') || s.contains(':') {
        return Err(format!(
            "{s:?} is a source route (RFC 5321 section 4.1.2 obsoletes them); give the plain address"
        ));
    }
    if s.contains('"') {
        return Err(format!(
            "{s:?} has a quoted local part; lists take plain addresses only"
        ));
    }
    let local = s.rsplit_once('@').map(|(l, _)| l).unwrap_or(s);
    if local.contains('%') {
        return Err(format!(
            "{s:?} has a %-hack (relaying through another host); refused"
        ));
    }
    if local.contains('!') {
        return Err(format!("{s:?} is a UUCP bang path; refused"));
    }
    let a = Address::parse(s).map_err(|e| e.to_string())?;
    if !a.domain().contains('.') {
        return Err(format!("{s:?} has no fully qualified domain"));
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reading_of_a_local_part_is_offered() {
        assert_eq!(forms("news-owner"), [("news".into(), Role::Owner)]);
        assert_eq!(
            forms("Dev-Team-Unsubscribe"),
            [("Dev-Team".into(), Role::Unsubscribe)]
        );
        assert!(forms("news").is_empty());
        assert!(forms("-owner").is_empty());
        assert_eq!(
            forms("news-bounce-Bob=Example.org"),
            [("news".into(), Role::Bounce("Bob=Example.org".into()))]
        );
        // A list with a keyword in its name: both readings, in order.
        assert_eq!(
            forms("a-bounce-b-bounce-c=d"),
            [
                ("a".into(), Role::Bounce("b-bounce-c=d".into())),
                ("a-bounce-b".into(), Role::Bounce("c=d".into())),
            ]
        );
        assert_eq!(
            forms("l-confirm-XyZ"),
            [("l".into(), Role::Confirm("XyZ".into()))]
        );
        assert!(forms("l-approve-").is_empty());
        // ezmlm's subscription of another address.
        assert_eq!(
            forms("dev-subscribe-carol=far.test"),
            [(
                "dev".into(),
                Role::SubscribeAddress("carol=far.test".into())
            )]
        );
        assert_eq!(
            forms("dev-unsubscribe-carol=far.test"),
            [(
                "dev".into(),
                Role::UnsubscribeAddress("carol=far.test".into())
            )]
        );
        for r in [
            Role::Owner,
            Role::Help,
            Role::Reject("k1".into()),
            Role::Approve("k".into()),
            Role::SubscribeAddress("a=b.test".into()),
            Role::UnsubscribeAddress("a=b.test".into()),
            Role::Digest("7".into()),
        ] {
            let l = local_of("my-list", &r);
            assert!(forms(&l).contains(&("my-list".into(), r.clone())), "{l}");
        }
        assert_eq!(verp_arg("bob@example.org"), "bob=example.org");
        assert_eq!(
            verp_member("bob=example.org").as_deref(),
            Some("bob@example.org")
        );
        assert_eq!(verp_member("=x"), None);
    }

    #[test]
    fn tricky_member_addresses_are_refused_with_a_reason() {
        for (bad, why) in [
            ("\"a b\"@example.org", "quoted"),
            ("a%b@example.org", "%-hack"),
            ("host!user@example.org", "bang"),
            ("@relay.test:user@example.org", "source route"),
            ("user@localhost", "fully qualified"),
            ("nodomain", "no @domain"),
        ] {
            let e = check_member(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert_eq!(
            check_member(" Bob@Example.ORG ").unwrap().to_string(),
            "Bob@example.org"
        );
    }
}
