//! MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469) over a raw socket: all
//! messages or none, APPENDUID with the UID set, large literals that are
//! streamed to staging files, URL parts (RFC 5092) with BADURL, TOOBIG and
//! TRYCREATE, and GB2312 text that comes back byte for byte.

mod common;

const HEAD: &str = r#"
import socket, sys, re
host, port = sys.argv[1], int(sys.argv[2])
class Imap:
    def __init__(self, user):
        self.s = socket.create_connection((host, port), timeout=20)
        self.f = self.s.makefile("rb")
        self.n = 0
        self.f.readline()
        self.cmd(b"LOGIN " + user.encode() + b" secret")
    def cmd(self, *parts):
        """Sends a command made of byte strings; (literal bytes) tuples are
        sent as non-synchronising literals. Returns (untagged bytes, tagged line)."""
        self.n += 1
        tag = b"t%d" % self.n
        out = tag + b" "
        for p in parts:
            if isinstance(p, tuple):
                out += b"{%d+}\r\n" % len(p[0]) + p[0]
            else:
                out += p
        self.s.sendall(out + b"\r\n")
        got = b""
        while True:
            line = self.f.readline()
            assert line, "connection closed"
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m:
                line += self.f.read(int(m.group(1)))
                got += line
                continue
            if line.startswith(tag + b" "):
                return got, line.decode()
            got += line
    def count(self, box):
        u, t = self.cmd(b"STATUS " + box + b" (MESSAGES)")
        return int(re.search(rb"MESSAGES (\d+)", u).group(1))
"#;

fn run(inst: &common::Instance, body: &str) {
    let out = common::python(
        &format!("{HEAD}{body}\nprint('ok')\n"),
        &["127.0.0.1", &(inst.base + 143).to_string()],
    );
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        inst.log("kmp-imapd")
    );
}

