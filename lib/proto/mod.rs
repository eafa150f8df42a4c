//! proto
pub mod pop3;
pub mod smtp;
pub mod utf7;
