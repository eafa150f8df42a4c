//! The folders page: every folder with unread and total counts, the special
//! ones (Inbox, Drafts, Sent, Trash, Junk, by RFC 6154 SPECIAL-USE) first
//! under their translated names, the user's own nested below; create,
//! rename, delete, and empty Trash and Junk.

use serde_json::{json, Value};

use super::super::app::{Ctx, PageError};
use super::super::response::Response;
use crate::imapc::{Criteria, Folder};

/// Longest folder name taken from a form, in characters.
pub const MAX_NAME: usize = 200;

/// The special uses shown first, in order, with their string keys.
const SPECIALS: &[(&str, &str)] = &[
    ("\\Drafts", "folder_drafts"),
    ("\\Sent", "folder_sent"),
    ("\\Trash", "folder_trash"),
    ("\\Junk", "folder_junk"),
    ("\\Archive", "folder_archive"),
];

/// Checks one level of a folder name typed by a user: not empty, no
/// hierarchy delimiter (`.` on kmp-imapd; `/` too), no `..`, no control
/// characters, no IMAP wildcards, at most [`MAX_NAME`] characters.
pub fn check_leaf(leaf: &str, delimiter: Option<char>) -> Result<(), PageError> {
    let bad = leaf.is_empty()
        || leaf.chars().count() > MAX_NAME
        || leaf.trim() != leaf
        || leaf
            .chars()
            .any(|c| c.is_control() || matches!(c, '/' | '\\' | '*' | '%') || Some(c) == delimiter)
        || leaf.contains("..");
    if bad {
        Err(PageError::Bad("err_bad_name"))
    } else {
        Ok(())
    }
}

/// Checks a whole folder name from a form: each level as [`check_leaf`].
pub fn check_folder_name(name: &str, delimiter: Option<char>) -> Result<(), PageError> {
    if name.chars().count() > MAX_NAME * 4 {
        return Err(PageError::Bad("err_bad_name"));
    }
    match delimiter {
        Some(d) => name.split(d).try_for_each(|l| check_leaf(l, Some(d))),
        None => check_leaf(name, None),
    }
}

/// The folder a form names, which must exist.
fn existing<'f>(folders: &'f [Folder], name: &str) -> Result<&'f Folder, PageError> {
    folders
        .iter()
        .find(|f| f.name == name)
        .ok_or(PageError::Bad("err_no_folder"))
}

fn is_inbox(f: &Folder) -> bool {
    f.name.eq_ignore_ascii_case("INBOX")
}

/// The rank of a folder's top level: Inbox, then the specials, then the rest.
fn rank(folders: &[Folder], f: &Folder) -> usize {
    let top = match f.delimiter {
        Some(d) => f.name.split(d).next().unwrap_or(&f.name),
        None => &f.name,
    };
    if top.eq_ignore_ascii_case("INBOX") {
        return 0;
    }
    let special = folders
        .iter()
        .find(|g| g.name == top)
        .and_then(|g| g.special.as_deref());
    match special.and_then(|s| SPECIALS.iter().position(|(a, _)| a.eq_ignore_ascii_case(s))) {
        Some(i) => 1 + i,
        None => 1 + SPECIALS.len(),
    }
}

/// Folders in display order, as template rows.
pub fn rows(ctx: &Ctx, folders: &[Folder]) -> Vec<Value> {
    let mut order: Vec<&Folder> = folders.iter().collect();
    order.sort_by(|a, b| {
        let parts = |f: &Folder| -> Vec<String> {
            match f.delimiter {
                Some(d) => f.name.split(d).map(str::to_lowercase).collect(),
                None => vec![f.name.to_lowercase()],
            }
        };
        (rank(folders, a), parts(a)).cmp(&(rank(folders, b), parts(b)))
    });
    order
        .into_iter()
        .map(|f| {
            let special = f.special.as_deref().and_then(|s| {
                SPECIALS
                    .iter()
                    .find(|(a, _)| a.eq_ignore_ascii_case(s))
                    .map(|(_, k)| *k)
            });
            let leaf = match f.delimiter {
                Some(d) => f.name.rsplit(d).next().unwrap_or(&f.name),
                None => &f.name,
            };
            let depth = f.delimiter.map_or(0, |d| f.name.matches(d).count());
            let label = if is_inbox(f) {
                ctx.lang.get("folder_inbox").to_string()
            } else if let Some(k) = special {
                ctx.lang.get(k).to_string()
            } else {
                leaf.to_string()
            };
            let selectable = !f.attributes.iter().any(|a| {
                a.eq_ignore_ascii_case("\\Noselect") || a.eq_ignore_ascii_case("\\NonExistent")
            });
            let own = !is_inbox(f) && special.is_none();
            json!({
                "name": f.name,
                "label": label,
                "leaf": leaf,
                "depth": depth,
                "indent": depth.min(6),
                "special": special,
                "selectable": selectable,
                "messages": f.status.as_ref().map(|s| s.messages),
                "unseen": f.status.as_ref().map(|s| s.unseen),
                "can_rename": own,
                "can_delete": own,
                "can_empty": matches!(special, Some("folder_trash") | Some("folder_junk")),
            })
        })
        .collect()
}

