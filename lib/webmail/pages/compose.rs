//! Writing mail: GET /compose (a new message, a draft reopened, a reply,
//! a forward), POST /compose (save the draft, attach or remove files,
//! send). Read receipts are in `receipt.rs`, the writing settings in
//! `signatures.rs`.
//!
//! The webmail keeps no state between requests, so the message being
//! written lives in the user's Drafts folder: every POST of the form first
//! saves it there — the text as typed, the attachments it had (read back
//! from the previous draft) less the ones removed, plus the files just
//! uploaded — by APPENDing the new draft and then deleting the old one, so
//! there is one draft, not a copy per save. Uploading a file is saving the
//! draft. Sending then builds the message from the same parts, submits it
//! with the user's own login, keeps a copy in Sent (by the user's choice),
//! deletes the draft and flags the original (`\Answered`, `$Forwarded`).
//! Whatever goes wrong (an address that does not parse, a file over the
//! limit, the server refusing a recipient, the draft deleted in another
//! session) shows the form again with everything typed in it.

use serde_json::{json, Value};

use super::super::app::{Ctx, PageError};
use super::super::compose::build::{self, Identity, Purpose};
use super::super::compose::reply;
use super::super::compose::{
    clean_content_type, clean_file_name, parse_addresses, with_signature, Attachment, ComposePrefs,
    Draft, Linked, Origin, Priority, COMPOSE_ENTRY, MAX_SIGNATURES,
};
use super::super::response::Response;
use super::super::submit::{self, Chunk, Login, SubmitError};
use super::mail;
use crate::imapc::{self, Catenate, Folder};

/// The policy of the compose page: the usual one, plus our own script
/// (the size check before an upload, the signature choice).
pub const COMPOSE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Longest subject and body taken from the form.
const MAX_SUBJECT: usize = 1000;
const MAX_BODY: usize = 4 << 20;

/// The user's compose settings.
pub fn compose_prefs(ctx: &mut Ctx) -> Result<ComposePrefs, PageError> {
    let entries = ctx.imap().get_metadata("", &[COMPOSE_ENTRY])?;
    Ok(ComposePrefs::parse(
        entries.into_iter().find_map(|(_, v)| v).as_deref(),
    ))
}

/// The sender: the login's address and the name the user chose.
pub(super) fn identity(ctx: &mut Ctx, prefs: &ComposePrefs) -> Identity {
    Identity {
        name: prefs.from_name.clone(),
        address: ctx.auth().session.user.clone(),
    }
}

/// A special folder (`\Drafts`, `\Sent`), else one with that name.
fn special<'a>(folders: &'a [Folder], use_: &str, name: &str) -> Option<&'a Folder> {
    folders
        .iter()
        .find(|f| {
            f.special
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case(use_))
        })
        .or_else(|| folders.iter().find(|f| f.name.eq_ignore_ascii_case(name)))
}

/// The Drafts (or Sent) folder, made when the user has none.
fn folder_for(ctx: &mut Ctx, use_: &str, name: &str) -> Result<String, PageError> {
    let folders = ctx.imap().list_names()?;
    if let Some(f) = special(&folders, use_, name) {
        return Ok(f.name.clone());
    }
    ctx.imap().create(name, Some(use_))?;
    Ok(name.to_string())
}

