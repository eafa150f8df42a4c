//! The server: the only part of kmp-sieved that touches sockets and kmp-authd.
//! It accepts connections, asks kmp-authd about bans and logins, and
//! performs what the session asks for.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::clock::Clock;
use crate::config::Config;
use crate::daemon::Live;
use crate::ipc::authd::{self, Reply, Request, Service};
use crate::net::{Counter, Deadlines, Stream};
use crate::proto::sasl::Secret;
use crate::sieve::Extensions;
use crate::sievestore::Limits;

use super::proto::{response, Decoder};
use super::session::{Action, LoginResult, Policy, Session};

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 4096;
/// How long a TLS handshake or a write may take.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Room above the largest script for a literal (the quota check answers
/// QUOTA/MAXSIZE for a script between the two).
const LITERAL_SLACK: u64 = 64 * 1024;

/// The settings the server reads from the configuration (re-read on SIGHUP).
#[derive(Debug, Clone)]
pub struct Settings {
    pub timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub allow_plaintext: bool,
    pub max_errors: u32,
    pub limits: Limits,
    pub max_redirects: u64,
    pub authd_socket: PathBuf,
}

impl Settings {
    pub fn from_config(cfg: &Config) -> Settings {
        Settings {
            timeout: cfg.duration("sieved.timeout"),
            max_connections: cfg.usize("sieved.max_connections"),
            max_connections_per_ip: cfg.usize("sieved.max_connections_per_ip"),
            allow_plaintext: cfg.bool("sieved.allow_plaintext"),
            max_errors: u32::try_from(cfg.u64("sieved.max_errors")).unwrap_or(u32::MAX),
            limits: Limits::from_config(cfg),
            max_redirects: cfg.u64("sieve.max_redirects"),
            authd_socket: crate::paths::Paths::new(cfg).authd_socket(),
        }
    }

    fn deadlines(&self) -> Deadlines {
        Deadlines {
            read: self.timeout,
            write: IO_TIMEOUT,
            handshake: IO_TIMEOUT,
        }
    }
}

/// The state shared by every session.
pub struct Server {
    settings: Live<Arc<Settings>>,
    tls: Live<Option<TlsAcceptor>>,
    clock: Clock,
    connections: Arc<Counter>,
    next_id: AtomicU64,
}

impl Server {
    pub fn new(settings: Settings, tls: Option<Arc<rustls::ServerConfig>>, clock: Clock) -> Server {
        Server {
            settings: Live::new(Arc::new(settings)),
            tls: Live::new(tls.map(TlsAcceptor::from)),
            clock,
            connections: Counter::new(),
            next_id: AtomicU64::new(1),
        }
    }

    /// Takes new settings and a new certificate (SIGHUP).
    pub fn reload(&self, settings: Settings, tls: Option<Arc<rustls::ServerConfig>>) {
        self.settings.set(Arc::new(settings));
        self.tls.set(tls.map(TlsAcceptor::from));
    }

    fn settings(&self) -> Arc<Settings> {
        self.settings.get()
    }

    fn acceptor(&self) -> Option<TlsAcceptor> {
        self.tls.get()
    }

