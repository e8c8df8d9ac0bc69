//! The protocol core: everything PROTOCOL.md says, as plain state changes.
//!
//! Frames in ([`Core::handle_frame`]), user actions in ([`Core::open`], [`Core::write`],
//! [`Core::read`], [`Core::close`]), bytes for the transport out ([`Core::take_output`]) and events out
//! ([`Core::take_events`]). No I/O, no wakers, no clock: every rule is testable with plain calls.

mod budget;
mod extension;
mod id_table;
mod ids;
mod recv;
mod slots;
mod stream_state;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use self::budget::Budget;
pub(crate) use self::extension::OFFER;
use self::extension::{ExtVrm, Extension, Sample, ACCEPT};
use self::id_table::IdTable;
pub(crate) use self::ids::Direction;
use self::ids::Ids;
use self::recv::RecvPool;
use self::slots::Slots;
pub(crate) use self::slots::StreamKey;
pub(crate) use self::stream_state::State;
use self::stream_state::StreamState;
use crate::error::ProtocolError;
use crate::frame::{put_header, vrm_answer, Cmd, Header, HEADER_LEN};

/// Output up to this size grows as needed; past it, to the working size at once.
const SMALL_OUTPUT: usize = 16 * 1024;
/// VRM answers queued at most; more probes while they wait are dropped (a prober sends one).
const MAX_VRM_ANSWERS: usize = 8;

/// What happened that the I/O shell may need to wake someone for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// The stream has data, or reached end-of-stream, or its state changed.
    Readable(StreamKey),
    /// The stream got send credit back, or its state changed.
    Writable(StreamKey),
    /// A stream waits in the accept backlog.
    Incoming,
    /// The answer to our own VRM probe arrived.
    Pong,
    /// An id was released or a reservation dropped: an open waiting for room may retry.
    Released,
}

/// The result of `Core::write`. (`pub` only so that the `fuzzing` feature can re-export it; the
/// module is private.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// This many bytes were queued, in one frame.
    Queued(usize),
    /// The stream has no send credit: wait for a confirm.
    NoCredit,
    /// The output queue is full: wait for the transport to take it.
    QueueFull,
    /// The stream was closed by us.
    ClosedLocally,
    /// The peer closed the stream.
    ClosedByPeer,
}

/// The result of `Core::read`. (`pub` only so that the `fuzzing` feature can re-export it.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// This many bytes were copied out.
    Data(usize),
    /// Nothing buffered yet.
    Empty,
    /// The peer closed the stream and everything it sent has been read.
    Eof,
    /// The session ended before the peer closed the stream, and everything buffered has been read.
    Cut,
    /// The stream was closed by us.
    ClosedLocally,
}

/// Why [`Core::open`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// All 65,535 ids are in use.
    Exhausted,
    /// The configured limit on open streams is reached: wait for [`Event::Released`].
    AtLimit,
}

/// The core's counters, for `Session::stats`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CoreCounters {
    pub(crate) frames_in: u64,
    pub(crate) frames_out: u64,
    pub(crate) opened: u64,
    pub(crate) accepted: u64,
    pub(crate) refused: u64,
}

/// The protocol limits the core enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) window: u32,
    pub(crate) max_frame: u32,
    pub(crate) backlog: usize,
    pub(crate) write_buffer: usize,
    /// Streams (ids in use) this side lets itself open up to; at most 65,535.
    pub(crate) max_streams: usize,
    /// Bytes the accept backlog may hold, as allocated (see `budget.rs`); and, separately, what
    /// streams' windows may grow beyond the base window in all (`extension.rs`).
    pub(crate) budget: usize,
    /// The window a stream may grow to, with a peer of this crate (`extension.rs`).
    pub(crate) max_window: u32,
}

