//! The one deterministic pair harness (quinn-proto's `Pair`): two cores, a client and a server,
//! joined by an in-memory wire that the caller schedules frame by frame. The property tests
//! (`tests/props.rs`) and the `core_pair` fuzz target drive it with random [`PairOp`]s; the unit
//! tests use [`deliver`] to move everything at once.
//!
//! After every step both cores' invariants hold (`check.rs`), every byte read is the byte the
//! other side wrote at that offset of that stream, end-of-stream comes only after all of it; and
//! once both sides drop everything and the wire falls quiet ([`Pair::drain`]), neither keeps an id
//! or a stream.

use std::collections::{HashMap, VecDeque};

use super::wire::{Frame, Protocol, Wire};
use super::{Core, Direction, Event, Limits, Read, State, StreamKey, Write};
use crate::frame::{Cmd, Header, HEADER_LEN};

/// One step of a [`Pair`]; `bool` names the side (`false` the client, `true` the server), `u8`
/// picks one of the streams the side holds (modulo their number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairOp {
    /// Open a stream.
    Open(bool),
    /// Reserve room for an open.
    Reserve(bool),
    /// Open with a reservation.
    OpenReserved(bool),
    /// Give a reservation back.
    Unreserve(bool),
    /// Accept a stream the peer opened.
    Accept(bool),
    /// Write this many bytes of the stream's pattern.
    Write(bool, u8, u16),
    /// Read up to this many bytes, checked against what the peer wrote.
    Read(bool, u8, u16),
    /// Close a stream (its handle stays).
    Close(bool, u8),
    /// Drop a stream's handle.
    Drop(bool, u8),
    /// Close a stream's writing half (a half-close on xtaci's wire, a full close on yddeng's).
    CloseWrite(bool, u8),
    /// Move what the side queued onto its wire.
    Take(bool),
    /// Deliver this many frames of the side's wire to the other side.
    Deliver(bool, u8),
    /// Send a probe with these values.
    Ping(bool, u16, u32),
    /// Close every stream (the session closes).
    CloseAll(bool),
    /// Advance both sides' clocks by this many milliseconds.
    Tick(u16),
}

/// Moves every queued byte from `from` to `to`, as frames (for the unit tests).
pub fn deliver(from: &mut Core<()>, to: &mut Core<()>) {
    let mut bytes = Vec::new();
    from.take_output(&mut bytes);
    for (h, range) in frames(&bytes).expect("a core sends whole, well-formed frames") {
        to.handle_frame(h, &bytes[range])
            .expect("valid frames between two cores");
    }
}

/// Splits `wire` into frames, checking each is well-formed as this crate sends it: a PSH no
/// longer than its maximum, a SYN never for id 0, no frame cut.
pub fn frames(wire: &[u8]) -> Result<Vec<(Header, std::ops::Range<usize>)>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < wire.len() {
        let head: &[u8; HEADER_LEN] = wire
            .get(at..at + HEADER_LEN)
            .ok_or("a cut header in the output")?
            .try_into()
            .expect("a header's length");
        let h = Header::decode(head).map_err(|e| format!("output frame does not decode: {e}"))?;
        if h.cmd == Cmd::Syn && h.sid == 0 {
            return Err("SYN for id 0 in the output".into());
        }
        let end = at + HEADER_LEN + h.payload_len();
        if end > wire.len() {
            return Err("a cut payload in the output".into());
        }
        out.push((h, at + HEADER_LEN..end));
        at = end;
    }
    Ok(out)
}

/// One frame of a core's output, as [`split`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The wire id of the stream it opens, for a SYN.
    pub syn: Option<u32>,
    /// The length of its data, for a PSH.
    pub psh: Option<u32>,
    /// Where its bytes lie in the output.
    pub bytes: std::ops::Range<usize>,
}

