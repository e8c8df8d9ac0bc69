//! The session handle: opens, accepts, pings and closes; the state it acts on is in `shared`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use event_listener::EventListener;
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::future::Either;

use crate::config::Config;
use crate::core::wire::Protocol;
use crate::core::{Core, Direction, Limits, OpenError};
use crate::driver::Driver;
use crate::error::Error;
use crate::shared::Shared;
use crate::stream::Stream;

/// [`Session::accept`]'s place among the tasks waiting to accept, given back if it is dropped
/// while it waits.
struct AcceptWait<'a> {
    session: &'a Session,
    slot: Option<u64>,
}

impl Drop for AcceptWait<'_> {
    fn drop(&mut self) {
        if self.slot.is_some() {
            self.session.shared.lock().acceptors.remove(&mut self.slot);
        }
    }
}

/// A handle to a multiplexed session: opens and accepts streams, and closes the session.
///
/// Cheap to clone; every clone acts on the same session. When every `Session` handle and every
/// [`Stream`] is dropped, the driver closes the session and returns.
pub struct Session {
    shared: Arc<Shared>,
    /// Where `poll_open` and `poll_accept` wait (each handle its own; a clone starts with none).
    open_wait: Option<EventListener>,
    /// This handle's slot among the tasks waiting to accept, while `poll_accept` waits.
    accept_wait: Option<u64>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.shared.lock();
        f.debug_struct("Session")
            .field("streams", &inner.core.num_streams())
            .field("ended", &inner.is_ended())
            .finish_non_exhaustive()
    }
}

impl Clone for Session {
    fn clone(&self) -> Self {
        self.shared.lock().add_handle();
        Session::handle(self.shared.clone())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        inner.acceptors.remove(&mut self.accept_wait);
        inner.release_handle();
    }
}

impl Session {
    /// A handle on `shared`, whose handle count already includes it.
    fn handle(shared: Arc<Shared>) -> Session {
        Session {
            shared,
            open_wait: None,
            accept_wait: None,
        }
    }