/// The state of one session, without I/O. `W` is the shell's per-stream data.
#[derive(Debug)]
pub(crate) struct Core<W> {
    limits: Limits,
    /// This side is the server (it accepts the extension; the client offers it).
    server: bool,
    extension: Extension,
    /// What windows have grown beyond the base, against the budget.
    growth: Budget,
    /// The core's clock, in microseconds (wrapping), as the I/O shell last set it.
    now_us: u32,
    ids: Ids,
    /// The slot of each stream whose id is in use.
    by_id: IdTable,
    streams: Slots<StreamState<W>>,
    backlog: VecDeque<StreamKey>,
    /// What the backlog holds, against the memory budget.
    budget: Budget,
    /// Opens promised by [`Core::reserve`] and not yet used.
    reserved: usize,
    /// Shutting down: streams the peer opens are refused.
    refusing: bool,
    /// Frames queued for the transport, in order.
    out: Vec<u8>,
    /// Bytes ever moved out by `take_output`, plus what is in `out`: positions for flushing.
    out_base: u64,
    confirm_list: Vec<StreamKey>,
    /// Streams waiting for room in the output queue, in the order they started waiting.
    queue_waiters: VecDeque<StreamKey>,
    /// Streams with `contending` set.
    contenders: usize,
    /// Drained receive buffers for reuse.
    recv_pool: RecvPool,
    /// Output batches taken so far (wrapping): a stream's share is counted per batch.
    batches: u32,
    /// Contenders woken by the last `take_output`.
    woken_contenders: Vec<StreamKey>,
    vrm_answers: Vec<Header>,
    /// The answer we expect to our own probe, if one is out.
    ping: Option<Header>,
    /// What a peer answering our last VRM answers would send back (not to be answered again).
    bounces: [Option<Header>; MAX_VRM_ANSWERS],
    next_bounce: usize,
    /// We sent a PIN since the last one we received.
    pin_sent: bool,
    /// When our outstanding probe went out (the core's clock): its answer is a round-trip sample.
    ping_at: u32,
    counters: CoreCounters,
    events: Vec<Event>,
}

impl<W: Default> Core<W> {
    /// A core for one side of a session.
    pub(crate) fn new(dir: Direction, limits: Limits) -> Self {
        Core {
            limits,
            server: dir == Direction::Down,
            extension: Extension::new(limits.max_window > limits.window),
            growth: Budget::new(limits.budget),
            now_us: 0,
            ids: Ids::new(dir),
            by_id: IdTable::default(),
            streams: Slots::default(),
            backlog: VecDeque::new(),
            budget: Budget::new(limits.budget),
            reserved: 0,
            refusing: false,
            out: Vec::new(),
            out_base: 0,
            confirm_list: Vec::new(),
            queue_waiters: VecDeque::new(),
            contenders: 0,
            woken_contenders: Vec::new(),
            batches: 1,
            recv_pool: RecvPool::new(limits.window),
            vrm_answers: Vec::new(),
            ping: None,
            bounces: [None; MAX_VRM_ANSWERS],
            next_bounce: 0,
            pin_sent: false,
            ping_at: 0,
            counters: CoreCounters::default(),
            events: Vec::new(),
        }
    }

    /// Sets the core's clock: the time since the session started. The I/O shell calls this
    /// before handing the core frames or taking its output; nothing else in the core reads time.
    pub(crate) fn set_clock(&mut self, since_start: std::time::Duration) {
        self.now_us = since_start.as_micros() as u32; // wraps every 71 minutes: only differences count
    }

    /// The client's first frame: the offer of window growth (`extension.rs`), which every
    /// version of the original answers as a probe. Called once, before anything else is queued.
    pub(crate) fn offer_extension(&mut self) {
        if !self.server {
            let offer = self.extension.offer();
            self.out.extend_from_slice(&offer.encode());
            self.counters.frames_out += 1;
        }
    }

    // ----- frames from the peer -----

    /// Handles one frame from the peer. `payload` is the PSH payload (empty for other commands).
    /// An error is a protocol violation: the session must end.
    #[must_use = "a protocol error must end the session"]
    pub(crate) fn handle_frame(&mut self, h: Header, payload: &[u8]) -> Result<(), ProtocolError> {
        debug_assert_eq!(payload.len(), h.payload_len());
        self.counters.frames_in += 1;
        match h.cmd {
            Cmd::Syn => {
                self.on_syn(h.sid);
                Ok(())
            }
            Cmd::Fin => {
                self.on_fin(h.sid);
                Ok(())
            }
            Cmd::Psh => self.on_psh(h.sid, payload),
            Cmd::Cfm => {
                self.on_cfm(h.sid, h.len);
                Ok(())
            }
            Cmd::Vrm => {
                self.on_vrm(h);
                Ok(())
            }
            Cmd::Pin => {
                self.on_pin();
                Ok(())
            }
        }
    }

