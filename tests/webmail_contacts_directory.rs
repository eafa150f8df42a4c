//! The domain address book: kmp-imapd's server entry
//! /shared/vendor/kmpromail/directory, made from kmp-authd's user list of
//! the logged-in user's own domain and the cards its postmaster keeps; and
//! the webmail's page of it. A user of one domain never sees another's.
//! Also the bound on the sum of a user's METADATA values.
mod common;
mod imap_raw;

use common::webmail::webmail_instance_with;
use imap_raw::run;

fn add_user(inst: &common::Instance, addr: &str) {
    let out = inst.ctl_stdin(
        &["user", "add", addr, "--password-stdin"],
        Some(b"secret\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn each_domain_sees_its_own_directory_only() {
    let Some(w) = webmail_instance_with(&[("imapd", "metadata_max_total = \"64K\"")]) else {
        return;
    };
    let inst = &w.inst;
    add_user(inst, "v@example.test");
    add_user(inst, "postmaster@example.test");
    add_user(inst, "off@example.test");
    inst.ctl_ok(&["user", "disable", "off@example.test"]);
    inst.ctl_ok(&["domain", "add", "other.test"]);
    add_user(inst, "w@other.test");
    add_user(inst, "postmaster@other.test");
    run(
        inst,
        r#"
def login(who):
    c = C(login=False)
    c.cmd('LOGIN %s secret' % who)
    return c
def directory(c):
    lines, _ = c.cmd('GETMETADATA "" /shared/vendor/kmpromail/directory')
    return '\n'.join(lines)
U = C()
d = directory(U)
for a in ['u@example.test', 'v@example.test', 'postmaster@example.test']:
    assert 'EMAIL;PREF=1:' + a in d, (a, d)
assert 'off@example.test' not in d, d
assert 'other.test' not in d, d
# DEPTH from a parent finds it too; no client can set it.
lines, _ = U.cmd('GETMETADATA (DEPTH infinity) "" /shared/vendor/kmpromail')
assert 'v@example.test' in '\n'.join(lines), lines
U.cmd('SETMETADATA "" (/shared/vendor/kmpromail/directory "x")', ok='NO')

# The postmaster adds an entry for the whole domain, in their own store.
card = 'BEGIN:VCARD\r\nVERSION:4.0\r\nFN:前台\r\nEMAIL:reception@example.test\r\nEND:VCARD\r\n'.encode()
P = login('postmaster@example.test')
P.n += 1
P.s.sendall(b't%d SETMETADATA "" (/private/vendor/kmpromail/directory {%d+}\r\n' % (P.n, len(card)) + card + b')\r\n')
l = P.read()
assert l.startswith('t%d OK' % P.n), l
assert 'reception@example.test' in directory(U)
assert '前台' in directory(login('v@example.test'))

# The other domain: its own users and nothing of example.test.
W = login('w@other.test')
d = directory(W)
assert 'EMAIL;PREF=1:w@other.test' in d, d
assert 'example.test' not in d, d
# A user who sets a private entry of that name changes no one's book.
W.cmd('SETMETADATA "" (/private/vendor/kmpromail/directory "BEGIN:VCARD")')
assert 'BEGIN:VCARD' not in directory(U).replace('BEGIN:VCARD\r\nVERSION', '')

# The sum of one user's values is bounded (64K here): growing past it is
# refused, shrinking is not.
big = 'x' * 40000
U.cmd('SETMETADATA "" (/private/a "%s")' % big)
lines, tagged = U.cmd('SETMETADATA "" (/private/b "%s")' % big, ok='NO')
assert '[METADATA TOOMANY]' in tagged, tagged
U.cmd('SETMETADATA "" (/private/a NIL)')
U.cmd('SETMETADATA "" (/private/b "%s")' % big)
"#,
    );

    // The webmail's domain page: the same list, and nothing of other.test.
    let s = w.login("u@example.test", "secret");
    let page = w.get("/contacts?book=domain", Some(&s));
    assert_eq!(page.status, 200, "{}", page.body);
    for a in [
        "u@example.test",
        "v@example.test",
        "postmaster@example.test",
        "reception@example.test",
    ] {
        assert!(page.body.contains(a), "{a}: {}", page.body);
    }
    assert!(page.body.contains("前台"));
    assert!(!page.body.contains("other.test"));
    assert!(!page.body.contains("off@example.test"));
    // Read-only: no checkboxes, no import form; "add to my contacts" links.
    assert!(!page.body.contains("name=\"id\""));
    assert!(!page.body.contains("/contacts/import"));
    assert!(page.body.contains("class=\"copy\""));
    // Only the postmaster may change the domain's entries.
    assert!(!page.body.contains("/contacts/domain"));
    let csrf = page.csrf();
    let r = w.post(
        "/contacts/domain",
        Some(&s),
        &[("csrf", &csrf), ("do", "add"), ("email", "x@example.test")],
    );
    assert_eq!(r.status, 403);
    // The postmaster's page: add one, see it from another user, remove one.
    let pm = w.login("postmaster@example.test", "secret");
    let page = w.get("/contacts?book=domain", Some(&pm));
    assert!(page.body.contains("/contacts/domain"), "{}", page.body);
    let csrf = page.csrf();
    let r = w.post(
        "/contacts/domain",
        Some(&pm),
        &[
            ("csrf", &csrf),
            ("do", "add"),
            ("name", "财务部"),
            ("email", "finance@example.test"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let s = w.login("v@example.test", "secret");
    let page = w.get("/contacts?book=domain", Some(&s));
    assert!(page.body.contains("财务部"), "{}", page.body);
    assert!(page.body.contains("前台"));
    let r = w.post(
        "/contacts/domain",
        Some(&pm),
        &[
            ("csrf", &csrf),
            ("do", "delete"),
            ("email", "reception@example.test"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let page = w.get("/contacts?book=domain", Some(&s));
    assert!(!page.body.contains("前台"));
    assert!(page.body.contains("财务部"));

    let s = w.login("w@other.test", "secret");
    let page = w.get("/contacts?book=domain", Some(&s));
    assert!(page.body.contains("w@other.test"));
    assert!(!page.body.contains("example.test"), "{}", page.body);
}
