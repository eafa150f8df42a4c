//! The only part of kmp-smtpd that touches sockets, files and time: it
//! accepts connections, enforces the connection limits, runs TLS, asks
//! kmp-authd, writes messages into the queue's drop directory, and performs
//! whatever [`Action`]s the session returns. The checks at the door
//! (sender authentication, scanners) are in `checks.rs`.

mod checks;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::policy::Policy;
use super::session::{Action, Input, Listener, Session, TlsInfo};
use crate::ipc::authd::{self, AsyncClient, ClientError, Request};
use crate::net::{Counter, Deadlines, Refused, Slot, Stream};
use crate::paths::Paths;
use crate::proto::smtp::reply::{self, Reply};
use crate::proto::smtp::{BodyDecoder, CommandReader, Mode, ParseError};
use crate::queue::{Incoming, QueueError};
use crate::{info, warn};

/// How long a kmp-authd request may take before the answer is "try later".
const AUTHD_TIMEOUT: Duration = Duration::from_secs(10);
/// How much is read from the socket at a time.
const READ_CHUNK: usize = 8192;
/// Decoded message bytes are handed to the queue file in pieces this big.
const WRITE_CHUNK: usize = 64 * 1024;
/// The window of `smtpd.max_connection_rate`.
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Forget rate counters when this many addresses are tracked.
const RATE_TABLE_MAX: usize = 100_000;

/// The shared state of all sessions.
pub struct Server {
    /// Replaced whole on SIGHUP; each session keeps the one it started with.
    policy: crate::daemon::Live<Arc<Policy>>,
    paths: Paths,
    tls: Option<TlsAcceptor>,
    connections: Arc<Counter>,
    /// Connections per address in the current `RATE_WINDOW`.
    rate: Mutex<HashMap<crate::net::Cidr, (Instant, usize)>>,
    next_id: AtomicU64,
    /// Set on SIGTERM: sessions waiting for input say 421 and close.
    stop: tokio::sync::watch::Sender<bool>,
}

