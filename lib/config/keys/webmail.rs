//! `[webmail]`: settings of kmp-webmail, the CGI program. It reaches the
//! core only through the addresses here, so it may run on another host.
use super::{Key, Kind};

pub const KEYS: &[Key] = &[
    Key {
        name: "webmail.imap",
        kind: Kind::Str,
        default: "127.0.0.1:143",
        doc: "The IMAP server (host:port) the webmail logs users in to.",
    },
    Key {
        name: "webmail.imap_security",
        kind: Kind::Enum(&["plain", "starttls", "tls"]),
        default: "starttls",
        doc: "How the webmail talks to webmail.imap: plain (only on the loopback\nor a private link), starttls, or tls (implicit TLS, port 993).",
    },
    Key {
        name: "webmail.imap_ca_file",
        kind: Kind::Path,
        default: "",
        doc: "The CA certificates (PEM) the IMAP server's certificate is checked\nagainst. Empty: the system's (/etc/ssl/certs/ca-certificates.crt).",
    },
    Key {
        name: "webmail.imap_timeout",
        kind: Kind::Duration { min: 1, max: 600 },
        default: "30s",
        doc: "Longest wait for the IMAP server during one request.",
    },
    Key {
        name: "webmail.submission",
        kind: Kind::Str,
        default: "127.0.0.1:587",
        doc: "The submission server (host:port) mail written in the webmail is sent\nthrough.",
    },
    Key {
        name: "webmail.submission_security",
        kind: Kind::Enum(&["plain", "starttls", "tls"]),
        default: "starttls",
        doc: "How the webmail talks to webmail.submission (as webmail.imap_security).",
    },
    Key {
        name: "webmail.managesieve",
        kind: Kind::Str,
        default: "127.0.0.1:4190",
        doc: "The ManageSieve server (host:port, kmp-sieved) the rule editor reads\nand writes users' Sieve scripts through.",
    },
    Key {
        name: "webmail.managesieve_security",
        kind: Kind::Enum(&["plain", "starttls", "tls"]),
        default: "starttls",
        doc: "How the webmail talks to webmail.managesieve (as webmail.imap_security).",
    },
    Key {
        name: "webmail.admind",
        kind: Kind::Str,
        default: "",
        doc: "kmp-admind's URL (https://host:port) for the administration pages\n(postmasters, list owners, fetch accounts, sign-up); empty: those pages\nare off.",
    },
    Key {
        name: "webmail.admind_ca_file",
        kind: Kind::Str,
        default: "",
        doc: "The CA certificates (PEM) kmp-admind's certificate is checked against;\nempty: the system's.",
    },
    Key {
        name: "webmail.lists_smtp",
        kind: Kind::Str,
        default: "127.0.0.1:25",
        doc: "The SMTP server (host:port, port 25 of kmp-smtpd) a one-click\nunsubscribe (RFC 8058) is passed on to, as a mail to the list's confirm\naddress; no login.",
    },
    Key {
        name: "webmail.lists_smtp_security",
        kind: Kind::Enum(&["plain", "starttls", "tls"]),
        default: "starttls",
        doc: "How the webmail talks to webmail.lists_smtp (as webmail.imap_security).",
    },
    Key {
        name: "webmail.key_file",
        kind: Kind::Path,
        default: "/etc/kmpromail/webmail.key",
        doc: "32 random bytes that seal session cookies and sign forms (CSRF).\nMade by kmpctl init and kmpctl setup; mode 0640, readable by the web\nserver's user only. Replacing it ends every session.",
    },
    Key {
        name: "webmail.skins_dir",
        kind: Kind::Path,
        default: "/usr/local/share/kmpromail/webmail/skins",
        doc: "Skins: one directory of templates and a style sheet each; `default`\nmust be there, and other skins fall back to it file by file.",
    },
    Key {
        name: "webmail.lang_dir",
        kind: Kind::Path,
        default: "/usr/local/share/kmpromail/webmail/lang",
        doc: "Languages: one TOML file of strings each (en.toml, zh-CN.toml,\nzh-TW.toml ...).",
    },
    Key {
        name: "webmail.session_lifetime",
        kind: Kind::Duration { min: 300, max: 30 * 86400 },
        default: "8h",
        doc: "How long a webmail session lasts without use; each request extends it.",
    },
    Key {
        name: "webmail.max_request_size",
        kind: Kind::Size { min: 64 << 10, max: 1 << 30 },
        default: "32M",
        doc: "Largest request body (a form with attachments); a larger one is\nrefused with 413 before it is read.",
    },
    Key {
        name: "webmail.max_attachment_size",
        kind: Kind::Size { min: 0, max: 1 << 30 },
        default: "0",
        doc: "Most bytes of attachments one message written in the webmail may\ncarry, shown on the compose page and checked before an upload. 0: what\nsmtpd.max_message_size leaves once base64 has grown the files by a\nthird. Never more than webmail.max_request_size allows.",
    },
    Key {
        name: "webmail.allow",
        kind: Kind::Nets,
        default: "",
        doc: "Browsers' networks that may use the webmail. Empty: every address\nnot in webmail.deny.",
    },
    Key {
        name: "webmail.deny",
        kind: Kind::Nets,
        default: "",
        doc: "Browsers' networks refused (403), whatever webmail.allow says.",
    },
    Key {
        name: "webmail.page_size",
        kind: Kind::Int { min: 5, max: 500 },
        default: "25",
        doc: "Messages per page of the message list until a user chooses.",
    },
];
