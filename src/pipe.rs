//! An in-memory, bounded, bidirectional byte pipe: a transport for tests, demos and in-process use.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures_io::{AsyncRead, AsyncWrite};

/// Bytes one direction of a [`pipe`] holds before its writer waits.
const PIPE_CAPACITY: usize = 256 * 1024;

#[derive(Debug, Default)]
struct Half {
    buf: VecDeque<u8>,
    /// The writing end closed: the reader sees end-of-stream once the buffer is drained.
    write_closed: bool,
    /// The reading end is gone: writes fail with `BrokenPipe`.
    read_closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

/// One end of an in-memory pipe made by [`pipe`]: `AsyncRead + AsyncWrite`.
#[derive(Debug)]
pub struct Pipe {
    /// What this end reads.
    rx: Arc<Mutex<Half>>,
    /// What this end writes.
    tx: Arc<Mutex<Half>>,
}

/// Two connected ends of an in-memory transport, each direction buffering up to 256 KiB.
///
/// Closing an end (`poll_close`) or dropping it makes the other end read end-of-stream; writing to
/// an end whose peer is dropped fails with `BrokenPipe`.
pub fn pipe() -> (Pipe, Pipe) {
    let ab = Arc::new(Mutex::new(Half::default()));
    let ba = Arc::new(Mutex::new(Half::default()));
    (
        Pipe {
            rx: ba.clone(),
            tx: ab.clone(),
        },
        Pipe { rx: ab, tx: ba },
    )
}

fn lock(h: &Mutex<Half>) -> std::sync::MutexGuard<'_, Half> {
    h.lock().unwrap_or_else(|p| p.into_inner())
}

impl AsyncRead for Pipe {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut h = lock(&self.rx);
        if h.buf.is_empty() {
            if h.write_closed {
                return Poll::Ready(Ok(0));
            }
            h.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let (a, b) = h.buf.as_slices();
        let n1 = a.len().min(buf.len());
        buf[..n1].copy_from_slice(&a[..n1]);
        let n2 = b.len().min(buf.len() - n1);
        buf[n1..n1 + n2].copy_from_slice(&b[..n2]);
        h.buf.drain(..n1 + n2);
        if h.buf.is_empty() && h.buf.capacity() > 64 * 1024 {
            h.buf = VecDeque::new(); // shrink back after a burst
        }
        if let Some(w) = h.writer.take() {
            w.wake();
        }
        Poll::Ready(Ok(n1 + n2))
    }
}

impl AsyncWrite for Pipe {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut h = lock(&self.tx);
        if h.read_closed || h.write_closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let room = PIPE_CAPACITY - h.buf.len();
        if room == 0 {
            h.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(buf.len());
        h.buf.extend(&buf[..n]);
        if let Some(w) = h.reader.take() {
            w.wake();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut h = lock(&self.tx);
        h.write_closed = true;
        if let Some(w) = h.reader.take() {
            w.wake();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        let mut tx = lock(&self.tx);
        tx.write_closed = true;
        if let Some(w) = tx.reader.take() {
            w.wake();
        }
        drop(tx);
        let mut rx = lock(&self.rx);
        rx.read_closed = true;
        if let Some(w) = rx.writer.take() {
            w.wake();
        }
    }
}
