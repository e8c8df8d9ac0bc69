//! A pool of sessions to one peer, balanced and self-healing; and serving many sessions at once.
//!
//! One TCP connection carries only so much: once enough streams share it (or the network shapes
//! each flow), the connection is the bottleneck and more connections help. A [`Pool`] keeps
//! several sessions to one peer and is itself a `tower::Service` that opens a stream per call:
//!
//! - it makes sessions through a [`Connect`] you give (a closure or a `tower::Service` returning
//!   a transport), so any transport and any runtime works;
//! - it keeps between [`PoolConfig::with_sessions`] `min` and `max` sessions: another when every
//!   session is at its stream limit or at the [load threshold](PoolConfig::with_load_threshold),
//!   and surplus sessions let go after the [idle timeout](PoolConfig::with_idle_timeout);
//! - it spreads opens by [`Session::load`] with two random choices, so one slow connection,
//!   whose streams pile up, stops getting new ones;
//! - a session that fails (transport error, keepalive timeout, closed by the peer) is taken out
//!   at once, its streams see its error, and it is replaced, with backoff on your timer while
//!   connects fail;
//! - a session that sent frames and has heard nothing back for a few round trips is probed, gets
//!   no new streams and is replaced until its peer answers
//!   ([health check](PoolConfig::with_health_check)): a connection cut on the far side, which
//!   nothing here has seen fail yet, stops taking streams long before a keepalive gives up;
//! - [`Pool::shutdown`] shuts every session down gracefully until the deadline you give.
//!
//! [`serve()`] is the other side: every session of a listener's connections through one
//! `tower::Service<Stream>`, with the per-session backpressure of [`Session::serve`].
//!
//! ```
//! # smol::block_on(async {
//! use std::sync::Arc;
//! use futures::{AsyncReadExt, AsyncWriteExt};
//! use ysmux::pool::{Pool, PoolConfig};
//!
//! // The peer: an echo server per connection (here over in-memory pipes).
//! let connect = || {
//!     let (a, b) = ysmux::pipe();
//!     let (server, driver) = ysmux::Session::server(b, ysmux::Config::default());
//!     smol::spawn(driver).detach();
//!     smol::spawn(async move {
//!         while let Ok(s) = server.accept().await {
//!             smol::spawn(async move {
//!                 let (r, mut w) = s.split();
//!                 let _ = futures::io::copy(r, &mut w).await;
//!             })
//!             .detach();
//!         }
//!     })
//!     .detach();
//!     async move { Ok::<_, std::io::Error>(a) }
//! };
//! let sleep: ysmux::SleepFn = Arc::new(|d| Box::pin(async move { smol::Timer::after(d).await; }));
//! let (pool, driver) = Pool::new(connect, PoolConfig::new(sleep).with_sessions(2, 4));
//! smol::spawn(driver).detach(); // connects, drives every session, backs off, lets go
//!
//! let mut s = pool.open().await?;
//! s.write_all(b"hello").await?;
//! let mut buf = [0; 5];
//! s.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"hello");
//! let deadline = async { smol::Timer::after(std::time::Duration::from_secs(1)).await; };
//! pool.shutdown(deadline).await?;
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```
//!
//! # Why a driver, and no spawner
//! As [`Session::client`] returns a handle and a [`Driver`](crate::Driver), [`Pool::new`] returns
//! a handle and a [`PoolDriver`]: one future, spawned by you, that runs the connects, every
//! session's driver, the backoff and the idle checks. So the pool needs no executor, no `Send`
//! or `'static` bound it would not otherwise need, and dropping that one future ends everything.
//! The price: the sessions of a pool are driven by one task, so on a multi-threaded runtime they
//! share one thread at a time. A session's driver does little but copy between buffers and the
//! transport, so this limits only a pool that would saturate a core; the bottleneck a pool is made
//! for is a connection's, not the CPU's.
//!
//! The files: the handle in `mod.rs`, [`PoolConfig`] in `config.rs`, [`Connect`] in
//! `connect.rs`, the choice of session in `balance.rs`, [`PoolDriver`] in `driver.rs`, the shared
//! state in `state.rs`, [`PoolError`] in `error.rs`, serving in `serve.rs`.

