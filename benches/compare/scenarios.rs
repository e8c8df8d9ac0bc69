//! The scenarios of issue 5, each written once against `Side` (see peers.rs).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::{mpsc, oneshot};
use futures::future::{BoxFuture, RemoteHandle};
use futures::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use futures::StreamExt;

use crate::peers::{BoxW, Side};
use crate::rt::{BoxFio, Spawner};

pub const CHUNK: usize = 64 * 1024;

thread_local! {
    /// Where readers put what they count: one buffer per thread rather than one per stream, so that
    /// 1024 readers do not fault in 64 MiB of buffers (which would be the harness's cost, not the
    /// multiplexer's). A read borrows it only within one poll.
    static SINK: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; CHUNK]);
}

/// What every writer writes (never allocated per stream, for the same reason).
pub static DATA: [u8; CHUNK] = [0x5a; CHUNK];

/// Reads up to `max` bytes and forgets them.
pub async fn read_discard(s: &mut BoxFio, max: usize) -> io::Result<usize> {
    futures::future::poll_fn(|cx| {
        SINK.with(|b| {
            let mut b = b.borrow_mut();
            let n = max.min(b.len());
            Pin::new(&mut *s).poll_read(cx, &mut b[..n])
        })
    })
    .await
}

/// Reads exactly `n` bytes (counting them, not checking them), publishing the count to
/// `progress`, then hands the stream back so that it stays open until the run ends (closing, or
/// tokio-yamux's reset on drop, cannot cut anything).
async fn read_count(mut s: BoxFio, n: u64, progress: Option<Arc<AtomicU64>>) -> io::Result<BoxFio> {
    let mut got = 0u64;
    while got < n {
        let want = CHUNK.min((n - got) as usize);
        match read_discard(&mut s, want).await? {
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("eof after {got} of {n} bytes"),
                ))
            }
            k => got += k as u64,
        }
        if let Some(p) = &progress {
            p.store(got, Ordering::Relaxed);
        }
    }
    Ok(s)
}

/// Writes `n` bytes in 64 KiB writes, then hands the writer back (kept open, as above).
async fn write_n(mut w: BoxW, n: u64) -> io::Result<BoxW> {
    let mut left = n;
    while left > 0 {
        let k = CHUNK.min(left as usize);
        w.write_all(&DATA[..k]).await?;
        left -= k as u64;
    }
    w.flush().await?;
    Ok(w)
}

/// bulk: `streams` streams each moving `share` bytes client to server, at once. Timed from before
/// the first open until the server has counted every byte.
pub async fn bulk(
    sp: Spawner,
    c: Side,
    s: Side,
    streams: usize,
    share: u64,
) -> io::Result<Duration> {
    let start = Instant::now();
    let sp2 = sp.clone();
    let server = sp.spawn(async move {
        let mut readers = Vec::with_capacity(streams);
        for _ in 0..streams {
            let st = s.accept_reader().await?;
            readers.push(sp2.spawn(read_count(st, share, None)));
        }
        let mut kept = Vec::with_capacity(streams);
        for r in readers {
            kept.push(r.await?);
        }
        Ok::<_, io::Error>(kept)
    });
    let mut writers = Vec::with_capacity(streams);
    for _ in 0..streams {
        let st = c.open().await?;
        let w = c.write_half(&sp, st);
        writers.push(sp.spawn(write_n(w, share)));
    }
    let kept = server.await?;
    let elapsed = start.elapsed();
    for w in writers {
        w.await?;
    }
    drop(kept);
    Ok(elapsed)
}

