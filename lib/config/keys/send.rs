//! `[send]`: settings of kmp-send, the queue manager.
use super::{Key, Kind};

pub const KEYS: &[Key] = &[
    Key {
        name: "send.max_queue_lifetime",
        kind: Kind::Duration {
            min: 1,
            max: 8640000,
        },
        default: "5d",
        doc: "How long a message may stay queued with temporary failures before it bounces.",
    },
    Key {
        name: "send.min_backoff",
        kind: Kind::Duration { min: 1, max: 86400 },
        default: "5m",
        doc: "The wait after a message's first temporary failure. Each further failure\ndoubles it, up to send.max_backoff.",
    },
    Key {
        name: "send.max_backoff",
        kind: Kind::Duration { min: 1, max: 604800 },
        default: "1h",
        doc: "The longest wait between two attempts of a deferred message.",
    },
    Key {
        name: "send.delay_warning_time",
        kind: Kind::Duration {
            min: 0,
            max: 8640000,
        },
        default: "4h",
        doc: "After this long in the queue the sender of a message still undelivered\nreceives one \"delayed\" notice (RFC 3464). 0 turns warnings off.",
    },
    Key {
        name: "send.local_concurrency",
        kind: Kind::Int { min: 1, max: 1000 },
        default: "10",
        doc: "Delivery jobs in flight to kmp-local at once (one connection each).",
    },
    Key {
        name: "send.remote_concurrency",
        kind: Kind::Int { min: 1, max: 1000 },
        default: "20",
        doc: "Delivery jobs in flight to kmp-remote at once (one connection each).",
    },
    Key {
        name: "send.max_active",
        kind: Kind::Int {
            min: 1,
            max: 100000,
        },
        default: "200",
        doc: "Messages being attempted at once.",
    },
    Key {
        name: "send.scan_interval",
        kind: Kind::Duration { min: 1, max: 3600 },
        default: "60s",
        doc: "How often the drop directory is scanned even without a wake-up datagram.",
    },
    Key {
        name: "send.route_cache_time",
        kind: Kind::Duration { min: 0, max: 86400 },
        default: "60s",
        doc: "How long kmp-authd's answer \"this domain is local\" (or not) is remembered.",
    },
];
