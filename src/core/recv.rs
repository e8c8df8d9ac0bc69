//! Received data waiting for the application: a queue of chunks per stream, recycled through a
//! per-session pool of up to a window (and what windows have grown by).
//!
//! Each byte is copied in once (from the driver's read buffer; a large payload is read straight
//! into a chunk of its own instead: `core/direct.rs`) and out once (to the reader). A
//! queue of chunks never moves what it holds as it grows, unlike a ring buffer that doubles; an
//! idle stream holds nothing but one empty pointer; chunks and queues a stream has drained go back
//! to the session's pool, so a stream that keeps receiving does not allocate for each frame.
//!
//! What a stream's chunks hold in all stays within twice its window: no chunk is larger than half
//! the session's window ([`RecvPool::max_chunk`]), and only the first chunk (partly read) and the
//! last (partly filled) hold anything but unread bytes. Bytes are copied into the last chunk until
//! it is full, and a payload kept as it is, in a buffer exactly its length, is appended only after
//! a full chunk (else it is copied too).

use std::collections::VecDeque;

/// The capacity of a new chunk: room for a whole maximal frame, or for many small ones.
const CHUNK: usize = 64 * 1024;
/// A chunk smaller than this is not worth starting for a small payload: it gets this much.
const SMALL_CHUNK: usize = 4 * 1024;
/// What the pool keeps at most: chunks, their bytes (at least this much, and at least one window:
/// see [`RecvPool::new`]), and empty queues.
const POOL_CHUNKS: usize = 256;
const MIN_POOL_BYTES: usize = 256 * 1024;
const POOL_QUEUES: usize = 64;

/// A data frame's payload: in the driver's read buffer, to be copied, or read straight into a
/// buffer of its own (`RecvPool::payload_buffer`), to be kept as it is.
#[derive(Debug)]
pub(crate) enum Payload<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
}

impl Payload<'_> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Payload::Borrowed(d) => d.len(),
            Payload::Owned(b) => b.len(),
        }
    }
}

/// Received bytes: `buf[start..]` is unread.
#[derive(Debug)]
struct Chunk {
    buf: Vec<u8>,
    start: usize,
}

/// One stream's queue of chunks.
#[derive(Debug, Default)]
struct Queue {
    chunks: VecDeque<Chunk>,
    len: usize,
}

/// Chunks and queues drained by the session's streams, kept for reuse.
#[derive(Debug)]
pub(crate) struct RecvPool {
    /// The capacity of a new chunk, and of one for small payloads. No chunk in the pool or in a
    /// stream's queue is larger than `chunk`, half the window at most: see the module's doc.
    chunk: usize,
    small_chunk: usize,
    chunks: Vec<Vec<u8>>,
    bytes: usize,
    /// What `chunks` may hold in all: `base_bytes` plus what windows have grown by.
    max_bytes: usize,
    base_bytes: usize,
    // Boxed because `RecvBuf` holds them boxed: pooling the box saves its allocation too.
    #[allow(clippy::vec_box)]
    queues: Vec<Box<Queue>>,
}

impl RecvPool {
    /// A pool for a session whose streams have `window` bytes each. It keeps up to a window of
    /// drained chunks, and as much more as windows have grown ([`RecvPool::set_growth`]): a
    /// stream moving data fills its window and drains it again and again, and with less kept,
    /// every window's worth allocated the difference anew, which the allocator gave back to the
    /// system in between (with 256 KiB kept, a quarter of a one-stream transfer's time on loopback
    /// went to page faults).
    pub(crate) fn new(window: u32) -> Self {
        let window = window as usize;
        let chunk = CHUNK.min(window / 2).max(1);
        RecvPool {
            chunk,
            small_chunk: SMALL_CHUNK.min(chunk),
            chunks: Vec::new(),
            bytes: 0,
            max_bytes: window.max(MIN_POOL_BYTES),
            base_bytes: window.max(MIN_POOL_BYTES),
            queues: Vec::new(),
        }
    }

