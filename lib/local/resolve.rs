//! Recipient resolution: what one envelope recipient becomes.
//!
//! kmp-authd answers one level at a time (a user, an alias with its targets,
//! or nothing; plus-addressing and catch-all are its business). This module
//! walks that graph: aliases nested to any depth up to a limit, users'
//! forwards (with or without a copy kept), with loop detection. The result is
//! a set of local mailboxes to deliver into, a list of non-local addresses for
//! kmp-send to queue, and the local leaves that cannot take mail (unknown,
//! disabled). It does no I/O of its own: the [`Directory`] does the asking,
//! so the rules are tested without sockets.

use std::collections::HashSet;

use crate::ipc::authd::{Entry, UserInfo};

/// The most addresses one recipient may expand to (all levels together):
/// a named cap so a hostile or mistaken alias graph cannot make one job
/// ask kmp-authd without end.
pub const MAX_LOOKUPS: usize = 10_000;

/// Where addresses are looked up (kmp-authd in the daemon).
pub trait Directory {
    /// The entry for `address`, and whether its domain is one of ours.
    fn lookup(&mut self, address: &str) -> Result<(Entry, bool), LookupError>;
}

/// Why a lookup got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// The directory is down or busy: try again later.
    Temporary(String),
    /// The directory refused the address itself (bad syntax).
    Invalid(String),
}

/// Why a local leaf cannot take mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No user, alias or catch-all by that name in a local domain (5.1.1).
    Unknown,
    /// The user exists but is disabled (5.2.1).
    Disabled,
    /// The domain is not ours (5.1.2): only for the envelope recipient itself.
    NotLocal,
}

/// Why a recipient could not be resolved at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// kmp-authd could not answer: try again later (4.3.0), never bounce.
    Temporary(String),
    /// kmp-authd refused an address as malformed (5.1.3).
    Invalid(String, String),
    /// An alias refers back to itself: the chain, in order.
    Loop(Vec<String>),
    /// Aliases nested deeper than the limit.
    TooDeep(usize),
    /// More than [`MAX_LOOKUPS`] addresses.
    TooMany,
}

/// What one envelope recipient resolved to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    /// Mailboxes to deliver into, each once.
    pub mailboxes: Vec<UserInfo>,
    /// Addresses in other domains (alias targets, forwards), each once.
    pub remote: Vec<String>,
    /// Local addresses that cannot take mail.
    pub refused: Vec<(String, Refusal)>,
    /// Addresses of mailing lists (a post, a request, a bounce): what
    /// becomes of the message there is `crate::lists::distribute`'s business.
    pub lists: Vec<ListHit>,
}

/// One mailing-list address a recipient reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListHit {
    /// The address as reached.
    pub address: String,
    pub list: crate::lists::List,
    pub role: crate::lists::Role,
}

/// Resolves `address`, following aliases and forwards at most `max_depth` levels deep.
pub fn resolve(
    dir: &mut dyn Directory,
    address: &str,
    max_depth: usize,
) -> Result<Resolution, ResolveError> {
    let mut walk = Walk {
        dir,
        max_depth,
        out: Resolution::default(),
        chain: Vec::new(),
        seen: HashSet::new(),
        mailbox_keys: HashSet::new(),
        lookups: 0,
    };
    walk.visit(address, 0)?;
    Ok(walk.out)
}

/// The comparison form of an address: loops and duplicates are found on it.
/// The local part is compared without case too, as every local domain here is
/// case-insensitive (kmp-authd stores addresses normalised).
pub fn key(address: &str) -> String {
    address.trim().to_ascii_lowercase()
}

/// One link of the chain from the envelope recipient to the address being visited.
struct Link {
    key: String,
    /// The user, when the link is a user with forwards.
    user: Option<UserInfo>,
}

impl Link {
    /// Whether `k` names this link: its address as written, or the user's canonical one.
    fn names(&self, k: &str) -> bool {
        self.key == k || self.user.as_ref().is_some_and(|u| key(&u.address) == k)
    }
}

struct Walk<'a> {
    dir: &'a mut dyn Directory,
    max_depth: usize,
    out: Resolution,
    chain: Vec<Link>,
    /// Addresses already expanded (a diamond is not a loop: expand once).
    seen: HashSet<String>,
    mailbox_keys: HashSet<String>,
    lookups: usize,
}

