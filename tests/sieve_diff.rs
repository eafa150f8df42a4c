//! The differential test of our Sieve interpreter against Pigeonhole's
//! `sieve-test` (Debian's dovecot-sieve), the reference implementation:
//! every script of tests/data/sieve/scripts/ over every message of
//! tests/data/sieve/messages/, the actions of both normalised to one line
//! each and compared. A pair that differs fails the test by name, unless
//! tests/data/sieve/deviations.txt marks it with the reason.
//!
//! The envelope of a message is its From address to me@example.com,
//! unless tests/data/sieve/envelopes.txt says otherwise. Spam and virus
//! scores come from X-Spam-Score (0..10) and X-Virus-Status (clean or
//! infected), read the way Pigeonhole's configuration below reads them.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use kmpromail::sieve::{
    self, Action, Env, Envelope, Extensions, Limits, Loader, Location, Message,
};

const RCPT: &str = "me@example.com";

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sieve")
}

fn files(dir: &str, ext: &str) -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = fs::read_dir(data().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    v.sort();
    v
}

/// Included scripts: tests/data/sieve/include/personal/ and global/, the
/// directories Pigeonhole's `sieve` and `sieve_global` name.
struct Includes;

impl Loader for Includes {
    fn load(&self, name: &str, location: Location) -> Result<Option<String>, String> {
        let dir = match location {
            Location::Personal => "personal",
            Location::Global => "global",
        };
        let path = data()
            .join("include")
            .join(dir)
            .join(format!("{name}.sieve"));
        Ok(fs::read_to_string(path).ok())
    }
}

/// The Env both sides agree on: no own addresses besides the recipient,
/// nothing seen before, scores from the headers.
struct Fixed<'a> {
    msg: &'a Message<'a>,
}

impl Env for Fixed<'_> {
    fn now(&self) -> (i64, i32) {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        (t, 0)
    }
    fn spamtest(&mut self, percent: bool) -> Option<u32> {
        let v: f64 = self
            .msg
            .values("x-spam-score")
            .first()?
            .trim()
            .parse()
            .ok()?;
        let v = v.clamp(0.0, 10.0);
        Some(if percent {
            (v * 10.0).round() as u32
        } else {
            1 + (v * 9.0 / 10.0).floor() as u32
        })
    }
    fn virustest(&mut self) -> Option<u32> {
        match self.msg.values("x-virus-status").first()?.trim() {
            "clean" => Some(1),
            "infected" => Some(5),
            _ => None,
        }
    }
}

fn flags(f: &[String]) -> String {
    let mut f: Vec<String> = f.iter().map(|x| x.to_lowercase()).collect();
    f.sort();
    f.dedup();
    f.join(" ")
}

/// Our actions as normalised lines.
fn ours(script: &str, raw: &[u8], env: &Envelope) -> Vec<String> {
    let compiled = match sieve::compile_with(
        script,
        &Extensions::all(),
        Some(&Includes),
        &Limits::default(),
    ) {
        Ok(s) => s,
        Err(e) => return vec![format!("compile-error line {}", e.line)],
    };
    let msg = Message::parse(raw);
    let mut fixed = Fixed { msg: &msg };
    let orig_subject = msg.values("subject").into_iter().next().unwrap_or_default();
    let mut out = Vec::new();
    match compiled.run(&msg, env, &mut fixed) {
        Err(_) => {
            out.push("error".into());
            out.push("store INBOX []".into());
        }
        Ok(o) => {
            for a in o.actions {
                out.push(match a {
                    Action::Keep { flags: f, .. } => format!("store INBOX [{}]", flags(&f)),
                    Action::Fileinto {
                        mailbox, flags: f, ..
                    } => format!("store {mailbox} [{}]", flags(&f)),
                    Action::Redirect { address, .. } => format!("redirect {address}"),
                    Action::Reject { reason, .. } => {
                        // sieve-test prints control characters as "?".
                        let r: String = reason
                            .chars()
                            .map(|c| if c.is_control() { '?' } else { c })
                            .collect();
                        format!("reject {r}")
                    }
                    Action::Discard => "discard".into(),
                    Action::Vacation(v) => {
                        let mut l = format!("vacation seconds={}", v.period_seconds);
                        if v.subject != format!("Auto: {orig_subject}") {
                            l += &format!(" subject={}", v.subject);
                        }
                        if let Some(f) = v.from {
                            l += &format!(" from={f}");
                        }
                        l
                    }
                    Action::Notify(n) => {
                        let mut l =
                            format!("notify importance={} to={}", n.importance, n.to.join(","));
                        if let Some(m) = n.message {
                            l += &format!(" message={m}");
                        }
                        l
                    }
                });
            }
        }
    }
    out.sort();
    out
}

