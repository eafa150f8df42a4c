//! `[privileges]`: the Unix user each program runs as once it has bound its ports.
use super::{Key, Kind};

pub const KEYS: &[Key] = &[
    Key {
        name: "privileges.smtpd",
        kind: Kind::Str,
        default: "kmpd",
        doc: "The user kmp-smtpd runs as after binding. Empty: no change of user\n(every program then runs as whoever starts it).",
    },
    Key {
        name: "privileges.send",
        kind: Kind::Str,
        default: "kmpq",
        doc: "The user kmp-send, the queue manager, runs as.",
    },
    Key {
        name: "privileges.local",
        kind: Kind::Str,
        default: "vmail",
        doc: "The user kmp-local runs as: the owner of every mailbox.",
    },
    Key {
        name: "privileges.remote",
        kind: Kind::Str,
        default: "kmpr",
        doc: "The user kmp-remote runs as.",
    },
    Key {
        name: "privileges.authd",
        kind: Kind::Str,
        default: "kmpauth",
        doc: "The user kmp-authd runs as: the only reader of the user database.",
    },
    Key {
        name: "privileges.sieved",
        kind: Kind::Str,
        default: "vmail",
        doc: "The user kmp-sieved, the ManageSieve server, runs as after binding.",
    },
    Key {
        name: "privileges.admind",
        kind: Kind::Str,
        default: "kmpadm",
        doc: "The user kmp-admind, the administration API, runs as after binding: it\nwrites the user database, so it is in the database's group.",
    },
    Key {
        name: "privileges.pop3d",
        kind: Kind::Str,
        default: "vmail",
        doc: "The user kmp-pop3d runs as after binding.",
    },
    Key {
        name: "privileges.imapd",
        kind: Kind::Str,
        default: "vmail",
        doc: "The user kmp-imapd runs as after binding.",
    },
    Key {
        name: "privileges.fetch",
        kind: Kind::Str,
        default: "kmpfetch",
        doc: "The user kmp-fetch, the fetch agent, runs as.",
    },
    Key {
        name: "privileges.drop_group",
        kind: Kind::Str,
        default: "kmpdrop",
        doc: "The group that may write into the queue's drop directory (kmp-inject is\nsetgid to it).",
    },
];
