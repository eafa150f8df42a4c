//! The URLFETCH socket (`RUN/urlfetch.sock`): kmp-smtpd resolves BURL's
//! URLs (RFC 4468) here, since it cannot read Maildirs itself.
//!
//! The socket is mode 0660 and belongs to kmp-smtpd's group, so connecting
//! is the submit server's credential (RFC 4468 3.3 has it log in with a
//! configured identity; a socket only our own daemon can open needs no
//! password in a file). A connection speaks IMAP but knows three commands:
//! URLFETCH, which answers only `submit+user` URLAUTH URLs (RFC 4467 3:
//! "the submit server ... on behalf of the user"), NOOP and LOGOUT. The
//! token is checked against the owner's key as for any URLFETCH; which
//! user may send such a URL is kmp-smtpd's check, against its AUTH.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use super::url::{self, Accounts, Asker};
use crate::proto::imap::{parse_command, CommandBody, Frame, Framer, Limits};

/// A connection idle this long is closed.
const IDLE: Duration = Duration::from_secs(60);

/// Caps on what kmp-smtpd sends: a URL or a few.
const LIMITS: Limits = Limits {
    max_line: 16 * 1024,
    max_literal: 16 * 1024,
    max_append: 0,
    max_literals: 4,
};

/// Binds the socket at `path` (a stale one is replaced), mode 0660.
pub fn bind(path: &Path) -> io::Result<std::os::unix::net::UnixListener> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "{} is in use: is kmp-imapd running already?",
                    path.display()
                ),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let l = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Serves connections until the process ends.
pub async fn serve(listener: UnixListener, accounts: Arc<dyn Accounts>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let accounts = accounts.clone();
                tokio::spawn(async move {
                    match connection(stream, accounts).await {
                        Err(e)
                            if !matches!(
                                e.kind(),
                                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                            ) =>
                        {
                            crate::warn!("urlfetch socket: {e}")
                        }
                        _ => {}
                    }
                });
            }
            Err(e) => {
                crate::warn!("urlfetch socket accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(mut stream: UnixStream, accounts: Arc<dyn Accounts>) -> io::Result<()> {
    stream
        .write_all(b"* OK kmp-imapd URLFETCH for submission\r\n")
        .await?;
    let mut framer = Framer::new(LIMITS);
    let mut buf = Vec::new();
    loop {
        match framer.frame(&buf) {
            Frame::Command(n) => {
                let parsed = parse_command(&buf[..n]);
                buf.drain(..n);
                let (tag, body) = match parsed {
                    Ok(c) => (c.tag, c.body),
                    Err(e) => {
                        let tag = e.tag.unwrap_or_else(|| "*".into());
                        let l = format!("{tag} BAD {}\r\n", e.message);
                        stream.write_all(l.as_bytes()).await?;
                        continue;
                    }
                };
                match body {
                    CommandBody::UrlFetch(urls) => {
                        let accounts = accounts.clone();
                        let response = tokio::task::spawn_blocking(move || {
                            let mut out = b"* URLFETCH".to_vec();
                            for a in &urls {
                                let r = url::authorized(
                                    &a.url,
                                    Asker::Submit,
                                    Some(accounts.as_ref()),
                                    now(),
                                );
                                out.push(b' ');
                                super::cmd::urlauth::fetch_data(&mut out, a, r.ok());
                            }
                            out.extend_from_slice(b"\r\n");
                            out
                        })
                        .await
                        .map_err(|e| io::Error::other(format!("URLFETCH: {e}")))?;
                        stream.write_all(&response).await?;
                        let l = format!("{tag} OK URLFETCH completed\r\n");
                        stream.write_all(l.as_bytes()).await?;
                    }
                    CommandBody::Noop => {
                        let l = format!("{tag} OK NOOP completed\r\n");
                        stream.write_all(l.as_bytes()).await?;
                    }
                    CommandBody::Logout => {
                        let l = format!("* BYE Logging out\r\n{tag} OK LOGOUT completed\r\n");
                        stream.write_all(l.as_bytes()).await?;
                        return Ok(());
                    }
                    other => {
                        let l = format!("{tag} BAD {} is not served here\r\n", other.name());
                        stream.write_all(l.as_bytes()).await?;
                    }
                }
            }
            Frame::Continue => stream.write_all(b"+ Ready for literal data\r\n").await?,
            Frame::Reject { tag, reason, .. } => {
                let l = format!("{} BAD {reason}\r\n", tag.unwrap_or_else(|| "*".into()));
                stream.write_all(l.as_bytes()).await?;
                return Ok(());
            }
            Frame::Discard(n) => {
                buf.drain(..n);
                if n == 0 && !read_more(&mut stream, &mut buf).await? {
                    return Ok(());
                }
            }
            Frame::Stream { .. } => return Ok(()),
            Frame::Incomplete => {
                if !read_more(&mut stream, &mut buf).await? {
                    return Ok(());
                }
            }
        }
    }
}

/// False when the peer went away or idled too long.
async fn read_more(stream: &mut UnixStream, buf: &mut Vec<u8>) -> io::Result<bool> {
    let mut chunk = [0u8; 4096];
    match tokio::time::timeout(IDLE, stream.read(&mut chunk)).await {
        Ok(Ok(0)) | Err(_) => Ok(false),
        Ok(Ok(n)) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(true)
        }
        Ok(Err(e)) => Err(e),
    }
}

/// Seconds since the epoch.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
