//! Errors: what a caller can match on, and how each maps to `std::io::ErrorKind`.

use std::fmt;
use std::io;
use std::sync::Arc;

/// Everything that can go wrong with a session or a stream.
///
/// Converts into [`std::io::Error`] with a deliberate [`io::ErrorKind`] (see the `From` impl), which
/// is what the `AsyncRead`/`AsyncWrite` methods of [`Stream`](crate::Stream) return.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed; every stream of the session sees the same error.
    Io(Arc<io::Error>),
    /// The connection was lost in the middle of a frame: the transport ended (the error is then
    /// an [`io::ErrorKind::UnexpectedEof`] one) or failed (its error) with part of a frame read.
    /// A transport failure, not the peer breaking the protocol; every stream sees it.
    LostMidFrame(Arc<io::Error>),
    /// The peer broke the protocol; the session was ended.
    Protocol(ProtocolError),
    /// The session has ended (closed by us, by the peer, or its driver is gone).
    SessionClosed,
    /// The stream was closed on this side: it can no longer read or write.
    StreamClosed,
    /// The peer closed the stream: it can no longer be written (reads return what was buffered,
    /// then end-of-stream).
    ClosedByPeer,
    /// The session ended before the peer closed the stream (the transport closed with no FIN for
    /// it): reads return what was buffered and then this, as what the peer meant to send after
    /// may be missing; writes fail with it at once.
    StreamCut,
    /// The peer refused the stream: its accept backlog was full or it was shutting down, so what
    /// was written never reached its application. Only a peer of this crate says so (yddeng's
    /// wire); it grants room to open so that it need not refuse (see [`Session::open`]), and
    /// the Go programs never refuse. Reads and writes fail with it.
    ///
    /// [`Session::open`]: crate::Session::open
    Refused,
    /// All 65,535 stream ids are in use; one must close before another stream can open.
    IdsExhausted,
    /// xtaci/smux: this side opened as many streams as the wire's 32-bit ids allow (about two
    /// billion): the session can open no more ("go away"); open a new session.
    GoAway,
    /// The operation does not exist on the protocol the session speaks (for example
    /// [`Session::ping`](crate::Session::ping) on xtaci/smux, which has no probe).
    Unsupported(&'static str),
    /// A [`Config`](crate::Config) value is out of range: the first one a setter refused, named
    /// with its rule and the value given.
    InvalidConfig(ConfigError),
    /// The keepalive heard nothing from the peer, not even the answer to a probe, for two
    /// intervals (see [`Config::with_keepalive`](crate::Config::with_keepalive)): the session
    /// ends between 2 and 2¼ intervals after the peer's last frame.
    KeepaliveTimeout,
}

/// A value a [`Config`](crate::Config) setter refused: which setting, its rule, and the value
/// given. Its `Display` reads, for example, `window must be from 1 KiB to 1 GiB, not 100`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigError {
    rule: &'static str,
    value: Refused,
}

/// The value refused, kept as it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    Number(u64),
    Time(std::time::Duration),
    /// Two settings refused together (a minimum and a maximum).
    Numbers(u64, u64),
    Times(std::time::Duration, std::time::Duration),
}

impl ConfigError {
    /// A refusal of the number `value` by `rule` (the setting and what it takes).
    pub(crate) fn number(rule: &'static str, value: impl TryInto<u64>) -> ConfigError {
        let value = value.try_into().unwrap_or(u64::MAX);
        ConfigError {
            rule,
            value: Refused::Number(value),
        }
    }

    /// A refusal of the duration `value` by `rule`.
    pub(crate) fn time(rule: &'static str, value: std::time::Duration) -> ConfigError {
        ConfigError {
            rule,
            value: Refused::Time(value),
        }
    }

    /// A refusal of the numbers `a` and `b`, given together, by `rule`.
    pub(crate) fn numbers(rule: &'static str, a: impl TryInto<u64>, b: impl TryInto<u64>) -> Self {
        let (a, b) = (
            a.try_into().unwrap_or(u64::MAX),
            b.try_into().unwrap_or(u64::MAX),
        );
        ConfigError {
            rule,
            value: Refused::Numbers(a, b),
        }
    }