/// GET /compose[?draft=UID | ?reply=UID&folder=F[&all=1] |
/// ?forward=UID&folder=F[&as=attachment] | ?to=ADDR].
pub fn show(ctx: &mut Ctx) -> Result<Response, PageError> {
    let prefs = compose_prefs(ctx)?;
    let mut draft_uid = None;
    let mut carry = false;
    let draft = if let Some(uid) = ctx.req.param("draft") {
        let uid = mail::check_uid(Some(uid))?;
        let drafts = folder_for(ctx, "\\Drafts", "Drafts")?;
        mail::select(ctx, &drafts, true)?;
        let raw = ctx
            .imap()
            .fetch_raw(uid)?
            .ok_or(PageError::Bad("err_draft_gone"))?;
        draft_uid = Some(uid);
        build::read_draft(&raw)
    } else if let Some((uid, forward)) = ctx
        .req
        .param("reply")
        .map(|u| (u, false))
        .or(ctx.req.param("forward").map(|u| (u, true)))
    {
        let uid = mail::check_uid(Some(uid))?;
        let folder = mail::folder_of(ctx)?;
        mail::select(ctx, &folder, true)?;
        let as_attachment = forward && ctx.req.param("as") == Some("attachment");
        let by_reference = as_attachment && ctx.imap().has("URLAUTH") && ctx.imap().has("CATENATE");
        let raw = if by_reference {
            // Only the header: the message itself stays on the server.
            ctx.imap().fetch_section(uid, "HEADER")?
        } else {
            ctx.imap().fetch_raw(uid)?
        }
        .ok_or(PageError::Bad("err_no_message"))?;
        let origin = Origin {
            forward,
            folder: folder.clone(),
            uid,
        };
        let date = original_date(ctx, &raw);
        let mut d = if by_reference {
            linked_forward(ctx, &raw, origin, &folder, uid)?
        } else if forward {
            reply::forward_draft(&raw, origin, !as_attachment, &date)
        } else {
            let mine = vec![ctx.auth().session.user.to_lowercase()];
            reply::reply_draft(
                &raw,
                origin,
                &mine,
                ctx.req.param("all") == Some("1"),
                &date,
            )
        };
        carry = !d.attachments.is_empty();
        d.body = with_signature(&d.body, prefs.signature(prefs.default_signature));
        d.save_sent = prefs.save_sent;
        d
    } else {
        let to = ctx.req.param("to").unwrap_or_default();
        Draft {
            to: if parse_addresses(to).is_ok() {
                to.to_string()
            } else {
                String::new()
            },
            body: with_signature("", prefs.signature(prefs.default_signature)),
            save_sent: prefs.save_sent,
            ..Draft::default()
        }
    };
    let sig = if draft_uid.is_some() {
        None
    } else {
        prefs.default_signature
    };
    form(ctx, &prefs, &draft, draft_uid, carry, sig, 200, None)
}

/// A forward as attachment that attaches the original by reference.
fn linked_forward(
    ctx: &mut Ctx,
    header: &[u8],
    origin: Origin,
    folder: &str,
    uid: u32,
) -> Result<Draft, PageError> {
    let sel = ctx.imap().select(folder, true)?;
    let size = ctx.imap().summaries(&[uid])?.first().map_or(0, |s| s.size);
    let mut d = reply::forward_draft(header, origin, false, "");
    let name = d
        .attachments
        .pop()
        .map_or_else(|| "message.eml".to_string(), |a| a.name);
    d.linked = Some(Linked {
        folder: folder.to_string(),
        uidvalidity: sel.uidvalidity,
        uid,
        size,
        name,
    });
    Ok(d)
}

/// The original's date as the pages show it, in the user's zone.
fn original_date(ctx: &mut Ctx, raw: &[u8]) -> String {
    let offset = ctx.auth().prefs.tz_offset_minutes();
    build::header(raw, "Date")
        .and_then(|d| mail::parse_date(d.as_bytes()))
        .map(|t| mail::long_date(t, offset))
        .unwrap_or_default()
}

