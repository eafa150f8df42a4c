//! One delivery attempt of one message: route its pending recipients (local
//! or remote, by asking kmp-authd whether the domain is ours), hand a job to
//! kmp-local and/or kmp-remote with the message file's descriptor, and bring
//! back one result per recipient.
//!
//! Nothing here decides what a result means for the queue: the main loop in
//! `send/mod.rs` does, in one place. Every failure to reach an agent or
//! kmp-authd becomes a deferral of the recipients concerned, never a bounce.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, Semaphore};

use crate::clock::Clock;
use crate::ipc::authd::{self, Reply as AuthReply, Request as AuthRequest};
use crate::ipc::frame;
use crate::ipc::job::{self, Job, JobRecipient, JobReply, Outcome, RecipientResult};
use crate::queue::record::{Record, Route};
use crate::queue::QueueId;

/// The most recipients in one job; more are split over several jobs.
const MAX_JOB_RECIPIENTS: usize = 1000;

/// How long an agent may take over one job before kmp-send gives up on it
/// (and defers its recipients: a late delivery is deduplicated by its id).
const JOB_TIMEOUT: Duration = Duration::from_secs(1800);

/// A delivery agent: its socket and the connections to it.
///
/// Up to `depth` jobs are in flight on one connection (pipelined: kmp-local
/// answers in the order the jobs came, so replies are matched first in,
/// first out); kmp-remote, which works a connection one job at a time, gets
/// a depth of 1. `slots` bounds the jobs in flight to the agent in all.
pub struct Agent {
    pub name: &'static str,
    socket: PathBuf,
    slots: Arc<Semaphore>,
    depth: usize,
    pipes: Mutex<Vec<Arc<Pipe>>>,
}

/// What a job waiting for its reply is told.
type Answer = Result<JobReply, String>;

/// One connection to an agent: jobs are written under `write`, in the order
/// their waiters join `state.fifo`; a reader thread hands each reply to the
/// oldest waiter, whose task wakes on it (no thread waits per job).
struct Pipe {
    stream: UnixStream,
    write: Mutex<()>,
    state: Mutex<PipeState>,
}

#[derive(Default)]
struct PipeState {
    fifo: VecDeque<oneshot::Sender<Answer>>,
    dead: bool,
}

impl Agent {
    pub fn new(name: &'static str, socket: PathBuf, concurrency: usize, depth: usize) -> Agent {
        Agent {
            name,
            socket,
            slots: Arc::new(Semaphore::new(concurrency)),
            depth: depth.max(1),
            pipes: Mutex::new(Vec::new()),
        }
    }

    /// Runs one job on a kept connection with room, or a new one. A job on a
    /// kept connection that fails (the agent restarted since) is sent once
    /// more on a fresh connection.
    async fn run(&self, job: &Job, file: &File) -> Result<(JobReply, Timing), String> {
        let start = Instant::now();
        let (pipe, reused) = self.pick()?;
        let connected = start.elapsed();
        match pipe.call(job, file).await {
            Ok(reply) => Ok((reply, Timing::new(connected, start.elapsed()))),
            Err(_) if reused => {
                // The agent may have delivered before the connection broke:
                // the job is no longer the message's first.
                let job = &Job {
                    fresh: false,
                    ..job.clone()
                };
                let pipe = self.open()?;
                let connected = start.elapsed();
                let reply = pipe
                    .call(job, file)
                    .await
                    .map_err(|e| format!("lost connection with {}: {e}", self.name))?;
                Ok((reply, Timing::new(connected, start.elapsed())))
            }
            Err(e) => Err(format!("lost connection with {}: {e}", self.name)),
        }
    }

    /// The least busy live connection with room for one more job, else a new one.
    fn pick(&self) -> Result<(Arc<Pipe>, bool), String> {
        if let Ok(mut pipes) = self.pipes.lock() {
            pipes.retain(|p| !p.is_dead());
            let best = pipes
                .iter()
                .map(|p| (p.in_flight(), p))
                .filter(|(n, _)| *n < self.depth)
                .min_by_key(|(n, _)| *n)
                .map(|(_, p)| p.clone());
            if let Some(p) = best {
                return Ok((p, true));
            }
        }
        Ok((self.open()?, false))
    }