impl Server {
    pub fn new(
        policy: Policy,
        paths: Paths,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Arc<Server> {
        let connections = Counter::new();
        connections.set_ipv6_prefix(policy.ipv6_prefix);
        Arc::new(Server {
            policy: crate::daemon::Live::new(Arc::new(policy)),
            paths,
            tls: tls.map(TlsAcceptor::from),
            connections,
            rate: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            stop: tokio::sync::watch::Sender::new(false),
        })
    }

    /// Serves `listeners` until the process is told to stop.
    pub async fn run(self: Arc<Server>, listeners: Vec<(std::net::TcpListener, Listener)>) {
        for (l, kind) in listeners {
            let listener = match tokio::net::TcpListener::from_std(l) {
                Ok(l) => l,
                Err(e) => {
                    warn!("cannot use a listening socket: {e}");
                    continue;
                }
            };
            let srv = self.clone();
            tokio::spawn(async move { srv.accept_loop(listener, kind).await });
        }
        std::future::pending::<()>().await;
    }

    async fn accept_loop(self: Arc<Server>, listener: tokio::net::TcpListener, kind: Listener) {
        loop {
            match listener.accept().await {
                Ok((sock, peer)) => {
                    let srv = self.clone();
                    tokio::spawn(async move { srv.connection(sock, peer, kind).await });
                }
                Err(e) => {
                    // Out of descriptors and the like: wait instead of spinning.
                    warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Tells every session to end (421) at its next wait for input, and
    /// waits up to `grace` for them to go. A message being committed is
    /// finished; one still arriving is dropped, unacknowledged.
    pub async fn stop(&self, grace: Duration) {
        self.stop.send_replace(true);
        let end = Instant::now() + grace;
        while self.connections.total() > 0 && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The policy new sessions get.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.get()
    }

    /// Puts a new policy in force for new sessions (SIGHUP).
    pub fn reload(&self, policy: Policy) {
        self.connections.set_ipv6_prefix(policy.ipv6_prefix);
        self.policy.set(Arc::new(policy));
    }

    /// Takes a connection slot for `ip`, or says why not.
    fn admit(self: &Arc<Server>, p: &Policy, ip: IpAddr) -> Result<Slot, (Reply, bool)> {
        if p.max_connection_rate > 0 {
            // A panic while holding the lock leaves only counters behind: go on.
            let mut rate = self.rate.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if rate.len() >= RATE_TABLE_MAX {
                rate.retain(|_, (t, _)| now.duration_since(*t) < RATE_WINDOW);
            }
            let e = rate
                .entry(crate::net::client_net(ip, p.ipv6_prefix))
                .or_insert((now, 0));
            if now.duration_since(e.0) >= RATE_WINDOW {
                *e = (now, 0);
            }
            e.1 += 1;
            if e.1 > p.max_connection_rate {
                return Err((reply::RATE_EXCEEDED, true));
            }
        }
        self.connections
            .admit(ip, p.max_connections, p.max_connections_per_ip)
            .map_err(|r| match r {
                Refused::Total => (reply::TOO_MANY_CONNECTIONS, false),
                Refused::PerIp => (reply::TOO_MANY_FROM_YOU, false),
            })
    }

    fn session_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let t = crate::clock::Clock::System.now_ms();
        format!("{:08X}{:04X}", (t / 1000) as u32, n as u16)
    }

    async fn connection(self: Arc<Server>, sock: TcpStream, peer: SocketAddr, kind: Listener) {
        let _ = sock.set_nodelay(true);
        let local_ip = sock.local_addr().ok().map(|a| canonical(a.ip()));
        let ip = canonical(peer.ip());
        // Logs name an IPv6 client as RFC 5321 writes it: unknown[IPv6:...].
        let lit = crate::net::literal(ip);
        let id = self.session_id();
        let refuse = |mut sock: TcpStream, r: Reply| async move {
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                sock.write_all(r.to_wire().as_bytes()),
            )
            .await;
            let _ = sock.shutdown().await;
        };
        let policy = self.policy();
        let _slot = match self.admit(&policy, ip) {
            Ok(s) => s,
            Err((r, report)) => {
                info!("{id}: reject: CONNECT from unknown[{lit}]: {}", r.summary());
                if report {
                    self.report(ip, kind, "connection rate limit exceeded");
                }
                return refuse(sock, r).await;
            }
        };
        if policy.max_load > 0 {
            if let Some(load) = crate::sys::load_average() {
                if load > policy.max_load as f64 {
                    let r = reply::OVERLOADED;
                    info!(
                        "{id}: reject: CONNECT from unknown[{lit}]: {} (load {load:.2})",
                        r.summary()
                    );
                    return refuse(sock, r).await;
                }
            }
        }
        info!(
            "{id} smtp connected address={ip} port={} service={} tls={}",
            peer.port(),
            kind.name(),
            if kind == Listener::Smtps { "yes" } else { "no" }
        );
        let deadlines = deadlines(&policy);
        let (stream, tls) = match (kind, &self.tls) {
            (Listener::Smtps, Some(acc)) => match Stream::accept_tls(sock, acc, deadlines).await {
                Ok(t) => {
                    let info = t.tls().map(tls_info);
                    if let Some(info) = &info {
                        info!(
                            "{id} smtp tls address={ip} version={} cipher={}",
                            info.version, info.cipher
                        );
                    }
                    (t, info)
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    info!("{id}: TLS handshake timed out from unknown[{lit}]");
                    return;
                }
                Err(e) => {
                    info!("{id}: TLS handshake failed from unknown[{lit}]: {e}");
                    return;
                }
            },
            (Listener::Smtps, None) => {
                warn!("{id}: port 465 without a certificate: closing");
                return;
            }
            _ => (Stream::plain(sock, deadlines), None),
        };
        let mut conn = Conn {
            srv: self.clone(),
            policy: policy.clone(),
            stream,
            ip,
            kind,
            buf: Vec::new(),
            pos: 0,
            out: Vec::new(),
            reader: CommandReader::new(),
            message: None,
            authd: None,
            deadline: None,
            local_ip,
            conn_checks: None,
            gathered: Default::default(),
        };
        let banned = conn.ban_check().await;
        let mut session = Session::new(policy.clone(), id.clone(), ip, kind, tls);
        let greeting = session.greet(banned);
        let end = match conn.perform(&mut session, greeting).await {
            Ok(()) => conn.serve(&mut session).await,
            Err(e) => Err(e),
        };
        // No request is in flight once the session is over: the next
        // session may use the connection to kmp-authd.
        if let Some(c) = conn.authd.take() {
            c.keep(&conn.srv.paths.authd_socket());
        }
        match end {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                info!("{id}: lost connection from unknown[{lit}]")
            }
            Err(e) => info!("{id}: connection from unknown[{lit}] ended: {e}"),
        }
        info!(
            "{id} smtp disconnected address={ip} messages={}",
            session.messages()
        );
    }

    /// Reports misbehaviour to kmp-authd, without waiting.
    fn report(&self, ip: IpAddr, kind: Listener, reason: &'static str) {
        let path = self.paths.authd_socket();
        tokio::spawn(async move {
            let req = Request::Failure {
                ip,
                service: kind.service(),
                reason: reason.to_string(),
            };
            let _ = tokio::time::timeout(AUTHD_TIMEOUT, authd::call(&path, req)).await;
        });
    }
}

/// A message being received: its queue file and decoder.
struct Message {
    file: Option<Incoming>,
    error: Option<QueueError>,
    decoder: BodyDecoder,
    pending: Vec<u8>,
    /// Held whole in `pending` for the sender checks (lib/mailauth, no
    /// size cap) and the scanners (lib/antispam/scan, while it is no larger
    /// than `scan.max_size`): the cap.
    hold: Option<u64>,
    /// The sender checks (`[auth]`) read this message.
    auth: bool,
    /// The scanners (`[scan]`) read this message.
    scan: bool,
    /// Grew past the cap: written as it came, not scanned.
    oversize: bool,
    /// The length of our Received header at the start of `pending`.
    head: usize,
    /// Our own headers (X-Spam-*, X-Kmpromail-Junk) removed from the
    /// client's header section.
    stripped: bool,
}

/// The client's header section is held up to this size until its end is
/// seen, so that our own header fields can be taken out of it whole.
const HEADER_HOLD: usize = 1 << 20;

impl Message {
    /// Hands decoded bytes to the queue file once enough have gathered.
    fn flush(&mut self, force: bool) {
        if let Some(cap) = self.hold {
            if self.pending.len() as u64 <= cap.saturating_add(self.head as u64) {
                return;
            }
            self.hold = None;
            self.oversize = true;
        }
        if !self.stripped {
            let complete =
                crate::antispam::scan::verdict::header_end(&self.pending[self.head..]).is_some();
            if !complete && !force && self.pending.len() < HEADER_HOLD {
                return;
            }
            crate::antispam::scan::verdict::strip_ours(&mut self.pending, self.head);
            self.stripped = true;
        }
        if self.pending.len() < WRITE_CHUNK && !force {
            return;
        }
        if let Some(f) = &mut self.file {
            if let Err(e) = f.write(&self.pending) {
                self.error = Some(e);
                self.file = None;
            }
        }
        self.pending.clear();
    }
}

/// One connection.
struct Conn {
    srv: Arc<Server>,
    policy: Arc<Policy>,
    stream: Stream,
    ip: IpAddr,
    kind: Listener,
    /// Input not yet used is `buf[pos..]`.
    buf: Vec<u8>,
    pos: usize,
    /// Replies not yet sent.
    out: Vec<u8>,
    reader: CommandReader,
    message: Option<Message>,
    authd: Option<AsyncClient>,
    /// When the command being waited for must be complete.
    deadline: Option<tokio::time::Instant>,
    /// The address the client connected to (HELO checks).
    local_ip: Option<IpAddr>,
    /// The connection checks' verdict, once asked.
    conn_checks: Option<(String, crate::antispam::scan::ConnVerdict)>,
    /// The accepted recipients' spam settings, for the message's verdict.
    gathered: crate::antispam::scan::Gathered,
}

impl Conn {
    /// The command loop.
    async fn serve(&mut self, session: &mut Session) -> io::Result<()> {
        loop {
            let input = session.input();
            let actions = match input {
                Input::Closed => return Ok(()),
                Input::Command => {
                    let (used, r) = self.reader.command(&self.buf[self.pos..]);
                    self.pos += used;
                    match r {
                        Err(ParseError::NeedsMoreData) => {
                            if !self.wait_for_line(session).await? {
                                return Ok(());
                            }
                            continue;
                        }
                        Err(e) => session.parse_error(e),
                        Ok(cmd) => {
                            let more = self.pos < self.buf.len();
                            session.command(cmd, more)
                        }
                    }
                }
                Input::AuthLine => {
                    let (used, r) = self.reader.auth_line(&self.buf[self.pos..]);
                    self.pos += used;
                    match r {
                        Err(ParseError::NeedsMoreData) => {
                            if !self.wait_for_line(session).await? {
                                return Ok(());
                            }
                            continue;
                        }
                        Err(e) => session.parse_error(e),
                        Ok(line) => session.auth_line(&line),
                    }
                }
            };
            self.deadline = None;
            self.perform(session, actions).await?;
        }
    }

    /// Reads more of a command line before its deadline. False when the
    /// session ended (timeout).
    async fn wait_for_line(&mut self, session: &mut Session) -> io::Result<bool> {
        let limit = self.policy.command_timeout;
        let deadline = *self
            .deadline
            .get_or_insert_with(|| tokio::time::Instant::now() + limit);
        match self.read_more(Some(deadline)).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                let actions = session.timeout();
                self.perform(session, actions).await?;
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                let actions = session.shutdown();
                self.perform(session, actions).await?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Performs actions in order; answers to questions add more in front.
    async fn perform(&mut self, session: &mut Session, actions: Vec<Action>) -> io::Result<()> {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(a) = queue.pop_front() {
            let more = match a {
                Action::Reply(r) => {
                    r.write_to(&mut self.out);
                    Vec::new()
                }
                Action::Log(line) => {
                    info!("{line}");
                    Vec::new()
                }
                Action::Report(reason) => {
                    self.srv.report(self.ip, self.kind, reason);
                    Vec::new()
                }
                Action::Close => {
                    self.flush().await?;
                    self.stream.close().await;
                    return Ok(());
                }
                Action::Abort => {
                    self.message = None;
                    Vec::new()
                }
                Action::StartTls => {
                    self.flush().await?;
                    // RFC 3207 5 (and CVE-2011-0411): plaintext pipelined
                    // behind STARTTLS must not be taken as commands after it.
                    self.buf.clear();
                    self.pos = 0;
                    match self.start_tls().await {
                        Ok(info) => {
                            info!(
                                "{} smtp starttls address={} version={} cipher={}",
                                session.id(),
                                self.ip,
                                info.version,
                                info.cipher
                            );
                            session.tls_started(info)
                        }
                        Err(e) => {
                            return Err(io::Error::new(
                                e.kind(),
                                format!("STARTTLS handshake failed: {e}"),
                            ))
                        }
                    }
                    Vec::new()
                }
                Action::Login(c) => {
                    let req = Request::Login {
                        user: c.user.clone(),
                        password: c.password,
                        service: self.kind.service(),
                        ip: Some(self.ip),
                    };
                    let r = self.ask(req).await;
                    session.login_result(&c.user, r)
                }
                Action::LookupSender(m, p) => {
                    let r = self
                        .ask(Request::Lookup {
                            address: m.to_string(),
                        })
                        .await;
                    session.sender_result(m, p, r)
                }
                Action::LookupRecipient(m, p) => {
                    let r = self
                        .ask(Request::Lookup {
                            address: m.to_string(),
                        })
                        .await;
                    match self.scan_recipient(session, &m, &r).await {
                        Some((reply, detail)) => session.recipient_refused(m, reply, &detail),
                        None => session.recipient_result(m, p, r),
                    }
                }
                Action::ReceiveData => {
                    self.flush().await?;
                    self.open_message(session, Mode::Data);
                    match self.receive_data().await {
                        Ok(summary) => session.message_end(summary),
                        Err(e) if e.kind() == io::ErrorKind::TimedOut => session.timeout(),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => session.shutdown(),
                        Err(e) => return Err(e),
                    }
                }
                Action::ReceiveChunk { size, last, keep } => {
                    if keep && self.message.is_none() {
                        self.open_message(session, Mode::Chunks);
                    }
                    match self.receive_chunk(size, keep).await {
                        Ok(()) if keep => {
                            let summary = match &mut self.message {
                                Some(m) if last => {
                                    let s = m.decoder.clone().finish(&mut m.pending);
                                    m.flush(true);
                                    s
                                }
                                Some(m) => m.decoder.summary(),
                                None => continue,
                            };
                            session.chunk_end(size, last, summary)
                        }
                        Ok(()) => Vec::new(),
                        Err(e) if e.kind() == io::ErrorKind::TimedOut => session.timeout(),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => session.shutdown(),
                        Err(e) => return Err(e),
                    }
                }
                Action::FetchUrl { url, last } => {
                    let max = session.max_message_size();
                    let socket = self.srv.paths.urlfetch_socket();
                    let timeout = self.policy.data_timeout;
                    match super::burl::fetch(&socket, &url, max, timeout).await {
                        Ok(data) => {
                            if self.message.is_none() {
                                self.open_message(session, Mode::Chunks);
                            }
                            let summary = match &mut self.message {
                                Some(m) => {
                                    m.decoder.decode(&data, &mut m.pending);
                                    if last {
                                        let s = m.decoder.clone().finish(&mut m.pending);
                                        m.flush(true);
                                        s
                                    } else {
                                        m.flush(false);
                                        m.decoder.summary()
                                    }
                                }
                                None => continue,
                            };
                            session.chunk_end(data.len() as u64, last, summary)
                        }
                        Err(r) => {
                            info!("{}: BURL {}: {}", session.id(), r.code, r.text);
                            session.burl_failed(r)
                        }
                    }
                }
                Action::Queue(env) => match self.sender_checks(session, &env).await {
                    Some(refusal) => {
                        self.message = None;
                        session.refused_by_checks(refusal, "")
                    }
                    None => match self.scan_message(session).await {
                        Some((reply, detail)) => {
                            self.message = None;
                            session.content_refused(reply, &detail)
                        }
                        None => {
                            let r = self.commit(&env).await;
                            session.queued(r)
                        }
                    },
                },
            };
            for a in more.into_iter().rev() {
                queue.push_front(a);
            }
        }
        // RFC 2920 3.2: replies may wait while more pipelined commands are
        // buffered, but must go out before the server waits for input.
        if !self.has_line() {
            self.flush().await?;
        }
        Ok(())
    }

    /// Whether a complete line is already buffered.
    fn has_line(&self) -> bool {
        self.buf[self.pos..].contains(&b'\n')
    }

    fn open_message(&mut self, session: &Session, mode: Mode) {
        let max = session.max_message_size();
        let scan = &self.policy.scan;
        let checked = crate::antispam::scan::Scanner::applies(
            self.kind == Listener::Mx,
            session.user().is_some(),
            self.policy.may_relay(self.ip),
        );
        let mut m = Message {
            file: None,
            error: None,
            decoder: BodyDecoder::new(mode, max),
            pending: Vec::new(),
            hold: None,
            auth: false,
            scan: checked && scan.holds(),
            oversize: false,
            head: 0,
            stripped: false,
        };
        match Incoming::create(&self.srv.paths.incoming()) {
            Ok(f) => {
                let date = mail_builder::headers::date::Date::now().to_rfc822();
                let header = session.received_header(f.id().as_str(), &date);
                m.file = Some(f);
                m.pending.extend_from_slice(header.as_bytes());
                m.head = header.len();
                m.auth = session.auth_checked();
                // The sender checks need the whole message; the scanners
                // as much as they read.
                m.hold = if m.auth {
                    Some(u64::MAX)
                } else {
                    m.scan.then_some(scan.settings.max_size)
                };
            }
            Err(e) => m.error = Some(e),
        }
        self.message = Some(m);
    }

    /// Reads DATA up to CRLF.CRLF into the open message.
    async fn receive_data(&mut self) -> io::Result<crate::proto::smtp::Summary> {
        let timeout = self.policy.data_timeout;
        loop {
            let Some(m) = &mut self.message else {
                return Err(io::Error::other("no message open"));
            };
            let (used, done) = m.decoder.decode(&self.buf[self.pos..], &mut m.pending);
            self.pos += used;
            m.flush(done);
            if done {
                return Ok(m.decoder.summary());
            }
            self.read_more(Some(tokio::time::Instant::now() + timeout))
                .await?;
        }
    }

    /// Reads exactly `size` octets of a BDAT chunk, keeping or discarding them.
    async fn receive_chunk(&mut self, mut size: u64, keep: bool) -> io::Result<()> {
        let timeout = self.policy.data_timeout;
        loop {
            let avail = (self.buf.len() - self.pos) as u64;
            let n = avail.min(size) as usize;
            if keep {
                if let Some(m) = &mut self.message {
                    m.decoder
                        .decode(&self.buf[self.pos..self.pos + n], &mut m.pending);
                    m.flush(false);
                }
            }
            self.pos += n;
            size -= n as u64;
            if size == 0 {
                return Ok(());
            }
            self.read_more(Some(tokio::time::Instant::now() + timeout))
                .await?;
        }
    }

    /// Commits the open message: durable before this returns Ok.
    async fn commit(&mut self, env: &crate::queue::Envelope) -> Result<String, String> {
        let Some(mut m) = self.message.take() else {
            return Err("no message open".into());
        };
        m.hold = None;
        m.flush(true);
        if let Some(e) = m.error {
            return Err(e.to_string());
        }
        let Some(file) = m.file else {
            return Err("no queue file".into());
        };
        let env = env.clone();
        let started = std::time::Instant::now();
        let r = tokio::task::spawn_blocking(move || file.commit(&env)).await;
        match r {
            Ok(Ok(qid)) => {
                crate::stats::accepted(started.elapsed());
                crate::queue::kick(&self.srv.paths.kick_socket());
                Ok(qid.to_string())
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("queue writer failed: {e}")),
        }
    }

    /// One request to kmp-authd over the session's connection (made on
    /// first use, made again once if it broke).
    async fn ask(&mut self, req: Request) -> Result<authd::Reply, ClientError> {
        let path = self.srv.paths.authd_socket();
        for attempt in 0..2 {
            if self.authd.is_none() {
                match tokio::time::timeout(AUTHD_TIMEOUT, AsyncClient::checkout(&path)).await {
                    Ok(Ok(c)) => self.authd = Some(c),
                    Ok(Err(e)) => return Err(e),
                    Err(_) => return Err(timed_out(&path)),
                }
            }
            let Some(c) = self.authd.as_mut() else {
                continue;
            };
            match tokio::time::timeout(AUTHD_TIMEOUT, c.call(req.clone())).await {
                Ok(Ok(r)) => return Ok(r),
                Ok(Err(ClientError::Refused { temporary, message })) => {
                    return Err(ClientError::Refused { temporary, message })
                }
                Ok(Err(e)) => {
                    self.authd = None;
                    if attempt == 1 {
                        return Err(e);
                    }
                }
                Err(_) => {
                    self.authd = None;
                    return Err(timed_out(&path));
                }
            }
        }
        Err(timed_out(&path))
    }

    /// Whether kmp-authd says this address is banned (not when it is down:
    /// the MX keeps working and lookups answer 4xx on their own).
    async fn ban_check(&mut self) -> bool {
        // The table kmp-authd publishes answers without a request.
        if let Some(b) = authd::published_ban(&self.srv.paths.authd_socket(), self.ip) {
            return b;
        }
        match self.ask(Request::BanCheck { ip: self.ip }).await {
            Ok(authd::Reply::Ban { banned, .. }) => banned,
            Ok(_) => false,
            Err(e) => {
                warn!("ban check for {}: {e}", self.ip);
                false
            }
        }
    }

    async fn start_tls(&mut self) -> io::Result<TlsInfo> {
        let Some(acc) = self.srv.tls.clone() else {
            return Err(io::Error::other("no TLS configured"));
        };
        self.stream.start_tls(&acc).await?;
        self.stream
            .tls()
            .map(tls_info)
            .ok_or_else(|| io::Error::other("TLS did not start"))
    }

    /// Reads whatever arrives next (flushing replies first). EOF is an error.
    async fn read_more(&mut self, deadline: Option<tokio::time::Instant>) -> io::Result<()> {
        self.flush().await?;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > READ_CHUNK {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.reserve(READ_CHUNK);
        let mut stop = self.srv.stop.subscribe();
        let read = self.stream.read_buf(&mut self.buf);
        let limited = async {
            match deadline {
                Some(d) => tokio::time::timeout_at(d, read)
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "timeout"))?,
                None => read.await,
            }
        };
        let n = tokio::select! {
            r = limited => r?,
            _ = stop.wait_for(|s| *s) => {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "shutting down"))
            }
        };
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        self.stream.send(&out).await
    }
}

fn timed_out(path: &std::path::Path) -> ClientError {
    ClientError::Unavailable(
        path.into(),
        io::Error::new(io::ErrorKind::TimedOut, "no answer"),
    )
}

/// The deadlines of a connection: RFC 5321 4.5.3.2 gives none for a write
/// or a handshake, so they get the command timeout too.
fn deadlines(p: &Policy) -> Deadlines {
    Deadlines {
        read: p.command_timeout,
        write: p.command_timeout,
        handshake: p.command_timeout,
    }
}

/// IPv4-mapped IPv6 addresses are IPv4 clients.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn tls_info(c: &rustls::ServerConnection) -> TlsInfo {
    let version = match c.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(v) => format!("{v:?}"),
        None => "TLS".to_string(),
    };
    let cipher = c
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_default();
    TlsInfo { version, cipher }
}
