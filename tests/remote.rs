//! kmp-remote against real peers on 127.0.0.1: Postfix's smtp-sink (told to
//! accept, to answer 4xx/5xx, to hang, to hide 8BITMIME), a scripted peer in
//! this file for what smtp-sink cannot do (a 554 greeting, malformed, split
//! and over-long replies, a peer trickling bytes, a disconnect in the middle
//! of DATA, STARTTLS with a self-signed certificate, AUTH), an unreachable
//! port. The test plays kmp-send: it connects to remote.sock and sends job
//! frames with the message file's descriptor attached.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{wait_until, Instance};
use kmpromail::ipc::frame;
use kmpromail::ipc::job::{Job, JobRecipient, JobReply, Outcome, RecipientResult, VERSION};
use kmpromail::queue::Notify;

const MESSAGE: &[u8] = b"From: a@example.org\nTo: b@example.net\nSubject: test\n\nfirst line\n.leading dot\n..two dots\nlast line\n";

/// Starts kmp-remote in `inst` with short timeouts; `extra` is appended to
/// the configuration (routes, TLS policy...).
fn launch(inst: &mut Instance, extra: &str) {
    inst.append_config(&format!(
        "[remote]\nconnect_timeout = \"2s\"\ngreeting_timeout = \"3s\"\ncommand_timeout = \"3s\"\n\
         data_init_timeout = \"3s\"\ndata_block_timeout = \"3s\"\ndata_done_timeout = \"3s\"\n\
         connection_cache_time = \"5s\"\n{extra}"
    ));
    inst.spawn("kmp-remote", &[]);
    inst.wait_socket("remote.sock");
    let pid = inst.path().join("run/kmp-remote.pid");
    wait_until(Duration::from_secs(10), || pid.exists()).expect("kmp-remote ready");
}

fn job(qid: &str, sender: &str, rcpts: &[&str]) -> Job {
    Job {
        v: VERSION,
        qid: qid.into(),
        sender: sender.into(),
        envid: None,
        ret: None,
        smtputf8: false,
        body_8bit: false,
        size: 0,
        fresh: false,
        generation: 0,
        arrived: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        recipients: rcpts
            .iter()
            .enumerate()
            .map(|(i, a)| JobRecipient {
                index: i as u32,
                address: a.to_string(),
                notify: Notify::default(),
                orcpt: None,
                delivery_id: format!("{qid}.{i}"),
                folder: None,
            })
            .collect(),
    }
}

