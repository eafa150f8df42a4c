//! `[paths]`: where state lives.
use super::{Key, Kind};

pub const KEYS: &[Key] = &[
    Key {
        name: "paths.queue",
        kind: Kind::Path,
        default: "/var/kmpromail/queue",
        doc: "The mail queue: incoming/ (the drop directory), mess/, the queue index.",
    },
    Key {
        name: "paths.mail",
        kind: Kind::Path,
        default: "/var/kmpromail/mail",
        doc: "Mailboxes: a user's Maildir is DOMAIN/USER/ below this directory unless\nthe user database names another path.",
    },
    Key {
        name: "paths.db",
        kind: Kind::Path,
        default: "/var/kmpromail/db",
        doc: "The user database (an LMDB environment).",
    },
    Key {
        name: "paths.run",
        kind: Kind::Path,
        default: "/run/kmpromail",
        doc: "Sockets and pid files.",
    },
    Key {
        name: "paths.fetch",
        kind: Kind::Path,
        default: "/var/kmpromail/fetch",
        doc: "kmp-fetch's state: which remote messages each account has fetched, and how\nits last run went.",
    },
    Key {
        name: "paths.announce",
        kind: Kind::Path,
        default: "/var/kmpromail/announce",
        doc: "Postmasters' announcements from kmp-admind waiting for kmp-local, which\nlooks every two seconds and delivers each to its domain. Empty: none.",
    },
    Key {
        name: "paths.libexec",
        kind: Kind::Path,
        default: "",
        doc: "Where the daemons' binaries are. Empty: the directory kmpctl itself is in,\nor ../libexec/kmpromail beside it.",
    },
    Key {
        name: "paths.syslog_socket",
        kind: Kind::Path,
        default: "/dev/log",
        doc: "The local syslog socket that daemons log to under facility mail when not\nin the foreground. Empty: no syslog; lines go to standard error.",
    },
    Key {
        name: "paths.log_file",
        kind: Kind::Path,
        default: "",
        doc: "A file the supervisor (kmpctl start) appends the daemons' standard error to.\nEmpty: standard error is discarded once started in the background.",
    },
];
