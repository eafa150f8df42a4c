//! A big message end to end, byte for byte, and never whole in any process's
//! memory: Python's smtplib sends one 24 MB message to kmp-smtpd of instance
//! A for a local user and for a remote one; A's kmp-remote relays it to
//! instance B's kmp-smtpd (which offers CHUNKING, so it goes in BDAT
//! chunks), A's kmp-local writes it into a Maildir, A's kmp-pop3d gives it
//! back to RETR. Every copy must hold the message exactly, and each daemon's
//! peak RSS (VmHWM) may grow by less than [`MAX_GROWTH`] over its idle peak.
//! A second, smaller message without 8BITMIME at the peer takes the 7-bit
//! conversion path.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{python, set_config, wait_until, Instance};

const MB: usize = 1 << 20;
const SIZE: usize = 24 * MB;
/// The issue's bound: 16 MB above the idle size.
const MAX_GROWTH: u64 = 16 * 1024;

/// Peak resident set (VmHWM) of a process, in kB.
fn hwm(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A message of about `size` bytes with LF line ends: UTF-8 and GBK text,
/// lines starting with dots, a long line, and no final line end.
fn big_message(size: usize) -> Vec<u8> {
    let mut m = b"From: alice@example.test\nTo: bob@far.test, alice@example.test\nSubject: big\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n".to_vec();
    let lines: [&[u8]; 5] = [
        "Grüße aus Köln, 你好，邮件 ".as_bytes(),
        b".a line with a leading dot",
        b"..two of them",
        b".",
        b"\xc4\xe3\xba\xc3 GBK bytes in a UTF-8 part are just 8-bit data",
    ];
    let mut i = 0usize;
    while m.len() < size {
        m.extend_from_slice(lines[i % lines.len()]);
        m.extend_from_slice(format!(" {i}").as_bytes());
        m.push(b'\n');
        if i.is_multiple_of(5000) {
            m.extend(std::iter::repeat_n(b'x', 990));
            m.push(b'\n');
        }
        i += 1;
    }
    m.extend_from_slice(b"the end, without a line end");
    m
}

fn maildir_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(d) = std::fs::read_dir(dir.join(sub)) {
            out.extend(d.flatten().map(|e| e.path()));
        }
    }
    out
}

fn start_daemons(inst: &mut Instance, with_pop3: bool) {
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    inst.spawn("kmp-local", &[]);
    inst.wait_socket("local.sock");
    inst.spawn("kmp-remote", &[]);
    inst.wait_socket("remote.sock");
    let pid = inst.path().join("run/kmp-send.pid");
    inst.spawn("kmp-send", &[]);
    wait_until(Duration::from_secs(20), || pid.exists())
        .unwrap_or_else(|_| panic!("kmp-send never got ready:\n{}", inst.log("kmp-send")));
    inst.spawn("kmp-smtpd", &[]);
    inst.wait_port(25);
    if with_pop3 {
        inst.spawn("kmp-pop3d", &[]);
        inst.wait_port(110);
    }
}

fn add_user(inst: &Instance, domain: &str, user: &str) {
    inst.ctl_ok(&["domain", "add", domain]);
    let out = inst.ctl_stdin(
        &[
            "user",
            "add",
            &format!("{user}@{domain}"),
            "--password-stdin",
        ],
        Some(b"secret\n"),
    );
    assert!(out.status.success());
}

