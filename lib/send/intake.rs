//! Taking mail in from `incoming/new/` into `mess/` and the index, and
//! finishing on start whatever a crash left half done (rows of the state
//! table in `queue/mod.rs`).

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{Event, Queue};
use crate::queue::incoming::{read_committed, strip_envelope};
use crate::queue::record::Record;
use crate::queue::{QueueError, QueueId};
use crate::{error, info, warn};

/// Messages taken in per turn of the main loop; more wait for the next turn.
const MAX_INTAKE: usize = 2000;

/// Files in `incoming/tmp/` and `incoming/env/` older than this belong to a
/// writer that died.
const STALE: Duration = Duration::from_secs(86400);

impl Queue {
    /// Reads the index and puts every state a crash can leave right.
    pub(super) fn recover(&mut self) -> Result<(), QueueError> {
        let now = self.clock.now();
        let mess = self.paths.queue.join("mess");
        let mut drop_keys = Vec::new();
        for (key, rec) in self.store.all()? {
            let (id, rec) = match (key.parse::<QueueId>(), rec) {
                (Ok(id), Ok(rec)) => (id, rec),
                (_, Err(e)) => {
                    error!("{key}: unreadable queue record dropped: {e}");
                    drop_keys.push(key);
                    continue;
                }
                (Err(_), _) => {
                    error!("{key}: queue record with a bad id dropped");
                    drop_keys.push(key);
                    continue;
                }
            };
            let in_mess = mess.join(id.as_str()).exists();
            let in_new = self.paths.incoming().join("new").join(id.as_str()).exists();
            if rec.is_done() {
                // Row 7/8: finished; the file goes first, then the record.
                let _ = fs::remove_file(mess.join(id.as_str()));
                info!("{id}: removed");
                drop_keys.push(key);
            } else if !in_mess && !in_new {
                error!("{id}: message file missing from the queue; record dropped");
                drop_keys.push(key);
            } else {
                let mut rec = rec;
                if !rec.held {
                    rec.next_attempt = rec.next_attempt.min(now);
                }
                let size = rec.size;
                self.recs.insert(id.clone(), rec);
                if in_new {
                    // Row 3: finish the move (link, sync, unlink), or
                    // only the unlink when the link was made.
                    self.taken.push(id);
                } else {
                    // A crash may have undone the cut of the trailer.
                    self.strip(&id, &mess.join(id.as_str()), size);
                }
            }
        }
        if !drop_keys.is_empty() {
            let mut b = self.store.batch()?;
            for k in &drop_keys {
                b.delete(k)?;
            }
            b.commit()?;
        }
        self.move_taken();
        // A file in mess/ without a record cannot be delivered (no envelope).
        if let Ok(rd) = fs::read_dir(&mess) {
            for ent in rd.flatten() {
                let name = ent.file_name().to_string_lossy().to_string();
                let known = name
                    .parse::<QueueId>()
                    .map(|id| self.recs.contains_key(&id))
                    .unwrap_or(false);
                if !known {
                    let to = self.paths.queue.join("corrupt").join(&name);
                    error!(
                        "{name}: queue file without a record moved to {}",
                        to.display()
                    );
                    let _ = fs::rename(ent.path(), to);
                }
            }
        }
        let ids: Vec<QueueId> = self.recs.keys().cloned().collect();
        for id in &ids {
            self.schedule(id);
        }
        self.clean_incoming();
        info!("queue opened: {} messages", self.recs.len());
        Ok(())
    }

