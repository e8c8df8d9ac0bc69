//! The protocol core: everything docs/PROTOCOL.md says, as plain state changes.
//!
//! Frames in ([`Core::handle_frame`], this file), user actions in ([`Core::open`],
//! [`Core::write`], [`Core::read`], [`Core::close`]: `actions.rs`), bytes for the transport out
//! ([`Core::take_output`]: `output.rs`) and events out ([`Core::take_events`]). No I/O, no
//! wakers, no clock: every rule is testable with plain calls.
//!
//! Where each rule lives:
//! - a stream's lifecycle: `stream_state.rs`, whose transitions say what they owe, paid in one
//!   place ([`Core::settle`]): the FIN, the id released, the reader and writer woken;
//! - flow control: `flow.rs`, checked credit and windows (growth counted while held);
//! - who waits for what: `queue.rs`, lists that own their flags;
//! - the memory budget: `budget.rs`; window growth: `extension.rs`; ids: `ids.rs`;
//! - every rule at once, as a walk over the state: `check.rs`, run after every step of the
//!   property tests (`tests/props.rs`) and the fuzz targets.

mod actions;
mod budget;
#[cfg(any(test, feature = "fuzzing"))]
mod check;
mod direct;
mod extension;
mod flow;
mod id_table;
mod ids;
mod open_credit;
mod output;
#[cfg(any(test, feature = "fuzzing"))]
pub mod pair;
mod queue;
mod recv;
mod slots;
mod small_map;
mod stream_state;
#[cfg(test)]
mod tests;
pub(crate) mod wire;

use std::collections::VecDeque;

use self::budget::Budget;
pub use self::direct::DataHead;
pub(crate) use self::extension::OFFER;
use self::extension::{ExtVrm, Extension, ACCEPT};
use self::flow::{RecvWindow, SendCredit};
use self::id_table::IdTable;
pub use self::ids::Direction;
use self::ids::Ids;
use self::open_credit::{OpenCredit, OpenGrant};
use self::queue::{Confirm, Contend, Counted, Flush, Listed, Over, Room};
use self::recv::{Payload, RecvPool};
use self::slots::Slots;
pub use self::slots::StreamKey;
use self::stream_state::Owed;
pub use self::stream_state::{State, StreamState};
use self::wire::{Frame, Protocol, Put, Wire, XTACI_INITIAL_WINDOW};
use crate::error::ProtocolError;
use crate::frame::{vrm_answer, Header};

/// Output up to this size grows as needed; past it, to the working size at once.
const SMALL_OUTPUT: usize = 16 * 1024;
/// VRM answers queued at most; more probes while they wait are dropped (a prober sends one).
const MAX_VRM_ANSWERS: usize = 8;

