use super::*;

const SHA512: &str = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";

#[test]
fn dovecot_passwd_keeps_crypt_hashes_and_quota() {
    let text = format!(
        "# users\njoe@example.test:{{SHA512-CRYPT}}{SHA512}:1000:1000::/home/joe::userdb_quota_rule=*:storage=1G\n\
         ann:{SHA512}:::::: userdb_quota_rule=*:bytes=5000:messages=10\nlocked@example.test:!:::::\n"
    );
    let p = parse_dovecot_passwd(&text, Some("other.test"), 7).unwrap();
    assert_eq!(p.users.len(), 3);
    assert_eq!(p.users[0].address, "joe@example.test");
    assert_eq!(p.users[0].password, SHA512);
    assert_eq!(p.users[0].quota_bytes, 1 << 30);
    assert_eq!(p.users[1].address, "ann@other.test");
    assert_eq!(
        (p.users[1].quota_bytes, p.users[1].quota_messages),
        (5000, 10)
    );
    assert_eq!(p.users[2].password, "");
    let e = parse_dovecot_passwd("a@b.test:{PLAIN}secret\n", None, 0).unwrap_err();
    assert_eq!(e.line, 1);
    assert!(e.message.contains("{PLAIN}"), "{}", e.message);
    assert!(parse_dovecot_passwd("nodomain:x\n", None, 0).is_err());
    assert_eq!(
        parse_dovecot_passwd(&format!("a@b.test:{SHA512}\nA@b.test:{SHA512}\n"), None, 0)
            .unwrap_err()
            .line,
        2
    );
}

#[test]
fn vpopmail_files_and_sql() {
    let md5 = "$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1";
    let v = format!("joe:{md5}:1:0:Joe:/home/vpopmail/domains/ex.test/joe:52428800S,100C:pw\nann:{md5}:1:0:Ann:/x:NOQUOTA\n");
    let p = parse_vpasswd(&v, "ex.test", 0).unwrap();
    assert_eq!(p.users[0].address, "joe@ex.test");
    assert_eq!(
        (p.users[0].quota_bytes, p.users[0].quota_messages),
        (52428800, 100)
    );
    assert_eq!(p.users[1].quota_bytes, 0);
    let sql = format!(
        "-- MySQL dump\nINSERT INTO `vpopmail` VALUES ('joe','ex.test','{md5}',1,0,'Joe \\'J\\'','/d/joe','NOQUOTA','x'),('ann','ex2.test','{md5}',1,0,'Ann','/d/ann','1000S','y');\n\
         INSERT INTO vpopmail (pw_domain, pw_name, pw_passwd) VALUES ('ex.test','bob','{md5}');\n"
    );
    let p = parse_vpopmail_sql(&sql, 0).unwrap();
    let names: Vec<&str> = p.users.iter().map(|u| u.address.as_str()).collect();
    assert_eq!(names, ["joe@ex.test", "ann@ex2.test", "bob@ex.test"]);
    assert_eq!(p.users[1].quota_bytes, 1000);
    assert!(parse_vpopmail_sql("INSERT INTO vpopmail VALUES ('a','b.test',\n", 0).is_err());
}

#[test]
fn passwd_and_shadow() {
    let pw = "root:x:0:0:root:/root:/bin/sh\njoe:x:1000:1000:Joe:/home/joe:/bin/sh\nann:x:1001:1001::/home/ann:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n";
    let sh = format!("root:*:1::::::\njoe:{SHA512}:19000:0:99999:7:::\nann:!:19000::::::\n");
    let p = parse_passwd(pw, &sh, "ex.test", 1000, 0).unwrap();
    assert_eq!(p.users.len(), 2);
    assert_eq!(p.users[0].password, SHA512);
    assert_eq!(p.users[1].password, "");
}

#[test]
fn postfix_maps() {
    let virt = "example.test  anything\ninfo@example.test  joe@example.test,\n   ann@other.test\n@example.test joe\nsales@example.test |/usr/bin/crm\n";
    let p = parse_postfix_virtual(virt, Some("example.test")).unwrap();
    assert_eq!(p.aliases.len(), 2);
    assert_eq!(p.aliases[0].targets, ["joe@example.test", "ann@other.test"]);
    assert_eq!(p.aliases[1].address, "@example.test");
    assert_eq!(p.skipped.len(), 2, "{:?}", p.skipped);
    let al = "postmaster: root\nroot: joe, \"ann@other.test\"\nbackup: /var/backup/mbox\n";
    let p = parse_postfix_aliases(al, "example.test").unwrap();
    assert_eq!(p.aliases.len(), 2);
    assert_eq!(p.aliases[1].targets, ["joe@example.test", "ann@other.test"]);
    assert_eq!(p.skipped.len(), 1);
    assert!(parse_postfix_aliases("bad line\n", "example.test").is_err());
}

