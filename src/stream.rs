//! A stream: a cheap handle onto one multiplexed byte stream.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures_io::{AsyncRead, AsyncWrite};

use crate::core::{Read, StreamKey, Write};
use crate::error::Error;
use crate::shared::{Inner, Shared};
pub use crate::split::{ReadHalf, WriteHalf};

/// One ordered, flow-controlled byte stream of a session.
///
/// Implements [`AsyncRead`] and [`AsyncWrite`].
///
/// # Close is a full close
/// yddeng's protocol has no half-close: [`poll_close`](AsyncWrite::poll_close) (or dropping the
/// stream) sends FIN and ends the stream in *both* directions. `poll_close` commits the FIN behind
/// everything written before and returns at once: like a write, it reaches the peer unless the
/// transport fails (call `flush` first to wait until everything is on the transport). So a client
/// must not close its stream to signal "end of request" and then wait for the response: frame
/// requests (length prefix, or a delimiter), read the response, then close. After the peer
/// closes, reads return what is buffered and then end-of-stream (`Ok(0)`), and writes fail with
/// `BrokenPipe`.
///
/// On xtaci/smux's wire ([`Config::with_protocol`](crate::Config::with_protocol)) `poll_close`
/// is a full close too, but [`Stream::close_write`] (and tokio's `poll_shutdown`) is a real
/// half-close: this side writes no more and reads on until the peer's FIN. And a FIN from the
/// peer only ends its sending: reads end, writes go on until this side closes.
///
/// # Errors
/// - after this side closed the stream: reads and writes fail with `NotConnected`
///   ([`Error::StreamClosed`]);
/// - after the session was closed by this side: `ConnectionAborted` ([`Error::SessionClosed`]);
/// - after the peer closed the stream: writes fail with `BrokenPipe` ([`Error::ClosedByPeer`]),
///   and so does a flush still waiting for data the peer's end will never take;
/// - after the peer's session ended without closing the stream (the transport closed with no FIN
///   for it): reads return what is buffered, then fail with `ConnectionReset`
///   ([`Error::StreamCut`]), so a cut-off stream is never mistaken for a complete one; writes
///   fail with the same error at once, and so does a flush still waiting for unsent data;
/// - after the transport failed or the peer broke the protocol: that error, on every stream.
///
/// # Writes are exact and cancel-safe
/// `poll_write` returning `Ready(Ok(n))` means exactly `n` bytes were committed, in whole frames,
/// and will be delivered unless the transport fails; `Pending` means nothing of that call was
/// committed. A write raced against a timeout therefore never duplicates or garbles data.
pub struct Stream {
    shared: Arc<Shared>,
    key: StreamKey,
    id: u16,
}

impl Stream {
    pub(crate) fn new(shared: Arc<Shared>, key: StreamKey, id: u16) -> Self {
        Stream { shared, key, id }
    }

    /// Locks the session's state for this stream's handle.
    fn lock(&self) -> crate::shared::Locked<'_> {
        self.shared.lock_stream(self.key)
    }

    /// The stream's id on the wire (ids are recycled once a stream is fully closed).
    pub fn id(&self) -> u16 {
        self.id
    }

    /// Splits the stream into an owned read half and an owned write half, each usable from its
    /// own task at the same time (no lock around the stream: each half has its own waker in the
    /// session). As the protocol has no half-close, closing the write half closes the whole stream
    /// in both directions (the read half then fails with `NotConnected`, as reads after a close
    /// do); dropping both halves closes it too. Dropping the read half alone changes nothing.
    /// [`ReadHalf::reunite`] puts them back together.
    ///
    /// ```
    /// # smol::block_on(async {
    /// use futures::{AsyncReadExt, AsyncWriteExt};
    /// # let (a, b) = ysmux::pipe();
    /// # let (client, d) = ysmux::Session::client(a, ysmux::Config::default());
    /// # smol::spawn(d).detach();
    /// # let (server, d) = ysmux::Session::server(b, ysmux::Config::default());
    /// # smol::spawn(d).detach();
    /// # smol::spawn(async move {
    /// #     let s = server.accept().await.unwrap();
    /// #     let (r, mut w) = s.into_split();
    /// #     futures::io::copy(r, &mut w).await.unwrap();
    /// # }).detach();
    /// let (mut rx, mut tx) = client.open().await?.into_split();
    /// let reader = smol::spawn(async move {
    ///     let mut buf = [0u8; 5];
    ///     rx.read_exact(&mut buf).await.map(|()| buf)
    /// });
    /// tx.write_all(b"hello").await?;
    /// assert_eq!(&reader.await?, b"hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        let s = Arc::new(self);
        (ReadHalf(s.clone()), WriteHalf(s))
    }
}

