//! [`PoolDriver`]: the one future that connects, drives every session of the pool, backs off and
//! lets idle sessions go.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream as _;
use futures_util::stream::FuturesUnordered;

use super::config::PoolConfig;
use super::connect::Connect;
use super::error::{ConnectError, PoolError};
use super::state::{Health, Member, PoolShared, State};
use crate::core::wire::Protocol;
use crate::driver::Driver;
use crate::error::Error;
use crate::session::Session;

/// Rounds in one poll before the driver yields to its executor (a timer that is always ready
/// and a connector that always fails at once must not hold the thread).
const ROUNDS_PER_POLL: usize = 32;
/// A session that ends sooner than this after its connect counts as a failed connect (backed off
/// from), as one that ends before it carried a stream does.
const HEALTHY_AFTER: Duration = Duration::from_secs(1);

type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;
/// A ping of a suspect session, with the pool's number for it.
type Probe = (
    u64,
    Pin<Box<dyn Future<Output = Result<Duration, Error>> + Send>>,
);
/// A session is suspect after silence of this many of its round trips (and one health period).
const SILENT_ROUND_TRIPS: u32 = 4;

/// The background future of a [`Pool`](super::Pool): spawn it on your executor (or poll it).
///
/// It runs the connects, the driver of every session of the pool (see the module docs for why
/// they share this one future), the backoff after failed connects and the idle checks, all on
/// the timer of the [`PoolConfig`]. It resolves with `Ok(())` once the pool was shut down (or
/// every handle dropped) and every session has ended, or at once with
/// [`PoolError::InvalidConfig`] for a refused config. Dropping it ends every session of the pool
/// (their streams fail with [`Error::SessionClosed`]) and closes the pool.
#[must_use = "the pool does nothing unless its driver is spawned or polled"]
pub struct PoolDriver<C: Connect> {
    shared: Arc<PoolShared>,
    connector: C,
    config: PoolConfig,
    connects: FuturesUnordered<C::Future>,
    sessions: FuturesUnordered<Running<C::Io>>,
    backoff: Option<Sleep>,
    /// A backoff decided under the pool's lock, its sleep to be asked of the timer after it.
    backoff_due: Option<Duration>,
    idle_timer: Option<Sleep>,
    health_timer: Option<Sleep>,
    /// Pings of the suspect sessions, until they are answered or the session ends.
    probes: Vec<Probe>,
    /// Failures in a row: connects that failed, sessions that ended before they carried a stream
    /// or within [`HEALTHY_AFTER`].
    failures: u32,
    next_id: u64,
    done: bool,
}

impl<C: Connect> fmt::Debug for PoolDriver<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolDriver")
            .field("sessions", &self.sessions.len())
            .field("connecting", &self.connects.len())
            .field("failures", &self.failures)
            .field("backing_off", &self.backoff.is_some())
            .finish_non_exhaustive()
    }
}

/// A session's driver, with the pool's number for the session.
struct Running<T> {
    id: u64,
    driver: Driver<T>,
}

impl<T: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin> Future for Running<T> {
    type Output = (u64, Result<(), Error>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let id = self.id;
        Pin::new(&mut self.driver).poll(cx).map(|r| (id, r))
    }
}

impl<C: Connect> PoolDriver<C> {
    pub(crate) fn new(shared: Arc<PoolShared>, connector: C, config: PoolConfig) -> Self {
        PoolDriver {
            shared,
            connector,
            config,
            connects: FuturesUnordered::new(),
            sessions: FuturesUnordered::new(),
            backoff: None,
            backoff_due: None,
            idle_timer: None,
            health_timer: None,
            probes: Vec::new(),
            failures: 0,
            next_id: 0,
            done: false,
        }
    }

    /// A connect failed (or a session ended too soon to count as up): wait before the next (the
    /// sleep is asked of the timer once the lock is released: [`PoolDriver::start_backoff`]).
    fn failed(&mut self, st: &mut State, error: Option<ConnectError>) {
        self.failures = self.failures.saturating_add(1);
        st.stats.connect_failures += 1;
        let wait = self.config.backoff(self.failures);
        trace_event!(
            warn,
            error = ?error,
            failures = self.failures,
            ?wait,
            "pool: connect failed, backing off"
        );
        if let Some(e) = error {
            st.last_error = Some(e);
        }
        self.backoff_due = Some(wait);
    }

