//! One SMTP client connection: TCP or TLS, replies read with the pure parser
//! under a deadline per reply (so a peer that trickles bytes forever still
//! times out), the server's EHLO keywords, STARTTLS (RFC 3207) and AUTH
//! PLAIN/LOGIN (RFC 4954). This is the only code in kmp-remote that touches
//! a socket to another MTA.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::reply::{Reply, ReplyError, ReplyParser};

/// What the server said it supports in its EHLO reply (RFC 5321 4.1.1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    /// Whether EHLO worked at all (else HELO was used and nothing is offered).
    pub esmtp: bool,
    pub pipelining: bool,
    /// RFC 1870 SIZE, with its limit (0: no limit given).
    pub size: Option<u64>,
    pub eight_bit_mime: bool,
    /// RFC 3030 CHUNKING: the message may go in BDAT chunks.
    pub chunking: bool,
    pub smtputf8: bool,
    pub dsn: bool,
    pub starttls: bool,
    pub enhanced_status_codes: bool,
    /// AUTH mechanisms, upper-case.
    pub auth: Vec<String>,
}

impl Extensions {
    /// Reads the keywords of an EHLO reply (its first line is the greeting).
    pub fn parse(reply: &Reply) -> Extensions {
        let mut ext = Extensions {
            esmtp: true,
            ..Extensions::default()
        };
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_whitespace();
            let Some(kw) = words.next() else { continue };
            let kw = kw.to_ascii_uppercase();
            match kw.as_str() {
                "PIPELINING" => ext.pipelining = true,
                "SIZE" => ext.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "8BITMIME" => ext.eight_bit_mime = true,
                "CHUNKING" => ext.chunking = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "DSN" => ext.dsn = true,
                "STARTTLS" => ext.starttls = true,
                "ENHANCEDSTATUSCODES" => ext.enhanced_status_codes = true,
                "AUTH" => ext.auth.extend(words.map(str::to_ascii_uppercase)),
                _ if kw.starts_with("AUTH=") => {
                    ext.auth.push(kw["AUTH=".len()..].to_string());
                    ext.auth.extend(words.map(str::to_ascii_uppercase));
                }
                _ => {}
            }
        }
        ext.auth.sort();
        ext.auth.dedup();
        ext
    }
}

/// Why the conversation broke (not a reply: those are values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnError {
    /// The connection closed or failed: the text is the system's.
    Lost(String),
    /// No (whole) reply within the time allowed.
    Timeout,
    /// The server's bytes are not SMTP.
    Protocol(ReplyError),
    /// The TLS handshake failed.
    Tls(String),
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::Lost(e) => write!(f, "lost connection ({e})"),
            ConnError::Timeout => write!(f, "conversation timed out"),
            ConnError::Protocol(e) => write!(f, "{e}"),
            ConnError::Tls(e) => write!(f, "TLS handshake failed: {e}"),
        }
    }
}

/// The byte stream: plain TCP, or TLS after STARTTLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// Only between taking the TCP stream for the handshake and its result.
    Gone,
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Gone => Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Gone => Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Gone => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Gone => Poll::Ready(Ok(())),
        }
    }
}

/// An open SMTP connection.
pub struct Conn {
    stream: Stream,
    parser: ReplyParser,
    /// The server's name (MX host or route host) and address.
    pub name: String,
    pub addr: SocketAddr,
    pub ext: Extensions,
    pub tls: bool,
    /// Transactions completed on this connection.
    pub transactions: u32,
}

impl Conn {
    /// Opens a TCP connection within `limit`.
    pub async fn connect(name: &str, addr: SocketAddr, limit: Duration) -> Result<Conn, String> {
        let s = match tokio::time::timeout(limit, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(io_text(&e)),
            Err(_) => return Err("Connection timed out".into()),
        };
        let _ = s.set_nodelay(true);
        Ok(Conn {
            stream: Stream::Plain(s),
            parser: ReplyParser::new(),
            name: name.to_string(),
            addr,
            ext: Extensions::default(),
            tls: false,
            transactions: 0,
        })
    }

    /// `name[ip]:port`, as Postfix's `relay=` shows a server.
    pub fn relay(&self) -> String {
        relay_text(&self.name, self.addr)
    }

