//! The socket side of kmp-authd: accept connections, read request frames,
//! answer each, many requests per connection and many connections at once.
//!
//! A frame that is too large or not a request gets an error reply and the
//! connection is closed; a peer that disconnects or stalls mid-frame is
//! dropped. Either way only that connection ends. Request bodies (which may
//! hold a password) are zeroed once decoded.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use zeroize::Zeroize;

use super::Authd;
use crate::ipc::authd::{Envelope, Reply, Request, VERSION};
use crate::ipc::frame::{self, MAX_FRAME};

/// Connections served at once; more wait to be accepted.
pub const MAX_CONNECTIONS: usize = 4096;
/// A frame once begun must arrive within this time.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `listener` until `shutdown` completes.
pub async fn serve(
    authd: Arc<Authd>,
    listener: UnixListener,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = &mut shutdown => return,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    crate::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };
        let a = authd.clone();
        tokio::spawn(async move {
            connection(a, stream).await;
            drop(permit);
        });
    }
}

/// Why a connection ends.
enum End {
    /// The peer closed between frames: normal.
    Closed,
    /// Broken frame or I/O error: say so if we can, then close.
    Bad(String),
}

async fn connection(authd: Arc<Authd>, mut stream: UnixStream) {
    let mut input = Input::default();
    loop {
        let mut body = match input.frame(&mut stream).await {
            Ok(b) => b,
            Err(End::Closed) => break,
            Err(End::Bad(why)) => {
                crate::warn!("closing a connection: {why}");
                let _ = reply(&mut stream, &refuse(why)).await;
                break;
            }
        };
        let parsed: Result<Envelope<Request>, _> = frame::decode(&body);
        body.zeroize();
        let answer = match parsed {
            Ok(env) if env.v == VERSION => authd.handle(env.body).await,
            Ok(env) => refuse(format!(
                "protocol version {} is not supported (this is version {VERSION})",
                env.v
            )),
            Err(e) => {
                crate::warn!("closing a connection: {e}");
                let _ = reply(&mut stream, &refuse(e.to_string())).await;
                break;
            }
        };
        if reply(&mut stream, &answer).await.is_err() {
            break;
        }
    }
    input.buf.zeroize();
}

async fn reply(stream: &mut UnixStream, r: &Reply) -> std::io::Result<()> {
    stream.write_all(&frame::encode(r)).await
}

/// Bytes read but not yet taken as frames. One read usually brings a whole
/// request, so a request costs one read and one write. The buffer is zeroed
/// when the connection ends (it may have held passwords).
#[derive(Default)]
struct Input {
    buf: Vec<u8>,
}

impl Input {
    /// Reads more; false at the end of the stream.
    async fn fill(&mut self, stream: &mut UnixStream) -> std::io::Result<bool> {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        chunk.zeroize();
        Ok(n > 0)
    }

    /// The next frame's body. Waiting for a frame to begin has no limit (a
    /// daemon keeps its connection); once begun it must finish in time.
    async fn frame(&mut self, stream: &mut UnixStream) -> Result<Vec<u8>, End> {
        if self.buf.is_empty() {
            match self.fill(stream).await {
                Ok(true) => {}
                Ok(false) => return Err(End::Closed),
                Err(e) => return Err(End::Bad(e.to_string())),
            }
        }
        let rest = async {
            while self.buf.len() < 4 {
                if !self.fill(stream).await? {
                    return Err(eof());
                }
            }
            let n =
                u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
            if n > MAX_FRAME {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("frame of {n} bytes is over the limit"),
                ));
            }
            while self.buf.len() < 4 + n {
                if !self.fill(stream).await? {
                    return Err(eof());
                }
            }
            let body = self.buf[4..4 + n].to_vec();
            self.buf[..4 + n].zeroize();
            self.buf.drain(..4 + n);
            Ok(body)
        };
        match tokio::time::timeout(FRAME_TIMEOUT, rest).await {
            Ok(Ok(b)) => Ok(b),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(End::Bad("the peer left in the middle of a frame".into()))
            }
            Ok(Err(e)) => Err(End::Bad(e.to_string())),
            Err(_) => Err(End::Bad("a frame took too long to arrive".into())),
        }
    }
}

fn eof() -> std::io::Error {
    std::io::Error::from(std::io::ErrorKind::UnexpectedEof)
}

fn refuse(message: String) -> Reply {
    Reply::Error {
        temporary: false,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(reqs: &[Request]) -> Vec<u8> {
        let mut w = Vec::new();
        for r in reqs {
            w.extend(frame::encode(&Envelope {
                v: VERSION,
                body: r.clone(),
            }));
        }
        w
    }

    async fn replay(bytes: Vec<u8>, chunk: usize) -> (Vec<Vec<u8>>, End) {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let writer = tokio::spawn(async move {
            for c in bytes.chunks(chunk) {
                a.write_all(c).await.unwrap();
                tokio::task::yield_now().await;
            }
        });
        let mut input = Input::default();
        let mut frames = Vec::new();
        loop {
            match input.frame(&mut b).await {
                Ok(f) => frames.push(f),
                Err(e) => {
                    writer.await.unwrap();
                    return (frames, e);
                }
            }
        }
    }

    #[tokio::test]
    async fn frames_arrive_whole_in_any_chunks() {
        let reqs = [
            Request::Ping,
            Request::Lookup {
                address: "a@b.test".into(),
            },
            Request::BanList,
        ];
        for chunk in [1, 2, 3, 7, 64, 512] {
            let (frames, end) = replay(wire(&reqs), chunk).await;
            assert!(matches!(end, End::Closed), "chunk {chunk}");
            let got: Vec<String> = frames
                .iter()
                .map(|f| format!("{:?}", frame::decode::<Envelope<Request>>(f).unwrap().body))
                .collect();
            let want: Vec<String> = reqs.iter().map(|r| format!("{r:?}")).collect();
            assert_eq!(got, want, "chunk {chunk}");
        }
    }

    #[tokio::test]
    async fn broken_frames_end_the_connection() {
        let good = wire(&[Request::Ping]);
        let cases: Vec<(Vec<u8>, usize)> = vec![
            // Over the limit.
            ((MAX_FRAME as u32 + 1).to_be_bytes().to_vec(), 0),
            // The peer leaves inside the length.
            (vec![0, 0], 0),
            // The peer leaves inside the body, after a good frame.
            ([good.clone(), vec![0, 0, 0, 9, b'{']].concat(), 1),
        ];
        for (bytes, n_good) in cases {
            for chunk in [1, 3, 512] {
                let (frames, end) = replay(bytes.clone(), chunk).await;
                assert_eq!(frames.len(), n_good, "{bytes:?}");
                assert!(matches!(end, End::Bad(_)), "{bytes:?} in chunks of {chunk}");
            }
        }
    }
}
