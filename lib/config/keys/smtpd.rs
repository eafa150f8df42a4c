//! `[smtpd]`: settings of kmp-smtpd.
use super::{Key, Kind};

pub const KEYS: &[Key] = &[
    Key {
        name: "smtpd.listen",
        kind: Kind::Listen,
        default: "0.0.0.0:25",
        doc: "Where the MX service listens (port 25: no AUTH needed for local domains).",
    },
    Key {
        name: "smtpd.submission_listen",
        kind: Kind::Listen,
        default: "0.0.0.0:587",
        doc: "Where the submission service listens (port 587: AUTH required).",
    },
    Key {
        name: "smtpd.smtps_listen",
        kind: Kind::Listen,
        default: "0.0.0.0:465",
        doc: "Where submission over implicit TLS listens (port 465).",
    },
];
