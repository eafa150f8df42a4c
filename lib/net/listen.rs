//! Listening sockets for both address families.
//!
//! `[::]:PORT` means both families. It is one socket with `IPV6_V6ONLY` set
//! to 0, which serves IPv4 clients as `::ffff:a.b.c.d` (every daemon takes
//! such an address for the IPv4 one). The option is set on the socket
//! itself, never left to the system's default: FreeBSD's default
//! (`net.inet6.ip6.v6only=1`) and Linux's `net.ipv6.bindv6only=1` would
//! otherwise make `[::]` IPv6 only. Where the system refuses the option
//! (OpenBSD has no dual-stack sockets), `[::]:PORT` becomes a pair: an
//! IPv6-only socket and `0.0.0.0:PORT`. When `0.0.0.0:PORT` is listed beside
//! `[::]:PORT`, the admin asked for a pair, and gets one.
//!
//! A family the host lacks (no IPv6 in the kernel, no such address on any
//! interface) is logged and skipped, never a failure at start: a host
//! without IPv6 still serves IPv4 from the default `[::]` (it falls back to
//! `0.0.0.0`). Any other error (the port is taken, permission denied) is
//! the caller's to report.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use nix::errno::Errno;
use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrStorage,
};

/// What binding one configured address gave.
#[derive(Debug)]
pub struct Bound {
    /// The sockets (two for a `[::]` pair, none when skipped).
    pub listeners: Vec<TcpListener>,
    /// Lines for the log: what became of the address and why.
    pub notes: Vec<String>,
}

/// Binds every address of `addrs` (one configuration key's list), in order.
/// The listeners are non-blocking. Err names the address that failed for a
/// reason other than a missing family.
pub fn bind_all(addrs: &[SocketAddr]) -> Result<Bound, (SocketAddr, io::Error)> {
    let mut out = Bound {
        listeners: Vec::new(),
        notes: Vec::new(),
    };
    for a in addrs {
        let pair_asked = a.is_ipv6()
            && a.ip().is_unspecified()
            && addrs
                .iter()
                .any(|b| b.is_ipv4() && b.ip().is_unspecified() && b.port() == a.port());
        match bind_one(*a, pair_asked) {
            Ok(b) => {
                out.listeners.extend(b.listeners);
                out.notes.extend(b.notes);
            }
            Err(e) if family_missing(&e) => {
                if a.is_ipv6() && a.ip().is_unspecified() && !pair_asked {
                    // No IPv6 here: `[::]` still means every IPv4 address.
                    let v4 = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), a.port());
                    let l = bind_plain(v4).map_err(|e| (v4, e))?;
                    out.listeners.push(l);
                    out.notes.push(format!(
                        "cannot listen on {a} ({e}): no IPv6 on this host, listening on {v4} only"
                    ));
                } else {
                    out.notes.push(format!(
                        "skipping {a}: {e} (the host has no such address or family)"
                    ));
                }
            }
            Err(e) => return Err((*a, e)),
        }
    }
    Ok(out)
}

/// Whether `e` says the address's family or the address itself is not on
/// this host (rather than the port being taken, or a permission).
pub fn family_missing(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(
            Errno::EAFNOSUPPORT
                | Errno::EADDRNOTAVAIL
                | Errno::EPROTONOSUPPORT
                | Errno::EPFNOSUPPORT
        )
    )
}

