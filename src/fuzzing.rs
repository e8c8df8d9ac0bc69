//! Fuzzing hooks: the pure protocol core behind a small public face, and a checker of its
//! invariants. Enabled by the `fuzzing` feature for the targets in `fuzz/`; not a stable API.
//!
//! [`FuzzCore`] forwards every call to the crate's `Core` unchanged; [`FuzzCore::check`] walks
//! the core's state and says which invariant, if any, no longer holds.

use std::collections::HashSet;

use crate::core::{Core, Direction, Event, Limits, OpenError, State, StreamKey};
use crate::error::ProtocolError;
use crate::frame::{Cmd, Header, HEADER_LEN};

/// The limits of a [`FuzzCore`] (the protocol-relevant part of [`Config`](crate::Config)).
#[derive(Debug, Clone, Copy)]
pub struct CoreLimits {
    /// Per-stream window, both directions.
    pub window: u32,
    /// Largest PSH payload this side sends.
    pub max_frame: u32,
    /// Streams that may wait in the accept backlog.
    pub backlog: usize,
    /// Bytes queued for the transport before writers wait.
    pub write_buffer: usize,
    /// Streams (ids in use, plus reservations) this side opens up to; at most 65,535.
    pub max_streams: usize,
    /// Bytes the accept backlog may hold, as allocated; and, separately, what windows may grow
    /// beyond `window` in all.
    pub budget: usize,
    /// How far a stream's receive window may grow once a peer agreed to window growth.
    pub max_window: u32,
}

/// A stream of a [`FuzzCore`], as its handle (or the accept backlog) names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handle(StreamKey);

/// The result of [`FuzzCore::read`]: the core's own.
pub use crate::core::Read as ReadOutcome;
/// The result of [`FuzzCore::write`]: the core's own.
pub use crate::core::Write as WriteOutcome;

/// An event of the core (mirrors the core's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreEvent {
    /// The stream has data, reached end-of-stream, or changed state.
    Readable(Handle),
    /// The stream got credit back or changed state.
    Writable(Handle),
    /// A stream waits in the accept backlog.
    Incoming,
    /// The answer to our own probe arrived.
    Pong,
    /// An id was released or a reservation given back.
    Released,
}

/// Where a stream is in its close handshake (mirrors the core's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamPhase {
    /// Open both ways; id in use.
    Open,
    /// We sent FIN; id in use until the peer's FIN.
    FinSent,
    /// The peer sent FIN; id released.
    FinReceived,
    /// Closed after the handshake; id released.
    Closed,
}

/// A snapshot of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamInfo {
    /// The wire id.
    pub id: u16,
    /// The close state.
    pub phase: StreamPhase,
    /// What the stream may still send before the peer confirms more.
    pub send_credit: u32,
    /// Received and not yet read.
    pub buffered: usize,
    /// A handle or the backlog refers to it.
    pub has_handle: bool,
    /// Waits for room in the output queue (fair sharing).
    pub contending: bool,
    /// Bytes this stream queued in the current output batch.
    pub batch_bytes: u32,
}

/// The protocol core with `()` as the shell's per-stream data.
#[derive(Debug)]
pub struct FuzzCore {
    core: Core<()>,
    limits: CoreLimits,
    /// Upper bound on control headers (SYN, FIN, VRM) queued since the last `take_output`.
    control_headers: usize,
}

impl FuzzCore {
    /// A core for the client side (ids upward) or the server side (ids downward).
    pub fn new(client: bool, limits: CoreLimits) -> Self {
        let dir = if client {
            Direction::Up
        } else {
            Direction::Down
        };
        let l = Limits {
            window: limits.window,
            max_frame: limits.max_frame,
            backlog: limits.backlog,
            write_buffer: limits.write_buffer,
            max_streams: limits.max_streams,
            budget: limits.budget,
            max_window: limits.max_window.max(limits.window),
        };
        FuzzCore {
            core: Core::new(dir, l),
            limits,
            control_headers: 0,
        }
    }

    /// The limits this core was made with.
    pub fn limits(&self) -> CoreLimits {
        self.limits
    }

    /// One frame from the peer; `payload.len()` must equal `h.payload_len()`.
    pub fn handle_frame(&mut self, h: Header, payload: &[u8]) -> Result<(), ProtocolError> {
        assert_eq!(
            payload.len(),
            h.payload_len(),
            "the harness passes whole frames"
        );
        self.control_headers += 1; // a FIN answer or a FIN refusing a SYN
        self.core.handle_frame(h, payload)
    }

