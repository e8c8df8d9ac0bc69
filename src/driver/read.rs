//! The driver's read side: what the transport has, fed to the core under one lock; a large data
//! frame's payload read straight into the buffer it then waits in ([`Direct`]); the transport's
//! end.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

use super::{
    peer_gone, Driver, Phase, ReadOutcome, DIRECT_PAYLOAD, HEADER_PEEK, MAX_FRAME_LEN, READ_BUFFER,
    READ_RETRIES_AFTER_WRITE_ERROR,
};
use crate::core::DataHead;
use crate::error::{Error, ProtocolError};
use crate::shared::Inner;

/// A data frame whose payload is being read straight into the buffer it then waits in for the
/// application ([`Core::partial_data`](crate::core::Core::partial_data)), saving its copy out of
/// the read buffer.
#[derive(Debug)]
pub(super) struct Direct {
    /// The frame's header.
    head: DataHead,
    payload: Vec<u8>,
    /// Bytes of `payload` read so far.
    filled: usize,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Driver<T> {
    /// Reads what the transport has and feeds every whole frame to the core; reads only when
    /// that may find something (see [`TransportWake`](crate::transport_wake::TransportWake)).
    pub(super) fn read_side(
        &mut self,
        cx: &mut Context<'_>,
        io_cx: &mut Context<'_>,
    ) -> Result<ReadOutcome, Error> {
        if std::mem::take(&mut self.frames_held) {
            // Reading may go on (the caller checked): first the frames the core left waiting.
            self.handle_frames(cx, 0)?;
            return Ok(ReadOutcome::Moved);
        }
        if !self.transport_wake.begin_read() {
            return Ok(ReadOutcome::Nothing);
        }
        let polled = match &mut self.direct {
            Some(d) => Pin::new(&mut self.io).poll_read(io_cx, &mut d.payload[d.filled..]),
            None => {
                if self.rbuf.is_empty() {
                    self.rbuf = vec![0; READ_BUFFER];
                }
                if self.rstart == self.rend {
                    self.rstart = 0;
                    self.rend = 0;
                } else if self.rbuf.len() - self.rstart < MAX_FRAME_LEN {
                    self.rbuf.copy_within(self.rstart..self.rend, 0);
                    self.rend -= self.rstart;
                    self.rstart = 0;
                }
                let end = if self.peek_next {
                    (self.rend + HEADER_PEEK).min(self.rbuf.len())
                } else {
                    self.rbuf.len()
                };
                Pin::new(&mut self.io).poll_read(io_cx, &mut self.rbuf[self.rend..end])
            }
        };
        match polled {
            Poll::Ready(Ok(0)) => self.peer_closed(),
            Poll::Ready(Ok(n)) => {
                self.transport_wake.read_again();
                self.handle_frames(cx, n)?;
                Ok(ReadOutcome::Moved)
            }
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {
                self.transport_wake.read_again();
                Ok(ReadOutcome::Moved)
            }
            // A reset after the peer closed every stream is how its clean close can arrive: a
            // socket closed with our answers unread in it resets the connection (a Unix socket
            // reports that in place of end-of-stream). Every frame it sent was read; nothing is
            // lost, so it is the peer's close. With a stream still open it is a failure.
            Poll::Ready(Err(e)) if peer_gone(&e) && self.finished_by_peer() => self.peer_closed(),
            Poll::Ready(Err(e)) if self.mid_frame() => Err(Error::lost_mid_frame(Some(e))),
            Poll::Ready(Err(e)) => Err(e.into()),
            // After a peer-gone write error, end-of-stream is readable at once if the peer
            // closed (a socket sees the peer's FIN before the reset that fails the write).
            // A transport may still say Pending a few times before it shows it; past that,
            // nothing to read means the transport failed under us.
            Poll::Pending => {
                if self.write_error.is_some() {
                    self.read_retries += 1;
                    if self.read_retries > READ_RETRIES_AFTER_WRITE_ERROR {
                        let e = self.write_error.take().expect("checked");
                        return Err(e.into());
                    }
                    self.transport_wake.read_again();
                    cx.waker().wake_by_ref();
                }
                Ok(ReadOutcome::Nothing)
            }
        }
    }

    /// Part of a frame was read, not all of it.
    pub(super) fn mid_frame(&self) -> bool {
        self.rstart != self.rend || self.direct.is_some()
    }

    /// No partial frame is buffered and the peer closed every stream it had with this side.
    pub(super) fn finished_by_peer(&self) -> bool {
        !self.mid_frame() && !self.shared.lock_driver().core.peer_may_send()
    }

    /// The transport reached end-of-stream.
    fn peer_closed(&mut self) -> Result<ReadOutcome, Error> {
        self.read_closed = true;
        if self.mid_frame() {
            return Err(Error::lost_mid_frame(None));
        }
        self.shared.lock_driver().transport_ended();
        self.phase = Phase::Closing;
        if self.write_error.is_some() {
            return Ok(ReadOutcome::Closed); // the peer closed first and did not wait for answers
        }
        Ok(ReadOutcome::Moved)
    }

    /// Feeds what was just read (`n` bytes; none when handing over frames the core left waiting)
    /// to the core, under one lock: the payload being read straight into its buffer once it is
    /// whole, or every whole frame in the read buffer, and then sets the payload of a large data
    /// frame left partial to be read straight into its own.
    /// Under the same lock it refills for the next round, which follows at once (the round that
    /// read is busy): the answers the frames called for are taken.
    fn handle_frames(&mut self, cx: &mut Context<'_>, n: usize) -> Result<(), Error> {
        let shared = self.shared.clone();
        let mut inner = self.unreported.lock(&shared);
        // This poll's time, also when it read before any refill set it ([`Driver::reads_first`]):
        // what arrives is timed by it (the handshake's round trip, window growth's periods).
        inner.core.set_clock(self.now);
        let handle = inner.data_received(n);
        let result = match &mut self.direct {
            Some(d) => {
                d.filled += n;
                if d.filled == d.payload.len() {
                    self.peek_next = true;
                    let d = self.direct.take().expect("checked");
                    inner.core.handle_data(d.head, d.payload, handle)
                } else {
                    Ok(())
                }
            }
            None => {
                self.peek_next = false;
                self.rend += n;
                self.handle_frames_locked(&mut inner, handle)
            }
        };
        self.frames_held = handle && inner.core.holds_frame();
        if result.is_ok() && handle && !self.frames_held {
            self.start_direct(&mut inner);
            self.frames_held = inner.core.holds_frame();
        }
        // Not when the next round would hand off to the tasks these frames woke: whether they have
        // run by then (they may, on another thread) is for that round to see.
        inner.collect_driver_events();
        if result.is_ok() && !self.hands_off(&inner) {
            self.prefilled = Some(self.refill_locked(&mut inner, cx));
        }
        drop(inner);
        result.map_err(Error::from)
    }

    /// `handle`: feed the frames to the core (after the session ended, they are only skipped).
    fn handle_frames_locked(
        &mut self,
        inner: &mut Inner,
        handle: bool,
    ) -> Result<(), ProtocolError> {
        let used = inner
            .core
            .handle_input(&self.rbuf[self.rstart..self.rend], handle)?;
        self.rstart += used;
        Ok(())
    }

    /// If what is left in the read buffer starts a data frame with a large payload not yet all
    /// read, the rest of that payload is read straight into the buffer it will wait in.
    fn start_direct(&mut self, inner: &mut Inner) {
        let left = &self.rbuf[self.rstart..self.rend];
        if self.direct.is_some() || left.is_empty() {
            return;
        }
        let Some(head) = inner.core.partial_data(left, DIRECT_PAYLOAD) else {
            return;
        };
        let mut payload = inner.core.payload_buffer(head.payload);
        let filled = left.len() - head.len;
        payload[..filled].copy_from_slice(&left[head.len..]);
        self.direct = Some(Direct {
            head,
            payload,
            filled,
        });
        self.rstart = self.rend;
    }
}
