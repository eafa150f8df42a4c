//! Searches kept up to date (RFC 5267 CONTEXT=SEARCH: RETURN (UPDATE),
//! ADDTO / REMOVEFROM, CANCELUPDATE, NOUPDATE) and the MODSEQ an ESEARCH
//! reports (RFC 7162 3.1.5), over raw sockets against the real kmp-imapd,
//! with a second session changing the folder underneath.
mod common;

use common::raw::Raw;

fn message(subject: &str, body: &str) -> Vec<u8> {
    format!("From: a@example.test\r\nSubject: {subject}\r\n\r\n{body}\r\n").into_bytes()
}

/// The untagged ESEARCH lines of a response that name `tag`.
fn updates(r: &str, tag: &str) -> Vec<String> {
    r.lines()
        .filter(|l| l.starts_with(&format!("* ESEARCH (TAG \"{tag}\")")))
        .map(str::to_string)
        .collect()
}

/// Where `needle` starts in `r` (the order of untagged responses matters).
fn at(r: &str, needle: &str) -> usize {
    r.find(needle)
        .unwrap_or_else(|| panic!("no {needle:?} in {r}"))
}

#[test]
fn update_follows_flags_arrivals_and_expunges() {
    let inst = common::imap_instance();
    let mut a = Raw::login(&inst);
    let mut b = Raw::login(&inst);
    for i in 1..=5 {
        a.append("", &message(&format!("m{i}"), "body text"));
    }
    let caps = a.cmd("c", "CAPABILITY");
    assert!(caps.contains(" CONTEXT=SEARCH"), "{caps}");
    let sel = a.cmd("s", "SELECT INBOX");
    assert!(sel.contains("* 5 EXISTS"), "{sel}");
    b.cmd("s", "SELECT INBOX");

    // UPDATE alone answers with no result, then reports changes.
    let r = a.cmd("t1", "SEARCH RETURN (UPDATE) BODY body SEEN");
    assert_eq!(updates(&r, "t1"), vec!["* ESEARCH (TAG \"t1\")"], "{r}");
    let r = a.cmd("s1", "STORE 1,2,4 +FLAGS (\\Seen)");
    assert_eq!(
        updates(&r, "t1"),
        vec!["* ESEARCH (TAG \"t1\") ADDTO (0 1:2,4)"],
        "{r}"
    );
    let r = a.cmd("s2", "STORE 1 -FLAGS.SILENT (\\Seen)");
    assert_eq!(
        updates(&r, "t1"),
        vec!["* ESEARCH (TAG \"t1\") REMOVEFROM (0 1)"],
        "{r}"
    );
    // A flag that does not change the result reports nothing.
    let r = a.cmd("s3", "STORE 2 +FLAGS (\\Flagged)");
    assert!(updates(&r, "t1").is_empty(), "{r}");

    // Another session's change, seen at the next command.
    b.cmd("b1", "STORE 3 +FLAGS (\\Seen)");
    let r = a.cmd("n1", "NOOP");
    assert_eq!(
        updates(&r, "t1"),
        vec!["* ESEARCH (TAG \"t1\") ADDTO (0 3)"],
        "{r}"
    );

    // New mail: ADDTO after the EXISTS that numbers it.
    b.append("\\Seen", &message("m6", "more body"));
    let r = a.cmd("n2", "NOOP");
    assert!(
        at(&r, "* 6 EXISTS") < at(&r, "* ESEARCH (TAG \"t1\") ADDTO (0 6)"),
        "{r}"
    );

    // An expunge: REMOVEFROM before the EXPUNGE, in the old numbering.
    b.cmd("b2", "STORE 2 +FLAGS.SILENT (\\Deleted)");
    b.cmd("b3", "EXPUNGE");
    let r = a.cmd("n3", "NOOP");
    assert!(
        at(&r, "* ESEARCH (TAG \"t1\") REMOVEFROM (0 2)") < at(&r, "* 2 EXPUNGE"),
        "{r}"
    );

    // A UID context, alongside.
    let f = a.cmd("f", "FETCH 1:* UID");
    let uids: Vec<u32> = f
        .lines()
        .filter_map(|l| l.split("UID ").nth(1))
        .map(|u| u.trim_end_matches([')', '\r']).parse().unwrap())
        .collect();
    assert_eq!(uids.len(), 5, "{f}");
    let r = a.cmd("u1", "UID SEARCH RETURN (UPDATE ALL) UNSEEN");
    // Unseen: the first message, and the fifth (never flagged).
    assert_eq!(
        updates(&r, "u1"),
        vec![format!(
            "* ESEARCH (TAG \"u1\") UID ALL {},{}",
            uids[0], uids[3]
        )],
        "{r}"
    );
    let r = a.cmd("s4", "STORE 1 +FLAGS (\\Seen)");
    let mut got = updates(&r, "t1");
    got.extend(updates(&r, "u1"));
    assert_eq!(
        got,
        vec![
            "* ESEARCH (TAG \"t1\") ADDTO (0 1)".to_string(),
            format!("* ESEARCH (TAG \"u1\") UID REMOVEFROM (0 {})", uids[0]),
        ],
        "{r}"
    );

    // A tag in use by a context cannot start another.
    let r = a.cmd("u1", "SEARCH RETURN (UPDATE) ALL");
    assert!(r.contains("u1 BAD"), "{r}");

    // CANCELUPDATE stops the reports; an unknown tag is NO.
    let r = a.cmd("x1", "CANCELUPDATE \"t1\"");
    assert!(r.contains("x1 OK"), "{r}");
    let r = a.cmd("s5", "STORE 1:* -FLAGS (\\Seen)");
    assert!(updates(&r, "t1").is_empty(), "{r}");
    assert_eq!(updates(&r, "u1").len(), 1, "{r}");
    let r = a.cmd("x2", "CANCELUPDATE \"t1\"");
    assert!(r.contains("x2 NO"), "{r}");
    let r = a.cmd("x3", "CANCELUPDATE t1");
    assert!(r.contains("x3 BAD"), "{r}");

    // Leaving the folder ends every context.
    a.cmd("e", "EXAMINE INBOX");
    a.cmd("s", "SELECT INBOX");
    let r = a.cmd("s6", "STORE 1:* +FLAGS (\\Seen)");
    assert!(!r.contains("ESEARCH"), "{r}");
}

