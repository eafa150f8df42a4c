//! `[local]`: settings of kmp-local.
use super::{Key, Kind};

pub const KEYS: &[Key] = &[Key {
    name: "local.quota_warning_percent",
    kind: Kind::Int { min: 0, max: 100 },
    default: "90",
    doc: "At this use of a quota the user receives one warning mail. 0 turns warnings off.",
}];
