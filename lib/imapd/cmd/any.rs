//! CAPABILITY, ID (RFC 2971), ENABLE (RFC 5161), NAMESPACE (RFC 2342).

use crate::imapd::session::{Action, Out, Session, State};

/// The capability list for the session's state (RFC 3501 6.1.1).
pub fn capabilities(s: &Session) -> String {
    let mut c = vec![
        "IMAP4rev1",
        "IMAP4rev2",
        "LITERAL+",
        "SASL-IR",
        "ID",
        "ENABLE",
        "IDLE",
    ];
    match s.state {
        State::NotAuthenticated => {
            if s.settings.tls_available && !s.tls {
                c.push("STARTTLS");
            }
            if s.login_allowed() {
                c.push("AUTH=PLAIN");
            } else {
                c.push("LOGINDISABLED");
            }
        }
        _ => c.extend([
            "NAMESPACE",
            "UIDPLUS",
            "MOVE",
            "UNSELECT",
            "CHILDREN",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "SPECIAL-USE",
            "CREATE-SPECIAL-USE",
            "QUOTA",
            "QUOTA=RES-STORAGE",
            "QUOTA=RES-MESSAGE",
            "ESEARCH",
            "SORT",
            "SORT=DISPLAY",
            "THREAD=ORDEREDSUBJECT",
            "THREAD=REFERENCES",
            "ESORT",
            "SEARCHRES",
            "PARTIAL",
            "CONTEXT=SEARCH",
            "CONTEXT=SORT",
            "STATUS=SIZE",
            "CONDSTORE",
            "BINARY",
            "UTF8=ACCEPT",
        ]),
    }
    c.join(" ")
}

pub fn capability(s: &mut Session, tag: &str, out: &mut Out) -> Action {
    out.line(&format!("* CAPABILITY {}", capabilities(s)));
    out.line(&format!("{tag} OK CAPABILITY completed"));
    Action::None
}

pub fn id(_s: &mut Session, tag: &str, out: &mut Out) -> Action {
    out.line("* ID (\"name\" \"kmp-imapd\" \"vendor\" \"Kmpromail\")");
    out.line(&format!("{tag} OK ID completed"));
    Action::None
}

pub fn enable(s: &mut Session, tag: &str, caps: &[String], out: &mut Out) -> Action {
    let mut on = Vec::new();
    for c in caps {
        match c.as_str() {
            "IMAP4REV2" if !s.enabled.rev2 => {
                s.enabled.rev2 = true;
                s.enabled.utf8 = true;
                on.push("IMAP4rev2");
            }
            "UTF8=ACCEPT" if !s.enabled.utf8 => {
                s.enabled.utf8 = true;
                on.push("UTF8=ACCEPT");
            }
            "CONDSTORE" if !s.enabled.condstore => {
                s.enabled.condstore = true;
                on.push("CONDSTORE");
            }
            _ => {}
        }
    }
    out.line(format!("* ENABLED {}", on.join(" ")).trim_end());
    out.line(&format!("{tag} OK ENABLE completed"));
    Action::None
}

pub fn namespace(_s: &mut Session, tag: &str, out: &mut Out) -> Action {
    out.line("* NAMESPACE ((\"\" \".\")) NIL NIL");
    out.line(&format!("{tag} OK NAMESPACE completed"));
    Action::None
}
