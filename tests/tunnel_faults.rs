//! The tunnel through a fault relay (tests/common/relay.rs) on loopback: the bytes between the
//! tunnel client and server chopped into random pieces, one direction stalled, every connection
//! cut with a reset or with a FIN to one end only (the other left half-open), under concurrent
//! downloads and echoes, over one session and over a pool. Every local connection must end
//! intact or with an error its application sees: a clean end-of-stream after a truncated
//! transfer is a silent loss, and fails the test.

#[path = "../examples/tunnel/tunnel.rs"]
#[allow(dead_code)]
mod tunnel;

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use common::relay::{Cut, End, Relay};
use common::{check, fill};

const DOWNLOADS: usize = 16;
const ECHOES: usize = 8;
const DOWNLOAD: usize = 512 * 1024;
const ECHO: usize = 128 * 1024;
const CHUNK: usize = 8 * 1024;
/// The pause between chunks the target and the echo clients send: transfers take long enough to
/// be in flight at the cut.
const PACE: Duration = Duration::from_millis(3);
/// The longest one connection through the tunnel may take to end, whatever happened to it.
const CONNECTION_LIMIT: Duration = Duration::from_secs(45);
/// The keepalive of both tunnel ends in these tests: a half-open session ends within 2¼ of these.
const KEEPALIVE: Duration = Duration::from_millis(300);

/// How a connection through the tunnel ended, as its application saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Every byte, in order, then a clean end.
    Intact,
    /// An error (a reset, or another failed read or write): the application knows.
    Failed,
    /// A clean end-of-stream before the transfer was complete: a silent loss.
    Silent,
}

/// Counts of outcomes.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    intact: usize,
    failed: usize,
    silent: usize,
}

impl Tally {
    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Intact => self.intact += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Silent => self.silent += 1,
        }
    }
}

/// The target behind the tunnel: a connection's first byte asks for a download (`D`: the
/// pattern of seed 1, [`DOWNLOAD`] bytes, paced, then a clean close) or an echo (`E`).
async fn target() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut what = [0u8];
                if tcp.read_exact(&mut what).await.is_err() {
                    return;
                }
                if what[0] == b'D' {
                    let mut buf = vec![0u8; CHUNK];
                    let mut sent = 0;
                    while sent < DOWNLOAD {
                        fill(1, sent as u64, &mut buf);
                        if tcp.write_all(&buf).await.is_err() {
                            return;
                        }
                        sent += CHUNK;
                        tokio::time::sleep(PACE).await;
                    }
                    let _ = tcp.shutdown().await;
                    // Wait for the tunnel to close its end, so the download is not reset.
                    let _ = tcp.read(&mut what).await;
                } else {
                    let (mut r, mut w) = tcp.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                }
            });
        }
    });
    addr
}

/// A download through the tunnel at `addr`.
async fn download(addr: SocketAddr) -> Outcome {
    let Ok(mut tcp) = TcpStream::connect(addr).await else {
        return Outcome::Failed;
    };
    if tcp.write_all(b"D").await.is_err() {
        return Outcome::Failed;
    }
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0;
    loop {
        match tcp.read(&mut buf).await {
            Ok(0) if got == DOWNLOAD => return Outcome::Intact,
            Ok(0) => return Outcome::Silent,
            Ok(n) => {
                check(1, got as u64, &buf[..n], "a download through the tunnel");
                got += n;
            }
            Err(_) => return Outcome::Failed,
        }
    }
}

/// An echo through the tunnel at `addr`: [`ECHO`] bytes of the pattern of `seed`, paced, read
/// back as they come.
async fn echo(addr: SocketAddr, seed: u64) -> Outcome {
    let Ok(mut tcp) = TcpStream::connect(addr).await else {
        return Outcome::Failed;
    };
    if tcp.write_all(b"E").await.is_err() {
        return Outcome::Failed;
    }
    let (mut r, mut w) = tcp.into_split();
    let write_failed = Arc::new(AtomicBool::new(false));
    let writer = {
        let write_failed = write_failed.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; CHUNK / 4];
            let mut sent = 0;
            while sent < ECHO {
                fill(seed, sent as u64, &mut buf);
                if w.write_all(&buf).await.is_err() {
                    write_failed.store(true, Ordering::SeqCst);
                    return None;
                }
                sent += buf.len();
                tokio::time::sleep(PACE).await;
            }
            Some(w) // kept open until the echo is read back
        })
    };
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0;
    let outcome = loop {
        match r.read(&mut buf).await {
            Ok(_) if got == ECHO => break Outcome::Intact,
            Ok(0) => break Outcome::Silent,
            Ok(n) => {
                check(seed, got as u64, &buf[..n], "an echo through the tunnel");
                got += n;
                if got == ECHO {
                    break Outcome::Intact;
                }
            }
            Err(_) => break Outcome::Failed,
        }
    };
    let writer_ok = writer.await.unwrap().is_some();
    match outcome {
        Outcome::Silent if write_failed.load(Ordering::SeqCst) || !writer_ok => Outcome::Failed,
        o => o,
    }
}