impl Walk<'_> {
    fn visit(&mut self, address: &str, depth: usize) -> Result<(), ResolveError> {
        let k = key(address);
        if let Some(link) = self.chain.iter().find(|l| l.names(&k)) {
            // A user whose forwards lead back to the user: that is "keep a
            // copy here" (as `\user` in a .forward), not a loop.
            if let Some(user) = link.user.clone() {
                self.add_mailbox(user);
                return Ok(());
            }
            let mut names: Vec<String> = self.chain.iter().map(|l| l.key.clone()).collect();
            names.push(k);
            return Err(ResolveError::Loop(names));
        }
        if depth > self.max_depth {
            return Err(ResolveError::TooDeep(self.max_depth));
        }
        if !self.seen.insert(k.clone()) {
            return Ok(());
        }
        self.lookups += 1;
        if self.lookups > MAX_LOOKUPS {
            return Err(ResolveError::TooMany);
        }
        let (entry, local_domain) = self.dir.lookup(address).map_err(|e| match e {
            LookupError::Temporary(m) => ResolveError::Temporary(m),
            LookupError::Invalid(m) => ResolveError::Invalid(address.to_string(), m),
        })?;
        match entry {
            Entry::NotFound if !local_domain => {
                if depth == 0 {
                    self.out
                        .refused
                        .push((address.to_string(), Refusal::NotLocal));
                } else if !self.out.remote.iter().any(|r| key(r) == k) {
                    self.out.remote.push(address.to_string());
                }
                Ok(())
            }
            Entry::NotFound => {
                self.out
                    .refused
                    .push((address.to_string(), Refusal::Unknown));
                Ok(())
            }
            Entry::User { user } if !user.active => {
                self.out
                    .refused
                    .push((address.to_string(), Refusal::Disabled));
                Ok(())
            }
            Entry::User { user } => self.user(k, user, depth),
            // Mail to a list's owners goes to them as to an alias's targets.
            Entry::List { list, role }
                if role == crate::lists::Role::Owner && !list.owners.is_empty() =>
            {
                self.chain.push(Link { key: k, user: None });
                let r = list
                    .owners
                    .iter()
                    .try_for_each(|t| self.visit(t, depth + 1));
                self.chain.pop();
                r
            }
            Entry::List { list, role } => {
                self.out.lists.push(ListHit {
                    address: address.to_string(),
                    list,
                    role,
                });
                Ok(())
            }
            Entry::Alias { targets, .. } => {
                self.chain.push(Link { key: k, user: None });
                let r = targets.iter().try_for_each(|t| self.visit(t, depth + 1));
                self.chain.pop();
                r
            }
        }
    }

    fn user(&mut self, k: String, user: UserInfo, depth: usize) -> Result<(), ResolveError> {
        let canonical = key(&user.address);
        // Reached again by another spelling (a plus-address, an alias) through
        // a forward of its own: deliver here.
        if self.chain.iter().any(|l| l.names(&canonical)) {
            self.add_mailbox(user);
            return Ok(());
        }
        if user.forwards.is_empty() || user.keep_copy {
            self.add_mailbox(user.clone());
        }
        if user.forwards.is_empty() {
            return Ok(());
        }
        let forwards = user.forwards.clone();
        self.seen.insert(canonical);
        self.chain.push(Link {
            key: k,
            user: Some(user),
        });
        let r = forwards.iter().try_for_each(|f| self.visit(f, depth + 1));
        self.chain.pop();
        r
    }

    fn add_mailbox(&mut self, user: UserInfo) {
        if self.mailbox_keys.insert(key(&user.address)) {
            self.out.mailboxes.push(user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::testdir::Mem;

    fn boxes(r: &Resolution) -> Vec<&str> {
        r.mailboxes.iter().map(|u| u.address.as_str()).collect()
    }

    #[test]
    fn a_user_is_its_own_mailbox_and_plus_addressing_reaches_it() {
        let mut d = Mem::new().user("a@example.test", &[], false, true);
        let r = resolve(&mut d, "A+news@Example.test", 10).unwrap();
        assert_eq!(boxes(&r), ["a@example.test"]);
        assert!(r.remote.is_empty() && r.refused.is_empty());
    }

    #[test]
    fn nested_aliases_reach_local_and_remote_targets_once_each() {
        let mut d = Mem::new()
            .user("a@example.test", &[], false, true)
            .user("b@example.test", &[], false, true)
            .alias("all@example.test", &["team@example.test", "b@example.test"])
            .alias(
                "team@example.test",
                &["a@example.test", "b@example.test", "x@other.test"],
            );
        let r = resolve(&mut d, "all@example.test", 10).unwrap();
        assert_eq!(boxes(&r), ["a@example.test", "b@example.test"]);
        assert_eq!(r.remote, ["x@other.test"]);
    }

    #[test]
    fn alias_loops_and_depth_are_errors() {
        let mut d = Mem::new()
            .alias("a@example.test", &["b@example.test"])
            .alias("b@example.test", &["a@example.test"]);
        assert_eq!(
            resolve(&mut d, "a@example.test", 10),
            Err(ResolveError::Loop(vec![
                "a@example.test".into(),
                "b@example.test".into(),
                "a@example.test".into()
            ]))
        );
        let mut d = Mem::new()
            .alias("l1@example.test", &["l2@example.test"])
            .alias("l2@example.test", &["l3@example.test"])
            .alias("l3@example.test", &["l4@example.test"])
            .user("l4@example.test", &[], false, true);
        assert_eq!(
            resolve(&mut d, "l1@example.test", 2),
            Err(ResolveError::TooDeep(2))
        );
        assert_eq!(
            boxes(&resolve(&mut d, "l1@example.test", 3).unwrap()),
            ["l4@example.test"]
        );
    }

    #[test]
    fn forwards_with_and_without_a_copy() {
        let mut d = Mem::new()
            .user(
                "f@example.test",
                &["x@other.test", "g@example.test"],
                false,
                true,
            )
            .user("k@example.test", &["x@other.test"], true, true)
            .user("g@example.test", &[], false, true);
        let r = resolve(&mut d, "f@example.test", 10).unwrap();
        assert_eq!(boxes(&r), ["g@example.test"]);
        assert_eq!(r.remote, ["x@other.test"]);
        let r = resolve(&mut d, "k@example.test", 10).unwrap();
        assert_eq!(boxes(&r), ["k@example.test"]);
        assert_eq!(r.remote, ["x@other.test"]);
    }

    #[test]
    fn a_forward_back_to_oneself_keeps_a_copy_not_a_loop() {
        let mut d = Mem::new()
            .user(
                "s@example.test",
                &["s+copy@example.test", "x@other.test"],
                false,
                true,
            )
            .alias("me@example.test", &["t@example.test"])
            .user("t@example.test", &["me@example.test"], false, true);
        let r = resolve(&mut d, "s@example.test", 10).unwrap();
        assert_eq!(boxes(&r), ["s@example.test"]);
        assert_eq!(r.remote, ["x@other.test"]);
        let r = resolve(&mut d, "t@example.test", 10).unwrap();
        assert_eq!(boxes(&r), ["t@example.test"]);
    }

    #[test]
    fn unknown_disabled_and_foreign_recipients_are_refused() {
        let mut d = Mem::new()
            .user("off@example.test", &[], false, false)
            .user("on@example.test", &[], false, true)
            .alias(
                "mix@example.test",
                &["on@example.test", "nobody@example.test"],
            );
        let r = resolve(&mut d, "nobody@example.test", 10).unwrap();
        assert_eq!(
            r.refused,
            [("nobody@example.test".into(), Refusal::Unknown)]
        );
        let r = resolve(&mut d, "off@example.test", 10).unwrap();
        assert_eq!(r.refused, [("off@example.test".into(), Refusal::Disabled)]);
        let r = resolve(&mut d, "x@other.test", 10).unwrap();
        assert_eq!(r.refused, [("x@other.test".into(), Refusal::NotLocal)]);
        let r = resolve(&mut d, "mix@example.test", 10).unwrap();
        assert_eq!(boxes(&r), ["on@example.test"]);
        assert_eq!(
            r.refused,
            [("nobody@example.test".into(), Refusal::Unknown)]
        );
    }

    #[test]
    fn an_unreachable_directory_is_temporary_and_fan_out_is_capped() {
        let mut d = Mem::new();
        d.down = true;
        assert!(matches!(
            resolve(&mut d, "a@example.test", 10),
            Err(ResolveError::Temporary(_))
        ));
        let many: Vec<String> = (0..MAX_LOOKUPS + 5)
            .map(|i| format!("u{i}@example.test"))
            .collect();
        let refs: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
        let mut d = Mem::new().alias("big@example.test", &refs);
        assert_eq!(
            resolve(&mut d, "big@example.test", 10),
            Err(ResolveError::TooMany)
        );
        assert!(d.asked <= MAX_LOOKUPS + 1);
    }
}
