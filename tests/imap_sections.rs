//! Body sections and BINARY (RFC 3501 6.4.5, RFC 3516) as a client sees
//! them: Python's imaplib against the real kmp-imapd, messages APPENDed by
//! the client (one as a literal8) and fetched back byte for byte.
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
         M = imaplib.IMAP4('127.0.0.1', PORT)\nM.login('u@example.test', 'secret')\n{script}\nprint('OK')\n"
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

/// Part 1 is binary (bare LFs, a NUL); part 2 a message/rfc822 whose body is
/// a multipart with an epilogue. Message 2 is a message/rfc822 as a whole.
const SCRIPT: &str = r#"
BIN = b'ab\ncd\n\x00z'
MSG = (b'From: a@example.test\r\nSubject: sections\r\nMIME-Version: 1.0\r\n'
       b'Content-Type: multipart/mixed; boundary=XX\r\n\r\n'
       b'--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n'
       + BIN +
       b'\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\n'
       b'Subject: inner\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n'
       b'--YY\r\n\r\none\r\n--YY--\r\ninner epilogue\r\n--XX--\r\n')
FWD = (b'Subject: fwd\r\nContent-Type: message/rfc822\r\n\r\n'
       b'Subject: inner\r\nContent-Type: multipart/mixed; boundary=YY\r\n\r\n'
       b'--YY\r\n\r\none\r\n--YY--\r\nepilogue\r\n')

# APPEND with a literal8 (RFC 3516 4.3), which imaplib cannot write.
tag = M._new_tag()
M.send(tag + b' APPEND INBOX ~{%d}\r\n' % len(MSG))
line = M.readline()
assert line.startswith(b'+'), line
M.send(MSG + b'\r\n')
while True:
    line = M.readline()
    if line.startswith(tag):
        break
assert line.startswith(tag + b' OK'), line
typ, _ = M.append('INBOX', None, None, FWD)
assert typ == 'OK'
M.select('INBOX', readonly=True)

def one(spec, msg='1'):
    typ, data = M.fetch(msg, '(' + spec + ')')
    assert typ == 'OK', (spec, typ, data)
    return data

# BINARY: the decoded part as sent, bare LFs and all, as a literal8.
d = one('BINARY.PEEK[1]')
assert d[0][0].endswith(b'(BINARY[1] ~{8}'), d
assert d[0][1] == BIN, d
d = one('BINARY.SIZE[1]')
assert d[0] == b'1 (BINARY.SIZE[1] 8)', d
# BODY[1]: the stored part in an ordinary literal, which holds no NUL.
d = one('BODY.PEEK[1]')
assert d[0][0].endswith(b'(BODY[1] {8}'), d
assert d[0][1] == b'ab\ncd\n\x80z', d
# TEXT of the embedded message runs to the end of its part.
d = one('BODY.PEEK[2.TEXT]')
assert d[0][1] == b'--YY\r\n\r\none\r\n--YY--\r\ninner epilogue', d
d = one('BODY.PEEK[2.1]')
assert d[0][1] == b'one', d
# The message comes back byte for byte, its size that of what is sent.
d = one('RFC822.SIZE')
assert d[0] == b'1 (RFC822.SIZE %d)' % len(MSG), (d, len(MSG))
d = one('BINARY.PEEK[]')
assert d[0][1] == MSG, d
d = one('BODY.PEEK[]')
assert d[0][1] == MSG.replace(b'\x00', b'\x80'), d
# A message that is a message/rfc822 as a whole: 1.TEXT keeps the epilogue.
d = one('BODY.PEEK[1.TEXT]', '2')
assert d[0][1] == b'--YY\r\n\r\none\r\n--YY--\r\nepilogue\r\n', d
d = one('BODY.PEEK[1.1]', '2')
assert d[0][1] == b'one', d
d = one('RFC822.SIZE', '2')
assert d[0] == b'2 (RFC822.SIZE %d)' % len(FWD), d
# A transfer encoding BINARY cannot remove fails the FETCH (RFC 3516 4.2).
UUE = b'Subject: uu\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\nend\r\n'
typ, _ = M.append('INBOX', None, None, UUE)
assert typ == 'OK'
M.noop()
typ, d = M.fetch('3', '(BINARY.PEEK[1])')
assert typ == 'NO' and b'[UNKNOWN-CTE]' in d[0], (typ, d)
d = one('BODY.PEEK[1]', '3')
assert d[0][1] == b'begin 644 x\r\nend\r\n', d
M.logout()
"#;

#[test]
fn binary_sections_keep_bare_lfs_and_body_sections_carry_no_nul() {
    let inst = start();
    py(&inst, SCRIPT);
    // The message with bare LFs is stored as it was sent, W= equal to S=;
    // the other one in LF form, as all mail here.
    // APPENDed mail waits in new/ (it is \Recent) until a session takes it.
    let maildir = inst.path().join("mail/example.test/u");
    let files: Vec<std::path::PathBuf> = ["new", "cur"]
        .iter()
        .flat_map(|d| std::fs::read_dir(maildir.join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    let verbatim = files
        .iter()
        .zip(&names)
        .filter(|(f, n)| {
            let data = std::fs::read(f).unwrap();
            let w = format!("W={}", data.len());
            data.windows(2).any(|p| p == b"\r\n") && n.contains(&w)
        })
        .count();
    assert_eq!(verbatim, 1, "{names:?}");
}

#[test]
fn a_large_binary_append_keeps_its_bare_lfs() {
    // Over 64 KiB, APPEND goes through a staging file and is stored from it.
    let inst = start();
    py(
        &inst,
        r#"
BIN = (b'0123456789\n' * 8000) + b'\x00end'
MSG = (b'Subject: big\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n'
       b'--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n'
       + BIN + b'\r\n--XX--\r\n')
tag = M._new_tag()
M.send(tag + b' APPEND INBOX ~{%d}\r\n' % len(MSG))
assert M.readline().startswith(b'+')
M.send(MSG + b'\r\n')
while True:
    line = M.readline()
    if line.startswith(tag):
        break
assert line.startswith(tag + b' OK'), line
M.select('INBOX', readonly=True)
typ, d = M.fetch('1', '(BINARY.SIZE[1])')
assert d[0] == b'1 (BINARY.SIZE[1] %d)' % len(BIN), d
typ, d = M.fetch('1', '(BINARY.PEEK[1])')
assert d[0][1] == BIN, len(d[0][1])
typ, d = M.fetch('1', '(RFC822.SIZE)')
assert d[0] == b'1 (RFC822.SIZE %d)' % len(MSG), d
"#,
    );
}

#[test]
fn lf_only_append_still_reads_back_with_crlf() {
    let inst = start();
    py(
        &inst,
        r#"
tag = M._new_tag()
MSG = b'Subject: lf\n\nline one\nline two\n'
M.send(tag + b' APPEND INBOX {%d}\r\n' % len(MSG))
assert M.readline().startswith(b'+')
M.send(MSG + b'\r\n')
while True:
    line = M.readline()
    if line.startswith(tag):
        break
assert line.startswith(tag + b' OK'), line
M.select('INBOX', readonly=True)
want = MSG.replace(b'\n', b'\r\n')
typ, d = M.fetch('1', '(BODY.PEEK[])')
assert d[0][1] == want, d
typ, d = M.fetch('1', '(RFC822.SIZE)')
assert d[0] == b'1 (RFC822.SIZE %d)' % len(want), d
"#,
    );
}