    /// Takes in what is in `incoming/new/` and commits.
    pub(super) fn intake_and_commit(&mut self) {
        let new_dir = self.paths.incoming().join("new");
        let mut names: Vec<String> = match fs::read_dir(&new_dir) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect(),
            Err(e) => {
                warn!("cannot read {}: {e}", new_dir.display());
                Vec::new()
            }
        };
        names.sort();
        let more = names.len() > MAX_INTAKE;
        names.truncate(MAX_INTAKE);
        let now_ms = self.clock.now_ms();
        for name in names {
            let Ok(id) = name.parse::<QueueId>() else {
                self.set_aside(
                    &new_dir.join(&name),
                    &name,
                    "a file name that is not a queue id",
                );
                continue;
            };
            if self.recs.contains_key(&id) {
                self.taken.push(id); // indexed before a crash: finish the move
                continue;
            }
            let path = new_dir.join(id.as_str());
            let (dropped, size) = match read_committed(&self.paths.incoming(), &id) {
                Ok(d) => d,
                Err(QueueError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    continue; // gone meanwhile: not ours to take
                }
                Err(e) => {
                    self.set_aside(&path, &name, &format!("no readable envelope ({e})"));
                    continue;
                }
            };
            if dropped.envelope.recipients.is_empty() {
                self.set_aside(&path, &name, "no recipients");
                continue;
            }
            let mut rec = Record::new(&dropped.envelope, dropped.arrived_ms, size);
            rec.queued_ms = now_ms.max(dropped.arrived_ms);
            rec.next_attempt = now_ms / 1000;
            info!(
                "{id}: from=<{}>, size={size}, nrcpt={} (queue active)",
                rec.sender,
                rec.rcpts.len()
            );
            self.recs.insert(id.clone(), rec);
            self.dirty.insert(id.clone());
            self.fresh.insert(id.clone());
            self.taken.push(id.clone());
            crate::stats::count(crate::stats::Counter::Received);
            self.schedule(&id);
        }
        self.commit();
        if more {
            let _ = self.tx.send(Event::Kick);
        }
    }

    /// Moves messages whose records are committed from `new/` into `mess/`:
    /// each is linked into `mess/`, `mess/` is synced once for all, and only
    /// then are the `new/` names removed. A rename would be one call less,
    /// but on a file system without a journal the removal from `new/` may
    /// reach the disk before the entry in `mess/`, and a power loss between
    /// them would leave an acknowledged message in neither directory.
    pub(super) fn move_taken(&mut self) {
        if self.taken.is_empty() {
            return;
        }
        let inc = self.paths.incoming();
        let mess = self.paths.queue.join("mess");
        let mut linked = Vec::new();
        for id in std::mem::take(&mut self.taken) {
            let from = inc.join("new").join(id.as_str());
            // The record holds the envelope now: the file becomes the message
            // alone, before any agent sees it (see `strip`).
            if let Some(size) = self.recs.get(&id).map(|r| r.size) {
                self.strip(&id, &from, size);
            }
            let to = mess.join(id.as_str());
            match fs::hard_link(&from, &to) {
                Ok(()) => linked.push(from),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // Linked in an earlier turn, or before a crash: only the
                    // name in new/ is left to remove, if it is the same file.
                    if same_file(&from, &to) {
                        linked.push(from);
                    } else {
                        error!(
                            "{id}: a different file is already in mess/; {} left in new/",
                            from.display()
                        );
                    }
                }
                Err(e) => {
                    // It stays in new/ and is delivered from there; the next
                    // intake tries the move again.
                    warn!("{id}: cannot move {} into mess/: {e}", from.display());
                }
            }
        }
        if let Err(e) = crate::sys::fsync_dir(&mess) {
            // The names in new/ stay until a sync of mess/ succeeds.
            warn!("cannot sync {}: {e}", mess.display());
            return;
        }
        // No unlink of `tmp/QID` or `env/QID` per message: a commit renames
        // its file out of `tmp/`, and `env/` is written by no version since
        // the trailer; each unlink, even of a missing name, took the
        // directory's lock against the writers creating files there. A
        // second name a crash left behind (the link fallback of
        // `sys::rename`, an older writer's envelope) is removed by
        // `clean_incoming` at start and at every slow scan.
        for from in linked {
            let _ = fs::remove_file(from);
        }
    }

    /// Cuts the envelope trailer off a queued message file (once its record
    /// is committed), so that the agents get the message alone. A file that
    /// is neither the message alone nor the message and its trailer is set
    /// aside rather than delivered.
    pub(super) fn strip(&mut self, id: &QueueId, path: &Path, size: u64) {
        match strip_envelope(path, size) {
            Ok(()) => {}
            Err(QueueError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            }
            Err(e) => {
                // Delivering it could send the envelope (Bcc recipients)
                // along: hold it for the administrator instead.
                error!("{id}: cannot cut the envelope off the queue file, message held: {e}");
                if let Some(rec) = self.recs.get_mut(id) {
                    rec.held = true;
                    rec.reason = format!("queue file damaged: {e}");
                    self.dirty.insert(id.clone());
                }
            }
        }
    }

    /// Removes what dead writers left in `incoming/tmp/` and `incoming/env/`.
    pub(super) fn clean_incoming(&mut self) {
        let inc = self.paths.incoming();
        for sub in ["tmp", "env"] {
            let Ok(rd) = fs::read_dir(inc.join(sub)) else {
                continue;
            };
            for ent in rd.flatten() {
                let name = ent.file_name().to_string_lossy().to_string();
                let queued = name
                    .parse::<QueueId>()
                    .map(|id| self.recs.contains_key(&id))
                    .unwrap_or(false);
                let committed = inc.join("new").join(&name).exists();
                let stale = is_older_than(&ent.path(), STALE);
                let remove = match sub {
                    "tmp" => queued || (stale && !committed),
                    _ => !committed && (queued || stale),
                };
                if remove {
                    let _ = fs::remove_file(ent.path());
                }
            }
        }
    }

    fn set_aside(&self, path: &Path, name: &str, why: &str) {
        let to = self.paths.queue.join("corrupt").join(name);
        error!("{name}: {why}: moved to {}", to.display());
        let _ = fs::rename(path, &to);
        let _ = fs::rename(
            self.paths.incoming().join("env").join(name),
            to.with_extension("env"),
        );
    }
}

/// Whether two paths name the same file.
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

fn is_older_than(p: &Path, age: Duration) -> bool {
    fs::metadata(p)
        .and_then(|m| m.modified())
        .map(|t| SystemTime::now().duration_since(t).unwrap_or_default() > age)
        .unwrap_or(false)
}
