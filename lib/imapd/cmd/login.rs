//! STARTTLS (RFC 3501 6.2.1), LOGIN (6.2.3), AUTHENTICATE PLAIN (6.2.2,
//! RFC 4616) with SASL-IR (RFC 4959). Credentials are checked by kmp-authd:
//! the handler returns [`Action::Login`] and the server finishes.

use base64::Engine;

use crate::imapd::session::{Action, Out, Session};

pub fn starttls(s: &mut Session, tag: &str, out: &mut Out) -> Action {
    if s.tls || !s.settings.tls_available {
        out.line(&format!("{tag} BAD TLS is not available here"));
        return Action::None;
    }
    out.line(&format!("{tag} OK Begin TLS negotiation now"));
    Action::StartTls
}

pub fn login(
    s: &mut Session,
    tag: String,
    user: Vec<u8>,
    password: Vec<u8>,
    out: &mut Out,
) -> Action {
    if !s.login_allowed() {
        out.line(&format!("{tag} NO [PRIVACYREQUIRED] Use STARTTLS first"));
        return Action::None;
    }
    match (String::from_utf8(user), String::from_utf8(password)) {
        (Ok(user), Ok(password)) => Action::Login {
            tag,
            user,
            password,
        },
        _ => {
            out.line(&format!(
                "{tag} NO [AUTHENTICATIONFAILED] Invalid credentials"
            ));
            Action::None
        }
    }
}

pub fn authenticate(
    s: &mut Session,
    tag: String,
    mechanism: &str,
    initial: Option<Vec<u8>>,
    out: &mut Out,
) -> Action {
    if mechanism != "PLAIN" {
        out.line(&format!("{tag} NO [CANNOT] Unsupported mechanism"));
        return Action::None;
    }
    if !s.login_allowed() {
        out.line(&format!("{tag} NO [PRIVACYREQUIRED] Use STARTTLS first"));
        return Action::None;
    }
    match initial {
        Some(ir) => sasl_plain(s, tag, &ir, out),
        None => {
            s.sasl_tag = Some(tag);
            Action::SaslContinue
        }
    }
}

/// Decodes a PLAIN response: `authzid NUL authcid NUL password`.
pub fn sasl_plain(_s: &mut Session, tag: String, line: &[u8], out: &mut Out) -> Action {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line == b"*" {
        out.line(&format!("{tag} BAD Authentication cancelled"));
        return Action::None;
    }
    let raw = if line == b"=" {
        Vec::new()
    } else {
        match base64::engine::general_purpose::STANDARD.decode(line) {
            Ok(r) => r,
            Err(_) => {
                out.line(&format!("{tag} BAD Invalid base64"));
                return Action::None;
            }
        }
    };
    let parts: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
    if parts.len() != 3 {
        out.line(&format!(
            "{tag} NO [AUTHENTICATIONFAILED] Invalid credentials"
        ));
        return Action::None;
    }
    let (authz, user, pass) = (parts[0], parts[1], parts[2]);
    if !authz.is_empty() && authz != user {
        out.line(&format!(
            "{tag} NO [AUTHORIZATIONFAILED] Cannot act as another user"
        ));
        return Action::None;
    }
    match (std::str::from_utf8(user), std::str::from_utf8(pass)) {
        (Ok(u), Ok(p)) => Action::Login {
            tag,
            user: u.to_string(),
            password: p.to_string(),
        },
        _ => {
            out.line(&format!(
                "{tag} NO [AUTHENTICATIONFAILED] Invalid credentials"
            ));
            Action::None
        }
    }
}
