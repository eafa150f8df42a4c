//! LIST (SUBSCRIBED RECURSIVEMATCH) and LSUB with subscribed children of
//! unsubscribed parents (RFC 5258 3.5, RFC 3501 6.3.9), over raw sockets
//! against the real kmp-imapd.
mod common;

use common::raw::Raw;

/// The untagged LIST or LSUB lines of a response, CRLF removed.
fn listed(r: &str, verb: &str) -> Vec<String> {
    r.lines()
        .filter(|l| l.starts_with(&format!("* {verb} ")))
        .map(str::to_string)
        .collect()
}

/// Folders p, p.a, p.a.x, p.b, p.c.y, q.r.s (q and q.r made as parents only);
/// subscribed: p.a.x, p.b, p.c.y, q.r.s.
fn folders(a: &mut Raw) {
    for f in ["p", "p.a", "p.a.x", "p.b", "p.c.y", "q.r.s"] {
        let r = a.cmd("c", &format!("CREATE {f}"));
        assert!(r.contains("c OK"), "{r}");
    }
    for f in ["p.a.x", "p.b", "p.c.y", "q.r.s"] {
        let r = a.cmd("s", &format!("SUBSCRIBE {f}"));
        assert!(r.contains("s OK"), "{r}");
    }
}

#[test]
fn recursivematch_lists_unsubscribed_parents_with_childinfo() {
    let inst = common::imap_instance();
    let mut a = Raw::login(&inst);
    folders(&mut a);
    let r = a.cmd("l", "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" p.%");
    let mut got = listed(&r, "LIST");
    got.sort();
    assert_eq!(
        got,
        vec![
            "* LIST (\\HasChildren) \".\" p.a (\"CHILDINFO\" (\"SUBSCRIBED\"))",
            "* LIST (\\HasNoChildren \\Subscribed) \".\" p.b",
            "* LIST (\\NonExistent \\HasChildren) \".\" p.c (\"CHILDINFO\" (\"SUBSCRIBED\"))",
        ],
        "{r}"
    );
    // A parent whose subscribed children are listed themselves gets no CHILDINFO.
    let r = a.cmd("l", "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (p.a p.a.x)");
    assert_eq!(
        listed(&r, "LIST"),
        vec!["* LIST (\\HasNoChildren \\Subscribed) \".\" p.a.x"],
        "{r}"
    );
    // Not without RECURSIVEMATCH.
    let r = a.cmd("l", "LIST (SUBSCRIBED) \"\" p.%");
    assert_eq!(
        listed(&r, "LIST"),
        vec!["* LIST (\\HasNoChildren \\Subscribed) \".\" p.b"],
        "{r}"
    );
    // With *, the subscribed names match themselves: no parents.
    let r = a.cmd("l", "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" q*");
    assert_eq!(
        listed(&r, "LIST"),
        vec!["* LIST (\\HasNoChildren \\Subscribed) \".\" q.r.s"],
        "{r}"
    );
}

#[test]
fn lsub_percent_lists_the_noselect_parent_of_a_subscribed_child() {
    let inst = common::imap_instance();
    let mut a = Raw::login(&inst);
    folders(&mut a);
    let r = a.cmd("l", "LSUB \"\" p.%");
    let mut got = listed(&r, "LSUB");
    got.sort();
    assert_eq!(
        got,
        vec![
            "* LSUB () \".\" p.b",
            "* LSUB (\\Noselect) \".\" p.a",
            "* LSUB (\\Noselect) \".\" p.c",
        ],
        "{r}"
    );
    let r = a.cmd("l", "LSUB \"\" %");
    // (INBOX and the special-use folders are subscribed from the start.)
    let got = listed(&r, "LSUB");
    for want in ["* LSUB (\\Noselect) \".\" p", "* LSUB (\\Noselect) \".\" q"] {
        assert!(got.iter().any(|l| l == want), "{want}: {r}");
    }
    assert!(
        got.iter().all(|l| !l.contains(" p.") && !l.contains(" q.")),
        "{r}"
    );
    // * reaches the subscribed names themselves: no parent is added.
    let r = a.cmd("l", "LSUB \"\" q*");
    assert_eq!(listed(&r, "LSUB"), vec!["* LSUB () \".\" q.r.s"], "{r}");
    // Once the child is unsubscribed its parent goes too.
    a.cmd("u", "UNSUBSCRIBE p.c.y");
    let r = a.cmd("l", "LSUB \"\" p.%");
    assert!(!r.contains("p.c"), "{r}");
}