/// What happened that the I/O shell may need to wake someone for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The stream has data, or reached end-of-stream, or its state changed.
    Readable(StreamKey),
    /// The stream got send credit back, room in the output queue, its flush completed, or its
    /// state changed.
    Writable(StreamKey),
    /// A stream waits in the accept backlog.
    Incoming,
    /// The answer to our own VRM probe arrived.
    Pong,
    /// An id was released or a reservation dropped (or a detecting server learned its wire):
    /// an open waiting for room may retry.
    Released,
    /// xtaci v1: no stream holds more than its window unread any more; reading the transport,
    /// paused, may go on.
    Resume,
    /// The peer gave room to open this many more streams (`open_credit.rs`; `u32::MAX`: no
    /// limit any more): as many waiting opens may retry.
    Room(u32),
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
pub enum OpenError {
    /// All 65,535 ids are in use.
    Exhausted,
    /// xtaci: this side used up the wire's 32-bit ids ("go away"); nothing was sent.
    GoAway,
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
pub struct Limits {
    /// Per-stream window, both directions.
    pub window: u32,
    /// Largest PSH payload this side sends.
    pub max_frame: u32,
    /// Streams that may wait in the accept backlog.
    pub backlog: usize,
    /// Bytes queued for the transport before writers wait.
    pub write_buffer: usize,
    /// Streams (ids in use) this side lets itself open up to; at most 65,535.
    pub max_streams: usize,
    /// Bytes the accept backlog may hold, as allocated (see `budget.rs`); and, separately, what
    /// streams' windows may grow beyond the base window in all (`extension.rs`).
    pub budget: usize,
    /// The window a stream may grow to, with a peer of this crate (`extension.rs`).
    pub max_window: u32,
}

/// The state of one session, without I/O. `W` is the shell's per-stream data.
#[derive(Debug)]
pub struct Core<W> {
    limits: Limits,
    /// What the bytes look like: yddeng's smux or xtaci's.
    wire: Wire,
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
    /// What this side may open, and what it lets the peer open, between two ends of this crate
    /// (`open_credit.rs`).
    open_credit: OpenCredit,
    open_grant: OpenGrant,
    /// Shutting down: streams the peer opens are refused.
    refusing: bool,
    /// Frames queued for the transport, in order.
    out: Vec<u8>,
    /// Bytes ever moved out by `take_output`, plus what is in `out`: positions for flushing.
    out_base: u64,
    /// Streams with data read and not yet confirmed.
    confirm_list: Listed<Confirm>,
    /// Streams waiting for room in the output queue, in the order they started waiting.
    queue_waiters: Listed<Room>,
    /// Streams waiting for what they queued to be flushed (by the I/O shell).
    flush_waiters: Listed<Flush>,
    /// Writers that wait for room and have not written since.
    contenders: Counted<Contend>,
    /// xtaci v1: streams holding more than their window unread (reading pauses while any does).
    over_window: Counted<Over>,
    /// Frames queued when the last NOP arrived (xtaci), and whether this side answered it: see
    /// `on_nop`.
    frames_out_at_nop: u64,
    nop_answered: bool,
    /// Drained receive buffers for reuse.
    recv_pool: RecvPool,
    /// Output batches taken so far (wrapping): a stream's share is counted per batch.
    batches: u32,
    /// Contenders woken by the last `take_output`.
    woken_contenders: Vec<StreamKey>,
    /// The last `take_output` took nothing and woke only some of the writers waiting for room,
    /// and more wait ([`Core::room_recheck`]).
    room_recheck: bool,
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
    /// A core for one side of a session speaking yddeng's smux.
    #[cfg_attr(not(any(test, feature = "fuzzing")), allow(dead_code))]
    pub fn new(dir: Direction, limits: Limits) -> Self {
        Self::with_protocol(dir, limits, Protocol::Yddeng)
    }

    /// A core for one side of a session speaking `protocol` (a server only may
    /// [`Protocol::Detect`]).
    pub fn with_protocol(dir: Direction, limits: Limits, protocol: Protocol) -> Self {
        let mut core = Core {
            wire: Wire::new(protocol, dir == Direction::Down),
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
            open_credit: OpenCredit::unlimited(),
            open_grant: OpenGrant::new(OpenGrant::room_for(
                limits.backlog,
                limits.budget,
                limits.window,
                Self::STREAM_COST,
            )),
            refusing: false,
            out: Vec::new(),
            out_base: 0,
            confirm_list: Listed::default(),
            queue_waiters: Listed::default(),
            flush_waiters: Listed::default(),
            contenders: Counted::default(),
            over_window: Counted::default(),
            frames_out_at_nop: 0,
            nop_answered: false,
            woken_contenders: Vec::new(),
            room_recheck: false,
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
        };
        core.fit_limits();
        core
    }

