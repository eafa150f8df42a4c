//! Kmpromail: the library behind every program of the suite.
//!
//! Each program in `bin/` is a thin main over one module here. What a program
//! imports from this library is its trust statement: `kmp-smtpd` never imports
//! `userdb` or `maildir`, `kmp-remote` never imports `maildir`, and so on.
//! See `doc/ARCHITECTURE.md` for how the pieces fit.

pub mod clock;
pub mod config;
pub mod contacts;
pub mod daemon;
pub mod exit;
pub mod fetch;
pub mod ipc;
pub mod log;
pub mod net;
pub mod paths;
pub mod proto;
pub mod stats;
pub mod sys;

pub mod admin;
pub mod admind;
pub mod announce;
pub mod antispam;
pub mod authd;
pub mod ctl;
pub mod imapc;
pub mod imapd;
pub mod inject;
pub mod lists;
pub mod local;
pub mod mailauth;
pub mod maildir;
pub mod mime;
pub mod pop3d;
pub mod queue;
pub mod remote;
pub mod send;
pub mod sieve;
pub mod sieved;
pub mod sievestore;
pub mod smtpd;
pub mod userdb;
pub mod webmail;
