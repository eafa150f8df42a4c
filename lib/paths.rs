//! The paths every program agrees on, derived from the configuration.

use std::path::PathBuf;

use crate::config::Config;

/// Sockets, pid files and state directories, all from `[paths]`.
#[derive(Debug, Clone)]
pub struct Paths {
    pub queue: PathBuf,
    pub mail: PathBuf,
    pub db: PathBuf,
    pub run: PathBuf,
    pub libexec: PathBuf,
}

impl Paths {
    /// The paths `cfg` names. An empty `paths.libexec` means the directory of
    /// the running program, or `../libexec/kmpromail` beside it when the
    /// daemons are installed there (`make install`).
    pub fn new(cfg: &Config) -> Paths {
        let libexec = match cfg.str("paths.libexec") {
            "" => default_libexec(),
            p => PathBuf::from(p),
        };
        Paths {
            queue: cfg.path_of("paths.queue"),
            mail: cfg.path_of("paths.mail"),
            db: cfg.path_of("paths.db"),
            run: cfg.path_of("paths.run"),
            libexec,
        }
    }

    /// kmp-authd's socket.
    pub fn authd_socket(&self) -> PathBuf {
        self.run.join("authd.sock")
    }

    /// kmp-imapd's URLFETCH socket, for kmp-smtpd's BURL (RFC 4468).
    pub fn urlfetch_socket(&self) -> PathBuf {
        self.run.join("urlfetch.sock")
    }

    /// The datagram socket that wakes kmp-send when new mail is dropped.
    pub fn kick_socket(&self) -> PathBuf {
        self.run.join("kick.sock")
    }

    /// kmp-local's job socket (kmp-send connects).
    pub fn local_socket(&self) -> PathBuf {
        self.run.join("local.sock")
    }

    /// kmp-local's socket for kmp-admind's requests about lists' state.
    pub fn lists_socket(&self) -> PathBuf {
        self.run.join("lists.sock")
    }

    /// kmp-remote's job socket (kmp-send connects).
    pub fn remote_socket(&self) -> PathBuf {
        self.run.join("remote.sock")
    }

    /// kmp-send's control socket (kmpctl queue verbs).
    pub fn send_socket(&self) -> PathBuf {
        self.run.join("send.sock")
    }

    /// The queue's drop directory, where new mail arrives.
    pub fn incoming(&self) -> PathBuf {
        self.queue.join("incoming")
    }

    /// The pid file of `program`.
    pub fn pid_file(&self, program: &str) -> PathBuf {
        self.run.join(format!("{program}.pid"))
    }

    /// A daemon binary, e.g. `kmp-smtpd`.
    pub fn program(&self, name: &str) -> PathBuf {
        self.libexec.join(name)
    }
}

fn default_libexec() -> PathBuf {
    let dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("."));
    let installed = dir.join("../libexec/kmpromail");
    if !dir.join("kmp-authd").exists() && installed.join("kmp-authd").exists() {
        installed
    } else {
        dir
    }
}
