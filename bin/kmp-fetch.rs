//! kmp-fetch - the fetch agent.
//!
//! What it does: polls the remote POP3 and IMAP mailboxes that users have
//! set up (fetch accounts, read from kmp-authd), and hands every new
//! message to the queue for delivery into a folder of the local user,
//! remembering what it fetched so that nothing is fetched twice; deletes
//! on the server when the account says so. Serves run, test and status
//! requests on `RUN/fetch.sock` (kmpctl fetch, kmp-admind).
//! Runs as: `privileges.fetch` (kmpfetch), in the drop group; started as
//! root it reads its private key and binds its socket first.
//! Reads: the configuration, its private key (`fetch.private_key`).
//! Writes: the queue's drop directory (`incoming/`), its state under
//! `paths.fetch`, its socket and pid file under `paths.run`.
//! Trusts: kmp-authd's answers; the remote servers' certificates as
//! checked against `fetch.ca_file` or the system's authorities.
//! Does not trust: anything a remote server sends (lines and messages are
//! capped; a message is queued as data, never interpreted).
//! Exit codes: 0 on SIGTERM; 71 cannot drop privileges; 73 cannot create
//! the socket or the state directory; 78 configuration error or no key.
//! Standards: RFC 1939, RFC 2449, RFC 2595, RFC 5034 (POP3); RFC 9051 (IMAP).
//! See kmp-fetch(8).

use clap::Parser;
use kmpromail::daemon::{self, DaemonArgs, PidFile};
use kmpromail::exit;
use kmpromail::fetch::{seal::PrivateKey, server, Settings};
use kmpromail::paths::Paths;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "kmp-fetch",
    version,
    about = "Collect mail from other mailboxes"
)]
struct Cli {
    #[command(flatten)]
    daemon: DaemonArgs,
}

fn main() {
    std::process::exit(run(kmpromail::exit::parse_args::<Cli>()));
}

fn run(cli: Cli) -> i32 {
    let cfg = match daemon::setup("kmp-fetch", &cli.daemon) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let settings = Settings::from_config(&cfg);
    // Read as root, before privileges are dropped.
    let key = match PrivateKey::load(&settings.private_key) {
        Ok(k) => k,
        Err(e) => {
            kmpromail::error!("fetch.private_key: {e} (kmpctl setup or init makes it)");
            return exit::CONFIG;
        }
    };
    let listener = match server::bind(&settings.socket) {
        Ok(l) => l,
        Err(e) => {
            kmpromail::error!("cannot create {}: {e}", settings.socket.display());
            return exit::CANTCREAT;
        }
    };
    // Only kmpctl (root) and the daemons' group (kmp-admind) may ask.
    if let Err(e) = daemon::hand_socket_over(
        &settings.socket,
        cfg.str("privileges.fetch"),
        daemon::DAEMON_GROUP,
    ) {
        kmpromail::error!("cannot hand {} over: {e}", settings.socket.display());
        return exit::OSERR;
    }
    // The drop group lets it write into the queue's incoming/, as kmp-inject.
    let drop_group = cfg.str("privileges.drop_group").to_string();
    let extra = (!cfg.str("privileges.fetch").is_empty()).then_some(drop_group.as_str());
    if let Err(code) = daemon::drop_privileges(&cfg, "privileges.fetch", extra) {
        return code;
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    if let Err(e) = std::fs::create_dir_all(&settings.state_dir) {
        kmpromail::error!("cannot create {}: {e}", settings.state_dir.display());
        return exit::CANTCREAT;
    }
    if let Err(e) = kmpromail::sys::signals::install() {
        kmpromail::error!("cannot set signal handlers: {e}");
        return exit::OSERR;
    }
    let paths = Paths::new(&cfg);
    let pid = match PidFile::write(&paths, "kmp-fetch") {
        Ok(p) => p,
        Err(e) => {
            kmpromail::error!("cannot write the pid file: {e}");
            return exit::CANTCREAT;
        }
    };
    kmpromail::info!("started");
    let socket = settings.socket.clone();
    let code = server::run(settings, key, listener);
    let _ = std::fs::remove_file(&socket);
    drop(pid);
    code
}
