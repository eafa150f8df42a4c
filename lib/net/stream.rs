//! A client connection of any server (kmp-smtpd, kmp-pop3d, kmp-imapd):
//! plain TCP or TLS (implicit, or started later by STARTTLS/STLS), where
//! every read, write and handshake has a deadline.
//!
//! A client that stops reading, stops writing or never finishes its TLS
//! handshake would otherwise hold a task, a socket and its buffers for as
//! long as it likes. The deadlines here turn each of those into an
//! `io::ErrorKind::TimedOut` error the server ends the session on.
//!
//! The type also implements `AsyncRead`/`AsyncWrite` without deadlines, for
//! the few places that race a read against something else (IDLE polling, a
//! shutdown signal) and bound the wait themselves.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// The write deadline applies to each piece of this size.
pub const WRITE_PIECE: usize = 64 * 1024;

/// How long each kind of wait may last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// For the next bytes from the client (the protocol's idle timeout).
    pub read: Duration,
    /// For the client to take each [`WRITE_PIECE`] of a response.
    pub write: Duration,
    /// For a TLS handshake to complete.
    pub handshake: Duration,
}

/// A server's connection to one client.
pub struct Stream {
    io: Io,
    deadlines: Deadlines,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while STARTTLS swaps one for the other, or after a failed swap.
    Gone,
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection gone")
}

impl Stream {
    /// A plaintext connection.
    pub fn plain(tcp: TcpStream, deadlines: Deadlines) -> Stream {
        let _ = tcp.set_nodelay(true);
        Stream {
            io: Io::Plain(tcp),
            deadlines,
        }
    }

    /// A connection that starts with TLS (ports 465, 993, 995): the
    /// handshake must be over within the handshake deadline.
    pub async fn accept_tls(
        tcp: TcpStream,
        acceptor: &TlsAcceptor,
        deadlines: Deadlines,
    ) -> io::Result<Stream> {
        let _ = tcp.set_nodelay(true);
        let tls = handshake(acceptor, tcp, deadlines.handshake).await?;
        Ok(Stream {
            io: Io::Tls(Box::new(tls)),
            deadlines,
        })
    }

    /// STARTTLS: the plaintext connection becomes TLS. The caller discards
    /// whatever plaintext it had buffered (RFC 3207 5, CVE-2011-0411).
    pub async fn start_tls(&mut self, acceptor: &TlsAcceptor) -> io::Result<()> {
        let Io::Plain(tcp) = std::mem::replace(&mut self.io, Io::Gone) else {
            return Err(io::Error::other("TLS is already active"));
        };
        let tls = handshake(acceptor, tcp, self.deadlines.handshake).await?;
        self.io = Io::Tls(Box::new(tls));
        Ok(())
    }

    /// Moves the connection out (to a writer task, say), leaving behind a
    /// stream on which every operation fails until it is put back.
    pub fn detach(&mut self) -> Stream {
        Stream {
            io: std::mem::replace(&mut self.io, Io::Gone),
            deadlines: self.deadlines,
        }
    }

    pub fn deadlines(&self) -> Deadlines {
        self.deadlines
    }

    /// Whether the connection is under TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.io, Io::Tls(_))
    }

    /// The TLS session, once there is one (for the version and cipher).
    pub fn tls(&self) -> Option<&rustls::ServerConnection> {
        match &self.io {
            Io::Tls(t) => Some(t.get_ref().1),
            _ => None,
        }
    }

    /// Reads what arrives next, waiting at most the read deadline. 0 is
    /// the end of the connection.
    pub async fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let limit = self.deadlines.read;
        match tokio::time::timeout(limit, self.read(buf)).await {
            Ok(r) => r,
            Err(_) => Err(timed_out("read")),
        }
    }

    /// Writes all of `data` and flushes it. Each [`WRITE_PIECE`] must be
    /// taken within the write deadline: a slow client that keeps reading a
    /// large response is not cut off, one that stopped reading is.
    pub async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        let limit = self.deadlines.write;
        for piece in data.chunks(WRITE_PIECE) {
            match tokio::time::timeout(limit, self.write_all(piece)).await {
                Ok(r) => r?,
                Err(_) => return Err(timed_out("write")),
            }
        }
        match tokio::time::timeout(limit, self.flush()).await {
            Ok(r) => r,
            Err(_) => Err(timed_out("write")),
        }
    }

    /// Ends the connection politely (TLS close_notify, TCP FIN), giving up
    /// after the write deadline; errors do not matter any more.
    pub async fn close(&mut self) {
        let limit = self.deadlines.write;
        let _ = tokio::time::timeout(limit, self.shutdown()).await;
    }
}

async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    limit: Duration,
) -> io::Result<TlsStream<TcpStream>> {
    match tokio::time::timeout(limit, acceptor.accept(tcp)).await {
        Ok(r) => r,
        Err(_) => Err(timed_out("TLS handshake")),
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Io::Gone => Poll::Ready(Err(gone())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Io::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Io::Gone => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Io::Gone => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short() -> Deadlines {
        Deadlines {
            read: Duration::from_millis(200),
            write: Duration::from_millis(200),
            handshake: Duration::from_millis(200),
        }
    }

    async fn pair() -> (Stream, TcpStream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (server, _) = l.accept().await.unwrap();
        (Stream::plain(server, short()), client)
    }

    #[tokio::test]
    async fn a_silent_client_times_out_a_read() {
        let (mut s, _client) = pair().await;
        let mut b = [0u8; 16];
        let e = s.read_some(&mut b).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_times_out_a_write() {
        let (mut s, _client) = pair().await;
        // Far more than the socket buffers on both sides hold.
        let big = vec![b'x'; 64 << 20];
        let e = s.send(&big).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }
}
