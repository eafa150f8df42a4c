//! The rule editor: GET /rules, POST /rules/add, /rules/act, /rules/script,
//! /rules/editor.
//!
//! Everything is read and written over ManageSieve (`webmail.managesieve`)
//! with the session's login, never from files. The editor owns one script,
//! [`SCRIPT_NAME`]. When another script is active, or the editor's was
//! changed by hand, the page shows that script as text with a syntax check
//! (CHECKSCRIPT) and stores it only when the user saves it: the editor
//! never rewrites a script it cannot show as rules.
//!
//! A refusal of the server (a quota, a syntax error with its line) is
//! shown on the page above what the user typed, which is sent back.

use serde_json::{json, Map, Value};

use super::super::app::{Ctx, PageError};
use super::super::managesieve::{Client, Error, Login};
use super::super::response::Response;
use super::super::rules::{
    generate, recognise, Action, Cond, Field, Invalid, Op, Rule, MAX_RULES, SCRIPT_NAME,
};

/// Condition rows of the add form.
pub const FORM_CONDS: usize = 3;
/// The most condition rows the form grows to ("another condition"): as
/// many as a rule may hold.
pub const MAX_FORM_CONDS: usize = crate::webmail::rules::MAX_PARTS;

/// The user's scripts as the page shows them.
enum Loaded {
    /// The editor's script (or none yet): its rules, and whether it is active.
    Rules(Vec<Rule>, bool),
    /// A script the editor cannot show.
    Foreign { name: String, text: String },
}

