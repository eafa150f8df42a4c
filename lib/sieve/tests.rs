//! Unit tests: each construct and extension, limits, vacation's rules, and
//! the positions of errors in bad scripts.

use super::*;

struct TestEnv {
    own: Vec<String>,
    boxes: Vec<String>,
    seen: Vec<String>,
    replied: bool,
    spam: Option<u32>,
    virus: Option<u32>,
}

impl Default for TestEnv {
    fn default() -> TestEnv {
        TestEnv {
            own: vec!["me@example.com".into()],
            boxes: vec!["INBOX".into(), "Work".into()],
            seen: Vec::new(),
            replied: false,
            spam: None,
            virus: None,
        }
    }
}

impl Env for TestEnv {
    fn own_addresses(&self) -> Vec<String> {
        self.own.clone()
    }
    fn mailbox_exists(&mut self, name: &str) -> bool {
        self.boxes.iter().any(|b| b == name)
    }
    fn duplicate_seen(&mut self, key: &str) -> bool {
        self.seen.iter().any(|k| k == key)
    }
    fn vacation_sent(&mut self, _sender: &str, _handle: &str) -> bool {
        self.replied
    }
    fn now(&self) -> (i64, i32) {
        // 2026-12-05 03:30:00 UTC, shown in +0800.
        (1_796_441_400, 480)
    }
    fn spamtest(&mut self, percent: bool) -> Option<u32> {
        self.spam.map(|s| if percent { s * 10 } else { s })
    }
    fn virustest(&mut self) -> Option<u32> {
        self.virus
    }
}

const MSG: &str = "From: \"张三\" <zhang.san+work@example.cn>\r\n\
To: me@example.com, other@example.org\r\n\
Cc: =?GB2312?B?wO7LxA==?= <li.si@example.cn>\r\n\
Subject: =?GB2312?B?u+HS6c2o1qo=?= [kmp] meeting\r\n\
Date: Tue, 1 Dec 2026 09:05:07 +0800\r\n\
Message-ID: <abc@example.cn>\r\n\
X-Big5: =?Big5?B?pKSk5Q==?=\r\n\
Received: from a by b\r\n\
Received: from c by d\r\n\
\r\n\
Hello world, this is the body.\r\n";

fn env() -> Envelope {
    Envelope {
        from: "zhang.san+work@example.cn".into(),
        to: "me@example.com".into(),
        auth: None,
    }
}

fn run_with(src: &str, raw: &str, te: &mut TestEnv) -> Result<Outcome, RunError> {
    let s = compile(src, &Extensions::all()).unwrap_or_else(|e| panic!("{src}: {e}"));
    let m = Message::parse(raw.as_bytes());
    s.run(&m, &env(), te)
}

fn run(src: &str) -> Vec<Action> {
    run_with(src, MSG, &mut TestEnv::default()).unwrap().actions
}

fn keep() -> Action {
    Action::Keep {
        flags: vec![],
        implicit: true,
    }
}

fn into(mb: &str) -> Action {
    Action::Fileinto {
        mailbox: mb.into(),
        flags: vec![],
        copy: false,
        create: false,
    }
}

fn pos(src: &str) -> (u32, u32) {
    let e = err(src);
    (e.0, e.1)
}

fn err(src: &str) -> (u32, u32, String) {
    let e = compile(src, &Extensions::all()).expect_err(src);
    (e.line, e.column, e.message)
}

#[test]
fn empty_script_keeps() {
    assert_eq!(run(""), vec![keep()]);
    assert_eq!(run("# nothing\n/* at all */"), vec![keep()]);
}

#[test]
fn basic_actions() {
    assert_eq!(run("discard;"), vec![Action::Discard]);
    assert_eq!(
        run("keep;"),
        vec![Action::Keep {
            flags: vec![],
            implicit: false
        }]
    );
    assert_eq!(
        run("require \"fileinto\"; fileinto \"A\"; fileinto \"A\";"),
        vec![into("A")]
    );
    assert_eq!(
        run("redirect \"a@b.example\"; redirect \"a@B.example\";"),
        vec![Action::Redirect {
            address: "a@b.example".into(),
            copy: false
        }]
    );
    assert_eq!(run("stop; discard;"), vec![keep()]);
    assert_eq!(
        run("require [\"fileinto\"]; fileinto \"INBOX\"; keep;").len(),
        1
    );
}

