//! The LMDB user database: one environment in `paths.db` with five named
//! databases, every record a JSON object under an address key.
//!
//! | database  | key                        | value            |
//! |-----------|----------------------------|------------------|
//! | `meta`    | `schema`                   | `1`              |
//! | `domains` | domain (A-label)           | [`Domain`]       |
//! | `users`   | `domain NUL lower(local)`  | [`User`]         |
//! | `aliases` | `domain NUL lower(local)`; `domain NUL` is the catch-all | [`Alias`] |
//! | `lists`   | `domain NUL lower(local)`  | [`crate::lists::List`] |
//!
//! Readers (kmp-authd) open a read transaction per request and so see every
//! committed write at once. Writers (kmpctl) check everything first and then
//! write in one transaction: a failed write leaves nothing half done, and a
//! crash mid-write leaves the last committed state (LMDB's copy-on-write).

use std::path::{Path, PathBuf};

use heed::types::Bytes;
use heed::{CommitOrAbort, Env, MdbError, PutFlags, RoTxn, RwTxn, WithoutTls};

use super::address::{domain_prefix, key_of, normalize_domain, Address};
use super::limits::Usage;
use super::{Alias, DbError, Directory, Domain, Resolved, User};
use crate::lists::List;

/// The largest the database may grow: address space reserved, not disk used
/// (about 40 million users).
pub const MAP_SIZE: usize = 16 << 30;

const SCHEMA_KEY: &[u8] = b"schema";
const SCHEMA: &[u8] = b"1";

pub(crate) type Db = heed::Database<'static, Bytes, Bytes>;
type KvResult<'t> = heed::Result<(&'t [u8], &'t [u8])>;

/// The LMDB-backed directory.
pub struct Lmdb {
    pub(crate) env: Env<WithoutTls>,
    pub(crate) meta: Db,
    pub(crate) domains: Db,
    pub(crate) users: Db,
    pub(crate) aliases: Db,
    pub(crate) lists: Db,
    dir: PathBuf,
}

/// What a domain deletion removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub users: usize,
    pub aliases: usize,
}

/// What a domain deletion removed: its users (for their Maildirs), how many
/// aliases, and the references elsewhere that pointed into it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DomainDeleted {
    pub users: Vec<User>,
    pub aliases: usize,
    /// Its lists (for their state directories).
    pub lists: Vec<List>,
    pub unlinked: Vec<Unlinked>,
}

/// A reference to a deleted address, taken out in the same transaction so
/// that nothing keeps pointing at an address that no longer exists (mail to
/// it would bounce, or, once its domain is gone, be relayed to the Internet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlinked {
    /// `target` was taken out of the targets of `alias`.
    AliasTarget { alias: String, target: String },
    /// `alias` had only deleted targets (the last was `target`) and went too.
    Alias { alias: String, target: String },
    /// `target` was taken out of the forwards of `user`.
    Forward { user: String, target: String },
}

impl std::fmt::Display for Unlinked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unlinked::AliasTarget { alias, target } => {
                write!(f, "removed {target} from the targets of alias {alias}")
            }
            Unlinked::Alias { alias, target } => {
                write!(f, "deleted alias {alias} (its only target was {target})")
            }
            Unlinked::Forward { user, target } => {
                write!(f, "removed {target} from the forwards of user {user}")
            }
        }
    }
}

impl Lmdb {
    /// Opens an existing database; a missing or damaged one is an error.
    pub fn open(dir: &Path) -> Result<Lmdb, DbError> {
        if !dir.join("data.mdb").is_file() {
            return Err(DbError::Missing(dir.to_path_buf()));
        }
        let env = open_env(dir)?;
        let rtxn = env.read_txn().map_err(|e| map_err(dir, e))?;
        let dbs = env
            .open_databases_and_commit(rtxn, |o, t| -> Result<_, heed::Error> {
                let open = |n| o.open_database::<Bytes, Bytes>(t, Some(n));
                Ok(CommitOrAbort::<_, ()>::Commit((
                    open("meta")?,
                    open("domains")?,
                    open("users")?,
                    open("aliases")?,
                    open("lists")?,
                )))
            })
            .map_err(|e| map_err(dir, e))?;
        let not_ours = || {
            DbError::Corrupt(
                dir.to_path_buf(),
                "it is not a Kmpromail user database".into(),
            )
        };
        let (meta, domains, users, aliases, lists) = dbs.commit().ok_or_else(not_ours)?;
        let db = Lmdb {
            meta: meta.ok_or_else(not_ours)?,
            domains: domains.ok_or_else(not_ours)?,
            users: users.ok_or_else(not_ours)?,
            aliases: aliases.ok_or_else(not_ours)?,
            lists: lists.ok_or_else(not_ours)?,
            env,
            dir: dir.to_path_buf(),
        };
        db.check_schema()?;
        Ok(db)
    }

