//! Fault injection (issue 4): a transport that trickles one byte at a time, stalls at random and
//! fails at a chosen byte; a peer that vanishes mid-frame; a dropped driver; a dropped session
//! handle; `close()` racing heavy writes. Nothing may hang (every wait is bounded), panic, or
//! corrupt data, and every failure must reach every stream promptly with a clear error.

mod faulty;

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use faulty::*;
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use smol::{Executor, Task};
use ysmux::{Config, Error, Session, Stream};

type Ex = Arc<Executor<'static>>;
type DriverTask = Task<Result<(), Error>>;

/// Runs one test on its own executor, bounded as a whole.
fn run<F, Fut>(test: F)
where
    F: FnOnce(Ex) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let ex: Ex = Arc::new(Executor::new());
    let fut = test(ex.clone());
    smol::block_on(ex.run(within(Duration::from_secs(60), "the whole test", fut)));
}

/// A small window and frames, so that confirms and splitting happen with little data.
fn small() -> Config {
    Config::default().with_window(4096).with_max_frame(1500)
}

fn start<A, B>(ex: &Ex, a: A, b: B, config: Config) -> (Session, DriverTask, Session, DriverTask)
where
    A: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (client, cd) = Session::client(a, config.clone());
    let (server, sd) = Session::server(b, config);
    (client, ex.spawn(cd), server, ex.spawn(sd))
}