/// Sends `job` with `message` as kmp-send does and returns the reply.
fn send_job(inst: &Instance, mut job: Job, message: &[u8]) -> Vec<RecipientResult> {
    let path = inst.path().join(format!("msg-{}", job.qid));
    std::fs::write(&path, message).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    job.size = message.len() as u64;
    let mut sock = UnixStream::connect(inst.path().join("run/remote.sock")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    kmpromail::sys::fdpass::send_with_fd(sock.as_raw_fd(), &frame::encode(&job), file.as_raw_fd())
        .unwrap();
    let reply: JobReply = frame::read(&mut sock).unwrap();
    assert_eq!(reply.v, VERSION);
    assert_eq!(reply.results.len(), job.recipients.len());
    reply.results
}

/// Postfix's smtp-sink on `port` with `opts`, dumping messages into a directory.
struct Sink {
    child: Child,
    dir: PathBuf,
}

impl Sink {
    fn start(inst: &Instance, port: u16, opts: &[&str]) -> Sink {
        let dir = inst.path().join(format!("sink-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut args: Vec<String> = Vec::new();
        if nix::unistd::geteuid().is_root() {
            args.extend(["-u".into(), "root".into()]);
        }
        args.extend(opts.iter().map(|s| s.to_string()));
        args.push("-d".into());
        args.push(format!("{}/%H%M%S.", dir.display()));
        args.push(format!("127.0.0.1:{port}"));
        args.push("50".into());
        let child = common::tool("/usr/sbin/smtp-sink")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("smtp-sink runs (apt-get install postfix)");
        wait_until(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .expect("smtp-sink listens");
        Sink { child, dir }
    }

    /// The messages received so far.
    fn messages(&self) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect();
        out.sort();
        out
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn port(inst: &Instance, off: u16) -> u16 {
    inst.base + off
}

#[test]
fn delivers_to_smtp_sink_with_dot_stuffing_and_logs_like_postfix() {
    let mut inst = Instance::new();
    let p = port(&inst, 26);
    let sink = Sink::start(&inst, p, &[]);
    inst.append_config(&format!(
        "[remote.routes]\n\"example.net\" = [\"127.0.0.1:{p}\"]\n"
    ));
    inst.spawn("kmp-remote", &[]);
    inst.wait_socket("remote.sock");
    let r = send_job(
        &inst,
        job("Q1", "a@example.org", &["b@example.net", "c@example.net"]),
        MESSAGE,
    );
    for x in &r {
        assert_eq!(x.outcome, Outcome::Sent, "{x:?}");
        assert_eq!(x.relay, format!("127.0.0.1[127.0.0.1]:{p}"));
        assert_eq!(x.dsn, "2.0.0");
        assert!(x.text.starts_with("250 2.0.0"), "{}", x.text);
    }
    assert_eq!((r[0].index, r[1].index), (0, 1));
    wait_until(Duration::from_secs(5), || sink.messages().len() == 1).unwrap();
    let m = &sink.messages()[0];
    assert!(
        m.contains("X-Rcpt-Args: <b@example.net>\nX-Rcpt-Args: <c@example.net>\n"),
        "{m}"
    );
    assert!(m.contains("X-Mail-Args: <a@example.org>"), "{m}");
    // smtp-sink undoes the dot-stuffing: the body arrives as it was.
    assert!(
        m.contains("\n\nfirst line\n.leading dot\n..two dots\nlast line\n"),
        "{m}"
    );
    let log = inst.log("kmp-remote");
    let line = log
        .lines()
        .find(|l| l.contains("Q1: to=<b@example.net>"))
        .unwrap();
    assert!(
        line.contains(&format!("relay=127.0.0.1[127.0.0.1]:{p}, delay=")),
        "{line}"
    );
    assert!(
        line.contains(", delays=") && line.contains(", dsn=2.0.0, status=sent (250 2.0.0"),
        "{line}"
    );
}

#[test]
fn an_unreachable_port_defers_and_the_next_host_gets_the_mail() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = probe.local_addr().unwrap().port();
    drop(probe);
    let mut inst = Instance::new();
    let p = port(&inst, 27);
    let sink = Sink::start(&inst, p, &[]);
    launch(&mut inst, &format!(
        "[remote.routes]\n\"dead.example\" = [\"127.0.0.1:{dead}\"]\n\"two.example\" = [\"127.0.0.1:{dead}\", \"127.0.0.1:{p}\"]\n"
    ));
    let t = Instant::now();
    let r = send_job(
        &inst,
        job("Q2", "a@example.org", &["x@dead.example", "y@two.example"]),
        MESSAGE,
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(r[0].outcome, Outcome::Deferred, "{:?}", r[0]);
    assert_eq!(r[0].dsn, "4.4.1");
    assert_eq!(r[0].relay, "none");
    assert!(r[0].text.contains("Connection refused"), "{}", r[0].text);
    assert_eq!(r[1].outcome, Outcome::Sent, "{:?}", r[1]);
    assert_eq!(r[1].relay, format!("127.0.0.1[127.0.0.1]:{p}"));
    wait_until(Duration::from_secs(5), || sink.messages().len() == 1).unwrap();
    assert!(inst
        .log("kmp-remote")
        .contains("Q2: to=<x@dead.example>, relay=none, delay="));
}

// ---------------------------------------------------------------------------
// A scripted SMTP peer for what smtp-sink cannot be told to do.

/// How the scripted peer behaves.
#[derive(Clone)]
struct Script {
    /// The greeting, raw.
    greeting: String,
    /// EHLO keywords after the first line (ignored when `ehlo_raw` is set).
    ext: Vec<&'static str>,
    /// The whole EHLO reply, raw (malformed or odd replies).
    ehlo_raw: Option<Vec<u8>>,
    /// Write replies a few bytes at a time, flushing between pieces.
    split: bool,
    /// RCPT replies: the first whose key the command contains wins.
    rcpt: Vec<(&'static str, String)>,
    /// The reply after the final dot.
    data_end: String,
    /// Close the connection after a few lines of the message.
    disconnect_in_data: bool,
    /// Answer EHLO with a byte every 100 ms, forever.
    trickle: bool,
    /// Offer STARTTLS with this configuration.
    tls: Option<Arc<rustls::ServerConfig>>,
    /// After the 220 to STARTTLS, send garbage instead of a handshake.
    tls_broken: bool,
    /// Wait this long before the reply after the final dot.
    data_delay: Duration,
}

impl Default for Script {
    fn default() -> Script {
        Script {
            greeting: "220 peer.test ESMTP\r\n".into(),
            ext: vec![
                "PIPELINING",
                "SIZE 10000000",
                "8BITMIME",
                "ENHANCEDSTATUSCODES",
                "DSN",
            ],
            ehlo_raw: None,
            split: false,
            rcpt: Vec::new(),
            data_end: "250 2.0.0 Ok: queued as PEER1\r\n".into(),
            disconnect_in_data: false,
            trickle: false,
            tls: None,
            tls_broken: false,
            data_delay: Duration::ZERO,
        }
    }
}

/// What the scripted peer saw.
#[derive(Default, Debug)]
struct Seen {
    connections: usize,
    commands: Vec<String>,
    /// Each message as it came on the wire (CRLF, dot-stuffed, without the final dot).
    messages: Vec<Vec<u8>>,
    tls: bool,
    /// Connections open now, and the most at once.
    active: usize,
    max_active: usize,
}

struct Peer {
    port: u16,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Peer {
    /// Stops accepting and frees the port for the tests that follow.
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

impl Peer {
    /// Listens on 127.0.0.1:`port` and serves every connection with `script`.
    fn start(port: u16, script: Script) -> Peer {
        let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s2 = seen.clone();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        std::thread::spawn(move || {
            for c in l.incoming().take(50) {
                if stop2.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let Ok(c) = c else { continue };
                {
                    let mut s = s2.lock().unwrap();
                    s.connections += 1;
                    s.active += 1;
                    s.max_active = s.max_active.max(s.active);
                }
                let (script, seen) = (script.clone(), s2.clone());
                std::thread::spawn(move || {
                    let _ = serve(c, &script, &seen);
                    seen.lock().unwrap().active -= 1;
                });
            }
        });
        Peer { port, seen, stop }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }

    fn route(&self, domain: &str) -> String {
        format!("\"{domain}\" = [\"127.0.0.1:{}\"]\n", self.port)
    }
}

enum PeerStream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
    Gone,
}

impl Read for PeerStream {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match self {
            PeerStream::Plain(s) => s.read(b),
            PeerStream::Tls(s) => s.read(b),
            PeerStream::Gone => Ok(0),
        }
    }
}

impl Write for PeerStream {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            PeerStream::Plain(s) => s.write(b),
            PeerStream::Tls(s) => s.write(b),
            PeerStream::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            PeerStream::Plain(s) => s.flush(),
            PeerStream::Tls(s) => s.flush(),
            PeerStream::Gone => Ok(()),
        }
    }
}

fn read_line(s: &mut PeerStream) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        if s.read(&mut b)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        line.push(b[0]);
        if b[0] == b'\n' {
            return Ok(String::from_utf8_lossy(&line).into_owned());
        }
    }
}

fn reply(s: &mut PeerStream, script: &Script, text: &[u8]) -> std::io::Result<()> {
    if script.split {
        for piece in text.chunks(3) {
            s.write_all(piece)?;
            s.flush()?;
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    } else {
        s.write_all(text)?;
        s.flush()
    }
}

fn serve(tcp: TcpStream, script: &Script, seen: &Mutex<Seen>) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut s = PeerStream::Plain(tcp);
    reply(&mut s, script, script.greeting.as_bytes())?;
    let mut accepted = 0;
    let mut chunks: Vec<u8> = Vec::new();
    loop {
        let line = read_line(&mut s)?;
        let cmd = line.trim_end().to_string();
        seen.lock().unwrap().commands.push(cmd.clone());
        let verb = cmd.split(' ').next().unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" if script.trickle => loop {
                s.write_all(b"2")?;
                s.flush()?;
                std::thread::sleep(Duration::from_millis(100));
            },
            "EHLO" => {
                let text = match &script.ehlo_raw {
                    Some(raw) => raw.clone(),
                    None => {
                        let mut ext = script.ext.clone();
                        if script.tls.is_some() && matches!(s, PeerStream::Plain(_)) {
                            ext.push("STARTTLS");
                        }
                        let mut t = String::from("250");
                        t.push(if ext.is_empty() { ' ' } else { '-' });
                        t.push_str("peer.test\r\n");
                        for (i, e) in ext.iter().enumerate() {
                            let sep = if i + 1 == ext.len() { ' ' } else { '-' };
                            t.push_str(&format!("250{sep}{e}\r\n"));
                        }
                        t.into_bytes()
                    }
                };
                reply(&mut s, script, &text)?;
            }
            "HELO" => reply(&mut s, script, b"250 peer.test\r\n")?,
            "STARTTLS" => {
                reply(&mut s, script, b"220 2.0.0 Ready to start TLS\r\n")?;
                if script.tls_broken {
                    s.write_all(b"this is not a TLS record\r\n")?;
                    return Ok(());
                }
                let PeerStream::Plain(tcp) = std::mem::replace(&mut s, PeerStream::Gone) else {
                    return Ok(());
                };
                let conn = rustls::ServerConnection::new(script.tls.clone().unwrap()).unwrap();
                s = PeerStream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)));
                seen.lock().unwrap().tls = true;
            }
            "AUTH" if cmd.eq_ignore_ascii_case("AUTH LOGIN") => {
                reply(&mut s, script, b"334 VXNlcm5hbWU6\r\n")?;
                let user = read_line(&mut s)?;
                reply(&mut s, script, b"334 UGFzc3dvcmQ6\r\n")?;
                let pass = read_line(&mut s)?;
                let mut seen = seen.lock().unwrap();
                seen.commands
                    .push(format!("LOGIN {} {}", user.trim_end(), pass.trim_end()));
                drop(seen);
                reply(&mut s, script, b"235 2.7.0 Authentication successful\r\n")?;
            }
            "AUTH" => reply(&mut s, script, b"235 2.7.0 Authentication successful\r\n")?,
            "MAIL" => {
                accepted = 0;
                reply(&mut s, script, b"250 2.1.0 Ok\r\n")?
            }
            "RCPT" => {
                let r = script
                    .rcpt
                    .iter()
                    .find(|(k, _)| cmd.contains(k))
                    .map(|(_, r)| r.clone())
                    .unwrap_or_else(|| "250 2.1.5 Ok\r\n".into());
                if r.starts_with('2') {
                    accepted += 1;
                }
                reply(&mut s, script, r.as_bytes())?;
            }
            "DATA" if accepted == 0 => {
                reply(&mut s, script, b"554 5.5.1 Error: no valid recipients\r\n")?
            }
            "DATA" => {
                reply(&mut s, script, b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
                let mut msg = Vec::new();
                loop {
                    let l = read_line(&mut s)?;
                    if l == ".\r\n" {
                        break;
                    }
                    msg.extend_from_slice(l.as_bytes());
                    if script.disconnect_in_data && msg.len() > 20 {
                        return Ok(());
                    }
                }
                seen.lock().unwrap().messages.push(msg);
                std::thread::sleep(script.data_delay);
                reply(&mut s, script, script.data_end.as_bytes())?;
            }
            // RFC 3030: BDAT <size> [LAST], then exactly <size> octets.
            "BDAT" => {
                let mut words = cmd.split(' ').skip(1);
                let n: usize = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                let mut chunk = vec![0u8; n];
                s.read_exact(&mut chunk)?;
                chunks.extend_from_slice(&chunk);
                if words.next().is_some_and(|w| w.eq_ignore_ascii_case("LAST")) {
                    seen.lock()
                        .unwrap()
                        .messages
                        .push(std::mem::take(&mut chunks));
                    reply(&mut s, script, script.data_end.as_bytes())?;
                } else {
                    reply(
                        &mut s,
                        script,
                        format!("250 2.0.0 {n} octets\r\n").as_bytes(),
                    )?;
                }
            }
            "RSET" | "NOOP" => {
                chunks.clear();
                reply(&mut s, script, b"250 2.0.0 Ok\r\n")?
            }
            "QUIT" => {
                reply(&mut s, script, b"221 2.0.0 Bye\r\n")?;
                return Ok(());
            }
            _ => reply(
                &mut s,
                script,
                b"502 5.5.2 Error: command not recognized\r\n",
            )?,
        }
    }
}

