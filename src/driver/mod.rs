//! The driver: the one future that owns the transport.
//!
//! Each round it reads whatever the transport has into one reusable buffer and feeds every whole
//! frame to the core under a single lock (the rest of a large data frame's payload it reads
//! straight into the buffer the payload then waits in: [`Direct`]); then it takes everything
//! queued (frames of all streams, confirms, answers) as one buffer and writes it, flushing once
//! nothing more is queued. It takes the session's lock about once a round: the flushes that
//! streams wait for it reports at its next taking ([`Unreported`]), the round after a read
//! refills under the lock that handled the frames read, it returns without the lock unless it
//! has something to report or give back, and a poll that only its transport can have woken reads
//! first, so that the lock handling what it read is the poll's first ([`Driver::reads_first`]):
//! a message each way costs each driver two takings of the lock, one to write and one to read.
//!
//! It is woken only for what it would not find by itself: before it returns it looks for what
//! handles asked while it ran ([`Shared::driver_idles`]), and frames queued while it still has
//! bytes to write wait for the transport to take those ([`Inner::driver_returns`]). A few small
//! frames wait until the tasks its reading woke have run, so that what those queue leaves in the
//! same write ([`Driver::hand_offs`]). Writers waiting for room are woken a batch at a time; when
//! a batch leaves nothing to write, the driver gives it the executor's turn and looks again
//! ([`Core::room_rechecked`]), so a writer that never comes back holds nobody back.
//!
//! Reading never waits for writing: a peer that does not read cannot make this side stop
//! reading, so the two sides cannot deadlock. Only if the peer leaves an absurd amount of answers
//! unread (see [`CONTROL_SLACK`]) does reading pause until writing moves again.
//!
//! [`Core::room_rechecked`]: crate::core::Core::room_rechecked

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_io::{AsyncRead, AsyncWrite};

use crate::config::Config;
use crate::core::wire::Wire;
use crate::error::Error;
use crate::keepalive::KeepaliveTask;
use crate::shared::{Inner, Locked, Shared};
use crate::transport_wake::TransportWake;

mod read;

use read::Direct;

/// The read buffer: several maximal frames, so one read usually brings many frames.
const READ_BUFFER: usize = 256 * 1024;
/// The largest frame on the wire.
const MAX_FRAME_LEN: usize = Wire::MAX_FRAME;
/// Answers (FIN, CFM, VRM) queued beyond the write buffer before reading pauses.
const CONTROL_SLACK: usize = 1 << 20;
/// Write buffer capacity kept while the driver sleeps.
const KEEP_WRITE_BUFFER: usize = 64 * 1024;
/// Polls of the read side that may find nothing after a write failed as if the peer had closed,
/// before that write error is taken for a failure of the transport.
const READ_RETRIES_AFTER_WRITE_ERROR: u32 = 64;
/// Rounds in one poll before the driver yields to its executor.
const ROUNDS_PER_POLL: usize = 32;
/// A data frame's payload at least this long, not yet all read, is read straight into the buffer
/// it then waits in (see [`Direct`]). The fuzz targets' inputs are small: with the `fuzzing`
/// feature almost every payload takes this path, so that they explore it.
const DIRECT_PAYLOAD: usize = if cfg!(feature = "fuzzing") {
    32
} else {
    16 * 1024
};
/// What the read after a payload read straight into its buffer takes (see [`Driver::peek_next`]).
const HEADER_PEEK: usize = 64;
/// Times in a row the driver lets the tasks its reading woke run before it writes what is queued
/// (see [`Driver::hand_offs`]).
const MAX_HAND_OFFS: u8 = 2;
/// Queued output up to this size waits for those tasks; more is written at once.
const HAND_OFF_OUTPUT: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading and writing.
    Running,
    /// Writing out what is queued, then closing the transport.
    Closing,
    /// `shutdown`'s deadline passed: writing what the transport takes at once, then closing,
    /// waiting for nothing.
    Aborting,
    /// Returned.
    Done,
}

/// What one round of the driver came to.
#[derive(Debug)]
enum Round {
    /// Something moved: another round may find more to do.
    Busy,
    /// Nothing moved: every source of work has registered a wakeup.
    Idle,
    /// The session is over, cleanly.
    Closed,
    /// The session failed.
    Failed(Error),
    /// A few small frames are queued and tasks the driver woke have not run yet: let them run
    /// before writing, so that what they queue leaves in the same write (see
    /// [`Driver::hand_offs`]); or nothing is left to do but look again whether the writers just
    /// woken for room wrote (see [`crate::core::Core::room_recheck`]).
    HandOff,
}

