//! The daemon: the schedule, the limits, the control socket.
//!
//! The main thread is the scheduler. It asks kmp-authd for the accounts
//! once a minute (at once after a `reload` request), and once a second
//! starts a thread for each enabled account whose time has come, as long
//! as fewer than `fetch.max_concurrency` run in all and fewer than
//! `fetch.max_per_user` of its owner's. After a run the account's status
//! (`state::write_status`) holds the result and the next time: its
//! interval after a good run; after failed ones the interval doubled per
//! failure in a row up to `fetch.max_backoff`, with the reason kept for
//! the owner's page. One account never runs twice at once, whether the
//! schedule or a `run` request started it.
//!
//! The control socket serves one request per connection, each on a thread
//! of its own (at most [`MAX_CONTROL`] at once). On SIGTERM the runs end
//! after the message in hand (the run's stop flag), and the process exits
//! once they have, or after [`STOP_WAIT`].

use std::collections::{HashMap, HashSet};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::seal::PrivateKey;
use super::session::{self, Env, Outcome, RunError};
use super::state;
use super::Settings;
use crate::ipc::authd::{self, Reply as AuthReply, Request as AuthRequest};
use crate::ipc::fetch::{AccountStatus, Envelope, FetchAccount, Reply, Request, VERSION};
use crate::ipc::frame;

/// How often the accounts are read again from kmp-authd.
const RELOAD_EVERY: Duration = Duration::from_secs(60);
/// Control connections served at once.
pub const MAX_CONTROL: usize = 16;
/// How long a stopping daemon waits for runs in progress.
const STOP_WAIT: Duration = Duration::from_secs(30);
/// How long a `run` request waits for a run of the same account to end.
const RUN_WAIT: Duration = Duration::from_secs(600);

struct Inner {
    accounts: Vec<FetchAccount>,
    loaded: Option<Instant>,
    running: HashSet<String>,
    per_user: HashMap<String, usize>,
    total: usize,
    /// Next attempt per account id, seconds since the epoch.
    next: HashMap<String, u64>,
}

/// What every thread shares.
pub struct Shared {
    settings: Settings,
    key: PrivateKey,
    stop: AtomicBool,
    inner: Mutex<Inner>,
    ended: Condvar,
    control: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn env(&self) -> Env<'_> {
        Env {
            incoming: self.settings.incoming.clone(),
            kick: self.settings.kick.clone(),
            hostname: self.settings.hostname.clone(),
            state_dir: self.settings.state_dir.clone(),
            max_size: self.settings.max_size,
            timeout: self.settings.timeout,
            ca_file: self.settings.ca_file.clone(),
            key: &self.key,
            stop: &self.stop,
        }
    }

    /// The account's poll interval, within the bounds.
    fn interval(&self, a: &FetchAccount) -> u64 {
        let own = if a.interval == 0 {
            self.settings.interval.as_secs()
        } else {
            a.interval
        };
        own.max(self.settings.min_interval.as_secs()).max(1)
    }
}

/// Runs the daemon until SIGTERM. `listener` is the bound control socket.
pub fn run(settings: Settings, key: PrivateKey, listener: UnixListener) -> i32 {
    let shared = Arc::new(Shared {
        settings,
        key,
        stop: AtomicBool::new(false),
        inner: Mutex::new(Inner {
            accounts: Vec::new(),
            loaded: None,
            running: HashSet::new(),
            per_user: HashMap::new(),
            total: 0,
            next: HashMap::new(),
        }),
        ended: Condvar::new(),
        control: AtomicUsize::new(0),
    });
    {
        let shared = shared.clone();
        std::thread::spawn(move || serve_control(shared, listener));
    }
    loop {
        if crate::sys::signals::term_requested() {
            break;
        }
        if crate::sys::signals::take_hup() {
            shared.lock().loaded = None;
        }
        schedule(&shared);
        let g = shared.lock();
        let _ = shared
            .ended
            .wait_timeout(g, Duration::from_secs(1))
            .map(|(g, _)| drop(g));
    }
    crate::info!("stopping: waiting for the runs in progress");
    shared.stop.store(true, Ordering::SeqCst);
    let until = Instant::now() + STOP_WAIT;
    let mut g = shared.lock();
    while g.total > 0 && Instant::now() < until {
        g = match shared.ended.wait_timeout(g, Duration::from_millis(200)) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        };
    }
    crate::exit::OK
}

