//! The state that the session handle, the driver and the streams share, behind one lock.
//!
//! The protocol core ([`Core`]) holds every protocol rule; this module adds what the I/O shell
//! needs around it: who to wake, how the session ended, and the counters the keepalive and
//! `Session::ping` read. The session handle, the driver and the streams each depend on this module
//! and on none of the others.
//!
//! **Nobody is woken under the lock, and nobody can forget to wake.** [`Shared::lock`] returns a
//! [`Locked`] guard. Whoever holds it only changes state: the core records what changed as
//! events, the holder may ask for the driver. When the guard is dropped it turns the core's
//! events into wakeups (a stream's reader or writer, tasks waiting to accept, listeners waiting
//! to open, for a pong), asks the driver to run if a handle left frames queued for it, releases
//! the lock, and only then wakes. A woken task on another thread never contends for a lock still
//! held, a waker that re-enters the session cannot deadlock, and no call site has a wakeup of its
//! own to forget.
//!
//! **The driver is woken when it has something new to do, and only then.** Asked while it runs
//! (from the start of one of its rounds until it returns), it is not woken: it looks again before
//! it returns ([`Shared::driver_idles`]). Frames queued while it still has bytes to write wait
//! for the transport, which wakes it when it takes more ([`Inner::driver_returns`]). Otherwise
//! it is woken once, however many ask, until its next round. Whether it runs, was asked or was
//! woken is one atomic beside the lock ([`DriverState`]), so that the driver returns without
//! taking the lock again; asking goes through the guard's drop, like every wakeup.
//!
//! **Lock order.** This lock is the innermost of the crate: nothing else is locked while it is
//! held, and no user code (a waker, a timer, a connector) runs under it. A pool's lock
//! (`pool/state.rs`) may be held while this one is taken, never the reverse.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

use event_listener::Event as Notify;

use crate::acceptors::Acceptors;
use crate::core::{Core, Event, State, StreamKey};
use crate::error::Error;
use crate::stats::Stats;

mod driver_state;
mod lifecycle;
mod woken;

use driver_state::DriverState;
use lifecycle::{End, Lifecycle};
use woken::Woken;

/// The I/O shell's per-stream data inside the core: who to wake.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    pub(crate) read: Option<Waker>,
    pub(crate) write: Option<Waker>,
}

/// What the driver, the session handles and the streams share.
#[derive(Debug)]
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    /// Whether the driver runs, was asked for something, was woken.
    driver: DriverState,
    /// Bytes the driver wrote to the transport (kept here so that it counts them without the
    /// lock).
    bytes_out: AtomicU64,
    /// Output position known written and flushed: a stream whose bytes all lie before it has
    /// them flushed (the driver stores it when the transport flushed; the streams that wait for
    /// it are woken at its next taking of the lock, `driver/mod.rs`'s `Unreported`).
    flushed: AtomicU64,
    /// Notified when the driver has finished.
    pub(crate) driver_done: Notify,
    /// Notified when the answer to our VRM probe arrives, or the session ends.
    pub(crate) pong: Notify,
    /// Notified once per id released or reservation dropped (room to open one stream), and for
    /// everyone when the session ends.
    pub(crate) room: Notify,
    /// Notified when the last stream is forgotten (for `shutdown`), or the session ends.
    pub(crate) idle: Notify,
}

/// Wakeups recorded under the lock, run once it is released.
#[derive(Debug, Default)]
struct Deferred {
    wakers: Vec<Waker>,
    driver: Option<Waker>,
    pong: bool,
    /// Opens that may proceed.
    room: usize,
    idle: bool,
    /// The session ended: wake every listener.
    everyone: bool,
}

impl Deferred {
    fn is_empty(&self) -> bool {
        self.wakers.is_empty()
            && self.driver.is_none()
            && !self.pong
            && self.room == 0
            && !self.idle
            && !self.everyone
    }
}

