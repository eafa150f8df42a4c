//! kmp-local - deliver mail into Maildir.
//!
//! What it does: serves delivery jobs from kmp-send on the Unix socket
//! `RUN/local.sock` (one message as an open descriptor, some local
//! recipients); resolves each recipient through kmp-authd (users, aliases,
//! forwards, catch-all, plus-addressing), detects mail loops, applies
//! Maildir++ quotas with one warning mail, and writes the message once per
//! file system, hard-linked into each Maildir, with Return-Path: and
//! Delivered-To: prepended. Answers one result per recipient.
//! Runs as: `privileges.local` (vmail), the owner of every mailbox; started as
//! root it binds its socket, hands it to that user, then drops to it.
//! Reads: the configuration; message files by descriptor only (never the queue).
//! Writes: Maildirs under `paths.mail` (or the user's mail path); its socket
//! and pid file under `paths.run`.
//! Also serves kmp-admind's requests about lists' state (members, held
//! posts) on `RUN/lists.sock`, mode 0660 in the group of `privileges.admind`.
//! Trusts: kmp-send's jobs (the socket is mode 0660) and kmp-authd's answers;
//! kmp-admind's list requests (it has authorised them; their form is checked).
//! Does not trust: message content (headers are scanned, never interpreted).
//! Exit codes: 0 on SIGTERM; 71 cannot drop privileges; 73 cannot create the
//! socket; 78 configuration error.
//! Standards: RFC 5321 (Return-Path, hop count), RFC 3463 (status codes),
//! Maildir and Maildir++ (quota). See kmp-local(8).

use clap::Parser;
use kmpromail::daemon::{self, DaemonArgs, PidFile};
use kmpromail::exit;
use kmpromail::paths::Paths;

/// The command line.
#[derive(Debug, Parser)]
#[command(name = "kmp-local", version, about = "Deliver mail into Maildir")]
struct Cli {
    #[command(flatten)]
    daemon: DaemonArgs,
}

fn main() {
    std::process::exit(run(kmpromail::exit::parse_args::<Cli>()));
}

fn run(cli: Cli) -> i32 {
    let cfg = match daemon::setup("kmp-local", &cli.daemon) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let paths = Paths::new(&cfg);
    let socket = paths.local_socket();
    let listener = match kmpromail::local::server::bind(&socket) {
        Ok(l) => l,
        Err(e) => {
            kmpromail::error!("cannot create {}: {e}", socket.display());
            return exit::CANTCREAT;
        }
    };
    // As root: the socket belongs to the delivery user, in the group of
    // kmp-send's user, so that only kmp-send can connect (mode 0660).
    if let Err(e) = daemon::hand_socket_over(
        &socket,
        cfg.str("privileges.local"),
        cfg.str("privileges.send"),
    ) {
        kmpromail::error!("cannot hand {} over: {e}", socket.display());
        return exit::OSERR;
    }
    // The lists socket: kmp-admind's requests about lists' state, in the
    // group of kmp-admind's user.
    let lists_socket = paths.lists_socket();
    let lists = match kmpromail::local::listreq::bind(&lists_socket, cfg.str("privileges.admind")) {
        Ok(l) => l,
        Err(e) => {
            kmpromail::error!("cannot create {}: {e}", lists_socket.display());
            return exit::CANTCREAT;
        }
    };
    if let Err(e) = daemon::hand_socket_over(
        &lists_socket,
        cfg.str("privileges.local"),
        cfg.str("privileges.admind"),
    ) {
        kmpromail::error!("cannot hand {} over: {e}", lists_socket.display());
        return exit::OSERR;
    }
    if let Err(code) = daemon::drop_privileges(&cfg, "privileges.local", None) {
        return code;
    }
    // Mailboxes are private to their owner whatever the caller's umask was.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let _pid = match PidFile::write(&paths, "kmp-local") {
        Ok(p) => p,
        Err(e) => {
            kmpromail::error!("cannot write the pid file: {e}");
            return exit::CANTCREAT;
        }
    };
    if let Err(e) = kmpromail::local::listreq::spawn(
        lists,
        kmpromail::local::listreq::ListReq::from_config(&cfg),
    ) {
        kmpromail::error!("cannot start the lists thread: {e}");
        return exit::OSERR;
    }
    kmpromail::local::run(cfg, cli.daemon.config, listener)
}