/// One address: an IPv6 wildcard dual-stack unless `pair_asked`.
fn bind_one(a: SocketAddr, pair_asked: bool) -> io::Result<Bound> {
    if a.is_ipv4() {
        return Ok(Bound {
            listeners: vec![bind_plain(a)?],
            notes: Vec::new(),
        });
    }
    let wildcard = a.ip().is_unspecified();
    let fd = socket(
        AddressFamily::Inet6,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    let mut notes = Vec::new();
    let mut pair = false;
    if wildcard && !pair_asked {
        if let Err(e) = setsockopt(&fd, sockopt::Ipv6V6Only, &false) {
            // No dual-stack sockets here (OpenBSD): IPv6 only, plus 0.0.0.0.
            setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
            notes.push(format!(
                "{a}: the system refuses dual-stack sockets ({e}): listening on {a} and 0.0.0.0:{} apart",
                a.port()
            ));
            pair = true;
        }
    } else {
        // A specific address, or half of an explicit pair: IPv6 only.
        setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    let sa = SockaddrStorage::from(a);
    use std::os::fd::AsRawFd;
    bind(fd.as_raw_fd(), &sa)?;
    listen(&fd, Backlog::MAXCONN)?;
    let l = TcpListener::from(fd);
    l.set_nonblocking(true)?;
    let mut listeners = vec![l];
    if pair {
        let v4 = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), a.port());
        match bind_plain(v4) {
            Ok(l) => listeners.push(l),
            Err(e) if family_missing(&e) => notes.push(format!("skipping {v4}: {e}")),
            Err(e) => return Err(e),
        }
    }
    Ok(Bound { listeners, notes })
}

/// An IPv4 listener (std sets SO_REUSEADDR), non-blocking.
fn bind_plain(a: SocketAddr) -> io::Result<TcpListener> {
    let l = TcpListener::bind(a)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    fn has_ipv6_loopback() -> bool {
        TcpListener::bind("[::1]:0").is_ok()
    }

    /// Accepts one connection on `l` and says which address it came from.
    fn accept_from(l: &TcpListener, to: SocketAddr) -> SocketAddr {
        let mut c = TcpStream::connect(to).unwrap();
        c.write_all(b"x").unwrap();
        l.set_nonblocking(false).unwrap();
        let (mut s, peer) = l.accept().unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
        peer
    }

    #[test]
    fn the_ipv6_wildcard_serves_both_families() {
        if !has_ipv6_loopback() {
            eprintln!("skipped: this host has no IPv6 loopback");
            return;
        }
        let b = bind_all(&["[::]:0".parse().unwrap()]).unwrap();
        assert_eq!(b.listeners.len(), 1, "{:?}", b.notes);
        let port = b.listeners[0].local_addr().unwrap().port();
        let v4 = accept_from(
            &b.listeners[0],
            format!("127.0.0.1:{port}").parse().unwrap(),
        );
        assert_eq!(v4.ip().to_canonical().to_string(), "127.0.0.1");
        let v6 = accept_from(&b.listeners[0], format!("[::1]:{port}").parse().unwrap());
        assert_eq!(v6.ip().to_string(), "::1");
    }

    #[test]
    fn an_address_the_host_lacks_is_skipped_not_fatal() {
        // 192.0.2.1 and 2001:db8::1 (documentation ranges) are on no interface.
        let addrs: Vec<SocketAddr> = ["127.0.0.1:0", "[2001:db8::1]:0", "192.0.2.1:0"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let b = bind_all(&addrs).unwrap();
        assert_eq!(b.listeners.len(), 1);
        assert_eq!(b.notes.len(), 2, "{:?}", b.notes);
        assert!(b.notes[0].contains("[2001:db8::1]:0"), "{:?}", b.notes);
    }

    #[test]
    fn a_taken_port_is_an_error() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = taken.local_addr().unwrap();
        let (failed, e) = bind_all(&[a]).unwrap_err();
        assert_eq!(failed, a);
        assert!(!family_missing(&e));
    }

    #[test]
    fn both_wildcards_listed_make_a_pair() {
        if !has_ipv6_loopback() {
            eprintln!("skipped: this host has no IPv6 loopback");
            return;
        }
        // Find a port free in both families, then ask for the pair on it.
        let probe = bind_all(&["[::]:0".parse().unwrap()]).unwrap();
        let port = probe.listeners[0].local_addr().unwrap().port();
        drop(probe);
        let addrs: Vec<SocketAddr> = vec![
            format!("[::]:{port}").parse().unwrap(),
            format!("0.0.0.0:{port}").parse().unwrap(),
        ];
        let b = bind_all(&addrs).unwrap();
        assert_eq!(b.listeners.len(), 2, "{:?}", b.notes);
    }
}
