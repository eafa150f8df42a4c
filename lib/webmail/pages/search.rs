//! Search (GET /search): by sender, recipient, subject, body text and a
//! date range, in one folder or in every folder, with UID SEARCH CHARSET
//! UTF-8 (so Chinese words are found as kmp-imapd decodes the mail). The
//! results name their folder and open in the message page.

use serde_json::{json, Value};

use super::super::app::{Ctx, PageError};
use super::mail;
use crate::imapc::{Criteria, Date, SortKey};

/// Most results shown (newest first in each folder).
pub const MAX_RESULTS: usize = 200;

/// Longest search text, in characters.
const MAX_TEXT: usize = 200;

/// `YYYY-MM-DD` as a search date.
pub fn parse_day(s: &str) -> Option<Date> {
    let mut it = s.trim().splitn(3, '-');
    let y: u16 = it.next()?.parse().ok()?;
    let m: u8 = it.next()?.parse().ok()?;
    let d: u8 = it.next()?.parse().ok()?;
    let ok = (1900..=9999).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d);
    ok.then_some((y, m, d))
}

/// The day after `d` (BEFORE is exclusive; the form's "to" date is not).
fn next_day((y, m, d): Date) -> Date {
    let days = crate::proto::imap::days_from_civil(i64::from(y), u32::from(m), u32::from(d)) + 1;
    let (y, m, d) = crate::proto::imap::civil_from_days(days);
    (y as u16, m as u8, d as u8)
}

/// The criteria of the form; None when nothing was asked.
pub fn criteria(fields: &dyn Fn(&str) -> Option<String>) -> Result<Option<Criteria>, PageError> {
    let mut all = Vec::new();
    for (name, make) in [
        ("from", Criteria::From as fn(String) -> Criteria),
        ("to", Criteria::To),
        ("subject", Criteria::Subject),
        ("body", Criteria::Body),
        ("text", Criteria::Text),
    ] {
        let v = fields(name).unwrap_or_default();
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        if v.chars().count() > MAX_TEXT || v.chars().any(|c| c.is_control()) {
            return Err(PageError::Bad("err_bad_search"));
        }
        all.push(make(v.to_string()));
    }
    for (name, since) in [("since", true), ("until", false)] {
        let v = fields(name).unwrap_or_default();
        if v.trim().is_empty() {
            continue;
        }
        let day = parse_day(&v).ok_or(PageError::Bad("err_bad_date"))?;
        all.push(if since {
            Criteria::Since(day)
        } else {
            Criteria::Before(next_day(day))
        });
    }
    Ok((!all.is_empty()).then_some(Criteria::And(all)))
}

/// GET /search?from=&to=&subject=&body=&since=&until=&in=FOLDER|(empty: all).
pub fn show(ctx: &mut Ctx) -> Result<Response, PageError> {
    let req = ctx.req;
    let get = |k: &str| req.param(k).map(str::to_string);
    let wanted = criteria(&get)?;
    let scope = req.param("in").unwrap_or_default().to_string();
    let folders = ctx.imap().list_names()?;
    let choices = mail::targets(ctx, &folders);
    let mut results: Vec<Value> = Vec::new();
    let mut more = false;
    if let Some(c) = &wanted {
        let names: Vec<String> = if scope.is_empty() {
            folders
                .iter()
                .filter(|f| f.selectable())
                .map(|f| f.name.clone())
                .collect()
        } else {
            let name = mail::check_folder(Some(&scope))?;
            if !folders.iter().any(|f| f.name == name) {
                return Err(PageError::Bad("err_no_folder"));
            }
            vec![name]
        };
        for name in names {
            if results.len() >= MAX_RESULTS {
                more = true;
                break;
            }
            mail::select(ctx, &name, true)?;
            let uids = ctx.imap().sort(SortKey::Date, true, c)?;
            if uids.is_empty() {
                continue;
            }
            let room = MAX_RESULTS - results.len();
            more |= uids.len() > room;
            let take: Vec<u32> = uids.into_iter().take(room).collect();
            let label = mail::folder_label(ctx, &folders, &name);
            let show_to = mail::shows_recipients(&folders, &name);
            let summaries = ctx.imap().summaries(&take)?;
            for mut row in mail::rows(ctx, &summaries, show_to)? {
                if let Value::Object(m) = &mut row {
                    m.insert("folder".into(), json!(name));
                    m.insert("folder_label".into(), json!(label));
                }
                results.push(row);
            }
        }
    }
    let form: Value = ["from", "to", "subject", "body", "text", "since", "until"]
        .iter()
        .map(|k| (k.to_string(), json!(req.param(k).unwrap_or_default())))
        .collect::<serde_json::Map<_, _>>()
        .into();
    ctx.page(
        "search.html",
        json!({
            "form": form,
            "scope": scope,
            "folders": choices,
            "searched": wanted.is_some(),
            "results": results,
            "count": results.len(),
            "more": more,
        }),
    )
}

use super::super::response::Response;

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(pairs: &[(&str, &str)]) -> Result<Option<Criteria>, PageError> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        criteria(&|k: &str| owned.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn the_form_becomes_criteria() {
        assert_eq!(ask(&[]).unwrap(), None);
        assert_eq!(ask(&[("from", "  ")]).unwrap(), None);
        assert_eq!(
            ask(&[
                ("subject", "会议"),
                ("since", "2024-02-28"),
                ("until", "2024-02-29")
            ])
            .unwrap(),
            Some(Criteria::And(vec![
                Criteria::Subject("会议".into()),
                Criteria::Since((2024, 2, 28)),
                Criteria::Before((2024, 3, 1)),
            ]))
        );
        assert!(ask(&[("since", "2024-13-01")]).is_err());
        assert!(ask(&[("until", "yesterday")]).is_err());
        assert!(ask(&[("body", "a\r\nb")]).is_err());
        assert!(ask(&[("body", &"长".repeat(MAX_TEXT + 1))]).is_err());
    }
}
