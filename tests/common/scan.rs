//! SpamAssassin's spamd, rspamd and ClamAV's clamd started by a test, each
//! with a private configuration in a directory of its own, on a Unix
//! socket (rspamd on a loopback port); and a client that reports how
//! kmp-smtpd answered. Nothing is downloaded: spamd runs with local rules
//! only (`-L`, the rules Debian installs plus one of ours), rspamd with a
//! configuration of ours alone (no modules that ask the network, one Lua
//! rule of ours), clamd with a signature file the test writes (EICAR).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{missing_tool, wait_until, TOOLS};

/// The EICAR test file (not a virus: the agreed test string).
pub const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
/// SpamAssassin's GTUBE test string (score 1000).
pub const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";
/// A word our own spamd rule scores 7: between the tag (5) and reject (15) scores.
pub const MIDSPAM: &str = "kmpmidspamtestword";
/// The name our EICAR signature has (clamd adds `.UNOFFICIAL`).
pub const EICAR_NAME: &str = "Kmp-Eicar-Test";

/// A scanner daemon; ended (by its pid) when dropped.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    /// host:port, for a daemon on TCP (rspamd).
    pub addr: String,
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGTERM first: a master (rspamd's) then ends its workers too.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = wait_until(Duration::from_secs(5), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        let _ = self.child.kill();
        let _ = self.child.wait();
        // spamd's children and clamd leave with their parent; spamd's
        // pid file names the master if it forked one.
        if let Ok(p) = std::fs::read_to_string(self.dir.path().join("pid")) {
            if let Ok(pid) = p.trim().parse::<i32>() {
                if pid != self.child.id() as i32 {
                    let _ = Command::new("kill").arg(pid.to_string()).status();
                }
            }
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Why a test cannot run spamd here, if it cannot.
pub fn spamd_missing() -> Option<String> {
    missing_tool("/usr/sbin/spamd", TOOLS)
}

/// Why a test cannot run clamd here, if it cannot.
pub fn clamd_missing() -> Option<String> {
    missing_tool("/usr/sbin/clamd", TOOLS)
}

fn open_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    // spamd drops to nobody when run as root: it must read its config.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// Starts spamd with the .pre files of /etc/spamassassin and a local.cf
/// holding our MIDSPAM rule; waits until it answers.
pub fn spamd() -> Daemon {
    let dir = open_dir();
    let conf = dir.path().join("conf");
    std::fs::create_dir(&conf).unwrap();
    for e in std::fs::read_dir("/etc/spamassassin").unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "pre") {
            std::fs::copy(e.path(), conf.join(e.file_name())).unwrap();
        }
    }
    std::fs::write(
        conf.join("local.cf"),
        format!(
            "body KMP_MIDSPAM /{MIDSPAM}/\nscore KMP_MIDSPAM 7.0\ndescribe KMP_MIDSPAM test rule\n\
             score MISSING_DATE 0\nscore MISSING_MID 0\nscore NO_RELAYS 0\nscore NO_RECEIVED 0\n"
        ),
    )
    .unwrap();
    let socket = dir.path().join("spamd.sock");
    let mut cmd = Command::new("/usr/sbin/spamd");
    cmd.arg(format!("--siteconfigpath={}", conf.display()))
        .args(["-L", "-x", "--syslog=stderr", "--max-children=1"])
        .arg(format!("--socketpath={}", socket.display()))
        .arg(format!("--pidfile={}", dir.path().join("pid").display()));
    if is_root() {
        cmd.args(["-u", "nobody"]);
    }
    let log = std::fs::File::create(dir.path().join("spamd.log")).unwrap();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start spamd");
    let d = Daemon {
        dir,
        socket,
        addr: String::new(),
        child,
    };
    wait_until(Duration::from_secs(90), || {
        answers(&d.socket, b"PING SPAMC/1.5\r\n\r\n", b"PONG")
    })
    .unwrap_or_else(|_| panic!("spamd did not start: {}", log_of(d.dir.path(), "spamd.log")));
    d
}

