//! When reading the transport pauses, and which frames wait unhandled in the reader's buffer
//! meanwhile.
//!
//! Two wires' rules. Without flow control (xtaci v1) a stream holding more than its window
//! unread pauses reading: the only backpressure left (Go's session stops at 4 MiB for all its
//! streams). That pause comes after the read that brought the stream past its window, whose
//! other frames are still handled: its data was sent, and the read buffer bounds it. And on
//! xtaci's wire, which cannot tell an opener to wait, a full accept backlog pauses reading where
//! the other wire refuses the stream, as Go's session blocks on its full accept channel. That
//! pause comes at the frame that does not fit, not after what one read brought, as a read of
//! SYNs would make thousands of streams: [`Core::handle_input`] stops before it, the reader keeps
//! it and the rest, and hands
//! them over again once the application accepted ([`Event::Resume`]). So the backlog passes its
//! bound by nothing and the memory budget by one frame at most, however many frames one read
//! holds, and data for the streams the application already holds goes on flowing while the
//! backlog is full, up to the next frame that wants it.

use super::wire::Frame;
use super::{Core, Event};

/// A frame the core left in the reader's buffer, and so what it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Held {
    /// A SYN: room in the backlog, within the budget.
    Syn,
    /// Data for a stream not yet accepted: the backlog back within the budget.
    Data,
}

impl<W: Default> Core<W> {
    /// Whether `frame` is to wait in the reader's buffer, unhandled (see the module's doc); if it
    /// is, reading pauses until it fits.
    pub(super) fn holds_back(&mut self, frame: &Frame<'_>) -> bool {
        match *frame {
            Frame::Syn(_) => self.hold(Held::Syn, |_| true),
            Frame::Psh(sid, payload) if !payload.is_empty() => self.holds_back_data(sid),
            _ => {
                self.held = None;
                false
            }
        }
    }

    /// [`Core::holds_back`] for a data frame of which only the header is known yet: it waits if
    /// its stream waits to be accepted and the budget is spent.
    pub(super) fn holds_back_data(&mut self, sid: u32) -> bool {
        self.hold(Held::Data, |core| {
            core.key_of_wire(sid)
                .and_then(|key| core.streams.get(key))
                .is_some_and(|s| s.unclaimed)
        })
    }

    /// Holds a frame of kind `held` when the wire pauses, it does not fit yet, and `concerned`
    /// (asked last: the data frame's lookup is made only once the budget is spent).
    fn hold(&mut self, held: Held, concerned: impl FnOnce(&Self) -> bool) -> bool {
        let holds = self.backlog_pauses() && self.waits(held) && concerned(self);
        self.held = holds.then_some(held);
        holds
    }

    /// Whether a frame of kind `held` does not fit yet.
    fn waits(&self, held: Held) -> bool {
        match held {
            Held::Syn => self.backlog.len() >= self.limits.backlog || self.budget.exceeded(),
            Held::Data => self.budget.exceeded(),
        }
    }

    /// Whether reading the transport must pause: a stream holds more than its window unread on a
    /// wire without flow control, or a frame waits for the backlog (see the module's doc).
    pub(crate) fn input_paused(&self) -> bool {
        self.over_window.count() > 0 || self.held.is_some_and(|held| self.waits(held))
    }

    /// Whether a frame waits in the reader's buffer, unhandled: once reading may go on, the reader
    /// hands what it holds over again before it reads more.
    pub(crate) fn holds_frame(&self) -> bool {
        self.held.is_some()
    }

    /// Whether a full accept backlog pauses reading rather than refusing: on xtaci's wire
    /// (`Wire::backlog_pauses`), unless the backlog is 0, which refuses every stream.
    pub(super) fn backlog_pauses(&self) -> bool {
        self.wire.backlog_pauses() && self.limits.backlog > 0
    }

    /// Runs `change` to the backlog, and tells the reader to go on if that let the frame it holds
    /// fit.
    pub(super) fn resuming<R>(&mut self, change: impl FnOnce(&mut Self) -> R) -> R {
        let paused = self.input_paused();
        let r = change(self);
        if paused && !self.input_paused() {
            self.events.push(Event::Resume);
        }
        r
    }

    /// xtaci v1: once no stream holds more than its window unread, reading the transport goes on.
    pub(super) fn resume_if_none_over(&mut self) {
        if self.over_window.count() == 0 {
            self.events.push(Event::Resume);
        }
    }
}