/// Echoes everything read on `s` until end-of-stream or an error.
async fn echo(mut s: Stream) {
    let mut buf = vec![0u8; 3000];
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

fn serve_echo(ex: &Ex, server: Session) {
    let ex2 = ex.clone();
    ex.spawn(async move {
        while let Ok(s) = server.accept().await {
            ex2.spawn(echo(s)).detach();
        }
    })
    .detach();
}

/// The error of an operation that must fail.
fn err<T: std::fmt::Debug>(r: io::Result<T>, what: &str) -> io::Error {
    match r {
        Ok(v) => panic!("{what}: expected an error, got Ok({v:?})"),
        Err(e) => e,
    }
}

fn assert_injected(r: io::Result<impl std::fmt::Debug>, what: &str) {
    let e = err(r, what);
    assert!(
        is_injected(&e),
        "{what}: expected the injected transport error, got {e:?}"
    );
    assert_eq!(
        e.kind(),
        io::ErrorKind::ConnectionReset,
        "{what}: the transport's kind is kept"
    );
}

// ----- data intact over a transport that trickles and stalls -----

/// Six streams echo distinct data through transports that move one byte per call and stall a
/// third of the time, with a 4 KiB window (so confirms and frame splitting run all the while):
/// every byte comes back intact, and both sides end with no stream left.
#[test]
fn echo_is_intact_one_byte_at_a_time() {
    run(|ex| async move {
        let (a, b) = ysmux::pipe();
        let (a, b) = (
            Flaky::new(a, Plan::trickle(1)),
            Flaky::new(b, Plan::trickle(2)),
        );
        let (sa, sb) = (a.stats.clone(), b.stats.clone());
        let (client, cd, server, sd) = start(&ex, a, b, small());
        serve_echo(&ex, server.clone());

        const STREAMS: u64 = 6;
        const LEN: u64 = 6000;
        let mut tasks = Vec::new();
        for seed in 0..STREAMS {
            let client = client.clone();
            tasks.push(ex.spawn(async move {
                let mut s = client.open().await.expect("open");
                let mut at = 0;
                let mut step = 100 + seed as usize * 237;
                while at < LEN {
                    let n = step.min((LEN - at) as usize);
                    s.write_all(&chunk(seed, at, n)).await.expect("write");
                    let mut back = vec![0u8; n];
                    s.read_exact(&mut back).await.expect("read the echo");
                    verify(seed, at, &back, "echo");
                    at += n as u64;
                    step = step * 7 % 2900 + 1;
                }
                s.close().await.expect("close");
            }));
        }
        for t in tasks {
            prompt("a stream's echo over the trickling transport", t).await;
        }
        assert!(
            Stats::get(&sa.pendings) > 100 && Stats::get(&sb.pendings) > 100,
            "stalls were injected"
        );
        assert_eq!(Stats::get(&sa.largest), 1, "one byte at a time");
        assert_eq!(Stats::get(&sb.largest), 1, "one byte at a time");
        assert!(
            Stats::get(&sa.written) > 2 * STREAMS * LEN / 2,
            "the data went through the wrapper"
        );
        prompt("client close", client.close())
            .await
            .expect("clean close");
        prompt("client driver", cd)
            .await
            .expect("client driver ends cleanly");
        prompt("server driver", sd)
            .await
            .expect("server driver ends cleanly");
        assert_eq!(client.num_streams(), 0);
        assert_eq!(server.num_streams(), 0);
    });
}

// ----- a failure at a chosen byte reaches every stream -----

/// Where the injected failure is.
#[derive(Clone, Copy, Debug)]
enum Side {
    /// The client's transport fails to write its byte `n`.
    Write(u64),
    /// The client's transport fails to read its byte `n`.
    Read(u64),
}

/// Streams in every kind of wait when the client's transport fails: a heavy writer, a reader
/// with nothing to read, a writer out of credit, an accept, a flush; all return the transport's
/// error promptly, and so does every later operation. The server sees its peer gone.
fn failure_reaches_every_stream(side: Side) {
    run(move |ex| async move {
        let (a, b) = ysmux::pipe();
        let mut plan = Plan {
            seed: 7,
            pending_one_in: 5,
            max_chunk: 700,
            fail_read_at: None,
            fail_write_at: None,
        };
        match side {
            Side::Write(n) => plan.fail_write_at = Some(n),
            Side::Read(n) => plan.fail_read_at = Some(n),
        }
        let a = Flaky::new(a, plan);
        let stats = a.stats.clone();
        let (client, cd, server, sd) = start(&ex, a, b, small());

        // The server: stream 0 is drained (so the client writes heavily), stream 1 gets nothing,
        // stream 2 is never read (its writer runs out of credit), stream 3 is flooded towards the
        // client (so the client reads heavily).
        let drained = Arc::new(AtomicU64::new(0));
        let server_side = {
            let server = server.clone();
            let drained = drained.clone();
            let ex2 = ex.clone();
            ex.spawn(async move {
                let mut held = Vec::new();
                for i in 0..4 {
                    let Ok(mut s) = server.accept().await else {
                        break;
                    };
                    let drained = drained.clone();
                    match i {
                        0 => held.push(ex2.spawn(async move {
                            let mut buf = vec![0u8; 4096];
                            while let Ok(n) = s.read(&mut buf).await {
                                if n == 0 {
                                    break;
                                }
                                drained.fetch_add(n as u64, Ordering::SeqCst);
                            }
                        })),
                        3 => held.push(ex2.spawn(async move {
                            let data = chunk(3, 0, 1000);
                            while s.write_all(&data).await.is_ok() {}
                        })),
                        _ => held.push(ex2.spawn(async move {
                            // Holds the stream without reading until the session ends.
                            let mut one = [0u8; 1];
                            let _ = s.read(&mut one).await;
                            std::future::pending::<()>().await
                        })),
                    }
                }
                held
            })
        };

        let mut streams = Vec::new();
        for i in 0..4u8 {
            let mut s = client.open().await.expect("open");
            s.write_all(&[i]).await.expect("first byte");
            streams.push(s);
        }
        let [mut heavy, mut idle, mut stuck, mut flooded]: [Stream; 4] =
            streams.try_into().unwrap();
        // The server reads the first byte of streams 1 and 2 and then holds them.

        let heavy_writer = ex.spawn(async move {
            let data = chunk(0, 0, 2500);
            loop {
                if let Err(e) = heavy.write_all(&data).await {
                    return (heavy, e);
                }
            }
        });
        let idle_reader = ex.spawn(async move {
            let mut buf = [0u8; 16];
            let r = idle.read(&mut buf).await;
            (idle, r)
        });
        let stuck_writer = ex.spawn(async move {
            let data = chunk(2, 0, 1000);
            loop {
                if let Err(e) = stuck.write_all(&data).await {
                    return (stuck, e);
                }
            }
        });
        let flood_reader = ex.spawn(async move {
            let mut buf = vec![0u8; 2000];
            loop {
                match flooded.read(&mut buf).await {
                    Ok(0) => panic!("the flooded stream ended without an error"),
                    Ok(_) => {}
                    Err(e) => return (flooded, e),
                }
            }
        });
        let accepter = {
            let client = client.clone();
            ex.spawn(async move { client.accept().await.map(|_| ()) })
        };

        // Every waiter returns the transport's error.
        let (mut heavy, e) = prompt("the heavy writer", heavy_writer).await;
        assert_injected(Err::<(), _>(e), "heavy writer");
        let (mut idle, r) = prompt("the idle reader", idle_reader).await;
        assert_injected(r, "idle reader");
        let (mut stuck, e) = prompt("the writer out of credit", stuck_writer).await;
        assert_injected(Err::<(), _>(e), "writer out of credit");
        let (mut flooded, e) = prompt("the flooded reader", flood_reader).await;
        assert_injected(Err::<(), _>(e), "flooded reader");
        match prompt("the accept", accepter).await {
            Err(Error::Io(e) | Error::LostMidFrame(e)) => {
                assert!(e.to_string().contains(INJECTED), "accept: {e}")
            }
            other => panic!("accept: expected the transport error, got {other:?}"),
        }
        match prompt("the driver", cd).await {
            Err(Error::Io(e) | Error::LostMidFrame(e)) => {
                assert!(e.to_string().contains(INJECTED), "driver: {e}")
            }
            other => panic!("driver: expected the transport error, got {other:?}"),
        }
        assert!(Stats::get(&stats.faults) > 0);

        // And every later operation, at once.
        for (i, s) in [&mut heavy, &mut idle, &mut stuck, &mut flooded]
            .into_iter()
            .enumerate()
        {
            assert_injected(
                prompt("a later write", s.write(b"x")).await,
                &format!("later write {i}"),
            );
            assert_injected(
                prompt("a later read", s.read(&mut [0u8; 4])).await,
                &format!("later read {i}"),
            );
            assert_injected(
                prompt("a later flush", s.flush()).await,
                &format!("later flush {i}"),
            );
            assert_injected(
                prompt("a later close", s.close()).await,
                &format!("later close {i}"),
            );
        }
        match prompt("a later open", client.open()).await {
            Err(Error::Io(e) | Error::LostMidFrame(e)) => {
                assert!(e.to_string().contains(INJECTED))
            }
            other => panic!("later open: expected the transport error, got {other:?}"),
        }
        match prompt("closed()", client.closed()).await {
            Err(Error::Io(e) | Error::LostMidFrame(e)) => {
                assert!(e.to_string().contains(INJECTED))
            }
            other => panic!("closed(): expected the transport error, got {other:?}"),
        }
        assert!(client.is_closed());

        // The server's transport saw its peer go (cleanly or mid-frame): its driver ends and its
        // accept fails.
        let r = prompt("the server driver", sd).await;
        assert!(
            matches!(r, Ok(()) | Err(Error::LostMidFrame(_))),
            "server driver: {r:?}"
        );
        assert!(prompt("a server accept", server.accept()).await.is_err());
        drop(prompt("the server side's tasks", server_side).await);
        if let Side::Write(n) = side {
            assert_eq!(
                Stats::get(&stats.written),
                n,
                "exactly the bytes before the fault went out"
            );
        }
    });
}

#[test]
fn write_failure_at_a_chosen_byte_fails_every_stream() {
    // Past the opening handshake, in the middle of the heavy writer's frames.
    failure_reaches_every_stream(Side::Write(30_001));
}

#[test]
fn read_failure_at_a_chosen_byte_fails_every_stream() {
    // In the middle of the flood the server sends.
    failure_reaches_every_stream(Side::Read(20_003));
}

#[test]
fn failure_at_the_very_first_byte() {
    run(|ex| async move {
        let (a, b) = ysmux::pipe();
        let plan = Plan {
            seed: 3,
            pending_one_in: 0,
            max_chunk: 1,
            fail_read_at: None,
            fail_write_at: Some(0),
        };
        let (client, cd, _server, sd) = start(&ex, Flaky::new(a, plan), b, small());
        let mut s = client
            .open()
            .await
            .expect("open is local: it succeeds before anything is sent");
        assert_injected(
            prompt("a write", s.write_all(b"hello"))
                .await
                .and(s.flush().await),
            "first write",
        );
        assert!(matches!(prompt("the driver", cd).await, Err(Error::Io(_))));
        prompt("the server driver", sd)
            .await
            .expect("the server saw a clean end: nothing was sent");
    });
}

// ----- the peer vanishes -----

/// A raw peer sends `bytes` and vanishes. The session's stream and accept fail with a transport
/// error (`LostMidFrame`) when it vanished mid-frame, and end cleanly when at a frame boundary.
async fn vanish_after(ex: &Ex, bytes: &[u8]) -> (Session, Result<(), Error>) {
    let (a, mut raw) = ysmux::pipe();
    let (server, driver) = Session::server(a, Config::default());
    let driver = ex.spawn(driver);
    raw.write_all(bytes).await.expect("raw write");
    drop(raw);
    let r = prompt("the driver after the peer vanished", driver).await;
    (server, r)
}

fn syn(sid: u16) -> Vec<u8> {
    let mut f = vec![0u8];
    f.extend(sid.to_le_bytes());
    f.extend(0u32.to_le_bytes());
    f
}

fn psh(sid: u16, data: &[u8]) -> Vec<u8> {
    let mut f = vec![2u8];
    f.extend(sid.to_le_bytes());
    f.extend((data.len() as u32).to_le_bytes());
    f.extend(data);
    f
}

#[test]
fn peer_vanishes_mid_frame() {
    run(|ex| async move {
        let mut whole = syn(5);
        whole.extend(psh(5, b"0123456789"));
        // Every cut inside a frame: mid-header of the SYN, mid-header and mid-payload of the PSH.
        let mut cuts: Vec<usize> = (1..7).chain(8..whole.len()).collect();
        // And inside a large one, whose payload the driver reads straight into its own buffer.
        let big = whole.len();
        whole.extend(psh(5, &[7u8; 40_000]));
        cuts.extend([1, 6, 7, 8, 100, 20_000, 40_006].map(|at| big + at));
        for cut in cuts {
            let (server, r) = vanish_after(&ex, &whole[..cut]).await;
            match &r {
                Err(e @ Error::LostMidFrame(io)) => {
                    assert_eq!(io.kind(), io::ErrorKind::UnexpectedEof, "cut at {cut}");
                    let msg = e.to_string();
                    assert!(msg.contains("connection lost mid-frame"), "{msg}");
                }
                _ => panic!("cut at {cut}: the driver reports the lost connection, got {r:?}"),
            }
            match prompt("accept after the loss", server.accept()).await {
                Err(Error::LostMidFrame(_)) => {}
                other => panic!(
                    "cut at {cut}: accept: expected LostMidFrame, got {:?}",
                    other.map(|s| s.id())
                ),
            }
            let e = io::Error::from(server.open().await.expect_err("open after the loss"));
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "cut at {cut}: {e}");
            assert_eq!(
                server.stats().protocol_errors,
                0,
                "cut at {cut}: not the peer's fault"
            );
        }
    });
}

