//! The tunnel example end to end over real loopback sockets: an echo server behind the tunnel,
//! many concurrent connections through it, unreachable addresses, and shutdown.

#[path = "../examples/tunnel/tunnel.rs"]
mod tunnel;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const CONNECTIONS: usize = 20;
const BYTES: usize = 100_000;

async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("timed out")
}

/// A TCP echo server on loopback.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// An address where nothing listens.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

fn trigger() -> (oneshot::Sender<()>, impl std::future::Future<Output = ()>) {
    let (tx, rx) = oneshot::channel();
    (tx, async {
        let _ = rx.await;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_many_connections_over_one_session() {
    let target = echo_server().await;
    let (server_listener, server_addr) = bind().await;
    let (client_listener, client_addr) = bind().await;
    let (stop_server, server_stop) = trigger();
    let (stop_client, client_stop) = trigger();
    let server = tunnel::server(server_listener, target.to_string(), server_stop);
    let client = tunnel::client(client_listener, server_addr.to_string(), client_stop);

    let work = async {
        let conns: Vec<_> = (0..CONNECTIONS)
            .map(|i| {
                tokio::spawn(async move {
                    let data: Vec<u8> = (0..BYTES).map(|j| (j * 31 + i * 7) as u8).collect();
                    let tcp = TcpStream::connect(client_addr).await.unwrap();
                    let (mut r, mut w) = tcp.into_split();
                    let sent = data.clone();
                    let writer = tokio::spawn(async move {
                        for chunk in sent.chunks(4096 + i) {
                            w.write_all(chunk).await.unwrap();
                        }
                        w // keep the write half open until the echo is read back
                    });
                    let mut got = vec![0; BYTES];
                    r.read_exact(&mut got).await.unwrap();
                    assert!(got == data, "connection {i}: echoed bytes differ");
                    drop(writer.await.unwrap());
                })
            })
            .collect();
        for c in conns {
            within(c).await.unwrap();
        }
        // A connection after the others, to show the tunnel keeps working once they closed.
        let mut tcp = TcpStream::connect(client_addr).await.unwrap();
        tcp.write_all(b"last").await.unwrap();
        let mut buf = [0; 4];
        within(tcp.read_exact(&mut buf)).await.unwrap();
        assert_eq!(&buf, b"last");

        stop_client.send(()).unwrap();
        stop_server.send(()).unwrap();
    };
    let (server, client, ()) = within(async { tokio::join!(server, client, work) }).await;
    server.unwrap();
    client.unwrap();
}

#[tokio::test]
async fn an_unreachable_target_closes_the_local_connection() {
    let target = closed_port().await;
    let (server_listener, server_addr) = bind().await;
    let (client_listener, client_addr) = bind().await;
    let (stop_server, server_stop) = trigger();
    let (stop_client, client_stop) = trigger();
    let server = tunnel::server(server_listener, target.to_string(), server_stop);
    let client = tunnel::client(client_listener, server_addr.to_string(), client_stop);

    let work = async {
        let mut tcp = TcpStream::connect(client_addr).await.unwrap();
        let _ = tcp.write_all(b"anyone there?").await;
        let mut buf = [0; 16];
        // The server cannot connect, drops the stream, and the client ends the connection.
        let n = within(tcp.read(&mut buf)).await.unwrap_or(0);
        assert_eq!(n, 0, "read data from an unreachable target");
        stop_client.send(()).unwrap();
        stop_server.send(()).unwrap();
    };
    let (server, client, ()) = within(async { tokio::join!(server, client, work) }).await;
    server.unwrap();
    client.unwrap();
}

#[tokio::test]
async fn an_unreachable_tunnel_server_is_a_clear_error() {
    let server = closed_port().await;
    let (listener, _) = bind().await;
    let err = within(tunnel::client(
        listener,
        server.to_string(),
        std::future::pending(),
    ))
    .await
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    let msg = err.to_string();
    assert!(
        msg.contains("cannot reach tunnel server") && msg.contains(&server.to_string()),
        "{msg}"
    );
}

#[tokio::test]
async fn the_client_stops_when_the_server_goes_away() {
    let target = echo_server().await;
    let (server_listener, server_addr) = bind().await;
    let (client_listener, client_addr) = bind().await;
    let (stop_server, server_stop) = trigger();
    let server = tunnel::server(server_listener, target.to_string(), server_stop);
    let client = tunnel::client(
        client_listener,
        server_addr.to_string(),
        std::future::pending(),
    );

    let stop = async {
        // One round trip through the tunnel: the session is up.
        let mut tcp = TcpStream::connect(client_addr).await.unwrap();
        tcp.write_all(b"up?").await.unwrap();
        let mut buf = [0; 3];
        tcp.read_exact(&mut buf).await.unwrap();
        stop_server.send(()).unwrap();
    };
    let (server, client, ()) = within(async { tokio::join!(server, client, stop) }).await;
    server.unwrap();
    let err = client.unwrap_err();
    assert!(err.to_string().contains("ended"), "{err}");
}
