//! kmp-admind: the remote administration API, HTTPS and JSON, for system
//! administrators, domain postmasters and (later) list owners, and the door
//! the webmail's postmaster and sign-up pages go through.
//!
//! Layers as for the mail protocols: [`api`] parses a request into a typed
//! call (pure, bounded, fuzzed); [`authz`] says whether the caller may make
//! it (the one place); [`handlers`] performs it with the same functions as
//! kmpctl ([`crate::admin`], the user database's writers, which enforce the
//! domains' limits); [`server`] owns the sockets, TLS, sessions ([`token`])
//! and the log line of each change (who, from where, what).
//!
//! Logins are checked by kmp-authd (service `admin`), so failures count
//! toward the same bans as IMAP's or SMTP's.

pub mod api;
pub mod authz;
pub mod fetch;
pub mod handlers;
pub mod lists;
pub mod server;
pub mod signup;
pub mod token;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::exit;

use server::{Server, Settings};

/// Serves until SIGTERM or SIGINT; SIGHUP re-reads the configuration
/// (admins, session lifetime, limits). Returns the exit code.
pub fn run(
    config_path: Option<PathBuf>,
    settings: Settings,
    tls: Arc<rustls::ServerConfig>,
    listeners: Vec<TcpListener>,
) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("kmp-admind")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::error!("cannot start the runtime: {e}");
            return exit::OSERR;
        }
    };
    let server = match Server::new(settings, tls, Clock::System) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            crate::error!("{e}");
            return exit::OSFILE;
        }
    };
    let reloader = server.clone();
    rt.block_on(crate::daemon::serve_until_stopped(
        move || match Config::load_located(config_path.as_deref()) {
            Ok(cfg) => {
                reloader.reload(Settings::from_config(&cfg));
                crate::info!("configuration reloaded");
            }
            Err(e) => crate::error!("reload: keeping the old configuration: {e}"),
        },
        |shutdown| server.run(listeners, shutdown),
    ))
}
