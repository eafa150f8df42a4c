//! kmp-imapd as clients see it: Python's imaplib (and raw sockets for bad
//! input) against the real binaries, kmp-authd doing the logins, mail in a
//! real Maildir written through the Maildir library.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{python, wait_until, Instance};
use kmpromail::maildir::Maildir;

/// An instance with kmp-authd, kmp-imapd and the user u@example.test / secret.
fn start() -> Instance {
    common::imap_instance()
}

fn maildir(inst: &Instance) -> PathBuf {
    inst.path().join("mail/example.test/u")
}

fn port(inst: &Instance) -> String {
    (inst.base + 143).to_string()
}

/// Runs a Python script with imaplib, the port as argv[1]; it must print OK.
fn py(inst: &Instance, script: &str) -> String {
    let full = format!(
        "import imaplib, sys, time, socket\nsocket.setdefaulttimeout(60)\nPORT = int(sys.argv[1])\n\
         def conn():\n    M = imaplib.IMAP4('127.0.0.1', PORT)\n    M.login('u@example.test', 'secret')\n    return M\n{script}\nprint('OK')\n"
    );
    let out = python(&full, &[&port(inst)]);
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

fn deliver(inst: &Instance, folder: &str, msg: &[u8]) {
    let md = Maildir::create(maildir(inst)).unwrap();
    let f = md.folder(folder).unwrap();
    f.deliver(&mut &msg[..], None).unwrap();
}

#[test]
fn core_commands_with_imaplib() {
    let inst = start();
    py(
        &inst,
        r#"
M = imaplib.IMAP4('127.0.0.1', PORT)
assert 'IMAP4REV1' in M.capabilities and 'AUTH=PLAIN' in M.capabilities
typ, _ = M.select('INBOX') if False else ('NO', None)
try:
    M.login('u@example.test', 'wrong')
    raise SystemExit('bad password accepted')
except imaplib.IMAP4.error as e:
    assert 'AUTHENTICATIONFAILED' in str(e), e
M.login('u@example.test', 'secret')
typ, caps = M.capability()
for c in [b'UIDPLUS', b'MOVE', b'IDLE', b'NAMESPACE', b'SPECIAL-USE', b'QUOTA', b'ESEARCH']:
    assert c in caps[0], (c, caps)
typ, data = M.list()
names = b' '.join(data)
for n in [b'INBOX', b'\\Sent', b'\\Drafts', b'\\Trash', b'\\Junk']:
    assert n in names, data
typ, data = M.select('INBOX')
assert typ == 'OK' and data == [b'0'], data
msg = b'From: Joe <joe@example.test>\r\nTo: u@example.test\r\nSubject: hello there\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <m1@example.test>\r\n\r\nfirst body line\r\nsecond\r\n'
typ, data = M.append('INBOX', '(\\Seen $Work)', '"07-Feb-1994 21:52:25 -0800"', msg)
assert typ == 'OK' and b'APPENDUID' in data[0], data
mp = b'From: a@b.test\r\nSubject: parts\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\npart one\r\n--B\r\nContent-Type: text/html\r\n\r\n<p>two</p>\r\n--B--\r\n'
M.append('INBOX', None, None, mp)
typ, data = M.noop()
typ, data = M.fetch('1', '(FLAGS UID RFC822.SIZE INTERNALDATE)')
line = data[0]
assert b'\\Seen' in line and b'$Work' in line and b'UID 1' in line, line
assert b'RFC822.SIZE %d' % len(msg) in line, line
assert b'INTERNALDATE "07-Feb-1994' in line or b'INTERNALDATE "08-Feb-1994' in line, line
typ, data = M.fetch('1', '(BODY.PEEK[] RFC822.HEADER BODY.PEEK[TEXT]<6.4> BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT DATE TO FROM)])')
parts = [d for d in data if isinstance(d, tuple)]
assert parts[0][1] == msg, parts[0]
assert parts[1][1] == msg[:msg.index(b'\r\n\r\n') + 4]
assert b'<6>' in parts[2][0] and parts[2][1] == b'body', parts[2]
assert parts[3][1] == b'Subject: hello there\r\n\r\n', parts[3]
assert parts[4][1] == b'Message-ID: <m1@example.test>\r\n\r\n', parts[4]
typ, data = M.fetch('1', '(ENVELOPE)')
assert b'"hello there"' in data[0] and b'("Joe" NIL "joe" "example.test")' in data[0] and b'"<m1@example.test>"' in data[0], data
typ, data = M.fetch('2', '(BODYSTRUCTURE BODY[1] BODY.PEEK[2.MIME])')
assert b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 8 0' in data[0][0], data
assert b'"mixed" ("boundary" "B")' in data[0][0], data
assert data[0][1] == b'part one', data
assert data[1][1] == b'Content-Type: text/html\r\n\r\n', data
typ, data = M.fetch('2', '(FLAGS)')
assert b'\\Seen' in data[0], data
typ, data = M.store('2', '+FLAGS', '(\\Flagged $Important)')
assert b'\\Flagged' in data[0] and b'$Important' in data[0], data
typ, data = M.store('2', '-FLAGS.SILENT', '(\\Flagged)')
assert data == [None], data
typ, data = M.uid('STORE', '1', 'FLAGS', '(\\Answered)')
assert b'UID 1' in data[0] and b'\\Answered' in data[0] and b'\\Seen' not in data[0], data
typ, data = M.search(None, 'ALL')
assert data == [b'1 2'], data
for crit, want in [('ANSWERED', b'1'), ('UNANSWERED', b'2'), ('SUBJECT "hello"', b'1'), ('FROM joe', b'1'),
                   ('BODY "part one"', b'2'), ('TEXT "second"', b'1'), ('KEYWORD $Important', b'2'),
                   ('LARGER 100', b'1 2'), ('SMALLER 10', b''), ('SENTBEFORE 1-Jan-2000', b'1'),
                   ('SENTON 7-Feb-1994', b'1'), ('SINCE 1-Jan-2000', b'2'), ('BEFORE 1-Jan-2000', b'1'),
                   ('OR ANSWERED FLAGGED', b'1'), ('NOT SEEN', b'1'), ('UID 2', b'2'), ('2:*', b'2'),
                   ('HEADER Message-ID m1@', b'1'), ('(SEEN UNDELETED) NOT DRAFT', b'2')]:
    typ, data = M.search(None, crit)
    assert typ == 'OK' and data == [want], (crit, data)
typ, data = M.uid('SEARCH', 'ALL')
assert data == [b'1 2'], data
typ, data = M.create('Work.2024')
assert typ == 'OK', data
typ, data = M.copy('1:2', 'Work.2024')
assert typ == 'OK' and b'COPYUID' in data[0], data
typ, data = M.status('Work.2024', '(MESSAGES UIDNEXT UNSEEN UIDVALIDITY)')
assert b'MESSAGES 2' in data[0] and b'UIDNEXT 3' in data[0], data
typ, data = M.copy('1', 'Nope')
assert typ == 'NO' and b'TRYCREATE' in data[0], data
typ, data = M.rename('Work.2024', 'Job.2025')
assert typ == 'OK', data
typ, data = M.list('""', 'Job*')
assert any(b'"." Job.2025' in d for d in data), data
typ, data = M.subscribe('Job.2025')
typ, data = M.lsub('""', '*')
assert any(b'Job.2025' in d for d in data), data
typ, data = M.unsubscribe('Job.2025')
typ, data = M.lsub('""', 'Job*')
assert data == [None], data
typ, data = M.delete('Job.2025')
assert typ == 'OK', data
typ, data = M.delete('INBOX')
assert typ == 'NO', data
typ, data = M.store('1', '+FLAGS', '(\\Deleted)')
typ, data = M.expunge()
assert data == [b'1'], data
typ, data = M.search(None, 'ALL')
assert data == [b'1'], data
typ, data = M.uid('FETCH', '2', '(FLAGS)')
assert b'UID 2' in data[0], data
typ, data = M.check()
assert typ == 'OK'
typ, data = M.close()
assert typ == 'OK'
typ, data = M.select('INBOX', readonly=True)
assert typ == 'OK' and data == [b'1']
typ, data = M.store('1', '+FLAGS', '(\\Deleted)')
assert typ == 'NO', data
typ, data = M.getquotaroot('INBOX')
assert typ == 'OK', data
typ, data = M.namespace()
assert data == [b'(("" ".")) NIL NIL'], data
M.logout()
"#,
    );
}

#[test]
fn authenticate_plain_with_and_without_initial_response() {
    let inst = start();
    py(
        &inst,
        r#"
M = imaplib.IMAP4('127.0.0.1', PORT)
M.authenticate('PLAIN', lambda _: b'\0u@example.test\0secret')
assert M.state == 'AUTH'
M.logout()
s = socket.create_connection(('127.0.0.1', PORT), timeout=10)
f = s.makefile('rwb')
f.readline()
f.write(b'a AUTHENTICATE PLAIN AHVAZXhhbXBsZS50ZXN0AHNlY3JldA==\r\n'); f.flush()
l = f.readline()
assert l.startswith(b'a OK'), l
f.write(b'b LOGIN x y\r\n'); f.flush()
l = f.readline()
assert l.startswith(b'b BAD'), l
f.write(b'c SELECT INBOX\r\n'); f.flush()
while True:
    l = f.readline()
    if l.startswith(b'c '): break
assert l.startswith(b'c OK [READ-WRITE]'), l
f.write(b'd LOGOUT\r\n'); f.flush()
assert f.readline().startswith(b'* BYE')
"#,
    );
}

#[test]
fn two_sessions_see_each_others_changes() {
    let inst = start();
    py(
        &inst,
        r#"
A = conn(); B = conn()
for i in range(3):
    A.append('INBOX', None, None, b'Subject: m%d\r\n\r\nx\r\n' % i)
A.select('INBOX'); B.select('INBOX')
B.store('2', '+FLAGS', '(\\Flagged)')
typ, data = A.noop()
assert any(b'2 (UID 2 FLAGS (\\Flagged))' in d for d in A.untagged_responses.get('FETCH', [])), A.untagged_responses
A.untagged_responses.clear()
B.append('INBOX', None, None, b'Subject: m3\r\n\r\nx\r\n')
A.noop()
assert A.untagged_responses.get('EXISTS') == [b'4'], A.untagged_responses
A.untagged_responses.clear()
B.store('1', '+FLAGS', '(\\Deleted)')
B.expunge()
# FETCH, STORE and SEARCH must not announce the expunge (RFC 3501 7.4.1).
typ, data = A.fetch('1:4', '(FLAGS)')
assert 'EXPUNGE' not in A.untagged_responses, A.untagged_responses
typ, data = A.search(None, 'ALL')
assert 'EXPUNGE' not in A.untagged_responses, A.untagged_responses
A.untagged_responses.clear()
typ, data = A.noop()
assert A.untagged_responses.get('EXPUNGE') == [b'1'], A.untagged_responses
typ, data = A.search(None, 'ALL')
assert data == [b'1 2 3'], data
A.logout(); B.logout()
"#,
    );
}

#[test]
fn idle_sees_a_delivery_within_a_second() {
    let inst = start();
    let mut s = TcpStream::connect(inst.addr(143)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    let mut expect = |r: &mut BufReader<TcpStream>, prefix: &str| -> String {
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            assert!(!line.is_empty(), "connection closed");
            if line.starts_with(prefix) {
                return line.clone();
            }
        }
    };
    expect(&mut r, "* OK");
    s.write_all(b"a LOGIN u@example.test secret\r\nb SELECT INBOX\r\n")
        .unwrap();
    expect(&mut r, "b OK");
    s.write_all(b"c IDLE\r\n").unwrap();
    expect(&mut r, "+ ");
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    deliver(&inst, "INBOX", b"Subject: news\n\nhello\n");
    let l = expect(&mut r, "* 1 EXISTS");
    let waited = t.elapsed();
    assert!(waited < Duration::from_secs(1), "IDLE took {waited:?}: {l}");
    s.write_all(b"DONE\r\n").unwrap();
    expect(&mut r, "c OK");
    s.write_all(b"d FETCH 1 BODY.PEEK[TEXT]\r\n").unwrap();
    expect(&mut r, "* 1 FETCH");
    let mut body = [0u8; 7];
    r.read_exact(&mut body).unwrap();
    assert_eq!(&body, b"hello\r\n");
}

#[test]
fn folder_names_chinese_and_escape_attempts() {
    let inst = start();
    py(
        &inst,
        r#"
M = conn()
def utf7(s):
    import base64
    out, buf = '', ''
    def flush():
        nonlocal out, buf
        if buf:
            b = base64.b64encode(buf.encode('utf-16-be')).decode().rstrip('=').replace('/', ',')
            out += '&' + b + '-'
            buf = ''
    for ch in s:
        if ' ' <= ch <= '~':
            flush()
            out += '&-' if ch == '&' else ch
        else:
            buf += ch
    flush()
    return out
name = utf7('邮件.台北')
typ, data = M.create('"' + name + '"')
assert typ == 'OK', data
typ, data = M.list('""', '*')
assert any(name.encode() in d for d in data), data
typ, data = M.select('"' + name + '"')
assert typ == 'OK', data
M.append('"' + name + '"', None, None, b'Subject: x\r\n\r\ny\r\n')
typ, data = M.status('"' + name + '"', '(MESSAGES)')
assert b'MESSAGES 1' in data[0], data
for bad in ['".."', '"../x"', '".hidden"', '"a/b"', '"a..b"', '"&Jjo"', '"&AGE-"', '"x\\\\y/../z"']:
    typ, data = M.create(bad)
    assert typ == 'NO', (bad, data)
s = socket.create_connection(('127.0.0.1', PORT), timeout=10)
f = s.makefile('rwb')
f.readline()
f.write(b'a LOGIN u@example.test secret\r\n'); f.flush(); f.readline()
f.write(b'b CREATE {3+}\r\na\x00b\r\n'); f.flush()
l = f.readline()
assert l.startswith(b'b NO'), l
"#,
    );
    // Nothing was created outside the Maildir, nor hidden inside it.
    let parent = maildir(&inst).parent().unwrap().to_path_buf();
    let entries: Vec<_> = std::fs::read_dir(&parent)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let dirs: Vec<String> = std::fs::read_dir(maildir(&inst))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(
        dirs.iter()
            .all(|d| !d.contains("..") && !d.contains("hidden")),
        "{dirs:?}"
    );
}

#[test]
fn search_decodes_charsets() {
    let inst = start();
    // A GB2312 message, base64 body and encoded-word subject.
    let (body, _, _) = encoding_rs::GBK.encode("这是一封测试邮件。");
    let (subj, _, _) = encoding_rs::GBK.encode("邮件主题");
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let msg = format!(
        "From: a@b.test\nSubject: =?GB2312?B?{}?=\nMIME-Version: 1.0\nContent-Type: text/plain; charset=GB2312\nContent-Transfer-Encoding: base64\n\n{}\n",
        b64.encode(&subj),
        b64.encode(&body)
    );
    deliver(&inst, "INBOX", msg.as_bytes());
    deliver(&inst, "INBOX", b"Subject: plain\n\nnothing here\n");
    py(
        &inst,
        r#"
M = conn()
M.select('INBOX')
M.literal = '邮件'.encode()
typ, data = M.search('UTF-8', 'BODY')
assert data == [b'1'], data
M.literal = '主题'.encode()
typ, data = M.search('UTF-8', 'SUBJECT')
assert data == [b'1'], data
M.literal = '邮件'.encode('gb2312')
typ, data = M.search('GB2312', 'TEXT')
assert data == [b'1'], data
typ, data = M.search('X-NOPE', 'ALL')
assert typ == 'NO', data
"#,
    );
}

/// Sends raw lines and returns everything up to the tagged reply of `tag`.
fn raw_until(s: &mut TcpStream, r: &mut BufReader<TcpStream>, send: &[u8], tag: &str) -> String {
    s.write_all(send).unwrap();
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 {
            return all;
        }
        all.push_str(&line);
        if line.starts_with(&format!("{tag} ")) || line.starts_with("* BYE") {
            return all;
        }
    }
}

