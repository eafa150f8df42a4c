//! Who may do what: the one place every request is authorised.
//!
//! Three roles. A system administrator (`admind.admins`) may do everything.
//! A domain postmaster (in the domain record, `kmpctl domain admin add`)
//! may do everything within their domains except change the domain's
//! limits, and nothing outside them. A list owner (in the list's record) may
//! change their lists' settings (not the owners), members and held posts; a
//! list moderator may see the list and approve or reject its held posts. A
//! user may create a list in their own domain when the domain allows it
//! (`user_lists`), and becomes its owner. Any other user who logs in may see
//! themselves. Roles are looked up afresh on every request, so a postmaster
//! taken off a domain loses it at once, even mid-session.
//!
//! The domain a request touches is the normalised A-label form the request
//! layer ([`super::api`]) made of it, so case, a trailing dot, a Unicode
//! look-alike or a `%`-escape cannot name one domain and reach another.

use serde::Serialize;

use super::api::{ApiError, Call};
use crate::userdb::limits::is_admin;
use crate::userdb::lmdb::Lmdb;
use crate::userdb::{Address, DbError, Directory};

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
    /// The mailing lists they moderate.
    pub moderates: Vec<String>,
    /// Their domain lets its users create lists.
    pub create_lists: bool,
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
        let names = |set: &[String]| {
            set.iter()
                .any(|o| Address::parse(o).is_ok_and(|o| o.key() == key))
        };
        let (mut lists, mut moderates) = (Vec::new(), Vec::new());
        for l in db.lists(None)? {
            if names(&l.owners) {
                lists.push(l.address);
            } else if names(&l.moderators) {
                moderates.push(l.address);
            }
        }
        let create_lists = db
            .domain(user.domain())?
            .is_some_and(|d| d.limits.user_lists);
        Ok(Caller {
            user: user.to_string(),
            admin,
            domains,
            lists,
            moderates,
            create_lists,
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

    /// Whether the caller owns the list `a`.
    pub fn owns(&self, a: &Address) -> bool {
        in_set(&self.lists, a)
    }

    /// Whether the caller moderates the list `a` (and does not own it).
    pub fn moderates(&self, a: &Address) -> bool {
        in_set(&self.moderates, a)
    }
}

fn in_set(set: &[String], a: &Address) -> bool {
    set.iter()
        .any(|l| Address::parse(l).is_ok_and(|l| l.key() == a.key()))
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
        // Without a login: the server answers them before any session.
        Call::SignupDomains | Call::Signup(..) => Ok(()),
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
        | Call::Held(a)
        | Call::HeldShow { list: a, .. }
        | Call::HeldApprove { list: a, .. }
        | Call::HeldReject { list: a, .. }
            if c.owns(a) || c.moderates(a) =>
        {
            Ok(())
        }
        Call::ListSet { address: a, patch } if c.owns(a) && patch.owners.is_none() => Ok(()),
        Call::Members { list: a, .. }
        | Call::MembersAdd { list: a, .. }
        | Call::MemberSet { list: a, .. }
        | Call::MemberDel { list: a, .. }
            if c.owns(a) =>
        {
            Ok(())
        }
        // A user's own list, where the domain allows it: they own it.
        Call::ListAdd {
            address: a, owners, ..
        } if !c.may_administer(a.domain())
            && c.create_lists
            && Address::parse(&c.user).is_ok_and(|u| u.domain() == a.domain())
            && owners
                .as_deref()
                .is_none_or(|o| o.len() == 1 && c.is(&o[0])) =>
        {
            Ok(())
        }
        Call::List(a)
        | Call::ListAdd { address: a, .. }
        | Call::ListSet { address: a, .. }
        | Call::ListDel(a)
        | Call::Members { list: a, .. }
        | Call::MembersAdd { list: a, .. }
        | Call::MemberSet { list: a, .. }
        | Call::MemberDel { list: a, .. }
        | Call::Held(a)
        | Call::HeldShow { list: a, .. }
        | Call::HeldApprove { list: a, .. }
        | Call::HeldReject { list: a, .. } => domain(a.domain()),
        Call::User(a) | Call::UserUsage(a) if c.is(a) => Ok(()),
        Call::User(a)
        | Call::UserUsage(a)
        | Call::UserAdd { address: a, .. }
        | Call::UserSet { address: a, .. }
        | Call::UserDel { address: a, .. } => domain(a.domain()),
        Call::AliasAdd { alias, .. } | Call::AliasDel { alias, .. } => domain(alias.domain()),
        // A user's own fetch accounts, or those of a domain they administer.
        Call::Fetch(f) if c.is(f.owner()) => Ok(()),
        Call::Fetch(f) => domain(f.owner().domain()),
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
            moderates: vec!["mod@b.example".into()],
            create_lists: false,
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
        // The owner changes settings (not owners), members, held posts;
        // the moderator only sees the list and moderates.
        assert!(may(
            &pm,
            Patch,
            "/v1/lists/news@b.example",
            r#"{"footer":"x"}"#
        ));
        assert!(!may(
            &pm,
            Patch,
            "/v1/lists/news@b.example",
            r#"{"owners":["pm@a.example","x@b.example"]}"#
        ));
        assert!(may(
            &pm,
            Post,
            "/v1/lists/news@b.example/members",
            r#"{"addresses":["x@y.example"]}"#
        ));
        assert!(!may(
            &pm,
            Post,
            "/v1/lists/other@b.example/members",
            r#"{"addresses":["x@y.example"]}"#
        ));
        assert!(!may(&pm, Delete, "/v1/lists/news@b.example", ""));
        assert!(may(
            &pm,
            Post,
            "/v1/lists/mod@b.example/held/Q1.x/approve",
            ""
        ));
        assert!(may(&pm, Get, "/v1/lists/mod@b.example/held", ""));
        assert!(!may(&pm, Get, "/v1/lists/mod@b.example/members", ""));
        assert!(!may(
            &pm,
            Patch,
            "/v1/lists/mod@b.example",
            r#"{"footer":"x"}"#
        ));
        // A postmaster creates and deletes lists in their domain only.
        assert!(may(&pm, Post, "/v1/lists", r#"{"address":"l@a.example"}"#));
        assert!(may(&pm, Delete, "/v1/lists/l@a.example", ""));
        assert!(!may(&pm, Post, "/v1/lists", r#"{"address":"l@b.example"}"#));
        assert!(!may(&pm, Get, "/v1/lists/l@b.example/held", ""));
        let mut user = caller("u@a.example", false, &[]);
        assert!(!may(
            &user,
            Post,
            "/v1/lists",
            r#"{"address":"l@a.example"}"#
        ));
        user.create_lists = true;
        assert!(may(
            &user,
            Post,
            "/v1/lists",
            r#"{"address":"l@a.example"}"#
        ));
        assert!(may(
            &user,
            Post,
            "/v1/lists",
            r#"{"address":"l@a.example","owners":["U@a.example"]}"#
        ));
        assert!(!may(
            &user,
            Post,
            "/v1/lists",
            r#"{"address":"l@a.example","owners":["v@a.example"]}"#
        ));
        assert!(!may(
            &user,
            Post,
            "/v1/lists",
            r#"{"address":"l@b.example"}"#
        ));
        assert!(!may(&user, Delete, "/v1/lists/l@a.example", ""));
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
