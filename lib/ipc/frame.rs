//! Length-prefixed JSON frames, blocking and async.

use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The largest frame either side accepts.
pub const MAX_FRAME: usize = 1 << 20;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection closed")]
    Closed,
    #[error("frame of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl FrameError {
    /// Whether trying again later may succeed (the peer may come back).
    pub fn is_temporary(&self) -> bool {
        matches!(self, FrameError::Closed | FrameError::Io(_))
    }
}

/// Encodes `msg` as one frame.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    // Invariant: our message types serialise infallibly (no maps with non-string keys).
    let body = serde_json::to_vec(msg).expect("message serialises");
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Decodes a frame body.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    serde_json::from_slice(body).map_err(|e| FrameError::Malformed(e.to_string()))
}

fn check_len(len: [u8; 4]) -> Result<usize, FrameError> {
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(FrameError::TooLarge(n));
    }
    Ok(n)
}

/// Writes one frame.
pub fn write<W: Write, T: Serialize>(w: &mut W, msg: &T) -> Result<(), FrameError> {
    // Frames may carry a password (kmp-authd's Login): wiped once sent.
    let buf = zeroize::Zeroizing::new(encode(msg));
    w.write_all(&buf)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame; [`FrameError::Closed`] at a clean end of stream.
pub fn read<R: Read, T: DeserializeOwned>(r: &mut R) -> Result<T, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let mut body = zeroize::Zeroizing::new(vec![0u8; check_len(len)?]);
    r.read_exact(&mut body)?;
    decode(&body)
}

/// Writes one frame, async.
pub async fn write_async<W, T>(w: &mut W, msg: &T) -> Result<(), FrameError>
where
    W: tokio::io::AsyncWrite + Unpin,
    T: Serialize,
{
    let buf = zeroize::Zeroizing::new(encode(msg));
    w.write_all(&buf).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one frame, async; [`FrameError::Closed`] at a clean end of stream.
pub async fn read_async<R, T>(r: &mut R) -> Result<T, FrameError>
where
    R: tokio::io::AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let mut body = zeroize::Zeroizing::new(vec![0u8; check_len(len)?]);
    r.read_exact(&mut body).await?;
    decode(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_limits_hold() {
        let mut buf = Vec::new();
        write(&mut buf, &vec!["a".to_string(), "b".to_string()]).unwrap();
        let back: Vec<String> = read(&mut buf.as_slice()).unwrap();
        assert_eq!(back, ["a", "b"]);
        let huge = (MAX_FRAME as u32 + 1).to_be_bytes();
        assert!(matches!(
            read::<_, Vec<String>>(&mut &huge[..]),
            Err(FrameError::TooLarge(_))
        ));
        assert!(matches!(
            read::<_, Vec<String>>(&mut &[][..]),
            Err(FrameError::Closed)
        ));
        let junk = [0, 0, 0, 3, b'{', b'x', b'}'];
        assert!(matches!(
            read::<_, Vec<String>>(&mut &junk[..]),
            Err(FrameError::Malformed(_))
        ));
    }
}
