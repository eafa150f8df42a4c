//! Fetch accounts in the user database: the named LMDB database `fetch`,
//! key `domain NUL lower(local) NUL account-name`, value the JSON of
//! [`FetchAccount`] (its password sealed to kmp-fetch's key).
//!
//! The database is made by the first writer (a database from before the
//! fetch agent has none, and reads as empty). Writers are kmpctl (and
//! kmp-admind); kmp-fetch reads through kmp-authd. A user's accounts are
//! one prefix range, so listing them and deleting them with the user are
//! one walk.

use heed::types::Bytes;
use heed::{CommitOrAbort, RoTxn, RwTxn, WithoutTls};

use super::address::{domain_prefix, key_of, Address};
use super::lmdb::{Db, Lmdb};
use super::{DbError, Domain};
use crate::ipc::fetch::FetchAccount;

/// The name of the LMDB database.
pub const DB_NAME: &str = "fetch";

/// The key prefix of `owner`'s accounts.
fn owner_prefix(owner: &Address) -> Vec<u8> {
    let mut k = key_of(owner.domain(), owner.local());
    k.push(0);
    k
}

/// The key of one account.
pub(crate) fn account_key(owner: &Address, name: &str) -> Vec<u8> {
    let mut k = owner_prefix(owner);
    k.extend_from_slice(name.as_bytes());
    k
}

impl Lmdb {
    /// The `fetch` database, if it exists.
    pub fn fetch_db(&self) -> Result<Option<Db>, DbError> {
        let t = self.read()?;
        self.env
            .open_databases_and_commit(t, |o, t| -> Result<_, heed::Error> {
                Ok(CommitOrAbort::<_, ()>::Commit(
                    o.open_database::<Bytes, Bytes>(t, Some(DB_NAME))?,
                ))
            })
            .map_err(|e| self.err(e))?
            .commit()
            .ok_or_else(|| DbError::Io("opening the fetch database was aborted".into()))
    }

    /// The `fetch` database, made when missing.
    pub(crate) fn fetch_db_made(&self) -> Result<Db, DbError> {
        if let Some(db) = self.fetch_db()? {
            return Ok(db);
        }
        let t = self.write()?;
        self.env
            .create_databases_and_commit(t, |o, t| -> Result<_, heed::Error> {
                Ok(CommitOrAbort::<_, ()>::Commit(
                    o.create_database::<Bytes, Bytes>(t, Some(DB_NAME))?,
                ))
            })
            .map_err(|e| self.err(e))?
            .commit()
            .ok_or_else(|| DbError::Io("creating the fetch database was aborted".into()))
    }

    /// Every account, or one owner's, in key order.
    pub fn fetch_accounts(&self, owner: Option<&Address>) -> Result<Vec<FetchAccount>, DbError> {
        let db = self.fetch_db()?;
        let t = self.read()?;
        self.fetch_accounts_in(&t, db, owner)
    }

    /// As [`Lmdb::fetch_accounts`], within a read transaction; `db` is
    /// [`Lmdb::fetch_db`], taken before `t` began (a handle opened after a
    /// transaction started is not valid in it).
    pub fn fetch_accounts_in(
        &self,
        t: &RoTxn<'_, WithoutTls>,
        db: Option<Db>,
        owner: Option<&Address>,
    ) -> Result<Vec<FetchAccount>, DbError> {
        let Some(db) = db else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut push = |k: &[u8], v: &[u8]| -> Result<(), DbError> {
            out.push(serde_json::from_slice(v).map_err(|e| {
                DbError::Corrupt(
                    self.dir().to_path_buf(),
                    format!("fetch account {}: {e}", String::from_utf8_lossy(k)),
                )
            })?);
            Ok(())
        };
        match owner {
            Some(o) => {
                for kv in db
                    .prefix_iter(t, &owner_prefix(o))
                    .map_err(|e| self.err(e))?
                {
                    let (k, v) = kv.map_err(|e| self.err(e))?;
                    push(k, v)?;
                }
            }
            None => {
                for kv in db.iter(t).map_err(|e| self.err(e))? {
                    let (k, v) = kv.map_err(|e| self.err(e))?;
                    push(k, v)?;
                }
            }
        }
        Ok(out)
    }

    /// One account.
    pub fn fetch_account(
        &self,
        owner: &Address,
        name: &str,
    ) -> Result<Option<FetchAccount>, DbError> {
        let Some(db) = self.fetch_db()? else {
            return Ok(None);
        };
        let t = self.read()?;
        self.get_json(&t, db, &account_key(owner, name))
    }

