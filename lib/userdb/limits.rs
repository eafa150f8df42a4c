//! Per-domain limits (vpopmail's vlimits) and the domain's postmasters.
//!
//! A domain record carries its [`Limits`]: how many users, aliases, lists and
//! forwarding users it may have, the total and per-user quota, the message
//! size ceiling, and which services its users may log in to. They are
//! checked where the database is written ([`super::lmdb::Lmdb`]), so kmpctl
//! and kmp-admind cannot differ, and the services by kmp-authd at login.
//!
//! A limit that is `None` is no limit. The domain's postmasters (`admins`)
//! are addresses, compared by their database key (the local part without
//! regard to case, the domain in A-label form).

use serde::{Deserialize, Serialize};

use super::{Address, DbError, Domain, User};

/// A service a domain's users may be refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Pop3,
    Imap,
    Webmail,
    /// SMTP AUTH (submission and port 25 alike).
    Smtp,
    /// The fetch agent.
    Fetch,
    /// ManageSieve.
    Managesieve,
}

impl Access {
    /// Every service, in the order they are shown.
    pub const ALL: [Access; 6] = [
        Access::Pop3,
        Access::Imap,
        Access::Webmail,
        Access::Smtp,
        Access::Fetch,
        Access::Managesieve,
    ];

    /// Its name on the command line, in JSON and in the database.
    pub fn name(self) -> &'static str {
        match self {
            Access::Pop3 => "pop3",
            Access::Imap => "imap",
            Access::Webmail => "webmail",
            Access::Smtp => "smtp",
            Access::Fetch => "fetch",
            Access::Managesieve => "managesieve",
        }
    }

    /// Parses a name (case-insensitive; `sieve` and `smtp-auth` also).
    pub fn parse(s: &str) -> Result<Access, DbError> {
        let l = s.trim().to_ascii_lowercase();
        Access::ALL
            .into_iter()
            .find(|a| a.name() == l)
            .or(match l.as_str() {
                "sieve" => Some(Access::Managesieve),
                "smtp-auth" | "smtpauth" | "submission" => Some(Access::Smtp),
                _ => None,
            })
            .ok_or_else(|| {
                DbError::Invalid(format!(
                    "{s:?} is not a service (pop3, imap, webmail, smtp, fetch, managesieve)"
                ))
            })
    }

    /// The service a login through kmp-authd counts as, if any is limited.
    pub fn of_login(s: crate::ipc::authd::Service) -> Option<Access> {
        use crate::ipc::authd::Service;
        match s {
            Service::Smtp | Service::Submission => Some(Access::Smtp),
            Service::Pop3 => Some(Access::Pop3),
            Service::Imap => Some(Access::Imap),
            Service::Webmail => Some(Access::Webmail),
            Service::Sieve => Some(Access::Managesieve),
            Service::Admin => None,
        }
    }
}

/// A domain's limits. `None`: no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_users: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_aliases: Option<u64>,
    /// Mailing lists (enforced where lists are created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lists: Option<u64>,
    /// Users of the domain who forward their mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_forwards: Option<u64>,
    /// The sum of the users' quotas, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_quota_bytes: Option<u64>,
    /// The largest quota one user may have, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_user_quota_bytes: Option<u64>,
    /// The largest message the domain's users receive, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_message_bytes: Option<u64>,
    /// Services the domain's users may not use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied: Vec<Access>,
    /// Fetch accounts of all the domain's users together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_fetch_accounts: Option<u64>,
    /// Whether people may sign up for an account themselves.
    #[serde(default, skip_serializing_if = "Signup::is_off")]
    pub signup: Signup,
    /// The domain's users may create mailing lists of their own (through
    /// kmp-admind; within `max_lists`). Off by default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user_lists: bool,
}

/// A domain's sign-up policy (off unless the administrator opens it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signup {
    /// Nobody signs up.
    #[default]
    Off,
    /// A new account is active at once.
    Open,
    /// A new account is disabled until a postmaster enables it.
    Approve,
}

impl Signup {
    pub fn is_off(&self) -> bool {
        *self == Signup::Off
    }

    pub fn name(self) -> &'static str {
        match self {
            Signup::Off => "off",
            Signup::Open => "open",
            Signup::Approve => "approve",
        }
    }

    /// `off`, `open` or `approve`.
    pub fn parse(s: &str) -> Result<Signup, DbError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(Signup::Off),
            "open" => Ok(Signup::Open),
            "approve" => Ok(Signup::Approve),
            _ => Err(DbError::Invalid(format!(
                "{s:?} is not a sign-up policy (off, open, approve)"
            ))),
        }
    }
}

impl Limits {
    /// Whether nothing is limited.
    pub fn is_none(&self) -> bool {
        *self == Limits::default()
    }

    /// Whether the domain's users may use `a`.
    pub fn allows(&self, a: Access) -> bool {
        !self.denied.contains(&a)
    }

    /// The services allowed, by name.
    pub fn allowed_names(&self) -> Vec<&'static str> {
        Access::ALL
            .into_iter()
            .filter(|a| self.allows(*a))
            .map(Access::name)
            .collect()
    }
}

/// What a domain has now, against its limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub users: u64,
    pub aliases: u64,
    #[serde(default)]
    pub lists: u64,
    pub forwards: u64,
    /// The sum of the users' byte quotas (a user with none counts as 0 here;
    /// [`check_user`] refuses such a user when the domain has a total).
    pub quota_bytes: u64,
}

