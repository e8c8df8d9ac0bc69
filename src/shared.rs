//! The state that the session handle, the driver and the streams share, behind one lock.
//!
//! The protocol core ([`Core`]) holds every protocol rule; this module adds what the I/O shell
//! needs around it: who to wake, how the session ended, and the counters the keepalive and
//! `Session::ping` read. The session handle, the driver and the streams each depend on this module
//! and on none of the others.
//!
//! **Nobody is woken under the lock.** [`Shared::lock`] returns a [`Locked`] guard; what the holder
//! asks to wake (a stream's waker, the driver, listeners waiting to accept, to open, for a pong) is
//! only recorded, and woken when the guard is dropped, after the lock is released. A woken task on
//! another thread then never contends for a lock still held, and a waker that re-enters the
//! session cannot deadlock.

use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard};
use std::task::Waker;

use event_listener::Event as Notify;

use crate::core::{Core, Event, StreamKey};
use crate::error::Error;

/// The I/O shell's per-stream data inside the core: who to wake.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    pub(crate) read: Option<Waker>,
    pub(crate) write: Option<Waker>,
    pub(crate) flush_listed: bool,
}

/// How the session ended.
#[derive(Debug, Clone)]
pub(crate) enum End {
    /// Closed by this side (`Session::close`, or every handle dropped).
    Local,
    /// The peer closed the transport at a frame boundary: streams see end-of-stream.
    Peer,
    /// The transport failed, the peer broke the protocol, or the driver was dropped.
    Failed(Error),
}

/// What the driver, the session handles and the streams share.
#[derive(Debug)]
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    /// Notified when a stream arrives in the accept backlog or the session ends.
    pub(crate) accept_ready: Notify,
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
    accept: bool,
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
            && !self.accept
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
    pub(crate) end: Option<End>,
    /// The driver returned or was dropped: nothing more reaches the transport.
    pub(crate) driver_finished: bool,
    driver_waker: Option<Waker>,
    driver_notified: bool,
    /// Output position known written and flushed.
    pub(crate) flushed: u64,
    /// Streams waiting for their data to be flushed.
    flush_waiters: Vec<StreamKey>,
    /// Session handles plus stream handles: when none is left, the driver closes the session.
    pub(crate) handles: usize,
    /// Answers to our VRM probes received so far.
    pub(crate) pongs: u64,
    /// Reads from the transport that brought data: signs of life for the keepalive.
    pub(crate) received: u64,
    /// `shutdown` began: no more opening or accepting.
    pub(crate) draining: bool,
    /// The core's events, between taking them and turning them into wakeups.
    events: Vec<Event>,
    deferred: Deferred,
}

impl Shared {
    /// Shared state around `core`, with one handle (the first session handle).
    pub(crate) fn new(core: Core<Waiters>) -> Shared {
        Shared {
            inner: Mutex::new(Inner {
                core,
                end: None,
                driver_finished: false,
                driver_waker: None,
                driver_notified: false,
                flushed: 0,
                flush_waiters: Vec::new(),
                handles: 1,
                pongs: 0,
                received: 0,
                draining: false,
                events: Vec::new(),
                deferred: Deferred::default(),
            }),
            accept_ready: Notify::new(),
            driver_done: Notify::new(),
            pong: Notify::new(),
            room: Notify::new(),
            idle: Notify::new(),
        }
    }

    /// Locks the state. Wakeups asked for while it is held run when the guard is dropped.
    pub(crate) fn lock(&self) -> Locked<'_> {
        // A panic while holding the lock cannot leave the core half-updated in a way that matters
        // more than losing the session; keep going rather than propagate the poison.
        let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        Locked {
            guard: Some(guard),
            shared: self,
        }
    }

    fn run(&self, mut d: Deferred) -> Vec<Waker> {
        if let Some(w) = d.driver.take() {
            w.wake();
        }
        for w in d.wakers.drain(..) {
            w.wake();
        }
        if d.everyone {
            self.accept_ready.notify(usize::MAX);
            self.room.notify(usize::MAX);
            self.pong.notify(usize::MAX);
            self.idle.notify(usize::MAX);
        } else {
            if d.accept {
                self.accept_ready.notify(usize::MAX);
            }
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
}

impl Deref for Locked<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        self.guard.as_ref().expect("held until dropped")
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        self.guard.as_mut().expect("held until dropped")
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let mut guard = self.guard.take().expect("dropped once");
        if guard.deferred.is_empty() {
            return;
        }
        let deferred = std::mem::take(&mut guard.deferred);
        drop(guard);
        let spare = self.shared.run(deferred);
        // Give the wakers' buffer back, so that waking does not allocate each time.
        if spare.capacity() > 0 {
            let mut guard = self.shared.inner.lock().unwrap_or_else(|p| p.into_inner());
            if guard.deferred.wakers.capacity() == 0 {
                guard.deferred.wakers = spare;
            }
        }
    }
}

