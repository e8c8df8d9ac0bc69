//! Session configuration: setters that chain, checked once when a session is made.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::core::wire::Protocol;
use crate::error::{ConfigError, Error};
use crate::frame::MAX_PAYLOAD;

/// The stream window both ends must use to interoperate with the original (512 KiB).
pub const DEFAULT_WINDOW: u32 = 512 * 1024;

/// The default largest window a stream's window may grow to with a peer of this crate (16 MiB):
/// enough for one stream to fill 1 Gbit/s over a round trip of about 60 ms.
pub const DEFAULT_MAX_WINDOW: u32 = 16 << 20;

/// Settings of a session. The setters chain, and never fail on the spot: a setter given a value
/// out of range does not store it (the setting keeps the value it had, the default or an earlier
/// setter's), and the config remembers the first such refusal. [`Config::validate`] reports it,
/// naming the setting, its range and the value refused, and so does any session made with the
/// config: it ends at once with that [`Error::InvalidConfig`] (its driver returns it, and so do
/// `open` and `accept`), so a refused value is never silently replaced by another.
///
/// ```
/// let config = ysmux::Config::default()
///     .with_accept_backlog(64)
///     .with_max_frame(16 * 1024);
/// config.validate()?;
/// assert_eq!(config.window(), 512 * 1024);
///
/// let bad = ysmux::Config::default().with_max_frame(0).with_accept_backlog(64);
/// let err = bad.validate().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "invalid configuration: max frame must be from 1 to 65536 bytes, not 0"
/// );
/// assert_eq!(bad.max_frame(), 64 * 1024); // the refused value was not stored
/// # Ok::<(), ysmux::Error>(())
/// ```
#[derive(Clone)]
pub struct Config {
    window: u32,
    max_window: u32,
    max_frame: u32,
    accept_backlog: usize,
    write_buffer: usize,
    max_streams: usize,
    memory_budget: usize,
    keepalive: Option<Keepalive>,
    protocol: Protocol,
    /// The first value a setter refused.
    invalid: Option<ConfigError>,
}

/// The default memory budget: what a peer can make a session hold beyond the application's own
/// streams (see [`Config::with_memory_budget`]).
pub const DEFAULT_MEMORY_BUDGET: usize = 32 << 20;

/// A sleep function: returns a future that completes after the given time. The crate has no
/// runtime of its own, so timers come from the caller's.
pub type SleepFn = Arc<dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The keepalive settings: how often, and the caller's timer.
#[derive(Clone)]
pub(crate) struct Keepalive {
    pub(crate) interval: Duration,
    pub(crate) sleep: SleepFn,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("window", &self.window)
            .field("max_window", &self.max_window)
            .field("max_frame", &self.max_frame)
            .field("accept_backlog", &self.accept_backlog)
            .field("write_buffer", &self.write_buffer)
            .field("max_streams", &self.max_streams)
            .field("memory_budget", &self.memory_budget)
            .field("keepalive", &self.keepalive.as_ref().map(|k| k.interval))
            .field("protocol", &self.protocol)
            .field("invalid", &self.invalid)
            .finish()
    }
}

impl Default for Config {
    /// Window 512 KiB, frames up to 64 KiB, accept backlog 1024, write buffer 256 KiB, no stream
    /// limit but the 65,535 ids, memory budget 32 MiB, no keepalive.
    fn default() -> Self {
        Config {
            window: DEFAULT_WINDOW,
            max_window: DEFAULT_MAX_WINDOW,
            max_frame: MAX_PAYLOAD,
            accept_backlog: 1024,
            write_buffer: 256 * 1024,
            max_streams: 65_535,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            keepalive: None,
            protocol: Protocol::Yddeng,
            invalid: None,
        }
    }
}

