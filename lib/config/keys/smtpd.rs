//! `[smtpd]`: settings of kmp-smtpd.
use super::{Key, Kind};

pub const KEYS: &[Key] = &[
    Key {
        name: "smtpd.listen",
        kind: Kind::Listen,
        default: "[::]:25",
        doc: "Where the MX service listens (port 25: no AUTH needed for local domains).",
    },
    Key {
        name: "smtpd.submission_listen",
        kind: Kind::Listen,
        default: "[::]:587",
        doc: "Where the submission service listens (port 587: AUTH required).",
    },
    Key {
        name: "smtpd.smtps_listen",
        kind: Kind::Listen,
        default: "[::]:465",
        doc: "Where submission over implicit TLS listens (port 465).",
    },
    Key {
        name: "smtpd.max_message_size",
        kind: Kind::Size {
            min: 1024,
            max: 1 << 40,
        },
        default: "25M",
        doc: "The largest message accepted, in octets (advertised with SIZE, RFC 1870).",
    },
    Key {
        name: "smtpd.max_recipients",
        kind: Kind::Int {
            min: 1,
            max: 100000,
        },
        default: "100",
        doc: "Recipients per message; more get 452 4.5.3 and the client sends them later\n(RFC 5321 4.5.3.1.8 asks for at least 100).",
    },
    Key {
        name: "smtpd.max_hops",
        kind: Kind::Int { min: 1, max: 1000 },
        default: "50",
        doc: "A message with more Received headers than this is a loop: 554 5.4.6.",
    },
    Key {
        name: "smtpd.max_connections",
        kind: Kind::Int {
            min: 1,
            max: 1000000,
        },
        default: "1000",
        doc: "Simultaneous connections in all; more are answered 421 and closed.",
    },
    Key {
        name: "smtpd.max_connections_per_ip",
        kind: Kind::Int {
            min: 1,
            max: 1000000,
        },
        default: "20",
        doc: "Simultaneous connections from one client address.",
    },
    Key {
        name: "smtpd.max_connection_rate",
        kind: Kind::Int {
            min: 0,
            max: 1000000,
        },
        default: "0",
        doc: "New connections per minute from one client address; past it the client\nis answered 421 and each refused connection counts toward a ban in\nkmp-authd. 0: no limit.",
    },
    Key {
        name: "smtpd.max_messages_per_connection",
        kind: Kind::Int {
            min: 1,
            max: 1000000,
        },
        default: "1000",
        doc: "Messages in one session; then 421 and the client reconnects.",
    },
    Key {
        name: "smtpd.max_bad_commands",
        kind: Kind::Int { min: 1, max: 10000 },
        default: "20",
        doc: "Errors (unknown commands, syntax errors, refused commands) before the\nsession is closed and the client reported to kmp-authd.",
    },
    Key {
        name: "smtpd.command_timeout",
        kind: Kind::Duration { min: 1, max: 3600 },
        default: "5m",
        doc: "How long a command line may take to arrive, whole (RFC 5321 4.5.3.2.7:\nat least 5 minutes). Also bounds the TLS handshake.",
    },
    Key {
        name: "smtpd.data_timeout",
        kind: Kind::Duration { min: 1, max: 3600 },
        default: "3m",
        doc: "The longest wait for the next block of message data (RFC 5321 4.5.3.2.5).",
    },
    Key {
        name: "smtpd.relay_networks",
        kind: Kind::Nets,
        default: "",
        doc: "Clients that may relay to any domain without AUTH. None by default, not even\nloopback: local programs submit through kmp-inject or with AUTH.",
    },
    Key {
        name: "smtpd.deny_clients",
        kind: Kind::Nets,
        default: "",
        doc: "Client addresses and networks (IPv4 and IPv6) whose sessions are refused:\n554 5.7.1 at the greeting.",
    },
    Key {
        name: "smtpd.deny_senders",
        kind: Kind::List,
        default: "",
        doc: "Envelope senders refused with 550 5.7.1 (whole addresses, any case).",
    },
    Key {
        name: "smtpd.deny_sender_domains",
        kind: Kind::List,
        default: "",
        doc: "Sender domains refused with 550 5.7.1; `.example.com` also covers its\nsubdomains.",
    },
    Key {
        name: "smtpd.deny_recipients",
        kind: Kind::List,
        default: "",
        doc: "Recipient addresses refused with 550 5.7.1.",
    },
    Key {
        name: "smtpd.auth_plaintext",
        kind: Kind::Bool,
        default: "false",
        doc: "Offer AUTH on connections without TLS. Off: passwords only travel encrypted\n(RFC 4954 4).",
    },
    Key {
        name: "smtpd.sender_login_check",
        kind: Kind::Bool,
        default: "true",
        doc: "An authenticated client may use as envelope sender only its own address and\nthe aliases that point to it.",
    },
];
