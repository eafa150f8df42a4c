//! kmp-smtpd: the ESMTP receiver (RFC 5321 and the extensions in its EHLO).
//!
//! Three layers, as STYLE.md describes: the syntax in `proto::smtp`, the
//! session state machine in [`session`] (no I/O), and the [`server`] that
//! does the reading, writing, TLS, kmp-authd calls and queue writes.
//! It writes only into the queue's drop directory and never reads the user
//! database: kmp-authd answers every question about users.

pub mod burl;
pub mod policy;
pub mod server;
pub mod session;