#[test]
fn bad_input_gets_bad_and_the_session_goes_on() {
    let inst = start();
    let mut s = TcpStream::connect(inst.addr(143)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut greet = String::new();
    r.read_line(&mut greet).unwrap();
    // Commands in the wrong state.
    let t = raw_until(&mut s, &mut r, b"a1 SELECT INBOX\r\n", "a1");
    assert!(t.starts_with("a1 BAD"), "{t}");
    let t = raw_until(&mut s, &mut r, b"a2 FETCH 1 FLAGS\r\n", "a2");
    assert!(t.starts_with("a2 BAD"), "{t}");
    // A literal announced far too large: refused, nothing buffered.
    let t = raw_until(&mut s, &mut r, b"a3 LOGIN {4294967295}\r\n", "a3");
    assert!(t.starts_with("a3 BAD"), "{t}");
    // Huge tag, unknown command, empty line.
    let tag = "t".repeat(10_000);
    let t = raw_until(&mut s, &mut r, format!("{tag} NOOP\r\n").as_bytes(), "*");
    assert!(t.starts_with("* BAD"), "{t}");
    let t = raw_until(&mut s, &mut r, b"a4 FROBNICATE\r\n", "a4");
    assert!(t.starts_with("a4 BAD"), "{t}");
    let t = raw_until(&mut s, &mut r, b"a5 LOGIN u@example.test secret\r\n", "a5");
    assert!(t.contains("a5 OK"), "{t}");
    let t = raw_until(&mut s, &mut r, b"a6 SELECT INBOX\r\n", "a6");
    assert!(t.contains("a6 OK"), "{t}");
    // A nesting bomb in SEARCH and 100,000 sequence ranges.
    let bomb = format!(
        "a7 SEARCH {}ALL{}\r\n",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    let t = raw_until(&mut s, &mut r, bomb.as_bytes(), "a7");
    assert!(t.starts_with("a7 BAD"), "{t}");
    let set: Vec<String> = (1..=100_000).map(|i| (i * 2).to_string()).collect();
    let t = raw_until(
        &mut s,
        &mut r,
        format!("a8 FETCH {} FLAGS\r\n", set.join(",")).as_bytes(),
        "a8",
    );
    assert!(t.starts_with("* BAD") || t.starts_with("a8 BAD"), "{t}");
    // Invalid modified UTF-7 and a sequence number past the end.
    let t = raw_until(&mut s, &mut r, b"a9 CREATE &Jjo!\r\n", "a9");
    assert!(t.starts_with("a9 NO"), "{t}");
    let t = raw_until(&mut s, &mut r, b"b1 FETCH 5 FLAGS\r\n", "b1");
    assert!(t.starts_with("b1 BAD"), "{t}");
    // A non-synchronizing literal over the limit closes with BYE.
    let t = raw_until(&mut s, &mut r, b"b2 LOGIN {99999999+}\r\n", "b2");
    assert!(t.contains("b2 BAD"), "{t}");
    let mut rest = String::new();
    let _ = r.read_line(&mut rest);
    assert!(rest.starts_with("* BYE"), "{rest}");
    // The server is still there for others.
    py(&inst, "M = conn()\nM.select('INBOX')\nM.logout()");
}

/// Every file under `dir` (relative names), sorted, without mbsync's state.
fn tree(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                if !rel.contains(".mbsyncstate") && !rel.ends_with(".uidvalidity") {
                    out.push(rel);
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn mbsync_both_ways_then_nothing_to_do() {
    let inst = start();
    py(
        &inst,
        r#"
M = conn()
M.create('Work'); M.create('Work.2024')
for f in ['INBOX', 'Work.2024']:
    for i in range(3):
        M.append(f, '(\\Seen)' if i == 0 else None, None, b'From: a@b.test\r\nSubject: %s %d\r\n\r\nbody\r\n' % (f.encode(), i))
M.logout()
"#,
    );
    let local = inst.path().join("near");
    std::fs::create_dir_all(&local).unwrap();
    let rc = inst.path().join("mbsyncrc");
    std::fs::write(
        &rc,
        format!(
            "IMAPAccount kmp\nHost 127.0.0.1\nPort {}\nUser u@example.test\nPass secret\nSSLType None\nAuthMechs LOGIN\n\n\
             IMAPStore far\nAccount kmp\n\nMaildirStore near\nPath {l}/\nInbox {l}/INBOX\nSubFolders Verbatim\n\n\
             Channel sync\nFar :far:\nNear :near:\nPatterns *\nCreate Both\nExpunge Both\nSyncState *\n",
            port(&inst),
            l = local.display()
        ),
    )
    .unwrap();
    let mbsync = || {
        let out = common::tool("mbsync")
            .arg("-c")
            .arg(&rc)
            .arg("sync")
            .output()
            .expect("mbsync runs");
        assert!(
            out.status.success(),
            "mbsync: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            inst.log("kmp-imapd")
        );
    };
    mbsync();
    let near = tree(&local);
    assert_eq!(
        near.iter().filter(|n| n.starts_with("INBOX/")).count(),
        3,
        "{near:?}"
    );
    assert_eq!(
        near.iter().filter(|n| n.starts_with("Work/2024/")).count(),
        3,
        "{near:?}"
    );
    // Changes on the near side: a new message, a new folder, a flag.
    std::fs::write(
        local.join("Work/2024/new/999.near.vm"),
        "Subject: near one\n\nx\n",
    )
    .unwrap();
    for d in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(local.join("Near").join(d)).unwrap();
    }
    std::fs::write(
        local.join("Near/cur/998.near.vm:2,F"),
        "Subject: near two\n\ny\n",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    mbsync();
    py(
        &inst,
        r#"
M = conn()
typ, data = M.select('Work.2024')
assert data == [b'4'], data
typ, data = M.fetch('4', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
assert b'near one' in data[0][1], data
typ, data = M.select('Near')
assert data == [b'1'], data
typ, data = M.fetch('1', '(FLAGS)')
assert b'\\Flagged' in data[0], data
M.store('1', '+FLAGS', '(\\Seen)')
"#,
    );
    mbsync();
    let before = tree(&local);
    assert!(
        before
            .iter()
            .any(|n| n.starts_with("Near/cur/") && n.ends_with("FS")),
        "{before:?}"
    );
    let server = maildir(&inst);
    let server_before = tree(&server);
    std::thread::sleep(Duration::from_millis(1100));
    mbsync();
    assert_eq!(tree(&local), before, "the second run changed the near side");
    let server_after: Vec<String> = tree(&server)
        .into_iter()
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    let server_before: Vec<String> = server_before
        .into_iter()
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert_eq!(
        server_after, server_before,
        "the second run changed the server"
    );
}

#[test]
fn folder_of_50000_messages() {
    let inst = start();
    let md = maildir(&inst);
    Maildir::create(&md).unwrap();
    // Written straight into cur/ as any Maildir program would (the library
    // reads sizes from the files when the names do not carry them).
    let script = r#"
import mailbox, sys
md = mailbox.Maildir(sys.argv[1], create=False)
for i in range(50000):
    m = mailbox.MaildirMessage("From: s%d@example.test\nSubject: number %d\n\nbody %d\n" % (i, i, i))
    m.set_subdir("cur")
    if i % 2 == 0:
        m.set_flags("S")
    md.add(m)
print('OK')
"#;
    let out = python(script, &[md.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    py(
        &inst,
        r#"
M = conn()
typ, data = M.select('INBOX')
assert data == [b'50000'], data
typ, data = M.search(None, 'UNSEEN')
assert len(data[0].split()) == 25000, len(data[0].split())
typ, data = M.search(None, 'SUBJECT', '"number 49999"')
assert data == [b'50000'], data
typ, data = M.fetch('1:1000', '(FLAGS UID RFC822.SIZE)')
assert len(data) == 1000, len(data)
typ, data = M.uid('FETCH', '49990:*', '(BODY.PEEK[HEADER])')
assert len([d for d in data if isinstance(d, tuple)]) == 11, data[-2:]
typ, data = M.store('25000:25999', '+FLAGS.SILENT', '(\\Flagged)')
typ, data = M.search(None, 'FLAGGED')
assert len(data[0].split()) == 1000, len(data[0].split())
M.logout()
"#,
    );
}

/// Issue 11: session A sets `+FLAGS (\Answered)`, session B (whose view is
/// older) then `-FLAGS (\Seen)`: each STORE must change only the flags it
/// names, against the flags on disk, in either order and for keywords too;
/// a third session sees the union.
#[test]
fn store_in_two_sessions_keeps_both_changes() {
    let inst = start();
    py(
        &inst,
        r#"
def flags_of(M, n):
    typ, data = M.fetch(n, '(FLAGS)')
    assert typ == 'OK', data
    # Unsolicited FETCH updates of other messages may come first.
    s = [d.decode() for d in data if d.decode().startswith(n + ' (')][-1]
    # \Recent belongs to the one session that saw the message first.
    return s.replace('\\Recent ', '').replace(' \\Recent', '').replace('\\Recent', '')

A = conn(); B = conn()
for i in range(4):
    A.append('INBOX', '(\\Seen)', None, b'Subject: m%d\r\n\r\nx\r\n' % i)
A.select('INBOX'); B.select('INBOX')
# Message 1: A adds, then B removes.
A.store('1', '+FLAGS', '(\\Answered)')
typ, data = B.store('1', '-FLAGS', '(\\Seen)')
assert '\\Answered' in data[0].decode() and '\\Seen' not in data[0].decode(), data
# Message 2: B removes, then A adds.
B.store('2', '-FLAGS', '(\\Seen)')
typ, data = A.store('2', '+FLAGS', '(\\Answered)')
assert '\\Answered' in data[0].decode() and '\\Seen' not in data[0].decode(), data
# Message 3: keywords from both sides, and a removal of one set before.
A.store('3', '+FLAGS', '(Work $Label1)')
B.store('3', '+FLAGS', '(Home)')
A.store('3', '-FLAGS', '($Label1)')
B.store('3', '+FLAGS', '(\\Flagged)')
# Message 4: B believes \Seen is set and adds it again after A removed it.
A.store('4', '-FLAGS', '(\\Seen)')
B.store('4', '+FLAGS', '(\\Seen)')
C = conn(); C.select('INBOX', readonly=True)
f1, f2, f3, f4 = (flags_of(C, str(n)) for n in range(1, 5))
assert '\\Answered' in f1 and '\\Seen' not in f1, f1
assert '\\Answered' in f2 and '\\Seen' not in f2, f2
for k in ('Work', 'Home', '\\Seen', '\\Flagged'):
    assert k in f3, f3
assert '$Label1' not in f3, f3
assert '\\Seen' in f4, f4
# The sessions that stored see the same as the third one.
for M in (A, B):
    M.noop()
    assert (flags_of(M, '1'), flags_of(M, '3')) == (f1, f3), (flags_of(M, '1'), flags_of(M, '3'), f1, f3)
A.logout(); B.logout(); C.logout()
"#,
    );
}

/// Issue 11: a folder deleted and created again at once gets a new
/// UIDVALIDITY, so its UID 1 is never the UID 1 of the old folder.
#[test]
fn a_folder_recreated_at_once_has_a_new_uidvalidity() {
    let inst = start();
    py(
        &inst,
        r#"
import re
M = conn()
seen = []
for i in range(3):
    assert M.create('Quick')[0] == 'OK'
    typ, data = M.append('Quick', None, None, b'Subject: q%d\r\n\r\nx\r\n' % i)
    m = re.search(rb'APPENDUID (\d+) (\d+)', data[0])
    assert m, data
    v, uid = int(m.group(1)), int(m.group(2))
    assert uid == 1, data
    assert v not in seen, (v, seen)
    typ, data = M.status('Quick', '(UIDVALIDITY)')
    assert b'UIDVALIDITY %d' % v in data[0], data
    seen.append(v)
    assert M.delete('Quick')[0] == 'OK'
# Renamed away and created again under the old name at once.
assert M.create('Quick')[0] == 'OK'
typ, data = M.status('Quick', '(UIDVALIDITY)')
old = int(re.search(rb'UIDVALIDITY (\d+)', data[0]).group(1))
assert M.rename('Quick', 'Moved')[0] == 'OK'
assert M.create('Quick')[0] == 'OK'
typ, data = M.status('Quick', '(UIDVALIDITY)')
new = int(re.search(rb'UIDVALIDITY (\d+)', data[0]).group(1))
typ, data = M.status('Moved', '(UIDVALIDITY)')
assert b'UIDVALIDITY %d' % old in data[0], data
assert new != old and new not in seen, (new, old, seen)
M.logout()
"#,
    );
}

/// Issue 11: after APPENDUID the UID is on disk; a server killed with
/// SIGKILL right after, and started again, gives the next message a higher
/// UID under the same UIDVALIDITY.
#[test]
fn a_uid_given_before_a_kill_is_not_given_again() {
    let mut inst = start();
    let append = r#"
import re
M = conn()
typ, data = M.append('INBOX', None, None, b'Subject: k\r\n\r\nx\r\n')
m = re.search(rb'APPENDUID (\d+) (\d+)', data[0])
assert m, data
print('UID', m.group(1).decode(), m.group(2).decode())
sys.stdout.flush()
"#;
    let parse = |text: &str| -> (u32, u32) {
        let line = text.lines().find(|l| l.starts_with("UID ")).unwrap();
        let mut f = line.split(' ').skip(1).map(|x| x.parse::<u32>().unwrap());
        (f.next().unwrap(), f.next().unwrap())
    };
    let first = parse(&py(&inst, append));
    inst.kill("kmp-imapd");
    let _ = std::fs::remove_file(inst.path().join("run/kmp-imapd.pid"));
    inst.spawn("kmp-imapd", &[]);
    wait_until(Duration::from_secs(10), || {
        inst.path().join("run/kmp-imapd.pid").exists()
    })
    .unwrap_or_else(|_| panic!("kmp-imapd did not restart: {}", inst.log("kmp-imapd")));
    inst.wait_port(143);
    let second = parse(&py(&inst, append));
    assert_eq!(second.0, first.0, "UIDVALIDITY kept");
    assert!(second.1 > first.1, "{first:?} then {second:?}");
}
