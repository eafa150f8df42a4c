//! kmp-inject - the sendmail interface; also installed as `sendmail` and
//! `mailq` (run as `mailq` it lists the queue).
//!
//! Reads a message on standard input (recipients as arguments, or from the
//! headers with -t), adds Date, Message-ID and From when missing, writes it
//! durably into the queue's drop directory and wakes kmp-send.
//!
//! Runs as: its caller, setgid `privileges.drop_group` (kmpdrop) so that it
//! may write into `incoming/` and nothing else of the queue.
//! Reads: the configuration; standard input.
//! Writes: `incoming/tmp/`, `incoming/new/` (the message and its envelope in one file).
//! Trusts: nothing from its caller beyond what any local user may send
//! (the envelope sender given with -f is recorded with the caller's uid);
//! run set-group-id by anyone but root, not even a configuration file name
//! (-C and KMPROMAIL_CONFIG are ignored). Reads at most the size limit.
//! Exit codes: 0 once the message is safe on disk; 64 bad usage or no
//! recipients; 65 bad address or message too big; 69 mailq while kmp-send is
//! down; 74 -bs input ended inside a message; 75 the message could not be
//! queued (try again); 78 bad configuration.
//! Standards: RFC 5322 (headers added), RFC 5321 (-bs), RFC 3461 (-N, -R, -V).
//! See kmp-inject(8).

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    std::process::exit(kmpromail::inject::main(argv));
}
