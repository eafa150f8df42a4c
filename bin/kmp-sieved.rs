//! kmp-sieved - the ManageSieve server.
//!
//! What it does: serves ManageSieve (RFC 5804) on `sieved.listen` (port
//! 4190): users log in through kmp-authd (SASL PLAIN or LOGIN, after
//! STARTTLS unless on loopback or `sieved.allow_plaintext`), then upload,
//! check, list, fetch, rename, delete and activate their Sieve scripts.
//! Runs as: `privileges.sieved` (vmail) once it has bound its port and read
//! the TLS key as root.
//! Reads: the configuration, the TLS certificate and key, users' scripts.
//! Writes: the `sieve/` directory and the `.dovecot.sieve` link in users'
//! Maildirs (Dovecot Pigeonhole's layout); its pid file under `paths.run`.
//! Trusts: kmp-authd's answers; the Sieve compiler for what a valid script is.
//! Does not trust: anything a client sends (every line goes through the
//! bounded parser in `sieved::proto`; names through `sievestore::check_name`).
//! Exit codes: 0 on SIGTERM; 71 cannot drop privileges; 73 cannot write the
//! pid file; 74 cannot bind; 78 configuration error.
//! Standards: RFC 5804, RFC 4616, RFC 5228.
//! See kmp-sieved(8).

use clap::Parser;
use kmpromail::daemon::{self, DaemonArgs, PidFile};
use kmpromail::exit;
use kmpromail::paths::Paths;
use kmpromail::sieved::server::Settings;

/// The command line.
#[derive(Debug, Parser)]
#[command(name = "kmp-sieved", version, about = "The ManageSieve server")]
struct Cli {
    #[command(flatten)]
    daemon: DaemonArgs,
}

fn main() {
    std::process::exit(run(kmpromail::exit::parse_args::<Cli>()));
}

fn run(cli: Cli) -> i32 {
    let cfg = match daemon::setup("kmp-sieved", &cli.daemon) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let settings = Settings::from_config(&cfg);
    // The key is read as root, before privileges are dropped.
    let tls = match daemon::tls_config(&cfg) {
        Ok(t) => t,
        Err(e) => {
            kmpromail::error!("TLS: {e}");
            return exit::CONFIG;
        }
    };
    if tls.is_none() {
        kmpromail::warn!("no TLS certificate: STARTTLS is not offered");
    }
    let listeners = match daemon::bind_all(&cfg.listen("sieved.listen")) {
        Ok(l) => l,
        Err((a, e)) => {
            kmpromail::error!("cannot bind {a}: {e}");
            return exit::IOERR;
        }
    };
    if let Err(code) = daemon::drop_privileges(&cfg, "privileges.sieved", None) {
        return code;
    }
    // Scripts and Maildirs made here are private to their owner.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let paths = Paths::new(&cfg);
    let pid = match PidFile::write(&paths, "kmp-sieved") {
        Ok(p) => p,
        Err(e) => {
            kmpromail::error!("cannot write the pid file: {e}");
            return exit::CANTCREAT;
        }
    };
    let code = kmpromail::sieved::run(cli.daemon.config, settings, tls, listeners);
    drop(pid);
    code
}
