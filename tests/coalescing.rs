//! What leaves in one write: a stream per request costs its server one write per request, on
//! every wire. The server's driver reads the client's close of the last stream, the next stream's
//! open and its request in one read; the close's answer (or, on xtaci's wire, the server's own
//! close, which its task sends only once it has read the end) and the response must leave
//! together, not as two writes (and two reads, two wakeups at the client).
//!
//! One thread runs both sessions (a smol executor, or a tokio runtime with one worker), so the
//! order in which tasks run is the same every time: the test counts writes and, under tokio, the
//! server driver's polls; it never times anything.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use common::{wait, Counting, Counts, Ex};
use futures::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use ysmux::{pipe, Config, Protocol, Session, Stream};

const CYCLES: u64 = 300;

/// A future that counts its polls.
struct CountPolls<F> {
    inner: Pin<Box<F>>,
    polls: Arc<AtomicU64>,
}

impl<F: Future> Future for CountPolls<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.fetch_add(1, Ordering::Relaxed);
        self.inner.as_mut().poll(cx)
    }
}

/// What the server's side of `CYCLES` requests cost: its writes, and its driver's polls.
#[derive(Debug)]
struct ServerCost {
    writes: u64,
    driver_polls: u64,
}

/// Runs `CYCLES` requests of a stream each (open, 1 byte, its echo, close) against a server that
/// spawns a task per stream, every task on one thread: a smol executor, or a tokio runtime with
/// one worker (whose next-to-run slot orders the tasks as tokio does); returns what the server's
/// side cost.
fn server_cost(protocol: Protocol, on_tokio: bool) -> ServerCost {
    if on_tokio {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("tokio runtime");
        let ex = Ex::Tokio(rt.handle().clone());
        let task = ex.spawn(requests(ex.clone(), protocol));
        rt.block_on(task)
    } else {
        let ex = Arc::new(smol::Executor::new());
        smol::block_on(ex.run(requests(Ex::Smol(ex.clone()), protocol)))
    }
}

async fn requests(ex: Ex, protocol: Protocol) -> ServerCost {
    let (a, b) = pipe();
    let counts = Counts::default();
    let counted = Counting {
        io: b,
        counts: counts.clone(),
    };
    let config = Config::default().with_protocol(protocol);
    let (client, client_driver) = Session::client(a, config.clone());
    let (server, server_driver) = Session::server(counted, config);
    let polls = Arc::new(AtomicU64::new(0));
    ex.spawn(client_driver).detach();
    ex.spawn(CountPolls {
        inner: Box::pin(server_driver),
        polls: polls.clone(),
    })
    .detach();
    let ex2 = ex.clone();
    ex.spawn(async move {
        while let Ok(mut s) = server.accept().await {
            ex2.spawn(async move {
                let mut b = [0u8; 1];
                if s.read_exact(&mut b).await.is_ok() && s.write_all(&b).await.is_ok() {
                    while let Ok(1..) = s.read(&mut b).await {}
                }
            })
            .detach();
        }
    })
    .detach();
    // The first stream settles what opening costs once (on yddeng's wire, the offer and the
    // first grant): count from the second on.
    let mut before = (0, 0);
    for i in 0..=CYCLES {
        if i == 1 {
            before = (counts.writes(), polls.load(Ordering::Relaxed));
        }
        let mut s = client.open().await.expect("open");
        s.write_all(&[7]).await.expect("request");
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.expect("response");
        assert_eq!(b, [7]);
        s.close().await.expect("close");
    }
    ServerCost {
        writes: counts.writes() - before.0,
        driver_polls: polls.load(Ordering::Relaxed) - before.1,
    }
}

#[test]
fn a_stream_per_request_costs_its_server_one_write_per_request() {
    for protocol in [Protocol::Yddeng, Protocol::Xtaci1, Protocol::Xtaci2] {
        for on_tokio in [false, true] {
            let cost = server_cost(protocol, on_tokio);
            eprintln!("{protocol:?}, tokio {on_tokio}: {cost:?}");
            // Open credit grants (yddeng's wire) ride along; a write of their own now and then
            // is allowed for, a second write per request is not.
            assert!(
                cost.writes <= CYCLES + CYCLES / 10,
                "{protocol:?}: the server wrote {} times for {CYCLES} requests",
                cost.writes
            );
            // Under tokio the driver reads the request (and the last stream's close) in one
            // poll, hands off once and writes in the next. On xtaci's wire the FIN it owes comes
            // from the task that read the end, and the driver waits for it too rather than
            // returning first and being woken again for it.
            if on_tokio {
                assert!(
                    cost.driver_polls <= 2 * CYCLES + CYCLES / 10,
                    "{protocol:?}: the server's driver was polled {} times for {CYCLES} requests",
                    cost.driver_polls
                );
            }
        }
    }
}

/// The driver waits for the tasks its reading woke only so long: a reader it woke whose task never
/// runs again (it polled a read once and then went on to wait for something else for good) holds
/// back nothing another stream writes.
#[test]
fn a_woken_reader_that_never_runs_holds_nothing_back() {
    for protocol in [Protocol::Yddeng, Protocol::Xtaci1, Protocol::Xtaci2] {
        let ex = smol::LocalExecutor::new();
        let (a, b) = pipe();
        let config = Config::default().with_protocol(protocol);
        let (client, client_driver) = Session::client(a, config.clone());
        let (server, server_driver) = Session::server(b, config);
        ex.spawn(client_driver).detach();
        ex.spawn(server_driver).detach();
        smol::block_on(ex.run(async {
            let (mut ca, mut sa) = open_with(&client, &server, b"a").await;
            let mut one = [0u8; 1];
            // A read polled once, with a waker that wakes nobody: the driver will wake it, and it
            // never runs.
            let nobody = futures::task::noop_waker();
            let mut cx = Context::from_waker(&nobody);
            assert!(Pin::new(&mut sa).poll_read(&mut cx, &mut one).is_pending());
            ca.write_all(b"more").await.expect("write more on a");
            // Meanwhile a request on another stream, and its response.
            let (mut cb, mut sb) = open_with(&client, &server, b"ping").await;
            sb.write_all(b"pong").await.expect("response");
            let mut resp = [0u8; 4];
            wait("the response", cb.read_exact(&mut resp))
                .await
                .expect("response");
            assert_eq!(&resp, b"pong", "{protocol:?}");
            let mut more = [0u8; 4];
            wait("a's data", sa.read_exact(&mut more)).await.expect("a");
            assert_eq!(&more, b"more", "{protocol:?}");
        }));
    }
}

/// Opens a stream on `client` that carries `first`, and accepts it on `server`, which reads it.
async fn open_with(client: &Session, server: &Session, first: &[u8]) -> (Stream, Stream) {
    let mut c = client.open().await.expect("open");
    c.write_all(first).await.expect("write");
    let mut s = wait("accept", server.accept()).await.expect("accept");
    let mut got = vec![0u8; first.len()];
    wait("read", s.read_exact(&mut got)).await.expect("read");
    assert_eq!(got, first);
    (c, s)
}
