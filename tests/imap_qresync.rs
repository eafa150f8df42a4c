//! kmp-imapd's CONDSTORE and QRESYNC (RFC 7162) as a client sees them over
//! a raw socket against the real binaries (issue 12): CONDSTORE-enabling
//! commands, SELECT (QRESYNC ...), UID FETCH (CHANGEDSINCE n VANISHED),
//! VANISHED instead of EXPUNGE, and the answer when the index no longer
//! reaches back to the client's MODSEQ.
mod common;
mod imap_raw;

use imap_raw::run;

/// Issue 12: `FETCH 1 (MODSEQ)` did not enable CONDSTORE: no
/// `OK [HIGHESTMODSEQ]`, and later STORE answers had no MODSEQ.
#[test]
fn fetch_modseq_enables_condstore_while_selected() {
    let inst = common::imap_instance();
    run(
        &inst,
        r#"
A = C()
A.cmd('CREATE Box')
for i in range(4):
    A.cmd('APPEND Box {%d+}\r\nSubject: %d\r\n\r\nx\r\n' % (len('Subject: %d\r\n\r\nx\r\n' % i), i))
lines, _ = A.cmd('SELECT Box')
assert not any('HIGHESTMODSEQ' in l for l in lines), lines
lines, _ = A.cmd('FETCH 1 (MODSEQ)')
hm = num(lines, r'OK \[HIGHESTMODSEQ (\d+)\]')
assert any(re.match(r'\* 1 FETCH \(MODSEQ \(\d+\)\)', l) for l in lines), lines
m = {}
for n in (1, 3, 2, 4):
    lines, _ = A.cmd('STORE %d +FLAGS (\\Seen)' % n)
    m[n] = num(lines, r'^\* %d FETCH \(.*MODSEQ \((\d+)\)' % n)
    assert m[n] > hm, (m, hm)
# Only once: a second enabling command says nothing more.
lines, _ = A.cmd('FETCH 2 (MODSEQ)')
assert not any('HIGHESTMODSEQ' in l for l in lines), lines
# ESEARCH: MIN and MAX carry the MODSEQ of the message returned, ALL the highest.
lines, _ = A.cmd('SEARCH RETURN (MIN) 1:3 MODSEQ 1')
assert lines == ['* ESEARCH (TAG "%s") MIN 1 MODSEQ %d' % ('t%d' % A.n, m[1])], lines
lines, _ = A.cmd('SEARCH RETURN (MAX) 1:3 MODSEQ 1')
assert lines == ['* ESEARCH (TAG "%s") MAX 3 MODSEQ %d' % ('t%d' % A.n, m[3])], lines
lines, _ = A.cmd('SEARCH RETURN (ALL) 1:3 MODSEQ 1')
assert lines == ['* ESEARCH (TAG "%s") ALL 1:3 MODSEQ %d' % ('t%d' % A.n, m[2])], lines

# STORE UNCHANGEDSINCE and SEARCH MODSEQ enable it too.
B = C()
B.cmd('SELECT Box')
lines, _ = B.cmd('STORE 1 (UNCHANGEDSINCE %d) +FLAGS (\\Flagged)' % m[4])
assert any('HIGHESTMODSEQ' in l for l in lines), lines
assert any(re.match(r'\* 1 FETCH \(FLAGS \(.*\) MODSEQ \(\d+\)\)', l) for l in lines), lines
D = C()
D.cmd('SELECT Box')
lines, _ = D.cmd('SEARCH MODSEQ 1')
assert any('HIGHESTMODSEQ' in l for l in lines), lines
"#,
    );
}