/// wan: `streams` streams writing client to server for as long as they are let; the bytes the
/// server has read `duration` after the first open (window growth, where there is any, counts in
/// that time, as it does for a user).
pub async fn timed_bulk(
    sp: Spawner,
    c: Side,
    s: Side,
    streams: usize,
    duration: Duration,
) -> io::Result<u64> {
    let start = Instant::now();
    let total = Arc::new(AtomicU64::new(0));
    let counted = total.clone();
    let sp2 = sp.clone();
    let _server = sp.spawn(async move {
        let mut readers = Vec::with_capacity(streams);
        for _ in 0..streams {
            let mut st = s.accept_reader().await?;
            let counted = counted.clone();
            readers.push(sp2.spawn(async move {
                while let Ok(n @ 1..) = read_discard(&mut st, CHUNK).await {
                    counted.fetch_add(n as u64, Ordering::Relaxed);
                }
                st
            }));
        }
        Ok::<_, io::Error>(readers)
    });
    let mut writers = Vec::with_capacity(streams);
    for _ in 0..streams {
        let st = c.open().await?;
        let w = c.write_half(&sp, st);
        writers.push(sp.spawn(write_n(w, u64::MAX)));
    }
    sp.sleep(duration.saturating_sub(start.elapsed())).await;
    Ok(total.load(Ordering::Relaxed))
}

async fn echo(mut s: BoxFio, size: usize) {
    let mut buf = vec![0u8; size];
    loop {
        if s.read_exact(&mut buf).await.is_err() || s.write_all(&buf).await.is_err() {
            return;
        }
    }
}

/// rtt: one stream, `size`-byte messages echoed; the time of each round (after `warmup` rounds).
pub async fn rtt(
    sp: Spawner,
    c: Side,
    s: Side,
    size: usize,
    rounds: usize,
    warmup: usize,
) -> io::Result<Vec<Duration>> {
    let mut echoed = Echoed::open(&sp, &c, &s, size).await?;
    echoed.rounds(warmup).await?;
    echoed.rounds(rounds).await
}

/// One stream whose messages the other side echoes.
struct Echoed {
    st: BoxFio,
    msg: Vec<u8>,
    back: Vec<u8>,
    /// The server's echo task: dropped with this.
    _server: RemoteHandle<()>,
}

impl Echoed {
    async fn open(sp: &Spawner, c: &Side, s: &Side, size: usize) -> io::Result<Echoed> {
        let mut st = c.open().await?;
        let msg = vec![7u8; size];
        let mut back = vec![0u8; size];
        // The first message makes the stream known to the peer (yamux and tokio-yamux send SYN
        // with it).
        st.write_all(&msg).await?;
        let srv = s.accept().await?;
        let server = sp.spawn(echo(srv, size));
        st.read_exact(&mut back).await?;
        Ok(Echoed {
            st,
            msg,
            back,
            _server: server,
        })
    }

    /// `n` rounds: the time of each.
    async fn rounds(&mut self, n: usize) -> io::Result<Vec<Duration>> {
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            self.st.write_all(&self.msg).await?;
            self.st.read_exact(&mut self.back).await?;
            times.push(t.elapsed());
        }
        Ok(times)
    }
}

/// Work asked of a lane: so many rounds to settle in, uncounted, then so many counted, and where
/// the counted rounds' result goes.
pub type Block<T> = (usize, usize, oneshot::Sender<io::Result<T>>);

/// rtt in blocks (see compare/lanes.rs): one stream, `size`-byte messages echoed; each
/// block asked answered with the time of each of its rounds.
pub async fn rtt_lane(
    sp: Spawner,
    c: Side,
    s: Side,
    size: usize,
    blocks: mpsc::UnboundedReceiver<Block<Vec<Duration>>>,
) {
    match Echoed::open(&sp, &c, &s, size).await {
        Ok(mut echoed) => serve_blocks(blocks, &mut echoed, |e, n| Box::pin(e.rounds(n))).await,
        Err(e) => fail_first(blocks, e).await,
    }
}

/// churn in blocks (see compare/lanes.rs): open, write 1 byte, read its echo, close, in
/// sequence; each block asked answered with the time its cycles took. The server accepts in a
/// loop and answers each stream in its own task.
pub async fn churn_lane(
    sp: Spawner,
    mut c: Side,
    s: Side,
    blocks: mpsc::UnboundedReceiver<Block<Duration>>,
) {
    let sp2 = sp.clone();
    let _server = sp.spawn(async move {
        while let Ok(mut st) = s.accept().await {
            sp2.detach(async move {
                let mut b = [0u8; 1];
                if st.read_exact(&mut b).await.is_ok() && st.write_all(&b).await.is_ok() {
                    // Wait for the client's close, then drop.
                    while let Ok(1..) = st.read(&mut b).await {}
                }
            });
        }
    });
    serve_blocks(blocks, &mut c, |c, n| Box::pin(churn_cycles(c, n))).await
}

