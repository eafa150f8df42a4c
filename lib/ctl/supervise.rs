//! The supervisor behind `kmpctl start`: starts every daemon that is
//! installed, waits until each is ready (its pid file names it), restarts one
//! that dies, forwards SIGHUP (reload) and ends them all on SIGTERM, in
//! reverse order.
//!
//! A daemon that had become ready and then died (killed, or a panic on one
//! bad session) is restarted at once: every second it stays down, mail is
//! refused. Only one that dies before it is ready (a bad certificate, a port
//! taken) is restarted after a growing back-off, so it does not spin.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::CtlError;
use crate::config::Config;
use crate::exit;
use crate::paths::Paths;

/// The daemons, in the order they start (each needs the ones before it).
pub const DAEMONS: &[&str] = &[
    "kmp-authd",
    "kmp-local",
    "kmp-remote",
    "kmp-send",
    "kmp-smtpd",
    "kmp-pop3d",
    "kmp-imapd",
    "kmp-sieved",
    "kmp-fetch",
    "kmp-admind",
];

/// The supervisor's own pid file name.
pub const SUPERVISOR: &str = "kmpromail";

/// How long a daemon has to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The longest wait before restarting a daemon that keeps dying at start-up.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The first wait before restarting a daemon that died at start-up.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

struct Managed {
    name: &'static str,
    child: Option<Child>,
    started: Instant,
    /// The running child has written its pid file: it serves.
    ready: bool,
    backoff: Duration,
    restart_at: Option<Instant>,
}

/// The daemons installed beside kmpctl (or in `paths.libexec`).
pub fn installed(paths: &Paths) -> Vec<&'static str> {
    DAEMONS
        .iter()
        .copied()
        .filter(|d| paths.program(d).is_file())
        .collect()
}

