//! Mailing lists: the list's record, its own state, its addresses, and what
//! happens to a post.
//!
//! A list has two halves, kept apart on purpose:
//!
//! - the **record** ([`List`]: address, owners, moderators, posting policy,
//!   options) lives in the user database's `lists` LMDB database beside users
//!   and aliases (key `domain NUL lower(local)`), so kmp-authd answers for a
//!   list as it does for a user and `kmpctl db dump|load` carry lists;
//! - the **state** (members with their options and bounce counters, held
//!   posts, the archive Maildir, which posts were already distributed) lives
//!   in the list's own directory `paths.mail/DOMAIN/.lists/NAME/`, owned by
//!   `vmail`: kmp-local writes it while it delivers, kmpctl as root (its
//!   files then given to the directory's owner). See [`store`] and [`held`].
//!
//! [`address`] is the one parser of the list's address forms (`list-owner@`,
//! `list-bounce-MEMBER=DOMAIN@`, ...); [`policy`] decides what a post
//! becomes; [`rewrite`] adds the RFC 2369/2919 header fields, the subject
//! prefix and the footer; [`dmarc`] sends a post as from the list when
//! the poster's domain asks for it; [`distribute`] is kmp-local's part.
//!
//! The requests by mail: confirmation cookies in reply addresses
//! ([`cookie`]), member addresses in our own local parts ([`verp`]),
//! subscribe, unsubscribe, help, confirmations and moderation by reply
//! ([`commands`]), bounces and ezmlm-warn's warn-then-remove ([`bounce`]),
//! digests ([`digest`], sent by [`issue`]), and the admin-editable message
//! texts ([`texts`]).

pub mod address;
pub mod distribute;
pub mod held;
pub mod policy;
pub mod rewrite;
pub mod store;

pub mod bounce;
pub mod commands;
pub mod cookie;
pub mod digest;
pub mod dmarc;
pub mod issue;
pub mod texts;
pub mod verp;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use address::Role;

/// Who may post.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Anyone.
    Open,
    /// Members (and owners, moderators, named posters).
    #[default]
    Members,
    /// Every post is held for a moderator.
    Moderated,
    /// Only the named posters (and owners and moderators): a newsletter.
    Announce,
}

impl Policy {
    pub const NAMES: &'static [&'static str] = &["open", "members", "moderated", "announce"];

    pub fn name(self) -> &'static str {
        match self {
            Policy::Open => "open",
            Policy::Members => "members",
            Policy::Moderated => "moderated",
            Policy::Announce => "announce",
        }
    }

    pub fn parse(s: &str) -> Option<Policy> {
        match s.to_ascii_lowercase().as_str() {
            "open" => Some(Policy::Open),
            "members" | "members-only" => Some(Policy::Members),
            "moderated" => Some(Policy::Moderated),
            "announce" | "announce-only" => Some(Policy::Announce),
            _ => None,
        }
    }
}

/// What becomes of a post from someone who may not post.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NonMember {
    /// Held for a moderator.
    #[default]
    Hold,
    /// Refused: kmp-send returns a DSN to the envelope sender.
    Refuse,
}

impl NonMember {
    pub fn name(self) -> &'static str {
        match self {
            NonMember::Hold => "hold",
            NonMember::Refuse => "refuse",
        }
    }

    pub fn parse(s: &str) -> Option<NonMember> {
        match s.to_ascii_lowercase().as_str() {
            "hold" => Some(NonMember::Hold),
            "refuse" | "reject" => Some(NonMember::Refuse),
            _ => None,
        }
    }
}

/// Digest options (the digests themselves are sent by the subscription
/// side); members choose digest or not in their own state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    /// Whether members may ask for digests.
    #[serde(default)]
    pub enabled: bool,
    /// A digest goes out when this many posts are waiting (0: no count limit).
    #[serde(default = "Digest::default_messages")]
    pub max_messages: u32,
    /// ... or when the waiting posts are this large, in bytes (0: no limit).
    #[serde(default)]
    pub max_bytes: u64,
    /// ... or at the latest this long after the first waiting post, seconds.
    #[serde(default = "Digest::default_interval")]
    pub interval: u64,
}

impl Digest {
    fn default_messages() -> u32 {
        30
    }
    fn default_interval() -> u64 {
        86400
    }
}

impl Default for Digest {
    fn default() -> Digest {
        Digest {
            enabled: false,
            max_messages: Digest::default_messages(),
            max_bytes: 0,
            interval: Digest::default_interval(),
        }
    }
}

