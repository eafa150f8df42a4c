//! BURL's fetch (RFC 4468): the content of a URLAUTH IMAP URL, asked of
//! kmp-imapd over its URLFETCH socket (`RUN/urlfetch.sock`).
//!
//! kmp-smtpd cannot read Maildirs (it runs as `kmpd`, not `vmail`), so it
//! does what RFC 4468 3.3 describes, an IMAP client resolving the URL with
//! submit credentials, over a local socket instead of a login: the socket
//! belongs to kmp-smtpd's group (mode 0660), so being able to connect is
//! the credential, and no password sits in a configuration file. The
//! exchange is plain IMAP (`A1 URLFETCH "url"`, RFC 4467 6.3), which
//! kmp-imapd answers only for `submit+` URLs; the session has already
//! checked that the URL's user is the one who logged in.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::proto::smtp::reply::{self, Reply};

/// Longest response line read (the URL is echoed in it).
const MAX_LINE: usize = 16 * 1024;

/// The content the URL names, in CRLF form, at most `max` octets; or the
/// reply that fails the transaction.
pub async fn fetch(
    socket: &Path,
    url: &str,
    max: u64,
    timeout: Duration,
) -> Result<Vec<u8>, Reply> {
    match tokio::time::timeout(timeout, exchange(socket, url, max)).await {
        Ok(r) => r,
        Err(_) => Err(reply::BURL_IMAP_UNAVAILABLE),
    }
}

async fn exchange(socket: &Path, url: &str, max: u64) -> Result<Vec<u8>, Reply> {
    let unavailable = |_| reply::BURL_IMAP_UNAVAILABLE;
    let stream = UnixStream::connect(socket).await.map_err(unavailable)?;
    let mut r = BufReader::new(stream);
    let greeting = line(&mut r).await?;
    if !greeting.starts_with(b"* OK") {
        return Err(reply::BURL_IMAP_UNAVAILABLE);
    }
    let mut cmd = b"A1 URLFETCH \"".to_vec();
    for b in url.bytes() {
        if b == b'"' || b == b'\\' {
            cmd.push(b'\\');
        }
        cmd.push(b);
    }
    cmd.extend_from_slice(b"\"\r\nA2 LOGOUT\r\n");
    r.get_mut().write_all(&cmd).await.map_err(unavailable)?;
    let mut content = None;
    loop {
        let l = line(&mut r).await?;
        if l.starts_with(b"* URLFETCH ") {
            let body = l.strip_suffix(b"\r\n").unwrap_or(&l);
            if body.ends_with(b" NIL") {
                continue;
            }
            let Some(n) = literal_size(body) else {
                return Err(reply::BURL_FETCH_FAILED);
            };
            if n > max {
                return Err(reply::MESSAGE_TOO_BIG);
            }
            // Invariant: n <= max, the message size limit, which fits in memory.
            let mut data = vec![0u8; n as usize];
            r.read_exact(&mut data).await.map_err(unavailable)?;
            line(&mut r).await?;
            content = Some(data);
        } else if l.starts_with(b"A1 ") {
            return match content {
                Some(d) if l.starts_with(b"A1 OK") => Ok(d),
                _ => Err(reply::BURL_FETCH_FAILED),
            };
        } else if !l.starts_with(b"* ") {
            return Err(reply::BURL_FETCH_FAILED);
        }
    }
}

/// One line, CRLF included; an error when the peer closes or rambles.
async fn line(r: &mut BufReader<UnixStream>) -> Result<Vec<u8>, Reply> {
    let mut l = Vec::new();
    let n = r
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut l)
        .await
        .map_err(|_| reply::BURL_IMAP_UNAVAILABLE)?;
    if n == 0 || !l.ends_with(b"\n") {
        return Err(reply::BURL_IMAP_UNAVAILABLE);
    }
    Ok(l)
}

/// `{n}` at the end of a response line.
fn literal_size(l: &[u8]) -> Option<u64> {
    let inner = l.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|b| *b == b'{')?;
    let digits = &inner[open + 1..];
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}