/// Starts clamd with a signature database holding only EICAR; waits
/// until it answers.
pub fn clamd() -> Daemon {
    let dir = open_dir();
    let db = dir.path().join("db");
    std::fs::create_dir(&db).unwrap();
    let hex: String = EICAR.bytes().map(|b| format!("{b:02x}")).collect();
    std::fs::write(db.join("kmp.ndb"), format!("{EICAR_NAME}:0:*:{hex}\n")).unwrap();
    let socket = dir.path().join("clamd.sock");
    let mut conf = format!(
        "LocalSocket {}\nDatabaseDirectory {}\nForeground yes\nLogFile {}\nPidFile {}\nTemporaryDirectory {}\nStreamMaxLength 10M\n",
        socket.display(),
        db.display(),
        dir.path().join("clamd.log").display(),
        dir.path().join("pid").display(),
        dir.path().display()
    );
    if is_root() {
        conf.push_str("User root\n");
    }
    std::fs::write(dir.path().join("clamd.conf"), conf).unwrap();
    let child = Command::new("/usr/sbin/clamd")
        .arg("-c")
        .arg(dir.path().join("clamd.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start clamd");
    let d = Daemon {
        dir,
        socket,
        addr: String::new(),
        child,
    };
    wait_until(Duration::from_secs(90), || {
        answers(&d.socket, b"zPING\0", b"PONG")
    })
    .unwrap_or_else(|_| panic!("clamd did not start: {}", log_of(d.dir.path(), "clamd.log")));
    d
}

/// Why a test cannot run rspamd here, if it cannot.
pub fn rspamd_missing() -> Option<String> {
    missing_tool("/usr/bin/rspamd", TOOLS)
}

/// The Lua rule of our rspamd: MIDSPAM in a text part scores 7.
const RSPAMD_RULES: &str = r#"
rspamd_config.KMP_MIDSPAM = {
  callback = function(task)
    for _, p in ipairs(task:get_text_parts() or {}) do
      local c = p:get_content()
      if c and tostring(c):find('@WORD@', 1, true) then
        return true
      end
    end
    return false
  end,
  score = 7.0,
  description = 'test rule',
}
"#;

/// Starts rspamd (one normal worker on a free loopback port) with a
/// configuration of ours only: no module of Debian's, a name server that
/// does not exist (nothing is asked of the network), our one rule;
/// waits until it answers. None, with the reason, when it cannot start
/// here.
pub fn rspamd() -> Result<Daemon, String> {
    let dir = open_dir();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())?;
    let d = dir.path().display().to_string();
    std::fs::write(
        dir.path().join("rules.lua"),
        RSPAMD_RULES.replace("@WORD@", MIDSPAM),
    )
    .unwrap();
    // A short list of top-level domains: compiling the whole one takes
    // rspamd minutes on a busy machine.
    std::fs::write(dir.path().join("tld.dat"), "test\ncom\norg\nnet\n").unwrap();
    let conf = format!(
        r#"lua = "{d}/rules.lua";
options {{
  pidfile = "{d}/pid";
  filters = "";
  url_tld = "{d}/tld.dat";
  cache_file = "{d}/symbols.cache";
  hs_cache_dir = "{d}";
  tempdir = "{d}";
  control_socket = "{d}/control.sock mode=0600";
  dns {{ nameserver = ["127.0.0.1:9"]; timeout = 1s; retransmits = 1; }}
}}
logging {{ type = "file"; filename = "{d}/rspamd.log"; level = "info"; }}
actions {{ reject = 15; add_header = 5; }}
worker "normal" {{ bind_socket = "127.0.0.1:{port}"; count = 1; }}
"#
    );
    std::fs::write(dir.path().join("rspamd.conf"), conf).unwrap();
    let mut cmd = Command::new("/usr/bin/rspamd");
    cmd.arg("-f")
        .arg("-c")
        .arg(dir.path().join("rspamd.conf"))
        .args(["--var", &format!("DBDIR={d}")])
        .args(["--var", &format!("RUNDIR={d}")])
        .args(["--var", &format!("LOGDIR={d}")]);
    if is_root() {
        // Its workers would drop to a user of its own; as root they stay.
        cmd.args(["-u", "root", "-g", "root", "-i"]);
    }
    let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("rspamd does not run: {e}"))?;
    let d = Daemon {
        socket: dir.path().join("none"),
        dir,
        addr: format!("127.0.0.1:{port}"),
        child,
    };
    let up = wait_until(Duration::from_secs(60), || {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(&d.addr) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.write_all(b"GET /ping HTTP/1.0\r\n\r\n");
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        buf.windows(4).any(|w| w == b"pong")
    });
    if up.is_err() {
        return Err(format!(
            "rspamd did not start: {}{}",
            log_of(d.dir.path(), "stderr.log"),
            log_of(d.dir.path(), "rspamd.log")
        ));
    }
    Ok(d)
}