/// Every field of the add form, to send back what was typed.
fn form_fields() -> Vec<String> {
    let mut v: Vec<String> = [
        "name",
        "match",
        "enabled",
        "action",
        "folder",
        "to",
        "text",
        "days",
        "subject",
        "addresses",
        "seen",
        "flagged",
        "stop",
        "rows",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for i in 0..MAX_FORM_CONDS {
        for f in ["field", "header", "op", "value", "not"] {
            v.push(format!("{f}_{i}"));
        }
    }
    v
}

fn connect(ctx: &mut Ctx) -> Result<Client, PageError> {
    let s = ctx.settings;
    let auth = ctx.auth();
    let login = Login {
        server: &s.managesieve,
        ca_file: s.imap_ca_file.as_deref(),
        timeout: s.imap_timeout,
        user: &auth.session.user,
        password: &auth.session.password,
    };
    Client::login(&login).map_err(fatal)
}

/// A ManageSieve error that ends the request (not a refusal to show).
fn fatal(e: Error) -> PageError {
    match e {
        Error::Auth => PageError::Forbidden("err_login_failed"),
        Error::No { code, text } => PageError::Refused(match code {
            Some(c) => format!("({c}) {text}"),
            None => text,
        }),
        Error::Unavailable(d) => PageError::Unavailable(d),
    }
}

fn load(ms: &mut Client) -> Result<Loaded, Error> {
    let list = ms.list()?;
    if let Some(a) = list.iter().find(|s| s.active && s.name != SCRIPT_NAME) {
        let text = ms.get(&a.name)?;
        return Ok(Loaded::Foreign {
            name: a.name.clone(),
            text,
        });
    }
    match list.iter().find(|s| s.name == SCRIPT_NAME) {
        None => Ok(Loaded::Rules(Vec::new(), false)),
        Some(mine) => {
            let text = ms.get(SCRIPT_NAME)?;
            match recognise(&text) {
                Some(rules) => Ok(Loaded::Rules(rules, mine.active)),
                None => Ok(Loaded::Foreign {
                    name: SCRIPT_NAME.to_string(),
                    text,
                }),
            }
        }
    }
}

/// GET /rules.
pub fn show(ctx: &mut Ctx) -> Result<Response, PageError> {
    let mut ms = connect(ctx)?;
    let loaded = load(&mut ms).map_err(fatal)?;
    ms.logout();
    // ?edit=N: the form filled with rule N, to be saved in its place.
    let edit = ctx.req.param("edit").and_then(|i| i.parse::<usize>().ok());
    let form = match (&loaded, edit) {
        (Loaded::Rules(rules, _), Some(i)) => rules
            .get(i)
            .and_then(|r| form_of(r, i))
            .unwrap_or(Value::Null),
        _ => Value::Null,
    };
    render(ctx, 200, &loaded, None, None, form)
}

/// The add form filled with `rule` (number `index`), or None when the
/// rule holds more than the form can (more conditions than its rows,
/// actions in another order).
fn form_of(rule: &Rule, index: usize) -> Option<Value> {
    let mut m = Map::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_string(), Value::String(v));
    };
    put("index", index.to_string());
    put("name", rule.name.clone());
    put("match", if rule.all { "all" } else { "any" }.into());
    if rule.enabled {
        put("enabled", "1".into());
    }
    if rule.conds.len() > MAX_FORM_CONDS {
        return None;
    }
    put("rows", rule.conds.len().max(FORM_CONDS).to_string());
    for (i, c) in rule.conds.iter().enumerate() {
        let field = match &c.field {
            Field::From => "from",
            Field::To => "to",
            Field::Cc => "cc",
            Field::Subject => "subject",
            Field::Body => "body",
            Field::Size => "size",
            Field::Header(h) => {
                put(&format!("header_{i}"), h.clone());
                "header"
            }
        };
        put(&format!("field_{i}"), field.into());
        let (op, not) = match (c.op, c.not) {
            (Op::Contains, true) => ("notcontains", false),
            (Op::Contains, false) => ("contains", false),
            (Op::Is, n) => ("is", n),
            (Op::Starts, n) => ("starts", n),
            (Op::Ends, n) => ("ends", n),
            (Op::Matches, n) => ("matches", n),
            (Op::Over, n) => ("over", n),
            (Op::Under, n) => ("under", n),
        };
        put(&format!("op_{i}"), op.into());
        if not {
            put(&format!("not_{i}"), "1".into());
        }
        put(&format!("value_{i}"), c.value.clone());
    }
    let mut primary = None;
    for a in &rule.actions {
        match a {
            Action::MarkRead => put("seen", "1".into()),
            Action::Flag => put("flagged", "1".into()),
            Action::Stop => put("stop", "1".into()),
            other if primary.is_none() => primary = Some(other),
            _ => return None,
        }
    }
    let action = match primary {
        None => "none",
        Some(Action::Move { folder, copy }) => {
            put("folder", folder.clone());
            if *copy {
                "copy"
            } else {
                "move"
            }
        }
        Some(Action::Forward { to, keep }) => {
            put("to", to.clone());
            if *keep {
                "forward_keep"
            } else {
                "forward"
            }
        }
        Some(Action::Reply {
            days,
            subject,
            text,
            addresses,
        }) => {
            put("days", days.to_string());
            put("subject", subject.clone());
            put("text", text.clone());
            put("addresses", addresses.join(", "));
            "reply"
        }
        Some(Action::Reject { text }) => {
            put("text", text.clone());
            "reject"
        }
        Some(Action::Discard) => "discard",
        Some(Action::Notify { to, text }) => {
            put("to", to.clone());
            put("subject", text.clone());
            "notify"
        }
        Some(_) => return None,
    };
    put("action", action.into());
    // The form puts flags first and stop last: a rule in another order
    // would not come back the same.
    let mut wanted = Vec::new();
    if m.contains_key("seen") {
        wanted.push(Action::MarkRead);
    }
    if m.contains_key("flagged") {
        wanted.push(Action::Flag);
    }
    wanted.extend(primary.cloned());
    if m.contains_key("stop") {
        wanted.push(Action::Stop);
    }
    (wanted == rule.actions).then_some(Value::Object(m))
}

