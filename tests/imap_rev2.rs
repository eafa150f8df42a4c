//! kmp-imapd once a client ENABLEs IMAP4rev2 (RFC 9051), checked item by
//! item against RFC 9051 appendix E over a raw socket against the real
//! binaries (issue 12).
mod common;
mod imap_raw;

use imap_raw::run;

#[test]
fn a_rev2_session_follows_rfc_9051() {
    let inst = common::imap_instance();
    run(
        &inst,
        r#"
A = C()
lines, _ = A.cmd('CAPABILITY')
assert ' IMAP4rev2 ' in lines[0], lines
lines, _ = A.cmd('ENABLE IMAP4rev2')
assert lines == ['* ENABLED IMAP4rev2'], lines
# Mailbox names are UTF-8, sent as quoted strings (not modified UTF-7,
# not literals).
A.cmd('CREATE "邮件.子"')
A.cmd('CREATE Box')
for i in range(3):
    body = 'Subject: %d\r\n\r\nx\r\n' % i
    A.cmd('APPEND Box {%d+}\r\n%s' % (len(body), body))
lines, _ = A.cmd('LIST "" "邮件*"')
assert lines == ['* LIST (\\Noselect \\HasChildren) "." "邮件"',
                 '* LIST (\\HasNoChildren) "." "邮件.子"'], lines
lines, _ = A.cmd('STATUS "邮件.子" (MESSAGES)')
assert lines == ['* STATUS "邮件.子" (MESSAGES 0)'], lines
# DELETE of a parent that is only a name: HASCHILDREN.
_, tagged = A.cmd('DELETE "邮件"', ok='NO')
assert '[HASCHILDREN]' in tagged, tagged

# SELECT: no RECENT, no UNSEEN code; FETCH FLAGS never \Recent.
lines, _ = A.cmd('SELECT Box')
assert not any('RECENT' in l or 'UNSEEN' in l for l in lines), lines
assert '* 3 EXISTS' in lines, lines
lines, _ = A.cmd('FETCH 1:* (FLAGS)')
assert not any('Recent' in l for l in lines), lines

# SEARCH answers with ESEARCH, even with no match.
lines, _ = A.cmd('SEARCH ALL')
assert lines == ['* ESEARCH (TAG "t%d") ALL 1:3' % A.n], lines
lines, _ = A.cmd('SEARCH SUBJECT nothing')
assert lines == ['* ESEARCH (TAG "t%d")' % A.n], lines
lines, _ = A.cmd('UID SEARCH ALL')
assert lines == ['* ESEARCH (TAG "t%d") UID ALL 1:3' % A.n], lines

# STATUS SIZE and DELETED.
A.cmd('STORE 1 +FLAGS.SILENT (\\Deleted)')
lines, _ = A.cmd('STATUS Box (MESSAGES SIZE DELETED)')
assert re.match(r'\* STATUS Box \(MESSAGES 3 SIZE \d+ DELETED 1\)$', lines[0]), lines

# \NonExistent for a subscribed name that does not exist.
A.cmd('SUBSCRIBE Gone')
lines, _ = A.cmd('LIST (SUBSCRIBED) "" "Gone"')
assert lines == ['* LIST (\\NonExistent \\HasNoChildren \\Subscribed) "." Gone'], lines

# UID EXPUNGE, UNSELECT, and [CLOSED] when another SELECT replaces it.
lines, _ = A.cmd('UID EXPUNGE 1')
assert lines == ['* 1 EXPUNGE'], lines
lines, _ = A.cmd('SELECT INBOX')
assert lines[0] == '* OK [CLOSED] Previous mailbox closed', lines
A.cmd('UNSELECT')
A.cmd('FETCH 1 FLAGS', ok='BAD')
"#,
    );
}
