//! `kmpctl init DIR`: a self-contained instance. Every path is under DIR, no
//! program changes user, and the listeners are on 127.0.0.1 and ::1 (when the
//! host has an IPv6 loopback) at high ports
//! (N+25 SMTP, N+587 submission, N+465 SMTPS, N+110 POP3, N+995 POP3S,
//! N+143 IMAP, N+993 IMAPS). Tests, the demo and CI all run this way.
//! The webmail gets a key (`webmail/key`) and a lighttpd configuration
//! (`webmail/lighttpd.conf`: N+80, and N+443 with the instance's
//! certificate, on both loopbacks) that `kmpctl start` runs when lighttpd is
//! installed.

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
    /// Listeners are on 127.0.0.1 and ::1 at this number plus the usual port.
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
    /// Let the instance's webmail name the browser to kmp-imapd and
    /// kmp-admind: trust 127.0.0.1 and ::1 as front ends
    /// (imapd.trusted_networks, admind.trusted_networks). Loopback
    /// clients are then no longer counted per address.
    #[arg(long)]
    pub trust_loopback: bool,
    /// Turn on the checks at the door a small ISP would run (as the demo
    /// does): HELO and reverse DNS scored, DNS block lists, and the spam and
    /// virus scanners that are installed, at Debian's addresses.
    #[arg(long)]
    pub spam_checks: bool,
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
    ("sieved.listen", 190),
    ("admind.listen", 844),
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
    if a.trust_loopback {
        cfg.set("imapd.trusted_networks", "127.0.0.1, ::1")
            .map_err(|e| CtlError::new(exit::SOFTWARE, e))?;
        cfg.set("admind.trusted_networks", "127.0.0.1, ::1")
            .map_err(|e| CtlError::new(exit::SOFTWARE, e))?;
    }
    if a.spam_checks {
        let installed = |p: &str| Path::new(p).is_file();
        let off = crate::antispam::scan::small_isp(&mut cfg, &installed)
            .map_err(|e| CtlError::new(exit::SOFTWARE, e))?;
        for line in off {
            eprintln!("kmpctl init: {line}");
        }
    }
    for sub in [
        "queue",
        "mail",
        "db",
        "run",
        "tls",
        "log",
        "fetch",
        "announce",
        "webmail",
        "webmail/htdocs",
    ] {
        mkdir(&dir.join(sub), 0o750)?;
    }
    mkdir(&dir.join("dkim"), 0o700)?;
    write_webmail_key(&dir.join("webmail/key"))?;
    // The SRS secret: 32 random bytes as well, kept when present.
    write_webmail_key(&dir.join("srs.key"))?;
    write_list_key(&dir.join("lists.key"))?;
    let lighttpd = dir.join("webmail/lighttpd.conf");
    let paths = crate::paths::Paths::new(&cfg);
    let text = lighttpd_conf(&dir, a.port_base, &paths.program("kmp-webmail"));
    fs::write(&lighttpd, text).map_err(|e| io_err(&lighttpd, e))?;
    crate::userdb::lmdb::Lmdb::create(&dir.join("db"))
        .map_err(|e| CtlError::new(e.exit_code(), e.to_string()))?;
    let tls = dir.join("tls");
    write_self_signed(&a.hostname, &tls.join("cert.pem"), &tls.join("key.pem"))?;
    super::fetch::make_keys(&tls.join("fetch.key"), &tls.join("fetch.pub"))?;
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
    set("paths.fetch", p("fetch"))?;
    set("paths.announce", p("announce"))?;
    set("fetch.private_key", p("tls/fetch.key"))?;
    set("fetch.public_key", p("tls/fetch.pub"))?;
    set("tls.cert", p("tls/cert.pem"))?;
    set("tls.key", p("tls/key.pem"))?;
    for k in crate::config::KEYS
        .iter()
        .filter(|k| k.name.starts_with("privileges."))
    {
        set(k.name, String::new())?;
    }
    // The daemons skip ::1 on a host without IPv6; lighttpd would not start
    // with it, so its configuration asks the host (lighttpd_conf).
    for (k, off) in LISTENERS {
        set(k, format!("127.0.0.1:{p}, [::1]:{p}", p = base + off))?;
    }
    set("webmail.imap", format!("127.0.0.1:{}", base + 143))?;
    set("webmail.imap_security", "plain".into())?;
    set("webmail.submission", format!("127.0.0.1:{}", base + 587))?;
    set("webmail.submission_security", "plain".into())?;
    set("webmail.managesieve", format!("127.0.0.1:{}", base + 190))?;
    set("webmail.managesieve_security", "plain".into())?;
    set("webmail.key_file", p("webmail/key"))?;
    set("auth.dkim_keys", p("dkim"))?;
    set("auth.srs_secret_file", p("srs.key"))?;
    set("lists.cookie_key_file", p("lists.key"))?;
    set("webmail.lists_smtp", format!("127.0.0.1:{}", base + 25))?;
    set("webmail.lists_smtp_security", "plain".into())?;
    set(
        "webmail.admind",
        format!("https://127.0.0.1:{}", base + 844),
    )?;
    set("webmail.admind_ca_file", p("tls/cert.pem"))?;
    if let Some(share) = lists_share() {
        set("lists.texts_dir", share.display().to_string())?;
    }
    if let Some(share) = webmail_share() {
        set(
            "webmail.skins_dir",
            share.join("skins").display().to_string(),
        )?;
        set("webmail.lang_dir", share.join("lang").display().to_string())?;
    }
    Ok(cfg)
}

