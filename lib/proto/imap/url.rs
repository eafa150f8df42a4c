//! IMAP URLs (RFC 5092) with URLAUTH (RFC 4467), as CATENATE (RFC 4469),
//! GENURLAUTH, URLFETCH and the BURL command of submission (RFC 4468) use
//! them: a URL naming one message, or a section or partial range of it.
//!
//! No crate parses IMAP URLs (the `url` crate knows generic syntax, not
//! `;UID=`, `;SECTION=` or the URLAUTH rump), and the grammar is small.
//! Only message URLs are parsed: a URL naming a mailbox list or a search
//! is an error here, since nothing that takes a URL can use one.
//!
//! ```text
//! imap://[user[;AUTH=x]@]host[:port]/mailbox[;UIDVALIDITY=n]/;UID=n
//!        [/;SECTION=s][/;PARTIAL=a[.b]][;EXPIRE=datetime][;URLAUTH=access[:mech:token]]
//! ```
//! A relative URL (`/mailbox/;UID=n...`) has no server part. Parameter
//! names are case-insensitive; values are percent-decoded.

use super::lexer::Cursor;
use super::types::{days_from_civil, Section};

/// Longest URL accepted (RFC 4467 has none; this is ample for a mailbox
/// name, a section and a token).
pub const MAX_URL: usize = 8192;

/// A parsed IMAP message URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    /// `imap://` with a server part (required for URLAUTH).
    pub absolute: bool,
    /// The user in the server part, decoded.
    pub user: Option<String>,
    pub host: Option<String>,
    /// The mailbox name, decoded (UTF-8).
    pub mailbox: String,
    pub uidvalidity: Option<u32>,
    pub uid: u32,
    /// The section as given, decoded (`1.2`, `HEADER`, ...).
    pub section_text: Option<String>,
    pub section: Section,
    /// Offset and optional length.
    pub partial: Option<(u32, Option<u32>)>,
    /// `;EXPIRE=`: seconds since the epoch, UTC.
    pub expire: Option<i64>,
    pub urlauth: Option<UrlAuth>,
}

/// The `;URLAUTH=` part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlAuth {
    pub access: Access,
    /// Length of the rump: the URL up to and including the access
    /// identifier, which the token authorises.
    pub rump_len: usize,
    /// Mechanism and token (`:INTERNAL:91354a...`); None in a rump.
    pub verifier: Option<(String, String)>,
}

