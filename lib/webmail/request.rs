//! The CGI request (RFC 3875): the environment and the body, parsed into a
//! typed [`Request`] with every size capped. Pure apart from the reader it
//! is given; `bin/kmp-webmail.rs` hands it the real environment and stdin.
//!
//! Bodies: `application/x-www-form-urlencoded` and `multipart/form-data`
//! (see [`super::multipart`]). A body longer than `webmail.max_request_size`
//! is refused from its CONTENT_LENGTH before a byte of it is read.

use std::io::Read;
use std::net::IpAddr;

use super::multipart::{self, Upload};

/// Most form fields (and query parameters) in one request.
pub const MAX_FIELDS: usize = 1000;
/// Longest query string, in bytes.
pub const MAX_QUERY: usize = 8192;
/// Longest Cookie header, in bytes.
pub const MAX_COOKIE: usize = 8192;
/// Longest PATH_INFO, in bytes.
pub const MAX_PATH: usize = 1024;

/// The request method. Only GET (and HEAD, answered as GET) and POST are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Other(String),
}

/// Why a request could not be parsed. Each maps to a status and an error page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The body (CONTENT_LENGTH) is over `webmail.max_request_size`: 413.
    TooLarge,
    /// Malformed: bad percent-encoding, not UTF-8, a broken multipart body,
    /// too many fields, an over-long path or query: 400.
    Bad(&'static str),
    /// A body type the webmail does not take: 415.
    UnsupportedType,
    /// The body could not be read (the server closed stdin early): 400.
    Io,
}

impl RequestError {
    /// The HTTP status for the error page.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::TooLarge => 413,
            RequestError::UnsupportedType => 415,
            RequestError::Bad(_) | RequestError::Io => 400,
        }
    }
}

/// A parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// PATH_INFO, `/` when empty; never contains NUL or control characters.
    pub path: String,
    /// The URL prefix of every link: SCRIPT_NAME when the request came in
    /// under it, empty when the server maps `/` to the webmail (a rewrite).
    pub base: String,
    pub query: Vec<(String, String)>,
    /// Form fields of a POST body (both body types).
    pub form: Vec<(String, String)>,
    /// Files of a multipart body.
    pub uploads: Vec<Upload>,
    pub cookies: Vec<(String, String)>,
    pub remote_addr: Option<IpAddr>,
    pub remote_port: Option<u16>,
    /// The request came over TLS (HTTPS=on).
    pub https: bool,
    /// HTTP_HOST, when it is a plausible host name.
    pub host: Option<String>,
    pub accept_language: String,
}

