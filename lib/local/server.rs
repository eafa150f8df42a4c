//! The job server: the Unix socket kmp-send connects to, one thread per
//! connection, one [`Job`] frame in (with the message file's descriptor
//! attached), one [`JobReply`] frame out, as many times as kmp-send likes.
//!
//! Jobs are pipelined: a connection reads the next job while earlier ones
//! are being delivered, runs up to [`PIPELINE`] of them at once (each on a
//! thread of its own, so their file and directory fsyncs overlap and share
//! journal commits), and writes the replies in the order the jobs came, so
//! kmp-send matches them first in, first out. A client that sends one job
//! and waits for its reply sees no difference.
//!
//! A frame that cannot be read closes the connection: kmp-send then retries
//! every recipient of the job, so nothing is lost. A job whose descriptor is
//! missing is answered with every recipient Deferred.

use std::fs::File;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::time::Duration;

use crate::clock::Clock;
use crate::ipc::authd::{Client, ClientError, Entry, Reply, Request};
use crate::ipc::frame::{self, FrameError};
use crate::ipc::job::{self, JobReply};

use super::deliver::{self, Settings};
use super::resolve::{Directory, LookupError};

/// How long kmp-local waits for kmp-send between two jobs on one connection.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// Jobs delivered at once per connection; the next one is read when one ends.
pub const PIPELINE: usize = 8;

/// What every connection shares.
pub struct Shared {
    pub settings: RwLock<Settings>,
    pub authd_socket: PathBuf,
    pub clock: Clock,
    /// Jobs being delivered now (SIGTERM waits for them).
    pub active: AtomicUsize,
    pub stopping: AtomicBool,
    /// The kmp-sends heard from (see [`deliver::Senders`]).
    pub senders: deliver::Senders,
}

/// Binds the job socket at `path` (a stale one is replaced), mode 0660.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "{} is in use: is kmp-local running already?",
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

