//! kmp-remote against real peers on 127.0.0.1: Postfix's smtp-sink (told to
//! accept, to answer 4xx/5xx, to hang, to hide 8BITMIME), a scripted peer in
//! this file for what smtp-sink cannot do (a 554 greeting, malformed, split
//! and over-long replies, a peer trickling bytes, a disconnect in the middle
//! of DATA, STARTTLS with a self-signed certificate, AUTH), an unreachable
//! port. The test plays kmp-send: it connects to remote.sock and sends job
//! frames with the message file's descriptor attached.

mod common;

use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{wait_until, Instance};
use kmpromail::ipc::frame;
use kmpromail::ipc::job::{Job, JobRecipient, JobReply, Outcome, RecipientResult, VERSION};
use kmpromail::queue::Notify;

const MESSAGE: &[u8] = b"From: a@example.org\nTo: b@example.net\nSubject: test\n\nfirst line\n.leading dot\n..two dots\nlast line\n";

/// An instance with kmp-remote running and short timeouts; `extra` is
/// appended to the configuration (routes, TLS policy...).
fn start(extra: &str) -> Instance {
    let mut inst = Instance::new();
    inst.append_config(&format!(
        "[remote]\nconnect_timeout = \"2s\"\ngreeting_timeout = \"3s\"\ncommand_timeout = \"3s\"\n\
         data_init_timeout = \"3s\"\ndata_block_timeout = \"3s\"\ndata_done_timeout = \"3s\"\n\
         connection_cache_time = \"5s\"\n{extra}"
    ));
    inst.spawn("kmp-remote", &[]);
    inst.wait_socket("remote.sock");
    inst
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
        let child = Command::new("/usr/sbin/smtp-sink")
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
    let inst0 = Instance::new();
    let p = port(&inst0, 27);
    let sink = Sink::start(&inst0, p, &[]);
    let inst = start(&format!(
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
