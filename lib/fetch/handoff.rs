//! Handing a fetched message to the queue: through `queue::Incoming`, the
//! one door kmp-smtpd and kmp-inject use, so the message is durable before
//! anything is marked or deleted, and kmp-send, kmp-local, quota and Sieve
//! treat it as any other mail.
//!
//! The envelope: the null sender (the message was delivered once already;
//! a failure here must not bounce to its author, and Sieve's vacation must
//! not answer it), one recipient, the local owner, with the account's
//! target folder as its folder hint (`queue::Recipient::folder`), which
//! kmp-local files the keep into. A `Received:` line names the remote
//! server, the protocol and the account.

use std::path::Path;

use crate::ipc::fetch::FetchAccount;
use crate::queue::{Envelope, Incoming, QueueError, QueueId, Recipient};

/// A message on its way into the drop directory.
pub struct Handoff {
    file: Incoming,
    eight_bit: bool,
    last: u8,
}

impl Handoff {
    /// Opens a queue file and writes the `Received:` line. `via` is the
    /// protocol as the line shows it (`POP3S`, `IMAP`...).
    pub fn begin(
        incoming: &Path,
        hostname: &str,
        account: &FetchAccount,
        via: &str,
    ) -> Result<Handoff, QueueError> {
        let mut file = Incoming::create(incoming)?;
        let date = mail_builder::headers::date::Date::now().to_rfc822();
        let line = format!(
            "Received: from {host} ({host})\n\tby {me} (Kmpromail kmp-fetch) with {via} id {id}\n\tfor <{owner}> (account {name}); {date}\n",
            host = clean(&account.host),
            me = clean(hostname),
            id = file.id(),
            owner = clean(&account.owner),
            name = comment_text(&account.name),
        );
        file.write(line.as_bytes())?;
        Ok(Handoff {
            file,
            eight_bit: false,
            last: b'\n',
        })
    }

    /// The queue id the message will have.
    pub fn id(&self) -> &QueueId {
        self.file.id()
    }

    /// Bytes of the message written so far (with the `Received:` line).
    pub fn size(&self) -> u64 {
        self.file.size()
    }

    /// Appends message bytes with LF line ends.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), QueueError> {
        if let Some(&b) = bytes.last() {
            self.last = b;
        }
        self.eight_bit |= bytes.iter().any(|&b| b >= 0x80);
        self.file.write(bytes)
    }

    /// Appends bytes with CRLF (or bare CR) line ends, as IMAP sends them.
    pub fn write_crlf(&mut self, bytes: &[u8]) -> Result<(), QueueError> {
        let lf = crate::queue::incoming::to_lf(bytes);
        self.write(&lf)
    }

    /// Makes the message durable in the queue and wakes kmp-send.
    pub fn commit(mut self, account: &FetchAccount, kick: &Path) -> Result<QueueId, QueueError> {
        if self.last != b'\n' {
            self.write(b"\n")?;
        }
        let mut rcpt = Recipient::new(account.owner.clone());
        rcpt.folder = Some(account.target_folder().to_string());
        let mut env = Envelope::new("", vec![rcpt]);
        env.body_8bit = self.eight_bit;
        env.origin = format!(
            "fetch {} {} {}",
            account.owner,
            account.protocol.name(),
            account.host
        );
        let id = self.file.commit(&env)?;
        crate::queue::kick(kick);
        Ok(id)
    }
}

/// A header value with nothing that could end the line or the field.
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() && !"()<>;".contains(*c))
        .collect()
}

/// The account's name inside a comment: quoted as is when it is ASCII, an
/// RFC 2047 encoded-word (allowed in comments) otherwise.
fn comment_text(name: &str) -> String {
    if name.is_ascii() {
        return format!("\"{}\"", clean(name).replace('"', ""));
    }
    use base64::Engine;
    format!(
        "=?UTF-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(name.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_the_received_line() {
        assert_eq!(comment_text("gmail"), "\"gmail\"");
        assert_eq!(comment_text("新浪"), "=?UTF-8?B?5paw5rWq?=");
        assert_eq!(clean("a\r\nb(c)"), "abc");
    }
}
