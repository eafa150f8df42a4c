//! The one-time quota warning: when a delivery takes a mailbox to
//! `local.quota_warning_percent` of its quota (bytes or messages), the user
//! receives one warning mail, written straight into the Maildir. The file
//! [`WARNED_MARKER`] in the Maildir remembers it (created with O_EXCL, so two
//! deliveries racing past the line warn once) and goes when a delivery finds
//! usage below the line again, so a later crossing warns again.

use std::io;
use std::path::Path;

use super::deliver::{fnv64, Settings};
use crate::clock::Clock;
use crate::maildir::quota::Usage;
use crate::maildir::Maildir;

/// The name of the file that records that a quota warning was sent.
pub const WARNED_MARKER: &str = "kmp-quota-warned";

/// A mailbox just delivered to, with its usage after the delivery.
pub struct Mailbox<'a> {
    pub maildir: &'a Path,
    pub address: &'a str,
    pub usage: Usage,
}

/// Sends the warning if `m` is at or past the line and none was sent since
/// it last was below; forgets the warning when it is below.
pub fn warn(settings: &Settings, m: &Mailbox<'_>, clock: &Clock) -> Result<(), String> {
    let pct = settings.quota_warning_percent;
    if pct == 0 {
        return Ok(());
    }
    let marker = m.maildir.join(WARNED_MARKER);
    if u64::from(m.usage.percent()) < pct {
        if marker.exists() {
            std::fs::remove_file(&marker).map_err(|e| e.to_string())?;
        }
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&marker)
    {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e.to_string()),
    }
    let text = warning_mail(&settings.hostname, m, pct, clock.now());
    Maildir::new(m.maildir)
        .inbox()
        .deliver(&mut &text[..], None)
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn warning_mail(host: &str, m: &Mailbox<'_>, pct: u64, now: u64) -> Vec<u8> {
    let u = m.usage;
    let used = u.percent();
    let date = mail_builder::headers::date::Date::new(now as i64).to_rfc822();
    let to = m.address;
    format!(
        "Return-Path: <>\n\
         Delivered-To: {to}\n\
         From: Mail Delivery System <MAILER-DAEMON@{host}>\n\
         To: <{to}>\n\
         Subject: Your mailbox is {used}% full\n\
         Date: {date}\n\
         Message-ID: <{now}.{id:016x}.quota@{host}>\n\
         Auto-Submitted: auto-generated\n\
         MIME-Version: 1.0\n\
         Content-Type: text/plain; charset=us-ascii\n\
         \n\
         Your mailbox {to} has reached {used}% of its quota\n\
         (the warning is sent at {pct}%).\n\
         \n\
         In use: {}.\n\
         \n\
         When it is full, new mail waits on the server and is returned to its\n\
         senders after a few days. Please delete or archive some messages.\n",
        u.describe(),
        id = fnv64(to),
    )
    .into_bytes()
}