/// An instance whose kmp-remote routes `peer.test` to a scripted peer.
fn with_peer(script: Script, extra_keys: &str) -> (Instance, Peer) {
    let mut inst = Instance::new();
    let peer = Peer::start(port(&inst, 28), script);
    let routes = peer.route("peer.test");
    launch(
        &mut inst,
        &format!("{extra_keys}\n[remote.routes]\n{routes}"),
    );
    (inst, peer)
}

fn assert_outcome(r: &RecipientResult, outcome: Outcome, dsn: &str, text: &str) {
    assert_eq!(r.outcome, outcome, "{r:?}");
    assert_eq!(r.dsn, dsn, "{r:?}");
    assert!(r.text.contains(text), "{:?} lacks {text:?}", r.text);
}

#[test]
fn a_554_greeting_defers_without_a_transaction() {
    let (inst, peer) = with_peer(
        Script {
            greeting: "554 5.7.1 peer.test no mail from you\r\n".into(),
            ..Script::default()
        },
        "",
    );
    let r = send_job(&inst, job("G1", "a@example.org", &["u@peer.test"]), MESSAGE);
    assert_outcome(
        &r[0],
        Outcome::Deferred,
        "4.7.1",
        "refused to talk to me: 554 5.7.1 peer.test no mail from you",
    );
    assert!(peer.seen().commands.iter().all(|c| !c.starts_with("MAIL")));
}

#[test]
fn malformed_replies_defer() {
    let (inst, peer) = with_peer(
        Script {
            ehlo_raw: Some(b"250-peer.test\r\nthis is not smtp\r\n".to_vec()),
            ..Script::default()
        },
        "",
    );
    let r = send_job(&inst, job("M1", "a@example.org", &["u@peer.test"]), MESSAGE);
    assert_outcome(&r[0], Outcome::Deferred, "4.5.0", "malformed reply");
    assert!(peer.seen().messages.is_empty());
}

#[test]
fn split_and_over_long_replies_still_work_and_partial_acceptance_is_per_recipient() {
    let long_ext = format!("X-LONG {}", "x".repeat(3000));
    let long_ext: &'static str = Box::leak(long_ext.into_boxed_str());
    let long_550 = format!(
        "550 5.1.1 <bad@peer.test>: no such user {}\r\n",
        "y".repeat(1000)
    );
    let (inst, peer) = with_peer(
        Script {
            split: true,
            ext: vec!["PIPELINING", long_ext, "8BITMIME", "ENHANCEDSTATUSCODES"],
            rcpt: vec![
                ("bad@", long_550),
                (
                    "later@",
                    "450 4.2.1 <later@peer.test>: mailbox busy\r\n".into(),
                ),
            ],
            ..Script::default()
        },
        "",
    );
    let r = send_job(
        &inst,
        job(
            "P1",
            "a@example.org",
            &["good@peer.test", "bad@peer.test", "later@peer.test"],
        ),
        MESSAGE,
    );
    assert_outcome(
        &r[0],
        Outcome::Sent,
        "2.0.0",
        "250 2.0.0 Ok: queued as PEER1",
    );
    assert_outcome(
        &r[1],
        Outcome::Bounced,
        "5.1.1",
        "said: 550 5.1.1 <bad@peer.test>: no such user",
    );
    assert!(
        r[1].text.ends_with("(in reply to RCPT TO command)"),
        "{}",
        r[1].text
    );
    assert_eq!(r[1].remote_mta.as_deref(), Some("127.0.0.1"));
    assert!(r[1]
        .diagnostic
        .as_deref()
        .unwrap()
        .starts_with("smtp; 550 5.1.1 <bad@peer.test>"));
    assert_outcome(
        &r[2],
        Outcome::Deferred,
        "4.2.1",
        "450 4.2.1 <later@peer.test>: mailbox busy",
    );
    let seen = peer.seen();
    assert_eq!(seen.messages.len(), 1, "delivered once");
    // The message went out with CRLF and dot-stuffing.
    let m = String::from_utf8(seen.messages[0].clone()).unwrap();
    assert!(
        m.contains("\r\nfirst line\r\n..leading dot\r\n...two dots\r\nlast line\r\n"),
        "{m:?}"
    );
}

