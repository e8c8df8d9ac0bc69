//! Flow control of one stream, as two small types with checked arithmetic: [`SendCredit`], what
//! this side may still send, and [`RecvWindow`], what it lets the peer send and what that costs
//! the session's growth budget.
//!
//! Every window computation of the core goes through these: a peer's frame that would take a
//! count past its bound is a protocol error returned here, and the rules that hold whatever the
//! peer does (`credit + unread <= window`, growth counted while held) are debug assertions here,
//! checked at every change rather than by a walk afterwards.

use super::budget::Budget;

/// A confirm would take the send credit past `u32::MAX`: only a broken peer grants that much.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CreditOverflow;

/// Bytes this side may still send on a stream before the peer confirms more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SendCredit {
    credit: u32,
}

/// A credit that never runs out: xtaci's v1 has no flow control.
const UNLIMITED: u32 = u32::MAX;

impl SendCredit {
    /// A new stream's credit: the peer's window.
    pub(crate) fn new(window: u32) -> Self {
        SendCredit { credit: window }
    }

    /// Credit without end, for a wire without flow control.
    pub(crate) fn unlimited() -> Self {
        SendCredit::new(UNLIMITED)
    }

    /// The credit now.
    pub(crate) fn get(self) -> u32 {
        self.credit
    }

    /// Spends `n` bytes of credit on data queued for the peer.
    pub(crate) fn spend(&mut self, n: u32) {
        debug_assert!(n <= self.credit, "spent {n} of {} credit", self.credit);
        if self.credit != UNLIMITED {
            self.credit -= n;
        }
    }

    /// xtaci's v2 UPD: of the `window` the peer takes in flight, `in_flight` bytes are (sent and
    /// not yet read): the credit is the rest. Returns whether the credit grew.
    pub(crate) fn update(&mut self, in_flight: u32, window: u32) -> bool {
        let before = self.credit;
        self.credit = window.saturating_sub(in_flight);
        self.credit > before
    }

    /// The peer confirmed `n` bytes. With the base protocol (`window` is `Some`), a confirm for
    /// more than is outstanding is late (the original confirms after its FIN answer, for an id
    /// that may have been reused) and ignored; with window growth agreed (`None`), a confirm is
    /// credit, and one past `u32::MAX` is the peer's error. Returns whether credit was added.
    pub(crate) fn confirm(&mut self, n: u32, window: Option<u32>) -> Result<bool, CreditOverflow> {
        match window {
            Some(w) => {
                debug_assert!(
                    self.credit <= w,
                    "credit {} beyond the window {w}",
                    self.credit
                );
                if n > w - self.credit {
                    return Ok(false);
                }
                self.credit += n;
            }
            None => self.credit = self.credit.checked_add(n).ok_or(CreditOverflow)?,
        }
        Ok(n > 0)
    }
}

/// The peer sent more than it was granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exceeded;

/// The receive side of a stream's window: what this stream may hold (unread bytes plus what the
/// peer may still send), what the peer may still send, and what of the growth budget the stream
/// is charged for.
///
/// The charge is what the stream may hold beyond the base window: the larger of its window and
/// what it holds (a window that shrank while the bytes of the grown one are still unread or in
/// flight), less the base. So growth goes back to the budget only when the stream no longer
/// holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecvWindow {
    window: u32,
    credit: u32,
    charged: u32,
}

impl RecvWindow {
    /// A new stream's window: the base, all of it granted.
    pub(crate) fn new(base: u32) -> Self {
        RecvWindow::granted(base, base)
    }

    /// A new stream's window `base`, of which the peer takes `credit` as granted before it hears
    /// from this side (xtaci's v2 sender assumes 256 KiB): at most the window.
    pub(crate) fn granted(base: u32, credit: u32) -> Self {
        RecvWindow {
            window: base,
            credit: credit.min(base),
            charged: 0,
        }
    }

    /// What the stream may hold now.
    pub(crate) fn window(&self) -> u32 {
        self.window
    }

    /// What the peer may still send.
    #[cfg_attr(not(any(test, feature = "fuzzing")), allow(dead_code))]
    pub(crate) fn credit(&self) -> u32 {
        self.credit
    }

    /// What the growth budget counts for this stream.
    pub(crate) fn charged(&self) -> u32 {
        self.charged
    }

    /// `n` bytes arrived from the peer.
    pub(crate) fn receive(&mut self, n: u32) -> Result<(), Exceeded> {
        self.credit = self.credit.checked_sub(n).ok_or(Exceeded)?;
        Ok(())
    }

