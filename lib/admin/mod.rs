//! The administrative verbs both `kmpctl` (on the host) and `kmp-admind`
//! (over HTTPS) perform, written once so that their checks cannot differ.
//!
//! The database itself enforces what must hold for every writer (names
//! unique, the domain's limits: [`crate::userdb::limits`]); this layer adds
//! what a verb means (a new user takes its domain's default quota, a user
//! may not forward to itself without keeping a copy, a postmaster is an
//! address) and the one description of a domain and a user that both print.

pub mod client;
pub mod signup;

use serde::{Deserialize, Deserializer, Serialize};

use crate::userdb::address::domain_unicode;
use crate::userdb::limits::{Access, Limits, Usage};
use crate::userdb::lmdb::Lmdb;
use crate::userdb::{Address, DbError, Directory, Domain, User};

/// What is asked of a new user.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// The crypt hash; None: the user cannot log in (mail only).
    pub hash: Option<String>,
    /// Quota in bytes; None: the domain's default.
    pub quota_bytes: Option<u64>,
    /// Quota in messages; None: the domain's default.
    pub quota_messages: Option<u64>,
    /// The Maildir, instead of `paths.mail/DOMAIN/LOCAL`.
    pub mail_path: Option<String>,
}

/// The user record a new user gets: the domain's default quotas unless
/// others are asked. Fails when there is no such domain.
pub fn new_user(db: &Lmdb, addr: &Address, n: NewUser) -> Result<User, DbError> {
    let dom = db.domain(addr.domain())?.ok_or_else(|| {
        DbError::NotFound(format!(
            "no domain {} (add it first: kmpctl domain add {})",
            addr.domain(),
            addr.domain()
        ))
    })?;
    let mut u = User::new(addr, crate::userdb::now());
    u.password = n.hash.unwrap_or_default();
    u.quota_bytes = n.quota_bytes.unwrap_or(dom.quota_bytes);
    u.quota_messages = n.quota_messages.unwrap_or(dom.quota_messages);
    u.mail_path = n.mail_path.unwrap_or_default();
    Ok(u)
}

/// Sets (or, with no targets, clears) a user's forwards.
pub fn set_forwards(
    db: &Lmdb,
    addr: &Address,
    targets: &[Address],
    keep_copy: bool,
) -> Result<User, DbError> {
    if !keep_copy && targets.iter().any(|t| t.key() == addr.key()) {
        return Err(DbError::Invalid(
            "forwarding a user to itself: use --keep-copy instead".into(),
        ));
    }
    let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
    db.update_user(addr, move |u| {
        u.forwards = targets;
        u.keep_copy = keep_copy && !u.forwards.is_empty();
        Ok(())
    })
}

/// Makes `who` a postmaster of `domain` (again is no error).
pub fn admin_add(db: &Lmdb, domain: &str, who: &Address) -> Result<Domain, DbError> {
    db.update_domain(domain, |d| {
        if !crate::userdb::limits::is_admin(d, who) {
            d.admins.push(who.to_string());
        }
        Ok(())
    })
}

/// Takes `who` off the postmasters of `domain`.
pub fn admin_del(db: &Lmdb, domain: &str, who: &Address) -> Result<Domain, DbError> {
    db.update_domain(domain, |d| {
        let key = who.key();
        let before = d.admins.len();
        d.admins
            .retain(|a| Address::parse(a).map(|a| a.key() != key).unwrap_or(true));
        if d.admins.len() == before {
            return Err(DbError::NotFound(format!(
                "{who} is not a postmaster of {}",
                d.name
            )));
        }
        Ok(())
    })
}

/// A change of a domain's defaults and limits: what is given changes, `null`
/// (or `none` on the command line) removes a limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_messages: Option<u64>,
    #[serde(
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_users: Option<Option<u64>>,
    #[serde(
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_aliases: Option<Option<u64>>,
    #[serde(
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_lists: Option<Option<u64>>,
    #[serde(
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_forwards: Option<Option<u64>>,
    #[serde(
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_quota_bytes: Option<Option<u64>>,
    #[serde(
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_user_quota_bytes: Option<Option<u64>>,
    #[serde(
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_message_bytes: Option<Option<u64>>,
    #[serde(
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_fetch_accounts: Option<Option<u64>>,
    /// Whether people may sign up themselves: off, open or approve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signup: Option<crate::userdb::limits::Signup>,
    /// The services the domain's users may use (all others are refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<Access>>,
    /// Whether the domain's users may create mailing lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_lists: Option<bool>,
}

/// A field that is present, possibly `null`.
fn some<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(d).map(Some)
}

