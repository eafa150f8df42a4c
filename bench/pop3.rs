//! A POP3 load client for bench/pop3d.sh: measures any POP3 server (ours or
//! Dovecot) the same way. Not a test: it asserts nothing about time.
//!
//!   cargo bench --bench pop3 -- retr   HOST:PORT USER PASS
//!   cargo bench --bench pop3 -- logins HOST:PORT USERFMT PASS CLIENTS SECONDS [USERS]
//!   cargo bench --bench pop3 -- hold   HOST:PORT N SECONDS
//!
//! `retr` logs in, RETRs every message one command at a time, then DELEs
//! every one, then QUITs (so the deletions happen), and prints the times.
//! `logins` runs CLIENTS threads, each logging in and out in a loop
//! (USERFMT's `{}` is replaced by the client's number from 1, wrapping
//! after USERS when given) for SECONDS.
//! `hold` opens N connections, reads each greeting, and keeps them open.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    fn connect(addr: &str) -> std::io::Result<Client> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        let mut c = Client {
            w: s.try_clone()?,
            r: BufReader::with_capacity(256 * 1024, s),
        };
        let g = c.line()?;
        if !g.starts_with("+OK") {
            return Err(std::io::Error::other(format!("greeting: {g}")));
        }
        Ok(c)
    }

    fn line(&mut self) -> std::io::Result<String> {
        let mut l = String::new();
        if self.r.read_line(&mut l)? == 0 {
            return Err(std::io::Error::other("connection closed"));
        }
        Ok(l)
    }

    fn cmd(&mut self, c: &str) -> std::io::Result<String> {
        self.w.write_all(format!("{c}\r\n").as_bytes())?;
        let l = self.line()?;
        if !l.starts_with("+OK") {
            return Err(std::io::Error::other(format!("{c}: {l}")));
        }
        Ok(l)
    }

    /// Reads a multi-line body to its ".CRLF"; returns its size in bytes.
    fn body(&mut self) -> std::io::Result<usize> {
        let mut n = 0;
        let mut line = Vec::with_capacity(128);
        loop {
            line.clear();
            if self.r.read_until(b'\n', &mut line)? == 0 {
                return Err(std::io::Error::other("connection closed in a body"));
            }
            if line == b".\r\n" {
                return Ok(n);
            }
            n += line.len();
        }
    }

    fn login(&mut self, user: &str, pass: &str) -> std::io::Result<()> {
        self.cmd(&format!("USER {user}"))?;
        self.cmd(&format!("PASS {pass}"))?;
        Ok(())
    }
}

fn retr(addr: &str, user: &str, pass: &str) -> std::io::Result<()> {
    let t0 = Instant::now();
    let mut c = Client::connect(addr)?;
    c.login(user, pass)?;
    let t_login = t0.elapsed();
    let stat = c.cmd("STAT")?;
    let n: usize = stat
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let t1 = Instant::now();
    let mut bytes = 0;
    for i in 1..=n {
        c.cmd(&format!("RETR {i}"))?;
        bytes += c.body()?;
    }
    let t_retr = t1.elapsed();
    let t2 = Instant::now();
    for i in 1..=n {
        c.cmd(&format!("DELE {i}"))?;
    }
    c.cmd("QUIT")?;
    let mut rest = Vec::new();
    let _ = c.r.read_to_end(&mut rest);
    let t_dele = t2.elapsed();
    let total = t0.elapsed();
    println!(
        "RESULT retr messages={n} bytes={bytes} login_s={:.3} retr_s={:.3} retr_msg_per_s={:.0} retr_mb_per_s={:.1} dele_quit_s={:.3} total_s={:.3}",
        t_login.as_secs_f64(),
        t_retr.as_secs_f64(),
        n as f64 / t_retr.as_secs_f64(),
        bytes as f64 / t_retr.as_secs_f64() / 1e6,
        t_dele.as_secs_f64(),
        total.as_secs_f64()
    );
    Ok(())
}

fn logins(addr: &str, fmt: &str, pass: &str, clients: usize, secs: u64, users: usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (1..=clients)
        .map(|i| {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            let (addr, user, pass) = (
                addr.to_string(),
                fmt.replace("{}", &((i - 1) % users.max(1) + 1).to_string()),
                pass.to_string(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let r = Client::connect(&addr).and_then(|mut c| {
                        c.login(&user, &pass)?;
                        c.cmd("QUIT")?;
                        Ok(())
                    });
                    match r {
                        Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let el = start.elapsed().as_secs_f64();
    let n = ok.load(Ordering::Relaxed);
    println!(
        "RESULT logins clients={clients} seconds={el:.1} ok={n} failed={} logins_per_s={:.0}",
        failed.load(Ordering::Relaxed),
        n as f64 / el
    );
}

fn hold(addr: &str, n: usize, secs: u64) {
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        match Client::connect(addr) {
            Ok(c) => v.push(c),
            Err(e) => {
                println!("RESULT hold opened={i} error=\"{e}\"");
                return;
            }
        }
    }
    println!("RESULT hold opened={}", v.len());
    let _ = std::io::stdout().flush();
    std::thread::sleep(Duration::from_secs(secs));
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = match a.as_slice() {
        ["retr", addr, user, pass] => retr(addr, user, pass),
        ["logins", addr, fmt, pass, clients, secs, rest @ ..] => {
            let clients = clients.parse().unwrap_or(50);
            let users = rest.first().and_then(|u| u.parse().ok()).unwrap_or(clients);
            logins(addr, fmt, pass, clients, secs.parse().unwrap_or(10), users);
            Ok(())
        }
        ["hold", addr, n, secs] => {
            hold(addr, n.parse().unwrap_or(1000), secs.parse().unwrap_or(10));
            Ok(())
        }
        [] => {
            // `cargo bench` with no arguments: nothing to measure.
            eprintln!("usage: see bench/README.md");
            Ok(())
        }
        _ => Err(std::io::Error::other("usage: see bench/README.md")),
    };
    if let Err(e) = r {
        eprintln!("pop3 bench: {e}");
        std::process::exit(1);
    }
}