    /// Fits the limits to the wire: xtaci frames carry at most 65,535 bytes, and a v2 receiver
    /// must take the 256 KiB a sender assumes before it hears a window.
    fn fit_limits(&mut self) {
        self.limits.max_frame = self.limits.max_frame.min(self.wire.max_payload());
        if self.wire.protocol() == Protocol::Xtaci2 {
            self.limits.window = self.limits.window.max(XTACI_INITIAL_WINDOW);
            self.limits.max_window = self.limits.max_window.max(self.limits.window);
        }
    }

    /// The protocol this session speaks (a detecting server's, once the peer's first byte told).
    pub fn protocol(&self) -> Protocol {
        self.wire.protocol()
    }

    /// Whether the wire has the VRM probe (`Session::ping`): yddeng's only.
    pub(crate) fn probes(&self) -> bool {
        self.wire.probes()
    }

    /// A new stream's state, with the credits the wire gives it.
    fn new_stream(&self, id: u16, has_handle: bool) -> StreamState<W> {
        let window = self.limits.window;
        let send = match self.wire.initial_send_credit(window) {
            Some(credit) => SendCredit::new(credit),
            None => SendCredit::unlimited(),
        };
        let recv = match self.wire.protocol() {
            Protocol::Xtaci2 => RecvWindow::granted(window, XTACI_INITIAL_WINDOW),
            _ => RecvWindow::new(window),
        };
        StreamState::new(id, has_handle, send, recv, self.now_us)
    }

    /// Inserts a new stream under `id` (its wire id bound already); xtaci v2 tells the peer its
    /// whole window at once, beyond the 256 KiB it assumes.
    fn insert_stream(&mut self, id: u16, has_handle: bool) -> StreamKey {
        let stream = self.new_stream(id, has_handle);
        let key = self.streams.insert(stream);
        self.by_id.insert(id, key.index());
        let s = self.streams.get_mut(key).expect("just inserted");
        // (A refused stream, with no handle, is closed at once: nothing to state.)
        if has_handle && self.wire.flow_controlled() && s.grantable() > 0 {
            self.confirm_list.push(key, s);
        }
        key
    }

    /// Sets the core's clock: the time since the session started. The I/O shell calls this
    /// before handing the core frames or taking its output; nothing else in the core reads time.
    pub fn set_clock(&mut self, since_start: std::time::Duration) {
        self.now_us = since_start.as_micros() as u32; // wraps every 71 minutes: only differences count
    }

    /// The client's first frame: the offer of window growth (`extension.rs`), which every
    /// version of the original answers as a probe. Called once, before anything else is queued;
    /// only yddeng's wire has it.
    pub fn offer_extension(&mut self) {
        if !self.server && self.wire.probes() {
            let offer = self.extension.offer();
            self.out.extend_from_slice(&offer.encode());
            self.counters.frames_out += 1;
            // Until the answer, the peer may be this crate: keep within the room it would give.
            self.open_credit.assume_ours();
        }
    }

    // ----- frames from the peer -----

    /// Handles every whole frame at the start of `input` (with `handle` false, after the session
    /// ended, only skips them) and returns the bytes they took; a partial frame at the end is
    /// left. A detecting server first learns its wire from the first byte. An error is a
    /// protocol violation: the session must end.
    #[must_use = "a protocol error must end the session"]
    pub fn handle_input(&mut self, input: &[u8], handle: bool) -> Result<usize, ProtocolError> {
        if matches!(self.wire, Wire::Detect) {
            let Some(&first) = input.first() else {
                return Ok(0);
            };
            self.wire = Wire::detect(first)?;
            self.fit_limits();
            self.events.push(Event::Released); // opens waiting for the wire may go on
        }
        let mut at = 0;
        while let Some((frame, len)) = self.wire.decode(&input[at..])? {
            if handle {
                self.handle(frame)?;
            }
            at += len;
        }
        Ok(at)
    }

