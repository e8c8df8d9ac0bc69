//! What a session has moved and holds: [`Session::stats`](crate::Session::stats).

use std::time::Duration;

/// A snapshot of a session's counters, from [`Session::stats`](crate::Session::stats). Reading it
/// takes the session's lock once and scans nothing, so it is cheap to read often.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Bytes read from the transport.
    pub bytes_in: u64,
    /// Bytes written to the transport.
    pub bytes_out: u64,
    /// Frames received from the peer.
    pub frames_in: u64,
    /// Frames queued for the peer (data, opens, closes, confirms, answers).
    pub frames_out: u64,
    /// Streams this side opened.
    pub streams_opened: u64,
    /// Streams the peer opened that the application accepted.
    pub streams_accepted: u64,
    /// Streams the peer opened that were refused (accept backlog full, shutting down, or past the
    /// memory budget).
    pub streams_refused: u64,
    /// Streams whose id is in use now (not yet closed on both sides). A stream closed (or dropped)
    /// on this side still counts here until the peer's FIN answers this side's: the close is a
    /// handshake (the protocol document, section 6), and the id stays in use until it ends. A
    /// peer that is slow to answer, or never answers, keeps such streams counted; they hold no
    /// data (what was unread is dropped at the close).
    pub streams_active: usize,
    /// Protocol violations by the peer (0 or 1: the first one ends the session).
    pub protocol_errors: u64,
    /// Bytes the session holds for streams the application has not accepted yet, counted as
    /// allocated, against [`memory_budget`](Stats::memory_budget).
    pub memory_held: usize,
    /// The memory budget ([`Config::with_memory_budget`](crate::Config::with_memory_budget)).
    pub memory_budget: usize,
    /// Reading the transport is paused until the application acts. On xtaci's wire, which cannot
    /// make an opener wait: a stream the peer opened waits for
    /// [`Session::accept`](crate::Session::accept), the accept backlog being full (or past the
    /// memory budget), and the peer's later frames wait behind it; on xtaci v1, which has no
    /// windows: a stream holds more than its window unread. Always `false` on yddeng's wire,
    /// whose peer is made to wait instead.
    pub reading_paused: bool,
    /// The peer is a session of this crate and agreed to window growth (see the crate docs,
    /// "Window growth"); always `false` against the original.
    pub windows_grow: bool,
    /// What streams' receive windows have grown beyond the base window in all, in bytes (within
    /// the memory budget).
    pub window_growth: usize,
    /// The round trip measured by the last answered ping ([`Session::ping`](crate::Session::ping)
    /// or the keepalive); before any, the smallest round trip the session measured itself (a
    /// client's first frame is answered at once by every peer, so a client has one as soon as
    /// the peer answered; a server once a client of this crate answered its acceptance).
    pub last_rtt: Option<Duration>,
}
