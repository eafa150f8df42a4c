//! kmp-imapd's METADATA and METADATA-SERVER (RFC 5464) over a raw socket
//! against the real binaries (issue 12): private and shared entries of
//! mailboxes and of the server, DEPTH and MAXSIZE, the configured server
//! entries, the limits, and entries that follow RENAME and go with DELETE.
mod common;
mod imap_raw;

use imap_raw::run;

#[test]
fn entries_are_set_read_and_kept_beside_the_mailbox() {
    let inst = common::imap_instance_with(&[
        ("imapd", "metadata_comment = \"Welcome\""),
        (
            "imapd",
            "metadata_admin = \"mailto:postmaster@example.test\"",
        ),
        ("imapd", "metadata_max_entries = 4"),
        ("imapd", "metadata_max_size = \"1K\""),
    ]);
    run(
        &inst,
        r#"
A = C()
lines, _ = A.cmd('CAPABILITY')
assert ' METADATA ' in lines[0] and ' METADATA-SERVER' in lines[0], lines
A.cmd('SETMETADATA INBOX (/private/comment "My inbox" /shared/comment "Ours")')
lines, _ = A.cmd('GETMETADATA INBOX (/private/comment /shared/comment)')
assert lines == ['* METADATA INBOX (/private/comment "My inbox" /shared/comment "Ours")'], lines
# Names are case-insensitive; an entry never set is NIL.
lines, _ = A.cmd('GETMETADATA INBOX /PRIVATE/Comment')
assert lines == ['* METADATA INBOX (/private/comment "My inbox")'], lines
lines, _ = A.cmd('GETMETADATA INBOX /private/none')
assert lines == ['* METADATA INBOX (/private/none NIL)'], lines

# Server entries: the configured ones, and the user's own (the webmail's
# preferences, Chinese text included, sent as a literal).
lines, _ = A.cmd('GETMETADATA "" (/shared/comment /shared/admin)')
assert lines == ['* METADATA "" (/shared/comment "Welcome" /shared/admin "mailto:postmaster@example.test")'], lines
A.cmd('SETMETADATA "" (/shared/admin "mailto:me@example.test")', ok='NO')
prefs = '{"sort":"date","签名":"王小明"}'.encode()
A.n += 1
A.s.sendall(b't%d SETMETADATA "" (/private/vendor/kmpromail/prefs {%d+}\r\n' % (A.n, len(prefs)) + prefs + b')\r\n')
l = A.read()
assert l.startswith('t%d OK' % A.n), l
B = C()
lines, _ = B.cmd('GETMETADATA "" /private/vendor/kmpromail/prefs')
assert len(lines) == 1 and prefs.decode() in lines[0], lines

# DEPTH and MAXSIZE.
A.cmd('CREATE Work')
A.cmd('SETMETADATA Work (/private/a "1" /private/a/b "22" /private/a/b/c "333")')
lines, _ = A.cmd('GETMETADATA (DEPTH 1) Work /private/a')
assert lines == ['* METADATA Work (/private/a "1" /private/a/b "22")'], lines
lines, _ = A.cmd('GETMETADATA (DEPTH infinity) Work /private/a')
assert lines == ['* METADATA Work (/private/a "1" /private/a/b "22" /private/a/b/c "333")'], lines
lines, tagged = A.cmd('GETMETADATA (MAXSIZE 2 DEPTH infinity) Work /private/a')
assert lines == ['* METADATA Work (/private/a "1" /private/a/b "22")'], lines
assert '[METADATA LONGENTRIES 3]' in tagged, tagged

# Limits: value size and number of entries (all or none).
_, tagged = A.cmd('SETMETADATA Work (/private/big "%s")' % ('x' * 2000), ok='NO')
assert '[METADATA MAXSIZE 1024]' in tagged, tagged
A.cmd('SETMETADATA Work (/private/d "4")')
_, tagged = A.cmd('SETMETADATA Work (/private/e "5" /private/f "6")', ok='NO')
assert '[METADATA TOOMANY]' in tagged, tagged
lines, _ = A.cmd('GETMETADATA Work /private/e')
assert lines == ['* METADATA Work (/private/e NIL)'], lines
# NIL removes.
A.cmd('SETMETADATA Work (/private/d NIL)')
lines, _ = A.cmd('GETMETADATA Work /private/d')
assert lines == ['* METADATA Work (/private/d NIL)'], lines

# RENAME takes the entries along; DELETE drops them.
A.cmd('RENAME Work Play')
lines, _ = A.cmd('GETMETADATA Play /private/a')
assert lines == ['* METADATA Play (/private/a "1")'], lines
A.cmd('DELETE Play')
A.cmd('GETMETADATA Play /private/a', ok='NO')
A.cmd('SETMETADATA Play (/private/a "1")', ok='NO')
A.cmd('CREATE Play')
lines, _ = A.cmd('GETMETADATA Play /private/a')
assert lines == ['* METADATA Play (/private/a NIL)'], lines

# Names that are not entries.
A.cmd('GETMETADATA INBOX /other/x', ok='BAD')
A.cmd('SETMETADATA INBOX (/private/a* "x")', ok='BAD')
A.cmd('SETMETADATA INBOX (/private/a/ "x")', ok='BAD')
"#,
    );
    // Beside the Maildir, in the folder's directory and at the root.
    let root = inst.path().join("mail/example.test/u");
    assert!(root.join("kmpromail-metadata").is_file());
    assert!(root.join("kmpromail-server-metadata").is_file());
}
