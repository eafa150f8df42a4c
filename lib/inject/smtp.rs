//! `sendmail -bs`: an SMTP session (RFC 5321) on standard input and output,
//! for programs that speak SMTP to a local pipe. Each message goes through
//! the same path as plain `sendmail` (headers added, durable commit).
//!
//! The syntax is kmp-smtpd's: commands come from [`CommandReader`] and the
//! message from [`BodyDecoder`], so only `CRLF . CRLF` ends DATA and a bare
//! CR or LF gets the message refused, here as on port 25 (no smuggling
//! through a local pipe either). The replies are kmp-smtpd's too. No AUTH,
//! no TLS, no BDAT: the caller is a local user, as with plain `sendmail`.

use std::io::{Read, Write};

use super::stream::QueueWriter;
use super::{Context, InjectError, Options};
use crate::exit;
use crate::proto::smtp::reply::{self, Reply};
use crate::proto::smtp::{
    command::parse_command, BodyDecoder, Command, CommandReader, ForwardPath, MailParams, Mode,
    ParseError, Problem,
};

/// How much is read from the input at a time.
const READ_CHUNK: usize = 16 * 1024;

/// A transaction from MAIL on.
struct Transaction {
    /// Empty for the null sender.
    sender: String,
    params: MailParams,
    recipients: Vec<String>,
}

