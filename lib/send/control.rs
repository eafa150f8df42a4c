//! kmp-send's sockets and signals: the kick datagram socket that wakes it,
//! the control socket `kmpctl queue` and `mailq` talk to, SIGTERM and SIGHUP;
//! and the answers to control requests.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::net::{UnixDatagram, UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use super::{Event, Queue, Settings};
use crate::clock::Clock;
use crate::config::Config;
use crate::ipc::control::{ErrorKind, ListEntry, ListRcpt, Reply, Request, Versioned, VERSION};
use crate::ipc::frame;
use crate::paths::Paths;
use crate::queue::record::{RcptStatus, Record};
use crate::queue::QueueId;
use crate::{error, exit, info, warn};

/// Sets up the sockets, opens the queue and runs until SIGTERM.
pub async fn serve(cfg: Config, config_path: Option<PathBuf>, clock: Clock) -> i32 {
    let paths = Paths::new(&cfg);
    let st = Settings::from_config(&cfg);
    if let Err(e) = std::fs::create_dir_all(&paths.queue) {
        error!("cannot create {}: {e}", paths.queue.display());
        return exit::CANTCREAT;
    }
    // One kmp-send per queue: the lock is held until the process ends.
    let lock_path = paths.queue.join("send.lock");
    let _lock = match lock(&lock_path) {
        Ok(l) => l,
        Err(e) => {
            error!("{e}");
            return exit::TEMPFAIL;
        }
    };
    let kick = match bind_datagram(&paths.kick_socket()) {
        Ok(s) => s,
        Err(e) => {
            error!("cannot bind {}: {e}", paths.kick_socket().display());
            return exit::OSERR;
        }
    };
    let listener = match bind_stream(&paths.send_socket()) {
        Ok(s) => s,
        Err(e) => {
            error!("cannot bind {}: {e}", paths.send_socket().display());
            return exit::OSERR;
        }
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let queue = match Queue::open(paths.clone(), st, clock, tx.clone()) {
        Ok(q) => q,
        Err(e) => {
            error!("cannot open the queue: {e}");
            return if e.is_temporary() {
                exit::TEMPFAIL
            } else {
                exit::OSFILE
            };
        }
    };
    let pid = match crate::daemon::PidFile::write(&paths, "kmp-send") {
        Ok(p) => p,
        Err(e) => {
            error!("cannot write the pid file: {e}");
            return exit::CANTCREAT;
        }
    };
    info!("started");
    let t = tx.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 16];
        while kick.recv(&mut buf).await.is_ok() {
            if t.send(Event::Kick).is_err() {
                break;
            }
        }
    });
    let t = tx.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let t = t.clone();
            tokio::spawn(async move { connection(s, t).await });
        }
    });
    tokio::spawn(signals(tx.clone(), config_path));
    queue.serve(rx).await;
    let _ = std::fs::remove_file(paths.send_socket());
    let _ = std::fs::remove_file(paths.kick_socket());
    drop(pid);
    info!("stopped");
    exit::OK
}

fn lock(path: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, String> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|_| {
        format!(
            "another kmp-send is running on this queue ({})",
            path.display()
        )
    })
}

fn bind_datagram(path: &Path) -> std::io::Result<UnixDatagram> {
    let _ = std::fs::remove_file(path);
    let s = UnixDatagram::bind(path)?;
    // Anyone who may drop mail may wake us; a stray datagram costs a scan.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(s)
}

fn bind_stream(path: &Path) -> std::io::Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    let s = UnixListener::bind(path)?;
    // Everyone may list (mailq); changes are checked per request (peer uid).
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(s)
}

async fn signals(tx: mpsc::UnboundedSender<Event>, config_path: Option<PathBuf>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        warn!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => { let _ = tx.send(Event::Stop); return; }
            _ = int.recv() => { let _ = tx.send(Event::Stop); return; }
            _ = hup.recv() => {
                match Config::load_located(config_path.as_deref()) {
                    Ok(cfg) => { let _ = tx.send(Event::Reload(Box::new(Settings::from_config(&cfg)))); }
                    Err(e) => warn!("configuration not reloaded: {e}"),
                }
            }
        }
    }
}

/// Serves one control connection: requests until the client closes it.
async fn connection(mut s: UnixStream, tx: mpsc::UnboundedSender<Event>) {
    let uid = s.peer_cred().map(|c| c.uid()).ok();
    let me = nix::unistd::geteuid().as_raw();
    loop {
        let req: Versioned = match frame::read_async(&mut s).await {
            Ok(r) => r,
            Err(frame::FrameError::Closed) => return,
            Err(e) => {
                let _ =
                    frame::write_async(&mut s, &err(ErrorKind::BadRequest, &e.to_string())).await;
                return;
            }
        };
        let reply = if req.v != VERSION {
            err(
                ErrorKind::BadRequest,
                &format!("protocol version {} not spoken (this is {VERSION})", req.v),
            )
        } else if req.req.is_privileged() && !matches!(uid, Some(u) if u == 0 || u == me) {
            err(
                ErrorKind::Denied,
                "permission denied: only root or the queue's owner may change the queue",
            )
        } else {
            let (rtx, rrx) = oneshot::channel();
            if tx.send(Event::Control(req.req, rtx)).is_err() {
                return;
            }
            match rrx.await {
                Ok(r) => r,
                Err(_) => err(ErrorKind::Temporary, "kmp-send is stopping"),
            }
        };
        if frame::write_async(&mut s, &reply).await.is_err() {
            return;
        }
    }
}

