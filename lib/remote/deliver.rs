//! One delivery attempt of one job: recipients grouped by destination, each
//! group sent over one connection (the next MX host tried when a host fails
//! as a whole), one result per recipient.
//!
//! Outcomes (RFC 5321 4.2.1, 4.5.4.1): a 2yz after the final dot is `Sent`
//! (`Relayed` when NOTIFY=SUCCESS was asked and the server has no DSN); a 4yz,
//! a timeout, a lost or refused connection, a failed TLS handshake are
//! `Deferred`; a 5yz is `Bounced` with the server's text. A host that fails
//! before the transaction is done (connect, greeting, EHLO, TLS, lost
//! connection, 421) makes us try the next address for the recipients left.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ipc::job::{Job, JobRecipient, Outcome, RecipientResult};
use crate::queue::Ret;

use super::client::{relay_text, Conn, ConnError};
use super::message::{Form, Message};
use super::pool::{Pool, PoolKey};
use super::reply::Reply;
use super::route::{self, Candidate, Route};
use super::settings::{Settings, TlsLevel};
use super::tls::{self, TlsClients};

/// What every delivery shares.
pub struct Shared {
    pub settings: Settings,
    pub pool: Pool,
    pub tls: TlsClients,
    pub resolver: Option<hickory_resolver::TokioResolver>,
    /// DKIM signing (`auth.dkim_keys`), when a key directory is set.
    pub signer: Option<Arc<crate::mailauth::sign::Signer>>,
}

/// Time stamps for `delays=a/b/c/d`.
#[derive(Clone, Copy)]
struct Clock {
    /// Seconds the message waited in the queue before this job.
    queued: f64,
    received: Instant,
    slots: Instant,
    connected: Instant,
}

/// A result before it becomes a RecipientResult: everything but the index.
/// `remote_mta` is the server's host name (the DSN writer adds `dns; `);
/// `diagnostic` is typed (`smtp; 550 5.1.1 ...`).
#[derive(Debug, Clone)]
struct Verdict {
    outcome: Outcome,
    dsn: String,
    text: String,
    relay: String,
    remote_mta: Option<String>,
    diagnostic: Option<String>,
}

impl Verdict {
    /// A verdict without any server involved (routing, local checks).
    fn local(outcome: Outcome, dsn: &str, text: String, relay: &str) -> Verdict {
        Verdict {
            outcome,
            dsn: dsn.to_string(),
            text,
            relay: relay.to_string(),
            remote_mta: None,
            diagnostic: None,
        }
    }

    /// The verdict for a server's reply to `stage`.
    fn reply(conn: &Conn, r: &Reply, stage: &str) -> Verdict {
        let outcome = if r.is_positive() {
            Outcome::Sent
        } else if r.is_permanent() {
            Outcome::Bounced
        } else {
            Outcome::Deferred
        };
        let text = if r.is_positive() {
            r.one_line()
        } else {
            format!(
                "host {} said: {} (in reply to {stage})",
                conn.relay_name(),
                r.one_line()
            )
        };
        Verdict {
            outcome,
            dsn: r.dsn().to_string(),
            text,
            relay: conn.relay(),
            remote_mta: Some(conn.name.clone()),
            diagnostic: Some(format!("smtp; {}", r.one_line())),
        }
    }

    /// A broken conversation: deferred.
    fn broken(conn: &Conn, e: &ConnError, stage: &str) -> Verdict {
        let (dsn, text) = match e {
            ConnError::Timeout => (
                "4.4.2",
                format!(
                    "conversation with {} timed out while {stage}",
                    conn.relay_name()
                ),
            ),
            ConnError::Lost(_) => (
                "4.4.2",
                format!("lost connection with {} while {stage}", conn.relay_name()),
            ),
            ConnError::Protocol(p) => {
                ("4.5.0", format!("{} while {stage}: {p}", conn.relay_name()))
            }
            ConnError::Tls(t) => (
                "4.7.5",
                format!(
                    "TLS is required, but the handshake with {} failed: {t}",
                    conn.relay_name()
                ),
            ),
        };
        Verdict {
            outcome: Outcome::Deferred,
            dsn: dsn.to_string(),
            text,
            relay: conn.relay(),
            remote_mta: Some(conn.name.clone()),
            diagnostic: None,
        }
    }
}

impl Conn {
    /// `name[ip]` for texts.
    fn relay_name(&self) -> String {
        format!("{}[{}]", self.name, self.addr.ip())
    }
}

