//! `[authd]`: settings of kmp-authd.
use super::{Key, Kind};

pub const KEYS: &[Key] = &[
    Key {
        name: "authd.max_failures",
        kind: Kind::Int {
            min: 1,
            max: 1000000,
        },
        default: "10",
        doc: "Failed logins from one IP address within authd.failure_window before it is banned
from every protocol.",
    },
    Key {
        name: "authd.failure_window",
        kind: Kind::Duration {
            min: 1,
            max: 604800,
        },
        default: "15m",
        doc: "The window over which failed logins are counted.",
    },
    Key {
        name: "authd.ban_time",
        kind: Kind::Duration {
            min: 1,
            max: 31536000,
        },
        default: "1h",
        doc: "How long a ban lasts.",
    },
];
