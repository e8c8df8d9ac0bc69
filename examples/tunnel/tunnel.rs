//! The tunnel's logic: forwards TCP connections over one multiplexed TCP connection, each local
//! connection one smux stream. Shared by `examples/tunnel/main.rs` (the command line) and
//! `tests/tunnel.rs` (which drives it end to end over loopback).
//!
//! The protocol has no half-close, so neither does the tunnel: when either side of a forwarded
//! connection ends, the whole connection ends (as with the original's users, e.g. kcptun).

use std::future::Future;
use std::io;
use std::pin::pin;

use futures::future::select;
use futures::{AsyncReadExt, AsyncWriteExt};
use smux::{Config, Session, Stream};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

/// The tunnel's server end: every connection accepted on `listener` carries a session, and every
/// stream of it is forwarded to a new TCP connection to `to`. Runs until `shutdown` resolves, then
/// closes every session (their streams end) and returns.
pub async fn server(
    listener: TcpListener,
    to: String,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut shutdown = pin!(shutdown);
    let mut sessions: Vec<Session> = Vec::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.as_mut() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                eprintln!("tunnel server: accept failed: {e}");
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (session, driver) = Session::server(tcp.compat(), Config::default());
        tokio::spawn(async move {
            if let Err(e) = driver.await {
                eprintln!("tunnel server: session with {peer} failed: {e}");
            }
        });
        let (to, streams) = (to.clone(), session.clone());
        tokio::spawn(async move {
            while let Ok(stream) = streams.accept().await {
                let to = to.clone();
                tokio::spawn(async move {
                    match TcpStream::connect(&to).await {
                        Ok(tcp) => forward(tcp, stream).await,
                        // Dropping the stream closes it: the client's local connection ends.
                        Err(e) => eprintln!("tunnel server: cannot reach {to}: {e}"),
                    }
                });
            }
        });
        sessions.retain(|s| !s.is_closed());
        sessions.push(session);
    }
    for s in sessions {
        let _ = s.close().await;
    }
    Ok(())
}

/// The tunnel's client end: connects to the tunnel server at `server`, then forwards every
/// connection accepted on `listener` as one stream. Runs until `shutdown` resolves (then closes
/// the session) or the session to the server ends (an error).
pub async fn client(
    listener: TcpListener,
    server: String,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let tcp = TcpStream::connect(&server).await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot reach tunnel server {server}: {e}"),
        )
    })?;
    let _ = tcp.set_nodelay(true);
    let (session, driver) = Session::client(tcp.compat(), Config::default());
    let driver = tokio::spawn(driver);

    let mut shutdown = pin!(shutdown);
    let mut ended = pin!(session.closed());
    loop {
        let accepted = tokio::select! {
            () = shutdown.as_mut() => break,
            end = ended.as_mut() => {
                let why = end.err().map_or("closed by the server".to_string(), |e| e.to_string());
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    format!("the session with tunnel server {server} ended: {why}"),
                ));
            }
            accepted = listener.accept() => accepted,
        };
        let (tcp, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                eprintln!("tunnel client: accept failed: {e}");
                continue;
            }
        };
        let session = session.clone();
        tokio::spawn(async move {
            match session.open().await {
                Ok(stream) => forward(tcp, stream).await,
                Err(e) => eprintln!("tunnel client: cannot open a stream: {e}"),
            }
        });
    }
    session.close().await.map_err(io::Error::from)?;
    driver
        .await
        .map_err(io::Error::other)?
        .map_err(io::Error::from)
}

/// Copies both ways between a TCP connection and a stream until either direction ends, then
/// closes both.
pub async fn forward(tcp: TcpStream, stream: Stream) {
    let _ = tcp.set_nodelay(true);
    let (tcp_read, tcp_write) = tcp.into_split();
    let (mut tcp_read, mut tcp_write) = (tcp_read.compat(), tcp_write.compat_write());
    let (mut stream_read, mut stream_write) = stream.split();
    let up = async {
        let _ = futures::io::copy(&mut tcp_read, &mut stream_write).await;
        let _ = stream_write.close().await; // flushes, then FIN
    };
    let down = async {
        let _ = futures::io::copy(&mut stream_read, &mut tcp_write).await;
        let _ = tcp_write.close().await;
    };
    select(pin!(up), pin!(down)).await;
}