/// GET /folders.
pub fn show(ctx: &mut Ctx) -> Result<Response, PageError> {
    let folders = ctx.imap().list()?;
    let rows = rows(ctx, &folders);
    let unseen: u64 = folders
        .iter()
        .filter_map(|f| f.status.as_ref())
        .map(|s| u64::from(s.unseen))
        .sum();
    ctx.page(
        "folders.html",
        json!({ "folders": rows, "total_unseen": unseen }),
    )
}

/// The hierarchy delimiter the server uses (`.` on kmp-imapd).
fn delimiter(folders: &[Folder]) -> Option<char> {
    folders.iter().find_map(|f| f.delimiter)
}

/// POST /folders/create: `name` (one level) under `parent` (empty: the top).
pub fn create(ctx: &mut Ctx) -> Result<Response, PageError> {
    let leaf = ctx.req.field("name").unwrap_or_default().trim().to_string();
    let parent = ctx.req.field("parent").unwrap_or_default().to_string();
    let folders = ctx.imap().list()?;
    let d = delimiter(&folders);
    check_leaf(&leaf, d)?;
    let name = if parent.is_empty() {
        leaf
    } else {
        existing(&folders, &parent)?;
        let Some(d) = d else {
            return Err(PageError::Bad("err_bad_name"));
        };
        format!("{parent}{d}{leaf}")
    };
    if folders.iter().any(|f| f.name.eq_ignore_ascii_case(&name)) {
        return Err(PageError::Bad("err_folder_exists"));
    }
    ctx.imap().create(&name, None)?;
    let _ = ctx.imap().subscribe(&name, true);
    Ok(ctx.redirect("/folders?done=created"))
}

/// POST /folders/rename: `folder` gets the last level `name`.
pub fn rename(ctx: &mut Ctx) -> Result<Response, PageError> {
    let from = ctx.req.field("folder").unwrap_or_default().to_string();
    let leaf = ctx.req.field("name").unwrap_or_default().trim().to_string();
    let folders = ctx.imap().list()?;
    let d = delimiter(&folders);
    check_leaf(&leaf, d)?;
    let f = existing(&folders, &from)?;
    if is_inbox(f) || f.special.is_some() {
        return Err(PageError::Bad("err_special_folder"));
    }
    let to = match d.and_then(|d| from.rsplit_once(d).map(|(p, _)| (p, d))) {
        Some((parent, d)) => format!("{parent}{d}{leaf}"),
        None => leaf,
    };
    if to == from {
        return Ok(ctx.redirect("/folders"));
    }
    if folders.iter().any(|f| f.name.eq_ignore_ascii_case(&to)) {
        return Err(PageError::Bad("err_folder_exists"));
    }
    ctx.imap().rename(&from, &to)?;
    let _ = ctx.imap().subscribe(&from, false);
    let _ = ctx.imap().subscribe(&to, true);
    Ok(ctx.redirect("/folders?done=renamed"))
}

/// POST /folders/delete: `folder` and the mail in it.
pub fn delete(ctx: &mut Ctx) -> Result<Response, PageError> {
    let name = ctx.req.field("folder").unwrap_or_default().to_string();
    let folders = ctx.imap().list()?;
    let f = existing(&folders, &name)?;
    if is_inbox(f) || f.special.is_some() {
        return Err(PageError::Bad("err_special_folder"));
    }
    ctx.imap().delete(&name)?;
    let _ = ctx.imap().subscribe(&name, false);
    Ok(ctx.redirect("/folders?done=deleted"))
}

/// POST /folders/empty: removes every message of Trash or Junk.
pub fn empty(ctx: &mut Ctx) -> Result<Response, PageError> {
    let name = ctx.req.field("folder").unwrap_or_default().to_string();
    let folders = ctx.imap().list()?;
    let f = existing(&folders, &name)?;
    let emptiable = f
        .special
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("\\Trash") || s.eq_ignore_ascii_case("\\Junk"));
    if !emptiable {
        return Err(PageError::Bad("err_not_emptiable"));
    }
    let imap = ctx.imap();
    imap.select(&name, false)?;
    let uids = imap.search(&Criteria::All)?;
    if !uids.is_empty() {
        imap.store(&uids, true, &["\\Deleted"])?;
        imap.expunge(&uids)?;
    }
    Ok(ctx.redirect("/folders?done=emptied"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_from_forms_are_checked() {
        let d = Some('.');
        assert!(check_leaf("工作", d).is_ok());
        assert!(check_leaf("報告 2024", d).is_ok());
        for bad in [
            "", "a.b", "../x", "..", "a/b", "a\\b", " x", "x\n", "a*", "a%",
        ] {
            assert!(check_leaf(bad, d).is_err(), "{bad:?}");
        }
        assert!(check_leaf(&"长".repeat(MAX_NAME + 1), d).is_err());
        assert!(check_folder_name("工作.项目", d).is_ok());
        assert!(check_folder_name("工作..项目", d).is_err());
        assert!(check_folder_name("../etc", d).is_err());
    }
}
