//! Typed, versioned messages between programs.
//!
//! Every message is one frame: a 4-byte big-endian length, then that many bytes
//! of JSON. A frame over [`MAX_FRAME`] or that is not valid JSON for the
//! expected type is a protocol error: the receiver answers with an error where
//! it can and closes the connection. Each message type carries a version.

pub mod authd;
pub mod control;
pub mod fetch;
pub mod frame;
pub mod job;
pub mod listreq;
