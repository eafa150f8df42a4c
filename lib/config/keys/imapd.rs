//! `[imapd]`: settings of kmp-imapd.
use super::{Key, Kind};

pub const KEYS: &[Key] = &[
    Key {
        name: "imapd.listen",
        kind: Kind::Listen,
        default: "0.0.0.0:143",
        doc: "Where IMAP listens (STARTTLS offered when TLS is configured).",
    },
    Key {
        name: "imapd.imaps_listen",
        kind: Kind::Listen,
        default: "0.0.0.0:993",
        doc: "Where IMAP over implicit TLS listens.",
    },
];
