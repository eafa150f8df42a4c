//! The envelope of a queued message: who sent it, to whom, and the DSN
//! parameters (RFC 3461) that decide what bounces say and when they are sent.

use serde::{Deserialize, Serialize};

/// RFC 3461 RET: how much of the message a DSN carries back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ret {
    Full,
    Hdrs,
}

/// RFC 3461 NOTIFY for one recipient. `never` excludes the other three;
/// the default (no NOTIFY given) is failure and delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notify {
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

impl Default for Notify {
    fn default() -> Notify {
        Notify {
            success: false,
            failure: true,
            delay: true,
        }
    }
}

impl Notify {
    /// NOTIFY=NEVER.
    pub const NEVER: Notify = Notify {
        success: false,
        failure: false,
        delay: false,
    };
}

/// One recipient as the client gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// The address, `local@domain` (no angle brackets).
    pub address: String,
    #[serde(default)]
    pub notify: Notify,
    /// RFC 3461 ORCPT, as given: `rfc822;user@example.com`.
    #[serde(default)]
    pub orcpt: Option<String>,
    /// Whether NOTIFY was given explicitly (a relaying peer must pass it on).
    #[serde(default)]
    pub notify_given: bool,
    /// The local folder to file the message into instead of INBOX (kmp-fetch
    /// sets it for a remote account's mail; nothing from SMTP can).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
}

impl Recipient {
    /// A recipient with default DSN settings.
    pub fn new(address: impl Into<String>) -> Recipient {
        Recipient {
            address: address.into(),
            notify: Notify::default(),
            orcpt: None,
            notify_given: false,
            folder: None,
        }
    }
}

/// Everything about a message but its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The reverse path, `local@domain`, or empty for the null sender (bounces).
    pub sender: String,
    pub recipients: Vec<Recipient>,
    /// RFC 3461 RET.
    #[serde(default)]
    pub ret: Option<Ret>,
    /// RFC 3461 ENVID, as given (xtext-decoded).
    #[serde(default)]
    pub envid: Option<String>,
    /// RFC 6531: the message needs SMTPUTF8 to be relayed.
    #[serde(default)]
    pub smtputf8: bool,
    /// RFC 6152 BODY=8BITMIME (or BINARYMIME) was declared.
    #[serde(default)]
    pub body_8bit: bool,
    /// Who handed the message in, for logs: `smtp 192.0.2.1 (helo)`, `inject uid 1000`.
    #[serde(default)]
    pub origin: String,
    /// The authenticated user that submitted it, if any.
    #[serde(default)]
    pub auth_user: Option<String>,
}

impl Envelope {
    /// An envelope with default DSN settings.
    pub fn new(sender: impl Into<String>, recipients: Vec<Recipient>) -> Envelope {
        Envelope {
            sender: sender.into(),
            recipients,
            ret: None,
            envid: None,
            smtputf8: false,
            body_8bit: false,
            origin: String::new(),
            auth_user: None,
        }
    }
}
