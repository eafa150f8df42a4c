//! proto
pub mod pop3;
