//! A small name server for tests, on 127.0.0.1 over UDP and TCP: answers A,
//! MX and TXT questions from a zone the test fills (and may change while it
//! runs); names it does not hold are NXDOMAIN. Point `remote.dns_servers`
//! or `auth.dns_servers` at [`Dns::addr`].

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};

use hickory_resolver::proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, MX, TXT};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};

/// One record of the zone.
#[derive(Debug, Clone)]
pub enum Rr {
    A([u8; 4]),
    Mx(u16, String),
    /// The text; split into 255-octet strings on the wire.
    Txt(String),
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