/// A mailing list's record, as the user database stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct List {
    /// `local@domain`: the local part as given, the domain normalised.
    pub address: String,
    /// A short description: the phrase of `List-Id:`.
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub owners: Vec<String>,
    #[serde(default)]
    pub moderators: Vec<String>,
    #[serde(default)]
    pub policy: Policy,
    /// Who may post to an announce-only list (besides owners and moderators).
    #[serde(default)]
    pub posters: Vec<String>,
    #[serde(default)]
    pub non_member: NonMember,
    /// Put before the subject, e.g. `[news]`; empty: none.
    #[serde(default)]
    pub subject_prefix: String,
    /// Text appended to each post; empty: none.
    #[serde(default)]
    pub footer: String,
    /// The largest post in bytes; 0: no limit beyond the system's.
    #[serde(default)]
    pub max_size: u64,
    /// The most attachments a post may have; None: no limit.
    #[serde(default)]
    pub max_attachments: Option<u32>,
    /// Subscriptions wait for an owner's approval.
    #[serde(default)]
    pub subscribe_approval: bool,
    /// Posts are kept in the list's archive Maildir.
    #[serde(default)]
    pub archive: bool,
    #[serde(default)]
    pub digest: Digest,
    /// Where the poster's From goes when the list sends a post as from
    /// itself for DMARC (`lists.dmarc_rewrite`): Reply-To or Cc.
    #[serde(default, skip_serializing_if = "is_reply_to")]
    pub dmarc_original: dmarc::Original,
    /// Seconds since the epoch.
    #[serde(default)]
    pub created: u64,
}

fn is_reply_to(o: &dmarc::Original) -> bool {
    *o == dmarc::Original::ReplyTo
}

impl List {
    /// A new members-only list with defaults.
    pub fn new(address: &crate::userdb::Address, created: u64) -> List {
        List {
            address: address.to_string(),
            description: String::new(),
            owners: Vec::new(),
            moderators: Vec::new(),
            policy: Policy::default(),
            posters: Vec::new(),
            non_member: NonMember::default(),
            subject_prefix: String::new(),
            footer: String::new(),
            max_size: 0,
            max_attachments: None,
            subscribe_approval: false,
            archive: false,
            digest: Digest::default(),
            dmarc_original: dmarc::Original::default(),
            created,
        }
    }

    /// The local part as given.
    pub fn local(&self) -> &str {
        self.address
            .rsplit_once('@')
            .map(|(l, _)| l)
            .unwrap_or(&self.address)
    }

    /// The domain.
    pub fn domain(&self) -> &str {
        self.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }

    /// The address of one of the list's roles, `local-owner@domain` and so on.
    pub fn role_address(&self, role: &Role) -> String {
        format!(
            "{}@{}",
            address::local_of(self.local(), role),
            self.domain()
        )
    }

    /// The identifier of RFC 2919: `local.domain`, lower-case, with dots
    /// standing for characters a `dot-atom-text` label may not have.
    pub fn list_id(&self) -> String {
        let local: String = self
            .local()
            .to_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) {
                    c
                } else {
                    '.'
                }
            })
            .collect();
        format!("{}.{}", local.trim_matches('.'), self.domain())
    }

    /// Whether `addr` is among `set` (case-insensitive).
    pub fn names(set: &[String], addr: &str) -> bool {
        set.iter().any(|x| x.eq_ignore_ascii_case(addr.trim()))
    }

    /// Whether `addr` may post whatever the policy: an owner, a moderator or
    /// a named poster.
    pub fn privileged(&self, addr: &str) -> bool {
        List::names(&self.owners, addr)
            || List::names(&self.moderators, addr)
            || List::names(&self.posters, addr)
    }

    /// The list's state directory below `mail_root`.
    pub fn state_dir(&self, mail_root: &Path) -> PathBuf {
        state_dir(mail_root, self.domain(), self.local())
    }
}

/// The name of the directory of a domain's lists inside its mail directory.
/// A local part never starts with a dot, so no mailbox can take this name.
pub const LISTS_DIR: &str = ".lists";

/// `mail_root/DOMAIN/.lists/lower(local)`.
pub fn state_dir(mail_root: &Path, domain: &str, local: &str) -> PathBuf {
    mail_root
        .join(domain)
        .join(LISTS_DIR)
        .join(local.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_with_defaults_and_names_its_addresses() {
        let l: List = serde_json::from_str(r#"{"address":"Dev.Team@example.test"}"#).unwrap();
        assert_eq!(l.policy, Policy::Members);
        assert_eq!(l.non_member, NonMember::Hold);
        assert_eq!(l.digest.max_messages, 30);
        assert_eq!(l.list_id(), "dev.team.example.test");
        assert_eq!(l.role_address(&Role::Owner), "Dev.Team-owner@example.test");
        assert_eq!(
            l.state_dir(Path::new("/m")),
            Path::new("/m/example.test/.lists/dev.team")
        );
        let back: List = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
        assert_eq!(back, l);
    }
}
