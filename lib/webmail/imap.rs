//! The webmail's one IMAP connection per request, through `crate::imapc`.
//!
//! Before logging in, the webmail names the browser with ID
//! (`x-originating-ip`, `x-originating-port`, RFC 2971): kmp-imapd honours
//! it from `imapd.trusted_networks`, so its logs, per-address limits and
//! kmp-authd's failure counts and bans see the browser, not the web server.

use crate::imapc::{Client, Endpoint, Error, Security};

use super::request::Request;
use super::settings::Settings;
use super::state::{session_entry, session_expiry, SessionList, PREFS_ENTRY, SESSIONS_ENTRY};

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

/// The expiry of session `sid` (None: not listed) and the user's settings,
/// in one GETMETADATA.
pub fn read_state(c: &mut Client, sid: &str) -> Result<(Option<u64>, Option<Vec<u8>>), Error> {
    let entry = session_entry(sid);
    let entries = c.get_metadata("", &[&entry, PREFS_ENTRY])?;
    let mut expires = None;
    let mut prefs = None;
    for (name, value) in entries {
        if name.eq_ignore_ascii_case(&entry) {
            expires = session_expiry(value.as_deref());
        } else if name.eq_ignore_ascii_case(PREFS_ENTRY) {
            prefs = value;
        }
    }
    Ok((expires, prefs))
}

/// Lists session `sid` until `expires`, or ends it (None).
pub fn write_session(c: &mut Client, sid: &str, expires: Option<u64>) -> Result<(), Error> {
    let text = expires.map(|e| e.to_string());
    c.set_metadata(
        "",
        &[(&session_entry(sid), text.as_deref().map(str::as_bytes))],
    )
}

/// Lists the new session `sid` until `expires` and, in the same
/// SETMETADATA (one durable write), removes the user's expired sessions
/// and, past the most a user keeps, the ones ending soonest (never `sid`).
pub fn start_session(c: &mut Client, sid: &str, expires: u64, now: u64) -> Result<(), Error> {
    let listed = c.get_metadata_below("", SESSIONS_ENTRY)?;
    let entry = session_entry(sid);
    let text = expires.to_string();
    let list = SessionList::from_entries(
        listed
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_deref()))
            .chain(std::iter::once((entry.as_str(), Some(text.as_bytes())))),
    );
    let stale: Vec<String> = list
        .stale(now, sid)
        .iter()
        .map(|s| session_entry(s))
        .collect();
    let mut changes: Vec<(&str, Option<&[u8]>)> = vec![(entry.as_str(), Some(text.as_bytes()))];
    changes.extend(stale.iter().map(|e| (e.as_str(), None)));
    c.set_metadata("", &changes)
}

/// Writes the settings.
pub fn write_prefs(c: &mut Client, text: &str) -> Result<(), Error> {
    c.set_metadata("", &[(PREFS_ENTRY, Some(text.as_bytes()))])
}