impl Inner {
    /// Asks the driver to run (once per driver poll, however many times it is called).
    pub(crate) fn notify_driver(&mut self) {
        if !self.driver_notified {
            self.driver_notified = true;
            self.deferred.driver = self.driver_waker.clone();
        }
    }

    /// Called by the driver at the top of each round.
    pub(crate) fn register_driver(&mut self, waker: &Waker) {
        self.driver_notified = false;
        match &self.driver_waker {
            Some(w) if w.will_wake(waker) => {}
            _ => self.driver_waker = Some(waker.clone()),
        }
    }

    /// The error a stream operation must return because of how the session ended, if any.
    /// After a clean end by the peer, streams go on by their own state (buffered data, then EOF).
    pub(crate) fn session_error(&self) -> Option<Error> {
        match &self.end {
            None | Some(End::Peer) => None,
            Some(End::Local) => Some(Error::SessionClosed),
            Some(End::Failed(e)) => Some(e.clone()),
        }
    }

    /// Turns the core's events into wakeups, run once the lock is released.
    pub(crate) fn collect_wakers(&mut self) {
        self.core.take_events(&mut self.events);
        let mut events = std::mem::take(&mut self.events);
        for ev in events.drain(..) {
            match ev {
                Event::Readable(k) => {
                    if let Some(w) = self.core.waiters_mut(k).and_then(|w| w.read.take()) {
                        self.deferred.wakers.push(w);
                    }
                }
                Event::Writable(k) => {
                    if let Some(w) = self.core.waiters_mut(k).and_then(|w| w.write.take()) {
                        self.deferred.wakers.push(w);
                    }
                }
                Event::Incoming => self.deferred.accept = true,
                Event::Pong => {
                    self.pongs += 1;
                    self.deferred.pong = true;
                }
                Event::Released => {
                    self.deferred.room += 1;
                    if self.core.live_streams() == 0 {
                        self.deferred.idle = true;
                    }
                }
            }
        }
        self.events = events;
    }

    /// Wakes everyone waiting on anything: the session ended.
    pub(crate) fn wake_all(&mut self) {
        for k in self.core.keys() {
            if let Some(w) = self.core.waiters_mut(k) {
                let (r, wr) = (w.read.take(), w.write.take());
                w.flush_listed = false;
                self.deferred.wakers.extend(r);
                self.deferred.wakers.extend(wr);
            }
        }
        self.flush_waiters.clear();
        self.deferred.everyone = true;
    }

    /// Lists the stream as waiting for a flush (once).
    pub(crate) fn wait_flush(&mut self, key: StreamKey) {
        if let Some(w) = self.core.waiters_mut(key) {
            if !w.flush_listed {
                w.flush_listed = true;
                self.flush_waiters.push(key);
            }
        }
    }

    /// Whether a stream waits for a flush.
    pub(crate) fn has_flush_waiters(&self) -> bool {
        !self.flush_waiters.is_empty()
    }

    /// Everything up to output position `pos` is written and flushed: wakes the streams whose
    /// flushes are now complete.
    pub(crate) fn flushed_to(&mut self, pos: u64) {
        self.flushed = pos;
        let core = &mut self.core;
        let wakers = &mut self.deferred.wakers;
        self.flush_waiters.retain(|&k| {
            let Some(at) = core.stream(k).map(|s| s.last_queued) else {
                return false;
            };
            if at > pos {
                return true;
            }
            if let Some(w) = core.waiters_mut(k) {
                w.flush_listed = false;
                wakers.extend(w.write.take());
            }
            false
        });
    }
}

/// One handle (session or stream) is gone; the last one makes the driver close the session.
pub(crate) fn release_handle(shared: &Shared) {
    let mut inner = shared.lock();
    inner.handles -= 1;
    if inner.handles == 0 {
        inner.notify_driver();
    }
}