/// Delivers `job` (its message in `msg`): one result per recipient, in the
/// job's order, each logged.
pub async fn deliver_job(
    shared: Arc<Shared>,
    job: Arc<Job>,
    msg: Arc<Message>,
) -> Vec<RecipientResult> {
    let received = Instant::now();
    let queued = (unix_now() - job.arrived as f64).max(0.0);
    // Group recipients by route, keeping the first appearance order.
    let mut groups: Vec<(Route, Vec<usize>)> = Vec::new();
    for (i, r) in job.recipients.iter().enumerate() {
        let route = route::route_for(&shared.settings, &route::domain_of(&r.address));
        match groups.iter_mut().find(|(g, _)| *g == route) {
            Some((_, v)) => v.push(i),
            None => groups.push((route, vec![i])),
        }
    }
    let mut set = tokio::task::JoinSet::new();
    for (route, idx) in groups {
        let (shared, job, msg) = (shared.clone(), job.clone(), msg.clone());
        set.spawn(async move {
            let clock = Clock {
                queued,
                received,
                slots: received,
                connected: received,
            };
            let v = deliver_group(&shared, &job, &msg, &route, &idx, clock).await;
            idx.into_iter().zip(v).collect::<Vec<_>>()
        });
    }
    let mut verdicts: Vec<Option<(Verdict, Clock)>> = vec![None; job.recipients.len()];
    while let Some(done) = set.join_next().await {
        match done {
            Ok(list) => {
                for (i, v) in list {
                    verdicts[i] = Some(v);
                }
            }
            Err(e) => crate::error!("{}: delivery task failed: {e}", job.qid),
        }
    }
    let mut out = Vec::with_capacity(job.recipients.len());
    for (r, v) in job.recipients.iter().zip(verdicts) {
        let (v, clock) = v.unwrap_or_else(|| {
            (
                Verdict::local(
                    Outcome::Deferred,
                    "4.3.0",
                    "internal error in delivery".into(),
                    "none",
                ),
                Clock {
                    queued,
                    received,
                    slots: received,
                    connected: received,
                },
            )
        });
        log_line(&job.qid, r, &v, &clock);
        out.push(RecipientResult {
            index: r.index,
            outcome: v.outcome,
            dsn: v.dsn,
            text: v.text,
            relay: v.relay,
            remote_mta: v.remote_mta,
            diagnostic: v.diagnostic,
            expanded: Vec::new(),
        });
    }
    out
}

/// One destination's recipients (`idx` into the job): their verdicts in order.
async fn deliver_group(
    shared: &Shared,
    job: &Job,
    msg: &Arc<Message>,
    route: &Route,
    idx: &[usize],
    mut clock: Clock,
) -> Vec<(Verdict, Clock)> {
    let settings = &shared.settings;
    let mut verdicts: Vec<Option<Verdict>> = vec![None; idx.len()];
    let all = |v: Verdict, clock: Clock| idx.iter().map(|_| (v.clone(), clock)).collect::<Vec<_>>();

    // RFC 6531 3.4: UTF-8 addresses need a server that offers SMTPUTF8; we
    // check once we know the server. Here: the null MX and DNS.
    if route.hosts == route::Hosts::Mx(String::new()) {
        let v = Verdict::local(
            Outcome::Bounced,
            "5.1.3",
            "bad address syntax: no domain".into(),
            "none",
        );
        return all(v, clock);
    }
    let _slots = shared.pool.slots(&route.dest).await;
    clock.slots = Instant::now();
    clock.connected = clock.slots;
    let candidates = match route::resolve(
        shared.resolver.as_ref(),
        route,
        settings.smtp_port,
        settings.family,
    )
    .await
    {
        Ok(c) => c,
        Err(e) => {
            let outcome = if e.is_temporary() {
                Outcome::Deferred
            } else {
                Outcome::Bounced
            };
            return all(
                Verdict::local(outcome, e.dsn(), e.to_string(), "none"),
                clock,
            );
        }
    };
    let level = settings.tls_for(&route.dest);
    let mut last: Option<Verdict> = None;
    for cand in &candidates {
        let pending: Vec<usize> = (0..idx.len()).filter(|&k| verdicts[k].is_none()).collect();
        if pending.is_empty() {
            break;
        }
        let key = PoolKey {
            dest: route.dest.clone(),
            addr: cand.addr,
            level,
        };
        // A cached connection first; if it turns out dead before any reply,
        // open a fresh one to the same address at no cost.
        let mut reused = shared.pool.take(&key);
        loop {
            let fresh = reused.is_none();
            let mut conn = match reused.take() {
                Some(c) => c,
                None => match open(shared, route, cand, level).await {
                    Ok(c) => c,
                    Err(v) => {
                        last = Some(v);
                        break;
                    }
                },
            };
            clock.connected = Instant::now();
            match session(shared, job, msg, &mut conn, idx, &pending, &mut verdicts).await {
                SessionEnd::Reusable => {
                    shared.pool.put(key.clone(), conn);
                    break;
                }
                SessionEnd::Closed => {
                    tokio::spawn(conn.quit());
                    break;
                }
                SessionEnd::DeadCached if !fresh => continue,
                SessionEnd::DeadCached => {
                    last = Some(Verdict::broken(
                        &conn,
                        &ConnError::Lost(String::new()),
                        "sending MAIL FROM",
                    ));
                    break;
                }
                SessionEnd::HostFailed(v) => {
                    last = Some(v);
                    break;
                }
            }
        }
    }
    let fallback = last.unwrap_or_else(|| {
        Verdict::local(
            Outcome::Deferred,
            "4.4.1",
            "no mail host could be reached".into(),
            "none",
        )
    });
    verdicts
        .into_iter()
        .map(|v| (v.unwrap_or_else(|| fallback.clone()), clock))
        .collect()
}