/// Who may fetch a URLAUTH URL (RFC 4467 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// `submit+user`: the submission server, for that user.
    Submit(String),
    /// `user+user`: that user, logged in.
    User(String),
    /// `authuser`: any logged-in user.
    AuthUser,
    /// `anonymous`: anyone.
    Anonymous,
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlError(pub &'static str);

impl ImapUrl {
    /// The account that owns the mailbox: the URL's user, qualified with
    /// the URL's host when it has no domain of its own.
    pub fn owner(&self) -> Option<String> {
        let user = self.user.as_deref()?;
        Some(match (user.contains('@'), &self.host) {
            (false, Some(h)) if !h.is_empty() => format!("{user}@{h}"),
            _ => user.to_string(),
        })
    }
}

/// Parses a message URL, absolute or relative.
pub fn parse(url: &[u8]) -> Result<ImapUrl, UrlError> {
    if url.len() > MAX_URL {
        return Err(UrlError("URL too long"));
    }
    let text = std::str::from_utf8(url).map_err(|_| UrlError("URL is not ASCII"))?;
    if !text.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(UrlError("URL holds spaces or control characters"));
    }
    let (absolute, user, host, path_start) = match strip_prefix_ci(text, "imap://") {
        Some(rest) => {
            let end = rest.find('/').unwrap_or(rest.len());
            let authority = &rest[..end];
            let (userinfo, hostport) = match authority.rfind('@') {
                Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
                None => (None, authority),
            };
            // ;AUTH=mech names how to log in; it does not change the user.
            let user = match userinfo {
                Some(u) => {
                    let name = u.split(';').next().unwrap_or_default();
                    Some(decode(name)?).filter(|n| !n.is_empty())
                }
                None => None,
            };
            let host = hostport.split(':').next().unwrap_or_default();
            if host.is_empty() {
                return Err(UrlError("URL has no host"));
            }
            (
                true,
                user,
                Some(host.to_ascii_lowercase()),
                "imap://".len() + end,
            )
        }
        None => (false, None, None, 0),
    };
    let path = &text[path_start..];
    let path = path
        .strip_prefix('/')
        .ok_or(UrlError("URL has no mailbox"))?;
    let semi = path.find(';').ok_or(UrlError("URL names no message"))?;
    let mailbox = decode(path[..semi].strip_suffix('/').unwrap_or(&path[..semi]))?;
    if mailbox.is_empty() {
        return Err(UrlError("URL has no mailbox"));
    }
    let mut u = ImapUrl {
        absolute,
        user,
        host,
        mailbox,
        uidvalidity: None,
        uid: 0,
        section_text: None,
        section: Section::default(),
        partial: None,
        expire: None,
        urlauth: None,
    };
    // Offsets of each parameter within `text`, for the rump length.
    let base = path_start + 1 + semi;
    let mut off = base;
    for seg in text[base..].split(';').skip(1) {
        off += 1;
        let seg_start = off;
        off += seg.len();
        if u.urlauth.is_some() {
            // RFC 4467 7: the token signs everything before it, so
            // nothing may follow it.
            return Err(UrlError("URL parameter after URLAUTH"));
        }
        let (key, value) = seg
            .split_once('=')
            .ok_or(UrlError("URL parameter without a value"))?;
        let value_trimmed = value.strip_suffix('/').unwrap_or(value);
        match key.to_ascii_lowercase().as_str() {
            "uidvalidity" if u.uid == 0 => u.uidvalidity = Some(nz(value_trimmed)?),
            "uid" if u.uid == 0 => u.uid = nz(value_trimmed)?,
            "section" if u.uid != 0 && u.section_text.is_none() => {
                let s = decode(value_trimmed)?;
                u.section = section(&s)?;
                u.section_text = Some(s);
            }
            "partial" if u.uid != 0 && u.partial.is_none() => {
                u.partial = Some(partial(value_trimmed)?)
            }
            "expire" if u.uid != 0 && u.expire.is_none() && u.urlauth.is_none() => {
                u.expire = Some(rfc3339(value)?)
            }
            "urlauth" if u.uid != 0 && u.urlauth.is_none() => {
                let (access, verifier) = match value.split_once(':') {
                    Some((a, rest)) => {
                        let (mech, token) = rest
                            .split_once(':')
                            .ok_or(UrlError("URLAUTH without a token"))?;
                        if mech.is_empty() || token.is_empty() {
                            return Err(UrlError("URLAUTH without a token"));
                        }
                        (a, Some((mech.to_ascii_uppercase(), token.to_string())))
                    }
                    None => (value, None),
                };
                let rump_len = seg_start + key.len() + 1 + access.len();
                u.urlauth = Some(UrlAuth {
                    access: parse_access(access)?,
                    rump_len,
                    verifier,
                });
            }
            _ => return Err(UrlError("Unknown or misplaced URL parameter")),
        }
    }
    if u.uid == 0 {
        return Err(UrlError("URL names no message"));
    }
    Ok(u)
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn parse_access(a: &str) -> Result<Access, UrlError> {
    let lower = a.to_ascii_lowercase();
    if let Some(u) = lower.strip_prefix("submit+") {
        let _ = u;
        return Ok(Access::Submit(decode(&a["submit+".len()..])?));
    }
    if lower.starts_with("user+") {
        return Ok(Access::User(decode(&a["user+".len()..])?));
    }
    match lower.as_str() {
        "authuser" => Ok(Access::AuthUser),
        "anonymous" => Ok(Access::Anonymous),
        _ => Err(UrlError("Unknown URLAUTH access identifier")),
    }
}

/// Percent-decoding (RFC 3986 2.1) into UTF-8.
fn decode(s: &str) -> Result<String, UrlError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: Option<&u8>| c.and_then(|c| (*c as char).to_digit(16));
            match (hex(b.get(i + 1)), hex(b.get(i + 2))) {
                (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                _ => return Err(UrlError("Bad percent-encoding in URL")),
            }
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UrlError("URL does not decode to UTF-8"))
}

/// Percent-encodes a mailbox name or user for a URL (RFC 5092 `bchar`).
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$'()*+,&=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn nz(s: &str) -> Result<u32, UrlError> {
    match s.parse::<u32>() {
        Ok(n) if n > 0 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(UrlError("Bad number in URL")),
    }
}

fn section(s: &str) -> Result<Section, UrlError> {
    let mut input = s.as_bytes().to_vec();
    input.extend_from_slice(b"]");
    let mut c = Cursor::new(&input);
    let sec = super::fetch::section(&mut c).map_err(|_| UrlError("Bad section in URL"))?;
    c.expect(b"]").map_err(|_| UrlError("Bad section in URL"))?;
    if !c.at_end() {
        return Err(UrlError("Bad section in URL"));
    }
    Ok(sec)
}