    /// Handles one frame of yddeng's wire. `payload` is the PSH payload (empty for other
    /// commands).
    #[must_use = "a protocol error must end the session"]
    #[cfg_attr(not(any(test, feature = "fuzzing")), allow(dead_code))]
    pub fn handle_frame(&mut self, h: Header, payload: &[u8]) -> Result<(), ProtocolError> {
        let mut bytes = h.encode().to_vec();
        bytes.extend_from_slice(payload);
        let used = self.handle_input(&bytes, true)?;
        debug_assert_eq!(used, bytes.len(), "a whole frame");
        Ok(())
    }

    fn handle(&mut self, frame: Frame<'_>) -> Result<(), ProtocolError> {
        self.counters.frames_in += 1;
        trace_event!(debug, frame = ?frame.summary(), "frame in");
        match frame {
            Frame::Syn(sid) => self.on_syn(sid)?,
            Frame::Fin(sid) => {
                // A FIN for an id with no stream is ignored.
                if let Some(key) = self.key_of_wire(sid) {
                    self.heard_about(key);
                    let handshake = self.wire.fin_handshake();
                    let owed = self.live(key).peer_fin(handshake);
                    self.settle(key, owed);
                }
            }
            Frame::Psh(sid, payload) => self.on_data(sid, Payload::Borrowed(payload))?,
            Frame::Cfm(sid, n) => {
                if let Some(key) = self.key_of_wire(sid) {
                    self.heard_about(key);
                    self.on_cfm(key, sid, n)?;
                }
            }
            Frame::Upd { sid, read, window } => {
                if let Some(key) = self.key_of_wire(sid) {
                    let id = self.live(key).id;
                    let in_flight = self
                        .wire
                        .in_flight(id, read)
                        .ok_or(ProtocolError::ReadBeyondSent { stream: sid })?;
                    if self.live(key).send_credit.update(in_flight, window) {
                        self.events.push(Event::Writable(key));
                    }
                }
            }
            Frame::Vrm(h) => self.on_vrm(h)?,
            Frame::Pin => self.on_pin(),
            Frame::Nop => self.on_nop(),
        }
        Ok(())
    }

    /// A SYN opens a stream. On yddeng's wire the id is the peer's (id 0 included: the newest
    /// original's first stream is id 0, docs/PROTOCOL.md 10; this side never allocates it), and
    /// a SYN for an id in use means both sides opened it at once: both ends share the one stream.
    /// On xtaci's the stream gets an id of the core's; a SYN again for a live id is ignored, and
    /// one with this side's parity is an error.
    fn on_syn(&mut self, sid: u32) -> Result<(), ProtocolError> {
        self.open_grant.syn_received();
        if self.key_of_wire(sid).is_some() {
            return Ok(());
        }
        if !self.wire.peer_may_open(sid) {
            return Err(ProtocolError::WrongParity { stream: sid });
        }
        let id = match self.wire.shared_id(sid) {
            Some(id) => {
                self.ids.insert(id);
                id
            }
            None => match self.ids.allocate() {
                Some(id) => id,
                None => {
                    // Every id of the core's is in use (xtaci): refused without a stream.
                    self.counters.refused += 1;
                    self.wire.put_refusal(&mut self.out, sid);
                    self.counters.frames_out += 1;
                    return Ok(());
                }
            },
        };
        self.wire.bind(sid, id);
        // (On xtaci's wire a full backlog pauses reading instead; a backlog of 0 refuses all.)
        let full = self.backlog.len() >= self.limits.backlog && !self.backlog_pauses();
        if self.refusing || full {
            // Refuse: close it at once (on yddeng's wire the id stays in use until the peer's
            // FIN comes back).
            self.counters.refused += 1;
            trace_event!(
                debug,
                stream = sid,
                shutting_down = self.refusing,
                "stream refused: the accept backlog is full or the session is shutting down"
            );
            let key = self.insert_stream(id, false);
            self.say_refused(id);
            let handshake = self.wire.fin_handshake();
            let owed = self.live(key).close(handshake);
            self.settle(key, owed);
            return Ok(());
        }
        let key = self.insert_stream(id, true);
        self.live(key).unclaimed = true;
        self.budget.add(Self::STREAM_COST);
        self.backlog.push_back(key);
        self.events.push(Event::Incoming);
        self.enforce_budget();
        Ok(())
    }