/// The peer vanishes at a frame boundary without closing its stream: the session ends cleanly,
/// the stream's data is still readable, and then reads fail (the stream was cut off: no FIN came,
/// so a clean end-of-stream would be a lie).
#[test]
fn peer_vanishes_at_a_frame_boundary() {
    run(|ex| async move {
        let mut whole = syn(5);
        whole.extend(psh(5, b"0123456789"));
        let (server, r) = vanish_after(&ex, &whole).await;
        r.expect("a clean end at a frame boundary");
        let mut s = prompt("accept", server.accept())
            .await
            .expect("the stream is still accepted");
        let mut got = [0u8; 10];
        prompt("read the buffered data", s.read_exact(&mut got))
            .await
            .expect("the data that arrived is still readable");
        assert_eq!(&got, b"0123456789");
        let e = err(
            prompt("read past the data", s.read(&mut [0u8; 4])).await,
            "read past the data",
        );
        assert_ne!(e.kind(), io::ErrorKind::UnexpectedEof, "{e:?}");
        // A write says the session ended, not that the peer closed the stream.
        let e = err(s.write(b"x").await, "write to a vanished peer");
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
        let msg = e.to_string();
        assert!(msg.contains("the session ended"), "{msg}");
        assert!(
            matches!(
                e.get_ref().and_then(|e| e.downcast_ref()),
                Some(Error::StreamCut)
            ),
            "{e:?}"
        );
    });
}

