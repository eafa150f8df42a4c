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

/// What a request reads of the user's server annotations before its page.
pub struct State {
    /// The expiry of the session (None: not listed).
    pub expires: Option<u64>,
    /// The user's settings.
    pub prefs: Option<Vec<u8>>,
    /// The page's own entries (`more`), by name as asked, with their values.
    pub more: Vec<(&'static str, Option<Vec<u8>>)>,
}

/// The expiry of session `sid`, the user's settings and the entries `more`
/// the page reads, in one GETMETADATA.
pub fn read_state(c: &mut Client, sid: &str, more: &[&'static str]) -> Result<State, Error> {
    let entry = session_entry(sid);
    let mut names = vec![entry.as_str(), PREFS_ENTRY];
    names.extend_from_slice(more);
    let entries = c.get_metadata("", &names)?;
    let mut state = State {
        expires: None,
        prefs: None,
        more: more.iter().map(|m| (*m, None)).collect(),
    };
    for (name, value) in entries {
        if name.eq_ignore_ascii_case(&entry) {
            state.expires = session_expiry(value.as_deref());
        } else if name.eq_ignore_ascii_case(PREFS_ENTRY) {
            state.prefs = value;
        } else if let Some(m) = state
            .more
            .iter_mut()
            .find(|(m, _)| m.eq_ignore_ascii_case(&name))
        {
            m.1 = value;
        }
    }
    Ok(state)
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