fn log_of(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

/// Whether the daemon on `socket` answers `req` with something holding `want`.
fn answers(socket: &Path, req: &[u8], want: &[u8]) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(socket) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(req).is_err() {
        return false;
    }
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap_or(0);
    buf[..n].windows(want.len()).any(|w| w == want)
}

/// Sends a message to kmp-smtpd on BASE+25 with smtplib; returns "ok" or
/// the refusal as "CODE TEXT" (from RCPT or DATA).
pub fn send(port: u16, helo: &str, from: &str, to: &[&str], message: &str) -> String {
    send_from("127.0.0.1", port, helo, from, to, message)
}

/// [`send`] from the client address `source` (any of 127.0.0.0/8).
pub fn send_from(
    source: &str,
    port: u16,
    helo: &str,
    from: &str,
    to: &[&str],
    message: &str,
) -> String {
    let script = r#"
import smtplib, sys
port, helo, sender, rcpts, msg, source = sys.argv[1:7]
try:
    with smtplib.SMTP("127.0.0.1", int(port), local_hostname=helo, timeout=60,
                      source_address=(source, 0)) as s:
        s.sendmail(sender, rcpts.split(","), msg.encode("utf-8"))
    print("ok")
except smtplib.SMTPRecipientsRefused as e:
    code, text = list(e.recipients.values())[0]
    print(code, text.decode())
except smtplib.SMTPDataError as e:
    print(e.smtp_code, e.smtp_error.decode())
except smtplib.SMTPSenderRefused as e:
    print(e.smtp_code, e.smtp_error.decode())
"#;
    let o = super::python(
        script,
        &[
            &port.to_string(),
            helo,
            from,
            &to.join(","),
            message,
            source,
        ],
    );
    assert!(
        o.status.success(),
        "smtplib: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A message with `subject` and `body`.
pub fn message(from: &str, to: &str, subject: &str, body: &str) -> String {
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: Sat, 05 Dec 2026 08:00:00 +0000\r\nMessage-ID: <{}@test>\r\n\r\n{body}\r\n",
        subject.replace(' ', ".")
    )
}

/// A message with EICAR as a base64 attachment.
pub fn eicar_message(from: &str, to: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(EICAR);
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: see attachment\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n\
         --b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"eicar.com\"\r\n\r\n{b64}\r\n--b1--\r\n"
    )
}

/// The header section of each message of a folder, over IMAP.
pub fn headers(port: u16, user: &str, pass: &str, folder: &str) -> Vec<String> {
    let script = r#"
import imaplib, sys
port, user, pw, folder = sys.argv[1:5]
c = imaplib.IMAP4("127.0.0.1", int(port))
c.login(user, pw)
typ, n = c.select('"%s"' % folder, readonly=True)
if typ != "OK" or int(n[0]) == 0:
    sys.exit(0)
typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER])")
for part in data:
    if isinstance(part, tuple):
        print(part[1].decode("utf-8", "replace").replace("\r\n", "\\n"))
"#;
    let o = super::python(script, &[&port.to_string(), user, pass, folder]);
    assert!(
        o.status.success(),
        "imaplib: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}