    /// A SYN opens a stream, id 0 included: the newest original's first stream is id 0
    /// (PROTOCOL.md 10; this side never allocates it).
    fn on_syn(&mut self, sid: u16) {
        if self.by_id.get(sid).is_some() {
            // Both sides opened this id at once: both ends now share the one stream.
            return;
        }
        self.ids.insert(sid);
        if self.refusing || self.backlog.len() >= self.limits.backlog {
            // Refuse: close it at once; the id stays in use until the peer's FIN comes back.
            self.counters.refused += 1;
            trace_event!(
                debug,
                stream = sid,
                shutting_down = self.refusing,
                "stream refused: the accept backlog is full or the session is shutting down"
            );
            let key = self.streams.insert(StreamState::new(
                sid,
                false,
                self.limits.window,
                self.now_us,
            ));
            self.by_id.insert(sid, key.index());
            self.queue_fin(key);
            self.streams.get_mut(key).expect("just inserted").state = State::FinSent;
            return;
        }
        let key = self
            .streams
            .insert(StreamState::new(sid, true, self.limits.window, self.now_us));
        self.by_id.insert(sid, key.index());
        self.streams.get_mut(key).expect("just inserted").unclaimed = true;
        self.budget.add(Self::STREAM_COST);
        self.backlog.push_back(key);
        self.events.push(Event::Incoming);
        self.enforce_budget();
    }

    fn on_fin(&mut self, sid: u16) {
        let Some(key) = self.key_of(sid) else {
            return; // FIN for an id with no stream: ignored
        };
        let s = self
            .streams
            .get_mut(key)
            .expect("by_id points at live streams");
        match s.state {
            State::Open => {
                s.state = State::FinReceived;
                stop_contending(s, &mut self.contenders);
                put_header(&mut self.out, Cmd::Fin, sid, 0);
                self.counters.frames_out += 1;
                s.last_queued = self.out_base + self.out.len() as u64;
            }
            State::FinSent => s.state = State::Closed,
            State::FinReceived | State::Closed => unreachable!("not in by_id"),
        }
        self.release_id(key);
        self.events.push(Event::Readable(key));
        self.events.push(Event::Writable(key));
    }

    fn on_psh(&mut self, sid: u16, payload: &[u8]) -> Result<(), ProtocolError> {
        let Some(key) = self.key_of(sid) else {
            return Ok(()); // PSH for an id with no stream: read and discarded
        };
        let s = self
            .streams
            .get_mut(key)
            .expect("by_id points at live streams");
        if s.state != State::Open {
            return Ok(()); // we closed it; the peer had not seen our FIN yet
        }
        let n = payload.len() as u32;
        if n > s.recv_credit {
            return Err(ProtocolError::WindowExceeded {
                stream: sid,
                window: s.recv_window,
            });
        }
        if n > 0 {
            s.recv_credit -= n;
            if s.unclaimed {
                let before = s.recv.capacity();
                s.recv.extend(payload, &mut self.recv_pool);
                self.budget.add(s.recv.capacity() - before);
            } else {
                s.recv.extend(payload, &mut self.recv_pool);
            }
            self.events.push(Event::Readable(key));
            if self.budget.exceeded() {
                self.enforce_budget();
            }
        }
        Ok(())
    }

    /// A CFM for more than this side has outstanding can only be late: the original sends CFMs
    /// after its FIN answer, for a stream whose id may have been reused since (PROTOCOL.md 9). It
    /// is stale, and ignored: it never gives credit beyond the window. With a peer of this crate
    /// that agreed to window growth, a CFM is credit, and more than outstanding is a grant.
    fn on_cfm(&mut self, sid: u16, n: u32) {
        let Some(key) = self.key_of(sid) else {
            return;
        };
        let window = self.limits.window;
        let s = self
            .streams
            .get_mut(key)
            .expect("by_id points at live streams");
        if self.extension.active() {
            s.send_credit = s.send_credit.saturating_add(n);
        } else if n > window - s.send_credit {
            return;
        } else {
            s.send_credit += n;
        }
        if n > 0 {
            self.events.push(Event::Writable(key));
        }
    }

