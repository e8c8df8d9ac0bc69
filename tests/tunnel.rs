//! The tunnel example end to end over real loopback sockets: an echo server behind the tunnel,
//! many concurrent connections through it over one session and over a pool, unreachable
//! addresses, a server restarting under the client, and shutdown; the same over TLS
//! with a certificate made at test time, an untrusted certificate, and unusable certificate files.

#[path = "../examples/tunnel/tunnel.rs"]
mod tunnel;

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use common::bounded;

const CONNECTIONS: usize = 20;
const BYTES: usize = 100_000;

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

/// Runs `client` to its end, then stops the server: a server stopped at the same moment could
/// close the session before the client sees its own stop, which the client rightly reports as an
/// error.
async fn client_then_stop(
    client: impl std::future::Future<Output = std::io::Result<()>>,
    stop_server: oneshot::Sender<()>,
) -> std::io::Result<()> {
    let result = client.await;
    let _ = stop_server.send(());
    result
}

/// `connections` concurrent connections to `client_addr`, each writing `bytes` bytes of its own
/// pattern and checking the echo; then one more connection after they all closed.
async fn exchange(client_addr: SocketAddr, connections: usize, bytes: usize) {
    let conns: Vec<_> = (0..connections)
        .map(|i| {
            tokio::spawn(async move {
                let data: Vec<u8> = (0..bytes).map(|j| (j * 31 + i * 7) as u8).collect();
                let tcp = TcpStream::connect(client_addr).await.unwrap();
                let (mut r, mut w) = tcp.into_split();
                let sent = data.clone();
                let writer = tokio::spawn(async move {
                    for chunk in sent.chunks(4096 + i) {
                        w.write_all(chunk).await.unwrap();
                    }
                    w // keep the write half open until the echo is read back
                });
                let mut got = vec![0; bytes];
                r.read_exact(&mut got).await.unwrap();
                assert!(got == data, "connection {i}: echoed bytes differ");
                drop(writer.await.unwrap());
            })
        })
        .collect();
    for c in conns {
        bounded(c).await.unwrap();
    }
    // A connection after the others, to show the tunnel keeps working once they closed.
    let mut tcp = TcpStream::connect(client_addr).await.unwrap();
    tcp.write_all(b"last").await.unwrap();
    let mut buf = [0; 4];
    bounded(tcp.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"last");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_many_connections_over_one_session() {
    let target = echo_server().await;
    let (server_listener, server_addr) = bind().await;
    let (client_listener, client_addr) = bind().await;
    let (stop_server, server_stop) = trigger();
    let (stop_client, client_stop) = trigger();
    let server = tunnel::server(server_listener, target.to_string(), None, server_stop);
    let client = tunnel::client(
        client_listener,
        server_addr.to_string(),
        None,
        1,
        client_stop,
    );

    let work = async {
        exchange(client_addr, CONNECTIONS, BYTES).await;
        stop_client.send(()).unwrap();
    };
    let client = client_then_stop(client, stop_server);
    let (server, client, ()) = bounded(async { tokio::join!(server, client, work) }).await;
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
    let server = tunnel::server(server_listener, target.to_string(), None, server_stop);
    let client = tunnel::client(
        client_listener,
        server_addr.to_string(),
        None,
        1,
        client_stop,
    );

    let work = async {
        let mut tcp = TcpStream::connect(client_addr).await.unwrap();
        let _ = tcp.write_all(b"anyone there?").await;
        let mut buf = [0; 16];
        // The server cannot connect, drops the stream, and the client ends the connection.
        let n = bounded(tcp.read(&mut buf)).await.unwrap_or(0);
        assert_eq!(n, 0, "read data from an unreachable target");
        stop_client.send(()).unwrap();
    };
    let client = client_then_stop(client, stop_server);
    let (server, client, ()) = bounded(async { tokio::join!(server, client, work) }).await;
    server.unwrap();
    client.unwrap();
}

#[tokio::test]
async fn an_unreachable_tunnel_server_is_a_clear_error() {
    let server = closed_port().await;
    let (listener, _) = bind().await;
    let err = bounded(tunnel::client(
        listener,
        server.to_string(),
        None,
        2,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_many_connections_over_a_pool_of_sessions() {
    let target = echo_server().await;
    let (server_listener, server_addr) = bind().await;
    let (client_listener, client_addr) = bind().await;
    let (stop_server, server_stop) = trigger();
    let (stop_client, client_stop) = trigger();
    let server = tunnel::server(server_listener, target.to_string(), None, server_stop);
    let client = tunnel::client(
        client_listener,
        server_addr.to_string(),
        None,
        3,
        client_stop,
    );

    let work = async {
        exchange(client_addr, CONNECTIONS, BYTES).await;
        stop_client.send(()).unwrap();
    };
    let client = client_then_stop(client, stop_server);
    let (server, client, ()) = bounded(async { tokio::join!(server, client, work) }).await;
    server.unwrap();
    client.unwrap();
}

/// One echo through the tunnel at `client_addr`: whether it came back whole.
async fn echoes(client_addr: SocketAddr, msg: &[u8]) -> bool {
    let Ok(mut tcp) = TcpStream::connect(client_addr).await else {
        return false;
    };
    if tcp.write_all(msg).await.is_err() {
        return false;
    }
    let mut buf = vec![0; msg.len()];
    tcp.read_exact(&mut buf).await.is_ok() && buf == msg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reconnects_after_the_server_restarts() {
    let target = echo_server().await;
    let (server_listener, server_addr) = bind().await;
    let (client_listener, client_addr) = bind().await;
    let (stop_client, client_stop) = trigger();
    let (stop_server, server_stop) = trigger();
    let first = tokio::spawn(tunnel::server(
        server_listener,
        target.to_string(),
        None,
        server_stop,
    ));
    let client = tokio::spawn(tunnel::client(
        client_listener,
        server_addr.to_string(),
        None,
        2,
        client_stop,
    ));
    assert!(bounded(echoes(client_addr, b"before")).await);

    // The server goes away (closing its sessions), and comes back on the same address.
    stop_server.send(()).unwrap();
    bounded(first).await.unwrap().unwrap();
    assert!(!client.is_finished(), "the client gave up on a lost server");
    let listener = bounded(async {
        loop {
            match TcpListener::bind(server_addr).await {
                Ok(l) => return l,
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
    .await;
    let (stop_server, server_stop) = trigger();
    let second = tokio::spawn(tunnel::server(
        listener,
        target.to_string(),
        None,
        server_stop,
    ));

    // The client reconnects by itself: connections through it work again (one made while a
    // session of the old server was still being taken out may fail, hence the retries).
    bounded(async {
        while !echoes(client_addr, b"after").await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    exchange(client_addr, 8, 10_000).await;
    stop_client.send(()).unwrap();
    bounded(client).await.unwrap().unwrap();
    stop_server.send(()).unwrap();
    bounded(second).await.unwrap().unwrap();
}

// ----- TLS -----

/// A fresh directory for one test's certificate files (under Cargo's temporary directory for
/// integration tests), removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("tunnel-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate for "localhost", written by the tunnel's own `gen-cert` code into
/// `dir/sub`: (cert.pem, key.pem).
fn cert_in(dir: &TempDir, sub: &str) -> (PathBuf, PathBuf) {
    tunnel::generate_cert(&dir.0.join(sub), &["localhost".to_string()]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_many_connections_over_tls() {
    let dir = TempDir::new("over-tls");
    let (cert, key) = cert_in(&dir, "server");
    let acceptor = tunnel::load_server_tls(&cert, &key).unwrap();
    let client_tls = tunnel::ClientTls::load(&cert, "localhost").unwrap();

    let target = echo_server().await;
    let (server_listener, server_addr) = bind().await;
    let (client_listener, client_addr) = bind().await;
    let (stop_server, server_stop) = trigger();
    let (stop_client, client_stop) = trigger();
    let server = tunnel::server(
        server_listener,
        target.to_string(),
        Some(acceptor),
        server_stop,
    );
    let client = tunnel::client(
        client_listener,
        server_addr.to_string(),
        Some(client_tls),
        2,
        client_stop,
    );

    let work = async {
        exchange(client_addr, 8, 64 * 1024).await;
        stop_client.send(()).unwrap();
    };
    let client = client_then_stop(client, stop_server);
    let (server, client, ()) = bounded(async { tokio::join!(server, client, work) }).await;
    server.unwrap();
    client.unwrap();
}

/// Runs a TLS tunnel server with `cert`/`key` and a client trusting `ca` for `name`; returns the
/// client's error, which must come by itself (the server keeps running until then).
async fn client_error(cert: &Path, key: &Path, ca: &Path, name: &str) -> std::io::Error {
    let acceptor = tunnel::load_server_tls(cert, key).unwrap();
    let client_tls = tunnel::ClientTls::load(ca, name).unwrap();
    let (server_listener, server_addr) = bind().await;
    let (client_listener, _) = bind().await;
    let (stop_server, server_stop) = trigger();
    let server = tunnel::server(
        server_listener,
        closed_port().await.to_string(),
        Some(acceptor),
        server_stop,
    );
    let client = async {
        let result = tunnel::client(
            client_listener,
            server_addr.to_string(),
            Some(client_tls),
            1,
            std::future::pending(),
        )
        .await;
        stop_server.send(()).unwrap();
        result
    };
    let limit = Duration::from_secs(5);
    let (server, client) = tokio::time::timeout(limit, async { tokio::join!(server, client) })
        .await
        .expect("the client neither failed nor connected: it hangs");
    server.unwrap();
    client.expect_err("the client accepted a certificate it must not trust")
}

#[tokio::test]
async fn an_untrusted_certificate_fails_the_client_clearly() {
    let dir = TempDir::new("untrusted");
    let (cert, key) = cert_in(&dir, "server");
    let (other, _) = cert_in(&dir, "other"); // the client trusts this one instead
    let err = client_error(&cert, &key, &other, "localhost").await;
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("TLS handshake with tunnel server")
            && msg.contains("invalid peer certificate")
            && msg.contains("not trusted"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_certificate_for_another_name_fails_the_client_clearly() {
    let dir = TempDir::new("wrong-name");
    let (cert, key) = cert_in(&dir, "server");
    let err = client_error(&cert, &key, &cert, "example.com").await;
    let msg = err.to_string();
    assert!(
        msg.contains("TLS handshake with tunnel server")
            && msg.contains("example.com")
            && msg.contains("--tls-name"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_tls_client_of_a_plain_server_fails_clearly() {
    let dir = TempDir::new("plain-server");
    let (cert, _) = cert_in(&dir, "server");
    let client_tls = tunnel::ClientTls::load(&cert, "localhost").unwrap();
    let (server_listener, server_addr) = bind().await;
    let (client_listener, _) = bind().await;
    let (stop_server, server_stop) = trigger();
    let server = tunnel::server(
        server_listener,
        closed_port().await.to_string(),
        None,
        server_stop,
    );
    let client = async {
        let result = tunnel::client(
            client_listener,
            server_addr.to_string(),
            Some(client_tls),
            1,
            std::future::pending(),
        )
        .await;
        stop_server.send(()).unwrap();
        result
    };
    let (server, client) = bounded(async { tokio::join!(server, client) }).await;
    server.unwrap();
    let msg = client.unwrap_err().to_string();
    assert!(
        msg.contains("TLS handshake") && msg.contains("does it use TLS?"),
        "{msg}"
    );
}

#[test]
fn unreadable_or_invalid_files_are_clear_errors() {
    let dir = TempDir::new("files");
    let (cert, key) = cert_in(&dir, "a");
    let (_, other_key) = cert_in(&dir, "b");
    let missing = dir.0.join("missing.pem");
    let garbage = dir.0.join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();

    let server_err = |cert: &Path, key: &Path| match tunnel::load_server_tls(cert, key) {
        Ok(_) => panic!("loaded {} with {}", cert.display(), key.display()),
        Err(e) => e.to_string(),
    };
    let client_err = |ca: &Path, name: &str| match tunnel::ClientTls::load(ca, name) {
        Ok(_) => panic!("loaded {} for {name}", ca.display()),
        Err(e) => e.to_string(),
    };
    let shows = |msg: String, parts: &[&str]| {
        assert!(parts.iter().all(|p| msg.contains(p)), "{msg}");
    };
    let name = |p: &Path| p.display().to_string();

    shows(
        server_err(&missing, &key),
        &["cannot read", &name(&missing)],
    );
    shows(
        server_err(&cert, &missing),
        &["cannot read", &name(&missing)],
    );
    shows(
        server_err(&garbage, &key),
        &["invalid PEM", &name(&garbage)],
    );
    shows(
        server_err(&key, &key),
        &["no certificate found", &name(&key)],
    );
    shows(
        server_err(&cert, &cert),
        &["no private key found", &name(&cert)],
    );
    shows(
        server_err(&cert, &other_key),
        &["cannot use certificate", &name(&cert), &name(&other_key)],
    );
    shows(
        client_err(&missing, "localhost"),
        &["cannot read", &name(&missing)],
    );
    shows(
        client_err(&key, "localhost"),
        &["no certificate found", &name(&key)],
    );
    shows(
        client_err(&cert, "not a name!"),
        &["invalid TLS server name"],
    );

    assert_eq!(tunnel::host_of("127.0.0.1:9000"), "127.0.0.1");
    assert_eq!(tunnel::host_of("[::1]:9000"), "::1");
    assert_eq!(tunnel::host_of("example.com:443"), "example.com");
}

// ----- failures: nothing lost in silence -----

/// A loopback TCP connection: (the tunnel's end, the application's end).
async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (tunnel_end, _) = listener.accept().await.unwrap();
    (tunnel_end, app)
}

/// A stream of a client session over an in-memory pipe, and the server's end of it with the
/// server's driver (dropping it kills the session without a FIN for the stream).
async fn stream_pair() -> (
    ysmux::Stream,
    ysmux::Stream,
    tokio::task::JoinHandle<Result<(), ysmux::Error>>,
) {
    let (a, b) = ysmux::pipe();
    let (client, cd) = ysmux::Session::client(a, ysmux::Config::default());
    let (server, sd) = ysmux::Session::server(b, ysmux::Config::default());
    tokio::spawn(cd);
    let sd = tokio::spawn(sd);
    let stream = client.open().await.unwrap();
    let far = bounded(server.accept()).await.unwrap();
    (stream, far, sd)
}

/// Reads to the end: the bytes, and whether it ended in an error (else a clean end-of-stream).
async fn read_all(tcp: &mut TcpStream) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tcp.read(&mut buf).await {
            Ok(0) => return (got, false),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (got, true),
        }
    }
}

#[tokio::test]
async fn a_stream_that_ends_cleanly_ends_its_connection_with_a_fin() {
    let (tunnel_end, mut app) = tcp_pair().await;
    let (stream, mut far, _sd) = stream_pair().await;
    let forward = tokio::spawn(tunnel::forward(tunnel_end, stream));
    // Named in full: with the `tokio` feature a stream has tokio's write methods too.
    futures::AsyncWriteExt::write_all(&mut far, b"whole")
        .await
        .unwrap();
    futures::AsyncWriteExt::close(&mut far).await.unwrap();
    let (got, failed) = bounded(read_all(&mut app)).await;
    assert_eq!(got, b"whole");
    assert!(!failed, "a clean end was reported as an error");
    bounded(forward).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_stream_whose_session_dies_resets_its_connection() {
    let (tunnel_end, mut app) = tcp_pair().await;
    let (stream, mut far, sd) = stream_pair().await;
    let forward = tokio::spawn(tunnel::forward(tunnel_end, stream));
    futures::AsyncWriteExt::write_all(&mut far, b"part")
        .await
        .unwrap();
    futures::AsyncWriteExt::flush(&mut far).await.unwrap();
    let mut first = [0u8; 4];
    bounded(app.read_exact(&mut first)).await.unwrap();
    // The session dies with the stream open: no FIN for it ever comes.
    sd.abort();
    let (rest, failed) = bounded(read_all(&mut app)).await;
    assert!(
        failed,
        "a truncated stream ended its connection cleanly (after {} more bytes)",
        rest.len()
    );
    let e = bounded(forward).await.unwrap().unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
}

#[tokio::test]
async fn the_keepalive_is_on_by_default_and_the_server_reaps_a_silent_client() {
    assert_eq!(
        tunnel::Options::default().keepalive(),
        Some(tunnel::KEEPALIVE)
    );
    let (server_listener, server_addr) = bind().await;
    let (stop_server, server_stop) = trigger();
    let options = tunnel::Options::default().with_keepalive(Some(Duration::from_millis(50)));
    let server = tokio::spawn(tunnel::server_with(
        server_listener,
        closed_port().await.to_string(),
        None,
        options,
        server_stop,
    ));
    // A client whose session went silent (half-open: it neither answers nor closes). The server
    // probes it, gives up and closes the connection.
    let mut silent = TcpStream::connect(server_addr).await.unwrap();
    let mut buf = [0u8; 64];
    bounded(async {
        loop {
            match silent.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {} // the probes
            }
        }
    })
    .await;
    stop_server.send(()).unwrap();
    bounded(server).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_lost_session_is_reported_with_its_cause_and_its_streams() {
    use futures::AsyncWriteExt as _;
    let (a, mut peer) = ysmux::pipe();
    let (client, driver) = ysmux::Session::client(a, ysmux::Config::default());
    let driver = tokio::spawn(driver);
    let _s = client.open().await.unwrap();
    let _t = client.open().await.unwrap();
    // The peer sends half a frame header and vanishes.
    peer.write_all(&[2, 1]).await.unwrap();
    drop(peer);
    let e = bounded(driver).await.unwrap().unwrap_err();
    let msg = tunnel::lost("lost a session with tunnel server x", &client, &e);
    assert!(msg.contains("connection lost mid-frame"), "{msg}");
    assert!(msg.contains("the transport ended"), "{msg}");
    assert!(msg.contains("carried 2 streams"), "{msg}");
}

/// `--protocol auto` on the server: tunnel clients of every smux (yddeng's, xtaci v1 and v2),
/// each through its own session, forward their connections through the one server port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tunnel_server_for_clients_of_every_smux() {
    use ysmux::Protocol;
    let target = echo_server().await;
    let (server_listener, server_addr) = bind().await;
    let (stop_server, server_stop) = trigger();
    let auto = tunnel::Options::default().with_protocol(Protocol::Detect);
    assert_eq!(auto.protocol(), Protocol::Detect);
    let server = tokio::spawn(tunnel::server_with(
        server_listener,
        target.to_string(),
        None,
        auto,
        server_stop,
    ));
    for protocol in [Protocol::Yddeng, Protocol::Xtaci1, Protocol::Xtaci2] {
        let (client_listener, client_addr) = bind().await;
        let (stop_client, client_stop) = trigger();
        let options = tunnel::Options::default().with_protocol(protocol);
        let client = tunnel::client_with(
            client_listener,
            server_addr.to_string(),
            None,
            1,
            options,
            client_stop,
        );
        let work = async {
            exchange(client_addr, 4, BYTES).await;
            stop_client.send(()).unwrap();
        };
        let (client, ()) = bounded(async { tokio::join!(client, work) }).await;
        client.unwrap_or_else(|e| panic!("{protocol:?} client: {e}"));
    }
    stop_server.send(()).unwrap();
    bounded(server).await.unwrap().unwrap();
}
