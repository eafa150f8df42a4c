//! Vacation (RFC 5230, RFC 6131): whether a reply is due, decided here
//! by RFC 3834's rules, and the reply kmp-local will send.

use super::super::compile::{bare_address, Vacation};
use super::{same_address, Run, Scope};
use crate::sieve::{Action, RunError, VacationReply};

/// Senders vacation never answers (RFC 3834 2, RFC 5230 4.6): list and
/// system addresses.
fn system_sender(addr: &str) -> bool {
    let local = addr
        .rsplit_once('@')
        .map(|(l, _)| l)
        .unwrap_or(addr)
        .to_ascii_lowercase();
    local == "mailer-daemon"
        || local == "listserv"
        || local == "majordomo"
        || local == "postmaster"
        || local.starts_with("owner-")
        || local.ends_with("-request")
        || local.starts_with("bounce")
        || local.ends_with("-bounces")
}

impl Run<'_, '_> {
    pub(super) fn vacation(&mut self, v: &Vacation, scope: &Scope) -> Result<(), RunError> {
        if let Some(l) = self.vacation_line {
            return Err(self.error(format!(
                "duplicate vacation action not allowed (the first one is on line {l})"
            )));
        }
        self.vacation_line = Some(self.line);
        let reason = self.expand(&v.reason, scope);
        let subject = v.subject.as_ref().map(|s| self.expand(s, scope));
        let from = v.from.as_ref().map(|s| self.expand(s, scope));
        let handle = match &v.handle {
            Some(h) => self.expand(h, scope),
            None => format!(
                "{reason}{}{}{}",
                subject.as_deref().unwrap_or("<default-subject>"),
                from.as_deref().unwrap_or("<default-from>"),
                if v.mime { "<MIME>" } else { "<NO-MIME>" }
            ),
        };
        let unit = if v.seconds { 1 } else { 86400 };
        let asked = v
            .period
            .map(|p| p.saturating_mul(unit))
            .unwrap_or(self.limits.vacation_default_period);
        let period = if asked == 0 && v.seconds {
            0
        } else {
            asked.clamp(
                self.limits.vacation_min_period,
                self.limits.vacation_max_period,
            )
        };
        let sender = self.env_in.from.clone();
        // RFC 5230 4.5 and RFC 3834 2: the cases where no reply is sent.
        let mut own: Vec<String> = self.env.own_addresses();
        own.push(self.env_in.to.clone());
        own.extend(v.addresses.iter().map(|a| self.expand(a, scope)));
        let own: Vec<String> = own
            .iter()
            .map(|a| bare_address(a))
            .filter(|a| !a.is_empty())
            .collect();
        if sender.is_empty()
            || system_sender(&sender)
            || own.iter().any(|o| same_address(o, &sender))
        {
            return Ok(());
        }
        let msg = self.msg;
        let auto = msg.values("auto-submitted");
        if auto.iter().any(|a| !a.trim().eq_ignore_ascii_case("no")) {
            return Ok(());
        }
        if msg.values("precedence").iter().any(|p| {
            matches!(
                p.trim().to_ascii_lowercase().as_str(),
                "bulk" | "list" | "junk"
            )
        }) {
            return Ok(());
        }
        const LIST: [&str; 8] = [
            "list-id",
            "list-help",
            "list-subscribe",
            "list-unsubscribe",
            "list-post",
            "list-owner",
            "list-archive",
            "x-list-id",
        ];
        if LIST.iter().any(|h| msg.has(h)) {
            return Ok(());
        }
        if msg.values("x-auto-response-suppress").iter().any(|v| {
            v.split(',')
                .any(|w| matches!(w.trim().to_ascii_lowercase().as_str(), "all" | "oof"))
        }) {
            return Ok(());
        }
        const TO: [&str; 6] = ["to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc"];
        let addressed = TO
            .iter()
            .flat_map(|h| msg.addresses(h).into_iter().flatten())
            .any(|a| own.iter().any(|o| same_address(o, &a)));
        if !addressed {
            return Ok(());
        }
        if self.env.vacation_sent(&sender, &handle) {
            return Ok(());
        }
        let subject = match subject {
            Some(s) => s,
            None => {
                let orig = msg.values("subject").into_iter().next().unwrap_or_default();
                format!("Auto: {orig}")
            }
        };
        self.push(Action::Vacation(VacationReply {
            to: sender,
            from,
            subject,
            body: reason,
            period_seconds: period,
            handle,
            mime: v.mime,
        }))
    }
}
