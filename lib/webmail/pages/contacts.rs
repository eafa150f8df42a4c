//! The address book: the personal book (list, search, add, edit, delete,
//! groups, import and export) and the domain's book (read-only), both kept
//! by the core and reached over IMAP METADATA (`webmail::contacts`).
//!
//! GET /contacts (`q`, `group`, `book=domain`), GET /contacts/edit (`id`,
//! or `name` and `email` to start a new one), POST /contacts/save,
//! POST /contacts/act (the ticked contacts: delete, add to or remove from
//! a group), POST /contacts/groups (create, rename, delete),
//! POST /contacts/import (a file), GET /contacts/export (`format`, `group`),
//! POST /contacts/add-sender (from the message page), POST
//! /contacts/domain (the domain's postmaster adds or removes an entry of
//! the domain's book).

use serde_json::{json, Value};

use super::super::app::{Ctx, PageError};
use super::super::contacts::complete::{self, Suggestion};
use super::super::contacts::{self as store, Book};
use super::super::request::url_encode;
use super::super::response::Response;
use crate::contacts::{self, outlook, vcard, Address, Contact, ImportError};

/// GET /contacts.
pub fn show(ctx: &mut Ctx) -> Result<Response, PageError> {
    list_page(ctx, 200, None)
}

/// The list page, with an error (a refused import) shown above it.
fn list_page(ctx: &mut Ctx, status: u16, error: Option<Value>) -> Result<Response, PageError> {
    let q = ctx.req.param("q").unwrap_or_default().trim().to_string();
    let domain = ctx.req.param("book") == Some("domain");
    let book = store::load(ctx.imap())?;
    let group = ctx
        .req
        .param("group")
        .and_then(contacts::group_name)
        .filter(|g| book.groups.contains(g));
    let list: Vec<Contact> = if domain {
        store::load_directory(ctx.imap())?
    } else {
        book.contacts.clone()
    };
    // The postmaster sees the entries they added, to remove them.
    let managed: Option<Vec<Value>> = if domain && is_postmaster(ctx) {
        let own = store::load_postmaster(ctx.imap())?;
        Some(
            own.iter()
                .map(|c| json!({ "name": c.full_name, "email": c.email() }))
                .collect(),
        )
    } else {
        None
    };
    let shown: Vec<Value> = list
        .iter()
        .filter(|c| c.matches(&q))
        .filter(|c| group.as_ref().is_none_or(|g| c.groups.contains(g)))
        .map(|c| row(c, domain, &book))
        .collect();
    let groups: Vec<Value> = book
        .groups
        .iter()
        .map(|g| {
            json!({
                "name": g,
                "q": url_encode(g),
                "count": book.contacts.iter().filter(|c| c.groups.contains(g)).count(),
                "to": group_to(&book, g),
            })
        })
        .collect();
    ctx.page_status(
        status,
        "contacts.html",
        json!({
            "rows": shown,
            "total": list.len(),
            "q": q,
            "group": group,
            "group_q": group.as_deref().map(url_encode),
            "groups": groups,
            "domain": domain,
            "managed": managed,
            "error": error,
            "imported": ctx.req.param("n").and_then(|n| n.parse::<usize>().ok()),
            "skipped": ctx.req.param("skipped").and_then(|n| n.parse::<usize>().ok()),
        }),
    )
}

/// One contact as the list shows it.
fn row(c: &Contact, domain: bool, book: &Book) -> Value {
    let to = c.email().map(|e| c.mailbox(e));
    let phone = [&c.mobile, &c.work_phone, &c.home_phone]
        .into_iter()
        .find(|p| !p.is_empty());
    json!({
        "id": c.id,
        "name": c.full_name,
        "emails": c.emails,
        "company": c.company,
        "phone": phone,
        "groups": c.groups,
        "to": to.as_deref().map(url_encode),
        // A domain entry the user has not copied yet.
        "copy": domain && c.email().is_some_and(|e| !book.has_address(e)),
    })
}

/// The To line that writes to every member of group `g`.
fn group_to(book: &Book, g: &str) -> Option<String> {
    let list: Vec<String> = book
        .contacts
        .iter()
        .filter(|c| c.groups.iter().any(|x| x == g))
        .filter_map(|c| c.email().map(|e| c.mailbox(e)))
        .collect();
    (!list.is_empty()).then(|| url_encode(&list.join(", ")))
}