/// Splits what a core of `protocol` sent into whole frames.
pub fn split(protocol: Protocol, wire: &[u8]) -> Result<Vec<Sent>, String> {
    let decoder = Wire::new(protocol, false);
    let mut out = Vec::new();
    let mut at = 0;
    while at < wire.len() {
        let (frame, len) = decoder
            .decode(&wire[at..])
            .map_err(|e| format!("output frame does not decode: {e}"))?
            .ok_or("a cut frame in the output")?;
        let (syn, psh) = match frame {
            Frame::Syn(sid) => (Some(sid), None),
            Frame::Psh(_, p) => (None, Some(p.len() as u32)),
            _ => (None, None),
        };
        out.push(Sent {
            syn,
            psh,
            bytes: at..at + len,
        });
        at += len;
    }
    Ok(out)
}

/// The byte at `offset` of what `side` writes on stream `seq`: position-dependent, so that a
/// byte delivered to the wrong stream, twice, or out of order is caught.
fn pattern(seq: u64, side: usize, offset: u64) -> u8 {
    let x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ offset.wrapping_mul(0xD1B5_4A32_D192_ED03)
        ^ side as u64;
    (x ^ (x >> 29) ^ (x >> 47)) as u8
}

#[derive(Debug, Clone, Copy)]
struct Held {
    key: StreamKey,
    /// The stream's number in this run (both sides know it by the same number).
    seq: u64,
}

#[derive(Debug)]
struct Side {
    core: Core<()>,
    held: Vec<Held>,
    /// Numbers of the streams waiting in this side's accept backlog, oldest first.
    backlog: VecDeque<u64>,
    /// (id, number) of the streams opened since the last take, whose SYN is in the queue.
    opened: Vec<(u16, u64)>,
    /// Whole frames on the wire towards the other side, each with whether it is a SYN, and a
    /// SYN with its stream's number.
    wire: VecDeque<(bool, Vec<u8>, Option<u64>)>,
    /// What the wire is, to split the output into frames.
    protocol: Protocol,
    reserved: usize,
    closed: bool,
    /// A probe is out and its answer not yet recognised.
    ping_out: bool,
    now_ms: u64,
}

impl Side {
    fn new(dir: Direction, limits: Limits, protocol: Protocol, wire: Protocol) -> Self {
        let mut core = Core::with_protocol(dir, limits, protocol);
        core.offer_extension();
        Side {
            core,
            held: Vec::new(),
            backlog: VecDeque::new(),
            opened: Vec::new(),
            wire: VecDeque::new(),
            protocol: wire,
            reserved: 0,
            closed: false,
            ping_out: false,
            now_ms: 0,
        }
    }

    /// A driver's poll: the writers woken for room last time have had their turn, then the
    /// driver takes what is queued. Nobody may sleep while room is free: with nothing to write
    /// and writers waiting, a recheck is due, and a recheck that finds nothing queued wakes them.
    fn take(&mut self) {
        let recheck = self.core.room_recheck();
        let queued = self.core.queued_len() > 0;
        self.core.room_rechecked();
        assert!(
            !(recheck && !queued && self.core.has_queue_waiters()),
            "a recheck with nothing queued left writers waiting for room"
        );
        let mut out = Vec::new();
        self.core.take_output(&mut out);
        assert!(
            !(out.is_empty() && self.core.has_queue_waiters() && !self.core.room_recheck()),
            "writers wait for room, nothing is left to write, and no recheck is due"
        );
        let frames = split(self.protocol, &out).unwrap_or_else(|e| panic!("bad output: {e}"));
        let mut opened = std::mem::take(&mut self.opened).into_iter();
        for Sent { syn, psh, bytes } in frames {
            if let Some(n) = psh {
                assert!(n <= self.core.limits.max_frame, "a PSH beyond the maximum");
            }
            let seq = syn.map(|sid| {
                let (id, seq) = opened.next().expect("a SYN for a stream we did not open");
                if self.protocol == Protocol::Yddeng {
                    assert_eq!(u32::from(id), sid, "SYNs leave in the order of the opens");
                }
                seq
            });
            self.wire
                .push_back((syn.is_some(), out[bytes].to_vec(), seq));
        }
        assert!(opened.next().is_none(), "an open without its SYN");
    }

    fn note_events(&mut self) -> bool {
        let mut events = Vec::new();
        self.core.take_events(&mut events);
        let mut incoming = false;
        for ev in events {
            match ev {
                Event::Pong => self.ping_out = false,
                Event::Incoming => incoming = true,
                Event::Readable(k) | Event::Writable(k) => {
                    // An event may name a stream that is gone since; never a held one lost.
                    let _ = self.core.stream(k);
                }
                Event::Released | Event::Resume | Event::Room(_) => {}
            }
        }
        incoming
    }