    /// Feeds every whole frame at the start of `wire` to the core, as the driver does. Returns the
    /// bytes consumed (a partial frame at the end is left), or the first decode or protocol error.
    pub fn handle_wire(&mut self, wire: &[u8]) -> Result<usize, ProtocolError> {
        let mut at = 0;
        while wire.len() - at >= HEADER_LEN {
            let head: &[u8; HEADER_LEN] = wire[at..at + HEADER_LEN].try_into().expect("7 bytes");
            let h = Header::decode(head)?;
            let total = HEADER_LEN + h.payload_len();
            if wire.len() - at < total {
                break;
            }
            self.handle_frame(h, &wire[at + HEADER_LEN..at + total])?;
            at += total;
        }
        Ok(at)
    }

    /// Opens a stream: `Err(true)` when all ids are in use, `Err(false)` at the stream limit.
    pub fn open(&mut self) -> Result<Handle, bool> {
        self.control_headers += 1;
        self.core
            .open()
            .map(Handle)
            .map_err(|e| e == OpenError::Exhausted)
    }

    /// Reserves room for one later [`FuzzCore::open_reserved`]; errors as [`FuzzCore::open`].
    pub fn reserve(&mut self) -> Result<(), bool> {
        self.core.reserve().map_err(|e| e == OpenError::Exhausted)
    }

    /// Gives a reservation back.
    pub fn unreserve(&mut self) {
        self.core.unreserve()
    }

    /// Opens with a reservation; fails only when the peer took the last ids since.
    pub fn open_reserved(&mut self) -> Result<Handle, bool> {
        self.control_headers += 1;
        self.core
            .open_reserved()
            .map(Handle)
            .map_err(|e| e == OpenError::Exhausted)
    }

    /// Takes the oldest stream of the accept backlog.
    pub fn accept(&mut self) -> Option<Handle> {
        self.core.accept().map(Handle)
    }

    /// Queues at most one frame of `data`.
    pub fn write(&mut self, h: Handle, data: &[u8]) -> WriteOutcome {
        self.core.write(h.0, data)
    }

    /// Reads buffered data.
    pub fn read(&mut self, h: Handle, buf: &mut [u8]) -> ReadOutcome {
        self.core.read(h.0, buf)
    }

    /// Closes the stream from our side.
    pub fn close(&mut self, h: Handle) {
        self.control_headers += 1;
        self.core.close(h.0)
    }

    /// The handle is gone.
    pub fn drop_handle(&mut self, h: Handle) {
        self.control_headers += 1;
        self.core.drop_handle(h.0)
    }

    /// Closes every stream and empties the backlog (what `Session::close` does).
    pub fn close_all(&mut self) {
        self.control_headers += self.core.num_streams();
        self.core.close_all()
    }

    /// The peer closed the transport at a frame boundary.
    pub fn peer_gone(&mut self) {
        self.core.peer_gone()
    }

    /// The session failed: the backlog is dropped.
    pub fn clear_backlog(&mut self) {
        self.core.clear_backlog()
    }

    /// Queues a VRM probe, unless one is out already.
    pub fn ping(&mut self, v1: u16, v2: u32) -> Option<Header> {
        self.control_headers += 1;
        self.core.ping(v1, v2)
    }

    /// Everything queued for the transport.
    pub fn take_output(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.core.has_output() {
            self.core.take_output(&mut out);
        }
        self.control_headers = 0;
        out
    }

    /// Events since the last call.
    pub fn take_events(&mut self) -> Vec<CoreEvent> {
        let mut ev = Vec::new();
        self.core.take_events(&mut ev);
        ev.into_iter()
            .map(|e| match e {
                Event::Readable(k) => CoreEvent::Readable(Handle(k)),
                Event::Writable(k) => CoreEvent::Writable(Handle(k)),
                Event::Incoming => CoreEvent::Incoming,
                Event::Pong => CoreEvent::Pong,
                Event::Released => CoreEvent::Released,
            })
            .collect()
    }

    /// Ids in use.
    pub fn num_streams(&self) -> usize {
        self.core.num_streams()
    }

    /// Stream states the core keeps (whether or not they hold an id).
    pub fn live_streams(&self) -> usize {
        self.core.keys().len()
    }

    /// Bytes queued for the transport.
    pub fn queued_len(&self) -> usize {
        self.core.queued_len()
    }

    /// A snapshot of the stream, or `None` once the core forgot it.
    pub fn stream(&self, h: Handle) -> Option<StreamInfo> {
        self.core.stream(h.0).map(|s| StreamInfo {
            id: s.id,
            phase: match s.state {
                State::Open => StreamPhase::Open,
                State::FinSent => StreamPhase::FinSent,
                State::FinReceived => StreamPhase::FinReceived,
                State::Closed => StreamPhase::Closed,
            },
            send_credit: s.send_credit,
            buffered: s.recv.len(),
            has_handle: s.has_handle,
            contending: s.contending,
            batch_bytes: s.batch_bytes,
        })
    }

