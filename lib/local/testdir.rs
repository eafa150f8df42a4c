//! A directory in memory for tests: users, aliases, local domains, and
//! plus-addressing resolved as kmp-authd resolves it.

use std::collections::HashMap;

use super::resolve::{key, Directory, LookupError};
use crate::ipc::authd::{Entry, UserInfo};

#[derive(Default)]
pub struct Mem {
    pub users: HashMap<String, UserInfo>,
    pub aliases: HashMap<String, Vec<String>>,
    pub domains: Vec<String>,
    /// Mailing lists by lower-case address.
    pub lists: HashMap<String, crate::lists::List>,
    pub down: bool,
    pub asked: usize,
}

impl Mem {
    pub fn new() -> Mem {
        Mem {
            domains: vec!["example.test".into()],
            ..Mem::default()
        }
    }

    pub fn user(mut self, a: &str, forwards: &[&str], keep: bool, active: bool) -> Mem {
        let (local, domain) = a.rsplit_once('@').unwrap_or((a, ""));
        let mail_path = format!("{domain}/{local}");
        self.users.insert(
            a.into(),
            UserInfo {
                address: a.into(),
                mail_path: mail_path.into(),
                quota_bytes: 0,
                quota_messages: 0,
                active,
                forwards: forwards.iter().map(|s| s.to_string()).collect(),
                keep_copy: keep,
                pop3_subfolders: false,
                login_delay: 0,
                spam: Default::default(),
                max_message_bytes: None,
            },
        );
        self
    }

    /// Sets a user's quota.
    pub fn quota(mut self, a: &str, bytes: u64, messages: u64) -> Mem {
        if let Some(u) = self.users.get_mut(a) {
            u.quota_bytes = bytes;
            u.quota_messages = messages;
        }
        self
    }

    pub fn list(mut self, l: crate::lists::List) -> Mem {
        self.lists.insert(key(&l.address), l);
        self
    }

    pub fn alias(mut self, a: &str, t: &[&str]) -> Mem {
        self.aliases
            .insert(a.into(), t.iter().map(|s| s.to_string()).collect());
        self
    }
}

impl Directory for Mem {
    fn lookup(&mut self, address: &str) -> Result<(Entry, bool), LookupError> {
        self.asked += 1;
        if self.down {
            return Err(LookupError::Temporary("kmp-authd is not running".into()));
        }
        if !address.contains('@') || address.contains(' ') {
            return Err(LookupError::Invalid(format!("bad address {address:?}")));
        }
        let a = key(address);
        let (local, domain) = a.rsplit_once('@').unwrap_or((&a, ""));
        let ours = self.domains.iter().any(|d| d == domain);
        let base = format!("{}@{domain}", local.split('+').next().unwrap_or(local));
        let entry = if let Some(u) = self.users.get(&base) {
            Entry::User { user: u.clone() }
        } else if let Some(t) = self.aliases.get(&a) {
            Entry::Alias {
                address: a.clone(),
                targets: t.clone(),
            }
        } else if let Some(l) = self.lists.get(&a) {
            Entry::List {
                list: l.clone(),
                role: crate::lists::Role::Post,
            }
        } else if let Some((l, role)) = crate::lists::address::forms(local)
            .into_iter()
            .find_map(|(b, r)| Some((self.lists.get(&format!("{b}@{domain}"))?, r)))
        {
            Entry::List {
                list: l.clone(),
                role,
            }
        } else {
            Entry::NotFound
        };
        Ok((entry, ours))
    }
}