/// Runs the supervisor in this process until SIGTERM. `config` is passed to
/// every daemon. Returns once every daemon has ended.
pub fn run(config: &Path, cfg: &Config) -> Result<(), CtlError> {
    let paths = Paths::new(cfg);
    crate::sys::signals::install()
        .map_err(|e| CtlError::new(exit::OSERR, format!("cannot set signal handlers: {e}")))?;
    std::fs::create_dir_all(&paths.run)
        .map_err(|e| CtlError::new(exit::CANTCREAT, format!("{}: {e}", paths.run.display())))?;
    if let Some(pid) = running_supervisor(&paths) {
        return Err(CtlError::new(
            exit::TEMPFAIL,
            format!("already running (supervisor pid {pid})"),
        ));
    }
    let mut names = installed(&paths);
    if names.is_empty() {
        return Err(CtlError::new(
            exit::OSFILE,
            format!("no daemon installed in {}", paths.libexec.display()),
        ));
    }
    // The webmail's web server runs beside the daemons, last.
    match webmail_server(config) {
        Some(_) => names.push(WEB_SERVER),
        None if config
            .parent()
            .is_some_and(|d| d.join("webmail/lighttpd.conf").is_file()) =>
        {
            crate::info!("lighttpd is not installed: the webmail is not served");
        }
        None => {}
    }
    let mut managed: Vec<Managed> = Vec::new();
    for name in names {
        let _ = std::fs::remove_file(paths.pid_file(name));
        let child = match spawn(&paths, config, name) {
            Ok(c) => c,
            // The mail system runs without its webmail rather than not at all.
            Err(e) if name == WEB_SERVER => {
                crate::warn!("{}; the webmail is not served", e.message);
                continue;
            }
            Err(e) => {
                stop_all(&paths, &mut managed);
                return Err(e);
            }
        };
        let pid = child.id();
        let mut m = Managed {
            name,
            child: Some(child),
            started: Instant::now(),
            ready: false,
            backoff: FIRST_BACKOFF,
            restart_at: None,
        };
        if let Err(e) = wait_ready(&paths, &mut m, pid) {
            if name == WEB_SERVER {
                crate::warn!("{}; the webmail is not served", e.message);
                stop_all(&paths, std::slice::from_mut(&mut m));
                continue;
            }
            stop_all(&paths, &mut managed);
            stop_all(&paths, std::slice::from_mut(&mut m));
            return Err(e);
        }
        m.ready = true;
        crate::info!("{name} started (pid {pid})");
        managed.push(m);
    }
    write_pid(&paths.pid_file(SUPERVISOR))?;
    if let Some(w) = root_warning(cfg, &managed.iter().map(|m| m.name).collect::<Vec<_>>()) {
        crate::warn!("{w}");
    }
    crate::info!("all daemons ready");
    loop {
        if crate::sys::signals::term_requested() {
            break;
        }
        if crate::sys::signals::take_hup() {
            for m in managed.iter() {
                if let Some(c) = &m.child {
                    let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGHUP);
                }
            }
            crate::info!("reload: configuration re-read by every daemon");
        }
        for m in managed.iter_mut() {
            watch(&paths, config, m);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    stop_all(&paths, &mut managed);
    let _ = std::fs::remove_file(paths.pid_file(SUPERVISOR));
    crate::info!("stopped");
    Ok(())
}

/// Reaps a daemon that died and restarts it: at once when it had become
/// ready, after its back-off when it died while starting.
fn watch(paths: &Paths, config: &Path, m: &mut Managed) {
    if let Some(c) = m.child.as_mut() {
        match c.try_wait() {
            Ok(Some(status)) => {
                let ran = m.started.elapsed();
                // It may have become ready since the last look: its pid
                // file, left behind by a kill, says so.
                m.ready = m.ready || read_pid(&paths.pid_file(m.name)) == Some(c.id());
                let wait = restart_delay(m.ready, &mut m.backoff);
                crate::warn!(
                    "{} (pid {}) exited with {status} after {}s{}; restarting {}",
                    m.name,
                    c.id(),
                    ran.as_secs(),
                    if m.ready { "" } else { " while starting" },
                    if wait.is_zero() {
                        "now".to_string()
                    } else {
                        format!("in {}s", wait.as_secs())
                    }
                );
                m.child = None;
                m.ready = false;
                m.restart_at = Some(Instant::now() + wait);
            }
            Ok(None) => {
                if !m.ready && read_pid(&paths.pid_file(m.name)) == Some(c.id()) {
                    m.ready = true;
                }
            }
            Err(e) => crate::error!("{}: cannot wait: {e}", m.name),
        }
    }
    if m.child.is_none() && m.restart_at.is_some_and(|t| Instant::now() >= t) {
        m.restart_at = None;
        // The dead daemon's pid file must not pass for the new one's.
        let _ = std::fs::remove_file(paths.pid_file(m.name));
        match spawn(paths, config, m.name) {
            Ok(c) => {
                crate::info!("{} restarted (pid {})", m.name, c.id());
                m.started = Instant::now();
                m.child = Some(c);
            }
            Err(e) => {
                crate::error!("{}: {}", m.name, e.message);
                m.restart_at = Some(Instant::now() + m.backoff);
            }
        }
    }
}

/// When the supervisor runs as root, names the daemons among `names` whose
/// `[privileges]` user is empty, so that they keep running as root (as in a
/// demo or test instance made by `kmpctl init`, meant for an ordinary user).
pub fn root_warning(cfg: &Config, names: &[&str]) -> Option<String> {
    if !crate::sys::privs::is_root() {
        return None;
    }
    let as_root: Vec<&str> = names
        .iter()
        .copied()
        .filter(|d| {
            let key = format!("privileges.{}", d.trim_start_matches("kmp-"));
            crate::config::KEYS.iter().any(|k| k.name == key) && cfg.str(&key).is_empty()
        })
        .collect();
    if as_root.is_empty() {
        return None;
    }
    Some(format!(
        "running as root with no [privileges] user for {}: these daemons keep every privilege of root \
         while they serve the network; set [privileges] (kmpctl setup makes the users) or start \
         this instance as an ordinary user",
        as_root.join(", ")
    ))
}

/// How long to wait before restarting a daemon that died, given whether it
/// had become ready; grows `backoff` for the next start-up failure, or resets
/// it after a daemon that served.
fn restart_delay(was_ready: bool, backoff: &mut Duration) -> Duration {
    if was_ready {
        *backoff = FIRST_BACKOFF;
        return Duration::ZERO;
    }
    let wait = *backoff;
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
    wait
}

/// The web server the supervisor runs for the webmail, as a pseudo-daemon.
pub const WEB_SERVER: &str = "lighttpd";

/// lighttpd and the configuration `kmpctl init` wrote for it
/// (`webmail/lighttpd.conf` beside the configuration file), when both are
/// there.
pub fn webmail_server(config: &Path) -> Option<(PathBuf, PathBuf)> {
    let conf = config.parent()?.join("webmail/lighttpd.conf");
    if !conf.is_file() {
        return None;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(WEB_SERVER))
        .find(|p| p.is_file());
    found.map(|bin| (bin, conf))
}

fn spawn(paths: &Paths, config: &Path, name: &str) -> Result<Child, CtlError> {
    if name == WEB_SERVER {
        let Some((bin, conf)) = webmail_server(config) else {
            return Err(CtlError::new(exit::UNAVAILABLE, "lighttpd is gone"));
        };
        // What lighttpd says before it opens its own error log (a bad
        // configuration) goes to the instance's log/lighttpd-error.log.
        let err = conf
            .parent()
            .and_then(Path::parent)
            .map(|d| d.join("log/lighttpd-error.log"))
            .and_then(|p| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .ok()
            })
            .map(Stdio::from)
            .unwrap_or_else(Stdio::null);
        // -D: in the foreground, so it is our child and we see it die.
        return Command::new(bin)
            .arg("-D")
            .arg("-f")
            .arg(conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .map_err(|e| CtlError::new(exit::OSERR, format!("cannot start lighttpd: {e}")));
    }
    Command::new(paths.program(name))
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| CtlError::new(exit::OSERR, format!("cannot start {name}: {e}")))
}