/// The shared state; reached only through [`Locked`].
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) core: Core<Waiters>,
    life: Lifecycle,
    /// `shutdown`'s deadline passed: the driver drops what is queued and closes at once.
    abort: bool,
    driver_waker: Option<Waker>,
    /// Someone holding the lock asked the driver to run: the guard's drop asks it
    /// ([`DriverState::ask`]).
    driver_wanted: bool,
    /// This round of the driver began with bytes still to write: it takes the queue again
    /// without being woken for it ([`Inner::driver_returns`]).
    driver_returns: bool,
    /// Session handles plus stream handles: when none is left, the driver closes the session.
    handles: usize,
    /// Answers to our VRM probes received so far.
    pongs: u64,
    /// Reads from the transport that brought data: signs of life for the keepalive.
    received: u64,
    /// Bytes through the transport, the peer's protocol errors, and the last ping's round trip.
    bytes_in: u64,
    protocol_errors: u64,
    ping_sent: Option<Instant>,
    last_rtt: Option<Duration>,
    memory_budget: usize,
    /// The core's events, between taking them and turning them into wakeups.
    events: Vec<Event>,
    deferred: Deferred,
    /// Tasks waiting to accept: woken, all, when a stream arrives or the session ends.
    pub(crate) acceptors: Acceptors,
    /// A task has had to wait for room to open: from then on, room made notifies the listeners
    /// ([`Inner::room_waited`]).
    room_wanted: bool,
    /// Tasks the driver woke that have not taken the lock since: see [`Inner::woken_unrun`].
    woken: Woken,
}

impl Shared {
    /// Shared state around `core`, with one handle (the first session handle).
    pub(crate) fn new(core: Core<Waiters>, memory_budget: usize) -> Shared {
        Shared {
            inner: Mutex::new(Inner {
                core,
                life: Lifecycle::Running,
                abort: false,
                driver_waker: None,
                driver_wanted: false,
                driver_returns: false,
                handles: 1,
                pongs: 0,
                received: 0,
                bytes_in: 0,
                protocol_errors: 0,
                ping_sent: None,
                last_rtt: None,
                memory_budget,
                events: Vec::new(),
                deferred: Deferred::default(),
                acceptors: Acceptors::default(),
                room_wanted: false,
                woken: Woken::default(),
            }),
            driver: DriverState::default(),
            bytes_out: AtomicU64::new(0),
            flushed: AtomicU64::new(0),
            driver_done: Notify::new(),
            pong: Notify::new(),
            room: Notify::new(),
            idle: Notify::new(),
        }
    }

    /// Locks the state, for a session or stream handle. When the guard is dropped, what changed
    /// is woken, and the driver too if frames are queued for it.
    pub(crate) fn lock(&self) -> Locked<'_> {
        self.lock_as(false)
    }

    /// Locks the state for the handle of stream `key`, as [`Shared::lock`]: its task has run
    /// since the driver woke it, if it did.
    pub(crate) fn lock_stream(&self, key: StreamKey) -> Locked<'_> {
        let mut locked = self.lock_as(false);
        locked.woken.ran(key);
        locked
    }

    /// Locks the state, for the driver: as [`Shared::lock`], but never wakes the driver (it takes
    /// what is queued in its next round; waking its own task would only cost a poll, and under a
    /// work-stealing runtime push the reader it just woke out of the next-to-run slot).
    pub(crate) fn lock_driver(&self) -> Locked<'_> {
        self.lock_as(true)
    }

    fn lock_as(&self, driver: bool) -> Locked<'_> {
        // A panic while holding the lock cannot leave the core half-updated in a way that matters
        // more than losing the session; keep going rather than propagate the poison.
        let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        Locked {
            guard: Some(guard),
            shared: self,
            driver,
        }
    }

    /// The session's counters now.
    pub(crate) fn stats(&self) -> Stats {
        self.lock().stats(self.bytes_out.load(Ordering::Relaxed))
    }

    /// Output position known written and flushed ([`Shared::flushed_out`]).
    pub(crate) fn flushed(&self) -> u64 {
        self.flushed.load(Ordering::Acquire)
    }

    fn run(&self, mut d: Deferred) -> Vec<Waker> {
        if let Some(w) = d.driver.take() {
            w.wake();
        }
        for w in d.wakers.drain(..) {
            w.wake();
        }
        if d.everyone {
            self.room.notify(usize::MAX);
            self.pong.notify(usize::MAX);
            self.idle.notify(usize::MAX);
        } else {
            if d.pong {
                self.pong.notify(usize::MAX);
            }
            if d.room > 0 {
                // Additional: a listener notified before and not yet run must not absorb these.
                self.room.notify_additional(d.room);
            }
            if d.idle {
                self.idle.notify(usize::MAX);
            }
        }
        d.wakers
    }
}

