//! `[admind]`: settings of kmp-admind, the remote administration API.
use super::{Key, Kind};

pub const KEYS: &[Key] = &[
    Key {
        name: "admind.listen",
        kind: Kind::Listen,
        default: "[::]:844",
        doc: "Where the HTTPS administration API listens (TLS only: the daemon does\nnot start without tls.cert and tls.key).",
    },
    Key {
        name: "admind.admins",
        kind: Kind::List,
        default: "",
        doc: "The system administrators: mail addresses whose login through the API\nmay do everything. Domain postmasters are kept in the domain record\n(kmpctl domain admin add).",
    },
    Key {
        name: "admind.session_lifetime",
        kind: Kind::Duration {
            min: 1,
            max: 604800,
        },
        default: "1h",
        doc: "How long a session token from POST /v1/login is good for. Tokens die\nearlier on logout and when kmp-admind restarts.",
    },
    Key {
        name: "admind.max_body",
        kind: Kind::Size {
            min: 1024,
            max: 16777216,
        },
        default: "64K",
        doc: "The largest request body; a larger one is refused with 413.",
    },
    Key {
        name: "admind.max_connections",
        kind: Kind::Int { min: 1, max: 100000 },
        default: "100",
        doc: "Connections open at once; further clients wait.",
    },
    Key {
        name: "admind.timeout",
        kind: Kind::Duration { min: 1, max: 3600 },
        default: "30s",
        doc: "Time a client has to send a request's head and body.",
    },
    Key {
        name: "admind.trusted_networks",
        kind: Kind::Nets,
        default: "",
        doc: "Front ends (the webmail's hosts) that may name the browser they serve\n(client_ip in POST /v1/signup): the sign-up rate limit and bans then\napply to the browser's address. None by default.",
    },
    Key {
        name: "admind.signup_max",
        kind: Kind::Int { min: 1, max: 100000 },
        default: "5",
        doc: "Sign-up attempts one address may make within admind.signup_window;\nmore get 429 and count toward a ban.",
    },
    Key {
        name: "admind.signup_window",
        kind: Kind::Duration {
            min: 1,
            max: 604800,
        },
        default: "1h",
        doc: "The window of admind.signup_max.",
    },
];
