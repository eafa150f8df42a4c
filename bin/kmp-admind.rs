//! kmp-admind - the remote administration API.
//!
//! What it does: serves an HTTPS JSON API (version 1, under `/v1/`) on
//! `admind.listen` (port 844) for system administrators (`admind.admins`),
//! domain postmasters (`kmpctl domain admin add`) and users seeing
//! themselves: domains, users, aliases, limits and usage, users' fetch
//! accounts, and sign-up (the one call without a login). Callers log in
//! with their mail login, checked by kmp-authd (service `admin`), and then
//! send the session token it gives.
//! Runs as: `privileges.admind` (kmpadm, in the user database's group) once
//! it has bound its port and read the TLS key as root.
//! Reads: the configuration, the TLS certificate and key, the user database,
//! users' `maildirsize` files where it may (usage), kmp-fetch's public key
//! (never its private key); asks kmp-fetch over `RUN/fetch.sock` to test
//! and run accounts and for their last results.
//! Writes: the user database (the only writer besides kmpctl); its pid file
//! under `paths.run`; one log line per change (who, from where, what).
//! Trusts: kmp-authd's answers; the configuration's list of admins;
//! `admind.trusted_networks` to name a sign-up's browser.
//! Does not trust: anything a client sends (bounded bodies, strict JSON,
//! every request authorised in one place, `lib/admind/authz.rs`).
//! Exit codes: 0 on SIGTERM; 71 cannot drop privileges; 72 no user
//! database; 73 cannot write the pid file; 74 cannot bind; 78 configuration
//! error (no TLS certificate).
//! Standards: RFC 9110, RFC 9112 (HTTP/1.1), RFC 6750 (bearer tokens), RFC 8259.
//! See kmp-admind(8).

use clap::Parser;
use kmpromail::admind::server::Settings;
use kmpromail::daemon::{self, DaemonArgs, PidFile};
use kmpromail::exit;
use kmpromail::paths::Paths;

/// The command line.
#[derive(Debug, Parser)]
#[command(name = "kmp-admind", version, about = "The remote administration API")]
struct Cli {
    #[command(flatten)]
    daemon: DaemonArgs,
}

fn main() {
    std::process::exit(run(kmpromail::exit::parse_args::<Cli>()));
}

fn run(cli: Cli) -> i32 {
    let cfg = match daemon::setup("kmp-admind", &cli.daemon) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let settings = Settings::from_config(&cfg);
    // The key is read as root, before privileges are dropped.
    let tls = match daemon::tls_config(&cfg) {
        Ok(Some(t)) => t,
        Ok(None) => {
            kmpromail::error!("kmp-admind serves HTTPS only: set tls.cert and tls.key");
            return exit::CONFIG;
        }
        Err(e) => {
            kmpromail::error!("TLS: {e}");
            return exit::CONFIG;
        }
    };
    let listeners = match daemon::bind_all(&cfg.listen("admind.listen")) {
        Ok(l) => l,
        Err((a, e)) => {
            kmpromail::error!("cannot bind {a}: {e}");
            return exit::IOERR;
        }
    };
    if let Err(code) = daemon::drop_privileges(&cfg, "privileges.admind", None) {
        return code;
    }
    let paths = Paths::new(&cfg);
    let pid = match PidFile::write(&paths, "kmp-admind") {
        Ok(p) => p,
        Err(e) => {
            kmpromail::error!("cannot write the pid file: {e}");
            return exit::CANTCREAT;
        }
    };
    let code = kmpromail::admind::run(cli.daemon.config, settings, tls, listeners);
    drop(pid);
    code
}
