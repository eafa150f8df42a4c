//! kmp-local: delivery into Maildir, as the owner of every mailbox.
//!
//! kmp-send hands over jobs (one message, some of its local recipients) on
//! `RUN/local.sock`, the message as an open descriptor. For each recipient
//! kmp-local asks kmp-authd what the address is, follows aliases and
//! forwards ([`resolve`]), checks for mail loops ([`header`]), creates the
//! Maildir if needed, checks the quota, and writes the message once per file
//! system, hard-linked into every Maildir (`maildir::deliver_many`), with `Return-Path:`
//! and `Delivered-To:` prepended. It answers one result per recipient;
//! addresses in other domains go back to kmp-send to be queued.
//!
//! What it does not do: open the queue (it has only the descriptor), open the
//! user database (kmp-authd answers), or speak to the network.

pub mod deliver;
pub mod fanout;
pub mod header;
pub mod listreq;
pub mod quota;
pub mod resolve;
pub mod server;
pub mod sieve;
#[cfg(test)]
mod testdir;
#[cfg(test)]
mod tests;

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::config::Config;
use crate::paths::Paths;

pub use deliver::Settings;

/// Serves jobs on `listener` until SIGTERM or SIGINT; SIGHUP re-reads the
/// configuration (`[local]` and the host name). Returns the exit code.
/// How often kmp-local looks for postmasters' announcements.
const ANNOUNCE_LOOK: Duration = Duration::from_secs(2);

pub fn run(cfg: Config, config_path: Option<PathBuf>, listener: UnixListener) -> i32 {
    let paths = Paths::new(&cfg);
    let socket = paths.local_socket();
    let shared = Arc::new(server::Shared {
        settings: RwLock::new(Settings::from_config(&cfg)),
        authd_socket: paths.authd_socket(),
        clock: Clock::System,
        active: AtomicUsize::new(0),
        stopping: AtomicBool::new(false),
        senders: Default::default(),
    });
    let accept = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("kmp-local-accept".into())
            .spawn(move || server::accept_loop(listener, shared))
    };
    if let Err(e) = accept {
        crate::error!("cannot start the accept thread: {e}");
        return crate::exit::OSERR;
    }
    // Postmasters' announcements from kmp-admind (lib/announce/spool.rs).
    let spool = cfg.path_of("paths.announce");
    if !cfg.str("paths.announce").is_empty() {
        let (shared, mail, authd) = (shared.clone(), paths.mail.clone(), paths.authd_socket());
        let spawned = std::thread::Builder::new()
            .name("kmp-local-announce".into())
            .spawn(move || {
                while !shared.stopping.load(Ordering::SeqCst) {
                    crate::announce::spool::serve_pending(&spool, &mail, &authd);
                    std::thread::sleep(ANNOUNCE_LOOK);
                }
            });
        if let Err(e) = spawned {
            crate::error!("cannot start the announcement thread: {e}");
        }
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::error!("cannot start the signal handler: {e}");
            return crate::exit::OSERR;
        }
    };
    crate::info!("ready on {}", socket.display());
    let code = rt.block_on(signals(&shared, config_path.as_deref()));
    shared.stopping.store(true, Ordering::SeqCst);
    // Wake the accept loop so it sees `stopping`, then make the socket go.
    let _ = std::os::unix::net::UnixStream::connect(&socket);
    let _ = std::fs::remove_file(&socket);
    let start = Instant::now();
    while shared.active.load(Ordering::SeqCst) > 0 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    crate::info!("stopped");
    code
}

async fn signals(shared: &server::Shared, config_path: Option<&Path>) -> i32 {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        crate::error!("cannot install signal handlers");
        return crate::exit::OSERR;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return crate::exit::OK,
            _ = int.recv() => return crate::exit::OK,
            _ = hup.recv() => match Config::load_located(config_path) {
                Ok(cfg) => {
                    if let Ok(mut s) = shared.settings.write() {
                        *s = Settings::from_config(&cfg);
                    }
                    crate::info!("configuration reloaded");
                }
                Err(e) => crate::warn!("configuration not reloaded: {e}"),
            },
        }
    }
}