mod balance;
mod config;
mod connect;
mod driver;
mod error;
mod serve;
mod state;

pub use self::config::{PoolConfig, SessionEndFn};
pub use self::connect::{BoxError, Connect, ServiceConnector};
pub use self::driver::PoolDriver;
pub use self::error::{ConnectError, PoolError};
pub use self::serve::{serve, Server};

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use event_listener::EventListener;
use futures_util::future::{join_all, FutureExt};
use futures_util::task::noop_waker_ref;

use self::balance::XorShift;
use self::state::PoolShared;
use crate::session::{Reservation, Session};
use crate::stream::Stream;

/// A pool of sessions to one peer: a handle, cheap to clone, and a `tower::Service` that opens a
/// stream per call (`Service<R, Response = Stream, Error = PoolError>` for any request type `R`,
/// which only triggers the open). Made by [`Pool::new`] with its [`PoolDriver`].
///
/// # Readiness
/// `poll_ready` reserves room for one stream on a session picked by load (see the module docs):
/// `call` then opens it without waiting. It is `Pending`, not an error, while no session has room
/// (every one at its [`Config::with_max_streams`](crate::Config::with_max_streams), or none up
/// yet, or every connect failing and backing off); it is woken when a stream closes, a session
/// joins, or the pool closes. So a pool whose peer is down waits, without limit: bound the wait
/// with your runtime's timeout around [`Pool::open`] (or `oneshot`), or with a `Buffer` under
/// tower's `Timeout`, which times only the call (see
/// [the tower module](crate::tower#what-bounds-what)).
/// It fails with [`PoolError::Closed`] once the pool is shut down or its driver is gone.
///
/// ```
/// # smol::block_on(async {
/// use std::{sync::Arc, time::Duration};
/// use ysmux::pool::{Pool, PoolConfig};
///
/// // A peer that is down: every connect fails.
/// let refused = || std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
/// let connect = move || async move { Err::<ysmux::Pipe, _>(refused()) };
/// let sleep: ysmux::SleepFn = Arc::new(|d| Box::pin(async move { smol::Timer::after(d).await; }));
/// let (pool, driver) = Pool::new(connect, PoolConfig::new(sleep));
/// smol::spawn(driver).detach();
///
/// let open = smol::future::or(async { Some(pool.open().await) }, async {
///     smol::Timer::after(Duration::from_millis(50)).await;
///     None // your runtime's timeout ended the wait
/// });
/// assert!(open.await.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
///
/// As with [`Opener`](crate::tower::Opener), the reservation belongs to this handle: a clone holds
/// none, dropping a ready handle gives it back, and a `call` without one fails with
/// [`PoolError::NotReady`]. So the pool is a well-behaved inner service for `Buffer`,
/// `ConcurrencyLimit` and `Timeout` (with the bounds the tower module describes: a `Timeout`
/// needs a `Buffer` under it to bound the wait, and a `ConcurrencyLimit` directly over the pool
/// bounds opens, not streams held).
///
/// When every handle is dropped, the pool connects no more and lets its sessions go: each closes
/// once its streams are done, and then the driver returns.
pub struct Pool {
    shared: Arc<PoolShared>,
    rng: XorShift,
    /// What the last `Ready(Ok)` promised `call`, on the session with this id.
    reservation: Option<(u64, Reservation)>,
    /// Where this handle waits for room on each session (by id), and for the pool to change.
    waits: Vec<(u64, Option<EventListener>)>,
    changed: Option<EventListener>,
}

/// A snapshot of a pool: [`Pool::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Sessions up now.
    pub sessions: usize,
    /// Connects in flight.
    pub connecting: usize,
    /// Connects started so far.
    pub connects: u64,
    /// Connects that failed (and sessions that ended before the peer sent anything).
    pub connect_failures: u64,
    /// Sessions that ended, for whatever reason (failed, closed by the peer, let go).
    pub sessions_ended: u64,
    /// Streams in use over every session.
    pub streams: usize,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("stats", &self.stats())
            .field("ready", &self.reservation.is_some())
            .finish_non_exhaustive()
    }
}

