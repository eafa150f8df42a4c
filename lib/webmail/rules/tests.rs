use super::*;
use crate::sieve::{compile, Extensions};

fn c(field: Field, op: Op, not: bool, value: &str) -> Cond {
    Cond {
        field,
        op,
        not,
        value: value.into(),
    }
}

fn rule(name: &str, all: bool, conds: Vec<Cond>, actions: Vec<Action>) -> Rule {
    Rule {
        name: name.into(),
        enabled: true,
        all,
        conds,
        actions,
    }
}

/// Many rule sets: every field, operator and action, Chinese text,
/// quotes, backslashes, wildcards and line breaks in values.
fn sets() -> Vec<Vec<Rule>> {
    let invoice = rule(
        "发票",
        true,
        vec![c(Field::Subject, Op::Contains, false, "发票")],
        vec![Action::Move {
            folder: "财务".into(),
            copy: false,
        }],
    );
    let mut disabled = rule(
        "off",
        false,
        vec![
            c(Field::From, Op::Ends, false, "@example.com"),
            c(Field::To, Op::Starts, true, "sales*"),
        ],
        vec![Action::Discard],
    );
    disabled.enabled = false;
    let all_kinds = rule(
        "全部 \"quoted\" \\ back",
        false,
        vec![
            c(Field::Cc, Op::Is, false, "a@b.c"),
            c(
                Field::Header("X-Spam-Flag".into()),
                Op::Matches,
                false,
                "YES*",
            ),
            c(Field::Body, Op::Contains, true, "退订\\?"),
            c(Field::Size, Op::Over, false, "100K"),
            c(Field::Size, Op::Under, false, "2M"),
            c(Field::Subject, Op::Ends, false, "*?\\"),
        ],
        vec![
            Action::MarkRead,
            Action::Flag,
            Action::Move {
                folder: "Archive/2026 年".into(),
                copy: true,
            },
            Action::Forward {
                to: "boss@example.net".into(),
                keep: true,
            },
            Action::Notify {
                to: "13800138000@sms.example.cn".into(),
                text: "新邮件".into(),
            },
            Action::Stop,
        ],
    );
    let away = rule(
        "away",
        true,
        vec![],
        vec![Action::Reply {
            days: 7,
            subject: "休假中 / on leave".into(),
            text: "我在休假。\nBack on Monday.\n\"Quoted\" \\ too".into(),
            addresses: vec!["u@example.test".into(), "alias@example.test".into()],
        }],
    );
    let refuse = rule(
        "no",
        true,
        vec![c(Field::From, Op::Contains, false, "spammer")],
        vec![Action::Reject {
            text: "不收。\n# rule {\"name\":\"x\"}\nNo.".into(),
        }],
    );
    let plain_forward = rule(
        "fw",
        true,
        vec![c(Field::To, Op::Is, false, "")],
        vec![Action::Forward {
            to: "x@y.z".into(),
            keep: false,
        }],
    );
    vec![
        vec![],
        vec![invoice.clone()],
        vec![disabled.clone(), invoice.clone()],
        vec![all_kinds.clone()],
        vec![away.clone(), refuse.clone()],
        vec![invoice, disabled, all_kinds, away, refuse, plain_forward],
    ]
}

#[test]
fn every_rule_set_round_trips_and_compiles() {
    for rules in sets() {
        for r in &rules {
            r.check().unwrap_or_else(|e| panic!("{e:?} for {r:?}"));
        }
        let script = generate(&rules);
        assert!(script.starts_with(MARKER));
        if let Err(e) = compile(&script, &Extensions::all()) {
            panic!("{e}\n{script}");
        }
        assert_eq!(recognise(&script).as_ref(), Some(&rules), "{script}");
        // As ManageSieve may hand it back, with CRLF.
        let crlf = script.replace('\n', "\r\n");
        assert_eq!(recognise(&crlf).as_ref(), Some(&rules));
    }
}

#[test]
fn a_script_changed_by_hand_or_written_by_hand_is_not_recognised() {
    let rules = sets().pop().unwrap();
    let script = generate(&rules);
    // Another action slipped in.
    let edited = script.replacen("discard;", "discard;\n    keep;", 1);
    assert_ne!(edited, script);
    assert_eq!(recognise(&edited), None);
    // A rule's comment changed but not its code.
    let edited = script.replacen("\"value\":\"发票\"", "\"value\":\"收据\"", 1);
    assert_ne!(edited, script);
    assert_eq!(recognise(&edited), None);
    // A rule removed from the code only.
    let cut = script.rfind("\nif ").unwrap();
    assert_eq!(recognise(&script[..cut]), None);
    assert_eq!(recognise(""), None);
    assert_eq!(
        recognise(
            "require \"fileinto\";\nif header :contains \"subject\" \"x\" { fileinto \"y\"; }\n"
        ),
        None
    );
}