/// The peer ends its session cleanly (at a frame boundary) while a flush waits for this side's
/// data, which its full transport had not taken: the flush fails, saying why the data cannot
/// arrive: the stream was cut (no FIN from the peer), or the peer closed it (its FIN came first).
/// This once said `SessionClosed` ("closed by this side") for both.
#[test]
fn a_flush_waiting_when_the_peer_ends_says_why() {
    run(|ex| async move {
        for (peer_closed_it, want_kind) in [
            (false, io::ErrorKind::ConnectionReset),
            (true, io::ErrorKind::BrokenPipe),
        ] {
            let (a, mut raw) = ysmux::pipe();
            let (server, driver) = Session::server(a, Config::default());
            let driver = ex.spawn(driver);
            raw.write_all(&syn(5)).await.expect("raw write");
            let mut s = prompt("accept", server.accept()).await.expect("accepted");
            // More than the pipe takes (256 KiB) and within the window: the writes complete,
            // the flush cannot while nobody reads the raw end.
            prompt("write", s.write_all(&[7u8; 300 * 1024]))
                .await
                .expect("written");
            let flush = ex.spawn(async move {
                let r = s.flush().await;
                (s, r)
            });
            smol::Timer::after(Duration::from_millis(50)).await;
            assert!(
                !flush.is_finished(),
                "the flush waits for the full transport"
            );
            if peer_closed_it {
                let mut fin = syn(5);
                fin[0] = 1;
                raw.write_all(&fin).await.expect("raw FIN");
            }
            drop(raw);
            prompt("the driver", driver)
                .await
                .expect("the peer's clean end");
            let (_s, r) = prompt("the flush", flush).await;
            let e = err(r, "flush after the peer ended");
            assert_eq!(
                e.kind(),
                want_kind,
                "peer closed the stream: {peer_closed_it}: {e}"
            );
        }
    });
}

