//! What the application does to the core: open, accept, write, read, close; and how the session's
//! end reaches every stream.

use super::stream_state::StreamState;
use super::wire::{Put, Wire};
use super::{Core, Event, OpenError, Read, State, StreamKey, Write, SMALL_OUTPUT};
use crate::frame::HEADER_LEN;

impl<W: Default> Core<W> {
    /// Opens a stream: allocates an id and queues its SYN.
    pub fn open(&mut self) -> Result<StreamKey, OpenError> {
        self.check_room()?;
        self.open_unchecked()
    }

    /// Promises one later [`Core::open_reserved`] room under the stream limit.
    pub fn reserve(&mut self) -> Result<(), OpenError> {
        self.check_room()?;
        self.reserved += 1;
        Ok(())
    }

    /// Gives back a reservation that will not be used.
    pub fn unreserve(&mut self) {
        debug_assert!(self.reserved > 0, "no reservation to give back");
        self.reserved -= 1;
        self.events.push(Event::Released);
    }

    /// Opens a stream with a reservation. Fails only if the peer took the last free ids since.
    pub fn open_reserved(&mut self) -> Result<StreamKey, OpenError> {
        debug_assert!(self.reserved > 0, "no reservation to open with");
        self.reserved -= 1;
        self.open_unchecked()
    }

    /// How many more streams may open now, by every limit: free ids, the stream limit, the
    /// peer's room (`open_credit.rs`); none on a detecting server until its peer's first byte
    /// told it the wire.
    pub(super) fn open_room(&self) -> usize {
        if matches!(self.wire, Wire::Detect) {
            return 0;
        }
        let used = self.ids.in_use() + self.reserved;
        let by_ids = self.ids.allocatable().saturating_sub(self.reserved);
        let by_limit = self.limits.max_streams.saturating_sub(used);
        by_ids
            .min(by_limit)
            .min(self.open_credit.room(self.reserved))
    }

    fn check_room(&self) -> Result<(), OpenError> {
        if !matches!(self.wire, Wire::Detect) && self.reserved >= self.ids.allocatable() {
            Err(OpenError::Exhausted)
        } else if self.open_room() == 0 {
            Err(OpenError::AtLimit)
        } else {
            Ok(())
        }
    }

    fn open_unchecked(&mut self) -> Result<StreamKey, OpenError> {
        let id = self.ids.allocate().ok_or(OpenError::Exhausted)?;
        if self.wire.open(id).is_none() {
            self.ids.remove(id);
            return Err(OpenError::GoAway);
        }
        let key = self.insert_stream(id, true);
        self.wire.put(&mut self.out, Put::Syn, id);
        self.open_credit.opened(id);
        self.counters.frames_out += 1;
        self.counters.opened += 1;
        let pos = self.out_pos();
        self.live(key).last_queued = pos;
        Ok(key)
    }

    /// Takes the oldest stream waiting in the accept backlog.
    pub fn accept(&mut self) -> Option<StreamKey> {
        let key = self.resuming(|core| {
            let key = core.backlog.pop_front()?;
            core.claim(key);
            Some(key)
        })?;
        self.counters.accepted += 1;
        self.grant_opens();
        Some(key)
    }

    /// What a stream's own state costs, counted against the budget while it waits to be accepted.
    pub const STREAM_COST: usize = std::mem::size_of::<StreamState<W>>() + 16;

    /// The stream left the backlog: what it holds no longer counts against the budget.
    pub(super) fn claim(&mut self, key: StreamKey) {
        if let Some(s) = self.streams.get_mut(key) {
            if std::mem::take(&mut s.unclaimed) {
                self.budget.remove(Self::STREAM_COST + s.recv.capacity());
            }
        }
    }

