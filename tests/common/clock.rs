//! A virtual clock for the caller's timer ([`ysmux::SleepFn`]): time moves only when the test
//! advances it, and a sleep completes once the clock has reached its deadline. Deterministic: a
//! test asserts what happened by a virtual time, never a wall-clock one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::oneshot;
use ysmux::SleepFn;

/// The clock: its time, and the sleeps not yet due.
#[derive(Clone, Default)]
pub struct VirtualClock {
    inner: Arc<Mutex<Clock>>,
}

#[derive(Default)]
struct Clock {
    now: Duration,
    /// Deadline, and what completes the sleep.
    sleeps: Vec<(Duration, oneshot::Sender<()>)>,
}

impl VirtualClock {
    /// The timer to give a session or a pool: a sleep of `d` ends at the clock's time now + `d`.
    pub fn sleep_fn(&self) -> SleepFn {
        let clock = self.clone();
        Arc::new(move |d| {
            let (tx, rx) = oneshot::channel();
            let mut c = clock.inner.lock().unwrap();
            let deadline = c.now + d;
            c.sleeps.push((deadline, tx));
            drop(c);
            Box::pin(async move {
                let _ = rx.await;
            })
        })
    }

    /// The clock's time.
    pub fn now(&self) -> Duration {
        self.inner.lock().unwrap().now
    }

    /// Sleeps asked for and not yet due (nor dropped by whoever asked).
    pub fn waiting(&self) -> usize {
        let c = self.inner.lock().unwrap();
        c.sleeps.iter().filter(|(_, tx)| !tx.is_canceled()).count()
    }

    /// Moves the clock on by `d`, completing every sleep due by then; returns how many.
    pub fn advance(&self, d: Duration) -> usize {
        let mut c = self.inner.lock().unwrap();
        c.now += d;
        let now = c.now;
        let (due, later): (Vec<_>, Vec<_>) = c.sleeps.drain(..).partition(|(at, _)| *at <= now);
        c.sleeps = later;
        drop(c);
        due.into_iter()
            .filter_map(|(_, tx)| tx.send(()).ok())
            .count()
    }
}
