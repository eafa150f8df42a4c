//! The black-box test harness: a self-contained instance in a temporary
//! directory on free loopback ports, the real binaries, real clients.
#![allow(dead_code)]

pub mod admind;
pub mod compose;
pub mod dns;
pub mod fetch;
pub mod outbound;
pub mod raw;
pub mod scan;
pub mod sieve;
pub mod sink;
pub mod webmail;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running (or ready to run) instance. Dropping it ends every process it started.
pub struct Instance {
    pub dir: tempfile::TempDir,
    pub base: u16,
    children: Vec<(String, Child)>,
}

/// The directory the test binaries' sibling programs are built in.
pub fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kmpctl"))
        .parent()
        .expect("binary has a directory")
        .to_path_buf()
}

/// The path of a program of the suite.
pub fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// Whether the host has an IPv6 loopback (tests over ::1 skip without one).
pub fn has_ipv6_loopback() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// A port base N such that N+25 .. N+995 are all free on 127.0.0.1 now
/// (and on ::1, where instances listen too, when the host has it).
pub fn free_port_base() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let seed = (std::process::id() as u16 % 24) * 1000;
    for _ in 0..60 {
        let step = NEXT.fetch_add(1, Ordering::SeqCst) % 30;
        let base = 30000 + (seed + step * 1000) % 30000;
        let offsets = [
            25u16, 587, 465, 110, 995, 143, 993, 26, 27, 28, 80, 443, 190, 844,
        ];
        if offsets.iter().all(|o| {
            TcpListener::bind(("127.0.0.1", base + o)).is_ok()
                && (TcpListener::bind(("::1", base + o)).is_ok() || !has_ipv6_loopback())
        }) {
            return base;
        }
    }
    panic!("no free port base found");
}

impl Instance {
    /// `kmpctl init` in a fresh temporary directory.
    pub fn new() -> Instance {
        let dir = tempfile::tempdir().expect("temp dir");
        let base = free_port_base();
        let out = Command::new(bin("kmpctl"))
            .arg("init")
            .arg(dir.path())
            .args([
                "--port-base",
                &base.to_string(),
                "--hostname",
                "mx.example.test",
            ])
            .output()
            .expect("run kmpctl init");
        assert!(
            out.status.success(),
            "kmpctl init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Instance {
            dir,
            base,
            children: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("kmpromail.toml")
    }

    /// Appends TOML to the configuration (a section of its own, say).
    pub fn append_config(&self, text: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.config())
            .unwrap();
        writeln!(f, "\n{text}").unwrap();
    }

    /// Runs `kmpctl --config CONF ARGS...`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        self.ctl_stdin(args, None)
    }

    /// Runs kmpctl with `input` on standard input.
    pub fn ctl_stdin(&self, args: &[&str], input: Option<&[u8]>) -> Output {
        use std::io::Write;
        let mut child = Command::new(bin("kmpctl"))
            .arg("--config")
            .arg(self.config())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kmpctl");
        let mut stdin = child.stdin.take().unwrap();
        if let Some(i) = input {
            stdin.write_all(i).unwrap();
        }
        drop(stdin);
        child.wait_with_output().unwrap()
    }

    /// Runs kmpctl and asserts it succeeded; returns its standard output.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "kmpctl {args:?} failed ({:?}): {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Starts `program --config CONF --foreground ARGS`, logging to DIR/log/PROGRAM.log.
    pub fn spawn(&mut self, program: &str, args: &[&str]) {
        let log =
            std::fs::File::create(self.path().join("log").join(format!("{program}.log"))).unwrap();
        let child = Command::new(bin(program))
            .arg("--config")
            .arg(self.config())
            .arg("--foreground")
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        self.children.push((program.to_string(), child));
    }

    /// The pid of a program this instance started.
    pub fn pid(&self, program: &str) -> Option<u32> {
        self.children
            .iter()
            .find(|(n, _)| n == program)
            .map(|(_, c)| c.id())
    }

    /// Sends SIGKILL to a program this instance started and reaps it.
    pub fn kill(&mut self, program: &str) {
        if let Some(i) = self.children.iter().position(|(n, _)| n == program) {
            let (_, mut c) = self.children.remove(i);
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// What a program logged so far.
    pub fn log(&self, program: &str) -> String {
        std::fs::read_to_string(self.path().join("log").join(format!("{program}.log")))
            .unwrap_or_default()
    }

    /// 127.0.0.1:BASE+offset.
    pub fn addr(&self, offset: u16) -> String {
        format!("127.0.0.1:{}", self.base + offset)
    }

    /// Waits until a TCP port accepts connections (10 s at most).
    pub fn wait_port(&self, offset: u16) {
        wait_until(Duration::from_secs(10), || {
            TcpStream::connect(self.addr(offset)).is_ok()
        })
        .unwrap_or_else(|_| panic!("port {} never opened", self.base + offset));
    }

    /// Waits until a Unix socket under the run directory accepts connections.
    pub fn wait_socket(&self, name: &str) {
        let p = self.path().join("run").join(name);
        wait_until(Duration::from_secs(10), || {
            std::os::unix::net::UnixStream::connect(&p).is_ok()
        })
        .unwrap_or_else(|_| panic!("socket {} never opened", p.display()));
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        for (_, c) in self.children.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `f` every 20 ms until it is true or `limit` passes.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> Result<(), ()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if f() {
        Ok(())
    } else {
        Err(())
    }
}

/// Runs a Python script (real client libraries) and returns its output.
pub fn python(script: &str, args: &[&str]) -> Output {
    tool("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs")
}

/// Whether `line` has syslog's form, `Mmm dd hh:mm:ss host program[pid]: message`
/// (day padded with a space or a zero), with a non-empty message.
pub fn is_syslog_line(line: &str) -> bool {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let b = line.as_bytes();
    if b.len() < 16 || !line.is_char_boundary(16) || !MONTHS.contains(&&line[..3]) {
        return false;
    }
    let digit = |i: usize| b[i].is_ascii_digit();
    let stamp_ok = b[3] == b' '
        && (b[4] == b' ' || digit(4))
        && digit(5)
        && b[6] == b' '
        && digit(7)
        && digit(8)
        && b[9] == b':'
        && digit(10)
        && digit(11)
        && b[12] == b':'
        && digit(13)
        && digit(14)
        && b[15] == b' ';
    if !stamp_ok {
        return false;
    }
    let rest = &line[16..];
    let Some((host, rest)) = rest.split_once(' ') else {
        return false;
    };
    let Some((tag, message)) = rest.split_once(": ") else {
        return false;
    };
    let Some((program, pid)) = tag.strip_suffix(']').and_then(|t| t.split_once('[')) else {
        return false;
    };
    !host.is_empty()
        && !program.is_empty()
        && program
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !pid.is_empty()
        && pid.chars().all(|c| c.is_ascii_digit())
        && !message.trim().is_empty()
}

/// The programs the tests run and the Debian package of each: the one list
/// that tests/tools.sh checks and .ci/run installs.
pub const TOOLS: &str = include_str!("../tools.txt");

/// What to say when `program` is not installed: its name and its package
/// from `table` (the format of tests/tools.txt). None when it is there.
pub fn missing_tool(program: &str, table: &str) -> Option<String> {
    let installed = if program.contains('/') {
        Path::new(program).is_file()
    } else {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
    };
    if installed {
        return None;
    }
    let package = table
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(program)).then(|| w.next()).flatten()
        });
    Some(match package {
        Some(p) => format!(
            "the tests need {program}, which is not installed: apt-get install {p} \
             (`make test` checks every such program first)"
        ),
        None => format!(
            "the tests need {program}, which is not installed (and not listed in tests/tools.txt)"
        ),
    })
}

