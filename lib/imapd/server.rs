//! The server layer: listeners, TLS (implicit and STARTTLS), kmp-authd,
//! IDLE polling and timeouts. The only part of kmp-imapd that touches
//! sockets and time; commands run in the session, on a blocking-allowed
//! thread (`block_in_place`) because the store reads files.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::events::SessionLog;
use super::maildir_store::MaildirStore;
use super::session::{Action, Out, Session};
use super::Settings;
use crate::ipc::authd::{self, LoginFailure, Reply, Request, Service};
use crate::proto::imap::{parse_command, Frame, Framer};

/// A client connection, before or after TLS (`Gone` only while STARTTLS
/// wraps the stream).
enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Gone,
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection gone")
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Gone => Poll::Ready(Err(gone())),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Gone => Poll::Ready(Err(gone())),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s).poll_flush(cx),
            Conn::Gone => Poll::Ready(Err(gone())),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Gone => Poll::Ready(Err(gone())),
        }
    }
}

/// Everything connections share.
pub struct Shared {
    /// Replaced on SIGHUP; a session keeps the settings it started with.
    settings: std::sync::RwLock<Arc<Settings>>,
    pub tls: Option<TlsAcceptor>,
    pub authd_socket: PathBuf,
    slots: Arc<Semaphore>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl Shared {
    pub fn new(
        settings: Settings,
        tls: Option<Arc<rustls::ServerConfig>>,
        authd_socket: PathBuf,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            slots: Arc::new(Semaphore::new(settings.max_connections)),
            settings: std::sync::RwLock::new(Arc::new(settings)),
            tls: tls.map(TlsAcceptor::from),
            authd_socket,
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    /// The settings new sessions start with.
    pub fn settings(&self) -> Arc<Settings> {
        match self.settings.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Takes new settings (SIGHUP): new sessions use them, running ones keep theirs.
    pub fn reload(&self, settings: Settings) {
        match self.settings.write() {
            Ok(mut s) => *s = Arc::new(settings),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(settings),
        }
    }
}

/// Accepts on one listener until the process ends. `implicit_tls`: port 993.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener, implicit_tls: bool) {
    loop {
        let Ok(permit) = shared.slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                crate::warn!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let ip = peer.ip();
            let over = {
                let mut m = shared.per_ip.lock().unwrap_or_else(|e| e.into_inner());
                let n = m.entry(ip).or_insert(0);
                *n += 1;
                *n > shared.settings().max_per_ip
            };
            let mut log = SessionLog::connected(ip, peer.port(), implicit_tls);
            let r = connection(&shared, stream, peer, implicit_tls, over, &mut log).await;
            log.disconnected(r.as_ref().err().filter(|e| {
                e.kind() != io::ErrorKind::UnexpectedEof
                    && e.kind() != io::ErrorKind::ConnectionReset
            }));
            let mut m = shared.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = m.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&ip);
                }
            }
        });
    }
}