/// Pigeonhole's actions, from sieve-test's report, as normalised lines.
fn theirs(out: &str, ok: bool) -> Vec<String> {
    if out.contains("final result: failed") {
        let mut v = vec!["error".to_string(), "store INBOX []".to_string()];
        v.sort();
        return v;
    }
    if !ok || out.contains("failed to compile") {
        // The first error's line: "NAME: line N: error: ...".
        let line = out
            .lines()
            .find_map(|l| {
                let (_, rest) = l.split_once(": line ")?;
                let (n, rest) = rest.split_once(':')?;
                rest.trim_start()
                    .starts_with("error")
                    .then(|| n.trim().to_string())
            })
            .unwrap_or_default();
        return vec![format!("compile-error line {line}")];
    }
    let mut lines: Vec<String> = Vec::new();
    // One action: its head and its details.
    let mut cur: Option<(String, Vec<String>)> = None;
    let mut in_body = false;
    let flush = |cur: &mut Option<(String, Vec<String>)>, lines: &mut Vec<String>| {
        let Some((head, det)) = cur.take() else {
            return;
        };
        let get = |k: &str| {
            det.iter().find_map(|d| {
                let d = d.trim_start_matches("=>").trim();
                let (name, v) = d.split_once(':')?;
                (name.trim() == k).then(|| v.trim().to_string())
            })
        };
        if let Some(f) = head.strip_prefix("store message in folder: ") {
            let fl: Vec<String> = det
                .iter()
                .filter_map(|d| d.strip_prefix("+ add IMAP flags: "))
                .flat_map(|s| s.split_whitespace().map(str::to_string))
                .collect();
            lines.push(format!("store {f} [{}]", flags(&fl)));
        } else if let Some(a) = head.strip_prefix("redirect message to: ") {
            lines.push(format!(
                "redirect {}",
                a.trim_start_matches('<').trim_end_matches('>')
            ));
        } else if let Some(r) = head.strip_prefix("reject message with reason: ") {
            lines.push(format!("reject {r}"));
        } else if head.starts_with("track duplicate") {
            // Our Outcome::duplicates: remembered, not an action.
        } else if head == "discard" {
            lines.push("discard".into());
        } else if head.starts_with("send vacation message") {
            let mut l = format!("vacation seconds={}", get("seconds").unwrap_or_default());
            if let Some(s) = get("subject") {
                l += &format!(" subject={s}");
            }
            if let Some(f) = get("from") {
                l += &format!(" from={f}");
            }
            lines.push(l);
        } else if head.starts_with("send notification with method") {
            let to: Vec<String> = det
                .iter()
                .filter_map(|d| d.strip_prefix("+ To: "))
                .map(|s| s.trim().to_string())
                .collect();
            let mut l = format!(
                "notify importance={} to={}",
                get("importance").unwrap_or_default(),
                to.join(",")
            );
            if let Some(s) = get("subject") {
                l += &format!(" message={s}");
            }
            lines.push(l);
        } else {
            lines.push(format!("unknown {head}"));
        }
    };
    for line in out.lines() {
        if line == "START MESSAGE" {
            in_body = true;
            continue;
        }
        if line == "END MESSAGE" {
            in_body = false;
            continue;
        }
        if in_body {
            continue;
        }
        if let Some(h) = line.strip_prefix(" * ") {
            flush(&mut cur, &mut lines);
            cur = Some((h.trim().to_string(), Vec::new()));
        } else if let Some((_, det)) = cur.as_mut() {
            let t = line.trim();
            if t.starts_with('+') || t.starts_with("=>") {
                det.push(t.to_string());
            } else if !t.is_empty() {
                flush(&mut cur, &mut lines);
            }
        }
    }
    flush(&mut cur, &mut lines);
    // sieve-test lists the implicit keep apart even when an action of the
    // script already stores into INBOX (fileinto :copy "INBOX"); it
    // stores once when it executes, so the two are one store here.
    let inbox: Vec<String> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("store INBOX [")?.strip_suffix(']'))
        .flat_map(|f| f.split_whitespace().map(str::to_string))
        .collect();
    if lines
        .iter()
        .filter(|l| l.starts_with("store INBOX ["))
        .count()
        > 1
    {
        lines.retain(|l| !l.starts_with("store INBOX ["));
        lines.push(format!("store INBOX [{}]", flags(&inbox)));
    }
    lines.sort();
    lines
}

