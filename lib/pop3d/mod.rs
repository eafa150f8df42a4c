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
    let reloader = server.clone();
    rt.block_on(crate::daemon::serve_until_stopped(
        move || reload(&reloader, config_path.as_deref()),
        |shutdown| server.run(plain, implicit_tls, shutdown),
    ))
}

/// SIGHUP: a new configuration, or the old one kept with the errors logged.
fn reload(server: &Server, path: Option<&std::path::Path>) {
    let Some((cfg, tls)) = crate::daemon::reread_with_tls(path) else {
        return;
    };
    match Settings::from_config(&cfg) {
        Ok(settings) => {
            server.reload(settings, tls);
            crate::info!("configuration reloaded");
        }
        Err(e) => crate::error!("reload: {e}; keeping the running configuration"),
    }
}
