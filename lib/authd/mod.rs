//! kmp-authd: the only reader of password hashes.
//!
//! It answers the requests of `ipc::authd` on a Unix socket: verifies logins
//! (with a cache of good ones, see [`cache`]), looks up recipients (user,
//! alias, plus-address, catch-all), counts failures and keeps bans
//! ([`bans`]). The user database is read through [`Directory`] with a fresh
//! read transaction per request, so kmpctl's writes are seen at once; SIGHUP
//! re-reads the configuration and re-opens the database.
//!
//! What it does not do: write users (kmpctl does), or trust what a client
//! says beyond the request itself — a malformed frame closes that connection
//! and nothing else.

pub mod bans;
pub mod cache;
pub mod server;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock};

use tokio::sync::Semaphore;

use crate::clock::Clock;
use crate::config::Config;
use crate::ipc::authd::{Entry, LoginFailure, Reply, Request, Service};
use crate::net::Cidr;
use crate::paths::Paths;
use crate::userdb::address::normalize_domain;
use crate::userdb::lmdb::Lmdb;
use crate::userdb::password::{self, Secret, MAX_PASSWORD};
use crate::userdb::{Address, DbError, Directory, Resolved, State, User};
use bans::{Bans, Limits};
use cache::LoginCache;

/// The name of the ban table's file in `paths.db`.
pub const BANS_FILE: &str = "authd-bans";

/// What kmp-authd takes from the configuration (re-read on SIGHUP).
#[derive(Debug, Clone)]
pub struct Settings {
    pub default_domain: String,
    pub limits: Limits,
    pub mail_root: PathBuf,
    pub db_dir: PathBuf,
    /// Where the ban table is published for the daemons (the run directory).
    pub run_dir: PathBuf,
    /// SRS (`auth.srs_*`): bounces to our SRS addresses go back to the sender.
    pub srs: Option<crate::mailauth::srs::Srs>,
}

impl Settings {
    pub fn from_config(cfg: &Config) -> Settings {
        let paths = Paths::new(cfg);
        Settings {
            default_domain: normalize_domain(cfg.str("system.default_domain")).unwrap_or_default(),
            limits: Limits {
                max_failures: cfg.u64("authd.max_failures").max(1),
                window_ms: cfg.duration("authd.failure_window").as_millis() as u64,
                ban_secs: cfg.duration("authd.ban_time").as_secs(),
                ipv6_prefix: cfg.u64("system.ipv6_prefix").min(128) as u8,
            },
            mail_root: paths.mail,
            db_dir: paths.db,
            run_dir: paths.run,
            srs: crate::mailauth::srs::from_config(cfg).unwrap_or_else(|e| {
                crate::warn!("SRS off: {e}");
                None
            }),
        }
    }
}

/// The daemon's state, shared by every connection.
pub struct Authd {
    settings: RwLock<Settings>,
    db: RwLock<Option<Lmdb>>,
    cache: Mutex<LoginCache>,
    bans: Mutex<Bans>,
    /// Greylisting's triplets (kmp-smtpd asks, `scan.greylist`).
    greylist: Mutex<crate::antispam::scan::greylist::Table>,
    /// Password hashing is CPU- and (argon2) memory-heavy: at most this many
    /// at once, the rest wait their turn.
    hashing: Semaphore,
    clock: Clock,
}

/// Why kmp-authd could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Db(#[from] DbError),
    #[error("socket {0}: {1}")]
    Socket(PathBuf, std::io::Error),
    #[error("another kmp-authd is answering on {0}")]
    Running(PathBuf),
}

impl StartError {
    pub fn exit_code(&self) -> i32 {
        match self {
            StartError::Db(e) => e.exit_code(),
            StartError::Socket(_, e) => crate::exit::from_io(e),
            StartError::Running(_) => crate::exit::UNAVAILABLE,
        }
    }
}

impl Authd {
    /// Opens the database and the ban table.
    pub fn open(settings: Settings, clock: Clock) -> Result<Authd, StartError> {
        let db = Lmdb::open(&settings.db_dir)?;
        let (mut bans, problems) = Bans::load(&settings.db_dir.join(BANS_FILE), clock.now());
        for p in problems {
            crate::warn!("ban table: {p}");
        }
        bans.publish(settings.run_dir.join(bans::PUBLISHED));
        let (greylist, problem) = crate::antispam::scan::greylist::Table::load(
            &settings.db_dir.join(crate::antispam::scan::greylist::FILE),
        );
        if let Some(p) = problem {
            crate::warn!("greylist table: {p}");
        }
        // Made now, so the first unknown user costs one hash like any other.
        password::dummy_hash();
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Ok(Authd {
            settings: RwLock::new(settings),
            db: RwLock::new(Some(db)),
            cache: Mutex::new(LoginCache::new()),
            bans: Mutex::new(bans),
            greylist: Mutex::new(greylist),
            hashing: Semaphore::new(threads * 2),
            clock,
        })
    }

