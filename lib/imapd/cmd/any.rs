//! CAPABILITY, ID (RFC 2971), ENABLE (RFC 5161), NAMESPACE (RFC 2342).

use crate::imapd::session::{Action, Out, Session, State};
use crate::proto::imap::response::{Data, Response};

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
            "QRESYNC",
            "NOTIFY",
            "METADATA",
            "METADATA-SERVER",
            "BINARY",
            "UTF8=ACCEPT",
            "MULTIAPPEND",
            "CATENATE",
            "URLAUTH",
            "URLAUTH=BINARY",
        ]),
    }
    c.join(" ")
}

pub fn capability(s: &mut Session, tag: &str, out: &mut Out) -> Action {
    let caps = capabilities(s);
    out.send(Response::Data(Data::Capability(&caps)));
    out.send(Response::ok(tag, "CAPABILITY completed"));
    Action::None
}

/// ID (RFC 2971). Before login, from a trusted front end, the fields
/// `x-originating-ip` and `x-originating-port` name the client it serves
/// (as Dovecot's login_trusted_networks): the server then treats the
/// session as that client's. From anyone else they change nothing. A
/// trusted front end whose `name` is `kmp-webmail` is the webmail: its
/// logins count as service `webmail` (which needs `imap` too).
pub fn id(
    s: &mut Session,
    tag: &str,
    fields: Option<&[(String, Option<String>)]>,
    out: &mut Out,
) -> Action {
    out.send(Response::Data(Data::Id(vec![
        ("name", "kmp-imapd"),
        ("vendor", "Kmpromail"),
    ])));
    out.send(Response::ok(tag, "ID completed"));
    if !s.trusted || !matches!(s.state, State::NotAuthenticated) {
        return Action::None;
    }
    let field = |name: &str| {
        fields?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_deref())
    };
    let Some(ip) = field("x-originating-ip").and_then(parse_ip) else {
        return Action::None;
    };
    let port = field("x-originating-port").and_then(|p| p.trim().parse::<u16>().ok());
    let webmail = field("name").is_some_and(|n| n.trim().eq_ignore_ascii_case("kmp-webmail"));
    Action::Forwarded { ip, port, webmail }
}

/// An address as front ends write it: `192.0.2.7`, `2001:db8::7`, `[2001:db8::7]`.
fn parse_ip(v: &str) -> Option<std::net::IpAddr> {
    let v = v.trim();
    let v = v
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(v);
    v.parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| ip.to_canonical())
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
                super::select::enable_condstore(s, out);
                on.push("CONDSTORE");
            }
            // QRESYNC implies CONDSTORE (RFC 7162 3.2.3).
            "QRESYNC" if !s.enabled.qresync => {
                s.enabled.qresync = true;
                super::select::enable_condstore(s, out);
                on.push("QRESYNC");
            }
            _ => {}
        }
    }
    // Names in this command's answers and the next ones follow it.
    out.wire = s.wire();
    out.send(Response::Data(Data::Enabled(on)));
    out.send(Response::ok(tag, "ENABLE completed"));
    Action::None
}

pub fn namespace(_s: &mut Session, tag: &str, out: &mut Out) -> Action {
    out.send(Response::Data(Data::Namespace { prefix: "" }));
    out.send(Response::ok(tag, "NAMESPACE completed"));
    Action::None
}