fn partial(s: &str) -> Result<(u32, Option<u32>), UrlError> {
    let num = |t: &str| {
        t.parse::<u32>()
            .ok()
            .filter(|_| t.bytes().all(|b| b.is_ascii_digit()))
            .ok_or(UrlError("Bad partial range in URL"))
    };
    match s.split_once('.') {
        Some((a, b)) => Ok((num(a)?, Some(nz(b)?))),
        None => Ok((num(s)?, None)),
    }
}

/// An RFC 3339 date-time (`2026-12-04T23:00:00Z`, `...+01:00`, fraction
/// allowed) as seconds since the epoch.
fn rfc3339(s: &str) -> Result<i64, UrlError> {
    let bad = UrlError("Bad EXPIRE date-time in URL");
    let b = s.as_bytes();
    let d = |r: std::ops::Range<usize>| -> Result<i64, UrlError> {
        let t = s.get(r).ok_or(bad.clone())?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad.clone());
        }
        t.parse().map_err(|_| bad.clone())
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return Err(bad);
    }
    let (y, mo, da) = (d(0..4)?, d(5..7)?, d(8..10)?);
    let (h, mi, se) = (d(11..13)?, d(14..16)?, d(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || se > 60 {
        return Err(bad);
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    let zone = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let z = d(i + 1..i + 3)? * 60 + d(i + 4..i + 6)?;
            if *sign == b'-' {
                -z
            } else {
                z
            }
        }
        _ => return Err(bad),
    };
    Ok(days_from_civil(y, mo as u32, da as u32) * 86_400 + h * 3600 + mi * 60 + se - zone * 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::imap::SectionText;

    #[test]
    fn message_urls() {
        let u = parse(b"/INBOX/;uid=5/;section=header").unwrap();
        assert!(!u.absolute);
        assert_eq!((u.mailbox.as_str(), u.uid), ("INBOX", 5));
        assert_eq!(u.section.text, Some(SectionText::Header));
        let u =
            parse(b"/Sent%20Items;UIDVALIDITY=77/;UID=9/;SECTION=1.2.MIME/;PARTIAL=10.20").unwrap();
        assert_eq!(u.mailbox, "Sent Items");
        assert_eq!(u.uidvalidity, Some(77));
        assert_eq!(u.section.part, vec![1, 2]);
        assert_eq!(u.section.text, Some(SectionText::Mime));
        assert_eq!(u.partial, Some((10, Some(20))));
        let u = parse(b"/x/;uid=1/;partial=100000.1").unwrap();
        assert_eq!(u.partial, Some((100000, Some(1))));
    }

    #[test]
    fn urlauth_urls() {
        let text = "imap://fred@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred:internal:91354a47";
        let u = parse(text.as_bytes()).unwrap();
        assert!(u.absolute);
        assert_eq!(u.owner().as_deref(), Some("fred@example.com"));
        let a = u.urlauth.unwrap();
        assert_eq!(a.access, Access::Submit("fred".into()));
        assert_eq!(
            &text[..a.rump_len],
            "imap://fred@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred"
        );
        assert_eq!(a.verifier, Some(("INTERNAL".into(), "91354a47".into())));
        // A rump, an address as the user, an expiry.
        let text = "imap://a%40b.example@mail.example/INBOX/;uid=1;expire=2026-12-04T23:00:00Z;urlauth=authuser";
        let u = parse(text.as_bytes()).unwrap();
        assert_eq!(u.owner().as_deref(), Some("a@b.example"));
        assert_eq!(u.expire, Some(1_796_425_200));
        let a = u.urlauth.unwrap();
        assert_eq!(a.rump_len, text.len());
        assert_eq!((a.access, a.verifier), (Access::AuthUser, None));
        assert_eq!(
            rfc3339("2026-12-05T00:00:00+01:00"),
            rfc3339("2026-12-04T23:00:00Z")
        );
    }

    #[test]
    fn malformed_urls() {
        for bad in [
            &b""[..],
            b"INBOX/;uid=1",
            b"/INBOX",
            b"/INBOX/;uid=0",
            b"/INBOX/;uid=x",
            b"/;uid=1",
            b"/INBOX/;section=1",
            b"/INBOX/;uid=1/;section=FOO",
            b"/INBOX/;uid=1/;uid=2",
            b"/INBOX/;uid=1;urlauth=nobody",
            b"/INBOX/;uid=1;urlauth=user+x:internal",
            b"/INBOX/;uid=1;urlauth=anonymous:internal:00/;section=1",
            b"/INBOX/;uid=1;urlauth=anonymous;partial=1.2",
            b"/INBOX/;uid=1;expire=yesterday;urlauth=anonymous",
            b"/IN%ZZ/;uid=1",
            b"/IN BOX/;uid=1",
            b"imap:///INBOX/;uid=1",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
