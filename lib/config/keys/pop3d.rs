//! `[pop3d]`: settings of kmp-pop3d.
use super::{Key, Kind};

pub const KEYS: &[Key] = &[
    Key {
        name: "pop3d.listen",
        kind: Kind::Listen,
        default: "[::]:110",
        doc: "Where POP3 listens (STLS offered when TLS is configured).",
    },
    Key {
        name: "pop3d.pop3s_listen",
        kind: Kind::Listen,
        default: "[::]:995",
        doc: "Where POP3 over implicit TLS listens.",
    },
    Key {
        name: "pop3d.allow_plaintext",
        kind: Kind::Bool,
        default: "false",
        doc: "Accept USER/PASS and AUTH PLAIN on an unencrypted connection from a\nnon-loopback address. Off: such clients must use STLS or port 995 first.",
    },
    Key {
        name: "pop3d.timeout",
        kind: Kind::Duration {
            min: 1,
            max: 86400,
        },
        default: "10m",
        doc: "Idle time after which a session is closed without deleting anything\n(RFC 1939 asks for at least 10 minutes).",
    },
    Key {
        name: "pop3d.max_connections",
        kind: Kind::Int {
            min: 1,
            max: 1000000,
        },
        default: "2000",
        doc: "Sessions open at once; further clients are told to come back later.",
    },
    Key {
        name: "pop3d.max_connections_per_ip",
        kind: Kind::Int {
            min: 1,
            max: 1000000,
        },
        default: "20",
        doc: "Sessions open at once from one IP address.",
    },
    Key {
        name: "pop3d.max_errors",
        kind: Kind::Int { min: 1, max: 10000 },
        default: "20",
        doc: "Bad commands and failed logins in one session before it is closed and\nreported to kmp-authd (where it counts toward a ban).",
    },
    Key {
        name: "pop3d.expire",
        kind: Kind::Str,
        default: "",
        doc: "The EXPIRE capability announced in CAPA (RFC 2449): a number of days\nor NEVER. Empty: not announced. kmp-pop3d only announces the policy;\nthe expiry itself is the administrator's.",
    },
    Key {
        name: "pop3d.login_delay",
        kind: Kind::Duration {
            min: 0,
            max: 86400,
        },
        default: "0s",
        doc: "The LOGIN-DELAY announced in CAPA and enforced between two logins of\none user (RFC 2449); a user's own setting takes precedence. 0: none.",
    },
];