fn pigeonhole_config(dir: &Path) -> PathBuf {
    // ~ is the HOME each run is given.
    // sieve-test drops privileges to mail_uid; as root that must be
    // another user, who must then read the corpus and the temp dir.
    let uid = run_uid(dir);
    let conf = format!(
        "mail_uid = {uid}\nmail_gid = {uid}\nfirst_valid_uid = 0\nfirst_valid_gid = 0\n\
         sendmail_path = /bin/true\n\
         mail_location = maildir:~/Maildir\n\
         plugin {{\n  sieve = file:{dir}/sieve;active={dir}/.dovecot.sieve\n  sieve_global = {dir}/global\n  sieve_extensions = +vacation-seconds +spamtest +spamtestplus +virustest\n\
         sieve_spamtest_status_type = score\n  sieve_spamtest_status_header = X-Spam-Score\n  sieve_spamtest_max_value = 10\n\
         sieve_virustest_status_type = text\n  sieve_virustest_status_header = X-Virus-Status\n\
         sieve_virustest_text_value1 = clean\n  sieve_virustest_text_value5 = infected\n}}\n",
        dir = dir.display()
    );
    let path = dir.join("dovecot.conf");
    fs::write(&path, conf).unwrap();
    path
}

/// Our own uid (the owner of what we create), or nobody's when we are
/// root (Dovecot refuses root).
fn run_uid(dir: &Path) -> u32 {
    let uid = fs::metadata(dir).unwrap().uid();
    if uid == 0 {
        65534
    } else {
        uid
    }
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn envelopes() -> BTreeMap<String, (String, String)> {
    let text = fs::read_to_string(data().join("envelopes.txt")).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let from = if w[1] == "<>" {
                String::new()
            } else {
                w[1].to_string()
            };
            (
                w[0].to_string(),
                (from, w.get(2).unwrap_or(&RCPT).to_string()),
            )
        })
        .collect()
}

/// (script, message) → reason, from deviations.txt ("*" for any).
fn deviations() -> Vec<(String, String, String)> {
    let text = fs::read_to_string(data().join("deviations.txt")).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut w = l.splitn(3, char::is_whitespace);
            (
                w.next().unwrap_or("").to_string(),
                w.next().unwrap_or("").to_string(),
                w.next().unwrap_or("").trim().to_string(),
            )
        })
        .collect()
}