    /// Whether a backoff runs or is due.
    fn backing_off(&self) -> bool {
        self.backoff.is_some() || self.backoff_due.is_some()
    }

    /// Starts the sleep of a backoff that is due (no lock held: the timer is the caller's code).
    fn start_backoff(&mut self) -> bool {
        match self.backoff_due.take() {
            Some(wait) => {
                self.backoff = Some((self.config.sleep)(wait));
                true
            }
            None => false,
        }
    }

    /// A session's driver returned with `result` (the `tracing` feature reports it).
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    fn session_ended(
        &mut self,
        st: &mut State,
        id: u64,
        result: Result<(), Error>,
    ) -> Option<Session> {
        trace_event!(info, session = id, ?result, "pool: a session ended");
        st.stats.sessions_ended += 1;
        let at = st.members.iter().position(|m| m.id == id)?;
        let member = st.members.swap_remove(at);
        if st.closing {
            return Some(member.session);
        }
        let stats = member.session.stats();
        let carried = stats.streams_opened + stats.streams_accepted > 0;
        if !carried || member.started.elapsed() < HEALTHY_AFTER {
            // Connected, but the session ended before it carried a stream, or soon after: a
            // peer that answers and then turns us away (at its connection limit, or draining
            // for a restart) is as good as a failed connect, and is backed off from.
            self.failed(st, None);
        } else {
            self.failures = 0;
        }
        Some(member.session)
    }

    /// A connect completed.
    /// A connect completed; its session (made with no lock held) joins the pool, or, if the pool
    /// is closing, is handed back to be dropped once the lock is released.
    fn connect_done(
        &mut self,
        st: &mut State,
        result: Result<(Session, Driver<C::Io>), C::Error>,
    ) -> Option<(Session, Driver<C::Io>)> {
        st.connecting = st.connecting.saturating_sub(1);
        match result {
            Ok(made) if st.closing => Some(made),
            Ok((session, driver)) => {
                let id = self.next_id;
                self.next_id += 1;
                st.members.push(Member {
                    id,
                    session,
                    idle_mark: None,
                    started: Instant::now(),
                    health: Health::default(),
                });
                st.last_error = None;
                self.sessions.push(Running { id, driver });
                None
            }
            Err(e) => {
                let e: ConnectError = Arc::from(e.into());
                self.failed(st, Some(e));
                None
            }
        }
    }

    /// How many connects the pool needs now: up to the minimum, and one more (up to the maximum)
    /// when a handle found every session busy. Growth is one connect at a time.
    /// A suspect session does not count: it is replaced while it is suspect.
    fn connects_wanted(&self, st: &mut State) -> usize {
        let live = st.members.iter().filter(|m| !m.health.suspect).count();
        let mut want = self.config.min;
        if std::mem::take(&mut st.demand) {
            want = want.max(live + 1);
        }
        want.min(self.config.max)
            .saturating_sub(live + st.connecting)
    }

    /// Starts up to `n` connects, with no lock held (the connector is the caller's code); each is
    /// counted under the lock once started.
    fn start_connects(&mut self, n: usize, cx: &mut Context<'_>) -> bool {
        let mut started = false;
        for _ in 0..n {
            if self.backing_off() {
                break;
            }
            match self.connector.poll_ready(cx) {
                Poll::Ready(Ok(())) => {
                    self.connects.push(self.connector.connect());
                    let shared = self.shared.clone();
                    let mut st = shared.lock();
                    st.connecting += 1;
                    st.stats.connects += 1;
                    started = true;
                }
                Poll::Ready(Err(e)) => {
                    let e: ConnectError = Arc::from(e.into());
                    let shared = self.shared.clone();
                    let mut st = shared.lock();
                    st.stats.connects += 1;
                    self.failed(&mut st, Some(e));
                    drop(st);
                    shared.notify_changed();
                    started = true;
                }
                Poll::Pending => break,
            }
        }
        started
    }