/// Renders the form with `d` in it; `error` is a string key and the
/// server's text, if any.
#[allow(clippy::too_many_arguments)]
fn form(
    ctx: &mut Ctx,
    prefs: &ComposePrefs,
    d: &Draft,
    draft_uid: Option<u32>,
    carry: bool,
    sig: Option<usize>,
    status: u16,
    error: Option<(&str, Option<String>)>,
) -> Result<Response, PageError> {
    let limit = ctx.settings.max_attachments;
    let from = identity(ctx, prefs);
    let mut attachments: Vec<Value> = d
        .attachments
        .iter()
        .enumerate()
        .map(|(i, a)| {
            json!({
                "index": i,
                "name": a.name,
                "type": a.content_type,
                "size": mail::human_size(a.data.len() as u64),
                "bytes": a.data.len(),
            })
        })
        .collect();
    if let Some(l) = &d.linked {
        attachments.push(json!({
            "index": d.attachments.len(),
            "name": l.name,
            "type": "message/rfc822",
            "size": mail::human_size(l.size),
            "bytes": l.size,
        }));
    }
    let signatures: Vec<Value> = prefs
        .signatures
        .iter()
        .enumerate()
        .map(|(i, s)| json!({ "index": i, "name": s.name, "text": s.text }))
        .collect();
    let (error_key, error_detail) = match error {
        Some((k, detail)) => (Some(ctx.lang.get(k).to_string()), detail),
        None => (None, None),
    };
    let done = ctx
        .req
        .param("saved")
        .map(|_| ctx.lang.get("done_draft_saved").to_string());
    // The address book's suggestions for To, Cc and Bcc.
    let addresses = super::contacts::suggestions(ctx);
    let mut r = ctx.page_status(
        status,
        "compose.html",
        json!({
            "addresses": addresses,
            "draft": draft_uid,
            "to": d.to, "cc": d.cc, "bcc": d.bcc,
            "subject": d.subject, "body": d.body,
            "priority": d.priority.name(),
            "receipt": d.receipt,
            "save_sent": d.save_sent,
            "in_reply_to": d.in_reply_to,
            "references": d.references.join(" "),
            "origin": d.origin.as_ref().map(Origin::to_text),
            "carry": carry,
            // Until the draft holds it, the linked message travels in the form.
            "linked": d.linked.as_ref().filter(|_| draft_uid.is_none()).map(Linked::to_text),
            "attachments": attachments,
            "attached_bytes": d.attachments_size(),
            "limit": limit,
            "limit_human": mail::human_size(limit),
            "signatures": signatures,
            "sig": sig,
            "from": from.name.as_ref().map_or(from.address.clone(), |n| format!("{n} <{}>", from.address)),
            "error": error_key,
            "error_detail": error_detail,
            "saved": done,
            "fwd_as": ctx.req.param("as").or(ctx.req.field("fwd_as")).filter(|a| *a == "attachment"),
        }),
    )?;
    r.csp = COMPOSE_CSP.into();
    Ok(r)
}

/// The form's fields as a [`Draft`] (without attachments).
fn typed(ctx: &Ctx) -> Draft {
    let f = |n: &str| ctx.req.field(n).unwrap_or_default().to_string();
    let one_line = |n: &str| {
        f(n).chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
    };
    Draft {
        to: one_line("to"),
        cc: one_line("cc"),
        bcc: one_line("bcc"),
        subject: super::super::compose::cut(one_line("subject").trim(), MAX_SUBJECT),
        body: super::super::compose::cut(&f("body").replace("\r\n", "\n"), MAX_BODY),
        priority: Priority::parse(ctx.req.field("priority")),
        receipt: ctx.req.field("receipt").is_some(),
        save_sent: ctx.req.field("save_sent").is_some(),
        in_reply_to: build::message_ids(format!("<{}>", f("in_reply_to")).as_bytes())
            .into_iter()
            .next(),
        references: f("references")
            .split_whitespace()
            .flat_map(|r| build::message_ids(format!("<{r}>").as_bytes()))
            .take(50)
            .collect(),
        origin: ctx.req.field("origin").and_then(Origin::parse),
        attachments: Vec::new(),
        linked: ctx.req.field("linked").and_then(Linked::parse),
    }
}

fn index_field(ctx: &Ctx, name: &str) -> Option<usize> {
    ctx.req
        .field(name)
        .and_then(|v| v.parse().ok())
        .filter(|n| *n < MAX_SIGNATURES)
}