/// The transport fails (a reset) with part of a frame read: a transport error that carries the
/// reset, never a protocol violation by the peer.
#[test]
fn a_reset_mid_frame_is_a_transport_error() {
    run(|ex| async move {
        let mut whole = syn(5);
        whole.extend(psh(5, b"0123456789"));
        // Mid-header of the SYN, mid-header and mid-payload of the PSH.
        for cut in [3, 10, 17] {
            let (a, mut raw) = ysmux::pipe();
            let plan = Plan {
                seed: 1,
                pending_one_in: 0,
                max_chunk: 1 << 16,
                fail_read_at: Some(cut),
                fail_write_at: None,
            };
            let (server, driver) = Session::server(Flaky::new(a, plan), Config::default());
            let driver = ex.spawn(driver);
            raw.write_all(&whole).await.expect("raw write");
            let r = prompt("the driver after the reset", driver).await;
            match &r {
                Err(e @ Error::LostMidFrame(io)) => {
                    assert_eq!(io.kind(), io::ErrorKind::ConnectionReset, "cut at {cut}");
                    let msg = e.to_string();
                    assert!(msg.contains("connection lost mid-frame"), "{msg}");
                    assert!(msg.contains(INJECTED), "{msg}");
                }
                _ => panic!("cut at {cut}: expected LostMidFrame, got {r:?}"),
            }
            assert_eq!(server.stats().protocol_errors, 0, "cut at {cut}");
            drop(raw);
        }
    });
}

/// The peer closes its stream (FIN) and then vanishes: the data, then a clean end-of-stream.
#[test]
fn peer_closes_its_stream_then_vanishes() {
    run(|ex| async move {
        let mut whole = syn(5);
        whole.extend(psh(5, b"0123456789"));
        whole.extend([1, 5, 0, 0, 0, 0, 0]); // FIN(5)
        let (server, r) = vanish_after(&ex, &whole).await;
        r.expect("a clean end at a frame boundary");
        let mut s = prompt("accept", server.accept()).await.expect("accept");
        let mut got = Vec::new();
        prompt("read to end", s.read_to_end(&mut got))
            .await
            .expect("buffered data, then end-of-stream");
        assert_eq!(got, b"0123456789");
        let e = err(s.write(b"x").await, "write after FIN");
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    });
}

