//! `[remote]`: settings of kmp-remote.
use super::{Key, Kind};

pub const KEYS: &[Key] = &[
    Key {
        name: "remote.helo_name",
        kind: Kind::Str,
        default: "",
        doc: "The name kmp-remote gives in EHLO and HELO.\nEmpty: system.hostname.",
    },
    Key {
        name: "remote.connect_timeout",
        kind: Kind::Duration { min: 1, max: 600 },
        default: "30s",
        doc: "How long a TCP connection to a remote server may take to open.",
    },
    Key {
        name: "remote.greeting_timeout",
        kind: Kind::Duration { min: 1, max: 3600 },
        default: "5m",
        doc: "How long to wait for the server's greeting (RFC 5321 4.5.3.2.1: 5 minutes).",
    },
    Key {
        name: "remote.command_timeout",
        kind: Kind::Duration { min: 1, max: 3600 },
        default: "5m",
        doc: "How long to wait for the reply to EHLO, STARTTLS, AUTH, MAIL, RCPT, RSET and\nQUIT, the TLS handshake included (RFC 5321 4.5.3.2.2-3: 5 minutes).",
    },
    Key {
        name: "remote.data_init_timeout",
        kind: Kind::Duration { min: 1, max: 3600 },
        default: "2m",
        doc: "How long to wait for the 354 reply to DATA (RFC 5321 4.5.3.2.4: 2 minutes).",
    },
    Key {
        name: "remote.data_block_timeout",
        kind: Kind::Duration { min: 1, max: 3600 },
        default: "3m",
        doc: "How long sending one block of the message may take (RFC 5321 4.5.3.2.5:\n3 minutes).",
    },
    Key {
        name: "remote.data_done_timeout",
        kind: Kind::Duration { min: 1, max: 7200 },
        default: "10m",
        doc: "How long to wait for the reply after the final dot (RFC 5321 4.5.3.2.6:\n10 minutes).",
    },
    Key {
        name: "remote.connection_cache_time",
        kind: Kind::Duration { min: 0, max: 300 },
        default: "2s",
        doc: "How long an idle connection is kept open for the next message to the same\nserver.\n0 closes each connection after its job.",
    },
    Key {
        name: "remote.max_connections",
        kind: Kind::Int { min: 1, max: 10000 },
        default: "100",
        doc: "The most deliveries in progress at once, all destinations together; further\njobs wait for a free slot.",
    },
    Key {
        name: "remote.max_per_destination",
        kind: Kind::Int { min: 1, max: 10000 },
        default: "20",
        doc: "The most deliveries in progress at once to one destination (a domain, or the\nsmarthost).",
    },
    Key {
        name: "remote.max_recipients",
        kind: Kind::Int { min: 1, max: 10000 },
        default: "50",
        doc: "The most recipients in one SMTP transaction; more are sent in further\ntransactions on the same connection.",
    },
    Key {
        name: "remote.routes",
        kind: Kind::Map,
        default: "",
        doc: "Static routes that take precedence over MX lookups: \"domain\" = [\"host:port\", ...];
\"*\" names a smarthost for every remote domain.",
    },
    Key {
        name: "remote.smtp_port",
        kind: Kind::Int { min: 1, max: 65535 },
        default: "25",
        doc: "The port of mail hosts found through MX or address records (as Postfix's\nsmtp_tcp_port).\nStatic routes name their own ports.",
    },
    Key {
        name: "remote.dns_servers",
        kind: Kind::List,
        default: "",
        doc: "Name servers to ask for MX and address records, as \"ip\" or \"ip:port\".\nEmpty: those of /etc/resolv.conf.",
    },
    Key {
        name: "remote.address_family",
        kind: Kind::Enum(&["any", "ipv4", "ipv6"]),
        default: "any",
        doc: "The address families kmp-remote connects over. any: the AAAA and A records of\neach mail host, tried in MX order, each host's IPv6 and IPv4 addresses\nalternating, IPv6 first; a host that fails over one family is tried over the\nother before the next host. ipv4 or ipv6: that family only (for a host whose\nother family is broken); a destination with no address of it bounces (5.4.4),\na static route with none is deferred.",
    },
    Key {
        name: "remote.tls_level",
        kind: Kind::Enum(&["none", "may", "encrypt", "verify"]),
        default: "may",
        doc: "STARTTLS for destinations without a remote.tls_policy entry: none (never),\nmay (when offered, without checking the certificate), encrypt (required,\nnot checked) or verify (required, certificate checked against\nremote.tls_ca_file and the server's name).",
    },
    Key {
        name: "remote.tls_policy",
        kind: Kind::Map,
        default: "",
        doc: "STARTTLS level per destination: \"domain\" = [\"verify\"]; \"*\" for the smarthost.",
    },
    Key {
        name: "remote.tls_ca_file",
        kind: Kind::Path,
        default: "/etc/ssl/certs/ca-certificates.crt",
        doc: "The certificate authorities (PEM) that the verify level trusts.",
    },
    Key {
        name: "remote.auth",
        kind: Kind::Map,
        default: "",
        doc: "Credentials for AUTH PLAIN or LOGIN, per destination as in remote.routes:\n\"*\" = [\"user\", \"password\"].\nSent only to a server whose certificate was verified (TLS level verify for\nthat destination in remote.tls_policy or remote.tls_level); otherwise the\nmessage is deferred, unless the destination is in remote.auth_unverified.",
    },
    Key {
        name: "remote.auth_unverified",
        kind: Kind::List,
        default: "",
        doc: "Destinations of remote.auth (\"*\" for the smarthost) whose credentials may be\nsent to a server whose certificate was not verified: over TLS under the\nlevels may and encrypt, or without TLS to a loopback address. Anyone able to\nintercept the connection can then read the password.",
    },
];
