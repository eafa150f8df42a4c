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
        self.f = self.s.makefile('rb')
        self.n = 0
        self.f.readline()
        if login:
            self.cmd('LOGIN u@example.test secret')
    def read(self):
        l = self.f.readline()
        if not l:
            raise Exception('connection closed')
        l = l.decode('utf-8', 'replace').rstrip('\r\n')
        m = re.search(r'\{(\d+)\}$', l)
        while m:
            data = self.f.read(int(m.group(1))).decode('utf-8', 'replace')
            rest = self.f.readline().decode('utf-8', 'replace').rstrip('\r\n')
            l = l + '\n' + data + rest
            m = re.search(r'\{(\d+)\}$', rest)
        return l
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
