//! STARTTLS (RFC 3501 6.2.1), LOGIN (6.2.3), AUTHENTICATE PLAIN (6.2.2,
//! RFC 4616) with SASL-IR (RFC 4959). Credentials are checked by kmp-authd:
//! the handler returns [`Action::Login`] and the server finishes.

use crate::imapd::session::{Action, Out, Session};
use crate::proto::imap::response::{Code, Response};
use crate::proto::sasl::{self, SaslError, Secret};

pub fn starttls(s: &mut Session, tag: &str, out: &mut Out) -> Action {
    if s.tls || !s.settings.tls_available {
        out.send(Response::bad(tag, "TLS is not available here"));
        return Action::None;
    }
    out.send(Response::ok(tag, "Begin TLS negotiation now"));
    Action::StartTls
}

pub fn login(
    s: &mut Session,
    tag: String,
    user: Vec<u8>,
    password: Secret,
    out: &mut Out,
) -> Action {
    if !s.login_allowed() {
        out.send(Response::no(
            &tag,
            Some(Code::PrivacyRequired),
            "Use STARTTLS first",
        ));
        return Action::None;
    }
    match (String::from_utf8(user), password.as_str().is_some()) {
        (Ok(user), true) => Action::Login {
            tag,
            user,
            password,
        },
        _ => {
            out.send(Response::no(
                &tag,
                Some(Code::AuthenticationFailed),
                "Invalid credentials",
            ));
            Action::None
        }
    }
}

pub fn authenticate(
    s: &mut Session,
    tag: String,
    mechanism: &str,
    initial: Option<Secret>,
    out: &mut Out,
) -> Action {
    if mechanism != "PLAIN" {
        out.send(Response::no(
            &tag,
            Some(Code::Cannot),
            "Unsupported mechanism",
        ));
        return Action::None;
    }
    if !s.login_allowed() {
        out.send(Response::no(
            &tag,
            Some(Code::PrivacyRequired),
            "Use STARTTLS first",
        ));
        return Action::None;
    }
    match initial {
        Some(ir) => sasl_plain(s, tag, ir.as_bytes(), out),
        None => {
            s.sasl_tag = Some(tag);
            Action::SaslContinue
        }
    }
}

/// Decodes a PLAIN response (the shared decoder of `proto::sasl`):
/// `authzid NUL authcid NUL password`.
pub fn sasl_plain(_s: &mut Session, tag: String, line: &[u8], out: &mut Out) -> Action {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match sasl::plain_response(line) {
        Ok(p) => Action::Login {
            tag,
            user: p.user,
            password: p.password,
        },
        // RFC 9051 6.2.2: a cancelled exchange and a response that cannot be
        // decoded are rejected with BAD.
        Err(SaslError::Cancelled) => {
            out.send(Response::bad(&tag, "Authentication cancelled"));
            Action::None
        }
        Err(SaslError::BadBase64) => {
            out.send(Response::bad(&tag, "Invalid base64"));
            Action::None
        }
        Err(SaslError::OtherIdentity) => {
            out.send(Response::no(
                &tag,
                Some(Code::AuthorizationFailed),
                "Cannot act as another user",
            ));
            Action::None
        }
        Err(SaslError::Malformed) => {
            out.send(Response::no(
                &tag,
                Some(Code::AuthenticationFailed),
                "Invalid credentials",
            ));
            Action::None
        }
    }
}