/// Accepts connections until `shared.stopping`; each gets a thread.
pub fn accept_loop(listener: UnixListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        match conn {
            Ok(stream) => {
                let shared = shared.clone();
                let spawned = std::thread::Builder::new()
                    .name("kmp-local-conn".into())
                    .spawn(move || connection(stream, &shared));
                if let Err(e) = spawned {
                    crate::error!("cannot start a connection thread: {e}");
                }
            }
            Err(e) => {
                crate::warn!("accept on the job socket: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Serves one kmp-send connection until it closes: this thread reads jobs
/// and starts each on a thread of its own; a writer thread sends the replies
/// in job order.
fn connection(mut stream: UnixStream, shared: &Arc<Shared>) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let writer_stream = match stream.try_clone() {
        Ok(s) => s,
        Err(e) => {
            crate::warn!("job connection: {e}");
            return;
        }
    };
    // Replies to come, in job order; at most PIPELINE jobs are unanswered.
    type Pending = (String, mpsc::Receiver<JobReply>);
    let (order_tx, order_rx) = mpsc::sync_channel::<Pending>(PIPELINE - 1);
    let writer = std::thread::Builder::new()
        .name("kmp-local-reply".into())
        .spawn(move || {
            for (qid, rx) in order_rx {
                let Ok(reply) = rx.recv() else {
                    // The job's thread died: close, so kmp-send retries it.
                    crate::warn!("{qid}: delivery thread failed; connection closed");
                    let _ = writer_stream.shutdown(std::net::Shutdown::Both);
                    return;
                };
                if let Err(e) = write_reply(&writer_stream, &reply) {
                    // kmp-send retries the job; deliveries done are found by their ids.
                    crate::warn!("{qid}: reply not sent: {e}");
                    let _ = writer_stream.shutdown(std::net::Shutdown::Both);
                    return;
                }
            }
        });
    let writer = match writer {
        Ok(w) => w,
        Err(e) => {
            crate::error!("cannot start a reply thread: {e}");
            return;
        }
    };
    loop {
        let (job, fd) = match job::recv(&mut stream) {
            Ok(j) => j,
            Err(FrameError::Closed) => break,
            Err(e) => {
                crate::warn!("job connection dropped: {e}");
                break;
            }
        };
        let (tx, rx) = mpsc::channel();
        let qid = job.qid.clone();
        shared.active.fetch_add(1, Ordering::SeqCst);
        let sh = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("kmp-local-job".into())
            .spawn(move || {
                let reply = run_one(&sh, &job, fd);
                sh.active.fetch_sub(1, Ordering::SeqCst);
                let _ = tx.send(reply);
            });
        if let Err(e) = spawned {
            shared.active.fetch_sub(1, Ordering::SeqCst);
            crate::error!("{qid}: cannot start a delivery thread: {e}");
            break;
        }
        // Blocks while PIPELINE jobs are unanswered; fails once the writer
        // has given up on the connection.
        if order_tx.send((qid, rx)).is_err() {
            break;
        }
    }
    drop(order_tx);
    let _ = writer.join();
}

/// Delivers one job (on its own thread, with its own kmp-authd connection).
fn run_one(shared: &Shared, job: &job::Job, fd: Option<std::os::fd::OwnedFd>) -> JobReply {
    let Some(fd) = fd else {
        return deliver::defer_all(job, "the job came without the message file");
    };
    let file = File::from(fd);
    let settings = match shared.settings.read() {
        Ok(s) => s.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    let mut dir = take_directory(&shared.authd_socket);
    let reply = deliver::run_job(
        &settings,
        &shared.senders,
        &mut dir,
        &shared.clock,
        job,
        &file,
    );
    give_directory(dir);
    reply
        .results
        .iter()
        .for_each(|r| crate::stats::delivery(&job.qid, r.outcome));
    reply
}

fn write_reply(mut stream: &UnixStream, reply: &JobReply) -> Result<(), FrameError> {
    frame::write(&mut stream, reply)
}

/// kmp-authd connections kept between jobs.
static DIRECTORIES: Mutex<Vec<AuthdDirectory>> = Mutex::new(Vec::new());

/// At most this many idle kmp-authd connections are kept.
const MAX_IDLE_DIRECTORIES: usize = 64;

fn take_directory(path: &Path) -> AuthdDirectory {
    let kept = DIRECTORIES.lock().map(|mut v| v.pop()).unwrap_or(None);
    match kept {
        Some(d) if d.path == path => d,
        _ => AuthdDirectory {
            path: path.to_path_buf(),
            client: None,
        },
    }
}

fn give_directory(d: AuthdDirectory) {
    if let Ok(mut v) = DIRECTORIES.lock() {
        if v.len() < MAX_IDLE_DIRECTORIES {
            v.push(d);
        }
    }
}

/// kmp-authd over one kept connection, reconnected when it breaks.
struct AuthdDirectory {
    path: PathBuf,
    client: Option<Client>,
}

impl Directory for AuthdDirectory {
    fn lookup(&mut self, address: &str) -> Result<(Entry, bool), LookupError> {
        for attempt in 0..2 {
            let client = match self.client.as_mut() {
                Some(c) => c,
                None => self.client.insert(
                    Client::connect(&self.path)
                        .map_err(|e| LookupError::Temporary(e.to_string()))?,
                ),
            };
            match client.call(Request::Lookup {
                address: address.to_string(),
            }) {
                Ok(Reply::Found {
                    entry,
                    local_domain,
                }) => return Ok((entry, local_domain)),
                Ok(other) => {
                    self.client = None;
                    return Err(LookupError::Temporary(format!(
                        "kmp-authd answered {other:?} to a lookup"
                    )));
                }
                Err(ClientError::Refused {
                    temporary: false,
                    message,
                }) => return Err(LookupError::Invalid(message)),
                Err(e) => {
                    self.client = None;
                    // A kept connection may have been closed by a restart: once more.
                    if attempt == 1 {
                        return Err(LookupError::Temporary(e.to_string()));
                    }
                }
            }
        }
        Err(LookupError::Temporary("kmp-authd did not answer".into()))
    }
}
