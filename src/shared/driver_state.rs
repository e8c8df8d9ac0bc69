//! Whether the driver runs, was asked for something, was woken: one atomic beside the session's
//! lock, so that the driver returns without taking the lock again.

use std::sync::atomic::{AtomicU8, Ordering};

/// The driver's side of being asked to run, beside the lock: whether it is in a poll
/// ([`DriverState::RUNNING`], from the start of a round until it returns), whether it was asked
/// for something meanwhile (`ASKED`: it goes on rather than return), and whether it was woken
/// since its last round (`WOKEN`: nobody wakes it twice). One atomic, so that an ask and the
/// driver's decision to return are ordered: either the driver sees the ask, or the ask sees the
/// driver gone and wakes it.
#[derive(Debug, Default)]
pub(super) struct DriverState(AtomicU8);

impl DriverState {
    const RUNNING: u8 = 1;
    const ASKED: u8 = 2;
    const WOKEN: u8 = 4;

    /// A round begins: running, nothing asked, not woken.
    pub(super) fn round(&self) {
        self.0.store(Self::RUNNING, Ordering::Release);
    }

    /// Asks the driver to run. Returns whether the caller must wake it: it is not running, and
    /// nobody woke it since its last round.
    pub(super) fn ask(&self) -> bool {
        let prev = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                if s & Self::RUNNING != 0 {
                    (s & Self::ASKED == 0).then_some(s | Self::ASKED)
                } else {
                    (s & Self::WOKEN == 0).then_some(s | Self::WOKEN)
                }
            })
            .unwrap_or(Self::RUNNING); // unchanged: asked or woken already
        prev & Self::RUNNING == 0
    }

    /// The driver found nothing to do: if it was asked meanwhile, that is taken back and it goes
    /// on (returns false); otherwise it no longer runs (returns true).
    pub(super) fn idle(&self) -> bool {
        let step = |s: u8| {
            Some(if s & Self::ASKED != 0 {
                s & !Self::ASKED
            } else {
                s & !Self::RUNNING
            })
        };
        let prev = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, step)
            .unwrap_or_else(|s| s);
        prev & Self::ASKED == 0
    }

    /// A poll begins without a round's refill: running, if nobody asked or woke it since it
    /// returned.
    pub(super) fn run_unasked(&self) -> bool {
        self.0
            .compare_exchange(0, Self::RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The driver returns (yielding, or for good).
    pub(super) fn stop(&self) {
        self.0.fetch_and(!Self::RUNNING, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asked while it runs, the driver is not woken and goes on instead of returning; asked once
    /// it has returned, it is woken once, however many ask, until its next round.
    #[test]
    fn the_driver_is_woken_once_and_never_while_it_runs() {
        let d = DriverState::default();
        assert!(d.ask(), "a driver that never ran is woken");
        assert!(!d.ask(), "once");
        d.round();
        assert!(!d.ask(), "not while it runs");
        assert!(!d.ask());
        assert!(!d.idle(), "asked meanwhile: it goes on");
        assert!(d.idle(), "nothing asked since: it returns");
        assert!(d.ask(), "asked after it returned: woken");
        assert!(!d.ask(), "and only once");
        d.round();
        assert!(d.idle());
        d.round();
        d.stop(); // yields, its own wakeup set
        assert!(d.ask(), "asked after it yielded: woken as after it idles");
        assert!(!d.ask());
    }

    /// An ask and the driver's return race from two threads: whichever order they take, the
    /// driver either sees the ask (goes on) or is woken by it. Never both missed.
    #[test]
    fn an_ask_racing_the_drivers_return_is_never_lost() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        for _ in 0..2_000 {
            let d = Arc::new(DriverState::default());
            d.round();
            let start = Arc::new(AtomicBool::new(false));
            let asker = {
                let (d, start) = (d.clone(), start.clone());
                std::thread::spawn(move || {
                    while !start.load(Ordering::Acquire) {
                        std::hint::spin_loop();
                    }
                    d.ask()
                })
            };
            start.store(true, Ordering::Release);
            let returned = d.idle();
            let woke = asker.join().expect("asker");
            assert!(
                !returned || woke,
                "the driver returned and the ask woke nobody"
            );
            assert!(returned || !woke, "the driver went on and was woken too");
        }
    }
}
