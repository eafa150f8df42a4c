//! The server layer: listeners, TLS (implicit and STARTTLS), kmp-authd,
//! IDLE polling and deadlines. The only part of kmp-imapd that touches
//! sockets and time.
//!
//! Every read, write and TLS handshake has a deadline (`crate::net::Stream`).
//! Commands run in the session on a blocking-allowed thread
//! (`block_in_place`) because the store reads files; a short answer is sent
//! when the command returns, and a large one goes through a short channel
//! to a writer task, started at its first piece, which owns the connection
//! while the command runs and sends with the write deadline. A client that stops
//! reading in the middle of a large FETCH therefore holds a thread for at
//! most `imapd.write_timeout`: then the writer gives up, the command's next
//! write fails, and the session ends.
//!
//! Before login the framer's caps are small (`Limits::BEFORE_LOGIN`); after
//! it, an APPEND message over 64 KiB is written to a staging file in the
//! user's Maildir as it arrives, never held in memory. Bad commands are
//! counted by the session; too many are reported to kmp-authd, where they
//! count toward a ban as failed logins do.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::events::SessionLog;
use super::maildir_store::MaildirStore;
use super::session::{Action, Out, Session, State};
use super::Settings;
use crate::ipc::authd::{self, LoginFailure, Reply, Request, Service};
use crate::net::{Counter, Slot, Stream};
use crate::proto::imap::response::{self, Code, Response};
use crate::proto::imap::{empty_literal, parse_command, Frame, Framer};

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;
/// Pieces of a response (up to 256 KiB each) waiting for the writer task.
const WRITE_QUEUE: usize = 2;
/// How long a report to kmp-authd may take.
const AUTHD_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything connections share.
pub struct Shared {
    /// Replaced on SIGHUP; a session keeps the settings it started with.
    settings: crate::daemon::Live<Arc<Settings>>,
    pub tls: Option<TlsAcceptor>,
    pub authd_socket: PathBuf,
    slots: Arc<Semaphore>,
    connections: Arc<Counter>,
}

impl Shared {
    pub fn new(
        settings: Settings,
        tls: Option<Arc<rustls::ServerConfig>>,
        authd_socket: PathBuf,
    ) -> Arc<Shared> {
        let connections = Counter::new();
        connections.set_ipv6_prefix(settings.ipv6_prefix);
        Arc::new(Shared {
            slots: Arc::new(Semaphore::new(settings.max_connections)),
            settings: crate::daemon::Live::new(Arc::new(settings)),
            tls: tls.map(TlsAcceptor::from),
            authd_socket,
            connections,
        })
    }

    /// The settings new sessions start with.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.get()
    }

    /// Takes new settings (SIGHUP): new sessions use them, running ones keep theirs.
    pub fn reload(&self, settings: Settings) {
        self.connections.set_ipv6_prefix(settings.ipv6_prefix);
        self.settings.set(Arc::new(settings));
    }
}

/// Accepts on one listener until the process ends. `implicit_tls`: port 993.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener, implicit_tls: bool) {
    loop {
        let Ok(permit) = shared.slots.clone().acquire_owned().await else {
            return;
        };
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                crate::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let settings = shared.settings();
            let ip = peer.ip().to_canonical();
            // A trusted front end serves many clients from one address:
            // they count under their own addresses once it names them (ID).
            let per_ip = if settings.trusted(ip) {
                usize::MAX
            } else {
                settings.max_per_ip
            };
            let Ok(slot) = shared.connections.admit(ip, usize::MAX, per_ip) else {
                SessionLog::connected(ip, peer.port(), implicit_tls)
                    .refused("too-many-connections");
                // On port 993 the connection is closed before any TLS work.
                if !implicit_tls {
                    let mut s = Stream::plain(tcp, settings.deadlines());
                    let _ = s
                        .send(&wire(Response::bye(
                            "Too many connections from your address",
                        )))
                        .await;
                    s.close().await;
                }
                return;
            };
            let mut log = SessionLog::connected(ip, peer.port(), implicit_tls);
            let r = connection(&shared, settings, tcp, peer, implicit_tls, &mut log, slot).await;
            log.disconnected(r.as_ref().err().filter(|e| {
                e.kind() != io::ErrorKind::UnexpectedEof
                    && e.kind() != io::ErrorKind::ConnectionReset
            }));
        });
    }
}

