//! The state one stream holds in the protocol core, and its lifecycle.
//!
//! ```text
//!                 close: owe FIN                     peer's FIN: release id
//!   Open ──────────────────────────────► FinSent ─────────────────────► Closed
//!    │  │                                (id in use)                    (id released)
//!    │  │ session ended                      │ session ended: release id  ▲  ▲
//!    │  └─────────────► Cut ─────────────────┼──── close ─────────────────┘  │
//!    │ peer's FIN: owe FIN answer,           ▼                               │
//!    │ release id                          Closed                            │
//!    ▼                                                                       │
//!   FinReceived ──────────────────────── close ──────────────────────────────┘
//!   (buffered data readable, then end-of-stream; in Cut, then an error)
//!
//!   Open ── a peer of this crate refused it: owe FIN answer, release id ──► Refused ── close ──► Closed
//!   (reads and writes fail with the refusal; FinSent goes to Closed, as on the peer's FIN)
//! ```
//! The id is in use in `Open` and `FinSent`; the state itself lives on until both the id is
//! released and no handle refers to it, so a handle never reaches a newer stream that reuses its
//! id. The state is private: it changes only through the transitions below, each of which says
//! what it owes ([`Owed`]), and the core settles every debt in one place.

use super::flow::{RecvWindow, SendCredit};
use super::queue::Listings;
use super::recv::{RecvBuf, RecvPool};

/// Where a stream is in its close handshake (docs/PROTOCOL.md 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Both directions open; the id is in use.
    Open,
    /// We sent FIN and wait for the peer's; the id stays in use until then.
    FinSent,
    /// The peer sent FIN and we answered: buffered data is readable, writes fail; id released.
    FinReceived,
    /// xtaci/smux: the peer sent FIN (it sends no more; since v1.5.57 it may be a half-close):
    /// buffered data is readable, then end-of-stream; writes go on; the id stays in use until
    /// this side closes too.
    PeerFinished,
    /// xtaci/smux: this side closed its writing half (a FIN, `Stream::close_write`): reads go
    /// on until the peer's FIN; writes fail; the id stays in use until then.
    WriteClosed,
    /// The session ended before the peer closed the stream: buffered data is readable, then
    /// reads fail (a cut stream is never taken for a whole one); id released.
    Cut,
    /// A peer of this crate refused the stream (its FIN follows the refusal, and was answered):
    /// reads and writes fail with the refusal; id released.
    Refused,
    /// Closed on our side after the handshake ended: nothing more to do; id released.
    Closed,
}

impl State {
    /// Whether the stream's id is still in use in this state.
    pub fn holds_id(self) -> bool {
        matches!(
            self,
            State::Open | State::FinSent | State::PeerFinished | State::WriteClosed
        )
    }

    /// Whether the peer may still send data this side takes (and confirms).
    pub fn receiving(self) -> bool {
        matches!(self, State::Open | State::WriteClosed)
    }

    /// Whether this side may still write.
    pub fn writable(self) -> bool {
        matches!(self, State::Open | State::PeerFinished)
    }

    /// Whether this side closed the stream (reads and writes fail with "closed").
    pub fn closed_here(self) -> bool {
        matches!(self, State::FinSent | State::Closed)
    }
}

/// What a transition owes: the core pays it in [`Core::settle`](super::Core), the one place
/// that queues FINs, releases ids and wakes the stream's reader and writer.
#[must_use = "a transition's debts must be settled"]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Owed {
    /// A FIN to queue (a close, or the answer to the peer's).
    pub(crate) fin: bool,
    /// That FIN answers the peer's: the protocol owes it, the stream's user did not write it, so
    /// a flush of the stream does not wait for it (a peer that closes its transport right after
    /// its FIN never lets it out, and the user's own data was out before).
    pub(crate) answer: bool,
    /// The id goes back to the allocator.
    pub(crate) release_id: bool,
    /// The state changed: the reader and the writer must look again.
    pub(crate) wake: bool,
}

impl Owed {
    const NOTHING: Owed = Owed {
        fin: false,
        answer: false,
        release_id: false,
        wake: false,
    };
}

/// One stream's protocol state. `W` is the I/O shell's per-stream data (its wakers); the core never
/// looks at it.
#[derive(Debug)]
pub struct StreamState<W> {
    pub(crate) id: u16,
    state: State,
    /// A handle (or the accept backlog) refers to this stream.
    pub(crate) has_handle: bool,
    /// Waits in the accept backlog: what it holds counts against the session's memory budget.
    pub(crate) unclaimed: bool,
    /// The queues this stream is listed in (only `queue.rs` reads or sets these).
    pub(crate) listed: Listings,
    /// The output batch (the low bits of the core's batch count when this stream last wrote; 16
    /// bits keep a stream's state small) and what this stream put in it: a stream takes at most
    /// a frame's worth of a batch while others contend.
    pub(crate) batch: u16,
    pub(crate) batch_bytes: u32,
    /// Bytes this side may still send before the peer confirms more.
    pub(crate) send_credit: SendCredit,
    /// What the peer may send, and what this stream may hold.
    pub(crate) window: RecvWindow,
    /// Received bytes not yet read by the application.
    pub(crate) recv: RecvBuf,
    /// Window growth's measure (`extension.rs`): when the current measuring period started
    /// (microseconds of the core's clock, wrapping), and the bytes read in it.
    pub(crate) period_at: u32,
    pub(crate) period_read: u32,
    /// The core's output counter just after this stream's last frame was queued (for flush).
    pub(crate) last_queued: u64,
    /// The shell's data.
    pub(crate) waiters: W,
}

