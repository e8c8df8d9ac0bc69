//! Whether the transport's read side is worth polling.
//!
//! The driver is woken by two kinds of party: the transport (data arrived, room to write) and the
//! session's handles (a stream queued a frame, a reader made room). Only the first can make a read
//! find anything, and on many transports a read that finds nothing still costs system calls (a
//! `recvfrom` that fails, re-arming the reactor). So the driver hands the transport its own waker,
//! which notes that the transport spoke before it wakes the driver's task; the driver polls the
//! read side only when that note is set: at the start, after a read that brought data, and after
//! the transport woke it.
//!
//! Every call into the transport (read, write, flush, close) gets this waker, so a transport that
//! keeps one waker slot for both directions still reaches it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};

use futures_util::task::AtomicWaker;

/// The waker the driver gives its transport.
#[derive(Debug)]
pub(crate) struct TransportWake {
    inner: Arc<Flag>,
    waker: Waker,
}

#[derive(Debug)]
struct Flag {
    /// The transport woke the driver since the driver last began a read.
    woke: AtomicBool,
    /// The driver's task.
    task: AtomicWaker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woke.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl TransportWake {
    /// A new one, set: the first round reads.
    pub(crate) fn new() -> Self {
        let inner = Arc::new(Flag {
            woke: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        let waker = Waker::from(inner.clone());
        TransportWake { inner, waker }
    }

    /// Called at the top of every poll of the driver, before any call into the transport: a wake
    /// from the transport reaches `task`.
    pub(crate) fn register(&self, task: &Waker) {
        self.inner.task.register(task);
    }

    /// The waker to pass to the transport.
    pub(crate) fn waker(&self) -> &Waker {
        &self.waker
    }

    /// A read is about to begin: whether one is worth it (and the note is cleared, so a read that
    /// finds nothing leaves it clear until the transport wakes the driver again).
    pub(crate) fn begin_read(&self) -> bool {
        self.inner.woke.swap(false, Ordering::AcqRel)
    }

    /// The read brought something (or must be retried): read again next round.
    pub(crate) fn read_again(&self) {
        self.inner.woke.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_wakers::WakeCount;

    #[test]
    fn a_read_is_worth_it_at_first_after_data_and_after_the_transport_woke_the_driver() {
        let (count, task) = WakeCount::waker();
        let t = TransportWake::new();
        t.register(&task);
        assert!(t.begin_read(), "the first round reads");
        assert!(
            !t.begin_read(),
            "a read that found nothing: no more until a wake"
        );
        t.read_again();
        assert!(t.begin_read(), "after data, read again");
        assert!(!t.begin_read());
        t.waker().wake_by_ref();
        assert_eq!(count.get(), 1, "the driver's task is woken");
        assert!(t.begin_read(), "the transport woke the driver: read");
        t.register(&task);
        // A transport may keep the waker and wake it by value later.
        let kept = Waker::clone(t.waker());
        t.register(&task);
        kept.wake();
        assert_eq!(count.get(), 2);
        assert!(t.begin_read());
    }
}