fn err(kind: ErrorKind, message: &str) -> Reply {
    Reply::Error {
        kind,
        message: message.to_string(),
    }
}

/// Answers one request; runs in the main loop.
pub(super) fn handle(q: &mut Queue, req: Request) -> Reply {
    let now = q.clock.now();
    let find = |q: &Queue, qid: &str| -> Result<QueueId, Reply> {
        let id: QueueId = qid.parse().map_err(|e: crate::queue::id::BadQueueId| {
            err(ErrorKind::BadRequest, &e.to_string())
        })?;
        if q.recs.contains_key(&id) {
            Ok(id)
        } else {
            Err(err(
                ErrorKind::NotFound,
                &format!("no message {id} in the queue"),
            ))
        }
    };
    match req {
        Request::List => {
            let mut ids: Vec<&QueueId> = q.recs.keys().collect();
            ids.sort();
            Reply::List {
                entries: ids
                    .into_iter()
                    .map(|id| entry(id, &q.recs[id], q.active.contains(id)))
                    .collect(),
            }
        }
        Request::Show { qid } => match find(q, &qid) {
            Ok(id) => Reply::Show {
                active: q.active.contains(&id),
                record: Box::new(q.recs[&id].clone()),
                qid: id.to_string(),
            },
            Err(r) => r,
        },
        Request::Flush => {
            let ids: Vec<QueueId> = q
                .recs
                .iter()
                .filter(|(id, r)| !r.held && !r.is_done() && !q.active.contains(*id))
                .map(|(id, _)| id.clone())
                .collect();
            for id in &ids {
                retry_now(q, id, now);
            }
            let _ = q.tx.send(Event::Kick);
            Reply::Done {
                count: ids.len() as u64,
            }
        }
        Request::Hold { qid } => match find(q, &qid) {
            Ok(id) => {
                if let Some(r) = q.recs.get_mut(&id) {
                    r.held = true;
                }
                q.dirty.insert(id.clone());
                info!("{id}: placed on hold");
                Reply::Done { count: 1 }
            }
            Err(r) => r,
        },
        Request::Release { qid } => match find(q, &qid) {
            Ok(id) => {
                if let Some(r) = q.recs.get_mut(&id) {
                    r.held = false;
                }
                retry_now(q, &id, now);
                info!("{id}: released from hold");
                Reply::Done { count: 1 }
            }
            Err(r) => r,
        },
        Request::Delete { qid } => match find(q, &qid) {
            Ok(id) => {
                if let Some(r) = q.recs.get_mut(&id) {
                    for rc in r.rcpts.iter_mut() {
                        if rc.status == RcptStatus::Pending {
                            rc.status = RcptStatus::Deleted;
                            rc.notified = true;
                        }
                    }
                }
                q.dirty.insert(id.clone());
                info!("{id}: deleted by the administrator");
                Reply::Done { count: 1 }
            }
            Err(r) => r,
        },
        Request::Requeue { qid } => match find(q, &qid) {
            Ok(id) => {
                if let Some(r) = q.recs.get_mut(&id) {
                    r.held = false;
                    r.reason.clear();
                    for rc in r.rcpts.iter_mut() {
                        if rc.status == RcptStatus::Pending {
                            rc.route = None;
                        }
                    }
                }
                retry_now(q, &id, now);
                info!("{id}: requeued");
                Reply::Done { count: 1 }
            }
            Err(r) => r,
        },
    }
}

fn retry_now(q: &mut Queue, id: &QueueId, now: u64) {
    if let Some(r) = q.recs.get_mut(id) {
        r.next_attempt = now;
    }
    q.dirty.insert(id.clone());
    q.schedule(id);
}

fn entry(id: &QueueId, r: &Record, active: bool) -> ListEntry {
    ListEntry {
        qid: id.to_string(),
        size: r.size,
        arrived: r.arrived(),
        sender: r.sender.clone(),
        held: r.held,
        active,
        next_attempt: r.next_attempt,
        attempts: r.attempts,
        reason: r.reason.clone(),
        recipients: r
            .pending()
            .map(|(_, rc)| ListRcpt {
                address: rc.address.clone(),
                status: "pending".into(),
                text: rc.text.clone(),
            })
            .collect(),
    }
}