    /// Opens the database, creating it (and its directory) if missing.
    pub fn create(dir: &Path) -> Result<Lmdb, DbError> {
        if dir.join("data.mdb").is_file() {
            return Lmdb::open(dir);
        }
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)
            .map_err(|e| io_err(dir, e))?;
        let env = open_env(dir)?;
        let wtxn = env.write_txn().map_err(|e| map_err(dir, e))?;
        let (meta, domains, users, aliases, lists) = env
            .create_databases_and_commit(wtxn, |o, t| -> Result<_, heed::Error> {
                let meta = o.create_database::<Bytes, Bytes>(t, Some("meta"))?;
                meta.put(t, SCHEMA_KEY, SCHEMA)?;
                Ok(CommitOrAbort::<_, ()>::Commit((
                    meta,
                    o.create_database::<Bytes, Bytes>(t, Some("domains"))?,
                    o.create_database::<Bytes, Bytes>(t, Some("users"))?,
                    o.create_database::<Bytes, Bytes>(t, Some("aliases"))?,
                    o.create_database::<Bytes, Bytes>(t, Some("lists"))?,
                )))
            })
            .map_err(|e| map_err(dir, e))?
            .commit()
            .ok_or_else(|| DbError::Io("creating the databases was aborted".into()))?;
        Ok(Lmdb {
            env,
            meta,
            domains,
            users,
            aliases,
            lists,
            dir: dir.to_path_buf(),
        })
    }

    /// The directory the environment is in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn check_schema(&self) -> Result<(), DbError> {
        let t = self.read()?;
        match self.meta.get(&t, SCHEMA_KEY).map_err(|e| self.err(e))? {
            Some(SCHEMA) => Ok(()),
            Some(v) => Err(DbError::Corrupt(
                self.dir.clone(),
                format!(
                    "schema version {:?} is not one this program knows",
                    String::from_utf8_lossy(v)
                ),
            )),
            None => Err(DbError::Corrupt(
                self.dir.clone(),
                "it has no schema version".into(),
            )),
        }
    }

    pub(crate) fn err(&self, e: heed::Error) -> DbError {
        map_err(&self.dir, e)
    }

    /// A read transaction: a consistent snapshot of the last commit.
    pub fn read(&self) -> Result<RoTxn<'_, WithoutTls>, DbError> {
        self.env.read_txn().map_err(|e| self.err(e))
    }

    /// A write transaction (one writer at a time, across processes).
    pub fn write(&self) -> Result<RwTxn<'_>, DbError> {
        self.env.write_txn().map_err(|e| self.err(e))
    }

    /// Bytes the data file takes on disk.
    pub fn disk_size(&self) -> u64 {
        std::fs::metadata(self.dir.join("data.mdb"))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    // ---- reading within a transaction ----

    pub(crate) fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        t: &RoTxn,
        db: Db,
        key: &[u8],
    ) -> Result<Option<T>, DbError> {
        match db.get(t, key).map_err(|e| self.err(e))? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(v).map(Some).map_err(|e| {
                DbError::Corrupt(
                    self.dir.clone(),
                    format!("record {}: {e}", key_address(key)),
                )
            }),
        }
    }

    fn all_json<T: serde::de::DeserializeOwned>(
        &self,
        t: &RoTxn,
        db: Db,
        prefix: &[u8],
    ) -> Result<Vec<T>, DbError> {
        let mut out = Vec::new();
        // LMDB refuses an empty key, so an empty prefix is a plain walk.
        let iter: Box<dyn Iterator<Item = KvResult<'_>>> = if prefix.is_empty() {
            Box::new(db.iter(t).map_err(|e| self.err(e))?)
        } else {
            Box::new(db.prefix_iter(t, prefix).map_err(|e| self.err(e))?)
        };
        for kv in iter {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            out.push(serde_json::from_slice(v).map_err(|e| {
                DbError::Corrupt(self.dir.clone(), format!("record {}: {e}", key_address(k)))
            })?);
        }
        Ok(out)
    }

    fn count(&self, t: &RoTxn, db: Db, prefix: &[u8]) -> Result<usize, DbError> {
        let mut n = 0;
        for kv in db.prefix_iter(t, prefix).map_err(|e| self.err(e))? {
            kv.map_err(|e| self.err(e))?;
            n += 1;
        }
        Ok(n)
    }

    /// Resolves within one read transaction (see [`Directory::resolve`]).
    pub fn resolve_in(&self, t: &RoTxn, addr: &Address) -> Result<(Resolved, bool), DbError> {
        super::resolve_with(
            addr,
            |a| self.get_json(t, self.users, &a.key()),
            |a| self.get_json(t, self.aliases, &a.key()),
            |a| self.get_json(t, self.lists, &a.key()),
            |d| self.get_json(t, self.domains, d.as_bytes()),
        )
    }

    /// A user within a read transaction.
    pub fn user_in(&self, t: &RoTxn, addr: &Address) -> Result<Option<User>, DbError> {
        self.get_json(t, self.users, &addr.key())
    }

    // ---- listing ----

    /// Every domain, in order.
    pub fn domains(&self) -> Result<Vec<Domain>, DbError> {
        let t = self.read()?;
        self.all_json(&t, self.domains, b"")
    }

    /// Every user, or a domain's, in order.
    pub fn users(&self, domain: Option<&str>) -> Result<Vec<User>, DbError> {
        let t = self.read()?;
        let prefix = match domain {
            Some(d) => domain_prefix(&normalize_domain(d)?),
            None => Vec::new(),
        };
        self.all_json(&t, self.users, &prefix)
    }

    /// Every alias, or a domain's, in order.
    pub fn aliases(&self, domain: Option<&str>) -> Result<Vec<Alias>, DbError> {
        let t = self.read()?;
        let prefix = match domain {
            Some(d) => domain_prefix(&normalize_domain(d)?),
            None => Vec::new(),
        };
        self.all_json(&t, self.aliases, &prefix)
    }

    /// How many users and aliases a domain has.
    pub fn domain_counts(&self, domain: &str) -> Result<Removed, DbError> {
        let t = self.read()?;
        let p = domain_prefix(domain);
        Ok(Removed {
            users: self.count(&t, self.users, &p)?,
            aliases: self.count(&t, self.aliases, &p)?,
        })
    }

    // ---- writing ----

    fn put_json<T: serde::Serialize>(
        &self,
        t: &mut RwTxn,
        db: Db,
        key: &[u8],
        value: &T,
        overwrite: bool,
    ) -> Result<(), DbError> {
        // Invariant: our record types serialise infallibly.
        let v = serde_json::to_vec(value).expect("record serialises");
        let flags = if overwrite {
            PutFlags::empty()
        } else {
            PutFlags::NO_OVERWRITE
        };
        match db.put_with_flags(t, flags, key, &v) {
            Ok(()) => Ok(()),
            Err(heed::Error::Mdb(MdbError::KeyExist)) => Err(DbError::Exists(key_address(key))),
            Err(e) => Err(self.err(e)),
        }
    }

    fn commit(&self, t: RwTxn) -> Result<(), DbError> {
        t.commit().map_err(|e| self.err(e))
    }

    /// What a domain has, against its limits, within a transaction.
    pub fn usage_in(&self, t: &RoTxn, domain: &str) -> Result<Usage, DbError> {
        let p = domain_prefix(domain);
        let mut u = Usage {
            aliases: self.count(t, self.aliases, &p)? as u64,
            lists: self.count(t, self.lists, &p)? as u64,
            ..Usage::default()
        };
        for user in self.all_json::<User>(t, self.users, &p)? {
            u.users += 1;
            u.quota_bytes = u.quota_bytes.saturating_add(user.quota_bytes);
            if !user.forwards.is_empty() {
                u.forwards += 1;
            }
        }
        Ok(u)
    }

    /// What a domain has, against its limits.
    pub fn usage(&self, domain: &str) -> Result<Usage, DbError> {
        let t = self.read()?;
        self.usage_in(&t, &normalize_domain(domain)?)
    }

    /// Refuses a user record over its domain's limits (`before`: as it was).
    fn check_limits(
        &self,
        t: &RoTxn,
        addr: &Address,
        before: Option<&User>,
        u: &User,
    ) -> Result<(), DbError> {
        let Some(d) = self.get_json::<Domain>(t, self.domains, addr.domain().as_bytes())? else {
            return Ok(());
        };
        if d.limits.is_none() {
            return Ok(());
        }
        let usage = self.usage_in(t, &d.name)?;
        super::limits::check_user(&d, &usage, before, u)
    }

    /// Changes a domain in place (its quotas, limits, postmasters); returns
    /// the new record. The name cannot change.
    pub fn update_domain(
        &self,
        name: &str,
        f: impl FnOnce(&mut Domain) -> Result<(), DbError>,
    ) -> Result<Domain, DbError> {
        let name = normalize_domain(name)?;
        let mut t = self.write()?;
        let mut d: Domain = self
            .get_json(&t, self.domains, name.as_bytes())?
            .ok_or_else(|| DbError::NotFound(format!("no domain {name}")))?;
        f(&mut d)?;
        d.name = name.clone();
        self.put_json(&mut t, self.domains, name.as_bytes(), &d, true)?;
        self.commit(t)?;
        Ok(d)
    }

    /// Adds a domain.
    pub fn add_domain(&self, d: &Domain) -> Result<(), DbError> {
        let mut t = self.write()?;
        self.put_json(&mut t, self.domains, d.name.as_bytes(), d, false)
            .map_err(|_| DbError::Exists(format!("domain {}", d.name)))?;
        self.commit(t)
    }

    /// Deletes a domain; with users or aliases only when `force`, and then
    /// them too, with every alias target and forward elsewhere that pointed
    /// into the domain.
    pub fn del_domain(&self, name: &str, force: bool) -> Result<DomainDeleted, DbError> {
        let name = normalize_domain(name)?;
        let fetch = self.fetch_db()?;
        let mut t = self.write()?;
        if self
            .get_json::<Domain>(&t, self.domains, name.as_bytes())?
            .is_none()
        {
            return Err(DbError::NotFound(format!("no domain {name}")));
        }
        let p = domain_prefix(&name);
        let removed = Removed {
            users: self.count(&t, self.users, &p)?,
            aliases: self.count(&t, self.aliases, &p)?,
        };
        if (removed.users > 0 || removed.aliases > 0) && !force {
            return Err(DbError::NotEmpty(name, removed.users, removed.aliases));
        }
        let lists: Vec<List> = self.all_json(&t, self.lists, &p)?;
        if !lists.is_empty() && !force {
            let n = lists.len();
            return Err(DbError::HasLists(
                name,
                format!("{n} {}", if n == 1 { "list" } else { "lists" }),
            ));
        }
        let users: Vec<User> = self.all_json(&t, self.users, &p)?;
        // The users' fetch accounts and the domain's lists go with them.
        for db in [self.users, self.aliases, self.lists]
            .into_iter()
            .chain(fetch)
        {
            let keys: Vec<Vec<u8>> = db
                .prefix_iter(&t, &p)
                .map_err(|e| self.err(e))?
                .map(|kv| kv.map(|(k, _)| k.to_vec()))
                .collect::<Result<_, _>>()
                .map_err(|e| self.err(e))?;
            for k in keys {
                db.delete(&mut t, &k).map_err(|e| self.err(e))?;
            }
        }
        self.domains
            .delete(&mut t, name.as_bytes())
            .map_err(|e| self.err(e))?;
        let unlinked = self.unlink(&mut t, name.as_bytes(), &|a| a.domain() == name)?;
        self.commit(t)?;
        Ok(DomainDeleted {
            users,
            aliases: removed.aliases,
            lists,
            unlinked,
        })
    }

    /// Adds a user; its domain must exist and no user or alias may have its name.
    pub fn add_user(&self, u: &User) -> Result<(), DbError> {
        let addr = u.addr()?;
        let mut t = self.write()?;
        self.check_new_name(&t, &addr)?;
        self.check_limits(&t, &addr, None, u)?;
        self.put_json(&mut t, self.users, &addr.key(), &Stored(u), false)
            .map_err(|e| match e {
                DbError::Exists(_) => DbError::Exists(format!("user {addr}")),
                e => e,
            })?;
        self.commit(t)
    }

    fn check_new_name(&self, t: &RoTxn, addr: &Address) -> Result<(), DbError> {
        if self
            .get_json::<Domain>(t, self.domains, addr.domain().as_bytes())?
            .is_none()
        {
            return Err(DbError::NotFound(format!(
                "no domain {} (add it first: kmpctl domain add {})",
                addr.domain(),
                addr.domain()
            )));
        }
        if let Some(u) = self.get_json::<User>(t, self.users, &addr.key())? {
            return Err(DbError::Exists(format!("user {}", u.address)));
        }
        if let Some(a) = self.get_json::<Alias>(t, self.aliases, &addr.key())? {
            return Err(DbError::Exists(format!("alias {}", a.address)));
        }
        let mut get = |a: &Address| self.get_json::<List>(t, self.lists, &a.key());
        if let Some((l, role)) = super::find_list(addr, &mut get)? {
            return Err(DbError::Exists(match role {
                crate::lists::Role::Post => format!("list {}", l.address),
                r => format!("{addr}, the {} address of list {},", r.keyword(), l.address),
            }));
        }
        Ok(())
    }

    // ---- lists ----

    /// Every list, or a domain's, in order.
    pub fn lists(&self, domain: Option<&str>) -> Result<Vec<List>, DbError> {
        let t = self.read()?;
        let prefix = match domain {
            Some(d) => domain_prefix(&normalize_domain(d)?),
            None => Vec::new(),
        };
        self.all_json(&t, self.lists, &prefix)
    }

    /// Adds a list. Its address and its role addresses (`-owner`,
    /// `-request`, ...) may be no user's or alias's, and no other list may
    /// answer at its address.
    pub fn add_list(&self, l: &List) -> Result<(), DbError> {
        let addr = Address::parse(&l.address)?;
        let mut t = self.write()?;
        self.check_new_name(&t, &addr)?;
        if let Some(d) = self.get_json::<Domain>(&t, self.domains, addr.domain().as_bytes())? {
            if let Some(m) = d.limits.max_lists {
                let n = self.count(&t, self.lists, &domain_prefix(&d.name))? as u64;
                if n >= m {
                    return Err(DbError::Limit(format!(
                        "domain {} may have at most {m} lists",
                        d.name
                    )));
                }
            }
        }
        for (_, role) in crate::lists::address::FIXED {
            let local = crate::lists::address::local_of(addr.local(), role);
            let a = Address::from_parts(&local, addr.domain());
            if let Some(u) = self.get_json::<User>(&t, self.users, &a.key())? {
                return Err(DbError::Exists(format!(
                    "user {} (the list's {} address)",
                    u.address,
                    role.keyword()
                )));
            }
            if let Some(x) = self.get_json::<Alias>(&t, self.aliases, &a.key())? {
                return Err(DbError::Exists(format!(
                    "alias {} (the list's {} address)",
                    x.address,
                    role.keyword()
                )));
            }
        }
        // A list already at one of this list's role addresses.
        for other in self.all_json::<List>(&t, self.lists, &domain_prefix(addr.domain()))? {
            let forms = crate::lists::address::forms(other.local());
            if let Some((_, role)) = forms
                .iter()
                .find(|(base, _)| base.eq_ignore_ascii_case(addr.local()))
            {
                return Err(DbError::Exists(format!(
                    "list {} (at what would be the new list's {} address)",
                    other.address,
                    role.keyword()
                )));
            }
        }
        self.put_json(&mut t, self.lists, &addr.key(), l, false)
            .map_err(|e| match e {
                DbError::Exists(_) => DbError::Exists(format!("list {addr}")),
                e => e,
            })?;
        self.commit(t)
    }

    /// Changes a list's record in place; returns the new record.
    pub fn update_list(
        &self,
        addr: &Address,
        f: impl FnOnce(&mut List) -> Result<(), DbError>,
    ) -> Result<List, DbError> {
        let mut t = self.write()?;
        let mut l: List = self
            .get_json(&t, self.lists, &addr.key())?
            .ok_or_else(|| DbError::NotFound(format!("no list {addr}")))?;
        f(&mut l)?;
        self.put_json(&mut t, self.lists, &addr.key(), &l, true)?;
        self.commit(t)?;
        Ok(l)
    }

    /// Deletes a list's record; returns it.
    pub fn del_list(&self, addr: &Address) -> Result<List, DbError> {
        let mut t = self.write()?;
        let l: List = self
            .get_json(&t, self.lists, &addr.key())?
            .ok_or_else(|| DbError::NotFound(format!("no list {addr}")))?;
        self.lists
            .delete(&mut t, &addr.key())
            .map_err(|e| self.err(e))?;
        self.commit(t)?;
        Ok(l)
    }

    /// Changes a user in place; returns the new record.
    pub fn update_user(
        &self,
        addr: &Address,
        f: impl FnOnce(&mut User) -> Result<(), DbError>,
    ) -> Result<User, DbError> {
        let mut t = self.write()?;
        let mut u: User = self
            .get_json(&t, self.users, &addr.key())?
            .ok_or_else(|| DbError::NotFound(format!("no user {addr}")))?;
        let before = u.clone();
        f(&mut u)?;
        self.check_limits(&t, addr, Some(&before), &u)?;
        self.put_json(&mut t, self.users, &addr.key(), &Stored(&u), true)?;
        self.commit(t)?;
        Ok(u)
    }

    /// Deletes a user, and every alias target and forward that named it
    /// (`user` or `user+detail`); returns what it was and what was unlinked.
    pub fn del_user(&self, addr: &Address) -> Result<(User, Vec<Unlinked>), DbError> {
        let fetch = self.fetch_db()?;
        let mut t = self.write()?;
        let u: User = self
            .get_json(&t, self.users, &addr.key())?
            .ok_or_else(|| DbError::NotFound(format!("no user {addr}")))?;
        self.users
            .delete(&mut t, &addr.key())
            .map_err(|e| self.err(e))?;
        let key = addr.key();
        let names_it = |a: &Address| {
            a.key() == key
                || a.without_detail(super::DETAIL_SEPARATOR)
                    .is_some_and(|b| b.key() == key)
        };
        let unlinked = self.unlink(&mut t, addr.domain().as_bytes(), &names_it)?;
        // Its fetch accounts go with it (their mail has nowhere to go).
        self.del_fetch_accounts_in(&mut t, fetch, addr)?;
        self.commit(t)?;
        Ok((u, unlinked))
    }

    /// Takes every address `gone` says is deleted out of alias targets and
    /// user forwards; an alias left with no target is deleted. Only records
    /// whose text contains `hint` (the domain) are decoded, so this is one
    /// quick pass even over millions of users.
    fn unlink(
        &self,
        t: &mut RwTxn,
        hint: &[u8],
        gone: &dyn Fn(&Address) -> bool,
    ) -> Result<Vec<Unlinked>, DbError> {
        let mut out = Vec::new();
        let is_gone = |s: &str| Address::parse(s).is_ok_and(|a| gone(&a));
        for (key, mut a) in self.candidates::<Alias>(t, self.aliases, hint)? {
            let (dead, live): (Vec<String>, Vec<String>) =
                a.targets.drain(..).partition(|x| is_gone(x));
            if dead.is_empty() {
                continue;
            }
            a.targets = live;
            if a.targets.is_empty() {
                self.aliases.delete(t, &key).map_err(|e| self.err(e))?;
                let mut dead = dead.into_iter();
                // Invariant: `dead` is not empty (checked above).
                let last = dead.next_back().expect("a dead target");
                out.extend(dead.map(|target| Unlinked::AliasTarget {
                    alias: a.address.clone(),
                    target,
                }));
                out.push(Unlinked::Alias {
                    alias: a.address.clone(),
                    target: last,
                });
            } else {
                self.put_json(t, self.aliases, &key, &a, true)?;
                out.extend(dead.into_iter().map(|target| Unlinked::AliasTarget {
                    alias: a.address.clone(),
                    target,
                }));
            }
        }
        for (key, mut u) in self.candidates::<User>(t, self.users, hint)? {
            let (dead, live): (Vec<String>, Vec<String>) =
                u.forwards.drain(..).partition(|x| is_gone(x));
            if dead.is_empty() {
                continue;
            }
            u.forwards = live;
            if u.forwards.is_empty() {
                // Nothing left to forward to: the mail stays in the mailbox.
                u.keep_copy = false;
            }
            self.put_json(t, self.users, &key, &Stored(&u), true)?;
            out.extend(dead.into_iter().map(|target| Unlinked::Forward {
                user: u.address.clone(),
                target,
            }));
        }
        Ok(out)
    }

    /// The records of `db` whose stored text contains `hint`, decoded.
    fn candidates<T: serde::de::DeserializeOwned>(
        &self,
        t: &RoTxn,
        db: Db,
        hint: &[u8],
    ) -> Result<Vec<(Vec<u8>, T)>, DbError> {
        let mut out = Vec::new();
        for kv in db.iter(t).map_err(|e| self.err(e))? {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            if hint.is_empty() || !v.windows(hint.len()).any(|w| w == hint) {
                continue;
            }
            let rec = serde_json::from_slice(v).map_err(|e| {
                DbError::Corrupt(self.dir.clone(), format!("record {}: {e}", key_address(k)))
            })?;
            out.push((k.to_vec(), rec));
        }
        Ok(out)
    }

    /// Adds users and aliases and sets users' forwards, all in one
    /// transaction (`kmpctl import`): when any of them fails (a name taken,
    /// a domain missing, a user to forward missing) nothing is written.
    /// Forwards are `(user, targets, keep a copy)`.
    pub fn import(
        &self,
        users: &[User],
        aliases: &[Alias],
        forwards: &[(Address, Vec<String>, bool)],
    ) -> Result<(), DbError> {
        let mut t = self.write()?;
        for u in users {
            let addr = u.addr()?;
            self.check_new_name(&t, &addr)?;
            self.put_json(&mut t, self.users, &addr.key(), &Stored(u), false)?;
        }
        for a in aliases {
            let addr = Address::parse_alias(&a.address)?;
            self.check_new_name(&t, &addr)?;
            self.put_json(&mut t, self.aliases, &addr.key(), a, false)?;
        }
        for (addr, targets, keep) in forwards {
            let mut u: User = self
                .get_json(&t, self.users, &addr.key())?
                .ok_or_else(|| DbError::NotFound(format!("no user {addr}")))?;
            u.forwards = targets.clone();
            u.keep_copy = *keep;
            self.put_json(&mut t, self.users, &addr.key(), &Stored(&u), true)?;
        }
        self.commit(t)
    }

    /// Adds targets to an alias, creating it if needed. Returns the alias.
    pub fn add_alias(&self, alias: &Address, targets: &[Address]) -> Result<Alias, DbError> {
        let mut t = self.write()?;
        let existing: Option<Alias> = self.get_json(&t, self.aliases, &alias.key())?;
        let mut a = match existing {
            Some(a) => a,
            None => {
                self.check_new_name(&t, alias)?;
                if let Some(d) =
                    self.get_json::<Domain>(&t, self.domains, alias.domain().as_bytes())?
                {
                    if !d.limits.is_none() {
                        let usage = self.usage_in(&t, &d.name)?;
                        super::limits::check_new_alias(&d, &usage)?;
                    }
                }
                Alias {
                    address: if alias.is_catch_all() {
                        format!("@{}", alias.domain())
                    } else {
                        alias.to_string()
                    },
                    targets: Vec::new(),
                }
            }
        };
        for target in targets {
            let s = target.to_string();
            if !a.targets.iter().any(|x| x.eq_ignore_ascii_case(&s)) {
                a.targets.push(s);
            }
        }
        self.put_json(&mut t, self.aliases, &alias.key(), &a, true)?;
        self.commit(t)?;
        Ok(a)
    }

    /// Removes some targets of an alias, or the whole alias when `targets` is
    /// empty (or none is left). Returns what is left, if anything.
    pub fn del_alias(
        &self,
        alias: &Address,
        targets: &[Address],
    ) -> Result<Option<Alias>, DbError> {
        let mut t = self.write()?;
        let mut a: Alias = self
            .get_json(&t, self.aliases, &alias.key())?
            .ok_or_else(|| {
                DbError::NotFound(format!(
                    "no alias {}",
                    if alias.is_catch_all() {
                        format!("@{}", alias.domain())
                    } else {
                        alias.to_string()
                    }
                ))
            })?;
        for target in targets {
            let s = target.to_string();
            let before = a.targets.len();
            a.targets.retain(|x| !x.eq_ignore_ascii_case(&s));
            if a.targets.len() == before {
                return Err(DbError::NotFound(format!(
                    "{} is not a target of {}",
                    s, a.address
                )));
            }
        }
        let left = if targets.is_empty() || a.targets.is_empty() {
            self.aliases
                .delete(&mut t, &alias.key())
                .map_err(|e| self.err(e))?;
            None
        } else {
            self.put_json(&mut t, self.aliases, &alias.key(), &a, true)?;
            Some(a)
        };
        self.commit(t)?;
        Ok(left)
    }
}

