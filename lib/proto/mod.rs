//! proto
pub mod pop3;
pub mod utf7;
