//! kmp-imapd's NOTIFY (RFC 5465) over a raw socket against the real
//! binaries (issue 12): STATUS of watched mailboxes at NOTIFY SET STATUS
//! and when another session changes them, LIST for folders made, renamed
//! and deleted and for subscriptions, METADATA for changed entries.
mod common;
mod imap_raw;

use imap_raw::run;

#[test]
fn watched_mailboxes_report_changes_made_by_other_sessions() {
    let inst = common::imap_instance();
    run(
        &inst,
        r#"
A = C()
lines, _ = A.cmd('CAPABILITY')
assert ' NOTIFY' in lines[0], lines
A.cmd('CREATE Box')
A.cmd('APPEND Box {20+}\r\nSubject: 1\r\n\r\nbody\r\n')
# STATUS at once for SET STATUS; HIGHESTMODSEQ only with FlagChange.
lines, _ = A.cmd('NOTIFY SET STATUS (MAILBOXES Box (MessageNew MessageExpunge))')
assert len(lines) == 1 and re.match(r'\* STATUS Box \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+\)$', lines[0]), lines
lines, _ = A.cmd('NOTIFY SET STATUS (MAILBOXES Box (MessageNew MessageExpunge FlagChange))')
assert re.match(r'\* STATUS Box \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ HIGHESTMODSEQ \d+\)$', lines[0]), lines
lines, _ = A.cmd('NOTIFY SET (MAILBOXES Box (MessageNew MessageExpunge FlagChange))')
assert lines == [], lines

# Another session's APPEND, STORE and EXPUNGE.
B = C()
B.cmd('APPEND Box {20+}\r\nSubject: 2\r\n\r\nbody\r\n')
seen = until(A, lambda s: any('MESSAGES 2 UIDNEXT 3' in l for l in s))
B.cmd('SELECT Box')
B.cmd('STORE 1 +FLAGS (\\Seen)')
seen = until(A, lambda s: any(l.startswith('* STATUS Box (MESSAGES 2 UIDNEXT 3') for l in s))
B.cmd('STORE 1 +FLAGS (\\Deleted)')
B.cmd('EXPUNGE')
seen = until(A, lambda s: any('MESSAGES 1 UIDNEXT 3' in l for l in s))
B.cmd('LOGOUT', ok='OK')

# Folder names, subscriptions and METADATA over the whole account.
lines, _ = A.cmd('NOTIFY SET (PERSONAL (MailboxName SubscriptionChange MailboxMetadataChange)) (SELECTED (MessageNew MessageExpunge))')
D = C()
D.cmd('CREATE &ZbBe+g-')  # 新建
seen = until(A, lambda s: '* LIST () "." &ZbBe+g-' in s)
D.cmd('RENAME &ZbBe+g- Other')
seen = until(A, lambda s: any(l.startswith('* LIST () "." Other ("OLDNAME" (&ZbBe+g-))') for l in s))
D.cmd('SUBSCRIBE Other')
seen = until(A, lambda s: '* LIST (\\Subscribed) "." Other' in s)
D.cmd('SETMETADATA Other (/private/comment "hi")')
seen = until(A, lambda s: '* METADATA Other (/private/comment)' in s)
D.cmd('DELETE Other')
seen = until(A, lambda s: '* LIST (\\NonExistent) "." Other' in s)

# NOTIFY NONE: silence.
A.cmd('NOTIFY NONE')
D.cmd('CREATE Quiet')
import time
time.sleep(1.5)
lines, _ = A.cmd('NOOP')
assert lines == [], lines

# Errors: unknown events, MessageNew without MessageExpunge.
_, tagged = A.cmd('NOTIFY SET (PERSONAL (AnnotationChange MessageNew MessageExpunge))', ok='NO')
assert '[BADEVENT' in tagged, tagged
A.cmd('NOTIFY SET (PERSONAL (MessageNew))', ok='BAD')
A.cmd('NOTIFY SET (PERSONAL (MessageNew (UID) MessageExpunge))', ok='BAD')
"#,
    );
}

/// RFC 5465 5.1: FETCH items named with MessageNew come with each new
/// message of the selected mailbox.
#[test]
fn new_messages_of_the_selected_mailbox_come_with_the_fetch_items_asked() {
    let inst = common::imap_instance();
    run(
        &inst,
        r#"
A = C()
A.cmd('SELECT INBOX')
A.cmd('NOTIFY SET (SELECTED (MessageNew (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)]) MessageExpunge))')
B = C()
body = 'Subject: =?GB2312?B?xOO6ww==?=\r\nFrom: b@example.test\r\n\r\nhi\r\n'
B.cmd('APPEND INBOX {%d+}\r\n%s' % (len(body), body))
seen = until(A, lambda s: any(' FETCH ' in l for l in s))
f = [l for l in seen if ' FETCH ' in l][0]
assert '* 1 EXISTS' in seen, seen
assert f.startswith('* 1 FETCH (UID 1 BODY[HEADER.FIELDS (SUBJECT)] {'), f
assert 'Subject: =?GB2312?B?xOO6ww==?=' in f, f
assert 'From:' not in f, f
# The completion line of the inner FETCH is not sent.
assert not any('FETCH completed' in l for l in seen), seen
lines, _ = A.cmd('FETCH 1 (FLAGS)')
assert 'Seen' not in lines[0], lines
"#,
    );
}

