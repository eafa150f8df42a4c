//! kmp-send, the queue manager: takes new mail in from `incoming/`, keeps
//! the queue index, hands delivery jobs to kmp-local and kmp-remote, retries
//! temporary failures on a growing schedule and bounces what cannot be
//! delivered. The states a message goes through, and what a restart does in
//! each, are the table at the top of `queue/mod.rs`.
//!
//! One task (the main loop here) owns the index and the in-memory schedule;
//! every change to a record happens in it, and each turn of the loop ends
//! with one index transaction, so many results share one fsync. Attempts run
//! as tasks of their own (`attempt.rs`) and report back over a channel.

pub mod attempt;
pub mod bounce;
pub mod control;
mod intake;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::config::Config;
use crate::ipc::control::{Reply as CtlReply, Request as CtlRequest};
use crate::ipc::job::Outcome;
use crate::paths::Paths;
use crate::queue::record::{Rcpt, RcptStatus, Record};
use crate::queue::store::Store;
use crate::queue::{Envelope, Incoming, QueueError, QueueId, Recipient};
use crate::{info, warn};

use attempt::{Agent, Outcome1, Router, Shared};

/// The origin recorded on a notice to the postmaster about an undeliverable
/// bounce: if that notice fails too, it is dropped (logged), never bounced.
pub const DOUBLE_BOUNCE_ORIGIN: &str = "kmp-send double-bounce";

/// The origin recorded on bounces and other reports kmp-send makes.
pub const BOUNCE_ORIGIN: &str = "kmp-send bounce";

/// Jobs in flight on one connection to kmp-local (which delivers that many
/// of a connection's jobs at once and answers them in order).
const LOCAL_PIPELINE: usize = 8;

/// A message may collect at most this many recipients through expansion.
const MAX_RECIPIENTS: usize = 100_000;

/// The settings kmp-send reads from `[send]` and `[system]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub lifetime: u64,
    pub min_backoff: u64,
    pub max_backoff: u64,
    pub delay_warning: u64,
    pub local_concurrency: usize,
    pub remote_concurrency: usize,
    pub max_active: usize,
    pub scan_interval: Duration,
    pub route_cache: Duration,
    pub hostname: String,
    pub postmaster: String,
    /// SRS for forwarded mail (`auth.srs_*`).
    pub srs: Option<crate::mailauth::srs::Srs>,
}

impl Settings {
    pub fn from_config(cfg: &Config) -> Settings {
        let hostname = cfg.str("system.hostname").to_string();
        let pm = cfg.str("system.postmaster");
        let postmaster = if pm.contains('@') {
            pm.to_string()
        } else {
            let dom = match cfg.str("system.default_domain") {
                "" => hostname.as_str(),
                d => d,
            };
            format!("{pm}@{dom}")
        };
        Settings {
            lifetime: cfg.duration("send.max_queue_lifetime").as_secs(),
            min_backoff: cfg.duration("send.min_backoff").as_secs().max(1),
            max_backoff: cfg.duration("send.max_backoff").as_secs().max(1),
            delay_warning: cfg.duration("send.delay_warning_time").as_secs(),
            local_concurrency: cfg.usize("send.local_concurrency"),
            remote_concurrency: cfg.usize("send.remote_concurrency"),
            max_active: cfg.usize("send.max_active"),
            scan_interval: cfg.duration("send.scan_interval"),
            route_cache: cfg.duration("send.route_cache_time"),
            hostname,
            postmaster,
            srs: crate::mailauth::srs::from_config(cfg).unwrap_or_else(|e| {
                crate::warn!("SRS off: {e}");
                None
            }),
        }
    }

    /// The wait after the `attempts`-th failed attempt.
    pub fn backoff(&self, attempts: u32) -> u64 {
        let shift = attempts.saturating_sub(1).min(30);
        self.min_backoff
            .saturating_mul(1u64 << shift)
            .min(self.max_backoff)
    }
}

/// What wakes the main loop.
pub enum Event {
    /// A datagram on the kick socket: new mail in `incoming/new/`.
    Kick,
    /// An attempt finished.
    Done(Outcome1),
    /// A kmpctl request.
    Control(CtlRequest, oneshot::Sender<CtlReply>),
    /// SIGHUP: read the configuration again.
    Reload(Box<Settings>),
    /// SIGTERM: stop taking work, let attempts finish briefly, exit.
    Stop,
}

