//! kmp-imapd's THREAD=REFERENCES and THREAD=ORDEREDSUBJECT (RFC 5256 3),
//! as Python's imaplib sees them against the real binaries (issue 12):
//! dummy parents, reparenting, loops, duplicate Message-IDs, subject
//! merging and siblings sorted by sent date.
mod common;

use common::{python, Instance};

/// Runs a Python script with imaplib, the port as argv[1]; it must print OK.
/// `thread(M, algo, *keys)` answers the THREAD response's text; `add(M,
/// folder, headers)` appends a message with those header lines.
fn py(inst: &Instance, script: &str) {
    let full = format!(
        "import imaplib, sys, socket\nsocket.setdefaulttimeout(60)\nPORT = int(sys.argv[1])\n\
         def conn():\n    M = imaplib.IMAP4('127.0.0.1', PORT)\n    M.login('u@example.test', 'secret')\n    return M\n\
         def thread(M, *args, uid=False):\n    cmd = ('UID', 'THREAD') if uid else ('THREAD',)\n    typ, d = M._simple_command(*cmd, *args)\n    assert typ == 'OK', (args, typ, d)\n    return (M.untagged_responses.pop('THREAD', [b''])[0] or b'').decode()\n\
         def add(M, folder, headers, date=None):\n    typ, d = M.append(folder, None, date, ('\\r\\n'.join(headers) + '\\r\\n\\r\\nbody\\r\\n').encode())\n    assert typ == 'OK', d\n\
         {script}\nprint('OK')\n"
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

#[test]
fn references_threads_with_dummies_reparenting_and_date_order() {
    let inst = common::imap_instance();
    py(
        &inst,
        r#"
M = conn()
caps = M.capability()[1][0].decode().split()
assert 'THREAD=REFERENCES' in caps and 'THREAD=ORDEREDSUBJECT' in caps, caps
M.create('T')
d = lambda h: 'Date: Mon, 04 Mar 2024 %02d:00:00 +0000' % h
add(M, 'T', ['Message-ID: <root@x>', 'Subject: plan', d(1)])                                  # 1
add(M, 'T', ['Message-ID: <r2@x>', 'In-Reply-To: <root@x>', 'Subject: Re: plan', d(5)])       # 2
add(M, 'T', ['Message-ID: <r1@x>', 'References: <root@x>', 'Subject: Re: plan', d(3)])        # 3
add(M, 'T', ['Message-ID: <r3@x>', 'References: <root@x> <r1@x>', 'Subject: Re: plan', d(4)]) # 4
# A reply to a message this folder does not have: a dummy parent, with
# two children, so it stays as the thread's root.
add(M, 'T', ['Message-ID: <a1@x>', 'References: <gone@x>', 'Subject: other', d(7)])           # 5
add(M, 'T', ['Message-ID: <a2@x>', 'References: <gone@x>', 'Subject: other', d(6)])           # 6
# A dummy with one child is replaced by the child.
add(M, 'T', ['Message-ID: <b1@x>', 'References: <lost@x>', 'Subject: third', d(2)])           # 7
M.select('T')
# Siblings by sent date: 3 (03:00) before 2 (05:00); 4 under 3; the dummy's
# children 6 (06:00) before 5 (07:00); roots by date: 1, 7, then the dummy
# (its first child, 6).
assert thread(M, 'REFERENCES', 'UTF-8', 'ALL') == '(1 (3 4)(2))(7)((6)(5))', thread(M, 'REFERENCES', 'UTF-8', 'ALL')
# The search keys choose the messages: without 3, 4's parent is a dummy
# between 1 and 4, which goes, and 4 becomes 1's child.
assert thread(M, 'REFERENCES', 'UTF-8', 'NOT', '3') == '(1 (4)(2))(7)((6)(5))', thread(M, 'REFERENCES', 'UTF-8', 'NOT', '3')
typ, data = M.fetch('1:7', '(UID)')
uids = [int(x.split()[2].rstrip(b')')) for x in data]
want = '(%d (%d %d)(%d))(%d)((%d)(%d))' % tuple(uids[i - 1] for i in (1, 3, 4, 2, 7, 6, 5))
assert thread(M, 'REFERENCES', 'UTF-8', 'ALL', uid=True) == want
M.logout()
"#,
    );
}

#[test]
fn references_merges_roots_by_subject_and_survives_loops_and_duplicates() {
    let inst = common::imap_instance();
    py(
        &inst,
        r#"
M = conn()
M.create('U')
d = lambda h: 'Date: Mon, 04 Mar 2024 %02d:00:00 +0000' % h
add(M, 'U', ['Message-ID: <s1@x>', 'Subject: Budget', d(1)])                   # 1
add(M, 'U', ['Message-ID: <s2@x>', 'Subject: Re: budget', d(2)])               # 2 reply, no refs
add(M, 'U', ['Message-ID: <s3@x>', 'Subject: budget', d(3)])                   # 3 not a reply
add(M, 'U', ['Message-ID: <s1@x>', 'Subject: dup', d(4)])                      # 4 same id as 1
add(M, 'U', ['Message-ID: <l1@x>', 'References: <l2@x>', 'Subject: loop', d(5)])  # 5
add(M, 'U', ['Message-ID: <l2@x>', 'References: <l1@x>', 'Subject: loop2', d(6)]) # 6
add(M, 'U', ['Subject: no id at all', d(7)])                                   # 7
M.select('U')
t = thread(M, 'REFERENCES', 'UTF-8', 'ALL')
# Step 5: 2, a reply without references, goes under 1, which has its base
# subject and is not a reply; 3 has it too and is no reply either, so a
# dummy takes 1 and 3 as children. 4 repeats 1's Message-ID and gets one of
# its own. 5 and 6 refer to each other: 5 is 6's child (5's References),
# and 6 under 5 would close a loop, so that link is not made.
assert t == '((1 2)(3))(4)(6 5)(7)', t
# ORDEREDSUBJECT: by base subject, each thread's first message the parent
# of the others, threads by their first message's date.
t = thread(M, 'ORDEREDSUBJECT', 'UTF-8', 'ALL')
assert t == '(1 (2)(3))(4)(5)(6)(7)', t
assert thread(M, 'REFERENCES', 'UTF-8', 'SUBJECT', 'nothing-like-this') == ''
typ, data = M._simple_command('THREAD', 'REFERENCES', 'X-UNKNOWN', 'ALL')
assert typ == 'NO' and b'BADCHARSET' in data[0], data
try:
    M._simple_command('THREAD', 'SHUFFLE', 'UTF-8', 'ALL')
    raise AssertionError('BAD expected')
except imaplib.IMAP4.error as e:
    assert 'Unknown threading algorithm' in str(e)
M.logout()
"#,
    );
}
