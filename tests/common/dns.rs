//! The tests' name server, on 127.0.0.1 over UDP and TCP: answers A, AAAA,
//! MX, TXT and PTR questions from a zone the test fills (and may change
//! while it runs); a name it does not hold is NXDOMAIN, a name it holds
//! without the type asked is an empty answer. Point `remote.dns_servers`,
//! `auth.dns_servers` or `scan.dns_servers` at [`Dns::addr`]. It serves a
//! bounded number of queries and ends with the test process.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};

use hickory_resolver::proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, AAAA, MX, PTR, TXT};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};

/// One record of the zone.
#[derive(Debug, Clone)]
pub enum Rr {
    A([u8; 4]),
    Aaaa(std::net::Ipv6Addr),
    Mx(u16, String),
    /// The text; split into 255-octet strings on the wire.
    Txt(String),
    /// A reverse name's host (under in-addr.arpa or ip6.arpa).
    Ptr(String),
}

/// An A record for [`Dns::serving`].
pub fn a(name: &str, ip: [u8; 4]) -> (String, Rr) {
    (name.to_string(), Rr::A(ip))
}

/// An MX record for [`Dns::serving`].
pub fn mx(name: &str, pref: u16, host: &str) -> (String, Rr) {
    (name.to_string(), Rr::Mx(pref, host.to_string()))
}

/// A PTR record for [`Dns::serving`]: `ip`'s reverse name points at `host`.
pub fn ptr(ip: std::net::IpAddr, host: &str) -> (String, Rr) {
    (reverse_name(ip), Rr::Ptr(host.to_string()))
}

/// The name `ip` is looked up under in the reverse tree (RFC 1035 3.5,
/// RFC 3596 2.5).
pub fn reverse_name(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        std::net::IpAddr::V6(v6) => {
            let mut s = String::new();
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s + "ip6.arpa"
        }
    }
}

type Zone = Arc<Mutex<HashMap<String, Vec<Rr>>>>;

/// A running server; it answers until the test process ends.
pub struct Dns {
    pub addr: SocketAddr,
    zone: Zone,
}

impl Dns {
    /// Starts a server with an empty zone on a free port (the same port
    /// for UDP and TCP).
    pub fn start() -> Dns {
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()) {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().unwrap();
        let zone: Zone = Arc::default();
        let z = zone.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            for _ in 0..100_000 {
                let Ok((n, from)) = udp.recv_from(&mut buf) else {
                    return;
                };
                if let Some(r) = answer(&z, &buf[..n], true) {
                    let _ = udp.send_to(&r, from);
                }
            }
        });
        let z = zone.clone();
        std::thread::spawn(move || {
            for s in tcp.incoming().take(10_000) {
                let Ok(mut s) = s else { continue };
                let z = z.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        let mut len = [0u8; 2];
                        if s.read_exact(&mut len).is_err() {
                            return;
                        }
                        let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
                        if s.read_exact(&mut q).is_err() {
                            return;
                        }
                        let Some(r) = answer(&z, &q, false) else {
                            return;
                        };
                        let mut out = (r.len() as u16).to_be_bytes().to_vec();
                        out.extend_from_slice(&r);
                        if s.write_all(&out).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Dns { addr, zone }
    }

    /// Starts a server holding `records`.
    pub fn serving(records: Vec<(String, Rr)>) -> Dns {
        let d = Dns::start();
        for (name, rr) in records {
            d.add(&name, rr);
        }
        d
    }

    /// Adds a record for `name` (a trailing dot is optional).
    pub fn add(&self, name: &str, rr: Rr) {
        let name = format!("{}.", name.trim_end_matches('.').to_ascii_lowercase());
        self.zone.lock().unwrap().entry(name).or_default().push(rr);
    }

    /// Adds a TXT record.
    pub fn txt(&self, name: &str, text: &str) {
        self.add(name, Rr::Txt(text.to_string()));
    }
}

/// The reply to `query`; over UDP one of more than 512 octets is sent
/// empty with TC set, and the client asks again over TCP.
fn answer(zone: &Zone, query: &[u8], udp: bool) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    let question = q.queries.first()?.clone();
    let name = question.name().to_ascii().to_ascii_lowercase();
    let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.metadata.recursion_available = true;
    m.add_query(question.clone());
    let zone = zone.lock().unwrap();
    match zone.get(&name) {
        None => m.metadata.response_code = ResponseCode::NXDomain,
        Some(rrs) => {
            for rr in rrs {
                let rd = match (rr, question.query_type()) {
                    (Rr::A(ip), RecordType::A) => RData::A(A::new(ip[0], ip[1], ip[2], ip[3])),
                    (Rr::Aaaa(ip), RecordType::AAAA) => RData::AAAA(AAAA::from(*ip)),
                    (Rr::Ptr(h), RecordType::PTR) => RData::PTR(PTR(Name::from_ascii(h).ok()?)),
                    (Rr::Mx(p, h), RecordType::MX) => {
                        RData::MX(MX::new(*p, Name::from_ascii(h).ok()?))
                    }
                    (Rr::Txt(t), RecordType::TXT) => RData::TXT(TXT::new(
                        t.as_bytes()
                            .chunks(255)
                            .map(|c| String::from_utf8_lossy(c).into_owned())
                            .collect(),
                    )),
                    _ => continue,
                };
                m.add_answer(Record::from_rdata(question.name().clone(), 60, rd));
            }
        }
    }
    let r = m.to_vec().ok()?;
    if udp && r.len() > 512 {
        let mut t = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
        t.metadata.recursion_desired = true;
        t.metadata.recursion_available = true;
        t.metadata.truncation = true;
        t.add_query(question);
        return t.to_vec().ok();
    }
    Some(r)
}