#[test]
fn sieve_agrees_with_pigeonhole() {
    let sieve_test = common::tool("sieve-test");
    drop(sieve_test);
    let tmp = std::env::temp_dir().join(format!("kmp-sieve-diff-{}", std::process::id()));
    fs::create_dir_all(&tmp).unwrap();
    // Readable and writable by the user sieve-test switches to.
    chmod(&tmp, 0o777);
    let conf = pigeonhole_config(&tmp);
    let scripts = files("scripts", "sieve");
    let messages = files("messages", "eml");
    let envs = envelopes();
    let devs = deviations();
    // Copies in the temp dir: sieve-test writes a compiled .svbin beside
    // the script, and the user it runs as must read both.
    for (name, path) in scripts.iter().chain(messages.iter()) {
        fs::copy(path, tmp.join(name)).unwrap();
        chmod(&tmp.join(name), 0o644);
    }
    for (dir, to) in [("personal", "sieve"), ("global", "global")] {
        fs::create_dir_all(tmp.join(to)).unwrap();
        chmod(&tmp.join(to), 0o777);
        for (name, path) in files(&format!("include/{dir}"), "sieve") {
            fs::copy(&path, tmp.join(to).join(&name)).unwrap();
            chmod(&tmp.join(to).join(&name), 0o666);
        }
    }
    let pairs: Vec<(&String, &String)> = scripts
        .iter()
        .flat_map(|(s, _)| messages.iter().map(move |(m, _)| (s, m)))
        .collect();
    let check = |s: &String, m: &String| -> Option<String> {
        let src = fs::read_to_string(tmp.join(s)).unwrap();
        let raw = fs::read(tmp.join(m)).unwrap();
        let (from, to) = envs.get(m.as_str()).cloned().unwrap_or_else(|| {
            let msg = Message::parse(&raw);
            let from = kmpromail::mime::address_list(msg.raw_values("from").next().unwrap_or(b""))
                .into_iter()
                .next()
                .map(|a| a.address)
                .unwrap_or_default();
            (from, RCPT.to_string())
        });
        let env = Envelope {
            from: from.clone(),
            to: to.clone(),
            auth: None,
        };
        let a = ours(&src, &raw, &env);
        let out = Command::new("sieve-test")
            .env("HOME", &tmp)
            .env("TZ", "UTC")
            .arg("-c")
            .arg(&conf)
            .args(["-r", &to, "-a", &to, "-f", &from])
            .arg(tmp.join(s))
            .arg(tmp.join(m))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut b = theirs(&text, out.status.success());
        // sieve-test lists a vacation action without deciding whether it
        // is due (lists, bulk, auto-replies, not addressed to the user):
        // that happens when it executes (-e), in a fresh home so that no
        // earlier reply is remembered.
        if b.iter().any(|l| l.starts_with("vacation ")) {
            let home = tmp.join(format!("home-{s}-{m}"));
            fs::create_dir_all(&home).unwrap();
            chmod(&home, 0o777);
            let exec = Command::new("sieve-test")
                .env("HOME", &home)
                .env("TZ", "UTC")
                .arg("-c")
                .arg(&conf)
                .args(["-e", "-r", &to, "-a", &to, "-f", &from])
                .arg(tmp.join(s))
                .arg(tmp.join(m))
                .output()
                .unwrap();
            let log = String::from_utf8_lossy(&exec.stderr).into_owned()
                + &String::from_utf8_lossy(&exec.stdout);
            if !log.contains("sent vacation response") {
                b.retain(|l| !l.starts_with("vacation "));
            }
            let _ = fs::remove_dir_all(&home);
        }
        (a != b).then(|| format!("{s} × {m}:\n  ours:       {a:?}\n  pigeonhole: {b:?}\n{text}"))
    };
    let results: Vec<(usize, Option<String>)> = std::thread::scope(|sc| {
        let chunks: Vec<Vec<(usize, (&String, &String))>> = {
            let mut c = vec![Vec::new(), Vec::new()];
            for (i, p) in pairs.iter().enumerate() {
                c[i % 2].push((i, *p));
            }
            c
        };
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let check = &check;
                sc.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|(i, (s, m))| (i, check(s, m)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut failures = Vec::new();
    let mut marked = 0;
    for (i, diff) in results {
        let (s, m) = pairs[i];
        let Some(diff) = diff else { continue };
        let dev = devs
            .iter()
            .find(|(ds, dm, _)| (ds == s || ds == "*") && (dm == m || dm == "*"));
        match dev {
            Some((_, _, why)) => {
                marked += 1;
                eprintln!(
                    "deviation ({why}): {}",
                    diff.lines().take(3).collect::<Vec<_>>().join("\n")
                );
            }
            None => failures.push(diff),
        }
    }
    let _ = fs::remove_dir_all(&tmp);
    eprintln!(
        "sieve differential: {} scripts × {} messages = {} pairs, {} agree, {} documented deviations, {} differ",
        scripts.len(),
        messages.len(),
        pairs.len(),
        pairs.len() - marked - failures.len(),
        marked,
        failures.len()
    );
    assert!(
        scripts.len() >= 60 && messages.len() >= 30,
        "the corpus is too small"
    );
    assert!(
        failures.is_empty(),
        "{} pairs differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
