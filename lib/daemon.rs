//! What every daemon's main does the same way: its command line, loading the
//! configuration, starting the log, binding, dropping privileges, the pid file
//! that tells `kmpctl start` it is ready, and the TLS certificate.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use crate::config::Config;
use crate::exit;
use crate::paths::Paths;

/// The options every daemon takes (flatten into its clap parser).
#[derive(Debug, Clone, Args)]
pub struct DaemonArgs {
    /// The configuration file (default: $KMPROMAIL_CONFIG, else /etc/kmpromail/kmpromail.toml).
    #[arg(long, short = 'c', value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Stay attached and log to standard error instead of syslog.
    #[arg(long)]
    pub foreground: bool,
}

/// Installs the one TLS crypto provider, loads and validates the
/// configuration, and starts the log. On a bad configuration it prints every
/// error and returns the exit code (78).
pub fn setup(program: &str, args: &DaemonArgs) -> Result<Config, i32> {
    // Two providers in one process make rustls panic: install ours first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cfg = match Config::load_located(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{program}: {e}");
            return Err(e.exit_code());
        }
    };
    if args.foreground {
        crate::log::init_stderr(program);
    } else {
        crate::log::init_syslog(program, cfg.str("paths.syslog_socket"));
    }
    Ok(cfg)
}

/// Binds every address of one listening key, or says which one failed.
/// `[::]:PORT` listens on both families (one dual-stack socket, or a pair
/// where the system has none); an address whose family or interface the
/// host lacks is logged and skipped (`net::listen`).
pub fn bind_all(addrs: &[SocketAddr]) -> Result<Vec<TcpListener>, (SocketAddr, std::io::Error)> {
    let bound = crate::net::listen::bind_all(addrs)?;
    for n in &bound.notes {
        crate::warn!("{n}");
    }
    if bound.listeners.is_empty() && !addrs.is_empty() {
        crate::warn!("no listener is left of {addrs:?}: that service is not offered");
    }
    Ok(bound.listeners)
}

/// Drops to the user the `[privileges]` key `key` names (nothing when not root
/// or when it is empty). Logs and returns the exit code on failure.
pub fn drop_privileges(cfg: &Config, key: &str, extra_group: Option<&str>) -> Result<(), i32> {
    match crate::sys::privs::drop_to(cfg.str(key), extra_group) {
        Ok(_) => Ok(()),
        Err(e) => {
            crate::error!("cannot drop privileges: {e}");
            Err(exit::OSERR)
        }
    }
}

/// As root, gives a Unix socket that a daemon bound to `owner` (the user it
/// is about to become) and to `group` (a group name, or a user name whose
/// primary group is meant), so that only members of that group can connect
/// (sockets are made mode 0660). Does nothing when not root or `owner` is empty.
pub fn hand_socket_over(socket: &Path, owner: &str, group: &str) -> nix::Result<()> {
    use nix::unistd::{chown, Group, User};
    if !crate::sys::privs::is_root() || owner.is_empty() {
        return Ok(());
    }
    let uid = User::from_name(owner)?.map(|u| u.uid);
    let gid = match group {
        "" => None,
        g => match Group::from_name(g)? {
            Some(gr) => Some(gr.gid),
            None => User::from_name(g)?.map(|u| u.gid),
        },
    };
    chown(socket, uid, gid)
}

/// The group every daemon user belongs to (`kmpctl setup` makes it): it may
/// reach kmp-authd's socket, create files in the run directory and read the
/// TLS key.
pub const DAEMON_GROUP: &str = "kmpromail";

/// A pid file under the run directory: written when the daemon is ready,
/// removed when it ends cleanly. `kmpctl start` waits for it.
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes `RUN/PROGRAM.pid` with this process's id.
    pub fn write(paths: &Paths, program: &str) -> std::io::Result<PidFile> {
        let path = paths.pid_file(program);
        let tmp = path.with_extension("pid.tmp");
        std::fs::write(&tmp, format!("{}\n", std::process::id()))?;
        std::fs::rename(&tmp, &path)?;
        crate::stats::publish(&paths.run, program);
        Ok(PidFile { path })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What a daemon is asked to do by a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM or SIGINT: end cleanly.
    Stop,
    /// SIGHUP: re-read the configuration.
    Reload,
}

