//! The checks at kmp-smtpd's door, as the server performs them (issue 19):
//! the sender checks of lib/mailauth on the held message, and the checks
//! of lib/antispam/scan at RCPT and at the end of DATA. The session asked
//! for a recipient lookup or for `Queue`; these decide whether it gets a
//! refusal instead.
//!
//! A recipient reached through an alias is judged by the users the alias
//! leads to ([`Conn::alias_prefs`]): their thresholds, allow and block
//! lists and DNSBL choice, as if the mail had been sent to them, not the
//! system's defaults.

use std::collections::HashSet;

use super::Conn;
use crate::ipc::authd::{self, ClientError, Entry, Request, SpamPrefs};
use crate::proto::smtp::reply::{self, Reply};
use crate::smtpd::session::{Listener, Session};
use crate::{info, warn};

/// At most this many addresses are looked up to find an alias's users.
const ALIAS_LOOKUPS: usize = 20;
/// Aliases of aliases are followed this deep.
const ALIAS_DEPTH: usize = 4;

impl Conn {
    /// Runs the sender checks (`[auth]`) on a held message: a refusal to
    /// send instead of the 250, or None after the message (with our
    /// Authentication-Results on top, forged ones removed) went to the file.
    pub(super) async fn sender_checks(
        &mut self,
        session: &Session,
        env: &crate::queue::Envelope,
    ) -> Option<Reply> {
        use crate::mailauth::verify::{Client, Outcome};
        let checker = self.policy.auth.clone()?;
        let m = self.message.as_mut()?;
        if !m.auth || m.hold.is_none() || m.error.is_some() {
            return None;
        }
        let trace = m.head;
        let held = std::mem::take(&mut m.pending);
        let (ours, msg) = held.split_at(trace.min(held.len()));
        let client = Client {
            ip: self.ip,
            helo: session.helo().unwrap_or(""),
            mail_from: &env.sender,
        };
        let d = checker.check(&client, msg).await;
        info!(
            "{}: auth: {} {}",
            session.id(),
            d.summary,
            outcome_word(&d.outcome)
        );
        match d.outcome {
            Outcome::Reject(status, text) => return Some(Reply::owned(550, status, text)),
            Outcome::Defer(text) => return Some(Reply::owned(451, "4.7.5", text)),
            Outcome::Deliver | Outcome::Quarantine(_) => {}
        }
        let (msg, _) = crate::mailauth::header::strip_ours(msg, &checker.settings.authserv_id);
        let m = self.message.as_mut()?;
        m.pending.extend_from_slice(ours);
        m.pending.extend_from_slice(d.headers.as_bytes());
        m.pending.extend_from_slice(&msg);
        // Our header fields are ours: the scanners' stripping of forged
        // ones starts after them. The scanners, if on, read it next.
        m.head = m.pending.len() - msg.len();
        None
    }

    /// The checks of lib/antispam/scan at RCPT, for a recipient kmp-authd
    /// found: the user's block list, the connection checks, greylisting.
    /// A refusal and its log detail, or None to go on as the lookup says.
    pub(super) async fn scan_recipient(
        &mut self,
        session: &Session,
        to: &crate::proto::smtp::Mailbox,
        r: &Result<authd::Reply, ClientError>,
    ) -> Option<(Reply, String)> {
        use crate::antispam::scan::Scanner;
        let relay = self.policy.may_relay(self.ip);
        if !Scanner::applies(self.kind == Listener::Mx, session.user().is_some(), relay) {
            return None;
        }
        // Whose settings judge the message for this recipient: the user's,
        // or those of the users an alias leads to.
        let judged: Vec<(String, Option<SpamPrefs>)> = match r {
            Ok(authd::Reply::Found {
                entry: Entry::User { user },
                ..
            }) if user.active => vec![(to.to_string(), Some(user.spam.clone()))],
            Ok(authd::Reply::Found {
                entry: Entry::Alias { targets, .. },
                ..
            }) => self.alias_prefs(targets).await,
            _ => return None,
        };
        let (sender, so_far) = session.transaction()?;
        if so_far == 0 {
            self.gathered = Default::default();
        }
        let scan = self.policy.scan.clone();
        // Refused when every user it reaches blocks the sender (one of
        // several cannot refuse it for the others).
        let blocked = judged.iter().all(|(_, p)| {
            p.as_ref()
                .is_some_and(|p| Scanner::blocked(p, &sender).is_some())
        });
        if blocked {
            if let Some(reply) = judged
                .first()
                .and_then(|(_, p)| p.as_ref())
                .and_then(|p| Scanner::blocked(p, &sender))
            {
                return Some((reply, " reason=blocked-sender".into()));
            }
        }
        // The connection checks, unless every user reached turned them off.
        if judged.is_empty()
            || judged
                .iter()
                .any(|(_, p)| p.as_ref().and_then(|p| p.dnsbl) != Some(false))
        {
            let helo = session.helo_name().unwrap_or_default().to_string();
            // Once per session, again only if the client introduced itself anew.
            if self.conn_checks.as_ref().is_none_or(|(h, _)| *h != helo) {
                let v = scan.connection(self.ip, self.local_ip, &helo).await;
                self.conn_checks = Some((helo, v));
            }
            if let Some((reply, why)) = self.conn_checks.as_ref().and_then(|c| c.1.refuse.clone()) {
                return Some((reply, format!(" reason={why}")));
            }
        }
        if let Some(req) = scan.greylist_request(self.ip, &sender, &to.to_string()) {
            match self.ask(req).await {
                Ok(authd::Reply::Greylist { answer }) if !answer.pass => {
                    let text = format!(
                        "Greylisted: this server accepts mail from new senders after a delay, please try again in {} seconds",
                        answer.wait.max(1)
                    );
                    return Some((
                        Reply::owned(451, "4.7.1", text),
                        " reason=greylisted".into(),
                    ));
                }
                Ok(_) => {}
                // kmp-authd down: greylisting must not stop the mail.
                Err(e) => warn!("{}: greylist: {e}", session.id()),
            }
        }
        if judged.is_empty() {
            scan.gather(&mut self.gathered, &to.to_string(), None, &sender);
        }
        for (address, prefs) in &judged {
            scan.gather(&mut self.gathered, address, prefs.as_ref(), &sender);
        }
        None
    }

