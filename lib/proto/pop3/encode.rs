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

    use crate::proto::dotstuff::tests::TABLE;

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
