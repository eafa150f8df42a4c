//! The sockets: TLS, HTTP/1.1 (hyper), bounded bodies, sessions, and the
//! log line of every change. The decisions are made elsewhere: the request
//! in [`super::api`], who may in [`super::authz`], what it does in
//! [`super::handlers`].

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::api::{self, ApiError, Call, Method};
use super::authz::{authorize, Caller};
use super::handlers;
use super::token::Tokens;
use crate::clock::Clock;
use crate::config::Config;
use crate::ipc::authd::{self, LoginFailure, Reply, Service};
use crate::paths::Paths;
use crate::proto::sasl::Secret;
use crate::userdb::lmdb::Lmdb;
use crate::userdb::{Address, Directory, State};

/// What kmp-admind takes from the configuration (re-read on SIGHUP).
#[derive(Debug, Clone)]
pub struct Settings {
    pub admins: Vec<String>,
    pub lifetime: u64,
    pub max_body: usize,
    pub max_connections: usize,
    pub timeout: Duration,
    pub mail_root: PathBuf,
    pub db_dir: PathBuf,
    pub authd: PathBuf,
    pub fetch: super::fetch::FetchSettings,
    /// Sign-up: attempts per client address within the window; the front
    /// ends that may name the client.
    pub signup_max: usize,
    pub signup_window: u64,
    pub trusted: Vec<crate::net::Cidr>,
    /// kmp-local's socket for lists' state.
    pub lists_socket: PathBuf,
    /// `paths.announce`: where announcements go for kmp-local (empty: off).
    pub announce_dir: PathBuf,
    /// `system.hostname`, for the announcements' Message-ID.
    pub hostname: String,
    /// `smtpd.max_message_size`: the largest announcement.
    pub max_message: u64,
}

impl Settings {
    pub fn from_config(cfg: &Config) -> Settings {
        let paths = Paths::new(cfg);
        Settings {
            admins: cfg.list("admind.admins").to_vec(),
            lifetime: cfg.duration("admind.session_lifetime").as_secs().max(1),
            max_body: cfg.usize("admind.max_body"),
            max_connections: cfg.usize("admind.max_connections").max(1),
            timeout: cfg.duration("admind.timeout"),
            authd: paths.authd_socket(),
            fetch: super::fetch::FetchSettings::from_config(cfg),
            signup_max: cfg.usize("admind.signup_max"),
            signup_window: cfg.duration("admind.signup_window").as_secs().max(1),
            trusted: cfg.nets("admind.trusted_networks"),
            lists_socket: paths.lists_socket(),
            mail_root: paths.mail,
            db_dir: paths.db,
            announce_dir: match cfg.str("paths.announce") {
                "" => PathBuf::new(),
                _ => cfg.path_of("paths.announce"),
            },
            hostname: cfg.str("system.hostname").to_string(),
            max_message: cfg.u64("smtpd.max_message_size"),
        }
    }
}

/// The daemon's state, shared by every connection.
pub struct Server {
    settings: RwLock<Settings>,
    tokens: Tokens,
    db: Lmdb,
    tls: TlsAcceptor,
    clock: Clock,
    signups: super::signup::RateLimit,
}

type HttpReply = Response<Full<Bytes>>;

impl Server {
    pub fn new(
        settings: Settings,
        tls: Arc<rustls::ServerConfig>,
        clock: Clock,
    ) -> Result<Server, String> {
        let db = Lmdb::open(&settings.db_dir).map_err(|e| e.to_string())?;
        Ok(Server {
            settings: RwLock::new(settings),
            tokens: Tokens::new()?,
            db,
            tls: TlsAcceptor::from(tls),
            clock,
            signups: Default::default(),
        })
    }

    /// SIGHUP: new admins, lifetimes and limits (not the listeners, the
    /// certificate or the database path).
    pub fn reload(&self, s: Settings) {
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = s;
    }