    /// A refusal of the durations `a` and `b`, given together, by `rule`.
    pub(crate) fn times(
        rule: &'static str,
        a: std::time::Duration,
        b: std::time::Duration,
    ) -> ConfigError {
        ConfigError {
            rule,
            value: Refused::Times(a, b),
        }
    }

    /// The setting and what it takes, without the value: `"window must be from 1 KiB to 1 GiB"`.
    pub fn rule(&self) -> &'static str {
        self.rule
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value {
            Refused::Number(n) => write!(f, "{}, not {n}", self.rule),
            Refused::Time(d) => write!(f, "{}, not {d:?}", self.rule),
            Refused::Numbers(a, b) => write!(f, "{}, not {a} and {b}", self.rule),
            Refused::Times(a, b) => write!(f, "{}, not {a:?} and {b:?}", self.rule),
        }
    }
}

impl std::error::Error for ConfigError {}

/// How the peer broke the protocol ([the protocol document](crate#the-protocol)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A command byte the protocol does not define.
    UnknownCommand(u8),
    /// A PSH longer than the 64 KiB maximum.
    PayloadTooLong {
        /// The announced length.
        len: u32,
    },
    /// More data for a stream than its window allows.
    WindowExceeded {
        /// The stream (its id on the wire).
        stream: u32,
        /// The window.
        window: u32,
    },
    /// A confirm would take a stream's send credit past 4 GiB (only a peer that claimed window
    /// growth can grant beyond the window, and no honest one grants that much).
    CreditOverflow {
        /// The stream (its id on the wire).
        stream: u32,
    },
    /// A client received its own first frame (the window-growth offer) back unchanged: the peer
    /// is not a multiplexer server but something that reflects bytes (an echo server), or
    /// another client on the same transport.
    OfferReflected,
    /// A server for every smux ([`Protocol::Detect`](crate::Protocol::Detect)) got a first byte
    /// that starts no smux session (yddeng's first command, SYN 0, VRM 4 or PIN 5; xtaci's
    /// version, 1 or 2).
    NotSmux {
        /// The peer's first byte.
        first: u8,
    },
    /// xtaci/smux: a frame of another protocol version than the session's (versions 1 and 2
    /// cannot talk).
    WrongVersion {
        /// The frame's version byte.
        version: u8,
    },
    /// xtaci/smux: an UPD frame in a version 1 session.
    UpdInVersion1,
    /// xtaci/smux: a SYN, FIN or NOP with a length, or an UPD whose length is not 8.
    BadLength {
        /// The command byte.
        command: u8,
        /// The length it carried.
        len: u16,
    },
    /// xtaci/smux: the peer opened a stream with an id of this side's parity (a client's ids are
    /// odd, a server's even): it would collide with a stream this side opens.
    WrongParity {
        /// The id.
        stream: u32,
    },
    /// xtaci/smux v2: an UPD says the peer read more of a stream than this side sent.
    ReadBeyondSent {
        /// The stream.
        stream: u32,
    },
}

/// Writes what a byte that starts no smux frame says about the peer, if anything: " ('H': an
/// HTTP peer?)".
fn what_byte_says(f: &mut fmt::Formatter<'_>, c: u8) -> fmt::Result {
    match (c.is_ascii_graphic(), likely_peer(c)) {
        (true, Some(guess)) => write!(f, " ('{}': {guess})", c as char),
        (true, None) => write!(f, " ('{}': a text protocol?)", c as char),
        (false, Some(guess)) => write!(f, " ({guess})"),
        (false, None) => Ok(()),
    }
}

