//! kmp-local, black-box: the real daemon (with kmp-authd when it is there),
//! this test acting as kmp-send on `local.sock`, and assertions on the
//! results and on the Maildirs.

mod common;

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::Instance;
use kmpromail::ipc::frame;
use kmpromail::ipc::job::{self, Job, JobRecipient, JobReply, Outcome, VERSION};
use kmpromail::queue::Notify;

/// kmp-send's side of one connection.
struct Sender {
    stream: UnixStream,
    dir: PathBuf,
}

impl Sender {
    fn connect(inst: &Instance) -> Sender {
        inst.wait_socket("local.sock");
        let stream = UnixStream::connect(inst.path().join("run/local.sock")).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let dir = inst.path().join("msgs");
        fs::create_dir_all(&dir).unwrap();
        Sender { stream, dir }
    }

    /// Sends one job for `msg` to `rcpts` (delivery ids `QID.i`) and waits for the reply.
    fn job(&mut self, qid: &str, sender: &str, rcpts: &[&str], msg: &[u8]) -> JobReply {
        let path = self.dir.join(qid);
        fs::write(&path, msg).unwrap();
        let file = fs::File::open(&path).unwrap();
        let job = Job {
            v: VERSION,
            qid: qid.into(),
            sender: sender.into(),
            envid: None,
            ret: None,
            smtputf8: false,
            body_8bit: false,
            size: msg.len() as u64,
            arrived: 1_700_000_000,
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
        };
        job::send(&self.stream, &job, file.as_raw_fd()).unwrap();
        let reply: JobReply = frame::read(&mut self.stream).unwrap();
        assert_eq!(reply.results.len(), rcpts.len());
        reply
    }
}

fn start_local(inst: &mut Instance) {
    inst.spawn("kmp-local", &[]);
    inst.wait_socket("local.sock");
}

/// Every message file of a Maildir (new/ and cur/).
fn messages(maildir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = fs::read_dir(maildir.join(sub)) {
            out.extend(rd.map(|e| e.unwrap().path()));
        }
    }
    out.sort();
    out
}

#[test]
fn without_kmp_authd_every_recipient_is_deferred_never_bounced() {
    let mut inst = Instance::new();
    start_local(&mut inst);
    let mut s = Sender::connect(&inst);
    let r = s.job(
        "QDOWN",
        "a@other.test",
        &["u@example.test", "v@example.test"],
        b"Subject: x\n\nbody\n",
    );
    for x in &r.results {
        assert_eq!(x.outcome, Outcome::Deferred, "{r:?}");
        assert_eq!(x.dsn, "4.3.0");
        assert_eq!(x.relay, "local");
    }
    // The connection goes on: a second job on it is answered too.
    let r = s.job("QDOWN2", "", &["u@example.test"], b"x\n");
    assert_eq!(r.results[0].outcome, Outcome::Deferred);
    let log = inst.log("kmp-local");
    assert!(
        log.contains("QDOWN: to=<u@example.test>, relay=local, delay=")
            && log.contains("dsn=4.3.0, status=deferred (cannot look up the recipient"),
        "{log}"
    );
    assert!(messages(&inst.path().join("mail/example.test/u")).is_empty());
}

#[test]
fn a_job_without_its_file_is_deferred_and_garbage_closes_only_that_connection() {
    let mut inst = Instance::new();
    start_local(&mut inst);
    // A job frame with no descriptor attached.
    let mut raw = UnixStream::connect(inst.path().join("run/local.sock")).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let job = Job {
        v: VERSION,
        qid: "QNOFD".into(),
        sender: String::new(),
        envid: None,
        ret: None,
        smtputf8: false,
        body_8bit: false,
        size: 1,
        arrived: 1,
        recipients: vec![JobRecipient {
            index: 7,
            address: "u@example.test".into(),
            notify: Notify::default(),
            orcpt: None,
            delivery_id: "QNOFD.7".into(),
        }],
    };
    frame::write(&mut raw, &job).unwrap();
    let r: JobReply = frame::read(&mut raw).unwrap();
    assert_eq!(r.results[0].index, 7);
    assert_eq!(r.results[0].outcome, Outcome::Deferred);
    // Garbage: that connection closes, the daemon goes on.
    let mut bad = UnixStream::connect(inst.path().join("run/local.sock")).unwrap();
    std::io::Write::write_all(&mut bad, b"\0\0\0\x05hello").unwrap();
    let mut buf = [0u8; 1];
    bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(std::io::Read::read(&mut bad, &mut buf).unwrap(), 0);
    let mut s = Sender::connect(&inst);
    let r = s.job("QAFTER", "", &["u@example.test"], b"x\n");
    assert_eq!(r.results[0].outcome, Outcome::Deferred);
}