    /// The largest payload that may be read straight into a buffer of its own
    /// ([`RecvPool::payload_buffer`]); a larger one is copied into chunks.
    pub(crate) fn max_chunk(&self) -> usize {
        self.chunk
    }

    /// An empty chunk (never of capacity 0) for `wanted` more bytes, or the first part of them.
    fn chunk(&mut self, wanted: usize) -> Vec<u8> {
        match self.chunks.pop() {
            Some(mut c) => {
                self.bytes -= c.capacity();
                c.clear();
                c
            }
            None if wanted > self.small_chunk => Vec::with_capacity(self.chunk),
            None => Vec::with_capacity(self.small_chunk),
        }
    }

    /// A buffer of exactly `len` bytes (at most [`RecvPool::max_chunk`]) for a payload to be read
    /// into, with no room beyond them: whatever it holds is to be overwritten. A recycled chunk
    /// keeps the length it was filled to, so that one as long as `len` is not zeroed first.
    pub(crate) fn payload_buffer(&mut self, len: usize) -> Vec<u8> {
        debug_assert!(len <= self.chunk, "a payload larger than a chunk is copied");
        let mut c = match self.chunks.iter().rposition(|c| c.capacity() == len) {
            Some(i) => {
                let c = self.chunks.swap_remove(i);
                self.bytes -= c.capacity();
                c
            }
            None => Vec::with_capacity(len),
        };
        c.resize(len, 0);
        c
    }

    /// Takes back a payload nobody will read.
    pub(crate) fn recycle(&mut self, payload: Payload<'_>) {
        if let Payload::Owned(buf) = payload {
            self.put_chunk(buf);
        }
    }

    /// Keeps a drained chunk for reuse (with the length it was filled to: see
    /// [`RecvPool::payload_buffer`]).
    fn put_chunk(&mut self, c: Vec<u8>) {
        if (1..=self.chunk).contains(&c.capacity())
            && self.chunks.len() < POOL_CHUNKS
            && self.bytes + c.capacity() <= self.max_bytes
        {
            self.bytes += c.capacity();
            self.chunks.push(c);
        }
    }

    /// Windows have grown by `bytes` in all: the pool may keep that much more, and gives back what
    /// it holds beyond its new limit.
    pub(crate) fn set_growth(&mut self, bytes: usize) {
        self.max_bytes = self.base_bytes.saturating_add(bytes);
        while self.bytes > self.max_bytes {
            let Some(c) = self.chunks.pop() else { break };
            self.bytes -= c.capacity();
        }
    }

    fn queue(&mut self) -> Box<Queue> {
        self.queues.pop().unwrap_or_default()
    }

    fn put_queue(&mut self, q: Box<Queue>) {
        debug_assert!(q.chunks.is_empty() && q.len == 0);
        if self.queues.len() < POOL_QUEUES {
            self.queues.push(q);
        }
    }
}

/// Received bytes waiting for the application: nothing at all while empty (an idle stream pays one
/// pointer), chunks while data waits.
#[derive(Debug, Default)]
pub(crate) struct RecvBuf(Option<Box<Queue>>);

