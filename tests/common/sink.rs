//! Postfix's smtp-sink as a remote mail server for tests: it listens on
//! 127.0.0.1:PORT and dumps each message it accepts into a file of its
//! directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

/// A running smtp-sink, ended when dropped.
pub struct Sink {
    child: Child,
    pub dir: PathBuf,
}

impl Sink {
    /// smtp-sink on `port`, writing into `dir` (made), with `opts` (such as
    /// `-f RCPT` to refuse every recipient) before the usual ones.
    pub fn start(dir: &Path, port: u16, opts: &[&str]) -> Sink {
        std::fs::create_dir_all(dir).unwrap();
        let mut args: Vec<String> = Vec::new();
        if nix::unistd::geteuid().is_root() {
            args.extend(["-u".into(), "root".into()]);
        }
        args.extend(opts.iter().map(|s| s.to_string()));
        args.extend([
            "-d".into(),
            format!("{}/%H%M%S.", dir.display()),
            format!("127.0.0.1:{port}"),
            "50".into(),
        ]);
        let child = super::tool("/usr/sbin/smtp-sink")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("smtp-sink runs (apt-get install postfix)");
        super::wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .expect("smtp-sink listens");
        Sink {
            child,
            dir: dir.to_path_buf(),
        }
    }

    /// The whole messages it wrote ([`super::sink_messages`]).
    pub fn messages(&self) -> Vec<String> {
        super::sink_messages(&self.dir)
    }

    /// Files it made, whole or still being written.
    pub fn count(&self) -> usize {
        std::fs::read_dir(&self.dir).map_or(0, |d| d.count())
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