/// How a session on one connection ended.
enum SessionEnd {
    /// All done; the connection can carry another message.
    Reusable,
    /// All done or not; the connection is finished.
    Closed,
    /// A cached connection failed before the server answered anything.
    DeadCached,
    /// The host failed: recipients without a verdict go to the next host.
    HostFailed(Verdict),
}

/// Connects, reads the greeting, says EHLO, STARTTLS and AUTH as the policy
/// says. A failure is the verdict for the recipients if no host does better.
async fn open(
    shared: &Shared,
    route: &Route,
    cand: &Candidate,
    level: TlsLevel,
) -> Result<Conn, Verdict> {
    let s = &shared.settings;
    let t = s.timeouts;
    let relay_none = |text: String, dsn: &str| {
        let mut v = Verdict::local(Outcome::Deferred, dsn, text, "none");
        v.remote_mta = Some(cand.name.clone());
        v
    };
    let mut conn = Conn::connect(&cand.name, cand.addr, t.connect)
        .await
        .map_err(|e| {
            relay_none(
                format!("connect to {}: {e}", relay_text(&cand.name, cand.addr)),
                "4.4.1",
            )
        })?;
    let greeting = conn
        .read_reply(t.greeting)
        .await
        .map_err(|e| Verdict::broken(&conn, &e, "receiving the initial server greeting"))?;
    if greeting.code != 220 {
        // RFC 5321 3.1: a 554 greeting means this server takes no mail; as
        // Postfix's smtp_skip_5xx_greeting, skip it and defer if none does.
        let mut v = Verdict::reply(&conn, &greeting, "initial greeting");
        v.text = format!(
            "host {} refused to talk to me: {}",
            conn.relay_name(),
            greeting.one_line()
        );
        v.outcome = Outcome::Deferred;
        v.dsn = greeting.dsn().with_class(4).to_string();
        tokio::spawn(conn.quit());
        return Err(v);
    }
    let r = conn
        .hello(&s.helo_name, t.command)
        .await
        .map_err(|e| Verdict::broken(&conn, &e, "performing the EHLO handshake"))?;
    if !r.is_positive() {
        let mut v = Verdict::reply(&conn, &r, "HELO command");
        v.outcome = Outcome::Deferred;
        v.dsn = r.dsn().with_class(4).to_string();
        tokio::spawn(conn.quit());
        return Err(v);
    }
    let mut verified = false;
    let want_tls = match level {
        TlsLevel::None => false,
        TlsLevel::May => conn.ext.starttls,
        TlsLevel::Encrypt | TlsLevel::Verify => true,
    };
    if want_tls {
        if !conn.ext.starttls {
            let mut v = Verdict::local(
                Outcome::Deferred,
                "4.7.4",
                format!(
                    "TLS is required, but was not offered by host {}",
                    conn.relay_name()
                ),
                &conn.relay(),
            );
            v.remote_mta = Some(conn.name.clone());
            tokio::spawn(conn.quit());
            return Err(v);
        }
        let config = match level {
            TlsLevel::Verify => shared.tls.verified.clone().map_err(|e| {
                Verdict::local(
                    Outcome::Deferred,
                    "4.7.5",
                    format!("cannot check certificates: {e}"),
                    "none",
                )
            })?,
            _ => shared.tls.unchecked.clone(),
        };
        let name = tls::server_name(&cand.name).ok_or_else(|| {
            Verdict::local(
                Outcome::Deferred,
                "4.7.5",
                format!("{} is not a name TLS can check", cand.name),
                "none",
            )
        })?;
        match conn.starttls(config, name, t.command).await {
            Ok(Ok(())) => {}
            Ok(Err(r)) if level == TlsLevel::May => {
                // Offered, then refused: carry on in plain text, as allowed.
                crate::info!("{}: STARTTLS refused: {}", conn.relay(), r.one_line());
            }
            Ok(Err(r)) => {
                let mut v = Verdict::reply(&conn, &r, "STARTTLS command");
                v.outcome = Outcome::Deferred;
                v.dsn = "4.7.5".into();
                tokio::spawn(conn.quit());
                return Err(v);
            }
            Err(e) => {
                let mut v = Verdict::broken(&conn, &e, "performing the TLS handshake");
                v.dsn = "4.7.5".into();
                if let ConnError::Tls(t) = &e {
                    v.text = format!("TLS handshake with {} failed: {t}", conn.relay_name());
                }
                return Err(v);
            }
        }
        // Only the verify level checks the chain and the name.
        verified = conn.tls && level == TlsLevel::Verify;
        if conn.tls {
            let r = conn.hello(&s.helo_name, t.command).await.map_err(|e| {
                Verdict::broken(&conn, &e, "performing the EHLO handshake after STARTTLS")
            })?;
            if !r.is_positive() {
                let mut v = Verdict::reply(&conn, &r, "EHLO command");
                v.outcome = Outcome::Deferred;
                v.dsn = r.dsn().with_class(4).to_string();
                return Err(v);
            }
        }
    }
    if let Some((user, pass)) = s.auth.get(&route.dest) {
        if !conn.ext.auth.iter().any(|m| m == "PLAIN" || m == "LOGIN") {
            crate::warn!(
                "{}: no AUTH PLAIN or LOGIN offered; sending without authentication",
                conn.relay()
            );
        } else if let Some(why) = auth_refusal(&conn, route, level, verified, s) {
            // Deferred, not sent unauthenticated: the relay would refuse
            // the mail or, worse, take it as from anyone.
            crate::warn!("{}: {why}", conn.relay());
            let v = Verdict::local(Outcome::Deferred, "4.7.0", why, &conn.relay());
            tokio::spawn(conn.quit());
            return Err(v);
        } else {
            let r = conn
                .auth(user, pass, t.command)
                .await
                .map_err(|e| Verdict::broken(&conn, &e, "authenticating"))?;
            if r.code != 235 {
                let mut v = Verdict::reply(&conn, &r, "AUTH command");
                v.text = format!(
                    "SASL authentication failed; server {} said: {}",
                    conn.relay_name(),
                    r.one_line()
                );
                v.outcome = Outcome::Deferred;
                v.dsn = "4.7.0".into();
                tokio::spawn(conn.quit());
                return Err(v);
            }
        }
    }
    Ok(conn)
}