/// What a byte that is no smux command says about the peer, if anything: the first byte of a
/// text protocol or a TLS record.
fn likely_peer(c: u8) -> Option<&'static str> {
    Some(match c {
        b'H' | b'G' | b'P' | b'D' | b'O' | b'C' => "an HTTP peer?",
        b'S' => "an SSH server?",
        0x16 | 0x15 => "a TLS peer?",
        _ => return None,
    })
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ProtocolError::UnknownCommand(c) => {
                write!(f, "unknown command byte {c}: the peer does not speak smux")?;
                what_byte_says(f, c)
            }
            ProtocolError::PayloadTooLong { len } => {
                write!(
                    f,
                    "PSH payload of {len} bytes exceeds the 65536-byte maximum"
                )
            }
            ProtocolError::WindowExceeded { stream, window } => {
                write!(
                    f,
                    "stream {stream} received more than its window of {window} bytes"
                )
            }
            ProtocolError::CreditOverflow { stream } => {
                write!(
                    f,
                    "stream {stream} was granted more than 4 GiB of send credit"
                )
            }
            ProtocolError::NotSmux { first } => {
                write!(f, "not a smux peer: its first byte is {first}")?;
                what_byte_says(f, first)
            }
            ProtocolError::WrongVersion { version } => write!(
                f,
                "a frame of xtaci/smux protocol version {version}, not this session's (v1 and v2 \
                 cannot talk: set both ends alike)"
            ),
            ProtocolError::UpdInVersion1 => {
                f.write_str("an UPD frame in an xtaci/smux version 1 session (UPD is version 2's)")
            }
            ProtocolError::BadLength { command, len } => {
                write!(
                    f,
                    "command {command} with a length of {len} it may not carry"
                )
            }
            ProtocolError::WrongParity { stream } => write!(
                f,
                "the peer opened stream {stream}, an id of this side's (clients' ids are odd, \
                 servers' even)"
            ),
            ProtocolError::ReadBeyondSent { stream } => {
                write!(
                    f,
                    "an UPD for stream {stream} says more was read than was sent"
                )
            }
            ProtocolError::OfferReflected => f.write_str(
                "this client's first frame came back unchanged: the peer is not a multiplexer \
                 server (an echo server?) or is another client on the same transport",
            ),
        }
    }
}

impl std::error::Error for ProtocolError {}

impl From<crate::frame::xtaci::DecodeError> for ProtocolError {
    fn from(e: crate::frame::xtaci::DecodeError) -> Self {
        use crate::frame::xtaci::DecodeError as D;
        match e {
            D::Version(version) => ProtocolError::WrongVersion { version },
            D::UnknownCommand(c) => ProtocolError::UnknownCommand(c),
            D::UpdInVersion1 => ProtocolError::UpdInVersion1,
            D::BadLength(cmd, len) => ProtocolError::BadLength {
                command: cmd as u8,
                len,
            },
        }
    }
}

impl From<crate::frame::DecodeError> for ProtocolError {
    fn from(e: crate::frame::DecodeError) -> Self {
        match e {
            crate::frame::DecodeError::UnknownCommand(c) => ProtocolError::UnknownCommand(c),
            crate::frame::DecodeError::PayloadTooLong(len) => ProtocolError::PayloadTooLong { len },
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "transport error: {e}"),
            Error::LostMidFrame(e) => write!(f, "transport error: connection lost mid-frame: {e}"),
            Error::Protocol(e) => write!(f, "protocol violation by the peer: {e}"),
            Error::SessionClosed => f.write_str("the session is closed"),
            Error::StreamClosed => f.write_str("the stream was closed on this side"),
            Error::ClosedByPeer => f.write_str("the peer closed the stream"),
            Error::StreamCut => f.write_str(
                "the session ended (the peer closed the connection) before the peer closed the \
                 stream",
            ),
            Error::Refused => f.write_str(
                "the peer refused the stream (its accept backlog was full, or it was shutting \
                 down): nothing written reached its application",
            ),
            Error::IdsExhausted => f.write_str("all 65535 stream ids are in use"),
            Error::GoAway => f.write_str(
                "this session used up the wire's stream ids (go away): open a new session",
            ),
            Error::Unsupported(what) => write!(f, "not on this protocol: {what}"),
            Error::InvalidConfig(what) => write!(f, "invalid configuration: {what}"),
            Error::KeepaliveTimeout => f.write_str("the peer stopped answering keepalive probes"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) | Error::LostMidFrame(e) => Some(&**e),
            Error::Protocol(e) => Some(e),
            Error::InvalidConfig(e) => Some(e),
            _ => None,
        }
    }
}

impl Error {
    /// The connection was lost with part of a frame read: the transport failed with `error`, or
    /// (`None`) reached its end.
    pub(crate) fn lost_mid_frame(error: Option<io::Error>) -> Error {
        let e = error
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "the transport ended"));
        Error::LostMidFrame(Arc::new(e))
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(Arc::new(e))
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Error::Protocol(e)
    }
}