    /// A data frame for the peer's id `sid`, its payload copied or kept
    /// (`Core::handle_data`): data for an id with no stream is read and discarded.
    fn on_data(&mut self, sid: u32, payload: Payload<'_>) -> Result<(), ProtocolError> {
        match self.key_of_wire(sid) {
            Some(key) => {
                self.heard_about(key);
                self.on_psh(key, sid, payload)
            }
            None => {
                self.recv_pool.recycle(payload);
                Ok(())
            }
        }
    }

    fn on_psh(
        &mut self,
        key: StreamKey,
        sid: u32,
        payload: Payload<'_>,
    ) -> Result<(), ProtocolError> {
        let flow_controlled = self.wire.flow_controlled();
        let window = self.limits.window as usize;
        let s = self.streams.get_mut(key).expect("a live stream");
        if !s.state().receiving() {
            // We closed it (the peer had not seen our FIN yet), or it finished.
            self.recv_pool.recycle(payload);
            return Ok(());
        }
        let n = payload.len() as u32;
        if flow_controlled && s.window.receive(n).is_err() {
            return Err(ProtocolError::WindowExceeded {
                stream: sid,
                window: s.window.window(),
            });
        }
        if n > 0 {
            if s.unclaimed {
                let before = s.recv.capacity();
                s.recv.append(payload, &mut self.recv_pool);
                self.budget.add(s.recv.capacity() - before);
            } else {
                s.recv.append(payload, &mut self.recv_pool);
            }
            if !flow_controlled && s.recv.len() > window {
                // No window on the wire (xtaci v1): past one, reading the transport pauses.
                self.over_window.join(&mut s.listed);
            }
            self.events.push(Event::Readable(key));
            if self.budget.exceeded() {
                self.enforce_budget();
            }
        }
        Ok(())
    }

    /// A CFM for more than this side has outstanding can only be late: the original sends CFMs
    /// after its FIN answer, for a stream whose id may have been reused since (docs/PROTOCOL.md
    /// 9). It is stale, and ignored: it never gives credit beyond the window. With a peer of this
    /// crate that agreed to window growth, a CFM is credit, and more than outstanding is a grant.
    fn on_cfm(&mut self, key: StreamKey, sid: u32, n: u32) -> Result<(), ProtocolError> {
        let cap = (!self.extension.active()).then_some(self.limits.window);
        let s = self.streams.get_mut(key).expect("a live stream");
        let credited = s
            .send_credit
            .confirm(n, cap)
            .map_err(|_| ProtocolError::CreditOverflow { stream: sid })?;
        if credited {
            self.events.push(Event::Writable(key));
        }
        Ok(())
    }

