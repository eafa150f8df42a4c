//! kmp-send - the queue manager.
//!
//! Takes new mail in from the queue's drop directory (`incoming/new/`, woken
//! by a datagram on `RUN/kick.sock`, with a slow scan as the fallback),
//! records envelope and per-recipient state in the queue index (LMDB under
//! `QUEUE/index/`), hands delivery jobs with the message's open descriptor to
//! kmp-local (`RUN/local.sock`) and kmp-remote (`RUN/remote.sock`), retries
//! temporary failures on a growing schedule until `send.max_queue_lifetime`,
//! and returns RFC 3464 delivery status notifications. Answers `kmpctl queue`
//! and `mailq` on `RUN/send.sock`.
//!
//! Runs as: `privileges.send` (kmpq), started as root or as that user.
//! Reads: the configuration; `incoming/`; `mess/`; the queue index.
//! Writes: `mess/`, the queue index, `corrupt/`; bounces into `incoming/`.
//! Trusts: the envelopes in `incoming/` (written by kmp-smtpd and kmp-inject);
//! kmp-authd for which domains are local. Does not trust: delivery agents'
//! replies beyond their shape (a missing result is a deferral).
//! Exit codes: 0 after SIGTERM, 75 when the queue is locked by another
//! kmp-send or the index cannot be opened, 78 on a bad configuration.
//! Standards: RFC 3461 (DSN parameters), RFC 3463 (enhanced status codes),
//! RFC 3464 (delivery status notifications).
//! See kmp-send(8).

use clap::Parser;

use kmpromail::daemon::{self, DaemonArgs};

/// The queue manager.
#[derive(Debug, Parser)]
#[command(name = "kmp-send", version, about = "Kmpromail queue manager")]
struct Args {
    #[command(flatten)]
    daemon: DaemonArgs,
}

fn main() {
    let args = kmpromail::exit::parse_args::<Args>();
    let cfg = match daemon::setup("kmp-send", &args.daemon) {
        Ok(c) => c,
        Err(code) => std::process::exit(code),
    };
    if let Err(code) = daemon::drop_privileges(&cfg, "privileges.send", None) {
        std::process::exit(code);
    }
    let path = Some(kmpromail::config::Config::locate(
        args.daemon.config.as_deref(),
    ));
    let code = kmpromail::send::run(cfg, path, kmpromail::clock::Clock::System);
    std::process::exit(code);
}
