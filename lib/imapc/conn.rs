//! The byte stream under the client: a TCP connection with timeouts, plain
//! or inside TLS (rustls, the ring provider, as everywhere in the project).

use std::io::{self, BufRead, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::Error;

/// Where the system's authorities are when the endpoint names none.
pub const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Given as the CA file, turns certificate checking off (the handshake's
/// signature is still checked): for a fetch account whose owner said so.
pub const NO_VERIFY: &str = "\0no-verify";

/// A plain or TLS connection.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    /// Nothing: the moment between plain and TLS during STARTTLS.
    Closed,
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "no connection")
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Closed => Err(closed()),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Closed => Err(closed()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            Stream::Closed => Err(closed()),
        }
    }
}

impl Stream {
    /// Sends TLS close_notify (best effort) before the socket closes.
    pub fn close(&mut self) {
        if let Stream::Tls(s) = self {
            s.conn.send_close_notify();
            let _ = s.conn.complete_io(&mut s.sock);
        }
    }
}

/// The timeout an endpoint's zero stands for.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The endpoint's timeout, zero meaning [`DEFAULT_TIMEOUT`].
pub fn effective(timeout: Duration) -> Duration {
    if timeout.is_zero() {
        DEFAULT_TIMEOUT
    } else {
        timeout
    }
}

/// A buffered reader that gives up once `until` has passed: each read is
/// bounded by the socket's timeout, this bounds a whole reply that a
/// server trickles a byte at a time.
pub struct Deadline<'a, R> {
    pub inner: &'a mut R,
    pub until: Instant,
}

impl<R> Deadline<'_, R> {
    fn check(&self) -> io::Result<()> {
        if Instant::now() > self.until {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the reply took too long",
            ))
        } else {
            Ok(())
        }
    }
}

impl<R: BufRead> Read for Deadline<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.check()?;
        self.inner.read(buf)
    }
}

impl<R: BufRead> BufRead for Deadline<'_, R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.check()?;
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n)
    }
}

/// Connects to the first address of `host:port` that answers in `timeout`,
/// with read and write timeouts set.
pub fn tcp(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, Error> {
    let timeout = effective(timeout);
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address"));
    for addr in (host, port).to_socket_addrs().map_err(Error::Io)? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                s.set_read_timeout(Some(timeout)).map_err(Error::Io)?;
                s.set_write_timeout(Some(timeout)).map_err(Error::Io)?;
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(Error::Io(last))
}

/// A connection to `host`:`port`, in TLS from the start when
/// `implicit_tls` (ports 993, 995, 465, a ManageSieve or submission entry
/// set to `tls`), else plain (for STARTTLS or STLS later, or none).
pub fn open(
    host: &str,
    port: u16,
    implicit_tls: bool,
    ca_file: Option<&Path>,
    timeout: Duration,
) -> Result<Stream, Error> {
    let sock = tcp(host, port, timeout)?;
    if implicit_tls {
        tls(sock, host, ca_file)
    } else {
        Ok(Stream::Plain(sock))
    }
}

/// Runs the TLS handshake over `sock`, checking the certificate against
/// `ca_file` (or the system's authorities) and the name `host`.
pub fn tls(sock: TcpStream, host: &str, ca_file: Option<&Path>) -> Result<Stream, Error> {
    let config = client_config(ca_file.unwrap_or(Path::new(SYSTEM_ROOTS)))?;
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| Error::Tls(format!("{host}: not a host name: {e}")))?;
    let conn = ClientConnection::new(config, name).map_err(|e| Error::Tls(e.to_string()))?;
    let mut s = StreamOwned::new(conn, sock);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock).map_err(|e| {
            // rustls reports its own errors as InvalidData with the cause inside.
            if e.kind() == io::ErrorKind::InvalidData {
                Error::Tls(e.to_string())
            } else {
                Error::Io(e)
            }
        })?;
    }
    Ok(Stream::Tls(Box::new(s)))
}

fn client_config(ca_file: &Path) -> Result<Arc<ClientConfig>, Error> {
    use rustls::pki_types::pem::PemObject;
    if ca_file == Path::new(NO_VERIFY) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        return ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map(|b| {
                b.dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                    .with_no_client_auth()
            })
            .map(Arc::new)
            .map_err(|e| Error::Tls(e.to_string()));
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca_file)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| Error::Tls(format!("{}: {e}", ca_file.display())))?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(Error::Tls(format!(
            "{}: no usable certificate",
            ca_file.display()
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .map(Arc::new)
        .map_err(|e| Error::Tls(e.to_string()))
}

/// Accepts any certificate chain and name ([`NO_VERIFY`]); the handshake
/// signatures are still verified with the provider's algorithms.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