#[test]
fn peer_vanishes_while_streams_wait() {
    run(|ex| async move {
        let (a, b) = ysmux::pipe();
        let (client, cd) = Session::client(a, small());
        let cd = ex.spawn(cd);
        let (server, sd) = Session::server(b, small());
        let sd = ex.spawn(sd);
        let mut reader = client.open().await.unwrap();
        let mut writer = client.open().await.unwrap();
        reader.write_all(b"r").await.unwrap();
        // Out of credit: the server never reads.
        let w = ex.spawn(async move {
            let data = vec![9u8; 10_000];
            let r = writer.write_all(&data).await;
            (writer, r)
        });
        let r = ex.spawn(async move {
            let mut buf = [0u8; 8];
            let r = reader.read(&mut buf).await;
            (reader, r)
        });
        let _s1 = prompt("accept", server.accept()).await.unwrap();
        // The server's driver is dropped: its transport goes with it.
        smol::Timer::after(Duration::from_millis(20)).await;
        drop(sd);
        let (_reader, r) = prompt("the waiting reader", r).await;
        err(r, "a read waiting on a stream cut off without FIN");
        let (_writer, r) = prompt("the waiting writer", w).await;
        err(r, "a write waiting for credit from a vanished peer");
        prompt("the client driver", cd)
            .await
            .expect("the peer left at a frame boundary");
        let _ = server;
    });
}

// ----- the driver dropped, the session handle dropped -----

#[test]
fn driver_dropped_fails_every_waiter() {
    run(|ex| async move {
        let (a, b) = ysmux::pipe();
        let (client, cd, server, sd) = start(&ex, a, b, small());
        let mut reader = client.open().await.unwrap();
        let mut writer = client.open().await.unwrap();
        reader.write_all(b"r").await.unwrap();
        writer.write_all(b"w").await.unwrap();
        let mut peer_r = prompt("accept", server.accept()).await.unwrap();
        let mut peer_w = prompt("accept", server.accept()).await.unwrap();
        peer_r.write_all(b"buffered").await.unwrap(); // the server's stream gets data to keep
        let w = ex.spawn(async move {
            let data = vec![1u8; 20_000]; // beyond the window: waits for credit
            let r = writer.write_all(&data).await;
            (writer, r)
        });
        let rd = ex.spawn(async move {
            let mut buf = [0u8; 8];
            let mut n = 0;
            loop {
                match reader.read(&mut buf).await {
                    Ok(k) if k > 0 => n += k,
                    r => return (reader, n, r),
                }
            }
        });
        let acc = {
            let client = client.clone();
            ex.spawn(async move { client.accept().await.map(|_| ()) })
        };
        smol::Timer::after(Duration::from_millis(20)).await;
        drop(cd); // cancels the driver task: the future is dropped

        let aborted = |e: &io::Error| e.kind() == io::ErrorKind::ConnectionAborted;
        let (_w, wr) = prompt("the waiting writer", w).await;
        let e = err(wr, "writer");
        assert!(aborted(&e), "writer: {e:?}");
        let (_r, _n, r) = prompt("the waiting reader", rd).await;
        let e = err(r, "reader");
        assert!(aborted(&e), "reader: {e:?}");
        assert!(matches!(
            prompt("accept", acc).await,
            Err(Error::SessionClosed)
        ));
        assert!(matches!(client.open().await, Err(Error::SessionClosed)));
        assert!(matches!(
            prompt("closed()", client.closed()).await,
            Err(Error::SessionClosed)
        ));
        assert!(matches!(
            prompt("close()", client.close()).await,
            Err(Error::SessionClosed)
        ));

        // The server sees its peer gone: what it had is still readable, then an error (the stream
        // was cut off, not closed).
        let mut first = [0u8; 1];
        prompt("server read", peer_w.read_exact(&mut first))
            .await
            .expect("buffered data first");
        assert_eq!(first[0], b'w');
        let mut rest = Vec::new();
        let r = prompt("server read to the end", peer_w.read_to_end(&mut rest)).await;
        err(r, "a stream cut off by the peer's end");
        assert!(rest.iter().all(|&b| b == 1), "the writer's bytes, intact");
        err(peer_r.write(b"x").await, "server write to a vanished peer");
        prompt("the server driver", sd)
            .await
            .expect("clean end for the server");
    });
}

