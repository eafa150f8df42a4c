//! kmp-sieved: ManageSieve (RFC 5804), where users upload, check and
//! activate their Sieve scripts.
//!
//! Three layers, as for the mail protocols: [`proto`] is the syntax (pure,
//! capped), [`session`] the state machine (no network I/O; the scripts go
//! through `crate::sievestore`), [`server`] the sockets, TLS and kmp-authd.

pub mod proto;
pub mod server;
pub mod session;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::exit;

use server::{Server, Settings};

/// Serves until SIGTERM or SIGINT; SIGHUP re-reads the configuration (limits,
/// timeouts, the certificate; not the listeners). Returns the exit code.
pub fn run(
    config_path: Option<PathBuf>,
    settings: Settings,
    tls: Option<Arc<rustls::ServerConfig>>,
    listeners: Vec<TcpListener>,
) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("kmp-sieved")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::error!("cannot start the runtime: {e}");
            return exit::OSERR;
        }
    };
    let server = Arc::new(Server::new(settings, tls, Clock::System));
    rt.block_on(async move {
        let Ok(mut signals) = crate::daemon::Signals::new() else {
            crate::error!("cannot install signal handlers");
            return exit::OSERR;
        };
        let reloader = server.clone();
        let shutdown = async move {
            while let crate::daemon::Signal::Reload = signals.next().await {
                reload(&reloader, config_path.as_deref());
            }
        };
        crate::info!("ready");
        match server.run(listeners, shutdown).await {
            Ok(()) => {
                crate::info!("stopping");
                exit::OK
            }
            Err(e) => {
                crate::error!("{e}");
                exit::OSERR
            }
        }
    })
}

/// SIGHUP: a new configuration, or the old one kept with the errors logged.
fn reload(server: &Server, path: Option<&std::path::Path>) {
    let cfg = match Config::load_located(path) {
        Ok(c) => c,
        Err(e) => {
            crate::error!("reload: {e}; keeping the running configuration");
            return;
        }
    };
    match crate::daemon::tls_config(&cfg) {
        Ok(tls) => {
            server.reload(Settings::from_config(&cfg), tls);
            crate::info!("configuration reloaded");
        }
        Err(e) => crate::error!("reload: TLS: {e}; keeping the running configuration"),
    }
}
