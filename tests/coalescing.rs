//! What leaves in one write: a stream per request costs its server one write per request, on
//! every wire. The server's driver reads the client's close of the last stream, the next stream's
//! open and its request in one read; the close's answer (or, on xtaci's wire, the server's own
//! close, which its task sends only once it has read the end) and the response must leave
//! together, not as two writes (and two reads, two wakeups at the client).
//!
//! One thread runs both sessions (a `LocalExecutor`), so the order in which tasks run is the same
//! every time: the test counts writes, never times anything.

mod common;

use std::rc::Rc;

use common::{Counting, Counts};
use futures::io::{AsyncReadExt, AsyncWriteExt};
use ysmux::{pipe, Config, Protocol, Session};

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