/// The input not yet used, and whether it has ended.
struct Input<R> {
    r: R,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl<R: Read> Input<R> {
    fn rest(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads more; false at end of input or on an error.
    fn fill(&mut self) -> bool {
        if self.eof {
            return false;
        }
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > READ_CHUNK {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + READ_CHUNK, 0);
        let n = loop {
            match self.r.read(&mut self.buf[len..]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Ok(n) => break n,
                Err(_) => break 0,
            }
        };
        self.buf.truncate(len + n);
        if n == 0 {
            self.eof = true;
        }
        n > 0
    }
}

/// Runs the session until QUIT or end of input; returns the exit code.
pub fn session(ctx: &Context, input: impl Read, mut out: impl Write) -> i32 {
    let host = ctx.cfg.str("system.hostname").to_string();
    let max_size = ctx.max_message_size();
    let max_rcpts = ctx.cfg.usize("smtpd.max_recipients");
    let mut send = |r: &Reply| -> bool {
        let mut v = Vec::new();
        r.write_to(&mut v);
        out.write_all(&v).and_then(|_| out.flush()).is_ok()
    };
    let greeting = Reply {
        text: format!("{host} ESMTP Kmpromail (sendmail -bs)").into(),
        ..reply::greeting(&host)
    };
    if !send(&greeting) {
        return exit::IOERR;
    }
    let mut input = Input {
        r: input,
        buf: Vec::new(),
        pos: 0,
        eof: false,
    };
    let mut reader = CommandReader::new();
    let mut tx: Option<Transaction> = None;
    loop {
        let (used, r) = reader.command(input.rest());
        let raw = &input.rest()[..used];
        let r = match r {
            // A bare name (`RCPT TO:<bob>`) is qualified as plain sendmail does.
            Err(ParseError::BadSender(_) | ParseError::BadRecipient(_)) => {
                match qualify_path(raw, ctx.domain()) {
                    Some(line) => parse_command(&line),
                    None => r,
                }
            }
            r => r,
        };
        input.pos += used;
        let cmd = match r {
            Err(ParseError::NeedsMoreData) => {
                if !input.fill() {
                    return exit::OK;
                }
                continue;
            }
            Err(e) => {
                if !send(&e.reply()) {
                    return exit::IOERR;
                }
                continue;
            }
            Ok(c) => c,
        };
        let answer = match cmd {
            Command::Helo(_) => {
                tx = None;
                reply::helo(&host)
            }
            Command::Ehlo(_) => {
                tx = None;
                let ext = [
                    "PIPELINING".to_string(),
                    format!("SIZE {max_size}"),
                    "8BITMIME".to_string(),
                    "ENHANCEDSTATUSCODES".to_string(),
                ];
                reply::ehlo(&host, &ext)
            }
            Command::Mail { .. } if tx.is_some() => reply::NESTED_MAIL,
            Command::Mail { params, .. } if params.size.is_some_and(|s| s > max_size) => {
                reply::MESSAGE_TOO_BIG
            }
            Command::Mail { from, params } => {
                tx = Some(Transaction {
                    sender: from.map(|m| m.to_string()).unwrap_or_default(),
                    params,
                    recipients: Vec::new(),
                });
                reply::SENDER_OK
            }
            Command::Rcpt { to, .. } => match &mut tx {
                None => reply::NEED_MAIL,
                Some(t) if t.recipients.len() >= max_rcpts => reply::TOO_MANY_RECIPIENTS,
                Some(t) => {
                    t.recipients.push(match to {
                        ForwardPath::Postmaster => ctx.qualify("postmaster"),
                        ForwardPath::Mailbox(m) => m.to_string(),
                    });
                    reply::RECIPIENT_OK
                }
            },
            Command::Data => match tx.take() {
                None => reply::NEED_MAIL,
                Some(t) if t.recipients.is_empty() => {
                    tx = Some(t);
                    reply::NO_VALID_RECIPIENTS
                }
                Some(t) => {
                    if !send(&reply::START_DATA) {
                        return exit::IOERR;
                    }
                    match message(ctx, &mut input, t, max_size) {
                        Some(r) => r,
                        // The input ended inside the message: nothing queued.
                        None => return exit::IOERR,
                    }
                }
            },
            Command::Rset => {
                tx = None;
                reply::RESET_OK
            }
            Command::Noop => reply::NOOP_OK,
            Command::Help => reply::HELP,
            Command::Vrfy => reply::VRFY_CANNOT,
            Command::Quit => {
                send(&reply::BYE);
                return exit::OK;
            }
            // Not offered: the octets of a BDAT chunk are skipped (RFC
            // 3030 2), never read as commands.
            Command::Bdat { size, .. } => {
                let mut left = size;
                while left > 0 {
                    if input.rest().is_empty() && !input.fill() {
                        return exit::IOERR;
                    }
                    let n = (input.rest().len() as u64).min(left) as usize;
                    input.pos += n;
                    left -= n as u64;
                }
                reply::NOT_IMPLEMENTED
            }
            Command::Expn | Command::StartTls | Command::Auth { .. } | Command::Burl { .. } => {
                reply::NOT_IMPLEMENTED
            }
            Command::Unknown(_) => reply::UNKNOWN_COMMAND,
        };
        if !send(&answer) {
            return exit::IOERR;
        }
    }
}

/// Reads one message after 354 and queues it; the reply to its end. None
/// when the input ends before `CRLF . CRLF`.
fn message(
    ctx: &Context,
    input: &mut Input<impl Read>,
    t: Transaction,
    max_size: u64,
) -> Option<Reply> {
    // Past the limit the decoder stops keeping bytes; what it keeps goes
    // into the queue file as it comes, committed only once the whole
    // message is known to be good.
    let mut d = BodyDecoder::new(Mode::Data, max_size);
    let opts = Options {
        recipients: t.recipients,
        ret: t.params.ret,
        envid: t.params.envid,
        ..plain_options()
    };
    let mut writer = QueueWriter::new(ctx, &opts, &t.sender);
    let mut body = Vec::new();
    loop {
        body.clear();
        let (used, done) = d.decode(input.rest(), &mut body);
        input.pos += used;
        if let Ok(w) = writer.as_mut() {
            if let Err(e) = w.push(&body) {
                writer = Err(e);
            }
        }
        if done {
            break;
        }
        if !input.fill() {
            return None;
        }
    }
    let s = d.summary();
    if s.too_big {
        return Some(reply::MESSAGE_TOO_BIG);
    }
    if let Some(p) = s.problem {
        return Some(match p {
            Problem::BareLineEnd => reply::BARE_LINE_END,
            Problem::Nul => reply::NUL_IN_MESSAGE,
            Problem::LongLine => reply::LONG_LINE_IN_MESSAGE,
        });
    }
    Some(match writer.and_then(QueueWriter::finish) {
        Ok(id) => reply::queued(&id.to_string()),
        Err(InjectError::Queue(e)) if e.is_temporary() => {
            Reply::owned(451, "4.3.0", format!("Queue file write error ({e})"))
        }
        Err(e) => Reply::owned(554, "5.6.0", format!("Message not queued: {e}")),
    })
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

/// A MAIL or RCPT line whose path is a bare name (`<bob>`), with
/// `@domain` added; None for any other line.
fn qualify_path(line: &[u8], domain: &str) -> Option<Vec<u8>> {
    let open = line.iter().position(|&b| b == b'<')?;
    let close = open + line[open..].iter().position(|&b| b == b'>')?;
    let name = &line[open + 1..close];
    let verb = line.get(..4)?;
    let is_path = verb.eq_ignore_ascii_case(b"MAIL") || verb.eq_ignore_ascii_case(b"RCPT");
    if !is_path || name.is_empty() || name.contains(&b'@') || domain.is_empty() {
        return None;
    }
    let mut out = line[..close].to_vec();
    out.push(b'@');
    out.extend_from_slice(domain.as_bytes());
    out.extend_from_slice(&line[close..]);
    while matches!(out.last(), Some(b'\n' | b'\r')) {
        out.pop();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_are_qualified() {
        let q = |l: &[u8]| qualify_path(l, "example.test").map(|v| String::from_utf8(v).unwrap());
        assert_eq!(
            q(b"RCPT TO:<bob>\r\n").as_deref(),
            Some("RCPT TO:<bob@example.test>")
        );
        assert_eq!(
            q(b"mail from:<root> SIZE=10\n").as_deref(),
            Some("mail from:<root@example.test> SIZE=10")
        );
        assert_eq!(q(b"RCPT TO:<a@b>\r\n"), None);
        assert_eq!(q(b"MAIL FROM:<>\r\n"), None);
        assert_eq!(q(b"NOOP <x>\r\n"), None);
        assert_eq!(q(b"RCPT TO:bob\r\n"), None);
    }
}
