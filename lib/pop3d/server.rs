//! The server: the only part of kmp-pop3d that touches sockets, files and
//! time. It accepts connections (plain with STLS, or implicit TLS), asks
//! kmp-authd about bans and logins, and performs what the session asks for.
//!
//! Output is buffered and flushed only when no complete command is waiting,
//! so a pipelining client (RFC 2449 section 6.6) gets its replies in few
//! packets. A dropped connection, a timeout or a crash never reaches the
//! UPDATE state: nothing is deleted unless the client said QUIT.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::clock::Clock;
use crate::config::Config;
use crate::daemon::Live;
use crate::ipc::authd::{self, LoginFailure, Reply, Request, Service};
use crate::net::{Counter, Deadlines, Slot, Stream};
use crate::proto::pop3::encode::Encoder;
use crate::proto::pop3::{reply, Decoder};

use super::session::{Action, LoginOutcome, MessageInfo, OpenFailure, Policy, Session};
use super::store::{Maildrop, Store};

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 4096;
/// Output is flushed once this much is waiting, even mid-pipeline.
const FLUSH_AT: usize = 64 * 1024;
/// Bytes read from a message file at a time.
const FILE_CHUNK: usize = 64 * 1024;
/// How long a TLS handshake or a write may take.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

impl Settings {
    /// The deadlines of a connection's stream.
    fn deadlines(&self) -> Deadlines {
        Deadlines {
            read: self.timeout,
            write: IO_TIMEOUT,
            handshake: IO_TIMEOUT,
        }
    }
}

/// The settings the server reads from the configuration (re-read on SIGHUP).
#[derive(Debug, Clone)]
pub struct Settings {
    pub timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub allow_plaintext: bool,
    pub expire: Option<String>,
    pub login_delay: u64,
    pub max_errors: u32,
    pub authd_socket: PathBuf,
    /// IPv6 clients are counted by this many leading bits (system.ipv6_prefix).
    pub ipv6_prefix: u8,
}

impl Settings {
    /// The settings `cfg` gives, or why `pop3d.expire` is wrong.
    pub fn from_config(cfg: &Config) -> Result<Settings, String> {
        let expire = match cfg.str("pop3d.expire").trim() {
            "" => None,
            e if e.eq_ignore_ascii_case("never") => Some("NEVER".to_string()),
            e if !e.is_empty() && e.len() <= 5 && e.bytes().all(|b| b.is_ascii_digit()) => {
                Some(e.to_string())
            }
            e => {
                return Err(format!(
                    "pop3d.expire: {e:?} is neither a number of days nor NEVER"
                ))
            }
        };
        Ok(Settings {
            timeout: cfg.duration("pop3d.timeout"),
            max_connections: cfg.usize("pop3d.max_connections"),
            max_connections_per_ip: cfg.usize("pop3d.max_connections_per_ip"),
            allow_plaintext: cfg.bool("pop3d.allow_plaintext"),
            expire,
            login_delay: cfg.duration("pop3d.login_delay").as_secs(),
            max_errors: u32::try_from(cfg.u64("pop3d.max_errors")).unwrap_or(u32::MAX),
            authd_socket: crate::paths::Paths::new(cfg).authd_socket(),
            ipv6_prefix: cfg.u64("system.ipv6_prefix").min(128) as u8,
        })
    }
}

/// The state shared by every session.
pub struct Server {
    settings: Live<Arc<Settings>>,
    tls: Live<Option<TlsAcceptor>>,
    store: Box<dyn Store>,
    clock: Clock,
    connections: Arc<Counter>,
    last_login: Mutex<HashMap<String, u64>>,
    next_id: AtomicU64,
}

