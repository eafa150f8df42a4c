//! Who may do what: the one place every request is authorised.
//!
//! Three roles. A system administrator (`admind.admins`) may do everything.
//! A domain postmaster (in the domain record, `kmpctl domain admin add`)
//! may do everything within their domains except change the domain's
//! limits, and nothing outside them. A list owner (in the list's record) may
//! see their lists. Any other user who logs in may see themselves. Roles are looked up afresh on every request, so a postmaster
//! taken off a domain loses it at once, even mid-session.
//!
//! The domain a request touches is the normalised A-label form the request
//! layer ([`super::api`]) made of it, so case, a trailing dot, a Unicode
//! look-alike or a `%`-escape cannot name one domain and reach another.

use serde::Serialize;

use super::api::{ApiError, Call};
use crate::userdb::limits::is_admin;
use crate::userdb::lmdb::Lmdb;
use crate::userdb::{Address, DbError};

/// The caller, with the roles they hold now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caller {
    pub user: String,
    /// A system administrator.
    pub admin: bool,
    /// The domains they are a postmaster of.
    pub domains: Vec<String>,
    /// The mailing lists they own.
    pub lists: Vec<String>,
    #[serde(skip)]
    key: Vec<u8>,
}

impl Caller {
    /// The roles of `user`: `admins` from the configuration, postmasters
    /// from the domain records.
    pub fn of(db: &Lmdb, admins: &[String], user: &Address) -> Result<Caller, DbError> {
        let key = user.key();
        let admin = admins
            .iter()
            .any(|a| Address::parse(a).is_ok_and(|a| a.key() == key));
        let domains = db
            .domains()?
            .into_iter()
            .filter(|d| is_admin(d, user))
            .map(|d| d.name)
            .collect();
        let lists = db
            .lists(None)?
            .into_iter()
            .filter(|l| {
                l.owners
                    .iter()
                    .any(|o| Address::parse(o).is_ok_and(|o| o.key() == key))
            })
            .map(|l| l.address)
            .collect();
        Ok(Caller {
            user: user.to_string(),
            admin,
            domains,
            lists,
            key,
        })
    }

    /// The role's name for logs and whoami.
    pub fn role(&self) -> &'static str {
        if self.admin {
            "admin"
        } else if !self.domains.is_empty() {
            "postmaster"
        } else if !self.lists.is_empty() {
            "list owner"
        } else {
            "user"
        }
    }

    /// Whether the caller may administer `domain` (normalised).
    pub fn may_administer(&self, domain: &str) -> bool {
        self.admin || self.domains.iter().any(|d| d == domain)
    }

    fn is(&self, a: &Address) -> bool {
        a.key() == self.key
    }
}

/// Whether `c` may make `call`: Ok, or 403 with the reason.
pub fn authorize(c: &Caller, call: &Call) -> Result<(), ApiError> {
    let domain = |d: &str| {
        if c.may_administer(d) {
            Ok(())
        } else {
            Err(ApiError::new(
                403,
                format!("{} may not administer domain {d}", c.user),
            ))
        }
    };
    match call {
        Call::Login(_) | Call::Logout | Call::Whoami | Call::Domains => Ok(()),
        Call::DomainSet(d, _) => {
            if c.admin {
                Ok(())
            } else {
                Err(ApiError::new(
                    403,
                    format!("only a system administrator may change the limits of {d}"),
                ))
            }
        }
        Call::Domain(d)
        | Call::DomainUsage(d)
        | Call::Users(d)
        | Call::Aliases(d)
        | Call::Lists(d)
        | Call::Announce { domain: d, .. } => domain(d),
        Call::List(a)
            if c.lists
                .iter()
                .any(|l| Address::parse(l).is_ok_and(|l| l.key() == a.key())) =>
        {
            Ok(())
        }
        Call::List(a) => domain(a.domain()),
        Call::User(a) | Call::UserUsage(a) if c.is(a) => Ok(()),
        Call::User(a)
        | Call::UserUsage(a)
        | Call::UserAdd { address: a, .. }
        | Call::UserSet { address: a, .. }
        | Call::UserDel { address: a, .. } => domain(a.domain()),
        Call::AliasAdd { alias, .. } | Call::AliasDel { alias, .. } => domain(alias.domain()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::api::{parse, Method};
    use super::*;

    fn caller(user: &str, admin: bool, domains: &[&str]) -> Caller {
        let a = Address::parse(user).unwrap();
        Caller {
            user: a.to_string(),
            admin,
            domains: domains.iter().map(|d| d.to_string()).collect(),
            lists: vec!["news@b.example".into()],
            key: a.key(),
        }
    }

    fn may(c: &Caller, m: Method, t: &str, b: &str) -> bool {
        authorize(c, &parse(m, t, b.as_bytes()).unwrap()).is_ok()
    }

    #[test]
    fn a_postmaster_stays_in_their_domain() {
        use Method::*;
        let pm = caller("pm@a.example", false, &["a.example"]);
        assert!(may(&pm, Get, "/v1/domains/a.example/users", ""));
        assert!(may(&pm, Get, "/v1/domains/A.EXAMPLE./users", ""));
        assert!(!may(&pm, Get, "/v1/domains/b.example/users", ""));
        assert!(!may(&pm, Get, "/v1/users/x@B.Example.", ""));
        assert!(!may(&pm, Get, "/v1/domains/%D0%B0.example", ""));
        assert!(!may(
            &pm,
            Patch,
            "/v1/domains/a.example",
            r#"{"max_users":9}"#
        ));
        assert!(!may(&pm, Delete, "/v1/aliases/@b.example", ""));
        assert!(may(&pm, Delete, "/v1/aliases/@a.example", ""));
        let note = r#"{"subject":"s","text":"t"}"#;
        assert!(may(&pm, Post, "/v1/domains/a.example/announcements", note));
        assert!(!may(&pm, Post, "/v1/domains/b.example/announcements", note));
        assert!(!may(
            &pm,
            Post,
            "/v1/users",
            r#"{"address":"x@b.example","password":"p"}"#
        ));
        let admin = caller("root@z.example", true, &[]);
        assert!(may(
            &admin,
            Patch,
            "/v1/domains/b.example",
            r#"{"max_users":9}"#
        ));
        // A list owner sees their list, and no other, nor its domain.
        assert!(may(&pm, Get, "/v1/lists/NEWS@b.example", ""));
        assert!(!may(&pm, Get, "/v1/lists/other@b.example", ""));
        assert!(!may(&pm, Get, "/v1/domains/b.example/lists", ""));
        let user = caller("u@a.example", false, &[]);
        assert!(may(&user, Get, "/v1/users/U@a.example", ""));
        assert!(!may(&user, Get, "/v1/users/v@a.example", ""));
        assert!(!may(&user, Get, "/v1/domains/a.example", ""));
        assert!(!may(
            &user,
            Patch,
            "/v1/users/u@a.example",
            r#"{"quota_bytes":1}"#
        ));
    }
}
