//! `[imapd]`: settings of kmp-imapd.
use super::{Key, Kind};

pub const KEYS: &[Key] = &[
    Key {
        name: "imapd.listen",
        kind: Kind::Listen,
        default: "[::]:143",
        doc: "Where IMAP listens (STARTTLS offered when TLS is configured).",
    },
    Key {
        name: "imapd.imaps_listen",
        kind: Kind::Listen,
        default: "[::]:993",
        doc: "Where IMAP over implicit TLS listens.",
    },
    Key {
        name: "imapd.max_connections",
        kind: Kind::Int { min: 1, max: 1_000_000 },
        default: "10000",
        doc: "Most IMAP connections at once; more wait to be accepted.",
    },
    Key {
        name: "imapd.max_connections_per_ip",
        kind: Kind::Int { min: 1, max: 1_000_000 },
        default: "20",
        doc: "Most IMAP connections from one client address; more get BYE.",
    },
    Key {
        name: "imapd.max_message_size",
        kind: Kind::Size { min: 1024, max: 1 << 32 },
        default: "64M",
        doc: "Largest message APPEND accepts (a larger literal gets BAD).",
    },
    Key {
        name: "imapd.max_line_length",
        kind: Kind::Size { min: 8192, max: 16 << 20 },
        default: "64K",
        doc: "Longest command line between literals (a longer one gets BAD).",
    },
    Key {
        name: "imapd.timeout",
        kind: Kind::Duration { min: 60, max: 86400 },
        default: "30m",
        doc: "Inactivity before a client is logged out (RFC 9051 asks for at\nleast 30 minutes; IDLE restarts it).",
    },
    Key {
        name: "imapd.write_timeout",
        kind: Kind::Duration { min: 1, max: 3600 },
        default: "1m",
        doc: "Longest wait for a client to take the next 64 KiB of a response (a\nlarge FETCH, say); a client that stops reading is disconnected after it.",
    },
    Key {
        name: "imapd.handshake_timeout",
        kind: Kind::Duration { min: 1, max: 3600 },
        default: "30s",
        doc: "Longest a TLS handshake (port 993 or STARTTLS) may take.",
    },
    Key {
        name: "imapd.max_errors",
        kind: Kind::Int { min: 1, max: 10000 },
        default: "20",
        doc: "Bad commands (unparsable, unknown, in the wrong state, too long) in\none session before it is closed and reported to kmp-authd (where it\ncounts toward a ban).",
    },
    Key {
        name: "imapd.trusted_networks",
        kind: Kind::Nets,
        default: "",
        doc: "Front ends (a webmail, a proxy) that may name the client they serve\nwith ID (\"x-originating-ip\" ... \"x-originating-port\" ...) before login:\nlogs, bans and the per-address limit then apply to that client. A\nfront end's own connections are not limited per address and may log\nin without TLS. None by default.",
    },
    Key {
        name: "imapd.metadata_max_size",
        kind: Kind::Size { min: 1024, max: 16 << 20 },
        default: "64K",
        doc: "Largest METADATA value (RFC 5464) a client may set; a larger one gets\nNO [METADATA MAXSIZE].",
    },
    Key {
        name: "imapd.metadata_max_entries",
        kind: Kind::Int { min: 1, max: 10000 },
        default: "5000",
        doc: "Most METADATA entries per mailbox (and for the server) of one user; more\nget NO [METADATA TOOMANY]. The webmail keeps each contact of a user's\naddress book as one server entry, so this bounds the address book too.",
    },
    Key {
        name: "imapd.metadata_max_total",
        kind: Kind::Size { min: 64 << 10, max: 1 << 30 },
        default: "16M",
        doc: "Most bytes of METADATA values per mailbox (and for the server) of one\nuser; a SETMETADATA that would grow them past it gets NO [METADATA\nTOOMANY].",
    },
    Key {
        name: "imapd.metadata_comment",
        kind: Kind::Str,
        default: "",
        doc: "The server METADATA entry /shared/comment every user reads (RFC 5464\n3.2.1.1).\nEmpty: none.",
    },
    Key {
        name: "imapd.metadata_admin",
        kind: Kind::Str,
        default: "",
        doc: "The server METADATA entry /shared/admin: a URI to reach the\nadministrator, such as mailto:postmaster@example.com.\nEmpty: none.",
    },
];
