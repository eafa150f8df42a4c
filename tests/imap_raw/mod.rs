//! A raw IMAP client in Python for the tests of IMAP extensions, where the
//! exact untagged responses matter (imaplib hides them).

use super::common::{python, Instance};

/// A raw IMAP client in Python: `C()` logs in as u@example.test;
/// `c.cmd(text)` returns (untagged lines, tagged line) and checks the
/// status (`ok='BAD'` to expect another).
pub const RAW: &str = r#"
import socket, sys, re
PORT = int(sys.argv[1])
class C:
    def __init__(self, login=True):
        self.s = socket.create_connection(('127.0.0.1', PORT), timeout=30)
        self.buf = b''
        self.n = 0
        self.line()
        if login:
            self.cmd('LOGIN u@example.test secret')
    def fill(self, n, secs=30):
        # At least n bytes in the buffer; False when secs passed first.
        import time
        end = time.time() + secs
        while len(self.buf) < n:
            left = end - time.time()
            if left <= 0:
                return False
            self.s.settimeout(left)
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                return False
            if not d:
                raise Exception('connection closed')
            self.buf += d
        return True
    def line(self, secs=30):
        # The next line without its CRLF, or None after secs.
        while b'\r\n' not in self.buf:
            if not self.fill(len(self.buf) + 1, secs):
                return None
        l, self.buf = self.buf.split(b'\r\n', 1)
        return l
    def read(self, secs=30):
        l = self.line(secs)
        if l is None:
            return None
        l = l.decode('utf-8', 'replace')
        m = re.search(r'\{(\d+)\}$', l)
        while m:
            n = int(m.group(1))
            if not self.fill(n):
                raise Exception('literal cut short')
            data, self.buf = self.buf[:n], self.buf[n:]
            rest = self.line().decode('utf-8', 'replace')
            l = l + '\n' + data.decode('utf-8', 'replace') + rest
            m = re.search(r'\{(\d+)\}$', rest)
        return l
    def listen(self, pred, secs=15):
        # Lines the server sends with no command sent, until pred(lines)
        # holds; raises after secs. pred=None: all that comes in secs.
        import time
        end = time.time() + secs
        seen = []
        while True:
            if pred is not None and pred(seen):
                return seen
            left = end - time.time()
            if left <= 0:
                if pred is None:
                    return seen
                raise Exception('not pushed: %r' % seen)
            l = self.read(left)
            if l is not None:
                seen.append(l)
    def cmd(self, text, ok='OK'):
        self.n += 1
        tag = 't%d' % self.n
        self.s.sendall(('%s %s\r\n' % (tag, text)).encode())
        lines = []
        while True:
            l = self.read()
            if l.startswith(tag + ' '):
                assert l.split(' ')[1] == ok, (text, l, lines)
                return lines, l
            lines.append(l)
def until(c, pred, secs=15):
    import time
    end = time.time() + secs
    seen = []
    while time.time() < end:
        lines, _ = c.cmd('NOOP')
        seen += lines
        if pred(seen):
            return seen
        time.sleep(0.3)
    raise Exception('not seen: %r' % seen)
def num(lines, pat):
    for l in lines:
        m = re.search(pat, l)
        if m:
            return int(m.group(1))
    raise Exception('%s not in %r' % (pat, lines))
"#;

/// Runs a script after [`RAW`], the port as argv[1]; it must print OK.
pub fn run(inst: &Instance, script: &str) {
    let full = format!("{RAW}\n{script}\nprint('OK')\n");
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
