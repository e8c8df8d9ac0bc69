//! Target: the fuzzer's bytes as the peer's whole byte stream into a real session (driver,
//! streams, pipe), on a single-threaded executor run until nothing can move.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures::executor::LocalPool;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use futures::task::LocalSpawnExt;
use ysmux::frame::{xtaci, MAX_PAYLOAD};
use ysmux::{Config, Protocol, Session};

/// Returns `Pending` once, waking itself: lets the other tasks run.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// A small deterministic generator for chunk sizes and choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const WINDOW: u32 = 4096;
/// How far a window may grow if the scripted peer agrees to window growth.
const MAX_WINDOW: u32 = 4 * WINDOW;
const BACKLOG: usize = 4;
/// Streams the application holds at once at most; more are dropped as soon as accepted.
const HELD: usize = 8;

/// The first byte chooses the harness's behaviour (side, chunking, whether the application
/// reads, echoes, and whether the peer closes the transport at the end; its top two bits the
/// protocol: yddeng's, xtaci v1, xtaci v2, or a detecting server); the rest is what the peer
/// sends. The session must end with an error or keep working, never panic or hang, and the
/// memory it holds must stay within the bound of its streams and windows.
pub fn session_bytes(data: &[u8]) {
    let Some((&flags, wire)) = data.split_first() else {
        return;
    };
    let wire = wire.to_vec();
    let client = flags & 1 != 0;
    let app_reads = flags & 2 != 0;
    let app_echoes = flags & 4 != 0;
    let peer_closes = flags & 8 != 0;
    let peer_reads_late = flags & 16 != 0;
    let app_opens = flags & 32 != 0;
    let protocol = match flags >> 6 {
        0 => Protocol::Yddeng,
        1 => Protocol::Xtaci1,
        2 => Protocol::Xtaci2,
        _ if client => Protocol::Yddeng,
        _ => Protocol::Detect,
    };

    let baseline = crate::reset_peak();
    {
        let config = Config::default()
            .with_window(WINDOW)
            .with_max_window(MAX_WINDOW)
            .with_accept_backlog(BACKLOG)
            .with_write_buffer(4096)
            .with_max_frame(1024)
            .with_protocol(protocol);
        config.validate().expect("valid config");
        let (ours, theirs) = ysmux::pipe();
        let (session, driver) = if client {
            Session::client(ours, config)
        } else {
            Session::server(ours, config)
        };
        let (mut peer_rx, mut peer_tx) = theirs.split();
        let mut pool = LocalPool::new();
        let sp = pool.spawner();
        let tasks = Rc::new(Cell::new(0usize));
        let driver_result = Rc::new(RefCell::new(None));
        let spawn = |f: Pin<Box<dyn Future<Output = ()>>>| {
            let tasks = tasks.clone();
            tasks.set(tasks.get() + 1);
            sp.spawn_local(async move {
                f.await;
                tasks.set(tasks.get() - 1);
            })
            .expect("spawn");
        };

        {
            let r = driver_result.clone();
            spawn(Box::pin(async move {
                *r.borrow_mut() = Some(driver.await);
            }));
        }
        // The peer's writer: the input in chunks of varying size, yielding in between.
        let writer_done = Rc::new(Cell::new(false));
        {
            let done = writer_done.clone();
            let mut rng = Rng(u64::from(flags) * 0x9E37_79B9 + 1);
            spawn(Box::pin(async move {
                let mut at = 0;
                while at < wire.len() {
                    let n = (1 + rng.next() % 600) as usize;
                    let end = (at + n).min(wire.len());
                    if peer_tx.write_all(&wire[at..end]).await.is_err() {
                        break; // the session closed the transport
                    }
                    at = end;
                    YieldNow(false).await;
                }
                if peer_closes {
                    let _ = peer_tx.close().await;
                }
                done.set(true);
                // Hold the write half open otherwise, until the end of the run.
                std::future::pending::<()>().await;
            }));
        }
        // The peer's reader: everything the session sends must be well-formed frames.
        {
            let done = writer_done.clone();
            let session = session.clone();
            spawn(Box::pin(async move {
                if peer_reads_late {
                    while !done.get() {
                        YieldNow(false).await;
                    }
                }
                let mut got = Vec::new();
                let mut buf = vec![0u8; 8192];
                loop {
                    match peer_rx.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                    // Check whole frames as they come, keep a partial one.
                    let at = whole_frames(session.protocol(), &got);
                    got.drain(..at);
                }
            }));
        }
        // The application: accepts, reads (or not), echoes (or not); opens a stream of its own.
        {
            let session = session.clone();
            let tasks2 = tasks.clone();
            let sp2 = sp.clone();
            let held = Rc::new(Cell::new(0usize));
            spawn(Box::pin(async move {
                if app_opens {
                    if let Ok(mut s) = session.open().await {
                        let _ = s.write_all(b"hello from the application").await;
                        held.set(held.get() + 1);
                        let h = held.clone();
                        tasks2.set(tasks2.get() + 1);
                        let t = tasks2.clone();
                        sp2.spawn_local(async move {
                            let mut buf = [0u8; 512];
                            while let Ok(n) = s.read(&mut buf).await {
                                if n == 0 {
                                    break;
                                }
                            }
                            h.set(h.get() - 1);
                            t.set(t.get() - 1);
                        })
                        .expect("spawn");
                    }
                }
                while let Ok(mut s) = session.accept().await {
                    if held.get() >= HELD {
                        continue; // dropped: closes it
                    }
                    held.set(held.get() + 1);
                    let h = held.clone();
                    let session = session.clone();
                    tasks2.set(tasks2.get() + 1);
                    let t = tasks2.clone();
                    sp2.spawn_local(async move {
                        if app_reads {
                            let mut buf = [0u8; 700];
                            loop {
                                match s.read(&mut buf).await {
                                    Ok(0) | Err(_) => break,
                                    Ok(n) => {
                                        if app_echoes && s.write_all(&buf[..n]).await.is_err() {
                                            break;
                                        }
                                    }
                                }
                            }
                        } else {
                            // Never reads: its data waits, within the window, until the end.
                            let _ = session.closed().await;
                        }
                        drop(s);
                        h.set(h.get() - 1);
                        t.set(t.get() - 1);
                    })
                    .expect("spawn");
                }
            }));
        }

        pool.run_until_stalled();
        let stalled_open = driver_result.borrow().is_none();
        if peer_closes && stalled_open {
            panic!("the peer closed the transport and the session did not end");
        }
        // Whatever state it is in, closing the session must end everything.
        {
            let session = session.clone();
            spawn(Box::pin(async move {
                let _ = session.close().await;
            }));
        }
        pool.run_until_stalled();
        assert!(
            driver_result.borrow().is_some(),
            "close() did not end the driver"
        );
        assert!(session.is_closed());
        // Only the peer's writer (parked on purpose) may be left.
        assert!(
            tasks.get() <= 1,
            "{} tasks hang after the session ended",
            tasks.get()
        );

        let peak = crate::peak_bytes().saturating_sub(baseline);
        // The fixed part: the driver's 256 KiB read buffer, the pipe's two 256 KiB directions, the
        // queues (write buffer plus 1 MiB of answers before reading pauses), each at most doubled
        // by growth; then per stream (at most one per 7 input bytes) its state and task, and for
        // the streams that may hold data, twice the largest window.
        let bound = (256 << 10)
            + 4 * (256 << 10)
            + 2 * ((1 << 20) + 4096 + (256 << 10))
            + data.len() / 7 * 2048
            + (BACKLOG + HELD + 1) * 2 * MAX_WINDOW as usize;
        assert!(peak <= bound, "peak memory {peak} beyond the bound {bound}");
        drop(pool);
        drop(session);
    }
    let leaked = crate::live_bytes().saturating_sub(baseline);
    assert!(
        leaked < 4096,
        "{leaked} bytes still allocated after the session and executor are gone"
    );
}

/// Checks the whole frames at the start of `got`, as the session's `protocol` sends them, and
/// returns the bytes they take (a partial frame at the end is left).
fn whole_frames(protocol: Protocol, got: &[u8]) -> usize {
    let mut at = 0;
    match protocol {
        Protocol::Xtaci1 | Protocol::Xtaci2 => {
            let version = if protocol == Protocol::Xtaci1 { 1 } else { 2 };
            while got.len() - at >= xtaci::HEADER_LEN {
                let head = got[at..at + xtaci::HEADER_LEN].try_into().unwrap();
                let h = xtaci::Header::decode(head, version)
                    .expect("the session sends only valid headers of its version");
                let len = xtaci::HEADER_LEN + usize::from(h.len);
                if got.len() - at < len {
                    break;
                }
                at += len;
            }
        }
        _ => {
            while got.len() - at >= 7 {
                let h = ysmux::frame::Header::decode(got[at..at + 7].try_into().unwrap())
                    .expect("the session sends only valid headers");
                assert!(h.len <= MAX_PAYLOAD || h.cmd != ysmux::frame::Cmd::Psh);
                if got.len() - at < 7 + h.payload_len() {
                    break;
                }
                at += 7 + h.payload_len();
            }
        }
    }
    at
}
