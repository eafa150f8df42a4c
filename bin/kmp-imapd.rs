//! kmp-imapd - the IMAP server: IMAP4rev1 and IMAP4rev2 over Maildir++.
//!
//! Runs as: root to bind ports 143 and 993 and read the TLS key, then the
//! `privileges.imapd` user (vmail), the owner of every mailbox; in a
//! `kmpctl init` instance, as whoever starts it.
//! Reads: the configuration; the TLS certificate and key (`tls.cert`,
//! `tls.key`); the users' Maildirs (`paths.mail`), through `lib/maildir`.
//! Writes: the users' Maildirs (flags, expunges, APPEND, COPY, MOVE, folder
//! changes), only through `lib/maildir`; its pid file `RUN/kmp-imapd.pid`.
//! Talks to: kmp-authd over `RUN/authd.sock` (logins, bans, the owner of a
//! URLAUTH URL). It never opens the user database.
//! Trusts: kmp-authd's answers and the configuration. Does not trust: its
//! clients — every command is parsed with capped lengths, literals and
//! nesting; bad commands get BAD and the session goes on.
//! Listens: `imapd.listen` (plaintext with STARTTLS; LOGINDISABLED before TLS
//! except on loopback) and `imapd.imaps_listen` (implicit TLS); and
//! `RUN/urlfetch.sock` (mode 0660, kmp-smtpd's group), where kmp-smtpd
//! resolves BURL's `submit+` URLAUTH URLs.
//! Signals: SIGTERM and SIGINT end it (the pid file and the URLFETCH socket
//! are removed).
//! Exit codes: 0 after SIGTERM, 71 OS error, 73 cannot write the pid file,
//! 75 a port cannot be bound, 78 configuration error.
//! Standards: RFC 3501, RFC 9051, RFC 2177, 2342, 2971, 3348, 3516, 3691,
//! 4315, 4731, 4959, 5161, 5258, 5819, 6154, 6851, 7162 (CONDSTORE), 7888,
//! 9208, 3502 (MULTIAPPEND), 4469 (CATENATE), 4467 (URLAUTH), 5524, 5092. See kmp-imapd(8).

use clap::Parser;
use kmpromail::daemon::{self, DaemonArgs, PidFile};
use kmpromail::imapd::server::{self, Shared};
use kmpromail::imapd::Settings;
use kmpromail::paths::Paths;
use kmpromail::{error, exit, info};

#[derive(Debug, Parser)]
#[command(name = "kmp-imapd", version, about = "Kmpromail IMAP server")]
struct Args {
    #[command(flatten)]
    daemon: DaemonArgs,
}

fn main() {
    std::process::exit(run(kmpromail::exit::parse_args::<Args>()));
}

fn run(args: Args) -> i32 {
    let cfg = match daemon::setup("kmp-imapd", &args.daemon) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let paths = Paths::new(&cfg);
    let tls = match daemon::tls_config(&cfg) {
        Ok(t) => t,
        Err(e) => {
            error!("TLS: {e}");
            return exit::CONFIG;
        }
    };
    let plain_addrs = cfg.listen("imapd.listen");
    let tls_addrs = if tls.is_some() {
        cfg.listen("imapd.imaps_listen")
    } else {
        Vec::new()
    };
    let bind = |addrs: &[std::net::SocketAddr]| {
        daemon::bind_all(addrs).map_err(|(a, e)| {
            error!("cannot listen on {a}: {e}");
            exit::TEMPFAIL
        })
    };
    let plain = match bind(&plain_addrs) {
        Ok(l) => l,
        Err(c) => return c,
    };
    let implicit = match bind(&tls_addrs) {
        Ok(l) => l,
        Err(c) => return c,
    };
    // Bound before privileges are dropped, then given to kmp-imapd's user
    // and kmp-smtpd's group: only kmp-smtpd may ask for submit+ URLs.
    let urlfetch_path = paths.urlfetch_socket();
    let urlfetch = match kmpromail::imapd::submit::bind(&urlfetch_path) {
        Ok(l) => l,
        Err(e) => {
            error!("cannot listen on {}: {e}", urlfetch_path.display());
            return exit::TEMPFAIL;
        }
    };
    if let Err(e) = daemon::hand_socket_over(
        &urlfetch_path,
        cfg.str("privileges.imapd"),
        cfg.str("privileges.smtpd"),
    ) {
        error!("cannot give {} to kmp-smtpd: {e}", urlfetch_path.display());
        return exit::OSERR;
    }
    if let Err(code) = daemon::drop_privileges(&cfg, "privileges.imapd", None) {
        return code;
    }
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
    let tls_available = tls.is_some();
    let config_path = args.daemon.config.clone();
    let settings = Settings::from_config(&cfg, tls_available);
    let code = rt.block_on(async move {
        let shared = Shared::new(settings, tls, paths.authd_socket());
        let shared_for_reload = shared.clone();
        match tokio::net::UnixListener::from_std(urlfetch) {
            Ok(l) => {
                let accounts = std::sync::Arc::new(kmpromail::imapd::accounts::AuthdAccounts {
                    socket: paths.authd_socket(),
                });
                tokio::spawn(kmpromail::imapd::submit::serve(l, accounts));
            }
            Err(e) => {
                error!("URLFETCH socket: {e}");
                return exit::OSERR;
            }
        }
        for (list, implicit_tls) in [(plain, false), (implicit, true)] {
            for l in list {
                match tokio::net::TcpListener::from_std(l) {
                    Ok(l) => {
                        tokio::spawn(server::serve(shared.clone(), l, implicit_tls));
                    }
                    Err(e) => {
                        error!("listener: {e}");
                        return exit::OSERR;
                    }
                }
            }
        }
        let mut signals = match daemon::Signals::new() {
            Ok(s) => s,
            Err(e) => {
                error!("cannot install signal handlers: {e}");
                return exit::OSERR;
            }
        };
        let pid = match PidFile::write(&paths, "kmp-imapd") {
            Ok(p) => p,
            Err(e) => {
                error!("cannot write the pid file: {e}");
                return exit::CANTCREAT;
            }
        };
        let list = |v: &[std::net::SocketAddr]| {
            v.iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        info!(
            "ready: {} implicit TLS: {}",
            list(&plain_addrs),
            list(&tls_addrs)
        );
        while signals.next().await == daemon::Signal::Reload {
            reload(&shared_for_reload, config_path.as_deref(), tls_available);
        }
        info!("stopping");
        let _ = std::fs::remove_file(&urlfetch_path);
        drop(pid);
        exit::OK
    });
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    code
}

/// SIGHUP: re-reads the configuration; new sessions get the new limits and
/// timeouts, established ones keep theirs. Listeners and the certificate
/// change only with a restart. A broken file is logged and the old settings stay.
fn reload(shared: &Shared, config: Option<&std::path::Path>, tls_available: bool) {
    match kmpromail::config::Config::load_located(config) {
        Ok(cfg) => {
            shared.reload(Settings::from_config(&cfg, tls_available));
            info!("configuration reloaded");
        }
        Err(e) => error!("reload refused, keeping the old configuration: {e}"),
    }
}