impl Request {
    /// Parses a request from `env` (a lookup of CGI variables) and `body`,
    /// reading at most `max_body` bytes (a longer CONTENT_LENGTH is refused
    /// without reading).
    pub fn parse(
        env: &dyn Fn(&str) -> Option<String>,
        body: &mut dyn Read,
        max_body: u64,
    ) -> Result<Request, RequestError> {
        let method = match env("REQUEST_METHOD").as_deref() {
            Some("GET") | None => Method::Get,
            Some("HEAD") => Method::Head,
            Some("POST") => Method::Post,
            Some(m) => Method::Other(m.chars().take(16).collect()),
        };
        let mut path = env("PATH_INFO").unwrap_or_default();
        if path.len() > MAX_PATH || path.chars().any(|c| c.is_control()) {
            return Err(RequestError::Bad("path"));
        }
        if path.is_empty() {
            path = "/".into();
        }
        let script = env("SCRIPT_NAME").unwrap_or_default();
        let uri = env("REQUEST_URI").unwrap_or_default();
        let base = script_base(&script, &uri);
        let qs = env("QUERY_STRING").unwrap_or_default();
        if qs.len() > MAX_QUERY {
            return Err(RequestError::Bad("query string too long"));
        }
        let query = parse_urlencoded(qs.as_bytes())?;
        let cookie = env("HTTP_COOKIE").unwrap_or_default();
        if cookie.len() > MAX_COOKIE {
            return Err(RequestError::Bad("cookie header too long"));
        }
        let cookies = parse_cookies(&cookie);
        let remote_addr = env("REMOTE_ADDR").and_then(|a| a.trim().parse().ok());
        let remote_port = env("REMOTE_PORT").and_then(|p| p.trim().parse().ok());
        let https = env("HTTPS").is_some_and(|v| v.eq_ignore_ascii_case("on") || v == "1");
        let host = env("HTTP_HOST").filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        });
        let accept_language = env("HTTP_ACCEPT_LANGUAGE")
            .unwrap_or_default()
            .chars()
            .take(512)
            .collect();
        let mut req = Request {
            method,
            path,
            base,
            query,
            form: Vec::new(),
            uploads: Vec::new(),
            cookies,
            remote_addr,
            remote_port,
            https,
            host,
            accept_language,
        };
        let length: u64 = match env("CONTENT_LENGTH").as_deref().map(str::trim) {
            None | Some("") => 0,
            Some(n) => n.parse().map_err(|_| RequestError::Bad("content length"))?,
        };
        if length > max_body {
            return Err(RequestError::TooLarge);
        }
        if req.method != Method::Post || length == 0 {
            return Ok(req);
        }
        let ctype = env("CONTENT_TYPE").unwrap_or_default();
        let mut limited = body.take(length);
        let (mime, params) = split_content_type(&ctype);
        match mime.as_str() {
            "application/x-www-form-urlencoded" => {
                let mut buf = Vec::with_capacity(length as usize);
                limited
                    .read_to_end(&mut buf)
                    .map_err(|_| RequestError::Io)?;
                if (buf.len() as u64) < length {
                    return Err(RequestError::Io);
                }
                req.form = parse_urlencoded(&buf)?;
            }
            "multipart/form-data" => {
                let boundary = params
                    .iter()
                    .find(|(k, _)| k == "boundary")
                    .map(|(_, v)| v.clone())
                    .ok_or(RequestError::Bad("multipart body without a boundary"))?;
                let mut reader = std::io::BufReader::new(limited);
                let parts =
                    multipart::parse(&mut reader, &boundary, &multipart::Limits::default())?;
                req.form = parts.fields;
                req.uploads = parts.uploads;
            }
            _ => return Err(RequestError::UnsupportedType),
        }
        Ok(req)
    }

    /// The first form field named `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        find(&self.form, name)
    }

    /// The first query parameter named `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        find(&self.query, name)
    }

    /// The cookie named `name`.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        find(&self.cookies, name)
    }

    /// Whether the request may carry a password over this connection: it
    /// came over TLS, or from the loopback (a browser on the server itself,
    /// or a TLS proxy in front of the web server on the same host).
    pub fn secure_enough(&self) -> bool {
        self.https
            || self
                .remote_addr
                .is_some_and(|a| a.is_loopback() || is_mapped_loopback(a))
    }
}

fn is_mapped_loopback(a: IpAddr) -> bool {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        IpAddr::V4(_) => false,
    }
}

fn find<'a>(list: &'a [(String, String)], name: &str) -> Option<&'a str> {
    list.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The link prefix: SCRIPT_NAME when REQUEST_URI starts with it (the
/// webmail mounted at `/webmail`), else empty (the server rewrote `/` to it).
pub fn script_base(script: &str, uri: &str) -> String {
    let script = script.trim_end_matches('/');
    if script.is_empty() || !script.starts_with('/') {
        return String::new();
    }
    match uri.strip_prefix(script) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') || rest.starts_with('?') => {
            script.to_string()
        }
        _ => String::new(),
    }
}

