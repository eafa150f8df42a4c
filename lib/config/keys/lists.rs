//! `[lists]`: mailing lists (kmp-local distributes posts; the records are
//! made with `kmpctl list`).
use super::{Key, Kind};

pub const KEYS: &[Key] = &[
    Key {
        name: "lists.web_url",
        kind: Kind::Str,
        default: "",
        doc: "The https URL of the webmail that serves lists' one-click unsubscription\n(RFC 8058) and archives; lists' List-Unsubscribe, List-Unsubscribe-Post and\nList-Archive header fields name it. Empty: mailto: addresses only.",
    },
    Key {
        name: "lists.verp",
        kind: Kind::Bool,
        default: "true",
        doc: "Send each remote member its own copy with the return path\nLIST-bounce-USER=DOMAIN@LISTDOMAIN, so a bounce names the member. false:\none copy per remote domain, returning to LIST-owner@.",
    },
    Key {
        name: "lists.dmarc_rewrite",
        kind: Kind::Enum(&["auto", "always", "never"]),
        default: "auto",
        doc: "Send a post as from the list (From: \"Name via LIST\" <LIST@DOMAIN>, the\noriginal From in Reply-To, or Cc per the list's dmarc_original), as Mailman\ndoes: auto when the poster's domain publishes a DMARC policy of reject or\nquarantine (looked up through auth.dns_servers; a DNS failure counts as\nstrict), always, or never.",
    },
];
