//! Pure protocol codecs: no I/O, no logging.

pub mod dotstuff;
pub mod imap;
pub mod pop3;
pub mod sasl;
pub mod smtp;
pub mod utf7;
