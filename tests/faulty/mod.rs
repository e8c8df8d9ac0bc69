//! A transport wrapper that injects faults, and the bounded-wait helpers of `tests/faults.rs`.
//!
//! [`Flaky`] delivers reads and writes at most `max_chunk` bytes at a time (one by default), returns
//! `Pending` at random (seeded; it wakes itself, so nothing stalls), and fails for good at a chosen
//! byte of its read side or its write side.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::io::{AsyncRead, AsyncWrite};
use smol::future::FutureExt;
use smol::Timer;

/// What a [`Flaky`] transport does.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Seeds the random choices.
    pub seed: u64,
    /// Each read, write and flush returns `Pending` once in this many tries (0: never).
    pub pending_one_in: u64,
    /// The most bytes one read or write moves.
    pub max_chunk: usize,
    /// The read side fails once this many bytes have been read.
    pub fail_read_at: Option<u64>,
    /// The write side fails once this many bytes have been written.
    pub fail_write_at: Option<u64>,
}

impl Plan {
    /// One byte at a time, `Pending` once in three tries, never failing.
    pub fn trickle(seed: u64) -> Plan {
        Plan {
            seed,
            pending_one_in: 3,
            max_chunk: 1,
            fail_read_at: None,
            fail_write_at: None,
        }
    }
}

/// What a [`Flaky`] transport did, readable while it runs.
#[derive(Debug, Default)]
pub struct Stats {
    pub read: AtomicU64,
    pub written: AtomicU64,
    pub pendings: AtomicU64,
    /// The largest single read or write.
    pub largest: AtomicU64,
    pub faults: AtomicU64,
}

impl Stats {
    pub fn get(a: &AtomicU64) -> u64 {
        a.load(Ordering::SeqCst)
    }
}

/// The marker in the message of an injected error, so a test can tell it from any other.
pub const INJECTED: &str = "injected fault";

/// A transport that trickles, stalls and fails as its [`Plan`] says.
pub struct Flaky<T> {
    io: T,
    plan: Plan,
    rng: u64,
    read: u64,
    written: u64,
    broken_read: bool,
    broken_write: bool,
    pub stats: Arc<Stats>,
}

impl<T> Flaky<T> {
    pub fn new(io: T, plan: Plan) -> Self {
        Flaky {
            io,
            plan,
            rng: plan.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            read: 0,
            written: 0,
            broken_read: false,
            broken_write: false,
            stats: Arc::default(),
        }
    }

    /// Whether to return `Pending` this time (having woken the task, so it is polled again).
    fn stall(&mut self, cx: &Context<'_>) -> bool {
        if self.plan.pending_one_in == 0 {
            return false;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        if self.rng % self.plan.pending_one_in == 0 {
            self.stats.pendings.fetch_add(1, Ordering::SeqCst);
            cx.waker().wake_by_ref();
            true
        } else {
            false
        }
    }

    fn fault(&self, side: &str, at: u64) -> io::Error {
        self.stats.faults.fetch_add(1, Ordering::SeqCst);
        io::Error::new(
            io::ErrorKind::ConnectionReset,
            format!("{INJECTED}: {side} side at byte {at}"),
        )
    }

    fn note(&self, n: usize) {
        self.stats.largest.fetch_max(n as u64, Ordering::SeqCst);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Flaky<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.broken_read || this.plan.fail_read_at == Some(this.read) {
            this.broken_read = true;
            return Poll::Ready(Err(this.fault("read", this.read)));
        }
        if this.stall(cx) {
            return Poll::Pending;
        }
        let mut max = this.plan.max_chunk.min(buf.len());
        if let Some(at) = this.plan.fail_read_at {
            max = max.min((at - this.read) as usize);
        }
        let r = Pin::new(&mut this.io).poll_read(cx, &mut buf[..max]);
        if let Poll::Ready(Ok(n)) = r {
            this.read += n as u64;
            this.stats.read.fetch_add(n as u64, Ordering::SeqCst);
            this.note(n);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Flaky<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.broken_write || this.plan.fail_write_at == Some(this.written) {
            this.broken_write = true;
            return Poll::Ready(Err(this.fault("write", this.written)));
        }
        if this.stall(cx) {
            return Poll::Pending;
        }
        let mut max = this.plan.max_chunk.min(buf.len());
        if let Some(at) = this.plan.fail_write_at {
            max = max.min((at - this.written) as usize);
        }
        let r = Pin::new(&mut this.io).poll_write(cx, &buf[..max]);
        if let Poll::Ready(Ok(n)) = r {
            this.written += n as u64;
            this.stats.written.fetch_add(n as u64, Ordering::SeqCst);
            this.note(n);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.broken_write {
            return Poll::Ready(Err(this.fault("write", this.written)));
        }
        if this.stall(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.broken_write {
            return Poll::Ready(Err(this.fault("write", this.written)));
        }
        Pin::new(&mut this.io).poll_close(cx)
    }
}

/// Whether `e` is (or wraps, through `ysmux::Error::Io`) an error this module injected.
pub fn is_injected(e: &io::Error) -> bool {
    e.to_string().contains(INJECTED)
}

/// Awaits `fut`, failing the test with `what` if it takes longer than `limit`.
pub async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    fut.or(async {
        Timer::after(limit).await;
        panic!("timed out after {limit:?} waiting for: {what}")
    })
    .await
}

/// How long something that must happen "promptly" may take (generous: debug build, shared cores).
pub const PROMPT: Duration = Duration::from_secs(10);

/// Awaits `fut` for at most [`PROMPT`].
pub async fn prompt<T>(what: &str, fut: impl Future<Output = T>) -> T {
    within(PROMPT, what, fut).await
}

/// The byte at `offset` of stream `seed`'s data: position-dependent, distinct per stream.
pub fn pattern(seed: u64, offset: u64) -> u8 {
    let x = (offset / 8)
        .wrapping_add(seed.wrapping_mul(0xD1B5_4A32_D192_ED03))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x ^ (x >> 29)).to_le_bytes()[(offset % 8) as usize]
}

/// `len` bytes of stream `seed`'s data from `offset`.
pub fn chunk(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| pattern(seed, offset + i)).collect()
}

/// Panics unless `buf` is stream `seed`'s data at `offset`.
pub fn verify(seed: u64, offset: u64, buf: &[u8], what: &str) {
    for (i, &b) in buf.iter().enumerate() {
        let at = offset + i as u64;
        assert_eq!(
            b,
            pattern(seed, at),
            "{what}: wrong byte at offset {at} of stream {seed}"
        );
    }
}