    /// Past the budget, refuses the newest streams not yet accepted (FIN) and drops their data.
    /// On xtaci's wire, which cannot tell an opener to wait, reading pauses instead
    /// at the frame that does not fit (`hold.rs`), as Go's session does when its buffer is full:
    /// an honest burst of streams loses nothing, and a flood holds at most the budget and one
    /// frame past it (counted as allocated: see `Config::with_memory_budget`).
    pub(super) fn enforce_budget(&mut self) {
        if self.backlog_pauses() {
            return;
        }
        while self.budget.exceeded() {
            let Some(key) = self.backlog.pop_back() else {
                break;
            };
            self.counters.refused += 1;
            trace_event!(
                warn,
                stream = self.streams.get(key).map(|s| s.id),
                held = self.budget.held(),
                "memory budget exceeded: the newest unaccepted stream is refused"
            );
            self.refuse(key);
        }
        self.grant_opens();
    }

    /// Refuses a stream taken out of the backlog: a peer of this crate is told so, then it is
    /// closed as if dropped.
    fn refuse(&mut self, key: StreamKey) {
        if let Some(id) = self.streams.get(key).map(|s| s.id) {
            self.say_refused(id);
        }
        self.drop_handle(key);
    }

    /// Queues at most one frame of `data` on the stream, within its credit and the queue's bound.
    /// On `Queued(n)` exactly `n` bytes were committed; otherwise nothing was.
    pub fn write(&mut self, key: StreamKey, data: &[u8]) -> Write {
        let limits = self.limits;
        let Some(s) = self.streams.get_mut(key) else {
            return Write::ClosedLocally;
        };
        match s.state() {
            State::Open | State::PeerFinished => {}
            State::FinReceived | State::Cut | State::Refused => return Write::ClosedByPeer,
            State::FinSent | State::Closed | State::WriteClosed => return Write::ClosedLocally,
        }
        if data.is_empty() {
            return Write::Queued(0);
        }
        let credit = s.send_credit.get();
        if credit == 0 {
            return Write::NoCredit;
        }
        // The batch's low 16 bits: a stream that last wrote exactly 65,536 batches ago keeps its
        // old count for this batch, which holds it back for one batch at most.
        if s.batch != self.batches as u16 {
            s.batch = self.batches as u16;
            s.batch_bytes = 0;
        }
        // Fairness: while other streams wait for room, a stream takes at most about one frame of
        // each batch, so many writers share the transport frame by frame and none starves.
        let over_share =
            self.contenders.others_than(&s.listed) && s.batch_bytes >= limits.max_frame;
        if self.out.len() >= limits.write_buffer || over_share {
            self.contenders.join(&mut s.listed);
            self.queue_waiters.push(key, s);
            return Write::QueueFull;
        }
        self.contenders.leave(&mut s.listed);
        let n = data
            .len()
            .min(credit as usize)
            .min(limits.max_frame as usize);
        s.send_credit.spend(n as u32);
        s.batch_bytes += n as u32;
        let needed = self.out.len() + HEADER_LEN + n;
        if needed > self.out.capacity() {
            // Past small messages, grow to the working size in one step rather than by doubling:
            // one allocation per burst (the driver gives the memory back when it goes idle).
            let working = limits.write_buffer + HEADER_LEN + limits.max_frame as usize;
            let target = if needed > SMALL_OUTPUT {
                working.max(needed)
            } else {
                needed
            };
            self.out.reserve(target - self.out.len());
        }
        self.wire.put(&mut self.out, Put::Psh(n as u32), s.id);
        self.counters.frames_out += 1;
        self.out.extend_from_slice(&data[..n]);
        s.last_queued = self.out_base + self.out.len() as u64;
        Write::Queued(n)
    }