    fn settings(&self) -> Settings {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Serves on `listeners` until `shutdown` completes.
    pub async fn run(
        self: Arc<Self>,
        listeners: Vec<TcpListener>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        let sem = Arc::new(Semaphore::new(self.settings().max_connections));
        let mut tasks = Vec::new();
        for l in listeners {
            l.set_nonblocking(true)?;
            let l = tokio::net::TcpListener::from_std(l)?;
            let (server, sem) = (self.clone(), sem.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let Ok(permit) = sem.clone().acquire_owned().await else {
                        return;
                    };
                    let (tcp, peer) = match l.accept().await {
                        Ok(x) => x,
                        Err(e) => {
                            crate::warn!("accept: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let server = server.clone();
                    tokio::spawn(async move {
                        server.connection(tcp, peer).await;
                        drop(permit);
                    });
                }
            }));
        }
        shutdown.await;
        for t in tasks {
            t.abort();
        }
        Ok(())
    }

    async fn connection(self: Arc<Self>, tcp: tokio::net::TcpStream, peer: SocketAddr) {
        // An answer is written as a head and a body: without this, Nagle's
        // algorithm held the body until the client's delayed ACK.
        let _ = tcp.set_nodelay(true);
        let timeout = self.settings().timeout;
        let tls = match tokio::time::timeout(timeout, self.tls.accept(tcp)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                crate::info!("tls failed ip={} ({e})", peer.ip());
                return;
            }
            Err(_) => return,
        };
        let server = self.clone();
        let svc = hyper::service::service_fn(move |req| {
            let server = server.clone();
            async move { Ok::<_, Infallible>(server.handle(req, peer.ip()).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(timeout)
            .max_buf_size(64 * 1024)
            .serve_connection(TokioIo::new(tls), svc);
        // A whole connection lives at most this long: slow clients cannot
        // hold a slot for ever.
        let _ = tokio::time::timeout(timeout * 10, conn).await;
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>, ip: IpAddr) -> HttpReply {
        match self.answer(req, ip).await {
            Ok(v) => respond(200, &v),
            Err(e) => respond(e.status, &json!({"error": e.message, "status": e.status})),
        }
    }

    async fn answer(
        self: Arc<Self>,
        req: Request<Incoming>,
        ip: IpAddr,
    ) -> Result<Value, ApiError> {
        let s = self.settings();
        let method = Method::parse(req.method().as_str());
        let target = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let bearer = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_string());
        if let Some(n) = req
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if n > s.max_body as u64 {
                // A client sends its whole body before it reads the answer:
                // read what was announced (up to a bound) and throw it away,
                // so that it sees the 413 rather than a reset connection.
                if n <= DRAIN_MAX {
                    let mut body = req.into_body();
                    let _ = tokio::time::timeout(s.timeout, async {
                        while let Some(Ok(_)) = body.frame().await {}
                    })
                    .await;
                }
                return Err(too_large(s.max_body));
            }
        }
        let body = Limited::new(req.into_body(), s.max_body);
        let body = match tokio::time::timeout(s.timeout, body.collect()).await {
            Err(_) => return Err(ApiError::new(408, "the request body came too slowly")),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(too_large(s.max_body))
            }
            Ok(Err(e)) => return Err(ApiError::bad(format!("cannot read the body: {e}"))),
            Ok(Ok(b)) => b.to_bytes(),
        };
        let call = api::parse(method, &target, &body)?;
        let call = match call {
            Call::Login(l) => return self.login(l, ip, &s).await,
            Call::SignupDomains => {
                let server = self.clone();
                return tokio::task::spawn_blocking(move || super::signup::domains(&server.db))
                    .await
                    .unwrap_or_else(|e| {
                        Err(ApiError::new(500, format!("the request failed: {e}")))
                    });
            }
            Call::Signup(addr, body) => return self.signup(addr, body, ip, &s).await,
            call => call,
        };
        let token = bearer.ok_or_else(|| {
            ApiError::new(
                401,
                "log in first: POST /v1/login, then send Authorization: Bearer TOKEN",
            )
        })?;
        let now = self.clock.now();
        let session = self
            .tokens
            .check(&token, now)
            .map_err(|e| ApiError::new(401, e.message()))?;
        if let Call::Logout = call {
            self.tokens.revoke(&session, now);
            crate::info!("logout user={} ip={ip}", session.user);
            return Ok(json!({"logged_out": session.user}));
        }
        let (name, object, change) = (call.name(), call.object(), call.is_change());
        let server = self.clone();
        let user = session.user.clone();
        let r = tokio::task::spawn_blocking(move || {
            let addr = Address::parse(&user)
                .map_err(|_| ApiError::new(401, "the session names no valid user"))?;
            match server.db.user(&addr).map_err(handlers::db_error)? {
                Some(u) if u.state == State::Active => {}
                _ => {
                    return Err(ApiError::new(
                        401,
                        format!("{user} is no longer an active user: log in again"),
                    ))
                }
            }
            let caller = Caller::of(&server.db, &s.admins, &addr).map_err(handlers::db_error)?;
            authorize(&caller, &call)?;
            if super::lists::handles(&call) {
                return super::lists::execute(&server.db, &s.lists_socket, &caller, call);
            }
            match call {
                Call::Fetch(f) => super::fetch::execute(&server.db, &s.fetch, &caller, f),
                Call::Announce { domain, body } => handlers::announce(
                    &server.db,
                    &s.announce_dir,
                    &s.hostname,
                    s.max_message,
                    &caller,
                    &domain,
                    &body,
                ),
                call => handlers::execute(&server.db, &s.mail_root, &caller, call),
            }
        })
        .await
        .unwrap_or_else(|e| Err(ApiError::new(500, format!("the request failed: {e}"))));
        match &r {
            Ok(_) if change => crate::info!(
                "change user={} ip={ip} op={name} object={object} status=200",
                session.user
            ),
            Err(e) if change || e.status == 403 => crate::info!(
                "refused user={} ip={ip} op={name} object={object} status={} ({})",
                session.user,
                e.status,
                e.message
            ),
            _ => {}
        }
        r
    }

    /// `POST /v1/signup`: the client's ban and rate limit, then the account.
    async fn signup(
        self: Arc<Self>,
        addr: Address,
        body: super::signup::SignupBody,
        peer: IpAddr,
        s: &Settings,
    ) -> Result<Value, ApiError> {
        let ip = super::signup::client(peer, body.client_ip.as_deref(), &s.trusted);
        if let Ok(true) = authd::is_banned(&s.authd, ip).await {
            crate::info!("refused signup ip={ip} object={addr} status=429 (banned)");
            return Err(ApiError::new(
                429,
                "too many failed attempts from your address: try again later",
            ));
        }
        let now = self.clock.now();
        if !self.signups.allow(ip, now, s.signup_max, s.signup_window) {
            crate::info!("refused signup ip={ip} object={addr} status=429 (rate limit)");
            let req = authd::Request::Failure {
                ip,
                service: Service::Admin,
                reason: "sign-up flood".into(),
            };
            let _ = authd::call(&s.authd, req).await;
            return Err(ApiError::new(
                429,
                "too many sign-ups from your address: try again later",
            ));
        }
        let server = self.clone();
        let object = addr.to_string();
        let r = tokio::task::spawn_blocking(move || {
            super::signup::execute(&server.db, &addr, &body.password)
        })
        .await
        .unwrap_or_else(|e| Err(ApiError::new(500, format!("the request failed: {e}"))));
        match &r {
            Ok(v) => crate::info!(
                "change user=- ip={ip} op=signup object={object} status=200 pending={}",
                v["pending_approval"]
            ),
            Err(e) => crate::info!(
                "refused user=- ip={ip} op=signup object={object} status={} ({})",
                e.status,
                e.message
            ),
        }
        r
    }

    /// `POST /v1/login`: the password checked by kmp-authd (which counts
    /// failures and bans, as for every other service), then a token.
    async fn login(&self, l: api::Login, ip: IpAddr, s: &Settings) -> Result<Value, ApiError> {
        let api::Login { user, password } = l;
        let req = authd::Request::Login {
            user: user.clone(),
            password: Secret::from(password),
            service: Service::Admin,
            ip: Some(ip),
        };
        match authd::call(&s.authd, req).await {
            Ok(Reply::LoginOk { user: info }) => {
                let expires = self.clock.now().saturating_add(s.lifetime);
                let token = self
                    .tokens
                    .issue(&info.address, expires)
                    .map_err(|e| ApiError::new(503, e))?;
                crate::info!("login user={} ip={ip}", info.address);
                Ok(json!({"token": token, "user": info.address, "expires": expires}))
            }
            Ok(Reply::LoginFailed {
                reason: LoginFailure::Banned,
            }) => Err(ApiError::new(
                429,
                "too many failed logins from your address: try again later",
            )),
            Ok(Reply::LoginFailed { .. }) => {
                crate::info!("login failed user={user:?} ip={ip}");
                Err(ApiError::new(401, "login failed"))
            }
            Ok(_) => Err(ApiError::new(503, "kmp-authd answered something else")),
            Err(e) => {
                crate::error!("login user={user:?}: {e}");
                Err(ApiError::new(
                    503,
                    "cannot check logins now: try again later",
                ))
            }
        }
    }
}

/// The most of a refused body read (and thrown away) before the 413.
const DRAIN_MAX: u64 = 1 << 20;

fn too_large(max: usize) -> ApiError {
    ApiError::new(413, format!("the request body is larger than {max} bytes"))
}

fn respond(status: u16, v: &Value) -> HttpReply {
    let mut body = serde_json::to_vec_pretty(v).unwrap_or_default();
    body.push(b'\n');
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    h.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    if status == 401 {
        h.insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Bearer realm=\"kmp-admind\""),
        );
    }
    r
}