#[test]
fn chinese_headers_compare_decoded() {
    let a =
        run("require \"fileinto\"; if header :contains \"subject\" \"会议\" { fileinto \"A\"; }");
    assert_eq!(a, vec![into("A")]);
    let a = run("require \"fileinto\"; if header :is \"x-big5\" \"中文\" { fileinto \"B\"; }");
    assert_eq!(a, vec![into("B")]);
    let a =
        run("require \"fileinto\"; if address :is \"cc\" \"li.si@example.cn\" { fileinto \"C\"; }");
    assert_eq!(a, vec![into("C")]);
    let a = run("require \"fileinto\"; if header :contains \"cc\" \"李四\" { fileinto \"D\"; }");
    assert_eq!(a, vec![into("D")]);
    let a = run("require \"fileinto\"; if header :contains \"from\" \"张三\" { fileinto \"E\"; }");
    assert_eq!(a, vec![into("E")]);
}

#[test]
fn tests_and_logic() {
    let t = |cond: &str| {
        let src = format!("require [\"fileinto\",\"relational\",\"comparator-i;ascii-numeric\",\"subaddress\",\"envelope\",\"index\",\"date\",\"body\",\"variables\"]; if {cond} {{ fileinto \"Y\"; }}");
        run(&src) == vec![into("Y")]
    };
    assert!(t("true"));
    assert!(!t("false"));
    assert!(t("not false"));
    assert!(t("allof (true, exists \"subject\")"));
    assert!(!t("allof (true, exists [\"subject\", \"x-nope\"])"));
    assert!(t("anyof (false, size :over 10)"));
    assert!(t("size :under 1M"));
    assert!(!t("size :over 1K"));
    assert!(t("address :domain \"from\" \"EXAMPLE.cn\""));
    assert!(t("address :localpart :is \"from\" \"zhang.san+work\""));
    assert!(t("address :user \"from\" \"zhang.san\""));
    assert!(t("address :detail \"from\" \"work\""));
    assert!(!t("address :detail \"to\" \"\""));
    assert!(t("envelope :domain \"to\" \"example.com\""));
    assert!(t(
        "header :count \"ge\" :comparator \"i;ascii-numeric\" \"received\" \"2\""
    ));
    assert!(t("header :index 2 :contains \"received\" \"from c\""));
    assert!(t("header :index 1 :last :contains \"received\" \"from c\""));
    assert!(!t("header :index 3 :contains \"received\" \"from\""));
    assert!(t(
        "address :count \"eq\" :comparator \"i;ascii-numeric\" \"to\" \"2\""
    ));
    assert!(t("header :value \"gt\" \"subject\" \"A\""));
    assert!(t("header :matches \"subject\" \"*meet?ng\""));
    assert!(t(
        "header :contains :comparator \"i;octet\" \"subject\" \"[kmp]\""
    ));
    assert!(!t(
        "header :is :comparator \"i;octet\" \"to\" \"ME@example.com, other@example.org\""
    ));
    assert!(t(
        "date :value \"ge\" :originalzone \"date\" \"hour\" \"09\""
    ));
    assert!(t("date :is :zone \"+0000\" \"date\" \"time\" \"01:05:07\""));
    assert!(t("date :is \"date\" \"date\" \"2026-12-01\""));
    assert!(t("currentdate :is \"date\" \"2026-12-05\""));
    assert!(!t("date :matches \"date\" \"century\" \"*\""));
    assert!(t("currentdate :zone \"-1000\" :is \"date\" \"2026-12-04\""));
    assert!(t("body :contains \"world\""));
    assert!(t("body :raw :contains \"this is\""));
    assert!(!t("body :content \"image\" :contains \"world\""));
    assert!(t("string :is \"\" \"\""));
    assert!(t(
        "string :count \"eq\" :comparator \"i;ascii-numeric\" [\"a\", \"\", \"b\"] \"2\""
    ));
}