/// The locked state. Dropping it releases the lock, then runs the wakeups recorded meanwhile.
#[derive(Debug)]
pub(crate) struct Locked<'a> {
    guard: Option<MutexGuard<'a, Inner>>,
    shared: &'a Shared,
    /// Held by the driver: frames left queued do not wake it.
    driver: bool,
}

impl Deref for Locked<'_> {
    type Target = Inner;
    #[inline]
    fn deref(&self) -> &Inner {
        self.guard.as_ref().expect("held until dropped")
    }
}

impl DerefMut for Locked<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Inner {
        self.guard.as_mut().expect("held until dropped")
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let mut guard = self.guard.take().expect("dropped once");
        if guard.core.has_events() {
            guard.collect_wakers(self.driver);
        }
        let asks = std::mem::take(&mut guard.driver_wanted)
            || (!self.driver
                && !guard.driver_returns
                && (guard.core.has_output() || guard.core.has_queue_waiters()));
        if asks && self.shared.driver.ask() {
            guard.deferred.driver = guard.driver_waker.clone();
        }
        if guard.deferred.is_empty() {
            return;
        }
        let deferred = std::mem::take(&mut guard.deferred);
        drop(guard);
        let spare = self.shared.run(deferred);
        // Give the wakers' buffer back, so that waking does not allocate each time; only if the
        // lock is free at once (never wait for it just for that).
        if spare.capacity() > 0 {
            if let Ok(mut guard) = self.shared.inner.try_lock() {
                if guard.deferred.wakers.capacity() == 0 {
                    guard.deferred.wakers = spare;
                }
            }
        }
    }
}

// ----- what the driver may do -----

impl Shared {
    /// Starts a driver round, under the lock (`inner`), before it takes what is queued: it runs,
    /// and what it was asked before is what this round takes. Returns whether the session must
    /// close ([`Inner::start_round`]).
    pub(crate) fn start_round(&self, inner: &mut Inner, waker: &Waker) -> bool {
        self.driver.round();
        inner.start_round(waker)
    }

    /// The driver's round found nothing to do. Returns whether it may return now: not if it was
    /// asked for something since the round began (it goes on instead); once it may, asking it
    /// wakes it again. Takes no lock.
    pub(crate) fn driver_idles(&self) -> bool {
        self.driver.idle()
    }

    /// The driver begins a poll without the lock, if nobody asked it for anything since it last
    /// returned: it runs from now (asks no longer wake it). Returns whether it did; if not, it
    /// starts its poll with a refill under the lock ([`Shared::start_round`]), as usual.
    pub(crate) fn driver_runs_unasked(&self) -> bool {
        self.driver.run_unasked()
    }

    /// The driver returns with its own wakeup set (it yields to the executor), or for good:
    /// asking it wakes it as when it idles.
    pub(crate) fn driver_yields(&self) {
        self.driver.stop();
    }

    /// The driver wrote `n` more bytes to the transport.
    pub(crate) fn data_sent(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }

    /// The transport flushed everything up to output position `pos`. The streams waiting for
    /// that are woken once the driver reports it under the lock ([`Inner::flushed_to`]).
    pub(crate) fn flushed_out(&self, pos: u64) {
        self.flushed.store(pos, Ordering::Release);
    }
}

impl Inner {
    /// Whether a reader or acceptor the driver's reading woke has not run since (has not taken
    /// the lock).
    pub(crate) fn woken_unrun(&self) -> bool {
        self.woken.unrun()
    }

    /// The tasks the driver woke had their turn: whatever they did not do yet, the driver no
    /// longer waits for.
    pub(crate) fn forget_woken(&mut self) {
        self.woken.forget();
    }

    /// Whether the driver's reading woke a reader at the end of its stream (xtaci: its close will
    /// queue a FIN): while the tasks it woke have not run ([`Inner::woken_unrun`]), worth a
    /// hand-off with nothing queued yet.
    pub(crate) fn woken_ending(&self) -> bool {
        self.woken.ending()
    }