    fn opened(&mut self, key: StreamKey, seq: u64) {
        let id = self.core.stream(key).expect("just opened").id;
        self.opened.push((id, seq));
        self.held.push(Held { key, seq });
    }

    fn pick(&self, i: u8) -> Option<usize> {
        (!self.held.is_empty()).then(|| i as usize % self.held.len())
    }
}

/// Two cores joined by a wire the caller schedules. See the module docs.
#[derive(Debug)]
pub struct Pair {
    sides: [Side; 2],
    /// Bytes written and read, per (stream number, side).
    written: HashMap<(u64, usize), u64>,
    read: HashMap<(u64, usize), u64>,
    next_seq: u64,
    buf: Vec<u8>,
    /// Whether the next data frame goes the way the driver reads a large payload.
    direct: bool,
}

impl Pair {
    /// A client and a server with the same limits. The model expects every byte of every
    /// accepted stream, so `limits.budget` should not refuse streams waiting in the backlog (the
    /// budget's accounting is checked by the invariants all the same).
    #[cfg_attr(not(feature = "fuzzing"), allow(dead_code))]
    pub fn new(limits: Limits) -> Pair {
        Pair::with_protocols(limits, Protocol::Yddeng, Protocol::Yddeng)
    }

    /// A client speaking `client` and a server speaking `server` (the same, or
    /// [`Protocol::Detect`]).
    pub fn with_protocols(limits: Limits, client: Protocol, server: Protocol) -> Pair {
        Pair {
            sides: [
                Side::new(Direction::Up, limits, client, client),
                Side::new(Direction::Down, limits, server, client),
            ],
            written: HashMap::new(),
            read: HashMap::new(),
            next_seq: 0,
            buf: vec![0; usize::from(u16::MAX) + 1],
            direct: false,
        }
    }

    /// Runs one step, then checks both cores' invariants; panics on any broken rule.
    pub fn step(&mut self, op: PairOp) {
        self.apply(op);
        for s in &mut self.sides {
            s.note_events();
        }
        for (i, s) in self.sides.iter_mut().enumerate() {
            if let Err(e) = s.core.check_invariants() {
                panic!("side {i}: a rule broke after {op:?}: {e}");
            }
        }
    }

