//! The sendmail command line, as cron, mutt, PHP and shell scripts use it.
//! Parsed by hand: sendmail's options glue their values (`-fuser`,
//! `-FName`, `-oi`) in ways an ordinary option parser does not.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::queue::{Notify, Ret};

/// The usage text printed with an option error.
pub const USAGE: &str = "\
usage: sendmail [-t] [-i|-oi] [-f sender] [-F fullname] [-N dsn] [-R ret] [-V envid]
                [-C config] [-v] [recipient ...]
       sendmail -bp      (list the queue, as mailq)
       sendmail -bs      (an SMTP session on standard input)";

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Read a message on standard input and queue it.
    Deliver,
    /// List the queue (`-bp`, or run as `mailq`).
    List,
    /// An SMTP session on standard input and output (`-bs`).
    Smtp,
}

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub mode: Mode,
    /// `-t`: recipients from To, Cc and Bcc (added to those given as arguments).
    pub from_headers: bool,
    /// `-i` / `-oi`: a line with a single dot does not end the message.
    pub ignore_dots: bool,
    /// `-f` / `-r`: the envelope sender.
    pub sender: Option<String>,
    /// `-F`: the full name for an added From header.
    pub full_name: Option<String>,
    /// `-N`: DSN NOTIFY for every recipient.
    pub notify: Option<Notify>,
    /// `-R`: DSN RET.
    pub ret: Option<Ret>,
    /// `-V`: DSN ENVID.
    pub envid: Option<String>,
    /// `-C`: the configuration file.
    pub config: Option<PathBuf>,
    pub recipients: Vec<String>,
}

/// Options accepted and ignored, as Postfix's sendmail ignores them.
const IGNORED: &[&str] = &[
    "-v", "-vv", "-oem", "-oee", "-oep", "-oeq", "-oew", "-odb", "-odi", "-odq", "-om", "-oo",
    "-bm", "-U", "-n",
];

/// Options that take a value that is ignored (glued or separate).
const IGNORED_WITH_VALUE: &[&str] = &["-B", "-L", "-O", "-X", "-h", "-q"];

/// Parses argv (argv[0] included: `mailq` means list).
pub fn parse(argv: &[OsString]) -> Result<Options, String> {
    let name = argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|f| f.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut o = Options {
        mode: if name == "mailq" {
            Mode::List
        } else {
            Mode::Deliver
        },
        from_headers: false,
        ignore_dots: false,
        sender: None,
        full_name: None,
        notify: None,
        ret: None,
        envid: None,
        config: None,
        recipients: Vec::new(),
    };
    let args: Vec<String> = argv
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().to_string())
        .collect();
    let mut i = 0;
    let mut only_recipients = false;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if only_recipients || !a.starts_with('-') || a == "-" {
            for r in a.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                o.recipients.push(r.to_string());
            }
            continue;
        }
        if a == "--" {
            only_recipients = true;
            continue;
        }
        if IGNORED.contains(&a.as_str()) {
            continue;
        }
        // Options with a value: glued (`-fuser`) or separate (`-f user`).
        let mut value = |flag: &str| -> Result<String, String> {
            if a.len() > flag.len() {
                Ok(a[flag.len()..].to_string())
            } else if i < args.len() {
                i += 1;
                Ok(args[i - 1].clone())
            } else {
                Err(format!("option {flag} needs a value"))
            }
        };
        match a.as_str() {
            "-t" => o.from_headers = true,
            "-i" | "-oi" => o.ignore_dots = true,
            "-bp" => o.mode = Mode::List,
            "-bs" => o.mode = Mode::Smtp,
            s if s.starts_with("-f") || s.starts_with("-r") => {
                o.sender = Some(value(&s[..2])?);
            }
            s if s.starts_with("-F") => o.full_name = Some(value("-F")?),
            s if s.starts_with("-C") => o.config = Some(PathBuf::from(value("-C")?)),
            s if s.starts_with("-N") => o.notify = Some(parse_notify(&value("-N")?)?),
            s if s.starts_with("-R") => {
                o.ret = Some(match value("-R")?.to_ascii_lowercase().as_str() {
                    "full" => Ret::Full,
                    "hdrs" => Ret::Hdrs,
                    other => return Err(format!("-R takes full or hdrs, not {other:?}")),
                })
            }
            s if s.starts_with("-V") => o.envid = Some(value("-V")?),
            s if IGNORED_WITH_VALUE.iter().any(|f| s.starts_with(f)) => {
                let _ = value(&s[..2])?;
            }
            s if s.starts_with("-o") && s.len() > 2 => {
                // Other -oX options of old sendmail are harmless settings.
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

/// `-N success,failure,delay` or `never`.
fn parse_notify(s: &str) -> Result<Notify, String> {
    let mut n = Notify {
        success: false,
        failure: false,
        delay: false,
    };
    for w in s.split(',').map(|w| w.trim().to_ascii_lowercase()) {
        match w.as_str() {
            "never" => return Ok(Notify::NEVER),
            "success" => n.success = true,
            "failure" => n.failure = true,
            "delay" => n.delay = true,
            other => {
                return Err(format!(
                    "-N takes never or success,failure,delay, not {other:?}"
                ))
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Options, String> {
        parse(&args.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn the_options_scripts_use_parse() {
        let o = p(&[
            "sendmail",
            "-t",
            "-oi",
            "-fbob@x.test",
            "-F",
            "Bob B",
            "a@x.test,b@x.test",
        ])
        .unwrap();
        assert!(o.from_headers && o.ignore_dots);
        assert_eq!(o.sender.as_deref(), Some("bob@x.test"));
        assert_eq!(o.full_name.as_deref(), Some("Bob B"));
        assert_eq!(o.recipients, ["a@x.test", "b@x.test"]);
        assert_eq!(o.mode, Mode::Deliver);
        // cron's command line
        let o = p(&[
            "sendmail",
            "-FCronDaemon",
            "-i",
            "-B8BITMIME",
            "-oem",
            "root",
        ])
        .unwrap();
        assert_eq!(o.full_name.as_deref(), Some("CronDaemon"));
        assert_eq!(o.recipients, ["root"]);
        assert_eq!(p(&["mailq"]).unwrap().mode, Mode::List);
        assert_eq!(p(&["sendmail", "-bp"]).unwrap().mode, Mode::List);
        assert_eq!(p(&["sendmail", "-bs"]).unwrap().mode, Mode::Smtp);
        assert!(p(&["sendmail", "-v", "-f", "", "x"]).unwrap().sender == Some(String::new()));
        let o = p(&[
            "sendmail",
            "-N",
            "success,delay",
            "-R",
            "hdrs",
            "-V",
            "E1",
            "--",
            "-x@y",
        ])
        .unwrap();
        assert!(o.notify.unwrap().success && !o.notify.unwrap().failure);
        assert_eq!(o.ret, Some(Ret::Hdrs));
        assert_eq!(o.recipients, ["-x@y"]);
    }

    #[test]
    fn unknown_options_are_refused() {
        for bad in [
            &["sendmail", "-Z"][..],
            &["sendmail", "-f"],
            &["sendmail", "-bx"],
            &["sendmail", "-N", "sometimes"],
            &["sendmail", "-R", "most"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
    }
}