/// A Content-Type's media type (lower case) and parameters (names lower case,
/// quoted values unquoted).
pub fn split_content_type(ct: &str) -> (String, Vec<(String, String)>) {
    let mut parts = split_params(ct);
    let mime = if parts.is_empty() {
        String::new()
    } else {
        parts.remove(0).trim().to_ascii_lowercase()
    };
    let params = parts
        .into_iter()
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim().to_ascii_lowercase(), unquote(v.trim())))
        })
        .collect();
    (mime, params)
}

/// Splits at `;` outside quoted strings.
pub(crate) fn split_params(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ';' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

pub(crate) fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut esc = false;
            for c in inner.chars() {
                if esc || c != '\\' {
                    out.push(c);
                    esc = false;
                } else {
                    esc = true;
                }
            }
            out
        }
        None => v.to_string(),
    }
}

/// `a=1&b=x+y%20z`: pairs in order. Bad percent-encoding or a value that is
/// not UTF-8 is an error, not a guess.
pub fn parse_urlencoded(s: &[u8]) -> Result<Vec<(String, String)>, RequestError> {
    let mut out = Vec::new();
    for pair in s.split(|b| *b == b'&' || *b == b';') {
        if pair.is_empty() {
            continue;
        }
        if out.len() >= MAX_FIELDS {
            return Err(RequestError::Bad("too many fields"));
        }
        let (k, v) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        out.push((decode_component(k)?, decode_component(v)?));
    }
    Ok(out)
}

fn decode_component(s: &[u8]) -> Result<String, RequestError> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |b: u8| (b as char).to_digit(16);
                let (Some(h), Some(l)) = (
                    s.get(i + 1).copied().and_then(hex),
                    s.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(RequestError::Bad("bad percent-encoding"));
                };
                out.push((h * 16 + l) as u8);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    let text = String::from_utf8(out).map_err(|_| RequestError::Bad("a field is not UTF-8"))?;
    if text.contains('\0') {
        return Err(RequestError::Bad("a field holds NUL"));
    }
    Ok(text)
}

/// `a=1; b=2` (RFC 6265 5.4). Pairs without `=` are skipped.
pub fn parse_cookies(h: &str) -> Vec<(String, String)> {
    h.split(';')
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            Some((k.trim().to_string(), v.to_string()))
        })
        .take(64)
        .collect()
}

/// HTTP_HOST without its port: where the same site answers on the
/// default HTTPS port (`mail.example.com:80` gives `mail.example.com`).
pub fn host_without_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, p))
            if p.bytes().all(|b| b.is_ascii_digit()) && (h.ends_with(']') || !h.contains(':')) =>
        {
            h
        }
        _ => host,
    }
}

