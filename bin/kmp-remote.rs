//! kmp-remote - the Kmpromail outbound SMTP client.
//!
//! WHAT IT DOES: takes delivery jobs from kmp-send on `RUN/remote.sock` (one
//! message file descriptor and its recipients per job), finds each
//! destination's mail hosts (static routes, else MX), and sends the message
//! over SMTP with STARTTLS, PIPELINING, SIZE, 8BITMIME (or a 7-bit
//! downgrade), SMTPUTF8, DSN and AUTH as configured and offered. Answers one
//! result per recipient: sent, relayed, deferred or bounced.
//!
//! RUNS AS: `privileges.remote` (kmpr). Started as root, it creates its socket
//! (mode 0660, owned by kmpr in the group of kmp-send's user, so that only
//! kmp-send can connect) and then drops to kmpr.
//!
//! READS: the configuration; message files only through the descriptors
//! kmp-send passes (pread, never seeking); `remote.tls_ca_file`.
//!
//! WRITES: nothing but its socket, its pid file and log lines.
//!
//! TRUSTS: kmp-send's jobs (the socket is 0660). DOES NOT TRUST: remote
//! servers: every reply goes through a parser with limits, every wait has a
//! timeout. It never opens the queue, a mailbox or the user database.
//!
//! EXIT CODES: 0 on SIGTERM; 78 for a bad configuration; 71 when the socket
//! cannot be made or privileges cannot be dropped.
//!
//! STANDARDS: RFC 5321, 3207 (STARTTLS), 2920 (PIPELINING), 1870 (SIZE),
//! 6152 (8BITMIME), 6531 (SMTPUTF8), 3461 (DSN), 4954 (AUTH), 3463 and 2034
//! (enhanced status codes), 7505 (null MX).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, RwLock};

use clap::Parser;
use kmpromail::daemon::{self, DaemonArgs, PidFile};
use kmpromail::exit;
use kmpromail::paths::Paths;
use kmpromail::remote;

/// The outbound SMTP client of Kmpromail.
#[derive(Debug, Parser)]
#[command(name = "kmp-remote", version)]
struct Cli {
    #[command(flatten)]
    daemon: DaemonArgs,
}

fn main() {
    let cli = kmpromail::exit::parse_args::<Cli>();
    std::process::exit(run(cli));
}

fn run(cli: Cli) -> i32 {
    let cfg = match daemon::setup("kmp-remote", &cli.daemon) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let paths = Paths::new(&cfg);
    let sock = paths.remote_socket();
    let listener = match bind(&sock) {
        Ok(l) => l,
        Err(e) => {
            kmpromail::error!("cannot listen on {}: {e}", sock.display());
            return exit::CANTCREAT;
        }
    };
    if let Err(e) = daemon::hand_socket_over(
        &sock,
        cfg.str("privileges.remote"),
        cfg.str("privileges.send"),
    ) {
        kmpromail::error!("cannot hand {} over: {e}", sock.display());
        return exit::OSERR;
    }
    if let Err(code) = daemon::drop_privileges(&cfg, "privileges.remote", None) {
        return code;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            kmpromail::error!("cannot start the runtime: {e}");
            return exit::OSERR;
        }
    };
    rt.block_on(serve(cli, cfg, listener))
}

/// Binds the job socket, mode 0660. A socket someone answers on means
/// another kmp-remote runs; a stale one is removed.
fn bind(path: &Path) -> std::io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::net::{UnixListener, UnixStream};
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "another kmp-remote is running",
            ));
        }
        std::fs::remove_file(path)?;
    }
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

async fn serve(
    cli: Cli,
    cfg: kmpromail::config::Config,
    listener: std::os::unix::net::UnixListener,
) -> i32 {
    let shared = match remote::shared_from(&cfg) {
        Ok(s) => s,
        Err(errors) => {
            for e in errors {
                kmpromail::error!("{e}");
            }
            return exit::CONFIG;
        }
    };
    let paths = Paths::new(&cfg);
    let sock = paths.remote_socket();
    let listener = match tokio::net::UnixListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            kmpromail::error!("cannot listen on {}: {e}", sock.display());
            return exit::OSERR;
        }
    };
    let current: remote::Current = Arc::new(RwLock::new(Arc::new(shared)));
    let pid = match PidFile::write(&paths, "kmp-remote") {
        Ok(p) => p,
        Err(e) => {
            kmpromail::error!("cannot write the pid file: {e}");
            return exit::CANTCREAT;
        }
    };
    kmpromail::info!("ready on {}", sock.display());
    let server = tokio::spawn(remote::serve(current.clone(), listener));
    let code = signals(&cli, current).await;
    server.abort();
    let _ = std::fs::remove_file(&sock);
    drop(pid);
    code
}

/// Waits for SIGTERM or SIGINT (the exit code) and re-reads the
/// configuration on SIGHUP.
async fn signals(cli: &Cli, current: remote::Current) -> i32 {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        kmpromail::error!("cannot install signal handlers");
        return exit::OSERR;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => reload(cli, &current),
        }
    }
    kmpromail::info!("stopping");
    exit::OK
}

fn reload(cli: &Cli, current: &remote::Current) {
    let cfg = match kmpromail::config::Config::load_located(cli.daemon.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            kmpromail::error!("reload: {e}; keeping the old configuration");
            return;
        }
    };
    match remote::shared_from(&cfg) {
        Ok(s) => {
            *current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(s);
            kmpromail::info!("configuration reloaded");
        }
        Err(errors) => {
            for e in errors {
                kmpromail::error!("reload: {e}");
            }
        }
    }
}