impl Clone for Pool {
    /// A clone shares the pool but not the reservation: it must be polled ready itself.
    fn clone(&self) -> Self {
        self.shared.lock().handles += 1;
        Pool::handle(self.shared.clone())
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.reservation = None;
        let mut st = self.shared.lock();
        st.handles -= 1;
        if st.handles == 0 {
            st.wake_driver();
        }
    }
}

impl Pool {
    /// Starts a pool that makes its sessions (client side, [`Session::client`]) over transports
    /// from `connector`. Returns the handle and the driver, a future you spawn (or poll): it
    /// connects, drives every session, and returns once the pool is shut down or every handle is
    /// gone and the sessions have ended. An invalid `config` (see [`PoolConfig::validate`]) makes
    /// a pool that opens nothing: `poll_ready` fails with its [`PoolError::InvalidConfig`], and
    /// so does the driver, at once.
    pub fn new<C: Connect>(connector: C, config: PoolConfig) -> (Pool, PoolDriver<C>) {
        let shared = Arc::new(PoolShared::default());
        {
            let mut st = shared.lock();
            st.handles = 1;
            st.threshold = config.load_threshold();
            if let Err(PoolError::InvalidConfig(what)) = config.validate() {
                st.invalid = Some(what);
            }
        }
        let driver = PoolDriver::new(shared.clone(), connector, config);
        (Pool::handle(shared), driver)
    }

    fn handle(shared: Arc<PoolShared>) -> Pool {
        Pool {
            shared,
            rng: XorShift::new(),
            reservation: None,
            waits: Vec::new(),
            changed: None,
        }
    }

    /// Opens a stream on the session the pool picks: waits as `poll_ready` does (see [`Pool`]).
    pub async fn open(&self) -> Result<Stream, PoolError> {
        let mut handle = self.clone();
        poll_fn(|cx| handle.poll_reserve(cx)).await?;
        handle.open_reserved()
    }