impl DomainPatch {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == DomainPatch::default()
    }

    /// Applies the change to a domain record.
    pub fn apply(&self, d: &mut Domain) {
        if let Some(q) = self.quota_bytes {
            d.quota_bytes = q;
        }
        if let Some(q) = self.quota_messages {
            d.quota_messages = q;
        }
        let l = &mut d.limits;
        for (field, value) in [
            (&mut l.max_users, self.max_users),
            (&mut l.max_aliases, self.max_aliases),
            (&mut l.max_lists, self.max_lists),
            (&mut l.max_forwards, self.max_forwards),
            (&mut l.max_quota_bytes, self.max_quota_bytes),
            (&mut l.max_user_quota_bytes, self.max_user_quota_bytes),
            (&mut l.max_message_bytes, self.max_message_bytes),
            (&mut l.max_fetch_accounts, self.max_fetch_accounts),
        ] {
            if let Some(v) = value {
                *field = v;
            }
        }
        if let Some(s) = self.signup {
            l.signup = s;
        }
        if let Some(u) = self.user_lists {
            l.user_lists = u;
        }
        if let Some(allowed) = &self.services {
            l.denied = Access::ALL
                .into_iter()
                .filter(|a| !allowed.contains(a))
                .collect();
        }
    }
}

/// Applies a patch to a domain (the system administrator's verb).
pub fn domain_set(db: &Lmdb, domain: &str, p: &DomainPatch) -> Result<Domain, DbError> {
    if p.is_empty() {
        return Err(DbError::Invalid("nothing to change".into()));
    }
    db.update_domain(domain, |d| {
        p.apply(d);
        Ok(())
    })
}

/// A domain as `kmpctl domain show --json` and the API show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DomainView {
    pub domain: String,
    pub unicode: String,
    pub users: u64,
    pub aliases: u64,
    pub quota_bytes: u64,
    pub quota_messages: u64,
    pub created: String,
    pub admins: Vec<String>,
    pub limits: Limits,
    pub services: Vec<String>,
    pub usage: Usage,
}

/// The description of a domain, with its usage.
pub fn domain_view(db: &Lmdb, name: &str) -> Result<DomainView, DbError> {
    let name = crate::userdb::address::normalize_domain(name)?;
    let d = db
        .domain(&name)?
        .ok_or_else(|| DbError::NotFound(format!("no domain {name}")))?;
    let usage = db.usage(&name)?;
    Ok(DomainView {
        unicode: domain_unicode(&d.name),
        users: usage.users,
        aliases: usage.aliases,
        quota_bytes: d.quota_bytes,
        quota_messages: d.quota_messages,
        created: crate::ctl::db::iso_time(d.created),
        admins: d.admins.clone(),
        services: d
            .limits
            .allowed_names()
            .into_iter()
            .map(String::from)
            .collect(),
        limits: d.limits,
        usage,
        domain: d.name,
    })
}

/// A limit for the text form: the number, or `none`.
pub fn limit_text(l: Option<u64>, size: bool) -> String {
    match l {
        None => "none".into(),
        Some(0) if size => "0".into(),
        Some(n) if size => crate::ctl::db::size_text(n),
        Some(n) => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_sets_clears_and_refuses_unknown_fields() {
        let p: DomainPatch =
            serde_json::from_str(r#"{"max_users":5,"max_aliases":null,"services":["imap"]}"#)
                .unwrap();
        assert_eq!(p.max_users, Some(Some(5)));
        assert_eq!(p.max_aliases, Some(None));
        assert_eq!(p.max_forwards, None);
        let mut d = Domain {
            name: "a.test".into(),
            created: 0,
            quota_bytes: 0,
            quota_messages: 0,
            spam: Default::default(),
            admins: vec![],
            limits: Limits {
                max_aliases: Some(3),
                ..Limits::default()
            },
        };
        p.apply(&mut d);
        assert_eq!(d.limits.max_users, Some(5));
        assert_eq!(d.limits.max_aliases, None);
        assert!(d.limits.allows(Access::Imap));
        assert!(!d.limits.allows(Access::Pop3));
        assert!(serde_json::from_str::<DomainPatch>(r#"{"max_user":5}"#).is_err());
        assert!(serde_json::from_str::<DomainPatch>(r#"{"max_users":"5"}"#).is_err());
        assert!(serde_json::from_str::<DomainPatch>(r#"{"max_users":-1}"#).is_err());
        assert!(serde_json::from_str::<DomainPatch>(r#"{"services":["gopher"]}"#).is_err());
    }
}
