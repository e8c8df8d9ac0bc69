//! The tasks waiting to accept a stream, kept under the session's lock.
//!
//! A waiter registers under the lock that found the accept backlog empty, and every waiter is
//! woken under the lock that queues the next stream (or ends the session), so no stream arrives
//! unseen between the two. Waking them all, as a broadcast, needs no hand-on of a notice when a
//! woken waiter is dropped: the others look for themselves. Each waiter holds a slot (its number
//! here) and gives it back when it accepts or is dropped, so the list never holds more than the
//! tasks waiting now.
//!
//! This replaces an event listener per wait: a stream per request made every accept allocate one
//! and every arrival notify through it (about 2% of a churn cycle's instructions).

use std::task::Waker;

/// Waiters for the accept backlog: a slot number and a waker each.
#[derive(Debug, Default)]
pub(crate) struct Acceptors {
    next: u64,
    waiting: Vec<(u64, Waker)>,
}

impl Acceptors {
    /// Registers (or refreshes) the waiter holding `slot` to be woken by `waker`; a waiter
    /// without a slot gets one.
    pub(crate) fn register(&mut self, slot: &mut Option<u64>, waker: &Waker) {
        let id = *slot.get_or_insert_with(|| {
            self.next += 1;
            self.next
        });
        match self.waiting.iter_mut().find(|(i, _)| *i == id) {
            Some((_, w)) => w.clone_from(waker),
            None => self.waiting.push((id, waker.clone())),
        }
    }

    /// The waiter holding `slot` waits no more.
    pub(crate) fn remove(&mut self, slot: &mut Option<u64>) {
        if let Some(id) = slot.take() {
            if let Some(i) = self.waiting.iter().position(|(w, _)| *w == id) {
                self.waiting.swap_remove(i);
            }
        }
    }

    /// Every waiter, to be woken (a stream arrived, or the session ended); their slots are free.
    pub(crate) fn take_all(&mut self, into: &mut Vec<Waker>) {
        into.extend(self.waiting.drain(..).map(|(_, w)| w));
    }

    /// How many wait now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_wakers::WakeCount;

    #[test]
    fn a_waiter_is_held_once_however_often_it_registers_and_never_after_it_leaves() {
        let (count, waker) = WakeCount::waker();
        let mut a = Acceptors::default();
        let (mut one, mut two) = (None, None);
        a.register(&mut one, &waker);
        a.register(&mut one, &waker);
        a.register(&mut two, &waker);
        assert_eq!(a.len(), 2);
        a.remove(&mut one);
        assert_eq!((a.len(), one), (1, None));
        let mut woken = Vec::new();
        a.take_all(&mut woken);
        assert_eq!((a.len(), woken.len()), (0, 1));
        // A waiter whose entry was taken by a wake registers again under its old slot, and
        // leaving with a slot no longer listed is harmless.
        a.register(&mut two, &waker);
        assert_eq!(a.len(), 1);
        a.remove(&mut two);
        a.remove(&mut two);
        assert_eq!(a.len(), 0);
        woken.into_iter().for_each(Waker::wake);
        assert_eq!(count.get(), 1);
    }
}
