//! The webmail's one IMAP connection per request, through `crate::imapc`.
//!
//! Before logging in, the webmail names the browser with ID
//! (`x-originating-ip`, `x-originating-port`, RFC 2971): kmp-imapd honours
//! it from `imapd.trusted_networks`, so its logs, per-address limits and
//! kmp-authd's failure counts and bans see the browser, not the web server.

use crate::imapc::{Client, Endpoint, Error, Security};

use super::request::Request;
use super::settings::Settings;
use super::state::{SessionList, PREFS_ENTRY, SESSIONS_ENTRY};

/// The endpoint of `webmail.imap`.
pub fn endpoint(s: &Settings) -> Endpoint {
    Endpoint {
        host: s.imap.host.clone(),
        port: s.imap.port,
        security: match s.imap.security.as_str() {
            "plain" => Security::Plain,
            "tls" => Security::Tls,
            _ => Security::StartTls,
        },
        ca_file: s.imap_ca_file.clone(),
        timeout: s.imap_timeout,
    }
}

/// Connects, names the browser, and logs in as `user`.
pub fn login(s: &Settings, req: &Request, user: &str, password: &str) -> Result<Client, Error> {
    let mut c = Client::connect(&endpoint(s))?;
    let ip = req.remote_addr.map(|a| a.to_string()).unwrap_or_default();
    let port = req.remote_port.map(|p| p.to_string()).unwrap_or_default();
    let mut fields = vec![("name", "kmp-webmail")];
    if !ip.is_empty() {
        fields.push(("x-originating-ip", ip.as_str()));
    }
    if !port.is_empty() {
        fields.push(("x-originating-port", port.as_str()));
    }
    if c.has("ID") {
        // A server that refuses ID still serves; only its logs lose the browser.
        match c.id(&fields) {
            Ok(()) | Err(Error::No(_)) | Err(Error::Bad(_)) => {}
            Err(e) => return Err(e),
        }
    }
    c.login(user, password)?;
    Ok(c)
}

/// The user's session list and settings, in one GETMETADATA.
pub fn read_state(c: &mut Client) -> Result<(SessionList, Option<Vec<u8>>), Error> {
    let entries = c.get_metadata("", &[SESSIONS_ENTRY, PREFS_ENTRY])?;
    let mut sessions = SessionList::default();
    let mut prefs = None;
    for (name, value) in entries {
        if name.eq_ignore_ascii_case(SESSIONS_ENTRY) {
            sessions = SessionList::parse(value.as_deref());
        } else if name.eq_ignore_ascii_case(PREFS_ENTRY) {
            prefs = value;
        }
    }
    Ok((sessions, prefs))
}

/// Writes the session list.
pub fn write_sessions(c: &mut Client, list: &SessionList) -> Result<(), Error> {
    let text = list.to_text();
    let value = (!text.is_empty()).then_some(text.as_bytes());
    c.set_metadata("", &[(SESSIONS_ENTRY, value)])
}

/// Writes the settings.
pub fn write_prefs(c: &mut Client, text: &str) -> Result<(), Error> {
    c.set_metadata("", &[(PREFS_ENTRY, Some(text.as_bytes()))])
}