    /// Serves every listener until `shutdown` completes.
    pub async fn run(
        self: Arc<Self>,
        listeners: Vec<std::net::TcpListener>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> io::Result<()> {
        let mut tasks = tokio::task::JoinSet::new();
        for l in listeners {
            let l = TcpListener::from_std(l)?;
            tasks.spawn(self.clone().accept_loop(l));
        }
        shutdown.await;
        tasks.abort_all();
        Ok(())
    }

    async fn accept_loop(self: Arc<Self>, l: TcpListener) {
        loop {
            match l.accept().await {
                Ok((sock, peer)) => {
                    let me = self.clone();
                    tokio::spawn(async move { me.connection(sock, peer).await });
                }
                Err(e) => {
                    crate::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    async fn connection(self: Arc<Self>, sock: TcpStream, peer: SocketAddr) {
        let id = format!(
            "{:X}{:05X}",
            self.clock.now(),
            self.next_id.fetch_add(1, Ordering::Relaxed) & 0xFFFFF
        );
        let settings = self.settings();
        let ip = peer.ip().to_canonical();
        let Ok(slot) = self.connections.admit(
            ip,
            settings.max_connections,
            settings.max_connections_per_ip,
        ) else {
            crate::warn!("{id} sieve refused address={ip} reason=too-many-connections");
            let mut s = Stream::plain(sock, settings.deadlines());
            let _ = s
                .send(&response("BYE", Some("TRYLATER"), "Too many connections."))
                .await;
            return;
        };
        let r = self.session(&id, sock, ip, &settings).await;
        drop(slot);
        match r {
            Ok(()) => crate::info!("{id} sieve disconnected address={ip}"),
            Err(e) => crate::info!("{id} sieve disconnected address={ip} error=\"{e}\""),
        }
    }

    async fn session(
        &self,
        id: &str,
        sock: TcpStream,
        ip: IpAddr,
        settings: &Settings,
    ) -> io::Result<()> {
        let acceptor = self.acceptor();
        let mut stream = Stream::plain(sock, settings.deadlines());
        crate::info!("{id} sieve connected address={ip}");
        if matches!(authd::is_banned(&settings.authd_socket, ip).await, Ok(true)) {
            crate::warn!("{id} sieve refused address={ip} reason=banned");
            let _ = stream
                .send(&response(
                    "BYE",
                    None,
                    "Too many failures: try again later.",
                ))
                .await;
            return Ok(());
        }
        let policy = Policy {
            tls_available: acceptor.is_some(),
            tls_active: false,
            plaintext_ok: settings.allow_plaintext || ip.is_loopback(),
            max_errors: settings.max_errors,
            limits: settings.limits,
            extensions: Extensions::all(),
            max_redirects: settings.max_redirects,
        };
        let max_literal = settings.limits.max_script_size + LITERAL_SLACK;
        let mut c = Conn {
            id,
            ip,
            settings,
            stream,
            acceptor,
            session: Session::new(policy),
            decoder: Decoder::new(max_literal),
            input: Vec::with_capacity(READ_CHUNK),
            out: Vec::new(),
            closing: false,
        };
        c.run().await
    }
}

/// One connection being served.
struct Conn<'a> {
    id: &'a str,
    ip: IpAddr,
    settings: &'a Settings,
    stream: Stream,
    acceptor: Option<TlsAcceptor>,
    session: Session,
    decoder: Decoder,
    input: Vec<u8>,
    out: Vec<u8>,
    closing: bool,
}

impl Conn<'_> {
    async fn run(&mut self) -> io::Result<()> {
        let greeting = self.session.greeting();
        self.perform(greeting).await?;
        loop {
            while !self.closing {
                let Some(line) = self.decoder.next(&mut self.input) else {
                    break;
                };
                let acts = self.session.line(line);
                self.perform(acts).await?;
            }
            self.flush().await?;
            if self.closing {
                self.stream.close().await;
                return Ok(());
            }
            let mut chunk = [0u8; READ_CHUNK];
            let n = match self.stream.read_some(&mut chunk).await {
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    let _ = self
                        .stream
                        .send(&response("BYE", None, "Disconnected for inactivity."))
                        .await;
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

    /// Performs actions in order; answers bring further actions, done first.
    async fn perform(&mut self, acts: Vec<Action>) -> io::Result<()> {
        let mut queue: VecDeque<Action> = acts.into();
        while let Some(a) = queue.pop_front() {
            let more = match a {
                Action::Reply(r) => {
                    self.out.extend_from_slice(&r);
                    Vec::new()
                }
                Action::StartTls => {
                    self.start_tls().await?;
                    self.session.tls_started()
                }
                Action::Login { user, password } => {
                    let r = self.login(&user, password).await;
                    self.session.login_result(r)
                }
                Action::ReportAbuse => {
                    let req = Request::Failure {
                        ip: self.ip,
                        service: Service::Sieve,
                        reason: "too many bad commands".into(),
                    };
                    let _ = authd::call(&self.settings.authd_socket, req).await;
                    crate::warn!("{} sieve too many errors address={}", self.id, self.ip);
                    Vec::new()
                }
                Action::Log(line) => {
                    crate::info!("{} sieve {line}", self.id);
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

    async fn login(&mut self, user: &str, password: Secret) -> LoginResult {
        let req = Request::Login {
            user: user.to_string(),
            password,
            service: Service::Sieve,
            ip: Some(self.ip),
        };
        let r = authd::call(&self.settings.authd_socket, req).await;
        let user_log = super::session::printable(user);
        match r {
            Ok(Reply::LoginOk { user }) => {
                // Scripts live in the Maildir: make it if mail never came.
                let path = user.mail_path.clone();
                match tokio::task::spawn_blocking(move || crate::maildir::Maildir::create(&path))
                    .await
                {
                    Ok(Ok(_)) => LoginResult::Ok {
                        address: user.address,
                        home: user.mail_path,
                    },
                    Ok(Err(e)) => {
                        crate::error!("{} sieve login user={}: {e}", self.id, user.address);
                        LoginResult::Temporary
                    }
                    Err(e) => {
                        crate::error!("{} sieve login user={}: {e}", self.id, user.address);
                        LoginResult::Temporary
                    }
                }
            }
            Ok(Reply::LoginFailed { reason }) => {
                crate::info!(
                    "{} sieve login failed user={user_log} address={} reason={}",
                    self.id,
                    self.ip,
                    reason.as_str()
                );
                LoginResult::Failed(reason)
            }
            Ok(other) => {
                crate::error!("{} sieve kmp-authd answered {other:?} to a login", self.id);
                LoginResult::Temporary
            }
            Err(e) => {
                crate::error!("{} sieve login user={user_log}: {e}", self.id);
                LoginResult::Temporary
            }
        }
    }

    async fn start_tls(&mut self) -> io::Result<()> {
        self.flush().await?;
        let Some(a) = self.acceptor.clone() else {
            return Err(io::Error::other("STARTTLS without a certificate"));
        };
        // CVE-2011-0411: input pipelined behind STARTTLS came in the clear.
        crate::proto::pop3::wipe(&mut self.input);
        self.input.clear();
        self.decoder = Decoder::new(self.settings.limits.max_script_size + LITERAL_SLACK);
        self.stream.start_tls(&a).await?;
        crate::info!("{} sieve starttls address={}", self.id, self.ip);
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let r = self.stream.send(&self.out).await;
        self.out.clear();
        r
    }
}