    /// The users an alias's `targets` lead to, each with their spam
    /// settings (the user's over the domain's, as kmp-authd merges them);
    /// None for a target that is no active local user (another host, a
    /// list, a look-up that failed): the system's settings judge for it.
    /// Aliases of aliases are followed [`ALIAS_DEPTH`] deep, with at most
    /// [`ALIAS_LOOKUPS`] look-ups; what is left over counts as None.
    async fn alias_prefs(&mut self, targets: &[String]) -> Vec<(String, Option<SpamPrefs>)> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut todo: std::collections::VecDeque<(String, usize)> =
            targets.iter().map(|t| (t.clone(), 1)).collect();
        let mut asked = 0;
        while let Some((t, depth)) = todo.pop_front() {
            if !seen.insert(t.to_ascii_lowercase()) {
                continue;
            }
            if asked >= ALIAS_LOOKUPS {
                out.push((t, None));
                continue;
            }
            asked += 1;
            let r: Result<authd::Reply, ClientError> =
                self.ask(Request::Lookup { address: t.clone() }).await;
            match r {
                Ok(authd::Reply::Found {
                    entry: Entry::User { user },
                    ..
                }) if user.active => out.push((user.address, Some(user.spam))),
                Ok(authd::Reply::Found {
                    entry: Entry::Alias { targets, .. },
                    ..
                }) if depth < ALIAS_DEPTH => {
                    todo.extend(targets.into_iter().map(|x| (x, depth + 1)));
                }
                _ => out.push((t, None)),
            }
        }
        out
    }

    /// The content scanners on the held message (lib/antispam/scan): a
    /// refusal, or None with the X-Spam headers put after our Received.
    pub(super) async fn scan_message(&mut self, session: &Session) -> Option<(Reply, String)> {
        let scan = self.policy.scan.clone();
        let m = self.message.as_mut()?;
        if !m.scan {
            return None;
        }
        if m.oversize || (m.pending.len().saturating_sub(m.head) as u64) > scan.settings.max_size {
            info!(
                "{}: scan: not scanned: larger than scan.max_size ({})",
                session.id(),
                scan.settings.max_size
            );
            return None;
        }
        m.hold?;
        if m.error.is_some() || m.file.is_none() {
            return None;
        }
        crate::antispam::scan::verdict::strip_ours(&mut m.pending, m.head);
        m.stripped = true;
        let msg = std::mem::take(&mut m.pending);
        let gathered = self.gathered.clone();
        let conn = self.conn_checks.clone().map(|(_, v)| v);
        let env = crate::antispam::scan::rspamd::Envelope {
            ip: Some(self.ip),
            helo: session.helo_name().unwrap_or_default().to_string(),
            sender: session.transaction().map(|t| t.0).unwrap_or_default(),
            deliver_to: None,
        };
        let scanner = scan.clone();
        let r = tokio::task::spawn_blocking(move || {
            let o = scanner.message(&msg, &gathered, conn.as_ref(), &env);
            (msg, o)
        })
        .await;
        let (msg, outcome) = match r {
            Ok(x) => x,
            Err(e) => {
                warn!("{}: scan: {e}", session.id());
                return Some((reply::LOCAL_ERROR, "scanner thread failed".into()));
            }
        };
        let m = self.message.as_mut()?;
        m.pending = msg;
        m.hold = None;
        match outcome {
            crate::antispam::scan::Outcome::Refuse(r, log) => Some((r, log)),
            crate::antispam::scan::Outcome::Accept { headers, log } => {
                info!("{}: scan: {log}", session.id());
                let at = m.head.min(m.pending.len());
                m.pending.splice(at..at, headers.into_bytes());
                None
            }
        }
    }
}

/// The checks' outcome as the log line ends it.
fn outcome_word(o: &crate::mailauth::verify::Outcome) -> String {
    use crate::mailauth::verify::Outcome;
    match o {
        Outcome::Deliver => "deliver".into(),
        Outcome::Quarantine(why) => format!("quarantine ({why})"),
        Outcome::Reject(_, why) => format!("reject ({why})"),
        Outcome::Defer(why) => format!("defer ({why})"),
    }
}
