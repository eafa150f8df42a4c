//! The compose tests' harness (tests/webmail_compose.rs): an instance
//! that sends mail (kmp-smtpd, kmp-send, kmp-local, kmp-pop3d beside the
//! webmail), the compose form read and posted back as a browser does, and
//! Python for the recipients' side.

use std::time::Duration;

use super::webmail::{webmail_instance_with, Http, Webmail};

/// The webmail instance plus kmp-smtpd, kmp-send, kmp-local and kmp-pop3d, and the
/// users bob, carol and dave beside u.
pub fn start(extra: &[(&str, &str)]) -> Option<Webmail> {
    let mut cfg = vec![("smtpd", "auth_plaintext = true")];
    cfg.extend_from_slice(extra);
    let mut w = webmail_instance_with(&cfg)?;
    for u in [
        "bob@example.test",
        "carol@example.test",
        "dave@example.test",
    ] {
        let out = w
            .inst
            .ctl_stdin(&["user", "add", u, "--password-stdin"], Some(b"secret\n"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    w.inst.spawn("kmp-local", &[]);
    w.inst.wait_socket("local.sock");
    w.inst.spawn("kmp-send", &[]);
    w.inst.spawn("kmp-smtpd", &[]);
    w.inst.spawn("kmp-pop3d", &[]);
    for p in ["kmp-send", "kmp-smtpd", "kmp-pop3d"] {
        let pid = w.inst.path().join(format!("run/{p}.pid"));
        super::wait_until(Duration::from_secs(20), || pid.exists())
            .unwrap_or_else(|_| panic!("{p} did not start: {}", w.inst.log(p)));
    }
    Some(w)
}

/// The value of the hidden or text input `name` of a page, unescaped.
pub fn input(page: &str, name: &str) -> Option<String> {
    let key = format!("name=\"{name}\" value=\"");
    let at = page.find(&key)? + key.len();
    let rest = &page[at..];
    Some(unescape(&rest[..rest.find('"')?]))
}

pub fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The textarea `id`'s text, unescaped.
pub fn textarea(page: &str, id: &str) -> String {
    let key = format!("<textarea id=\"{id}\"");
    let at = page.find(&key).expect("textarea");
    let rest = &page[at..];
    let open = rest.find('>').unwrap() + 1;
    let close = rest.find("</textarea>").unwrap();
    unescape(&rest[open..close])
}

/// POSTs the compose form as a browser does (multipart/form-data):
/// `fields` as text, `files` as (field, path, file name) uploads.
pub fn post_compose(
    w: &Webmail,
    session: &str,
    fields: &[(&str, &str)],
    files: &[(&str, &str)],
) -> Http {
    let url = w.url("/compose");
    let cookie = format!("Cookie: kmpw={session}");
    let mut args: Vec<String> = vec!["-H".into(), cookie];
    for (k, v) in fields {
        args.push("--form-string".into());
        args.push(format!("{k}={v}"));
    }
    for (path, name) in files {
        args.push("-F".into());
        args.push(format!("files=@{path};filename=\"{name}\""));
    }
    args.push(url);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    w.curl(&refs)
}

/// The fields of a compose page, as a browser sends them back.
pub fn fields_of(page: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in [
        "csrf",
        "draft",
        "in_reply_to",
        "references",
        "origin",
        "carry",
        "fwd_as",
        "linked",
        "sig_in",
        "sig",
        "to",
        "cc",
        "bcc",
        "subject",
    ] {
        if let Some(v) = input(page, name) {
            out.push((name.to_string(), v));
        }
    }
    out.push(("body".into(), textarea(page, "body")));
    for p in ["high", "low"] {
        if page.contains(&format!("value=\"{p}\" selected")) {
            out.push(("priority".into(), p.into()));
        }
    }
    if page.contains("id=\"receipt\" name=\"receipt\" value=\"1\" checked") {
        out.push(("receipt".into(), "1".into()));
    }
    if page.contains("id=\"save_sent\" name=\"save_sent\" value=\"1\" checked") {
        out.push(("save_sent".into(), "1".into()));
    }
    out
}

pub fn set(fields: &mut Vec<(String, String)>, k: &str, v: &str) {
    fields.retain(|(n, _)| n != k);
    fields.push((k.into(), v.into()));
}

pub fn as_refs(f: &[(String, String)]) -> Vec<(&str, &str)> {
    f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

pub fn run_py(w: &Webmail, script: &str, args: &[&str]) -> String {
    let imap = (w.inst.base + 143).to_string();
    let pop = (w.inst.base + 110).to_string();
    let mut all = vec!["127.0.0.1", imap.as_str(), pop.as_str()];
    all.extend_from_slice(args);
    let out = super::python(script, &all);
    assert!(
        out.status.success(),
        "python: {}\n{}\nsmtpd: {}\nsend: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        w.inst.log("kmp-smtpd"),
        w.inst.log("kmp-send"),
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

pub const PY_HEAD: &str = r#"
import imaplib, poplib, email, email.policy, sys, time, hashlib, re
host, pimap, ppop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def imap(user):
    m = imaplib.IMAP4(host, pimap)
    m.login(user, "secret")
    return m
def wait_inbox(user, n=1):
    for _ in range(200):
        m = imap(user)
        m.select("INBOX")
        typ, d = m.uid("SEARCH", None, "ALL")
        uids = d[0].split()
        if len(uids) >= n:
            return m, uids
        m.logout()
        time.sleep(0.1)
    raise SystemExit("no mail for " + user)
def fetch(m, uid):
    typ, d = m.uid("FETCH", uid, "(FLAGS BODY.PEEK[])")
    return d[0][1], d[0][0]
def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)
"#;

/// Sets `key = value` in the instance's `[webmail]` section (the
/// webmail reads its configuration at each request).
pub fn set_webmail(w: &Webmail, key: &str, value: &str) {
    let path = w.inst.config();
    let text = std::fs::read_to_string(&path).unwrap();
    let head = text.find("[webmail]").expect("a [webmail] section");
    let (before, section) = text.split_at(head);
    let mut out = before.to_string();
    let mut done = false;
    for line in section.split_inclusive('\n') {
        if !done && line.trim_start().starts_with(&format!("{key} ")) {
            out.push_str(&format!("{key} = {value}\n"));
            done = true;
        } else {
            out.push_str(line);
        }
    }
    if !done {
        out = out.replacen("[webmail]\n", &format!("[webmail]\n{key} = {value}\n"), 1);
    }
    std::fs::write(&path, out).unwrap();
}
