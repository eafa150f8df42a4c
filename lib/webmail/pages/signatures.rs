//! The writing settings: POST /settings/compose, and what the settings
//! page shows of them. Kept as JSON in the METADATA entry
//! [`COMPOSE_ENTRY`], beside the other settings.

use serde_json::{json, Value};

use super::super::app::{Ctx, PageError};
use super::super::compose::{
    ComposePrefs, Signature, COMPOSE_ENTRY, MAX_SIGNATURES, MAX_SIGNATURE_LEN,
};
use super::super::response::Response;
use super::compose::compose_prefs;

/// POST /settings/compose: the name, the copy in Sent, the signatures
/// (`sig_name_N`, `sig_text_N`; an empty name and text drop one; the
/// `default` radio). Checked whole; one bad value changes nothing.
pub fn save_settings(ctx: &mut Ctx) -> Result<Response, PageError> {
    let req = ctx.req;
    let name = req.field("from_name").unwrap_or_default().trim();
    if name.chars().count() > 100 || name.chars().any(|c| c.is_control()) {
        return Err(PageError::Bad("err_bad_setting"));
    }
    let mut signatures = Vec::new();
    let mut default_signature = None;
    let chosen = req.field("default_sig");
    for i in 0..=MAX_SIGNATURES {
        let n = req
            .field(&format!("sig_name_{i}"))
            .unwrap_or_default()
            .trim();
        let t = req
            .field(&format!("sig_text_{i}"))
            .unwrap_or_default()
            .replace("\r\n", "\n");
        if n.is_empty() && t.trim().is_empty() {
            continue;
        }
        if n.chars().count() > 100
            || n.chars().any(|c| c.is_control())
            || t.len() > MAX_SIGNATURE_LEN
        {
            return Err(PageError::Bad("err_bad_signature"));
        }
        if signatures.len() == MAX_SIGNATURES {
            return Err(PageError::Bad("err_bad_signature"));
        }
        if chosen == Some(i.to_string().as_str()) {
            default_signature = Some(signatures.len());
        }
        signatures.push(Signature {
            name: if n.is_empty() {
                format!("{}", signatures.len() + 1)
            } else {
                n.to_string()
            },
            text: t.trim_end().to_string(),
        });
    }
    let prefs = ComposePrefs {
        from_name: (!name.is_empty()).then(|| name.to_string()),
        save_sent: req.field("save_sent").is_some(),
        signatures,
        default_signature,
    };
    let text = prefs.to_text();
    ctx.imap()
        .set_metadata("", &[(COMPOSE_ENTRY, Some(text.as_bytes()))])?;
    Ok(ctx.redirect("/settings?done=saved"))
}

/// The compose settings for the settings page.
pub fn settings_vars(ctx: &mut Ctx) -> Result<Value, PageError> {
    let p = compose_prefs(ctx)?;
    Ok(json!({
        "from_name": p.from_name,
        "save_sent": p.save_sent,
        "signatures": p.signatures.iter().map(|s| json!({"name": s.name, "text": s.text})).collect::<Vec<_>>(),
        "default_signature": p.default_signature,
        "max_signatures": MAX_SIGNATURES,
    }))
}