async fn connection(
    shared: &Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    implicit_tls: bool,
    over_limit: bool,
    log: &mut SessionLog,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut conn = if implicit_tls {
        let Some(acc) = &shared.tls else {
            return Ok(());
        };
        Conn::Tls(Box::new(acc.accept(stream).await?))
    } else {
        Conn::Plain(stream)
    };
    if over_limit {
        log.refused("too-many-connections");
        conn.write_all(b"* BYE Too many connections from your address\r\n")
            .await?;
        return Ok(());
    }
    if banned(shared, peer.ip()).await {
        log.refused("banned");
        conn.write_all(b"* BYE Your address is blocked for a while\r\n")
            .await?;
        return Ok(());
    }
    let local = peer.ip().is_loopback();
    let mut session = Session::new(shared.settings(), implicit_tls, local);
    let mut out_buf = Vec::new();
    {
        let mut sink = |_: &[u8]| Ok(());
        let mut out = Out::new(&mut sink);
        session.greeting(&mut out);
        out_buf.extend_from_slice(&out.buf);
    }
    conn.write_all(&out_buf).await?;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut framer = Framer::new(shared.settings().limits);
    let timeout = shared.settings().timeout;
    loop {
        match framer.frame(&buf) {
            Frame::Command(n) => {
                log.commands += 1;
                let parsed = parse_command(&buf[..n]);
                buf.drain(..n);
                let cmd = match parsed {
                    Ok(c) => c,
                    Err(e) => {
                        let tag = e.tag.unwrap_or_else(|| "*".into());
                        conn.write_all(format!("{tag} BAD {}\r\n", e.message).as_bytes())
                            .await?;
                        continue;
                    }
                };
                let action = run_command(&mut conn, &mut session, cmd)?;
                if !perform(shared, &mut conn, &mut session, &mut buf, peer, action, log).await? {
                    conn.flush().await?;
                    let _ = conn.shutdown().await;
                    return Ok(());
                }
                continue;
            }
            Frame::Continue => {
                conn.write_all(b"+ Ready for literal data\r\n").await?;
            }
            Frame::Reject {
                tag,
                reason,
                consumed,
                close,
            } => {
                let tag = tag.unwrap_or_else(|| "*".into());
                buf.drain(..consumed);
                conn.write_all(format!("{tag} BAD {reason}\r\n").as_bytes())
                    .await?;
                if close {
                    conn.write_all(b"* BYE Closing the connection\r\n").await?;
                    return Ok(());
                }
                continue;
            }
            Frame::Discard(n) => {
                buf.drain(..n);
                if n > 0 {
                    continue;
                }
            }
            Frame::Incomplete => {}
        }
        let mut chunk = [0u8; 16384];
        let n = match tokio::time::timeout(timeout, conn.read(&mut chunk)).await {
            Ok(r) => r?,
            Err(_) => {
                conn.write_all(b"* BYE Autologout; idle for too long\r\n")
                    .await?;
                return Ok(());
            }
        };
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Runs one command on this thread (file I/O allowed), streaming large
/// responses to the connection.
fn run_command(
    conn: &mut Conn,
    session: &mut Session,
    cmd: crate::proto::imap::Command,
) -> io::Result<Action> {
    tokio::task::block_in_place(|| {
        let handle = tokio::runtime::Handle::current();
        let mut sink = |b: &[u8]| handle.block_on(conn.write_all(b));
        let mut out = Out::new(&mut sink);
        let action = session.handle(cmd, &mut out)?;
        out.flush()?;
        Ok(action)
    })
}

/// Writes what a session produced outside a command (IDLE updates).
fn run_sync<F: FnOnce(&mut Session, &mut Out) -> R, R>(
    conn: &mut Conn,
    session: &mut Session,
    f: F,
) -> io::Result<R> {
    tokio::task::block_in_place(|| {
        let handle = tokio::runtime::Handle::current();
        let mut sink = |b: &[u8]| handle.block_on(conn.write_all(b));
        let mut out = Out::new(&mut sink);
        let r = f(session, &mut out);
        out.flush()?;
        Ok(r)
    })
}

/// Performs an action; false when the connection must close.
async fn perform(
    shared: &Arc<Shared>,
    conn: &mut Conn,
    session: &mut Session,
    buf: &mut Vec<u8>,
    peer: SocketAddr,
    mut action: Action,
    log: &mut SessionLog,
) -> io::Result<bool> {
    loop {
        match action {
            Action::None => return Ok(true),
            Action::Close => return Ok(false),
            Action::StartTls => {
                let Some(acc) = &shared.tls else {
                    return Ok(true);
                };
                conn.flush().await?;
                // Anything pipelined after STARTTLS is discarded (RFC 9051 6.2.1).
                buf.clear();
                let plain = std::mem::replace(conn, Conn::Gone);
                let Conn::Plain(tcp) = plain else {
                    return Ok(false);
                };
                *conn = Conn::Tls(Box::new(acc.accept(tcp).await?));
                session.tls = true;
                log.starttls();
                return Ok(true);
            }
            Action::SaslContinue => {
                conn.write_all(b"+ \r\n").await?;
                let line = read_line(conn, buf, shared.settings().limits.max_line).await?;
                let Some(line) = line else { return Ok(false) };
                action = run_sync(conn, session, |s, out| s.sasl_line(&line, out))?;
            }
            Action::Login {
                tag,
                user,
                password,
            } => {
                let result = login(shared, &user, password, peer.ip()).await;
                let refused = result.as_ref().err().copied();
                run_sync(conn, session, |s, out| match result {
                    Ok(info) => {
                        let store = MaildirStore::open(
                            &info.mail_path,
                            info.quota_bytes,
                            info.quota_messages,
                        );
                        match store {
                            Ok(st) => {
                                s.finish_login(&tag, Ok((info.address.clone(), Box::new(st))), out)
                            }
                            Err(e) => s.finish_login(&tag, Err(&format!("[UNAVAILABLE] {e}")), out),
                        }
                    }
                    Err(text) => s.finish_login(&tag, Err(text), out),
                })?;
                match session.user() {
                    Some(u) => log.login(u),
                    None => log.login_failed(&user, refused.unwrap_or("[UNAVAILABLE] mailbox")),
                }
                return Ok(true);
            }
            Action::Idle { tag } => return idle(shared, conn, session, buf, tag).await,
        }
    }
}

async fn read_line(conn: &mut Conn, buf: &mut Vec<u8>, max: usize) -> io::Result<Option<Vec<u8>>> {
    loop {
        if let Some(i) = buf.iter().position(|b| *b == b'\n') {
            return Ok(Some(buf.drain(..=i).collect()));
        }
        if buf.len() > max {
            return Ok(None);
        }
        let mut chunk = [0u8; 4096];
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn banned(shared: &Shared, ip: IpAddr) -> bool {
    matches!(
        authd::call(&shared.authd_socket, Request::BanCheck { ip }).await,
        Ok(Reply::Ban { banned: true, .. })
    )
}

async fn login(
    shared: &Shared,
    user: &str,
    password: String,
    ip: IpAddr,
) -> Result<authd::UserInfo, &'static str> {
    let req = Request::Login {
        user: user.to_string(),
        password,
        service: Service::Imap,
        ip: Some(ip),
    };
    match authd::call(&shared.authd_socket, req).await {
        Ok(Reply::LoginOk { user }) => Ok(user),
        Ok(Reply::LoginFailed {
            reason: LoginFailure::Banned,
        }) => Err("[UNAVAILABLE] Your address is blocked for a while"),
        Ok(Reply::LoginFailed { .. }) => Err("[AUTHENTICATIONFAILED] Invalid credentials"),
        Ok(_) => Err("[UNAVAILABLE] Unexpected answer from the authentication service"),
        Err(e) if e.is_temporary() => {
            Err("[UNAVAILABLE] Authentication service unavailable, try later")
        }
        Err(_) => Err("[AUTHENTICATIONFAILED] Invalid credentials"),
    }
}

/// IDLE (RFC 2177): poll the folder every `idle_poll` until DONE.
async fn idle(
    shared: &Arc<Shared>,
    conn: &mut Conn,
    session: &mut Session,
    buf: &mut Vec<u8>,
    tag: String,
) -> io::Result<bool> {
    let poll = shared.settings().idle_poll;
    session.release();
    let deadline = tokio::time::Instant::now() + shared.settings().timeout;
    loop {
        if let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let word = line.trim_ascii();
            if word.eq_ignore_ascii_case(b"DONE") {
                run_sync(conn, session, |s, out| {
                    s.poll(out, true);
                    out.line(&format!("{tag} OK IDLE terminated"));
                })?;
                return Ok(true);
            }
            conn.write_all(format!("{tag} BAD Expected DONE\r\n").as_bytes())
                .await?;
            return Ok(true);
        }
        if buf.len() > 1024 {
            conn.write_all(format!("{tag} BAD Expected DONE\r\n").as_bytes())
                .await?;
            buf.clear();
            return Ok(true);
        }
        let mut chunk = [0u8; 1024];
        tokio::select! {
            r = conn.read(&mut chunk) => {
                let n = r?;
                if n == 0 {
                    return Ok(false);
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            _ = tokio::time::sleep(poll) => {
                run_sync(conn, session, |s, out| {
                    s.poll(out, true);
                    s.release();
                })?;
                if tokio::time::Instant::now() > deadline {
                    conn.write_all(b"* BYE Autologout; idle for too long\r\n").await?;
                    return Ok(false);
                }
            }
        }
    }
}