    /// A new connection, kept for later jobs.
    fn open(&self) -> Result<Arc<Pipe>, String> {
        let c = UnixStream::connect(&self.socket).map_err(|e| {
            format!(
                "delivery temporarily suspended: {} is not running (connect to {}: {e})",
                self.name,
                self.socket.display()
            )
        })?;
        // No read timeout: the reader waits for replies as long as jobs
        // wait (each job keeps its own deadline, see `call`), and the agent
        // closes an idle connection.
        let _ = c.set_write_timeout(Some(Duration::from_secs(60)));
        let reader = c
            .try_clone()
            .map_err(|e| format!("connection to {}: {e}", self.name))?;
        let pipe = Arc::new(Pipe {
            stream: c,
            write: Mutex::new(()),
            state: Mutex::new(PipeState::default()),
        });
        let p = pipe.clone();
        std::thread::Builder::new()
            .name("kmp-send-replies".into())
            .spawn(move || p.read_replies(reader))
            .map_err(|e| format!("cannot start a reply reader: {e}"))?;
        if let Ok(mut pipes) = self.pipes.lock() {
            pipes.push(pipe.clone());
        }
        Ok(pipe)
    }
}

impl Pipe {
    fn is_dead(&self) -> bool {
        self.state.lock().map(|s| s.dead).unwrap_or(true)
    }

    fn in_flight(&self) -> usize {
        self.state
            .lock()
            .map(|s| s.fifo.len())
            .unwrap_or(usize::MAX)
    }

    /// Sends the job and waits for its reply. The send does not wait in
    /// practice: at most `depth` small frames are unanswered on a
    /// connection, far less than a socket's buffer.
    async fn call(&self, job: &Job, file: &File) -> Answer {
        let (tx, rx) = oneshot::channel();
        {
            let _w = self.write.lock().map_err(|_| "connection lock poisoned")?;
            {
                let mut st = self.state.lock().map_err(|_| "connection lock poisoned")?;
                if st.dead {
                    return Err("connection closed".into());
                }
                st.fifo.push_back(tx);
            }
            if let Err(e) = job::send(&self.stream, job, file.as_raw_fd()) {
                // A half-written frame spoils the connection: the reader
                // fails every job on it, this one included.
                let _ = self.stream.shutdown(std::net::Shutdown::Both);
                return Err(e.to_string());
            }
        }
        match tokio::time::timeout(JOB_TIMEOUT, rx).await {
            Ok(Ok(answer)) => answer,
            Err(_) => {
                // The replies behind this one would be late too: give up on
                // the connection (every job on it is deferred; a delivery
                // made meanwhile is found by its id on the retry).
                let _ = self.stream.shutdown(std::net::Shutdown::Both);
                Err(format!("no answer within {} s", JOB_TIMEOUT.as_secs()))
            }
            Ok(Err(_)) => Err("connection closed".into()),
        }
    }

    /// Hands each reply to the oldest waiting job until the connection ends,
    /// then fails every job still waiting (kmp-send defers them).
    fn read_replies(&self, stream: UnixStream) {
        let mut r = &stream;
        let why = loop {
            match frame::read::<_, JobReply>(&mut r) {
                Ok(reply) => {
                    let next = self.state.lock().ok().and_then(|mut s| s.fifo.pop_front());
                    match next {
                        Some(tx) => {
                            let _ = tx.send(Ok(reply));
                        }
                        None => break "a reply to no job".to_string(),
                    }
                }
                Err(e) => break e.to_string(),
            }
        };
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        let waiting = match self.state.lock() {
            Ok(mut s) => {
                s.dead = true;
                std::mem::take(&mut s.fifo)
            }
            Err(_) => VecDeque::new(),
        };
        for tx in waiting {
            let _ = tx.send(Err(why.clone()));
        }
    }
}