/// Why the credentials for `route` must not be sent on `conn`, if so. They
/// go only to a server whose certificate was verified (level verify), unless
/// the destination is in remote.auth_unverified: then over any TLS, or
/// without TLS to a loopback address.
fn auth_refusal(
    conn: &Conn,
    route: &Route,
    level: TlsLevel,
    verified: bool,
    s: &Settings,
) -> Option<String> {
    if verified {
        return None;
    }
    let allowed = s.auth_unverified.contains(&route.dest);
    if allowed && (conn.tls || conn.addr.ip().is_loopback()) {
        return None;
    }
    let dest = &route.dest;
    let hint = if allowed {
        String::new()
    } else {
        format!(
            "; set remote.tls_policy \"{dest}\" = [\"verify\"], or list \"{dest}\" in remote.auth_unverified"
        )
    };
    Some(if conn.tls {
        format!(
            "not sending credentials to {}: its certificate was not verified (TLS level {}){hint}",
            conn.relay_name(),
            level.name()
        )
    } else {
        format!(
            "not sending credentials to {} without TLS (TLS level {}){hint}",
            conn.relay_name(),
            level.name()
        )
    })
}

/// Sends the message to the recipients `pending` (indexes into `idx`) over
/// `conn`, in transactions of at most remote.max_recipients.
async fn session(
    shared: &Shared,
    job: &Job,
    msg: &Arc<Message>,
    conn: &mut Conn,
    idx: &[usize],
    pending: &[usize],
    verdicts: &mut [Option<Verdict>],
) -> SessionEnd {
    let s = &shared.settings;
    let reused = conn.transactions > 0;
    // Checks that depend on what this server offers: these end the attempt
    // for every pending recipient, as no other host would be different in kind.
    // RFC 6531 3.2, SMTPUTF8_README of Postfix: UTF-8 addresses, or UTF-8
    // headers in a message submitted with SMTPUTF8, need a server offering it.
    let utf8_address = !job.sender.is_ascii()
        || pending
            .iter()
            .any(|&k| !job.recipients[idx[k]].address.is_ascii());
    let utf8_headers = job.smtputf8 && msg.header_8bit;
    let needs_utf8 = utf8_address || utf8_headers;
    let decide = |v: Verdict, verdicts: &mut [Option<Verdict>]| {
        for &k in pending {
            verdicts[k] = Some(v.clone());
        }
    };
    if needs_utf8 && !conn.ext.smtputf8 {
        // RFC 6531 3.7.5: X.6.7 for addresses, X.6.9 for headers.
        let dsn = if utf8_address { "5.6.7" } else { "5.6.9" };
        let mut v = Verdict::local(
            Outcome::Bounced,
            dsn,
            format!(
                "SMTPUTF8 is required, but was not offered by host {}",
                conn.relay_name()
            ),
            &conn.relay(),
        );
        v.remote_mta = Some(conn.name.clone());
        decide(v, verdicts);
        return SessionEnd::Reusable;
    }
    let chunking = conn.ext.chunking;
    let (form, size, body_param) = if msg.eight_bit && !conn.ext.eight_bit_mime {
        match msg.seven_bit().await {
            Ok((plan, size)) => {
                let plan = Some(plan.clone());
                (Form { chunking, plan }, *size, None)
            }
            Err(e) => {
                let mut v = Verdict::local(
                    Outcome::Bounced,
                    "5.6.3",
                    format!("host {} does not offer 8BITMIME and the message cannot be converted to 7 bits: {e}", conn.relay_name()),
                    &conn.relay(),
                );
                v.remote_mta = Some(conn.name.clone());
                decide(v, verdicts);
                return SessionEnd::Reusable;
            }
        }
    } else {
        let param = ((msg.eight_bit || job.body_8bit) && conn.ext.eight_bit_mime)
            .then_some("BODY=8BITMIME");
        let form = Form {
            chunking,
            plan: None,
        };
        (form, msg.size, param)
    };
    if let Some(max) = conn.ext.size.filter(|&m| m > 0) {
        if size > max {
            let mut v = Verdict::local(
                Outcome::Bounced,
                "5.3.4",
                format!(
                    "message size {size} exceeds size limit {max} of server {}",
                    conn.relay_name()
                ),
                &conn.relay(),
            );
            v.remote_mta = Some(conn.name.clone());
            decide(v, verdicts);
            return SessionEnd::Reusable;
        }
    }
    let mut mail = format!("MAIL FROM:<{}>", job.sender);
    if conn.ext.size.is_some() {
        mail.push_str(&format!(" SIZE={size}"));
    }
    if let Some(b) = body_param {
        mail.push(' ');
        mail.push_str(b);
    }
    if conn.ext.smtputf8 && (needs_utf8 || job.smtputf8) {
        mail.push_str(" SMTPUTF8");
    }
    if conn.ext.dsn {
        match job.ret {
            Some(Ret::Full) => mail.push_str(" RET=FULL"),
            Some(Ret::Hdrs) => mail.push_str(" RET=HDRS"),
            None => {}
        }
        if let Some(envid) = &job.envid {
            mail.push_str(&format!(" ENVID={}", xtext(envid)));
        }
    }
    let mut first = true;
    for chunk in pending.chunks(s.max_recipients) {
        let rcpts: Vec<&JobRecipient> = chunk.iter().map(|&k| &job.recipients[idx[k]]).collect();
        let tx = transaction(conn, s, &mail, &rcpts, msg, &form).await;
        for (j, v) in tx.verdicts.into_iter().enumerate() {
            if let Some(v) = v {
                verdicts[chunk[j]] = Some(v);
            }
        }
        conn.transactions += 1;
        match tx.end {
            TxEnd::Ok => {}
            TxEnd::Closed => return SessionEnd::Closed,
            TxEnd::Broken(_) if first && reused && !tx.answered => return SessionEnd::DeadCached,
            TxEnd::Broken(v) => return SessionEnd::HostFailed(v),
        }
        first = false;
    }
    SessionEnd::Reusable
}

