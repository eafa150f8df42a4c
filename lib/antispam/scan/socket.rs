//! Where a scanner listens, and a blocking connection to it with
//! deadlines. The scanners run on a blocking thread of kmp-smtpd: their
//! protocols are a request and one answer, so plain sockets with
//! `SO_RCVTIMEO`/`SO_SNDTIMEO` are all that is needed.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// A scanner's address: `/path/to/socket` (or `unix:/path`) or `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Unix(PathBuf),
    Tcp(String),
}

impl Address {
    /// Parses the configuration's text; `None` for empty (scanner off).
    pub fn parse(text: &str) -> Result<Option<Address>, String> {
        let t = text.trim();
        if t.is_empty() {
            return Ok(None);
        }
        let t = t.strip_prefix("unix:").unwrap_or(t);
        if t.starts_with('/') {
            return Ok(Some(Address::Unix(PathBuf::from(t))));
        }
        match t.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(Some(Address::Tcp(t.to_string())))
            }
            _ => Err(format!("{text:?} is neither a socket path nor host:port")),
        }
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "{}", p.display()),
            Address::Tcp(a) => f.write_str(a),
        }
    }
}

/// A connected scanner socket.
pub enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    /// Connects within `connect`; every later read and write has `io`.
    pub fn open(addr: &Address, connect: Duration, io: Duration) -> io::Result<Conn> {
        let c = match addr {
            Address::Unix(p) => {
                // A Unix connect does not wait for the peer: it succeeds
                // or fails at once.
                let s = UnixStream::connect(p)?;
                s.set_read_timeout(Some(io))?;
                s.set_write_timeout(Some(io))?;
                Conn::Unix(s)
            }
            Address::Tcp(a) => {
                let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
                let mut found = None;
                for sa in a.to_socket_addrs()? {
                    match TcpStream::connect_timeout(&sa, connect) {
                        Ok(s) => {
                            found = Some(s);
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                let s = found.ok_or(last)?;
                s.set_read_timeout(Some(io))?;
                s.set_write_timeout(Some(io))?;
                let _ = s.set_nodelay(true);
                Conn::Tcp(s)
            }
        };
        Ok(c)
    }

    /// No more writes: the peer sees the end of the request.
    pub fn shutdown_write(&self) {
        let _ = match self {
            Conn::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            Conn::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
        };
    }

    /// Reads the whole answer, up to `max` bytes (more is an error).
    pub fn read_all(&mut self, max: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = match self.read(&mut buf) {
                Ok(0) => return Ok(out),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if out.len() + n > max {
                return Err(io::Error::other("answer too long"));
            }
            out.extend_from_slice(&buf[..n]);
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.write(buf),
            Conn::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        assert_eq!(Address::parse("").unwrap(), None);
        assert_eq!(
            Address::parse("/run/spamd.sock").unwrap(),
            Some(Address::Unix("/run/spamd.sock".into()))
        );
        assert_eq!(
            Address::parse("unix:/run/c.sock").unwrap(),
            Some(Address::Unix("/run/c.sock".into()))
        );
        assert_eq!(
            Address::parse("127.0.0.1:783").unwrap(),
            Some(Address::Tcp("127.0.0.1:783".into()))
        );
        assert_eq!(
            Address::parse("[::1]:3310").unwrap(),
            Some(Address::Tcp("[::1]:3310".into()))
        );
        assert!(Address::parse("spamd").is_err());
        assert!(Address::parse("host:notaport").is_err());
    }
}
