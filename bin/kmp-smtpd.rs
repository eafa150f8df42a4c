//! kmp-smtpd - the Kmpromail ESMTP receiver.
//!
//! What it does: accepts mail on three kinds of listener: `smtpd.listen`
//! (MX, port 25: mail for local domains from anyone), `smtpd.submission_listen`
//! (port 587: AUTH required) and `smtpd.smtps_listen` (port 465: implicit
//! TLS, AUTH required); writes each accepted message into the queue's drop
//! directory and wakes kmp-send.
//! Runs as: `privileges.smtpd` (kmpd) after binding and reading the TLS key.
//! Reads: the configuration, the TLS certificate and key (before dropping
//! privileges); asks kmp-authd about users, logins and bans; asks
//! kmp-imapd over `RUN/urlfetch.sock` for the content of BURL's URLs.
//! Writes: only `QUEUE/incoming/` (tmp, env, new), and its pid file.
//! Trusts: the configuration and the answers of kmp-authd and kmp-imapd. Does not trust the
//! network: every client byte goes through `proto::smtp`'s capped parser.
//! Never imports `userdb` or `maildir`.
//! Exit codes: 0 on SIGTERM; 71 cannot drop privileges; 73 cannot write the
//! pid file; 74 cannot bind or load TLS; 78 bad configuration.
//! Standards: RFC 5321, 1870, 2034, 2920, 3030, 3207, 3461, 3463, 4954,
//! 6152, 6531, 4468 (BURL). See kmp-smtpd(8).

use clap::Parser;

use kmpromail::daemon::{self, DaemonArgs, PidFile};
use kmpromail::exit;
use kmpromail::paths::Paths;
use kmpromail::smtpd::policy::Policy;
use kmpromail::smtpd::server::Server;
use kmpromail::smtpd::session::Listener;
use kmpromail::{error, info};

#[derive(Debug, Parser)]
#[command(name = "kmp-smtpd", version, about = "The Kmpromail ESMTP receiver")]
struct Args {
    #[command(flatten)]
    daemon: DaemonArgs,
}

fn main() {
    let args = kmpromail::exit::parse_args::<Args>();
    std::process::exit(run(&args));
}

fn run(args: &Args) -> i32 {
    let cfg = match daemon::setup("kmp-smtpd", &args.daemon) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let paths = Paths::new(&cfg);
    let tls = match daemon::tls_config(&cfg) {
        Ok(t) => t,
        Err(e) => {
            error!("TLS: {e}");
            return exit::IOERR;
        }
    };
    // One key at a time: `[::]` may give two sockets, a missing family none.
    let mut listeners = Vec::new();
    for (key, kind) in [
        ("smtpd.listen", Listener::Mx),
        ("smtpd.submission_listen", Listener::Submission),
        ("smtpd.smtps_listen", Listener::Smtps),
    ] {
        if kind == Listener::Smtps && tls.is_none() {
            continue;
        }
        match daemon::bind_all(&cfg.listen(key)) {
            Ok(s) => listeners.extend(s.into_iter().map(|l| (l, kind))),
            Err((a, e)) => {
                error!("cannot listen on {a}: {e}");
                return exit::IOERR;
            }
        }
    }
    let ready = listeners
        .iter()
        .filter_map(|(l, _)| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    if let Err(code) = daemon::drop_privileges(&cfg, "privileges.smtpd", None) {
        return code;
    }
    let tls_on = tls.is_some();
    let policy = Policy::from_config(&cfg, tls_on);
    let server = Server::new(policy, paths.clone(), tls);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return exit::OSERR;
        }
    };
    rt.block_on(async move {
        let mut signals = match daemon::Signals::new() {
            Ok(s) => s,
            Err(e) => {
                error!("cannot install signal handlers: {e}");
                return exit::OSERR;
            }
        };
        let serving = tokio::spawn(server.clone().run(listeners));
        let _pid = match PidFile::write(&paths, "kmp-smtpd") {
            Ok(p) => p,
            Err(e) => {
                error!("cannot write the pid file: {e}");
                return exit::CANTCREAT;
            }
        };
        info!("ready: {ready}");
        while signals.next().await == daemon::Signal::Reload {
            reload(&server, &cfg, tls_on);
        }
        info!("stopping");
        server.stop(std::time::Duration::from_secs(5)).await;
        serving.abort();
        exit::OK
    })
}

/// SIGHUP: limits, deny lists and relay networks are read again for new
/// sessions. Listeners, TLS and paths need a restart.
fn reload(server: &Server, cfg: &kmpromail::config::Config, tls: bool) {
    let Some(path) = cfg.path() else { return };
    match kmpromail::config::Config::load(path) {
        Ok(new) => {
            server.reload(Policy::from_config(&new, tls));
            info!("configuration reloaded from {}", path.display());
        }
        Err(e) => error!("configuration not reloaded: {e}"),
    }
}