/// How a transaction left the connection.
enum TxEnd {
    /// In a clean state for another transaction.
    Ok,
    /// Finished (after 421, or a reset that failed).
    Closed,
    /// The host failed before the recipients without a verdict were done.
    Broken(Verdict),
}

struct Tx {
    verdicts: Vec<Option<Verdict>>,
    end: TxEnd,
    /// Whether the server answered anything at all.
    answered: bool,
}

/// MAIL, RCPT..., DATA, the message: pipelined when the server offers it
/// (RFC 2920), one command at a time otherwise.
async fn transaction(
    conn: &mut Conn,
    s: &Settings,
    mail: &str,
    rcpts: &[&JobRecipient],
    msg: &Arc<Message>,
    form: &Form,
) -> Tx {
    let t = s.timeouts;
    let n = rcpts.len();
    let mut tx = Tx {
        verdicts: vec![None; n],
        end: TxEnd::Ok,
        answered: false,
    };
    let rcpt_lines: Vec<String> = rcpts
        .iter()
        .map(|r| rcpt_command(conn.ext.dsn, r))
        .collect();
    let pipelining = conn.ext.pipelining;
    // Which stage broke, for the texts.
    macro_rules! broken {
        ($e:expr, $stage:expr) => {{
            let v = Verdict::broken(conn, &$e, $stage);
            tx.end = TxEnd::Broken(v);
            return tx;
        }};
    }
    if pipelining {
        let mut batch = format!("{mail}\r\n");
        for l in &rcpt_lines {
            batch.push_str(l);
            batch.push_str("\r\n");
        }
        if !form.chunking {
            batch.push_str("DATA\r\n");
        }
        if let Err(e) = conn.send(batch.as_bytes(), t.command).await {
            broken!(e, "sending MAIL FROM");
        }
    } else if let Err(e) = conn.send(format!("{mail}\r\n").as_bytes(), t.command).await {
        broken!(e, "sending MAIL FROM");
    }
    let mail_reply = match conn.read_reply(t.command).await {
        Ok(r) => r,
        Err(e) => broken!(e, "receiving the MAIL FROM reply"),
    };
    tx.answered = true;
    if mail_reply.code == 421 {
        tx.end = TxEnd::Broken(Verdict::reply(conn, &mail_reply, "MAIL FROM command"));
        return tx;
    }
    let mut accepted = Vec::new();
    for (j, line) in rcpt_lines.iter().enumerate() {
        if !pipelining {
            if !mail_reply.is_positive() {
                break;
            }
            if let Err(e) = conn.send(format!("{line}\r\n").as_bytes(), t.command).await {
                broken!(e, "sending RCPT TO");
            }
        }
        let r = match conn.read_reply(t.command).await {
            Ok(r) => r,
            Err(e) => broken!(e, "receiving the RCPT TO reply"),
        };
        if !mail_reply.is_positive() {
            continue;
        }
        if r.code == 421 {
            tx.end = TxEnd::Broken(Verdict::reply(conn, &r, "RCPT TO command"));
            return tx;
        }
        if r.is_positive() {
            accepted.push(j);
        } else {
            tx.verdicts[j] = Some(Verdict::reply(conn, &r, "RCPT TO command"));
        }
    }
    if !mail_reply.is_positive() {
        let v = Verdict::reply(conn, &mail_reply, "MAIL FROM command");
        for slot in tx.verdicts.iter_mut() {
            *slot = Some(v.clone());
        }
    }
    if form.chunking {
        if accepted.is_empty() {
            return reset(conn, t.command, tx).await;
        }
        return chunks(conn, s, msg, form, rcpts, &accepted, tx).await;
    }
    // DATA: pipelined, its reply is waiting; otherwise send it only when
    // some recipient was accepted.
    let data_reply = if pipelining || !accepted.is_empty() {
        if !pipelining {
            if let Err(e) = conn.send(b"DATA\r\n", t.command).await {
                broken!(e, "sending DATA");
            }
        }
        match conn.read_reply(t.data_init).await {
            Ok(r) => Some(r),
            Err(e) => broken!(e, "receiving the DATA reply"),
        }
    } else {
        None
    };
    match data_reply {
        Some(r) if r.code == 354 && accepted.is_empty() => {
            // A server that says 354 with no recipient: send an empty body
            // to get back in step (RFC 2920 3.1).
            if let Err(e) = conn.send(b".\r\n", t.data_block).await {
                broken!(e, "sending end of data");
            }
            if let Err(e) = conn.read_reply(t.data_done).await {
                broken!(e, "receiving the end of data reply");
            }
            return reset(conn, t.command, tx).await;
        }
        Some(r) if r.code == 354 => {}
        Some(r) if r.code == 421 && !accepted.is_empty() => {
            tx.end = TxEnd::Broken(Verdict::reply(conn, &r, "DATA command"));
            return tx;
        }
        Some(r) => {
            if !accepted.is_empty() {
                let v = Verdict::reply(conn, &r, "DATA command");
                for &j in &accepted {
                    tx.verdicts[j] = Some(v.clone());
                }
            }
            return reset(conn, t.command, tx).await;
        }
        None => return reset(conn, t.command, tx).await,
    }
    let mut blocks = msg.stream(form.clone());
    while let Some(block) = blocks.recv().await {
        match block {
            Ok(b) => {
                if let Err(e) = conn.send(&b, t.data_block).await {
                    broken!(e, "sending message body");
                }
            }
            Err(e) => {
                // The final dot must not go out: closing the connection
                // makes the server drop what it has (RFC 5321 4.1.1.4).
                unreadable(&mut tx, &accepted, &e);
                return tx;
            }
        }
    }
    let done = match conn.read_reply(t.data_done).await {
        Ok(r) => r,
        Err(e) => {
            // The server may have taken the message: no other host now, the
            // retry may deliver twice (RFC 1047).
            let mut v = Verdict::broken(
                conn,
                &e,
                "sending end of data -- message may be sent more than once",
            );
            v.outcome = Outcome::Deferred;
            for &j in &accepted {
                tx.verdicts[j] = Some(v.clone());
            }
            tx.end = TxEnd::Closed;
            return tx;
        }
    };
    final_reply(
        conn,
        &done,
        "end of DATA command",
        rcpts,
        &accepted,
        &mut tx,
    );
    tx
}