/// POST /rules/add: a rule from the form, added at the end, or put in
/// the place of rule `index` when the form edited one.
pub fn add(ctx: &mut Ctx) -> Result<Response, PageError> {
    let mut typed = typed_form(ctx);
    // "Another condition": the same form with one more row, nothing saved.
    if ctx.req.field("more").is_some() {
        let rows = (form_rows(&typed) + 1).min(MAX_FORM_CONDS);
        typed["rows"] = Value::String(rows.to_string());
        let mut ms = connect(ctx)?;
        let loaded = load(&mut ms).map_err(fatal)?;
        ms.logout();
        return render(ctx, 200, &loaded, None, None, typed);
    }
    let rule = match rule_from_form(ctx) {
        Ok(r) => r,
        Err(Invalid(key)) => {
            let msg = ctx.lang.get(key).to_string();
            return rerender(ctx, Some(msg), typed);
        }
    };
    let replace = ctx.req.field("index").and_then(|i| i.parse::<usize>().ok());
    change(ctx, typed, |rules| match replace {
        Some(i) => {
            let slot = rules.get_mut(i).ok_or(Invalid("err_rule_gone"))?;
            *slot = rule;
            Ok(())
        }
        None if rules.len() >= MAX_RULES => Err(Invalid("err_rule_too_big")),
        None => {
            rules.push(rule);
            Ok(())
        }
    })
}

/// POST /rules/act: `op` up, down, toggle or delete on rule `index`.
pub fn act(ctx: &mut Ctx) -> Result<Response, PageError> {
    let i: usize = ctx
        .req
        .field("index")
        .and_then(|i| i.parse().ok())
        .ok_or(PageError::Bad("err_bad_request"))?;
    let op = ctx.req.field("op").unwrap_or_default().to_string();
    change(ctx, Value::Null, |rules| {
        if i >= rules.len() {
            return Err(Invalid("err_rule_gone"));
        }
        match op.as_str() {
            "up" if i > 0 => rules.swap(i, i - 1),
            "down" if i + 1 < rules.len() => rules.swap(i, i + 1),
            "up" | "down" => {}
            "toggle" => rules[i].enabled = !rules[i].enabled,
            "delete" => {
                rules.remove(i);
            }
            _ => return Err(Invalid("err_bad_request")),
        }
        Ok(())
    })
}

/// Reads the editor's rules again, applies `f`, writes the script and
/// makes it active. Refused (nothing written) when the script is not the
/// editor's any more.
fn change(
    ctx: &mut Ctx,
    typed: Value,
    f: impl FnOnce(&mut Vec<Rule>) -> Result<(), Invalid>,
) -> Result<Response, PageError> {
    let mut ms = connect(ctx)?;
    let loaded = load(&mut ms).map_err(fatal)?;
    let Loaded::Rules(mut rules, active) = loaded else {
        let msg = ctx.lang.get("err_rules_foreign").to_string();
        ms.logout();
        return render(ctx, 409, &loaded, Some(msg), None, typed);
    };
    if let Err(Invalid(key)) = f(&mut rules) {
        let msg = ctx.lang.get(key).to_string();
        ms.logout();
        return render(
            ctx,
            400,
            &Loaded::Rules(rules, active),
            Some(msg),
            None,
            typed,
        );
    }
    let script = generate(&rules);
    let written = ms.put(SCRIPT_NAME, &script).and_then(|_| {
        if active {
            Ok(())
        } else {
            ms.set_active(SCRIPT_NAME)
        }
    });
    match written {
        Ok(()) => {
            ms.logout();
            Ok(ctx.redirect("/rules?done=rules"))
        }
        Err(Error::No { code, text }) => {
            // Shown with the rules as they are stored, the form as typed.
            let loaded = load(&mut ms).map_err(fatal)?;
            ms.logout();
            render(
                ctx,
                400,
                &loaded,
                Some(refusal(ctx, code, text)),
                None,
                typed,
            )
        }
        Err(e) => Err(fatal(e)),
    }
}