#[test]
fn multiappend_stores_every_message_or_none() {
    let inst = common::imap_instance();
    run(
        &inst,
        r#"
c = Imap("u@example.test")
m1 = b"Subject: one\r\n\r\nfirst\r\n"
m2 = b"Subject: two\r\n\r\nsecond\r\n"
big = b"Subject: big\r\n\r\n" + (b"z" * 998 + b"\r\n") * 200
u, t = c.cmd(b"APPEND INBOX (\\Seen) ", (m1,), b" (\\Flagged) \"04-Dec-2026 10:00:00 +0800\" ", (m2,), b" ", (big,), b" ", (big,))
assert t.startswith("t2 OK [APPENDUID "), t
validity, uids = re.search(r"APPENDUID (\d+) (\S+)\]", t).groups()
assert uids == "1:4", t
u, t = c.cmd(b"SELECT INBOX")
u, t = c.cmd(b"FETCH 1:4 (FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
assert b"* 1 FETCH (FLAGS (\\Seen" in u, u
assert b"* 2 FETCH (FLAGS (\\Flagged" in u and b"04-Dec-2026 02:00:00 +0000" in u, u
assert u.count(b"RFC822.SIZE %d" % len(big)) == 2, u
u, t = c.cmd(b"FETCH 3 BODY.PEEK[]")
assert big in u, len(u)
# A bad URL in the third message: nothing of the three is stored.
n = c.count(b"INBOX")
u, t = c.cmd(b"APPEND INBOX ", (m1,), b" ", (m2,), b" CATENATE (URL \"/INBOX/;uid=99\")")
assert t.startswith("t%d NO [BADURL /INBOX/;uid=99]" % c.n), t
# An empty message: nothing either.
u, t = c.cmd(b"APPEND INBOX ", (m1,), b" ", (b"",))
assert "NO" in t, t
assert c.count(b"INBOX") == n
# A missing mailbox: TRYCREATE.
u, t = c.cmd(b"APPEND Nope ", (m1,), b" ", (m2,))
assert t.startswith("t%d NO [TRYCREATE]" % c.n), t
"#,
    );
}

#[test]
fn a_failure_after_the_first_message_rolls_the_others_back() {
    let mut inst = common::Instance::new();
    inst.ctl_ok(&["domain", "add", "example.test"]);
    let out = inst.ctl_stdin(
        &[
            "user",
            "add",
            "q@example.test",
            "--password-stdin",
            "--quota",
            "3000",
        ],
        Some(b"secret\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    inst.spawn("kmp-imapd", &[]);
    inst.wait_port(143);
    run(
        &inst,
        r#"
c = Imap("q@example.test")
small = b"Subject: fits\r\n\r\n" + b"a" * 1000 + b"\r\n"
# Each message fits alone; the third passes the quota once two are stored.
u, t = c.cmd(b"APPEND INBOX ", (small,), b" ", (small,), b" ", (small,))
assert t.startswith("t2 NO [OVERQUOTA]"), t
assert c.count(b"INBOX") == 0, c.cmd(b"STATUS INBOX (MESSAGES)")
u, t = c.cmd(b"APPEND INBOX ", (small,), b" ", (small,))
assert t.startswith("t4 OK [APPENDUID"), t
assert c.count(b"INBOX") == 2
"#,
    );
}

/// RFC 9208 4.2: COPY that would pass the quota fails with OVERQUOTA and
/// copies nothing; MOVE (same quota root) still works, so a full mailbox
/// can be emptied into Trash; the session goes on.
#[test]
fn copy_over_the_quota_is_refused_and_move_is_not() {
    let mut inst = common::Instance::new();
    inst.ctl_ok(&["domain", "add", "example.test"]);
    let out = inst.ctl_stdin(
        &[
            "user",
            "add",
            "q@example.test",
            "--password-stdin",
            "--quota",
            "3000",
        ],
        Some(b"secret\n"),
    );
    assert!(out.status.success());
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    inst.spawn("kmp-imapd", &[]);
    inst.wait_port(143);
    run(
        &inst,
        r#"
c = Imap("q@example.test")
small = b"Subject: fits\r\n\r\n" + b"a" * 1000 + b"\r\n"
u, t = c.cmd(b"APPEND INBOX ", (small,), b" ", (small,))
assert t.startswith("t2 OK"), t
c.cmd(b"CREATE Trash")
c.cmd(b"SELECT INBOX")
u, t = c.cmd(b"COPY 1:2 Trash")
assert t.startswith("t5 NO [OVERQUOTA]"), t
assert c.count(b"Trash") == 0
u, t = c.cmd(b"MOVE 1:2 Trash")
assert " OK " in t and b"COPYUID" in u, (u, t)
assert c.count(b"Trash") == 2 and c.count(b"INBOX") == 0
u, t = c.cmd(b"NOOP")
assert t.startswith("t%d OK" % c.n), t
"#,
    );
}

#[test]
fn catenate_joins_text_and_url_parts() {
    let inst = common::imap_instance_with(&[("imapd", "max_message_size = 200000")]);
    run(
        &inst,
        r#"
c = Imap("u@example.test")
gb = "\u4e2d\u6587".encode("gb2312")
src = (b"From: a@example.test\r\nSubject: src\r\nContent-Type: text/plain; charset=GB2312\r\n\r\n"
       + gb + b" body\r\n")
u, t = c.cmd(b"APPEND INBOX ", (src,))
validity, uid = re.search(r"APPENDUID (\d+) (\d+)", t).groups()
c.cmd(b"CREATE Out")
url = ("/INBOX;UIDVALIDITY=%s/;UID=%s" % (validity, uid)).encode()
big = b"X-Big: " + b"b" * 70000 + b"\r\n"
u, t = c.cmd(b"APPEND Out (\\Draft) CATENATE (TEXT ", (b"To: z@example.test\r\n",),
             b" URL \"" + url + b"/;SECTION=HEADER.FIELDS%20(FROM)\" TEXT ", (big,),
             b" TEXT ", (b"\r\n",), b" URL \"" + url + b"/;SECTION=TEXT\" URL \"" + url + b"/;PARTIAL=0.4\")",
             b" CATENATE (URL \"" + url + b"\")")
assert t.startswith("t4 OK [APPENDUID ") and re.search(r"APPENDUID \d+ 1:2\]", t), t
c.cmd(b"SELECT Out")
u, t = c.cmd(b"FETCH 1:2 (FLAGS BODY.PEEK[])")
want1 = b"To: z@example.test\r\nFrom: a@example.test\r\n\r\n" + big + b"\r\n" + gb + b" body\r\nFrom"
assert want1 in u and b"\\Draft" in u, u[:300]
assert u.count(src) == 1, u[-400:]
# Wrong UIDVALIDITY, a missing section, another user's mailbox: BADURL.
for bad in [b"/INBOX;UIDVALIDITY=1/;UID=" + uid.encode(),
            url + b"/;SECTION=7",
            b"imap://other@example.test/INBOX/;UID=1"]:
    u, t = c.cmd(b"APPEND Out CATENATE (TEXT ", (b"A: b\r\n\r\n",), b" URL \"" + bad + b"\")")
    assert t.startswith("t%d NO [BADURL " % c.n), (bad, t)
assert c.count(b"Out") == 2
# Missing mailbox before a bad URL: TRYCREATE (RFC 4469 5).
u, t = c.cmd(b"APPEND Gone CATENATE (URL \"/INBOX;UIDVALIDITY=1/;UID=1\")")
assert t.startswith("t%d NO [TRYCREATE]" % c.n), t
# Past imapd.max_message_size: TOOBIG.
u, t = c.cmd(b"APPEND Out CATENATE (TEXT ", (big,), b" TEXT ", (big,), b" TEXT ", (big,), b")")
assert t.startswith("t%d NO [TOOBIG]" % c.n), t
"#,
    );
}