    /// Checks the core's invariants; `Err` names the first that fails.
    ///
    /// - every stream's send credit and receive buffer stay within the window, and the buffer's
    ///   allocation within twice the window;
    /// - the ids in use are exactly the ids of the streams that hold one, each once (0 only if the
    ///   peer opened it: this side never allocates it);
    /// - a stream that holds no id is kept only while a handle refers to it (nothing unreachable
    ///   is kept);
    /// - the output queue holds at most the write buffer, one data frame beyond it, and the control
    ///   frames queued since the last `take_output`;
    /// - the budget counts exactly what the streams in the accept backlog hold, and that stays
    ///   within the budget;
    /// - only open streams contend for room in the queue;
    /// - no stream's flush position lies beyond what was queued.
    pub fn check(&self) -> Result<(), String> {
        let window = self.limits.window;
        let max_window = self.limits.max_window.max(window);
        // Once the peer agreed to window growth, credit may pass the base window.
        let grows = self.core.extension_active();
        let mut ids = HashSet::new();
        let mut unclaimed = 0;
        for key in self.core.keys() {
            let s = self.core.stream(key).ok_or("keys() listed a dead key")?;
            let id = s.id;
            if s.unclaimed {
                unclaimed += Core::<()>::STREAM_COST + s.recv.capacity();
                if !s.has_handle {
                    return Err(format!("stream {id} is unclaimed but not in the backlog"));
                }
            }
            if !grows && s.send_credit > window {
                return Err(format!(
                    "stream {id}: send credit {} > window {window} without window growth",
                    s.send_credit
                ));
            }
            let held = s.recv.len() as u64 + u64::from(s.recv_credit);
            let limit = if grows { max_window } else { window };
            if held > u64::from(limit) || s.recv_window > limit || s.recv_window < window {
                return Err(format!(
                    "stream {id}: buffered {} + credit {} / window {} / limit {limit}",
                    s.recv.len(),
                    s.recv_credit,
                    s.recv_window
                ));
            }
            if s.recv.capacity() > 2 * limit as usize + 64 {
                return Err(format!(
                    "stream {id}: buffer capacity {} for window {window}",
                    s.recv.capacity()
                ));
            }
            if s.state.holds_id() {
                if !ids.insert(id) {
                    return Err(format!("two streams hold id {id}"));
                }
            } else if !s.has_handle {
                return Err(format!(
                    "stream {id} ({:?}) holds no id and has no handle, yet is kept",
                    s.state
                ));
            }
            if s.contending && s.state != State::Open {
                return Err(format!(
                    "stream {id} ({:?}) still contends for the queue",
                    s.state
                ));
            }
            if s.last_queued > self.core.out_pos() {
                return Err(format!("stream {id}: flush position beyond the queue"));
            }
        }
        if unclaimed != self.core.unclaimed_bytes() {
            return Err(format!(
                "the budget counts {} bytes, the backlog's streams hold {unclaimed}",
                self.core.unclaimed_bytes()
            ));
        }
        if unclaimed > self.limits.budget.max(Core::<()>::STREAM_COST) {
            return Err(format!(
                "the backlog holds {unclaimed} bytes, over the budget of {}",
                self.limits.budget
            ));
        }
        if ids.len() != self.core.num_streams() {
            return Err(format!(
                "{} ids in use, {} streams hold one",
                self.core.num_streams(),
                ids.len()
            ));
        }
        let bound = self.limits.write_buffer
            + HEADER_LEN
            + self.limits.max_frame as usize
            + HEADER_LEN * self.control_headers;
        if self.core.queued_len() > bound {
            return Err(format!(
                "output queue {} > bound {bound}",
                self.core.queued_len()
            ));
        }
        Ok(())
    }
}

/// Splits `wire` into frames, checking each is well-formed as this crate sends it: a known
/// command, a PSH no longer than `max_frame`, a SYN never for id 0. Returns the headers and
/// payload ranges; a trailing partial frame is an error (the core never cuts a frame).
pub fn parse_output(
    wire: &[u8],
    max_frame: u32,
) -> Result<Vec<(Header, std::ops::Range<usize>)>, String> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < wire.len() {
        let head: &[u8; HEADER_LEN] = wire
            .get(at..at + HEADER_LEN)
            .ok_or("a cut header in the output")?
            .try_into()
            .expect("7 bytes");
        let h = Header::decode(head).map_err(|e| format!("output frame does not decode: {e}"))?;
        if h.cmd == Cmd::Psh && h.len > max_frame {
            return Err(format!("PSH of {} > max frame {max_frame}", h.len));
        }
        if h.cmd == Cmd::Syn && h.sid == 0 {
            return Err("SYN for id 0 in the output".into());
        }
        let end = at + HEADER_LEN + h.payload_len();
        if end > wire.len() {
            return Err("a cut payload in the output".into());
        }
        frames.push((h, at + HEADER_LEN..end));
        at = end;
    }
    Ok(frames)
}
