//! The session handle and the state it shares with the driver and the streams.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use event_listener::{Event as Notify, EventListener};
use futures_io::{AsyncRead, AsyncWrite};

use crate::config::Config;
use crate::core::{Core, Direction, Event, Limits, OpenError, StreamKey};
use crate::driver::Driver;
use crate::error::Error;
use crate::stream::Stream;

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
    /// Notified when an id is released or a reservation dropped (room to open), or the session ends.
    pub(crate) room: Notify,
}

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
    pub(crate) flush_waiters: Vec<StreamKey>,
    /// Session handles plus stream handles: when none is left, the driver closes the session.
    pub(crate) handles: usize,
    /// Answers to our VRM probes received so far.
    pub(crate) pongs: u64,
    /// Reads from the transport that brought data: signs of life for the keepalive.
    pub(crate) received: u64,
    /// `shutdown` began: no more opening or accepting.
    pub(crate) draining: bool,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the core half-updated in a way that matters
        // more than losing the session; keep going rather than propagate the poison.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    /// Asks the driver to run (once per driver poll, however many times it is called).
    pub(crate) fn notify_driver(&mut self) {
        if !self.driver_notified {
            self.driver_notified = true;
            if let Some(w) = &self.driver_waker {
                w.wake_by_ref();
            }
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

    /// Turns the core's events into wakers to call once the lock is released.
    pub(crate) fn collect_wakers(
        &mut self,
        shared: &Shared,
        events: &mut Vec<Event>,
        wake: &mut Vec<Waker>,
    ) {
        self.core.take_events(events);
        let (mut incoming, mut released) = (false, false);
        for ev in events.drain(..) {
            match ev {
                Event::Readable(k) => {
                    if let Some(w) = self.core.waiters_mut(k).and_then(|w| w.read.take()) {
                        wake.push(w);
                    }
                }
                Event::Writable(k) => {
                    if let Some(w) = self.core.waiters_mut(k).and_then(|w| w.write.take()) {
                        wake.push(w);
                    }
                }
                Event::Incoming => incoming = true,
                Event::Pong => {
                    self.pongs += 1;
                    shared.pong.notify(usize::MAX);
                }
                Event::Released => released = true,
            }
        }
        if incoming {
            shared.accept_ready.notify(usize::MAX);
        }
        if released {
            shared.room.notify(usize::MAX);
        }
    }

    /// Wakes everyone waiting on anything: the session ended.
    pub(crate) fn wake_all(&mut self, shared: &Shared, wake: &mut Vec<Waker>) {
        for k in self.core.keys() {
            if let Some(w) = self.core.waiters_mut(k) {
                wake.extend(w.read.take());
                wake.extend(w.write.take());
                w.flush_listed = false;
            }
        }
        self.flush_waiters.clear();
        shared.accept_ready.notify(usize::MAX);
        shared.room.notify(usize::MAX);
        shared.pong.notify(usize::MAX);
    }

    /// Wakes the streams whose flushes are now complete.
    pub(crate) fn wake_flushed(&mut self, wake: &mut Vec<Waker>) {
        let flushed = self.flushed;
        let core = &mut self.core;
        self.flush_waiters.retain(|&k| {
            let Some(pos) = core.stream(k).map(|s| s.last_queued) else {
                return false;
            };
            if pos > flushed {
                return true;
            }
            if let Some(w) = core.waiters_mut(k) {
                w.flush_listed = false;
                wake.extend(w.write.take());
            }
            false
        });
    }
}

/// A handle to a multiplexed session: opens and accepts streams, and closes the session.
///
/// Cheap to clone; every clone acts on the same session. When every `Session` handle and every
/// [`Stream`] is dropped, the driver closes the session and returns.
#[derive(Debug)]
pub struct Session {
    shared: Arc<Shared>,
}

impl Clone for Session {
    fn clone(&self) -> Self {
        self.shared.lock().handles += 1;
        Session {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        release_handle(&self.shared);
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

impl Session {
    /// Starts the client side of a session over `io`. Streams this side opens take the lowest
    /// free id (from 1; never 0, which the peer may use). A released id rests: it is handed out
    /// again only after 8,192 later releases (or when no other id is free), so that frames the
    /// original sends late for a closed stream never reach a newer one (PROTOCOL.md 9).
    ///
    /// Returns the handle and the driver: a future that owns the transport and must be spawned (or
    /// otherwise polled) for anything to happen. It resolves when the session ends: `Ok(())` after a
    /// clean close by either side, or the error that ended it.
    pub fn client<T>(io: T, config: Config) -> (Session, Driver<T>)
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        Session::new(io, config, Direction::Up)
    }

    /// Starts the server side of a session over `io`: as [`Session::client`], but streams this
    /// side opens take the highest free id (from 65,535), so that the two sides' ids meet only when
    /// nearly all 65,535 are in use, and two sides opening at once do not pick the same id.
    pub fn server<T>(io: T, config: Config) -> (Session, Driver<T>)
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        Session::new(io, config, Direction::Down)
    }

    fn new<T>(io: T, config: Config, dir: Direction) -> (Session, Driver<T>)
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        let limits = Limits {
            window: config.window(),
            max_frame: config.max_frame(),
            backlog: config.accept_backlog(),
            write_buffer: config.write_buffer(),
            max_streams: config.max_streams(),
        };
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                core: Core::new(dir, limits),
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
            }),
            accept_ready: Notify::new(),
            driver_done: Notify::new(),
            room: Notify::new(),
            pong: Notify::new(),
        });
        let driver = Driver::new(io, shared.clone(), &config);
        (Session { shared }, driver)
    }

    /// Opens a new stream. The peer learns of it with the first frame; data may follow at once.
    ///
    /// Waits while [`Config::with_max_streams`] streams are open. Fails with
    /// [`Error::IdsExhausted`] while all 65,535 ids are in use, and with the session's error once it
    /// has ended.
    pub async fn open(&self) -> Result<Stream, Error> {
        loop {
            let listener = match self.try_open(false)? {
                Some(s) => return Ok(s),
                None => self.shared.room.listen(),
            };
            if let Some(s) = self.try_open(false)? {
                return Ok(s);
            }
            listener.await;
        }
    }

    /// Opens a stream now, or `None` at the stream limit. `reserved`: use a reservation.
    pub(crate) fn try_open(&self, reserved: bool) -> Result<Option<Stream>, Error> {
        let mut inner = self.shared.lock();
        if let Some(e) = ended_error(&inner) {
            if reserved {
                inner.core.unreserve();
            }
            return Err(e);
        }
        let opened = if reserved {
            inner.core.open_reserved()
        } else {
            inner.core.open()
        };
        let key = match opened {
            Ok(key) => key,
            Err(OpenError::Exhausted) => return Err(Error::IdsExhausted),
            Err(OpenError::AtLimit) => return Ok(None),
        };
        let id = inner.core.id(key).expect("just opened");
        inner.handles += 1;
        inner.notify_driver();
        drop(inner);
        Ok(Some(Stream::new(self.shared.clone(), key, id)))
    }

    /// Reserves room for one open under the stream limit: `Pending` (woken through `listener`)
    /// while there is none. The reservation is released when dropped unused.
    pub(crate) fn poll_reserve(
        &self,
        listener: &mut Option<EventListener>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Reservation, Error>> {
        loop {
            {
                let mut inner = self.shared.lock();
                if let Some(e) = ended_error(&inner) {
                    *listener = None;
                    return Poll::Ready(Err(e));
                }
                match inner.core.reserve() {
                    Ok(()) => {
                        *listener = None;
                        inner.handles += 1; // the reservation's session handle
                        drop(inner);
                        let session = Session {
                            shared: self.shared.clone(),
                        };
                        return Poll::Ready(Ok(Reservation {
                            session,
                            armed: true,
                        }));
                    }
                    Err(OpenError::Exhausted) => {
                        *listener = None;
                        return Poll::Ready(Err(Error::IdsExhausted));
                    }
                    Err(OpenError::AtLimit) => {}
                }
            }
            match listener {
                None => *listener = Some(self.shared.room.listen()),
                Some(l) => {
                    ready!(Pin::new(l).poll(cx));
                    *listener = None;
                }
            }
        }
    }

    /// Waits for a stream opened by the peer. Fails once the session has ended.
    pub async fn accept(&self) -> Result<Stream, Error> {
        loop {
            if let Some(s) = self.try_accept()? {
                return Ok(s);
            }
            let listener = self.shared.accept_ready.listen();
            if let Some(s) = self.try_accept()? {
                return Ok(s);
            }
            listener.await;
        }
    }

    fn try_accept(&self) -> Result<Option<Stream>, Error> {
        let mut inner = self.shared.lock();
        if let Some(End::Failed(e)) = &inner.end {
            return Err(e.clone());
        }
        if let Some(key) = inner.core.accept() {
            let id = inner.core.id(key).expect("backlog streams are live");
            inner.handles += 1;
            drop(inner);
            return Ok(Some(Stream::new(self.shared.clone(), key, id)));
        }
        match ended_error(&inner) {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    /// Measures the round trip to the peer with a VRM probe (PROTOCOL.md 8), which the original
    /// answers too. The answer is recognised, not answered back. Concurrent pings share one probe.
    ///
    /// Holds no timer: bound it with your runtime's timeout. Fails once the session has ended.
    pub async fn ping(&self) -> Result<Duration, Error> {
        let start = Instant::now();
        let seen = {
            let mut inner = self.shared.lock();
            if let Some(e) = ended_error(&inner) {
                return Err(e);
            }
            let (v1, v2) = crate::probe::random_probe();
            let _ = inner.core.ping(v1, v2);
            inner.notify_driver();
            inner.pongs
        };
        loop {
            let listener = self.shared.pong.listen();
            {
                let inner = self.shared.lock();
                if inner.pongs > seen {
                    return Ok(start.elapsed());
                }
                if let Some(e) = ended_error(&inner) {
                    return Err(e);
                }
            }
            listener.await;
        }
    }

    /// The number of streams not yet fully closed (ids in use).
    pub fn num_streams(&self) -> usize {
        self.shared.lock().core.num_streams()
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().end.is_some()
    }

    /// Closes the session: sends FIN for every open stream, writes out everything queued, then
    /// closes the transport. Streams of this session fail with [`Error::SessionClosed`] afterwards;
    /// data the peer has not read yet may be lost (PROTOCOL.md 6).
    ///
    /// Resolves once the driver has closed the transport (or at once if it is not running any
    /// more): `Ok(())` if the session ended cleanly, or the error that ended it.
    pub async fn close(&self) -> Result<(), Error> {
        self.begin_close();
        self.closed().await
    }

    /// Shuts the session down gracefully: stops opening and accepting streams at once (opens fail
    /// with [`Error::SessionClosed`]; streams the peer opens, and those still waiting to be
    /// accepted, are refused with FIN), lets the open streams finish until every one is closed and
    /// dropped or `deadline` completes, whichever comes first, then closes the session as
    /// [`Session::close`] does (streams still open then are closed).
    ///
    /// `deadline` is your runtime's timer (the crate has none), e.g.
    /// `smol::Timer::after(Duration::from_secs(5))`, or `std::future::pending()` to wait for as
    /// long as the streams take.
    pub async fn shutdown(&self, deadline: impl Future<Output = ()>) -> Result<(), Error> {
        {
            let mut inner = self.shared.lock();
            if inner.end.is_none() && !inner.draining {
                inner.draining = true;
                inner.core.refuse_incoming();
                inner.notify_driver();
            }
        }
        self.shared.accept_ready.notify(usize::MAX);
        let streams_done = async {
            loop {
                let listener = self.shared.room.listen();
                {
                    let inner = self.shared.lock();
                    if inner.core.live_streams() == 0 || inner.end.is_some() {
                        return;
                    }
                }
                listener.await;
            }
        };
        futures_util::future::select(Box::pin(streams_done), Box::pin(deadline)).await;
        self.close().await
    }

    /// Starts closing: FIN for every stream, then the driver closes the transport.
    fn begin_close(&self) {
        let mut inner = self.shared.lock();
        if inner.end.is_some() {
            return;
        }
        inner.end = Some(End::Local);
        inner.core.close_all();
        let mut wake = Vec::new();
        inner.wake_all(&self.shared, &mut wake);
        inner.notify_driver();
        drop(inner);
        wake.into_iter().for_each(Waker::wake);
    }

    /// A future that resolves when the session has ended, with how it ended.
    pub fn closed(&self) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let shared = self.shared.clone();
        async move {
            loop {
                let listener = shared.driver_done.listen();
                {
                    let inner = shared.lock();
                    if inner.driver_finished {
                        return match &inner.end {
                            Some(End::Failed(e)) => Err(e.clone()),
                            _ => Ok(()),
                        };
                    }
                }
                listener.await;
            }
        }
    }
}

/// Room for one open, promised by [`Session::poll_reserve`]; given back when dropped unused.
#[derive(Debug)]
pub(crate) struct Reservation {
    session: Session,
    /// Still to be given back on drop.
    armed: bool,
}

impl Reservation {
    /// Opens the stream the reservation was for. Fails only if the session ended or the peer took
    /// the last free ids in the meantime.
    pub(crate) fn open(mut self) -> Result<Stream, Error> {
        self.armed = false;
        self.session.try_open(true)?.ok_or(Error::IdsExhausted)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut inner = self.session.shared.lock();
        inner.core.unreserve();
        let (mut events, mut wake) = (Vec::new(), Vec::new());
        inner.collect_wakers(&self.session.shared, &mut events, &mut wake);
        drop(inner);
        wake.into_iter().for_each(Waker::wake);
    }
}

/// The error for opening or accepting on an ended (or shutting down) session.
fn ended_error(inner: &Inner) -> Option<Error> {
    match &inner.end {
        None if inner.draining => Some(Error::SessionClosed),
        None => None,
        Some(End::Local) | Some(End::Peer) => Some(Error::SessionClosed),
        Some(End::Failed(e)) => Some(e.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send + 'static>(_: &T) {}

    /// The session's futures can run inside `tokio::spawn` and the like.
    #[test]
    fn futures_are_send() {
        let (a, _b) = crate::pipe();
        let (session, driver) = Session::client(a, Config::default());
        assert_send(&driver);
        let s = session.clone();
        assert_send(&async move { s.open().await });
        let s = session.clone();
        assert_send(&async move { s.accept().await });
        let s = session.clone();
        assert_send(&async move { s.close().await });
        let s = session.clone();
        assert_send(&async move { s.ping().await });
        assert_send(&session.closed());
    }
}