/// Whether `who` is one of the domain's postmasters.
pub fn is_admin(d: &Domain, who: &Address) -> bool {
    let key = who.key();
    d.admins
        .iter()
        .any(|a| Address::parse(a).is_ok_and(|a| a.key() == key))
}

fn over(what: &str, limit: u64, d: &Domain) -> DbError {
    DbError::Limit(format!("domain {} may have at most {limit} {what}", d.name))
}

/// Checks a user record against its domain's limits, given the domain's
/// usage without this user (`before`: the user as it was, None for a new one).
pub fn check_user(
    d: &Domain,
    usage: &Usage,
    before: Option<&User>,
    u: &User,
) -> Result<(), DbError> {
    let l = &d.limits;
    if before.is_none() {
        if let Some(m) = l.max_users {
            if usage.users >= m {
                return Err(over("users", m, d));
            }
        }
    }
    let forwarded = |x: Option<&User>| x.is_some_and(|x| !x.forwards.is_empty());
    if !u.forwards.is_empty() && !forwarded(before) {
        if let Some(m) = l.max_forwards {
            if usage.forwards >= m {
                return Err(over("users who forward their mail", m, d));
            }
        }
    }
    let changed_quota = before.is_none_or(|b| b.quota_bytes != u.quota_bytes);
    if changed_quota {
        if let Some(m) = l.max_user_quota_bytes {
            if u.quota_bytes == 0 || u.quota_bytes > m {
                return Err(DbError::Limit(format!(
                    "a user of {} may have a quota of at most {m} bytes{}",
                    d.name,
                    if u.quota_bytes == 0 {
                        " (and not none)"
                    } else {
                        ""
                    }
                )));
            }
        }
        if let Some(m) = l.max_quota_bytes {
            let others = usage
                .quota_bytes
                .saturating_sub(before.map(|b| b.quota_bytes).unwrap_or(0));
            if u.quota_bytes == 0 || others.saturating_add(u.quota_bytes) > m {
                return Err(DbError::Limit(format!(
                    "the users of {} may have at most {m} bytes of quota in all \
                     ({others} given to others)",
                    d.name
                )));
            }
        }
    }
    Ok(())
}

/// Checks a new alias against the domain's limit.
pub fn check_new_alias(d: &Domain, usage: &Usage) -> Result<(), DbError> {
    match d.limits.max_aliases {
        Some(m) if usage.aliases >= m => Err(over("aliases", m, d)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dom(l: Limits) -> Domain {
        Domain {
            name: "a.test".into(),
            created: 0,
            quota_bytes: 0,
            quota_messages: 0,
            spam: Default::default(),
            admins: vec!["Pm@A.test".into()],
            limits: l,
        }
    }

    fn user(q: u64) -> User {
        let mut u = User::new(&Address::parse("u@a.test").unwrap(), 0);
        u.quota_bytes = q;
        u
    }

    #[test]
    fn counts_and_quotas_are_checked() {
        let d = dom(Limits {
            max_users: Some(2),
            max_user_quota_bytes: Some(100),
            max_quota_bytes: Some(150),
            max_forwards: Some(0),
            ..Limits::default()
        });
        let mut use_ = Usage {
            users: 1,
            quota_bytes: 100,
            ..Usage::default()
        };
        assert!(check_user(&d, &use_, None, &user(50)).is_ok());
        assert!(check_user(&d, &use_, None, &user(60)).is_err());
        assert!(check_user(&d, &use_, None, &user(0)).is_err());
        assert!(check_user(&d, &use_, None, &user(101)).is_err());
        use_.users = 2;
        let e = check_user(&d, &use_, None, &user(10)).unwrap_err();
        assert!(matches!(e, DbError::Limit(_)), "{e}");
        // Changing one's own quota counts the others only.
        let before = user(100);
        assert!(check_user(&d, &use_, Some(&before), &user(90)).is_ok());
        let mut f = user(100);
        f.forwards = vec!["x@b.test".into()];
        assert!(check_user(&d, &use_, Some(&before), &f).is_err());
    }

    #[test]
    fn services_and_admins() {
        let d = dom(Limits {
            denied: vec![Access::Pop3],
            ..Limits::default()
        });
        assert!(!d.limits.allows(Access::Pop3));
        assert!(d.limits.allows(Access::Imap));
        assert_eq!(Access::parse("SIEVE").unwrap(), Access::Managesieve);
        assert!(Access::parse("gopher").is_err());
        assert!(is_admin(&d, &Address::parse("pm@a.test").unwrap()));
        assert!(is_admin(&d, &Address::parse("PM@a.test.").unwrap()));
        assert!(!is_admin(&d, &Address::parse("pm@b.test").unwrap()));
        assert!(!is_admin(&d, &Address::parse("pm+x@a.test").unwrap()));
    }

    #[test]
    fn limits_refuse_unknown_fields_and_round_trip() {
        let l: Limits = serde_json::from_str(r#"{"max_users":3,"denied":["pop3"]}"#).unwrap();
        assert_eq!(l.max_users, Some(3));
        assert!(serde_json::from_str::<Limits>(r#"{"max_user":3}"#).is_err());
        assert_eq!(serde_json::to_string(&Limits::default()).unwrap(), "{}");
    }
}
