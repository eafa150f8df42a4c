//! kmp-imapd with many sessions at once on one mailbox (issue 12), as
//! imaptest's load profile drives it: Python's imaplib in threads and in
//! interleaved sessions against the real binaries.
mod common;

use std::path::PathBuf;

use common::{python, Instance};

/// An instance with kmp-authd, kmp-imapd and the user u@example.test / secret.
fn start() -> Instance {
    common::imap_instance()
}

fn maildir(inst: &Instance) -> PathBuf {
    inst.path().join("mail/example.test/u")
}

/// Runs a Python script with imaplib (the port as PORT, the user's Maildir
/// as MAILDIR); it must print OK.
fn py(inst: &Instance, script: &str) -> String {
    let full = format!(
        "import imaplib, sys, os, threading, socket\nsocket.setdefaulttimeout(60)\n\
         PORT = int(sys.argv[1])\nMAILDIR = sys.argv[2]\n\
         def conn():\n    M = imaplib.IMAP4('127.0.0.1', PORT)\n    M.login('u@example.test', 'secret')\n    return M\n\
         {script}\nprint('OK')\n"
    );
    let port = (inst.base + 143).to_string();
    let md = maildir(inst);
    let out = python(&full, &[&port, md.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.trim_end().ends_with("OK"),
        "script failed:\n{}\n{}\nserver log:\n{}",
        text,
        String::from_utf8_lossy(&out.stderr),
        inst.log("kmp-imapd")
    );
    text
}

/// Issue 12: sessions logging in and APPENDing at once shared the temporary
/// name of `maildirsize` and `subscriptions` and failed with
/// `NO [UNAVAILABLE] .../maildirsize: rename: No such file or directory`.
/// Each round is a new user's first logins, all at once, so every session
/// of the round writes both files at the same moment.
#[test]
fn concurrent_logins_and_appends_share_no_temporary_file() {
    let inst = start();
    for r in 0..4 {
        let out = inst.ctl_stdin(
            &[
                "user",
                "add",
                &format!("r{r}@example.test"),
                "--password-stdin",
            ],
            Some(b"secret\n"),
        );
        assert!(out.status.success());
    }
    py(
        &inst,
        r#"
THREADS, ROUNDS, EACH = 8, 4, 6
errors = []
lock = threading.Lock()
def user_dir(r):
    return os.path.join(os.path.dirname(MAILDIR), 'r%d' % r)
def worker(r, t, barrier):
    try:
        barrier.wait()
        M = imaplib.IMAP4('127.0.0.1', PORT)
        M.login('r%d@example.test' % r, 'secret')
        for k in range(EACH):
            body = b'Subject: r%d t%d m%d\r\n\r\n' % (r, t, k) + b'x' * (100 * (k + 1)) + b'\r\n'
            typ, data = M.append('INBOX', None, None, body)
            if typ != 'OK':
                with lock:
                    errors.append((r, t, k, typ, data))
        M.logout()
    except Exception as e:
        with lock:
            errors.append((r, t, 'exception', repr(e)))
for r in range(ROUNDS):
    barrier = threading.Barrier(THREADS)
    ts = [threading.Thread(target=worker, args=(r, t, barrier)) for t in range(THREADS)]
    for t in ts: t.start()
    for t in ts: t.join()
assert not errors, errors
for r in range(ROUNDS):
    M = imaplib.IMAP4('127.0.0.1', PORT)
    M.login('r%d@example.test' % r, 'secret')
    typ, data = M.select('INBOX')
    assert typ == 'OK' and int(data[0]) == THREADS * EACH, data
    typ, data = M.getquotaroot('INBOX')
    assert typ == 'OK', data
    M.logout()
    # The files are whole, and no temporary file is left anywhere.
    d = user_dir(r)
    with open(os.path.join(d, 'maildirsize')) as f:
        lines = f.read().splitlines()
    assert lines and lines[0].endswith('C'), lines
    with open(os.path.join(d, 'subscriptions')) as f:
        subs = f.read().splitlines()
    assert sorted(subs) == ['Drafts', 'INBOX', 'Junk', 'Sent', 'Trash'], subs
    left = os.listdir(os.path.join(d, 'tmp')) + [n for n in os.listdir(d) if n.endswith('.tmp')]
    assert not left, left
"#,
    );
}

/// Issue 12: FETCH and STORE answered `NO [EXPUNGEISSUED]` when another
/// session had expunged part of the set, and so said nothing had been done.
/// They answer for the messages that remain and succeed (RFC 2180 4.1, 4.2).
#[test]
fn fetch_and_store_answer_ok_for_what_another_session_left() {
    let inst = start();
    py(
        &inst,
        r#"
A = conn(); B = conn()
for i in range(1, 7):
    A.append('INBOX', None, None, b'Subject: m%d\r\n\r\nbody %d\r\n' % (i, i))
A.select('INBOX'); B.select('INBOX')

def expunge_by_b(n):
    typ, data = B.store(n, '+FLAGS', '(\\Deleted)')
    assert typ == 'OK', data
    typ, data = B.expunge()
    assert typ == 'OK', data

def fetched(data):
    # {message number: the FETCH data} of the answer.
    out = {}
    for d in data:
        head = d[0] if isinstance(d, tuple) else d
        if head is None or not head[:1].isdigit():
            continue
        n = int(head.split(b' ', 1)[0])
        out[n] = out.get(n, b'') + head + (d[1] if isinstance(d, tuple) else b'')
    return out

# B expunges message 2 (UID 2); A has not seen it yet and stores on all.
expunge_by_b('2')
typ, data = A.store('1:*', '+FLAGS', '(\\Flagged)')
assert typ == 'OK', (typ, data)
got = fetched(data)
assert sorted(got) == [1, 3, 4, 5, 6], got
assert all(b'\\Flagged' in v for v in got.values()), got
assert 'EXPUNGE' not in A.untagged_responses, A.untagged_responses

# B expunges message 4 of A's numbering (UID 4, its own number 3); A
# fetches the bodies of all: what remains comes, and OK.
expunge_by_b('3')
typ, data = A.fetch('1:*', '(UID FLAGS BODY.PEEK[])')
assert typ == 'OK', (typ, data)
got = fetched(data)
assert sorted(got) == [1, 3, 5, 6], got
for n in (1, 3, 5, 6):
    assert b'UID %d ' % n in got[n] and b'body %d' % n in got[n], got[n]
assert 'EXPUNGE' not in A.untagged_responses, A.untagged_responses

# Data the session holds still comes for the expunged ones.
typ, data = A.fetch('1:*', '(UID FLAGS)')
assert typ == 'OK', (typ, data)
assert sorted(fetched(data)) == [1, 2, 3, 4, 5, 6], data

# A STORE after A knows of the expunges: the same answer.
typ, data = A.store('1:*', '-FLAGS', '(\\Flagged)')
assert typ == 'OK', (typ, data)
assert sorted(fetched(data)) == [1, 3, 5, 6], data

# Both really stored: B sees the flags A set and removed, on what is left.
B.noop()
typ, data = B.fetch('1:*', '(UID FLAGS)')
assert typ == 'OK', data
got = fetched(data)
assert sorted(got) == [1, 2, 3, 4], got
assert not any(b'\\Flagged' in v for v in got.values()), got

# NOOP announces the expunges; the numbering is then B's.
A.untagged_responses.clear()
typ, data = A.noop()
assert A.untagged_responses.get('EXPUNGE') == [b'4', b'2'], A.untagged_responses
typ, data = A.fetch('1:*', '(UID)')
assert typ == 'OK' and len(data) == 4, data
A.logout(); B.logout()
"#,
    );
}
