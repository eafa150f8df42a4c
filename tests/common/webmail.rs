//! The webmail under a real web server: an IMAP instance (kmp-authd,
//! kmp-imapd, the user u@example.test / secret) with the lighttpd that
//! `kmpctl init` configured for it, and curl as the browser.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{imap_instance_with, missing_tool, tool, wait_until, Instance, TOOLS};

/// The instance and its lighttpd. Dropping it ends lighttpd, then the daemons.
pub struct Webmail {
    pub inst: Instance,
    lighttpd: Child,
}

/// An HTTP answer as curl saw it.
#[derive(Debug, Clone)]
pub struct Http {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Http {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every Set-Cookie header.
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value the response sets for the session cookie `kmpw`, if any
    /// (empty when it deletes it).
    pub fn session(&self) -> Option<String> {
        self.cookie("kmpw")
    }

    /// The value the response sets for cookie `name`, if any.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}=");
        self.set_cookies().iter().find_map(|c| {
            let v = c.strip_prefix(&prefix)?;
            Some(v.split(';').next().unwrap_or_default().to_string())
        })
    }

    /// The value of the first hidden `csrf` field of the page.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no CSRF field in:\n{}", self.body));
        let rest = &self.body[at + 19..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

/// Skips the test (returns None) with a message when lighttpd or curl is
/// not installed.
pub fn webmail_instance() -> Option<Webmail> {
    webmail_instance_with(&[])
}

/// [`webmail_instance`] with `(section, line)` settings.
pub fn webmail_instance_with(config: &[(&str, &str)]) -> Option<Webmail> {
    for p in ["lighttpd", "curl"] {
        let found =
            missing_tool(p, TOOLS).is_none() || std::path::Path::new("/usr/sbin").join(p).is_file();
        if !found {
            eprintln!("SKIPPED: {}", missing_tool(p, TOOLS).unwrap_or_default());
            return None;
        }
    }
    // The webmail names the browser to kmp-imapd: it must be trusted.
    let mut settings = vec![("imapd", "trusted_networks = [\"127.0.0.1\"]")];
    settings.extend_from_slice(config);
    for _ in 0..5 {
        let inst = imap_instance_with(&settings);
        let free = [80u16, 443]
            .iter()
            .all(|o| std::net::TcpListener::bind(("127.0.0.1", inst.base + o)).is_ok());
        if !free {
            continue;
        }
        let lighttpd = which("lighttpd");
        let conf = inst.path().join("webmail/lighttpd.conf");
        // The CGI program's standard error (its log lines) goes to
        // lighttpd's: keep it in log/webmail.log for tests to read.
        let cgi_log = std::fs::File::create(inst.path().join("log/webmail.log"))
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null());
        let child = Command::new(lighttpd)
            .arg("-D")
            .arg("-f")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(cgi_log)
            .spawn()
            .expect("start lighttpd");
        let w = Webmail {
            inst,
            lighttpd: child,
        };
        wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(w.inst.addr(80)).is_ok()
        })
        .unwrap_or_else(|_| {
            panic!(
                "lighttpd did not start: {}",
                std::fs::read_to_string(w.inst.path().join("log/lighttpd-error.log"))
                    .unwrap_or_default()
            )
        });
        return Some(w);
    }
    panic!("no port base with N+80 and N+443 free");
}