/// POST /rules/script: `op` check or save of the script `name` as typed.
pub fn script(ctx: &mut Ctx) -> Result<Response, PageError> {
    let name = ctx.req.field("name").unwrap_or_default().to_string();
    let text = ctx
        .req
        .field("text")
        .unwrap_or_default()
        .replace("\r\n", "\n");
    let op = ctx.req.field("op").unwrap_or_default().to_string();
    if name.is_empty() || name.chars().count() > 128 || name.chars().any(|c| c.is_control()) {
        return Err(PageError::Bad("err_bad_request"));
    }
    let mut ms = connect(ctx)?;
    let result = match op.as_str() {
        "check" => ms.check(&text),
        "save" => ms.put(&name, &text),
        _ => return Err(PageError::Bad("err_bad_request")),
    };
    ms.logout();
    let foreign = Loaded::Foreign {
        name: name.clone(),
        text,
    };
    match result {
        Ok(()) if op == "save" => Ok(ctx.redirect("/rules?done=script")),
        Ok(()) => {
            let ok = ctx.lang.get("rules_check_ok").to_string();
            render(ctx, 200, &foreign, None, Some(ok), Value::Null)
        }
        Err(Error::No { code, text }) => {
            let msg = refusal(ctx, code, text);
            render(ctx, 400, &foreign, Some(msg), None, Value::Null)
        }
        Err(e) => Err(fatal(e)),
    }
}

/// POST /rules/editor: makes the editor's script the active one (an
/// empty one when there is none yet). The script that was active stays
/// stored as it is, inactive; an editor's script changed by hand is not
/// taken over.
pub fn use_editor(ctx: &mut Ctx) -> Result<Response, PageError> {
    let mut ms = connect(ctx)?;
    let list = ms.list().map_err(fatal)?;
    if list.iter().any(|s| s.name == SCRIPT_NAME) {
        let text = ms.get(SCRIPT_NAME).map_err(fatal)?;
        if recognise(&text).is_none() {
            ms.logout();
            let msg = ctx.lang.get("err_rules_foreign").to_string();
            let loaded = Loaded::Foreign {
                name: SCRIPT_NAME.to_string(),
                text,
            };
            return render(ctx, 409, &loaded, Some(msg), None, Value::Null);
        }
    } else if let Err(e) = ms.put(SCRIPT_NAME, &generate(&[])) {
        ms.logout();
        return Err(fatal(e));
    }
    let r = ms.set_active(SCRIPT_NAME);
    ms.logout();
    r.map_err(fatal)?;
    Ok(ctx.redirect("/rules?done=rules"))
}

/// The server's refusal in the user's words where we know the code.
fn refusal(ctx: &Ctx, code: Option<String>, text: String) -> String {
    match code.as_deref().map(|c| c.to_ascii_uppercase()) {
        Some(c) if c.starts_with("QUOTA") => {
            format!("{} ({text})", ctx.lang.get("err_rules_quota"))
        }
        _ => format!("{} {text}", ctx.lang.get("err_rules_refused")),
    }
}

/// The page again with `error`, loading the scripts afresh.
fn rerender(ctx: &mut Ctx, error: Option<String>, typed: Value) -> Result<Response, PageError> {
    let mut ms = connect(ctx)?;
    let loaded = load(&mut ms).map_err(fatal)?;
    ms.logout();
    render(ctx, 400, &loaded, error, None, typed)
}

fn render(
    ctx: &mut Ctx,
    status: u16,
    loaded: &Loaded,
    error: Option<String>,
    notice: Option<String>,
    typed: Value,
) -> Result<Response, PageError> {
    let folders: Vec<String> = ctx
        .imap()
        .list()?
        .into_iter()
        .filter(|f| {
            !f.attributes
                .iter()
                .any(|a| a.eq_ignore_ascii_case("\\Noselect"))
        })
        .map(|f| f.name)
        .collect();
    let (rules, active, foreign) = match loaded {
        Loaded::Rules(r, a) => (r.clone(), *a, Value::Null),
        Loaded::Foreign { name, text } => (
            Vec::new(),
            false,
            json!({"name": name, "text": text, "mine": name == SCRIPT_NAME}),
        ),
    };
    let form = if typed.is_null() {
        json!({"enabled": "1", "match": "all", "days": "7"})
    } else {
        typed
    };
    ctx.page_status(
        status,
        "rules.html",
        json!({
            "rules": rules,
            "active": active,
            "foreign": foreign,
            "folders": folders,
            "error": error,
            "notice": notice,
            "form": form,
            "form_conds": (0..form_rows(&form)).collect::<Vec<_>>(),
            "max_conds": MAX_FORM_CONDS,
            "script_name": SCRIPT_NAME,
        }),
    )
}

