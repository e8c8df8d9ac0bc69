//! The state one stream holds in the protocol core.
//!
//! ```text
//!                 local close: send FIN              peer's FIN arrives
//!   Open ──────────────────────────────► FinSent ─────────────────────► Closed
//!    │                                   (id in use)                    (id released)
//!    │ peer's FIN: answer FIN, release id
//!    ▼                      local close
//!   FinReceived ─────────────────────────────────────────────────────► Closed
//!   (buffered data still readable, then end-of-stream)
//! ```
//! The id is in use in `Open` and `FinSent`; the state itself lives on until both the id is released
//! and no handle refers to it, so a handle never reaches a newer stream that reuses its id.

use super::recv::{RecvBuf, RecvPool};

/// Where a stream is in its close handshake (PROTOCOL.md 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Both directions open; the id is in use.
    Open,
    /// We sent FIN and wait for the peer's; the id stays in use until then.
    FinSent,
    /// The peer sent FIN and we answered: buffered data is readable, writes fail; id released.
    FinReceived,
    /// Closed on our side after the handshake ended: nothing more to do; id released.
    Closed,
}

impl State {
    /// Whether the stream's id is still in use in this state.
    pub(crate) fn holds_id(self) -> bool {
        matches!(self, State::Open | State::FinSent)
    }
}

/// One stream's protocol state. `W` is the I/O shell's per-stream data (its wakers); the core never
/// looks at it.
#[derive(Debug)]
pub(crate) struct StreamState<W> {
    pub(crate) id: u16,
    pub(crate) state: State,
    /// A handle (or the accept backlog) refers to this stream.
    pub(crate) has_handle: bool,
    /// Waits in the accept backlog: what it holds counts against the session's memory budget.
    pub(crate) unclaimed: bool,
    /// Bytes this side may still send before the peer confirms more.
    pub(crate) send_credit: u32,
    /// Received bytes not yet read by the application.
    pub(crate) recv: RecvBuf,
    /// Bytes the peer may still send: what this side granted (the window at first, then each
    /// confirm) less what arrived.
    pub(crate) recv_credit: u32,
    /// What this stream may hold, unread plus what the peer may still send: the base window, or
    /// more where it grew (`extension.rs`).
    pub(crate) recv_window: u32,
    /// Window growth's measure (`extension.rs`): when the current measuring period started
    /// (microseconds of the core's clock, wrapping), and the bytes read in it.
    pub(crate) period_at: u32,
    pub(crate) period_read: u32,
    /// The session ended before the peer closed this stream.
    pub(crate) cut: bool,
    /// Listed in the core's confirm list.
    pub(crate) confirm_listed: bool,
    /// Listed in the core's queue-space waiters.
    pub(crate) queue_waiting: bool,
    /// The I/O shell listed it as waiting for a flush: a flag of the shell's, kept here rather
    /// than in `waiters`, where it would cost a word of padding per stream.
    pub(crate) flush_listed: bool,
    /// Waited for queue space and has not written since: other writers yield to it.
    pub(crate) contending: bool,
    /// The output batch (the low bits of the core's batch count when this stream last wrote; 16
    /// bits keep a stream's state small) and what this stream put in it: a stream takes at most a frame's worth of a batch while others contend.
    pub(crate) batch: u16,
    pub(crate) batch_bytes: u32,
    /// The core's output counter just after this stream's last frame was queued (for flush).
    pub(crate) last_queued: u64,
    /// The shell's data.
    pub(crate) waiters: W,
}

impl<W: Default> StreamState<W> {
    /// A stream with `window` bytes of credit each way, created at `now` (the core's clock).
    pub(crate) fn new(id: u16, has_handle: bool, window: u32, now: u32) -> Self {
        StreamState {
            id,
            state: State::Open,
            has_handle,
            unclaimed: false,
            send_credit: window,
            recv: RecvBuf::default(),
            recv_credit: window,
            recv_window: window,
            period_at: now,
            period_read: 0,
            cut: false,
            confirm_listed: false,
            queue_waiting: false,
            flush_listed: false,
            contending: false,
            batch: 0,
            batch_bytes: 0,
            last_queued: 0,
            waiters: W::default(),
        }
    }

    /// What this side may confirm now: its window less what it holds unread and what the peer
    /// may still send. With the base window, exactly the bytes read and not yet confirmed.
    pub(crate) fn grantable(&self) -> u32 {
        self.recv_window
            .saturating_sub(self.recv_credit)
            .saturating_sub(self.recv.len() as u32)
    }

    /// Copies buffered data into `buf` and returns the count; a drained buffer goes back to `pool`.
    pub(crate) fn take_recv(&mut self, buf: &mut [u8], pool: &mut RecvPool) -> usize {
        self.recv.take(buf, pool)
    }
}
