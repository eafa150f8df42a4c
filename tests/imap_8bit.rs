//! kmp-imapd and headers in raw 8-bit legacy charsets (GB2312, GBK, Big5
//! without RFC 2047, as old Chinese clients send them), raw UTF-8 and RFC
//! 2047: ENVELOPE with and without ENABLE UTF8=ACCEPT, SORT by SUBJECT and
//! DISPLAYFROM in the order of the decoded text, SEARCH with Chinese strings.
//! Python's imaplib and raw sockets against the real binaries.
mod common;

use common::{python, Instance};

/// Runs a Python script, the port as argv[1] and the user's Maildir as
/// argv[2]; it must print OK.
fn py(inst: &Instance, script: &str) {
    let full = format!("{PRELUDE}\n{script}\nprint('OK')\n");
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

/// Helpers and the six messages, APPENDed to folder C and selected.
const PRELUDE: &str = r#"
import imaplib, sys, socket, os, base64, re
socket.setdefaulttimeout(60)
PORT = int(sys.argv[1])
MAILDIR = sys.argv[2]

def conn():
    M = imaplib.IMAP4('127.0.0.1', PORT)
    M.login('u@example.test', 'secret')
    return M

class Raw:
    def __init__(self):
        self.s = socket.create_connection(('127.0.0.1', PORT))
        self.buf = b''
        self.n = 0
        self.read_until(re.compile(rb'^\* OK[^\r\n]*\r\n'))
        self.cmd(b'LOGIN u@example.test secret')
    def read_until(self, pat):
        for _ in range(1000):
            m = pat.search(self.buf)
            if m:
                out, self.buf = self.buf[:m.end()], self.buf[m.end():]
                return out
            d = self.s.recv(65536)
            assert d, self.buf
            self.buf += d
        raise AssertionError(self.buf)
    def cmd(self, text):
        self.n += 1
        tag = b'r%d' % self.n
        self.s.sendall(tag + b' ' + text + b'\r\n')
        out = self.read_until(re.compile(rb'(^|\r\n)' + tag + rb' [^\r\n]*\r\n'))
        assert (b'\r\n' + out).rfind(b'\r\n' + tag + b' OK') >= 0, out
        return out

def b64word(s):
    return '=?UTF-8?B?%s?=' % base64.b64encode(s.encode()).decode()

def b64name(s):
    return '=?utf-8?b?%s?=' % base64.b64encode(s.encode()).decode()

def raw_header(v, cs):
    return v.encode(cs) if cs else v.encode()

# (subject, display name, address, charset of the raw bytes or None for
# RFC 2047 (gb2312 subject, gbk name) or 'ascii')
MSGS = [
    ('关于下周项目会议的安排通知', '张三丰', 'zhang@a.example', 'gb2312'),
    ('朱镕基访问纪要', '李四', 'li@a.example', 'gbk'),
    ('許功蓋的報告請查收', '許功蓋', 'xu@b.example', 'big5'),
    ('报告：年度总结', '王五', 'wang@c.example', 'utf-8'),
    ('会议通知', '赵六', 'zhao@d.example', None),
    ('alpha', 'Amy', 'amy@e.example', 'ascii'),
]

def message(subject, name, addr, cs):
    if cs is None:
        subj = ('=?gb2312?b?%s?=' % base64.b64encode(subject.encode('gb2312')).decode()).encode()
        nm = ('=?gbk?b?%s?=' % base64.b64encode(name.encode('gbk')).decode()).encode()
    else:
        subj = subject.encode(cs)
        nm = b'"' + name.encode(cs) + b'"'
    return (b'From: ' + nm + b' <' + addr.encode() + b'>\r\nTo: u@example.test\r\n'
            b'Date: Mon, 04 Mar 2024 09:00:00 +0000\r\nSubject: ' + subj +
            b'\r\nMessage-ID: <' + addr.encode() + b'>\r\n\r\nbody\r\n')

M = conn()
assert M.create('C')[0] == 'OK'
for m in MSGS:
    typ, d = M.append('C', None, None, message(*m))
    assert typ == 'OK', d
typ, d = M.select('C')
assert typ == 'OK', d
"#;

#[test]
fn envelope_gives_8bit_headers_decoded_as_utf8_or_rfc2047() {
    let inst = common::imap_instance();
    py(
        &inst,
        r#"
# Without UTF8=ACCEPT: 7-bit only, the decoded text as UTF-8 encoded-words.
R = Raw()
R.cmd(b'SELECT C')
for i, (subject, name, addr, cs) in enumerate(MSGS, 1):
    out = R.cmd(b'FETCH %d ENVELOPE' % i)
    env = out.split(b'\r\n')[0]
    assert all(b < 0x80 for b in out), out
    assert b' NIL NIL NIL NIL NIL NIL' not in env, out
    local, host = addr.split('@')
    if cs is None:
        # RFC 2047 in the message: the subject as it was written.
        assert b'"=?gb2312?b?' in env, out
        assert ('(("%s" NIL "%s" "%s"))' % (b64name(name), local, host)).encode() in env, out
    elif cs == 'ascii':
        assert b'"alpha"' in env and b'(("Amy" NIL "amy" "e.example"))' in env, out
    else:
        assert ('"%s"' % b64word(subject)).encode() in env, (subject, out)
        assert ('(("%s" NIL "%s" "%s"))' % (b64name(name), local, host)).encode() in env, (name, out)
    assert ('"<%s>"' % addr).encode() in env, out

# With UTF8=ACCEPT: raw text as UTF-8, never U+FFFD, nothing legacy.
R = Raw()
out = R.cmd(b'ENABLE UTF8=ACCEPT')
assert b'* ENABLED UTF8=ACCEPT' in out, out
R.cmd(b'SELECT C')
for i, (subject, name, addr, cs) in enumerate(MSGS, 1):
    out = R.cmd(b'FETCH %d ENVELOPE' % i)
    text = out.decode('utf-8')
    assert '\ufffd' not in text, text
    local, host = addr.split('@')
    if cs is None:
        assert '"=?gb2312?b?' in text, text
        assert '(("%s" NIL "%s" "%s"))' % (b64name(name), local, host) in text, text
    elif cs == 'ascii':
        assert '"alpha"' in text, text
    else:
        s = subject.encode()
        assert ('{%d}\r\n%s ' % (len(s), subject)) in text, (subject, text)
        n = name.encode()
        assert ('(({%d}\r\n%s NIL "%s" "%s"))' % (len(n), name, local, host)) in text, (name, text)
        assert '=?UTF-8?B?' not in text, text

# imaplib's own view (no UTF8=ACCEPT) of a Big5 one: BODY[HEADER] is still
# the message as stored, byte for byte.
typ, d = M.fetch('3', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
assert typ == 'OK', d
assert d[0][1].strip() == b'Subject: ' + MSGS[2][0].encode('big5'), d
"#,
    );
}

#[test]
fn sort_and_search_use_the_decoded_text() {
    let inst = common::imap_instance();
    py(
        &inst,
        r#"
def casemap(s):
    return ''.join(c.upper() if c.isascii() else c for c in s)

def sort(M, key):
    typ, d = M._simple_command('SORT', '(%s)' % key, 'UTF-8', 'ALL')
    assert typ == 'OK', (key, typ, d)
    return (M.untagged_responses.pop('SORT')[0] or b'').decode()

want = ' '.join(str(i + 1) for i, _ in sorted(enumerate(MSGS), key=lambda x: (casemap(x[1][0]), x[0])))
assert sort(M, 'SUBJECT') == want, (sort(M, 'SUBJECT'), want)
want_rev = ' '.join(reversed(want.split()))
assert sort(M, 'REVERSE SUBJECT') == want_rev
want_d = ' '.join(str(i + 1) for i, _ in sorted(enumerate(MSGS), key=lambda x: (casemap(x[1][1]), x[0])))
assert sort(M, 'DISPLAYFROM') == want_d, (sort(M, 'DISPLAYFROM'), want_d)

# A new session reads the keys back from the cache file, which is of the
# new format.
M2 = conn()
assert M2.select('C')[0] == 'OK'
assert sort(M2, 'SUBJECT') == want
assert sort(M2, 'DISPLAYFROM') == want_d
found = []
for root, dirs, files in os.walk(MAILDIR):
    for f in files:
        if f == 'kmpromail-sortcache':
            found.append(open(os.path.join(root, f), 'rb').read())
assert found and any(c.startswith(b'kmpromail-sortcache 2 ') for c in found), found

# SEARCH with Chinese strings in UTF-8, sent as literals.
def search(M, *keys, text):
    M.literal = text.encode()
    typ, d = M.search('UTF-8', *keys)
    assert typ == 'OK', (keys, text, d)
    return d[0].decode()

assert search(M, 'SUBJECT', text='会议') == '1 5', search(M, 'SUBJECT', text='会议')
assert search(M, 'SUBJECT', text='镕基') == '2'
assert search(M, 'SUBJECT', text='報告') == '3'
assert search(M, 'SUBJECT', text='报告') == '4'
assert search(M, 'FROM', text='张三丰') == '1'
assert search(M, 'FROM', text='李四') == '2'
assert search(M, 'FROM', text='許功蓋') == '3'
assert search(M, 'FROM', text='王五') == '4'
assert search(M, 'FROM', text='赵六') == '5'
assert search(M, 'HEADER', 'SUBJECT', text='访问纪要') == '2'
assert search(M, 'TO', text='许') == ''

# With UTF8=ACCEPT the string may be quoted UTF-8 (RFC 6855 3).
R = Raw()
R.cmd(b'ENABLE UTF8=ACCEPT')
R.cmd(b'SELECT C')
out = R.cmd('SEARCH SUBJECT "請查收"'.encode())
assert b'* SEARCH 3\r\n' in out, out
out = R.cmd('SEARCH FROM "许功盖" '.encode().strip())
assert b'* SEARCH\r\n' in out, out
"#,
    );
}
