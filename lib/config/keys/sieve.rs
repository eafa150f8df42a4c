//! `[sieve]`: users' Sieve scripts (RFC 5228): where they are kept, how many
//! and how large (kmp-sieved and `kmpctl sieve` enforce these), and the
//! administrator's scripts that kmp-local runs around every user's.
use super::{Key, Kind};

pub const KEYS: &[Key] = &[
    Key {
        name: "sieve.max_scripts",
        kind: Kind::Int { min: 1, max: 10000 },
        default: "20",
        doc: "Scripts one user may keep in the sieve/ directory of the Maildir.",
    },
    Key {
        name: "sieve.max_script_size",
        kind: Kind::Size {
            min: 1024,
            max: 16 << 20,
        },
        default: "256K",
        doc: "Largest script a user may store (ManageSieve answers QUOTA/MAXSIZE).",
    },
    Key {
        name: "sieve.quota",
        kind: Kind::Size {
            min: 1024,
            max: 1 << 30,
        },
        default: "1M",
        doc: "All of one user's scripts together, in bytes.",
    },
    Key {
        name: "sieve.max_redirects",
        kind: Kind::Int { min: 0, max: 100 },
        default: "4",
        doc: "Redirects one script may make per message (announced as MAXREDIRECTS).",
    },
    Key {
        name: "sieve.before",
        kind: Kind::Path,
        default: "",
        doc: "A Sieve script kmp-local runs before every user's own. Empty: none.",
    },
    Key {
        name: "sieve.after",
        kind: Kind::Path,
        default: "",
        doc: "A Sieve script kmp-local runs after every user's own. Empty: none.",
    },
    Key {
        name: "sieve.domain_dir",
        kind: Kind::Path,
        default: "",
        doc: "A directory of per-domain scripts, DOMAIN.sieve (the domain in A-label\nform), run after the before-script and before the user's. Empty: none.",
    },
    Key {
        name: "sieve.global_dir",
        kind: Kind::Path,
        default: "",
        doc: "A directory of scripts NAME.sieve that include :global \"NAME\" reads\n(RFC 6609). Empty: none.",
    },
    Key {
        name: "sieve.time_zone",
        kind: Kind::Str,
        default: "",
        doc: "The zone of currentdate and date without :zone (RFC 5260): empty or\n\"local\" for the server's zone (TZ, /etc/localtime), \"UTC\", or +HHMM.",
    },
];
