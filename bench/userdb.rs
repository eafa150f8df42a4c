//! The user database and kmp-authd under load. Not a test: it asserts
//! nothing about time, it prints what it measured.
//!
//!   cargo bench --bench userdb                 # 10,000 and 1,000,000 users
//!   cargo bench --bench userdb -- 10000 200000 # other sizes
//!
//! For each size: `kmpctl init` in a temporary directory; a dump file of N
//! users with one pre-hashed `$6$` password, spread over 100 domains; the
//! wall time of `kmpctl db load FILE` (the whole process: start, parse,
//! validate, write, commit with fsync) as users/s; `data.mdb` bytes per user;
//! then kmp-authd started on it and Lookup requests for random existing
//! users over its socket, from 1 and from 8 concurrent clients (each a
//! blocking `ipc::authd::Client` on its own connection, one request in
//! flight), for a few seconds each: requests/s and p50/p99 latency.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kmpromail::ipc::authd::{Client, Entry, Reply, Request};

const HASH: &str = "$6$kmpromaildummy$aQIUpypjqp.yXl/fYiO9SqGvuGIWkZxUJUL0zdWlQrrBKjtqP6OFes7xroNS/4QYXE9J7cWfC30WDZ5423kYc/";
const DOMAINS: u64 = 100;
const SECONDS: u64 = 4;

fn bin(name: &str) -> PathBuf {
    let kmpctl = PathBuf::from(env!("CARGO_BIN_EXE_kmpctl"));
    kmpctl.with_file_name(name)
}

fn address(i: u64) -> String {
    format!("user{i}@d{}.example", i % DOMAINS)
}

/// A small xorshift generator: the same sequence every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn write_dump(path: &Path, n: u64) {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    writeln!(f, "{{\"kmpromail\":\"userdb\",\"version\":1}}").unwrap();
    for d in 0..DOMAINS {
        writeln!(f, "{{\"type\":\"domain\",\"name\":\"d{d}.example\",\"created\":1764288000,\"quota_bytes\":0,\"quota_messages\":0}}").unwrap();
    }
    for i in 0..n {
        writeln!(
            f,
            "{{\"type\":\"user\",\"address\":\"{}\",\"password\":\"{HASH}\",\"quota_bytes\":104857600,\"quota_messages\":0,\"state\":\"active\",\"mail_path\":\"\",\"forwards\":[],\"keep_copy\":false,\"pop3_subfolders\":false,\"login_delay\":0,\"created\":1764288000}}",
            address(i)
        )
        .unwrap();
    }
    f.flush().unwrap();
}

struct Run {
    users: u64,
    load_rate: f64,
    load_secs: f64,
    load_cpu: f64,
    bytes_per_user: f64,
    /// (clients, lookups/s, p50, p99, lookups per kmp-authd CPU second)
    lookups: Vec<(usize, f64, Duration, Duration, f64)>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// CPU seconds (user + system) process `pid` has used, from /proc.
fn process_cpu(pid: u32) -> f64 {
    let tck = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the
    // 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (get(11) + get(12)) / tck
}

fn lookups(sock: &Path, clients: usize, users: u64) -> (f64, Duration, Duration, u64) {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(SECONDS);
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let sock = sock.to_path_buf();
            std::thread::spawn(move || {
                let mut client = Client::connect(&sock).expect("connect to kmp-authd");
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (c as u64 + 1));
                let mut lat = Vec::with_capacity(400_000);
                while Instant::now() < deadline {
                    let a = address(rng.next() % users);
                    let t = Instant::now();
                    let r = client.call(Request::Lookup { address: a }).expect("lookup");
                    lat.push(t.elapsed());
                    assert!(
                        matches!(
                            r,
                            Reply::Found {
                                entry: Entry::User { .. },
                                ..
                            }
                        ),
                        "{r:?}"
                    );
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let secs = start.elapsed().as_secs_f64();
    all.sort();
    (
        all.len() as f64 / secs,
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.len() as u64,
    )
}

/// CPU seconds (user + system) of the children waited for so far.
fn children_cpu() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    match getrusage(UsageWho::RUSAGE_CHILDREN) {
        Ok(u) => {
            let tv = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            tv(u.user_time()) + tv(u.system_time())
        }
        Err(_) => 0.0,
    }
}

fn run(n: u64) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let inst = dir.path().join("i");
    let st = Command::new(bin("kmpctl"))
        .arg("init")
        .arg(&inst)
        .args(["--port-base", "41000"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let conf = inst.join("kmpromail.toml");
    let dump = dir.path().join("users.jsonl");
    write_dump(&dump, n);

    let cpu0 = children_cpu();
    let t = Instant::now();
    let out = Command::new(bin("kmpctl"))
        .arg("--config")
        .arg(&conf)
        .args(["db", "load"])
        .arg(&dump)
        .output()
        .unwrap();
    let load_secs = t.elapsed().as_secs_f64();
    let load_cpu = children_cpu() - cpu0;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let size = std::fs::metadata(inst.join("db/data.mdb")).unwrap().len();

    let mut authd: Child = Command::new(bin("kmp-authd"))
        .arg("--config")
        .arg(&conf)
        .arg("--foreground")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = inst.join("run/kmp-authd.pid");
    let t = Instant::now();
    while !pid.exists() && t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let sock = inst.join("run/authd.sock");
    let mut res = Vec::new();
    for clients in [1usize, 8] {
        let cpu0 = process_cpu(authd.id());
        let (rate, p50, p99, count) = lookups(&sock, clients, n);
        let cpu = process_cpu(authd.id()) - cpu0;
        res.push((clients, rate, p50, p99, count as f64 / cpu.max(1e-6)));
    }
    let _ = authd.kill();
    let _ = authd.wait();
    Run {
        users: n,
        load_rate: n as f64 / load_secs,
        load_secs,
        load_cpu,
        bytes_per_user: size as f64 / n as f64,
        lookups: res,
    }
}

fn main() {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 1_000_000]
    } else {
        sizes
    };
    println!(
        "machine: {} CPUs, load average {:.1} at the start",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        kmpromail::sys::load_average().unwrap_or(0.0)
    );
    println!("users      load users/s  load s  load cpu s  users/cpu-s  bytes/user  clients  lookups/s  p50 us  p99 us  lookups/authd-cpu-s");
    let mut runs = Vec::new();
    for n in sizes {
        let r = run(n);
        for (c, rate, p50, p99, per_cpu) in &r.lookups {
            println!(
                "{:<10} {:>12.0}  {:>6.2}  {:>10.2}  {:>11.0}  {:>10.0}  {:>7}  {:>9.0}  {:>6}  {:>6}  {:>19.0}",
                r.users,
                r.load_rate,
                r.load_secs,
                r.load_cpu,
                r.users as f64 / r.load_cpu.max(1e-6),
                r.bytes_per_user,
                c,
                rate,
                p50.as_micros(),
                p99.as_micros(),
                per_cpu
            );
        }
        runs.push(r);
    }
    if runs.len() >= 2 {
        let (a, b) = (&runs[0], &runs[runs.len() - 1]);
        for i in 0..a.lookups.len() {
            println!(
                "lookups/s at {} users vs {} users, {} client(s): {:.0}%",
                b.users,
                a.users,
                a.lookups[i].0,
                100.0 * b.lookups[i].1 / a.lookups[i].1
            );
        }
        println!(
            "load users/s at {} vs {}: {:.0}%",
            b.users,
            a.users,
            100.0 * b.load_rate / a.load_rate
        );
    }
}
