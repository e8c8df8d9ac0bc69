//! # ysmux: a stream multiplexer speaking the smux of the Go `yddeng/smux` and `xtaci/smux`
//!
//! Many independent, ordered, flow-controlled byte streams over one reliable connection (TCP, TLS,
//! a Unix socket, an in-memory pipe: anything that is [`AsyncRead`](futures_io::AsyncRead) +
//! [`AsyncWrite`](futures_io::AsyncWrite)). The objects you meet:
//!
//! - [`Session`]: a cheap, cloneable handle; [`Session::open`] and [`Session::accept`] give streams.
//! - [`Driver`]: the future that owns the transport. The crate has no runtime of its own: spawn the
//!   driver on whatever executor you use.
//! - [`Stream`]: `AsyncRead + AsyncWrite`, one per conversation. Dropping it closes it.
//!
//! ```
//! # smol::block_on(async {
//! use futures::{AsyncReadExt, AsyncWriteExt};
//!
//! let (a, b) = ysmux::pipe(); // an in-memory transport; any AsyncRead + AsyncWrite works
//! let (client, driver) = ysmux::Session::client(a, ysmux::Config::default());
//! smol::spawn(driver).detach();
//! let (server, driver) = ysmux::Session::server(b, ysmux::Config::default());
//! smol::spawn(driver).detach();
//!
//! let mut s = client.open().await?;
//! s.write_all(b"ping").await?;
//! let mut t = server.accept().await?;
//! let mut buf = [0; 4];
//! t.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"ping");
//! client.close().await?;
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```
//!
//! ## Flow control and backpressure
//! Every stream has its own window (512 KiB by default, the value the original uses) in each
//! direction. A writer may have at most one window of data unconfirmed by the reading side, and the
//! reader confirms (CFM) only what the application has actually read. So a stream that nobody
//! reads stops only its own writer: the other streams, and the transport, keep moving.
//!
//! ## Window growth
//! One fixed window moves at most one window per round trip: 512 KiB every 40 ms is 12.5 MiB/s,
//! a tenth of a 1 Gbit/s path. Between two sessions of this crate the window grows to the path;
//! against the original nothing changes, and the original never sees a frame it does not know.
//!
//! - **What is sent, and when.** A client's first frame is a VRM with fixed values,
//!   `VRM(0x7973, 0x6D757831)`. Every version of the original answers a VRM as the probe of
//!   [docs/PROTOCOL.md](#the-protocol) 8; the client recognises that answer and stays with the
//!   base protocol (14 bytes in all, once). A server of this crate answers with
//!   `VRM(0x7973, 0x6D757832)` instead, which the client answers as any VRM; each side takes its
//!   exchange's time as a round-trip sample,
//!   and the client tells the server its own (`VRM(0x7974, microseconds)`, taken ahead of any
//!   data). The estimate is the smallest sample, later pings included.
//!   A server never sends first, so a Go `IsSmux` probe of it reads its answer as before (a probe
//!   of a *client* of this crate reads the offer first; [`is_smux`] reads past it).
//! - **What changes.** From then on a CFM is credit: a receiver may confirm more than its
//!   application read, and a sender takes a CFM beyond what it has outstanding as more credit
//!   (against the original, such a CFM can only be a late one, and is ignored). Neither side
//!   grants before the other has seen the handshake, so the original's rules hold until both
//!   agree.
//! - **How big.** A receiver holds at most its stream's window: unread bytes plus what the sender
//!   may still send. When a stream moved at least half its window per round trip, over a period
//!   of at least one round trip (the window, not the reader, is what limits it), the window
//!   doubles, up to [`Config::with_max_window`]
//!   (16 MiB by default), as long as all streams' growth together stays within the memory budget
//!   ([`Config::with_memory_budget`]); when half of it lies unread (the reader is what limits it)
//!   it halves, down to the base window. Closing a stream gives its growth back. A peer that
//!   claims the extension and sends beyond what was granted ends the session with a protocol
//!   error, as any peer does.
//! - **What it costs.** Nothing against the original; between two sessions of this crate, memory
//!   on streams over long, fast paths whose readers keep up. A window grows while it is less than
//!   twice what the stream moves per round trip, and on loopback that can be true too: at 2-3
//!   GiB/s, a round trip of 50-130 µs (what sessions measure there on this project's machine)
//!   moves 100-400 KiB, so some fast loopback streams grow to 1-2 MiB (in two of five 256 MiB
//!   transfers here; up to 8 MiB seen in earlier ones), always within the budget.
//!   [`Stats::windows_grow`] and [`Stats::window_growth`] show it; `with_max_window` at the window
//!   turns it off on this side.
//!
//! With the base window, a receiver confirms after a sixteenth of it, so that a sender with the
//! original's fixed window rarely waits for a confirm.
//!
//! ## The protocol
//! The wire this crate speaks, yddeng's smux with the window-growth extension, and where this
//! crate differs from each Go version, is written out in `docs/PROTOCOL.md`, in the repository
//! and in the package: [read it on docs.rs][protocol]. These docs cite it by section:
//! "docs/PROTOCOL.md 8" is its section 8, the VRM probe.
//!
//! [protocol]: https://docs.rs/crate/ysmux/latest/source/docs/PROTOCOL.md
//!
//! ## Close is a full close
//! The protocol has no half-close: closing a stream (or dropping it) ends it in both directions.
//! Frame your requests (length prefix, delimiter) instead of closing to mark their end. See
//! [`Stream`].
//!
//! ## Writes are exact and cancel-safe
//! A write that returns `Ok(n)` committed exactly `n` bytes in whole frames; a write that is still
//! pending when it is cancelled (say, by a timeout) committed nothing. Nothing is sent twice, and
//! no frame is ever cut.
//!
//! ## Probing, liveness and shutting down
//! [`is_smux`] tells whether the peer of a raw transport is a multiplexer (the VRM probe);
//! [`Session::ping`] measures the round trip with the same probe, and
//! [`Config::with_keepalive`] ends a session whose peer stops answering, with your runtime's timer.
//! [`Session::shutdown`] stops opening and accepting, lets open streams finish until a deadline you
//! give, then closes; [`Session::close`] closes at once.
//!
//! ## Choosing settings
//! [`Config::default`] suits most uses and is what the original expects. Change the window only
//! when both ends run this crate (the original's 512 KiB is not negotiated); to let windows grow
//! further on long, fast paths, raise [`Config::with_max_window`] (and the memory budget with it). Lower
//! [`Config::with_accept_backlog`] and [`Config::with_memory_budget`] on a server facing untrusted
//! peers: together they bound what a peer can make it hold for streams not yet accepted. Use
//! [`Config::with_max_streams`] to cap the streams this side opens, and
//! [`Config::with_keepalive`] to notice a silent peer. Setters chain; [`Config::validate`] reports
//! a value out of range, and a session made with one ends at once with that error.
//!
//! ## Talking to a Go program
//! Nothing to configure: both versions of the original that users run (the founding document's,
//! and the newest, which opens stream id 0 and sends PIN keepalives) are handled on the wire, and
//! this side never sends a PIN first. Keep the default window. [`Session::client`] against a Go
//! `SmuxSession(conn)` server, or [`Session::server`] for Go clients.
//!
//! For a Go program of `xtaci/smux` (gost, sing-box, kcptun, ...), set the same protocol version
//! as the Go side: [`Config::with_protocol`] with [`Protocol::Xtaci1`] (Go's default) or
//! [`Protocol::Xtaci2`]. A server with [`Protocol::Detect`] serves yddeng's and both of xtaci's
//! from one listener. On xtaci's wire there is no probe ([`Session::ping`], [`is_smux`] and window
//! growth are yddeng's), and v1 has no per-stream windows (see [`Config::with_protocol`]).
//!
//! ## tokio or smol
//! Spawn the [`Driver`] on your executor (`smol::spawn(driver).detach()`,
//! `tokio::spawn(driver)`). Under tokio, wrap tokio transports with `tokio_util::compat`, or enable
//! the `tokio` feature so that [`Stream`] and its halves implement tokio's io traits directly.
//!
//! ## Poll-based code and observability
//! [`Session::poll_open`], [`Session::poll_accept`] and [`Session::incoming`] (a stream of accepted
//! streams) serve hand-written futures; [`Stream::into_split`] gives halves for two tasks;
//! [`Session::stats`] gives the counters, cheap to read often; the `tracing` feature emits a span
//! per session and events for refusals, the memory budget and the session's end.
//!
//! ## tower
//! [`Session::opener`] is a `tower::Service` that opens a stream per request, with real readiness
//! (it reserves under [`Config::with_max_streams`]); [`Session::serve`] runs every accepted stream
//! through a `tower::Service<Stream>`. See the [`tower`] module.
//!
//! ## More than one connection
//! [`pool::Pool`] keeps several sessions to one peer, spreads opens over them by load, replaces
//! failed ones with backoff on your timer, and is a `tower::Service` opening a stream per call;
//! [`pool::serve`] serves the sessions of many connections through one service. See the [`pool`]
//! module.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

/// The README's examples, compiled and run as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// An event for the `tracing` feature; nothing at all without it (the arguments are not even
/// evaluated), so the hot path pays nothing.
macro_rules! trace_event {
    ($level:ident, $($arg:tt)*) => {{
        #[cfg(feature = "tracing")]
        {
            ::tracing::$level!($($arg)*);
        }
    }};
}

mod acceptors;
mod config;
mod core;
mod driver;
mod error;
pub mod frame;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod keepalive;
mod pipe;
pub mod pool;
mod probe;
mod session;
mod shared;
mod split;
mod stats;
mod stream;
#[cfg(test)]
mod test_wakers;
#[cfg(feature = "tokio")]
mod tokio_io;
pub mod tower;
mod transport_wake;

pub use crate::config::{
    Config, SleepFn, DEFAULT_MAX_WINDOW, DEFAULT_MEMORY_BUDGET, DEFAULT_WINDOW,
};
pub use crate::core::wire::Protocol;
pub use crate::driver::Driver;
pub use crate::error::{ConfigError, Error, ProtocolError};
pub use crate::pipe::{pipe, Pipe};
pub use crate::probe::is_smux;
pub use crate::session::{Incoming, Session};
pub use crate::split::ReuniteError;
pub use crate::stats::Stats;
pub use crate::stream::{ReadHalf, Stream, WriteHalf};
