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