/// The mapping: `Io` keeps the transport's kind, and so does `LostMidFrame` (`UnexpectedEof`
/// when the transport ended); `Protocol` is `InvalidData`; `SessionClosed` is
/// `ConnectionAborted`; `StreamClosed` is `NotConnected`; `ClosedByPeer` is `BrokenPipe`;
/// `StreamCut` is `ConnectionReset`; `Refused` is `ConnectionRefused`; `IdsExhausted` is `Other`; `InvalidConfig` is `InvalidInput`;
/// `KeepaliveTimeout` is `TimedOut`. The `Error` itself is kept inside: `io_error.get_ref()` and
/// `downcast_ref::<ysmux::Error>()` give it back.
impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        let kind = match &e {
            Error::Io(inner) | Error::LostMidFrame(inner) => inner.kind(),
            Error::Protocol(_) => io::ErrorKind::InvalidData,
            Error::SessionClosed => io::ErrorKind::ConnectionAborted,
            Error::StreamClosed => io::ErrorKind::NotConnected,
            Error::ClosedByPeer => io::ErrorKind::BrokenPipe,
            Error::StreamCut => io::ErrorKind::ConnectionReset,
            Error::Refused => io::ErrorKind::ConnectionRefused,
            Error::IdsExhausted => io::ErrorKind::Other,
            Error::GoAway => io::ErrorKind::Other,
            Error::Unsupported(_) => io::ErrorKind::Unsupported,
            Error::InvalidConfig(_) => io::ErrorKind::InvalidInput,
            Error::KeepaliveTimeout => io::ErrorKind::TimedOut,
        };
        io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_kinds() {
        let io: io::Error = Error::from(io::Error::from(io::ErrorKind::ConnectionReset)).into();
        assert_eq!(io.kind(), io::ErrorKind::ConnectionReset);
        let io: io::Error = Error::Protocol(ProtocolError::UnknownCommand(9)).into();
        assert_eq!(io.kind(), io::ErrorKind::InvalidData);
        let io: io::Error = Error::StreamClosed.into();
        assert_eq!(io.kind(), io::ErrorKind::NotConnected);
    }

    /// A connection lost mid-frame is a transport error, with the transport's own error (or the
    /// end-of-stream) as its kind and source, never a protocol violation.
    #[test]
    fn a_connection_lost_mid_frame_is_a_transport_error() {
        let ended = Error::lost_mid_frame(None);
        assert_eq!(
            ended.to_string(),
            "transport error: connection lost mid-frame: the transport ended"
        );
        let io: io::Error = ended.into();
        assert_eq!(io.kind(), io::ErrorKind::UnexpectedEof);

        let reset = Error::lost_mid_frame(Some(io::ErrorKind::ConnectionReset.into()));
        let msg = reset.to_string();
        assert!(
            msg.starts_with("transport error: connection lost mid-frame: "),
            "{msg}"
        );
        assert!(!msg.contains("protocol"), "{msg}");
        let source = std::error::Error::source(&reset).expect("the io error");
        let source = source.downcast_ref::<io::Error>().expect("an io::Error");
        assert_eq!(source.kind(), io::ErrorKind::ConnectionReset);
        let io: io::Error = reset.into();
        assert_eq!(io.kind(), io::ErrorKind::ConnectionReset);
    }

    #[test]
    fn an_unknown_command_says_what_the_peer_may_be() {
        let http = ProtocolError::UnknownCommand(b'H').to_string();
        assert!(http.contains("does not speak smux"), "{http}");
        assert!(http.contains("'H': an HTTP peer?"), "{http}");
        let tls = ProtocolError::UnknownCommand(0x16).to_string();
        assert!(tls.contains("a TLS peer?"), "{tls}");
        let other = ProtocolError::UnknownCommand(200).to_string();
        assert_eq!(
            other,
            "unknown command byte 200: the peer does not speak smux"
        );
    }

    #[test]
    fn is_send_sync_static() {
        fn check<T: std::error::Error + Send + Sync + 'static>() {}
        check::<Error>();
        check::<ProtocolError>();
    }
}