/// What [`Driver::refill`] found.
#[derive(Debug, Clone, Copy, Default)]
struct Refill {
    /// Reading must pause: the peer leaves too many answers unread.
    paused: bool,
    /// Hand off to woken tasks before taking what is queued ([`Driver::hand_offs`]).
    hand_off: bool,
    /// Writers were woken for room with nothing to write: come back even if nothing else moves
    /// (see [`crate::core::Core::room_recheck`]).
    recheck_room: bool,
    /// Frames (or writers waiting for room) are left in the core for the next round to take, or
    /// this round began with bytes of the last still to write: the write side leaves its flush to
    /// that round, and another round follows.
    more: bool,
    /// A stream waits for a flush: flush even if more is queued.
    flush_waited: bool,
}

/// What the write side did.
#[derive(Debug, PartialEq, Eq)]
enum Wrote {
    /// Bytes moved (or a flush completed), and more may.
    Moved,
    /// Bytes moved (or a flush completed), and everything taken is written and flushed with
    /// nothing left queued: no other round is needed for writing (frames queued since ask the
    /// driver for one, [`Shared::driver_idles`]).
    Drained,
    /// Nothing could move now.
    Nothing,
    /// Everything was written and the transport is closed.
    Closed,
}

/// What the read side did.
#[derive(Debug)]
enum ReadOutcome {
    Moved,
    Nothing,
    /// The peer closed the transport; the session ends.
    Closed,
}

/// What the driver did that it has not told the shared state yet: it tells it the next time it
/// takes the lock, in the same acquisition (the lock's every taking and release costs about as
/// much as the work a small frame needs; a round trip of small messages took it some 30 times).
/// Bytes written and the flushed position the driver publishes at once, without the lock
/// ([`Shared::data_sent`], [`Shared::flushed_out`]).
#[derive(Debug, Default)]
struct Unreported {
    /// The output position the transport last flushed: the streams waiting for it are woken.
    flushed: Option<u64>,
    /// The core's output queue may hold a buffer larger than [`KEEP_WRITE_BUFFER`] (it got the
    /// driver's last write buffer): the driver gives it back before it returns.
    big_queue: bool,
}

impl Unreported {
    /// Locks the shared state for the driver and reports.
    fn lock<'a>(&mut self, shared: &'a Shared) -> Locked<'a> {
        let mut inner = shared.lock_driver();
        if let Some(pos) = self.flushed.take() {
            inner.flushed_to(pos);
        }
        inner
    }

    /// Whether the driver must take the lock before it returns: to wake streams waiting for a
    /// flush it made (`flush_waited`: the last refill found some), or to give back a large
    /// output buffer. Streams that began to wait after the last refill asked the driver, which
    /// then goes on instead of returning.
    fn before_return(&self, flush_waited: bool) -> bool {
        (self.flushed.is_some() && flush_waited) || self.big_queue
    }
}

