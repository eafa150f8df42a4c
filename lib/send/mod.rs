//! send