    /// What this side may confirm now, with `unread` bytes held: its window less what it holds
    /// and what the peer may still send. With the base window, exactly the bytes read and not
    /// yet confirmed.
    pub(crate) fn grantable(&self, unread: usize) -> u32 {
        self.window
            .saturating_sub(self.credit)
            .saturating_sub(unread as u32)
    }

    /// Grants the peer everything grantable (a confirm); returns how much.
    pub(crate) fn grant(&mut self, unread: usize) -> u32 {
        let n = self.grantable(unread);
        self.credit += n;
        debug_assert!(n == 0 || self.held(unread) <= self.window);
        n
    }

    /// What the stream holds: unread bytes plus what the peer may still send.
    fn held(&self, unread: usize) -> u32 {
        (unread as u64 + u64::from(self.credit)).min(u64::from(u32::MAX)) as u32
    }

    /// Sets the window to `next` (growth within `growth`'s budget; a shrink always), and charges
    /// the budget for what the stream may hold beyond `base` now. A growth the budget cannot take
    /// leaves the window as it was.
    pub(crate) fn resize(&mut self, next: u32, unread: usize, base: u32, growth: &mut Budget) {
        if next > self.window {
            let want = next - base;
            if want > self.charged {
                if !growth.try_add((want - self.charged) as usize) {
                    return;
                }
                self.charged = want;
            }
            self.window = next;
        } else {
            self.window = next;
        }
        self.recharge(unread, base, growth);
    }

    /// Gives back to `growth` what the stream no longer holds beyond its window and `base`.
    pub(crate) fn recharge(&mut self, unread: usize, base: u32, growth: &mut Budget) {
        let due = self.window.max(self.held(unread)).saturating_sub(base);
        if due < self.charged {
            growth.remove((self.charged - due) as usize);
            self.charged = due;
        }
        debug_assert!(
            self.held(unread) <= base + self.charged,
            "a stream holds {} beyond the base {base} and its charge {}",
            self.held(unread),
            self.charged
        );
    }

    /// The stream holds nothing any more (closed by this side: its data is dropped and what the
    /// peer still sends is discarded): back to the base window, all growth given back.
    pub(crate) fn release(&mut self, base: u32, growth: &mut Budget) {
        growth.remove(self.charged as usize);
        self.charged = 0;
        self.window = base;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_cannot_send_past_its_credit() {
        let mut w = RecvWindow::new(10);
        assert_eq!(w.receive(4), Ok(()));
        assert_eq!(w.receive(7), Err(Exceeded));
        assert_eq!(w.credit(), 6);
        assert_eq!(w.grantable(4), 0);
        assert_eq!(w.grantable(0), 4);
        assert_eq!(w.grant(0), 4);
        assert_eq!(w.credit(), 10);
    }

    #[test]
    fn a_stale_confirm_is_ignored_and_an_overflowing_grant_is_an_error() {
        let mut c = SendCredit::new(10);
        c.spend(4);
        assert_eq!(c.confirm(5, Some(10)), Ok(false));
        assert_eq!(c.confirm(4, Some(10)), Ok(true));
        assert_eq!(c.get(), 10);
        assert_eq!(c.confirm(u32::MAX - 10, None), Ok(true));
        assert_eq!(c.confirm(1, None), Err(CreditOverflow));
        assert_eq!(c.get(), u32::MAX);
    }

    #[test]
    fn growth_is_charged_while_held_and_given_back_once_read() {
        let mut budget = Budget::new(100);
        let mut w = RecvWindow::new(100);
        w.resize(200, 0, 100, &mut budget);
        assert_eq!((w.window(), w.charged(), budget.held()), (200, 100, 100));
        // A grant for the grown window, filled by the peer.
        assert_eq!(w.grant(0), 100);
        w.receive(200).unwrap();
        // The window halves while 180 bytes are still unread: the charge stays.
        w.resize(100, 180, 100, &mut budget);
        assert_eq!((w.window(), w.charged(), budget.held()), (100, 80, 80));
        // Read down to 50: the stream holds no more than the base.
        w.recharge(50, 100, &mut budget);
        assert_eq!((w.charged(), budget.held()), (0, 0));
        // A second grow that the budget cannot take leaves the window.
        let mut other = Budget::new(10);
        w.resize(200, 0, 100, &mut other);
        assert_eq!(w.window(), 100);
    }
}
