//! The job server: the Unix socket kmp-send connects to, one thread per
//! connection, one [`Job`] frame in (with the message file's descriptor
//! attached), one [`JobReply`] frame out, as many times as kmp-send likes.
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
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::clock::Clock;
use crate::ipc::authd::{Client, ClientError, Entry, Reply, Request};
use crate::ipc::frame::{self, FrameError};
use crate::ipc::job::{self, JobReply};

use super::deliver::{self, Settings};
use super::resolve::{Directory, LookupError};

/// How long kmp-local waits for kmp-send between two jobs on one connection.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// What every connection shares.
pub struct Shared {
    pub settings: RwLock<Settings>,
    pub authd_socket: PathBuf,
    pub clock: Clock,
    /// Jobs being delivered now (SIGTERM waits for them).
    pub active: AtomicUsize,
    pub stopping: AtomicBool,
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

/// Serves one kmp-send connection until it closes.
fn connection(mut stream: UnixStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let mut dir = AuthdDirectory {
        path: shared.authd_socket.clone(),
        client: None,
    };
    loop {
        let (job, fd) = match job::recv(&mut stream) {
            Ok(j) => j,
            Err(FrameError::Closed) => return,
            Err(e) => {
                crate::warn!("job connection dropped: {e}");
                return;
            }
        };
        shared.active.fetch_add(1, Ordering::SeqCst);
        let reply = match fd {
            Some(fd) => {
                let file = File::from(fd);
                let settings = match shared.settings.read() {
                    Ok(s) => s.clone(),
                    Err(poisoned) => poisoned.into_inner().clone(),
                };
                deliver::run_job(&settings, &mut dir, &shared.clock, &job, &file)
            }
            None => deliver::defer_all(&job, "the job came without the message file"),
        };
        shared.active.fetch_sub(1, Ordering::SeqCst);
        reply
            .results
            .iter()
            .for_each(|r| crate::stats::delivery(&job.qid, r.outcome));
        if let Err(e) = write_reply(&stream, &reply) {
            // kmp-send retries the job; deliveries done are found by their ids.
            crate::warn!("{}: reply not sent: {e}", job.qid);
            return;
        }
    }
}

fn write_reply(mut stream: &UnixStream, reply: &JobReply) -> Result<(), FrameError> {
    frame::write(&mut stream, reply)
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