    /// The health check: finds the sessions that sent frames and have heard nothing for longer
    /// than [`SILENT_ROUND_TRIPS`] round trips and one period, and returns them (to probe once
    /// the lock is released); clears those heard from again. Returns whether any changed.
    fn look_for_silence(&mut self, st: &mut State, suspects: &mut Vec<(u64, Session)>) -> bool {
        let Some(period) = self.config.health else {
            return false;
        };
        let mut changed = false;
        for m in &mut st.members {
            if m.session.protocol() != Protocol::Yddeng {
                // xtaci's wire has no probe to clear a suspicion, and on v1 a one-way transfer
                // brings nothing back at all: silence says nothing there.
                continue;
            }
            let stats = m.session.stats();
            let h = &mut m.health;
            if stats.bytes_in != h.heard {
                h.heard = stats.bytes_in;
                h.sent_mark = stats.bytes_out;
                h.silent = 0;
                changed |= std::mem::take(&mut h.suspect);
                continue;
            }
            if stats.bytes_out == h.sent_mark {
                continue; // nothing sent since the peer was heard from: idle, not silent
            }
            h.silent = h.silent.saturating_add(1);
            // `silent` looks in a row mean at least `silent - 1` periods without an answer.
            let rtt = stats.last_rtt.unwrap_or(Duration::ZERO) * SILENT_ROUND_TRIPS;
            let periods = (rtt.as_nanos() / period.as_nanos().max(1) + 1).max(1);
            if !h.suspect && u128::from(h.silent) > periods {
                h.suspect = true;
                changed = true;
                suspects.push((m.id, m.session.clone()));
                trace_event!(
                    warn,
                    session = m.id,
                    "pool: a session went silent, probing it"
                );
            }
        }
        changed
    }

    /// Polls the pings of suspect sessions (no lock held); returns the sessions that answered.
    fn poll_probes(&mut self, cx: &mut Context<'_>) -> Vec<u64> {
        let mut answered = Vec::new();
        self.probes
            .retain_mut(|(id, ping)| match ping.as_mut().poll(cx) {
                Poll::Ready(Ok(_)) => {
                    answered.push(*id);
                    false
                }
                Poll::Ready(Err(_)) => false, // the session ended: its driver reports it
                Poll::Pending => true,
            });
        answered
    }

    /// The idle check: lets go surplus sessions found without streams twice in a row, with no
    /// stream opened in between. Returns the sessions let go (to drop outside the lock).
    fn let_idle_go(&mut self, st: &mut State) -> Vec<Session> {
        let mut surplus = st.members.len().saturating_sub(self.config.min);
        let mut gone = Vec::new();
        let mut i = st.members.len();
        while i > 0 {
            i -= 1;
            let m = &mut st.members[i];
            let stats = m.session.stats();
            let activity = stats.streams_opened + stats.streams_accepted;
            let idle = stats.streams_active == 0;
            if idle && m.idle_mark == Some(activity) && surplus > 0 {
                surplus -= 1;
                gone.push(st.members.remove(i).session);
            } else {
                m.idle_mark = idle.then_some(activity);
            }
        }
        gone
    }
}