impl Directory for Lmdb {
    fn domain(&self, name: &str) -> Result<Option<Domain>, DbError> {
        let t = self.read()?;
        self.get_json(&t, self.domains, name.as_bytes())
    }

    fn user(&self, addr: &Address) -> Result<Option<User>, DbError> {
        let t = self.read()?;
        self.get_json(&t, self.users, &addr.key())
    }

    fn alias(&self, addr: &Address) -> Result<Option<Alias>, DbError> {
        let t = self.read()?;
        self.get_json(&t, self.aliases, &addr.key())
    }

    fn list(&self, addr: &Address) -> Result<Option<List>, DbError> {
        let t = self.read()?;
        self.get_json(&t, self.lists, &addr.key())
    }

    fn version(&self) -> u64 {
        self.env.info().last_txn_id as u64
    }

    fn resolve(&self, addr: &Address) -> Result<(Resolved, bool), DbError> {
        let t = self.read()?;
        self.resolve_in(&t, addr)
    }
}

/// A user as stored: fields at their default are left out (a million users
/// then take about a third less space); reading fills them back in.
pub(crate) struct Stored<'a>(pub &'a User);

impl serde::Serialize for Stored<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let u = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("address", &u.address)?;
        if !u.password.is_empty() {
            m.serialize_entry("password", &u.password)?;
        }
        if u.quota_bytes != 0 {
            m.serialize_entry("quota_bytes", &u.quota_bytes)?;
        }
        if u.quota_messages != 0 {
            m.serialize_entry("quota_messages", &u.quota_messages)?;
        }
        if u.state != super::State::Active {
            m.serialize_entry("state", &u.state)?;
        }
        if !u.mail_path.is_empty() {
            m.serialize_entry("mail_path", &u.mail_path)?;
        }
        if !u.forwards.is_empty() {
            m.serialize_entry("forwards", &u.forwards)?;
        }
        if u.keep_copy {
            m.serialize_entry("keep_copy", &u.keep_copy)?;
        }
        if u.pop3_subfolders {
            m.serialize_entry("pop3_subfolders", &u.pop3_subfolders)?;
        }
        if u.login_delay != 0 {
            m.serialize_entry("login_delay", &u.login_delay)?;
        }
        m.serialize_entry("created", &u.created)?;
        if !u.spam.is_default() {
            m.serialize_entry("spam", &u.spam)?;
        }
        m.end()
    }
}