/// POST /compose: save the draft (always), then send when asked.
pub fn submit(ctx: &mut Ctx) -> Result<Response, PageError> {
    let prefs = compose_prefs(ctx)?;
    let mut d = typed(ctx);
    let sig = index_field(ctx, "sig");
    if ctx.req.field("sig") != ctx.req.field("sig_in") {
        d.body = with_signature(&d.body, prefs.signature(sig));
    }
    let old_uid = match ctx.req.field("draft").filter(|v| !v.is_empty()) {
        Some(v) => Some(mail::check_uid(Some(v))?),
        None => None,
    };
    let drafts = folder_for(ctx, "\\Drafts", "Drafts")?;
    // The attachments so far: the previous draft's, or the original's.
    if let Some(uid) = old_uid {
        mail::select(ctx, &drafts, false)?;
        match ctx.imap().fetch_raw(uid)? {
            Some(raw) => {
                let saved = build::read_draft(&raw);
                d.attachments = saved.attachments;
                d.linked = saved.linked;
            }
            None => {
                return form(
                    ctx,
                    &prefs,
                    &d,
                    None,
                    false,
                    sig,
                    409,
                    Some(("err_draft_gone", None)),
                );
            }
        }
    } else if ctx.req.field("carry") == Some("1") {
        if let Some(o) = d.origin.clone() {
            d.attachments = original_attachments(ctx, &o)?;
        }
    }
    let mut removed: Vec<usize> = ctx
        .req
        .form
        .iter()
        .filter(|(k, _)| k == "remove")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    removed.sort_unstable();
    removed.dedup();
    for i in removed.into_iter().rev() {
        if i < d.attachments.len() {
            d.attachments.remove(i);
        } else if i == d.attachments.len() {
            d.linked = None;
        }
    }
    let uploads: Vec<Attachment> = ctx
        .req
        .uploads
        .iter()
        .filter(|u| u.field == "files" && !(u.filename.is_empty() && u.data.is_empty()))
        .map(|u| Attachment {
            name: clean_file_name(&u.filename),
            content_type: clean_content_type(&u.content_type),
            data: u.data.clone(),
        })
        .collect();
    let upload_size: u64 = uploads.iter().map(|a| a.data.len() as u64).sum();
    let too_large = d.attachments_size() + upload_size > ctx.settings.max_attachments;
    if !too_large {
        d.attachments.extend(uploads);
    }
    // Save: the new draft first, then the old one goes.
    let from = identity(ctx, &prefs);
    let now = ctx.now as i64;
    let offset = ctx.auth().prefs.tz_offset_minutes();
    let saved = build::build(&d, &from, now, offset, Purpose::Draft);
    let sending = ctx.req.field("action") == Some("send");
    let appended = match ctx
        .imap()
        .append(&drafts, &["\\Draft", "\\Seen"], &saved.bytes)
    {
        Ok(a) => Some(a),
        // Over quota (RFC 9208 [OVERQUOTA]). Saving: the form comes back as
        // it was typed, with the reason; nothing is lost but the save.
        // Sending: a full mailbox must not stop mail going out, so the
        // message is sent without a new draft (the old one, if any, stays
        // until the send succeeds).
        Err(imapc::Error::No(t)) if super::list::over_quota(&t) => {
            if !sending || too_large {
                return form(
                    ctx,
                    &prefs,
                    &d,
                    old_uid,
                    false,
                    sig,
                    507,
                    Some(("err_overquota_save", Some(t))),
                );
            }
            None
        }
        Err(e) => return Err(e.into()),
    };
    let new_uid = match appended {
        Some(a) => {
            if let Some(uid) = old_uid {
                mail::select(ctx, &drafts, false)?;
                ctx.imap().store(&[uid], true, &["\\Deleted"])?;
                ctx.imap().expunge(&[uid])?;
            }
            a.map(|(_, u)| u)
        }
        None => old_uid,
    };
    if too_large {
        let limit = mail::human_size(ctx.settings.max_attachments);
        return form(
            ctx,
            &prefs,
            &d,
            new_uid,
            false,
            sig,
            413,
            Some(("err_attachments_too_large", Some(limit))),
        );
    }
    if !sending {
        return Ok(match new_uid {
            Some(u) => ctx.redirect(&format!("/compose?draft={u}&saved=1")),
            None => ctx.redirect("/list?folder=Drafts&done=draft_saved"),
        });
    }
    send(ctx, &prefs, d, new_uid, &drafts, sig)
}

/// The attachments a forward starts with: the original's (inline) or the
/// original itself (as attachment).
fn original_attachments(ctx: &mut Ctx, o: &Origin) -> Result<Vec<Attachment>, PageError> {
    mail::select(ctx, &o.folder, true)?;
    let raw = ctx
        .imap()
        .fetch_raw(o.uid)?
        .ok_or(PageError::Bad("err_no_message"))?;
    let inline = ctx.req.field("fwd_as") != Some("attachment");
    Ok(reply::forward_draft(&raw, o.clone(), inline, "").attachments)
}