/// bulk in blocks (see compare/lanes.rs): each block asked moves that many bytes on each of
/// `streams` new streams, as [`bulk`] does, answered with the time it took.
pub async fn bulk_lane(
    sp: Spawner,
    c: Side,
    s: Side,
    streams: usize,
    blocks: mpsc::UnboundedReceiver<Block<Duration>>,
) {
    let mut sides = (sp, c, s, streams);
    serve_blocks(blocks, &mut sides, |(sp, c, s, streams), share| {
        Box::pin(bulk(
            sp.clone(),
            c.clone(),
            s.clone(),
            *streams,
            share as u64,
        ))
    })
    .await
}

/// `n` churn cycles in sequence: how long they took.
async fn churn_cycles(c: &Side, n: usize) -> io::Result<Duration> {
    let start = Instant::now();
    for _ in 0..n {
        let mut st = c.open().await?;
        st.write_all(&[1]).await?;
        let mut b = [0u8; 1];
        st.read_exact(&mut b).await?;
        st.close().await?;
    }
    Ok(start.elapsed())
}

/// Runs each block asked, `run(state, rounds)` for the rounds to settle in and then for the
/// counted ones, until the asking ends or a block fails.
async fn serve_blocks<S, T>(
    mut blocks: mpsc::UnboundedReceiver<Block<T>>,
    state: &mut S,
    run: for<'a> fn(&'a mut S, usize) -> BoxFuture<'a, io::Result<T>>,
) {
    while let Some((settle, n, done)) = blocks.next().await {
        // (No empty run: a bulk transfer of 0 bytes opens no stream on yamux's wire, which sends
        // its SYN with the first bytes, and would wait for ever.)
        let settled = if settle > 0 {
            run(state, settle).await.map(drop)
        } else {
            Ok(())
        };
        let r = match settled {
            Ok(()) => run(state, n).await,
            Err(e) => Err(e),
        };
        let failed = r.is_err();
        let _ = done.send(r);
        if failed {
            return;
        }
    }
}

/// A lane that could not start answers its first block with why.
async fn fail_first<T>(mut blocks: mpsc::UnboundedReceiver<Block<T>>, e: io::Error) {
    if let Some((_, _, done)) = blocks.next().await {
        let _ = done.send(Err(e));
    }
}

pub struct Stalled {
    /// The busy stream's transfer time alone (median).
    pub solo: Duration,
    /// The same beside the stalled stream (median).
    pub busy: Duration,
    /// The median of the pairs' busy/solo rate ratios.
    pub ratio: f64,
    /// Bytes the never-read stream's writer got accepted, at most (flow control should hold it to
    /// about one window).
    pub stalled_committed: u64,
}