impl<W: Default> StreamState<W> {
    /// An open stream with the credits given, created at `now` (the core's clock).
    pub(crate) fn new(
        id: u16,
        has_handle: bool,
        send_credit: SendCredit,
        window: RecvWindow,
        now: u32,
    ) -> Self {
        StreamState {
            id,
            state: State::Open,
            has_handle,
            unclaimed: false,
            listed: Listings::default(),
            batch: 0,
            batch_bytes: 0,
            send_credit,
            window,
            recv: RecvBuf::default(),
            period_at: now,
            period_read: 0,
            last_queued: 0,
            waiters: W::default(),
        }
    }
}

// The accessors beyond `state` and `recv_window` serve the checks of the tests and fuzz targets.
#[cfg_attr(not(feature = "fuzzing"), allow(dead_code))]
impl<W> StreamState<W> {
    /// Where the stream is in its lifecycle.
    pub fn state(&self) -> State {
        self.state
    }

    /// The stream's wire id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// Bytes this side may still send before the peer confirms more.
    pub fn send_credit(&self) -> u32 {
        self.send_credit.get()
    }

    /// Received bytes not yet read.
    pub fn buffered(&self) -> usize {
        self.recv.len()
    }

    /// What this stream may hold now: the base window, or more where it grew.
    pub fn recv_window(&self) -> u32 {
        self.window.window()
    }

    /// What the peer may still send.
    pub fn recv_credit(&self) -> u32 {
        self.window.credit()
    }

    /// What the growth budget counts for this stream.
    pub fn charged(&self) -> u32 {
        self.window.charged()
    }

    /// Whether a handle (or the accept backlog) refers to it.
    pub fn has_handle(&self) -> bool {
        self.has_handle
    }

    /// Waits for room in the output queue and has not written since.
    pub fn contending(&self) -> bool {
        self.listed.contending()
    }

    /// What this stream put in the current output batch.
    pub fn batch_bytes(&self) -> u32 {
        self.batch_bytes
    }

    /// What this side may confirm now.
    pub(crate) fn grantable(&self) -> u32 {
        self.window.grantable(self.recv.len())
    }

    /// Copies buffered data into `buf` and returns the count; a drained buffer goes back to `pool`.
    pub(crate) fn take_recv(&mut self, buf: &mut [u8], pool: &mut RecvPool) -> usize {
        self.recv.take(buf, pool)
    }

    // ----- transitions -----

    /// This side closes the stream (or refuses it): a FIN if it was open. With `handshake`
    /// (yddeng's wire) the id stays in use until the peer answers; without (xtaci's, whose ids
    /// are never reused) it is released at once.
    pub(crate) fn close(&mut self, handshake: bool) -> Owed {
        let (next, fin, release_id) = match self.state {
            State::Open if handshake => (State::FinSent, true, false),
            State::Open | State::PeerFinished => (State::Closed, true, true),
            State::WriteClosed => (State::Closed, false, true),
            State::FinReceived | State::Cut | State::Refused => (State::Closed, false, false),
            State::FinSent | State::Closed => return Owed::NOTHING,
        };
        self.state = next;
        Owed {
            fin,
            answer: false,
            release_id,
            wake: true,
        }
    }

    /// This side stops writing (xtaci's half-close): a FIN; the stream is over once the peer has
    /// sent its own. Only on a wire without the FIN handshake.
    pub(crate) fn close_write(&mut self) -> Owed {
        let (next, release_id) = match self.state {
            State::Open => (State::WriteClosed, false),
            // Both halves are done: what is buffered is still read, then end-of-stream.
            State::PeerFinished => (State::FinReceived, true),
            _ => return Owed::NOTHING,
        };
        self.state = next;
        Owed {
            fin: true,
            answer: false,
            release_id,
            wake: true,
        }
    }

    /// The peer's FIN for this stream (whose id is in use). With `handshake` (yddeng's wire) it
    /// ends the stream: answered if it was open, the id released either way. Without (xtaci's)
    /// the peer only stops sending: reads end, writes go on, until this side closes too.
    pub(crate) fn peer_fin(&mut self, handshake: bool) -> Owed {
        let (next, fin, release_id) = match self.state {
            State::Open if handshake => (State::FinReceived, true, true),
            State::Open => (State::PeerFinished, false, false),
            State::FinSent => (State::Closed, false, true),
            // Both halves are done: what is buffered is still read, then end-of-stream.
            State::WriteClosed => (State::FinReceived, false, true),
            State::PeerFinished => return Owed::NOTHING, // a FIN again: nothing new
            s => unreachable!("a FIN reaches only streams holding an id, not {s:?}"),
        };
        self.state = next;
        Owed {
            fin,
            answer: fin,
            release_id,
            wake: true,
        }
    }

    /// A peer of this crate refused the stream (yddeng's wire; its FIN follows): ends the stream
    /// as its FIN would, answered if it was open, the id released.
    pub(crate) fn refused(&mut self) -> Owed {
        let (next, fin) = match self.state {
            State::Open => (State::Refused, true),
            State::FinSent => (State::Closed, false),
            _ => return Owed::NOTHING,
        };
        self.state = next;
        Owed {
            fin,
            answer: fin,
            release_id: true,
            wake: true,
        }
    }

    /// The session ended with the stream's id in use: an open stream is cut; one whose peer had
    /// finished sending ends cleanly once its data is read.
    pub(crate) fn session_gone(&mut self) -> Owed {
        self.state = match self.state {
            State::Open | State::WriteClosed => State::Cut,
            State::PeerFinished => State::FinReceived,
            State::FinSent => State::Closed,
            s => unreachable!("only streams holding an id end with the session, not {s:?}"),
        };
        Owed {
            fin: false,
            answer: false,
            release_id: true,
            wake: true,
        }
    }
}
