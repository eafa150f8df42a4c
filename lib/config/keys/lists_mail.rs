//! `[lists]`, the mail side: confirmation cookies, requests by mail,
//! bounces and digests (read by kmp-local; see lib/lists/).
use super::{Key, Kind};

pub const KEYS: &[Key] = &[
    Key {
        name: "lists.cookie_key_file",
        kind: Kind::Path,
        default: "/etc/kmpromail/lists.key",
        doc: "32 random bytes that sign the confirmation cookies of mailing lists\n(subscription, unsubscription, moderation, one-click unsubscribe).\nMade by kmpctl init and kmpctl setup; mode 0600, owned by vmail.\nReplacing it voids every cookie sent out.",
    },
    Key {
        name: "lists.confirm_lifetime",
        kind: Kind::Duration { min: 3600, max: 90 * 86400 },
        default: "7d",
        doc: "How long a confirmation request (subscribe, unsubscribe, owner approval,\nmoderation of a held post) can be answered.",
    },
    Key {
        name: "lists.unsubscribe_link_lifetime",
        kind: Kind::Duration { min: 86400, max: 3650 * 86400 },
        default: "90d",
        doc: "How long the one-click unsubscribe link (RFC 8058) in a list post works.",
    },
    Key {
        name: "lists.confirm_limit",
        kind: Kind::Int { min: 1, max: 1000 },
        default: "3",
        doc: "Most confirmation requests one list sends to one address in a day;\nfurther requests for that address are logged and dropped.",
    },
    Key {
        name: "lists.bounce_warn_days",
        kind: Kind::Int { min: 1, max: 365 },
        default: "3",
        doc: "Days on which a member's address bounced before the list sends it a\nwarning probe.",
    },
    Key {
        name: "lists.bounce_remove_days",
        kind: Kind::Int { min: 1, max: 365 },
        default: "3",
        doc: "After the warning, days of further bounces before the member is removed.\nA bounce of the warning probe itself removes the member at once.",
    },
    Key {
        name: "lists.bounce_forget",
        kind: Kind::Duration { min: 86400, max: 365 * 86400 },
        default: "21d",
        doc: "A member whose address has not bounced for this long starts afresh.",
    },
    Key {
        name: "lists.digest_plain",
        kind: Kind::Bool,
        default: "false",
        doc: "Send digests as RFC 1153 plain text instead of MIME (multipart/digest).\nWhen a digest goes out is each list's option (kmpctl list set).",
    },
    Key {
        name: "lists.texts_dir",
        kind: Kind::Path,
        default: "/usr/local/share/kmpromail/lists",
        doc: "The texts lists send (confirmation requests, welcome, goodbye, help,\nwarnings): one directory per language (en, zh-CN ...) of files an admin\nmay edit.",
    },
];