    /// Copies buffered data into `buf`; may list the stream for a confirm.
    pub fn read(&mut self, key: StreamKey, buf: &mut [u8]) -> Read {
        let Some(s) = self.streams.get_mut(key) else {
            return Read::ClosedLocally;
        };
        if s.state().closed_here() {
            return Read::ClosedLocally;
        }
        if buf.is_empty() {
            return Read::Data(0); // a zero-length read never waits
        }
        if s.recv.is_empty() {
            return match s.state() {
                State::FinReceived | State::PeerFinished => Read::Eof,
                State::Cut | State::Refused => Read::Cut,
                _ => Read::Empty,
            };
        }
        let n = s.take_recv(buf, &mut self.recv_pool);
        if s.state().holds_id() {
            // Counted for xtaci's UPD; a released id may be another stream's already.
            self.wire.note_read(s.id, n);
        }
        let under = s.recv.len() <= self.limits.window as usize;
        let resumes = under && self.over_window.leave(&mut s.listed);
        // Confirm after a sixteenth of the window: a sender with one window per round trip gets
        // its credit back a round trip plus the time a sixteenth takes on the wire after it sent
        // it (through 10 ms at 1 Gbit/s: 0.96 of a window per round trip, 0.92 after an eighth;
        // confirms twice as often cost nothing measurable in bulk on loopback).
        let threshold = (s.recv_window() / 16).max(1);
        if s.state().receiving() && self.wire.flow_controlled() && s.grantable() >= threshold {
            self.confirm_list.push(key, s);
        }
        if resumes {
            self.resume_if_none_over();
        }
        Read::Data(n)
    }

    /// Closes the stream from our side: queues FIN if the stream is open, and drops what it has
    /// buffered at once (nobody can read it any more); its reader and writer are woken. Idempotent.
    pub fn close(&mut self, key: StreamKey) {
        self.claim(key);
        let base = self.limits.window;
        let Some(s) = self.streams.get_mut(key) else {
            return;
        };
        s.recv.clear(&mut self.recv_pool);
        if s.window.charged() > 0 {
            s.window.release(base, &mut self.growth);
            self.recv_pool.set_growth(self.growth.held());
        }
        let resumes = self.over_window.leave(&mut s.listed);
        let owed = s.close(self.wire.fin_handshake());
        self.settle(key, owed);
        if resumes {
            self.resume_if_none_over();
        }
    }

    /// Closes the stream's writing half (xtaci's half-close): a FIN after everything written;
    /// reads go on until the peer's FIN. Returns false on a wire whose FIN ends the stream both
    /// ways (yddeng's), where nothing is done.
    pub fn close_write(&mut self, key: StreamKey) -> bool {
        if self.wire.fin_handshake() {
            return false;
        }
        if let Some(s) = self.streams.get_mut(key) {
            let owed = s.close_write();
            self.settle(key, owed);
        }
        true
    }

    /// The handle to the stream is gone: close it, and forget it once its id is released.
    pub fn drop_handle(&mut self, key: StreamKey) {
        self.close(key);
        if let Some(s) = self.streams.get_mut(key) {
            s.has_handle = false;
            if !s.state().holds_id() {
                self.streams.remove(key);
                self.events.push(Event::Released);
            }
        }
    }

    /// Closes every stream (FIN for each open one) and empties the accept backlog.
    pub fn close_all(&mut self) {
        for key in self.held_keys() {
            self.close(key);
        }
        while let Some(key) = self.backlog.pop_front() {
            self.drop_handle(key);
        }
    }

    /// The session ended (the peer closed the transport, or it failed, or we closed it): every id
    /// is released. A stream the peer had not closed is cut: its buffered data stays readable,
    /// then reads fail rather than report a clean end-of-stream that never came.
    pub fn peer_gone(&mut self) {
        for key in self.held_keys() {
            let owed = self.live(key).session_gone();
            self.settle(key, owed);
        }
    }

    /// Refuses every stream the peer opens from now on, and closes those waiting to be accepted.
    pub fn refuse_incoming(&mut self) {
        self.refusing = true;
        self.resuming(|core| {
            while let Some(key) = core.backlog.pop_front() {
                core.counters.refused += 1;
                core.refuse(key);
            }
        });
    }

    /// Empties the accept backlog (the session failed: nobody will take them). Streams that no
    /// longer hold an id are forgotten at once; the others when their id is released.
    pub fn clear_backlog(&mut self) {
        while let Some(key) = self.backlog.pop_front() {
            self.claim(key);
            if let Some(s) = self.streams.get_mut(key) {
                s.has_handle = false;
                if !s.state().holds_id() {
                    self.streams.remove(key);
                }
            }
        }
    }
}