impl Config {
    /// Sets the per-stream window in bytes (default 512 KiB, from 1 KiB to 1 GiB).
    ///
    /// On yddeng's wire the window is not negotiated: both ends must use the same value, and the
    /// original Go implementation hard-codes 512 KiB, so change it only when both ends run this
    /// crate. On xtaci's version 2 each side states its own window in its UPD frames, so the ends
    /// need not agree, and this is what the peer, Go or this crate, may have in flight on each
    /// stream towards this side. Windows do not grow on xtaci's wire, so a larger one is how a
    /// stream there moves more per round trip: on loopback between two ends of this crate, one
    /// stream moved 2.6-2.7 GiB/s with 512 KiB and 3.7-3.9 GiB/s with 2 MiB (as fast as version
    /// 1). An unread stream may then hold that much. On version 1 there is no window on the wire:
    /// past one window unread on a stream, this side stops reading the connection.
    pub fn with_window(mut self, bytes: u32) -> Self {
        if !(1024..=1 << 30).contains(&bytes) {
            self.invalid.get_or_insert(ConfigError::number(
                "window must be from 1 KiB to 1 GiB",
                bytes,
            ));
        } else {
            self.window = bytes;
        }
        self
    }

    /// Sets how far a stream's receive window may grow when the peer is also this crate (default
    /// 16 MiB, from 1 KiB to 1 GiB; a value at or below the window turns growth off on this side).
    ///
    /// Against the original the window is the fixed base window, as the protocol says. Between two
    /// sessions of this crate, which find each other with a VRM exchange at the session's start,
    /// a receiver doubles a stream's window while the window is what limits the stream (it moved
    /// half of it per round trip), up to this maximum, and halves it back when its reader falls
    /// behind. All streams' growth together stays within the memory budget
    /// ([`Config::with_memory_budget`]), so this costs memory only on long, fast paths whose
    /// readers keep up. See the crate documentation, "Window growth".
    pub fn with_max_window(mut self, bytes: u32) -> Self {
        if !(1024..=1 << 30).contains(&bytes) {
            self.invalid.get_or_insert(ConfigError::number(
                "max window must be from 1 KiB to 1 GiB",
                bytes,
            ));
        } else {
            self.max_window = bytes;
        }
        self
    }

    /// How far a stream's window may grow with a peer of this crate: the larger of the maximum
    /// set and the window.
    pub fn max_window(&self) -> u32 {
        self.max_window.max(self.window)
    }

    /// Sets the largest PSH payload this side sends (default and maximum 64 KiB, at least 1).
    pub fn with_max_frame(mut self, bytes: u32) -> Self {
        if !(1..=MAX_PAYLOAD).contains(&bytes) {
            self.invalid.get_or_insert(ConfigError::number(
                "max frame must be from 1 to 65536 bytes",
                bytes,
            ));
        } else {
            self.max_frame = bytes;
        }
        self
    }

    /// Sets how many opened streams may wait for [`Session::accept`](crate::Session::accept)
    /// (default 1024, at most 65,535; 0 refuses every stream the peer opens). A stream the peer opens
    /// beyond it is refused with FIN; on xtaci's wire, which cannot grant room to open, reading
    /// pauses instead until the application accepts (as the Go package does), the memory budget
    /// still bounding what waits.
    ///
    /// A peer of this crate is told how many streams it may open (yddeng's wire: the backlog, or
    /// fewer, as many as the memory budget holds with each one's window full; 31 by default), and
    /// its [`Session::open`](crate::Session::open) waits for room instead of being refused. Only
    /// a burst at a session's very start, before the first grant arrives, may meet a backlog
    /// below 16 (the room an opener assumes until then); such a refusal is
    /// [`Error::Refused`].
    pub fn with_accept_backlog(mut self, streams: usize) -> Self {
        if streams > 65_535 {
            self.invalid.get_or_insert(ConfigError::number(
                "accept backlog must be at most 65535",
                streams,
            ));
        } else {
            self.accept_backlog = streams;
        }
        self
    }

    /// Sets how many bytes of frames may wait for the transport before writers wait too (default
    /// 256 KiB, from 1 KiB to 64 MiB). Larger values batch more; smaller ones hold less memory.
    pub fn with_write_buffer(mut self, bytes: usize) -> Self {
        if !(1024..=64 << 20).contains(&bytes) {
            self.invalid.get_or_insert(ConfigError::number(
                "write buffer must be from 1 KiB to 64 MiB",
                bytes,
            ));
        } else {
            self.write_buffer = bytes;
        }
        self
    }