/// The background future of a session: it owns the transport and moves every frame.
///
/// Spawn it on any executor (or poll it yourself). It resolves when the session ends: `Ok(())` when
/// it was closed cleanly (by [`Session::close`](crate::Session::close), by the peer, or because
/// every handle was dropped), or the error that ended it. Polled again after that, it returns the
/// same result. Dropping it ends the session: every stream then fails with
/// [`Error::SessionClosed`].
#[must_use = "the driver does nothing unless it is spawned or polled"]
#[derive(Debug)]
pub struct Driver<T> {
    io: T,
    shared: Arc<Shared>,
    phase: Phase,
    /// How the session ended, once it has.
    result: Option<Result<(), Error>>,
    rbuf: Vec<u8>,
    /// Unparsed data is `rbuf[rstart..rend]`, or, while a payload is read straight into its
    /// buffer, `direct` (then `rbuf` holds nothing unparsed).
    rstart: usize,
    rend: usize,
    direct: Option<Direct>,
    /// The core left a frame in `rbuf` that waits for the application to accept (xtaci's wire):
    /// reading paused, and once it may go on, what `rbuf` holds is handed over before any read.
    frames_held: bool,
    /// The last read completed a payload read straight into its buffer: the next read takes only
    /// [`HEADER_PEEK`] bytes, enough for the next frame's header, so that a large payload behind
    /// it is read straight into its buffer too rather than into the read buffer and copied out
    /// (a read more per large frame, a copy less).
    peek_next: bool,
    read_closed: bool,
    wbuf: Vec<u8>,
    wpos: usize,
    /// Output position at the end of `wbuf`.
    wbuf_end: u64,
    need_flush: bool,
    /// What the driver did that the shared state does not know yet.
    unreported: Unreported,
    /// Writing failed as if the peer had closed: reading decides whether it did.
    write_error: Option<io::Error>,
    /// Reads that found nothing since `write_error` was set.
    read_retries: u32,
    write_limit: usize,
    keepalive: Option<KeepaliveTask>,
    /// The waker the transport gets: whether its read side is worth polling.
    transport_wake: TransportWake,
    /// The next round's refill, done under the lock of the last round's reading
    /// ([`Driver::handle_frames`]); only within one poll.
    prefilled: Option<Refill>,
    /// This poll has refilled (the first refill of a poll marks the writers woken for room
    /// in the last as having had their turn).
    refilled: bool,
    /// The last poll returned with nothing left to do ([`Driver::reads_first`]).
    returned_idle: bool,
    /// What the last refill found (whether it paused reading, whether streams wait for a flush).
    last_refill: Refill,
    /// Hand-offs taken in a row for what is queued now. When a few small frames are queued (a
    /// FIN's answer, a response) and a reader or the acceptor that the driver's reading woke has
    /// not run yet, the driver yields (at most [`MAX_HAND_OFFS`] times) before it writes: those
    /// tasks usually queue frames at once (a stream's close, a request's response), and they then
    /// leave in one write rather than two. A stream per request otherwise costs its server a
    /// write (and its client a read) more. On xtaci's wire it yields also with nothing queued
    /// when a reader it woke was at the end of its stream: this side's FIN is its task's to send
    /// (on yddeng's the driver queues it itself), and returning first would cost a poll more
    /// when that FIN woke the driver again ([`Inner::woken_ending`]).
    ///
    /// The yield wakes the driver's own task, and must: a task woken through a waker left from
    /// an abandoned read may never take the lock, and nothing else would bring the driver back
    /// to write its own frames (a ping's answer, say). Under tokio the yield wakes an idle
    /// worker; waiting for the woken tasks' locks instead, bounded by a timer, was measured and
    /// gained nothing, since tokio runs at most three woken tasks in a row on one worker anyway
    /// (benches/README.md, "One worker").
    hand_offs: u8,
    /// When the session started: the core's clock counts from here.
    started: Instant,
    /// The core's clock for this poll: read once as the poll begins, not in every round (reading
    /// it was about 1% of a round trip's CPU; a poll's rounds take microseconds).
    now: Duration,
    /// The session's span (`tracing` feature): entered while the driver runs.
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl<T> Driver<T> {
    /// `side` ("client" or "server") names the session's span with the `tracing` feature.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn new(io: T, shared: Arc<Shared>, config: &Config, side: &'static str) -> Self {
        let keepalive = config
            .keepalive()
            .map(|k| KeepaliveTask::new(shared.clone(), k));
        Driver {
            io,
            shared,
            phase: Phase::Running,
            result: None,
            rbuf: Vec::new(),
            rstart: 0,
            rend: 0,
            direct: None,
            frames_held: false,
            peek_next: false,
            read_closed: false,
            wbuf: Vec::new(),
            wpos: 0,
            wbuf_end: 0,
            need_flush: false,
            unreported: Unreported::default(),
            write_error: None,
            read_retries: 0,
            write_limit: config.write_buffer() + CONTROL_SLACK,
            keepalive,
            transport_wake: TransportWake::new(),
            prefilled: None,
            refilled: false,
            returned_idle: false,
            last_refill: Refill::default(),
            hand_offs: 0,
            started: Instant::now(),
            now: Duration::ZERO,
            #[cfg(feature = "tracing")]
            span: tracing::debug_span!("ysmux_session", side),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Future for Driver<T> {
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        #[cfg(feature = "tracing")]
        let _span = this.span.clone().entered();
        if let Some(result) = &this.result {
            return Poll::Ready(result.clone());
        }
        if let Some(k) = &mut this.keepalive {
            if let Poll::Ready(e) = k.poll(cx) {
                this.keepalive = None;
                return Poll::Ready(this.finish(Some(e)));
            }
        }
        this.now = this.started.elapsed();
        this.transport_wake.register(cx.waker());
        let io_waker = this.transport_wake.waker().clone();
        let mut io_cx = Context::from_waker(&io_waker);
        this.refilled = false;
        let read_first = this.reads_first();
        for i in 0..ROUNDS_PER_POLL {
            match this.round(cx, &mut io_cx, read_first && i == 0) {
                Round::Busy => continue,
                Round::Idle => {
                    if this.unreported.before_return(this.last_refill.flush_waited) {
                        let mut inner = this.unreported.lock(&this.shared);
                        inner.core.shrink_output(KEEP_WRITE_BUFFER);
                        this.unreported.big_queue = false;
                    }
                    if !this.shared.driver_idles() {
                        continue; // asked for something since the round began
                    }
                    this.shrink_write_buffer();
                    this.returned_idle = true;
                    return Poll::Pending;
                }
                Round::Failed(e) => return Poll::Ready(this.finish(Some(e))),
                Round::Closed => return Poll::Ready(this.finish(None)),
                Round::HandOff => {
                    this.shared.driver_yields();
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            }
        }
        // Still busy: give the executor a turn, and come back.
        this.shared.driver_yields();
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Driver<T> {
    /// Whether this poll reads before it takes the lock: the last returned with nothing left to
    /// do, and nobody asked the driver for anything since. Then only its transport can have woken
    /// it, and the lock that handles what it reads refills too (registering this poll's waker:
    /// the read round is always followed by one that refills). The driver runs from here.
    fn reads_first(&mut self) -> bool {
        std::mem::take(&mut self.returned_idle)
            && self.wpos == self.wbuf.len()
            && !self.need_flush
            && !self.read_closed
            && !self.last_refill.paused
            && self.phase == Phase::Running
            && self.prefilled.is_none()
            && self.shared.driver_runs_unasked()
    }

    /// One round: refill the write buffer, write, flush, read and handle. `cx` is the driver's
    /// task, for the session's handles; `io_cx` is for the transport. `read_first`: the first
    /// round of a poll that only reads, its refill left to the lock that handles what it reads
    /// ([`Driver::reads_first`]); the next round refills (or takes that refill) as usual.
    fn round(&mut self, cx: &mut Context<'_>, io_cx: &mut Context<'_>, read_first: bool) -> Round {
        if read_first {
            return match self.read_side(cx, io_cx) {
                Err(e) => Round::Failed(e),
                Ok(ReadOutcome::Closed) => Round::Closed,
                Ok(_) => Round::Busy,
            };
        }
        let refill = self.refill(cx);
        if refill.hand_off {
            return Round::HandOff;
        }
        let wrote = match self.write_side(io_cx, &refill) {
            Ok(w) => w,
            Err(e) if peer_gone(&e) && !self.read_closed => {
                // The peer may have closed the connection after its last frames: stop writing and
                // read what is left; end-of-stream there makes this a clean end by the peer.
                self.write_error = Some(e);
                self.wpos = self.wbuf.len();
                self.need_flush = false;
                Wrote::Moved
            }
            Err(e) => return self.write_failed(e),
        };
        if wrote == Wrote::Closed {
            return Round::Closed;
        }
        let read = if self.read_closed || refill.paused {
            if self.read_closed && self.phase == Phase::Running {
                self.phase = Phase::Closing;
            }
            Ok(ReadOutcome::Nothing)
        } else {
            self.read_side(cx, io_cx)
        };
        match read {
            Err(e) => Round::Failed(e),
            Ok(ReadOutcome::Closed) => Round::Closed,
            Ok(ReadOutcome::Moved) => Round::Busy,
            Ok(ReadOutcome::Nothing) if wrote == Wrote::Moved => Round::Busy,
            Ok(ReadOutcome::Nothing) if refill.recheck_room => Round::HandOff,
            Ok(ReadOutcome::Nothing) => Round::Idle,
        }
    }

    /// Registers the driver's waker, starts closing if the session ended or lost its last handle,
    /// and takes what the core queued once the write buffer is empty. At the first refill of a
    /// poll, writers woken for room in the last have had their turn ([`Core::room_rechecked`]).
    ///
    /// [`Core::room_rechecked`]: crate::core::Core::room_rechecked
    fn refill(&mut self, cx: &mut Context<'_>) -> Refill {
        if let Some(refill) = self.prefilled.take() {
            if self.refilled {
                return refill; // made in this poll
            }
        }
        let shared = self.shared.clone();
        let mut inner = self.unreported.lock(&shared);
        self.refill_locked(&mut inner, cx)
    }

    /// [`Driver::refill`], under a lock already held.
    fn refill_locked(&mut self, inner: &mut Inner, cx: &mut Context<'_>) -> Refill {
        let first = !std::mem::replace(&mut self.refilled, true);
        inner.core.set_clock(self.now);
        if first {
            inner.core.room_rechecked();
        }
        if self.shared.start_round(inner, cx.waker()) && self.phase == Phase::Running {
            self.phase = Phase::Closing;
        }
        let returns = self.wpos < self.wbuf.len();
        if returns {
            inner.driver_returns();
        }
        if inner.aborting() {
            // `shutdown`'s deadline passed: write what the transport takes without waiting, then
            // close; whatever it does not take at once is dropped (`write_side`).
            self.phase = Phase::Aborting;
        }
        let refills = self.refills(inner);
        let hand_off = self.hands_off(inner);
        if hand_off {
            self.hand_offs += 1;
        } else if refills {
            self.hand_offs = 0;
            inner.forget_woken();
            self.wbuf.clear();
            self.wpos = 0;
            // The core keeps this buffer for what is queued next.
            self.unreported.big_queue |= self.wbuf.capacity() > KEEP_WRITE_BUFFER;
            inner.core.take_output(&mut self.wbuf);
            self.wbuf_end = inner.core.out_pos();
        }
        // Also when a stream holds more than its window unread on a wire without flow control
        // (xtaci v1): not reading the transport is the only backpressure left.
        let paused = inner.core.queued_len() > self.write_limit || inner.core.input_paused();
        self.last_refill = Refill {
            paused,
            hand_off,
            recheck_room: inner.core.room_recheck() && self.wpos == self.wbuf.len(),
            more: returns || inner.core.has_output() || inner.core.has_queue_waiters(),
            flush_waited: inner.core.has_flush_waiters(),
        };
        self.last_refill
    }

    /// The write buffer is all written and the core has frames to take (or writers waiting for
    /// room, which taking wakes).
    fn refills(&self, inner: &Inner) -> bool {
        self.wpos == self.wbuf.len() && (inner.core.has_output() || inner.core.has_queue_waiters())
    }

    /// Whether to yield to the tasks the driver's reading woke before taking a few small frames
    /// ([`Driver::hand_offs`]).
    fn hands_off(&self, inner: &Inner) -> bool {
        (self.refills(inner) || (self.wpos == self.wbuf.len() && inner.woken_ending()))
            && self.hand_offs < MAX_HAND_OFFS
            && self.phase == Phase::Running
            && inner.woken_unrun()
            && !inner.core.has_flush_waiters()
            && inner.core.queued_len() <= HAND_OFF_OUTPUT
    }

    /// Writes what is in the write buffer; flushes once nothing more is queued, or at once when a
    /// stream waits for a flush (so a flush completes within about one write buffer of transport
    /// time, however busy other streams keep it); closes the transport when closing and
    /// everything is out.
    fn write_side(&mut self, cx: &mut Context<'_>, refill: &Refill) -> io::Result<Wrote> {
        if self.write_error.is_some() {
            self.wpos = self.wbuf.len(); // nothing more reaches the peer
            return Ok(Wrote::Nothing);
        }
        let mut moved = Wrote::Nothing;
        while self.wpos < self.wbuf.len() {
            match Pin::new(&mut self.io).poll_write(cx, &self.wbuf[self.wpos..]) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => {
                    trace_event!(debug, bytes = n, "frames out");
                    self.wpos += n;
                    self.shared.data_sent(n as u64);
                    self.need_flush = true;
                    moved = Wrote::Moved;
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => return Err(e),
                // Past `shutdown`'s deadline nothing is waited for: what the transport does not
                // take now is dropped with it.
                Poll::Pending if self.aborting() => return Ok(Wrote::Closed),
                Poll::Pending => return Ok(moved),
            }
        }
        if moved == Wrote::Nothing && !self.need_flush && self.phase == Phase::Running {
            // Nothing to write or flush. Frames queued since the refill asked the driver for
            // another round (`Shared::driver_idles`); a flush asked meanwhile is complete.
            return Ok(moved);
        }
        // As the refill found them: frames queued since ask for another round, and that round
        // flushes what this one did not.
        let Refill {
            more, flush_waited, ..
        } = *refill;
        if more && !flush_waited {
            return Ok(Wrote::Moved); // more to write: the next round takes it
        }
        if self.need_flush {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    self.need_flush = false;
                    self.shared.flushed_out(self.wbuf_end);
                    self.unreported.flushed = Some(self.wbuf_end);
                    moved = Wrote::Moved;
                }
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending if self.aborting() => return Ok(Wrote::Closed),
                Poll::Pending => return Ok(moved),
            }
        }
        if more {
            return Ok(Wrote::Moved);
        }
        if matches!(self.phase, Phase::Closing | Phase::Aborting) {
            // Closing leaves behind whatever is queued: look again, now.
            if self.unreported.lock(&self.shared).core.has_output() {
                return Ok(Wrote::Moved);
            }
            return match Pin::new(&mut self.io).poll_close(cx) {
                Poll::Ready(Ok(())) => Ok(Wrote::Closed),
                // Past `shutdown`'s deadline nothing is waited for: a transport that cannot close
                // now (a peer that does not read what closing writes) is dropped as it is.
                Poll::Ready(Err(_)) | Poll::Pending if self.aborting() => Ok(Wrote::Closed),
                // Everything was written and flushed; the peer closed its end first. Failing to
                // close ours loses nothing.
                Poll::Ready(Err(e)) if self.read_closed || peer_gone(&e) => Ok(Wrote::Closed),
                Poll::Ready(Err(e)) => Err(e),
                Poll::Pending => Ok(moved),
            };
        }
        Ok(Wrote::Drained)
    }

    /// Whether `shutdown`'s deadline passed: nothing is waited for any more.
    fn aborting(&self) -> bool {
        self.phase == Phase::Aborting
    }

    /// Going to sleep: give back the write buffer a burst grew (buffers shrink back when idle,
    /// the core's output queue too; the read buffer stays, since every wake needs it).
    fn shrink_write_buffer(&mut self) {
        if self.wpos == self.wbuf.len() && self.wbuf.capacity() > KEEP_WRITE_BUFFER {
            self.wbuf = Vec::new();
            self.wpos = 0;
        }
    }

    /// A write or flush failed. After the peer closed its end (we read end-of-stream), a peer-gone
    /// error only says it did not wait for our answers: the session ended cleanly, by the peer.
    fn write_failed(&self, e: io::Error) -> Round {
        if self.read_closed && peer_gone(&e) {
            Round::Closed
        } else {
            Round::Failed(e.into())
        }
    }
}

/// Errors that only say the peer closed the connection first.
fn peer_gone(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        NotConnected | BrokenPipe | ConnectionReset | ConnectionAborted
    )
}

impl<T> Driver<T> {
    /// Ends the session before it started (its config was invalid): the driver returns `error`.
    pub(crate) fn fail_at_start(&mut self, error: Error) {
        let _ = self.finish(Some(error));
    }

    /// Ends the session: records how, wakes everyone, and tells waiters the driver is done.
    fn finish(&mut self, error: Option<Error>) -> Result<(), Error> {
        self.phase = Phase::Done;
        let mut inner = self.unreported.lock(&self.shared);
        inner.core.set_clock(self.started.elapsed());
        let result = inner.driver_finished(error);
        drop(inner);
        self.shared.driver_yields();
        #[cfg(feature = "tracing")]
        match &result {
            Ok(()) => tracing::info!("session ended cleanly"),
            Err(e) => tracing::warn!(error = %e, "session failed"),
        }
        self.shared.driver_done.notify(usize::MAX);
        self.result = Some(result.clone());
        result
    }
}

impl<T> Drop for Driver<T> {
    fn drop(&mut self) {
        if self.phase != Phase::Done {
            let _ = self.finish(Some(Error::SessionClosed));
        }
    }
}