/// Sends the saved draft `d`.
fn send(
    ctx: &mut Ctx,
    prefs: &ComposePrefs,
    d: Draft,
    draft_uid: Option<u32>,
    drafts: &str,
    sig: Option<usize>,
) -> Result<Response, PageError> {
    // A group's name in an address field goes to its members.
    let mut d = d;
    super::contacts::expand_groups(ctx, [&mut d.to, &mut d.cc, &mut d.bcc])?;
    let mut rcpts = Vec::new();
    let mut shown = Vec::new();
    for field in [&d.to, &d.cc, &d.bcc] {
        match parse_addresses(field) {
            Ok(l) => {
                shown.extend(l.iter().map(|r| r.display()));
                rcpts.extend(l.into_iter().map(|r| r.address));
            }
            Err(e) => {
                return form(
                    ctx,
                    prefs,
                    &d,
                    draft_uid,
                    false,
                    sig,
                    400,
                    Some(("err_bad_address", Some(e.item))),
                );
            }
        }
    }
    if rcpts.is_empty() {
        return form(
            ctx,
            prefs,
            &d,
            draft_uid,
            false,
            sig,
            400,
            Some(("err_no_recipient", None)),
        );
    }
    let from = identity(ctx, prefs);
    let sent = match deliver(ctx, d.clone(), &from, &rcpts) {
        Ok(m) => m,
        Err(e) => {
            let (key, detail) = match &e {
                SubmitError::Unavailable(t) => {
                    crate::warn!("submission: {t}");
                    ("err_submission_unavailable", None)
                }
                SubmitError::Auth(r) => ("err_submission_auth", Some(r.text())),
                SubmitError::Recipients(l) => (
                    "err_recipients_refused",
                    Some(
                        l.iter()
                            .map(|(a, r)| format!("<{a}>: {}", r.text()))
                            .collect::<Vec<_>>()
                            .join("\n"),
                    ),
                ),
                SubmitError::Refused(r) => ("err_message_refused", Some(r.text())),
            };
            return form(
                ctx,
                prefs,
                &d,
                draft_uid,
                false,
                sig,
                400,
                Some((key, detail)),
            );
        }
    };
    super::contacts::record_sent(ctx, &shown);
    // Sent: what follows tidies up; a failure there must not look like
    // the mail was not sent.
    let mut done = "sent";
    if d.save_sent {
        match folder_for(ctx, "\\Sent", "Sent") {
            Ok(sent_folder) => {
                if let Err(e) = copy_to_sent(ctx, &sent_folder, &sent, d.linked.as_ref()) {
                    crate::warn!("copy to Sent: {e}");
                    if matches!(&e, imapc::Error::No(t) if super::list::over_quota(t)) {
                        done = "sent_not_saved";
                    }
                }
            }
            Err(e) => crate::warn!("Sent folder: {e:?}"),
        }
    }
    if let Some(uid) = draft_uid {
        let gone = mail::select(ctx, drafts, false).is_ok()
            && ctx.imap().store(&[uid], true, &["\\Deleted"]).is_ok()
            && ctx.imap().expunge(&[uid]).is_ok();
        if !gone {
            crate::warn!("the sent draft {uid} stays in {drafts}");
        }
    }
    if let Some(o) = &d.origin {
        let flag = if o.forward {
            "$Forwarded"
        } else {
            "\\Answered"
        };
        if mail::select(ctx, &o.folder, false).is_ok() {
            if let Err(e) = ctx.imap().store(&[o.uid], true, &[flag]) {
                crate::warn!("flag {flag}: {e}");
            }
        }
    }
    Ok(ctx.redirect(&format!("/list?folder=INBOX&done={done}")))
}

