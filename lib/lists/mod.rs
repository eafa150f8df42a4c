//! Mailing lists.
//!
//! The mail side of a list's life, run inside kmp-local as vmail:
//! confirmation cookies in reply addresses ([`cookie`]), member addresses in
//! our own local parts ([`verp`]), commands by mail ([`commands`]), bounces
//! and ezmlm-warn's warn-then-remove ([`bounce`]), digests ([`digest`]), and
//! the admin-editable message texts ([`texts`]).

pub mod bounce;
pub mod commands;
pub mod cookie;
pub mod digest;
pub mod texts;
pub mod verp;