#[test]
fn a_peer_trickling_bytes_forever_times_out() {
    let (inst, _peer) = with_peer(
        Script {
            trickle: true,
            ..Script::default()
        },
        "",
    );
    let t = Instant::now();
    let r = send_job(&inst, job("T1", "a@example.org", &["u@peer.test"]), MESSAGE);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    assert_outcome(
        &r[0],
        Outcome::Deferred,
        "4.4.2",
        "timed out while performing the EHLO handshake",
    );
}

#[test]
fn a_disconnect_in_the_middle_of_data_defers() {
    let big: Vec<u8> = MESSAGE
        .iter()
        .copied()
        .chain(b"more text\n".repeat(50_000))
        .collect();
    let (inst, peer) = with_peer(
        Script {
            disconnect_in_data: true,
            ..Script::default()
        },
        "",
    );
    let r = send_job(&inst, job("D1", "a@example.org", &["u@peer.test"]), &big);
    assert_eq!(r[0].outcome, Outcome::Deferred, "{:?}", r[0]);
    assert_eq!(r[0].dsn, "4.4.2");
    assert!(
        r[0].text
            .contains("lost connection with 127.0.0.1[127.0.0.1]"),
        "{}",
        r[0].text
    );
    assert!(peer.seen().messages.is_empty());
}

#[test]
fn chunking_sends_bdat_chunks_without_dot_stuffing() {
    let (inst, peer) = with_peer(
        Script {
            ext: vec!["PIPELINING", "8BITMIME", "CHUNKING", "SIZE 100000000"],
            ..Script::default()
        },
        "",
    );
    let r = send_job(&inst, job("C1", "a@example.org", &["u@peer.test"]), MESSAGE);
    assert_eq!(r[0].outcome, Outcome::Sent, "{:?}", r[0]);
    // Larger than one block: several chunks, the last one marked.
    let mut big = b"Subject: big\n\n".to_vec();
    while big.len() < 600 * 1024 {
        big.extend_from_slice(b".dot line of some length to fill the message\n");
    }
    let r = send_job(&inst, job("C2", "a@example.org", &["u@peer.test"]), &big);
    assert_eq!(r[0].outcome, Outcome::Sent, "{:?}", r[0]);
    let seen = peer.seen();
    let crlf = |m: &[u8]| -> Vec<u8> {
        m.iter()
            .flat_map(|&b| {
                if b == b'\n' {
                    vec![b'\r', b'\n']
                } else {
                    vec![b]
                }
            })
            .collect()
    };
    assert_eq!(seen.messages, vec![crlf(MESSAGE), crlf(&big)]);
    let bdat: Vec<&String> = seen
        .commands
        .iter()
        .filter(|c| c.starts_with("BDAT"))
        .collect();
    assert!(bdat.len() >= 4, "{bdat:?}");
    assert_eq!(bdat.iter().filter(|c| c.ends_with(" LAST")).count(), 2);
    assert!(!seen.commands.iter().any(|c| c == "DATA"));
    let mail = seen
        .commands
        .iter()
        .rfind(|c| c.starts_with("MAIL"))
        .unwrap();
    assert!(
        mail.contains(&format!(" SIZE={}", crlf(&big).len())),
        "{mail}"
    );
}

#[test]
fn one_connection_carries_several_jobs() {
    let (inst, peer) = with_peer(Script::default(), "");
    for q in ["R1", "R2", "R3"] {
        let r = send_job(&inst, job(q, "a@example.org", &["u@peer.test"]), MESSAGE);
        assert_eq!(r[0].outcome, Outcome::Sent, "{:?}", r[0]);
    }
    let seen = peer.seen();
    assert_eq!(seen.messages.len(), 3);
    assert_eq!(seen.connections, 1, "{seen:?}");
    assert_eq!(
        seen.commands
            .iter()
            .filter(|c| c.starts_with("EHLO"))
            .count(),
        1
    );
}

#[test]
fn dsn_parameters_go_to_a_dsn_peer_and_notify_success_is_relayed_elsewhere() {
    let (inst, peer) = with_peer(Script::default(), "");
    let mut j = job("N1", "a@example.org", &["u@peer.test"]);
    j.envid = Some("env id+1".into());
    j.ret = Some(kmpromail::queue::Ret::Hdrs);
    j.recipients[0].notify = Notify {
        success: true,
        failure: true,
        delay: false,
    };
    j.recipients[0].orcpt = Some("rfc822;u@peer.test".into());
    let r = send_job(&inst, j.clone(), MESSAGE);
    assert_eq!(r[0].outcome, Outcome::Sent, "{:?}", r[0]);
    {
        let seen = peer.seen();
        let mail = seen
            .commands
            .iter()
            .find(|c| c.starts_with("MAIL"))
            .unwrap();
        assert!(mail.contains(" RET=HDRS ENVID=env+20id+2B1"), "{mail}");
        let rcpt = seen
            .commands
            .iter()
            .find(|c| c.starts_with("RCPT"))
            .unwrap();
        assert_eq!(
            rcpt,
            "RCPT TO:<u@peer.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;u@peer.test"
        );
    }
    let (inst2, peer2) = with_peer(
        Script {
            ext: vec!["PIPELINING", "8BITMIME"],
            ..Script::default()
        },
        "",
    );
    let r = send_job(&inst2, j, MESSAGE);
    assert_eq!(r[0].outcome, Outcome::Relayed, "{:?}", r[0]);
    let seen = peer2.seen();
    let mail = seen
        .commands
        .iter()
        .find(|c| c.starts_with("MAIL"))
        .unwrap();
    assert_eq!(mail, "MAIL FROM:<a@example.org>");
}

#[test]
fn utf8_addresses_need_smtputf8_and_size_is_checked_first() {
    let (inst, peer) = with_peer(
        Script {
            ext: vec!["PIPELINING", "SIZE 100", "8BITMIME"],
            ..Script::default()
        },
        "",
    );
    let r = send_job(
        &inst,
        job("U1", "a@example.org", &["üser@peer.test"]),
        MESSAGE,
    );
    assert_outcome(&r[0], Outcome::Bounced, "5.6.7", "SMTPUTF8 is required");
    let mut j = job("U3", "a@example.org", &["u@peer.test"]);
    j.smtputf8 = true;
    let r = send_job(&inst, j, "Subject: caf\u{e9}\n\nx\n".as_bytes());
    assert_outcome(&r[0], Outcome::Bounced, "5.6.9", "SMTPUTF8 is required");
    let r = send_job(&inst, job("S1", "a@example.org", &["u@peer.test"]), MESSAGE);
    assert_outcome(&r[0], Outcome::Bounced, "5.3.4", "exceeds size limit 100");
    assert!(peer.seen().commands.iter().all(|c| !c.starts_with("MAIL")));

    let (inst, peer) = with_peer(
        Script {
            ext: vec!["PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE 100000"],
            ..Script::default()
        },
        "",
    );
    let r = send_job(
        &inst,
        job("U2", "a@example.org", &["üser@peer.test"]),
        MESSAGE,
    );
    assert_eq!(r[0].outcome, Outcome::Sent, "{:?}", r[0]);
    let seen = peer.seen();
    let mail = seen
        .commands
        .iter()
        .find(|c| c.starts_with("MAIL"))
        .unwrap();
    assert!(mail.ends_with(" SMTPUTF8"), "{mail}");
    // RFC 1870 3: "the number of octets, including CR-LF pairs, but not the
    // SMTP DATA command's terminating dot or doubled quoting dots".
    assert!(
        mail.contains(&format!(
            " SIZE={}",
            MESSAGE.len() + MESSAGE.iter().filter(|&&b| b == b'\n').count()
        )),
        "{mail}"
    );
}

