//! What a pool's handles and its driver share: the sessions up, the connects in flight, demand.
//!
//! **Lock order.** The pool's lock comes first: a session's lock (`shared/mod.rs`) may be taken while
//! it is held (to read a member's load or stats), never the other way round. **Nobody is woken
//! under it, and no user code runs under it**: [`PoolShared::lock`] returns a guard that wakes the
//! driver, if asked to, after the lock is released; the connector and the timer are called by the
//! driver with no lock held; reservations and listeners, whose drop may wake a task, are dropped
//! outside it.

use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::Waker;

use event_listener::Event;

use super::error::{ConnectError, PoolError};
use crate::error::ConfigError;
use crate::session::Session;

/// A session of the pool.
#[derive(Debug)]
pub(crate) struct Member {
    /// The pool's own number for it (never reused).
    pub(crate) id: u64,
    pub(crate) session: Session,
    /// Streams opened and accepted when the idle check last found it without streams.
    pub(crate) idle_mark: Option<u64>,
    /// When its connect completed.
    pub(crate) started: std::time::Instant,
    /// Whether its peer is still heard from: see [`Health`].
    pub(crate) health: Health,
}

/// What the health check (`PoolConfig::with_health_check`) knows of a session.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// Bytes in at the last look.
    pub(crate) heard: u64,
    /// Bytes out when the peer was last heard from.
    pub(crate) sent_mark: u64,
    /// Looks in a row that found frames sent since the peer was last heard from, and nothing new.
    pub(crate) silent: u32,
    /// Probed, and no new stream goes to it until its peer is heard from again.
    pub(crate) suspect: bool,
}

impl Member {
    /// Whether new streams may go to it: up, and not suspect.
    pub(crate) fn takes_streams(&self) -> bool {
        !self.health.suspect && !self.session.is_closed()
    }
}

/// The state behind the lock.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) members: Vec<Member>,
    /// Connects in flight.
    pub(crate) connecting: usize,
    /// A handle found every session busy (or none): connect another if allowed.
    pub(crate) demand: bool,
    /// No more connects or opens: shut down, or every handle is gone.
    pub(crate) closing: bool,
    /// The driver is gone: nothing moves any more.
    pub(crate) driver_gone: bool,
    /// The config was refused.
    pub(crate) invalid: Option<ConfigError>,
    /// The load at which a session counts as busy.
    pub(crate) threshold: usize,
    /// `Pool` handles alive.
    pub(crate) handles: usize,
    /// The last connect error, until a session is up again.
    pub(crate) last_error: Option<ConnectError>,
    pub(crate) stats: Counters,
    driver: Option<Waker>,
    /// The driver is to be woken once the lock is released.
    wake: Option<Waker>,
}

/// The counters of [`PoolStats`](super::PoolStats).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counters {
    pub(crate) connects: u64,
    pub(crate) connect_failures: u64,
    pub(crate) sessions_ended: u64,
}

impl State {
    /// Why nothing can be opened, if so.
    pub(crate) fn error(&self) -> Option<PoolError> {
        if let Some(what) = self.invalid {
            Some(PoolError::InvalidConfig(what))
        } else if self.closing || self.driver_gone {
            Some(PoolError::Closed)
        } else {
            None
        }
    }

    /// Asks the driver to look at the state again: it is woken once the lock is released.
    pub(crate) fn wake_driver(&mut self) {
        if let Some(w) = self.driver.take() {
            self.wake = Some(w);
        }
    }

    /// Tells the driver another session is wanted (it decides whether it may connect one).
    pub(crate) fn ask_for_session(&mut self) {
        if !self.demand {
            self.demand = true;
            self.wake_driver();
        }
    }

    /// Where the driver is woken.
    pub(crate) fn set_driver(&mut self, waker: &Waker) {
        match &self.driver {
            Some(w) if w.will_wake(waker) => {}
            _ => self.driver = Some(waker.clone()),
        }
    }
}

/// The shared part: the state and the event of its changes.
#[derive(Debug, Default)]
pub(crate) struct PoolShared {
    state: Mutex<State>,
    /// Notified for everyone when a session joins or leaves, a connect fails, or the pool closes.
    pub(crate) changed: Event,
}

impl PoolShared {
    /// Locks the state; the driver, if asked for meanwhile, is woken when the guard is dropped,
    /// after the lock is released.
    pub(crate) fn lock(&self) -> PoolLocked<'_> {
        PoolLocked(Some(
            self.state.lock().unwrap_or_else(PoisonError::into_inner),
        ))
    }

    pub(crate) fn notify_changed(&self) {
        self.changed.notify(usize::MAX);
    }
}

/// The pool's locked state; see [`PoolShared::lock`].
#[derive(Debug)]
pub(crate) struct PoolLocked<'a>(Option<MutexGuard<'a, State>>);

impl Deref for PoolLocked<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        self.0.as_ref().expect("held until dropped")
    }
}

impl DerefMut for PoolLocked<'_> {
    fn deref_mut(&mut self) -> &mut State {
        self.0.as_mut().expect("held until dropped")
    }
}

impl Drop for PoolLocked<'_> {
    fn drop(&mut self) {
        let mut guard = self.0.take().expect("dropped once");
        let wake = guard.wake.take();
        drop(guard);
        if let Some(w) = wake {
            w.wake();
        }
    }
}
