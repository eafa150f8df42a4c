//! kmp-imapd's \Recent for APPENDed and COPYed mail, and ENVELOPE's address
//! forms (groups, source routes), as Python's imaplib sees them against the
//! real binaries (issue 12).
mod common;

use common::{python, Instance};

/// An instance with kmp-authd, kmp-imapd and the user u@example.test / secret.
fn start() -> Instance {
    common::imap_instance()
}

/// Runs a Python script with imaplib, the port as argv[1]; it must print OK.
fn py(inst: &Instance, script: &str) {
    let full = format!(
        "import imaplib, sys, socket\nsocket.setdefaulttimeout(60)\nPORT = int(sys.argv[1])\n\
         def conn():\n    M = imaplib.IMAP4('127.0.0.1', PORT)\n    M.login('u@example.test', 'secret')\n    return M\n\
         def recent(M):\n    return M.response('RECENT')[1]\n{script}\nprint('OK')\n"
    );
    let out = python(&full, &[&(inst.base + 143).to_string()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.trim_end().ends_with("OK"),
        "script failed:\n{}\n{}\nserver log:\n{}",
        text,
        String::from_utf8_lossy(&out.stderr),
        inst.log("kmp-imapd")
    );
}

/// Issue 12: APPENDed messages went to cur/ and were never \Recent: STATUS
/// (RECENT) said 0, SELECT `* 0 RECENT`, SEARCH NEW found nothing.
#[test]
fn appended_mail_is_recent_for_the_first_session_only() {
    let inst = start();
    py(
        &inst,
        r#"
A = conn()
assert A.create('Box')[0] == 'OK'
assert A.append('Box', None, None, b'Subject: one\r\n\r\nx\r\n')[0] == 'OK'
assert A.append('Box', '(\\Flagged)', None, b'Subject: two\r\n\r\ny\r\n')[0] == 'OK'
typ, d = A.status('Box', '(MESSAGES RECENT)')
assert typ == 'OK' and b'RECENT 2' in d[0], d
typ, d = A.select('Box')
assert typ == 'OK' and recent(A) == [b'2'], (typ, d, A.untagged_responses)
typ, d = A.fetch('1:2', '(FLAGS)')
assert b'\\Recent' in d[0] and b'\\Recent' in d[1], d
assert b'\\Flagged' in d[1], d
typ, d = A.search(None, 'NEW')
assert d == [b'1 2'], d
typ, d = A.search(None, 'OLD')
assert d == [b''], d
# STATUS of the selected folder counts this session's \Recent messages.
typ, d = A.status('Box', '(RECENT)')
assert b'RECENT 2' in d[0], d

# A second session sees them as old, and STATUS counts none.
B = conn()
typ, d = B.status('Box', '(RECENT)')
assert b'RECENT 0' in d[0], d
typ, d = B.select('Box')
assert recent(B) == [b'0'], B.untagged_responses
typ, d = B.fetch('1:2', '(FLAGS)')
assert not any(b'\\Recent' in x for x in d), d
assert b'\\Flagged' in d[1], d
typ, d = B.search(None, 'NEW')
assert d == [b''], d
typ, d = B.search(None, 'OLD')
assert d == [b'1 2'], d
B.logout()

# The session that appends to its own selected folder sees it as recent.
typ, d = A.append('Box', None, None, b'Subject: three\r\n\r\nz\r\n')
assert typ == 'OK', d
typ, d = A.fetch('3', '(FLAGS)')
assert b'\\Recent' in d[0], d
typ, d = A.search(None, 'NEW')
assert d == [b'1 2 3'], d
A.logout()
C = conn()
typ, d = C.select('Box')
assert recent(C) == [b'0'], C.untagged_responses
C.logout()
"#,
    );
}

/// Issue 12: COPYed messages were not \Recent in their new folder.
#[test]
fn copied_mail_is_recent_in_the_destination() {
    let inst = start();
    py(
        &inst,
        r#"
A = conn()
assert A.create('Dest')[0] == 'OK'
assert A.append('INBOX', '(\\Seen)', None, b'Subject: one\r\n\r\nx\r\n')[0] == 'OK'
assert A.append('INBOX', None, None, b'Subject: two\r\n\r\ny\r\n')[0] == 'OK'
A.select('INBOX')
typ, d = A.copy('1:2', 'Dest')
assert typ == 'OK', d
typ, d = A.status('Dest', '(RECENT MESSAGES)')
assert b'RECENT 2' in d[0] and b'MESSAGES 2' in d[0], d
B = conn()
typ, d = B.select('Dest')
assert recent(B) == [b'2'], B.untagged_responses
typ, d = B.fetch('1:2', '(FLAGS)')
assert b'\\Seen' in d[0] and b'\\Recent' in d[0] and b'\\Recent' in d[1], d
# NEW is \Recent and not \Seen.
typ, d = B.search(None, 'NEW')
assert d == [b'2'], d
# Still \Recent for B, which has them selected; for nobody else.
typ, d = B.status('Dest', '(RECENT)')
assert b'RECENT 2' in d[0], d
typ, d = A.status('Dest', '(RECENT)')
assert b'RECENT 0' in d[0], d
B.logout()
# MOVE too (RFC 6851 is COPY then EXPUNGE).
imaplib.Commands.setdefault('MOVE', ('SELECTED',))
typ, d = A._simple_command('MOVE', '1', 'Dest')
assert typ == 'OK', d
typ, d = A.status('Dest', '(RECENT MESSAGES)')
assert b'RECENT 1' in d[0] and b'MESSAGES 3' in d[0], d
A.logout()
"#,
    );
}

/// Issue 12: group syntax gave a bogus mailbox for a comment in a group, and
/// a source route landed in the mailbox field instead of the adl.
#[test]
fn envelope_groups_and_routes_with_imaplib() {
    let inst = start();
    py(
        &inst,
        r#"
A = conn()
msg = (b'From: Ann <ann@example.test>\r\n'
       b'To: undisclosed-recipients:;\r\n'
       b'Cc: group:;, group2: (foo) ;\r\n'
       b'Bcc: <@route:user@domain>\r\n'
       b'Subject: groups\r\n'
       b'Message-ID: <g@example.test>\r\n\r\nbody\r\n')
assert A.append('INBOX', None, None, msg)[0] == 'OK'
A.select('INBOX')
typ, d = A.fetch('1', '(ENVELOPE)')
got = d[0].decode()
want = ('1 (ENVELOPE (NIL "groups" (("Ann" NIL "ann" "example.test")) '
        '(("Ann" NIL "ann" "example.test")) (("Ann" NIL "ann" "example.test")) '
        '((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) '
        '((NIL NIL "group" NIL)(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL NIL NIL)) '
        '((NIL "@route" "user" "domain")) NIL "<g@example.test>"))')
assert got == want, got
A.logout()
"#,
    );
}