/// GET /contacts/edit.
pub fn edit(ctx: &mut Ctx) -> Result<Response, PageError> {
    let book = store::load(ctx.imap())?;
    let contact = match ctx.req.param("id") {
        Some(id) => {
            let id = check_id(id)?;
            book.get(&id).cloned().ok_or(PageError::NotFound)?
        }
        None => Contact {
            full_name: ctx.req.param("name").unwrap_or_default().to_string(),
            emails: ctx
                .req
                .param("email")
                .map(|e| vec![e.to_string()])
                .unwrap_or_default(),
            ..Contact::default()
        },
    };
    edit_page(ctx, 200, &contact, &book, None)
}

fn edit_page(
    ctx: &mut Ctx,
    status: u16,
    c: &Contact,
    book: &Book,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let addr = |a: &Address| {
        json!({ "street": a.street, "city": a.city, "region": a.region,
                "postcode": a.postcode, "country": a.country })
    };
    let mut emails = c.emails.clone();
    while emails.len() < 3 {
        emails.push(String::new());
    }
    ctx.page_status(
        status,
        "contact_edit.html",
        json!({
            "c": {
                "id": c.id, "full_name": c.full_name, "given": c.given,
                "middle": c.middle, "family": c.family, "prefix": c.prefix,
                "suffix": c.suffix, "emails": emails, "mobile": c.mobile,
                "work_phone": c.work_phone, "home_phone": c.home_phone,
                "company": c.company, "department": c.department,
                "job_title": c.job_title, "work": addr(&c.work_address),
                "home": addr(&c.home_address), "birthday": c.birthday,
                "web": c.web, "note": c.note, "groups": c.groups,
            },
            "groups": book.groups,
            "error": error,
        }),
    )
}

/// POST /contacts/save: the edit form. A form that would store a contact
/// without an address, or with one that is not an address, is shown again
/// with what was typed and nothing is stored.
pub fn save(ctx: &mut Ctx) -> Result<Response, PageError> {
    let req = ctx.req;
    let f = |n: &str| req.field(n).unwrap_or_default().to_string();
    let id = match req.field("id").filter(|i| !i.is_empty()) {
        Some(i) => check_id(i)?,
        None => String::new(),
    };
    let addr = |p: &str| Address {
        street: f(&format!("{p}_street")),
        city: f(&format!("{p}_city")),
        region: f(&format!("{p}_region")),
        postcode: f(&format!("{p}_postcode")),
        country: f(&format!("{p}_country")),
    };
    let mut c = Contact {
        id: id.clone(),
        full_name: f("full_name"),
        given: f("given"),
        middle: f("middle"),
        family: f("family"),
        prefix: f("prefix"),
        suffix: f("suffix"),
        emails: all(req, "email"),
        mobile: f("mobile"),
        work_phone: f("work_phone"),
        home_phone: f("home_phone"),
        company: f("company"),
        department: f("department"),
        job_title: f("job_title"),
        work_address: addr("work"),
        home_address: addr("home"),
        birthday: f("birthday"),
        web: f("web"),
        note: f("note"),
        groups: all(req, "group"),
    };
    c.normalise();
    let book = store::load(ctx.imap())?;
    if !id.is_empty() && book.get(&id).is_none() {
        return Err(PageError::NotFound);
    }
    let error = if c.emails.is_empty() {
        Some("err_contact_email")
    } else if c.emails.iter().any(|e| !plausible_address(e)) {
        Some("err_contact_bad_email")
    } else {
        None
    };
    if let Some(e) = error {
        return edit_page(ctx, 400, &c, &book, Some(e));
    }
    let mut list = [c];
    store::save(ctx.imap(), &mut list)?;
    Ok(ctx.redirect("/contacts?done=contact_saved"))
}

