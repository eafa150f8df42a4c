//! `[pop3d]`: settings of kmp-pop3d.
use super::{Key, Kind};

pub const KEYS: &[Key] = &[
    Key {
        name: "pop3d.listen",
        kind: Kind::Listen,
        default: "0.0.0.0:110",
        doc: "Where POP3 listens (STLS offered when TLS is configured).",
    },
    Key {
        name: "pop3d.pop3s_listen",
        kind: Kind::Listen,
        default: "0.0.0.0:995",
        doc: "Where POP3 over implicit TLS listens.",
    },
];