async fn connection(
    shared: &Arc<Shared>,
    settings: Arc<Settings>,
    tcp: TcpStream,
    peer: SocketAddr,
    implicit_tls: bool,
    log: &mut SessionLog,
    slot: Slot,
) -> io::Result<()> {
    let stream = if implicit_tls {
        let Some(acc) = &shared.tls else {
            return Ok(());
        };
        Stream::accept_tls(tcp, acc, settings.deadlines()).await?
    } else {
        Stream::plain(tcp, settings.deadlines())
    };
    let trusted = settings.trusted(peer.ip());
    // A dual-stack socket reports an IPv4 client as ::ffff:a.b.c.d.
    let loopback = peer.ip().to_canonical().is_loopback();
    let mut session = Session::new(settings, implicit_tls, loopback);
    session.trusted = trusted;
    session.accounts = Some(Arc::new(super::accounts::AuthdAccounts {
        socket: shared.authd_socket.clone(),
    }));
    let mut c = Conn {
        shared,
        _slot: slot,
        forwarded: false,
        webmail: false,
        ip: peer.ip().to_canonical(),
        framer: Framer::new(session.limits()),
        session,
        stream,
        buf: Vec::with_capacity(1024),
        log,
    };
    if banned(shared, c.ip).await {
        c.log.refused("banned");
        c.stream
            .send(&wire(Response::bye("Your address is blocked for a while")))
            .await?;
        c.stream.close().await;
        return Ok(());
    }
    c.run().await
}

/// One connection being served.
struct Conn<'a> {
    shared: &'a Arc<Shared>,
    /// The place in the per-address count (the client's, once a trusted
    /// front end named it).
    _slot: Slot,
    /// A trusted front end named the client already (it may do so once).
    forwarded: bool,
    /// The trusted front end is the webmail: logins are service `webmail`.
    webmail: bool,
    /// The client's address: the peer's, or the one its front end named.
    ip: IpAddr,
    session: Session,
    stream: Stream,
    /// Input not used yet; starts at the first byte of the current command.
    buf: Vec<u8>,
    framer: Framer,
    log: &'a mut SessionLog,
}

