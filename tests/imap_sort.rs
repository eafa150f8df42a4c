//! kmp-imapd's SORT (RFC 5256), SORT=DISPLAY (RFC 5957), ESORT (RFC 5267),
//! PARTIAL (RFC 9394) and SEARCHRES (RFC 5182), as Python's imaplib sees
//! them against the real binaries, and the sort key cache beside the UID
//! index (issue 12).
mod common;

use common::{python, Instance};

/// Runs a Python script with imaplib, the port as argv[1] and the user's
/// Maildir as argv[2]; it must print OK.
fn py(inst: &Instance, script: &str) {
    let full = format!(
        "import imaplib, sys, socket, os, base64\nsocket.setdefaulttimeout(60)\n\
         PORT = int(sys.argv[1])\nMAILDIR = sys.argv[2]\n\
         def conn():\n    M = imaplib.IMAP4('127.0.0.1', PORT)\n    M.login('u@example.test', 'secret')\n    return M\n\
         def cmd(M, *args):\n    typ, d = M._simple_command(*args)\n    return typ, d\n\
         def untagged(M, name):\n    return M.untagged_responses.pop(name, [])\n\
         def sort(M, *args):\n    typ, d = M._simple_command('SORT', *args)\n    assert typ == 'OK', (args, typ, d)\n    return (untagged(M, 'SORT')[0] or b'').decode()\n\
         def esearch(M, name, *args):\n    typ, d = M._simple_command(name, *args)\n    assert typ == 'OK', (args, typ, d)\n    v = untagged(M, 'ESEARCH')\n    return v[0].decode().split(')', 1)[1].strip() if v else None\n\
         def b64(s, cs):\n    return '=?%s?b?%s?=' % (cs, base64.b64encode(s.encode(cs)).decode())\n\
         {script}\nprint('OK')\n"
    );
    let maildir = inst.path().join("mail/example.test/u");
    let out = python(
        &full,
        &[
            &(inst.base + 143).to_string(),
            maildir.to_str().unwrap_or_default(),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.trim_end().ends_with("OK"),
        "script failed:\n{}\n{}\nserver log:\n{}",
        text,
        String::from_utf8_lossy(&out.stderr),
        inst.log("kmp-imapd")
    );
}

/// Five messages whose every key sorts differently; APPENDed with dates so
/// ARRIVAL differs from mailbox order.
const FIVE: &str = r#"
M = conn()
assert M.create('S')[0] == 'OK'
msgs = [
  ('"05-Mar-2024 10:00:00 +0000"', 'From: Zed <zed@a.example>\r\nTo: bob@b.example\r\nCc: carol@c.example\r\nDate: Mon, 04 Mar 2024 09:00:00 +0000\r\nSubject: Re: beta\r\n\r\n' + 'x' * 50 + '\r\n'),
  ('"01-Mar-2024 10:00:00 +0000"', 'From: "Amy" <yolanda@a.example>\r\nTo: Xavier <alice@b.example>\r\nDate: Mon, 04 Mar 2024 11:00:00 +0200\r\nSubject: alpha\r\n\r\n' + 'x' * 10 + '\r\n'),
  ('"03-Mar-2024 10:00:00 +0000"', 'From: bert@a.example\r\nTo: "Walt" <walt@b.example>\r\nCc: Anne <anne@c.example>\r\nSubject: [list] Fwd: gamma (fwd)\r\n\r\n' + 'x' * 30 + '\r\n'),
  ('"02-Mar-2024 10:00:00 +0000"', 'From: =?iso-8859-1?q?=C9mile?= <emile@a.example>\r\nTo: zoe@b.example\r\nDate: Sun, 03 Mar 2024 23:00:00 -0500\r\nSubject: BETA\r\n\r\n' + 'x' * 40 + '\r\n'),
  ('"04-Mar-2024 10:00:00 +0000"', 'To: undisclosed-recipients:;\r\nDate: Sat, 02 Mar 2024 00:00:00 +0000\r\nSubject: Alpha\r\n\r\n' + 'x' * 20 + '\r\n'),
]
for date, m in msgs:
    typ, d = M.append('S', None, date, m.encode())
    assert typ == 'OK', d
typ, d = M.select('S')
assert typ == 'OK', d
"#;

#[test]
fn sort_by_every_key_with_reverse_and_mailbox_order_for_ties() {
    let inst = common::imap_instance();
    py(
        &inst,
        &format!(
            r#"{FIVE}
caps = M.capability()[1][0].decode().split()
for c in ('SORT', 'SORT=DISPLAY', 'ESORT', 'SEARCHRES', 'PARTIAL'):
    assert c in caps, caps
# ARRIVAL: INTERNALDATE.
assert sort(M, '(ARRIVAL)', 'UTF-8', 'ALL') == '2 4 3 5 1'
assert sort(M, '(REVERSE ARRIVAL)', 'UTF-8', 'ALL') == '1 5 3 4 2'
# DATE: the Date: header in UTC, INTERNALDATE when there is none (3).
# 5 Mar 2 00:00, 3 Mar 3 10:00 (internal), 2 Mar 4 09:00, 1 Mar 4 09:00
# (a tie kept in mailbox order), 4 Mar 4 04:00.
assert sort(M, '(DATE)', 'UTF-8', 'ALL') == '5 3 4 1 2', sort(M, '(DATE)', 'UTF-8', 'ALL')
# REVERSE reverses the dates, not the tie rule: 1 and 2 stay in mailbox order.
assert sort(M, '(REVERSE DATE)', 'UTF-8', 'ALL') == '1 2 4 3 5', sort(M, '(REVERSE DATE)', 'UTF-8', 'ALL')
# With a second criterion the tie goes to it: 2 (alpha) before 1 (beta).
assert sort(M, '(REVERSE DATE SUBJECT)', 'UTF-8', 'ALL') == '2 1 4 3 5'
# SIZE: RFC822.SIZE.
assert sort(M, '(SIZE)', 'UTF-8', 'ALL') == '5 2 3 4 1'
assert sort(M, '(REVERSE SIZE)', 'UTF-8', 'ALL') == '1 4 3 2 5'
# SUBJECT: base subjects alpha, alpha, beta, beta, gamma; ties in mailbox
# order, and REVERSE only reverses the criterion, not the tie rule.
assert sort(M, '(SUBJECT)', 'UTF-8', 'ALL') == '2 5 1 4 3'
assert sort(M, '(REVERSE SUBJECT)', 'UTF-8', 'ALL') == '3 1 4 2 5'
assert sort(M, '(SUBJECT REVERSE SIZE)', 'UTF-8', 'ALL') == '2 5 1 4 3'
# FROM: the first From's mailbox (bert, emile, yolanda, zed; none is '').
assert sort(M, '(FROM)', 'UTF-8', 'ALL') == '5 3 4 2 1'
# TO: alice, bob, undisclosed-recipients (a group), walt, zoe.
assert sort(M, '(TO)', 'UTF-8', 'ALL') == '2 1 5 3 4'
# CC: none (2, 4, 5) first, then anne, carol.
assert sort(M, '(CC)', 'UTF-8', 'ALL') == '2 4 5 3 1'
# DISPLAYFROM: the display name, else the address: '' (5), Amy,
# bert@a.example, Zed, then \u00c9mile (decoded; i;ascii-casemap compares
# other characters by code point, after every ASCII letter).
assert sort(M, '(DISPLAYFROM)', 'UTF-8', 'ALL') == '5 2 3 1 4', sort(M, '(DISPLAYFROM)', 'UTF-8', 'ALL')
# DISPLAYTO: bob@b.example, undisclosed-recipients, Walt, Xavier, zoe@b.example.
assert sort(M, '(DISPLAYTO)', 'UTF-8', 'ALL') == '1 5 3 2 4'
# The search keys choose the messages; UID SORT answers UIDs.
assert sort(M, '(SUBJECT)', 'UTF-8', 'LARGER', '140') == '1 4 3'
typ, d = M.fetch('1:5', '(UID)')
uids = [int(x.split()[2].rstrip(b')')) for x in d]
typ, d = M._simple_command('UID', 'SORT', '(SUBJECT)', 'UTF-8', 'ALL')
assert typ == 'OK', d
want = ' '.join(str(uids[i - 1]) for i in (2, 5, 1, 4, 3))
assert untagged(M, 'SORT')[0].decode() == want
# An empty result is a bare SORT response.
assert sort(M, '(DATE)', 'UTF-8', 'SUBJECT', 'nothing-like-this') in ('', None)
# Errors: an unknown charset is NO [BADCHARSET], bad syntax BAD.
typ, d = M._simple_command('SORT', '(DATE)', 'X-NO-SUCH', 'ALL')
assert typ == 'NO' and b'BADCHARSET' in d[0], (typ, d)
try:
    M._simple_command('SORT', '(WEIGHT)', 'UTF-8', 'ALL')
    raise AssertionError('BAD expected')
except imaplib.IMAP4.error as e:
    assert 'Unknown sort criterion' in str(e), e
M.logout()
"#
        ),
    );
}

#[test]
fn esort_partial_and_searchres() {
    let inst = common::imap_instance();
    py(
        &inst,
        &format!(
            r#"{FIVE}
# ESORT: MIN and MAX are the first and last in sort order (RFC 5267 3.2),
# ALL keeps the order with ascending runs as ranges.
assert esearch(M, 'SORT', 'RETURN', '(MIN MAX COUNT ALL)', '(SUBJECT)', 'UTF-8', 'ALL') == 'MIN 2 MAX 3 COUNT 5 ALL 2,5,1,4,3'
assert esearch(M, 'SORT', 'RETURN', '()', '(REVERSE ARRIVAL)', 'UTF-8', 'ALL') == 'ALL 1,5,3:4,2'
assert esearch(M, 'SORT', 'RETURN', '(COUNT)', '(ARRIVAL)', 'UTF-8', 'SUBJECT', 'none') == 'COUNT 0'
# PARTIAL: positions in the sorted result, either order, from the end.
assert esearch(M, 'SORT', 'RETURN', '(PARTIAL 4:2)', '(SUBJECT)', 'UTF-8', 'ALL') == 'PARTIAL (2:4 5,1,4)'
assert esearch(M, 'SORT', 'RETURN', '(PARTIAL -1:-2)', '(SUBJECT)', 'UTF-8', 'ALL') == 'PARTIAL (-1:-2 4,3)'
assert esearch(M, 'SEARCH', 'RETURN', '(PARTIAL 2:3)', 'ALL') == 'PARTIAL (2:3 2:3)'
assert esearch(M, 'SEARCH', 'RETURN', '(PARTIAL 9:10)', 'ALL') == 'PARTIAL (9:10 NIL)'
typ, d = M.fetch('1:5', '(UID)')
uids = [int(x.split()[2].rstrip(b')')) for x in d]
assert esearch(M, 'UID', 'SEARCH', 'RETURN', '(PARTIAL -1:-1)', 'ALL') == 'UID PARTIAL (-1:-1 %d)' % uids[4]
for bad in ('(PARTIAL 1)', '(PARTIAL 1:*)', '(PARTIAL 0:3)', '(PARTIAL 1:3 ALL)'):
    try:
        M._simple_command('SEARCH', 'RETURN', bad, 'ALL')
        raise AssertionError('BAD expected for ' + bad)
    except imaplib.IMAP4.error:
        pass

# SEARCHRES: SAVE alone sends no ESEARCH; $ is the saved result.
assert esearch(M, 'SEARCH', 'RETURN', '(SAVE)', 'SUBJECT', 'alpha') is None
typ, d = M.fetch('$', '(UID)')
assert [x.split()[0] for x in d] == [b'2', b'5'], d
typ, d = M._simple_command('UID', 'FETCH', '$', '(FLAGS)')
assert typ == 'OK' and len(untagged(M, 'FETCH')) == 2
assert esearch(M, 'SEARCH', 'RETURN', '(ALL)', 'OR', '$', 'SUBJECT', 'gamma') == 'ALL 2:3,5'
assert sort(M, '(REVERSE SIZE)', 'UTF-8', '$') == '2 5'
typ, d = M.store('$', '+FLAGS', '(\\Flagged)')
assert typ == 'OK', d
assert esearch(M, 'SEARCH', 'RETURN', '(ALL)', 'FLAGGED') == 'ALL 2,5'
# SAVE with MIN and MAX keeps only those two (RFC 5182 2.1).
assert esearch(M, 'SEARCH', 'RETURN', '(SAVE MIN MAX)', '1:4') == 'MIN 1 MAX 4'
assert esearch(M, 'SEARCH', 'RETURN', '(ALL)', '$') == 'ALL 1,4'
# SORT's SAVE keeps the sorted result; PARTIAL with SAVE only the window.
assert esearch(M, 'SORT', 'RETURN', '(SAVE PARTIAL 1:2)', '(SUBJECT)', 'UTF-8', 'ALL') == 'PARTIAL (1:2 2,5)'
assert esearch(M, 'SEARCH', 'RETURN', '(ALL)', 'UID', '$') == 'ALL 2,5'
# After an expunge, $ holds what is left, renumbered.
typ, d = M.store('2', '+FLAGS', '(\\Deleted)')
M.expunge()
assert esearch(M, 'SEARCH', 'RETURN', '(ALL)', '$') == 'ALL 4'
typ, d = M.copy('$', 'INBOX')
assert typ == 'OK', d
# A new selection forgets it: $ is empty.
typ, d = M.select('S')
assert esearch(M, 'SEARCH', 'RETURN', '(COUNT)', '$') == 'COUNT 0'
M.logout()
"#
        ),
    );
}

/// Subjects and names in GB2312, GBK, Big5 and UTF-8 decode to the same
/// text, so they sort and group together; a SORT whose search string is
/// sent in GB2312 finds them.
#[test]
fn chinese_subjects_sort_right_in_every_charset() {
    let inst = common::imap_instance();
    py(
        &inst,
        r#"
M = conn()
assert M.create('C')[0] == 'OK'
msgs = [
  'Subject: ' + b64('回复: 周报', 'utf-8') + '\r\nFrom: ' + b64('王五', 'gbk') + ' <w@x.cn>\r\n',
  'Subject: ' + b64('会议通知', 'gb2312') + '\r\nFrom: ' + b64('张三', 'gb2312') + ' <z@x.cn>\r\n',
  'Subject: Re: ' + b64('会议通知', 'gbk') + '\r\nFrom: ' + b64('李四', 'big5') + ' <l@x.tw>\r\n',
  'Subject: =?utf-8?q?Fwd:_?= ' + b64('周报', 'gb18030') + '\r\nFrom: Alice <a@x.cn>\r\n',
  'Subject: ' + b64('會議通知', 'big5') + '\r\nFrom: Bob <b@x.tw>\r\n',
]
for m in msgs:
    assert M.append('C', None, None, (m + '\r\nbody\r\n').encode())[0] == 'OK'
M.select('C')
# Base subjects by code point: 会议通知 (4F1A) 2 3 (one GB2312, one GBK
# reply), 周报 (5468) 4 (a forward, GB18030), 回复: 周报 (56DE) 1 (回复 is
# not a reply marker for RFC 5256), 會議通知 (6703) 5 (Big5).
assert sort(M, '(SUBJECT)', 'UTF-8', 'ALL') == '2 3 4 1 5', sort(M, '(SUBJECT)', 'UTF-8', 'ALL')
# Display names: Alice, Bob, then 张 (5F20), 李 (674E), 王 (738B).
assert sort(M, '(DISPLAYFROM)', 'UTF-8', 'ALL') == '4 5 2 3 1', sort(M, '(DISPLAYFROM)', 'UTF-8', 'ALL')
# The charset argument decodes the search string, as SEARCH's does.
gb = '会议'.encode('gb2312')
M.literal = gb
assert sort(M, '(REVERSE SUBJECT)', 'GB2312', 'SUBJECT') == '2 3'
M.literal = '會議'.encode('big5')
assert sort(M, '(SUBJECT)', 'BIG5', 'SUBJECT') == '5'
# THREAD=ORDEREDSUBJECT puts the GBK reply under the GB2312 original.
typ, d = M._simple_command('THREAD', 'ORDEREDSUBJECT', 'UTF-8', 'ALL')
assert typ == 'OK', d
assert untagged(M, 'THREAD') == [b'(1)(2 3)(4)(5)'], M.untagged_responses
M.logout()
"#,
    );
}

/// The keys are parsed once and kept beside the UID index: a new session
/// sorts from the file without reading the messages again; a file from
/// another UIDVALIDITY or a damaged one is not trusted.
#[test]
fn sort_keys_are_kept_beside_the_uid_index_for_new_sessions() {
    let inst = common::imap_instance();
    py(
        &inst,
        r#"
M = conn()
assert M.create('K')[0] == 'OK'
for s in ('bbb', 'aaa', 'ccc'):
    assert M.append('K', None, None, ('Subject: %s\r\n\r\nbody\r\n' % s).encode())[0] == 'OK'
M.select('K')
assert sort(M, '(SUBJECT)', 'UTF-8', 'ALL') == '2 1 3'
M.logout()
cache = os.path.join(MAILDIR, '.K', 'kmpromail-sortcache')
lines = open(cache, encoding='utf-8').read().splitlines()
assert lines[0].startswith('kmpromail-sortcache 2 '), lines
assert len(lines) == 4, lines

# Change a subject behind the server's back (same size; stored mail never
# changes, so only this test does it): a new session still sorts by the
# kept key, which shows it did not parse the message again.
def rewrite(old, new):
    for d in ('cur', 'new'):
        for f in os.listdir(os.path.join(MAILDIR, '.K', d)):
            p = os.path.join(MAILDIR, '.K', d, f)
            data = open(p, 'rb').read()
            if old in data:
                open(p, 'wb').write(data.replace(old, new))
                return
    raise AssertionError(old)
rewrite(b'Subject: aaa', b'Subject: zzz')
M = conn()
M.select('K')
assert sort(M, '(SUBJECT)', 'UTF-8', 'ALL') == '2 1 3'

# New mail is parsed once and its line appended.
assert M.append('K', None, None, b'Subject: abc\r\n\r\nbody\r\n')[0] == 'OK'
M.noop()
assert sort(M, '(SUBJECT)', 'UTF-8', 'ALL') == '2 4 1 3'
assert len(open(cache, encoding='utf-8').read().splitlines()) == 5
M.logout()

# A damaged file (a torn last line, garbage) costs a parse, never a wrong
# answer; a file of another UIDVALIDITY is ignored.
text = open(cache, encoding='utf-8').read()
head, rest = text.split('\n', 1)
open(cache, 'w', encoding='utf-8').write(head + '\n' + 'garbage\tline\n' + rest[:-7])
M = conn()
M.select('K')
# Lines 1 to 3 still hold (2 keeps 'aaa'); 4's line was torn: parsed again.
assert sort(M, '(SUBJECT)', 'UTF-8', 'ALL') == '2 4 1 3'
M.logout()
open(cache, 'w', encoding='utf-8').write(text.replace(head, 'kmpromail-sortcache 2 12345', 1))
M = conn()
M.select('K')
# Everything parsed again: message 2 is now 'zzz'.
assert sort(M, '(SUBJECT)', 'UTF-8', 'ALL') == '4 1 3 2'
M.logout()
# A file of the older format (version 1) is not read either.
open(cache, 'w', encoding='utf-8').write(text.replace(head, head.replace('sortcache 2 ', 'sortcache 1 '), 1))
M = conn()
M.select('K')
assert sort(M, '(SUBJECT)', 'UTF-8', 'ALL') == '4 1 3 2'
M.logout()
os.remove(cache)
M = conn()
M.select('K')
assert sort(M, '(SUBJECT)', 'UTF-8', 'ALL') == '4 1 3 2'
assert os.path.exists(cache)
M.logout()
"#,
    );
}
