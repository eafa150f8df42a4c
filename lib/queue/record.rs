//! The queue index record of one message: its envelope, each recipient's
//! state, and when to try next. Stored as JSON under the queue id.

use serde::{Deserialize, Serialize};

use super::{Envelope, Notify, Ret};

/// The version of [`Record`] written now.
pub const RECORD_VERSION: u32 = 1;

/// Where a recipient's mail goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    Local,
    Remote,
}

/// Where a recipient stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RcptStatus {
    /// Not yet delivered: tried never or with temporary failures.
    Pending,
    /// Delivered.
    Sent,
    /// Relayed to a next hop that does not speak DSN.
    Relayed,
    /// Failed for good.
    Bounced,
    /// Removed by the administrator (`kmpctl queue delete`).
    Deleted,
}

impl RcptStatus {
    /// Whether nothing more will be tried for the recipient.
    pub fn is_final(self) -> bool {
        !matches!(self, RcptStatus::Pending)
    }
}

/// One recipient and its delivery state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rcpt {
    pub address: String,
    #[serde(default)]
    pub notify: Notify,
    #[serde(default)]
    pub orcpt: Option<String>,
    #[serde(default)]
    pub notify_given: bool,
    /// Decided on the first attempt (kmp-authd says whether the domain is ours).
    #[serde(default)]
    pub route: Option<Route>,
    /// The folder hint of the envelope (see `queue::Recipient::folder`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
    pub status: RcptStatus,
    /// The last result: RFC 3463 code, text, relay, Remote-MTA, Diagnostic-Code.
    #[serde(default)]
    pub dsn: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub relay: String,
    #[serde(default)]
    pub remote_mta: Option<String>,
    #[serde(default)]
    pub diagnostic: Option<String>,
    /// Seconds since the epoch of the last attempt, 0 for none.
    #[serde(default)]
    pub last_attempt: u64,
    /// The recipient this one was expanded from (an alias or forward), by index.
    #[serde(default)]
    pub parent: Option<u32>,
    /// A DSN owed for this recipient's final status has been queued.
    #[serde(default)]
    pub notified: bool,
}

impl Rcpt {
    /// A pending recipient.
    pub fn new(address: String, notify: Notify, orcpt: Option<String>, given: bool) -> Rcpt {
        Rcpt {
            address,
            notify,
            orcpt,
            notify_given: given,
            folder: None,
            route: None,
            status: RcptStatus::Pending,
            dsn: String::new(),
            text: String::new(),
            relay: String::new(),
            remote_mta: None,
            diagnostic: None,
            last_attempt: 0,
            parent: None,
            notified: false,
        }
    }
}

/// Everything the queue knows about one message but its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub v: u32,
    /// Milliseconds since the epoch when the message was accepted.
    pub arrived_ms: u64,
    /// Milliseconds since the epoch when kmp-send took it in from `incoming/`.
    #[serde(default)]
    pub queued_ms: u64,
    /// The message file's size in bytes.
    pub size: u64,
    pub sender: String,
    #[serde(default)]
    pub ret: Option<Ret>,
    #[serde(default)]
    pub envid: Option<String>,
    #[serde(default)]
    pub smtputf8: bool,
    #[serde(default)]
    pub body_8bit: bool,
    #[serde(default)]
    pub origin: String,
    #[serde(default)]
    pub auth_user: Option<String>,
    pub rcpts: Vec<Rcpt>,
    /// Seconds since the epoch of the next attempt.
    pub next_attempt: u64,
    /// Attempts made so far.
    #[serde(default)]
    pub attempts: u32,
    /// On hold: not tried until released.
    #[serde(default)]
    pub held: bool,
    /// A delay warning has been sent.
    #[serde(default)]
    pub warned: bool,
    /// Why the last attempt did not finish the message, for `mailq`.
    #[serde(default)]
    pub reason: String,
}

impl Record {
    /// A fresh record for a message accepted with `env`.
    pub fn new(env: &Envelope, arrived_ms: u64, size: u64) -> Record {
        Record {
            v: RECORD_VERSION,
            arrived_ms,
            queued_ms: arrived_ms,
            size,
            sender: env.sender.clone(),
            ret: env.ret,
            envid: env.envid.clone(),
            smtputf8: env.smtputf8,
            body_8bit: env.body_8bit,
            origin: env.origin.clone(),
            auth_user: env.auth_user.clone(),
            rcpts: env
                .recipients
                .iter()
                .map(|r| {
                    let mut rc =
                        Rcpt::new(r.address.clone(), r.notify, r.orcpt.clone(), r.notify_given);
                    rc.folder = r.folder.clone();
                    rc
                })
                .collect(),
            next_attempt: 0,
            attempts: 0,
            held: false,
            warned: false,
            reason: String::new(),
        }
    }

    /// Whether every recipient is final.
    pub fn is_done(&self) -> bool {
        self.rcpts.iter().all(|r| r.status.is_final())
    }

    /// The recipients still to be tried.
    pub fn pending(&self) -> impl Iterator<Item = (usize, &Rcpt)> {
        self.rcpts
            .iter()
            .enumerate()
            .filter(|(_, r)| r.status == RcptStatus::Pending)
    }

    /// Seconds since the epoch the message arrived.
    pub fn arrived(&self) -> u64 {
        self.arrived_ms / 1000
    }
}