    /// SIGHUP: new settings, and the database opened afresh (it may have
    /// been restored from a backup). On failure requests answer "try again
    /// later" until the next SIGHUP.
    pub fn reload(&self, settings: Settings) {
        let dir = settings.db_dir.clone();
        *lock_w(&self.settings) = settings;
        let mut db = lock_w(&self.db);
        // Close the old environment before opening: one process may hold a
        // path only once.
        *db = None;
        match Lmdb::open(&dir) {
            Ok(d) => {
                *db = Some(d);
                crate::info!("re-opened the user database {}", dir.display());
            }
            Err(e) => crate::error!("cannot re-open the user database: {e}"),
        }
    }

    fn settings(&self) -> Settings {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn with_db<T>(&self, f: impl FnOnce(&Lmdb) -> Result<T, DbError>) -> Result<T, DbError> {
        let g = self.db.read().unwrap_or_else(|p| p.into_inner());
        match g.as_ref() {
            Some(db) => f(db),
            None => Err(DbError::Io("the user database is not open".into())),
        }
    }

    fn bans(&self) -> MutexGuard<'_, Bans> {
        self.bans.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cache(&self) -> MutexGuard<'_, LoginCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers one request.
    pub async fn handle(&self, req: Request) -> Reply {
        match req {
            Request::Login {
                user,
                password,
                service,
                ip,
            } => self.login(&user, password, service, ip).await,
            Request::Lookup { address } => self.lookup(&address),
            Request::Failure {
                ip,
                service,
                reason,
            } => {
                self.failure(Some(ip), None, service, &reason);
                Reply::Done
            }
            Request::BanCheck { ip } => {
                let until = self.bans().banned(ip, self.clock.now());
                Reply::Ban {
                    banned: until.is_some(),
                    until,
                }
            }
            Request::BanList => Reply::Bans {
                bans: self.bans().list(self.clock.now()),
            },
            Request::BanAdd {
                net,
                seconds,
                reason,
            } => {
                let cidr: Cidr = match net.parse::<Cidr>() {
                    Ok(c) => c.network(),
                    Err(e) => return refuse(e),
                };
                let now = self.clock.now();
                let until = now.saturating_add(seconds);
                let r = self.bans().add(cidr, until, reason.clone(), now);
                crate::info!("ban net={cidr} seconds={seconds} reason={reason:?}");
                match r {
                    Ok(()) => Reply::Done,
                    Err(e) => temporary(format!("the ban is in force but not saved: {e}")),
                }
            }
            Request::BanDel { net } => {
                let cidr: Cidr = match net.parse::<Cidr>() {
                    Ok(c) => c.network(),
                    Err(e) => return refuse(e),
                };
                let r = self.bans().del(cidr);
                match r {
                    Ok(true) => {
                        crate::info!("unban net={cidr}");
                        Reply::Done
                    }
                    Ok(false) => refuse(format!("no ban on {cidr}")),
                    Err(e) => temporary(format!("the ban is lifted but not saved: {e}")),
                }
            }
            Request::Ping => Reply::Pong,
            Request::Greylist {
                net,
                sender,
                recipient,
                rules,
            } => self.greylist(&net, &sender, &recipient, rules),
            Request::DomainUsers { domain } => self.domain_users(&domain),
            Request::FetchAccounts { owner } => self.fetch_accounts(owner.as_deref()),
        }
    }

    /// The fetch accounts of active users whose domain allows the fetch
    /// agent, for kmp-fetch.
    fn fetch_accounts(&self, owner: Option<&str>) -> Reply {
        let owner = match owner.map(Address::parse).transpose() {
            Ok(o) => o,
            Err(e) => {
                return Reply::Error {
                    temporary: false,
                    message: e.to_string(),
                }
            }
        };
        let r = self.with_db(|db| {
            let fdb = db.fetch_db()?;
            let t = db.read()?;
            let mut out = Vec::new();
            let mut active: std::collections::HashMap<String, bool> = Default::default();
            for a in db.fetch_accounts_in(&t, fdb, owner.as_ref())? {
                let ok = match active.get(&a.owner) {
                    Some(ok) => *ok,
                    None => {
                        let ok = match Address::parse(&a.owner) {
                            Ok(addr) => {
                                db.user_in(&t, &addr)?
                                    .is_some_and(|u| u.state == State::Active)
                                    && db
                                        .get_json::<crate::userdb::Domain>(
                                            &t,
                                            db.domains,
                                            addr.domain().as_bytes(),
                                        )?
                                        .is_none_or(|d| {
                                            d.limits.allows(crate::userdb::limits::Access::Fetch)
                                        })
                            }
                            Err(_) => false,
                        };
                        active.insert(a.owner.clone(), ok);
                        ok
                    }
                };
                if ok {
                    out.push(a);
                }
            }
            Ok(out)
        });
        match r {
            Ok(accounts) => Reply::FetchAccounts { accounts },
            Err(e) => {
                crate::error!("fetch accounts: {e}");
                temporary(e.to_string())
            }
        }
    }

    /// One greylisting question; the table is saved now and then.
    fn greylist(
        &self,
        net: &str,
        sender: &str,
        recipient: &str,
        rules: crate::antispam::scan::greylist::Rules,
    ) -> Reply {
        use crate::antispam::scan::greylist;
        let now = self.clock.now();
        let path = self.settings().db_dir.join(greylist::FILE);
        let mut t = self.greylist.lock().unwrap_or_else(|p| p.into_inner());
        let answer = t.check(net, sender, recipient, rules, now);
        if t.save_due(now) {
            if let Err(e) = t.save(&path, now) {
                crate::warn!("cannot save the greylist table: {e}");
            }
        }
        Reply::Greylist { answer }
    }

    /// Writes the greylist table if it changed (at shutdown).
    pub fn save_greylist(&self) {
        let path = self
            .settings()
            .db_dir
            .join(crate::antispam::scan::greylist::FILE);
        let mut t = self.greylist.lock().unwrap_or_else(|p| p.into_inner());
        if t.dirty {
            if let Err(e) = t.save(&path, self.clock.now()) {
                crate::warn!("cannot save the greylist table: {e}");
            }
        }
    }

    fn domain_users(&self, domain: &str) -> Reply {
        let Ok(d) = normalize_domain(domain) else {
            return Reply::Users {
                addresses: Vec::new(),
            };
        };
        match self.with_db(|db| db.users(Some(&d))) {
            Ok(users) => {
                let mut addresses: Vec<String> = users
                    .into_iter()
                    .filter(|u| u.state == crate::userdb::State::Active)
                    .map(|u| u.address)
                    .collect();
                addresses.sort();
                Reply::Users { addresses }
            }
            Err(e) => {
                crate::error!("users of {d:?}: {e}");
                temporary(e.to_string())
            }
        }
    }

    async fn login(&self, typed: &str, pw: Secret, service: Service, ip: Option<IpAddr>) -> Reply {
        let now = self.clock.now();
        let ip_text = ip.map(|i| i.to_string()).unwrap_or_else(|| "-".into());
        if let Some(ip) = ip {
            if self.bans().banned(ip, now).is_some() {
                crate::info!(
                    "login refused user={typed:?} service={} ip={ip_text} (banned)",
                    service_name(service)
                );
                return Reply::LoginFailed {
                    reason: LoginFailure::Banned,
                };
            }
        }
        let s = self.settings();
        let addr = login_address(typed, &s.default_domain);
        let usable = pw.as_bytes().len() <= MAX_PASSWORD && !pw.as_bytes().is_empty();
        let user: Option<User> = match &addr {
            Some(a) if usable => match self.with_db(|db| db.user(a)) {
                Ok(u) => u,
                Err(e) => {
                    crate::error!("login user={typed:?}: {e}");
                    return temporary(e.to_string());
                }
            },
            _ => None,
        };
        let stored = user
            .as_ref()
            .map(|u| u.password.clone())
            .filter(|h| !h.is_empty());
        let key = addr.as_ref().map(|a| a.key()).unwrap_or_default();
        let tag = self.cache().tag(&key, pw.as_bytes());
        let now_ms = self.clock.now_ms();
        let cached = match &stored {
            Some(h) => self.cache().hit(&key, &tag, h, now_ms),
            None => false,
        };
        let ok = if cached {
            true
        } else if usable {
            // The same work whether the user exists or not: no timing tells
            // an unknown user from a wrong password.
            let hash = stored
                .clone()
                .unwrap_or_else(|| password::dummy_hash().to_string());
            let _permit = self.hashing.acquire().await;
            let checked = tokio::task::spawn_blocking(move || {
                let ok = password::verify(pw.as_bytes(), &hash);
                drop(pw); // zeroed here
                ok
            })
            .await
            .unwrap_or(false);
            checked && stored.is_some()
        } else {
            drop(pw);
            false
        };
        match (ok, user) {
            (true, Some(u)) => {
                if let Some(h) = &stored {
                    if !cached {
                        self.cache().insert(&key, tag, h, now_ms);
                    }
                }
                if u.state == State::Disabled {
                    crate::info!(
                        "login refused user={} service={} ip={ip_text} (disabled)",
                        u.address,
                        service_name(service)
                    );
                    return Reply::LoginFailed {
                        reason: LoginFailure::Disabled,
                    };
                }
                if let Some(refused) = self.service_refused(&u, service) {
                    crate::info!(
                        "login refused user={} service={} ip={ip_text} ({refused})",
                        u.address,
                        service_name(service)
                    );
                    return Reply::LoginFailed {
                        reason: LoginFailure::Disabled,
                    };
                }
                self.bans().success(&u.address.to_lowercase());
                crate::info!(
                    "login user={} service={} ip={ip_text}{}",
                    u.address,
                    service_name(service),
                    if cached { " cached" } else { "" }
                );
                Reply::LoginOk {
                    user: u.info(&s.mail_root),
                }
            }
            _ => {
                if !key.is_empty() {
                    self.cache().forget(&key);
                }
                let account = addr.as_ref().map(|a| a.to_string().to_lowercase());
                self.failure(ip, account.as_deref(), service, "authentication failed");
                Reply::LoginFailed {
                    reason: LoginFailure::BadCredentials,
                }
            }
        }
    }

    /// Why the user's domain refuses them `service` (its limits), if it
    /// does. The password was right, so this is no failure toward a ban.
    /// The webmail reads mail through kmp-imapd: its logins need both
    /// `webmail` and `imap`.
    fn service_refused(&self, u: &User, service: Service) -> Option<String> {
        use crate::userdb::limits::Access;
        let access = Access::of_login(service)?;
        let also = (service == Service::Webmail).then_some(Access::Imap);
        let domain = u.address.rsplit_once('@').map(|(_, d)| d)?;
        match self.with_db(|db| db.domain(domain)) {
            Ok(Some(d)) => [Some(access), also]
                .into_iter()
                .flatten()
                .find(|a| !d.limits.allows(*a))
                .map(|a| format!("service {} not allowed in domain {}", a.name(), d.name)),
            Ok(None) => None,
            Err(e) => Some(format!("domain {domain}: {e}")),
        }
    }

    /// The message size ceiling of the user's domain (its limits), if any.
    fn message_ceiling(&self, u: &User) -> Option<u64> {
        let domain = u.address.rsplit_once('@').map(|(_, d)| d)?;
        self.with_db(|db| db.domain(domain))
            .ok()
            .flatten()
            .and_then(|d| d.limits.max_message_bytes)
    }

    fn failure(&self, ip: Option<IpAddr>, account: Option<&str>, service: Service, reason: &str) {
        let limits = self.settings().limits;
        let ip_text = ip.map(|i| i.to_string()).unwrap_or_else(|| "-".into());
        crate::info!(
            "failure service={} ip={ip_text} user={} reason={reason:?}",
            service_name(service),
            account.unwrap_or("-")
        );
        let r = self
            .bans()
            .failure(ip, account, reason, self.clock.now_ms(), limits);
        match r {
            Ok(o) => {
                if let (Some(until), Some(ip)) = (o.banned_until, ip) {
                    crate::warn!(
                        "ban ip={ip} net={} until={until} after {} failures within {}s",
                        crate::net::client_net(ip, limits.ipv6_prefix),
                        limits.max_failures,
                        limits.window_ms / 1000
                    );
                }
                if o.account_over {
                    crate::warn!(
                        "account {} had {} failed logins within {}s (password guessing?)",
                        account.unwrap_or("-"),
                        limits.max_failures,
                        limits.window_ms / 1000
                    );
                }
            }
            Err(e) => crate::error!("cannot save the ban table: {e}"),
        }
    }

    /// An address of the SRS domain with an SRS local part: an alias of the
    /// sender it stands for, or nothing when forged or expired (the domain
    /// is still ours, so the client hears 550 "no such user").
    fn srs_lookup(&self, address: &str) -> Option<Reply> {
        let srs = self.settings().srs?;
        let (local, domain) = address.rsplit_once('@')?;
        if !domain
            .trim_end_matches('.')
            .eq_ignore_ascii_case(&srs.domain)
            || !crate::mailauth::srs::is_srs(local)
        {
            return None;
        }
        let entry = match srs.reverse(local, crate::mailauth::srs::today()) {
            Ok(target) => Entry::Alias {
                address: address.to_string(),
                targets: vec![target],
            },
            Err(e) => {
                crate::info!("lookup {address:?}: {e}");
                Entry::NotFound
            }
        };
        Some(Reply::Found {
            entry,
            local_domain: true,
        })
    }

    fn lookup(&self, address: &str) -> Reply {
        if let Some(r) = self.srs_lookup(address) {
            return r;
        }
        let mail_root = self.settings().mail_root;
        // A recipient may have a longer local part than a name we make
        // (a list's confirm or bounce address carries a member's address).
        let r = match Address::parse_recipient(address) {
            Ok(a) => self.with_db(|db| db.resolve(&a)),
            // Not an address we could have; still say whether the domain is ours.
            Err(_) => {
                let dom = address
                    .rsplit_once('@')
                    .and_then(|(_, d)| normalize_domain(d).ok());
                match dom {
                    Some(d) => self
                        .with_db(|db| db.domain(&d))
                        .map(|x| (Resolved::NotFound, x.is_some())),
                    None => Ok((Resolved::NotFound, false)),
                }
            }
        };
        match r {
            Ok((res, local_domain)) => Reply::Found {
                entry: match res {
                    Resolved::User(u) => {
                        let mut user = u.info(&mail_root);
                        // The domain's spam settings under the user's own.
                        let domain = u.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
                        if let Ok(Some(d)) = self.with_db(|db| db.domain(domain)) {
                            user.spam = user.spam.over(&d.spam);
                        }
                        user.max_message_bytes = self.message_ceiling(&u);
                        Entry::User { user }
                    }
                    Resolved::Alias(a) => Entry::Alias {
                        address: a.address,
                        targets: a.targets,
                    },
                    Resolved::List(list, role) => Entry::List { list, role },
                    Resolved::NotFound => Entry::NotFound,
                },
                local_domain,
            },
            Err(e) => {
                crate::error!("lookup {address:?}: {e}");
                temporary(e.to_string())
            }
        }
    }
}

/// The address a login names: as typed with `@`, else in the default domain.
pub fn login_address(typed: &str, default_domain: &str) -> Option<Address> {
    if typed.contains('@') {
        Address::parse(typed).ok()
    } else if !default_domain.is_empty() {
        Address::parse(&format!("{typed}@{default_domain}")).ok()
    } else {
        None
    }
}

fn service_name(s: Service) -> &'static str {
    match s {
        Service::Smtp => "smtp",
        Service::Submission => "submission",
        Service::Pop3 => "pop3",
        Service::Imap => "imap",
        Service::Webmail => "webmail",
        Service::Admin => "admin",
        Service::Sieve => "sieve",
    }
}