/// The webmail's skins and languages: installed beside kmpctl
/// (`../share/kmpromail/webmail`, as `make install` puts them), else the
/// source checkout this kmpctl was built from (`share/webmail`).
pub fn webmail_share() -> Option<PathBuf> {
    let installed = std::env::current_exe().ok().and_then(|e| {
        e.parent()?
            .parent()
            .map(|p| p.join("share/kmpromail/webmail"))
    });
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("share/webmail");
    installed
        .into_iter()
        .chain(std::iter::once(checkout))
        .find(|d| d.join("skins/default").is_dir())
}

/// Writes 32 random bytes for webmail.key_file, mode 0640 (an existing key
/// is kept: replacing it would end every session).
pub fn write_webmail_key(path: &Path) -> CtlResult {
    if path.exists() {
        return Ok(());
    }
    let key = crate::webmail::seal::new_key().map_err(|e| CtlError::new(exit::SOFTWARE, e))?;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    f.write_all(&key).map_err(|e| io_err(path, e))
}

/// The mailing lists' texts: installed beside kmpctl
/// (`../share/kmpromail/lists`), else the source checkout's `share/lists`.
pub fn lists_share() -> Option<PathBuf> {
    let installed = std::env::current_exe().ok().and_then(|e| {
        e.parent()?
            .parent()
            .map(|p| p.join("share/kmpromail/lists"))
    });
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("share/lists");
    installed
        .into_iter()
        .chain(std::iter::once(checkout))
        .find(|d| d.join("en/help.txt").is_file())
}

/// Writes 32 random bytes for lists.cookie_key_file, mode 0600 (an existing
/// key is kept: replacing it would void every cookie sent out).
pub fn write_list_key(path: &Path) -> CtlResult {
    if path.exists() {
        return Ok(());
    }
    let key = crate::lists::cookie::new_key().map_err(|e| CtlError::new(exit::SOFTWARE, e))?;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    f.write_all(&key).map_err(|e| io_err(path, e))
}

/// Where lighttpd keeps its modules on the systems we know.
const LIGHTTPD_MODULE_DIRS: &[&str] = &[
    "/usr/lib/lighttpd",
    "/usr/lib64/lighttpd",
    "/usr/local/lib/lighttpd",
];

/// Whether this host has an IPv6 loopback to listen on.
pub fn has_ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

/// The instance's lighttpd configuration: the webmail at / on
/// 127.0.0.1:N+80 and [::1]:N+80 (when the host has it), and on N+443 over
/// TLS when lighttpd's TLS module (mod_openssl) is installed.
pub fn lighttpd_conf(dir: &Path, base: u16, program: &Path) -> String {
    lighttpd_conf_for(dir, base, program, has_ipv6_loopback())
}