fn server_tls(inst: &Instance) -> Arc<rustls::ServerConfig> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cfg = kmpromail::config::Config::load(&inst.config()).unwrap();
    kmpromail::daemon::tls_config(&cfg).unwrap().unwrap()
}

#[test]
fn starttls_with_a_self_signed_peer_works_under_may_and_fails_under_verify() {
    // may: encrypted, certificate not checked.
    let mut inst = Instance::new();
    let tls = server_tls(&inst);
    let peer = Peer::start(
        port(&inst, 28),
        Script {
            tls: Some(tls.clone()),
            ..Script::default()
        },
    );
    let other = Peer::start(
        port(&inst, 27),
        Script {
            tls: Some(tls.clone()),
            ..Script::default()
        },
    );
    let plain = Peer::start(port(&inst, 26), Script::default());
    // An authority that did not sign the peer's certificate.
    let ca = inst.path().join("other-ca.pem");
    kmpromail::ctl::init::write_self_signed("ca.example", &ca, &inst.path().join("other-key.pem"))
        .unwrap();
    launch(
        &mut inst,
        &format!(
            "tls_ca_file = \"{}\"\n[remote.tls_policy]\n\"verify.test\" = [\"verify\"]\n\"plain.test\" = [\"encrypt\"]\n[remote.routes]\n{}{}{}",
            ca.display(),
            peer.route("peer.test"),
            other.route("verify.test"),
            plain.route("plain.test"),
        ),
    );
    let r = send_job(&inst, job("L1", "a@example.org", &["u@peer.test"]), MESSAGE);
    assert_eq!(r[0].outcome, Outcome::Sent, "{:?}", r[0]);
    assert!(peer.seen().tls);
    assert_eq!(
        peer.seen()
            .commands
            .iter()
            .filter(|c| c.starts_with("EHLO"))
            .count(),
        2
    );
    assert_eq!(peer.seen().messages.len(), 1);
    // verify: the handshake fails on the unknown issuer; nothing is sent.
    let r = send_job(
        &inst,
        job("L2", "a@example.org", &["u@verify.test"]),
        MESSAGE,
    );
    assert_outcome(
        &r[0],
        Outcome::Deferred,
        "4.7.5",
        "TLS handshake with 127.0.0.1[127.0.0.1] failed",
    );
    assert!(other.seen().messages.is_empty());
    // encrypt: a peer without STARTTLS gets nothing.
    let r = send_job(
        &inst,
        job("L3", "a@example.org", &["u@plain.test"]),
        MESSAGE,
    );
    assert_outcome(
        &r[0],
        Outcome::Deferred,
        "4.7.4",
        "TLS is required, but was not offered",
    );
    assert!(plain.seen().messages.is_empty());
}

#[test]
fn verify_passes_with_the_peer_certificate_as_authority() {
    let mut inst = Instance::new();
    let tls = server_tls(&inst);
    let peer = Peer::start(
        port(&inst, 28),
        Script {
            tls: Some(tls),
            ..Script::default()
        },
    );
    let ca = inst.path().join("tls/cert.pem");
    launch(
        &mut inst,
        &format!(
            "tls_level = \"verify\"\ntls_ca_file = \"{}\"\n[remote.routes]\n{}",
            ca.display(),
            peer.route("peer.test")
        ),
    );
    let r = send_job(&inst, job("V1", "a@example.org", &["u@peer.test"]), MESSAGE);
    assert_eq!(r[0].outcome, Outcome::Sent, "{:?}", r[0]);
    assert!(peer.seen().tls);
}

#[test]
fn a_smarthost_gets_auth_plain_with_the_configured_credentials() {
    let mut inst = Instance::new();
    let peer = Peer::start(
        port(&inst, 28),
        Script {
            ext: vec!["PIPELINING", "8BITMIME", "AUTH PLAIN LOGIN"],
            ..Script::default()
        },
    );
    launch(
        &mut inst,
        &format!(
            "auth_unverified = [\"*\"]\n[remote.routes]\n\"*\" = [\"127.0.0.1:{}\"]\n[remote.auth]\n\"*\" = [\"relayuser\", \"s3cret\"]\n",
            peer.port
        ),
    );
    let r = send_job(
        &inst,
        job("A1", "a@example.org", &["someone@anywhere.example"]),
        MESSAGE,
    );
    assert_eq!(r[0].outcome, Outcome::Sent, "{:?}", r[0]);
    let seen = peer.seen();
    let auth = seen
        .commands
        .iter()
        .find(|c| c.starts_with("AUTH"))
        .unwrap();
    // base64 of "\0relayuser\0s3cret"
    assert_eq!(auth, "AUTH PLAIN AHJlbGF5dXNlcgBzM2NyZXQ=");
    assert!(!inst.log("kmp-remote").contains("s3cret"));
}

// ---------------------------------------------------------------------------
// smtp-sink told to refuse, hang or hide 8BITMIME.

#[test]
fn smtp_sink_4xx_defers_and_5xx_bounces_with_the_remote_text() {
    let mut inst = Instance::new();
    let (p4, p5) = (port(&inst, 26), port(&inst, 27));
    let _soft = Sink::start(&inst, p4, &["-r", "RCPT"]);
    let _hard = Sink::start(&inst, p5, &["-f", "RCPT"]);
    launch(
        &mut inst,
        &format!("[remote.routes]\n\"soft.test\" = [\"127.0.0.1:{p4}\"]\n\"hard.test\" = [\"127.0.0.1:{p5}\"]\n"),
    );
    let r = send_job(
        &inst,
        job("F1", "a@example.org", &["u@soft.test", "u@hard.test"]),
        MESSAGE,
    );
    assert_outcome(
        &r[0],
        Outcome::Deferred,
        "4.3.0",
        "said: 450 4.3.0 Error: command failed (in reply to RCPT TO command)",
    );
    assert_outcome(
        &r[1],
        Outcome::Bounced,
        "5.3.0",
        "said: 500 5.3.0 Error: command failed (in reply to RCPT TO command)",
    );
    assert_eq!(
        r[1].diagnostic.as_deref(),
        Some("smtp; 500 5.3.0 Error: command failed")
    );
    let log = inst.log("kmp-remote");
    assert!(
        log.contains("F1: to=<u@hard.test>, relay=127.0.0.1[127.0.0.1]:"),
        "{log}"
    );
    assert!(
        log.contains("dsn=5.3.0, status=bounced (host 127.0.0.1[127.0.0.1] said: 500 5.3.0"),
        "{log}"
    );
    assert!(
        log.contains("dsn=4.3.0, status=deferred (host 127.0.0.1[127.0.0.1] said: 450 4.3.0"),
        "{log}"
    );
}