#[test]
fn starts_and_ends_with_escape_the_values_wildcards() {
    let r = rule(
        "w",
        true,
        vec![c(Field::Subject, Op::Starts, false, "a*b?c\\")],
        vec![Action::Stop],
    );
    let s = generate(&[r]);
    assert!(
        s.contains(r#"header :matches "subject" "a\\*b\\?c\\\\*""#),
        "{s}"
    );
}

#[test]
fn disabled_rules_never_match_but_keep_their_place() {
    let mut r = rule(
        "d",
        true,
        vec![c(Field::Subject, Op::Contains, false, "x")],
        vec![Action::Discard],
    );
    r.enabled = false;
    let s = generate(&[r]);
    assert!(s.contains("if allof(false, header :contains \"subject\" \"x\") {"));
}

#[test]
fn bad_rules_are_refused() {
    let bad = [
        rule("x", true, vec![], vec![]),
        rule(
            "x",
            true,
            vec![c(Field::Size, Op::Contains, false, "1K")],
            vec![Action::Stop],
        ),
        rule(
            "x",
            true,
            vec![c(Field::Size, Op::Over, false, "lots")],
            vec![Action::Stop],
        ),
        rule(
            "x",
            true,
            vec![c(Field::Header("Bad:Name".into()), Op::Is, false, "x")],
            vec![Action::Stop],
        ),
        rule(
            "x",
            true,
            vec![c(Field::Subject, Op::Over, false, "1")],
            vec![Action::Stop],
        ),
        rule(
            "x",
            true,
            vec![],
            vec![Action::Forward {
                to: "no address".into(),
                keep: false,
            }],
        ),
        rule(
            "x",
            true,
            vec![],
            vec![Action::Notify {
                to: "a@b.c?body=x".into(),
                text: String::new(),
            }],
        ),
        rule(
            "x",
            true,
            vec![],
            vec![Action::Move {
                folder: String::new(),
                copy: false,
            }],
        ),
        rule(
            "x",
            true,
            vec![],
            vec![Action::Reply {
                days: 0,
                subject: String::new(),
                text: "t".into(),
                addresses: vec![],
            }],
        ),
        rule("a\nb", true, vec![], vec![Action::Stop]),
    ];
    for r in bad {
        assert!(r.check().is_err(), "{r:?}");
    }
    assert_eq!(parse_size("10K"), Some(10 << 10));
    assert_eq!(parse_size("3m"), Some(3 << 20));
    assert_eq!(parse_size("12"), Some(12));
    assert_eq!(parse_size("K"), None);
    assert_eq!(parse_size("1T"), None);
    assert_eq!(parse_size("3G"), Some(3 << 30));
    assert_eq!(parse_size("4G"), None);
    assert_eq!(parse_size("4294967296"), None);
}

#[test]
fn every_field_operator_and_action_round_trips_one_by_one_and_all_together() {
    let fields = [
        Field::From,
        Field::To,
        Field::Cc,
        Field::Subject,
        Field::Header("List-Id".into()),
        Field::Header("X-Spam-Status".into()),
        Field::Body,
    ];
    let ops = [Op::Contains, Op::Is, Op::Starts, Op::Ends, Op::Matches];
    let values = [
        "发票",
        "會議",
        "汉字 GBK",
        "a\"b\\c",
        "*?",
        "Re: [list] 通知",
    ];
    let actions = [
        Action::Move {
            folder: "财务/2026".into(),
            copy: false,
        },
        Action::Move {
            folder: "會計".into(),
            copy: true,
        },
        Action::Forward {
            to: "a@example.cn".into(),
            keep: false,
        },
        Action::Forward {
            to: "b@example.tw".into(),
            keep: true,
        },
        Action::Reply {
            days: 1,
            subject: String::new(),
            text: "自动回复".into(),
            addresses: vec![],
        },
        Action::Reject {
            text: "拒收".into(),
        },
        Action::Discard,
        Action::MarkRead,
        Action::Flag,
        Action::Notify {
            to: "sms@gw.example.cn".into(),
            text: String::new(),
        },
        Action::Stop,
    ];
    let mut all = Vec::new();
    let mut n = 0;
    for (fi, f) in fields.iter().enumerate() {
        for (oi, op) in ops.iter().enumerate() {
            for not in [false, true] {
                let value = values[(fi + oi) % values.len()];
                let action = actions[n % actions.len()].clone();
                let mut r = rule(
                    &format!("规则 {n}"),
                    n % 2 == 0,
                    vec![c(f.clone(), *op, not, value)],
                    vec![action],
                );
                r.enabled = n % 5 != 0;
                n += 1;
                let one = vec![r.clone()];
                let script = generate(&one);
                if let Err(e) = compile(&script, &Extensions::all()) {
                    panic!("{e}\n{script}");
                }
                assert_eq!(recognise(&script), Some(one), "{script}");
                all.push(r);
            }
        }
    }
    for size in [
        c(Field::Size, Op::Over, false, "1"),
        c(Field::Size, Op::Under, true, "3G"),
    ] {
        all.push(rule("size", false, vec![size], vec![Action::Flag]));
    }
    // Every condition in one rule, any-of and all-of.
    let mut conds: Vec<Cond> = all.iter().flat_map(|r| r.conds.clone()).collect();
    conds.truncate(MAX_PARTS);
    all.push(rule(
        "all",
        true,
        conds.clone(),
        actions[..MAX_PARTS].to_vec(),
    ));
    all.push(rule("any", false, conds, vec![Action::Stop]));
    let script = generate(&all);
    if let Err(e) = compile(&script, &Extensions::all()) {
        panic!("{e}\n{script}");
    }
    assert_eq!(recognise(&script), Some(all));
}