/// [`lighttpd_conf`] with or without the `::1` listeners.
pub fn lighttpd_conf_for(dir: &Path, base: u16, program: &Path, ipv6: bool) -> String {
    let d = |s: &str| dir.join(s).display().to_string();
    let mut hosts = vec!["127.0.0.1"];
    if ipv6 {
        hosts.push("[::1]");
    }
    let tls = LIGHTTPD_MODULE_DIRS
        .iter()
        .any(|m| Path::new(m).join("mod_openssl.so").is_file());
    let mut modules = vec![
        "mod_access",
        "mod_alias",
        "mod_rewrite",
        "mod_setenv",
        "mod_cgi",
        "mod_accesslog",
    ];
    if tls {
        modules.push("mod_openssl");
    }
    let modules = modules
        .iter()
        .map(|m| format!("\"{m}\""))
        .collect::<Vec<_>>()
        .join(", ");
    // server.bind/server.port give 127.0.0.1:N+80; every other socket is a
    // $SERVER["socket"] block, which lighttpd binds too.
    let mut v6_block = String::new();
    if ipv6 {
        // The block's own line ends in `{`, as `kmpctl status` reads it.
        v6_block = format!("$SERVER[\"socket\"] == \"[::1]:{}\" {{\n}}\n", base + 80);
    }
    let tls_block = if tls {
        hosts
            .iter()
            .map(|h| {
                format!(
                    "$SERVER[\"socket\"] == \"{h}:{port}\" {{\n  ssl.engine = \"enable\"\n  ssl.pemfile = \"{cert}\"\n  ssl.privkey = \"{key}\"\n}}\n",
                    port = base + 443,
                    cert = d("tls/cert.pem"),
                    key = d("tls/key.pem"),
                )
            })
            .collect::<String>()
    } else {
        format!(
            "# No HTTPS on 127.0.0.1:{}: lighttpd's mod_openssl is not installed\n# (Debian: apt-get install lighttpd-mod-openssl; then run kmpctl init --force).\n",
            base + 443
        )
    };
    format!(
        "# lighttpd for the webmail of the instance in {dir}, made by kmpctl init.\n\
         # `kmpctl start` runs `lighttpd -D -f` on it when lighttpd is installed.\n\
         server.modules = ({modules})\n\
         server.bind = \"127.0.0.1\"\n\
         server.port = {port}\n\
         server.document-root = \"{htdocs}\"\n\
         server.pid-file = \"{pid}\"\n\
         server.errorlog = \"{errlog}\"\n\
         accesslog.filename = \"{acclog}\"\n\
         server.upload-dirs = (\"{tmp}\")\n\
         # No directory listing (mod_dirlisting is not loaded), no static files:\n\
         # every path goes to the webmail, which serves its own style sheet.\n\
         url.rewrite-once = (\"^/(.*)$\" => \"/kmp-webmail/$1\")\n\
         alias.url = (\"/kmp-webmail\" => \"{program}\")\n\
         $HTTP[\"url\"] =~ \"^/kmp-webmail\" {{\n  cgi.assign = (\"\" => \"\")\n}}\n\
         setenv.add-environment = (\"KMPROMAIL_CONFIG\" => \"{conf}\")\n\
         {v6_block}{tls_block}",
        dir = dir.display(),
        port = base + 80,
        htdocs = d("webmail/htdocs"),
        pid = d("run/lighttpd.pid"),
        errlog = d("log/lighttpd-error.log"),
        acclog = d("log/lighttpd-access.log"),
        tmp = d("webmail"),
        program = program.display(),
        conf = d("kmpromail.toml"),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_listen_on_both_loopbacks() {
        let cfg = instance_config(Path::new("/srv/i"), 20000, "localhost").unwrap();
        assert_eq!(cfg.list("smtpd.listen"), ["127.0.0.1:20025", "[::1]:20025"]);
        assert_eq!(
            cfg.listen("imapd.imaps_listen"),
            [
                "127.0.0.1:20993".parse().unwrap(),
                "[::1]:20993".parse().unwrap()
            ]
        );
        let prog = Path::new("/usr/libexec/kmp-webmail");
        let with = lighttpd_conf_for(Path::new("/srv/i"), 20000, prog, true);
        assert!(with.contains("server.bind = \"127.0.0.1\"\nserver.port = 20080\n"));
        assert!(
            with.contains("$SERVER[\"socket\"] == \"[::1]:20080\" {\n}\n"),
            "{with}"
        );
        let without = lighttpd_conf_for(Path::new("/srv/i"), 20000, prog, false);
        assert!(!without.contains("::1"), "{without}");
    }
}
