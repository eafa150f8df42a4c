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
    let reloader = server.clone();
    rt.block_on(crate::daemon::serve_until_stopped(
        move || reload(&reloader, config_path.as_deref()),
        |shutdown| server.run(listeners, shutdown),
    ))
}

/// SIGHUP: a new configuration, or the old one kept with the errors logged.
fn reload(server: &Server, path: Option<&std::path::Path>) {
    if let Some((cfg, tls)) = crate::daemon::reread_with_tls(path) {
        server.reload(Settings::from_config(&cfg), tls);
        crate::info!("configuration reloaded");
    }
}