/// Reads the accounts from kmp-authd: everyone's, or one owner's.
fn load_accounts(s: &Shared, owner: Option<&str>) -> Result<Vec<FetchAccount>, String> {
    let mut c = authd::Client::connect(&s.settings.authd_socket).map_err(|e| e.to_string())?;
    match c.call(AuthRequest::FetchAccounts {
        owner: owner.map(str::to_string),
    }) {
        Ok(AuthReply::FetchAccounts { accounts }) => Ok(accounts),
        Ok(other) => Err(format!("kmp-authd answered {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// One turn of the scheduler.
fn schedule(shared: &Arc<Shared>) {
    let stale = shared
        .lock()
        .loaded
        .is_none_or(|t| t.elapsed() >= RELOAD_EVERY);
    if stale {
        match load_accounts(shared, None) {
            Ok(accounts) => {
                let mut g = shared.lock();
                g.accounts = accounts;
                g.loaded = Some(Instant::now());
            }
            Err(e) => {
                crate::warn!("cannot read the accounts: {e}");
                // Try again in a while, not every second.
                shared.lock().loaded = Some(Instant::now() - RELOAD_EVERY + Duration::from_secs(5));
            }
        }
    }
    let now = crate::clock::Clock::System.now();
    let mut g = shared.lock();
    let candidates: Vec<FetchAccount> = g.accounts.iter().filter(|a| a.enabled).cloned().collect();
    for a in candidates {
        if g.total >= shared.settings.max_concurrency {
            break;
        }
        let id = state::account_id(&a);
        if g.running.contains(&id) {
            continue;
        }
        if g.per_user.get(&a.owner).copied().unwrap_or(0) >= shared.settings.max_per_user {
            continue;
        }
        let next = match g.next.get(&id) {
            Some(n) => *n,
            None => {
                let n = state::read_status(&shared.settings.state_dir, &id).next_run;
                g.next.insert(id.clone(), n);
                n
            }
        };
        if next > now {
            continue;
        }
        take(&mut g, &id, &a.owner);
        let shared = shared.clone();
        std::thread::spawn(move || {
            let status = run_one(&shared, &a);
            crate::info!(
                "{}/{}: fetched={} deleted={} error={:?}",
                a.owner,
                a.name,
                status.fetched,
                status.deleted,
                status.error
            );
        });
    }
}

fn take(g: &mut Inner, id: &str, owner: &str) {
    g.running.insert(id.to_string());
    *g.per_user.entry(owner.to_string()).or_default() += 1;
    g.total += 1;
}

fn give_back(shared: &Shared, id: &str, owner: &str, next: u64) {
    let mut g = shared.lock();
    g.running.remove(id);
    if let Some(n) = g.per_user.get_mut(owner) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            g.per_user.remove(owner);
        }
    }
    g.total = g.total.saturating_sub(1);
    g.next.insert(id.to_string(), next);
    drop(g);
    shared.ended.notify_all();
}

/// Runs an account whose slot is taken, records its status, gives the slot back.
fn run_one(shared: &Shared, a: &FetchAccount) -> AccountStatus {
    let id = state::account_id(a);
    let dir = &shared.settings.state_dir;
    let mut st = state::read_status(dir, &id);
    st.owner = a.owner.clone();
    st.name = a.name.clone();
    let env = shared.env();
    let r = session::run(&env, a);
    let now = crate::clock::Clock::System.now();
    let interval = shared.interval(a);
    let (done, error) = match r {
        Ok(o) => (o, String::new()),
        Err(RunError { message, done }) => (done, message),
    };
    record(&mut st, done, &error, now);
    st.next_run = now + delay(interval, st.failures, shared.settings.max_backoff.as_secs());
    if let Err(e) = state::write_status(dir, &id, &st) {
        crate::warn!("{}/{}: status not written: {e}", a.owner, a.name);
    }
    give_back(shared, &id, &a.owner, st.next_run);
    st
}

/// The wait before the next run: the interval after a good run; after
/// `failures` failed runs in a row, the interval doubled per failure past
/// the first, never more than `max_backoff` (nor less than a second).
pub fn delay(interval: u64, failures: u32, max_backoff: u64) -> u64 {
    if failures == 0 {
        return interval.max(1);
    }
    let factor = 1u64 << failures.saturating_sub(1).min(30);
    interval
        .saturating_mul(factor)
        .min(max_backoff.max(interval))
        .max(1)
}

fn record(st: &mut AccountStatus, done: Outcome, error: &str, now: u64) {
    st.last_run = now;
    st.fetched = done.fetched;
    st.deleted = done.deleted;
    st.too_big = done.too_big;
    st.total += done.fetched;
    if error.is_empty() {
        st.last_ok = now;
        st.error.clear();
        st.failures = 0;
    } else {
        st.error = error.to_string();
        st.failures = st.failures.saturating_add(1);
    }
}

fn serve_control(shared: Arc<Shared>, listener: UnixListener) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        if shared.control.load(Ordering::SeqCst) >= MAX_CONTROL {
            let mut conn = conn;
            let _ = frame::write(
                &mut conn,
                &Reply::Error {
                    temporary: true,
                    message: "too many requests at once".into(),
                },
            );
            continue;
        }
        shared.control.fetch_add(1, Ordering::SeqCst);
        let shared = shared.clone();
        std::thread::spawn(move || {
            serve_one(&shared, conn);
            shared.control.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

fn serve_one(shared: &Shared, mut conn: UnixStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let req: Envelope = match frame::read(&mut conn) {
        Ok(r) => r,
        Err(e) => {
            let _ = frame::write(
                &mut conn,
                &Reply::Error {
                    temporary: false,
                    message: e.to_string(),
                },
            );
            return;
        }
    };
    let reply = if req.v != VERSION {
        Reply::Error {
            temporary: false,
            message: format!("protocol version {} is not {VERSION}", req.v),
        }
    } else {
        answer(shared, req.body)
    };
    let _ = frame::write(&mut conn, &reply);
}

fn refused(message: impl Into<String>) -> Reply {
    Reply::Error {
        temporary: false,
        message: message.into(),
    }
}

fn answer(shared: &Shared, req: Request) -> Reply {
    match req {
        Request::Reload => {
            shared.lock().loaded = None;
            Reply::Done
        }
        Request::Status { owner } => {
            let owner = (!owner.is_empty()).then_some(owner);
            match load_accounts(shared, owner.as_deref()) {
                Ok(accounts) => Reply::Status {
                    accounts: accounts
                        .iter()
                        .map(|a| {
                            let mut st = state::read_status(
                                &shared.settings.state_dir,
                                &state::account_id(a),
                            );
                            st.owner = a.owner.clone();
                            st.name = a.name.clone();
                            st
                        })
                        .collect(),
                },
                Err(e) => Reply::Error {
                    temporary: true,
                    message: e,
                },
            }
        }
        Request::Test { account } => {
            if let Err(e) = account.check() {
                return refused(e);
            }
            match session::test(&shared.env(), &account) {
                Ok((messages, detail)) => Reply::Tested { messages, detail },
                Err(e) => refused(e.message),
            }
        }
        Request::Run { owner, name } => {
            let accounts = match load_accounts(shared, Some(&owner)) {
                Ok(a) => a,
                Err(e) => {
                    return Reply::Error {
                        temporary: true,
                        message: e,
                    }
                }
            };
            let Some(a) = accounts.into_iter().find(|a| a.name == name) else {
                return refused(format!(
                    "no fetch account {name:?} of {owner} (or the user is disabled)"
                ));
            };
            let id = state::account_id(&a);
            let until = Instant::now() + RUN_WAIT;
            let mut g = shared.lock();
            while g.running.contains(&id) {
                if Instant::now() >= until {
                    return Reply::Error {
                        temporary: true,
                        message: "a run of this account is still in progress".into(),
                    };
                }
                g = match shared.ended.wait_timeout(g, Duration::from_millis(200)) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
            }
            take(&mut g, &id, &a.owner);
            drop(g);
            Reply::Ran {
                status: run_one(shared, &a),
            }
        }
    }
}

/// Binds the control socket at `path` (a stale one is replaced), mode 0660.
pub fn bind(path: &std::path::Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!(
                    "{} is in use: is kmp-fetch running already?",
                    path.display()
                ),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_the_bound() {
        assert_eq!(delay(600, 0, 21600), 600);
        assert_eq!(delay(600, 1, 21600), 600);
        assert_eq!(delay(600, 2, 21600), 1200);
        assert_eq!(delay(600, 3, 21600), 2400);
        assert_eq!(delay(600, 10, 21600), 21600);
        assert_eq!(delay(600, u32::MAX, 21600), 21600);
        // An interval past the bound is kept: failing never polls sooner.
        assert_eq!(delay(86400, 3, 21600), 86400);
        assert_eq!(delay(0, 0, 0), 1);
    }

    #[test]
    fn a_run_records_its_result() {
        let mut st = AccountStatus::default();
        let done = Outcome {
            fetched: 3,
            deleted: 1,
            too_big: 0,
        };
        record(&mut st, done, "POP3 login refused: -ERR", 100);
        assert_eq!((st.failures, st.last_ok, st.fetched), (1, 0, 3));
        record(&mut st, Outcome::default(), "again", 200);
        assert_eq!(st.failures, 2);
        record(&mut st, done, "", 300);
        assert_eq!((st.failures, st.last_ok, st.total), (0, 300, 6));
        assert!(st.error.is_empty());
    }
}