    /// Starts a driver round: registers its waker and says whether the session must close (it
    /// ended, or its last handle is gone, in which case it is closed here, by this side).
    fn start_round(&mut self, waker: &Waker) -> bool {
        self.register_driver(waker);
        if self.life.end().is_some() {
            return true;
        }
        if self.handles == 0 {
            // Nobody can use the session any more: close it.
            self.life.end_with(End::Local);
            self.core.close_all();
            return true;
        }
        false
    }

    /// The driver starts a round with bytes of its last still to write: it takes the queue
    /// again without being woken (the write completes and another round follows, or the
    /// transport wakes it once it takes more), so frames queued meanwhile need not wake it.
    /// Only frames and waiting writers wait so: anything else that needs the driver (a
    /// shutdown's deadline, the last handle gone) still wakes it, since a transport that takes
    /// nothing more (a peer that stopped reading) would never wake it.
    pub(crate) fn driver_returns(&mut self) {
        self.driver_returns = true;
    }

    /// Whether `shutdown`'s deadline passed: drop what is queued and close at once.
    pub(crate) fn aborting(&self) -> bool {
        self.abort
    }

    /// The driver read `n` bytes from the transport: a sign of life for the keepalive. Returns
    /// whether frames are still to be handled (not after the session ended by the peer or by a
    /// failure).
    pub(crate) fn data_received(&mut self, n: usize) -> bool {
        self.received += 1;
        self.bytes_in += n as u64;
        matches!(self.life.end(), None | Some(End::Local))
    }

    /// The transport reached end-of-stream at a frame boundary: the peer ended the session.
    pub(crate) fn transport_ended(&mut self) {
        if self.life.end_with(End::Peer) {
            self.core.peer_gone();
        }
    }

    /// The driver has returned: records how the session ended (`error`, or a clean end), releases
    /// every id, and wakes everyone. Returns the session's result.
    pub(crate) fn driver_finished(&mut self, error: Option<Error>) -> Result<(), Error> {
        if matches!(error, Some(Error::Protocol(_))) {
            self.protocol_errors += 1;
        }
        let result = match &error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        };
        self.life.finish(error);
        if let Some(End::Failed(_)) = self.life.end() {
            self.core.clear_backlog();
        }
        self.core.peer_gone(); // the session is over: no id stays in use
        self.wake_all();
        result
    }

    /// Asks the driver to run, once the lock is released: wakes it once per driver poll, however
    /// many times it is called, and not at all while it runs (it looks again before it returns).
    pub(crate) fn notify_driver(&mut self) {
        self.driver_wanted = true;
    }

    /// Called by the driver at the top of each round ([`Shared::start_round`]).
    fn register_driver(&mut self, waker: &Waker) {
        self.driver_returns = false;
        match &self.driver_waker {
            Some(w) if w.will_wake(waker) => {}
            _ => self.driver_waker = Some(waker.clone()),
        }
    }

    /// The error a stream operation must return because of how the session ended, if any.
    /// After a clean end by the peer, streams go on by their own state (buffered data, then EOF).
    pub(crate) fn session_error(&self) -> Option<Error> {
        match self.life.end() {
            None | Some(End::Peer) => None,
            Some(End::Local) => Some(Error::SessionClosed),
            Some(End::Failed(e)) => Some(e.clone()),
        }
    }

    /// The driver, before it decides under the lock that handled frames whether to hand off
    /// ([`Inner::woken_unrun`]): turns the events of what it handled into wakeups now, so that the
    /// tasks they wake count as woken. The wakeups still run once the lock is released.
    pub(crate) fn collect_driver_events(&mut self) {
        if self.core.has_events() {
            self.collect_wakers(true);
        }
    }

    /// Turns the core's events into wakeups, run once the lock is released (the guard's drop
    /// calls this, and [`Inner::collect_driver_events`]). `by_driver`: the driver held the lock;
    /// the readers and acceptor it wakes are remembered until they run.
    fn collect_wakers(&mut self, by_driver: bool) {
        self.core.take_events(&mut self.events);
        let mut events = std::mem::take(&mut self.events);
        for ev in events.drain(..) {
            match ev {
                Event::Readable(k) => {
                    if let Some(w) = self.core.waiters_mut(k).and_then(|w| w.read.take()) {
                        self.deferred.wakers.push(w);
                        if by_driver {
                            let ending = self
                                .core
                                .stream(k)
                                .is_some_and(|s| s.state() == State::PeerFinished);
                            self.woken.add(k, ending);
                        }
                    }
                }
                Event::Writable(k) => {
                    if let Some(w) = self.core.waiters_mut(k).and_then(|w| w.write.take()) {
                        self.deferred.wakers.push(w);
                    }
                }
                Event::Incoming => {
                    self.acceptors.take_all(&mut self.deferred.wakers);
                    if by_driver {
                        self.woken.acceptor_woken();
                    }
                }
                Event::Pong => {
                    self.pongs += 1;
                    self.deferred.pong = true;
                    if let Some(at) = self.ping_sent.take() {
                        self.last_rtt = Some(at.elapsed());
                    }
                }
                // Reading the transport paused (xtaci v1) and may go on.
                Event::Resume => self.notify_driver(),
                Event::Room(n) if self.room_wanted => {
                    self.deferred.room = self.deferred.room.saturating_add(n as usize);
                }
                Event::Room(_) => {}
                Event::Released => {
                    if self.room_wanted {
                        self.deferred.room += 1;
                    }
                    // Only `shutdown` waits for the last stream, once it began draining.
                    if self.core.live_streams() == 0 && !matches!(self.life, Lifecycle::Running) {
                        self.deferred.idle = true;
                    }
                }
            }
        }
        self.events = events;
    }

    /// Wakes everyone waiting on anything: the session ended.
    fn wake_all(&mut self) {
        for k in self.core.keys() {
            if let Some(w) = self.core.waiters_mut(k) {
                let (r, wr) = (w.read.take(), w.write.take());
                self.deferred.wakers.extend(r);
                self.deferred.wakers.extend(wr);
            }
        }
        self.core.forget_flush_waiters();
        self.acceptors.take_all(&mut self.deferred.wakers);
        self.deferred.everyone = true;
    }

    /// Everything up to output position `pos` is written and flushed ([`Shared::flushed_out`]
    /// said so already): the streams waiting for their flushes are woken.
    pub(crate) fn flushed_to(&mut self, pos: u64) {
        self.core.flushed_to(pos);
    }
}

