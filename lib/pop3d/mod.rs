//! kmp-pop3d: POP3 (RFC 1939) with CAPA (RFC 2449), STLS (RFC 2595) and
//! SASL PLAIN (RFC 5034) over the users' Maildirs.
//!
//! Three layers: the syntax is in `proto::pop3`; [`session`] is the state
//! machine, with no I/O; [`server`] is the only code that touches sockets,
//! files and time. [`store`] is the maildrop seen by POP3: INBOX of the
//! user's Maildir, locked for one session at a time.

pub mod maildrop;
pub mod server;
pub mod session;
pub mod store;

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
    store: Box<dyn store::Store>,
    tls: Option<Arc<rustls::ServerConfig>>,
    plain: Vec<TcpListener>,
    implicit_tls: Vec<TcpListener>,
) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kmp-pop3d")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::error!("cannot start the runtime: {e}");
            return exit::OSERR;
        }
    };
    let server = Arc::new(Server::new(settings, tls, store, Clock::System));
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
        match server.run(plain, implicit_tls, shutdown).await {
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
    let settings = match Settings::from_config(&cfg) {
        Ok(s) => s,
        Err(e) => {
            crate::error!("reload: {e}; keeping the running configuration");
            return;
        }
    };
    match crate::daemon::tls_config(&cfg) {
        Ok(tls) => {
            server.reload(settings, tls);
            crate::info!("configuration reloaded");
        }
        Err(e) => crate::error!("reload: TLS: {e}; keeping the running configuration"),
    }
}