/// stalled: `reps` pairs of transfers: a new stream moves `bytes` alone, timed from its open until
/// the server counted them; then a stream whose reader never reads gets a writer that writes as
/// long as it is let, and once that writer is stuck, another new stream moves `bytes` beside it;
/// then the stalled stream goes. The two transfers of a pair are measured back to back in one
/// session, so their ratio compares like with like: measured in separate sessions (a fresh runtime
/// each), it moved by more than the effect it measures. Each counted transfer directly follows an
/// uncounted one in the same state: the first transfer after the session idled for the stall to
/// settle (100 ms or more) runs slower over loopback TCP (benches/README.md), and that would be
/// counted against the busy stream alone.
pub async fn stalled(
    sp: Spawner,
    c: Side,
    s: Side,
    bytes: u64,
    reps: usize,
) -> io::Result<Stalled> {
    let (mut solo, mut busy, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut committed = 0;
    for _ in 0..reps {
        transfer(&sp, &c, &s, bytes).await?;
        let alone = transfer(&sp, &c, &s, bytes).await?;
        let stall = Stall::start(&sp, &c, &s).await?;
        transfer(&sp, &c, &s, bytes).await?;
        let beside = transfer(&sp, &c, &s, bytes).await?;
        committed = committed.max(stall.committed.load(Ordering::Relaxed));
        drop(stall);
        ratios.push(alone.as_secs_f64() / beside.as_secs_f64());
        solo.push(alone);
        busy.push(beside);
    }
    solo.sort();
    busy.sort();
    ratios.sort_by(f64::total_cmp);
    Ok(Stalled {
        solo: solo[reps / 2],
        busy: busy[reps / 2],
        ratio: ratios[reps / 2],
        stalled_committed: committed,
    })
}

/// A stream whose reader never reads, its writer writing as long as it is let; dropping this
/// drops both ends.
struct Stall {
    committed: Arc<AtomicU64>,
    _tasks: Vec<futures::future::RemoteHandle<()>>,
}

impl Stall {
    /// Opens the stream and returns once its writer is stuck: no progress over 50 ms (at most 2 s).
    async fn start(sp: &Spawner, c: &Side, s: &Side) -> io::Result<Stall> {
        let committed = Arc::new(AtomicU64::new(0));
        let st = c.open().await?;
        let mut w = c.write_half(sp, st);
        let count = committed.clone();
        let writer = sp.spawn(async move {
            while let Ok(n) = w.write(&DATA).await {
                if n == 0 {
                    break;
                }
                count.fetch_add(n as u64, Ordering::Relaxed);
            }
            drop(w);
        });
        let never_read = s.accept_reader().await?;
        let mut last = u64::MAX;
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            sp.sleep(Duration::from_millis(50)).await;
            let now = committed.load(Ordering::Relaxed);
            if now == last {
                break;
            }
            last = now;
        }
        let holder = sp.spawn(async move {
            let _hold = never_read;
            futures::future::pending::<()>().await;
        });
        Ok(Stall {
            committed,
            _tasks: vec![writer, holder],
        })
    }
}

/// One new stream moving `bytes`, timed from its open until the server counted them. The read
/// runs with a watchdog: a stream that makes no progress for 2 s is stuck (behind a stalled one:
/// head-of-line blocking), and the run fails then rather than at its timeout.
async fn transfer(sp: &Spawner, c: &Side, s: &Side, bytes: u64) -> io::Result<Duration> {
    let start = Instant::now();
    let st = c.open().await?;
    let w = c.write_half(sp, st);
    let writer = sp.spawn(write_n(w, bytes));
    let progress = Arc::new(AtomicU64::new(0));
    let p = progress.clone();
    let s = s.clone();
    let mut reader =
        sp.spawn(async move { read_count(s.accept_reader().await?, bytes, Some(p)).await });
    let mut seen = (0, Instant::now());
    let r = loop {
        if let Some(r) = sp.timeout(Duration::from_millis(100), &mut reader).await {
            break r?;
        }
        let now = progress.load(Ordering::Relaxed);
        if now != seen.0 {
            seen = (now, Instant::now());
        } else if seen.1.elapsed() > Duration::from_secs(2) {
            return Err(io::Error::other(format!(
                "stuck: no progress in 2 s, at {} of {} KiB",
                now >> 10,
                bytes >> 10
            )));
        }
    };
    let elapsed = start.elapsed();
    let w = writer.await?;
    drop((r, w));
    Ok(elapsed)
}

/// idle: opens `n` stream pairs, each exchanging one byte each way (so that every implementation
/// has announced and acknowledged it), and returns them all, held open and idle.
pub async fn idle(
    sp: Spawner,
    c: Side,
    s: Side,
    n: usize,
) -> io::Result<(Vec<BoxFio>, Vec<BoxFio>)> {
    let server = sp.spawn(async move {
        let mut held = Vec::with_capacity(n);
        for _ in 0..n {
            let mut st = s.accept().await?;
            let mut b = [0u8; 1];
            st.read_exact(&mut b).await?;
            st.write_all(&b).await?;
            held.push(st);
        }
        Ok::<_, io::Error>(held)
    });
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut st = c.open().await?;
        st.write_all(&[1]).await?;
        let mut b = [0u8; 1];
        st.read_exact(&mut b).await?;
        held.push(st);
    }
    let other = server.await?;
    Ok((held, other))
}
