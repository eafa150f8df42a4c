//! `[send]`: settings of kmp-send.
use super::{Key, Kind};

pub const KEYS: &[Key] = &[Key {
    name: "send.max_queue_lifetime",
    kind: Kind::Duration {
        min: 60,
        max: 8640000,
    },
    default: "5d",
    doc: "How long a message may stay queued with temporary failures before it bounces.",
}];
