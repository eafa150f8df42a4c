//! `[auth]`: sender authentication at the door (SPF, DKIM, DMARC, ARC in
//! kmp-smtpd) and our own DKIM signatures (kmp-remote). See `lib/mailauth/`.
use super::{Key, Kind};

pub const KEYS: &[Key] = &[
    Key {
        name: "auth.spf",
        kind: Kind::Bool,
        default: "true",
        doc: "Check SPF (RFC 7208) for the MAIL FROM and HELO identities of mail that\narrives on the MX port. Never for authenticated clients, smtpd.relay_networks\nor auth.skip_networks.",
    },
    Key {
        name: "auth.dkim",
        kind: Kind::Bool,
        default: "true",
        doc: "Verify DKIM signatures (RFC 6376, RSA and Ed25519) of mail arriving on the MX\nport.",
    },
    Key {
        name: "auth.arc",
        kind: Kind::Bool,
        default: "true",
        doc: "Verify ARC chains (RFC 8617) of forwarded mail and record the result in\nAuthentication-Results (sealing is auth.arc_seal).",
    },
    Key {
        name: "auth.arc_seal",
        kind: Kind::Bool,
        default: "true",
        doc: "Seal (RFC 8617) mail we forward to another host (aliases, forwards, Sieve\nredirect, list posts) when it carries our Authentication-Results: kmp-remote\nadds an ARC set with a DKIM key of the host name's domain (kmpctl dkim).\nMail that already has an ARC chain, or is larger than 16 MB, goes unsealed.",
    },
    Key {
        name: "auth.dmarc",
        kind: Kind::Bool,
        default: "true",
        doc: "Evaluate DMARC (RFC 7489) for the From domain and apply its policy as\nauth.dmarc_reject and auth.dmarc_quarantine say (with the SPF result only when
auth.spf is on).",
    },
    Key {
        name: "auth.dmarc_reject",
        kind: Kind::Enum(&["reject", "quarantine", "tag"]),
        default: "reject",
        doc: "What a DMARC failure under p=reject gets: reject (550 5.7.1 at the end of\nDATA), quarantine (delivered with X-Kmpromail-Junk, filed into Junk) or tag\n(delivered; only Authentication-Results says it).",
    },
    Key {
        name: "auth.dmarc_quarantine",
        kind: Kind::Enum(&["quarantine", "tag"]),
        default: "quarantine",
        doc: "What a DMARC failure under p=quarantine gets: quarantine (delivered with\nX-Kmpromail-Junk, which kmp-local files into Junk) or tag.",
    },
    Key {
        name: "auth.spf_fail",
        kind: Kind::Enum(&["tag", "reject"]),
        default: "tag",
        doc: "What an SPF fail (-all) of the MAIL FROM identity gets when DMARC does not\ndecide: tag (recorded in Authentication-Results) or reject (550 5.7.23).",
    },
    Key {
        name: "auth.temp_error",
        kind: Kind::Enum(&["accept", "tempfail"]),
        default: "accept",
        doc: "What a temporary DNS error in a check gets: accept (the message is delivered\nand Authentication-Results says temperror) or tempfail (451 4.7.5, so the\nsender tries again later).",
    },
    Key {
        name: "auth.skip_networks",
        kind: Kind::Nets,
        default: "127.0.0.0/8, ::1/128",
        doc: "Clients whose mail is not checked (as policyd-spf's skip_addresses): local\nprograms and content filters that hand mail back. smtpd.relay_networks and\nauthenticated clients are never checked either.",
    },
    Key {
        name: "auth.authserv_id",
        kind: Kind::Str,
        default: "",
        doc: "The authserv-id of our Authentication-Results header (RFC 8601). Empty: the\nsystem.hostname. Any incoming Authentication-Results header naming it is\nremoved, since only we may write it.",
    },
    Key {
        name: "auth.dns_servers",
        kind: Kind::List,
        default: "",
        doc: "Name servers the checks (and kmpctl check's record checks) ask, as \"ip\" or\n\"ip:port\". Empty: those of /etc/resolv.conf.",
    },
    Key {
        name: "auth.dns_timeout",
        kind: Kind::Duration { min: 1, max: 60 },
        default: "5s",
        doc: "How long one DNS question of the checks may take; all of a message's checks\ntogether get four times this.",
    },
    Key {
        name: "auth.cache_entries",
        kind: Kind::Int {
            min: 0,
            max: 10000000,
        },
        default: "10000",
        doc: "Parsed SPF, DKIM and DMARC records (and address, MX and PTR answers) kept per\nkmp-smtpd, each for its DNS TTL. 0: no cache.",
    },
    Key {
        name: "auth.dkim_keys",
        kind: Kind::Path,
        default: "/etc/kmpromail/dkim",
        doc: "The directory of DKIM signing keys, one subdirectory per domain, made by\n`kmpctl dkim keygen`; readable only by kmp-remote's user. kmp-remote signs\nmail whose From domain has an active key here (bounces from MAILER-DAEMON with\nthe key of system.hostname's domain). Empty: no signing.",
    },
    Key {
        name: "auth.dkim_keep_old",
        kind: Kind::Duration {
            min: 0,
            max: 31536000,
        },
        default: "30d",
        doc: "How long `kmpctl dkim rotate` keeps a replaced key (and lists its DNS record as\nstill needed) before it deletes it at the next rotation.",
    },
    Key {
        name: "auth.srs_secret_file",
        kind: Kind::Path,
        default: "",
        doc: "The secret (any bytes; kmpctl init writes 32 random ones) that SRS addresses\nare signed with. Set: the reverse path of mail forwarded to another host (an\nalias or forward to an outside address, a Sieve redirect) is rewritten to\nSRS0=HASH=TT=domain=user@auth.srs_domain, and bounces to such an address go\nback to the original sender; forged or expired ones are refused. Read by\nkmp-send and kmp-authd. Empty: no SRS.",
    },
    Key {
        name: "auth.srs_domain",
        kind: Kind::Str,
        default: "",
        doc: "The domain of SRS addresses; mail to it must reach this host (an MX or address\nrecord). Empty: system.hostname.",
    },
    Key {
        name: "auth.srs_max_age",
        kind: Kind::Duration {
            min: 86400,
            max: 86400000,
        },
        default: "21d",
        doc: "How long an SRS address is honoured for bounces (whole days).",
    },
];