/// Submits the message: a linked message by BURL when the submission
/// server takes it (the webmail never holds it), else downloaded and sent
/// whole. The message as sent, for the copy in Sent.
fn deliver(
    ctx: &mut Ctx,
    mut d: Draft,
    from: &Identity,
    rcpts: &[String],
) -> Result<build::Built, SubmitError> {
    let now = ctx.now as i64;
    let offset = ctx.auth().prefs.tz_offset_minutes();
    let settings = ctx.settings;
    let session = &ctx.auth().session;
    let (user, password) = (session.user.clone(), session.password.clone());
    let login = Login {
        server: &settings.submission,
        ca_file: settings.imap_ca_file.as_deref(),
        timeout: settings.imap_timeout,
        helo: "webmail.localhost",
        user: &user,
        password: &password,
    };
    let mut s = submit::Session::open(&login)?;
    let mut chunks = None;
    if let Some(l) = d.linked.clone() {
        // A server that will not sign the URL: the download path below.
        let url = s
            .burl_imap()
            .then(|| ctx.imap().genurlauth(&l.submit_rump(&user)).ok())
            .flatten();
        if let Some(url) = url {
            let msg = build::build(&d, from, now, offset, Purpose::Send);
            if let Some((before, after)) = msg.split() {
                let body = vec![
                    Chunk::Bytes(before.to_vec()),
                    Chunk::Url(url),
                    Chunk::Bytes(after.to_vec()),
                ];
                chunks = Some((body, msg.clone()));
            }
        }
        if chunks.is_none() {
            // No BURL here: the original comes to the webmail after all.
            let raw = fetch_linked(ctx, &l)?;
            d.linked = None;
            d.attachments.push(Attachment {
                name: l.name,
                content_type: "message/rfc822".into(),
                data: raw,
            });
        }
    }
    let (body, msg) = match chunks {
        Some(c) => c,
        None => {
            let msg = build::build(&d, from, now, offset, Purpose::Send);
            (vec![Chunk::Bytes(msg.bytes.clone())], msg)
        }
    };
    let burl = body.iter().any(|c| matches!(c, Chunk::Url(_)));
    let r = s.send(from.address.as_str(), rcpts, &body);
    s.quit();
    r.map(|()| {
        crate::info!(
            "submitted: from=<{}>, message-id=<{}>, nrcpt={}, burl={}",
            from.address,
            msg.message_id,
            rcpts.len(),
            if burl { "yes" } else { "no" }
        );
        msg
    })
}

/// The linked message's bytes (its folder's UIDVALIDITY checked).
fn fetch_linked(ctx: &mut Ctx, l: &Linked) -> Result<Vec<u8>, SubmitError> {
    let gone = || {
        SubmitError::Refused(submit::Reply {
            code: 554,
            lines: vec!["the attached message is no longer there".into()],
        })
    };
    let down = |e: imapc::Error| SubmitError::Unavailable(e.to_string());
    let sel = ctx.imap().select(&l.folder, true).map_err(down)?;
    if sel.uidvalidity != l.uidvalidity {
        return Err(gone());
    }
    ctx.imap().fetch_raw(l.uid).map_err(down)?.ok_or_else(gone)
}

/// APPENDs the message sent to Sent; a linked message is put in by the
/// IMAP server itself (CATENATE), without coming to the webmail.
fn copy_to_sent(
    ctx: &mut Ctx,
    folder: &str,
    msg: &build::Built,
    linked: Option<&Linked>,
) -> Result<(), imapc::Error> {
    match (msg.split(), linked) {
        (Some((before, after)), Some(l)) => {
            let parts = [
                Catenate::Text(before.to_vec()),
                Catenate::Url(l.relative_url()),
                Catenate::Text(after.to_vec()),
            ];
            ctx.imap().append_catenate(folder, &["\\Seen"], &parts)?;
        }
        _ => {
            ctx.imap().append(folder, &["\\Seen"], &msg.bytes)?;
        }
    }
    Ok(())
}

/// One submission of `body` from `from` to `rcpts` with the session's login.
pub(super) fn submit_message(
    ctx: &mut Ctx,
    from: &str,
    rcpts: &[String],
    body: &[Chunk],
) -> Result<(), SubmitError> {
    let settings = ctx.settings;
    let session = &ctx.auth().session;
    let login = Login {
        server: &settings.submission,
        ca_file: settings.imap_ca_file.as_deref(),
        timeout: settings.imap_timeout,
        helo: "webmail.localhost",
        user: &session.user,
        password: &session.password,
    };
    let mut s = submit::Session::open(&login)?;
    let r = s.send(from, rcpts, body);
    s.quit();
    r
}