/// RFC 5465 5.2, 5.3 and 6: with `SELECTED` the selected mailbox's new
/// messages, flag changes and expunges are sent while the client waits,
/// with no command (no NOOP, no IDLE).
#[test]
fn selected_mailbox_changes_are_pushed_without_a_command() {
    let inst = common::imap_instance();
    run(
        &inst,
        r#"
A = C()
A.cmd('APPEND INBOX {20+}\r\nSubject: 1\r\n\r\nbody\r\n')
A.cmd('SELECT INBOX')
lines, _ = A.cmd('NOTIFY SET (SELECTED (MessageNew MessageExpunge FlagChange))')
B = C()
B.cmd('APPEND INBOX {20+}\r\nSubject: 2\r\n\r\nbody\r\n')
seen = A.listen(lambda s: '* 2 EXISTS' in s)
B.cmd('SELECT INBOX')
B.cmd('STORE 1 +FLAGS (\\Flagged)')
seen = A.listen(lambda s: any(re.match(r'\* 1 FETCH \(UID 1 FLAGS \(\\Flagged\)\)$', l) for l in s))
B.cmd('STORE 1 +FLAGS (\\Deleted)')
B.cmd('EXPUNGE')
seen = A.listen(lambda s: '* 1 EXPUNGE' in s)
# Nothing more is owed: a NOOP now brings nothing.
lines, _ = A.cmd('NOOP')
assert lines == [], lines
"#,
    );
}

/// RFC 5465 6: `SELECTED-DELAYED` pushes new messages but holds EXPUNGE
/// for a command that may announce it: not FETCH (RFC 3501 7.4.1), NOOP.
#[test]
fn selected_delayed_holds_expunges_for_a_command() {
    let inst = common::imap_instance();
    run(
        &inst,
        r#"
A = C()
A.cmd('APPEND INBOX {20+}\r\nSubject: 1\r\n\r\nbody\r\n')
A.cmd('SELECT INBOX')
A.cmd('NOTIFY SET (SELECTED-DELAYED (MessageNew MessageExpunge))')
B = C()
B.cmd('SELECT INBOX')
B.cmd('STORE 1 +FLAGS (\\Deleted)')
B.cmd('EXPUNGE')
B.cmd('APPEND INBOX {20+}\r\nSubject: 2\r\n\r\nbody\r\n')
seen = A.listen(lambda s: '* 2 EXISTS' in s)
seen += A.listen(None, secs=1.5)
assert not any('EXPUNGE' in l for l in seen), seen
lines, _ = A.cmd('FETCH 1 (UID)')
assert not any('EXPUNGE' in l for l in lines), lines
lines, _ = A.cmd('NOOP')
assert lines == ['* 1 EXPUNGE'], lines
"#,
    );
}

/// RFC 5465 6: `(SELECTED NONE)` silences the selected mailbox: nothing
/// pushed, nothing after NOOP; the session's own EXPUNGE still answers
/// for what it removed; NOTIFY NONE brings the rest.
#[test]
fn selected_none_silences_the_selected_mailbox() {
    let inst = common::imap_instance();
    run(
        &inst,
        r#"
A = C()
A.cmd('APPEND INBOX {20+}\r\nSubject: 1\r\n\r\nbody\r\n')
A.cmd('APPEND INBOX {20+}\r\nSubject: 2\r\n\r\nbody\r\n')
A.cmd('SELECT INBOX')
A.cmd('NOTIFY SET (SELECTED NONE)')
import time
B = C()
B.cmd('APPEND INBOX {20+}\r\nSubject: 3\r\n\r\nbody\r\n')
B.cmd('SELECT INBOX')
B.cmd('STORE 1 +FLAGS (\\Seen)')
seen = A.listen(None, secs=1.5)
assert seen == [], seen
lines, _ = A.cmd('NOOP')
assert lines == [], lines
lines, _ = A.cmd('FETCH 1:* (UID)')
assert len(lines) == 2, lines
# Its own EXPUNGE is answered (and brings the view up to date).
A.cmd('STORE 2 +FLAGS (\\Deleted)')
lines, _ = A.cmd('EXPUNGE')
assert '* 2 EXPUNGE' in lines and '* 2 EXISTS' in lines, lines
B.cmd('APPEND INBOX {20+}\r\nSubject: 4\r\n\r\nbody\r\n')
time.sleep(0.6)
lines, _ = A.cmd('NOOP')
assert lines == [], lines
A.cmd('NOTIFY NONE')
lines, _ = A.cmd('NOOP')
assert '* 3 EXISTS' in lines, lines
"#,
    );
}

/// RFC 5465 5.1: another mailbox's STATUS comes while the client waits
/// for input, and in IDLE with no mailbox selected.
#[test]
fn watched_mailboxes_are_pushed_without_a_command() {
    let inst = common::imap_instance();
    run(
        &inst,
        r#"
A = C()
A.cmd('CREATE Box')
A.cmd('NOTIFY SET (MAILBOXES Box (MessageNew MessageExpunge))')
B = C()
B.cmd('APPEND Box {20+}\r\nSubject: 1\r\n\r\nbody\r\n')
seen = A.listen(lambda s: any(l.startswith('* STATUS Box (MESSAGES 1 UIDNEXT 2') for l in s))
A.s.sendall(b'i1 IDLE\r\n')
assert A.read().startswith('+ '), 'no continuation'
B.cmd('APPEND Box {20+}\r\nSubject: 2\r\n\r\nbody\r\n')
seen = A.listen(lambda s: any(l.startswith('* STATUS Box (MESSAGES 2 UIDNEXT 3') for l in s))
A.s.sendall(b'DONE\r\n')
seen = A.listen(lambda s: any(l.startswith('i1 OK') for l in s))
"#,
    );
}