    fn apply(&mut self, op: PairOp) {
        let ix = usize::from;
        match op {
            PairOp::Open(b) => {
                let seq = self.next_seq;
                let s = &mut self.sides[ix(b)];
                if !s.closed {
                    if let Ok(key) = s.core.open() {
                        s.opened(key, seq);
                        self.next_seq += 1;
                    }
                }
            }
            PairOp::Reserve(b) => {
                let s = &mut self.sides[ix(b)];
                if !s.closed && s.core.reserve().is_ok() {
                    s.reserved += 1;
                }
            }
            PairOp::Unreserve(b) => {
                let s = &mut self.sides[ix(b)];
                if s.reserved > 0 {
                    s.reserved -= 1;
                    s.core.unreserve();
                }
            }
            PairOp::OpenReserved(b) => {
                let seq = self.next_seq;
                let s = &mut self.sides[ix(b)];
                if s.reserved > 0 {
                    s.reserved -= 1;
                    if let Ok(key) = s.core.open_reserved() {
                        s.opened(key, seq);
                        self.next_seq += 1;
                    }
                }
            }
            PairOp::Accept(b) => {
                let s = &mut self.sides[ix(b)];
                if let Some(key) = s.core.accept() {
                    let seq = s.backlog.pop_front().expect("the backlog model is in step");
                    s.held.push(Held { key, seq });
                } else {
                    assert!(
                        s.backlog.is_empty(),
                        "the core's backlog is empty, the model's not"
                    );
                }
            }
            PairOp::Write(b, i, n) => self.write(ix(b), i, usize::from(n)),
            PairOp::Read(b, i, n) => self.read(ix(b), i, usize::from(n)),
            PairOp::Close(b, i) => {
                let s = &mut self.sides[ix(b)];
                if let Some(i) = s.pick(i) {
                    let key = s.held[i].key;
                    let before = s.core.stream(key).map(|st| st.state());
                    s.core.close(key);
                    let after = s.core.stream(key).map(|st| st.state());
                    if before != after {
                        // Whoever waits on the stream, on any task, must look again at once.
                        let mut events = Vec::new();
                        s.core.take_events(&mut events);
                        assert!(
                            events.contains(&Event::Readable(key))
                                && events.contains(&Event::Writable(key)),
                            "a close ({before:?} to {after:?}) woke neither reader nor writer"
                        );
                        s.core.events = events; // the rest are the side's to note
                    }
                }
            }
            PairOp::CloseWrite(b, i) => {
                let s = &mut self.sides[ix(b)];
                if let Some(i) = s.pick(i) {
                    let key = s.held[i].key;
                    if !s.core.close_write(key) {
                        s.core.close(key);
                    }
                }
            }
            PairOp::Drop(b, i) => {
                let s = &mut self.sides[ix(b)];
                if let Some(i) = s.pick(i) {
                    let held = s.held.swap_remove(i);
                    s.core.drop_handle(held.key);
                }
            }
            PairOp::Take(b) => self.sides[ix(b)].take(),
            PairOp::Deliver(b, n) => self.deliver(ix(b), usize::from(n)),
            PairOp::Ping(b, v1, v2) => {
                let s = &mut self.sides[ix(b)];
                // One probe at a time (the client also probes once by itself, after the
                // window-growth handshake: a probe the model does not know of may be out).
                let sent = s.core.ping(v1, v2).is_some();
                assert!(!(sent && s.ping_out), "a second probe while one is out");
                s.ping_out |= sent;
            }
            PairOp::CloseAll(b) => {
                let s = &mut self.sides[ix(b)];
                s.core.close_all();
                s.backlog.clear();
                s.closed = true;
            }
            PairOp::Tick(ms) => {
                for s in &mut self.sides {
                    s.now_ms += u64::from(ms);
                    s.core.set_clock(std::time::Duration::from_millis(s.now_ms));
                }
            }
        }
    }

    fn write(&mut self, side: usize, i: u8, n: usize) {
        let s = &mut self.sides[side];
        let Some(i) = s.pick(i) else { return };
        let Held { key, seq } = s.held[i];
        let at = *self.written.get(&(seq, side)).unwrap_or(&0);
        for (k, byte) in self.buf[..n].iter_mut().enumerate() {
            *byte = pattern(seq, side, at + k as u64);
        }
        if let Write::Queued(k) = s.core.write(key, &self.buf[..n]) {
            assert!(k <= n, "queued more than given");
            *self.written.entry((seq, side)).or_insert(0) += k as u64;
        }
    }

    fn read(&mut self, side: usize, i: u8, n: usize) {
        let s = &mut self.sides[side];
        let Some(i) = s.pick(i) else { return };
        let Held { key, seq } = s.held[i];
        let at = *self.read.get(&(seq, side)).unwrap_or(&0);
        let peer_wrote = *self.written.get(&(seq, 1 - side)).unwrap_or(&0);
        match s.core.read(key, &mut self.buf[..n]) {
            Read::Data(k) => {
                assert!(at + k as u64 <= peer_wrote, "read more than the peer wrote");
                for (j, &byte) in self.buf[..k].iter().enumerate() {
                    assert_eq!(
                        byte,
                        pattern(seq, 1 - side, at + j as u64),
                        "stream {seq}: a corrupt byte"
                    );
                }
                *self.read.entry((seq, side)).or_insert(0) += k as u64;
            }
            Read::Eof => assert_eq!(
                at, peer_wrote,
                "stream {seq}: end-of-stream before its data"
            ),
            // A refusal the peer named (a peer of this crate, whose backlog was full) ends the
            // stream as a cut does; nothing else may.
            Read::Cut => assert_eq!(
                s.core.stream(key).map(|st| st.state()),
                Some(State::Refused),
                "stream {seq}: cut off, yet neither session ended"
            ),
            Read::Empty | Read::ClosedLocally => {}
        }
    }

