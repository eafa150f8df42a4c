//! Rules to Sieve (RFC 5228 and the extensions named in `require`).

use super::{Action, Cond, Field, Op, Rule, MARKER};

/// The script for `rules`, in their order. Deterministic: the same rules
/// always give the same text, which is what [`super::recognise`] relies on.
pub fn generate(rules: &[Rule]) -> String {
    let mut out = String::new();
    out.push_str(MARKER);
    out.push('\n');
    out.push_str("# Written by the Kmpromail webmail's rule editor. Changed by hand,\n");
    out.push_str("# it is no longer shown as rules but kept as it is.\n");
    let req = requires(rules);
    if !req.is_empty() {
        out.push_str("require [");
        out.push_str(&req.iter().map(|r| quote(r)).collect::<Vec<_>>().join(", "));
        out.push_str("];\n");
    }
    for r in rules {
        out.push_str(&block(r));
    }
    out
}

/// One rule's part of the script: a blank line, the `# rule` comment
/// with the rule as JSON, the `if` that does it.
pub fn block(r: &Rule) -> String {
    let mut out = String::from("\n# rule ");
    // Invariant: a Rule is plain strings, numbers and enums; serde_json cannot fail on it.
    out.push_str(&serde_json::to_string(r).expect("rule serialises"));
    out.push('\n');
    let test = test_of(r);
    let test = if r.enabled {
        test
    } else {
        format!("allof(false, {test})")
    };
    out.push_str(&format!("if {test} {{\n"));
    for a in &r.actions {
        out.push_str("    ");
        out.push_str(&action(a));
        out.push('\n');
    }
    out.push_str("}\n");
    out
}

/// The extensions the rules use, in a fixed order.
fn requires(rules: &[Rule]) -> Vec<&'static str> {
    let mut need = [false; 8];
    const NAMES: [&str; 8] = [
        "body",
        "copy",
        "enotify",
        "fileinto",
        "imap4flags",
        "reject",
        "vacation",
        "",
    ];
    for r in rules {
        for c in &r.conds {
            if c.field == Field::Body {
                need[0] = true;
            }
        }
        for a in &r.actions {
            match a {
                Action::Move { copy, .. } => {
                    need[3] = true;
                    need[1] |= *copy;
                }
                Action::Forward { keep, .. } => need[1] |= *keep,
                Action::Notify { .. } => need[2] = true,
                Action::MarkRead | Action::Flag => need[4] = true,
                Action::Reject { .. } => need[5] = true,
                Action::Reply { .. } => need[6] = true,
                Action::Discard | Action::Stop => {}
            }
        }
    }
    NAMES
        .iter()
        .zip(need)
        .filter(|(n, on)| *on && !n.is_empty())
        .map(|(n, _)| *n)
        .collect()
}

fn test_of(r: &Rule) -> String {
    match r.conds.len() {
        0 => "true".to_string(),
        1 => cond(&r.conds[0]),
        _ => {
            let all: Vec<String> = r.conds.iter().map(cond).collect();
            format!(
                "{}({})",
                if r.all { "allof" } else { "anyof" },
                all.join(", ")
            )
        }
    }
}

fn cond(c: &Cond) -> String {
    let t = match &c.field {
        Field::Size => {
            let over = c.op == Op::Over;
            format!(
                "size {} {}",
                if over { ":over" } else { ":under" },
                super::parse_size(&c.value).unwrap_or(0)
            )
        }
        field => {
            let (m, key) = match_of(c.op, &c.value);
            match field {
                Field::Body => format!("body :text {m} {}", quote(&key)),
                Field::Header(h) => format!("header {m} {} {}", quote(h), quote(&key)),
                Field::From => format!("header {m} \"from\" {}", quote(&key)),
                Field::To => format!("header {m} \"to\" {}", quote(&key)),
                Field::Cc => format!("header {m} \"cc\" {}", quote(&key)),
                Field::Subject => format!("header {m} \"subject\" {}", quote(&key)),
                Field::Size => String::new(),
            }
        }
    };
    if c.not {
        format!("not {t}")
    } else {
        t
    }
}

/// The match type and key: starts and ends with become `:matches` with
/// the value's own wildcards escaped (RFC 5228 2.7.1).
fn match_of(op: Op, value: &str) -> (&'static str, String) {
    let wild = |v: &str| {
        v.chars().fold(String::new(), |mut s, c| {
            if matches!(c, '*' | '?' | '\\') {
                s.push('\\');
            }
            s.push(c);
            s
        })
    };
    match op {
        Op::Is => (":is", value.to_string()),
        Op::Starts => (":matches", format!("{}*", wild(value))),
        Op::Ends => (":matches", format!("*{}", wild(value))),
        Op::Matches => (":matches", value.to_string()),
        Op::Contains | Op::Over | Op::Under => (":contains", value.to_string()),
    }
}

fn action(a: &Action) -> String {
    match a {
        Action::Move { folder, copy } => format!(
            "fileinto {}{};",
            if *copy { ":copy " } else { "" },
            quote(folder)
        ),
        Action::Forward { to, keep } => {
            format!(
                "redirect {}{};",
                if *keep { ":copy " } else { "" },
                quote(to)
            )
        }
        Action::Reply {
            days,
            subject,
            text,
            addresses,
        } => {
            let mut s = format!("vacation :days {days}");
            if !subject.is_empty() {
                s.push_str(&format!(" :subject {}", quote(subject)));
            }
            if !addresses.is_empty() {
                s.push_str(&format!(" :addresses {}", list(addresses)));
            }
            format!("{s} {};", quote(text))
        }
        Action::Reject { text } => format!("reject {};", quote(text)),
        Action::Discard => "discard;".into(),
        Action::MarkRead => "addflag \"\\\\Seen\";".into(),
        Action::Flag => "addflag \"\\\\Flagged\";".into(),
        Action::Notify { to, text } => {
            let mut s = "notify".to_string();
            if !text.is_empty() {
                s.push_str(&format!(" :message {}", quote(text)));
            }
            format!("{s} {};", quote(&format!("mailto:{to}")))
        }
        Action::Stop => "stop;".into(),
    }
}

fn list(items: &[String]) -> String {
    let q: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", q.join(", "))
}

/// A Sieve quoted string (RFC 5228 2.4.2): `"` and `\` escaped; line
/// ends as CRLF, as the grammar wants inside strings.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}