/// Sends `msg` over SMTP with smtplib (which turns LF into CRLF and
/// dot-stuffs), BODY=8BITMIME.
fn smtp_send(port: u16, rcpts: &[&str], msg: &Path) {
    let out = python(
        r#"
import smtplib, sys
port, path, rcpts = int(sys.argv[1]), sys.argv[2], sys.argv[3].split(',')
data = open(path, 'rb').read().replace(b'\n', b'\r\n')
with smtplib.SMTP('127.0.0.1', port, timeout=120) as s:
    s.ehlo('client.test')
    refused = s.sendmail('alice@example.test', rcpts, data, mail_options=['BODY=8BITMIME'])
    assert not refused, refused
"#,
        &[&port.to_string(), msg.to_str().unwrap(), &rcpts.join(",")],
    );
    assert!(
        out.status.success(),
        "smtplib: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// RETR 1 over a raw socket; the multi-line answer un-stuffed, CRLF to LF.
/// Then TOP 1 10, which must be short.
fn pop3_retr(port: u16, user: &str) -> Vec<u8> {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::with_capacity(64 * 1024, s);
    let mut line = Vec::new();
    let expect_ok = |r: &mut BufReader<TcpStream>, line: &mut Vec<u8>| {
        line.clear();
        r.read_until(b'\n', line).unwrap();
        assert!(
            line.starts_with(b"+OK"),
            "{}",
            String::from_utf8_lossy(line)
        );
    };
    expect_ok(&mut r, &mut line);
    w.write_all(format!("USER {user}\r\nPASS secret\r\n").as_bytes())
        .unwrap();
    expect_ok(&mut r, &mut line);
    expect_ok(&mut r, &mut line);
    w.write_all(b"RETR 1\r\n").unwrap();
    expect_ok(&mut r, &mut line);
    let mut out = Vec::new();
    loop {
        line.clear();
        r.read_until(b'\n', &mut line).unwrap();
        assert!(line.ends_with(b"\r\n"), "POP3 line without CRLF");
        if line == b".\r\n" {
            break;
        }
        let l = line.strip_prefix(b".").unwrap_or(&line);
        out.extend_from_slice(&l[..l.len() - 2]);
        out.push(b'\n');
    }
    // TOP reads the header and ten lines, however big the message.
    w.write_all(b"TOP 1 10\r\n").unwrap();
    expect_ok(&mut r, &mut line);
    let mut top = 0;
    loop {
        line.clear();
        r.read_until(b'\n', &mut line).unwrap();
        if line == b".\r\n" {
            break;
        }
        top += line.len();
    }
    assert!(top > 0 && top < 4096, "TOP 1 10 gave {top} bytes");
    let _ = w.write_all(b"QUIT\r\n");
    let _ = r.read(&mut [0u8; 64]);
    out
}

#[test]
fn a_big_message_goes_through_smtp_the_queue_remote_local_and_pop3_byte_exact_in_bounded_memory() {
    let mut b = Instance::new();
    add_user(&b, "far.test", "bob");
    set_config(&b, "smtpd", "max_message_size = \"64M\"");
    start_daemons(&mut b, false);

    let mut a = Instance::new();
    add_user(&a, "example.test", "alice");
    set_config(&a, "smtpd", "max_message_size = \"64M\"");
    set_config(&a, "smtpd", "relay_networks = [\"127.0.0.0/8\"]");
    a.append_config(&format!(
        "[remote.routes]\n\"far.test\" = [\"127.0.0.1:{}\"]\n",
        b.base + 25
    ));
    start_daemons(&mut a, true);

    let watched = [
        (&a, "kmp-smtpd"),
        (&a, "kmp-send"),
        (&a, "kmp-local"),
        (&a, "kmp-remote"),
        (&a, "kmp-pop3d"),
        (&b, "kmp-smtpd"),
        (&b, "kmp-local"),
    ];
    let idle: Vec<u64> = watched
        .iter()
        .map(|(i, p)| hwm(i.pid(p).unwrap()))
        .collect();

    let msg = big_message(SIZE);
    let path = a.path().join("big.eml");
    std::fs::write(&path, &msg).unwrap();
    smtp_send(a.base + 25, &["bob@far.test", "alice@example.test"], &path);
    // What every store must hold at its end: the message with a final LF.
    let mut stored = msg.clone();
    stored.push(b'\n');

    let bob = b.path().join("mail/far.test/bob");
    wait_until(Duration::from_secs(120), || maildir_files(&bob).len() == 1).unwrap_or_else(|_| {
        panic!(
            "not relayed:\n{}\n{}\n{}",
            a.log("kmp-send"),
            a.log("kmp-remote"),
            b.log("kmp-smtpd")
        )
    });
    let relayed = std::fs::read(&maildir_files(&bob)[0]).unwrap();
    assert!(relayed.ends_with(&stored), "the relayed copy differs");

    let alice = a.path().join("mail/example.test/alice");
    wait_until(Duration::from_secs(120), || {
        maildir_files(&alice).len() == 1
    })
    .unwrap_or_else(|_| panic!("not delivered:\n{}", a.log("kmp-local")));
    let local = std::fs::read(&maildir_files(&alice)[0]).unwrap();
    assert!(local.ends_with(&stored), "the local copy differs");

    let retr = pop3_retr(a.base + 110, "alice@example.test");
    assert_eq!(retr.len(), local.len());
    assert!(retr == local, "RETR differs from the Maildir file");

    let mut report = String::new();
    let mut over = Vec::new();
    for ((inst, prog), before) in watched.iter().zip(&idle) {
        let after = hwm(inst.pid(prog).unwrap());
        let grew = after.saturating_sub(*before);
        report.push_str(&format!(
            "{prog}: {before} kB idle, {after} kB peak (+{grew})\n"
        ));
        if grew > MAX_GROWTH {
            over.push(*prog);
        }
    }
    eprintln!("{report}");
    assert!(over.is_empty(), "over {MAX_GROWTH} kB: {over:?}\n{report}");
}

/// A peer without 8BITMIME: the 8-bit text part arrives quoted-printable,
/// 7-bit clean, and decodes to the original text.
#[test]
fn a_big_eight_bit_message_is_converted_on_the_way_to_a_peer_without_8bitmime() {
    let mut a = Instance::new();
    add_user(&a, "example.test", "alice");
    set_config(&a, "smtpd", "max_message_size = \"64M\"");
    set_config(&a, "smtpd", "relay_networks = [\"127.0.0.0/8\"]");
    let port = a.base + 26;
    let sink = python_sink(&a, port);
    a.append_config(&format!(
        "[remote.routes]\n\"far.test\" = [\"127.0.0.1:{port}\"]\n"
    ));
    start_daemons(&mut a, false);
    let msg = big_message(4 * MB);
    let path = a.path().join("big.eml");
    std::fs::write(&path, &msg).unwrap();
    smtp_send(a.base + 25, &["bob@far.test"], &path);
    let got = sink.join().unwrap();
    assert!(got.iter().all(|&b| b < 0x80), "8-bit data reached the peer");
    let text = String::from_utf8(got).unwrap();
    assert!(text.contains("Content-Transfer-Encoding: quoted-printable\r\n"));
    let body = text.split_once("\r\n\r\n").unwrap().1;
    let decoded = decode_qp(body.as_bytes());
    let mut want = msg[msg.windows(2).position(|w| w == b"\n\n").unwrap() + 2..].to_vec();
    want.push(b'\n');
    assert!(decoded == want, "the decoded body differs");
}

/// Quoted-printable with CRLF line ends back to the bytes, lines joined by LF.
fn decode_qp(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'=' if b[i + 1..].starts_with(b"\r\n") => i += 3,
            b'=' => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(h, 16).unwrap());
                i += 3;
            }
            b'\r' if b[i + 1..].starts_with(b"\n") => {
                out.push(b'\n');
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// A one-message SMTP peer without 8BITMIME or CHUNKING; returns what came
/// after DATA, un-stuffed, with CRLF line ends.
fn python_sink(_inst: &Instance, port: u16) -> std::thread::JoinHandle<Vec<u8>> {
    let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        w.write_all(b"220 sink ESMTP\r\n").unwrap();
        let mut line = Vec::new();
        let mut body = Vec::new();
        loop {
            line.clear();
            if r.read_until(b'\n', &mut line).unwrap() == 0 {
                return body;
            }
            let cmd = String::from_utf8_lossy(&line).to_ascii_uppercase();
            if cmd.starts_with("EHLO") {
                w.write_all(b"250-sink\r\n250-PIPELINING\r\n250 SIZE 100000000\r\n")
                    .unwrap();
            } else if cmd.starts_with("DATA") {
                w.write_all(b"354 go on\r\n").unwrap();
                loop {
                    line.clear();
                    r.read_until(b'\n', &mut line).unwrap();
                    if line == b".\r\n" {
                        break;
                    }
                    body.extend_from_slice(line.strip_prefix(b".").unwrap_or(&line));
                }
                w.write_all(b"250 2.0.0 taken\r\n").unwrap();
                return body;
            } else if cmd.starts_with("QUIT") {
                w.write_all(b"221 bye\r\n").unwrap();
                return body;
            } else {
                w.write_all(b"250 2.0.0 ok\r\n").unwrap();
            }
        }
    })
}

