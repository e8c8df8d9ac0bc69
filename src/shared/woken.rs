//! Who the driver's reading woke and has not run since (the driver's hand-off, `driver/mod.rs`).

use crate::core::StreamKey;

/// Streams whose woken readers are tracked one by one; a handle's lock looks through them.
const TRACKED: usize = 16;

/// Who the driver's reading woke and has not run since: the readers of up to [`TRACKED`]
/// streams, and streams just accepted (past that many, only that there were more), and the
/// acceptor. The driver lets them run before it writes a few small frames, so that what they
/// queue (the response, the close) leaves in the same write (`driver/mod.rs`, hand-off). A stream's
/// handle that takes the lock has run; the driver forgets the rest once it writes.
#[derive(Debug, Default)]
pub(super) struct Woken {
    streams: Vec<StreamKey>,
    more: bool,
    accept: bool,
    /// One of the readers was woken at the end of its stream, on a wire where the FIN of this
    /// side's close is the application's to send (xtaci): its task usually closes at once, so
    /// the driver waits for it even with nothing queued yet.
    ending: bool,
}

impl Woken {
    /// The driver woke the reader of stream `key`, or `key` was just accepted; `ending`: at the
    /// end of a stream whose FIN is the application's to send.
    pub(super) fn add(&mut self, key: StreamKey, ending: bool) {
        if self.streams.len() < TRACKED {
            self.streams.push(key);
        } else {
            self.more = true;
        }
        self.ending |= ending;
    }

    /// The handle of stream `key` took the lock: its task has run.
    pub(super) fn ran(&mut self, key: StreamKey) {
        if let Some(i) = self.streams.iter().position(|k| *k == key) {
            self.streams.swap_remove(i);
        }
    }

    /// The driver woke the tasks waiting to accept.
    pub(super) fn acceptor_woken(&mut self) {
        self.accept = true;
    }

    /// The acceptor looked at the backlog.
    pub(super) fn acceptor_ran(&mut self) {
        self.accept = false;
    }

    /// Whether a task woken has not run since.
    pub(super) fn unrun(&self) -> bool {
        !self.streams.is_empty() || self.more || self.accept
    }

    /// Whether a reader was woken at the end of a stream whose FIN its task owes.
    pub(super) fn ending(&self) -> bool {
        self.ending
    }

    /// The woken tasks had their turn: the driver waits for none of them any more.
    pub(super) fn forget(&mut self) {
        self.streams.clear(); // keeps its allocation
        self.more = false;
        self.accept = false;
        self.ending = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<StreamKey> {
        (0..n as u32).map(StreamKey::for_test).collect()
    }

    #[test]
    fn each_task_woken_counts_until_it_runs_or_is_forgotten() {
        let k = keys(TRACKED + 1);
        let mut w = Woken::default();
        assert!(!w.unrun());
        w.add(k[0], false);
        w.add(k[1], true);
        w.acceptor_woken();
        assert!(w.unrun() && w.ending());
        w.ran(k[0]);
        w.ran(k[0]); // twice: no harm
        w.acceptor_ran();
        assert!(w.unrun(), "stream 1 has not run");
        w.ran(k[1]);
        assert!(!w.unrun());
        assert!(w.ending(), "ending holds until forgotten");
        w.forget();
        assert!(!w.ending());
    }

    #[test]
    fn past_the_tracked_streams_only_a_forget_ends_the_wait() {
        let k = keys(TRACKED + 1);
        let mut w = Woken::default();
        for key in &k {
            w.add(*key, false);
        }
        for key in &k {
            w.ran(*key);
        }
        assert!(w.unrun(), "one more than tracked: nobody knows when it ran");
        w.forget();
        assert!(!w.unrun());
    }
}
