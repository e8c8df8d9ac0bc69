//! The session's memory budget for what the application does not hold; the same type bounds, in a
//! second instance, how far streams' windows grow beyond the base (`extension.rs`).
//!
//! A peer can make a session hold memory the application never asked for: data for streams it
//! opened that wait in the accept backlog. (Streams the application closed hold nothing: their
//! buffers are dropped at once; the output queue is bounded by the write buffer.) The budget counts
//! those bytes as allocated (buffer capacity, and each waiting stream's own state), and past it the
//! core refuses the newest streams not yet accepted, dropping their data. Data of a stream the
//! application holds is never dropped.

/// Bytes held for the accept backlog, against a limit.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    held: usize,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Budget {
        Budget { limit, held: 0 }
    }

    /// Counts `n` more bytes.
    pub(crate) fn add(&mut self, n: usize) {
        self.held += n;
    }

    /// Counts `n` more bytes if that stays within the limit; returns whether it did.
    pub(crate) fn try_add(&mut self, n: usize) -> bool {
        if self
            .held
            .checked_add(n)
            .map_or(true, |total| total > self.limit)
        {
            return false;
        }
        self.held += n;
        true
    }

    /// Stops counting `n` bytes (the stream was accepted or refused).
    pub(crate) fn remove(&mut self, n: usize) {
        debug_assert!(n <= self.held, "budget underflow: {n} > {}", self.held);
        self.held -= n;
    }

    /// Whether more is held than the limit allows.
    pub(crate) fn exceeded(&self) -> bool {
        self.held > self.limit
    }

    /// Bytes held now.
    pub(crate) fn held(&self) -> usize {
        self.held
    }
}
