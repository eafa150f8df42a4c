//! kmp-remote: the outbound SMTP client.
//!
//! kmp-send connects to `RUN/remote.sock` and, for each job, sends a
//! [`Job`](crate::ipc::job::Job) frame with the message file's descriptor
//! attached; we answer with one [`JobReply`](crate::ipc::job::JobReply)
//! holding one result per recipient. One job is one attempt: retries and
//! their schedule are kmp-send's; within the attempt we try the next MX host
//! when one fails. Several connections, and several jobs, run at once.
//!
//! What this module owns: routing ([`route`]: the static table, then MX per
//! RFC 5321 section 5 and RFC 7505), the client session ([`client`],
//! [`deliver`]: EHLO/HELO, PIPELINING, SIZE, 8BITMIME and the 7-bit
//! downgrade in [`body`], SMTPUTF8, DSN, STARTTLS per destination policy,
//! AUTH to a smarthost), the reply parser ([`reply`]), concurrency limits and
//! connection reuse ([`pool`]). What it does not: the queue, mailboxes, the
//! user database (never imported here), bounces (kmp-send writes them from
//! our results).
//!
//! The message file is read with `pread` only: the descriptor's file offset
//! is shared with kmp-send's open file and must not move.

pub mod body;
pub mod client;
pub mod deliver;
pub mod downgrade;
pub mod message;
pub mod pool;
pub mod reply;
pub mod route;
pub mod settings;
pub mod tls;

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::{UnixListener, UnixStream};

use crate::config::Config;
use crate::ipc::frame::{self, FrameError, MAX_FRAME};
use crate::ipc::job::{Job, JobReply, Outcome, RecipientResult, VERSION};

pub use deliver::Shared;
pub use message::Message;
pub use settings::Settings;

/// Builds what every delivery shares from the configuration.
pub fn shared_from(cfg: &Config) -> Result<Shared, Vec<String>> {
    let settings = Settings::from_config(cfg)?;
    let resolver = match route::resolver(&settings.dns_servers, settings.family) {
        Ok(r) => Some(r),
        Err(e) => {
            crate::warn!("no DNS resolver ({e}): only static routes will work");
            None
        }
    };
    let tls = tls::TlsClients::new(std::path::Path::new(&settings.tls_ca_file));
    if let Err(e) = &tls.verified {
        crate::warn!("TLS level verify cannot work: {e}");
    }
    Ok(Shared {
        pool: pool::Pool::new(
            settings.max_connections,
            settings.max_per_destination,
            settings.cache_time,
        ),
        settings,
        tls,
        resolver,
        signer: match cfg.str("auth.dkim_keys") {
            "" => None,
            dir => {
                let signer =
                    crate::mailauth::sign::Signer::new(dir.into(), cfg.str("system.hostname"));
                Some(Arc::new(if cfg.bool("auth.arc_seal") {
                    let id = match cfg.str("auth.authserv_id") {
                        "" => cfg.str("system.hostname"),
                        s => s,
                    };
                    signer.with_arc(id)
                } else {
                    signer
                }))
            }
        },
    })
}

/// The settings in force; SIGHUP replaces them.
pub type Current = Arc<RwLock<Arc<Shared>>>;

/// Accepts kmp-send's connections until the listener fails.
pub async fn serve(current: Current, listener: UnixListener) {
    let reaper = current.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            let s = reaper.read().unwrap_or_else(|p| p.into_inner()).clone();
            s.pool.expire();
        }
    });
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let current = current.clone();
                tokio::spawn(async move { connection(current, stream).await });
            }
            Err(e) => {
                crate::error!("accept on the job socket: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One kmp-send connection: jobs one after the other until it closes.
async fn connection(current: Current, mut stream: UnixStream) {
    let mut pending = Vec::new();
    loop {
        let (job, fd) = match read_job(&stream, &mut pending).await {
            Ok(x) => x,
            Err(FrameError::Closed) => return,
            Err(e) => {
                crate::warn!("job socket: {e}");
                return;
            }
        };
        let shared = current.read().unwrap_or_else(|p| p.into_inner()).clone();
        let qid = job.qid.clone();
        let results = run_job(shared, job, fd).await;
        for r in &results {
            crate::stats::delivery(&qid, r.outcome);
        }
        let reply = JobReply {
            v: VERSION,
            results,
        };
        if let Err(e) = frame::write_async(&mut stream, &reply).await {
            crate::warn!("job socket: cannot send the reply: {e}");
            return;
        }
    }
}

/// Performs one job: reads the message through its descriptor and delivers.
pub async fn run_job(shared: Arc<Shared>, job: Job, fd: Option<OwnedFd>) -> Vec<RecipientResult> {
    let fail = |job: &Job, text: String| -> Vec<RecipientResult> {
        crate::warn!("{}: {text}", job.qid);
        job.recipients
            .iter()
            .map(|r| RecipientResult {
                index: r.index,
                outcome: Outcome::Deferred,
                dsn: "4.3.0".into(),
                text: text.clone(),
                relay: "none".into(),
                remote_mta: None,
                diagnostic: None,
                expanded: Vec::new(),
            })
            .collect()
    };
    if job.v != VERSION {
        let text = format!("job protocol version {} is not {VERSION}", job.v);
        return fail(&job, text);
    }
    let Some(fd) = fd else {
        return fail(&job, "the job came without its message file".into());
    };
    let file = std::fs::File::from(fd);
    let signer = shared.signer.clone();
    let null_sender = job.sender.is_empty();
    let open = move || Message::open(file).map(|m| m.with_signer(signer, null_sender));
    let msg = match tokio::task::spawn_blocking(open).await {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => return fail(&job, format!("cannot read the message file: {e}")),
        Err(e) => return fail(&job, format!("cannot read the message file: {e}")),
    };
    deliver::deliver_job(shared, Arc::new(job), Arc::new(msg)).await
}

/// Reads one job frame and the descriptor that came with it. `pending`
/// keeps bytes received past the frame.
async fn read_job(
    stream: &UnixStream,
    pending: &mut Vec<u8>,
) -> Result<(Job, Option<OwnedFd>), FrameError> {
    let mut fd = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if pending.len() >= 4 {
            let len = u32::from_be_bytes([pending[0], pending[1], pending[2], pending[3]]) as usize;
            if len > MAX_FRAME {
                return Err(FrameError::TooLarge(len));
            }
            if pending.len() >= 4 + len {
                let job = frame::decode(&pending[4..4 + len]);
                pending.drain(..4 + len);
                return Ok((job?, fd));
            }
        }
        let (n, got) = recv(stream, &mut buf).await?;
        if n == 0 {
            return Err(if pending.is_empty() {
                FrameError::Closed
            } else {
                FrameError::Io(std::io::ErrorKind::UnexpectedEof.into())
            });
        }
        if fd.is_none() {
            fd = got;
        }
        pending.extend_from_slice(&buf[..n]);
    }
}

/// One recvmsg on the non-blocking socket, waiting for it to be readable.
async fn recv(stream: &UnixStream, buf: &mut [u8]) -> std::io::Result<(usize, Option<OwnedFd>)> {
    loop {
        stream.readable().await?;
        match stream.try_io(Interest::READABLE, || {
            crate::sys::fdpass::recv_with_fd(stream.as_raw_fd(), buf)
        }) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}