/// POST /contacts/act: `do` = delete, add (to `group`), remove (from
/// `group`), for every ticked `id`.
pub fn act(ctx: &mut Ctx) -> Result<Response, PageError> {
    let ids: Vec<String> = all(ctx.req, "id")
        .iter()
        .map(|i| check_id(i))
        .collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Err(PageError::Bad("err_contact_none_selected"));
    }
    let action = ctx.req.field("do").unwrap_or_default().to_string();
    let group = ctx.req.field("group").and_then(contacts::group_name);
    let book = store::load(ctx.imap())?;
    let mut chosen: Vec<Contact> = ids
        .iter()
        .map(|i| book.get(i).cloned().ok_or(PageError::NotFound))
        .collect::<Result<_, _>>()?;
    let done = match action.as_str() {
        "delete" => {
            store::remove(ctx.imap(), &ids)?;
            "contacts_deleted"
        }
        "add" | "remove" => {
            let g = group.ok_or(PageError::Bad("err_group_name"))?;
            for c in &mut chosen {
                c.groups.retain(|x| *x != g);
                if action == "add" {
                    c.groups.push(g.clone());
                }
                c.normalise();
            }
            store::save(ctx.imap(), &mut chosen)?;
            if action == "add" && !book.listed.contains(&g) {
                let mut listed = book.listed.clone();
                listed.push(g);
                store::save_groups(ctx.imap(), &listed)?;
            }
            if action == "add" {
                "group_added"
            } else {
                "group_removed"
            }
        }
        _ => return Err(PageError::Bad("err_bad_request")),
    };
    Ok(ctx.redirect(&format!("/contacts?done={done}")))
}

/// POST /contacts/groups: `do` = create (`name`), rename (`name` to
/// `new_name`), delete (`name`; its contacts stay, out of the group).
pub fn groups(ctx: &mut Ctx) -> Result<Response, PageError> {
    let action = ctx.req.field("do").unwrap_or_default().to_string();
    let name = ctx
        .req
        .field("name")
        .and_then(contacts::group_name)
        .ok_or(PageError::Bad("err_group_name"))?;
    let new_name = ctx.req.field("new_name").and_then(contacts::group_name);
    let book = store::load(ctx.imap())?;
    let mut listed = book.listed.clone();
    let done = match action.as_str() {
        "create" => {
            if book.groups.contains(&name) {
                return Err(PageError::Bad("err_group_exists"));
            }
            listed.push(name);
            store::save_groups(ctx.imap(), &listed)?;
            "group_created"
        }
        "rename" | "delete" => {
            if !book.groups.contains(&name) {
                return Err(PageError::NotFound);
            }
            let new_name = if action == "rename" {
                let n = new_name.ok_or(PageError::Bad("err_group_name"))?;
                if n != name && book.groups.contains(&n) {
                    return Err(PageError::Bad("err_group_exists"));
                }
                Some(n)
            } else {
                None
            };
            let mut members: Vec<Contact> = book
                .contacts
                .iter()
                .filter(|c| c.groups.contains(&name))
                .cloned()
                .collect();
            for c in &mut members {
                for g in &mut c.groups {
                    if *g == name {
                        if let Some(n) = &new_name {
                            *g = n.clone();
                        }
                    }
                }
                if new_name.is_none() {
                    c.groups.retain(|g| *g != name);
                }
                c.normalise();
            }
            // The members first: a failure half way leaves the group
            // listed, never members of a group that is not.
            store::save(ctx.imap(), &mut members)?;
            listed.retain(|g| *g != name);
            if let Some(n) = new_name {
                listed.push(n);
            }
            store::save_groups(ctx.imap(), &listed)?;
            if action == "rename" {
                "group_renamed"
            } else {
                "group_deleted"
            }
        }
        _ => return Err(PageError::Bad("err_bad_request")),
    };
    Ok(ctx.redirect(&format!("/contacts?done={done}")))
}

/// POST /contacts/import: an Outlook CSV (English or Chinese headings,
/// UTF-8 or GBK) or a vCard file. The file is read whole first: any error
/// refuses it all, shown on the page with where it is, and nothing is
/// stored. Contacts whose first address the book has already are skipped,
/// so importing the same file twice adds nothing.
pub fn import(ctx: &mut Ctx) -> Result<Response, PageError> {
    let Some(up) = ctx.req.uploads.iter().find(|u| u.field == "file") else {
        return Err(PageError::Bad("err_import_no_file"));
    };
    let parsed = read_file(&up.data);
    let mut list = match parsed {
        Ok(l) => l,
        Err(e) => {
            let error = json!({ "key": e.key(), "at": e.at() });
            return list_page(ctx, 400, Some(error));
        }
    };
    let book = store::load(ctx.imap())?;
    let before = list.len();
    let mut seen: Vec<String> = Vec::new();
    list.retain(|c| {
        let Some(e) = c.email().map(str::to_ascii_lowercase) else {
            return false;
        };
        let fresh = !book.has_address(&e) && !seen.contains(&e);
        seen.push(e);
        fresh
    });
    if book.contacts.len() + list.len() > contacts::MAX_CONTACTS {
        let error = json!({ "key": ImportError::TooMany.key(), "at": 0 });
        return list_page(ctx, 400, Some(error));
    }
    for c in &mut list {
        c.id = String::new();
    }
    let skipped = before - list.len();
    store::save(ctx.imap(), &mut list)?;
    let mut listed = book.listed.clone();
    for c in &list {
        for g in &c.groups {
            if !listed.contains(g) {
                listed.push(g.clone());
            }
        }
    }
    if listed != book.listed {
        store::save_groups(ctx.imap(), &listed)?;
    }
    Ok(ctx.redirect(&format!(
        "/contacts?done=imported&n={}&skipped={skipped}",
        list.len()
    )))
}

