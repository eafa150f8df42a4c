//! Every reply kmp-pop3d sends, in one place. Response codes in brackets are
//! RFC 2449 section 8 (`[IN-USE]`, `[LOGIN-DELAY]`) and RFC 3206 (`[SYS/TEMP]`,
//! `[SYS/PERM]`, `[AUTH]`). Each constant is a whole line with its CRLF.

pub const GREETING: &str = "+OK Kmpromail POP3 server ready\r\n";
pub const OK: &str = "+OK\r\n";
pub const USER_OK: &str = "+OK Send the password\r\n";
pub const LOGGED_IN: &str = "+OK Logged in\r\n";
pub const BYE: &str = "+OK Bye\r\n";
pub const DELETED: &str = "+OK Message deleted\r\n";
pub const TOP_FOLLOWS: &str = "+OK Top of message follows\r\n";
pub const CAPA_FOLLOWS: &str = "+OK Capability list follows\r\n";
pub const STLS_BEGIN: &str = "+OK Begin TLS negotiation\r\n";
pub const MECHANISMS: &str = "+OK Mechanisms follow\r\nPLAIN\r\n.\r\n";
/// RFC 5034 section 4: PLAIN sends no challenge, so the continuation is empty.
pub const SASL_CONTINUE: &str = "+ \r\n";

pub const AUTH_FAILED: &str = "-ERR [AUTH] Authentication failed\r\n";
pub const AUTH_DISABLED: &str = "-ERR [AUTH] Account disabled\r\n";
pub const AUTH_BANNED: &str =
    "-ERR [AUTH] Too many failed logins from your address: try again later\r\n";
pub const PLAINTEXT_REFUSED: &str =
    "-ERR [AUTH] Plain-text authentication is not allowed without TLS: use STLS\r\n";
pub const AUTH_TEMP: &str =
    "-ERR [SYS/TEMP] Authentication service unavailable: try again later\r\n";
pub const AUTH_CANCELLED: &str = "-ERR Authentication cancelled\r\n";
pub const AUTH_BAD_BASE64: &str = "-ERR Response is not valid base64\r\n";
pub const AUTH_BAD_PLAIN: &str = "-ERR [AUTH] Malformed PLAIN response\r\n";
pub const AUTH_OTHER_IDENTITY: &str = "-ERR [AUTH] Logging in as another user is not allowed\r\n";
pub const AUTH_UNKNOWN_MECH: &str = "-ERR Unsupported authentication mechanism\r\n";
pub const IN_USE: &str = "-ERR [IN-USE] Mailbox is in use by another POP3 session\r\n";
pub const LOGIN_DELAY: &str = "-ERR [LOGIN-DELAY] Too soon since the last login\r\n";
pub const MAILDROP_TEMP: &str = "-ERR [SYS/TEMP] Cannot open the mailbox: try again later\r\n";
pub const PASS_WITHOUT_USER: &str = "-ERR Send USER first\r\n";
pub const APOP_REFUSED: &str =
    "-ERR APOP is not offered (passwords are stored hashed): use USER/PASS or AUTH PLAIN\r\n";

pub const NOT_LOGGED_IN: &str = "-ERR Not logged in: use USER and PASS, or AUTH\r\n";
pub const ALREADY_LOGGED_IN: &str = "-ERR Already logged in\r\n";
pub const NO_SUCH_MESSAGE: &str = "-ERR No such message\r\n";
pub const MESSAGE_DELETED: &str = "-ERR Message already deleted\r\n";
pub const MESSAGE_GONE: &str = "-ERR [SYS/TEMP] The message is no longer in the mailbox\r\n";
pub const READ_FAILED: &str = "-ERR [SYS/TEMP] Cannot read the message: try again later\r\n";
pub const UPDATE_FAILED: &str = "-ERR [SYS/TEMP] Some deleted messages were not removed\r\n";

pub const STLS_UNAVAILABLE: &str = "-ERR TLS is not available\r\n";
pub const STLS_ACTIVE: &str = "-ERR TLS is already active\r\n";
pub const STLS_AFTER_LOGIN: &str = "-ERR STLS is only allowed before login\r\n";

pub const UNKNOWN: &str = "-ERR Unknown command\r\n";
pub const EMPTY: &str = "-ERR Empty command\r\n";
pub const BAD_VERB: &str = "-ERR Command is not printable ASCII\r\n";
pub const LINE_TOO_LONG: &str = "-ERR Line too long\r\n";
pub const TOO_MANY_ERRORS: &str = "-ERR Too many bad commands: closing\r\n";
pub const TIMEOUT: &str = "-ERR Disconnected for inactivity\r\n";
pub const BANNED: &str =
    "-ERR [AUTH] Your address is banned for failed logins: try again later\r\n";
pub const BUSY: &str = "-ERR [SYS/TEMP] Too many connections: try again later\r\n";
pub const SHUTTING_DOWN: &str = "-ERR [SYS/TEMP] Server shutting down\r\n";

/// `-ERR VERB: why` for a command with bad arguments.
pub fn bad_arguments(why: &str) -> String {
    format!("-ERR {why}\r\n")
}

/// RFC 1939 section 5, STAT: `+OK nn mm`.
pub fn stat(count: usize, octets: u64) -> String {
    format!("+OK {count} {octets}\r\n")
}

/// RFC 1939 section 5, LIST: the first line of the listing.
pub fn list_header(count: usize, octets: u64) -> String {
    format!("+OK {count} messages ({octets} octets)\r\n")
}

/// LIST with an argument, or one line of the listing without `+OK `.
pub fn scan_line(n: usize, octets: u64) -> String {
    format!("{n} {octets}\r\n")
}

/// UIDL with an argument, or one line of the listing without `+OK `.
pub fn uidl_line(n: usize, uid: &str) -> String {
    format!("{n} {uid}\r\n")
}

/// The first line of RETR.
pub fn retr(octets: u64) -> String {
    format!("+OK {octets} octets\r\n")
}

/// RSET, and the PASS reply that opens a maildrop.
pub fn maildrop(count: usize, octets: u64) -> String {
    let noun = if count == 1 { "message" } else { "messages" };
    format!("+OK Maildrop has {count} {noun} ({octets} octets)\r\n")
}

/// QUIT in the UPDATE state.
pub fn bye_update(deleted: usize, left: usize) -> String {
    let noun = if deleted == 1 { "message" } else { "messages" };
    format!("+OK Bye ({deleted} {noun} deleted, {left} left)\r\n")
}
