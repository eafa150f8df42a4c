//! A message from disk onto the wire: RFC 1939 section 3's multi-line
//! response, by the encoder shared with SMTP DATA (`proto::dotstuff`), and
//! the size LIST and STAT report.

pub use crate::proto::dotstuff::{encode, Encoder};

/// The size of `msg` as RFC 1939 counts it for LIST and STAT: with CRLF line
/// ends, without the dot-stuffing (what Dovecot's `W=` records).
pub fn wire_size(msg: &[u8]) -> u64 {
    let lf = msg.iter().filter(|&&b| b == b'\n').count();
    let crlf = msg.windows(2).filter(|w| w == b"\r\n").count();
    let mut n = (msg.len() + lf - crlf) as u64;
    if !msg.is_empty() && !msg.ends_with(b"\n") {
        n += 2;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[(&[u8], Option<u64>, &[u8])] = &[
        (b"", None, b".\r\n"),
        (b"A: b\n\nbody\n", None, b"A: b\r\n\r\nbody\r\n.\r\n"),
        (b"A: b\r\n\r\nbody\r\n", None, b"A: b\r\n\r\nbody\r\n.\r\n"),
        (b"A: b\n\nno end", None, b"A: b\r\n\r\nno end\r\n.\r\n"),
        (
            b"A: b\n\n.\n..x\n.",
            None,
            b"A: b\r\n\r\n..\r\n...x\r\n..\r\n.\r\n",
        ),
        (
            b"A: b\n\nbare\rcr\n",
            None,
            b"A: b\r\n\r\nbare\rcr\r\n.\r\n",
        ),
        (b"A: b\n\nend cr\r", None, b"A: b\r\n\r\nend cr\r\r\n.\r\n"),
        (b"A: b\n\n\r.dot\n", None, b"A: b\r\n\r\n\r.dot\r\n.\r\n"),
        (
            b"A: b\nC: d\n\n1\n2\n3\n",
            Some(0),
            b"A: b\r\nC: d\r\n\r\n.\r\n",
        ),
        (
            b"A: b\n\n1\n.2\n3\n",
            Some(2),
            b"A: b\r\n\r\n1\r\n..2\r\n.\r\n",
        ),
        (b"A: b\n\n1\n", Some(5), b"A: b\r\n\r\n1\r\n.\r\n"),
        (b"A: b\n\n\n\n3\n", Some(2), b"A: b\r\n\r\n\r\n\r\n.\r\n"),
        (b"A: b\nno body", Some(3), b"A: b\r\nno body\r\n.\r\n"),
    ];

    #[test]
    fn wire_size_counts_crlf_but_not_stuffing() {
        for (input, top, want) in TABLE {
            if top.is_none() {
                let stuffed = want.len() as u64 - 3;
                let dots = String::from_utf8_lossy(want)
                    .split("\r\n")
                    .filter(|l| l.starts_with(".."))
                    .count() as u64;
                assert_eq!(wire_size(input), stuffed - dots, "{input:?}");
            }
        }
    }
}