/// A file's contacts: a vCard file when it has a BEGIN:VCARD line, else
/// Outlook CSV.
pub fn read_file(data: &[u8]) -> Result<Vec<Contact>, ImportError> {
    let head = &data[..data.len().min(4096)];
    let is_vcard = head
        .windows(11)
        .any(|w| w.eq_ignore_ascii_case(b"BEGIN:VCARD"));
    if is_vcard {
        vcard::import(data)
    } else {
        outlook::import(data)
    }
}

/// GET /contacts/export: `format` = csv (English Outlook, UTF-8), csv-zh
/// (Chinese Outlook, GBK), vcf (4.0) or vcf3; `group` to export one group.
pub fn export(ctx: &mut Ctx) -> Result<Response, PageError> {
    let format = ctx.req.param("format").unwrap_or("vcf").to_string();
    let group = ctx.req.param("group").and_then(contacts::group_name);
    let book = store::load(ctx.imap())?;
    let list: Vec<Contact> = book
        .contacts
        .into_iter()
        .filter(|c| group.as_ref().is_none_or(|g| c.groups.contains(g)))
        .collect();
    let (body, ctype, name) = match format.as_str() {
        "csv" => (
            outlook::export(&list, outlook::Headings::English),
            "text/csv; charset=utf-8",
            "contacts.csv",
        ),
        "csv-zh" => (
            outlook::export(&list, outlook::Headings::Chinese),
            "text/csv; charset=gbk",
            "contacts-zh.csv",
        ),
        "vcf" => (
            vcard::write_all(&list, vcard::Version::V4).into_bytes(),
            "text/vcard; charset=utf-8",
            "contacts.vcf",
        ),
        "vcf3" => (
            vcard::write_all(&list, vcard::Version::V3).into_bytes(),
            "text/vcard; charset=utf-8",
            "contacts-3.0.vcf",
        ),
        _ => return Err(PageError::Bad("err_bad_request")),
    };
    let mut r = Response::html(200, String::new());
    r.body = body;
    r.content_type = ctype.to_string();
    Ok(r.with_header(
        "Content-Disposition",
        &crate::mime::content_disposition("attachment", name),
    ))
}

/// POST /contacts/add-sender: the sender of the open message, in one
/// click. Back to the message, told whether it was added or there already.
pub fn add_sender(ctx: &mut Ctx) -> Result<Response, PageError> {
    let email = ctx
        .req
        .field("email")
        .unwrap_or_default()
        .trim()
        .to_string();
    if !plausible_address(&email) {
        return Err(PageError::Bad("err_contact_bad_email"));
    }
    let name = ctx.req.field("name").unwrap_or_default().to_string();
    let folder = super::mail::check_folder(ctx.req.field("folder"))?;
    let uid = super::mail::check_uid(ctx.req.field("uid"))?;
    let book = store::load(ctx.imap())?;
    let done = if book.has_address(&email) {
        "sender_known"
    } else {
        let mut c = Contact {
            full_name: name,
            emails: vec![email],
            ..Contact::default()
        };
        c.normalise();
        store::save(ctx.imap(), &mut [c])?;
        "sender_added"
    };
    Ok(ctx.redirect(&format!(
        "/read?folder={}&uid={uid}&done={done}",
        url_encode(&folder)
    )))
}