    /// Sets how many streams may be open on the session (ids in use, whichever side opened them)
    /// before [`Session::open`](crate::Session::open) waits for one to close (default 65,535, the
    /// whole id space; from 1). Streams the peer opens are bounded by the accept backlog instead.
    pub fn with_max_streams(mut self, streams: usize) -> Self {
        if !(1..=65_535).contains(&streams) {
            self.invalid.get_or_insert(ConfigError::number(
                "max streams must be from 1 to 65535",
                streams,
            ));
        } else {
            self.max_streams = streams;
        }
        self
    }

    /// Sets the memory budget in bytes (default 32 MiB, at least 64 KiB): how much the session may
    /// hold for streams the peer opened that the application has not accepted yet (their data,
    /// counted as allocated, and their state). Past it, the newest of those streams are refused
    /// (FIN) and their data dropped; data of a stream the application holds is never dropped.
    /// On xtaci/smux's wire, which cannot tell an opener to wait, the session stops reading its
    /// transport instead, at the frame that does not fit, until the application accepts (as the
    /// Go package does when its buffer is full): nothing is refused, and a peer's flood holds at
    /// most the budget and one frame past it. The same amount bounds, separately, how far all
    /// streams' windows may grow beyond the base window together ([`Config::with_max_window`]).
    ///
    /// Streams the application closed hold nothing (their unread data is dropped at once), and the
    /// queue of frames for the transport is bounded by the write buffer, so whatever a peer sends,
    /// it costs a session about this budget plus what the application's own streams hold (at most
    /// a window each), plus about 150 bytes for each stream id in use. Receive buffers the
    /// application has drained are kept for reuse, up to one window plus what windows have grown
    /// by at the time (given back as they shrink).
    pub fn with_memory_budget(mut self, bytes: usize) -> Self {
        if bytes < 64 * 1024 {
            self.invalid.get_or_insert(ConfigError::number(
                "memory budget must be at least 64 KiB",
                bytes,
            ));
        } else {
            self.memory_budget = bytes;
        }
        self
    }

    /// The memory budget in bytes.
    pub fn memory_budget(&self) -> usize {
        self.memory_budget
    }

    /// Turns on the keepalive (off by default): when nothing has come from the peer for
    /// `interval`, the driver sends a VRM probe ([docs/PROTOCOL.md](crate#the-protocol) 8, which
    /// the original answers too);
    /// when a further `interval` passes with no answer and nothing else from the peer, the session
    /// ends with [`Error::KeepaliveTimeout`]: 2 to 2¼ intervals after the peer's last frame (the
    /// keepalive looks four times per interval). Any frame from the peer counts as a sign of
    /// life, so traffic under load never trips it. `interval` is from 1 ms to 1 day.
    ///
    /// On xtaci/smux's wire ([`Config::with_protocol`]) it sends a NOP instead of a probe: a
    /// peer of this crate answers it, a Go peer does not (it sends its own NOP every 10 s by
    /// default), so against Go use an interval above the Go side's.
    ///
    /// `sleep` is your runtime's timer, for example with smol:
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// let config = ysmux::Config::default().with_keepalive(
    ///     Duration::from_secs(30),
    ///     Arc::new(|d| Box::pin(async move { smol::Timer::after(d).await; })),
    /// );
    /// # Ok::<(), ysmux::Error>(())
    /// ```
    /// or with tokio: `Arc::new(|d| Box::pin(tokio::time::sleep(d)))`.
    pub fn with_keepalive(mut self, interval: Duration, sleep: SleepFn) -> Self {
        if interval < Duration::from_millis(1) || interval > Duration::from_secs(86_400) {
            self.invalid.get_or_insert(ConfigError::time(
                "keepalive interval must be from 1 ms to 1 day",
                interval,
            ));
        } else {
            self.keepalive = Some(Keepalive { interval, sleep });
        }
        self
    }