// ----- what the session handle and the streams may do -----

impl Inner {
    /// A new session or stream handle.
    pub(crate) fn add_handle(&mut self) {
        self.handles += 1;
    }

    /// The acceptor ran (it looked at the backlog) since the driver woke it, if it did.
    pub(crate) fn acceptor_ran(&mut self) {
        self.woken.acceptor_ran();
    }

    /// Stream `key` was just accepted: the task that takes it (often one spawned for it) usually
    /// reads what came with its SYN and answers at once, so the driver waits for it as for a
    /// reader it woke.
    pub(crate) fn accepted(&mut self, key: StreamKey) {
        self.woken.add(key, false);
    }

    /// One handle (session or stream) is gone; the last one makes the driver close the session.
    pub(crate) fn release_handle(&mut self) {
        self.handles -= 1;
        if self.handles == 0 {
            self.notify_driver();
        }
    }

    /// A task found no room to open (the stream limit, the peer's grant, or every id in use),
    /// under this lock, and is about to wait for room: every release or grant notifies from now
    /// on. Until a task first waits, nobody listens, and notifying nobody still costs the
    /// listeners' lock (about 1% of a short stream's instructions).
    pub(crate) fn room_waited(&mut self) {
        self.room_wanted = true;
    }

    /// The error for opening or accepting now: the session ended, or is shutting down.
    pub(crate) fn open_error(&self) -> Option<Error> {
        match &self.life {
            Lifecycle::Running => None,
            Lifecycle::Draining => Some(Error::SessionClosed),
            Lifecycle::Ended(End::Failed(e)) | Lifecycle::Finished(End::Failed(e)) => {
                Some(e.clone())
            }
            Lifecycle::Ended(_) | Lifecycle::Finished(_) => Some(Error::SessionClosed),
        }
    }