#[test]
fn smtp_sink_hanging_after_data_times_out() {
    let mut inst = Instance::new();
    let p = port(&inst, 26);
    let _sink = Sink::start(&inst, p, &["-w", "30"]);
    launch(
        &mut inst,
        &format!("[remote.routes]\n\"slow.test\" = [\"127.0.0.1:{p}\"]\n"),
    );
    let t = Instant::now();
    let r = send_job(&inst, job("H1", "a@example.org", &["u@slow.test"]), MESSAGE);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    assert_outcome(
        &r[0],
        Outcome::Deferred,
        "4.4.2",
        "timed out while receiving the",
    );
}

#[test]
fn a_peer_without_8bitmime_gets_quoted_printable_or_a_bounce() {
    let mut inst = Instance::new();
    let p = port(&inst, 26);
    let sink = Sink::start(&inst, p, &["-8"]);
    launch(
        &mut inst,
        &format!("[remote.routes]\n\"seven.test\" = [\"127.0.0.1:{p}\"]\n"),
    );
    let body = "From: a@example.org\nSubject: 8bit\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nCaf\u{e9} cr\u{e8}me = 1\n.dot\n";
    let mut j = job("E1", "a@example.org", &["u@seven.test"]);
    j.body_8bit = true;
    let r = send_job(&inst, j, body.as_bytes());
    assert_eq!(r[0].outcome, Outcome::Sent, "{:?}", r[0]);
    wait_until(Duration::from_secs(5), || sink.messages().len() == 1).unwrap();
    let m = &sink.messages()[0];
    assert!(
        m.contains("X-Mail-Args: <a@example.org>\n"),
        "no BODY=8BITMIME: {m}"
    );
    assert!(
        m.contains(
            "Content-Transfer-Encoding: quoted-printable\n\nCaf=C3=A9 cr=C3=A8me =3D 1\n.dot\n"
        ),
        "{m}"
    );
    assert!(m.is_ascii());
    let r = send_job(
        &inst,
        job("E2", "a@example.org", &["u@seven.test"]),
        "From: a@example.org\nSubject: Caf\u{e9}\n\nx\n".as_bytes(),
    );
    assert_outcome(&r[0], Outcome::Bounced, "5.6.3", "does not offer 8BITMIME");
}

// ---------------------------------------------------------------------------
// MX routing through a small name server on 127.0.0.1.

/// The zone of the MX tests, served by the tests' name server.
fn dns_server() -> common::dns::Dns {
    use common::dns::{a, mx, Dns};
    Dns::serving(vec![
        mx("mx.test", 20, "b.mx.test."),
        mx("mx.test", 10, "a.mx.test."),
        a("a.mx.test", [127, 0, 0, 2]),
        a("b.mx.test", [127, 0, 0, 1]),
        mx("null.test", 0, "."),
        a("amx.test", [127, 0, 0, 1]),
    ])
}

#[test]
fn mx_routing_in_preference_order_with_address_fallback_null_mx_and_nxdomain() {
    let mut inst = Instance::new();
    let peer = Peer::start(port(&inst, 28), Script::default());
    let dns = dns_server();
    let dns_addr = dns.addr;
    launch(
        &mut inst,
        &format!(
            "smtp_port = {}\ndns_servers = [\"{dns_addr}\"]\n",
            peer.port
        ),
    );
    let r = send_job(
        &inst,
        job(
            "X1",
            "a@example.org",
            &["u@mx.test", "v@amx.test", "w@null.test", "x@gone.test"],
        ),
        MESSAGE,
    );
    // a.mx.test (preference 10) is 127.0.0.2, where nothing listens; b.mx.test takes it.
    assert_eq!(r[0].outcome, Outcome::Sent, "{:?}", r[0]);
    assert_eq!(r[0].relay, format!("b.mx.test[127.0.0.1]:{}", peer.port));
    assert_eq!(r[0].remote_mta.as_deref(), Some("b.mx.test"));
    // No MX: the domain's own address.
    assert_eq!(r[1].outcome, Outcome::Sent, "{:?}", r[1]);
    assert_eq!(r[1].relay, format!("amx.test[127.0.0.1]:{}", peer.port));
    assert_outcome(
        &r[2],
        Outcome::Bounced,
        "5.1.10",
        "does not accept mail (nullMX)",
    );
    assert_outcome(
        &r[3],
        Outcome::Bounced,
        "5.1.2",
        "Host or domain name not found",
    );
    assert_eq!(peer.seen().messages.len(), 2);
    let log = inst.log("kmp-remote");
    assert!(log.contains("X1: to=<w@null.test>, relay=none,"), "{log}");
}

#[test]
fn a_broken_tls_handshake_under_may_defers() {
    let mut inst = Instance::new();
    let tls = server_tls(&inst);
    let peer = Peer::start(
        port(&inst, 28),
        Script {
            tls: Some(tls),
            tls_broken: true,
            ..Script::default()
        },
    );
    launch(
        &mut inst,
        &format!("[remote.routes]\n{}", peer.route("peer.test")),
    );
    let r = send_job(&inst, job("B1", "a@example.org", &["u@peer.test"]), MESSAGE);
    assert_outcome(
        &r[0],
        Outcome::Deferred,
        "4.7.5",
        "TLS handshake with 127.0.0.1[127.0.0.1] failed",
    );
    assert!(peer.seen().messages.is_empty());
}

#[test]
fn concurrency_is_limited_per_destination() {
    let mut inst = Instance::new();
    let peer = Peer::start(
        port(&inst, 28),
        Script {
            data_delay: Duration::from_millis(300),
            ..Script::default()
        },
    );
    launch(
        &mut inst,
        &format!(
            "max_per_destination = 2\n[remote.routes]\n{}",
            peer.route("peer.test")
        ),
    );
    let inst = Arc::new(inst);
    let workers: Vec<_> = (0..6)
        .map(|i| {
            let inst = inst.clone();
            std::thread::spawn(move || {
                send_job(
                    &inst,
                    job(&format!("C{i}"), "a@example.org", &["u@peer.test"]),
                    MESSAGE,
                )
            })
        })
        .collect();
    for w in workers {
        let r = w.join().unwrap();
        assert_eq!(r[0].outcome, Outcome::Sent, "{:?}", r[0]);
    }
    let seen = peer.seen();
    assert_eq!(seen.messages.len(), 6);
    assert!(
        seen.max_active <= 2,
        "{} connections at once",
        seen.max_active
    );
    assert_eq!(seen.max_active, 2, "two deliveries ran side by side");
}