/// SIGTERM, SIGINT and SIGHUP for a daemon's async main loop.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers; call inside the runtime.
    pub fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for the next signal.
    pub async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Stop,
            _ = self.int.recv() => Signal::Stop,
            _ = self.hup.recv() => Signal::Reload,
        }
    }
}

/// Why the TLS certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0}: {1}")]
    Read(PathBuf, String),
    #[error("{0}: no certificate in the file")]
    NoCert(PathBuf),
    #[error("certificate and key do not go together: {0}")]
    Mismatch(String),
}

/// The server-side TLS configuration from `tls.cert` and `tls.key`, or None
/// when either is empty (no TLS offered).
pub fn tls_config(cfg: &Config) -> Result<Option<Arc<rustls::ServerConfig>>, TlsError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let (cert, key) = (cfg.path_of("tls.cert"), cfg.path_of("tls.key"));
    if cfg.str("tls.cert").is_empty() || cfg.str("tls.key").is_empty() {
        return Ok(None);
    }
    let read_err =
        |p: &Path, e: &dyn std::fmt::Display| TlsError::Read(p.to_path_buf(), e.to_string());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .map_err(|e| read_err(&cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| read_err(&cert, &e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCert(cert));
    }
    let key = PrivateKeyDer::from_pem_file(&key).map_err(|e| read_err(&key, &e))?;
    let mut sc = rustls::ServerConfig::builder_with_protocol_versions(&[
        &rustls::version::TLS13,
        &rustls::version::TLS12,
    ])
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| TlsError::Mismatch(e.to_string()))?;
    sc.alpn_protocols.clear();
    Ok(Some(Arc::new(sc)))
}

/// What a daemon swaps on SIGHUP (settings, a TLS acceptor) while every new
/// connection takes a copy: connections keep the copy they started with.
/// A panic while the lock was held cannot leave a half-written value (the
/// swap is one assignment), so a poisoned lock is read through.
pub struct Live<T: Clone>(std::sync::RwLock<T>);

impl<T: Clone> Live<T> {
    pub fn new(value: T) -> Live<T> {
        Live(std::sync::RwLock::new(value))
    }

    /// The value in force now.
    pub fn get(&self) -> T {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `value` in force for the connections that come next.
    pub fn set(&self, value: T) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = value;
    }
}

/// What a daemon does once its listeners are bound: says "ready", calls
/// `reload` on each SIGHUP, and runs `run` (given the future that ends at
/// SIGTERM or SIGINT) until it returns; its result is the exit code.
pub async fn serve_until_stopped<F>(
    reload: impl Fn() + Send + 'static,
    run: impl FnOnce(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> F,
) -> i32
where
    F: std::future::Future<Output = std::io::Result<()>>,
{
    let Ok(mut signals) = Signals::new() else {
        crate::error!("cannot install signal handlers");
        return exit::OSERR;
    };
    let shutdown = Box::pin(async move {
        while let Signal::Reload = signals.next().await {
            reload();
        }
    });
    crate::info!("ready");
    match run(shutdown).await {
        Ok(()) => {
            crate::info!("stopping");
            exit::OK
        }
        Err(e) => {
            crate::error!("{e}");
            exit::OSERR
        }
    }
}

/// SIGHUP for a daemon with TLS: the configuration at `path` read again
/// and its certificate loaded, or None with the errors logged (the running
/// configuration stays).
pub fn reread_with_tls(path: Option<&Path>) -> Option<(Config, Option<Arc<rustls::ServerConfig>>)> {
    let cfg = match Config::load_located(path) {
        Ok(c) => c,
        Err(e) => {
            crate::error!("reload: {e}; keeping the running configuration");
            return None;
        }
    };
    match tls_config(&cfg) {
        Ok(tls) => Some((cfg, tls)),
        Err(e) => {
            crate::error!("reload: TLS: {e}; keeping the running configuration");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_config_loads_an_init_certificate() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        crate::ctl::init::write_self_signed("mx.example.test", &c, &k).unwrap();
        let mut cfg = Config::defaults();
        cfg.set("tls.cert", c.to_str().unwrap()).unwrap();
        cfg.set("tls.key", k.to_str().unwrap()).unwrap();
        assert!(tls_config(&cfg).unwrap().is_some());
        cfg.set("tls.cert", "").unwrap();
        assert!(tls_config(&cfg).unwrap().is_none());
        cfg.set("tls.cert", k.to_str().unwrap()).unwrap();
        assert!(tls_config(&cfg).is_err());
    }
}