/// The address a record key stands for: `local@domain` for `domain NUL
/// local`, `@domain` for a catch-all, the domain for a domain key.
pub(crate) fn key_address(key: &[u8]) -> String {
    let key = String::from_utf8_lossy(key);
    match key.split_once('\0') {
        Some((domain, local)) => format!("{local}@{domain}"),
        None => key.into_owned(),
    }
}

/// The key of a user or alias record (re-exported for dump/load).
pub(crate) fn record_key(domain: &str, local: &str) -> Vec<u8> {
    key_of(domain, local)
}

fn open_env(dir: &Path) -> Result<Env<WithoutTls>, DbError> {
    crate::sys::lmdb::open_env(dir, MAP_SIZE, 8).map_err(|e| map_err(dir, e))
}

fn io_err(dir: &Path, e: std::io::Error) -> DbError {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => DbError::Permission(dir.to_path_buf()),
        std::io::ErrorKind::NotFound => DbError::Missing(dir.to_path_buf()),
        _ => DbError::Io(format!("{}: {e}", dir.display())),
    }
}

fn map_err(dir: &Path, e: heed::Error) -> DbError {
    match e {
        heed::Error::Io(e) => io_err(dir, e),
        heed::Error::Mdb(
            m @ (MdbError::Invalid
            | MdbError::VersionMismatch
            | MdbError::Corrupted
            | MdbError::PageNotFound
            | MdbError::Panic
            | MdbError::Incompatible),
        ) => DbError::Corrupt(dir.to_path_buf(), m.to_string()),
        heed::Error::Mdb(m @ (MdbError::MapFull | MdbError::TxnFull)) => {
            DbError::Full(m.to_string())
        }
        e => DbError::Io(format!("{}: {e}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Lmdb) {
        let d = tempfile::tempdir().unwrap();
        let db = Lmdb::create(&d.path().join("db")).unwrap();
        (d, db)
    }

    fn dom(n: &str) -> Domain {
        Domain {
            name: n.into(),
            created: 1,
            quota_bytes: 0,
            quota_messages: 0,
            spam: Default::default(),
            admins: Vec::new(),
            limits: Default::default(),
        }
    }

    #[test]
    fn limits_are_enforced_at_write_time_and_nothing_changes() {
        let (_d, db) = db();
        db.add_domain(&dom("a.test")).unwrap();
        db.update_domain("A.test.", |d| {
            d.limits.max_users = Some(1);
            d.limits.max_aliases = Some(1);
            d.limits.max_user_quota_bytes = Some(1000);
            Ok(())
        })
        .unwrap();
        let p = |s: &str| Address::parse(s).unwrap();
        let mut u = User::new(&p("one@a.test"), 1);
        u.quota_bytes = 500;
        db.add_user(&u).unwrap();
        let mut two = User::new(&p("two@a.test"), 1);
        two.quota_bytes = 500;
        assert!(matches!(db.add_user(&two), Err(DbError::Limit(_))));
        let e = db
            .update_user(&p("one@a.test"), |u| {
                u.quota_bytes = 2000;
                Ok(())
            })
            .unwrap_err();
        assert!(matches!(e, DbError::Limit(_)), "{e}");
        assert_eq!(db.user(&p("one@a.test")).unwrap().unwrap().quota_bytes, 500);
        db.add_alias(&p("x@a.test"), &[p("one@a.test")]).unwrap();
        // More targets on the same alias are no new alias.
        db.add_alias(&p("x@a.test"), &[p("y@b.test")]).unwrap();
        assert!(matches!(
            db.add_alias(&p("z@a.test"), &[p("one@a.test")]),
            Err(DbError::Limit(_))
        ));
        assert_eq!(db.usage("a.test").unwrap().users, 1);
        assert_eq!(db.users(Some("a.test")).unwrap().len(), 1);
    }

    #[test]
    fn missing_and_corrupt_databases_are_named() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            Lmdb::open(&d.path().join("nope")),
            Err(DbError::Missing(_))
        ));
        std::fs::write(d.path().join("data.mdb"), vec![0x5a; 16384]).unwrap();
        let e = Lmdb::open(d.path()).err().unwrap();
        assert!(matches!(e, DbError::Corrupt(..)), "{e}");
        assert!(e.to_string().contains("damaged"), "{e}");
    }

    #[test]
    fn users_aliases_and_resolution() {
        let (_d, db) = db();
        db.add_domain(&dom("example.test")).unwrap();
        assert!(matches!(
            db.add_domain(&dom("example.test")),
            Err(DbError::Exists(_))
        ));
        let a = Address::parse("Bob@Example.TEST").unwrap();
        db.add_user(&User::new(&a, 5)).unwrap();
        let again = User::new(&Address::parse("BOB@example.test").unwrap(), 6);
        let e = db.add_user(&again).unwrap_err();
        assert!(
            e.to_string().contains("user Bob@example.test exists"),
            "{e}"
        );
        let orphan = User::new(&Address::parse("x@other.test").unwrap(), 6);
        assert!(matches!(db.add_user(&orphan), Err(DbError::NotFound(_))));

        let look = |s: &str| db.resolve(&Address::parse(s).unwrap()).unwrap();
        match look("bob@example.test") {
            (Resolved::User(u), true) => assert_eq!(u.address, "Bob@example.test"),
            r => panic!("{r:?}"),
        }
        match look("bob+news@example.test") {
            (Resolved::User(u), true) => assert_eq!(u.address, "Bob@example.test"),
            r => panic!("{r:?}"),
        }
        assert_eq!(look("carol@example.test"), (Resolved::NotFound, true));
        assert_eq!(look("bob@elsewhere.test"), (Resolved::NotFound, false));

        let bob = Address::parse("bob@example.test").unwrap();
        db.add_alias(
            &Address::parse("info@example.test").unwrap(),
            std::slice::from_ref(&bob),
        )
        .unwrap();
        db.add_alias(
            &Address::parse_alias("@example.test").unwrap(),
            std::slice::from_ref(&bob),
        )
        .unwrap();
        match look("INFO@example.test") {
            (Resolved::Alias(a), true) => assert_eq!(a.targets, ["bob@example.test"]),
            r => panic!("{r:?}"),
        }
        match look("anyone@example.test") {
            (Resolved::Alias(a), true) => assert_eq!(a.address, "@example.test"),
            r => panic!("{r:?}"),
        }
        // A user's name cannot be taken by an alias and the other way round.
        assert!(db
            .add_user(&User::new(&Address::parse("info@example.test").unwrap(), 1))
            .is_err());

        let e = db.del_domain("example.test", false).unwrap_err();
        assert!(matches!(e, DbError::NotEmpty(_, 1, 2)), "{e}");
        let gone = db.del_domain("EXAMPLE.test", true).unwrap();
        assert_eq!(gone.users.len(), 1);
        assert_eq!(gone.aliases, 2);
        assert!(db.users(None).unwrap().is_empty());
        assert!(db.aliases(None).unwrap().is_empty());
    }

    #[test]
    fn dangling_references_are_unlinked_with_the_user_or_domain() {
        let (_d, db) = db();
        db.add_domain(&dom("a.test")).unwrap();
        db.add_domain(&dom("b.test")).unwrap();
        let p = |s: &str| Address::parse(s).unwrap();
        for u in ["ann@a.test", "bob@a.test", "cy@b.test"] {
            db.add_user(&User::new(&p(u), 1)).unwrap();
        }
        db.add_alias(&p("team@a.test"), &[p("ann@a.test"), p("Bob+x@a.test")])
            .unwrap();
        db.add_alias(&p("solo@a.test"), &[p("bob@a.test")]).unwrap();
        db.add_alias(&p("ext@a.test"), &[p("cy@b.test")]).unwrap();
        db.update_user(&p("ann@a.test"), |u| {
            u.forwards = vec!["bob@a.test".into()];
            u.keep_copy = true;
            Ok(())
        })
        .unwrap();
        let (_, un) = db.del_user(&p("BOB@a.test")).unwrap();
        assert_eq!(un.len(), 3, "{un:?}");
        assert!(un.contains(&Unlinked::Alias {
            alias: "solo@a.test".into(),
            target: "bob@a.test".into()
        }));
        assert_eq!(
            db.alias(&p("team@a.test")).unwrap().unwrap().targets,
            ["ann@a.test"]
        );
        assert!(db.alias(&p("solo@a.test")).unwrap().is_none());
        let ann = db.user(&p("ann@a.test")).unwrap().unwrap();
        assert!(ann.forwards.is_empty() && !ann.keep_copy);
        // A domain takes the references into it from other domains along.
        let gone = db.del_domain("b.test", true).unwrap();
        assert_eq!(
            gone.unlinked,
            [Unlinked::Alias {
                alias: "ext@a.test".into(),
                target: "cy@b.test".into()
            }]
        );
    }

    #[test]
    fn updates_bump_the_version_and_readers_see_them() {
        let (_d, db) = db();
        db.add_domain(&dom("example.test")).unwrap();
        let a = Address::parse("u@example.test").unwrap();
        db.add_user(&User::new(&a, 1)).unwrap();
        let v = db.version();
        db.update_user(&a, |u| {
            u.quota_bytes = 10;
            Ok(())
        })
        .unwrap();
        assert!(db.version() > v);
        assert_eq!(db.user(&a).unwrap().unwrap().quota_bytes, 10);
        // A failing change writes nothing.
        let r = db.update_user(&a, |u| {
            u.quota_bytes = 99;
            Err(DbError::Invalid("no".into()))
        });
        assert!(r.is_err());
        assert_eq!(db.user(&a).unwrap().unwrap().quota_bytes, 10);
    }
}

