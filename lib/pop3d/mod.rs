//! kmp-pop3d: POP3 (RFC 1939) with CAPA (RFC 2449), STLS (RFC 2595) and
//! SASL PLAIN (RFC 5034) over the users' Maildirs.
//!
//! Three layers: the syntax is in `proto::pop3`; [`session`] is the state
//! machine, with no I/O; [`server`] is the only code that touches sockets,
//! files and time. [`store`] is the maildrop seen by POP3: INBOX of the
//! user's Maildir, locked for one session at a time.

pub mod session;