impl Server {
    pub fn new(
        settings: Settings,
        tls: Option<Arc<rustls::ServerConfig>>,
        store: Box<dyn Store>,
        clock: Clock,
    ) -> Server {
        let connections = Counter::new();
        connections.set_ipv6_prefix(settings.ipv6_prefix);
        Server {
            settings: Live::new(Arc::new(settings)),
            tls: Live::new(tls.map(TlsAcceptor::from)),
            store,
            clock,
            connections,
            last_login: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// Takes new settings and a new certificate (SIGHUP).
    pub fn reload(&self, settings: Settings, tls: Option<Arc<rustls::ServerConfig>>) {
        self.connections.set_ipv6_prefix(settings.ipv6_prefix);
        self.settings.set(Arc::new(settings));
        self.tls.set(tls.map(TlsAcceptor::from));
    }

    fn settings(&self) -> Arc<Settings> {
        self.settings.get()
    }

    fn acceptor(&self) -> Option<TlsAcceptor> {
        self.tls.get()
    }

    /// Counts a connection from `ip` in, if the limits allow it.
    fn admit(&self, ip: IpAddr, s: &Settings) -> Option<Slot> {
        self.connections
            .admit(ip, s.max_connections, s.max_connections_per_ip)
            .ok()
    }

    /// Serves every listener until `shutdown` completes. `implicit_tls`
    /// listeners start TLS before the greeting (port 995).
    pub async fn run(
        self: Arc<Self>,
        plain: Vec<std::net::TcpListener>,
        implicit_tls: Vec<std::net::TcpListener>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> io::Result<()> {
        let mut tasks = tokio::task::JoinSet::new();
        for (l, tls) in plain
            .into_iter()
            .map(|l| (l, false))
            .chain(implicit_tls.into_iter().map(|l| (l, true)))
        {
            let l = TcpListener::from_std(l)?;
            tasks.spawn(self.clone().accept_loop(l, tls));
        }
        shutdown.await;
        tasks.abort_all();
        Ok(())
    }

    async fn accept_loop(self: Arc<Self>, l: TcpListener, implicit_tls: bool) {
        loop {
            match l.accept().await {
                Ok((sock, peer)) => {
                    let me = self.clone();
                    tokio::spawn(async move { me.connection(sock, peer, implicit_tls).await });
                }
                Err(e) => {
                    // Out of descriptors, say: wait a little rather than spin.
                    crate::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    async fn connection(self: Arc<Self>, sock: TcpStream, peer: SocketAddr, implicit_tls: bool) {
        let id = format!(
            "{:X}{:05X}",
            self.clock.now(),
            self.next_id.fetch_add(1, Ordering::Relaxed) & 0xFFFFF
        );
        let settings = self.settings();
        // An IPv4 client on an IPv6 socket is ::ffff:a.b.c.d: name it as IPv4.
        let ip = peer.ip().to_canonical();
        let Some(slot) = self.admit(ip, &settings) else {
            crate::warn!("{id} pop3 refused address={ip} reason=too-many-connections");
            let mut s = Stream::plain(sock, settings.deadlines());
            let _ = s.send(reply::BUSY.as_bytes()).await;
            return;
        };
        let r = self.session(&id, sock, peer, implicit_tls, &settings).await;
        drop(slot);
        match r {
            Ok(()) => crate::info!("{id} pop3 disconnected address={ip}"),
            Err(e) => crate::info!("{id} pop3 disconnected address={ip} error=\"{e}\""),
        }
    }

    async fn session(
        &self,
        id: &str,
        sock: TcpStream,
        peer: SocketAddr,
        implicit_tls: bool,
        settings: &Settings,
    ) -> io::Result<()> {
        // An IPv4 client on an IPv6 socket is ::ffff:a.b.c.d: name it as IPv4.
        let ip = peer.ip().to_canonical();
        let acceptor = self.acceptor();
        let mut stream = if implicit_tls {
            let Some(a) = acceptor.clone() else {
                return Err(io::Error::other("no TLS certificate configured"));
            };
            Stream::accept_tls(sock, &a, settings.deadlines()).await?
        } else {
            Stream::plain(sock, settings.deadlines())
        };
        crate::info!(
            "{id} pop3 connected address={ip} tls={}",
            if implicit_tls { "yes" } else { "no" }
        );
        if self.banned(ip, &settings.authd_socket).await {
            crate::warn!("{id} pop3 refused address={ip} reason=banned");
            let _ = stream.send(reply::BANNED.as_bytes()).await;
            return Ok(());
        }
        let policy = Policy {
            tls_available: acceptor.is_some(),
            tls_active: implicit_tls,
            plaintext_without_tls: settings.allow_plaintext || ip.is_loopback(),
            expire: settings.expire.clone(),
            login_delay: settings.login_delay,
            max_errors: settings.max_errors,
        };
        let mut c = Conn {
            id,
            ip,
            server: self,
            settings,
            stream,
            acceptor,
            session: Session::new(policy),
            decoder: Decoder::new(),
            input: Vec::with_capacity(READ_CHUNK),
            out: Vec::with_capacity(READ_CHUNK),
            drop: None,
            listed: 0,
            user: String::new(),
            retrieved: 0,
            closing: false,
        };
        let r = c.run().await;
        if c.drop.is_some() && !c.session.is_closed() {
            crate::info!(
                "{id} pop3 logout user={} retrieved={} deleted=0 (no QUIT: nothing deleted)",
                c.user,
                c.retrieved
            );
        }
        r
    }

    /// Asks kmp-authd whether `ip` is banned. When it cannot be asked, the
    /// connection goes on: the login will be refused for now anyway.
    async fn banned(&self, ip: IpAddr, socket: &std::path::Path) -> bool {
        matches!(authd::is_banned(socket, ip).await, Ok(true))
    }

    fn since_last_login(&self, user: &str) -> Option<u64> {
        let now = self.clock.now();
        let m = self.last_login.lock().unwrap_or_else(|p| p.into_inner());
        m.get(user).map(|t| now.saturating_sub(*t))
    }

    fn note_login(&self, user: &str, login_delay: u64) {
        if login_delay == 0 {
            return;
        }
        let now = self.clock.now();
        let mut m = self.last_login.lock().unwrap_or_else(|p| p.into_inner());
        // Forget logins older than any delay could care about.
        if m.len() > 100_000 {
            m.retain(|_, t| now.saturating_sub(*t) < 86400);
        }
        m.insert(user.to_string(), now);
    }
}

/// One connection being served.
struct Conn<'a> {
    id: &'a str,
    ip: IpAddr,
    server: &'a Server,
    settings: &'a Settings,
    stream: Stream,
    acceptor: Option<TlsAcceptor>,
    session: Session,
    decoder: Decoder,
    input: Vec<u8>,
    out: Vec<u8>,
    drop: Option<Box<dyn Maildrop>>,
    listed: usize,
    /// The logged-in user's address, for log lines.
    user: String,
    retrieved: usize,
    closing: bool,
}

impl Conn<'_> {
    async fn run(&mut self) -> io::Result<()> {
        let greeting = self.session.greeting();
        self.perform(vec![greeting]).await?;
        loop {
            while !self.closing {
                let acts = if self.session.wants_sasl() {
                    match self.decoder.next_sasl(&mut self.input) {
                        Some(r) => self.session.sasl_response(r),
                        None => break,
                    }
                } else {
                    match self.decoder.next_command(&mut self.input) {
                        Some(r) => self.session.command(r),
                        None => break,
                    }
                };
                self.perform(acts).await?;
                if self.out.len() >= FLUSH_AT {
                    self.flush().await?;
                }
            }
            self.flush().await?;
            if self.closing {
                return Ok(());
            }
            let mut chunk = [0u8; READ_CHUNK];
            let n = match self.stream.read_some(&mut chunk).await {
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    // RFC 1939 section 3: on the autologout timer "the server
                    // should close the TCP connection without removing any
                    // messages or sending any response". We say why first.
                    let _ = self.stream.send(reply::TIMEOUT.as_bytes()).await;
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout"));
                }
                r => r?,
            };
            if n == 0 {
                return Ok(());
            }
            self.input.extend_from_slice(&chunk[..n]);
            crate::proto::pop3::wipe(&mut chunk[..n]);
        }
    }

    /// Performs actions in order; answers from kmp-authd or the store bring
    /// further actions, done before the rest.
    async fn perform(&mut self, acts: Vec<Action>) -> io::Result<()> {
        let mut queue: VecDeque<Action> = acts.into();
        while let Some(a) = queue.pop_front() {
            let more = match a {
                Action::Reply(text) => {
                    self.out.extend_from_slice(text.as_bytes());
                    Vec::new()
                }
                Action::SendMessage { index, size, top } => {
                    self.send_message(index, size, top).await?;
                    Vec::new()
                }
                Action::StartTls => {
                    self.start_tls().await?;
                    Vec::new()
                }
                Action::Authenticate { user, password } => {
                    let outcome = self.login(&user, password).await;
                    self.session.authenticated(outcome)
                }
                Action::OpenMaildrop { user } => {
                    let r = self.open_maildrop(&user).await;
                    self.session.maildrop_opened(r)
                }
                Action::Expunge { indexes } => self.expunge(indexes).await,
                Action::ReportAbuse => {
                    let req = Request::Failure {
                        ip: self.ip,
                        service: Service::Pop3,
                        reason: "too many bad commands".into(),
                    };
                    let _ = authd::call(&self.settings.authd_socket, req).await;
                    crate::warn!("{} pop3 too many errors address={}", self.id, self.ip);
                    Vec::new()
                }
                Action::Close => {
                    self.closing = true;
                    Vec::new()
                }
            };
            for m in more.into_iter().rev() {
                queue.push_front(m);
            }
        }
        Ok(())
    }

    async fn login(&mut self, user: &str, password: crate::proto::pop3::Secret) -> LoginOutcome {
        if password.as_str().is_none() {
            return LoginOutcome::Failed(LoginFailure::BadCredentials);
        }
        let req = Request::Login {
            user: user.to_string(),
            password,
            service: Service::Pop3,
            ip: Some(self.ip),
        };
        let r = authd::call(&self.settings.authd_socket, req).await;
        // The request held the password: it was moved into the call and is gone.
        let user_log = printable(user);
        match r {
            Ok(Reply::LoginOk { user }) => {
                let since = self.server.since_last_login(&user.address);
                LoginOutcome::Ok {
                    user: Box::new(user),
                    since_last_login: since,
                }
            }
            Ok(Reply::LoginFailed { reason }) => {
                crate::info!(
                    "{} pop3 login failed user={user_log} address={} reason={}",
                    self.id,
                    self.ip,
                    reason.as_str()
                );
                LoginOutcome::Failed(reason)
            }
            Ok(other) => {
                crate::error!("{} pop3 kmp-authd answered {other:?} to a login", self.id);
                LoginOutcome::Temporary
            }
            Err(e) => {
                crate::error!("{} pop3 login user={user_log}: {e}", self.id);
                LoginOutcome::Temporary
            }
        }
    }

    async fn open_maildrop(
        &mut self,
        user: &crate::ipc::authd::UserInfo,
    ) -> Result<Vec<MessageInfo>, OpenFailure> {
        let server = self.server;
        let u = user.clone();
        // The store reads directories: keep that off the event loop.
        let r = tokio::task::block_in_place(|| {
            server.store.open(&u).map(|d| {
                let m = d.messages();
                (d, m)
            })
        });
        match r {
            Ok((d, messages)) => {
                let size: u64 = messages.iter().map(|m| m.size).sum();
                crate::info!(
                    "{} pop3 login user={} address={} messages={} size={size}",
                    self.id,
                    user.address,
                    self.ip,
                    messages.len()
                );
                let delay = if user.login_delay > 0 {
                    user.login_delay
                } else {
                    self.settings.login_delay
                };
                self.server.note_login(&user.address, delay);
                self.drop = Some(d);
                self.listed = messages.len();
                self.user = user.address.clone();
                Ok(messages)
            }
            Err(f) => {
                crate::info!(
                    "{} pop3 login user={} address={} refused={}",
                    self.id,
                    user.address,
                    self.ip,
                    match f {
                        OpenFailure::InUse => "in_use",
                        OpenFailure::Temporary => "temporary",
                    }
                );
                Err(f)
            }
        }
    }

    async fn send_message(&mut self, index: usize, size: u64, top: Option<u64>) -> io::Result<()> {
        let file = match self.drop.as_ref().map(|d| d.open_message(index)) {
            Some(Ok(f)) => f,
            Some(Err(e)) if e.kind() == io::ErrorKind::NotFound => {
                self.out.extend_from_slice(reply::MESSAGE_GONE.as_bytes());
                return Ok(());
            }
            Some(Err(e)) => {
                crate::error!("{} pop3 cannot read message {}: {e}", self.id, index + 1);
                self.out.extend_from_slice(reply::READ_FAILED.as_bytes());
                return Ok(());
            }
            None => {
                self.out.extend_from_slice(reply::READ_FAILED.as_bytes());
                return Ok(());
            }
        };
        let mut file = tokio::fs::File::from_std(file);
        let (mut enc, head) = match top {
            None => (Encoder::whole(), reply::retr(size)),
            Some(n) => (Encoder::top(n), reply::TOP_FOLLOWS.to_string()),
        };
        self.out.extend_from_slice(head.as_bytes());
        let mut buf = vec![0u8; FILE_CHUNK.min(size as usize + 1).max(512)];
        loop {
            let n = match file.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    // The +OK is out: all we can do is end the response and
                    // the session, so the client does not take a part for the whole.
                    crate::error!("{} pop3 read error in message {}: {e}", self.id, index + 1);
                    self.flush().await?;
                    return Err(e);
                }
            };
            if n == 0 {
                break;
            }
            enc.feed(&buf[..n], &mut self.out);
            if self.out.len() >= FLUSH_AT {
                self.flush().await?;
            }
            if enc.is_done() {
                break;
            }
        }
        enc.finish(&mut self.out);
        if top.is_none() {
            self.retrieved += 1;
        }
        Ok(())
    }

    async fn expunge(&mut self, indexes: Vec<usize>) -> Vec<Action> {
        let Some(mut d) = self.drop.take() else {
            return self.session.updated(0, self.listed, false);
        };
        let r = tokio::task::block_in_place(|| d.expunge(&indexes));
        // Dropping the maildrop releases the lock, after the deletions.
        drop(d);
        let left = self.listed.saturating_sub(r.removed);
        crate::info!(
            "{} pop3 logout user={} retrieved={} deleted={} left={left}{}",
            self.id,
            self.user,
            self.retrieved,
            r.removed,
            if r.failed > 0 {
                format!(" failed={}", r.failed)
            } else {
                String::new()
            }
        );
        self.session.updated(r.removed, left, r.failed == 0)
    }

    async fn start_tls(&mut self) -> io::Result<()> {
        self.flush().await?;
        let Some(a) = self.acceptor.clone() else {
            return Err(io::Error::other("STLS without a certificate"));
        };
        if self.stream.is_tls() {
            return Err(io::Error::other("STLS on a TLS connection"));
        }
        // RFC 2595 and CVE-2011-0411: anything the client pipelined after
        // STLS arrived in the clear and must not be taken as a command.
        crate::proto::pop3::wipe(&mut self.input);
        self.input.clear();
        self.decoder = Decoder::new();
        self.stream.start_tls(&a).await?;
        self.session.tls_started();
        crate::info!("{} pop3 starttls address={}", self.id, self.ip);
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let r = self.stream.send(&self.out).await;
        self.out.clear();
        if self.out.capacity() > 4 * FLUSH_AT {
            self.out.shrink_to(FLUSH_AT);
        }
        r
    }
}

/// A user name as it may appear in a log line.
fn printable(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}