/// Peak RSS in kB of `kmp-inject -i alice@example.test` reading `msg`, as
/// GNU time reports it; None without /usr/bin/time.
fn inject_rss(inst: &Instance, msg: &Path) -> Option<u64> {
    inject_rss_with(inst, msg, &["-i", "alice@example.test"])
}

/// [`inject_rss`] with other arguments.
fn inject_rss_with(inst: &Instance, msg: &Path, args: &[&str]) -> Option<u64> {
    if !Path::new("/usr/bin/time").exists() {
        return None;
    }
    let out = inst.path().join("inject.rss");
    let st = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&out)
        .arg(common::bin("kmp-inject"))
        .arg("-C")
        .arg(inst.config())
        .args(args)
        .stdin(std::fs::File::open(msg).unwrap())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::read_to_string(out)
        .ok()?
        .trim()
        .lines()
        .last()?
        .parse()
        .ok()
}

/// kmp-inject writes into the queue as it reads: a 24 MB message costs it
/// no more memory than a small one, and arrives byte for byte.
#[test]
fn sendmail_streams_a_big_message_into_the_queue() {
    let mut a = Instance::new();
    add_user(&a, "example.test", "alice");
    set_config(&a, "smtpd", "max_message_size = \"64M\"");
    start_daemons(&mut a, false);
    let small = a.path().join("small.eml");
    std::fs::write(&small, b"Subject: small\n\nx\n").unwrap();
    let big = a.path().join("big.eml");
    let msg = big_message(SIZE);
    let crlf: Vec<u8> = msg
        .iter()
        .flat_map(|&b| {
            if b == b'\n' {
                vec![b'\r', b'\n']
            } else {
                vec![b]
            }
        })
        .collect();
    std::fs::write(&big, &crlf).unwrap();
    let (Some(idle), Some(peak)) = (inject_rss(&a, &small), inject_rss(&a, &big)) else {
        eprintln!("no /usr/bin/time: memory not measured");
        return;
    };
    assert!(
        peak.saturating_sub(idle) < MAX_GROWTH,
        "kmp-inject: {idle} kB for a small message, {peak} kB for {SIZE} bytes"
    );
    // sendmail -bs: the same message in an SMTP session on stdin.
    let mut session = b"EHLO client.test\r\nMAIL FROM:<alice@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n".to_vec();
    for line in crlf.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            session.push(b'.');
        }
        session.extend_from_slice(line);
    }
    session.extend_from_slice(b"\r\n.\r\nQUIT\r\n");
    let bs = a.path().join("bs.txt");
    std::fs::write(&bs, &session).unwrap();
    let bs_peak = inject_rss_with(&a, &bs, &["-bs"]).unwrap();
    assert!(
        bs_peak.saturating_sub(idle) < MAX_GROWTH,
        "kmp-inject -bs: {idle} kB for a small message, {bs_peak} kB for {SIZE} bytes"
    );
    let alice = a.path().join("mail/example.test/alice");
    wait_until(Duration::from_secs(120), || {
        maildir_files(&alice).len() == 3
    })
    .unwrap_or_else(|_| panic!("not delivered:\n{}", a.log("kmp-local")));
    // kmp-inject adds Date and Message-ID at the end of the header section:
    // the body is what must arrive unchanged.
    let mut body = msg[msg.windows(2).position(|w| w == b"\n\n").unwrap()..].to_vec();
    body.push(b'\n');
    let whole = maildir_files(&alice)
        .iter()
        .filter(|f| std::fs::read(f).unwrap().ends_with(&body))
        .count();
    if whole != 2 {
        for f in maildir_files(&alice) {
            let got = std::fs::read(&f).unwrap();
            let start = got.windows(2).position(|w| w == b"\n\n").unwrap();
            let g = &got[start..];
            let at = g.iter().zip(&body).position(|(x, y)| x != y);
            eprintln!(
                "{}: {} bytes, body {} vs {}, first difference at {at:?}: {:?}",
                f.display(),
                got.len(),
                g.len(),
                body.len(),
                at.map(|i| String::from_utf8_lossy(
                    &g[i.saturating_sub(40)..(i + 40).min(g.len())]
                ))
            );
        }
    }
    assert_eq!(whole, 2, "both big messages arrive whole");
}
