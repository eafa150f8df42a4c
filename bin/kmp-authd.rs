//! kmp-authd - verify logins, look up recipients, count failures, keep bans.
//!
//! Runs as: the `privileges.authd` user (kmpauth) after binding its socket;
//! in a `kmpctl init` instance, as whoever starts it.
//! Reads: the configuration; the user database (LMDB in `paths.db`), the
//! only program besides kmpctl that does, and the only daemon that reads
//! password hashes.
//! Writes: its socket `RUN/authd.sock` (mode 0660), its pid file
//! `RUN/kmp-authd.pid`, the ban table `DB/authd-bans`.
//! Trusts: the database and the configuration. Does not trust: its clients —
//! a malformed request closes that connection only; logins are counted and
//! failing addresses banned.
//! Signals: SIGHUP re-reads the configuration and re-opens the database;
//! SIGTERM and SIGINT end it cleanly.
//! Exit codes: 0 after SIGTERM, 69 another kmp-authd is running, 72 the user
//! database is missing or damaged, 77 permission denied, 78 configuration error.
//! See kmp-authd(8), kmpctl(8).

use std::sync::Arc;

use clap::Parser;
use kmpromail::authd::{self, Authd, Settings};
use kmpromail::clock::Clock;
use kmpromail::config::Config;
use kmpromail::daemon::{self, DaemonArgs, PidFile};
use kmpromail::paths::Paths;
use kmpromail::{error, exit, info};

#[derive(Debug, Parser)]
#[command(name = "kmp-authd", version, about = "Kmpromail authentication daemon")]
struct Args {
    #[command(flatten)]
    daemon: DaemonArgs,
}

fn main() {
    std::process::exit(run(kmpromail::exit::parse_args::<Args>()));
}

fn run(args: Args) -> i32 {
    let cfg = match daemon::setup("kmp-authd", &args.daemon) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let paths = Paths::new(&cfg);
    let socket = paths.authd_socket();
    let listener = match authd::bind(&socket) {
        Ok(l) => l,
        Err(e) => {
            error!("{e}");
            return e.exit_code();
        }
    };
    if let Err(e) =
        daemon::hand_socket_over(&socket, cfg.str("privileges.authd"), daemon::DAEMON_GROUP)
    {
        error!("cannot hand {} over: {e}", socket.display());
        return exit::OSERR;
    }
    if let Err(code) = daemon::drop_privileges(&cfg, "privileges.authd", None) {
        return code;
    }
    let state = match Authd::open(Settings::from_config(&cfg), Clock::System) {
        Ok(a) => Arc::new(a),
        Err(e) => {
            error!("{e}");
            let _ = std::fs::remove_file(&socket);
            return e.exit_code();
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return exit::OSERR;
        }
    };
    let code = rt.block_on(async move {
        let listener = match tokio::net::UnixListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                error!("socket {}: {e}", socket.display());
                return exit::OSERR;
            }
        };
        let mut signals = match daemon::Signals::new() {
            Ok(s) => s,
            Err(e) => {
                error!("cannot install signal handlers: {e}");
                return exit::OSERR;
            }
        };
        let pid = match PidFile::write(&paths, "kmp-authd") {
            Ok(p) => p,
            Err(e) => {
                error!("cannot write the pid file: {e}");
                return exit::CANTCREAT;
            }
        };
        info!("ready on {}", socket.display());
        let reloader = state.clone();
        let config_path = args.daemon.config.clone();
        let shutdown = async move {
            while signals.next().await == daemon::Signal::Reload {
                match Config::load_located(config_path.as_deref()) {
                    Ok(cfg) => {
                        let s = Settings::from_config(&cfg);
                        let r = reloader.clone();
                        let _ = tokio::task::spawn_blocking(move || r.reload(s)).await;
                    }
                    Err(e) => {
                        error!("SIGHUP: the configuration is not valid, keeping the old one: {e}")
                    }
                }
            }
        };
        authd::server::serve(state.clone(), listener, shutdown).await;
        info!("stopping");
        state.save_greylist();
        let _ = std::fs::remove_file(&socket);
        drop(pid);
        exit::OK
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}