impl Conn<'_> {
    async fn run(&mut self) -> io::Result<()> {
        let greeting = self.local(|s, out| s.greeting(out));
        self.stream.send(&greeting.1).await?;
        loop {
            // Small caps until login, the configured ones after.
            self.framer.set_limits(self.session.limits());
            let action = match self.framer.frame(&self.buf) {
                Frame::Command(n) => {
                    self.log.commands += 1;
                    let parsed = parse_command(&self.buf[..n]);
                    self.buf.drain(..n);
                    if self.buf.is_empty() && self.buf.capacity() > 64 * 1024 {
                        // After a large command: back to the small buffer.
                        self.buf = Vec::with_capacity(1024);
                    }
                    match parsed {
                        Ok(cmd) => self.run_blocking(|s, out| s.handle(cmd, out)).await??,
                        Err(e) => {
                            self.session.staged.clear();
                            let tag = e.tag.unwrap_or_else(|| "*".into());
                            self.reply(|s, out| s.bad(&tag, &e.message, out)).await?
                        }
                    }
                }
                Frame::Continue => {
                    self.stream
                        .send(&wire(Response::Continue("Ready for literal data")))
                        .await?;
                    continue;
                }
                Frame::Reject {
                    tag,
                    reason,
                    consumed,
                    close,
                } => {
                    self.buf.drain(..consumed);
                    let tag = tag.unwrap_or_else(|| "*".into());
                    self.reply(|s, out| match s.bad(&tag, reason, out) {
                        Action::None if close => {
                            out.send(Response::bye("Closing the connection"));
                            Action::Close
                        }
                        a => a,
                    })
                    .await?
                }
                Frame::Discard(n) => {
                    self.buf.drain(..n);
                    if n > 0 {
                        continue;
                    }
                    if !self.read_more().await? {
                        return Ok(());
                    }
                    continue;
                }
                Frame::Stream { head, size, sync } => {
                    if !self.stream_literal(head, size, sync).await? {
                        return Ok(());
                    }
                    continue;
                }
                Frame::Incomplete => {
                    // Between commands NOTIFY's news go out as they come;
                    // in the middle of one the client is busy sending.
                    let more = if self.buf.is_empty() && self.session.pushes() {
                        self.wait_pushing().await?
                    } else {
                        self.read_more().await?
                    };
                    if !more {
                        return Ok(());
                    }
                    continue;
                }
            };
            if !self.perform(action).await? {
                self.stream.close().await;
                return Ok(());
            }
        }
    }

    /// Reads what arrives next into the buffer. False when the client
    /// went away or was logged out for idling.
    async fn read_more(&mut self) -> io::Result<bool> {
        // Straight into the buffer's free room: an idle connection then
        // keeps only its small buffer (a chunk on the stack would live in
        // every connection's task for as long as it waits). The room grows
        // with what a client sends at once, up to READ_CHUNK more a read.
        let len = self.buf.len();
        let room = (self.buf.capacity() - len).clamp(1024, READ_CHUNK);
        self.buf.resize(len + room, 0);
        let r = self.stream.read_some(&mut self.buf[len..]).await;
        self.buf.truncate(len + *r.as_ref().unwrap_or(&0));
        match r {
            Ok(0) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                let _ = self
                    .stream
                    .send(&wire(Response::bye("Autologout; idle for too long")))
                    .await;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Waits for the next command while NOTIFY is set (RFC 5465): looks
    /// every `idle_poll` whether there is news and sends it, as in IDLE
    /// but with no command running. False when the client went away or
    /// was logged out for idling.
    async fn wait_pushing(&mut self) -> io::Result<bool> {
        let poll = self.session.settings.idle_poll;
        let deadline = tokio::time::Instant::now() + self.session.settings.timeout;
        loop {
            let len = self.buf.len();
            let room = (self.buf.capacity() - len).clamp(1024, READ_CHUNK);
            self.buf.resize(len + room, 0);
            tokio::select! {
                r = self.stream.read(&mut self.buf[len..]) => {
                    let n = *r.as_ref().unwrap_or(&0);
                    self.buf.truncate(len + n);
                    return r.map(|n| n > 0);
                }
                _ = tokio::time::sleep(poll) => {
                    self.buf.truncate(len);
                    // Only news is worth a blocking thread and a writer.
                    if self.session.push_needed() {
                        self.run_blocking(|s, out| s.push(out)).await?;
                    }
                    if tokio::time::Instant::now() > deadline {
                        let _ = self
                            .stream
                            .send(&wire(Response::bye("Autologout; idle for too long")))
                            .await;
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// Writes an APPEND message of `size` bytes, which follows
    /// `buf[..head]`, to a staging file of the user's store as it arrives,
    /// and leaves the command with an empty literal in its place. The
    /// session's APPEND then takes the file. False when the client went away.
    async fn stream_literal(&mut self, head: usize, size: u64, sync: bool) -> io::Result<bool> {
        let head: Vec<u8> = self.buf.drain(..head).collect();
        let staged = tokio::task::block_in_place(|| match &mut self.session.state {
            State::Authenticated(a) | State::Selected(a, _) => a
                .store
                .stage()
                .map_err(|e| format!("Cannot store the message: {e}")),
            _ => Err("Log in first".to_string()),
        });
        let (mut file, mut failed) = match staged {
            Ok(f) => (Some(tokio::fs::File::from_std(f)), None),
            Err(why) => (None, Some(why)),
        };
        if sync && self.buf.is_empty() {
            self.stream
                .send(&wire(Response::Continue("Ready for literal data")))
                .await?;
        }
        // The literal is read whatever happens to the file: the client
        // sends it in any case, and the command's end follows it.
        let mut left = size;
        loop {
            let n = left.min(self.buf.len() as u64) as usize;
            if n > 0 {
                if let Some(f) = &mut file {
                    if let Err(e) = f.write_all(&self.buf[..n]).await {
                        failed = Some(format!("Cannot store the message: {e}"));
                        file = None;
                    }
                }
                self.buf.drain(..n);
                left -= n as u64;
            }
            if left == 0 {
                break;
            }
            if !self.read_more().await? {
                return Ok(false);
            }
        }
        let staged = match (file, failed) {
            (Some(mut f), None) => match f.flush().await {
                Ok(()) => Ok((f.into_std().await, size)),
                Err(e) => Err(format!("Cannot store the message: {e}")),
            },
            (_, Some(why)) => Err(why),
            (None, None) => Err("Cannot store the message".to_string()),
        };
        let mut rest = empty_literal(&head);
        // The empty literal's content starts where the rewritten head ends:
        // the APPEND finds its file by that offset.
        self.session.staged.push((rest.len(), staged));
        rest.extend_from_slice(&self.buf);
        self.buf = rest;
        self.framer.restart();
        Ok(true)
    }

    /// Runs `f` on the session with nothing but short replies (no file
    /// I/O), and returns its result and what it wrote.
    fn local<R>(&mut self, f: impl FnOnce(&mut Session, &mut Out) -> R) -> (R, Vec<u8>) {
        let mut sink = |_: &[u8]| Err(io::Error::other("a short reply grew too large"));
        let mut out = Out::new(&mut sink);
        let r = f(&mut self.session, &mut out);
        (r, std::mem::take(&mut out.buf))
    }

    /// A short reply from the session, sent at once.
    async fn reply(
        &mut self,
        f: impl FnOnce(&mut Session, &mut Out) -> Action,
    ) -> io::Result<Action> {
        let (action, bytes) = self.local(f);
        self.stream.send(&bytes).await?;
        Ok(action)
    }

    /// Runs `f` on this thread with file I/O allowed (a command, an IDLE
    /// poll). What it writes reaches the client after it returns, from
    /// this task, when it is a few lines (most commands); a response that
    /// grows past `Out`'s threshold (a large FETCH) starts a writer task
    /// that owns the connection meanwhile and sends each piece with the
    /// write deadline, and a failed or timed-out write makes the command's
    /// next write fail.
    async fn run_blocking<R>(
        &mut self,
        f: impl FnOnce(&mut Session, &mut Out) -> R,
    ) -> io::Result<R> {
        let mut writer: Option<Writer> = None;
        let session = &mut self.session;
        let stream = &mut self.stream;
        let (r, rest) = tokio::task::block_in_place(|| {
            let mut sink = |b: &[u8]| {
                let (tx, _) = writer.get_or_insert_with(|| spawn_writer(stream.detach()));
                tx.blocking_send(b.to_vec()).map_err(|_| stopped_reading())
            };
            let mut out = Out::new(&mut sink);
            let r = f(session, &mut out);
            (r, std::mem::take(&mut out.buf))
        });
        match writer {
            None => {
                if !rest.is_empty() {
                    self.stream.send(&rest).await?;
                }
            }
            Some((tx, handle)) => {
                let queued = if rest.is_empty() {
                    Ok(())
                } else {
                    tx.send(rest).await.map_err(|_| stopped_reading())
                };
                drop(tx);
                let (stream, written) = handle
                    .await
                    .map_err(|e| io::Error::other(format!("response writer: {e}")))?;
                self.stream = stream;
                written?;
                queued?;
            }
        }
        Ok(r)
    }

    /// Performs an action; false when the connection must close.
    async fn perform(&mut self, mut action: Action) -> io::Result<bool> {
        loop {
            match action {
                Action::None => return Ok(true),
                Action::Close => return Ok(false),
                Action::Abuse => {
                    let req = Request::Failure {
                        ip: self.ip,
                        service: Service::Imap,
                        reason: "too many bad commands".into(),
                    };
                    let socket = &self.shared.authd_socket;
                    let _ = tokio::time::timeout(AUTHD_TIMEOUT, authd::call(socket, req)).await;
                    crate::warn!("imap too many errors address={}", self.ip);
                    return Ok(false);
                }
                Action::StartTls => {
                    let Some(acc) = self.shared.tls.clone() else {
                        return Ok(true);
                    };
                    // Anything pipelined after STARTTLS is discarded (RFC 9051 6.2.1).
                    self.buf.clear();
                    self.framer.restart();
                    self.stream.start_tls(&acc).await?;
                    self.session.tls = true;
                    self.log.starttls();
                    return Ok(true);
                }
                Action::SaslContinue => {
                    self.stream.send(&wire(Response::Continue(""))).await?;
                    // The line holds a password: wiped when dropped.
                    let Some(line) = self.read_line().await?.map(zeroize::Zeroizing::new) else {
                        return Ok(false);
                    };
                    action = self.run_blocking(|s, out| s.sasl_line(&line, out)).await?;
                }
                Action::Login {
                    tag,
                    user,
                    password,
                } => {
                    let service = if self.webmail {
                        Service::Webmail
                    } else {
                        Service::Imap
                    };
                    let result = login(self.shared, &user, password, self.ip, service).await;
                    let refused = result
                        .as_ref()
                        .err()
                        .map(|(code, text)| format!("[{}] {text}", response::code(code)));
                    self.run_blocking(|s, out| match result {
                        Ok(info) => {
                            let store = MaildirStore::open(
                                &info.mail_path,
                                info.quota_bytes,
                                info.quota_messages,
                            );
                            match store {
                                Ok(st) => s.finish_login(
                                    &tag,
                                    Ok((info.address.clone(), Box::new(st))),
                                    out,
                                ),
                                Err(e) => {
                                    let text = e.to_string();
                                    s.finish_login(&tag, Err((Code::Unavailable, &text)), out)
                                }
                            }
                        }
                        Err(refused) => s.finish_login(&tag, Err(refused), out),
                    })
                    .await?;
                    match self.session.user() {
                        Some(u) => self.log.login(u),
                        None => self.log.login_failed(
                            &user,
                            refused.as_deref().unwrap_or("[UNAVAILABLE] mailbox"),
                        ),
                    }
                    return Ok(true);
                }
                Action::Idle { tag } => return self.idle(tag).await,
                Action::Forwarded { ip, port, webmail } => {
                    self.webmail |= webmail;
                    return self.forwarded(ip, port).await;
                }
            }
        }
    }

    /// A trusted front end named its client: count the connection under the
    /// client's address, check that address's ban, and log under it from
    /// now on. False when the connection must close.
    async fn forwarded(&mut self, ip: IpAddr, port: Option<u16>) -> io::Result<bool> {
        if self.forwarded || ip == self.ip {
            return Ok(true);
        }
        self.forwarded = true;
        let settings = self.session.settings.clone();
        let slot = self
            .shared
            .connections
            .admit(ip, usize::MAX, settings.max_per_ip);
        self.log.forwarded(ip, port);
        self.ip = ip;
        match slot {
            Ok(slot) => self._slot = slot,
            Err(_) => {
                self.log.refused("too-many-connections");
                self.stream
                    .send(&wire(Response::bye(
                        "Too many connections from your address",
                    )))
                    .await?;
                return Ok(false);
            }
        }
        if banned(self.shared, ip).await {
            self.log.refused("banned");
            self.stream
                .send(&wire(Response::bye("Your address is blocked for a while")))
                .await?;
            return Ok(false);
        }
        Ok(true)
    }

    /// The next line (an AUTHENTICATE continuation); None when the client
    /// went away or sent more than a line may hold.
    async fn read_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        let max = self.session.limits().max_line;
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                return Ok(Some(self.buf.drain(..=i).collect()));
            }
            if self.buf.len() > max || !self.read_more().await? {
                return Ok(None);
            }
        }
    }

    /// IDLE (RFC 2177): poll the folder every `idle_poll` until DONE.
    async fn idle(&mut self, tag: String) -> io::Result<bool> {
        let poll = self.session.settings.idle_poll;
        self.session.release();
        let deadline = tokio::time::Instant::now() + self.session.settings.timeout;
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                if line.trim_ascii().eq_ignore_ascii_case(b"DONE") {
                    self.run_blocking(|s, out| {
                        s.poll(out, true);
                        out.send(Response::ok(&tag, "IDLE terminated"));
                    })
                    .await?;
                    return Ok(true);
                }
                self.stream
                    .send(&wire(Response::bad(&tag, "Expected DONE")))
                    .await?;
                return Ok(true);
            }
            if self.buf.len() > 1024 {
                self.stream
                    .send(&wire(Response::bad(&tag, "Expected DONE")))
                    .await?;
                self.buf.clear();
                return Ok(true);
            }
            let mut chunk = [0u8; 1024];
            tokio::select! {
                r = self.stream.read(&mut chunk) => {
                    let n = r?;
                    if n == 0 {
                        return Ok(false);
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                _ = tokio::time::sleep(poll) => {
                    // Only a change is worth a blocking thread and a writer.
                    if self.session.poll_needed(true) {
                        self.run_blocking(|s, out| {
                            s.poll(out, true);
                            s.release();
                        })
                        .await?;
                    }
                    if tokio::time::Instant::now() > deadline {
                        self.stream.send(&wire(Response::bye("Autologout; idle for too long"))).await?;
                        return Ok(false);
                    }
                }
            }
        }
    }
}

async fn banned(shared: &Shared, ip: IpAddr) -> bool {
    matches!(authd::is_banned(&shared.authd_socket, ip).await, Ok(true))
}

async fn login(
    shared: &Shared,
    user: &str,
    password: crate::proto::sasl::Secret,
    ip: IpAddr,
    service: Service,
) -> Result<authd::UserInfo, (Code<'static>, &'static str)> {
    let req = Request::Login {
        user: user.to_string(),
        password,
        service,
        ip: Some(ip),
    };
    match authd::call(&shared.authd_socket, req).await {
        Ok(Reply::LoginOk { user }) => Ok(user),
        Ok(Reply::LoginFailed {
            reason: LoginFailure::Banned,
        }) => Err((Code::Unavailable, "Your address is blocked for a while")),
        Ok(Reply::LoginFailed { .. }) => Err((Code::AuthenticationFailed, "Invalid credentials")),
        Ok(_) => Err((
            Code::Unavailable,
            "Unexpected answer from the authentication service",
        )),
        Err(e) if e.is_temporary() => Err((
            Code::Unavailable,
            "Authentication service unavailable, try later",
        )),
        Err(_) => Err((Code::AuthenticationFailed, "Invalid credentials")),
    }
}

/// A writer task that owns the connection while a large response is
/// written: the queue of its pieces, and the task, which gives the
/// connection back with how the writing went.
type Writer = (
    tokio::sync::mpsc::Sender<Vec<u8>>,
    tokio::task::JoinHandle<(Stream, io::Result<()>)>,
);

fn spawn_writer(mut stream: Stream) -> Writer {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
    let handle = tokio::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            if let Err(e) = stream.send(&chunk).await {
                // Dropping the receiver fails the command's next write.
                return (stream, Err(e));
            }
        }
        (stream, Ok(()))
    });
    (tx, handle)
}

fn stopped_reading() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the client stopped reading")
}

/// The bytes of a response the server writes outside any command (no
/// mailbox names in them, so the wire form does not matter).
fn wire(r: Response) -> Vec<u8> {
    let mut out = Vec::new();
    response::write(&mut out, &r, response::Wire::default());
    out
}