/// POST /contacts/domain: the domain's postmaster adds (`do=add`, `name`,
/// `email`) or removes (`do=delete`, `email`) an entry of the domain's
/// book, kept in their own METADATA. Anyone else is refused.
pub fn domain(ctx: &mut Ctx) -> Result<Response, PageError> {
    if !is_postmaster(ctx) {
        return Err(PageError::Forbidden("err_not_postmaster"));
    }
    let email = ctx
        .req
        .field("email")
        .unwrap_or_default()
        .trim()
        .to_string();
    if !plausible_address(&email) {
        return Err(PageError::Bad("err_contact_bad_email"));
    }
    let action = ctx.req.field("do").unwrap_or_default().to_string();
    let name = ctx.req.field("name").unwrap_or_default().to_string();
    let mut own = store::load_postmaster(ctx.imap())?;
    let had = own.len();
    own.retain(|c| !c.emails.iter().any(|e| e.eq_ignore_ascii_case(&email)));
    let done = match action.as_str() {
        "add" => {
            let mut c = Contact {
                full_name: name,
                emails: vec![email],
                ..Contact::default()
            };
            c.normalise();
            own.push(c);
            "domain_added"
        }
        "delete" if own.len() < had => "domain_removed",
        "delete" => return Err(PageError::NotFound),
        _ => return Err(PageError::Bad("err_bad_request")),
    };
    store::save_postmaster(ctx.imap(), &own)?;
    Ok(ctx.redirect(&format!("/contacts?book=domain&done={done}")))
}

/// Whether the logged-in user is their domain's postmaster.
fn is_postmaster(ctx: &mut Ctx) -> bool {
    ctx.auth()
        .session
        .user
        .rsplit_once('@')
        .is_some_and(|(local, _)| local.eq_ignore_ascii_case("postmaster"))
}

/// What the compose page offers on its address inputs. The compose page
/// works without them: a failure here is logged and offers nothing.
pub fn suggestions(ctx: &mut Ctx) -> Vec<Suggestion> {
    let label = ctx.lang.get("compose_group_label").to_string();
    let got = (|| -> Result<Vec<Suggestion>, PageError> {
        let book = store::load(ctx.imap())?;
        let domain = store::load_directory(ctx.imap())?;
        let recent = complete::load_recent(ctx.imap())?;
        Ok(complete::suggestions(&book, &domain, &recent, &|g, n| {
            label.replace("{name}", g).replace("{n}", &n.to_string())
        }))
    })();
    got.unwrap_or_else(|e| {
        crate::warn!("address suggestions: {e:?}");
        Vec::new()
    })
}

/// The address fields of a message about to be sent, each name of one of
/// the user's groups replaced by its members ("send to a group").
pub fn expand_groups(ctx: &mut Ctx, fields: [&mut String; 3]) -> Result<(), PageError> {
    if !fields.iter().any(|f| {
        complete::split_items(f)
            .iter()
            .any(|i| !i.trim().is_empty() && !i.contains('@'))
    }) {
        return Ok(());
    }
    let book = store::load(ctx.imap())?;
    for f in fields {
        *f = complete::expand_groups(f, &book);
    }
    Ok(())
}

/// Keeps the recipients of a message just sent as recent ones; a failure
/// is logged (the message went).
pub fn record_sent(ctx: &mut Ctx, mailboxes: &[String]) {
    if let Err(e) = complete::record_recipients(ctx.imap(), mailboxes) {
        crate::warn!("recent recipients: {e:?}");
    }
}

/// Every value of form field `name` (checkboxes, repeated inputs).
fn all(req: &super::super::request::Request, name: &str) -> Vec<String> {
    req.form
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

fn check_id(id: &str) -> Result<String, PageError> {
    contacts::valid_id(id)
        .then(|| id.to_string())
        .ok_or(PageError::Bad("err_bad_request"))
}

/// `local@domain` with no space, control character or angle bracket: what
/// a To field can carry (the submission server judges the rest).
pub fn plausible_address(a: &str) -> bool {
    let Some((local, domain)) = a.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && a.len() <= 254
        && !a
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"()[]\\".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_told_apart_and_addresses_checked() {
        let v =
            read_file(b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:A\r\nEMAIL:a@x\r\nEND:VCARD\r\n").unwrap();
        assert_eq!(v[0].emails, ["a@x"]);
        let c = read_file(b"First Name,E-mail Address\r\nAnn,ann@x\r\n").unwrap();
        assert_eq!(c[0].full_name, "Ann");
        assert!(plausible_address("张三@例子.中国"));
        assert!(plausible_address("a.b+c@x.example"));
        assert!(!plausible_address("a b@x"));
        assert!(!plausible_address("<a@x>"));
        assert!(!plausible_address("a@"));
        assert!(!plausible_address("x"));
    }
}
