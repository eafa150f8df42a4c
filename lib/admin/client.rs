//! A small blocking HTTPS client of kmp-admind's JSON API (std::net and
//! rustls, as `imapc`): one connection per request, `Connection: close`,
//! JSON in and out. `kmpctl --remote` and the webmail's administration
//! pages both use it; each maps an [`ApiFailure`] to its own kind of error
//! (an exit code, a page).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

/// The system's CA certificates, when no CA file is named.
pub const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The largest answer read.
const MAX_ANSWER: u64 = 64 << 20;
/// The port when a URL names none.
pub const DEFAULT_PORT: u16 = 844;

/// Why a call did not give a 200 answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiFailure {
    /// The URL or CA file is wrong: nothing was sent.
    Setup(String),
    /// kmp-admind could not be reached, or the connection broke.
    Unavailable(String),
    /// Something that is not an HTTP answer came back.
    Protocol(String),
    /// kmp-admind answered with this status and message.
    Status(u16, String),
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiFailure::Setup(m) | ApiFailure::Unavailable(m) | ApiFailure::Protocol(m) => {
                f.write_str(m)
            }
            ApiFailure::Status(_, m) => f.write_str(m),
        }
    }
}

/// A client of one kmp-admind, with the session token once logged in.
#[derive(Clone)]
pub struct Client {
    host: String,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
    /// The bearer token sent with every call (empty: none).
    pub token: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client({}:{})", self.host, self.port)
    }
}

impl Client {
    /// A client of `url` (`https://host[:port][/]`) checking its certificate
    /// against the PEM certificates in `ca_file`.
    pub fn new(url: &str, ca_file: &Path) -> Result<Client, ApiFailure> {
        let (host, port) = parse_url(url).map_err(ApiFailure::Setup)?;
        Ok(Client {
            host,
            port,
            tls: client_config(ca_file).map_err(ApiFailure::Setup)?,
            timeout: Duration::from_secs(120),
            token: String::new(),
        })
    }

    /// The longest wait for an answer (120 s unless set).
    pub fn with_timeout(mut self, t: Duration) -> Client {
        self.timeout = t;
        self
    }

    /// `host:port`, for messages.
    pub fn peer(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Logs in with a mail login; the token is kept for later calls and
    /// returned.
    pub fn login(&mut self, user: &str, password: &str) -> Result<String, ApiFailure> {
        self.token.clear();
        let v = self.call(
            "POST",
            "/v1/login",
            Some(&json!({"user": user, "password": password})),
        )?;
        self.token = v["token"].as_str().unwrap_or_default().to_string();
        if self.token.is_empty() {
            return Err(ApiFailure::Protocol(format!(
                "kmp-admind at {} gave no token",
                self.peer()
            )));
        }
        Ok(self.token.clone())
    }

    /// Ends the session; errors are ignored (the token expires anyway).
    pub fn logout(&mut self) {
        if !self.token.is_empty() {
            let _ = self.call("POST", "/v1/logout", None);
            self.token.clear();
        }
    }

    /// One request; a 200 answer's JSON, else why not.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiFailure> {
        let peer = self.peer();
        let unavailable = |e: String| ApiFailure::Unavailable(format!("kmp-admind at {peer} {e}"));
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| unavailable(format!("cannot be found: {e}")))?
            .next()
            .ok_or_else(|| unavailable("has no address".into()))?;
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(30))
            .map_err(|e| unavailable(format!("cannot be reached: {e}")))?;
        let _ = tcp.set_read_timeout(Some(self.timeout));
        let _ = tcp.set_write_timeout(Some(self.timeout));
        // A request is a few small TLS records: without this, Nagle's
        // algorithm held one back until the server's delayed ACK (40 ms).
        let _ = tcp.set_nodelay(true);
        let name = rustls::pki_types::ServerName::try_from(self.host.clone())
            .map_err(|e| ApiFailure::Setup(format!("{}: {e}", self.host)))?;
        let conn = rustls::ClientConnection::new(self.tls.clone(), name)
            .map_err(|e| unavailable(format!("TLS: {e}")))?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        if !body.is_empty() {
            head.push_str("Content-Type: application/json\r\n");
        }
        if !self.token.is_empty() {
            head.push_str(&format!("Authorization: Bearer {}\r\n", self.token));
        }
        head.push_str("\r\n");
        // Head and body in one TLS record.
        head.push_str(&body);
        s.write_all(head.as_bytes())
            .and_then(|_| s.flush())
            .map_err(|e| unavailable(format!("TLS or network error: {e}")))?;
        let mut answer = Vec::new();
        let r = (&mut s).take(MAX_ANSWER).read_to_end(&mut answer);
        // A peer that closes without close_notify still sent its whole answer.
        if let Err(e) = r {
            if answer.is_empty() {
                return Err(unavailable(format!("TLS or network error: {e}")));
            }
        }
        let (status, json) = parse_answer(&answer)
            .ok_or_else(|| ApiFailure::Protocol("kmp-admind sent no HTTP answer".into()))?;
        if status == 200 {
            return Ok(json);
        }
        let message = json["error"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("kmp-admind answered {status}"));
        Err(ApiFailure::Status(status, message))
    }
}

/// A path segment, percent-encoded where needed (`@` and `+` stay).
pub fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@' | b'+') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `https://host[:port][/]`; the port is 844 when not given.
pub fn parse_url(url: &str) -> Result<(String, u16), String> {
    let bad = |why: &str| format!("{url:?}: {why}");
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| bad("only https:// URLs are accepted"))?;
    let hostport = rest.strip_suffix('/').unwrap_or(rest);
    if hostport.contains(['/', '?', '#', '@']) || hostport.is_empty() {
        return Err(bad("give https://host:port only"));
    }
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        let (h, p) = h.split_once(']').ok_or_else(|| bad("an unclosed ["))?;
        (h.to_string(), p.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| bad("a bad port"))?,
        None => DEFAULT_PORT,
    };
    Ok((host, port))
}

/// The status and JSON body of an HTTP/1.1 answer read to its end.
fn parse_answer(a: &[u8]) -> Option<(u16, Value)> {
    let end = a.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&a[..end]).ok()?;
    let status = head.split(' ').nth(1)?.parse::<u16>().ok()?;
    let mut body = &a[end + 4..];
    if let Some(n) = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())
            .flatten()
    }) {
        body = &body[..n.min(body.len())];
    }
    Some((status, serde_json::from_slice(body).unwrap_or(Value::Null)))
}

fn client_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let err = |e: String| format!("{}: {e}", ca_file.display());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca_file)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| err(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(err("no usable certificate".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_answers_and_segments() {
        assert_eq!(
            parse_url("https://mx.example:8844/").unwrap(),
            ("mx.example".into(), 8844)
        );
        assert_eq!(parse_url("https://[::1]:9").unwrap(), ("::1".into(), 9));
        assert_eq!(parse_url("https://mx.example").unwrap().1, 844);
        assert!(parse_url("http://mx.example").is_err());
        assert!(parse_url("https://mx.example/v1").is_err());
        assert!(parse_url("https://u@mx.example").is_err());
        let (s, v) = parse_answer(
            b"HTTP/1.1 409 Conflict\r\ncontent-length: 15\r\n\r\n{\"error\":\"no\"}\ngarbage",
        )
        .unwrap();
        assert_eq!(s, 409);
        assert_eq!(v["error"], "no");
        assert!(parse_answer(b"garbage").is_none());
        assert_eq!(seg("@a.example"), "@a.example");
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
    }
}
