//! `[local]`: settings of kmp-local.
use super::{Key, Kind};

pub const KEYS: &[Key] = &[
    Key {
        name: "local.quota_warning_percent",
        kind: Kind::Int { min: 0, max: 100 },
        default: "90",
        doc: "At this use of a quota the user receives one warning mail, unless the user\nchose another level in the webmail's settings. 0 turns warnings off for\neveryone.",
    },
    Key {
        name: "local.quota_warning_min_percent",
        kind: Kind::Int { min: 1, max: 100 },
        default: "50",
        doc: "The lowest level a user may choose for the quota warning in the webmail;\nthe webmail offers none below it and kmp-local raises a lower one to it.",
    },
    Key {
        name: "local.quota_full_warning_interval",
        kind: Kind::Duration {
            min: 60,
            max: 30 * 86400,
        },
        default: "1d",
        doc: "When mail to a full mailbox is refused, the user receives one warning mail,\nand no other for this long however many messages are refused.",
    },
    Key {
        name: "local.hop_limit",
        kind: Kind::Int { min: 1, max: 1000 },
        default: "50",
        doc: "A message with more Received: header fields than this is taken for a mail\nloop and bounced (5.4.6).",
    },
    Key {
        name: "local.delivered_to_limit",
        kind: Kind::Int { min: 1, max: 100 },
        default: "1",
        doc: "A message that already carries this many Delivered-To: header fields naming\nthe recipient is taken for a mail loop and bounced (5.4.6).",
    },
    Key {
        name: "local.max_alias_depth",
        kind: Kind::Int { min: 1, max: 100 },
        default: "10",
        doc: "How deep aliases and forwards may nest before the recipient bounces (5.4.6).",
    },
];
