//! `sendmail -bs`: a small SMTP session (RFC 5321) on standard input and
//! output, for programs that speak SMTP to a local pipe. Each message goes
//! through the same path as plain `sendmail` (headers added, durable commit).
//! No AUTH, no TLS: the caller is a local user, as with plain `sendmail`.

use std::io::{BufRead, Write};

use super::{queue_message, Context, InjectError, Options};
use crate::exit;

/// The longest command line accepted (RFC 5321 section 4.5.3.1.4: 512).
const MAX_COMMAND: usize = 512;

/// Runs the session until QUIT or end of input; returns the exit code.
pub fn session(ctx: &Context, mut input: impl BufRead, mut out: impl Write) -> i32 {
    let host = ctx.cfg.str("system.hostname").to_string();
    let reply = |out: &mut dyn Write, text: &str| -> bool {
        out.write_all(text.as_bytes())
            .and_then(|_| out.write_all(b"\r\n"))
            .and_then(|_| out.flush())
            .is_ok()
    };
    if !reply(
        &mut out,
        &format!("220 {host} ESMTP Kmpromail (sendmail -bs)"),
    ) {
        return exit::IOERR;
    }
    let mut sender: Option<String> = None;
    let mut rcpts: Vec<String> = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => return exit::OK,
            Ok(_) => {}
            Err(_) => return exit::IOERR,
        }
        if line.len() > MAX_COMMAND {
            if !reply(&mut out, "500 5.5.2 Error: line too long") {
                return exit::IOERR;
            }
            continue;
        }
        let cmd = String::from_utf8_lossy(&line);
        let cmd = cmd.trim_end_matches(['\r', '\n']);
        let (verb, arg) = match cmd.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim()),
            None => (cmd.to_ascii_uppercase(), ""),
        };
        let text = match verb.as_str() {
            "HELO" | "EHLO" if arg.is_empty() => "501 5.5.4 Syntax: HELO/EHLO hostname".to_string(),
            "HELO" => format!("250 {host}"),
            "EHLO" => {
                format!("250-{host}\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES")
            }
            "MAIL" => match path_arg(arg, "FROM:") {
                _ if sender.is_some() => "503 5.5.1 Error: nested MAIL command".into(),
                Some(a) if a.is_empty() || super::plausible_address(&ctx.qualify(&a)) => {
                    sender = Some(if a.is_empty() { a } else { ctx.qualify(&a) });
                    "250 2.1.0 Ok".into()
                }
                Some(_) => "501 5.1.7 Bad sender address syntax".into(),
                None => "501 5.5.4 Syntax: MAIL FROM:<address>".into(),
            },
            "RCPT" => match path_arg(arg, "TO:") {
                _ if sender.is_none() => "503 5.5.1 Error: need MAIL command".into(),
                Some(a) if super::plausible_address(&ctx.qualify(&a)) => {
                    rcpts.push(ctx.qualify(&a));
                    "250 2.1.5 Ok".into()
                }
                Some(_) => "501 5.1.3 Bad recipient address syntax".into(),
                None => "501 5.5.4 Syntax: RCPT TO:<address>".into(),
            },
            "DATA" if rcpts.is_empty() => "503 5.5.1 Error: need RCPT command".into(),
            "DATA" => {
                if !reply(&mut out, "354 End data with <CR><LF>.<CR><LF>") {
                    return exit::IOERR;
                }
                let Some(body) = read_data(&mut input) else {
                    return exit::IOERR;
                };
                let opts = Options {
                    recipients: std::mem::take(&mut rcpts),
                    ..plain_options()
                };
                let from = sender.take().unwrap_or_default();
                match queue_message(ctx, &opts, &from, &body) {
                    Ok(id) => format!("250 2.0.0 Ok: queued as {id}"),
                    Err(InjectError::Queue(e)) if e.is_temporary() => {
                        format!("451 4.3.0 Error: queue file write error ({e})")
                    }
                    Err(e) => format!("554 5.6.0 Error: {e}"),
                }
            }
            "RSET" => {
                sender = None;
                rcpts.clear();
                "250 2.0.0 Ok".into()
            }
            "NOOP" => "250 2.0.0 Ok".into(),
            "VRFY" => "252 2.0.0 Send mail and it will be tried".into(),
            "HELP" => "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP VRFY QUIT".into(),
            "QUIT" => {
                reply(&mut out, "221 2.0.0 Bye");
                return exit::OK;
            }
            _ => "502 5.5.2 Error: command not recognized".into(),
        };
        if !reply(&mut out, &text) {
            return exit::IOERR;
        }
    }
}

/// The options a message from `-bs` is queued with (besides its recipients).
fn plain_options() -> Options {
    Options {
        mode: super::Mode::Deliver,
        from_headers: false,
        ignore_dots: true,
        sender: None,
        full_name: None,
        notify: None,
        ret: None,
        envid: None,
        config: None,
        recipients: Vec::new(),
    }
}

/// `FROM:<a@b> PARAMS` → `a@b`; None when the syntax is wrong.
fn path_arg(arg: &str, prefix: &str) -> Option<String> {
    if arg.len() < prefix.len() || !arg[..prefix.len()].eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = arg[prefix.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    Some(rest[..end].trim().to_string())
}

/// The message after DATA, up to the line with a single dot, dot-stuffing
/// undone (RFC 5321 section 4.5.2). None at end of input.
fn read_data(input: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        let content = line
            .strip_suffix(b"\r\n")
            .or_else(|| line.strip_suffix(b"\n"))
            .unwrap_or(&line);
        if content == b"." {
            return Some(body);
        }
        let content = content.strip_prefix(b".").unwrap_or(content);
        body.extend_from_slice(content);
        body.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse() {
        assert_eq!(path_arg("FROM:<a@b>", "FROM:").as_deref(), Some("a@b"));
        assert_eq!(
            path_arg("from: <a@b> SIZE=10", "FROM:").as_deref(),
            Some("a@b")
        );
        assert_eq!(path_arg("FROM:<>", "FROM:").as_deref(), Some(""));
        assert_eq!(path_arg("FROM:a@b", "FROM:"), None);
        assert_eq!(path_arg("TO", "TO:"), None);
    }

    #[test]
    fn data_is_unstuffed() {
        let mut i = &b"a\r\n..b\r\n.c\r\n.\r\nnext"[..];
        assert_eq!(read_data(&mut i).unwrap(), b"a\n.b\nc\n");
        let mut i = &b"a\r\n"[..];
        assert!(read_data(&mut i).is_none());
    }
}