/// The queue manager's state, owned by the main loop.
pub struct Queue {
    pub paths: Paths,
    pub st: Settings,
    clock: Clock,
    store: Store,
    recs: HashMap<QueueId, Record>,
    due: BTreeSet<(u64, QueueId)>,
    active: HashSet<QueueId>,
    dirty: HashSet<QueueId>,
    /// Messages taken in this turn: moved from `new/` to `mess/` after the commit.
    taken: Vec<QueueId>,
    /// Messages taken in from `incoming/` by this process and not yet tried:
    /// no job for them can have been sent by anyone (see `Job::fresh`).
    fresh: HashSet<QueueId>,
    /// Finished messages whose files are unlinked: their records go in the
    /// next transaction (one commit per turn, not two).
    unlinked: Vec<QueueId>,
    tx: mpsc::UnboundedSender<Event>,
    shared: Arc<Shared>,
}

impl Queue {
    /// Opens the index and finishes whatever a crash left half done.
    pub fn open(
        paths: Paths,
        st: Settings,
        clock: Clock,
        tx: mpsc::UnboundedSender<Event>,
    ) -> Result<Queue, QueueError> {
        for d in ["mess", "corrupt"] {
            // Private to kmp-send: message files are writable by the drop
            // group (so that kmp-send can cut their envelope off), and only
            // incoming/ is the drop group's to reach.
            use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
            let p = paths.queue.join(d);
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&p)
                .map_err(|e| QueueError::io("create", &p, e))?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| QueueError::io("chmod", &p, e))?;
        }
        for d in ["tmp", "env", "new"] {
            let p = paths.incoming().join(d);
            std::fs::create_dir_all(&p).map_err(|e| QueueError::io("create", &p, e))?;
        }
        let store = Store::open(&paths.queue.join("index"))?;
        let shared = Arc::new(Shared {
            local: Agent::new(
                "kmp-local",
                paths.local_socket(),
                st.local_concurrency,
                LOCAL_PIPELINE,
            ),
            // kmp-remote works a connection one job at a time.
            remote: Agent::new(
                "kmp-remote",
                paths.remote_socket(),
                st.remote_concurrency,
                1,
            ),
            router: Router::new(paths.authd_socket(), st.route_cache),
            clock: clock.clone(),
            srs: st.srs.clone(),
        });
        let mut q = Queue {
            paths,
            st,
            clock,
            store,
            recs: HashMap::new(),
            due: BTreeSet::new(),
            active: HashSet::new(),
            dirty: HashSet::new(),
            taken: Vec::new(),
            unlinked: Vec::new(),
            fresh: HashSet::new(),
            tx,
            shared,
        };
        q.recover()?;
        Ok(q)
    }

    /// Runs the main loop until [`Event::Stop`].
    pub async fn serve(mut self, mut rx: mpsc::UnboundedReceiver<Event>) {
        let mut last_scan = std::time::Instant::now();
        self.intake_and_commit();
        self.dispatch();
        loop {
            let wait = self.next_wake().min(self.st.scan_interval);
            let first = tokio::time::timeout(wait, rx.recv()).await;
            let mut events = Vec::new();
            match first {
                Ok(Some(ev)) => events.push(ev),
                Ok(None) => return,
                Err(_) => {}
            }
            while let Ok(ev) = rx.try_recv() {
                events.push(ev);
            }
            let mut kicked = false;
            for ev in events {
                match ev {
                    Event::Kick => kicked = true,
                    Event::Done(o) => self.finish(o),
                    Event::Control(req, reply) => {
                        let r = self.control(req);
                        let _ = reply.send(r);
                    }
                    Event::Reload(st) => {
                        info!("reloaded the configuration");
                        self.st = *st;
                    }
                    Event::Stop => {
                        self.commit();
                        self.commit(); // the records of messages finished just now
                        info!(
                            "stopping: {} attempts in flight are retried later",
                            self.active.len()
                        );
                        return;
                    }
                }
            }
            if kicked || last_scan.elapsed() >= self.st.scan_interval {
                if !kicked {
                    last_scan = std::time::Instant::now();
                    self.clean_incoming();
                }
                self.intake_and_commit();
            } else {
                self.commit();
            }
            self.dispatch();
        }
    }

    fn next_wake(&self) -> Duration {
        match self.due.first() {
            Some((t, _)) => {
                let now = self.clock.now_ms();
                Duration::from_millis((t * 1000).saturating_sub(now))
            }
            None => self.st.scan_interval,
        }
    }

    /// Commits every changed record and deletes the records of messages
    /// unlinked last turn, in one transaction; then moves messages taken in
    /// this turn into `mess/` and unlinks the files of finished messages,
    /// whose records go in the next turn's transaction (the file first, then
    /// the record: see the state table).
    fn commit(&mut self) {
        if self.dirty.is_empty() && self.taken.is_empty() && self.unlinked.is_empty() {
            return;
        }
        let mut finished = Vec::new();
        let result = (|| -> Result<(), QueueError> {
            let mut b = self.store.batch()?;
            for id in &self.dirty {
                if let Some(rec) = self.recs.get(id) {
                    b.put(id, rec)?;
                    if rec.is_done() && !self.active.contains(id) {
                        finished.push(id.clone());
                    }
                }
            }
            for id in &self.unlinked {
                b.delete(id.as_str())?;
            }
            b.commit()
        })();
        if let Err(e) = result {
            // The records stay dirty and are written next turn; nothing was
            // reported anywhere as final that is not already durable elsewhere.
            warn!("cannot write the queue index: {e}");
            return;
        }
        self.dirty.clear();
        self.unlinked.clear();
        self.move_taken();
        for id in finished {
            let p = self.paths.queue.join("mess").join(id.as_str());
            if let Err(e) = std::fs::remove_file(&p) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    warn!("{id}: cannot remove {}: {e}", p.display());
                }
            }
            // A restart before the next commit finds the record with every
            // recipient final and deletes it then.
            self.recs.remove(&id);
            info!("{id}: removed");
            self.unlinked.push(id);
        }
    }

    /// Starts attempts of every due message, up to `send.max_active`.
    fn dispatch(&mut self) {
        // Messages taken in wait for a commit that failed: nothing goes out
        // before its record is durable, or a restart would take the message
        // in again as new (`fresh`) after a delivery.
        if !self.taken.is_empty() {
            return;
        }
        let now = self.clock.now();
        while self.active.len() < self.st.max_active {
            let Some((t, id)) = self.due.first().cloned() else {
                break;
            };
            if t > now {
                break;
            }
            self.due.remove(&(t, id.clone()));
            let Some(rec) = self.recs.get(&id) else {
                continue;
            };
            if rec.next_attempt != t || rec.held || rec.is_done() || self.active.contains(&id) {
                continue;
            }
            let input = attempt::Input {
                id: id.clone(),
                path: attempt::message_path(&self.paths.queue, &id),
                rec: rec.clone(),
                fresh: self.fresh.remove(&id),
            };
            self.active.insert(id);
            let (shared, tx) = (self.shared.clone(), self.tx.clone());
            tokio::spawn(async move {
                let out = attempt::run(shared, input).await;
                let _ = tx.send(Event::Done(out));
            });
        }
    }

    /// Puts a message on the schedule at its `next_attempt`.
    fn schedule(&mut self, id: &QueueId) {
        if let Some(rec) = self.recs.get(id) {
            if !rec.held && !rec.is_done() {
                self.due.insert((rec.next_attempt, id.clone()));
            }
        }
    }

    /// Applies an attempt's results to its record: the one place that
    /// decides what a result means.
    fn finish(&mut self, out: Outcome1) {
        let id = out.id.clone();
        self.active.remove(&id);
        let now_ms = self.clock.now_ms();
        let now = now_ms / 1000;
        let Some(mut rec) = self.recs.remove(&id) else {
            return;
        };
        let mut failed = Vec::new();
        let mut succeeded = Vec::new();
        let mut deferred_text = None;
        let mut tried_any = false;
        for r in &out.results {
            let Some(rc) = rec.rcpts.get_mut(r.index) else {
                continue;
            };
            if rc.status != RcptStatus::Pending {
                continue; // deleted meanwhile
            }
            if r.route.is_some() {
                rc.route = r.route;
            }
            let res = &r.result;
            rc.dsn = res.dsn.clone();
            rc.text = res.text.clone();
            rc.relay = res.relay.clone();
            rc.remote_mta = res.remote_mta.clone();
            rc.diagnostic = res.diagnostic.clone();
            rc.last_attempt = now;
            tried_any = true;
            let status = match res.outcome {
                Outcome::Sent => {
                    rc.status = RcptStatus::Sent;
                    "sent"
                }
                Outcome::Relayed => {
                    rc.status = RcptStatus::Relayed;
                    "sent"
                }
                Outcome::Bounced => {
                    rc.status = RcptStatus::Bounced;
                    failed.push(r.index);
                    "bounced"
                }
                Outcome::Deferred => {
                    deferred_text = Some(res.text.clone());
                    "deferred"
                }
            };
            if matches!(res.outcome, Outcome::Sent | Outcome::Relayed)
                && rc.notify.success
                && rc.notify_given
            {
                succeeded.push(r.index);
            }
            if !r.logged_by_agent {
                let orig = match rc.parent {
                    Some(p) => format!(
                        ", orig_to=<{}>",
                        rec.rcpts
                            .get(p as usize)
                            .map(|p| p.address.as_str())
                            .unwrap_or("")
                    ),
                    None => String::new(),
                };
                let rc = &rec.rcpts[r.index];
                let a = rec.queued_ms.saturating_sub(rec.arrived_ms);
                let b = out.started_ms.saturating_sub(rec.queued_ms);
                let c = r.timing.connect.as_millis() as u64;
                let d = (r.timing.total.as_millis() as u64).saturating_sub(c);
                info!(
                    "{id}: to=<{}>{orig}, relay={}, delay={}, delays={}/{}/{}/{}, dsn={}, status={status} ({})",
                    rc.address,
                    rc.relay,
                    secs(now_ms.saturating_sub(rec.arrived_ms)),
                    secs(a),
                    secs(b),
                    secs(c),
                    secs(d),
                    rc.dsn,
                    rc.text
                );
            }
            for new in &res.expanded {
                self.expand(&id, &mut rec, r.index, new);
            }
        }
        if tried_any {
            rec.attempts += 1;
        }
        // Expired: every pending recipient already tried fails now, with its
        // last temporary reason (RFC 3464 allows a 4.x.x Status with Action: failed).
        if now.saturating_sub(rec.arrived()) >= self.st.lifetime {
            let expired: Vec<usize> = rec
                .pending()
                .filter(|(_, r)| r.last_attempt > 0)
                .map(|(i, _)| i)
                .collect();
            if !expired.is_empty() {
                for &i in &expired {
                    crate::stats::count(crate::stats::Counter::Expired);
                    let rc = &mut rec.rcpts[i];
                    rc.status = RcptStatus::Bounced;
                    if rc.text.is_empty() {
                        rc.text = "message expired".into();
                    }
                }
                failed.extend(expired);
                info!(
                    "{id}: from=<{}>, status=expired, returned to sender",
                    rec.sender
                );
            }
        }
        self.report_failures(&id, &mut rec, &failed, now);
        self.report(&id, &mut rec, &succeeded, bounce::Kind::Success, now);
        if !rec.warned
            && self.st.delay_warning > 0
            && now.saturating_sub(rec.arrived()) >= self.st.delay_warning
            && !rec.is_done()
        {
            let late: Vec<usize> = rec
                .pending()
                .filter(|(_, r)| r.notify.delay && r.last_attempt > 0)
                .map(|(i, _)| i)
                .collect();
            rec.warned = true;
            self.report(&id, &mut rec, &late, bounce::Kind::Delayed, now);
        }
        if !rec.is_done() {
            let untried = rec.pending().any(|(_, r)| r.last_attempt == 0);
            rec.next_attempt = if untried || !tried_any {
                now + u64::from(!tried_any)
            } else {
                now + self.st.backoff(rec.attempts)
            };
            if let Some(t) = deferred_text {
                rec.reason = t;
            }
        }
        self.recs.insert(id.clone(), rec);
        self.dirty.insert(id.clone());
        self.schedule(&id);
    }

    /// Adds `new` as a recipient expanded from recipient `parent` (an alias
    /// target or a forward), unless the message already has it (which also
    /// ends forwarding loops).
    fn expand(&mut self, id: &QueueId, rec: &mut Record, parent: usize, new: &str) {
        let new = new.trim();
        if new.is_empty()
            || rec.rcpts.len() >= MAX_RECIPIENTS
            || rec
                .rcpts
                .iter()
                .any(|r| r.address.eq_ignore_ascii_case(new))
        {
            return;
        }
        let p = &rec.rcpts[parent];
        let orcpt = p
            .orcpt
            .clone()
            .or_else(|| Some(format!("rfc822;{}", p.address)));
        let mut r = Rcpt::new(new.to_string(), p.notify, orcpt, p.notify_given);
        r.parent = Some(parent as u32);
        info!("{id}: to=<{new}>, orig_to=<{}>, status=expanded", p.address);
        rec.rcpts.push(r);
    }

    /// Sends the bounce for the recipients in `failed`, to the sender; a
    /// message from the null sender gets a notice to the postmaster instead,
    /// and a failed notice to the postmaster is only logged.
    fn report_failures(&mut self, id: &QueueId, rec: &mut Record, failed: &[usize], now: u64) {
        let owed: Vec<usize> = failed
            .iter()
            .copied()
            .filter(|&i| rec.rcpts[i].notify.failure || rec.sender.is_empty())
            .collect();
        if owed.is_empty() {
            for &i in failed {
                rec.rcpts[i].notified = true;
            }
            return;
        }
        if rec.sender.is_empty() && rec.origin == DOUBLE_BOUNCE_ORIGIN {
            for &i in &owed {
                rec.rcpts[i].notified = true;
            }
            warn!("{id}: undeliverable postmaster notification discarded");
            return;
        }
        self.report(id, rec, &owed, bounce::Kind::Failed, now);
    }

    /// Builds one report about `rcpts` and queues it. If it cannot be
    /// queued, failed recipients go back to pending so the report is made
    /// on a later attempt: a report is never silently lost.
    fn report(
        &mut self,
        id: &QueueId,
        rec: &mut Record,
        rcpts: &[usize],
        kind: bounce::Kind,
        now: u64,
    ) {
        if rcpts.is_empty() {
            return;
        }
        let (to, origin, what) = if rec.sender.is_empty() {
            if kind != bounce::Kind::Failed {
                return; // never a delay or success notice to the null sender
            }
            (
                self.st.postmaster.clone(),
                DOUBLE_BOUNCE_ORIGIN,
                "postmaster non-delivery notification",
            )
        } else {
            let what = match kind {
                bounce::Kind::Failed => "sender non-delivery notification",
                bounce::Kind::Delayed => "sender delay notification",
                bounce::Kind::Success => "sender delivery status notification",
            };
            (rec.sender.clone(), BOUNCE_ORIGIN, what)
        };
        let path = attempt::message_path(&self.paths.queue, id);
        let mut original = std::fs::read(&path).unwrap_or_default();
        // Never the envelope trailer of a file not yet cut (see intake).
        original.truncate(usize::try_from(rec.size).unwrap_or(usize::MAX));
        let body = bounce::build(&bounce::Report {
            kind,
            qid: id,
            rec,
            rcpts,
            hostname: &self.st.hostname,
            now,
            lifetime: self.st.lifetime,
            original: &original,
            to: &to,
        });
        let mut env = Envelope::new("", vec![Recipient::new(to)]);
        env.origin = origin.to_string();
        match inject(&self.paths, &body, &env) {
            Ok(new) => {
                info!("{id}: {what}: {new}");
                for &i in rcpts {
                    rec.rcpts[i].notified = true;
                }
            }
            Err(e) => {
                warn!("{id}: cannot queue the {what}: {e}");
                if kind == bounce::Kind::Failed {
                    for &i in rcpts {
                        rec.rcpts[i].status = RcptStatus::Pending;
                    }
                }
            }
        }
    }

    /// Answers a kmpctl request.
    fn control(&mut self, req: CtlRequest) -> CtlReply {
        control::handle(self, req)
    }
}