    fn deliver(&mut self, from: usize, n: usize) {
        let to = 1 - from;
        for _ in 0..n {
            // As the driver reads: not while reading is paused.
            if self.sides[to].core.input_paused() {
                return;
            }
            let Some((syn, bytes, seq)) = self.sides[from].wire.pop_front() else {
                return;
            };
            let refused = self.sides[to].core.counters().refused;
            if !self.handle(to, &bytes) {
                // Left for when the application accepts (xtaci's wire, `hold.rs`).
                assert!(
                    self.sides[to].core.input_paused(),
                    "a frame left, reading goes on"
                );
                self.sides[from].wire.push_front((syn, bytes, seq));
                return;
            }
            let incoming = self.sides[to].note_events();
            if syn {
                let seq = seq.expect("a SYN carries its stream's number");
                if incoming {
                    self.sides[to].backlog.push_back(seq);
                } else {
                    // Refused (the backlog is full): a FIN is on its way.
                    assert_eq!(
                        self.sides[to].core.counters().refused,
                        refused + 1,
                        "a SYN neither queued nor refused"
                    );
                }
            }
        }
    }

    /// Hands one whole frame to side `to`: every other data frame the way the driver reads a
    /// large payload (`core/direct.rs`: the header decoded from what came first, the payload in
    /// a buffer of its own), the rest as bytes read. Returns whether the core took it (on xtaci's
    /// wire it may leave it, for the application to accept first).
    fn handle(&mut self, to: usize, frame: &[u8]) -> bool {
        let core = &mut self.sides[to].core;
        let head = match frame.split_last() {
            Some((_, first)) => core.partial_data(first, 1),
            None => None,
        };
        let refused = |e: crate::error::ProtocolError| -> ! {
            panic!("a well-behaved peer's frame was refused: {e}")
        };
        if let Some(head) = head {
            self.direct = !self.direct;
            if self.direct {
                let mut payload = core.payload_buffer(head.payload);
                payload.copy_from_slice(&frame[head.len..]);
                core.handle_data(head, payload, true)
                    .unwrap_or_else(|e| refused(e));
                return true;
            }
        }
        let used = core
            .handle_input(frame, true)
            .unwrap_or_else(|e| refused(e));
        assert!(
            used == 0 || used == frame.len(),
            "a frame is taken whole or left"
        );
        used > 0
    }

    /// Both sides take what waits to be accepted, drop every handle and give back every
    /// reservation; then frames move until the wire is quiet. Panics if anything is left: an id,
    /// a stream nobody can reach, frames that bounce for ever.
    pub fn drain(&mut self) {
        for s in &mut self.sides {
            while let Some(key) = s.core.accept() {
                s.core.drop_handle(key);
            }
            s.backlog.clear();
            for held in s.held.drain(..) {
                s.core.drop_handle(held.key);
            }
            for _ in 0..s.reserved {
                s.core.unreserve();
            }
            s.reserved = 0;
        }
        let mut rounds = 0;
        loop {
            rounds += 1;
            assert!(
                rounds < 1000,
                "the two sides never fall quiet (frames bounce)"
            );
            for s in &mut self.sides {
                s.take();
            }
            if self.sides.iter().all(|s| s.wire.is_empty()) {
                break;
            }
            for from in 0..2 {
                // Until the wire is empty, or the other side's backlog is full (xtaci's wire
                // pauses there): it accepts below.
                while !self.sides[from].wire.is_empty() && !self.sides[1 - from].core.input_paused()
                {
                    self.deliver(from, 1);
                }
            }
            for s in &mut self.sides {
                s.note_events();
                while let Some(key) = s.core.accept() {
                    s.core.drop_handle(key);
                }
                s.backlog.clear();
            }
        }
        for (i, s) in self.sides.iter_mut().enumerate() {
            if let Err(e) = s.core.check_invariants() {
                panic!("side {i}: a rule broke in the drain: {e}");
            }
            assert_eq!(s.core.num_streams(), 0, "side {i} leaks ids");
            assert_eq!(
                s.core.live_streams(),
                0,
                "side {i} keeps streams nobody can reach"
            );
        }
    }
}
