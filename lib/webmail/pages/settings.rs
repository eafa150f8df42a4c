//! The settings page: page size, language, skin, time zone, the level of
//! the quota warning (read by kmp-local at delivery), kept in the
//! user's METADATA (`state::PREFS_ENTRY`), so every webmail host sees them.

use serde_json::json;

use super::super::app::{Ctx, PageError};
use super::super::imap;
use super::super::lang;
use super::super::response::Response;
use super::super::settings::quota_levels;
use super::super::skin;
use super::super::state::{PAGE_SIZES, TIME_ZONES};

/// GET /settings.
pub fn show(ctx: &mut Ctx) -> Result<Response, PageError> {
    let langs: Vec<_> = ctx
        .langs
        .iter()
        .map(|code| {
            // Each language is named in itself.
            let name = lang::read_own(&ctx.settings.lang_dir, code)
                .ok()
                .and_then(|m| m.get("language_name").cloned())
                .unwrap_or_else(|| code.clone());
            json!({ "code": code, "name": name })
        })
        .collect();
    let prefs = &ctx.auth.as_ref().map(|a| a.prefs.clone());
    let chosen_lang = prefs.as_ref().and_then(|p| p.lang.clone());
    let compose = super::signatures::settings_vars(ctx)?;
    let quota_warning = prefs.as_ref().and_then(|p| p.quota_warning);
    ctx.page(
        "settings.html",
        json!({
            "page_sizes": PAGE_SIZES,
            "time_zones": TIME_ZONES,
            "languages": langs,
            "skins": skin::available(&ctx.settings.skins_dir),
            "chosen_lang": chosen_lang,
            "compose": compose,
            "quota_levels": quota_levels(ctx.settings.quota_warning, ctx.settings.quota_warning_min),
            "quota_default": ctx.settings.quota_warning,
            "quota_warning": quota_warning,
        }),
    )
}

/// POST /settings: every value is checked against what is offered; one bad
/// value refuses the whole form and nothing is stored.
pub fn save(ctx: &mut Ctx) -> Result<Response, PageError> {
    let bad = PageError::Bad("err_bad_setting");
    let mut prefs = ctx.auth().prefs.clone();
    let req = ctx.req;
    let page_size: u32 = req
        .field("page_size")
        .and_then(|v| v.parse().ok())
        .filter(|n| PAGE_SIZES.contains(n))
        .ok_or(PageError::Bad("err_bad_setting"))?;
    let lang = req.field("lang").unwrap_or_default();
    if !lang.is_empty() && !ctx.langs.iter().any(|l| l == lang) {
        return Err(bad);
    }
    let skin_name = req.field("skin").unwrap_or(skin::DEFAULT);
    if !skin::exists(&ctx.settings.skins_dir, skin_name) {
        return Err(PageError::Bad("err_bad_skin"));
    }
    let tz = req.field("tz").unwrap_or("UTC");
    if !TIME_ZONES.contains(&tz) {
        return Err(bad);
    }
    // The quota warning level: empty for the system's, else one offered.
    let quota_warning = match req.field("quota_warning").unwrap_or_default() {
        "" => None,
        v => Some(
            v.parse::<u32>()
                .ok()
                .filter(|n| {
                    quota_levels(ctx.settings.quota_warning, ctx.settings.quota_warning_min)
                        .contains(n)
                })
                .ok_or(PageError::Bad("err_bad_setting"))?,
        ),
    };
    prefs.page_size = page_size;
    prefs.quota_warning = quota_warning;
    prefs.lang = (!lang.is_empty()).then(|| lang.to_string());
    prefs.skin = (skin_name != skin::DEFAULT).then(|| skin_name.to_string());
    prefs.tz = tz.to_string();
    imap::write_prefs(ctx.imap(), &prefs.to_text())?;
    ctx.auth().prefs = prefs;
    Ok(ctx.redirect("/settings?done=saved"))
}