/// The webmail instance with kmp-admind running too, for the
/// administration pages: besides u@example.test, the domains and users of
/// [`super::admind::USERS`] (admin@sys.example a system administrator,
/// pm@a.example the postmaster of a.example, u@a.example and
/// bob@b.example plain users; every password `pw-` and the local part).
pub fn webmail_admin_instance(config: &[(&str, &str)]) -> Option<Webmail> {
    let mut settings = vec![("admind", "admins = [\"admin@sys.example\"]")];
    settings.extend_from_slice(config);
    let mut w = webmail_instance_with(&settings)?;
    for d in ["sys.example", "a.example", "b.example"] {
        w.inst.ctl_ok(&["domain", "add", d]);
    }
    for (u, p) in super::admind::USERS {
        let out = w.inst.ctl_stdin(
            &["user", "add", u, "--password-stdin"],
            Some(format!("{p}\n").as_bytes()),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    w.inst
        .ctl_ok(&["domain", "admin", "add", "a.example", "pm@a.example"]);
    w.inst.spawn("kmp-admind", &[]);
    wait_until(Duration::from_secs(20), || {
        w.inst.path().join("run/kmp-admind.pid").exists()
    })
    .unwrap_or_else(|_| panic!("kmp-admind did not start: {}", w.inst.log("kmp-admind")));
    w.inst.wait_port(844);
    Some(w)
}

fn which(p: &str) -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([std::path::PathBuf::from("/usr/sbin")])
        .map(|d| d.join(p))
        .find(|f| f.is_file())
        .unwrap_or_else(|| p.into())
}

impl Drop for Webmail {
    fn drop(&mut self) {
        let _ = self.lighttpd.kill();
        let _ = self.lighttpd.wait();
    }
}

/// Percent-encodes a form value.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A form body from pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

impl Webmail {
    /// `http://127.0.0.1:N+80PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.inst.addr(80))
    }

    /// `https://127.0.0.1:N+443PATH`.
    pub fn https_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.inst.addr(443))
    }

    /// Runs curl with `args` (plus -s -i) and parses what it got.
    pub fn curl(&self, args: &[&str]) -> Http {
        let out = tool("curl")
            .args(["-s", "-i", "--max-time", "60"])
            .args(args)
            .output()
            .expect("run curl");
        assert!(
            out.status.success(),
            "curl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        parse_http(&out.stdout)
    }

    /// GET `path` with the session cookie `session` (if any).
    pub fn get(&self, path: &str, session: Option<&str>) -> Http {
        let url = self.url(path);
        match session {
            Some(s) => self.curl(&["-H", &format!("Cookie: kmpw={s}"), &url]),
            None => self.curl(&[&url]),
        }
    }

    /// POST a form to `path` with the session cookie `session` (if any).
    pub fn post(&self, path: &str, session: Option<&str>, pairs: &[(&str, &str)]) -> Http {
        let url = self.url(path);
        let body = form(pairs);
        let mut args = vec!["--data-binary", &body];
        let cookie = session.map(|s| format!("Cookie: kmpw={s}"));
        if let Some(c) = &cookie {
            args.extend(["-H", c]);
        }
        args.push(&url);
        self.curl(&args)
    }

    /// Logs `user` in and returns the session cookie's value.
    pub fn login(&self, user: &str, password: &str) -> String {
        let r = self.post_login(user, password);
        assert_eq!(r.status, 303, "login of {user}: {}", r.body);
        r.session().expect("a session cookie")
    }

    /// Fills in the login form as a browser does: GET /login (its token
    /// cookie and hidden token), then POST it.
    pub fn post_login(&self, user: &str, password: &str) -> Http {
        self.post_login_with(&[], &self.url(""), user, password)
    }

    /// [`Webmail::post_login`] with more curl arguments (`--interface`,
    /// `-k`) and another site (`https_url("")`).
    pub fn post_login_with(&self, extra: &[&str], site: &str, user: &str, password: &str) -> Http {
        let mut get = extra.to_vec();
        let login = format!("{site}/login");
        get.push(&login);
        let page = self.curl(&get);
        if page.status != 200 {
            return page;
        }
        let value = page.cookie("kmpl").expect("the login form sets its cookie");
        let body = form(&[
            ("csrf", &page.csrf()),
            ("user", user),
            ("password", password),
        ]);
        let cookie = format!("Cookie: kmpl={value}");
        let mut post = extra.to_vec();
        post.extend(["-H", &cookie, "--data-binary", &body, &login]);
        self.curl(&post)
    }
}

/// Splits curl's `-i` output: the last header block (after any
/// `100 Continue`), then the body.
pub fn parse_http(raw: &[u8]) -> Http {
    let text = String::from_utf8_lossy(raw).to_string();
    let mut rest = text.as_str();
    loop {
        let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if status == 100 {
            rest = body;
            continue;
        }
        let headers = head
            .lines()
            .skip(1)
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
            })
            .collect();
        return Http {
            status,
            headers,
            body: body.to_string(),
        };
    }
}

/// Python for test scripts that talk IMAP: `quoted(name)`, a folder name as
/// an IMAP quoted string in modified UTF-7 (RFC 3501 5.1.3), written apart
/// from the project's codec so that it checks it. Needs `import base64`.
pub const PY_MUTF7: &str = r#"
def mutf7(s):
    out, buf = [], ''
    def flush():
        if buf:
            b = base64.b64encode(buf.encode('utf-16-be')).decode().rstrip('=').replace('/', ',')
            out.append('&' + b + '-')
    for ch in s:
        if 0x20 <= ord(ch) <= 0x7e:
            flush(); buf = ''
            out.append('&-' if ch == '&' else ch)
        else:
            buf += ch
    flush()
    return ''.join(out)
def quoted(s):
    return '"' + mutf7(s) + '"'
"#;

/// The Python with selenium that drives headless Chromium for the browser
/// tests (Debian's first, then whatever is in PATH), or None after saying
/// on stderr why the test is skipped.
pub fn browser_python() -> Option<&'static str> {
    for p in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        if !std::path::Path::new(p).is_file() {
            let name = p.rsplit('/').next().unwrap_or(p);
            eprintln!(
                "SKIPPED: {}",
                missing_tool(p, TOOLS).unwrap_or_else(|| format!("{name} is not installed"))
            );
            return None;
        }
    }
    let py = ["/usr/bin/python3", "python3"].into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import selenium"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if py.is_none() {
        eprintln!(
            "SKIPPED: the browser test needs python3-selenium: apt-get install python3-selenium"
        );
    }
    py
}