    /// A VRM is a probe to answer, unless it is the answer to our own probe, or the peer
    /// answering one of our answers: a session answers any VRM that is not the answer to its own
    /// ping, so without this check one stray answer (say, of an `is_smux` probe cancelled after
    /// it was written) would bounce between two sessions of this crate for ever.
    fn on_vrm(&mut self, h: Header) {
        match self.extension.on_vrm(h, self.now_us, self.server) {
            ExtVrm::Answered => return,
            ExtVrm::Accept => {
                // Straight into the output, ahead of any confirm that grants beyond the base.
                self.out.extend_from_slice(&ACCEPT.encode());
                self.counters.frames_out += 1;
                return;
            }
            ExtVrm::Agreed => {
                // Tell the server the round trip, measured ahead of any data; and probe once
                // more, as the first exchange ran while the session started (buffers, threads, a
                // driver not yet polled) and may have been slow.
                if let Some(report) = self.extension.report() {
                    self.out.extend_from_slice(&report.encode());
                    self.counters.frames_out += 1;
                }
                let _ = self.ping(ACCEPT.sid, self.now_us);
            }
            ExtVrm::Other => {}
        }
        if self.ping == Some(h) {
            // The answer to our own probe: recognised, not answered.
            self.ping = None;
            self.extension
                .sample(self.now_us.wrapping_sub(self.ping_at));
            self.events.push(Event::Pong);
        } else if let Some(i) = self.bounces.iter().position(|b| *b == Some(h)) {
            self.bounces[i] = None; // the answer to our answer: the exchange ends here
        } else if self.vrm_answers.len() < MAX_VRM_ANSWERS {
            let answer = vrm_answer(h.sid, h.len);
            self.vrm_answers.push(answer);
            self.bounces[self.next_bounce] = Some(vrm_answer(answer.sid, answer.len));
            self.next_bounce = (self.next_bounce + 1) % self.bounces.len();
        }
    }

    /// The newest original's keepalive (PROTOCOL.md 10): it closes a session in which it has
    /// received no PIN for 100 s, and never answers one. So this side answers a PIN with one,
    /// unless it has sent one since the last it received: a PIN that may be the answer to ours
    /// goes unanswered, and two sessions of this crate never bounce PINs. It sends a PIN only in
    /// answer, never to a peer that has not sent one (the founding document's version closes the
    /// session on it).
    fn on_pin(&mut self) {
        if self.pin_sent {
            self.pin_sent = false;
        } else {
            self.pin_sent = true;
            put_header(&mut self.out, Cmd::Pin, 0, 0);
            self.counters.frames_out += 1;
        }
    }

    // ----- user actions -----

    /// Opens a stream: allocates an id and queues its SYN.
    pub(crate) fn open(&mut self) -> Result<StreamKey, OpenError> {
        self.check_room()?;
        self.open_unchecked()
    }

    /// Promises one later [`Core::open_reserved`] room under the stream limit.
    pub(crate) fn reserve(&mut self) -> Result<(), OpenError> {
        self.check_room()?;
        self.reserved += 1;
        Ok(())
    }

    /// Gives back a reservation that will not be used.
    pub(crate) fn unreserve(&mut self) {
        self.reserved -= 1;
        self.events.push(Event::Released);
    }

    /// Opens a stream with a reservation. Fails only if the peer took the last free ids since.
    pub(crate) fn open_reserved(&mut self) -> Result<StreamKey, OpenError> {
        self.reserved -= 1;
        self.open_unchecked()
    }

    fn check_room(&self) -> Result<(), OpenError> {
        let used = self.ids.in_use() + self.reserved;
        if self.reserved >= self.ids.allocatable() {
            Err(OpenError::Exhausted)
        } else if used >= self.limits.max_streams {
            Err(OpenError::AtLimit)
        } else {
            Ok(())
        }
    }