/// A tunnel (server and client, in-process) whose sessions go through a relay; returns the
/// client's local address, the relay, and what stops both ends.
struct Tunnel {
    client_addr: SocketAddr,
    relay: Relay,
    stop_client: oneshot::Sender<()>,
    stop_server: oneshot::Sender<()>,
    client: tokio::task::JoinHandle<std::io::Result<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn tunnel(connections: usize, max_piece: usize, seed: u64) -> Tunnel {
    let to = target().await;
    let server_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server_addr = server_listener.local_addr().unwrap();
    let relay = Relay::start(server_addr, max_piece, seed).await;
    let client_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client_addr = client_listener.local_addr().unwrap();
    let (stop_server, server_stop) = oneshot::channel::<()>();
    let (stop_client, client_stop) = oneshot::channel::<()>();
    let server = tokio::spawn(start_server(server_listener, to.to_string(), async {
        let _ = server_stop.await;
    }));
    let client = tokio::spawn(start_client(
        client_listener,
        relay.addr().to_string(),
        connections,
        async {
            let _ = client_stop.await;
        },
    ));
    Tunnel {
        client_addr,
        relay,
        stop_client,
        stop_server,
        client,
        server,
    }
}

async fn start_server(
    listener: TcpListener,
    to: String,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let options = tunnel::Options::default().with_keepalive(Some(KEEPALIVE));
    tunnel::server_with(listener, to, None, options, stop).await
}

async fn start_client(
    listener: TcpListener,
    server: String,
    connections: usize,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let options = tunnel::Options::default().with_keepalive(Some(KEEPALIVE));
    tunnel::client_with(listener, server, None, connections, options, stop).await
}

impl Tunnel {
    /// [`DOWNLOADS`] downloads and [`ECHOES`] echoes at once; `fault` runs once they are under
    /// way. Every connection must end within [`CONNECTION_LIMIT`].
    async fn run(&self, fault: impl std::future::Future<Output = ()>) -> Tally {
        let addr = self.client_addr;
        let mut conns = Vec::new();
        for i in 0..DOWNLOADS.max(ECHOES) {
            if i < DOWNLOADS {
                conns.push(tokio::spawn(download(addr)));
            }
            if i < ECHOES {
                conns.push(tokio::spawn(echo(addr, 100 + i as u64)));
            }
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        fault.await;
        let mut tally = Tally::default();
        for c in conns {
            let outcome = tokio::time::timeout(CONNECTION_LIMIT, c)
                .await
                .expect("a connection through the tunnel neither ended nor failed")
                .unwrap();
            tally.add(outcome);
        }
        tally
    }

    async fn stop(self) {
        let _ = self.stop_client.send(());
        let _ = tokio::time::timeout(CONNECTION_LIMIT, self.client).await;
        let _ = self.stop_server.send(());
        let _ = tokio::time::timeout(CONNECTION_LIMIT, self.server).await;
        self.relay.stop();
    }
}

/// One scenario: a tunnel over `connections` sessions through a relay chopping into pieces of up
/// to `max_piece` bytes, the transfers, and `cut` once they are under way. Returns the tally.
async fn cut_scenario(connections: usize, cut: Cut, seed: u64) -> Tally {
    let t = tunnel(connections, 1500, seed).await;
    let tally = t.run(async { t.relay.cut_all(cut) }).await;
    assert!(
        t.relay.cut.load(Ordering::SeqCst) > 0,
        "the relay cut nothing"
    );
    t.stop().await;
    eprintln!("{connections} session(s), {cut:?}: {tally:?}");
    tally
}

/// Checks the tallies of one session and of four: the cut hit transfers, and every one it hit
/// failed visibly.
fn check_tallies(what: &str, [one, four]: [Tally; 2]) {
    for (n, tally) in [(1, one), (4, four)] {
        assert!(
            tally.failed + tally.silent > 0,
            "{what}, {n} session(s): the cut hit no transfer, so the test shows nothing: {tally:?}"
        );
    }
    assert!(
        one.silent + four.silent == 0,
        "{what}: connections ended cleanly after a truncated transfer: one session {one:?}, \
         four sessions {four:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_between_the_ends_is_an_error_on_every_cut_connection() {
    let tallies = [
        cut_scenario(1, Cut::Reset, 1).await,
        cut_scenario(4, Cut::Reset, 1).await,
    ];
    check_tallies("reset", tallies);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fin_to_the_server_only_is_an_error_on_every_cut_connection() {
    let tallies = [
        cut_scenario(1, Cut::FinTo(End::Server), 2).await,
        cut_scenario(4, Cut::FinTo(End::Server), 2).await,
    ];
    check_tallies("FIN to the server", tallies);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fin_to_the_client_only_is_an_error_on_every_cut_connection() {
    let tallies = [
        cut_scenario(1, Cut::FinTo(End::Client), 3).await,
        cut_scenario(4, Cut::FinTo(End::Client), 3).await,
    ];
    check_tallies("FIN to the client", tallies);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chopped_and_stalled_transfers_arrive_intact() {
    // Pieces of 1 to 7 bytes (half of them) split headers; a stall of each direction in turn.
    let t = tunnel(2, 600, 4).await;
    let tally = t
        .run(async {
            t.relay.stall(End::Client, true);
            tokio::time::sleep(Duration::from_millis(300)).await;
            t.relay.stall(End::Client, false);
            t.relay.stall(End::Server, true);
            tokio::time::sleep(Duration::from_millis(300)).await;
            t.relay.stall(End::Server, false);
        })
        .await;
    t.stop().await;
    assert_eq!(tally.intact, DOWNLOADS + ECHOES, "{tally:?}");
}