/// The verdicts after the reply to the end of the message.
fn final_reply(
    conn: &Conn,
    done: &Reply,
    stage: &str,
    rcpts: &[&JobRecipient],
    accepted: &[usize],
    tx: &mut Tx,
) {
    let v = Verdict::reply(conn, done, stage);
    for &j in accepted {
        let mut v = v.clone();
        if v.outcome == Outcome::Sent && !conn.ext.dsn && rcpts[j].notify.success {
            v.outcome = Outcome::Relayed;
        }
        tx.verdicts[j] = Some(v);
    }
    if done.code == 421 {
        tx.end = TxEnd::Closed;
    }
}

/// The message file could not be read mid-transaction: the accepted
/// recipients are deferred and the connection is given up.
fn unreadable(tx: &mut Tx, accepted: &[usize], e: &std::io::Error) {
    let v = Verdict::local(
        Outcome::Deferred,
        "4.3.0",
        format!("cannot read the message file: {e}"),
        "none",
    );
    for &j in accepted {
        tx.verdicts[j] = Some(v.clone());
    }
    tx.end = TxEnd::Closed;
}

/// The message in BDAT chunks (RFC 3030 section 2), one block each, the last
/// one marked LAST; each chunk's reply is read before the next is sent. A
/// failed chunk fails the transaction for every accepted recipient, and RSET
/// clears what the server holds (RFC 3030 section 4).
async fn chunks(
    conn: &mut Conn,
    s: &Settings,
    msg: &Arc<Message>,
    form: &Form,
    rcpts: &[&JobRecipient],
    accepted: &[usize],
    mut tx: Tx,
) -> Tx {
    let t = s.timeouts;
    let mut blocks = msg.stream(form.clone());
    let mut held: Option<Vec<u8>> = None;
    let done = loop {
        let next = match blocks.recv().await {
            Some(Ok(b)) => Some(b),
            Some(Err(e)) => {
                unreadable(&mut tx, accepted, &e);
                return reset(conn, t.command, tx).await;
            }
            None => None,
        };
        let last = next.is_none();
        let Some(chunk) = (if last {
            held.take()
        } else {
            held.replace(next.unwrap_or_default())
        }) else {
            if last {
                // An empty message: one empty last chunk.
                break send_chunk(conn, s, &[], true).await;
            }
            continue;
        };
        let r = send_chunk(conn, s, &chunk, last).await;
        if last {
            break r;
        }
        match r {
            Ok(r) if r.is_positive() => {}
            Ok(r) => {
                let v = Verdict::reply(conn, &r, "BDAT command");
                for &j in accepted {
                    tx.verdicts[j] = Some(v.clone());
                }
                if r.code == 421 {
                    tx.end = TxEnd::Closed;
                    return tx;
                }
                return reset(conn, t.command, tx).await;
            }
            Err(e) => {
                tx.end = TxEnd::Broken(Verdict::broken(conn, &e, "sending message body"));
                return tx;
            }
        }
    };
    match done {
        Ok(r) => final_reply(conn, &r, "end of DATA command", rcpts, accepted, &mut tx),
        Err(e) => {
            // As after DATA's final dot: the server may have taken it.
            let mut v = Verdict::broken(
                conn,
                &e,
                "sending end of data -- message may be sent more than once",
            );
            v.outcome = Outcome::Deferred;
            for &j in accepted {
                tx.verdicts[j] = Some(v.clone());
            }
            tx.end = TxEnd::Closed;
        }
    }
    tx
}

