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
    loop {
        let mut body = match read_frame(&mut stream).await {
            Ok(b) => b,
            Err(End::Closed) => return,
            Err(End::Bad(why)) => {
                crate::warn!("closing a connection: {why}");
                let _ = reply(&mut stream, &refuse(why)).await;
                return;
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
                return;
            }
        };
        if reply(&mut stream, &answer).await.is_err() {
            return;
        }
    }
}

async fn reply(stream: &mut UnixStream, r: &Reply) -> std::io::Result<()> {
    stream.write_all(&frame::encode(r)).await?;
    stream.flush().await
}

/// Reads one frame's body. Waiting for a frame to begin has no limit (a
/// daemon keeps its connection); once begun it must finish in time.
async fn read_frame(stream: &mut UnixStream) -> Result<Vec<u8>, End> {
    let mut len = [0u8; 4];
    match stream.read(&mut len[..1]).await {
        Ok(0) => return Err(End::Closed),
        Ok(_) => {}
        Err(e) => return Err(End::Bad(e.to_string())),
    }
    let rest = async {
        stream.read_exact(&mut len[1..]).await?;
        let n = u32::from_be_bytes(len) as usize;
        if n > MAX_FRAME {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("frame of {n} bytes is over the limit"),
            ));
        }
        let mut body = vec![0u8; n];
        stream.read_exact(&mut body).await?;
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

fn refuse(message: String) -> Reply {
    Reply::Error {
        temporary: false,
        message,
    }
}