    /// The session's error if it failed (accepting still drains the backlog otherwise).
    pub(crate) fn failure(&self) -> Option<Error> {
        match self.life.end() {
            Some(End::Failed(e)) => Some(e.clone()),
            _ => None,
        }
    }

    /// Whether the session has ended.
    pub(crate) fn is_ended(&self) -> bool {
        self.life.end().is_some()
    }

    /// Closes the session from this side: FIN for every stream, everyone woken, the driver told.
    /// Returns false if it had ended already.
    pub(crate) fn close_locally(&mut self) -> bool {
        if !self.life.end_with(End::Local) {
            return false;
        }
        self.core.close_all();
        self.wake_all();
        self.notify_driver();
        true
    }

    /// `shutdown`'s deadline passed: closes the session from this side if it is still open, and
    /// has the driver drop whatever is still queued and close the transport at once.
    pub(crate) fn abort(&mut self) {
        self.close_locally();
        if !matches!(self.life, Lifecycle::Finished(_)) {
            self.abort = true;
            self.notify_driver();
        }
    }

    /// Starts a graceful shutdown: no more opening or accepting; streams the peer opens, and those
    /// waiting to be accepted, are refused.
    pub(crate) fn start_draining(&mut self) {
        if matches!(self.life, Lifecycle::Running) {
            self.life = Lifecycle::Draining;
            self.core.refuse_incoming();
            self.notify_driver();
            // Acceptors find the session closing to new streams.
            self.acceptors.take_all(&mut self.deferred.wakers);
        }
    }

    /// Whether a shutdown may close now: no stream is left, or the session ended anyway.
    pub(crate) fn is_drained(&self) -> bool {
        self.core.live_streams() == 0 || self.is_ended()
    }

    /// How the session ended, once the driver has returned.
    pub(crate) fn driver_result(&self) -> Option<Result<(), Error>> {
        match &self.life {
            Lifecycle::Finished(End::Failed(e)) => Some(Err(e.clone())),
            Lifecycle::Finished(_) => Some(Ok(())),
            _ => None,
        }
    }

    /// Whether the driver has returned (nothing more reaches the transport).
    pub(crate) fn is_driver_finished(&self) -> bool {
        matches!(self.life, Lifecycle::Finished(_))
    }

    /// Sends a VRM probe (unless one is out already, which answers for this one too) and asks the
    /// driver to send it; its answer counts in [`Inner::pongs`] and measures the round trip.
    pub(crate) fn send_ping(&mut self) {
        let (v1, v2) = crate::probe::random_probe();
        if self.core.ping(v1, v2).is_some() {
            self.ping_sent = Some(Instant::now());
        }
        self.notify_driver();
    }

    /// The session's counters now, with `bytes_out` as the driver counted them
    /// ([`Shared::stats`]).
    fn stats(&self, bytes_out: u64) -> Stats {
        let c = self.core.counters();
        Stats {
            bytes_in: self.bytes_in,
            bytes_out,
            frames_in: c.frames_in,
            frames_out: c.frames_out,
            streams_opened: c.opened,
            streams_accepted: c.accepted,
            streams_refused: c.refused,
            streams_active: self.core.num_streams(),
            protocol_errors: self.protocol_errors,
            memory_held: self.core.unclaimed_bytes(),
            memory_budget: self.memory_budget,
            reading_paused: self.core.input_paused(),
            windows_grow: self.core.extension_active(),
            window_growth: self.core.window_growth(),
            last_rtt: self.last_rtt.or_else(|| {
                self.core
                    .min_rtt_us()
                    .map(|us| Duration::from_micros(u64::from(us)))
            }),
        }
    }

    /// Answers to our VRM probes received so far.
    pub(crate) fn pongs(&self) -> u64 {
        self.pongs
    }

    /// Reads from the transport that brought data so far.
    pub(crate) fn received(&self) -> u64 {
        self.received
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an idle stream costs lies mostly in its state: keep it at 88 bytes (two ends of an
    /// idle stream pair, with their slots, ids and handles, came to about 320 bytes).
    #[test]
    fn a_streams_state_stays_small() {
        let size = Core::<Waiters>::STREAM_COST - 16;
        assert!(size <= 88, "a stream's state grew to {size} bytes");
    }
}