/// `BDAT <size> [LAST]` and the chunk, then its reply.
async fn send_chunk(
    conn: &mut Conn,
    s: &Settings,
    chunk: &[u8],
    last: bool,
) -> Result<Reply, ConnError> {
    let t = s.timeouts;
    let line = format!(
        "BDAT {}{}\r\n",
        chunk.len(),
        if last { " LAST" } else { "" }
    );
    conn.send(line.as_bytes(), t.command).await?;
    conn.send(chunk, t.data_block).await?;
    conn.read_reply(if last { t.data_done } else { t.data_block })
        .await
}

/// RSET after a transaction that did not complete, so the connection can be
/// used again (RFC 5321 4.1.1.5).
async fn reset(conn: &mut Conn, limit: Duration, mut tx: Tx) -> Tx {
    match conn.command("RSET", limit).await {
        Ok(r) if r.is_positive() => {}
        _ => tx.end = TxEnd::Closed,
    }
    tx
}

/// `RCPT TO:<a>` with NOTIFY and ORCPT when the server speaks DSN (RFC 3461 4.1, 4.2).
fn rcpt_command(dsn: bool, r: &JobRecipient) -> String {
    let mut line = format!("RCPT TO:<{}>", r.address);
    if dsn {
        let n = r.notify;
        if n == crate::queue::Notify::NEVER {
            line.push_str(" NOTIFY=NEVER");
        } else if n != crate::queue::Notify::default() {
            let mut words = Vec::new();
            if n.success {
                words.push("SUCCESS");
            }
            if n.failure {
                words.push("FAILURE");
            }
            if n.delay {
                words.push("DELAY");
            }
            line.push_str(&format!(" NOTIFY={}", words.join(",")));
        }
        if let Some(o) = &r.orcpt {
            let (kind, addr) = o.split_once(';').unwrap_or(("rfc822", o));
            line.push_str(&format!(" ORCPT={};{}", kind.trim(), xtext(addr.trim())));
        }
    }
    line
}