#[test]
fn message_numbers_in_a_context_keep_naming_their_messages() {
    let inst = common::imap_instance();
    let mut a = Raw::login(&inst);
    for i in 1..=4 {
        a.append("", &message(&format!("m{i}"), "x"));
    }
    a.cmd("s", "SELECT INBOX");
    // 3:4 are the third and fourth messages now, whatever comes later.
    let r = a.cmd("t", "SEARCH RETURN (UPDATE) 3:4 FLAGGED");
    assert_eq!(updates(&r, "t"), vec!["* ESEARCH (TAG \"t\")"], "{r}");
    a.cmd("d", "STORE 1 +FLAGS.SILENT (\\Deleted)");
    let r = a.cmd("x", "EXPUNGE");
    assert!(r.contains("* 1 EXPUNGE"), "{r}");
    // The old third message is number 2 now; the old second is not in the set.
    let r = a.cmd("f", "STORE 1:2 +FLAGS (\\Flagged)");
    assert_eq!(
        updates(&r, "t"),
        vec!["* ESEARCH (TAG \"t\") ADDTO (0 2)"],
        "{r}"
    );
}

#[test]
fn a_context_matches_chinese_text_in_its_charset() {
    let inst = common::imap_instance();
    let mut a = Raw::login(&inst);
    a.cmd("s", "SELECT INBOX");
    // 件 in GB2312, as a legacy client sends it.
    let gb = [0xbcu8, 0xfe];
    let mut c = b"SEARCH RETURN (UPDATE COUNT) CHARSET GB2312 SUBJECT {2+}\r\n".to_vec();
    c.extend_from_slice(&gb);
    let r = a.cmd_bytes("t", &c);
    assert_eq!(
        updates(&r, "t"),
        vec!["* ESEARCH (TAG \"t\") COUNT 0"],
        "{r}"
    );
    // 邮件 in a GB2312 encoded word, 郵件 in Big5, and a subject without 件.
    // Appended by this session: reported in the APPEND's own response.
    let mut r = a.append("", &message("=?GB2312?B?08q8/g==?= 1", "x"));
    r += &a.append("", &message("=?Big5?B?tmyl8w==?= 2", "x"));
    r += &a.append("", &message("=?GB2312?B?08o=?= 3", "x"));
    assert_eq!(
        updates(&r, "t"),
        vec![
            "* ESEARCH (TAG \"t\") ADDTO (0 1)",
            "* ESEARCH (TAG \"t\") ADDTO (0 2)"
        ],
        "{r}"
    );
    // Delivered by another session: reported at the next command.
    let mut b = Raw::login(&inst);
    b.append("", &message("=?GB2312?B?08q8/g==?= 4", "x"));
    let r = a.cmd("n", "NOOP");
    assert_eq!(
        updates(&r, "t"),
        vec!["* ESEARCH (TAG \"t\") ADDTO (0 4)"],
        "{r}"
    );
}

