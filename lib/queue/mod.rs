//! The mail queue. (The state table and the durable writer arrive with kmp-send.)

pub mod envelope;

pub use envelope::{Envelope, Notify, Recipient, Ret};