impl<C: Connect> Future for PoolDriver<C> {
    type Output = Result<(), PoolError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(Ok(()));
        }
        let shared = this.shared.clone();
        // Sessions let go or ended are dropped after the lock is released (dropping takes theirs).
        let mut dropped: Vec<Session> = Vec::new();
        for _ in 0..ROUNDS_PER_POLL {
            let mut progress = false;
            let mut changed = false;
            // The sessions' drivers and the connects run without the pool's lock, so that
            // handles opening streams never wait for a transport.
            let mut ended = Vec::new();
            let mut reports: Vec<(Session, Result<(), Error>)> = Vec::new();
            while let Poll::Ready(Some(end)) = Pin::new(&mut this.sessions).poll_next(cx) {
                ended.push(end);
            }
            let mut connected = Vec::new();
            while let Poll::Ready(Some(result)) = Pin::new(&mut this.connects).poll_next(cx) {
                let config = &this.config.session;
                connected.push(result.map(|io| Session::client(io, config.clone())));
            }
            let mut unwanted = Vec::new();
            if let Some(b) = &mut this.backoff {
                if b.as_mut().poll(cx).is_ready() {
                    this.backoff = None;
                    progress = true;
                }
            }
            let mut health_check = false;
            if let Some(t) = &mut this.health_timer {
                if t.as_mut().poll(cx).is_ready() {
                    this.health_timer = None;
                    health_check = true;
                    progress = true;
                }
            }
            let answered = this.poll_probes(cx);
            let mut suspects = Vec::new();
            let mut idle_check = false;
            if let Some(t) = &mut this.idle_timer {
                if t.as_mut().poll(cx).is_ready() {
                    this.idle_timer = None;
                    idle_check = true;
                    progress = true;
                }
            }
            let mut st = shared.lock();
            if let Some(what) = st.invalid {
                this.done = true;
                st.driver_gone = true;
                drop(st);
                shared.notify_changed();
                return Poll::Ready(Err(PoolError::InvalidConfig(what)));
            }
            st.set_driver(cx.waker());
            progress |= !ended.is_empty() || !connected.is_empty();
            changed |= !ended.is_empty() || !connected.is_empty();
            for (id, result) in ended {
                if let Some(session) = this.session_ended(&mut st, id, result.clone()) {
                    if this.config.on_session_end.is_some() && !st.closing {
                        reports.push((session.clone(), result));
                    }
                    dropped.push(session);
                }
            }
            for result in connected {
                unwanted.extend(this.connect_done(&mut st, result));
            }
            for id in answered {
                if let Some(m) = st.members.iter_mut().find(|m| m.id == id) {
                    // Heard from again: it takes streams; the next look starts afresh.
                    m.health = Health::default();
                    changed = true;
                }
            }
            if health_check {
                changed |= this.look_for_silence(&mut st, &mut suspects);
            }
            if idle_check {
                let gone = this.let_idle_go(&mut st);
                changed |= !gone.is_empty();
                dropped.extend(gone);
            }
            if st.handles == 0 && !st.closing {
                // Every handle is gone: let every session go; each closes when its streams end.
                st.closing = true;
                dropped.extend(st.members.drain(..).map(|m| m.session));
                changed = true;
            }
            let mut connects = 0;
            let mut idle_timer = None;
            let mut health_timer = None;
            if st.closing {
                this.connects = FuturesUnordered::new();
                st.connecting = 0;
                this.backoff = None;
                this.backoff_due = None;
                this.idle_timer = None;
                this.health_timer = None;
                this.probes.clear();
                suspects.clear();
                if this.sessions.is_empty() {
                    this.done = true;
                    let members = std::mem::take(&mut st.members);
                    drop(st);
                    drop(members);
                    drop(unwanted);
                    drop(dropped);
                    shared.notify_changed();
                    return Poll::Ready(Ok(()));
                }
            } else {
                connects = this.connects_wanted(&mut st);
                idle_timer = this
                    .config
                    .idle
                    .filter(|_| this.idle_timer.is_none() && st.members.len() > this.config.min);
                health_timer = this
                    .config
                    .health
                    .filter(|_| this.health_timer.is_none() && !st.members.is_empty());
            }
            drop(st);
            // The caller's code (the session-end report) runs with no lock held.
            if let Some(report) = &this.config.on_session_end {
                for (session, result) in reports.drain(..) {
                    report(&session, &result);
                }
            }
            // Probes are polled (sending the ping) with no lock held, in the next round.
            progress |= !suspects.is_empty();
            for (id, session) in suspects {
                this.probes
                    .push((id, Box::pin(async move { session.ping().await })));
            }
            drop(unwanted); // sessions of connects that completed while closing
            if changed {
                shared.notify_changed();
            }
            // The caller's code (timer, connector) runs with no lock held.
            progress |= this.start_backoff();
            progress |= this.start_connects(connects, cx);
            if let Some(idle) = idle_timer {
                this.idle_timer = Some((this.config.sleep)(idle));
                progress = true;
            }
            if let Some(every) = health_timer {
                this.health_timer = Some((this.config.sleep)(every));
                progress = true;
            }
            dropped.clear();
            if !progress {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Nothing of the driver is pinned structurally: its futures live in `FuturesUnordered` and
/// boxes, and the connector is only ever used by `&mut`. So it is `Unpin` whatever `C` is.
impl<C: Connect> Unpin for PoolDriver<C> {}

impl<C: Connect> Drop for PoolDriver<C> {
    fn drop(&mut self) {
        let members = {
            let mut st = self.shared.lock();
            st.driver_gone = true;
            st.connecting = 0;
            std::mem::take(&mut st.members)
        };
        drop(members);
        self.shared.notify_changed();
    }
}
