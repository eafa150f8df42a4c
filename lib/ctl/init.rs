//! `kmpctl init DIR`: a self-contained instance. Every path is under DIR, no
//! program changes user, and the listeners are on 127.0.0.1 at high ports
//! (N+25 SMTP, N+587 submission, N+465 SMTPS, N+110 POP3, N+995 POP3S,
//! N+143 IMAP, N+993 IMAPS). Tests, the demo and CI all run this way.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use clap::Args as ClapArgs;

use super::{CtlError, CtlResult, Ctx};
use crate::config::Config;
use crate::exit;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The directory to create the instance in (created if missing).
    pub dir: PathBuf,
    /// Listeners are on 127.0.0.1 at this number plus the usual port.
    #[arg(long, default_value_t = 20000)]
    pub port_base: u16,
    /// The host name for the greeting and the self-signed certificate.
    #[arg(long, default_value = "localhost")]
    pub hostname: String,
    /// Overwrite an existing configuration file.
    #[arg(long)]
    pub force: bool,
    /// The administrator's address (system.postmaster): bounces that cannot
    /// be returned, and the postmaster@ and abuse@ of domains added later.
    #[arg(long, value_name = "ADDRESS")]
    pub postmaster: Option<String>,
}

/// The listeners of an instance at `base`: (key, port offset).
pub const LISTENERS: &[(&str, u16)] = &[
    ("smtpd.listen", 25),
    ("smtpd.submission_listen", 587),
    ("smtpd.smtps_listen", 465),
    ("pop3d.listen", 110),
    ("pop3d.pop3s_listen", 995),
    ("imapd.listen", 143),
    ("imapd.imaps_listen", 993),
];

pub fn run(_ctx: &Ctx, a: Args) -> CtlResult {
    if a.port_base > u16::MAX - 1000 {
        return Err(CtlError::new(
            exit::USAGE,
            format!(
                "--port-base {} leaves no room for the ports above it",
                a.port_base
            ),
        ));
    }
    let dir = absolute(&a.dir)?;
    let conf = dir.join("kmpromail.toml");
    if conf.exists() && !a.force {
        return Err(CtlError::new(
            exit::CANTCREAT,
            format!(
                "{} exists already (use --force to overwrite it)",
                conf.display()
            ),
        ));
    }
    let mut cfg = instance_config(&dir, a.port_base, &a.hostname)?;
    if let Some(pm) = &a.postmaster {
        let pm = super::user::parse(pm)?;
        cfg.set("system.postmaster", &pm.to_string())
            .map_err(|e| CtlError::new(exit::DATAERR, format!("--postmaster: {e}")))?;
    }
    for sub in ["queue", "mail", "db", "run", "tls", "log"] {
        mkdir(&dir.join(sub), 0o750)?;
    }
    crate::userdb::lmdb::Lmdb::create(&dir.join("db"))
        .map_err(|e| CtlError::new(e.exit_code(), e.to_string()))?;
    let tls = dir.join("tls");
    write_self_signed(&a.hostname, &tls.join("cert.pem"), &tls.join("key.pem"))?;
    let text = format!(
        "# Kmpromail instance made by `kmpctl init {}`.\n# Every key not set here has its default: `kmpctl config` shows them all.\n\n{}",
        dir.display(),
        cfg.to_toml(false)
    );
    fs::write(&conf, text).map_err(|e| io_err(&conf, e))?;
    println!("{}", conf.display());
    Ok(())
}

/// The configuration of an instance under `dir` at `base`.
pub fn instance_config(dir: &Path, base: u16, hostname: &str) -> Result<Config, CtlError> {
    let mut cfg = Config::defaults();
    let p = |s: &str| dir.join(s).display().to_string();
    let mut set = |k: &str, v: String| {
        cfg.set(k, &v)
            .map_err(|e| CtlError::new(exit::SOFTWARE, format!("{k}: {e}")))
    };
    set("system.hostname", hostname.to_string())?;
    set("paths.queue", p("queue"))?;
    set("paths.mail", p("mail"))?;
    set("paths.db", p("db"))?;
    set("paths.run", p("run"))?;
    set("paths.syslog_socket", String::new())?;
    set("paths.log_file", p("log/kmpromail.log"))?;
    set("tls.cert", p("tls/cert.pem"))?;
    set("tls.key", p("tls/key.pem"))?;
    for k in crate::config::KEYS
        .iter()
        .filter(|k| k.name.starts_with("privileges."))
    {
        set(k.name, String::new())?;
    }
    for (k, off) in LISTENERS {
        set(k, format!("127.0.0.1:{}", base + off))?;
    }
    Ok(cfg)
}

/// Writes a self-signed certificate for `hostname` (and localhost, 127.0.0.1, ::1).
pub fn write_self_signed(hostname: &str, cert: &Path, key: &Path) -> CtlResult {
    let mut names = vec![hostname.to_string()];
    for n in ["localhost", "127.0.0.1", "::1"] {
        if !names.iter().any(|x| x == n) {
            names.push(n.to_string());
        }
    }
    let ck = rcgen::generate_simple_self_signed(names)
        .map_err(|e| CtlError::new(exit::SOFTWARE, format!("cannot make a certificate: {e}")))?;
    fs::write(cert, ck.cert.pem()).map_err(|e| io_err(cert, e))?;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(key)
        .map_err(|e| io_err(key, e))?;
    f.write_all(ck.key_pair.serialize_pem().as_bytes())
        .map_err(|e| io_err(key, e))?;
    Ok(())
}

fn absolute(p: &Path) -> Result<PathBuf, CtlError> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    std::env::current_dir().map(|d| d.join(p)).map_err(|e| {
        CtlError::new(
            exit::OSERR,
            format!("cannot find the current directory: {e}"),
        )
    })
}

fn mkdir(p: &Path, mode: u32) -> CtlResult {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(p)
        .map_err(|e| io_err(p, e))
}

fn io_err(p: &Path, e: std::io::Error) -> CtlError {
    CtlError::new(exit::from_io(&e), format!("{}: {e}", p.display()))
}