#[test]
fn variables_and_match_variables() {
    let a = run(
        "require [\"fileinto\", \"variables\"];\n\
         if header :matches \"subject\" \"* [*] *\" { set :upper \"list\" \"${2}\"; fileinto \"lists/${list}/${1}\"; }",
    );
    assert_eq!(a, vec![into("lists/KMP/会议通知")]);
    let a = run(
        "require [\"fileinto\", \"variables\"]; set \"a\" \"x\"; set :length \"n\" \"中文ab\"; \
         set :quotewildcard \"q\" \"a*b\"; set :upperfirst \"u\" \"hello\"; fileinto \"${a}${n}${q}${u}${undefined}${}\";",
    );
    assert_eq!(a, vec![into("x4a\\*bHello${}")]);
    let a = run("require [\"fileinto\", \"variables\", \"encoded-character\"]; fileinto \"${hex:41 42}${unicode:4e2d}\";");
    assert_eq!(a, vec![into("AB中")]);
    // Without variables, "${x}" is literal text.
    assert_eq!(
        run("require \"fileinto\"; fileinto \"${x}\";"),
        vec![into("${x}")]
    );
}

#[test]
fn imap4flags() {
    let a = run("require \"imap4flags\"; addflag \"\\\\Seen Junk\"; addflag \"junk\"; removeflag \"\\\\seen\";");
    assert_eq!(
        a,
        vec![Action::Keep {
            flags: vec!["Junk".into()],
            implicit: true
        }]
    );
    let a = run("require [\"imap4flags\",\"fileinto\"]; setflag \"A\"; fileinto :flags \"B C\" \"F\"; fileinto \"G\";");
    assert_eq!(
        a[..2],
        [
            Action::Fileinto {
                mailbox: "F".into(),
                flags: vec!["B".into(), "C".into()],
                copy: false,
                create: false
            },
            Action::Fileinto {
                mailbox: "G".into(),
                flags: vec!["A".into()],
                copy: false,
                create: false
            },
        ]
    );
    let a = run("require [\"imap4flags\",\"variables\",\"fileinto\"]; addflag \"v\" \"X\"; if hasflag :is \"v\" \"x\" { fileinto \"H\"; } if hasflag \"x\" { discard; }");
    assert_eq!(a, vec![into("H")]);
}

#[test]
fn copy_reject_and_conflicts() {
    let a = run(
        "require [\"copy\",\"fileinto\"]; fileinto :copy \"A\"; redirect :copy \"x@y.example\";",
    );
    assert_eq!(a.len(), 3);
    assert_eq!(a[2], keep());
    let a = run("require \"ereject\"; ereject \"病毒\";");
    assert_eq!(
        a,
        vec![Action::Reject {
            reason: "病毒".into(),
            ereject: true
        }]
    );
    let a = run("require [\"copy\",\"fileinto\"]; fileinto :copy \"INBOX\";");
    assert_eq!(a.len(), 1, "{a:?}");
    let a = run("require \"reject\"; reject \"不要\";");
    assert_eq!(
        a,
        vec![Action::Reject {
            reason: "不要".into(),
            ereject: false
        }]
    );
    let e = run_with(
        "require [\"reject\",\"fileinto\"];\nfileinto \"A\";\nreject \"no\";",
        MSG,
        &mut TestEnv::default(),
    )
    .unwrap_err();
    assert!(e.message.contains("conflicts"), "{e}");
    let e = run_with(
        "require \"vacation\"; vacation \"a\"; vacation \"b\";",
        MSG,
        &mut TestEnv::default(),
    )
    .unwrap_err();
    assert!(e.message.contains("duplicate vacation"), "{e}");
}