#[test]
fn a_ninth_context_is_refused_with_noupdate() {
    let inst = common::imap_instance();
    let mut a = Raw::login(&inst);
    a.append("", &message("m", "x"));
    a.cmd("s", "SELECT INBOX");
    for i in 0..8 {
        let r = a.cmd(&format!("k{i}"), "SEARCH RETURN (UPDATE) SEEN");
        assert!(!r.contains("NOUPDATE"), "{r}");
    }
    let r = a.cmd("k8", "SEARCH RETURN (UPDATE COUNT) ALL");
    assert!(r.contains("* NO [NOUPDATE \"k8\"]"), "{r}");
    assert!(r.contains("* ESEARCH (TAG \"k8\") COUNT 1"), "{r}");
    assert!(r.contains("k8 OK"), "{r}");
    let r = a.cmd("f", "STORE 1 +FLAGS (\\Seen)");
    assert_eq!(r.matches("ADDTO (0 1)").count(), 8, "{r}");
    assert!(updates(&r, "k8").is_empty(), "{r}");
    // A cancelled context makes room again.
    a.cmd("c", "CANCELUPDATE \"k0\" \"k1\"");
    let r = a.cmd("k9", "SEARCH RETURN (UPDATE) SEEN");
    assert!(!r.contains("NOUPDATE"), "{r}");
}

#[test]
fn esearch_modseq_is_that_of_the_messages_named() {
    let inst = common::imap_instance();
    let mut a = Raw::login(&inst);
    for i in 1..=4 {
        a.append("", &message(&format!("m{i}"), "x"));
    }
    a.cmd("e", "ENABLE CONDSTORE");
    a.cmd("s", "SELECT INBOX");
    let mut modseq = [0u64; 5];
    for n in [1, 3, 2, 4] {
        let r = a.cmd("st", &format!("STORE {n} +FLAGS (\\Seen)"));
        let m = r
            .split("MODSEQ (")
            .nth(1)
            .and_then(|x| x.split(')').next())
            .unwrap_or_else(|| panic!("{r}"));
        modseq[n] = m.parse().unwrap();
    }
    let q = "MODSEQ \"/flags/\\\\seen\" all";
    let cases = [
        ("(MIN) 1:3", 1, "MIN 1", modseq[1]),
        ("(MAX) 1:3", 1, "MAX 3", modseq[3]),
        ("() 1:3", 1, "ALL 1:3", modseq[2]),
        ("(MIN MAX) 2:3", 1, "MIN 2 MAX 3", modseq[2]),
        ("(ALL) 2:3", modseq[3], "ALL 2:3", modseq[2]),
        ("(COUNT) 1:4", modseq[2], "COUNT 2", modseq[4]),
    ];
    for (ret, since, data, want) in cases {
        let r = a.cmd("q", &format!("SEARCH RETURN {ret} {q} {since}"));
        assert!(
            r.contains(&format!("* ESEARCH (TAG \"q\") {data} MODSEQ {want}\r\n")),
            "{ret}: {r}"
        );
    }
    let r = a.cmd("q", &format!("SEARCH RETURN (ALL) 2:3 {q} {}", modseq[4]));
    assert!(r.contains("* ESEARCH (TAG \"q\")\r\n"), "{r}");
    // The entry type must be priv, shared or all.
    let r = a.cmd("q", "SEARCH MODSEQ \"/flags/\\\\seen\" every 1");
    assert!(r.contains("q BAD"), "{r}");
}
