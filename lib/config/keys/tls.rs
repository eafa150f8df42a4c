//! `[tls]`: the certificate every TLS listener presents.
use super::{Key, Kind};

pub const KEYS: &[Key] = &[
    Key {
        name: "tls.cert",
        kind: Kind::Path,
        default: "/etc/kmpromail/cert.pem",
        doc: "The certificate chain, PEM. Empty: no TLS is offered.",
    },
    Key {
        name: "tls.key",
        kind: Kind::Path,
        default: "/etc/kmpromail/key.pem",
        doc: "The private key, PEM. Read as root before privileges are dropped.",
    },
];