    /// A VRM is a probe to answer, unless it is the answer to our own probe, or the peer
    /// answering one of our answers: a session answers any VRM that is not the answer to its own
    /// ping, so without this check one stray answer (say, of an `is_smux` probe cancelled after
    /// it was written) would bounce between two sessions of this crate for ever.
    fn on_vrm(&mut self, h: Header) -> Result<(), ProtocolError> {
        match self.extension.on_vrm(h, self.now_us, self.server) {
            ExtVrm::Answered => return Ok(()),
            ExtVrm::Reflected => return Err(ProtocolError::OfferReflected),
            ExtVrm::Accept => {
                // Straight into the output, ahead of any confirm that grants beyond the base.
                self.out.extend_from_slice(&ACCEPT.encode());
                self.counters.frames_out += 1;
                // The client is this crate: it grants opens, and is granted them.
                self.open_credit.peer_is_ours();
                self.grant_opens();
                return Ok(());
            }
            ExtVrm::Declined => {
                // The original answered the offer: it never refuses a stream.
                self.change_open_credit(OpenCredit::peer_is_not_ours);
                return Ok(());
            }
            ExtVrm::Refused(sid) => {
                if let Some(key) = self.key_of_wire(sid) {
                    let owed = self.live(key).refused();
                    self.settle(key, owed);
                }
                return Ok(());
            }
            ExtVrm::Grant(total) => {
                self.change_open_credit(|c| c.grant(total));
                return Ok(());
            }
            ExtVrm::Agreed => {
                self.open_credit.peer_is_ours();
                self.grant_opens();
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
        Ok(())
    }

    /// A frame about the stream arrived: before the answer to our offer, it may say the peer is
    /// not this crate (`open_credit.rs`).
    fn heard_about(&mut self, key: StreamKey) {
        if !self.open_credit.awaits_answer() {
            return; // every frame but the first few of a client's session
        }
        let id = self.live(key).id;
        self.change_open_credit(|c| c.heard_about(id));
    }

    /// Changes the open credit; waiting opens are told of the room that made, as far as the
    /// other limits (the stream limit, free ids) let them use it: a grant wakes no open that
    /// waits for something else.
    fn change_open_credit(&mut self, change: impl FnOnce(&mut OpenCredit)) {
        let before = self.open_room();
        change(&mut self.open_credit);
        let more = self.open_room().saturating_sub(before);
        if more > 0 {
            self.events
                .push(Event::Room(more.min(u32::MAX as usize) as u32));
        }
    }

    /// Tells a peer of this crate that its stream `id` is refused (its FIN follows).
    fn say_refused(&mut self, id: u16) {
        if self.extension.active() {
            let h = Header::new(
                crate::frame::Cmd::Vrm,
                open_credit::REFUSED_SID,
                u32::from(id),
            );
            self.out.extend_from_slice(&h.encode());
            self.counters.frames_out += 1;
        }
    }

    /// Tells a peer of this crate (one that agreed to the extension) how many streams it may
    /// open, when that moved enough (`open_credit.rs`).
    fn grant_opens(&mut self) {
        if !self.extension.active() {
            return;
        }
        if let Some(grant) = self.open_grant.due(self.backlog.len()) {
            self.out.extend_from_slice(&grant.encode());
            self.counters.frames_out += 1;
        }
    }

    /// The newest original's keepalive (docs/PROTOCOL.md 10): it closes a session in which it has
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
            if self.wire.put_keepalive(&mut self.out) {
                self.counters.frames_out += 1;
            }
        }
    }

    /// xtaci's keepalive: Go sends a NOP every 10 s and closes a session that heard no frame for
    /// 30 s, and never answers one. This side answers a NOP with one unless it has sent any frame
    /// since the last NOP it got, or answered that one: an idle Go peer hears from it at least
    /// every other NOP (20 s with Go's defaults), and two sessions of this crate never ping-pong
    /// (the side that sent a NOP has sent a frame since; of two NOPs in a row, one is answered).
    fn on_nop(&mut self) {
        let quiet = self.counters.frames_out == self.frames_out_at_nop;
        self.nop_answered = quiet && !self.nop_answered;
        if self.nop_answered && self.wire.put_keepalive(&mut self.out) {
            self.counters.frames_out += 1;
        }
        self.frames_out_at_nop = self.counters.frames_out;
    }

    // ----- events and queries -----

    /// Events since the last call, in order.
    pub fn take_events(&mut self, into: &mut Vec<Event>) {
        into.append(&mut self.events);
    }

    /// Whether events wait to be taken.
    pub(crate) fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Ids in use: streams not yet fully closed.
    pub fn num_streams(&self) -> usize {
        self.ids.in_use()
    }

    /// Streams the core still holds: with a handle, or with their id in use.
    pub fn live_streams(&self) -> usize {
        self.streams.len()
    }