/// RFC 7162 3.2: what a QRESYNC client sees of another session's changes,
/// live and at its next SELECT.
#[test]
fn qresync_reports_vanished_uids_and_changed_flags() {
    let inst = common::imap_instance();
    run(
        &inst,
        r#"
A = C()
A.cmd('CREATE Q')
for i in range(6):
    body = 'Subject: %d\r\n\r\nx\r\n' % i
    A.cmd('APPEND Q {%d+}\r\n%s' % (len(body), body))
# Without ENABLE QRESYNC the parameter is refused.
A.cmd('SELECT Q (QRESYNC (1 1))', ok='BAD')
lines, _ = A.cmd('ENABLE QRESYNC')
assert '* ENABLED QRESYNC' in lines, lines
lines, _ = A.cmd('SELECT Q')
uv = num(lines, r'UIDVALIDITY (\d+)')
hm0 = num(lines, r'HIGHESTMODSEQ (\d+)')

B = C()
B.cmd('SELECT Q')
B.cmd('STORE 2 +FLAGS (\\Flagged)')
B.cmd('STORE 3,5 +FLAGS (\\Deleted)')
lines, _ = B.cmd('EXPUNGE')
assert '* 5 EXPUNGE' in lines and '* 3 EXPUNGE' in lines, lines

# Live: VANISHED, not EXPUNGE, and the flag change with its MODSEQ.
lines, _ = A.cmd('NOOP')
assert '* VANISHED 3,5' in lines, lines
assert not any('EXPUNGE' in l for l in lines), lines
assert any(re.match(r'\* 2 FETCH \(UID 2 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)', l) for l in lines), lines
# Our own EXPUNGE too, with the new HIGHESTMODSEQ in the tagged OK.
A.cmd('STORE 4 +FLAGS (\\Deleted)')
lines, tagged = A.cmd('EXPUNGE')
assert lines == ['* VANISHED 6'], lines
hm1 = num([tagged], r'OK \[HIGHESTMODSEQ (\d+)\]')

# UID FETCH (CHANGEDSINCE VANISHED): the expunged UIDs of the set first.
lines, _ = A.cmd('UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)' % hm0)
assert lines[0] == '* VANISHED (EARLIER) 3,5:6', lines
assert len(lines) == 2 and 'UID 2 ' in lines[1], lines
lines, _ = A.cmd('UID FETCH 1:4 (FLAGS) (CHANGEDSINCE %d VANISHED)' % hm0)
assert lines[0] == '* VANISHED (EARLIER) 3', lines
A.cmd('FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)', ok='BAD')

# A new session resynchronises from what it knew.
N = C()
N.cmd('ENABLE QRESYNC')
N.cmd('SELECT INBOX')
lines, _ = N.cmd('SELECT Q (QRESYNC (%d %d))' % (uv, hm0))
assert lines[0] == '* OK [CLOSED] Previous mailbox closed', lines
assert '* VANISHED (EARLIER) 3,5:6' in lines, lines
fetches = [l for l in lines if ' FETCH ' in l]
assert len(fetches) == 1 and re.match(r'\* 2 FETCH \(UID 2 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)', fetches[0]), lines
assert num(lines, r'HIGHESTMODSEQ (\d+)') == hm1, lines
# Known UIDs narrow both answers.
lines, _ = N.cmd('EXAMINE Q (QRESYNC (%d %d 1,3:4))' % (uv, hm0))
assert '* VANISHED (EARLIER) 3' in lines, lines
assert not any(' FETCH ' in l for l in lines), lines
# Up to date: nothing to say. Another UIDVALIDITY: nothing either.
lines, _ = N.cmd('SELECT Q (QRESYNC (%d %d))' % (uv, hm1))
assert not any('VANISHED' in l or ' FETCH ' in l for l in lines), lines
lines, _ = N.cmd('SELECT Q (QRESYNC (%d %d))' % (uv + 1, hm0))
assert not any('VANISHED' in l or ' FETCH ' in l for l in lines), lines
"#,
    );
}

/// RFC 7162 3.2.5.2: when the tombstones no longer reach back to the
/// client's MODSEQ, every known UID that is not there is reported, narrowed
/// by the client's sequence match data.
#[test]
fn qresync_past_the_tombstones_lists_every_missing_uid() {
    let inst = common::imap_instance();
    run(
        &inst,
        r#"
A = C()
A.cmd('CREATE Old')
for i in range(5):
    body = 'Subject: %d\r\n\r\nx\r\n' % i
    A.cmd('APPEND Old {%d+}\r\n%s' % (len(body), body))
lines, _ = A.cmd('SELECT Old (CONDSTORE)')
uv = num(lines, r'UIDVALIDITY (\d+)')
hm0 = num(lines, r'HIGHESTMODSEQ (\d+)')
A.cmd('STORE 2,4 +FLAGS (\\Deleted)')
A.cmd('EXPUNGE')
A.cmd('LOGOUT', ok='OK')
"#,
    );
    // Pretend the index was compacted past every expunge so far.
    let index = inst
        .path()
        .join("mail/example.test/u/.Old/kmpromail-uidlist");
    let text = std::fs::read_to_string(&index).unwrap();
    let (head, rest) = text.split_once('\n').unwrap();
    let head: String = head.split(" T").next().unwrap().to_string();
    std::fs::write(&index, format!("{head} T999999\n{rest}")).unwrap();
    run(
        &inst,
        r#"
N = C()
N.cmd('ENABLE QRESYNC')
lines, _ = N.cmd('EXAMINE Old')
uv = num(lines, r'UIDVALIDITY (\d+)')
lines, _ = N.cmd('EXAMINE Old (QRESYNC (%d 1))' % uv)
assert '* VANISHED (EARLIER) 2,4' in lines, lines
# Message 2 is still UID 3 where the client looks: nothing below it went.
lines, _ = N.cmd('EXAMINE Old (QRESYNC (%d 1 1:5 (2 3)))' % uv)
assert '* VANISHED (EARLIER) 4' in lines, lines
lines, _ = N.cmd('UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)')
assert lines[0] == '* VANISHED (EARLIER) 2,4', lines
"#,
    );
}
