//! `[system]`: the host as a whole.
use super::{Key, Kind};

pub const KEYS: &[Key] = &[
    Key {
        name: "system.hostname",
        kind: Kind::Str,
        default: "localhost",
        doc: "The host's fully qualified name: the SMTP greeting, Received headers,\nMessage-IDs and bounces use it.",
    },
    Key {
        name: "system.default_domain",
        kind: Kind::Str,
        default: "",
        doc: "The domain a login without @ is taken in, as ISP users type only their name.\nEmpty: such logins are refused.",
    },
    Key {
        name: "system.postmaster",
        kind: Kind::Str,
        default: "postmaster",
        doc: "Where double bounces and warnings for the administrator go: an address,\nor a local part in system.default_domain (else in system.hostname).\n`kmpctl domain add` points the new domain's postmaster@ and abuse@ here\n(an address, or the local part in system.default_domain) unless --postmaster\nnames someone else.",
    },
    Key {
        name: "system.max_load",
        kind: Kind::Int { min: 0, max: 10000 },
        default: "0",
        doc: "Above this one-minute load average new connections are answered with a\ntemporary error and closed. 0 turns the check off.",
    },
    Key {
        name: "system.ipv6_prefix",
        kind: Kind::Int { min: 0, max: 128 },
        default: "64",
        doc: "IPv6 clients are counted and banned by this many leading bits of their\naddress: failed logins toward authd.max_failures, connections toward the\nper-address limits of every daemon, and the ban itself (2001:db8:1:2::/64).\nOne IPv6 host usually owns a whole /64. IPv4 clients (and IPv4-mapped IPv6\naddresses) are always counted by their single address. 128: per address.",
    },
];
