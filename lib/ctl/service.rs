//! `kmpctl start | stop | status | reload`: the mail system as a service.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args as ClapArgs;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::output::Table;
use super::supervise::{self, DAEMONS, SUPERVISOR};
use super::{CtlError, CtlResult, Ctx};
use crate::config::Config;
use crate::exit;
use crate::paths::Paths;

#[derive(Debug, ClapArgs)]
pub struct StartArgs {
    /// Run the supervisor in this process, attached, instead of in the background.
    #[arg(long)]
    pub foreground: bool,
    /// Internal: this is the supervisor `kmpctl start` put in the background (logs to syslog).
    #[arg(long, hide = true)]
    pub detached: bool,
}

/// How long `start` waits for the supervisor to report every daemon ready.
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub fn start(ctx: &Ctx, a: StartArgs) -> CtlResult {
    let cfg = ctx.config()?;
    let conf = Config::locate(ctx.config_path.as_deref());
    let conf = std::fs::canonicalize(&conf).unwrap_or(conf);
    let paths = Paths::new(&cfg);
    if a.detached {
        crate::log::init_syslog("kmpromail", cfg.str("paths.syslog_socket"));
        return supervise::run(&conf, &cfg);
    }
    if a.foreground {
        crate::log::init_stderr("kmpromail");
        return supervise::run(&conf, &cfg);
    }
    if let Some(pid) = supervise::running_supervisor(&paths) {
        return Err(CtlError::new(
            exit::TEMPFAIL,
            format!("already running (supervisor pid {pid})"),
        ));
    }
    if let Some(w) = supervise::root_warning(&cfg, &supervise::installed(&paths)) {
        eprintln!("kmpctl: warning: {w}");
    }
    let exe = std::env::current_exe()
        .map_err(|e| CtlError::new(exit::OSERR, format!("cannot find kmpctl itself: {e}")))?;
    let (out, err) = match supervise::log_file(&cfg) {
        Some(f) => (Stdio::from(f.try_clone().map_err(io)?), Stdio::from(f)),
        None => (Stdio::null(), Stdio::null()),
    };
    let mut cmd = Command::new(exe);
    cmd.arg("--config").arg(&conf).args(["start", "--detached"]);
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    // Its own process group: a terminal's ^C or hang-up does not reach the daemons.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .spawn()
        .map_err(|e| CtlError::new(exit::OSERR, format!("cannot start the supervisor: {e}")))?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if supervise::read_pid(&paths.pid_file(SUPERVISOR)) == Some(child.id()) {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let hint = match cfg.str("paths.log_file") {
                "" => "see the mail log".to_string(),
                f => format!("see {f}"),
            };
            return Err(CtlError::new(
                status
                    .code()
                    .filter(|c| *c != 0)
                    .unwrap_or(exit::UNAVAILABLE),
                format!("the mail system did not start ({hint})"),
            ));
        }
        if Instant::now() >= deadline {
            // SIGTERM, not SIGKILL: the supervisor then ends the daemons it
            // already started instead of leaving them behind.
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let _ = child.wait();
            return Err(CtlError::new(
                exit::UNAVAILABLE,
                "the mail system did not become ready in time",
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if !ctx.json {
        println!("kmpromail started (supervisor pid {})", child.id());
    }
    Ok(())
}

pub fn stop(ctx: &Ctx) -> CtlResult {
    let cfg = ctx.config_lenient()?;
    let paths = Paths::new(&cfg);
    let Some(pid) = supervise::running_supervisor(&paths) else {
        return Err(CtlError::new(
            exit::UNAVAILABLE,
            "the mail system is not running",
        ));
    };
    signal(pid, Signal::SIGTERM)?;
    let deadline = Instant::now() + Duration::from_secs(90);
    while supervise::alive(pid) {
        if Instant::now() >= deadline {
            return Err(CtlError::new(
                exit::TEMPFAIL,
                format!("supervisor pid {pid} did not stop"),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if !ctx.json {
        println!("kmpromail stopped");
    }
    Ok(())
}

pub fn reload(ctx: &Ctx) -> CtlResult {
    let cfg = ctx.config()?;
    let paths = Paths::new(&cfg);
    let Some(pid) = supervise::running_supervisor(&paths) else {
        return Err(CtlError::new(
            exit::UNAVAILABLE,
            "the mail system is not running",
        ));
    };
    signal(pid, Signal::SIGHUP)?;
    if !ctx.json {
        println!(
            "kmpromail reloading (configuration {})",
            cfg.path()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    Ok(())
}

pub fn status(ctx: &Ctx) -> CtlResult {
    let cfg = ctx.config_lenient()?;
    let paths = Paths::new(&cfg);
    let mut t = Table::new(&["daemon", "state", "pid", "uptime", "listeners"]);
    let mut down = 0u64;
    let installed = supervise::installed(&paths);
    let sup = supervise::running_supervisor(&paths);
    t.push(vec![
        "supervisor".into(),
        if sup.is_some() { "running" } else { "stopped" }.into(),
        sup.map(|p| p.to_string()).unwrap_or_default(),
        sup.and_then(uptime).map(fmt_uptime).unwrap_or_default(),
        String::new(),
    ]);
    if sup.is_none() {
        down += 1;
    }
    for name in DAEMONS.iter().filter(|d| installed.contains(d)) {
        let pid = supervise::read_pid(&paths.pid_file(name)).filter(|p| supervise::alive(*p));
        if pid.is_none() {
            down += 1;
        }
        t.push(vec![
            name.to_string(),
            if pid.is_some() { "running" } else { "down" }.into(),
            pid.map(|p| p.to_string()).unwrap_or_default(),
            pid.and_then(uptime).map(fmt_uptime).unwrap_or_default(),
            match (pid, listeners(&cfg, name)) {
                (_, l) if l.is_empty() => l,
                (Some(_), l) => l,
                // Configured, but nobody answers there while the daemon is down.
                (None, l) => format!("not served ({l})"),
            },
        ]);
    }
    // The webmail's web server, when the supervisor runs one.
    let conf = Config::locate(ctx.config_path.as_deref());
    if let Some((_, lconf)) = supervise::webmail_server(&conf) {
        let name = supervise::WEB_SERVER;
        let pid = supervise::read_pid(&paths.pid_file(name)).filter(|p| supervise::alive(*p));
        if pid.is_none() {
            down += 1;
        }
        t.push(vec![
            name.to_string(),
            if pid.is_some() { "running" } else { "down" }.into(),
            pid.map(|p| p.to_string()).unwrap_or_default(),
            pid.and_then(uptime).map(fmt_uptime).unwrap_or_default(),
            lighttpd_listeners(&lconf),
        ]);
    }
    t.print(ctx.json);
    if down > 0 {
        return Err(CtlError::new(
            exit::UNAVAILABLE,
            format!(
                "{} not running",
                super::output::count(down, "program is", "programs are")
            ),
        ));
    }
    Ok(())
}

/// The TCP listeners a daemon has, from the configuration.
fn listeners(cfg: &Config, name: &str) -> String {
    let keys: &[&str] = match name {
        "kmp-smtpd" => &[
            "smtpd.listen",
            "smtpd.submission_listen",
            "smtpd.smtps_listen",
        ],
        "kmp-pop3d" => &["pop3d.listen", "pop3d.pop3s_listen"],
        "kmp-sieved" => &["sieved.listen"],
        "kmp-admind" => &["admind.listen"],
        "kmp-imapd" => &["imapd.listen", "imapd.imaps_listen"],
        _ => &[],
    };
    keys.iter()
        .flat_map(|k| cfg.list(k).iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where the webmail's lighttpd listens, from its configuration
/// (`server.bind` and `server.port`, and each `$SERVER["socket"]`).
fn lighttpd_listeners(conf: &std::path::Path) -> String {
    let text = std::fs::read_to_string(conf).unwrap_or_default();
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key)?.trim().strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_string())
    };
    let mut out = Vec::new();
    if let Some(port) = value("server.port") {
        let host = value("server.bind").unwrap_or_else(|| "0.0.0.0".into());
        out.push(format!("{host}:{port}"));
    }
    for l in text.lines() {
        if let Some(rest) = l.trim().strip_prefix("$SERVER[\"socket\"] ==") {
            out.push(
                rest.trim()
                    .trim_end_matches('{')
                    .trim()
                    .trim_matches('"')
                    .to_string(),
            );
        }
    }
    out.join(" ")
}

/// Seconds a process has been running, from /proc.
fn uptime(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (starttime, in clock ticks since boot) comes after the ")" that ends the name.
    let after = &stat[stat.rfind(')')? + 2..];
    let start: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let boot_secs: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()??
        .max(1) as u64;
    Some((boot_secs as u64).saturating_sub(start / ticks))
}

fn fmt_uptime(s: u64) -> String {
    match s {
        s if s >= 86400 => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
        s if s >= 3600 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{}m{}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

fn signal(pid: u32, sig: Signal) -> CtlResult {
    kill(Pid::from_raw(pid as i32), sig).map_err(|e| match e {
        nix::errno::Errno::EPERM => CtlError::new(
            exit::NOPERM,
            format!("permission denied to signal pid {pid} (run as root?)"),
        ),
        e => CtlError::new(exit::OSERR, format!("cannot signal pid {pid}: {e}")),
    })
}

fn io(e: std::io::Error) -> CtlError {
    CtlError::new(exit::from_io(&e), e.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn lighttpd_listeners_of_an_init_configuration_name_both_loopbacks() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("lighttpd.conf");
        let text = super::super::init::lighttpd_conf_for(
            dir.path(),
            30000,
            std::path::Path::new("/usr/libexec/kmp-webmail"),
            true,
        );
        std::fs::write(&conf, text).unwrap();
        let l = super::lighttpd_listeners(&conf);
        assert!(l.starts_with("127.0.0.1:30080 [::1]:30080"), "{l}");
    }
}
