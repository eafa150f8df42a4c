//! NOTIFY (RFC 5465 3): NOTIFY NONE, NOTIFY SET [STATUS] event-groups.

use super::lexer::{Cursor, Fail, Res};
use super::types::{CommandBody, MailboxArg, NotifyEvent, NotifyFilter, NotifyGroup, NotifySet};
use super::MAX_LIST_ITEMS;

/// The command `verb`, if it is NOTIFY.
pub fn parse(verb: &str, c: &mut Cursor) -> Res<Option<CommandBody>> {
    if verb != "NOTIFY" {
        return Ok(None);
    }
    c.sp()?;
    let what = c.atom()?.to_ascii_uppercase();
    match what.as_str() {
        "NONE" => return Ok(Some(CommandBody::Notify(None))),
        "SET" => {}
        _ => return Err(Fail(format!("Expected SET or NONE, not {what}"))),
    }
    c.sp()?;
    let status = c.eat(b"STATUS ") || c.eat(b"status ") || c.eat(b"Status ");
    let mut groups = Vec::new();
    loop {
        if groups.len() >= MAX_LIST_ITEMS {
            return Err(Fail("Too many event groups".into()));
        }
        groups.push(group(c)?);
        if !c.eat(b" ") {
            break;
        }
    }
    Ok(Some(CommandBody::Notify(Some(NotifySet {
        status,
        groups,
    }))))
}

/// `"(" filter-mailboxes SP events ")"`.
fn group(c: &mut Cursor) -> Res<NotifyGroup> {
    c.expect(b"(")?;
    let f = c.atom()?.to_ascii_uppercase();
    let filter = match f.as_str() {
        "SELECTED" => NotifyFilter::Selected,
        "SELECTED-DELAYED" => NotifyFilter::SelectedDelayed,
        "INBOXES" => NotifyFilter::Inboxes,
        "PERSONAL" => NotifyFilter::Personal,
        "SUBSCRIBED" => NotifyFilter::Subscribed,
        "SUBTREE" => {
            c.sp()?;
            NotifyFilter::Subtree(mailboxes(c)?)
        }
        "MAILBOXES" => {
            c.sp()?;
            NotifyFilter::Mailboxes(mailboxes(c)?)
        }
        _ => return Err(Fail(format!("Unknown NOTIFY filter {f}"))),
    };
    c.sp()?;
    let mut events = Vec::new();
    if c.eat(b"(") {
        loop {
            if events.len() >= MAX_LIST_ITEMS {
                return Err(Fail("Too many events".into()));
            }
            events.push(event(c)?);
            if c.eat(b")") {
                break;
            }
            c.sp()?;
        }
    } else {
        let none = c.atom()?;
        if !none.eq_ignore_ascii_case("NONE") {
            return Err(Fail("Expected events or NONE".into()));
        }
    }
    c.expect(b")")?;
    Ok(NotifyGroup { filter, events })
}

fn mailboxes(c: &mut Cursor) -> Res<Vec<MailboxArg>> {
    if !c.eat(b"(") {
        return Ok(vec![c.mailbox()?]);
    }
    let mut v = Vec::new();
    loop {
        if v.len() >= MAX_LIST_ITEMS {
            return Err(Fail("Too many mailboxes".into()));
        }
        v.push(c.mailbox()?);
        if c.eat(b")") {
            return Ok(v);
        }
        c.sp()?;
    }
}

fn event(c: &mut Cursor) -> Res<NotifyEvent> {
    let e = c.atom()?;
    Ok(match e.to_ascii_lowercase().as_str() {
        "messagenew" => {
            let mut atts = Vec::new();
            if c.eat(b" (") {
                loop {
                    if atts.len() >= MAX_LIST_ITEMS {
                        return Err(Fail("Too many FETCH items".into()));
                    }
                    atts.push(super::fetch::att(c)?);
                    if c.eat(b")") {
                        break;
                    }
                    c.sp()?;
                }
            }
            NotifyEvent::MessageNew(atts)
        }
        "messageexpunge" => NotifyEvent::MessageExpunge,
        "flagchange" => NotifyEvent::FlagChange,
        "annotationchange" => NotifyEvent::AnnotationChange,
        "mailboxname" => NotifyEvent::MailboxName,
        "subscriptionchange" => NotifyEvent::SubscriptionChange,
        "mailboxmetadatachange" | "mailboxmetadata" => NotifyEvent::MailboxMetadata,
        "servermetadatachange" | "servermetadata" => NotifyEvent::ServerMetadata,
        _ => NotifyEvent::Other(e),
    })
}