    /// Reads one whole reply; the whole of it must come within `limit`.
    pub async fn read_reply(&mut self, limit: Duration) -> Result<Reply, ConnError> {
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 4096];
        loop {
            match self.parser.next_reply() {
                Ok(Some(r)) => return Ok(r),
                Ok(None) => {}
                Err(e) => return Err(ConnError::Protocol(e)),
            }
            match timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => return Err(ConnError::Timeout),
                Ok(Ok(0)) => return Err(ConnError::Lost("connection closed by the server".into())),
                Ok(Ok(n)) => self.parser.push(&buf[..n]),
                Ok(Err(e)) => return Err(ConnError::Lost(io_text(&e))),
            }
        }
    }

    /// Writes `data` within `limit`.
    pub async fn send(&mut self, data: &[u8], limit: Duration) -> Result<(), ConnError> {
        match tokio::time::timeout(limit, async {
            self.stream.write_all(data).await?;
            self.stream.flush().await
        })
        .await
        {
            Err(_) => Err(ConnError::Timeout),
            Ok(Err(e)) => Err(ConnError::Lost(io_text(&e))),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Sends one command line and reads its reply.
    pub async fn command(&mut self, line: &str, limit: Duration) -> Result<Reply, ConnError> {
        self.send(format!("{line}\r\n").as_bytes(), limit).await?;
        self.read_reply(limit).await
    }

    /// EHLO, falling back to HELO when EHLO is refused (RFC 5321 4.1.4 / 3.2).
    /// Returns the reply to whichever was used last.
    pub async fn hello(&mut self, helo: &str, limit: Duration) -> Result<Reply, ConnError> {
        let r = self.command(&format!("EHLO {helo}"), limit).await?;
        if r.is_positive() {
            self.ext = Extensions::parse(&r);
            return Ok(r);
        }
        if r.code == 421 {
            return Ok(r);
        }
        let r = self.command(&format!("HELO {helo}"), limit).await?;
        self.ext = Extensions::default();
        Ok(r)
    }

    /// STARTTLS and the handshake. After a 220 the server must not have sent
    /// more (RFC 3207 section 5: such bytes could be an injection). Returns
    /// `Ok(Err(reply))` when the server refused STARTTLS.
    pub async fn starttls(
        &mut self,
        config: std::sync::Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
        limit: Duration,
    ) -> Result<Result<(), Reply>, ConnError> {
        let r = self.command("STARTTLS", limit).await?;
        if r.code != 220 {
            return Ok(Err(r));
        }
        if self.parser.has_pending() {
            return Err(ConnError::Tls(
                "the server sent data after its 220 to STARTTLS".into(),
            ));
        }
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Err(ConnError::Tls("TLS is already on".into()));
        };
        let connector = tokio_rustls::TlsConnector::from(config);
        match tokio::time::timeout(limit, connector.connect(name, tcp)).await {
            Err(_) => Err(ConnError::Timeout),
            Ok(Err(e)) => Err(ConnError::Tls(e.to_string())),
            Ok(Ok(s)) => {
                self.stream = Stream::Tls(Box::new(s));
                self.tls = true;
                self.parser.clear();
                self.ext = Extensions::default();
                Ok(Ok(()))
            }
        }
    }

    /// AUTH PLAIN (preferred) or LOGIN with `user` and `pass`. The final
    /// reply is returned; 235 means success.
    pub async fn auth(
        &mut self,
        user: &str,
        pass: &crate::proto::sasl::Secret,
        limit: Duration,
    ) -> Result<Reply, ConnError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        if self.ext.auth.iter().any(|m| m == "PLAIN") {
            let mut token = Vec::with_capacity(user.len() + pass.len() + 2);
            token.push(0);
            token.extend_from_slice(user.as_bytes());
            token.push(0);
            token.extend_from_slice(pass.as_bytes());
            let mut line = format!("AUTH PLAIN {}", b64.encode(&token));
            zeroize::Zeroize::zeroize(&mut token);
            let r = self.command(&line, limit).await;
            wipe(&mut line);
            return r;
        }
        let r = self.command("AUTH LOGIN", limit).await?;
        if r.code != 334 {
            return Ok(r);
        }
        let r = self.command(&b64.encode(user), limit).await?;
        if r.code != 334 {
            return Ok(r);
        }
        let mut line = b64.encode(pass.as_bytes());
        let r = self.command(&line, limit).await;
        wipe(&mut line);
        r
    }

    /// QUIT, politely and briefly; errors do not matter any more.
    pub async fn quit(mut self) {
        let _ = self.command("QUIT", Duration::from_secs(2)).await;
        let _ = self.stream.shutdown().await;
    }
}

/// `name[ip]:port`.
pub fn relay_text(name: &str, addr: SocketAddr) -> String {
    format!("{name}[{}]:{}", addr.ip(), addr.port())
}

/// An I/O error as Postfix words it (`Connection refused`).
fn io_text(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "Connection refused".into(),
        ConnectionReset => "Connection reset by peer".into(),
        TimedOut => "Connection timed out".into(),
        BrokenPipe => "Broken pipe".into(),
        _ => e.to_string(),
    }
}

/// Overwrites a line that held a password before it is freed.
fn wipe(s: &mut String) {
    zeroize::Zeroize::zeroize(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ehlo_keywords() {
        let mut p = ReplyParser::new();
        p.push(b"250-mx.example.com hi\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8bitmime\r\n250-AUTH=LOGIN\r\n250-AUTH PLAIN login\r\n250-STARTTLS\r\n250-DSN\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n");
        let e = Extensions::parse(&p.next_reply().unwrap().unwrap());
        assert!(e.esmtp && e.pipelining && e.eight_bit_mime && e.starttls && e.dsn && e.smtputf8);
        assert!(e.enhanced_status_codes);
        assert_eq!(e.size, Some(10240000));
        assert_eq!(e.auth, ["LOGIN", "PLAIN"]);
        p.push(b"250 mx.example.com\r\n");
        let e = Extensions::parse(&p.next_reply().unwrap().unwrap());
        assert!(e.esmtp && !e.pipelining && e.size.is_none());
        p.push(b"250-x\r\n250 SIZE\r\n");
        assert_eq!(
            Extensions::parse(&p.next_reply().unwrap().unwrap()).size,
            Some(0)
        );
    }

    #[test]
    fn relay_text_is_postfix_style() {
        assert_eq!(
            relay_text("mx.example.com", "192.0.2.1:25".parse().unwrap()),
            "mx.example.com[192.0.2.1]:25"
        );
        assert_eq!(
            relay_text("h", "[::1]:2525".parse().unwrap()),
            "h[::1]:2525"
        );
    }
}
