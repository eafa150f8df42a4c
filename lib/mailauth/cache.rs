//! A bounded cache of DNS answers for mail-auth's look-ups.
//!
//! mail-auth asks its caller to keep parsed records (SPF, DKIM keys, DMARC
//! policies) and address answers; each entry carries its TTL as an instant.
//! A busy MX sees the same few thousand sender domains again and again, so a
//! cache saves most queries; it must not grow without end, since the names
//! are chosen by whoever connects. When full, expired entries go first, then
//! the half that expires soonest.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

use mail_auth::ResolverCache;

/// At most `cap` entries, each until its own instant.
pub struct Bounded<K, V> {
    cap: usize,
    map: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Hash + Eq, V: Clone> Bounded<K, V> {
    /// A cache of at most `cap` entries (0: nothing is kept).
    pub fn new(cap: usize) -> Self {
        Bounded {
            cap,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (V, Instant)>> {
        // A panic while the lock was held leaves a map that is still whole
        // (every change is one call on it), so the poison is ignored.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<K: Hash + Eq, V: Clone> ResolverCache<K, V> for Bounded<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut map = self.lock();
        match map.get(name) {
            Some((v, until)) if *until > Instant::now() => Some(v.clone()),
            Some(_) => {
                map.remove(name);
                None
            }
            None => None,
        }
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().remove(name).map(|(v, _)| v)
    }

    fn insert(&self, key: K, value: V, valid_until: Instant) {
        if self.cap == 0 {
            return;
        }
        let mut map = self.lock();
        if map.len() >= self.cap && !map.contains_key(&key) {
            let now = Instant::now();
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= self.cap {
                let mut times: Vec<Instant> = map.values().map(|(_, t)| *t).collect();
                let mid = times.len() / 2;
                let (_, cut, _) = times.select_nth_unstable(mid);
                let cut = *cut;
                map.retain(|_, (_, until)| *until > cut);
            }
        }
        map.insert(key, (value, valid_until));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_cache_stays_within_its_bound_and_forgets_expired_entries() {
        let c: Bounded<Box<str>, u32> = Bounded::new(8);
        let later = Instant::now() + Duration::from_secs(60);
        for i in 0..100u32 {
            c.insert(
                format!("d{i}.test").into(),
                i,
                later + Duration::from_secs(i.into()),
            );
            assert!(c.len() <= 8, "{}", c.len());
        }
        // The newest entry (longest to live) is kept.
        assert_eq!(c.get("d99.test"), Some(99));
        c.insert("old.test".into(), 1, Instant::now());
        assert_eq!(c.get("old.test"), None);
        let none: Bounded<Box<str>, u32> = Bounded::new(0);
        none.insert("a.test".into(), 1, later);
        assert!(none.is_empty());
    }
}