    /// Sets the protocol the session speaks (default [`Protocol::Yddeng`], the founding
    /// document's). [`Protocol::Xtaci1`] and [`Protocol::Xtaci2`] speak xtaci/smux, the wire of
    /// most Go programs (gost, sing-box, kcptun, the AWS Session Manager plugin); both ends must
    /// use the same version. [`Protocol::Detect`], for servers only, tells the three apart by the
    /// client's first byte and serves each: one listener for every smux (a client made with it
    /// ends at once with [`Error::Unsupported`]).
    ///
    /// On xtaci's wire: a stream's window is at least 256 KiB with v2 (what a Go sender assumes
    /// before it hears one), frames carry at most 65,535 bytes, `Session::ping` and window growth
    /// do not exist (the keepalive sends NOPs instead of probes), and v1 has no flow control at
    /// all: a stream nobody reads makes the session stop reading the transport once it holds a
    /// window, which stalls every stream of the session (as Go's own v1 session does at 4 MiB),
    /// so prefer v2 where the peer allows it. docs/PROTOCOL.md 13 has the details.
    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// The protocol the session speaks.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Checks the settings: the first value a setter refused, as [`Error::InvalidConfig`] (which
    /// names the setting, its range and the value).
    pub fn validate(&self) -> Result<(), Error> {
        match self.invalid {
            Some(refused) => Err(Error::InvalidConfig(refused)),
            None => Ok(()),
        }
    }

    /// The keepalive interval, if the keepalive is on.
    pub fn keepalive_interval(&self) -> Option<Duration> {
        self.keepalive.as_ref().map(|k| k.interval)
    }

    pub(crate) fn keepalive(&self) -> Option<&Keepalive> {
        self.keepalive.as_ref()
    }

    /// How many streams may be open before opening waits.
    pub fn max_streams(&self) -> usize {
        self.max_streams
    }

    /// The per-stream window in bytes.
    pub fn window(&self) -> u32 {
        self.window
    }

    /// The largest PSH payload this side sends.
    pub fn max_frame(&self) -> u32 {
        self.max_frame
    }

    /// How many opened streams may wait to be accepted.
    pub fn accept_backlog(&self) -> usize {
        self.accept_backlog
    }

    /// How many bytes of frames may wait for the transport before writers wait.
    pub fn write_buffer(&self) -> usize {
        self.write_buffer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_nonsense() {
        let c = Config::default();
        for bad in [
            c.clone().with_window(0),
            c.clone().with_window(u32::MAX),
            c.clone().with_max_window(0),
            c.clone().with_max_window((1 << 30) + 1),
            c.clone().with_max_frame(0),
            c.clone().with_max_frame(65_537),
            c.clone().with_accept_backlog(70_000),
            c.clone().with_write_buffer(10),
            c.clone().with_max_streams(0),
            c.clone().with_memory_budget(1),
        ] {
            assert!(
                matches!(bad.validate(), Err(Error::InvalidConfig(_))),
                "{bad:?}"
            );
        }
        // The first refusal is the one reported, and a refused value is not taken.
        let two = c.clone().with_max_frame(0).with_window(1);
        assert_eq!(
            two.validate().unwrap_err().to_string(),
            "invalid configuration: max frame must be from 1 to 65536 bytes, not 0"
        );
        assert_eq!(two.max_frame(), MAX_PAYLOAD);
        let ok = c.clone().with_window(1 << 20).with_max_frame(1);
        assert!(ok.validate().is_ok());
        assert_eq!((ok.window(), ok.max_frame()), (1 << 20, 1));
    }

    /// Every refusal names the value it refused (and the setting's rule).
    #[test]
    fn a_refused_value_is_named() {
        let c = Config::default();
        let sleep: SleepFn = Arc::new(|_| Box::pin(std::future::ready(())));
        for (bad, named) in [
            (
                c.clone().with_window(100),
                "window must be from 1 KiB to 1 GiB, not 100",
            ),
            (c.clone().with_max_window(3 << 30), "not 3221225472"),
            (c.clone().with_max_frame(65_537), "not 65537"),
            (c.clone().with_accept_backlog(70_000), "not 70000"),
            (c.clone().with_write_buffer(10), "not 10"),
            (
                c.clone().with_max_streams(0),
                "max streams must be from 1 to 65535, not 0",
            ),
            (c.clone().with_memory_budget(1000), "not 1000"),
            (
                c.clone().with_keepalive(Duration::from_micros(5), sleep),
                "keepalive interval must be from 1 ms to 1 day, not 5µs",
            ),
        ] {
            let err = bad.validate().unwrap_err();
            assert!(
                err.to_string().ends_with(named),
                "{err} does not end with {named:?}"
            );
            let io: std::io::Error = err.into();
            assert!(io.to_string().ends_with(named), "{io}");
        }
    }
}