fn set_waker(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

impl Stream {
    fn register_read(&self, inner: &mut Inner, cx: &Context<'_>) {
        if let Some(w) = inner.core.waiters_mut(self.key) {
            set_waker(&mut w.read, cx.waker());
        }
    }

    fn register_write(&self, inner: &mut Inner, cx: &Context<'_>) {
        if let Some(w) = inner.core.waiters_mut(self.key) {
            set_waker(&mut w.write, cx.waker());
        }
    }

    /// Why the peer's side of this stream is gone: it closed the stream (FIN), or its session
    /// ended without a FIN for it (the stream was cut), which a write must not pass off as a
    /// close by the peer.
    fn why_closed_by_peer(&self, inner: &Inner) -> Error {
        match inner.core.stream(self.key).map(|s| s.state()) {
            Some(crate::core::State::Cut) => Error::StreamCut,
            Some(crate::core::State::Refused) => Error::Refused,
            _ => Error::ClosedByPeer,
        }
    }

    /// Ready once everything this stream queued is written and flushed.
    fn poll_flushed(&self, inner: &mut Inner, cx: &Context<'_>) -> Poll<io::Result<()>> {
        let pos = inner.core.stream(self.key).map_or(0, |s| s.last_queued);
        if self.shared.flushed() >= pos {
            return Poll::Ready(Ok(()));
        }
        if inner.is_driver_finished() {
            // What is left will not be written: the session failed or was closed on this side,
            // or the peer ended it cleanly first (the stream was cut, or the peer had closed it).
            let e = inner
                .session_error()
                .unwrap_or_else(|| self.why_closed_by_peer(inner));
            return Poll::Ready(Err(e.into()));
        }
        self.register_write(inner, cx);
        inner.core.wait_flush(self.key);
        inner.notify_driver();
        Poll::Pending
    }
}

// The io operations on a shared reference, so that the halves of a split stream use them too.
impl Stream {
    pub(crate) fn read_ref(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut inner = self.lock();
        if let Some(e) = inner.session_error() {
            return Poll::Ready(Err(e.into()));
        }
        match inner.core.read(self.key, buf) {
            Read::Data(n) => Poll::Ready(Ok(n)),
            Read::Eof => Poll::Ready(Ok(0)),
            // Cut short: by the session's end, or by the peer's refusal.
            Read::Cut => Poll::Ready(Err(self.why_closed_by_peer(&inner).into())),
            Read::ClosedLocally => Poll::Ready(Err(Error::StreamClosed.into())),
            Read::Empty => {
                self.register_read(&mut inner, cx);
                Poll::Pending
            }
        }
    }

    pub(crate) fn write_ref(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut inner = self.lock();
        if let Some(e) = inner.session_error() {
            return Poll::Ready(Err(e.into()));
        }
        let mut done = 0;
        let outcome = loop {
            match inner.core.write(self.key, &buf[done..]) {
                Write::Queued(n) => {
                    done += n;
                    if n == 0 || done == buf.len() {
                        break None;
                    }
                }
                other => break Some(other),
            }
        };
        if done > 0 {
            return Poll::Ready(Ok(done));
        }
        match outcome {
            None => Poll::Ready(Ok(0)),
            Some(Write::ClosedLocally) => Poll::Ready(Err(Error::StreamClosed.into())),
            Some(Write::ClosedByPeer) => Poll::Ready(Err(self.why_closed_by_peer(&inner).into())),
            Some(_) => {
                // No credit, or the queue is full: the core wakes us when either changes.
                self.register_write(&mut inner, cx);
                Poll::Pending
            }
        }
    }

    pub(crate) fn flush_ref(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut inner = self.lock();
        if let Some(e) = inner.session_error() {
            return Poll::Ready(Err(e.into()));
        }
        self.poll_flushed(&mut inner, cx)
    }

    pub(crate) fn close_ref(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut inner = self.lock();
        if let Some(e) = inner.session_error() {
            return match e {
                // Closing a stream of a closed session: it is closed.
                Error::SessionClosed => Poll::Ready(Ok(())),
                e => Poll::Ready(Err(e.into())),
            };
        }
        // Like a write, the FIN is committed: it follows everything written before and reaches
        // the peer unless the transport fails. Waiting for the transport here too would cost a
        // driver round trip per stream; `flush` first where that certainty is needed.
        let _ = cx;
        inner.core.close(self.key);
        Poll::Ready(Ok(()))
    }

    /// The half-close where the wire has one, the full close where it does not.
    pub(crate) fn close_write_ref(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        {
            let mut inner = self.lock();
            if let Some(e) = inner.session_error() {
                return match e {
                    Error::SessionClosed => Poll::Ready(Ok(())),
                    e => Poll::Ready(Err(e.into())),
                };
            }
            if inner.core.close_write(self.key) {
                return Poll::Ready(Ok(()));
            }
        }
        self.close_ref(cx)
    }

    /// Closes the writing half only, where the wire has a half-close (xtaci/smux: a FIN, after
    /// everything written): this side writes no more, and reads go on until the peer closes its
    /// half too (xtaci/smux v1.5.57 reads end-of-stream and may go on writing; v1.5.24 takes the
    /// FIN as the end of the stream). On yddeng's wire, which has no half-close, this is the full
    /// close of [`poll_close`](AsyncWrite::poll_close). tokio's `poll_shutdown` (the `tokio`
    /// feature) is this.
    pub fn close_write(&self) -> io::Result<()> {
        let waker = futures_util::task::noop_waker();
        match self.close_write_ref(&mut Context::from_waker(&waker)) {
            Poll::Ready(r) => r,
            Poll::Pending => unreachable!("closing commits at once"),
        }
    }
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.read_ref(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write_ref(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.flush_ref(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.close_ref(cx)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // One lock for both: a stream ended per request pays for one lock, not two.
        let mut inner = self.lock();
        inner.core.drop_handle(self.key);
        inner.release_handle();
    }
}