/// A command for an external program the tests drive (swaks, mbsync,
/// smtp-sink ...). Panics with the program's name and package when it is
/// not installed, instead of a bare `NotFound` later.
pub fn tool(program: &str) -> Command {
    if let Some(why) = missing_tool(program, TOOLS) {
        panic!("{why}");
    }
    Command::new(program)
}

/// Sets `line` first in `section` of the instance's configuration (the
/// section is added when the file has none).
pub fn set_config(inst: &Instance, section: &str, line: &str) {
    let text = std::fs::read_to_string(inst.config()).unwrap();
    let head = format!("[{section}]\n");
    let text = match text.find(&head) {
        Some(i) => format!("{}{head}{line}\n{}", &text[..i], &text[i + head.len()..]),
        None => format!("{text}\n{head}{line}\n"),
    };
    std::fs::write(inst.config(), text).unwrap();
}

/// An instance with kmp-authd, kmp-imapd and the user u@example.test / secret.
pub fn imap_instance() -> Instance {
    imap_instance_with(&[])
}

/// [`imap_instance`] with `(section, line)` settings made before the
/// daemons start.
pub fn imap_instance_with(config: &[(&str, &str)]) -> Instance {
    let mut inst = Instance::new();
    for (section, line) in config {
        set_config(&inst, section, line);
    }
    inst.ctl_ok(&["domain", "add", "example.test"]);
    let out = inst.ctl_stdin(
        &["user", "add", "u@example.test", "--password-stdin"],
        Some(b"secret\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    inst.spawn("kmp-imapd", &[]);
    wait_until(Duration::from_secs(10), || {
        inst.path().join("run/kmp-imapd.pid").exists()
    })
    .unwrap_or_else(|_| panic!("kmp-imapd did not start: {}", inst.log("kmp-imapd")));
    inst
}

/// The messages smtp-sink (`-d DIR`) wrote, sorted by file name, leaving out
/// any file changed in the last second: smtp-sink makes the file before it
/// writes the message into it, so a file that young may be half written.
pub fn sink_messages(dir: &Path) -> Vec<String> {
    let mut named: Vec<(std::path::PathBuf, String)> = std::fs::read_dir(dir)
        .map(|d| d.flatten().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= Duration::from_secs(1))
        })
        .filter_map(|e| {
            let text = String::from_utf8_lossy(&std::fs::read(e.path()).ok()?).into_owned();
            Some((e.path(), text))
        })
        .collect();
    named.sort();
    named.into_iter().map(|(_, t)| t).collect()
}

/// Sends one message with Python's smtplib to the instance's port 25.
pub fn smtp_send(inst: &Instance, sender: &str, rcpt: &str, data: &str) {
    let script = r#"
import smtplib, sys
port, sender, rcpt, data = sys.argv[1:5]
with smtplib.SMTP("127.0.0.1", int(port), timeout=60) as s:
    s.sendmail(sender, [rcpt], data.encode())
"#;
    let port = (inst.base + 25).to_string();
    let o = python(script, &[&port, sender, rcpt, data]);
    assert!(
        o.status.success(),
        "smtplib {sender} -> {rcpt}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The instance's whole log file (every daemon's lines).
pub fn combined_log(inst: &Instance) -> String {
    std::fs::read_to_string(inst.path().join("log/kmpromail.log")).unwrap_or_default()
}