fn refuse(message: impl Into<String>) -> Reply {
    Reply::Error {
        temporary: false,
        message: message.into(),
    }
}

fn temporary(message: impl Into<String>) -> Reply {
    Reply::Error {
        temporary: true,
        message: message.into(),
    }
}

fn lock_w<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// Binds the socket at `path`: a stale one (nobody answering) is removed
/// first; a live one means another kmp-authd runs. Mode 0660.
pub fn bind(path: &Path) -> Result<std::os::unix::net::UnixListener, StartError> {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::{UnixListener, UnixStream};
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(StartError::Running(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(|e| StartError::Socket(path.to_path_buf(), e))?;
    }
    let l = UnixListener::bind(path).map_err(|e| StartError::Socket(path.to_path_buf(), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| StartError::Socket(path.to_path_buf(), e))?;
    l.set_nonblocking(true)
        .map_err(|e| StartError::Socket(path.to_path_buf(), e))?;
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_without_at_take_the_default_domain() {
        assert_eq!(
            login_address("Bob", "example.test").unwrap().to_string(),
            "Bob@example.test"
        );
        assert!(login_address("Bob", "").is_none());
        assert_eq!(
            login_address("bob@Other.Test", "example.test")
                .unwrap()
                .to_string(),
            "bob@other.test"
        );
        assert!(login_address("bad user", "example.test").is_none());
    }
}
