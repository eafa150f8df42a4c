//! Delivery jobs: kmp-send hands one message and some of its recipients to
//! kmp-local or kmp-remote, and gets one result per recipient back.
//!
//! kmp-send connects to the delivery agent's socket (`RUN/local.sock` or
//! `RUN/remote.sock`) and sends a [`Job`] frame with the message file's open
//! descriptor attached (SCM_RIGHTS, see `sys::fdpass`): the agent never opens
//! the queue. The agent answers with one [`JobReply`] frame. A connection that
//! breaks before the reply leaves every recipient of the job to be retried.

use serde::{Deserialize, Serialize};

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
    /// Unique for this message and recipient across every attempt: a local
    /// delivery records it so that a retry after a crash does not deliver twice.
    pub delivery_id: String,
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