#[cfg(test)]
mod list_tests {
    use super::*;
    use crate::lists::Role;

    #[test]
    fn list_names_never_collide_with_users_aliases_or_other_lists() {
        let d = tempfile::tempdir().unwrap();
        let db = Lmdb::create(&d.path().join("db")).unwrap();
        db.add_domain(&Domain {
            name: "example.test".into(),
            created: 1,
            quota_bytes: 0,
            quota_messages: 0,
            spam: Default::default(),
            admins: Vec::new(),
            limits: Default::default(),
        })
        .unwrap();
        let p = |s: &str| Address::parse(s).unwrap();
        db.add_user(&User::new(&p("bob@example.test"), 1)).unwrap();
        db.add_user(&User::new(&p("dev-help@example.test"), 1))
            .unwrap();
        let list = |s: &str| List::new(&p(s), 1);
        // Its name, or one of its role addresses, taken by a user.
        for (name, what) in [
            ("bob@example.test", "user bob@example.test"),
            ("dev@example.test", "user dev-help@example.test"),
        ] {
            let e = db.add_list(&list(name)).unwrap_err();
            assert!(e.to_string().contains(what), "{name}: {e}");
        }
        db.add_list(&list("News@example.test")).unwrap();
        // And the other way round: users and aliases cannot take its addresses.
        for name in [
            "news@example.test",
            "NEWS-owner@example.test",
            "news-bounce-x=y.test@example.test",
        ] {
            let e = db.add_user(&User::new(&p(name), 1)).unwrap_err();
            assert!(e.to_string().contains("News@example.test"), "{name}: {e}");
            assert!(db.add_alias(&p(name), &[p("bob@example.test")]).is_err());
        }
        // Lists whose addresses overlap.
        assert!(db.add_list(&list("news-request@example.test")).is_err());
        db.add_list(&list("a-owner@example.test")).unwrap();
        let e = db.add_list(&list("a@example.test")).unwrap_err();
        assert!(e.to_string().contains("a-owner@example.test"), "{e}");
        // Resolution: before the catch-all and plus-addressing.
        db.add_alias(
            &Address::parse_alias("@example.test").unwrap(),
            &[p("bob@example.test")],
        )
        .unwrap();
        let look = |s: &str| db.resolve(&p(s)).unwrap().0;
        assert!(
            matches!(look("news@example.test"), Resolved::List(l, Role::Post) if l.address == "News@example.test")
        );
        assert!(matches!(
            look("news-unsubscribe@example.test"),
            Resolved::List(_, Role::Unsubscribe)
        ));
        assert!(
            matches!(look("news-bounce-Ann=x.test@example.test"), Resolved::List(_, Role::Bounce(a)) if a == "Ann=x.test")
        );
        assert!(matches!(look("other@example.test"), Resolved::Alias(_)));
        // A domain with lists is deleted only with force, and takes them along.
        let e = db.del_domain("example.test", false).unwrap_err();
        assert!(
            e.to_string().contains("user") || e.to_string().contains("list"),
            "{e}"
        );
        db.del_user(&p("bob@example.test")).unwrap();
        db.del_user(&p("dev-help@example.test")).unwrap();
        let e = db.del_domain("example.test", false).unwrap_err();
        assert!(e.to_string().contains("2 lists"), "{e}");
        let gone = db.del_domain("example.test", true).unwrap();
        assert_eq!(gone.lists.len(), 2);
        assert!(db.lists(None).unwrap().is_empty());
    }
}
