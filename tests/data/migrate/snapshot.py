# What an IMAP and POP3 client sees of one account, as JSON: every folder's
# UIDVALIDITY, UIDNEXT and messages (UID, flags without \Recent), the
# subscriptions, and the POP3 UIDLs. Read-only: EXAMINE, and a POP3 session
# that leaves the mail on the server.
# usage: snapshot.py HOST IMAP-PORT POP3-PORT USER PASSWORD
import base64, imaplib, json, poplib, re, sys

host, iport, pport, user, pw = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]

def dec(s):
    out, i = '', 0
    while i < len(s):
        c = s[i]
        if c != '&':
            out += c
            i += 1
            continue
        j = s.index('-', i)
        if j == i + 1:
            out += '&'
        else:
            b = s[i + 1:j].replace(',', '/')
            b += '=' * (-len(b) % 4)
            out += base64.b64decode(b).decode('utf-16-be')
        i = j + 1
    return out

def enc(s):
    out, buf = '', ''
    def flush():
        nonlocal out, buf
        if buf:
            out += '&' + base64.b64encode(buf.encode('utf-16-be')).decode().rstrip('=').replace('/', ',') + '-'
            buf = ''
    for ch in s:
        if 0x20 <= ord(ch) < 0x7f:
            flush()
            out += '&-' if ch == '&' else ch
        else:
            buf += ch
    flush()
    return out

def q(name):
    return '"' + enc(name) + '"'

LINE = re.compile(r'^\((?P<flags>[^)]*)\) (?:"[^"]*"|NIL) (?P<name>.*)$')

def names(data):
    got = []
    for raw in data:
        if raw is None:
            continue
        if isinstance(raw, tuple):
            raw = raw[0] + raw[1]
        m = LINE.match(raw.decode())
        if not m:
            raise SystemExit('cannot parse %r' % raw)
        name = m.group('name')
        if name.startswith('"'):
            name = name[1:-1]
        got.append((m.group('flags'), dec(name)))
    return got

out = {}
p = poplib.POP3(host, pport, timeout=20)
p.user(user)
p.pass_(pw)
out['uidl'] = [l.split()[1].decode() for l in p.uidl()[1]]
p.quit()

m = imaplib.IMAP4(host, iport, timeout=20)
m.login(user, pw)
typ, data = m.list('""', '*')
folders = sorted(n for f, n in names(data) if '\\Noselect' not in f and '\\NonExistent' not in f)
typ, data = m.lsub('""', '*')
out['subscribed'] = sorted(n for f, n in names(data))
out['folders'] = {}
for f in folders:
    typ, st = m.status(q(f), '(UIDVALIDITY UIDNEXT MESSAGES)')
    assert typ == 'OK', (f, st)
    s = st[0].decode()
    num = lambda k: int(re.search(k + r' (\d+)', s).group(1))
    typ, d = m.select(q(f), readonly=True)
    assert typ == 'OK', (f, d)
    msgs = []
    if num('MESSAGES') > 0:
        typ, d = m.uid('FETCH', '1:*', '(FLAGS)')
        for raw in d:
            r = raw.decode() if isinstance(raw, bytes) else raw[0].decode()
            uid = int(re.search(r'UID (\d+)', r).group(1))
            fl = re.search(r'FLAGS \(([^)]*)\)', r).group(1).split()
            msgs.append([uid, sorted(x for x in fl if x != '\\Recent')])
    out['folders'][f] = {
        'uidvalidity': num('UIDVALIDITY'),
        'uidnext': num('UIDNEXT'),
        'messages': sorted(msgs),
    }
m.logout()
print(json.dumps(out, ensure_ascii=False, sort_keys=True))