#[test]
fn vacation_rules() {
    let src = "require [\"vacation\"]; vacation :days 3 :subject \"外出\" \"我不在\";";
    let a = run(src);
    assert_eq!(a.len(), 2);
    let Action::Vacation(v) = &a[0] else {
        panic!("{a:?}")
    };
    assert_eq!(v.to, "zhang.san+work@example.cn");
    assert_eq!(v.period_seconds, 3 * 86400);
    assert_eq!(v.subject, "外出");
    let no_reply = |extra: &str| {
        let raw = format!("{extra}{MSG}");
        let a = run_with(src, &raw, &mut TestEnv::default())
            .unwrap()
            .actions;
        !a.iter().any(|x| matches!(x, Action::Vacation(_)))
    };
    assert!(no_reply("List-Id: <kmp.example.cn>\r\n"));
    assert!(no_reply("Precedence: bulk\r\n"));
    assert!(no_reply("Auto-Submitted: auto-replied\r\n"));
    assert!(!no_reply("Auto-Submitted: no\r\n"));
    let a = run_with(
        src,
        &MSG.replace("To: me@", "To: you@"),
        &mut TestEnv::default(),
    )
    .unwrap()
    .actions;
    assert_eq!(a, vec![keep()], "not addressed to the user");
    let mut te = TestEnv {
        replied: true,
        ..TestEnv::default()
    };
    assert_eq!(
        run_with(src, MSG, &mut te).unwrap().actions,
        vec![keep()],
        "already replied"
    );
    let s = compile(src, &Extensions::all()).unwrap();
    for from in [
        "",
        "MAILER-DAEMON@example.cn",
        "owner-list@example.cn",
        "list-request@example.cn",
        "me@example.com",
    ] {
        let e = Envelope {
            from: from.into(),
            ..env()
        };
        let a = s
            .run(&Message::parse(MSG.as_bytes()), &e, &mut TestEnv::default())
            .unwrap()
            .actions;
        assert_eq!(a, vec![keep()], "sender {from}");
    }
    let a = run("require [\"vacation\"]; vacation \"x\";");
    let Action::Vacation(v) = &a[0] else { panic!() };
    assert_eq!(v.subject, "Auto: 会议通知 [kmp] meeting");
    assert_eq!(v.period_seconds, 7 * 86400);
    let a = run("require [\"vacation\",\"vacation-seconds\"]; vacation :seconds 30 \"x\";");
    let Action::Vacation(v) = &a[0] else { panic!() };
    assert_eq!(v.period_seconds, 86400, "clamped to the minimum");
}

#[test]
fn notify_duplicate_spam_virus_mailbox() {
    let a = run("require \"enotify\"; notify :importance \"1\" :message \"新邮件\" \"mailto:13800138000@sms.example.cn\";");
    let Action::Notify(n) = &a[0] else {
        panic!("{a:?}")
    };
    assert_eq!(n.to, vec!["13800138000@sms.example.cn"]);
    assert_eq!(n.importance, 1);
    assert_eq!(n.message.as_deref(), Some("新邮件"));
    assert!(
        run("require [\"enotify\"]; if valid_notify_method \"mailto:a@b.example\" { discard; }")
            == vec![Action::Discard]
    );
    assert!(run("require [\"enotify\"]; if notify_method_capability \"mailto:a@b.example\" \"online\" \"maybe\" { discard; }") == vec![Action::Discard]);
    let src = "require \"duplicate\"; if duplicate { discard; }";
    let o = run_with(src, MSG, &mut TestEnv::default()).unwrap();
    assert_eq!(o.actions, vec![keep()]);
    assert_eq!(o.duplicates.len(), 1);
    let mut te = TestEnv {
        seen: vec![o.duplicates[0].key.clone()],
        ..TestEnv::default()
    };
    assert_eq!(
        run_with(src, MSG, &mut te).unwrap().actions,
        vec![Action::Discard]
    );
    let spam = "require [\"spamtest\",\"relational\",\"comparator-i;ascii-numeric\"]; if spamtest :value \"ge\" :comparator \"i;ascii-numeric\" \"5\" { discard; }";
    let mut te = TestEnv {
        spam: Some(7),
        ..TestEnv::default()
    };
    assert_eq!(
        run_with(spam, MSG, &mut te).unwrap().actions,
        vec![Action::Discard]
    );
    assert_eq!(run(spam), vec![keep()]);
    let plus = "require [\"spamtestplus\",\"relational\",\"comparator-i;ascii-numeric\"]; if spamtest :percent :value \"gt\" :comparator \"i;ascii-numeric\" \"50\" { discard; }";
    let mut te = TestEnv {
        spam: Some(7),
        ..TestEnv::default()
    };
    assert_eq!(
        run_with(plus, MSG, &mut te).unwrap().actions,
        vec![Action::Discard]
    );
    let virus = "require [\"virustest\",\"relational\",\"comparator-i;ascii-numeric\"]; if virustest :value \"eq\" :comparator \"i;ascii-numeric\" \"0\" { discard; }";
    assert_eq!(run(virus), vec![Action::Discard]);
    let mb = "require [\"mailbox\",\"fileinto\"]; if mailboxexists \"Work\" { fileinto :create \"Work\"; }";
    assert_eq!(
        run(mb),
        vec![Action::Fileinto {
            mailbox: "Work".into(),
            flags: vec![],
            copy: false,
            create: true
        }]
    );
}

