//! kmp-pop3d - the POP3 server.
//!
//! What it does: serves POP3 (RFC 1939) with CAPA (RFC 2449), STLS (RFC 2595)
//! and SASL PLAIN (RFC 5034) on `pop3d.listen`, and POP3 over implicit TLS on
//! `pop3d.pop3s_listen`; logs users in through kmp-authd and hands them the
//! INBOX of their Maildir, locked for one session at a time.
//! Runs as: `privileges.pop3d` (vmail) once it has bound its ports and read
//! the TLS key as root.
//! Reads: the configuration, the TLS certificate and key, users' Maildirs.
//! Writes: users' Maildirs (deletions at QUIT, the UID index, the POP3 lock
//! file); its pid file under `paths.run`.
//! Trusts: kmp-authd's answers; the Maildir library for the file layout.
//! Does not trust: anything a client sends (every line goes through the
//! bounded parser in `proto::pop3`), message content (sent as it is).
//! Exit codes: 0 on SIGTERM; 71 cannot drop privileges; 73 cannot write the
//! pid file; 74 cannot bind; 78 configuration error (a bad key, an
//! unreadable certificate).
//! Standards: RFC 1939, RFC 2449, RFC 2595, RFC 3206, RFC 4616, RFC 5034.
//! See kmp-pop3d(8).

use clap::Parser;
use kmpromail::daemon::{self, DaemonArgs, PidFile};
use kmpromail::exit;
use kmpromail::paths::Paths;
use kmpromail::pop3d::maildrop::MaildirStore;
use kmpromail::pop3d::server::Settings;

/// The command line.
#[derive(Debug, Parser)]
#[command(name = "kmp-pop3d", version, about = "The POP3 server")]
struct Cli {
    #[command(flatten)]
    daemon: DaemonArgs,
}

fn main() {
    std::process::exit(run(kmpromail::exit::parse_args::<Cli>()));
}

fn run(cli: Cli) -> i32 {
    let cfg = match daemon::setup("kmp-pop3d", &cli.daemon) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let settings = match Settings::from_config(&cfg) {
        Ok(s) => s,
        Err(e) => {
            kmpromail::error!("{e}");
            return exit::CONFIG;
        }
    };
    // The key is read as root, before privileges are dropped.
    let tls = match daemon::tls_config(&cfg) {
        Ok(t) => t,
        Err(e) => {
            kmpromail::error!("TLS: {e}");
            return exit::CONFIG;
        }
    };
    let pop3s = cfg.listen("pop3d.pop3s_listen");
    if tls.is_none() && !pop3s.is_empty() {
        kmpromail::warn!("no TLS certificate: port 995 and STLS are not offered");
    }
    let plain = match daemon::bind_all(&cfg.listen("pop3d.listen")) {
        Ok(l) => l,
        Err((a, e)) => {
            kmpromail::error!("cannot bind {a}: {e}");
            return exit::IOERR;
        }
    };
    let implicit = if tls.is_some() {
        match daemon::bind_all(&pop3s) {
            Ok(l) => l,
            Err((a, e)) => {
                kmpromail::error!("cannot bind {a}: {e}");
                return exit::IOERR;
            }
        }
    } else {
        Vec::new()
    };
    if let Err(code) = daemon::drop_privileges(&cfg, "privileges.pop3d", None) {
        return code;
    }
    // Maildirs created at first login are private to their owner.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let paths = Paths::new(&cfg);
    let pid = match PidFile::write(&paths, "kmp-pop3d") {
        Ok(p) => p,
        Err(e) => {
            kmpromail::error!("cannot write the pid file: {e}");
            return exit::CANTCREAT;
        }
    };
    let code = kmpromail::pop3d::run(
        cli.daemon.config,
        settings,
        Box::new(MaildirStore::new()),
        tls,
        plain,
        implicit,
    );
    drop(pid);
    code
}