    fn open_unchecked(&mut self) -> Result<StreamKey, OpenError> {
        let id = self.ids.allocate().ok_or(OpenError::Exhausted)?;
        let key = self
            .streams
            .insert(StreamState::new(id, true, self.limits.window, self.now_us));
        self.by_id.insert(id, key.index());
        put_header(&mut self.out, Cmd::Syn, id, 0);
        self.counters.frames_out += 1;
        self.counters.opened += 1;
        self.streams
            .get_mut(key)
            .expect("just inserted")
            .last_queued = self.out_pos();
        Ok(key)
    }

    /// Takes the oldest stream waiting in the accept backlog.
    pub(crate) fn accept(&mut self) -> Option<StreamKey> {
        let key = self.backlog.pop_front()?;
        self.claim(key);
        self.counters.accepted += 1;
        Some(key)
    }

    /// What a stream's own state costs, counted against the budget while it waits to be accepted.
    pub(crate) const STREAM_COST: usize = std::mem::size_of::<StreamState<W>>() + 16;

    /// The stream left the backlog: what it holds no longer counts against the budget.
    fn claim(&mut self, key: StreamKey) {
        if let Some(s) = self.streams.get_mut(key) {
            if std::mem::take(&mut s.unclaimed) {
                self.budget.remove(Self::STREAM_COST + s.recv.capacity());
            }
        }
    }

