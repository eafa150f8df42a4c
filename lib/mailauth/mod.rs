//! Sender authentication and our own signatures (issue 19, first part).
//!
//! - [`verify`]: SPF, DKIM, ARC and DMARC of mail arriving at kmp-smtpd's
//!   MX port, decided before the 250, and the one Authentication-Results
//!   header (RFC 8601) we add.
//! - [`header`]: removing headers only we may write, line-end forms (pure).
//! - [`keys`]: DKIM key files (`kmpctl dkim`), read by kmp-remote.
//! - [`sign`]: DKIM signing in kmp-remote, of the bytes it sends.
//! - [`arc`]: ARC sealing in kmp-remote of mail we forward.
//! - [`cache`]: the bounded cache of DNS answers.
//!
//! The protocol work is mail-auth's (with its hickory resolver); what the
//! results mean for a message is decided here, as the `[auth]` keys say.

pub mod arc;
pub mod cache;
pub mod header;
pub mod keys;
pub mod publish;
pub mod sign;
pub mod srs;
pub mod verify;