#[test]
fn qmail_directory() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join(".qmail-info"), "&joe@ex.test\nann\n").unwrap();
    std::fs::write(
        d.path().join(".qmail-john:doe"),
        "/home/vpopmail/domains/ex.test/joe/Maildir/\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join(".qmail-default"),
        "| /home/vpopmail/bin/vdelivermail '' bounce-no-mailbox\n",
    )
    .unwrap();
    std::fs::create_dir(d.path().join("joe")).unwrap();
    std::fs::write(d.path().join("joe/.qmail"), "./Maildir/\n&joe@else.test\n").unwrap();
    let p = parse_qmail_dir(d.path(), "ex.test").unwrap();
    assert_eq!(p.aliases.len(), 2, "{p:?}");
    assert_eq!(p.aliases[0].address, "info@ex.test");
    assert_eq!(p.aliases[0].targets, ["joe@ex.test", "ann@ex.test"]);
    assert_eq!(p.aliases[1].address, "john.doe@ex.test");
    assert_eq!(p.aliases[1].targets, ["joe@ex.test"]);
    assert_eq!(
        p.forwards,
        [(
            "joe@ex.test".to_string(),
            vec!["joe@else.test".to_string()],
            true
        )]
    );
    assert!(p.skipped.iter().any(|s| s.contains(".qmail-default")));
}

#[test]
fn an_import_is_checked_against_the_domains_limits_as_a_whole() {
    use crate::userdb::limits::Limits;
    let dom = Domain {
        name: "a.test".into(),
        created: 0,
        quota_bytes: 0,
        quota_messages: 0,
        spam: Default::default(),
        admins: vec![],
        limits: Limits {
            max_users: Some(3),
            max_aliases: Some(1),
            max_forwards: Some(1),
            max_user_quota_bytes: Some(100),
            ..Limits::default()
        },
    };
    let used = Usage {
        users: 1,
        ..Usage::default()
    };
    let existing = {
        let mut u = User::new(&Address::parse("old@a.test").unwrap(), 0);
        u.quota_bytes = 10;
        u
    };
    let user = |name: &str, q: u64| {
        let mut u = User::new(&Address::parse(name).unwrap(), 0);
        u.quota_bytes = q;
        u
    };
    let check = |users: &[User], aliases: &[Alias], fw: &[(Address, Vec<String>, bool)]| {
        check_limits(
            users,
            aliases,
            fw,
            &mut |d| Ok((d == "a.test").then(|| dom.clone())),
            &mut |_| Ok(used.clone()),
            &mut |a| Ok((a.local() == "old").then(|| existing.clone())),
        )
    };
    // Two more users fit; three do not, and the error names the third.
    assert!(check(&[user("x@a.test", 5), user("y@a.test", 5)], &[], &[]).is_ok());
    let e = check(
        &[
            user("x@a.test", 5),
            user("y@a.test", 5),
            user("z@a.test", 5),
        ],
        &[],
        &[],
    )
    .unwrap_err();
    assert!(matches!(e, DbError::Limit(_)), "{e}");
    assert!(e.to_string().contains("z@a.test"), "{e}");
    // A quota over the ceiling; none at all is over it too.
    assert!(check(&[user("x@a.test", 101)], &[], &[]).is_err());
    assert!(check(&[user("x@a.test", 0)], &[], &[]).is_err());
    // Aliases count one by one.
    let alias = |a: &str| Alias {
        address: a.into(),
        targets: vec!["t@b.test".into()],
    };
    assert!(check(&[], &[alias("a1@a.test")], &[]).is_ok());
    assert!(check(&[], &[alias("a1@a.test"), alias("@a.test")], &[]).is_err());
    // Forwards: one new user forwarding and an existing one made to: two.
    let mut f = user("x@a.test", 5);
    f.forwards = vec!["t@b.test".into()];
    let old = Address::parse("old@a.test").unwrap();
    let fw = [(old, vec!["t@b.test".to_string()], false)];
    assert!(check(&[f.clone()], &[], &[]).is_ok());
    assert!(check(&[], &[], &fw).is_ok());
    assert!(check(&[f], &[], &fw).is_err());
    // Another domain (no limits, or not there) is not checked here.
    assert!(check(&[user("x@b.test", 0), user("y@b.test", 0)], &[], &[]).is_ok());
}
