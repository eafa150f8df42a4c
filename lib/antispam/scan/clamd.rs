//! ClamAV's clamd over INSTREAM: `zINSTREAM\0`, then the message in
//! chunks, each a 4-byte big-endian length and that many bytes, then a
//! zero length; the answer is `stream: OK`, `stream: NAME FOUND`, or
//! `... ERROR` (clamd's StreamMaxLength exceeded, among others).

use std::io::Write;
use std::time::Duration;

use super::socket::{Address, Conn};

/// Chunks are this big (clamd reads up to its StreamMaxLength in all).
const CHUNK: usize = 64 * 1024;

/// What clamd said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    /// The signature's name.
    Virus(String),
}

/// Asks clamd at `addr` about `message`.
pub fn check(
    addr: &Address,
    message: &[u8],
    connect: Duration,
    io: Duration,
) -> Result<Verdict, String> {
    let mut c = Conn::open(addr, connect, io).map_err(|e| format!("clamd {addr}: {e}"))?;
    let send = |c: &mut Conn| -> std::io::Result<()> {
        c.write_all(b"zINSTREAM\0")?;
        for chunk in message.chunks(CHUNK) {
            c.write_all(&(chunk.len() as u32).to_be_bytes())?;
            c.write_all(chunk)?;
        }
        c.write_all(&0u32.to_be_bytes())
    };
    // clamd answers (and closes) early when the stream passes its limit:
    // that answer is still read.
    let sent = send(&mut c);
    let answer = c.read_all(4096);
    match (sent, answer) {
        (_, Ok(a)) if !a.is_empty() => parse(&a).map_err(|e| format!("clamd {addr}: {e}")),
        (Err(e), _) | (Ok(()), Err(e)) => Err(format!("clamd {addr}: {e}")),
        (Ok(()), Ok(_)) => Err(format!("clamd {addr}: no answer")),
    }
}

/// Parses clamd's answer to INSTREAM.
pub fn parse(answer: &[u8]) -> Result<Verdict, String> {
    let text = String::from_utf8_lossy(answer);
    let line = text.trim_end_matches(['\0', '\n', '\r']).trim();
    let rest = line.strip_prefix("stream:").map(str::trim);
    match rest {
        Some("OK") => Ok(Verdict::Clean),
        Some(r) if r.ends_with(" FOUND") => {
            let name: String = r
                .trim_end_matches(" FOUND")
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(100)
                .collect();
            Ok(Verdict::Virus(name))
        }
        _ => Err(format!(
            "unexpected answer {:?}",
            line.chars().take(100).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse() {
        assert_eq!(parse(b"stream: OK\0").unwrap(), Verdict::Clean);
        assert_eq!(
            parse(b"stream: Eicar-Test-Signature FOUND\0").unwrap(),
            Verdict::Virus("Eicar-Test-Signature".into())
        );
        assert!(parse(b"INSTREAM size limit exceeded. ERROR\0").is_err());
        assert!(parse(b"").is_err());
    }
}