/// How many condition rows the form shows: what it asks for (`rows`),
/// at least enough for the conditions it holds, within the bounds.
fn form_rows(form: &Value) -> usize {
    let asked = form["rows"]
        .as_str()
        .and_then(|r| r.parse::<usize>().ok())
        .unwrap_or(0);
    let used = (0..MAX_FORM_CONDS)
        .rfind(|i| {
            form[format!("field_{i}")]
                .as_str()
                .is_some_and(|f| !f.is_empty())
        })
        .map_or(0, |i| i + 1);
    asked.max(used).clamp(FORM_CONDS, MAX_FORM_CONDS)
}

/// What was typed into the add form, to fill it again.
fn typed_form(ctx: &Ctx) -> Value {
    let mut m = Map::new();
    for f in form_fields() {
        if let Some(v) = ctx.req.field(&f) {
            m.insert(f, Value::String(v.to_string()));
        }
    }
    Value::Object(m)
}

/// The rule the add form describes, checked.
fn rule_from_form(ctx: &Ctx) -> Result<Rule, Invalid> {
    let req = ctx.req;
    let get = |k: &str| req.field(k).unwrap_or_default().trim().to_string();
    let mut conds = Vec::new();
    for i in 0..MAX_FORM_CONDS {
        let field = match get(&format!("field_{i}")).as_str() {
            "" => continue,
            "from" => Field::From,
            "to" => Field::To,
            "cc" => Field::Cc,
            "subject" => Field::Subject,
            "body" => Field::Body,
            "size" => Field::Size,
            "header" => Field::Header(get(&format!("header_{i}"))),
            _ => return Err(Invalid("err_bad_request")),
        };
        let mut not = req.field(&format!("not_{i}")).is_some();
        let op = match get(&format!("op_{i}")).as_str() {
            "contains" => Op::Contains,
            "notcontains" => {
                not = !not;
                Op::Contains
            }
            "is" => Op::Is,
            "starts" => Op::Starts,
            "ends" => Op::Ends,
            "matches" => Op::Matches,
            "over" => Op::Over,
            "under" => Op::Under,
            _ => return Err(Invalid("err_bad_request")),
        };
        conds.push(Cond {
            field,
            op,
            not,
            value: get(&format!("value_{i}")),
        });
    }
    let mut actions = Vec::new();
    if req.field("seen").is_some() {
        actions.push(Action::MarkRead);
    }
    if req.field("flagged").is_some() {
        actions.push(Action::Flag);
    }
    let text = req
        .field("text")
        .unwrap_or_default()
        .replace("\r\n", "\n")
        .trim_end()
        .to_string();
    let primary = match get("action").as_str() {
        "" | "none" => None,
        "move" | "copy" => Some(Action::Move {
            folder: get("folder"),
            copy: get("action") == "copy",
        }),
        "forward" | "forward_keep" => Some(Action::Forward {
            to: get("to"),
            keep: get("action") == "forward_keep",
        }),
        "reply" => Some(Action::Reply {
            days: get("days").parse().map_err(|_| Invalid("err_rule_days"))?,
            subject: get("subject"),
            text,
            addresses: get("addresses")
                .split([',', ' ', ';'])
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
        }),
        "reject" => Some(Action::Reject { text }),
        "discard" => Some(Action::Discard),
        "notify" => Some(Action::Notify {
            to: get("to"),
            text: get("subject"),
        }),
        _ => return Err(Invalid("err_bad_request")),
    };
    actions.extend(primary);
    if req.field("stop").is_some() {
        actions.push(Action::Stop);
    }
    let mut name = get("name");
    if name.is_empty() {
        name = ctx.lang.get("rules_unnamed").to_string();
    }
    let rule = Rule {
        name,
        enabled: req.field("enabled").is_some(),
        all: get("match") != "any",
        conds,
        actions,
    };
    rule.check()?;
    Ok(rule)
}
