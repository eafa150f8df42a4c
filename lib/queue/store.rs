//! The queue index: an LMDB environment under `QUEUE/index/` holding one
//! [`Record`] per queued message, keyed by queue id. Only kmp-send opens it.
//! Each write transaction is durable when [`Batch::commit`] returns.

use std::path::Path;

use heed::types::{Bytes, Str};
use heed::{CommitOrAbort, Database, Env, RwTxn, WithoutTls};

use super::record::Record;
use super::{QueueError, QueueId};

/// The largest the index may grow: a million queued messages fit easily.
const MAP_SIZE: usize = 4 << 30;

fn db_err(e: heed::Error) -> QueueError {
    QueueError::Index(e.to_string())
}

/// A record as read back: its key, and the record or why it is unreadable.
pub type Stored = (String, Result<Record, QueueError>);

/// The open queue index.
pub struct Store {
    env: &'static Env<WithoutTls>,
    msgs: Database<'static, Str, Bytes>,
}

/// One write transaction over the index.
pub struct Batch<'s> {
    store: &'s Store,
    txn: RwTxn<'static>,
}

impl Store {
    /// Opens (creating if needed) the index in `dir`. A process opens the
    /// index once and keeps it until it exits (LMDB allows one open per
    /// process; the environment lives as long as the process).
    pub fn open(dir: &Path) -> Result<Store, QueueError> {
        std::fs::create_dir_all(dir).map_err(|e| QueueError::io("create", dir, e))?;
        let env = crate::sys::lmdb::open_env(dir, MAP_SIZE, 4).map_err(db_err)?;
        let env: &'static Env<WithoutTls> = Box::leak(Box::new(env));
        let wtxn = env.write_txn().map_err(db_err)?;
        let msgs = env
            .create_databases_and_commit(wtxn, |wdo, wtxn| {
                wdo.create_database::<Str, Bytes>(wtxn, Some("messages"))
                    .map(CommitOrAbort::<_, ()>::Commit)
            })
            .map_err(db_err)?
            .unwrap_commit();
        Ok(Store { env, msgs })
    }

    /// Every record, in queue id (arrival) order. Unreadable records are
    /// returned as errors beside their id.
    pub fn all(&self) -> Result<Vec<Stored>, QueueError> {
        let rtxn = self.env.read_txn().map_err(db_err)?;
        let mut out = Vec::new();
        for item in self.msgs.iter(&rtxn).map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            out.push((k.to_string(), decode(k, v)));
        }
        Ok(out)
    }

    /// One record.
    pub fn get(&self, id: &QueueId) -> Result<Option<Record>, QueueError> {
        let rtxn = self.env.read_txn().map_err(db_err)?;
        match self.msgs.get(&rtxn, id.as_str()).map_err(db_err)? {
            Some(v) => decode(id.as_str(), v).map(Some),
            None => Ok(None),
        }
    }

    /// Starts a write transaction.
    pub fn batch(&self) -> Result<Batch<'_>, QueueError> {
        Ok(Batch {
            store: self,
            txn: self.env.write_txn().map_err(db_err)?,
        })
    }
}

impl Batch<'_> {
    /// Writes (or replaces) a record.
    pub fn put(&mut self, id: &QueueId, rec: &Record) -> Result<(), QueueError> {
        // Invariant: a Record is strings, numbers and flags; it always serialises.
        let body = serde_json::to_vec(rec).expect("record serialises");
        self.store
            .msgs
            .put(&mut self.txn, id.as_str(), &body)
            .map_err(db_err)
    }

    /// Deletes a record by its key (which may not be a valid id if the index was damaged).
    pub fn delete(&mut self, key: &str) -> Result<(), QueueError> {
        self.store
            .msgs
            .delete(&mut self.txn, key)
            .map(|_| ())
            .map_err(db_err)
    }

    /// Makes every change durable.
    pub fn commit(self) -> Result<(), QueueError> {
        self.txn.commit().map_err(db_err)
    }
}

fn decode(key: &str, v: &[u8]) -> Result<Record, QueueError> {
    serde_json::from_slice(v).map_err(|e| QueueError::Corrupt(format!("index record {key}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{Envelope, Recipient};

    #[test]
    fn records_are_written_read_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let id = QueueId::now();
        let env = Envelope::new("a@x.test", vec![Recipient::new("b@y.test")]);
        let s = Store::open(dir.path()).unwrap();
        let mut b = s.batch().unwrap();
        b.put(&id, &Record::new(&env, 5000, 10)).unwrap();
        b.commit().unwrap();
        let r = s.get(&id).unwrap().unwrap();
        assert_eq!(r.rcpts[0].address, "b@y.test");
        assert_eq!(s.all().unwrap().len(), 1);
        let mut b = s.batch().unwrap();
        b.delete(id.as_str()).unwrap();
        b.commit().unwrap();
        assert!(s.get(&id).unwrap().is_none());
    }
}