    /// Starts the client side of a session over `io`. Streams this side opens take the lowest
    /// free id (from 1; never 0, which the peer may use). A released id rests: it is handed out
    /// again only after 8,192 later releases (or when no other id is free), so that frames the
    /// original sends late for a closed stream never reach a newer one
    /// ([docs/PROTOCOL.md](crate#the-protocol) 9).
    ///
    /// Returns the handle and the driver: a future that owns the transport and must be spawned (or
    /// otherwise polled) for anything to happen. A session made with an invalid `config` (see
    /// [`Config::validate`]) ends at once with its [`Error::InvalidConfig`]. It resolves when the session ends: `Ok(())` after a
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
            budget: config.memory_budget(),
            max_window: config.max_window(),
        };
        let protocol = config.protocol();
        let client_detects = dir == Direction::Up && protocol == Protocol::Detect;
        let protocol = if client_detects {
            Protocol::Yddeng // never used: the session ends at once below
        } else {
            protocol
        };
        let mut core = Core::with_protocol(dir, limits, protocol);
        core.offer_extension();
        let shared = Arc::new(Shared::new(core, config.memory_budget()));
        let side = match dir {
            Direction::Up => "client",
            Direction::Down => "server",
        };
        let mut driver = Driver::new(io, shared.clone(), &config, side);
        if let Err(e) = config.validate() {
            // Nonsense settings: the session ends at once with their error, for every party.
            driver.fail_at_start(e);
        } else if client_detects {
            driver.fail_at_start(Error::Unsupported(
                "a client cannot detect its protocol: Protocol::Detect is for servers",
            ));
        }
        (Session::handle(shared), driver)
    }

    /// Opens a new stream. The peer learns of it with the first frame; data may follow at once.
    ///
    /// Waits while [`Config::with_max_streams`] streams are open, and, against a peer of this crate
    /// on yddeng's wire, while as many streams as the peer has room for wait in its accept backlog
    /// (it grants more as its application accepts them: see [`Config::with_accept_backlog`]), so
    /// that a burst of opens is not refused. The Go programs never refuse (they stop reading
    /// instead), and nothing waits for them; xtaci's wire has no way to grant, and a peer of this
    /// crate there, as the Go package, stops reading while its backlog is full. Fails with [`Error::IdsExhausted`] while all 65,535
    /// ids are in use, and with the session's error once it has ended.
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

    /// Opens a new stream, for poll-based code: as [`Session::open`], `Pending` while the session is
    /// at its stream limit (woken when a stream closes). Each handle waits on its own; a clone
    /// starts afresh.
    pub fn poll_open(&mut self, cx: &mut Context<'_>) -> Poll<Result<Stream, Error>> {
        loop {
            if let Some(s) = self.try_open(false)? {
                self.open_wait = None;
                return Poll::Ready(Ok(s));
            }
            match &mut self.open_wait {
                None => self.open_wait = Some(self.shared.room.listen()),
                Some(l) => {
                    ready!(Pin::new(l).poll(cx));
                    self.open_wait = None;
                }
            }
        }
    }

    /// Waits for a stream opened by the peer, for poll-based code: as [`Session::accept`].
    pub fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<Result<Stream, Error>> {
        let mut slot = self.accept_wait.take();
        let accepted = self.accept_or_wait(&mut slot, cx.waker());
        self.accept_wait = slot;
        accepted
    }

    /// The streams the peer opens, as a [`futures::Stream`](futures_core::Stream) of
    /// `Result<Stream, Error>`: each accepted stream, then `None` once the session has ended
    /// cleanly, or its error once and then `None` if it failed.
    ///
    /// ```
    /// # smol::block_on(async {
    /// use futures::StreamExt;
    /// # let (a, b) = ysmux::pipe();
    /// # let (client, d) = ysmux::Session::client(a, ysmux::Config::default());
    /// # smol::spawn(d).detach();
    /// # let (server, d) = ysmux::Session::server(b, ysmux::Config::default());
    /// # smol::spawn(d).detach();
    /// let mut incoming = server.incoming();
    /// let _out = client.open().await?;
    /// let stream = incoming.next().await.expect("a stream")?;
    /// client.close().await?;
    /// assert!(incoming.next().await.is_none());
    /// # Ok::<(), ysmux::Error>(()) }).unwrap();
    /// ```
    pub fn incoming(&self) -> Incoming {
        Incoming {
            session: Some(self.clone()),
        }
    }

    /// Opens a stream now, or `None` at the stream limit. `reserved`: use a reservation.
    pub(crate) fn try_open(&self, reserved: bool) -> Result<Option<Stream>, Error> {
        let mut inner = self.shared.lock();
        if let Some(e) = inner.open_error() {
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
            Err(OpenError::GoAway) => return Err(Error::GoAway),
            Err(OpenError::AtLimit) => {
                inner.room_waited();
                return Ok(None);
            }
        };
        let id = inner.core.id(key).expect("just opened");
        inner.add_handle();
        drop(inner);
        Ok(Some(Stream::new(self.shared.clone(), key, id)))
    }

    /// Reserves room for one open under the stream limit and a free id: `Pending` (woken through
    /// `listener`) while there is none. The reservation is released when dropped unused.
    pub(crate) fn poll_reserve(
        &self,
        listener: &mut Option<EventListener>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Reservation, Error>> {
        loop {
            // The session's lock is taken and released here, before the listener is dropped or
            // polled: dropping a notified listener hands its notice on (wakes another task), and
            // nobody is woken under the lock (`shared/mod.rs`).
            let reserved = {
                let mut inner = self.shared.lock();
                match inner.open_error() {
                    Some(e) => Some(Err(e)),
                    None => match inner.core.reserve() {
                        Ok(()) => {
                            inner.add_handle(); // the reservation's session handle
                            Some(Ok(()))
                        }
                        // Running out of ids is as transient as the stream limit: wait for a
                        // release (an error here would poison a `tower::buffer::Buffer` for good).
                        Err(OpenError::Exhausted | OpenError::AtLimit) => {
                            inner.room_waited();
                            None
                        }
                        Err(OpenError::GoAway) => Some(Err(Error::GoAway)),
                    },
                }
            };
            if let Some(result) = reserved {
                *listener = None;
                return Poll::Ready(result.map(|()| Reservation {
                    session: Session::handle(self.shared.clone()),
                    armed: true,
                }));
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

    /// Waits for a stream opened by the peer. Fails once the session has ended, however it ended:
    /// after a clean close (the peer closed the session, or this side did) it returns
    /// [`Error::SessionClosed`], so a server's accept loop meets that error at every normal
    /// shutdown. To tell a clean end from a failure, match `Error::SessionClosed`, or use
    /// [`Session::incoming`], which ends with `None` after a clean close and yields an error only
    /// when the session failed.
    ///
    /// ```
    /// # smol::block_on(async {
    /// # let (a, b) = ysmux::pipe();
    /// # let (client, d) = ysmux::Session::client(a, ysmux::Config::default());
    /// # smol::spawn(d).detach();
    /// # let (server, d) = ysmux::Session::server(b, ysmux::Config::default());
    /// # smol::spawn(d).detach();
    /// client.close().await?; // the peer closes cleanly
    /// assert!(matches!(server.accept().await, Err(ysmux::Error::SessionClosed)));
    /// # Ok::<(), ysmux::Error>(()) }).unwrap();
    /// ```
    pub async fn accept(&self) -> Result<Stream, Error> {
        let mut wait = AcceptWait {
            session: self,
            slot: None,
        };
        std::future::poll_fn(|cx| self.accept_or_wait(&mut wait.slot, cx.waker())).await
    }

    /// Takes a stream from the accept backlog, or, under the same lock, registers the waiter
    /// holding `slot` to be woken by `waker` when the next arrives (or the session ends). A
    /// waiter that is done (a stream, an error) gives its slot back.
    fn accept_or_wait(
        &self,
        slot: &mut Option<u64>,
        waker: &std::task::Waker,
    ) -> Poll<Result<Stream, Error>> {
        let mut inner = self.shared.lock();
        inner.acceptor_ran();
        let accepted = if let Some(e) = inner.failure() {
            Err(e)
        } else if let Some(key) = inner.core.accept() {
            let id = inner.core.id(key).expect("backlog streams are live");
            inner.add_handle();
            inner.accepted(key);
            Ok((key, id))
        } else if let Some(e) = inner.open_error() {
            Err(e)
        } else {
            inner.acceptors.register(slot, waker);
            return Poll::Pending;
        };
        inner.acceptors.remove(slot);
        drop(inner);
        Poll::Ready(accepted.map(|(key, id)| Stream::new(self.shared.clone(), key, id)))
    }

    /// Measures the round trip to the peer with a VRM probe
    /// ([docs/PROTOCOL.md](crate#the-protocol) 8), which the original answers too. The answer is
    /// recognised, not answered back. Concurrent pings share one probe.
    ///
    /// Holds no timer: bound it with your runtime's timeout. Fails once the session has ended,
    /// and with [`Error::Unsupported`] on xtaci/smux, which has no probe.
    pub async fn ping(&self) -> Result<Duration, Error> {
        let start = Instant::now();
        let seen = {
            let mut inner = self.shared.lock();
            if let Some(e) = inner.open_error() {
                return Err(e);
            }
            if !inner.core.probes() {
                return Err(Error::Unsupported(
                    "ping: xtaci/smux has no probe (a Go peer answers no frame)",
                ));
            }
            inner.send_ping();
            inner.pongs()
        };
        loop {
            let listener = self.shared.pong.listen();
            {
                let inner = self.shared.lock();
                if inner.pongs() > seen {
                    return Ok(start.elapsed());
                }
                if let Some(e) = inner.open_error() {
                    return Err(e);
                }
            }
            listener.await;
        }
    }

    /// The session's counters: bytes and frames in and out, streams opened, accepted, refused and
    /// active, protocol errors, memory held against the budget, the last ping's round trip. One
    /// lock, no scan: cheap to read often.
    ///
    /// ```
    /// # smol::block_on(async {
    /// # let (a, b) = ysmux::pipe();
    /// # let (client, d) = ysmux::Session::client(a, ysmux::Config::default());
    /// # smol::spawn(d).detach();
    /// # let (server, d) = ysmux::Session::server(b, ysmux::Config::default());
    /// # smol::spawn(d).detach();
    /// let _s = client.open().await?;
    /// client.ping().await?;
    /// let stats = client.stats();
    /// assert_eq!(stats.streams_opened, 1);
    /// assert!(stats.last_rtt.is_some());
    /// # Ok::<(), ysmux::Error>(()) }).unwrap();
    /// ```
    pub fn stats(&self) -> crate::Stats {
        self.shared.stats()
    }

    /// The protocol the session speaks: its [`Config::with_protocol`], or for a server made with
    /// [`Protocol::Detect`] the one its peer's first byte told ([`Protocol::Detect`] until then).
    pub fn protocol(&self) -> Protocol {
        self.shared.lock().core.protocol()
    }

    /// The number of streams not yet fully closed (ids in use).
    pub fn num_streams(&self) -> usize {
        self.shared.lock().core.num_streams()
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().is_ended()
    }

    /// Closes the session: sends FIN for every open stream, writes out everything queued, then
    /// closes the transport. Streams of this session fail with [`Error::SessionClosed`] afterwards;
    /// data the peer has not read yet may be lost ([docs/PROTOCOL.md](crate#the-protocol) 6).
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
    ///
    /// The deadline bounds the whole call: if it passes before the streams finish, or before the
    /// close has written everything out (a peer that stops reading), what is still queued is
    /// dropped, the transport is closed at once and the call returns (`Ok(())`, or the error that
    /// ended the session). It needs the driver running, as every call does.
    pub async fn shutdown(&self, deadline: impl Future<Output = ()>) -> Result<(), Error> {
        {
            self.shared.lock().start_draining();
        }
        let streams_done = async {
            loop {
                let listener = self.shared.idle.listen();
                {
                    let inner = self.shared.lock();
                    if inner.is_drained() {
                        return;
                    }
                }
                listener.await;
            }
        };
        let mut deadline = Box::pin(deadline);
        let drained = futures_util::future::select(Box::pin(streams_done), deadline.as_mut());
        if let Either::Left(((), _)) = drained.await {
            self.begin_close();
            let closed = Box::pin(self.closed());
            if let Either::Left((result, _)) =
                futures_util::future::select(closed, deadline.as_mut()).await
            {
                return result;
            }
        }
        // The deadline passed: drop what is queued and close now.
        self.shared.lock().abort();
        self.closed().await
    }

    /// Starts closing: FIN for every stream, then the driver closes the transport.
    fn begin_close(&self) {
        self.shared.lock().close_locally();
    }

    /// A future that resolves when the session has ended, with how it ended.
    pub fn closed(&self) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let shared = self.shared.clone();
        async move {
            loop {
                let listener = shared.driver_done.listen();
                {
                    if let Some(result) = shared.lock().driver_result() {
                        return result;
                    }
                }
                listener.await;
            }
        }
    }

    /// How loaded the session is, the measure a pool spreads opens by (what tower's `Load` asks of
    /// a service): the streams in use, plus one for each 64 KiB of frames queued for the
    /// transport and not yet taken by the driver, so a connection that drains slowly looks busier
    /// than one with as many streams that keeps up. One lock, no scan: cheap to read often.
    pub fn load(&self) -> usize {
        let inner = self.shared.lock();
        inner.core.num_streams() + inner.core.queued_len() / (64 * 1024)
    }
}

/// The streams the peer opens: see [`Session::incoming`]. Holding it keeps the session open, as a
/// [`Session`] handle does, until it has returned `None`.
#[derive(Debug)]
pub struct Incoming {
    session: Option<Session>,
}

impl futures_core::Stream for Incoming {
    type Item = Result<Stream, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(session) = self.session.as_mut() else {
            return Poll::Ready(None);
        };
        match ready!(session.poll_accept(cx)) {
            Ok(s) => Poll::Ready(Some(Ok(s))),
            Err(e) => {
                let failed = session.shared.lock().failure().is_some();
                self.session = None;
                Poll::Ready(if failed { Some(Err(e)) } else { None })
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
        self.session.shared.lock().core.unreserve();
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

    /// Waiting to accept holds one entry per waiting task, given back when the wait is dropped
    /// (`accept`'s future, or a handle that polled `poll_accept`) or ends; a dropped wait loses
    /// no stream, and every waiter is woken by an arrival.
    #[test]
    fn waiting_to_accept_holds_nothing_once_the_waiters_are_gone() {
        use crate::test_wakers::WakeCount;
        use std::pin::pin;
        let (a, b) = crate::pipe();
        let (client, cd) = Session::client(a, Config::default());
        let (server, sd) = Session::server(b, Config::default());
        let waiting = || server.shared.lock().acceptors.len();
        let (count, waker) = WakeCount::waker();
        let mut cx = Context::from_waker(&waker);
        for _ in 0..100 {
            let mut accept = pin!(server.accept());
            assert!(accept.as_mut().poll(&mut cx).is_pending());
            assert!(
                accept.as_mut().poll(&mut cx).is_pending(),
                "polled twice, held once"
            );
            let mut handle = server.clone();
            assert!(handle.poll_accept(&mut cx).is_pending());
            assert_eq!(waiting(), 2);
        }
        assert_eq!(waiting(), 0, "every dropped wait gave its entry back");
        let mut kept = server.clone();
        assert!(kept.poll_accept(&mut cx).is_pending());
        let mut dropped = Box::pin(server.accept());
        assert!(dropped.as_mut().poll(&mut cx).is_pending());
        smol::block_on(async {
            let ex = smol::Executor::new();
            ex.spawn(cd).detach();
            ex.spawn(sd).detach();
            ex.run(async {
                let _s = client.open().await.expect("open");
                let until = std::time::Instant::now() + Duration::from_secs(10);
                while count.get() < 2 {
                    assert!(
                        std::time::Instant::now() < until,
                        "the waiters were not woken"
                    );
                    smol::future::yield_now().await;
                }
                assert_eq!(waiting(), 0, "woken: their entries are free");
                // The woken `accept` is dropped without taking the stream; the other takes it.
                drop(dropped);
                assert!(matches!(kept.poll_accept(&mut cx), Poll::Ready(Ok(_))));
                assert_eq!(waiting(), 0);
            })
            .await;
        });
    }
}
