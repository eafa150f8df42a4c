//! ID (RFC 2971) before login: 30 long fields are answered, and a trusted
//! front end (`imapd.trusted_networks`) names the client it serves with
//! `x-originating-ip`, so logs, bans and the per-address limit apply to that
//! client; from anyone else those fields change nothing. Raw sockets
//! against the real kmp-imapd and kmp-authd.
mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{wait_until, Instance};

/// A raw client.
struct Raw {
    s: TcpStream,
    r: BufReader<TcpStream>,
}

impl Raw {
    /// Connects; returns the client and its greeting.
    fn connect(inst: &Instance) -> (Raw, String) {
        let s = TcpStream::connect(inst.addr(143)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut c = Raw {
            r: BufReader::new(s.try_clone().unwrap()),
            s,
        };
        let g = c.line();
        (c, g)
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        let _ = self.r.read_line(&mut l);
        l
    }

    /// Sends `tag text` (bytes: a literal may follow) and returns every line
    /// up to the tagged answer.
    fn cmd_bytes(&mut self, tag: &str, text: &[u8]) -> String {
        let mut b = format!("{tag} ").into_bytes();
        b.extend_from_slice(text);
        b.extend_from_slice(b"\r\n");
        self.s.write_all(&b).unwrap();
        let mut all = String::new();
        loop {
            let l = self.line();
            all.push_str(&l);
            if l.is_empty() {
                return all;
            }
            if l.starts_with(&format!("{tag} ")) {
                return all;
            }
        }
    }

    fn cmd(&mut self, tag: &str, text: &str) -> String {
        self.cmd_bytes(tag, text.as_bytes())
    }
}

fn id(ip: &str, port: u16) -> String {
    format!(
        "ID (\"name\" \"webmail\" \"x-originating-ip\" \"{ip}\" \"x-originating-port\" \"{port}\")"
    )
}

fn start(imapd: &[&str], authd: &[&str]) -> Instance {
    let imapd = imapd.iter().map(|l| ("imapd", *l));
    let authd = authd.iter().map(|l| ("authd", *l));
    common::imap_instance_with(&imapd.chain(authd).collect::<Vec<_>>())
}

/// Waits until the kmp-imapd log has a line containing every part.
fn logged(inst: &Instance, parts: &[&str]) -> bool {
    wait_until(Duration::from_secs(5), || {
        inst.log("kmp-imapd")
            .lines()
            .any(|l| parts.iter().all(|p| l.contains(p)))
    })
    .is_ok()
}

#[test]
fn an_id_with_thirty_long_fields_is_answered() {
    let inst = common::imap_instance();
    let (mut c, g) = Raw::connect(&inst);
    assert!(g.starts_with("* OK"), "{g}");
    // RFC 2971 3.3: up to 30 fields of 30 octets, values of 1024.
    let mut cmd = String::from("ID (");
    for i in 0..30 {
        if i > 0 {
            cmd.push(' ');
        }
        cmd.push_str(&format!(
            "\"{:a>30}\" \"{}\"",
            i,
            &"1234567890".repeat(103)[..1024]
        ));
    }
    cmd.push(')');
    assert!(cmd.len() > 8192 * 3);
    let r = c.cmd("a", &cmd);
    assert!(
        r.contains("* ID (\"name\" \"kmp-imapd\"") && r.contains("a OK"),
        "{r}"
    );
    // The bound stays: a longer line is refused and the session goes on.
    let r = c.cmd("b", &format!("ID (\"x\" \"{}\")", "y".repeat(40 * 1024)));
    assert!(r.contains("BAD Command line too long"), "{r}");
    let r = c.cmd("c", "NOOP");
    assert!(r.contains("c OK"), "{r}");
}

#[test]
fn an_untrusted_peer_cannot_name_another_address() {
    let inst = start(&[], &[]);
    inst.ctl_ok(&["ban", "add", "198.51.100.7"]);
    let (mut c, g) = Raw::connect(&inst);
    assert!(g.starts_with("* OK"), "{g}");
    let r = c.cmd("a", &id("198.51.100.7", 4321));
    assert!(r.contains("a OK"), "{r}");
    let r = c.cmd("l", "LOGIN u@example.test secret");
    assert!(r.contains("l OK"), "{r}");
    assert!(logged(
        &inst,
        &["imap login user=u@example.test address=127.0.0.1"]
    ));
    assert!(!inst.log("kmp-imapd").contains("forwarded"));
}

#[test]
fn a_trusted_front_end_names_its_client_for_logs_and_bans() {
    let inst = start(
        &["trusted_networks = [\"127.0.0.0/8\", \"2001:db8::/32\"]"],
        &["max_failures = 2"],
    );
    let (mut c, _) = Raw::connect(&inst);
    let r = c.cmd("a", &id("198.51.100.7", 4321));
    assert!(r.contains("a OK"), "{r}");
    let r = c.cmd("l", "LOGIN u@example.test secret");
    assert!(r.contains("l OK"), "{r}");
    assert!(logged(
        &inst,
        &["imap forwarded address=198.51.100.7 port=4321 proxy=127.0.0.1"]
    ));
    assert!(logged(
        &inst,
        &["imap login user=u@example.test address=198.51.100.7"]
    ));

    // Failed logins count against the client, not the front end.
    for _ in 0..2 {
        let (mut c, _) = Raw::connect(&inst);
        c.cmd("a", &id("2001:db8::9", 5000));
        let r = c.cmd("l", "LOGIN u@example.test wrong");
        assert!(r.contains("l NO"), "{r}");
    }
    assert!(logged(&inst, &["login failed", "address=2001:db8::9"]));
    let bans = inst.ctl_ok(&["ban", "list"]);
    // An IPv6 client is banned by its /64 (system.ipv6_prefix).
    assert!(bans.contains("2001:db8::/64"), "{bans}");
    assert!(!bans.contains("127.0.0.1"), "{bans}");
    let (mut c, _) = Raw::connect(&inst);
    // The ID is answered, then the connection ends.
    let r = c.cmd("a", &id("[2001:db8::9]", 5001)) + &c.line();
    assert!(
        r.contains("a OK") && r.contains("* BYE Your address is blocked"),
        "{r}"
    );
    assert_eq!(c.line(), "");
    // The front end itself, and its other clients, go on.
    let (mut c, _) = Raw::connect(&inst);
    c.cmd("a", &id("198.51.100.8", 4000));
    let r = c.cmd("l", "LOGIN u@example.test secret");
    assert!(r.contains("l OK"), "{r}");
    let (mut c, _) = Raw::connect(&inst);
    let r = c.cmd("l", "LOGIN u@example.test secret");
    assert!(r.contains("l OK"), "{r}");
}

#[test]
fn the_per_address_limit_applies_to_the_named_client() {
    let inst = start(
        &[
            "trusted_networks = [\"127.0.0.1\"]",
            "max_connections_per_ip = 2",
        ],
        &[],
    );
    // The front end's own connections are not limited per address.
    let mut front: Vec<Raw> = Vec::new();
    for _ in 0..4 {
        let (c, g) = Raw::connect(&inst);
        assert!(g.starts_with("* OK"), "{g}");
        front.push(c);
    }
    // Its clients are: the third from one address gets BYE.
    for (i, c) in front.iter_mut().enumerate().take(3) {
        let r = c.cmd("a", &id("198.51.100.30", 6000 + i as u16));
        if i < 2 {
            let r = r + &c.cmd("n", "NOOP");
            assert!(!r.contains("BYE") && r.contains("n OK"), "{i}: {r}");
        } else {
            let r = r + &c.line();
            assert!(r.contains("* BYE Too many connections"), "{r}");
        }
    }
    let r = front[3].cmd("a", &id("198.51.100.31", 7000));
    assert!(!r.contains("BYE"), "{r}");
}
