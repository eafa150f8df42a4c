//! The mailbox's use (GET /quota): the quota of the user's quota root
//! (GETQUOTAROOT INBOX, RFC 9208: STORAGE in KiB, MESSAGE in messages) as
//! a bar, and every folder's size, message and unread counts (LIST-STATUS
//! or STATUS with SIZE, RFC 8438) with the totals. The bars are HTML
//! `<meter>` elements: no script and no inline style are needed, so the
//! page keeps the strict policy of every page.

use serde_json::json;

use super::super::app::{Ctx, PageError};
use super::super::response::Response;
use super::mail;

/// Percent of `limit` that `usage` is, rounded down, at most 100.
pub fn percent(usage: u64, limit: u64) -> u64 {
    usage
        .saturating_mul(100)
        .checked_div(limit)
        .map_or(0, |p| p.min(100))
}

/// GET /quota.
pub fn show(ctx: &mut Ctx) -> Result<Response, PageError> {
    let quotas = ctx.imap().quota_root("INBOX")?;
    let folders = ctx.imap().list()?;
    let resources: Vec<_> = quotas
        .iter()
        .map(|q| {
            let storage = q.resource == "STORAGE";
            let (usage, limit) = if storage {
                (q.usage.saturating_mul(1024), q.limit.saturating_mul(1024))
            } else {
                (q.usage, q.limit)
            };
            json!({
                "resource": q.resource,
                "storage": storage,
                "usage": usage,
                "limit": limit,
                "usage_text": if storage { mail::human_size(usage) } else { usage.to_string() },
                "limit_text": if storage { mail::human_size(limit) } else { limit.to_string() },
                "percent": percent(usage, limit),
                "high": limit.saturating_mul(8) / 10,
                "full": usage >= limit,
            })
        })
        .collect();
    let total_size: u64 = folders.iter().filter_map(|f| f.status.as_ref()?.size).sum();
    let mut rows = Vec::new();
    let (mut messages, mut unseen) = (0u64, 0u64);
    for f in folders.iter().filter(|f| f.selectable()) {
        let st = f.status.unwrap_or_default();
        messages += u64::from(st.messages);
        unseen += u64::from(st.unseen);
        let size = st.size.unwrap_or(0);
        rows.push(json!({
            "name": f.name,
            "label": mail::folder_label(ctx, &folders, &f.name),
            "messages": st.messages,
            "unseen": st.unseen,
            "size": size,
            "size_text": mail::human_size(size),
            "percent": percent(size, total_size),
        }));
    }
    ctx.page(
        "quota.html",
        json!({
            "resources": resources,
            "folders": rows,
            "total_size": total_size,
            "total_size_text": mail::human_size(total_size),
            "total_messages": messages,
            "total_unseen": unseen,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_are_bounded() {
        assert_eq!(percent(0, 0), 0);
        assert_eq!(percent(50, 200), 25);
        assert_eq!(percent(300, 200), 100);
        assert_eq!(percent(u64::MAX, 3), 100);
    }
}
