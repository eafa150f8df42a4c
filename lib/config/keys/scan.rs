//! `[scan]`: the connection checks and content scanners of kmp-smtpd
//! (lib/antispam/scan).
use super::{Key, Kind};

pub const KEYS: &[Key] = &[
    Key {
        name: "scan.spamd",
        kind: Kind::Str,
        default: "",
        doc: "Where SpamAssassin's spamd listens: a Unix socket path (/run/spamd.sock) or\nhost:port (127.0.0.1:783). Empty: no spam scanning. Mail from port 25 is\nscanned before 250 is said; submission and relay networks are not.",
    },
    Key {
        name: "scan.spamd_user",
        kind: Kind::Str,
        default: "",
        doc: "The User: spamd is asked for (its per-user preferences). Empty: the\nrecipient's address when the message has one recipient, else none.",
    },
    Key {
        name: "scan.rspamd",
        kind: Kind::Str,
        default: "",
        doc: "Where rspamd's normal worker listens (its HTTP protocol, /checkv2): host:port\n(127.0.0.1:11333) or a Unix socket path. Empty: rspamd is not asked. With\nscan.spamd as well both are asked and the higher score counts. rspamd's\nscore goes against scan.tag_score and scan.reject_score like spamd's; a\nreject it reaches without adding up (GTUBE) scores 1000.",
    },
    Key {
        name: "scan.clamd",
        kind: Kind::Str,
        default: "",
        doc: "Where ClamAV's clamd listens: a Unix socket path or host:port. Empty: no\nvirus scanning. A virus is refused with 554 5.7.0 naming it.",
    },
    Key {
        name: "scan.connect_timeout",
        kind: Kind::Duration { min: 1, max: 300 },
        default: "5s",
        doc: "How long connecting to a scanner may take.",
    },
    Key {
        name: "scan.timeout",
        kind: Kind::Duration { min: 1, max: 3600 },
        default: "60s",
        doc: "How long a scanner may take to read a message and answer.",
    },
    Key {
        name: "scan.on_failure",
        kind: Kind::Enum(&["accept", "tempfail"]),
        default: "accept",
        doc: "When a scanner is down, times out or answers nonsense: accept (the message\nis delivered with X-Spam-Status: ... unchecked) or tempfail (451 4.7.1, the\nsender tries again later).",
    },
    Key {
        name: "scan.max_size",
        kind: Kind::Size {
            min: 1024,
            max: 1 << 30,
        },
        default: "4M",
        doc: "Larger messages are not given to the scanners (nor held in memory for them);\nthey are accepted untagged and the log says so.",
    },
    Key {
        name: "scan.tag_score",
        kind: Kind::Int { min: 1, max: 1000 },
        default: "5",
        doc: "From this spam score on a message is spam: X-Spam-Flag: YES,\nX-Spam-Status: Yes, and X-Kmpromail-Junk, which makes kmp-local file it into\nJunk. Per domain and per user: kmpctl domain spam, kmpctl user spam.",
    },
    Key {
        name: "scan.reject_score",
        kind: Kind::Int { min: 0, max: 1000 },
        default: "15",
        doc: "From this spam score on a message is refused at DATA (550 5.7.1); 0: never.\nPer domain and per user as scan.tag_score; a message is refused only when it\nis over the limit of every recipient and no recipient allows its sender.",
    },
    Key {
        name: "scan.dnsbl",
        kind: Kind::List,
        default: "",
        doc: "DNS block and allow lists with their weights, \"zone weight\", such as\n\"zen.spamhaus.org 10\" or \"list.dnswl.org -5\". The weights of the zones that\nlist the client are added up (an IPv6 client is looked up nibble-reversed).",
    },
    Key {
        name: "scan.dnsbl_threshold",
        kind: Kind::Int { min: 1, max: 1000 },
        default: "10",
        doc: "From this connection score on (DNSBL weights plus scan.fcrdns_score and\nscan.helo_score) recipients are refused with 554 5.7.1; below it the score is\nadded to the message's spam score.",
    },
    Key {
        name: "scan.fcrdns",
        kind: Kind::Enum(&["off", "score", "reject"]),
        default: "off",
        doc: "Forward-confirmed reverse DNS: a client whose PTR names do not resolve back\nto its address gets scan.fcrdns_score (score) or is refused (reject).",
    },
    Key {
        name: "scan.fcrdns_score",
        kind: Kind::Int { min: 0, max: 1000 },
        default: "3",
        doc: "The connection score of a client without forward-confirmed reverse DNS.",
    },
    Key {
        name: "scan.helo",
        kind: Kind::Enum(&["off", "score", "reject"]),
        default: "off",
        doc: "HELO sanity: a bare IP address without brackets, our own name or address,\nor a name without a dot gets scan.helo_score (score) or is refused (reject).",
    },
    Key {
        name: "scan.helo_score",
        kind: Kind::Int { min: 0, max: 1000 },
        default: "3",
        doc: "The connection score of a client with a bad HELO.",
    },
    Key {
        name: "scan.dns_servers",
        kind: Kind::List,
        default: "",
        doc: "Name servers for the DNSBL and reverse DNS lookups, as \"ip\" or \"ip:port\".\nEmpty: those of /etc/resolv.conf.",
    },
    Key {
        name: "scan.dns_cache_size",
        kind: Kind::Int {
            min: 0,
            max: 10_000_000,
        },
        default: "10000",
        doc: "Client addresses whose connection checks are remembered (for 10 minutes).",
    },
    Key {
        name: "scan.greylist",
        kind: Kind::Bool,
        default: "false",
        doc: "Greylisting: the first attempt of a (client network, sender, recipient)\ntriplet gets 451 4.7.1; a retry after scan.greylist_delay passes. The table is\nkept by kmp-authd (DB/authd-greylist), so it survives restarts and is shared\nby every kmp-smtpd.",
    },
    Key {
        name: "scan.greylist_delay",
        kind: Kind::Duration { min: 0, max: 86400 },
        default: "5m",
        doc: "How long a new triplet waits before a retry passes.",
    },
    Key {
        name: "scan.greylist_retry_window",
        kind: Kind::Duration {
            min: 60,
            max: 2_592_000,
        },
        default: "2d",
        doc: "How long a triplet not yet retried is remembered.",
    },
    Key {
        name: "scan.greylist_lifetime",
        kind: Kind::Duration {
            min: 60,
            max: 31_536_000,
        },
        default: "35d",
        doc: "How long a triplet that passed stays passed after its last use.",
    },
    Key {
        name: "scan.greylist_whitelist",
        kind: Kind::List,
        default: "",
        doc: "Clients never greylisted: networks in CIDR form (192.0.2.0/24) and sender\ndomains (example.com, .example.com for its subdomains too).",
    },
    Key {
        name: "scan.greylist_auto_whitelist",
        kind: Kind::Int { min: 0, max: 1000 },
        default: "5",
        doc: "A client network whose retries passed this many times is no longer\ngreylisted (0: never).",
    },
];