/// Queues a message made here (a report) through the drop directory.
pub fn inject(paths: &Paths, body: &[u8], env: &Envelope) -> Result<QueueId, QueueError> {
    let mut m = Incoming::create(&paths.incoming())?;
    m.write(body)?;
    let id = m.commit(env)?;
    crate::queue::kick(&paths.kick_socket());
    Ok(id)
}

/// Milliseconds as Postfix prints delays: `0.12`, `3.4`, `12`.
fn secs(ms: u64) -> String {
    if ms >= 10_000 {
        return (ms / 1000).to_string();
    }
    let s = format!("{:.2}", ms as f64 / 1000.0);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Runs kmp-send until SIGTERM; returns the exit code.
pub fn run(cfg: Config, config_path: Option<PathBuf>, clock: Clock) -> i32 {
    attempt::generation();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::error!("cannot start the runtime: {e}");
            return crate::exit::OSERR;
        }
    };
    let code = rt.block_on(control::serve(cfg, config_path, clock));
    // Jobs still at an agent are not waited for: they are tried again after
    // the next start, with the same delivery ids.
    rt.shutdown_timeout(Duration::from_secs(2));
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut st = Settings::from_config(&Config::defaults());
        st.min_backoff = 300;
        st.max_backoff = 3600;
        assert_eq!(st.backoff(1), 300);
        assert_eq!(st.backoff(2), 600);
        assert_eq!(st.backoff(4), 2400);
        assert_eq!(st.backoff(5), 3600);
        assert_eq!(st.backoff(500), 3600);
    }

    #[test]
    fn delays_print_as_postfix_does() {
        assert_eq!(secs(0), "0");
        assert_eq!(secs(120), "0.12");
        assert_eq!(secs(3400), "3.4");
        assert_eq!(secs(12_345), "12");
    }
}