/// RFC 3461 4: xtext, `+XX` for `+`, `=` and anything outside `!`..`~`.
pub fn xtext(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (33..=126).contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// Logs the result as Postfix's smtp(8) does.
fn log_line(qid: &str, r: &JobRecipient, v: &Verdict, c: &Clock) {
    let now = Instant::now();
    let b = c.slots.duration_since(c.received).as_secs_f64();
    let cc = c.connected.duration_since(c.slots).as_secs_f64();
    let d = now.duration_since(c.connected).as_secs_f64();
    let delay = c.queued + now.duration_since(c.received).as_secs_f64();
    let status = match v.outcome {
        Outcome::Sent => "sent",
        Outcome::Relayed => "sent",
        Outcome::Deferred => "deferred",
        Outcome::Bounced => "bounced",
    };
    let line = format!(
        "{qid}: to=<{}>, relay={}, delay={}, delays={}/{}/{}/{}, dsn={}, status={status} ({})",
        r.address,
        v.relay,
        secs(delay),
        secs(c.queued),
        secs(b),
        secs(cc),
        secs(d),
        v.dsn,
        v.text
    );
    crate::info!("{line}");
}

/// Seconds as Postfix prints delays: `0.12`, `1.5`, `42`.
fn secs(s: f64) -> String {
    if s <= 0.0 {
        "0".into()
    } else if s < 0.1 {
        let t = format!("{s:.2}");
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    } else if s < 10.0 {
        format!("{s:.1}")
    } else {
        format!("{s:.0}")
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Notify;

    fn rcpt(addr: &str) -> JobRecipient {
        JobRecipient {
            index: 0,
            address: addr.into(),
            notify: Notify::default(),
            orcpt: None,
            delivery_id: "d".into(),
            folder: None,
        }
    }

    #[test]
    fn rcpt_lines_carry_dsn_parameters_only_when_offered() {
        let mut r = rcpt("a@b.example");
        assert_eq!(rcpt_command(true, &r), "RCPT TO:<a@b.example>");
        r.notify.success = true;
        r.orcpt = Some("rfc822;a+x=y@b.example".into());
        assert_eq!(
            rcpt_command(true, &r),
            "RCPT TO:<a@b.example> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;a+2Bx+3Dy@b.example"
        );
        assert_eq!(rcpt_command(false, &r), "RCPT TO:<a@b.example>");
        r.notify = Notify::NEVER;
        r.orcpt = None;
        assert_eq!(rcpt_command(true, &r), "RCPT TO:<a@b.example> NOTIFY=NEVER");
        assert_eq!(xtext("a b+c"), "a+20b+2Bc");
    }

    #[test]
    fn delays_print_like_postfix() {
        assert_eq!(secs(0.0), "0");
        assert_eq!(secs(0.012), "0.01");
        assert_eq!(secs(0.5), "0.5");
        assert_eq!(secs(2.34), "2.3");
        assert_eq!(secs(42.4), "42");
    }
}