struct Scripts;

impl Loader for Scripts {
    fn load(&self, name: &str, _l: Location) -> Result<Option<String>, String> {
        Ok(match name {
            "spam" => Some("require [\"fileinto\",\"variables\",\"include\"]; global \"x\"; fileinto \"Junk-${x}\"; return; discard;".into()),
            "loop" => Some("require \"include\"; include \"loop\";".into()),
            "stopper" => Some("stop;".into()),
            _ => None,
        })
    }
}

#[test]
fn include_global_return() {
    let src = "require [\"include\",\"variables\",\"fileinto\"]; global \"x\"; set \"x\" \"1\"; include \"spam\"; include :once \"spam\"; include :optional \"missing\"; fileinto \"After\";";
    let s = compile_with(src, &Extensions::all(), Some(&Scripts), &Limits::default()).unwrap();
    let o = s
        .run(
            &Message::parse(MSG.as_bytes()),
            &env(),
            &mut TestEnv::default(),
        )
        .unwrap();
    assert_eq!(o.actions, vec![into("Junk-1"), into("After")]);
    let s = compile_with(
        "require \"include\"; include \"stopper\"; discard;",
        &Extensions::all(),
        Some(&Scripts),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(
        s.run(
            &Message::parse(MSG.as_bytes()),
            &env(),
            &mut TestEnv::default()
        )
        .unwrap()
        .actions,
        vec![keep()]
    );
    let e = compile_with(
        "require \"include\";\ninclude \"loop\";",
        &Extensions::all(),
        Some(&Scripts),
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!((e.line, e.column), (2, 9), "{e}");
    let e = compile_with(
        "require \"include\"; include \"none\";",
        &Extensions::all(),
        Some(&Scripts),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(e.message.contains("not found"), "{e}");
}

#[test]
fn limits() {
    let lim = Limits {
        max_redirects: 2,
        ..Limits::default()
    };
    let s = compile_with(
        "redirect \"a@x.example\"; redirect \"b@x.example\"; redirect \"c@x.example\";",
        &Extensions::all(),
        None,
        &lim,
    )
    .unwrap();
    let e = s
        .run(
            &Message::parse(MSG.as_bytes()),
            &env(),
            &mut TestEnv::default(),
        )
        .unwrap_err();
    assert!(e.message.contains("redirect"), "{e}");
    let lim = Limits {
        max_steps: 50,
        ..Limits::default()
    };
    let src = "if true { keep; } ".repeat(100);
    let s = compile_with(&src, &Extensions::all(), None, &lim).unwrap();
    assert!(s
        .run(
            &Message::parse(MSG.as_bytes()),
            &env(),
            &mut TestEnv::default()
        )
        .is_err());
    let lim = Limits {
        max_script_size: 10,
        ..Limits::default()
    };
    assert!(compile_with("keep; keep; keep;", &Extensions::all(), None, &lim).is_err());
    let deep = format!("{}{}", "if true { ".repeat(40), "}".repeat(40));
    assert!(err(&deep).2.contains("nesting"));
}

#[test]
fn multiline_strings_and_numbers() {
    let a = run("require \"reject\";\nreject text:\r\nline one\r\n..dot\r\n.\r\n;");
    assert_eq!(
        a,
        vec![Action::Reject {
            reason: "line one\r\n.dot\r\n".into(),
            ereject: false
        }]
    );
    let a = run("require \"reject\"; reject text: # comment\nx\n.\n;");
    assert_eq!(
        a,
        vec![Action::Reject {
            reason: "x\r\n".into(),
            ereject: false
        }]
    );
    assert!(run("if size :under 1G { discard; }") == vec![Action::Discard]);
    assert!(err("if size :under 5G { discard; }")
        .2
        .contains("too large"));
}

#[test]
fn error_positions() {
    assert_eq!(
        err("fileinto \"x\";"),
        (
            1,
            1,
            "fileinto requires the \"fileinto\" extension (missing require)".into()
        )
    );
    assert_eq!(err("require \"nope\";").0, 1);
    assert_eq!(err("require \"nope\";").1, 9);
    assert_eq!(pos("keep;\nrequire \"fileinto\";"), (2, 1));
    assert_eq!(pos("keep\ndiscard;"), (1, 5));
    assert_eq!(
        pos("require \"fileinto\";\nif true {\n  fileinto \"A\"\n  keep;\n}"),
        (3, 15)
    );
    assert_eq!(pos("if true {\n  keep;\n"), (3, 1));
    assert_eq!(pos("if header :contains \"a\" {}"), (1, 4));
    assert_eq!(pos("keep;\n  frobnicate;"), (2, 3));
    assert_eq!(pos("if foo \"x\" { }"), (1, 4));
    assert_eq!(pos("\"中文\" keep;"), (1, 1));
    assert_eq!(pos("# 中文\nkeep; ¤"), (2, 7));
    assert_eq!(pos("redirect \"not an address\";"), (1, 10));
    assert_eq!(pos("if header :foo \"a\" \"b\" {}"), (1, 11));
    assert_eq!(pos("if header :is :contains \"a\" \"b\" {}"), (1, 15));
    assert_eq!(pos("require \"comparator-i;ascii-numeric\";\nif header :contains :comparator \"i;ascii-numeric\" \"a\" \"b\" {}"), (2, 11));
    assert_eq!(
        pos("if header :comparator \"i;ascii-numeric\" \"a\" \"b\" {}"),
        (1, 23)
    );
    assert_eq!(pos("require \"fileinto\"; fileinto \"a\" \"b\";"), (1, 34));
    assert_eq!(pos("/* open"), (1, 8));
    assert_eq!(pos("keep;\n\"abc"), (2, 5));
    assert_eq!(pos("require \"reject\"; reject text:\nno end"), (2, 7));
    assert_eq!(pos("elsif true {}"), (1, 1));
    assert_eq!(pos("if true {} else {} else {}"), (1, 20));
    assert_eq!(pos("require \"variables\"; set \"1a\" \"x\";"), (1, 26));
    assert_eq!(
        pos("require \"envelope\"; if envelope \"nope\" \"x\" {}"),
        (1, 33)
    );
    assert_eq!(pos("require \"enotify\"; notify \"xmpp:a@b\";"), (1, 27));
    assert_eq!(
        pos("require \"enotify\"; notify :options [\"a=b\", \"c\"] \"mailto:a@b.example\";"),
        (1, 44)
    );
    assert_eq!(
        pos("require \"vacation\"; vacation :days 1 :seconds 2 \"x\";"),
        (1, 38)
    );
    let e = compile("keep", &Extensions::all()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 1, column 5: missing \";\" after the keep command (found end of script)"
    );
}

#[test]
fn disabled_extension_is_refused() {
    let ext = Extensions::all().without(Extension::Vacation);
    let e = compile("require \"vacation\"; keep;", &ext).unwrap_err();
    assert_eq!((e.line, e.column), (1, 9));
    assert!(!ext.names().contains("vacation "));
}
