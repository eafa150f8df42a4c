//! kmp-imapd's shared folder state and its bounded-memory FETCH, as clients
//! see them: several sessions on one folder see each other's changes
//! (flags, expunges, new mail, keywords) through the one state the process
//! keeps per folder, and header fetches and body streams of a huge message
//! are answered right without the message ever being whole in the server's
//! memory (its VmHWM, read from /proc, says so).
mod common;

use std::path::PathBuf;

use common::{python, Instance};
use kmpromail::maildir::Maildir;

fn maildir(inst: &Instance) -> PathBuf {
    inst.path().join("mail/example.test/u")
}

fn deliver(inst: &Instance, msg: &[u8]) {
    let md = Maildir::create(maildir(inst)).unwrap();
    md.folder("INBOX")
        .unwrap()
        .deliver(&mut &msg[..], None)
        .unwrap();
}

/// Runs a Python script with imaplib; argv: port, kmp-imapd's pid. It must
/// print OK.
fn py(inst: &Instance, script: &str) {
    let pid = inst.pid("kmp-imapd").expect("kmp-imapd runs").to_string();
    let full = format!(
        "import imaplib, sys, time, socket, re\nsocket.setdefaulttimeout(120)\nPORT = int(sys.argv[1])\nPID = sys.argv[2]\n\
         def conn():\n    M = imaplib.IMAP4('127.0.0.1', PORT)\n    M.login('u@example.test', 'secret')\n    return M\n\
         def untagged(M, kind):\n    return M.untagged_responses.pop(kind, [])\n\
         def status(key):\n    for l in open('/proc/%s/status' % PID):\n        if l.startswith(key + ':'):\n            return int(l.split()[1])\n\
         def reset_peak():\n    open('/proc/%s/clear_refs' % PID, 'w').write('5')\n\
         {script}\nprint('OK')\n"
    );
    let out = python(&full, &[&(inst.base + 143).to_string(), &pid]);
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
fn sessions_on_one_folder_see_each_others_changes() {
    let inst = common::imap_instance();
    deliver(&inst, b"Subject: one\n\nfirst\n");
    deliver(&inst, b"Subject: two\n\nsecond\n");
    py(
        &inst,
        r#"
A = conn(); B = conn(); C = conn()
A.select('INBOX')
assert untagged(A, 'RECENT') == [b'2'], A.untagged_responses
B.select('INBOX')
assert untagged(B, 'RECENT') == [b'0'], B.untagged_responses
C.select('INBOX', readonly=True)
assert untagged(C, 'EXISTS') == [b'2'], C.untagged_responses
# A flag change by B reaches A and C once, and is not echoed to B.
B.store('1', '+FLAGS', '(\\Flagged)')
untagged(B, 'FETCH')
B.noop()
assert untagged(B, 'FETCH') == [], B.untagged_responses
for S in (A, C):
    S.noop()
    got = untagged(S, 'FETCH')
    assert got == [b'1 (UID 1 FLAGS (\\Flagged))'], got
    S.noop()
    assert untagged(S, 'FETCH') == []
A.logout(); B.logout(); C.logout()
"#,
    );
    deliver(&inst, b"Subject: three\n\nthird\n");
    py(
        &inst,
        r#"
A = conn(); B = conn()
B.select('INBOX')
e, r = untagged(B, 'EXISTS'), untagged(B, 'RECENT')
assert e == [b'3'] and r == [b'1'], (e, r)
A.select('INBOX')
e, r = untagged(A, 'EXISTS'), untagged(A, 'RECENT')
assert e == [b'3'] and r == [b'0'], (e, r)
typ, d = A.fetch('1:3', '(UID FLAGS)')
assert b'1 (UID 1 FLAGS (\\Flagged))' in d and b'3 (UID 3 FLAGS ())' in d, d
# An expunge by A: B keeps the numbers through FETCH and SEARCH, hears of
# it at NOOP; a message appended by B with a new keyword reaches A.
A.store('2', '+FLAGS', '(\\Deleted)')
typ, d = A.expunge()
assert d == [b'2'], d
untagged(B, 'FETCH')
typ, d = B.fetch('3', '(UID)')
assert b'3 (UID 3)' in d, d
assert untagged(B, 'EXPUNGE') == [], B.untagged_responses
B.noop()
assert untagged(B, 'EXPUNGE') == [b'2'], B.untagged_responses
B.append('INBOX', '(\\Seen $Label)', None, b'Subject: four\r\n\r\nfourth\r\n')
A.noop()
assert untagged(A, 'EXISTS') == [b'3'], A.untagged_responses
assert any(b'$Label' in f for f in untagged(A, 'FLAGS')), A.untagged_responses
typ, d = A.fetch('3', '(UID FLAGS)')
assert re.fullmatch(rb'3 \(UID 4 FLAGS \(\\Seen (\\Recent )?\$Label\)\)', d[0]), d
typ, d = B.search(None, 'ALL')
assert d == [b'1 2 3'], d
A.logout(); B.logout()
# Once no session has it, the folder is opened afresh and still right.
D = conn()
D.select('INBOX')
assert untagged(D, 'EXISTS') == [b'3'], D.untagged_responses
typ, d = D.fetch('1:*', '(UID)')
assert d == [b'1 (UID 1)', b'2 (UID 3)', b'3 (UID 4)'], d
D.logout()
"#,
    );
}

#[test]
fn a_huge_message_is_fetched_in_pieces_and_its_header_alone() {
    let inst = common::imap_instance();
    // 40 MB of body lines behind a small header, stored with LF line ends.
    let mut msg = b"From: A <a@example.test>\nTo: u@example.test\nSubject: huge\nMessage-ID: <huge@example.test>\n\n".to_vec();
    let line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.0123456789\n";
    while msg.len() < 40 << 20 {
        msg.extend_from_slice(line);
    }
    deliver(&inst, &msg);
    py(
        &inst,
        r#"
M = conn()
M.select('INBOX')
head = b'From: A <a@example.test>\r\nTo: u@example.test\r\nSubject: huge\r\nMessage-ID: <huge@example.test>\r\n\r\n'
line = b'0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.0123456789\r\n'
typ, d = M.fetch('1', '(RFC822.SIZE)')
size = int(re.search(rb'RFC822.SIZE (\d+)', d[0]).group(1))
n = (size - len(head)) // len(line)
assert size == len(head) + n * len(line), (size, n)
time.sleep(0.5)
before = status('VmRSS'); reset_peak()
typ, d = M.fetch('1', '(BODY.PEEK[HEADER] RFC822.HEADER ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
rise = status('VmHWM') - before
assert d[0][1] == head and d[1][1] == head, d
assert d[2][1] == b'Subject: huge\r\n\r\n', d
assert b'"huge"' in d[2][0] and b'"<huge@example.test>"' in d[2][0], d
assert rise < 4096, 'header fetch grew the server by %d kB' % rise
for what, want in [('BODY.PEEK[]', head + line * n), ('BODY.PEEK[TEXT]', line * n),
                   ('BODY.PEEK[]<100.1000>', (head + line * n)[100:1100]),
                   ('BINARY.PEEK[]', head + line * n)]:
    time.sleep(0.5)
    before = status('VmRSS'); reset_peak()
    typ, d = M.fetch('1', '(%s)' % what)
    rise = status('VmHWM') - before
    assert typ == 'OK' and d[0][1] == want, (what, len(d[0][1]), len(want))
    assert rise < 16384, '%s grew the server by %d kB' % (what, rise)
    del d
M.logout()
"#,
    );
}

#[test]
fn an_idle_session_hears_of_flags_expunges_and_new_mail() {
    let inst = common::imap_instance();
    for i in 0..5 {
        deliver(&inst, format!("Subject: m{i}\n\nbody {i}\n").as_bytes());
    }
    py(
        &inst,
        r#"
s = socket.create_connection(('127.0.0.1', PORT))
f = s.makefile('rb')
def expect(prefix):
    while True:
        l = f.readline()
        assert l, 'closed'
        if l.startswith(prefix):
            return l
expect(b'* OK')
s.sendall(b'a LOGIN u@example.test secret\r\nb SELECT INBOX\r\n')
expect(b'b OK')
s.sendall(b'c IDLE\r\n')
expect(b'+ ')
# Idle long enough to let go of its own list of messages.
time.sleep(1)
B = conn()
B.select('INBOX')
B.store('2', '+FLAGS', '(\\Seen)')
assert expect(b'* 2 FETCH') == b'* 2 FETCH (UID 2 FLAGS (\\Seen))\r\n'
B.store('4', '+FLAGS', '(\\Deleted)')
B.expunge()
assert expect(b'* 4 EXPUNGE') == b'* 4 EXPUNGE\r\n'
B.append('INBOX', None, None, b'Subject: m5\r\n\r\nbody 5\r\n')
assert expect(b'* 5 EXISTS') == b'* 5 EXISTS\r\n'
s.sendall(b'DONE\r\nd FETCH 1:* (UID FLAGS)\r\n')
expect(b'c OK')
got = [expect(b'* %d FETCH' % i) for i in range(1, 6)]
assert [re.search(rb'UID (\d+)', l).group(1) for l in got] == [b'1', b'2', b'3', b'5', b'6'], got
assert b'\\Seen' in got[1], got
expect(b'd OK')
B.logout()
"#,
    );
}

/// Issue 12 (persistent sessions): STATUS and APPEND go through the
/// folder's shared state instead of reading the UID index again. STATUS
/// of a folder another session has selected counts mail waiting in `new/`
/// as RECENT and leaves it to that session to claim; an APPEND into a
/// selected folder reaches its sessions with the UID APPENDUID gave and
/// its keywords; STATUS of a folder nobody selected follows APPENDs and
/// deliveries through the state it keeps.
#[test]
fn status_and_append_go_through_the_shared_state() {
    let inst = common::imap_instance();
    deliver(&inst, b"Subject: one\n\nfirst\n");
    let md = maildir(&inst);
    let script = r#"
import os
A = conn(); B = conn()
A.select('INBOX')
assert untagged(A, 'RECENT') == [b'1'], A.untagged_responses
assert untagged(A, 'EXISTS') == [b'1'], A.untagged_responses
def drop_in(folder, name, text):
    open(folder + '/tmp/' + name, 'w').write(text)
    os.rename(folder + '/tmp/' + name, folder + '/new/' + name)
drop_in(MD, '1700000000.M1P1Q1.test', 'Subject: two\n\nsecond\n')
typ, d = B.status('INBOX', '(MESSAGES RECENT UNSEEN UIDNEXT)')
assert typ == 'OK' and b'MESSAGES 2 RECENT 1 UNSEEN 2 UIDNEXT 3' in d[0], d
# STATUS claimed nothing: A does, at its next command.
A.noop()
assert untagged(A, 'EXISTS') == [b'2'], A.untagged_responses
typ, d = A.fetch('2', '(FLAGS)')
assert b'\\Recent' in d[0], d
typ, d = B.status('INBOX', '(RECENT)')
assert b'RECENT 0' in d[0], d
typ, d = A.status('INBOX', '(RECENT)')
assert b'RECENT 2' in d[0], d
# B appends into A's folder.
typ, d = B.append('INBOX', '(\\Seen $Work)', None, b'Subject: three\r\n\r\nthird\r\n')
assert typ == 'OK', d
assert re.search(rb'APPENDUID \d+ 3\]', d[0]), d
A.noop()
assert untagged(A, 'EXISTS') == [b'3'], A.untagged_responses
typ, d = A.fetch('3', '(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
assert b'UID 3' in d[0][0] and b'\\Seen' in d[0][0] and b'$Work' in d[0][0], d
assert d[0][1].startswith(b'Subject: three'), d
typ, d = B.status('INBOX', '(MESSAGES UNSEEN)')
assert b'MESSAGES 3 UNSEEN 2' in d[0], d
# A folder nobody has selected.
assert A.create('Box')[0] == 'OK'
for i in range(3):
    typ, d = A.status('Box', '(MESSAGES RECENT UIDNEXT)')
    want = b'MESSAGES %d RECENT %d UIDNEXT %d' % (2 * i, 2 * i, 2 * i + 1)
    assert typ == 'OK' and want in d[0], (want, d)
    assert B.append('Box', None, None, b'Subject: b\r\n\r\nx\r\n')[0] == 'OK'
    drop_in(BOX, '1700000000.M%dP1Q1.test' % i, 'Subject: d\n\ny\n')
B.select('Box')
assert untagged(B, 'EXISTS') == [b'6'], B.untagged_responses
assert untagged(B, 'RECENT') == [b'6'], B.untagged_responses
A.logout(); B.logout()
"#;
    let script = format!(
        "MD = {:?}\nBOX = {:?}\n{script}",
        md.display().to_string(),
        md.join(".Box").display().to_string()
    );
    py(&inst, &script);
}