    /// Adds an account (`replace`: or replaces the one of that name). The
    /// owner must be a user; at most `max_per_user` accounts each (0: no limit).
    pub fn put_fetch_account(
        &self,
        a: &FetchAccount,
        replace: bool,
        max_per_user: usize,
    ) -> Result<(), DbError> {
        a.check().map_err(DbError::Invalid)?;
        let owner = Address::parse(&a.owner)?;
        let db = self.fetch_db_made()?;
        let mut t = self.write()?;
        if self.user_in(&t, &owner)?.is_none() {
            return Err(DbError::NotFound(format!("no user {owner}")));
        }
        let key = account_key(&owner, &a.name);
        let exists = db.get(&t, &key).map_err(|e| self.err(e))?.is_some();
        if exists && !replace {
            return Err(DbError::Exists(format!(
                "fetch account {:?} of {owner}",
                a.name
            )));
        }
        if !exists && !replace {
            let n = db
                .prefix_iter(&t, &owner_prefix(&owner))
                .map_err(|e| self.err(e))?
                .count();
            if max_per_user > 0 && n >= max_per_user {
                return Err(DbError::Limit(format!(
                    "{owner} has {n} fetch accounts, the most allowed (fetch.max_accounts_per_user)"
                )));
            }
            // The domain's limit, over all its users' accounts.
            let max = self
                .get_json::<Domain>(&t, self.domains, owner.domain().as_bytes())?
                .and_then(|d| d.limits.max_fetch_accounts);
            if let Some(m) = max {
                let n = db
                    .prefix_iter(&t, &domain_prefix(owner.domain()))
                    .map_err(|e| self.err(e))?
                    .count() as u64;
                if n >= m {
                    return Err(DbError::Limit(format!(
                        "domain {} may have at most {m} fetch accounts",
                        owner.domain()
                    )));
                }
            }
        }
        if !exists && replace {
            return Err(DbError::NotFound(format!(
                "no fetch account {:?} of {owner}",
                a.name
            )));
        }
        // Invariant: an account record is plain strings, numbers and flags.
        let v = serde_json::to_vec(a).expect("record serialises");
        db.put(&mut t, &key, &v).map_err(|e| self.err(e))?;
        t.commit().map_err(|e| self.err(e))
    }

    /// Deletes one account; returns it.
    pub fn del_fetch_account(&self, owner: &Address, name: &str) -> Result<FetchAccount, DbError> {
        let Some(db) = self.fetch_db()? else {
            return Err(DbError::NotFound(format!(
                "no fetch account {name:?} of {owner}"
            )));
        };
        let mut t = self.write()?;
        let key = account_key(owner, name);
        let a: FetchAccount = self
            .get_json(&t, db, &key)?
            .ok_or_else(|| DbError::NotFound(format!("no fetch account {name:?} of {owner}")))?;
        db.delete(&mut t, &key).map_err(|e| self.err(e))?;
        t.commit().map_err(|e| self.err(e))?;
        Ok(a)
    }

    /// Deletes every account of `owner` within `t` (the user is being
    /// deleted); `db` is [`Lmdb::fetch_db`], taken before `t` began.
    pub(crate) fn del_fetch_accounts_in(
        &self,
        t: &mut RwTxn<'_>,
        db: Option<Db>,
        owner: &Address,
    ) -> Result<usize, DbError> {
        let Some(db) = db else {
            return Ok(0);
        };
        let keys: Vec<Vec<u8>> = db
            .prefix_iter(t, &owner_prefix(owner))
            .map_err(|e| self.err(e))?
            .map(|kv| kv.map(|(k, _)| k.to_vec()))
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))?;
        for k in &keys {
            db.delete(t, k).map_err(|e| self.err(e))?;
        }
        Ok(keys.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::fetch::{Keep, Protocol, Tls};
    use crate::userdb::{Domain, User};

    fn account(owner: &str, name: &str) -> FetchAccount {
        FetchAccount {
            owner: owner.into(),
            name: name.into(),
            protocol: Protocol::Pop3,
            host: "pop.example.net".into(),
            port: 995,
            tls: Tls::Implicit,
            verify: true,
            username: "bob".into(),
            password: "k1:sealed".into(),
            folders: Vec::new(),
            target: String::new(),
            keep: Keep::Keep,
            interval: 0,
            enabled: true,
            created: 1,
        }
    }

    #[test]
    fn accounts_are_stored_per_owner_and_go_with_the_user() {
        let d = tempfile::tempdir().unwrap();
        let db = Lmdb::create(&d.path().join("db")).unwrap();
        assert!(
            db.fetch_accounts(None).unwrap().is_empty(),
            "no database yet"
        );
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
        for u in ["bob@example.test", "bobby@example.test"] {
            db.add_user(&User::new(&Address::parse(u).unwrap(), 1))
                .unwrap();
        }
        let bob = Address::parse("Bob@example.test").unwrap();
        db.put_fetch_account(&account("bob@example.test", "新浪"), false, 2)
            .unwrap();
        db.put_fetch_account(&account("bob@example.test", "gmail"), false, 2)
            .unwrap();
        db.put_fetch_account(&account("bobby@example.test", "gmail"), false, 2)
            .unwrap();
        assert!(matches!(
            db.put_fetch_account(&account("bob@example.test", "gmail"), false, 0),
            Err(DbError::Exists(_))
        ));
        assert!(matches!(
            db.put_fetch_account(&account("bob@example.test", "third"), false, 2),
            Err(DbError::Limit(_))
        ));
        assert!(matches!(
            db.put_fetch_account(&account("nobody@example.test", "x"), false, 0),
            Err(DbError::NotFound(_))
        ));
        let mine = db.fetch_accounts(Some(&bob)).unwrap();
        assert_eq!(mine.len(), 2, "bob's only, not bobby's: {mine:?}");
        let mut changed = account("bob@example.test", "gmail");
        changed.port = 110;
        db.put_fetch_account(&changed, true, 2).unwrap();
        assert_eq!(db.fetch_account(&bob, "gmail").unwrap().unwrap().port, 110);
        db.del_fetch_account(&bob, "gmail").unwrap();
        assert!(db.del_fetch_account(&bob, "gmail").is_err());
        db.del_user(&bob).unwrap();
        let all = db.fetch_accounts(None).unwrap();
        assert_eq!(all.len(), 1, "{all:?}");
        assert_eq!(all[0].owner, "bobby@example.test");
        db.del_domain("example.test", true).unwrap();
        assert!(db.fetch_accounts(None).unwrap().is_empty());
    }
}