#[test]
fn sigterm_ends_cleanly_and_a_second_instance_refuses_to_start() {
    let mut inst = Instance::new();
    launch(&mut inst, "");
    let pid_file = inst.path().join("run/kmp-remote.pid");
    assert!(pid_file.exists());
    // A second kmp-remote finds the live socket and exits 73.
    let out = Command::new(common::bin("kmp-remote"))
        .args(["--foreground", "--config"])
        .arg(inst.config())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(73),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("another kmp-remote is running"));
    let pid = nix::unistd::Pid::from_raw(inst.pid("kmp-remote").unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    wait_until(Duration::from_secs(10), || !pid_file.exists()).expect("pid file removed");
    assert!(!inst.path().join("run/remote.sock").exists());
    assert!(inst.log("kmp-remote").contains("stopping"));
}

// ---------------------------------------------------------------------------
// End to end: kmp-inject -> kmp-send -> kmp-remote -> smtp-sink.

/// Runs kmp-inject as `sendmail` with `args`, the message on standard input.
fn sendmail(inst: &Instance, args: &[&str], input: &[u8]) {
    let link = inst.path().join("sendmail");
    if !link.exists() {
        std::os::unix::fs::symlink(common::bin("kmp-inject"), &link).unwrap();
    }
    let mut child = Command::new(&link)
        .arg("-C")
        .arg(inst.config())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "sendmail {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn end_to_end_through_the_queue_delivered_once_bounced_with_a_dsn_and_deferred() {
    let mut inst = Instance::new();
    let (ok, hard, soft) = (port(&inst, 26), port(&inst, 27), port(&inst, 28));
    let sink = Sink::start(&inst, ok, &[]);
    let _hard = Sink::start(&inst, hard, &["-f", "RCPT"]);
    let _soft = Sink::start(&inst, soft, &["-r", "RCPT"]);
    // kmpctl init sets nothing in [send]: the section is ours to add.
    inst.append_config(
        "[send]\nmin_backoff = \"1s\"\nmax_backoff = \"2s\"\nscan_interval = \"1s\"\n",
    );
    inst.ctl_ok(&["domain", "add", "example.test"]);
    inst.ctl_ok(&["user", "add", "alice@example.test"]);
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    inst.spawn("kmp-local", &[]);
    inst.wait_socket("local.sock");
    launch(
        &mut inst,
        &format!(
            "[remote.routes]\n\"ok.test\" = [\"127.0.0.1:{ok}\"]\n\"hard.test\" = [\"127.0.0.1:{hard}\"]\n\"soft.test\" = [\"127.0.0.1:{soft}\"]\n"
        ),
    );
    let pid = inst.path().join("run/kmp-send.pid");
    inst.spawn("kmp-send", &[]);
    wait_until(Duration::from_secs(20), || pid.exists())
        .unwrap_or_else(|_| panic!("kmp-send never got ready:\n{}", inst.log("kmp-send")));

    sendmail(
        &inst,
        &["-f", "alice@example.test", "bob@ok.test"],
        b"Subject: out\n\nto the world\n.dot line\n",
    );
    sendmail(
        &inst,
        &["-f", "alice@example.test", "nobody@hard.test"],
        b"Subject: hard\n\nbounce me\n",
    );
    sendmail(
        &inst,
        &["-f", "alice@example.test", "later@soft.test"],
        b"Subject: soft\n\nlater\n",
    );

    // smtp-sink makes the file before it writes the message into it: wait
    // for the whole message, not only for the file.
    wait_until(Duration::from_secs(30), || {
        let m = sink.messages();
        m.len() == 1 && m[0].contains("\n.dot line\n")
    })
    .unwrap_or_else(|_| {
        panic!(
            "{:?}\n{}\n{}",
            sink.messages(),
            inst.log("kmp-send"),
            inst.log("kmp-remote")
        )
    });
    let m = &sink.messages()[0];
    assert!(
        m.contains("X-Rcpt-Args: <bob@ok.test>") && m.contains("\nto the world\n.dot line\n"),
        "{m}"
    );
    // The bounce: a DSN to alice with the remote server's words.
    let new = inst.path().join("mail/example.test/alice/new");
    wait_until(Duration::from_secs(30), || {
        std::fs::read_dir(&new)
            .map(|d| d.count() > 0)
            .unwrap_or(false)
    })
    .unwrap_or_else(|_| {
        panic!(
            "no bounce:\n{}\n{}",
            inst.log("kmp-send"),
            inst.log("kmp-remote")
        )
    });
    let f = std::fs::read_dir(&new)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let dsn = std::fs::read_to_string(f).unwrap();
    assert!(
        dsn.contains("Final-Recipient: rfc822; nobody@hard.test"),
        "{dsn}"
    );
    assert!(dsn.contains("Status: 5.3.0"), "{dsn}");
    assert!(dsn.contains("Remote-MTA: dns; 127.0.0.1\n"), "{dsn}");
    assert!(
        dsn.contains("Diagnostic-Code: smtp; 500 5.3.0 Error: command failed"),
        "{dsn}"
    );
    // The 4xx one stays queued and is tried again.
    wait_until(Duration::from_secs(30), || {
        inst.log("kmp-remote")
            .matches("to=<later@soft.test>")
            .count()
            >= 2
    })
    .unwrap_or_else(|_| panic!("{}", inst.log("kmp-remote")));
    assert!(inst.ctl_ok(&["queue", "list"]).contains("later@soft.test"));
    // Still delivered exactly once.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sink.messages().len(), 1);
}

#[test]
fn auth_login_when_plain_is_not_offered_and_bad_addresses_bounce() {
    let mut inst = Instance::new();
    let peer = Peer::start(
        port(&inst, 28),
        Script {
            ext: vec!["PIPELINING", "AUTH LOGIN"],
            ..Script::default()
        },
    );
    launch(
        &mut inst,
        &format!(
            "auth_unverified = [\"peer.test\"]\n[remote.routes]\n{}[remote.auth]\n\"peer.test\" = [\"u1\", \"pw\"]\n",
            peer.route("peer.test")
        ),
    );
    let r = send_job(
        &inst,
        job("A2", "a@example.org", &["x@peer.test", "nodomain"]),
        MESSAGE,
    );
    assert_eq!(r[0].outcome, Outcome::Sent, "{:?}", r[0]);
    assert_outcome(&r[1], Outcome::Bounced, "5.1.3", "no domain");
    let seen = peer.seen();
    // base64 of "u1" and "pw"
    assert!(
        seen.commands.contains(&"LOGIN dTE= cHc=".to_string()),
        "{:?}",
        seen.commands
    );
}

#[test]
fn a_peer_without_esmtp_gets_helo_and_one_command_at_a_time() {
    let mut inst = Instance::new();
    let p = port(&inst, 27);
    let sink = Sink::start(&inst, p, &["-e"]);
    launch(
        &mut inst,
        &format!("[remote.routes]\n\"old.test\" = [\"127.0.0.1:{p}\"]\n"),
    );
    let r = send_job(
        &inst,
        job("O1", "a@example.org", &["u@old.test", "v@old.test"]),
        MESSAGE,
    );
    assert_eq!(r[0].outcome, Outcome::Sent, "{:?}", r[0]);
    assert_eq!(r[1].outcome, Outcome::Sent, "{:?}", r[1]);
    wait_until(Duration::from_secs(5), || sink.messages().len() == 1).unwrap();
    let m = &sink.messages()[0];
    assert!(m.contains("X-Client-Proto: SMTP\n"), "{m}");
    assert!(m.contains("X-Mail-Args: <a@example.org>\n"), "{m}");
}

