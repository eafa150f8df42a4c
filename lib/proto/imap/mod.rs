//! IMAP4rev1 / IMAP4rev2 command syntax (RFC 3501, RFC 9051), server side.
//!
//! A pure codec: bytes in, [`Command`] out; no I/O, no logging. It works in
//! two steps:
//! 1. [`Framer`] finds where a command ends in a growing buffer, following
//!    literals (`{n}`, `{n+}`, RFC 7888) and telling the server when it must
//!    send a continuation request before the client goes on. Every length is
//!    capped here ([`Limits`]), so memory stays bounded whatever the client sends.
//! 2. [`parse_command`] turns one complete, framed command into a typed
//!    [`Command`], or a [`ParseError`] carrying the tag for the `BAD` reply.
//!
//! "Needs more data" is a normal answer ([`Frame::Incomplete`]), never an error.
//! One file per command family: `auth` (any state), `mailbox`, `selected`,
//! `fetch`, `search`; `lexer` has the shared grammar (atoms, strings,
//! sequence sets, flags, dates), `response` the typed responses the server
//! writes and their one encoder, and `encode` its quoting and literals.

mod auth;
pub mod encode;
mod fetch;
mod frame;
mod lexer;
mod mailbox;
mod metadata;
mod notify;
pub mod response;
mod search;
mod selected;
mod types;
pub mod url;
mod urlauth;

pub use frame::{empty_literal, Frame, Framer, Limits};
pub use types::*;

use lexer::Cursor;

/// Longest tag accepted (RFC 3501 sets none; clients use a few characters).
pub const MAX_TAG: usize = 64;
/// Deepest nesting of parenthesised lists and NOT/OR chains in one command.
pub const MAX_DEPTH: usize = 32;
/// Most ranges in one sequence set (`1,3,5,...`).
pub const MAX_SEQ_RANGES: usize = 16_384;
/// Most items in any other list (flags, fetch attributes, header names).
pub const MAX_LIST_ITEMS: usize = 1_024;

/// Why a complete command could not be understood: the reply is
/// `TAG BAD message` (or `* BAD` when no tag could be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The command's tag, when the command got that far.
    pub tag: Option<String>,
    /// Human-readable reason, for the BAD text.
    pub message: String,
}

/// Parses one complete command (as framed by [`Framer`]), CRLF included.
pub fn parse_command(input: &[u8]) -> Result<Command, ParseError> {
    let mut c = Cursor::new(input);
    let tag = match c.tag() {
        Ok(t) => t,
        Err(e) => {
            return Err(ParseError {
                tag: None,
                message: e.0,
            })
        }
    };
    let fail = |m: String| ParseError {
        tag: Some(tag.clone()),
        message: m,
    };
    c.sp().map_err(|e| fail(e.0))?;
    let verb = c.atom().map_err(|_| fail("Missing command".into()))?;
    let verb = verb.to_ascii_uppercase();
    let body = parse_body(&verb, &mut c).map_err(|e| fail(e.0))?;
    c.end().map_err(|e| fail(e.0))?;
    Ok(Command { tag, body })
}

fn parse_body(verb: &str, c: &mut Cursor) -> lexer::Res<CommandBody> {
    if let Some(b) = auth::parse(verb, c)? {
        return Ok(b);
    }
    if let Some(b) = mailbox::parse(verb, c)? {
        return Ok(b);
    }
    if let Some(b) = metadata::parse(verb, c)? {
        return Ok(b);
    }
    if let Some(b) = notify::parse(verb, c)? {
        return Ok(b);
    }
    if let Some(b) = urlauth::parse(verb, c)? {
        return Ok(b);
    }
    if verb == "UID" {
        c.sp()?;
        let sub = c.atom()?.to_ascii_uppercase();
        return match sub.as_str() {
            "FETCH" => fetch::parse(c, true),
            "SEARCH" => search::parse(c, true),
            "SORT" => search::parse_sort(c, true),
            "THREAD" => search::parse_thread(c, true),
            _ => match selected::parse(&sub, c, true)? {
                Some(b) => Ok(b),
                None => Err(lexer::Fail(format!("Unknown UID command {sub}"))),
            },
        };
    }
    match verb {
        "FETCH" => fetch::parse(c, false),
        "SEARCH" => search::parse(c, false),
        "SORT" => search::parse_sort(c, false),
        "THREAD" => search::parse_thread(c, false),
        _ => match selected::parse(verb, c, false)? {
            Some(b) => Ok(b),
            None => {
                // Skip the rest: the error text is what matters.
                c.rest();
                Ok(CommandBody::Unknown(verb.to_string()))
            }
        },
    }
}

#[cfg(test)]
mod tests;
