//! What leaves in one write: a stream per request costs its server one write per request, on
//! every wire. The server's driver reads the client's close of the last stream, the next stream's
//! open and its request in one read; the close's answer (or, on xtaci's wire, the server's own
//! close, which its task sends only once it has read the end) and the response must leave
//! together, not as two writes (and two reads, two wakeups at the client).
//!
//! One thread runs both sessions (a `LocalExecutor`), so the order in which tasks run is the same
//! every time: the test counts writes, never times anything.

mod common;

use std::pin::Pin;
use std::rc::Rc;
use std::task::Context;

use common::{wait, Counting, Counts};
use futures::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use ysmux::{pipe, Config, Protocol, Session, Stream};

const CYCLES: u64 = 300;

/// Runs `CYCLES` requests of a stream each (open, 1 byte, its echo, close) against a server that
/// spawns a task per stream; returns the server's writes.
fn server_writes(protocol: Protocol) -> u64 {
    let ex = Rc::new(smol::LocalExecutor::new());
    let (a, b) = pipe();
    let counts = Counts::default();
    let counted = Counting {
        io: b,
        counts: counts.clone(),
    };
    let config = Config::default().with_protocol(protocol);
    let (client, client_driver) = Session::client(a, config.clone());
    let (server, server_driver) = Session::server(counted, config);
    ex.spawn(client_driver).detach();
    ex.spawn(server_driver).detach();
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
    let before = smol::block_on(ex.run(async {
        // The first stream settles what opening costs once (on yddeng's wire, the offer and the
        // first grant): count from the second on.
        let mut before = 0;
        for i in 0..=CYCLES {
            if i == 1 {
                before = counts.writes();
            }
            let mut s = client.open().await.expect("open");
            s.write_all(&[7]).await.expect("request");
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await.expect("response");
            assert_eq!(b, [7]);
            s.close().await.expect("close");
        }
        before
    }));
    counts.writes() - before
}

#[test]
fn a_stream_per_request_costs_its_server_one_write_per_request() {
    for protocol in [Protocol::Yddeng, Protocol::Xtaci1, Protocol::Xtaci2] {
        let writes = server_writes(protocol);
        // Open credit grants (yddeng's wire) ride along; a write of their own now and then is
        // allowed for, a second write per request is not.
        assert!(
            writes <= CYCLES + CYCLES / 10,
            "{protocol:?}: the server wrote {writes} times for {CYCLES} requests"
        );
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