    /// Resolves once the pool has a session up (`Ok`), or when the last connect failed, none is
    /// up and none is in flight ([`PoolError::Connect`] with its error: opens would wait for a
    /// later attempt), or the pool is closed ([`PoolError::Closed`]). For a program that should report an unreachable peer at start rather than
    /// wait for it.
    pub fn connected(&self) -> impl Future<Output = Result<(), PoolError>> + Send + 'static {
        let shared = self.shared.clone();
        async move {
            loop {
                let listener = shared.changed.listen();
                {
                    let st = shared.lock();
                    if let Some(e) = st.error() {
                        return Err(e);
                    }
                    if st.members.iter().any(|m| !m.session.is_closed()) {
                        return Ok(());
                    }
                    match &st.last_error {
                        Some(e) if st.connecting == 0 => {
                            return Err(PoolError::Connect(e.clone()));
                        }
                        _ => {}
                    }
                }
                listener.await;
            }
        }
    }

    /// Handles to the sessions up now (for their [`Session::stats`], or to use one directly).
    pub fn sessions(&self) -> Vec<Session> {
        let st = self.shared.lock();
        st.members.iter().map(|m| m.session.clone()).collect()
    }

    /// The pool's counters and sizes now.
    pub fn stats(&self) -> PoolStats {
        let st = self.shared.lock();
        PoolStats {
            sessions: st.members.len(),
            connecting: st.connecting,
            connects: st.stats.connects,
            connect_failures: st.stats.connect_failures,
            sessions_ended: st.stats.sessions_ended,
            streams: st.members.iter().map(|m| m.session.num_streams()).sum(),
        }
    }

    /// Shuts the pool down gracefully: connects no more, fails `poll_ready` with
    /// [`PoolError::Closed`] from now on, and shuts every session down as [`Session::shutdown`]
    /// does, all with the one `deadline` (your runtime's timer): open streams may finish until it
    /// completes, then every session is closed. Resolves once every session has ended: `Ok(())`,
    /// or the error of a session that failed meanwhile. The [`PoolDriver`] must be running.
    pub async fn shutdown(&self, deadline: impl Future<Output = ()>) -> Result<(), PoolError> {
        let sessions = {
            let mut st = self.shared.lock();
            st.closing = true;
            st.wake_driver();
            st.members
                .iter()
                .map(|m| m.session.clone())
                .collect::<Vec<_>>()
        };
        self.shared.notify_changed();
        let deadline = deadline.shared();
        let results = join_all(sessions.iter().map(|s| s.shutdown(deadline.clone()))).await;
        results
            .into_iter()
            .find_map(Result::err)
            .map_or(Ok(()), |e| Err(PoolError::Session(e)))
    }

    /// Opens the stream `poll_reserve` reserved.
    fn open_reserved(&mut self) -> Result<Stream, PoolError> {
        match self.reservation.take() {
            Some((_, r)) => r.open().map_err(PoolError::Session),
            None => Err(PoolError::NotReady),
        }
    }

    /// Reserves room for a stream on a session picked by load, or waits for room (see
    /// [`Pool`]'s readiness). The pool's lock is held only to read which sessions are up: the
    /// sessions are polled, and reservations and listeners dropped, without it (`state.rs`).
    fn poll_reserve(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), PoolError>> {
        // Listen before looking, so that no change between the look and the wait is missed.
        if self.changed.is_none() {
            self.changed = Some(self.shared.changed.listen());
        }
        let (members, threshold) = {
            let st = self.shared.lock();
            if let Some(e) = st.error() {
                drop(st);
                self.reservation = None;
                return Poll::Ready(Err(e));
            }
            if let Some((id, _)) = &self.reservation {
                // Still good while its session is in the pool and up; else pick again.
                if st.members.iter().any(|m| m.id == *id && m.takes_streams()) {
                    return Poll::Ready(Ok(()));
                }
            }
            let up: Vec<(u64, Session)> = st
                .members
                .iter()
                .filter(|m| m.takes_streams())
                .map(|m| (m.id, m.session.clone()))
                .collect();
            (up, st.threshold)
        };
        self.reservation = None;
        let loads: Vec<usize> = members.iter().map(|(_, s)| s.load()).collect();
        if loads.iter().all(|&l| l >= threshold) {
            // Every session busy (or none up): ask for another; the driver decides.
            self.shared.lock().ask_for_session();
        }
        // Two random choices first, then the rest from the lightest; no waiting yet.
        let mut noop = Context::from_waker(noop_waker_ref());
        for k in balance::order(&mut self.rng, &loads) {
            let (id, session) = &members[k];
            if let Poll::Ready(Ok(r)) = session.poll_reserve(&mut None, &mut noop) {
                return self.reserved(*id, r);
            }
        }
        // No room anywhere: more sessions are wanted, and this handle waits for a stream to
        // close on any session, or for the pool to change.
        self.shared.lock().ask_for_session();
        self.waits
            .retain(|(id, _)| members.iter().any(|(m, _)| m == id));
        for (id, session) in &members {
            let slot = match self.waits.iter().position(|(w, _)| w == id) {
                Some(p) => &mut self.waits[p].1,
                None => {
                    self.waits.push((*id, None));
                    &mut self.waits.last_mut().expect("just pushed").1
                }
            };
            if let Poll::Ready(Ok(r)) = session.poll_reserve(slot, cx) {
                return self.reserved(*id, r);
            }
        }
        let changed = self.changed.as_mut().expect("listening since the start");
        if Pin::new(changed).poll(cx).is_ready() {
            // The pool changed since we looked: look again.
            self.changed = None;
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }

    /// Keeps the reservation made on session `id`; the waits are over.
    fn reserved(&mut self, id: u64, r: Reservation) -> Poll<Result<(), PoolError>> {
        self.reservation = Some((id, r));
        self.waits.clear();
        self.changed = None;
        Poll::Ready(Ok(()))
    }
}

impl<R> tower_service::Service<R> for Pool {
    type Response = Stream;
    type Error = PoolError;
    type Future = std::future::Ready<Result<Stream, PoolError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), PoolError>> {
        self.poll_reserve(cx)
    }

    fn call(&mut self, _request: R) -> Self::Future {
        std::future::ready(self.open_reserved())
    }
}
