//! Concurrency limits and the connection cache.
//!
//! Every delivery to a destination holds a slot of the total limit and one of
//! its destination's limit for as long as it runs (Postfix's
//! default_process_limit and smtp_destination_concurrency_limit). A
//! connection that ends a delivery in a good state is kept idle for
//! `remote.connection_cache_time`, keyed by destination, address and TLS
//! level, so the next message to the same server skips connect, greeting,
//! EHLO and the TLS handshake (as Postfix's scache does).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::client::Conn;
use super::settings::TlsLevel;

/// What a cached connection is good for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    pub dest: String,
    pub addr: SocketAddr,
    pub level: TlsLevel,
}

/// The limits and the idle connections.
pub struct Pool {
    total: Arc<Semaphore>,
    per_dest_limit: usize,
    per_dest: Mutex<HashMap<String, Arc<Semaphore>>>,
    idle: Mutex<HashMap<PoolKey, Vec<(Instant, Conn)>>>,
    cache_time: Duration,
    max_idle: usize,
}

/// The slots held by one delivery.
pub struct Slots {
    _total: OwnedSemaphorePermit,
    _dest: OwnedSemaphorePermit,
}

impl Pool {
    pub fn new(max_total: usize, per_dest: usize, cache_time: Duration) -> Pool {
        Pool {
            total: Arc::new(Semaphore::new(max_total)),
            per_dest_limit: per_dest,
            per_dest: Mutex::new(HashMap::new()),
            idle: Mutex::new(HashMap::new()),
            cache_time,
            max_idle: max_total,
        }
    }

    /// Waits for a slot for `dest` (its own first, then one of the total, so
    /// a busy destination does not hold total slots while it waits).
    pub async fn slots(&self, dest: &str) -> Slots {
        let sem = {
            let mut m = lock(&self.per_dest);
            m.entry(dest.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_dest_limit)))
                .clone()
        };
        // Invariant: these semaphores are never closed.
        let d = sem.acquire_owned().await.expect("semaphore open");
        let t = self
            .total
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore open");
        Slots {
            _total: t,
            _dest: d,
        }
    }

    /// An idle connection for `key` that is still within its cache time.
    pub fn take(&self, key: &PoolKey) -> Option<Conn> {
        let mut idle = lock(&self.idle);
        let list = idle.get_mut(key)?;
        while let Some((since, c)) = list.pop() {
            if since.elapsed() < self.cache_time {
                return Some(c);
            }
            tokio::spawn(c.quit());
        }
        None
    }

    /// Keeps `conn` for the next delivery, or says goodbye when caching is
    /// off or too many are idle already.
    pub fn put(&self, key: PoolKey, conn: Conn) {
        if self.cache_time.is_zero() {
            tokio::spawn(conn.quit());
            return;
        }
        let mut idle = lock(&self.idle);
        let count: usize = idle.values().map(Vec::len).sum();
        if count >= self.max_idle {
            tokio::spawn(conn.quit());
            return;
        }
        idle.entry(key).or_default().push((Instant::now(), conn));
    }

    /// Closes connections idle past the cache time; run every second or so.
    pub fn expire(&self) {
        let mut idle = lock(&self.idle);
        for list in idle.values_mut() {
            let mut keep = Vec::new();
            for (since, c) in list.drain(..) {
                if since.elapsed() < self.cache_time {
                    keep.push((since, c));
                } else {
                    tokio::spawn(c.quit());
                }
            }
            *list = keep;
        }
        idle.retain(|_, l| !l.is_empty());
        let mut per = lock(&self.per_dest);
        let limit = self.per_dest_limit;
        per.retain(|_, s| s.available_permits() < limit);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; go on with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}
