//! A small name server for tests, on a UDP socket the test binds on
//! 127.0.0.1: it answers from a fixed list of records; a name with no
//! record at all is NXDOMAIN, a known name without the type asked is an
//! empty answer. It serves a bounded number of queries, then stops.

use hickory_resolver::proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, Record};

/// One record: owner name (with or without the final dot), and its data.
pub type Entry = (String, RData);

/// Answers queries on `sock` from `records` on a thread of its own.
pub fn serve(sock: std::net::UdpSocket, records: Vec<Entry>) {
    let records: Vec<(String, RData)> = records
        .into_iter()
        .map(|(n, d)| {
            let n = n.to_ascii_lowercase();
            (if n.ends_with('.') { n } else { format!("{n}.") }, d)
        })
        .collect();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        for _ in 0..2000 {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                return;
            };
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let Some(query) = q.queries.first().cloned() else {
                continue;
            };
            let name = query.name().to_ascii().to_ascii_lowercase();
            let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
            m.metadata.recursion_desired = true;
            m.metadata.recursion_available = true;
            m.add_query(query.clone());
            let known = records.iter().any(|(n, _)| *n == name);
            if !known {
                m.metadata.response_code = ResponseCode::NXDomain;
            }
            for (_, rd) in records
                .iter()
                .filter(|(n, d)| *n == name && d.record_type() == query.query_type())
            {
                m.add_answer(Record::from_rdata(query.name().clone(), 60, rd.clone()));
            }
            let _ = sock.send_to(&m.to_vec().unwrap(), from);
        }
    });
}

/// An A record.
pub fn a(name: &str, ip: [u8; 4]) -> Entry {
    use hickory_resolver::proto::rr::rdata::A;
    (name.into(), RData::A(A::new(ip[0], ip[1], ip[2], ip[3])))
}

/// An MX record.
pub fn mx(name: &str, pref: u16, host: &str) -> Entry {
    use hickory_resolver::proto::rr::rdata::MX;
    (
        name.into(),
        RData::MX(MX::new(pref, Name::from_ascii(host).unwrap())),
    )
}

/// A PTR record.
pub fn ptr(name: &str, host: &str) -> Entry {
    use hickory_resolver::proto::rr::rdata::PTR;
    (
        name.into(),
        RData::PTR(PTR(Name::from_ascii(host).unwrap())),
    )
}
