//! `[fetch]`: settings of kmp-fetch, the fetch agent.
use super::{Key, Kind};

pub const KEYS: &[Key] = &[
    Key {
        name: "fetch.interval",
        kind: Kind::Duration {
            min: 1,
            max: 604800,
        },
        default: "10m",
        doc: "How often an account is polled when it names no interval of its own.",
    },
    Key {
        name: "fetch.min_interval",
        kind: Kind::Duration {
            min: 1,
            max: 86400,
        },
        default: "1m",
        doc: "The shortest time between two polls of one account, whatever it asks for.",
    },
    Key {
        name: "fetch.max_backoff",
        kind: Kind::Duration {
            min: 1,
            max: 604800,
        },
        default: "6h",
        doc: "The longest wait after failed runs: an account that fails waits its\ninterval, then twice that, four times... up to this.",
    },
    Key {
        name: "fetch.max_concurrency",
        kind: Kind::Int { min: 1, max: 1000 },
        default: "20",
        doc: "Accounts fetched at once, in all.",
    },
    Key {
        name: "fetch.max_per_user",
        kind: Kind::Int { min: 1, max: 100 },
        default: "2",
        doc: "Accounts of one user fetched at once.",
    },
    Key {
        name: "fetch.max_accounts_per_user",
        kind: Kind::Int { min: 0, max: 10000 },
        default: "10",
        doc: "Fetch accounts one user may have (0: no limit); kmpctl and the webmail refuse more.",
    },
    Key {
        name: "fetch.max_message_size",
        kind: Kind::Size {
            min: 1024,
            max: 1 << 30,
        },
        default: "50M",
        doc: "A remote message larger than this is not fetched: it is left on the server\nand the account's status counts it.",
    },
    Key {
        name: "fetch.timeout",
        kind: Kind::Duration { min: 1, max: 3600 },
        default: "60s",
        doc: "Connecting to a remote server, and each read and write on it.",
    },
    Key {
        name: "fetch.ca_file",
        kind: Kind::Path,
        default: "",
        doc: "PEM certificates of the authorities remote servers' certificates are checked\nagainst. Empty: the system's (/etc/ssl/certs/ca-certificates.crt).",
    },
    Key {
        name: "fetch.private_key",
        kind: Kind::Path,
        default: "/etc/kmpromail/fetch.key",
        doc: "kmp-fetch's private key, which opens the stored remote passwords; readable by\nits user only. kmpctl setup and kmpctl init make the pair.",
    },
    Key {
        name: "fetch.public_key",
        kind: Kind::Path,
        default: "/etc/kmpromail/fetch.pub",
        doc: "kmp-fetch's public key: kmpctl (and kmp-admind) seal remote passwords with it.",
    },
];
