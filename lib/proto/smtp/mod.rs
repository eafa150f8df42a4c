//! SMTP syntax (RFC 5321 with the extensions kmp-smtpd offers): commands,
//! envelope addresses, ESMTP parameters, the message body on the wire, and
//! the server's replies. Pure code: bytes in, values out; no I/O, no logs.
//!
//! It does not know about sessions (sequencing and policy live in
//! `smtpd::session`) nor about the client side (kmp-remote has its own reply
//! parser). Every length is capped by a named constant.

pub mod address;
pub mod body;
pub mod command;
pub mod params;
pub mod reply;

pub use address::{AddressError, Mailbox};
pub use body::{BodyDecoder, Mode, Problem, Summary};
pub use command::{Command, CommandReader, ForwardPath, Mechanism};
pub use params::{Body, MailParams, RcptParams};
pub use reply::Reply;

/// Why a command line gave no command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not a whole line yet: read more and ask again. Not an error.
    NeedsMoreData,
    /// Over the line's cap (RFC 5321 4.5.3.1.4).
    LineTooLong,
    /// Not UTF-8, a control character or NUL, or an empty line.
    InvalidCharacters,
    /// Arguments where none belong, or missing or malformed ones.
    Arguments,
    HeloSyntax,
    /// A HELO/EHLO argument in brackets that is no RFC 5321 4.1.3 address
    /// literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`).
    HeloLiteral,
    MailSyntax,
    RcptSyntax,
    BadSender(AddressError),
    BadRecipient(AddressError),
    /// A MAIL or RCPT parameter we do not offer (RFC 5321 4.1.1.11: 555).
    UnknownParameter,
    BadParameter,
    DuplicateParameter,
}

impl ParseError {
    /// The reply to send for this error.
    pub fn reply(self) -> Reply {
        match self {
            // Invariant: callers read more data instead of replying.
            ParseError::NeedsMoreData => reply::LOCAL_ERROR,
            ParseError::LineTooLong => reply::LINE_TOO_LONG,
            ParseError::InvalidCharacters => reply::SYNTAX_ERROR,
            ParseError::Arguments => reply::BAD_ARGUMENTS,
            ParseError::HeloSyntax => reply::HELO_SYNTAX,
            ParseError::HeloLiteral => reply::HELO_LITERAL,
            ParseError::MailSyntax => reply::MAIL_SYNTAX,
            ParseError::RcptSyntax => reply::RCPT_SYNTAX,
            ParseError::BadSender(_) => reply::BAD_SENDER_ADDRESS,
            ParseError::BadRecipient(_) => reply::BAD_RECIPIENT_ADDRESS,
            ParseError::UnknownParameter => reply::UNKNOWN_PARAMETER,
            ParseError::BadParameter | ParseError::DuplicateParameter => reply::BAD_ARGUMENTS,
        }
    }
}

#[cfg(test)]
mod tests;