// ---------------------------------------------------------------------------
// Smarthost credentials go only to a server whose certificate was verified.

/// A peer offering STARTTLS with the instance's self-signed certificate and
/// AUTH PLAIN LOGIN, routed as the smarthost `*`.
fn tls_smarthost(inst: &Instance) -> Peer {
    Peer::start(
        port(inst, 28),
        Script {
            ext: vec!["PIPELINING", "8BITMIME", "AUTH PLAIN LOGIN"],
            tls: Some(server_tls(inst)),
            ..Script::default()
        },
    )
}

fn smarthost_keys(peer: &Peer, extra: &str) -> String {
    format!(
        "{extra}[remote.routes]\n\"*\" = [\"127.0.0.1:{}\"]\n[remote.auth]\n\"*\" = [\"relayuser\", \"s3cret\"]\n",
        peer.port
    )
}

#[test]
fn smarthost_auth_is_refused_over_unverified_tls_and_the_message_stays_queued() {
    let mut inst = Instance::new();
    let peer = tls_smarthost(&inst);
    inst.append_config(
        "[send]\nmin_backoff = \"1s\"\nmax_backoff = \"2s\"\nscan_interval = \"1s\"\n",
    );
    inst.ctl_ok(&["domain", "add", "example.test"]);
    inst.ctl_ok(&["user", "add", "alice@example.test"]);
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    inst.spawn("kmp-local", &[]);
    inst.wait_socket("local.sock");
    launch(
        &mut inst,
        &smarthost_keys(&peer, "tls_level = \"encrypt\"\n"),
    );
    let pid = inst.path().join("run/kmp-send.pid");
    inst.spawn("kmp-send", &[]);
    wait_until(Duration::from_secs(20), || pid.exists())
        .unwrap_or_else(|_| panic!("kmp-send never got ready:\n{}", inst.log("kmp-send")));
    sendmail(
        &inst,
        &["-f", "alice@example.test", "friend@far.example"],
        b"Subject: via the relay\n\nhello\n",
    );
    // Tried, deferred, tried again: never bounced, never sent in the clear.
    wait_until(Duration::from_secs(30), || {
        inst.log("kmp-remote")
            .matches("to=<friend@far.example>")
            .count()
            >= 2
    })
    .unwrap_or_else(|_| panic!("{}\n{}", inst.log("kmp-send"), inst.log("kmp-remote")));
    let log = inst.log("kmp-remote");
    assert!(log.contains("status=deferred"), "{log}");
    assert!(
        log.contains("not sending credentials to 127.0.0.1[127.0.0.1]: its certificate was not verified (TLS level encrypt)"),
        "{log}"
    );
    assert!(
        !log.contains("status=sent") && !log.contains("status=bounced"),
        "{log}"
    );
    assert!(!log.contains("s3cret"), "{log}");
    assert!(inst
        .ctl_ok(&["queue", "list"])
        .contains("friend@far.example"));
    let seen = peer.seen();
    assert!(seen.tls, "{seen:?}");
    assert!(
        !seen
            .commands
            .iter()
            .any(|c| c.starts_with("AUTH") || c.starts_with("LOGIN") || c.starts_with("MAIL")),
        "{seen:?}"
    );
    assert!(seen.messages.is_empty());
    // No bounce came back to the sender either.
    let new = inst.path().join("mail/example.test/alice/new");
    assert_eq!(std::fs::read_dir(&new).map(|d| d.count()).unwrap_or(0), 0);
}

#[test]
fn smarthost_auth_over_may_or_plain_text_is_refused_too() {
    // may with STARTTLS: encrypted but unverified.
    let mut inst = Instance::new();
    let peer = tls_smarthost(&inst);
    launch(&mut inst, &smarthost_keys(&peer, "tls_level = \"may\"\n"));
    let r = send_job(
        &inst,
        job("M1", "a@example.org", &["x@far.example"]),
        MESSAGE,
    );
    assert_outcome(
        &r[0],
        Outcome::Deferred,
        "4.7.0",
        "its certificate was not verified (TLS level may)",
    );
    assert!(r[0].text.contains("remote.auth_unverified"), "{:?}", r[0]);
    drop(peer);
    // No TLS at all, to a loopback address: refused as well without the override.
    let mut inst = Instance::new();
    let peer = Peer::start(
        port(&inst, 28),
        Script {
            ext: vec!["PIPELINING", "AUTH PLAIN"],
            ..Script::default()
        },
    );
    launch(&mut inst, &smarthost_keys(&peer, ""));
    let r = send_job(
        &inst,
        job("M2", "a@example.org", &["x@far.example"]),
        MESSAGE,
    );
    assert_outcome(&r[0], Outcome::Deferred, "4.7.0", "without TLS");
    let seen = peer.seen();
    assert!(
        !seen
            .commands
            .iter()
            .any(|c| c.starts_with("AUTH") || c.starts_with("MAIL")),
        "{seen:?}"
    );
}

#[test]
fn smarthost_auth_over_unverified_tls_when_the_admin_says_so() {
    let mut inst = Instance::new();
    let peer = tls_smarthost(&inst);
    launch(
        &mut inst,
        &smarthost_keys(
            &peer,
            "tls_level = \"encrypt\"\nauth_unverified = [\"*\"]\n",
        ),
    );
    let r = send_job(
        &inst,
        job("O1", "a@example.org", &["x@far.example"]),
        MESSAGE,
    );
    assert_eq!(r[0].outcome, Outcome::Sent, "{:?}", r[0]);
    let seen = peer.seen();
    assert!(seen.tls);
    assert!(
        seen.commands
            .contains(&"AUTH PLAIN AHJlbGF5dXNlcgBzM2NyZXQ=".to_string()),
        "{seen:?}"
    );
    assert_eq!(seen.messages.len(), 1);
}

#[test]
fn smarthost_auth_under_verify_with_a_trusted_authority() {
    let mut inst = Instance::new();
    let peer = tls_smarthost(&inst);
    let ca = inst.path().join("tls/cert.pem");
    launch(
        &mut inst,
        &smarthost_keys(
            &peer,
            &format!(
                "tls_ca_file = \"{}\"\n[remote.tls_policy]\n\"*\" = [\"verify\"]\n",
                ca.display()
            ),
        ),
    );
    let r = send_job(
        &inst,
        job("V2", "a@example.org", &["x@far.example"]),
        MESSAGE,
    );
    assert_eq!(r[0].outcome, Outcome::Sent, "{:?}", r[0]);
    let seen = peer.seen();
    assert!(seen.tls);
    assert!(
        seen.commands
            .contains(&"AUTH PLAIN AHJlbGF5dXNlcgBzM2NyZXQ=".to_string()),
        "{seen:?}"
    );
    assert_eq!(seen.messages.len(), 1);
}