    /// Whether the peer may still send on a stream: one whose id is in use and from which no FIN
    /// came (open, or closed by this side only). With none, the peer has finished everything it
    /// started, so its transport ending loses nothing, however it ends. (On xtaci's wire a
    /// stream whose peer sent its FIN keeps its id until this side closes too.)
    pub(crate) fn peer_may_send(&self) -> bool {
        self.held_keys()
            .into_iter()
            .any(|k| self.streams.get(k).map(|s| s.state()) != Some(State::PeerFinished))
    }

    /// The stream's state, or `None` once it is forgotten.
    pub fn stream(&self, key: StreamKey) -> Option<&StreamState<W>> {
        self.streams.get(key)
    }

    /// The shell's data for the stream.
    pub(crate) fn waiters_mut(&mut self, key: StreamKey) -> Option<&mut W> {
        self.streams.get_mut(key).map(|s| &mut s.waiters)
    }

    /// Every live stream's key (for waking all of them when the session ends).
    pub fn keys(&self) -> Vec<StreamKey> {
        self.streams.keys()
    }

    /// The stream's id.
    pub(crate) fn id(&self, key: StreamKey) -> Option<u16> {
        self.streams.get(key).map(|s| s.id)
    }

    /// Whether the peer agreed to window growth (`extension.rs`).
    pub fn extension_active(&self) -> bool {
        self.extension.active()
    }

    /// The smallest round trip measured so far (the extension's handshake, then pings), in
    /// microseconds.
    pub(crate) fn min_rtt_us(&self) -> Option<u32> {
        self.extension.rtt_us()
    }

    /// What windows have grown beyond the base, in all.
    pub fn window_growth(&self) -> usize {
        self.growth.held()
    }

    /// The core's counters.
    pub(crate) fn counters(&self) -> CoreCounters {
        self.counters
    }

    /// Bytes held for streams not yet accepted, as allocated.
    pub fn unclaimed_bytes(&self) -> usize {
        self.budget.held()
    }

    // ----- helpers -----

    /// The stream holding `sid`, if the id is in use.
    fn key_of_wire(&self, sid: u32) -> Option<StreamKey> {
        self.key_of(self.wire.core_id(sid)?)
    }

    /// The stream holding the core's id `sid`, if it is in use.
    fn key_of(&self, sid: u16) -> Option<StreamKey> {
        let index = self.by_id.get(sid)?;
        self.streams.key_at(index)
    }

    /// A stream known to be alive.
    fn live(&mut self, key: StreamKey) -> &mut StreamState<W> {
        self.streams.get_mut(key).expect("a live stream")
    }

    /// Every stream whose id is in use.
    fn held_keys(&self) -> Vec<StreamKey> {
        self.by_id
            .slots()
            .filter_map(|i| self.streams.key_at(i))
            .collect()
    }

    /// Pays what a stream's transition owes: the one place that queues its FIN, takes it out of
    /// the writers contending for room, wakes its reader and writer, and releases its id (which
    /// forgets the stream if no handle refers to it).
    fn settle(&mut self, key: StreamKey, owed: Owed) {
        let s = self.streams.get_mut(key).expect("a live stream");
        if owed.fin {
            self.wire.put(&mut self.out, Put::Fin, s.id);
            self.counters.frames_out += 1;
            if !owed.answer {
                s.last_queued = self.out_base + self.out.len() as u64;
            }
        }
        if !s.state().writable() {
            self.contenders.leave(&mut s.listed);
        }
        if owed.wake {
            self.events.push(Event::Readable(key));
            self.events.push(Event::Writable(key));
        }
        if owed.release_id {
            let (id, has_handle) = (s.id, s.has_handle);
            self.by_id.remove(id);
            self.ids.remove(id);
            self.wire.release(id);
            self.events.push(Event::Released);
            if !has_handle {
                self.streams.remove(key);
            }
        }
    }
}