    /// Past the budget, refuses the newest streams not yet accepted (FIN) and drops their data.
    fn enforce_budget(&mut self) {
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
            self.drop_handle(key);
        }
    }

    /// Whether the peer agreed to window growth (`extension.rs`).
    pub(crate) fn extension_active(&self) -> bool {
        self.extension.active()
    }

    /// What windows have grown beyond the base, in all.
    pub(crate) fn window_growth(&self) -> usize {
        self.growth.held()
    }

    /// The core's counters.
    pub(crate) fn counters(&self) -> CoreCounters {
        self.counters
    }

    /// Bytes held for streams not yet accepted, as allocated.
    pub(crate) fn unclaimed_bytes(&self) -> usize {
        self.budget.held()
    }

    /// Queues at most one frame of `data` on the stream, within its credit and the queue's bound.
    /// On `Queued(n)` exactly `n` bytes were committed; otherwise nothing was.
    pub(crate) fn write(&mut self, key: StreamKey, data: &[u8]) -> Write {
        let limits = self.limits;
        let Some(s) = self.streams.get_mut(key) else {
            return Write::ClosedLocally;
        };
        match s.state {
            State::Open => {}
            State::FinReceived => return Write::ClosedByPeer,
            State::FinSent | State::Closed => return Write::ClosedLocally,
        }
        if data.is_empty() {
            return Write::Queued(0);
        }
        let credit = s.send_credit;
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
        let others_waiting = self.contenders > usize::from(s.contending);
        let over_share = others_waiting && s.batch_bytes >= limits.max_frame;
        if self.out.len() >= limits.write_buffer || over_share {
            if !s.contending {
                s.contending = true;
                self.contenders += 1;
            }
            if !s.queue_waiting {
                s.queue_waiting = true;
                self.queue_waiters.push_back(key);
            }
            return Write::QueueFull;
        }
        stop_contending(s, &mut self.contenders);
        let n = data
            .len()
            .min(credit as usize)
            .min(limits.max_frame as usize);
        s.send_credit -= n as u32;
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
        put_header(&mut self.out, Cmd::Psh, s.id, n as u32);
        self.counters.frames_out += 1;
        self.out.extend_from_slice(&data[..n]);
        s.last_queued = self.out_base + self.out.len() as u64;
        Write::Queued(n)
    }

    /// Copies buffered data into `buf`; may list the stream for a confirm.
    pub(crate) fn read(&mut self, key: StreamKey, buf: &mut [u8]) -> Read {
        let Some(s) = self.streams.get_mut(key) else {
            return Read::ClosedLocally;
        };
        match s.state {
            State::FinSent | State::Closed => return Read::ClosedLocally,
            State::Open | State::FinReceived => {}
        }
        if buf.is_empty() {
            return Read::Data(0); // a zero-length read never waits
        }
        if s.recv.is_empty() {
            return if s.state == State::FinReceived {
                if s.cut {
                    Read::Cut
                } else {
                    Read::Eof
                }
            } else {
                Read::Empty
            };
        }
        let n = s.take_recv(buf, &mut self.recv_pool);
        // Confirm after a sixteenth of the window: a sender with one window per round trip gets
        // its credit back a round trip plus the time a sixteenth takes on the wire after it sent
        // it (through 10 ms at 1 Gbit/s: 0.96 of a window per round trip, 0.92 after an eighth;
        // confirms twice as often cost nothing measurable in bulk on loopback).
        let threshold = (s.recv_window / 16).max(1);
        if s.state == State::Open && !s.confirm_listed && s.grantable() >= threshold {
            s.confirm_listed = true;
            self.confirm_list.push(key);
        }
        Read::Data(n)
    }

    /// Closes the stream from our side: queues FIN if the stream is open, and drops what it has
    /// buffered at once (nobody can read it any more). Idempotent.
    pub(crate) fn close(&mut self, key: StreamKey) {
        self.claim(key);
        let Some(s) = self.streams.get_mut(key) else {
            return;
        };
        s.recv.clear(&mut self.recv_pool);
        if s.recv_window > self.limits.window {
            self.growth
                .remove((s.recv_window - self.limits.window) as usize);
            s.recv_window = self.limits.window;
            self.recv_pool.set_growth(self.growth.held());
        }
        match s.state {
            State::Open => {
                s.state = State::FinSent;
                stop_contending(s, &mut self.contenders);
                self.queue_fin(key);
            }
            State::FinReceived => s.state = State::Closed,
            State::FinSent | State::Closed => {}
        }
    }

    /// The handle to the stream is gone: close it, and forget it once its id is released.
    pub(crate) fn drop_handle(&mut self, key: StreamKey) {
        self.close(key);
        if let Some(s) = self.streams.get_mut(key) {
            s.has_handle = false;
            if !s.state.holds_id() {
                self.streams.remove(key);
                self.events.push(Event::Released);
            }
        }
    }

    /// Closes every stream (FIN for each open one) and empties the accept backlog.
    pub(crate) fn close_all(&mut self) {
        let open = self.held_keys();
        for key in open {
            self.close(key);
            self.events.push(Event::Readable(key));
            self.events.push(Event::Writable(key));
        }
        while let Some(key) = self.backlog.pop_front() {
            self.drop_handle(key);
        }
    }

    /// The session ended (the peer closed the transport, or it failed, or we closed it): every id
    /// is released. A stream the peer had not closed is cut: its buffered data stays readable,
    /// then reads fail rather than report a clean end-of-stream that never came.
    pub(crate) fn peer_gone(&mut self) {
        let held = self.held_keys();
        for key in held {
            let s = self
                .streams
                .get_mut(key)
                .expect("by_id points at live streams");
            s.state = match s.state {
                State::Open => {
                    s.cut = true;
                    State::FinReceived
                }
                _ => State::Closed,
            };
            stop_contending(s, &mut self.contenders);
            self.release_id(key);
            self.events.push(Event::Readable(key));
            self.events.push(Event::Writable(key));
        }
    }

    /// Refuses every stream the peer opens from now on, and closes those waiting to be accepted.
    pub(crate) fn refuse_incoming(&mut self) {
        self.refusing = true;
        while let Some(key) = self.backlog.pop_front() {
            self.counters.refused += 1;
            self.drop_handle(key);
        }
    }

    /// Whether any id is in use: a stream the peer has not closed (open, or closed by this side
    /// only). With none, the peer has finished everything it started, so its transport ending
    /// loses nothing, however it ends.
    pub(crate) fn holds_ids(&self) -> bool {
        !self.by_id.is_empty()
    }

    /// Streams the core still holds: with a handle, or with their id in use.
    pub(crate) fn live_streams(&self) -> usize {
        self.streams.len()
    }

    /// Empties the accept backlog (the session failed: nobody will take them). Streams that no
    /// longer hold an id are forgotten at once; the others when their id is released.
    pub(crate) fn clear_backlog(&mut self) {
        while let Some(key) = self.backlog.pop_front() {
            self.claim(key);
            if let Some(s) = self.streams.get_mut(key) {
                s.has_handle = false;
                if !s.state.holds_id() {
                    self.streams.remove(key);
                }
            }
        }
    }

    /// Queues a VRM probe unless one is already out; its answer produces [`Event::Pong`].
    /// Returns the probe sent, or `None` if the outstanding one will answer for this one too
    /// (one probe at a time, so that two sessions never answer each other's answers).
    pub(crate) fn ping(&mut self, v1: u16, v2: u32) -> Option<Header> {
        if self.ping.is_some() {
            return None;
        }
        let probe = Header::new(Cmd::Vrm, v1, v2);
        self.ping = Some(vrm_answer(v1, v2));
        self.ping_at = self.now_us;
        self.out.extend_from_slice(&probe.encode());
        self.counters.frames_out += 1;
        Some(probe)
    }

    // ----- output -----

    /// Moves everything queued for the transport into `into` (which must be empty), first adding
    /// the coalesced confirms and the VRM answers. Returns the streams waiting for queue space.
    pub(crate) fn take_output(&mut self, into: &mut Vec<u8>) {
        debug_assert!(into.is_empty());
        let growth_rtt = self.extension.growth_rtt();
        for key in self.confirm_list.drain(..) {
            let Some(s) = self.streams.get_mut(key) else {
                continue;
            };
            s.confirm_listed = false;
            if s.state != State::Open {
                continue;
            }
            if let Some(rtt) = growth_rtt {
                resize_window(s, rtt, self.now_us, &self.limits, &mut self.growth);
            }
            let n = s.grantable();
            if n > 0 {
                put_header(&mut self.out, Cmd::Cfm, s.id, n);
                self.counters.frames_out += 1;
                s.recv_credit += n;
            }
        }
        self.recv_pool.set_growth(self.growth.held());
        for h in self.vrm_answers.drain(..) {
            self.out.extend_from_slice(&h.encode());
            self.counters.frames_out += 1;
        }
        self.extension.output_taken(self.now_us);
        self.out_base += self.out.len() as u64;
        self.batches = self.batches.wrapping_add(1);
        std::mem::swap(&mut self.out, into);
        // A contender woken last time that has neither written nor waited again since was
        // abandoned (its write was cancelled): it no longer holds the others back.
        for key in self.woken_contenders.drain(..) {
            if let Some(s) = self.streams.get_mut(key) {
                if !s.queue_waiting {
                    stop_contending(s, &mut self.contenders);
                }
            }
        }
        // Wake the writers waiting for room, oldest first: only about as many as the queue takes
        // while there is output in flight (waking a thousand to let five in costs more than it
        // moves), and all of them when the queue is empty, so that none sleeps while room is free
        // (the driver comes back here whenever waiters remain and its buffer is written).
        let wake = if into.is_empty() {
            usize::MAX
        } else {
            self.limits.write_buffer / self.limits.max_frame as usize + 2
        };
        let mut woken = 0;
        while woken < wake {
            let Some(key) = self.queue_waiters.pop_front() else {
                break;
            };
            let Some(s) = self.streams.get_mut(key) else {
                continue;
            };
            s.queue_waiting = false;
            if s.contending {
                self.woken_contenders.push(key);
            }
            self.events.push(Event::Writable(key));
            woken += 1;
        }
    }

    /// Whether writers wait for room in the output queue.
    pub(crate) fn has_queue_waiters(&self) -> bool {
        !self.queue_waiters.is_empty()
    }

    /// Frees the output queue's memory if it is empty and larger than `keep`.
    pub(crate) fn shrink_output(&mut self, keep: usize) {
        if self.out.is_empty() && self.out.capacity() > keep {
            self.out = Vec::new();
        }
    }

    /// Whether anything waits to be taken by [`Core::take_output`].
    pub(crate) fn has_output(&self) -> bool {
        !self.out.is_empty() || !self.confirm_list.is_empty() || !self.vrm_answers.is_empty()
    }

    /// Bytes queued and not yet taken.
    pub(crate) fn queued_len(&self) -> usize {
        self.out.len()
    }

    /// The output position just after everything queued so far.
    pub(crate) fn out_pos(&self) -> u64 {
        self.out_base + self.out.len() as u64
    }

    /// Events since the last call, in order.
    pub(crate) fn take_events(&mut self, into: &mut Vec<Event>) {
        into.append(&mut self.events);
    }

    // ----- queries -----

    /// Ids in use: streams not yet fully closed.
    pub(crate) fn num_streams(&self) -> usize {
        self.ids.in_use()
    }

    /// The stream's state, or `None` once it is forgotten.
    pub(crate) fn stream(&self, key: StreamKey) -> Option<&StreamState<W>> {
        self.streams.get(key)
    }

    /// The shell's flag of the stream: listed as waiting for a flush.
    pub(crate) fn flush_listed_mut(&mut self, key: StreamKey) -> Option<&mut bool> {
        self.streams.get_mut(key).map(|s| &mut s.flush_listed)
    }

    /// The shell's data for the stream.
    pub(crate) fn waiters_mut(&mut self, key: StreamKey) -> Option<&mut W> {
        self.streams.get_mut(key).map(|s| &mut s.waiters)
    }

    /// Every live stream's key (for waking all of them when the session ends).
    pub(crate) fn keys(&self) -> Vec<StreamKey> {
        self.streams.keys()
    }

    /// The stream's id.
    pub(crate) fn id(&self, key: StreamKey) -> Option<u16> {
        self.streams.get(key).map(|s| s.id)
    }

    // ----- helpers -----

    /// The stream holding `sid`, if the id is in use.
    fn key_of(&self, sid: u16) -> Option<StreamKey> {
        let index = self.by_id.get(sid)?;
        self.streams.key_at(index)
    }

    /// Every stream whose id is in use.
    fn held_keys(&self) -> Vec<StreamKey> {
        self.by_id
            .slots()
            .filter_map(|i| self.streams.key_at(i))
            .collect()
    }

    fn queue_fin(&mut self, key: StreamKey) {
        let s = self.streams.get_mut(key).expect("live stream");
        put_header(&mut self.out, Cmd::Fin, s.id, 0);
        self.counters.frames_out += 1;
        s.last_queued = self.out_base + self.out.len() as u64;
    }

    fn release_id(&mut self, key: StreamKey) {
        let s = self.streams.get(key).expect("live stream");
        let (id, has_handle) = (s.id, s.has_handle);
        self.by_id.remove(id);
        self.ids.remove(id);
        self.events.push(Event::Released);
        if !has_handle {
            self.streams.remove(key);
        }
    }
}