#[test]
fn session_handle_dropped_while_streams_live() {
    run(|ex| async move {
        let (a, b) = ysmux::pipe();
        let (a, b) = (
            Flaky::new(
                a,
                Plan {
                    max_chunk: 97,
                    ..Plan::trickle(11)
                },
            ),
            Flaky::new(b, Plan::trickle(12)),
        );
        let (client, cd, server, sd) = start(&ex, a, b, small());
        serve_echo(&ex, server.clone());
        let mut streams = Vec::new();
        for _ in 0..3 {
            streams.push(client.open().await.unwrap());
        }
        drop(client); // streams keep the session alive
        for (seed, s) in streams.iter_mut().enumerate() {
            let seed = seed as u64 + 100;
            let data = chunk(seed, 0, 9000);
            // Write and read back in steps, so the echo never waits on this side's window.
            for (i, part) in data.chunks(1000).enumerate() {
                prompt("write", s.write_all(part))
                    .await
                    .expect("write with the handle gone");
                let mut back = vec![0u8; part.len()];
                prompt("read", s.read_exact(&mut back))
                    .await
                    .expect("read with the handle gone");
                verify(
                    seed,
                    i as u64 * 1000,
                    &back,
                    "echo after the handle was dropped",
                );
            }
        }
        assert!(!cd.is_finished(), "the driver runs while streams live");
        drop(streams); // the last handles: the driver closes the session
        prompt("the client driver after the last handle", cd)
            .await
            .expect("clean close");
        prompt("the server driver", sd)
            .await
            .expect("the peer's close is a clean end");
        assert!(server.is_closed());
        assert_eq!(server.num_streams(), 0);
    });
}

// ----- close() racing heavy writes -----

/// Many streams write as fast as they can while `close()` is called: every writer stops promptly
/// with `SessionClosed` (or finished), `close()` returns `Ok`, and what the server received on
/// each stream is exactly a prefix of what was written, ending in end-of-stream or the session's
/// end: no hang, no panic, no corruption.
fn close_races_writes(pending_one_in: u64, max_chunk: usize) {
    run(move |ex| async move {
        let (a, b) = ysmux::pipe();
        let plan = |seed| Plan {
            seed,
            pending_one_in,
            max_chunk,
            fail_read_at: None,
            fail_write_at: None,
        };
        let (a, b) = (Flaky::new(a, plan(21)), Flaky::new(b, plan(22)));
        let config = Config::default()
            .with_window(16 * 1024)
            .with_max_frame(4096);
        let (client, cd, server, sd) = start(&ex, a, b, config);
        const STREAMS: u64 = 32;

        // The server reads every stream to its end, checking each byte.
        let received = Arc::new(AtomicU64::new(0));
        let reader_tasks = {
            let server = server.clone();
            let received = received.clone();
            let ex2 = ex.clone();
            ex.spawn(async move {
                let mut tasks = Vec::new();
                while let Ok(mut s) = server.accept().await {
                    let received = received.clone();
                    tasks.push(ex2.spawn(async move {
                        let mut head = [0u8; 1];
                        if s.read_exact(&mut head).await.is_err() {
                            return 0;
                        }
                        let seed = head[0] as u64;
                        let mut at = 0u64;
                        let mut buf = vec![0u8; 5000];
                        loop {
                            match s.read(&mut buf).await {
                                Ok(0) | Err(_) => return at,
                                Ok(n) => {
                                    verify(seed, at, &buf[..n], "data received while closing");
                                    at += n as u64;
                                    received.fetch_add(n as u64, Ordering::SeqCst);
                                }
                            }
                        }
                    }));
                }
                tasks
            })
        };

        let mut writers = Vec::new();
        for seed in 0..STREAMS {
            let client = client.clone();
            writers.push(ex.spawn(async move {
                let mut s = client.open().await.expect("open");
                s.write_all(&[seed as u8]).await.expect("the seed byte");
                let mut at = 0u64;
                let step = 1000 + seed as usize * 311;
                loop {
                    match s.write(&chunk(seed, at, step)).await {
                        Ok(n) => at += n as u64,
                        Err(e) => return (at, e),
                    }
                }
            }));
        }
        // Let the writers get going, then close in the middle of it.
        let goal = 200_000;
        while received.load(Ordering::SeqCst) < goal {
            within(
                Duration::from_secs(20),
                "some data to flow before the close",
                smol::Timer::after(Duration::from_millis(2)),
            )
            .await;
        }
        prompt("close() while writers write", client.close())
            .await
            .expect("close returns Ok");
        for w in writers {
            let (_, e) = prompt("a writer after close()", w).await;
            assert_eq!(
                e.kind(),
                io::ErrorKind::ConnectionAborted,
                "a writer after close(): {e:?}"
            );
        }
        prompt("the client driver", cd).await.expect("clean close");
        prompt("the server driver", sd)
            .await
            .expect("the peer's close is a clean end");
        let tasks = prompt("the server's accept loop ends", reader_tasks).await;
        assert_eq!(tasks.len() as u64, STREAMS, "the server saw every stream");
        for t in tasks {
            prompt("a server reader ends", t).await;
        }
        assert!(received.load(Ordering::SeqCst) >= goal);
    });
}

