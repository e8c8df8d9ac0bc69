//! The frame path does not allocate: moving data over an established stream makes (almost) no
//! heap allocations per frame. A counting allocator counts them; this file is its own test binary
//! and its tests run one at a time. It guards against a change that makes the hot path allocate
//! again, without asserting any timing.

mod common;

use common::counting::{self, Counting};
use futures::{AsyncReadExt, AsyncWriteExt};
use ysmux::{Config, Session};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` on a client/server pair over loopback TCP (whose buffers are the kernel's, so every
/// allocation counted is the multiplexer's or the test's), on one thread.
fn with_pair<F, Fut>(f: F)
where
    F: FnOnce(Session, Session) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let _serial = counting::serial();
    let ex = smol::LocalExecutor::new();
    let (a, b) = smol::block_on(async {
        let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (a, b) = futures::join!(smol::net::TcpStream::connect(addr), listener.accept());
        (a.unwrap(), b.unwrap().0)
    });
    let (client, d1) = Session::client(a, Config::default());
    let (server, d2) = Session::server(b, Config::default());
    ex.spawn(d1).detach();
    ex.spawn(d2).detach();
    smol::block_on(ex.run(f(client, server)));
}

#[test]
fn bulk_transfer_allocates_almost_nothing_per_frame() {
    with_pair(|client, server| async move {
        let mut s = client.open().await.unwrap();
        s.write_all(b"x").await.unwrap();
        let mut t = server.accept().await.unwrap();
        let reader = smol::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            let mut total = 0usize;
            while total < 1 + 2 * (64 << 20) {
                let n = t.read(&mut buf).await.unwrap();
                assert!(n > 0);
                total += n;
            }
            t
        });
        let chunk = vec![7u8; 64 * 1024];
        // Warm up: buffers reach their working size.
        for _ in 0..1024 {
            s.write_all(&chunk).await.unwrap();
        }
        let before = counting::allocs();
        for _ in 0..1024 {
            s.write_all(&chunk).await.unwrap();
        }
        s.flush().await.unwrap();
        let _t = reader.await;
        let frames = 1024; // 64 MiB in 64 KiB frames
        let per_frame = (counting::allocs() - before) as f64 / frames as f64;
        println!("allocations per 64 KiB frame, bulk: {per_frame:.3}");
        // Measured at about 1.1 with everything counted: the executor's and the reactor's own,
        // the write buffer regrown once per burst after the driver slept, and a receive buffer
        // regrown when the reader fell more than half a window behind. One allocation more per
        // frame anywhere on the path would cross the line.
        assert!(per_frame < 1.6, "{per_frame} allocations per frame");
    });
}

#[test]
fn request_response_allocates_almost_nothing_per_message() {
    with_pair(|client, server| async move {
        let mut s = client.open().await.unwrap();
        s.write_all(b"x").await.unwrap();
        let mut t = server.accept().await.unwrap();
        let echo = smol::spawn(async move {
            let mut buf = [0u8; 64];
            loop {
                if t.read_exact(&mut buf).await.is_err() {
                    return;
                }
                t.write_all(&buf).await.unwrap();
            }
        });
        let msg = [3u8; 64];
        let mut back = [0u8; 64];
        for _ in 0..1000 {
            s.write_all(&msg).await.unwrap();
            s.read_exact(&mut back).await.unwrap();
        }
        let before = counting::allocs();
        const ROUNDS: usize = 10_000;
        for _ in 0..ROUNDS {
            s.write_all(&msg).await.unwrap();
            s.read_exact(&mut back).await.unwrap();
        }
        let per_round = (counting::allocs() - before) as f64 / ROUNDS as f64;
        println!("allocations per 64-byte round trip: {per_round:.3}");
        drop(echo);
        // Measured at 2.16, all of them the smol reactor's (async-io): receive buffers come from
        // the session's pool. One more allocation per message on either side would cross the line.
        assert!(per_round < 3.0, "{per_round} allocations per round trip");
    });
}