impl RecvBuf {
    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |q| q.len)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes allocated for this stream.
    pub(crate) fn capacity(&self) -> usize {
        self.0
            .as_ref()
            .map_or(0, |q| q.chunks.iter().map(|c| c.buf.capacity()).sum())
    }

    /// Drops everything buffered (the stream was closed: nobody will read it); the chunks go back
    /// to the pool.
    pub(crate) fn clear(&mut self, pool: &mut RecvPool) {
        if let Some(mut q) = self.0.take() {
            for c in q.chunks.drain(..) {
                pool.put_chunk(c.buf);
            }
            q.len = 0;
            pool.put_queue(q);
        }
    }

    /// Appends `data`: into the last chunk until it is full, then into new ones.
    pub(crate) fn extend(&mut self, mut data: &[u8], pool: &mut RecvPool) {
        if data.is_empty() {
            return;
        }
        let q = self.0.get_or_insert_with(|| pool.queue());
        q.len += data.len();
        if let Some(last) = q.chunks.back_mut() {
            let k = (last.buf.capacity() - last.buf.len()).min(data.len());
            last.buf.extend_from_slice(&data[..k]);
            data = &data[k..];
        }
        while !data.is_empty() {
            let mut buf = pool.chunk(data.len());
            let k = buf.capacity().min(data.len());
            buf.extend_from_slice(&data[..k]);
            data = &data[k..];
            q.chunks.push_back(Chunk { buf, start: 0 });
        }
    }

    /// Appends a payload (never empty): copied (see [`RecvBuf::extend`]), or, read into a buffer
    /// of its own, kept as it is after a full chunk (after one with room, it is copied into that
    /// room and on: the room would stay empty).
    pub(crate) fn append(&mut self, payload: Payload<'_>, pool: &mut RecvPool) {
        debug_assert!(payload.len() > 0, "an empty payload holds nothing to read");
        match payload {
            Payload::Borrowed(data) => self.extend(data, pool),
            Payload::Owned(buf) if self.back_room() > 0 || buf.capacity() > pool.chunk => {
                self.extend(&buf, pool);
                pool.put_chunk(buf);
            }
            Payload::Owned(buf) => {
                let q = self.0.get_or_insert_with(|| pool.queue());
                q.len += buf.len();
                q.chunks.push_back(Chunk { buf, start: 0 });
            }
        }
    }

    /// The room left in the last chunk.
    fn back_room(&self) -> usize {
        self.0
            .as_ref()
            .and_then(|q| q.chunks.back())
            .map_or(0, |c| c.buf.capacity() - c.buf.len())
    }

    /// Copies out as much as fits in `out`; drained chunks, and the queue once empty, go back to
    /// the pool.
    pub(crate) fn take(&mut self, out: &mut [u8], pool: &mut RecvPool) -> usize {
        let Some(q) = self.0.as_mut() else {
            return 0;
        };
        let mut n = 0;
        while n < out.len() {
            let Some(front) = q.chunks.front_mut() else {
                break;
            };
            let avail = &front.buf[front.start..];
            let k = avail.len().min(out.len() - n);
            out[n..n + k].copy_from_slice(&avail[..k]);
            front.start += k;
            n += k;
            if front.start == front.buf.len() {
                let done = q.chunks.pop_front().expect("front exists");
                pool.put_chunk(done.buf);
            }
        }
        q.len -= n;
        if q.len == 0 {
            let q = self.0.take().expect("checked");
            pool.put_queue(q);
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_comes_out_in_order_across_chunks() {
        let mut pool = RecvPool::new(512 * 1024);
        let mut r = RecvBuf::default();
        let mut want = Vec::new();
        for i in 0..200u32 {
            let piece: Vec<u8> = (0..(i * 977 % 70_000)).map(|j| (i + j) as u8).collect();
            r.extend(&piece, &mut pool);
            want.extend_from_slice(&piece);
        }
        assert_eq!(r.len(), want.len());
        let mut got = Vec::new();
        let mut buf = vec![0u8; 12_345];
        loop {
            let n = r.take(&mut buf, &mut pool);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, want);
        assert!(
            r.is_empty() && r.0.is_none(),
            "an empty buffer holds nothing"
        );
        assert!(pool.bytes <= pool.max_bytes && pool.chunks.len() <= POOL_CHUNKS);
    }

    #[test]
    fn small_payloads_share_a_chunk() {
        let mut pool = RecvPool::new(512 * 1024);
        let mut r = RecvBuf::default();
        for _ in 0..100 {
            r.extend(&[1u8; 10], &mut pool);
        }
        assert_eq!(r.0.as_ref().unwrap().chunks.len(), 1);
        assert_eq!(r.capacity(), SMALL_CHUNK);
    }

    /// A stream's chunks take at most twice its window, whatever sizes its payloads come in and
    /// however they are read. Before, with a window of 5,678 bytes, three 4 KiB chunks (one read
    /// but a byte, one full, one partly filled) held 12,288.
    #[test]
    fn a_streams_chunks_stay_within_twice_its_window() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |below: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % below as u64) as usize
        };
        for window in [1024, 4097, 5678, 12_000, 100_000, 300_000, 512 * 1024] {
            let mut pool = RecvPool::new(window as u32);
            let mut r = RecvBuf::default();
            let mut out = vec![0u8; window];
            for _ in 0..3_000 {
                let room = window - r.len();
                if room > 0 && next(3) > 0 {
                    let len = 1 + next(room.min(pool.max_chunk() * 2));
                    if len <= pool.max_chunk() && next(2) == 0 {
                        let buf = pool.payload_buffer(len);
                        r.append(Payload::Owned(buf), &mut pool);
                    } else {
                        r.extend(&out[..len], &mut pool);
                    }
                } else {
                    let want = 1 + next(window);
                    r.take(&mut out[..want], &mut pool);
                }
                assert!(
                    r.capacity() <= 2 * window,
                    "window {window}: {} bytes of chunks for {} unread",
                    r.capacity(),
                    r.len()
                );
            }
        }
    }

    #[test]
    fn a_window_of_no_whole_number_of_small_chunks_holds_no_more_than_twice_its_bytes() {
        let mut pool = RecvPool::new(5678);
        let mut r = RecvBuf::default();
        r.extend(&[1; 4096], &mut pool);
        r.take(&mut [0; 4095], &mut pool);
        r.extend(&[2; 4096], &mut pool);
        r.extend(&[3; 1581], &mut pool);
        assert_eq!(r.len(), 5678);
        assert!(r.capacity() <= 2 * 5678, "{}", r.capacity());
    }

    /// Puts `bytes` into `r` in 64 KiB frames.
    fn fill(r: &mut RecvBuf, pool: &mut RecvPool, bytes: usize) {
        let frame = vec![5u8; 64 * 1024];
        for _ in 0..bytes / frame.len() {
            r.extend(&frame, pool);
        }
    }

    /// Reads everything `r` holds.
    fn drain(r: &mut RecvBuf, pool: &mut RecvPool) {
        let mut out = vec![0u8; 64 * 1024];
        while r.take(&mut out, pool) > 0 {}
    }

    #[test]
    fn a_window_filled_and_drained_again_and_again_reuses_its_chunks() {
        let window = 512 * 1024;
        let mut pool = RecvPool::new(window as u32);
        let mut r = RecvBuf::default();
        for round in 0..3 {
            let pooled_before = pool.chunks.len();
            fill(&mut r, &mut pool, window);
            if round > 0 {
                assert_eq!(pooled_before, 8, "the whole window came back to the pool");
                assert!(
                    pool.chunks.is_empty(),
                    "and was taken from it: nothing new allocated"
                );
            }
            drain(&mut r, &mut pool);
        }
        assert_eq!(pool.bytes, window, "the pool keeps a window's worth");
    }

    #[test]
    fn the_pool_keeps_what_windows_grew_by_and_gives_it_back_when_they_shrink() {
        let window = 256 * 1024;
        let mut pool = RecvPool::new(window as u32);
        let mut r = RecvBuf::default();
        fill(&mut r, &mut pool, 4 * window);
        drain(&mut r, &mut pool);
        assert_eq!(pool.bytes, window, "the base: one window");
        pool.set_growth(3 * window);
        fill(&mut r, &mut pool, 4 * window);
        drain(&mut r, &mut pool);
        assert_eq!(
            pool.bytes,
            4 * window,
            "grown windows: what they grew by too"
        );
        pool.set_growth(window);
        assert_eq!(
            pool.bytes,
            2 * window,
            "shrunk: the excess is given back at once"
        );
        pool.set_growth(0);
        assert_eq!(pool.bytes, window);
        assert!(r.is_empty());
    }
}
