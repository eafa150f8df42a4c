//! Delivery jobs: kmp-send hands one message and some of its recipients to
//! kmp-local or kmp-remote, and gets one result per recipient back.
//!
//! kmp-send connects to the delivery agent's socket (`RUN/local.sock` or
//! `RUN/remote.sock`) and sends a [`Job`] frame with the message file's open
//! descriptor attached (SCM_RIGHTS, see `sys::fdpass`): the agent never opens
//! the queue. The agent answers with one [`JobReply`] frame. A connection that
//! breaks before the reply leaves every recipient of the job to be retried.
//! [`send`] and [`recv`] do the descriptor passing on blocking sockets; the
//! reply is an ordinary frame (`frame::write` / `frame::read`).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use serde::{Deserialize, Serialize};

use super::frame::FrameError;
use crate::queue::{Notify, Ret};

/// The protocol version this library speaks.
pub const VERSION: u32 = 1;

/// One delivery attempt of one message to some of its recipients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub v: u32,
    /// The queue id, first on every log line about the message.
    pub qid: String,
    /// The envelope sender, empty for the null sender.
    pub sender: String,
    #[serde(default)]
    pub envid: Option<String>,
    #[serde(default)]
    pub ret: Option<Ret>,
    #[serde(default)]
    pub smtputf8: bool,
    #[serde(default)]
    pub body_8bit: bool,
    /// The message's size in bytes.
    pub size: u64,
    /// When the message was accepted, seconds since the epoch (for `delay=`).
    pub arrived: u64,
    pub recipients: Vec<JobRecipient>,
    /// The only job of the message's first attempt since kmp-send took the
    /// message in: no earlier delivery of it can exist, so kmp-local skips
    /// looking for one. kmp-send never sets it for a message it found in its
    /// index on start (a job may have been sent before the crash).
    #[serde(default)]
    pub fresh: bool,
    /// When the kmp-send that made the job started, on the host's monotonic
    /// clock ([`crate::clock::monotonic_ns`]). A job of a kmp-send that died
    /// can still sit unread in kmp-local's socket while its successor's job
    /// for the same message is delivered: kmp-local never trusts `fresh` of
    /// a job older than the newest kmp-send it has heard from. 0: unknown.
    #[serde(default)]
    pub generation: u64,
}

/// One recipient in a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecipient {
    /// Its index in the queued message's recipient list.
    pub index: u32,
    pub address: String,
    #[serde(default)]
    pub notify: Notify,
    #[serde(default)]
    pub orcpt: Option<String>,
    /// Unique for this message and recipient across every attempt. (kmp-local
    /// records a per-mailbox id, `QID.<hash>`, in the Maildir instead, so a
    /// mailbox reached by several recipients gets one copy.)
    pub delivery_id: String,
    /// File into this folder instead of INBOX (a fetched account's mail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
}

/// What became of one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Delivered (or accepted by the next hop).
    Sent,
    /// Accepted by a next hop that does not speak DSN: NOTIFY=SUCCESS gets a "relayed" DSN.
    Relayed,
    /// Temporary failure: retry on the schedule.
    Deferred,
    /// Permanent failure: bounce.
    Bounced,
}

/// The result for one recipient, with what the log line and a DSN need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientResult {
    pub index: u32,
    pub outcome: Outcome,
    /// RFC 3463 enhanced status code, e.g. `2.0.0`, `5.1.1`.
    pub dsn: String,
    /// The log's parenthesised text: `delivered to maildir`, the remote reply.
    pub text: String,
    /// `local`, or `host[ip]:port` for a remote delivery.
    pub relay: String,
    /// RFC 3464 Remote-MTA, for remote results.
    #[serde(default)]
    pub remote_mta: Option<String>,
    /// RFC 3464 Diagnostic-Code (`smtp; 550 5.1.1 no such user`).
    #[serde(default)]
    pub diagnostic: Option<String>,
    /// New recipients this one expanded to (aliases and forwards to other
    /// addresses): kmp-send queues them as recipients of the same message.
    #[serde(default)]
    pub expanded: Vec<String>,
}

/// The agent's answer to a job: one result per recipient of the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobReply {
    pub v: u32,
    pub results: Vec<RecipientResult>,
}

/// Sends `job` as one frame on a blocking Unix stream, with the message
/// file's descriptor `fd` attached to the frame's first byte (the whole frame
/// goes in one `sendmsg`).
pub fn send(
    stream: &std::os::unix::net::UnixStream,
    job: &Job,
    fd: RawFd,
) -> Result<(), FrameError> {
    let bytes = super::frame::encode(job);
    crate::sys::fdpass::send_with_fd(stream.as_raw_fd(), &bytes, fd)?;
    Ok(())
}

/// Receives one job frame and the descriptor that came with it, on a
/// blocking Unix stream: what a delivery agent does per job.
/// [`FrameError::Closed`] at a clean end of stream.
pub fn recv(
    stream: &mut std::os::unix::net::UnixStream,
) -> Result<(Job, Option<OwnedFd>), FrameError> {
    use std::io::Read;
    let mut first = [0u8; 4096];
    let (n, fd) = crate::sys::fdpass::recv_with_fd(stream.as_raw_fd(), &mut first)?;
    if n == 0 {
        return Err(FrameError::Closed);
    }
    let mut buf = first[..n].to_vec();
    while buf.len() < 4 {
        let mut more = [0u8; 4];
        let m = stream.read(&mut more[..4 - buf.len()])?;
        if m == 0 {
            return Err(FrameError::Closed);
        }
        buf.extend_from_slice(&more[..m]);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > super::frame::MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    if buf.len() > 4 + len {
        return Err(FrameError::Malformed("bytes after the job frame".into()));
    }
    let have = buf.len();
    buf.resize(4 + len, 0);
    stream.read_exact(&mut buf[have..])?;
    Ok((super::frame::decode(&buf[4..])?, fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    #[test]
    fn a_job_and_its_file_cross_a_socket() {
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"Subject: hi\n\nbody\n").unwrap();
        f.rewind().unwrap();
        let job = Job {
            v: VERSION,
            qid: "Q".into(),
            sender: "a@b.test".into(),
            envid: None,
            ret: None,
            smtputf8: false,
            body_8bit: false,
            size: 18,
            fresh: false,
            generation: 0,
            arrived: 1,
            recipients: (0..300)
                .map(|i| JobRecipient {
                    index: i,
                    address: format!("user{i}@example.test"),
                    notify: Notify::default(),
                    orcpt: None,
                    delivery_id: format!("Q.{i}"),
                    folder: None,
                })
                .collect(),
        };
        let sender = std::thread::spawn(move || send(&a, &job, f.as_raw_fd()).map(|_| job));
        let (got, fd) = recv(&mut b).unwrap();
        let job = sender.join().unwrap().unwrap();
        assert_eq!(got, job);
        let mut text = String::new();
        std::fs::File::from(fd.unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "Subject: hi\n\nbody\n");
    }
}
