//! The protocol core: everything docs/PROTOCOL.md says, as plain state changes.
//!
//! Frames in ([`Core::handle_frame`]: `incoming.rs`), user actions in ([`Core::open`],
//! [`Core::write`], [`Core::read`], [`Core::close`]: `actions.rs`), bytes for the transport out
//! ([`Core::take_output`]: `output.rs`) and events out ([`Core::take_events`]). No I/O, no
//! wakers, no clock: every rule is testable with plain calls.
//!
//! Where each rule lives:
//! - a stream's lifecycle: `stream_state.rs`, whose transitions say what they owe, paid in one
//!   place ([`Core::settle`]): the FIN, the id released, the reader and writer woken;
//! - flow control: `flow.rs`, checked credit and windows (growth counted while held);
//! - who waits for what: `queue.rs`, lists that own their flags;
//! - the memory budget: `budget.rs`; when reading pauses, and which frames wait: `hold.rs`;
//!   window growth: `extension.rs`; ids: `ids.rs`;
//! - every rule at once, as a walk over the state: `check.rs`, run after every step of the
//!   property tests (`tests/props.rs`) and the fuzz targets.

mod actions;
mod budget;
#[cfg(any(test, feature = "fuzzing"))]
mod check;
mod direct;
mod extension;
mod flow;
mod hold;
mod id_table;
mod ids;
mod incoming;
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
use self::extension::Extension;
pub(crate) use self::extension::OFFER;
use self::flow::{RecvWindow, SendCredit};
use self::hold::Held;
use self::id_table::IdTable;
pub use self::ids::Direction;
use self::ids::Ids;
use self::open_credit::{OpenCredit, OpenGrant};
use self::queue::{Confirm, Contend, Counted, Flush, Listed, Over, Room};
use self::recv::RecvPool;
use self::slots::Slots;
pub use self::slots::StreamKey;
use self::stream_state::Owed;
pub use self::stream_state::{State, StreamState};
use self::wire::{Protocol, Put, Wire, XTACI_INITIAL_WINDOW};
use crate::frame::Header;

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
    /// xtaci: the frame `handle_input` stopped before, left in the reader's buffer (`hold.rs`).
    held: Option<Held>,
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
            held: None,
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

    // ----- frames from the peer: `incoming.rs` -----

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
