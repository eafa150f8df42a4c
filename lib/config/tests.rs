use super::*;

#[test]
fn every_default_parses_and_every_key_is_documented() {
    let mut seen = std::collections::BTreeSet::new();
    for k in KEYS.iter() {
        assert!(seen.insert(k.name), "{} is in the table twice", k.name);
        assert!(k.name.contains('.'), "{} has no section", k.name);
        assert!(!k.doc.trim().is_empty(), "{} has no documentation", k.name);
        Value::default_of(k).unwrap_or_else(|e| panic!("{}: default: {e}", k.name));
    }
}

#[test]
fn file_values_override_defaults_and_are_typed() {
    let text = "[smtpd]\nlisten = [\"127.0.0.1:2525\"]\n[send]\nmax_queue_lifetime = \"2d\"\n\
                [remote.routes]\n\"example.net\" = [\"127.0.0.1:2626\"]\n";
    let cfg = Config::parse(text, "t.toml").unwrap();
    assert_eq!(
        cfg.listen("smtpd.listen"),
        vec!["127.0.0.1:2525".parse().unwrap()]
    );
    assert_eq!(cfg.duration("send.max_queue_lifetime").as_secs(), 2 * 86400);
    assert_eq!(
        cfg.map("remote.routes")["example.net"],
        vec!["127.0.0.1:2626"]
    );
    let changed: Vec<_> = cfg.changed().map(|k| k.name).collect();
    assert_eq!(
        changed,
        ["smtpd.listen", "send.max_queue_lifetime", "remote.routes"]
    );
}

#[test]
fn errors_name_file_line_and_key_and_all_are_reported() {
    let text = "[smtpd]\nlisten = [\"nowhere\"]\n\n[authd]\nmax_failurs = 3\nban_time = true\n";
    let errs = Config::parse(text, "k.toml").unwrap_err();
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert_eq!(
        (errs[0].line, errs[0].key.as_deref()),
        (2, Some("smtpd.listen"))
    );
    assert_eq!(errs[1].line, 5);
    assert!(
        errs[1]
            .to_string()
            .contains("did you mean authd.max_failures"),
        "{}",
        errs[1]
    );
    assert_eq!(
        (errs[2].line, errs[2].key.as_deref()),
        (6, Some("authd.ban_time"))
    );
    assert!(errs[0].to_string().starts_with("k.toml:2: smtpd.listen: "));
}

#[test]
fn broken_toml_is_one_error_with_a_line() {
    let errs = Config::parse("[smtpd]\nlisten = [\n\n= 3", "b.toml").unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(errs[0].line >= 2, "{errs:?}");
}

#[test]
fn bounds_and_enums_are_enforced() {
    assert!(Config::parse("[local]\nquota_warning_percent = 101\n", "x").is_err());
    assert!(Config::parse("[local]\nquota_warning_percent = -1\n", "x").is_err());
    assert!(Config::parse("[paths]\nqueue = \"relative/dir\"\n", "x").is_err());
    assert!(Config::parse("queue = 3\n", "x").is_err());
}

#[test]
fn written_config_reads_back_the_same() {
    let mut cfg = Config::defaults();
    cfg.set("paths.queue", "/tmp/q").unwrap();
    cfg.set("remote.routes", "*=127.0.0.1:1|127.0.0.1:2")
        .unwrap();
    let text = cfg.to_toml(false);
    let back = Config::parse(&text, "w").unwrap();
    assert_eq!(back.str("paths.queue"), "/tmp/q");
    assert_eq!(back.map("remote.routes")["*"].len(), 2);
    let all = Config::parse(&Config::defaults().to_toml(true), "d").unwrap();
    assert_eq!(all.changed().count(), KEYS.len());
}

#[test]
fn sizes_and_durations_parse() {
    assert_eq!(parse_size("10M").unwrap(), 10 << 20);
    assert_eq!(parse_size("512").unwrap(), 512);
    assert!(parse_size("10Q").is_err());
    assert!(parse_size("99999999999999999999G").is_err());
    assert_eq!(parse_duration("5m").unwrap().as_secs(), 300);
    assert_eq!(parse_duration("5d").unwrap().as_secs(), 432000);
    assert!(parse_duration("-1").is_err());
}
