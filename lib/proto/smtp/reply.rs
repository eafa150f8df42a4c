//! Every reply kmp-smtpd sends, in one place, with its RFC 3463 enhanced
//! status code, so the whole set can be reviewed at a glance.
//!
//! Fixed replies are constants; replies that carry data (the greeting, EHLO,
//! "queued as") are built by the functions at the end.

use std::borrow::Cow;

/// One SMTP reply: a code, an RFC 3463 status (absent only where RFC 2034
/// says so: the greeting, EHLO and HELO) and text, possibly several lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub status: Option<&'static str>,
    /// Lines separated by `\n`; never a CR.
    pub text: Cow<'static, str>,
}

impl Reply {
    /// A reply with fixed text.
    pub const fn new(code: u16, status: &'static str, text: &'static str) -> Reply {
        Reply {
            code,
            status: Some(status),
            text: Cow::Borrowed(text),
        }
    }

    /// A reply with text made at run time.
    pub fn owned(code: u16, status: &'static str, text: String) -> Reply {
        Reply {
            code,
            status: Some(status),
            text: Cow::Owned(text),
        }
    }

    /// 4xx: try again later.
    pub fn is_temporary(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 4xx or 5xx.
    pub fn is_error(&self) -> bool {
        self.code >= 400
    }

    /// Appends the wire form (`250-...\r\n250 ...\r\n`) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let lines: Vec<&str> = self.text.split('\n').collect();
        for (i, line) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            out.extend_from_slice(format!("{}{}", self.code, sep).as_bytes());
            if let Some(s) = self.status {
                out.extend_from_slice(s.as_bytes());
                out.push(b' ');
            }
            // Invariant of the type: no CR in text; strip one anyway so a
            // reply can never split itself on the wire.
            out.extend(line.bytes().filter(|&b| b != b'\r'));
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The wire form as a string (for logs and tests).
    pub fn to_wire(&self) -> String {
        let mut v = Vec::new();
        self.write_to(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    }

    /// The first line without the code, for logs.
    pub fn summary(&self) -> String {
        let first = self.text.split('\n').next().unwrap_or("");
        match self.status {
            Some(s) => format!("{} {} {}", self.code, s, first),
            None => format!("{} {}", self.code, first),
        }
    }
}

// 2xx: success (RFC 3463 class 2).
pub const OK: Reply = Reply::new(250, "2.0.0", "Ok");
pub const SENDER_OK: Reply = Reply::new(250, "2.1.0", "Sender ok");
pub const RECIPIENT_OK: Reply = Reply::new(250, "2.1.5", "Recipient ok");
pub const RESET_OK: Reply = Reply::new(250, "2.0.0", "Reset ok");
pub const NOOP_OK: Reply = Reply::new(250, "2.0.0", "Ok");
pub const BYE: Reply = Reply::new(221, "2.0.0", "Bye");
pub const READY_FOR_TLS: Reply = Reply::new(220, "2.0.0", "Ready to start TLS");
pub const AUTH_OK: Reply = Reply::new(235, "2.7.0", "Authentication successful");
/// RFC 5321 3.5.3: VRFY answers 252 when it will not say whether a user exists.
pub const VRFY_CANNOT: Reply = Reply::new(
    252,
    "2.5.0",
    "Cannot VRFY user, but will accept message and attempt delivery",
);
pub const HELP: Reply = Reply::new(
    214,
    "2.0.0",
    "Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY STARTTLS AUTH\nSee RFC 5321",
);
pub const START_DATA: Reply = Reply {
    code: 354,
    status: None,
    text: Cow::Borrowed("End data with <CR><LF>.<CR><LF>"),
};

// 4xx: temporary.
pub const SHUTTING_DOWN: Reply = Reply::new(421, "4.3.2", "Service shutting down, try again later");
pub const OVERLOADED: Reply = Reply::new(421, "4.3.2", "System overloaded, try again later");
pub const TOO_MANY_CONNECTIONS: Reply =
    Reply::new(421, "4.3.2", "Too many connections, try again later");
pub const TOO_MANY_FROM_YOU: Reply = Reply::new(
    421,
    "4.7.0",
    "Too many connections from your address, try again later",
);
pub const RATE_EXCEEDED: Reply = Reply::new(
    421,
    "4.7.0",
    "Connection rate limit exceeded, try again later",
);
pub const BANNED: Reply = Reply::new(
    421,
    "4.7.0",
    "Too many errors from your address, try again later",
);
pub const TOO_MANY_ERRORS: Reply = Reply::new(421, "4.7.0", "Too many errors, closing connection");
pub const TOO_MANY_MESSAGES: Reply = Reply::new(
    421,
    "4.7.0",
    "Too many messages in one session, please reconnect",
);
pub const TIMEOUT: Reply = Reply::new(421, "4.4.2", "Timeout exceeded, closing connection");
pub const LOCAL_ERROR: Reply = Reply::new(451, "4.3.0", "Temporary local problem, try again later");
pub const LOOKUP_FAILED: Reply = Reply::new(
    451,
    "4.3.0",
    "Recipient lookup failed temporarily, try again later",
);
/// RFC 5321 4.5.3.1.10: too many recipients is 452, and the client sends the rest later.
pub const TOO_MANY_RECIPIENTS: Reply = Reply::new(452, "4.5.3", "Too many recipients");
pub const AUTH_TEMPFAIL: Reply = Reply::new(454, "4.7.0", "Temporary authentication failure");

// 5xx: permanent.
pub const LINE_TOO_LONG: Reply = Reply::new(500, "5.5.2", "Line too long");
pub const SYNTAX_ERROR: Reply = Reply::new(500, "5.5.2", "Syntax error, command unrecognized");
pub const UNKNOWN_COMMAND: Reply = Reply::new(500, "5.5.1", "Command unrecognized");
pub const BAD_ARGUMENTS: Reply =
    Reply::new(501, "5.5.4", "Syntax error in parameters or arguments");
pub const HELO_SYNTAX: Reply = Reply::new(501, "5.5.4", "Syntax: HELO/EHLO hostname");
pub const HELO_LITERAL: Reply = Reply::new(
    501,
    "5.5.4",
    "Bad address literal: use [192.0.2.1] or [IPv6:2001:db8::1]",
);
pub const MAIL_SYNTAX: Reply = Reply::new(501, "5.5.4", "Syntax: MAIL FROM:<address>");
pub const RCPT_SYNTAX: Reply = Reply::new(501, "5.5.4", "Syntax: RCPT TO:<address>");
pub const BAD_SENDER_ADDRESS: Reply = Reply::new(501, "5.1.7", "Bad sender address syntax");
pub const BAD_RECIPIENT_ADDRESS: Reply = Reply::new(501, "5.1.3", "Bad recipient address syntax");
pub const BAD_BASE64: Reply = Reply::new(501, "5.5.2", "Cannot decode response");
pub const AUTH_CANCELLED: Reply = Reply::new(501, "5.0.0", "Authentication cancelled");
pub const NOT_IMPLEMENTED: Reply = Reply::new(502, "5.5.1", "Command not implemented");
pub const BAD_SEQUENCE: Reply = Reply::new(503, "5.5.1", "Bad sequence of commands");
pub const NEED_HELO: Reply = Reply::new(503, "5.5.1", "Send HELO/EHLO first");
pub const NEED_MAIL: Reply = Reply::new(503, "5.5.1", "Need MAIL command first");
pub const NESTED_MAIL: Reply = Reply::new(503, "5.5.1", "Sender already specified");
pub const ALREADY_AUTHENTICATED: Reply = Reply::new(503, "5.5.1", "Already authenticated");
pub const AUTH_IN_TRANSACTION: Reply =
    Reply::new(503, "5.5.1", "AUTH not allowed during a mail transaction");
pub const ALREADY_TLS: Reply = Reply::new(503, "5.5.1", "TLS already active");
pub const REFUSED_SESSION: Reply =
    Reply::new(503, "5.5.1", "Session refused, only QUIT is accepted");
pub const MIXED_DATA_BDAT: Reply = Reply::new(
    503,
    "5.5.1",
    "DATA and BDAT cannot be mixed in one transaction",
);
pub const UNKNOWN_MECHANISM: Reply =
    Reply::new(504, "5.5.4", "Unrecognized authentication mechanism");
pub const AUTH_REQUIRED: Reply = Reply::new(530, "5.7.0", "Authentication required");
pub const MUST_STARTTLS: Reply = Reply::new(530, "5.7.0", "Must issue a STARTTLS command first");
pub const AUTH_FAILED: Reply = Reply::new(535, "5.7.8", "Authentication credentials invalid");
/// RFC 4954 4: a mechanism that sends passwords in clear needs TLS first.
pub const ENCRYPTION_REQUIRED: Reply = Reply::new(
    538,
    "5.7.11",
    "Encryption required for requested authentication mechanism",
);
pub const USER_UNKNOWN: Reply =
    Reply::new(550, "5.1.1", "Recipient address rejected: User unknown");
pub const MAILBOX_DISABLED: Reply =
    Reply::new(550, "5.2.1", "Recipient address rejected: Mailbox disabled");
pub const SENDER_DENIED: Reply = Reply::new(550, "5.7.1", "Sender address rejected: Access denied");
pub const RECIPIENT_DENIED: Reply =
    Reply::new(550, "5.7.1", "Recipient address rejected: Access denied");
pub const MESSAGE_TOO_BIG: Reply = Reply::new(
    552,
    "5.3.4",
    "Message size exceeds fixed maximum message size",
);
pub const NOT_OWNER: Reply = Reply::new(
    553,
    "5.7.1",
    "Sender address rejected: not owned by the authenticated user",
);
/// RFC 6531 3.5: a non-ASCII address without SMTPUTF8.
pub const NEED_SMTPUTF8: Reply = Reply::new(
    553,
    "5.6.7",
    "Non-ASCII address needs the SMTPUTF8 parameter",
);
/// RFC 4468 6: BURL's failures.
pub const BURL_FETCH_FAILED: Reply = Reply::new(554, "5.6.6", "IMAP URL resolution failed");
pub const BURL_NOT_AUTHORISED: Reply = Reply::new(554, "5.7.0", "IMAP URL authorization failed");
pub const BURL_TRUST_REQUIRED: Reply =
    Reply::new(554, "5.7.8", "URL resolution requires trust relationship");
pub const BURL_IMAP_UNAVAILABLE: Reply = Reply::new(451, "4.4.1", "IMAP server unavailable");
pub const RELAY_DENIED: Reply = Reply::new(554, "5.7.1", "Relay access denied");
pub const NO_VALID_RECIPIENTS: Reply = Reply::new(554, "5.5.1", "No valid recipients");
/// RFC 2920 3.1: DATA ends a pipelined group; content sent before 354 is an error.
pub const IMPROPER_PIPELINING: Reply =
    Reply::new(554, "5.5.0", "Improper use of SMTP command pipelining");
pub const TOO_MANY_HOPS: Reply = Reply::new(554, "5.4.6", "Too many hops: mail forwarding loop");
pub const BARE_LINE_END: Reply = Reply::new(
    550,
    "5.6.0",
    "Message contains a bare CR or LF (RFC 5321 2.3.8)",
);
pub const NUL_IN_MESSAGE: Reply = Reply::new(550, "5.6.0", "Message contains a NUL character");
pub const LONG_LINE_IN_MESSAGE: Reply = Reply::new(
    550,
    "5.6.0",
    "Message has a line over 1000 octets (RFC 5321 4.5.3.1.6)",
);
pub const UNKNOWN_PARAMETER: Reply = Reply::new(555, "5.5.4", "Unsupported MAIL/RCPT parameter");

/// The 220 greeting.
pub fn greeting(hostname: &str) -> Reply {
    Reply {
        code: 220,
        status: None,
        text: Cow::Owned(format!("{hostname} ESMTP Kmpromail")),
    }
}

/// The greeting that refuses a session (RFC 5321 3.1: 554, then only QUIT).
pub fn refused_greeting(hostname: &str) -> Reply {
    Reply::owned(554, "5.7.1", format!("{hostname} Access denied"))
}

/// HELO's reply.
pub fn helo(hostname: &str) -> Reply {
    Reply {
        code: 250,
        status: None,
        text: Cow::Owned(hostname.to_string()),
    }
}

/// EHLO's reply: the host name, then one extension a line.
pub fn ehlo(hostname: &str, extensions: &[String]) -> Reply {
    let mut text = hostname.to_string();
    for e in extensions {
        text.push('\n');
        text.push_str(e);
    }
    Reply {
        code: 250,
        status: None,
        text: Cow::Owned(text),
    }
}

/// The reply to the end of a message, sent only once it is durably queued.
pub fn queued(qid: &str) -> Reply {
    Reply::owned(250, "2.0.0", format!("Ok: queued as {qid}"))
}

/// BDAT's reply to a chunk that is not the last.
pub fn chunk_ok(octets: u64) -> Reply {
    Reply::owned(250, "2.0.0", format!("{octets} octets received"))
}

/// An AUTH challenge (RFC 4954: 334 and base64 text, no status code).
pub fn challenge(base64: &'static str) -> Reply {
    Reply {
        code: 334,
        status: None,
        text: Cow::Borrowed(base64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_render_single_and_multi_line() {
        assert_eq!(OK.to_wire(), "250 2.0.0 Ok\r\n");
        let e = ehlo("mx.example.test", &["PIPELINING".into(), "8BITMIME".into()]);
        assert_eq!(
            e.to_wire(),
            "250-mx.example.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
        );
        assert_eq!(
            START_DATA.to_wire(),
            "354 End data with <CR><LF>.<CR><LF>\r\n"
        );
        assert!(LOCAL_ERROR.is_temporary() && !RELAY_DENIED.is_temporary());
        let sneaky = Reply::owned(250, "2.0.0", "a\rb".into());
        assert_eq!(sneaky.to_wire(), "250 2.0.0 ab\r\n");
    }
}