/// How long the parts of a job took, for the log's `delays=a/b/c/d`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timing {
    /// Connection setup.
    pub connect: Duration,
    /// The whole job, connection included.
    pub total: Duration,
}

impl Timing {
    fn new(connect: Duration, total: Duration) -> Timing {
        Timing { connect, total }
    }
}

/// Decides local or remote for a domain, remembering kmp-authd's answers.
pub struct Router {
    socket: PathBuf,
    cache_for: Duration,
    cache: Mutex<HashMap<String, (bool, Instant)>>,
}

impl Router {
    pub fn new(socket: PathBuf, cache_for: Duration) -> Router {
        Router {
            socket,
            cache_for,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The route of `address` when it is known without asking kmp-authd
    /// (no domain, or the domain's answer still in the cache).
    fn cached(&self, address: &str) -> Option<Route> {
        let Some((_, domain)) = address.rsplit_once('@') else {
            return Some(Route::Local);
        };
        let c = self.cache.lock().ok()?;
        let (local, at) = c.get(&domain.to_ascii_lowercase())?;
        (at.elapsed() < self.cache_for).then_some(if *local { Route::Local } else { Route::Remote })
    }

    /// The route of `address`, or why it cannot be known now (a temporary failure).
    fn route_blocking(&self, address: &str) -> Result<Route, String> {
        if let Some(r) = self.cached(address) {
            return Ok(r);
        }
        let Some((_, domain)) = address.rsplit_once('@') else {
            return Ok(Route::Local);
        };
        let domain = domain.to_ascii_lowercase();
        let mut client = authd::Client::connect(&self.socket).map_err(|e| e.to_string())?;
        match client.call(AuthRequest::Lookup {
            address: address.to_string(),
        }) {
            Ok(AuthReply::Found { local_domain, .. }) => {
                if let Ok(mut c) = self.cache.lock() {
                    c.insert(domain, (local_domain, Instant::now()));
                }
                Ok(if local_domain {
                    Route::Local
                } else {
                    Route::Remote
                })
            }
            Ok(other) => Err(format!("kmp-authd: unexpected answer {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// What an attempt needs to know, copied from the record.
pub struct Input {
    pub id: QueueId,
    pub path: PathBuf,
    pub rec: Record,
    /// Taken in by this kmp-send and never tried (see `Job::fresh`).
    pub fresh: bool,
}

/// One recipient's result and the route it took.
#[derive(Debug, Clone)]
pub struct Result1 {
    pub index: usize,
    pub route: Option<Route>,
    pub result: RecipientResult,
    pub timing: Timing,
    /// The delivery agent made this result and logged its delivery line
    /// itself (as Postfix's local and smtp do); kmp-send logs only the
    /// results it made (agent unreachable, no answer).
    pub logged_by_agent: bool,
}

/// What an attempt brings back to the main loop.
#[derive(Debug)]
pub struct Outcome1 {
    pub id: QueueId,
    /// Milliseconds since the epoch when the attempt started.
    pub started_ms: u64,
    pub results: Vec<Result1>,
}

/// The agents and the router, shared by every attempt.
pub struct Shared {
    pub local: Agent,
    pub remote: Agent,
    pub router: Router,
    pub clock: Clock,
    /// SRS: forwarded mail leaves with a rewritten reverse path.
    pub srs: Option<crate::mailauth::srs::Srs>,
}

/// Runs one attempt of the message in `input`.
pub async fn run(shared: Arc<Shared>, input: Input) -> Outcome1 {
    let started_ms = shared.clock.now_ms();
    let pending: Vec<(usize, String, Option<Route>)> = input
        .rec
        .pending()
        .map(|(i, r)| (i, r.address.clone(), r.route))
        .collect();
    // Route first: one kmp-authd question per domain not in the cache.
    let sh = shared.clone();
    // Forwarded: recipients an alias, forward or redirect added; going to
    // another host they get the SRS reverse path, unless the sender's
    // domain is ours (our own SPF covers it).
    let forwarded: Vec<bool> = input.rec.rcpts.iter().map(|r| r.parent.is_some()).collect();
    let sender = input.rec.sender.clone();
    let srs_wanted = shared.srs.is_some() && !sender.is_empty();
    // Known routes and cached domains need no thread that may wait on
    // kmp-authd; the rest go to one.
    let known = pending
        .iter()
        .map(|(_, a, route)| route.or_else(|| shared.router.cached(a)))
        .collect::<Option<Vec<Route>>>();
    let sender_known = match srs_wanted {
        false => Some(true),
        true => shared.router.cached(&sender).map(|r| r == Route::Local),
    };
    let routed_now = match (known, sender_known) {
        (Some(routes), Some(sender_local)) => Some((
            pending
                .iter()
                .zip(routes)
                .map(|((i, _, _), r)| (*i, Ok(r)))
                .collect::<Vec<_>>(),
            sender_local,
        )),
        _ => None,
    };
    let (routed, sender_local) = match routed_now {
        Some(r) => r,
        None => tokio::task::spawn_blocking(move || {
            let routed = pending
                .into_iter()
                .map(|(i, a, route)| {
                    let r = match route {
                        Some(r) => Ok(r),
                        None => sh.router.route_blocking(&a),
                    };
                    (i, r)
                })
                .collect::<Vec<_>>();
            let sender_local =
                !srs_wanted || matches!(sh.router.route_blocking(&sender), Ok(Route::Local));
            (routed, sender_local)
        })
        .await
        .unwrap_or_default(),
    };
    let mut results = Vec::new();
    let mut local = Vec::new();
    let mut remote = Vec::new();
    let mut forwards = Vec::new();
    for (i, r) in routed {
        match r {
            Ok(Route::Local) => local.push(i),
            Ok(Route::Remote) if !sender_local && forwarded.get(i) == Some(&true) => {
                forwards.push(i)
            }
            Ok(Route::Remote) => remote.push(i),
            Err(e) => results.push(deferred(
                i,
                None,
                "4.3.0",
                &format!("cannot route now: {e}"),
                "none",
            )),
        }
    }
    let file = match File::open(&input.path) {
        Ok(f) => Arc::new(f),
        Err(e) => {
            let text = format!("cannot open queue file {}: {e}", input.path.display());
            for i in local.into_iter().chain(remote).chain(forwards) {
                results.push(deferred(i, None, "4.3.0", &text, "none"));
            }
            return Outcome1 {
                id: input.id,
                started_ms,
                results,
            };
        }
    };
    let input = Arc::new(input);
    let mut tasks = Vec::new();
    // Fresh only when this is the message's one job: two jobs of a message
    // may reach one mailbox, and the second must find the first's copy.
    let jobs = local.len().div_ceil(MAX_JOB_RECIPIENTS)
        + remote.len().div_ceil(MAX_JOB_RECIPIENTS)
        + forwards.len().div_ceil(MAX_JOB_RECIPIENTS);
    let fresh = input.fresh && jobs == 1 && results.is_empty();
    let srs_sender = match &shared.srs {
        Some(srs) if !forwards.is_empty() => {
            let s = srs.forward(&input.rec.sender, crate::mailauth::srs::today());
            crate::info!("{}: from=<{}>, srs=<{s}>", input.id, input.rec.sender);
            Some(s)
        }
        _ => None,
    };
    let groups = [
        (Route::Local, local, None),
        (Route::Remote, remote, None),
        (Route::Remote, forwards, srs_sender),
    ];
    for (route, idxs, sender) in groups {
        for chunk in idxs.chunks(MAX_JOB_RECIPIENTS) {
            let mut job = make_job(&input, chunk, fresh);
            if let Some(s) = &sender {
                job.sender = s.clone();
            }
            let (sh, file, chunk) = (shared.clone(), file.clone(), chunk.to_vec());
            let one = async move {
                let agent = match route {
                    Route::Local => &sh.local,
                    Route::Remote => &sh.remote,
                };
                let _permit = agent.slots.clone().acquire_owned().await;
                let out = agent.run(&job, &file).await;
                collect(route, &chunk, out)
            };
            // The message's only job runs in this task; several run side
            // by side.
            if jobs == 1 {
                results.append(&mut one.await);
            } else {
                tasks.push(tokio::spawn(one));
            }
        }
    }
    for t in tasks {
        if let Ok(mut r) = t.await {
            results.append(&mut r);
        }
    }
    Outcome1 {
        id: input.id.clone(),
        started_ms,
        results,
    }
}

/// Turns an agent's reply (or failure) into one result per recipient of the job.
fn collect(route: Route, chunk: &[usize], out: Result<(JobReply, Timing), String>) -> Vec<Result1> {
    match out {
        Err(text) => chunk
            .iter()
            .map(|&i| deferred(i, Some(route), "4.3.0", &text, "none"))
            .collect(),
        Ok((reply, timing)) => {
            let mut by_index: HashMap<u32, RecipientResult> =
                reply.results.into_iter().map(|r| (r.index, r)).collect();
            chunk
                .iter()
                .map(|&i| match by_index.remove(&(i as u32)) {
                    Some(result) => Result1 {
                        index: i,
                        route: Some(route),
                        result,
                        timing,
                        logged_by_agent: true,
                    },
                    None => deferred(
                        i,
                        Some(route),
                        "4.3.0",
                        "the delivery agent gave no result for this recipient",
                        "none",
                    ),
                })
                .collect()
        }
    }
}

fn deferred(index: usize, route: Option<Route>, dsn: &str, text: &str, relay: &str) -> Result1 {
    Result1 {
        index,
        route,
        result: RecipientResult {
            index: index as u32,
            outcome: Outcome::Deferred,
            dsn: dsn.into(),
            text: text.into(),
            relay: relay.into(),
            remote_mta: None,
            diagnostic: None,
            expanded: Vec::new(),
        },
        timing: Timing::default(),
        logged_by_agent: false,
    }
}

/// When this kmp-send started, on the monotonic clock: every job says it, so
/// that kmp-local can tell a dead predecessor's late job (see
/// [`crate::local::deliver::Senders`]). Fixed by the first call, which
/// kmp-send makes at start.
pub fn generation() -> u64 {
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *START.get_or_init(crate::clock::monotonic_ns)
}

/// The job for some recipients of the message. Delivery ids are `QID.INDEX`:
/// the same for every attempt, so a repeated job is recognised.
fn make_job(input: &Input, idxs: &[usize], fresh: bool) -> Job {
    let rec = &input.rec;
    Job {
        v: job::VERSION,
        qid: input.id.to_string(),
        sender: rec.sender.clone(),
        envid: rec.envid.clone(),
        ret: rec.ret,
        smtputf8: rec.smtputf8,
        body_8bit: rec.body_8bit,
        size: rec.size,
        arrived: rec.arrived(),
        fresh,
        generation: generation(),
        recipients: idxs
            .iter()
            .map(|&i| {
                let r = &rec.rcpts[i];
                JobRecipient {
                    index: i as u32,
                    address: r.address.clone(),
                    notify: r.notify,
                    orcpt: r.orcpt.clone(),
                    delivery_id: delivery_id(&input.id, i),
                    folder: r.folder.clone(),
                }
            })
            .collect(),
    }
}

/// The delivery id of recipient `index` of message `id`.
pub fn delivery_id(id: &QueueId, index: usize) -> String {
    format!("{id}.{index}")
}

/// The message file of `id`: in `mess/`, or still in `incoming/new/` right
/// after a crash between indexing and the move.
pub fn message_path(queue: &Path, id: &QueueId) -> PathBuf {
    let p = queue.join("mess").join(id.as_str());
    if p.exists() {
        return p;
    }
    let q = queue.join("incoming").join("new").join(id.as_str());
    if q.exists() {
        q
    } else {
        p
    }
}