/// Grows or shrinks a stream's window before a confirm, within the maximum and the growth budget
/// (`extension.rs`). The read rate is measured over periods of at least a round trip: a burst
/// read in microseconds says nothing of the path.
fn resize_window<W: Default>(
    s: &mut StreamState<W>,
    rtt_us: u32,
    now_us: u32,
    l: &Limits,
    growth: &mut Budget,
) {
    s.period_read = s.period_read.saturating_add(s.grantable());
    let sample = Sample {
        window: s.recv_window,
        unread: s.recv.len() as u32,
        read: s.period_read,
        elapsed_us: now_us.wrapping_sub(s.period_at),
    };
    if sample.elapsed_us >= rtt_us {
        s.period_at = now_us;
        s.period_read = 0;
    }
    let next = extension::next_window(sample, rtt_us, l.window, l.max_window);
    if next > s.recv_window {
        if growth.try_add((next - s.recv_window) as usize) {
            s.recv_window = next;
        }
    } else if next < s.recv_window {
        growth.remove((s.recv_window - next) as usize);
        s.recv_window = next;
    }
}

/// The stream no longer waits for room (it wrote, or it can write no more).
fn stop_contending<W>(s: &mut StreamState<W>, contenders: &mut usize) {
    if std::mem::take(&mut s.contending) {
        *contenders -= 1;
    }
}
