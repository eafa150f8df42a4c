//! `[sieved]`: settings of kmp-sieved, the ManageSieve server (RFC 5804).
use super::{Key, Kind};

pub const KEYS: &[Key] = &[
    Key {
        name: "sieved.listen",
        kind: Kind::Listen,
        default: "0.0.0.0:4190",
        doc: "Where ManageSieve listens (STARTTLS offered when TLS is configured).",
    },
    Key {
        name: "sieved.allow_plaintext",
        kind: Kind::Bool,
        default: "false",
        doc: "Offer and accept AUTHENTICATE on an unencrypted connection from a\nnon-loopback address. Off: such clients must use STARTTLS first.",
    },
    Key {
        name: "sieved.timeout",
        kind: Kind::Duration {
            min: 1,
            max: 86400,
        },
        default: "10m",
        doc: "Idle time after which a session is closed.",
    },
    Key {
        name: "sieved.max_connections",
        kind: Kind::Int {
            min: 1,
            max: 1000000,
        },
        default: "500",
        doc: "Sessions open at once; further clients are told to come back later.",
    },
    Key {
        name: "sieved.max_connections_per_ip",
        kind: Kind::Int {
            min: 1,
            max: 1000000,
        },
        default: "10",
        doc: "Sessions open at once from one IP address.",
    },
    Key {
        name: "sieved.max_errors",
        kind: Kind::Int { min: 1, max: 10000 },
        default: "20",
        doc: "Bad commands and failed logins in one session before it is closed and\nreported to kmp-authd (where it counts toward a ban).",
    },
];