#[test]
fn close_races_heavy_writes() {
    close_races_writes(0, usize::MAX);
}

#[test]
fn close_races_heavy_writes_over_a_stalling_transport() {
    close_races_writes(4, 3000);
}

// ----- a clean close by the peer while this side still has answers to write -----

/// The client closes its session and drops its transport while the server still has FIN answers
/// to write: the server's write fails, but the peer's end-of-stream is already readable (as on a
/// socket, where the peer's FIN arrives before the reset that fails the write). The session was
/// closed cleanly by the peer, so the server's driver ends with `Ok(())` and its stream reads the
/// data the client sent, then end-of-stream (this once ended with `Io(BrokenPipe)`, the data lost
/// behind it). A write failure with nothing to read is a real failure instead: see
/// `write_failure_at_a_chosen_byte_fails_every_stream`.
#[test]
fn peer_close_is_a_clean_end_while_answers_are_unwritten() {
    run(|ex| async move {
        let (a, b) = ysmux::pipe();
        let (client, cd, server, sd) = start(&ex, a, b, small());
        let mut s = client.open().await.unwrap();
        s.write_all(b"last words").await.unwrap();
        s.flush().await.unwrap();
        let mut t = prompt("accept", server.accept()).await.unwrap();
        let mut first = [0u8; 4];
        t.read_exact(&mut first).await.unwrap();
        // The rest stays buffered on the server while the client closes everything.
        drop(s);
        prompt("client close", client.close())
            .await
            .expect("clean close");
        prompt("client driver", cd).await.expect("clean close");
        let r = prompt("the server driver", sd).await;
        assert!(
            r.is_ok(),
            "the server's driver after the peer's clean close: {r:?}"
        );
        let mut rest = Vec::new();
        prompt("read the rest", t.read_to_end(&mut rest))
            .await
            .expect("buffered data, then EOF");
        assert_eq!(rest, b" words");
    });
}

/// A peer's transport that brings `script`, then fails with a reset where end-of-stream would
/// be (as a Unix socket does when the peer closed it with our answers unread); what this side
/// writes is taken and dropped.
struct ResetAfter {
    script: Vec<u8>,
    pos: usize,
}

impl AsyncRead for ResetAfter {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<io::Result<usize>> {
        let rest = &self.script[self.pos..];
        if rest.is_empty() {
            return std::task::Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        std::task::Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for ResetAfter {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// The peer sends its data, closes its stream, and its transport then resets: the peer finished
/// everything it started, so the session ended cleanly (this once failed a session closed by
/// the peer over a Unix socket, one run in fifteen), and the stream reads its data, then
/// end-of-stream.
#[test]
fn a_reset_after_the_peer_closed_every_stream_is_its_close() {
    run(|ex| async move {
        let mut script = syn(5);
        script.extend(psh(5, b"0123456789"));
        script.extend([1, 5, 0, 0, 0, 0, 0]); // FIN(5)
        let (server, driver) = Session::server(ResetAfter { script, pos: 0 }, Config::default());
        let r = prompt("the driver after the reset", ex.spawn(driver)).await;
        r.expect("the peer closed everything first: a clean end");
        let mut s = prompt("accept", server.accept()).await.expect("accept");
        let mut got = Vec::new();
        prompt("read to end", s.read_to_end(&mut got))
            .await
            .expect("the data, then end-of-stream");
        assert_eq!(got, b"0123456789");
    });
}

/// The same reset while the peer's stream is still open is a failure: the driver reports it,
/// and so does the session (a failed session's unaccepted streams go with it).
#[test]
fn a_reset_while_a_stream_is_open_is_a_failure() {
    run(|ex| async move {
        let mut script = syn(5);
        script.extend(psh(5, b"0123456789"));
        let (server, driver) = Session::server(ResetAfter { script, pos: 0 }, Config::default());
        let r = prompt("the driver after the reset", ex.spawn(driver)).await;
        match r {
            Err(Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
            other => panic!("expected the reset, got {other:?}"),
        }
        let e = io::Error::from(
            prompt("accept", server.accept())
                .await
                .map(|s| s.id())
                .expect_err("the session failed"),
        );
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}");
    });
}
