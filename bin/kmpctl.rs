//! kmpctl - administer Kmpromail.
//!
//! Runs as: root or the administrator of a self-contained instance.
//! Reads: the configuration; the user database; the queue (through kmp-send).
//! Writes: the user database; the configuration under `init` and `setup`.
//! Trusts: its caller (it is the administrator's tool).
//! Exit codes: sysexits.h (64 usage, 67 unknown user, 69 daemon not running,
//! 75 try again, 77 permission denied, 78 configuration error).
//! See kmpctl(8).

fn main() {
    let cli = kmpromail::exit::parse_args::<kmpromail::ctl::Cli>();
    std::process::exit(kmpromail::ctl::run(cli));
}