/// Waits until the daemon's pid file names it, or it dies, or time runs out.
fn wait_ready(paths: &Paths, m: &mut Managed, pid: u32) -> Result<(), CtlError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let file = paths.pid_file(m.name);
    loop {
        if read_pid(&file) == Some(pid) {
            return Ok(());
        }
        if crate::sys::signals::term_requested() {
            return Err(CtlError::new(
                exit::UNAVAILABLE,
                format!("told to stop while {} was starting", m.name),
            ));
        }
        if let Some(c) = m.child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                m.child = None;
                return Err(CtlError::new(
                    exit::UNAVAILABLE,
                    format!(
                        "{} exited with {status} while starting (see its log)",
                        m.name
                    ),
                ));
            }
        }
        if Instant::now() >= deadline {
            return Err(CtlError::new(
                exit::UNAVAILABLE,
                format!(
                    "{} did not become ready within {}s",
                    m.name,
                    READY_TIMEOUT.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Ends every daemon, newest first: SIGTERM, then SIGKILL after 10 seconds.
fn stop_all(paths: &Paths, managed: &mut [Managed]) {
    for m in managed.iter_mut().rev() {
        let Some(mut c) = m.child.take() else {
            continue;
        };
        let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match c.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    crate::warn!("{} did not stop within 10s; killing it", m.name);
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let _ = std::fs::remove_file(paths.pid_file(m.name));
        crate::info!("{} stopped", m.name);
    }
}

/// The pid in a pid file, if the file exists and holds one.
pub fn read_pid(file: &Path) -> Option<u32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// Whether a process with this pid exists.
pub fn alive(pid: u32) -> bool {
    // EPERM: it exists but belongs to another user.
    !matches!(
        kill(Pid::from_raw(pid as i32), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

/// The pid of a running supervisor, if there is one.
pub fn running_supervisor(paths: &Paths) -> Option<u32> {
    read_pid(&paths.pid_file(SUPERVISOR)).filter(|p| alive(*p))
}

fn write_pid(path: &PathBuf) -> Result<(), CtlError> {
    let tmp = path.with_extension("pid.tmp");
    std::fs::write(&tmp, format!("{}\n", std::process::id()))
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| CtlError::new(exit::CANTCREAT, format!("{}: {e}", path.display())))
}

/// Opens the log file for the daemons' standard error, if one is configured.
pub fn log_file(cfg: &Config) -> Option<File> {
    let p = cfg.str("paths.log_file");
    if p.is_empty() {
        return None;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemon_that_served_restarts_at_once_every_time() {
        let mut b = FIRST_BACKOFF;
        for _ in 0..5 {
            assert_eq!(restart_delay(true, &mut b), Duration::ZERO);
        }
        assert_eq!(b, FIRST_BACKOFF);
    }

    #[test]
    fn a_daemon_dying_at_start_up_backs_off_up_to_a_minute() {
        let mut b = FIRST_BACKOFF;
        let waits: Vec<u64> = (0..8)
            .map(|_| restart_delay(false, &mut b).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        // Once it comes up and serves, the next death restarts it at once.
        assert_eq!(restart_delay(true, &mut b), Duration::ZERO);
        assert_eq!(restart_delay(false, &mut b), FIRST_BACKOFF);
    }
}