/// Percent-encodes `s` for a query string value.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn req(vars: &[(&str, &str)], body: &[u8], max: u64) -> Result<Request, RequestError> {
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut b = body;
        Request::parse(&|k: &str| env.get(k).cloned(), &mut b, max)
    }

    #[test]
    fn urlencoded_forms_decode_plus_percent_and_chinese() {
        let f = parse_urlencoded(b"a=1&name=%E6%94%B6%E4%BB%B6+box&empty=&flag").unwrap();
        assert_eq!(
            f,
            vec![
                ("a".into(), "1".into()),
                ("name".into(), "收件 box".into()),
                ("empty".into(), "".into()),
                ("flag".into(), "".into())
            ]
        );
        assert!(parse_urlencoded(b"a=%zz").is_err());
        assert!(parse_urlencoded(b"a=%E6%94").is_err(), "not UTF-8");
        assert!(parse_urlencoded(b"a=%00").is_err());
        assert!(parse_urlencoded(b"a=%4").is_err());
        let many = "a=1&".repeat(MAX_FIELDS + 1);
        assert!(parse_urlencoded(many.as_bytes()).is_err());
    }

    #[test]
    fn a_post_form_is_read_and_a_huge_one_refused_unread() {
        let r = req(
            &[
                ("REQUEST_METHOD", "POST"),
                ("PATH_INFO", "/folders/create"),
                ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
                ("CONTENT_LENGTH", "13"),
                ("HTTP_COOKIE", "kmpw=abc; other=\"x\""),
                ("REMOTE_ADDR", "127.0.0.1"),
                ("SCRIPT_NAME", "/kmp-webmail"),
                ("REQUEST_URI", "/folders/create"),
            ],
            b"name=x&csrf=tEXTRA",
            1000,
        )
        .unwrap();
        assert_eq!(r.method, Method::Post);
        assert_eq!(r.field("name"), Some("x"));
        assert_eq!(
            r.field("csrf"),
            Some("t"),
            "only CONTENT_LENGTH bytes are read"
        );
        assert_eq!(r.cookie("kmpw"), Some("abc"));
        assert_eq!(r.cookie("other"), Some("x"));
        assert_eq!(r.base, "");
        assert!(r.secure_enough());
        let big = req(
            &[("REQUEST_METHOD", "POST"), ("CONTENT_LENGTH", "1001")],
            b"",
            1000,
        );
        assert_eq!(big.unwrap_err(), RequestError::TooLarge);
        let short = req(
            &[
                ("REQUEST_METHOD", "POST"),
                ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
                ("CONTENT_LENGTH", "50"),
            ],
            b"a=1",
            1000,
        );
        assert_eq!(short.unwrap_err(), RequestError::Io);
        let odd = req(
            &[
                ("REQUEST_METHOD", "POST"),
                ("CONTENT_TYPE", "text/xml"),
                ("CONTENT_LENGTH", "3"),
            ],
            b"<a>",
            1000,
        );
        assert_eq!(odd.unwrap_err(), RequestError::UnsupportedType);
    }

    #[test]
    fn links_are_under_the_script_only_when_the_request_was() {
        assert_eq!(
            script_base("/cgi-bin/kmp-webmail", "/cgi-bin/kmp-webmail/folders?a"),
            "/cgi-bin/kmp-webmail"
        );
        assert_eq!(script_base("/kmp-webmail", "/kmp-webmail"), "/kmp-webmail");
        assert_eq!(script_base("/kmp-webmail", "/folders"), "");
        assert_eq!(script_base("/kmp-webmail", "/kmp-webmailx/y"), "");
        assert_eq!(script_base("", "/x"), "");
    }

    #[test]
    fn only_tls_or_loopback_is_secure_enough_for_a_password() {
        let at = |addr: &str, https: &str| {
            req(&[("REMOTE_ADDR", addr), ("HTTPS", https)], b"", 10)
                .unwrap()
                .secure_enough()
        };
        assert!(at("127.0.0.1", ""));
        assert!(at("::1", ""));
        assert!(at("::ffff:127.0.0.1", ""));
        assert!(!at("192.0.2.1", ""));
        assert!(!at("192.0.2.1", "off"));
        assert!(at("192.0.2.1", "on"));
    }

    #[test]
    fn control_characters_in_the_path_are_refused() {
        assert!(req(&[("PATH_INFO", "/a\nb")], b"", 10).is_err());
        assert_eq!(req(&[], b"", 10).unwrap().path, "/");
    }

    #[test]
    fn content_type_parameters_are_unquoted() {
        let (m, p) = split_content_type("Multipart/Form-Data; boundary=\"a;b\\\"c\"; x=1");
        assert_eq!(m, "multipart/form-data");
        assert_eq!(p[0], ("boundary".into(), "a;b\"c".into()));
        assert_eq!(p[1], ("x".into(), "1".into()));
        assert_eq!(url_encode("收 a/b"), "%E6%94%B6%20a%2Fb");
        assert_eq!(
            host_without_port("mail.example.com:8080"),
            "mail.example.com"
        );
        assert_eq!(host_without_port("mail.example.com"), "mail.example.com");
        assert_eq!(host_without_port("[2001:db8::1]:80"), "[2001:db8::1]");
        assert_eq!(host_without_port("[2001:db8::1]"), "[2001:db8::1]");
    }
}
