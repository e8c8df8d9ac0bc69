//! The wire a session speaks: what differs between yddeng's smux and xtaci's (v1, v2), and
//! nothing else. The core knows streams, windows and budgets; a [`Wire`] turns bytes into neutral
//! [`Frame`]s and the core's intents (open, data, close, credit, keepalive) into bytes, and owns
//! the id policy:
//!
//! - yddeng: 7-byte headers, 16-bit ids recycled (the wire id is the core's id), CFM deltas,
//!   VRM probes and PIN keepalives, a FIN answered with a FIN (docs/PROTOCOL.md 1-10);
//! - xtaci: 8-byte headers, 32-bit ids (a client's odd, a server's even, each side adding 2 before
//!   every open, never reused), mapped to the core's 16-bit ids for as long as the stream lives;
//!   v2's UPD states the bytes read and the window; v1 has no flow control; NOP keepalives; a FIN
//!   only says the sender sends no more (docs/PROTOCOL.md 13);
//! - detect: a server that has not yet seen its peer's first byte; [`Wire::detect`] tells which.

use super::small_map::SmallMap;
use crate::error::ProtocolError;
use crate::frame::xtaci::{self, Cmd as XCmd};
use crate::frame::{put_header, Cmd, Header, HEADER_LEN};

/// The protocol a session speaks, chosen with [`Config::with_protocol`](crate::Config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// yddeng/smux, the founding document's protocol (the default): per-stream windows, 16-bit
    /// recycled ids, the VRM probe; window growth between two sessions of this crate.
    #[default]
    Yddeng,
    /// xtaci/smux protocol version 1 (Go's `smux.DefaultConfig()`): no per-stream flow control.
    Xtaci1,
    /// xtaci/smux protocol version 2: per-stream windows (UPD frames).
    Xtaci2,
    /// A server for every smux: yddeng's, xtaci's v1 or v2, told apart by the client's first
    /// byte (yddeng's first command is SYN 0, VRM 4 or PIN 5; xtaci's first byte is its version,
    /// 1 or 2). Anything else ends the session with [`ProtocolError::NotSmux`]. Servers only.
    Detect,
}

/// The window an xtaci v2 sender assumes before the receiver's first UPD (Go's initial
/// `peerWindow`): the least window a v2 receiver can police.
pub(crate) const XTACI_INITIAL_WINDOW: u32 = 262_144;

/// A frame from the peer, in the core's terms. Stream ids are the wire's (32 bits for xtaci).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    Syn(u32),
    Fin(u32),
    Psh(u32, &'a [u8]),
    /// yddeng's CFM: `n` more bytes confirmed.
    Cfm(u32, u32),
    /// xtaci's UPD: the peer read `read` bytes in all (mod 2^32) and takes `window` in flight.
    Upd {
        sid: u32,
        read: u32,
        window: u32,
    },
    /// yddeng's probe or its answer.
    Vrm(Header),
    /// yddeng's keepalive.
    Pin,
    /// xtaci's keepalive.
    Nop,
}

impl Frame<'_> {
    /// The frame without its payload, for events: the command, the stream and a length.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn summary(&self) -> (&'static str, u32, u32) {
        match *self {
            Frame::Syn(sid) => ("SYN", sid, 0),
            Frame::Fin(sid) => ("FIN", sid, 0),
            Frame::Psh(sid, p) => ("PSH", sid, p.len() as u32),
            Frame::Cfm(sid, n) => ("CFM", sid, n),
            Frame::Upd { sid, window, .. } => ("UPD", sid, window),
            Frame::Vrm(h) => ("VRM", u32::from(h.sid), h.len),
            Frame::Pin => ("PIN", 0, 0),
            Frame::Nop => ("NOP", 0, 0),
        }
    }
}

/// What the core sends on a stream, for the wire to encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Put {
    Syn,
    Fin,
    /// The header of a data frame of this length; the payload follows.
    Psh(u32),
}

/// The wire of one session.
#[derive(Debug)]
pub(crate) enum Wire {
    Yddeng,
    Xtaci(Xtaci),
    Detect,
}

/// xtaci's wire: the version, the ids, and what v2's UPD counts.
#[derive(Debug)]
pub(crate) struct Xtaci {
    version: u8,
    server: bool,
    /// The last id this side opened (a client starts from 1, a server from 0).
    last_opened: u32,
    /// The core's ids of the streams alive, by wire id. Not hashed: the peer picks its ids, so a
    /// hash needs a keyed one (SipHash) to keep a hostile peer from piling them into one bucket,
    /// and that cost about 6% of the instructions of a short stream's whole life (callgrind, the
    /// compare bench's churn on xtaci v1). A few streams are scanned in a short vector, more are
    /// an ordered map: a few comparisons in each of about 6 levels among 65,536, whatever the
    /// ids (`small_map.rs`).
    to_core: SmallMap<u32, u16>,
    /// The streams alive, by the core's id.
    streams: SmallMap<u16, XStream>,
}

/// One xtaci stream's wire id, and the totals (mod 2^32) v2's UPD states: bytes sent on it,
/// bytes its reader read and this side confirmed. Kept here, not in every stream's state, as
/// only this wire needs them.
#[derive(Debug, Clone, Copy)]
struct XStream {
    sid: u32,
    sent: u32,
    read: u32,
}

impl Xtaci {
    pub(crate) fn new(version: u8, server: bool) -> Xtaci {
        Xtaci {
            version,
            server,
            last_opened: u32::from(!server),
            to_core: SmallMap::default(),
            streams: SmallMap::default(),
        }
    }

    /// The wire id of this side's next stream, or `None` once the 32-bit space is used up ("go
    /// away": nothing is sent).
    fn next_id(&mut self) -> Option<u32> {
        let id = self.last_opened.checked_add(2)?;
        self.last_opened = id;
        Some(id)
    }

    /// Whether `sid` is an id this side opens (a server's are even).
    fn ours(&self, sid: u32) -> bool {
        (sid % 2 == 0) == self.server
    }

    /// The stream the core knows as `id`, if it holds a wire id (every stream whose id is in
    /// use does; the core asks for no other).
    fn stream(&mut self, id: u16) -> Option<&mut XStream> {
        let s = self.streams.get_mut(&id);
        debug_assert!(s.is_some(), "stream {id} has no wire id");
        s
    }

    fn bind(&mut self, sid: u32, id: u16) {
        self.to_core.insert(sid, id);
        let s = XStream {
            sid,
            sent: 0,
            read: 0,
        };
        self.streams.insert(id, s);
    }

    #[cfg(test)]
    pub(crate) fn set_last_opened(&mut self, id: u32) {
        self.last_opened = id;
    }
}

impl Wire {
    /// The wire of a session speaking `protocol`.
    pub(crate) fn new(protocol: Protocol, server: bool) -> Wire {
        match protocol {
            Protocol::Yddeng => Wire::Yddeng,
            Protocol::Xtaci1 => Wire::Xtaci(Xtaci::new(1, server)),
            Protocol::Xtaci2 => Wire::Xtaci(Xtaci::new(2, server)),
            Protocol::Detect => Wire::Detect,
        }
    }

    /// The protocol spoken (for a detecting server, once it is known).
    pub(crate) fn protocol(&self) -> Protocol {
        match self {
            Wire::Yddeng => Protocol::Yddeng,
            Wire::Xtaci(x) if x.version == 1 => Protocol::Xtaci1,
            Wire::Xtaci(_) => Protocol::Xtaci2,
            Wire::Detect => Protocol::Detect,
        }
    }

    /// A detecting server's wire, from the peer's first byte.
    pub(crate) fn detect(first: u8) -> Result<Wire, ProtocolError> {
        match first {
            0 | 4 | 5 => Ok(Wire::Yddeng),
            1 | 2 => Ok(Wire::Xtaci(Xtaci::new(first, true))),
            _ => Err(ProtocolError::NotSmux { first }),
        }
    }

    /// The longest frame on this wire, header included.
    pub(crate) const MAX_FRAME: usize = HEADER_LEN + crate::frame::MAX_PAYLOAD as usize + 1;

    /// Whether streams have windows (not xtaci's v1).
    pub(crate) fn flow_controlled(&self) -> bool {
        !matches!(self, Wire::Xtaci(x) if x.version == 1)
    }

    /// Whether closing is a handshake: a FIN answered with a FIN before the id is released
    /// (yddeng), rather than each side saying once that it sends no more (xtaci).
    pub(crate) fn fin_handshake(&self) -> bool {
        !matches!(self, Wire::Xtaci(_))
    }

    /// Whether a full accept backlog pauses reading rather than refusing the stream: on xtaci's
    /// wire, which has no way to grant room to open, as the Go package does (it stops reading
    /// until its application accepts), so that a burst of opens is never refused there either.
    pub(crate) fn backlog_pauses(&self) -> bool {
        matches!(self, Wire::Xtaci(_))
    }

    /// Whether this wire has the VRM probe (and so window growth and `Session::ping`).
    pub(crate) fn probes(&self) -> bool {
        matches!(self, Wire::Yddeng)
    }

    /// The credit a new stream starts with, given this side's window (the peer's, on yddeng's
    /// wire, is the same by convention).
    pub(crate) fn initial_send_credit(&self, window: u32) -> Option<u32> {
        match self {
            Wire::Xtaci(x) if x.version == 1 => None,
            Wire::Xtaci(_) => Some(XTACI_INITIAL_WINDOW),
            _ => Some(window),
        }
    }

    /// Decodes the frame at the start of `buf`: `None` until a whole one is there.
    pub(crate) fn decode<'a>(
        &self,
        buf: &'a [u8],
    ) -> Result<Option<(Frame<'a>, usize)>, ProtocolError> {
        match self {
            Wire::Yddeng | Wire::Detect => {
                let Some(head) = buf.get(..HEADER_LEN) else {
                    return Ok(None);
                };
                let h = Header::decode(head.try_into().expect("a header's length"))?;
                let total = HEADER_LEN + h.payload_len();
                let Some(payload) = buf.get(HEADER_LEN..total) else {
                    return Ok(None);
                };
                let sid = u32::from(h.sid);
                let frame = match h.cmd {
                    Cmd::Syn => Frame::Syn(sid),
                    Cmd::Fin => Frame::Fin(sid),
                    Cmd::Psh => Frame::Psh(sid, payload),
                    Cmd::Cfm => Frame::Cfm(sid, h.len),
                    Cmd::Vrm => Frame::Vrm(h),
                    Cmd::Pin => Frame::Pin,
                };
                Ok(Some((frame, total)))
            }
            Wire::Xtaci(x) => {
                let Some(head) = buf.get(..xtaci::HEADER_LEN) else {
                    return Ok(None);
                };
                let h =
                    xtaci::Header::decode(head.try_into().expect("a header's length"), x.version)?;
                let total = xtaci::HEADER_LEN + usize::from(h.len);
                let Some(payload) = buf.get(xtaci::HEADER_LEN..total) else {
                    return Ok(None);
                };
                let frame = match h.cmd {
                    XCmd::Syn => Frame::Syn(h.sid),
                    XCmd::Fin => Frame::Fin(h.sid),
                    XCmd::Psh => Frame::Psh(h.sid, payload),
                    XCmd::Nop => Frame::Nop,
                    XCmd::Upd => {
                        let word = |i: usize| {
                            u32::from_le_bytes(payload[i..i + 4].try_into().expect("4 bytes"))
                        };
                        Frame::Upd {
                            sid: h.sid,
                            read: word(0),
                            window: word(4),
                        }
                    }
                };
                Ok(Some((frame, total)))
            }
        }
    }

    /// The header of a data frame at the start of `buf`: its length, the stream id and the
    /// payload's length. `None` for any other frame, an invalid header, or too few bytes.
    pub(crate) fn data_header(&self, buf: &[u8]) -> Option<(usize, u32, usize)> {
        match self {
            Wire::Detect => None,
            Wire::Yddeng => {
                let h = Header::decode(buf.get(..HEADER_LEN)?.try_into().ok()?).ok()?;
                (h.cmd == Cmd::Psh).then(|| (HEADER_LEN, u32::from(h.sid), h.payload_len()))
            }
            Wire::Xtaci(x) => {
                let head = buf.get(..xtaci::HEADER_LEN)?.try_into().ok()?;
                let h = xtaci::Header::decode(head, x.version).ok()?;
                (h.cmd == XCmd::Psh).then(|| (xtaci::HEADER_LEN, h.sid, usize::from(h.len)))
            }
        }
    }

    // ----- ids -----

    /// The core's id of the stream the peer calls `sid`, if it is alive.
    pub(crate) fn core_id(&self, sid: u32) -> Option<u16> {
        match self {
            Wire::Xtaci(x) => x.to_core.get(&sid).copied(),
            _ => u16::try_from(sid).ok(),
        }
    }

    /// Whether the peer's id for a stream it opens is the core's too (yddeng's wire: one 16-bit
    /// id space both sides share), and which; on xtaci's the core gives the stream an id of its
    /// own.
    pub(crate) fn shared_id(&self, sid: u32) -> Option<u16> {
        match self {
            Wire::Xtaci(_) => None,
            _ => u16::try_from(sid).ok(),
        }
    }

    /// The peer opens `sid`, which the core knows as `id` (xtaci: a fresh id of the core's).
    pub(crate) fn bind(&mut self, sid: u32, id: u16) {
        if let Wire::Xtaci(x) = self {
            x.bind(sid, id);
        }
    }

    /// This side opens the stream the core knows as `id`: its wire id, or `None` once the
    /// wire's ids are used up.
    pub(crate) fn open(&mut self, id: u16) -> Option<u32> {
        match self {
            Wire::Xtaci(x) => {
                let sid = x.next_id()?;
                x.bind(sid, id);
                Some(sid)
            }
            _ => Some(u32::from(id)),
        }
    }

    /// Whether the peer may open `sid` (xtaci: ids of the peer's parity only).
    pub(crate) fn peer_may_open(&self, sid: u32) -> bool {
        match self {
            Wire::Xtaci(x) => !x.ours(sid),
            _ => true,
        }
    }

    /// The stream the core knows as `id` is gone: its wire id is forgotten (xtaci never reuses
    /// one; late frames for it find nothing).
    pub(crate) fn release(&mut self, id: u16) {
        if let Wire::Xtaci(x) = self {
            if let Some(s) = x.streams.remove(&id) {
                x.to_core.remove(&s.sid);
            }
        }
    }

    // ----- encoding -----

    /// Appends a frame's header for the stream the core knows as `id`.
    pub(crate) fn put(&mut self, out: &mut Vec<u8>, what: Put, id: u16) {
        match self {
            Wire::Xtaci(x) => {
                let version = x.version;
                let Some(s) = x.stream(id) else {
                    return;
                };
                let (cmd, len) = match what {
                    Put::Syn => (XCmd::Syn, 0),
                    Put::Fin => (XCmd::Fin, 0),
                    Put::Psh(n) => {
                        s.sent = s.sent.wrapping_add(n);
                        (XCmd::Psh, n as u16)
                    }
                };
                xtaci::put_header(out, version, cmd, len, s.sid);
            }
            _ => {
                let (cmd, len) = match what {
                    Put::Syn => (Cmd::Syn, 0),
                    Put::Fin => (Cmd::Fin, 0),
                    Put::Psh(n) => (Cmd::Psh, n),
                };
                put_header(out, cmd, id, len);
            }
        }
    }

    /// Appends a grant of `n` more bytes for the stream `id`: yddeng's CFM, or xtaci v2's UPD of
    /// the bytes read in all ([`Wire::note_read`]) and the `window`. Returns whether a frame was
    /// added.
    pub(crate) fn put_credit(&mut self, out: &mut Vec<u8>, id: u16, n: u32, window: u32) -> bool {
        match self {
            Wire::Xtaci(x) if x.version == 1 => false,
            Wire::Xtaci(x) => match x.stream(id) {
                Some(s) => {
                    xtaci::put_upd(out, s.sid, s.read, window);
                    true
                }
                None => false,
            },
            _ => {
                put_header(out, Cmd::Cfm, id, n);
                true
            }
        }
    }

    /// The application read `n` bytes of the stream `id` (what xtaci v2's UPD states).
    pub(crate) fn note_read(&mut self, id: u16, n: usize) {
        if let Wire::Xtaci(x) = self {
            if x.version > 1 {
                if let Some(s) = x.stream(id) {
                    s.read = s.read.wrapping_add(n as u32);
                }
            }
        }
    }

    /// xtaci v2's UPD for the stream `id`: the peer read `read` bytes of it in all (mod 2^32).
    /// Returns what is in flight (sent and not yet read), or `None` if the peer claims to have
    /// read more than was sent.
    pub(crate) fn in_flight(&mut self, id: u16, read: u32) -> Option<u32> {
        let Wire::Xtaci(x) = self else {
            return None;
        };
        let in_flight = x.stream(id)?.sent.wrapping_sub(read);
        // A window is at most 4 GiB, so honest counts are never half the space apart.
        (in_flight <= 1 << 31).then_some(in_flight)
    }

    /// Appends a FIN for the peer's stream `sid`, refused before it had an id of the core's
    /// (xtaci, with every id of the core's in use).
    pub(crate) fn put_refusal(&self, out: &mut Vec<u8>, sid: u32) {
        if let Wire::Xtaci(x) = self {
            xtaci::put_header(out, x.version, XCmd::Fin, 0, sid);
        }
    }

    /// Appends a keepalive: yddeng's PIN, xtaci's NOP; nothing while the wire is not known yet.
    /// Returns whether a frame was added.
    pub(crate) fn put_keepalive(&self, out: &mut Vec<u8>) -> bool {
        match self {
            Wire::Xtaci(x) => xtaci::put_header(out, x.version, XCmd::Nop, 0, 0),
            Wire::Yddeng => put_header(out, Cmd::Pin, 0, 0),
            Wire::Detect => return false,
        }
        true
    }

    /// The largest data frame this wire carries.
    pub(crate) fn max_payload(&self) -> u32 {
        match self {
            Wire::Xtaci(_) => xtaci::MAX_PAYLOAD,
            _ => crate::frame::MAX_PAYLOAD,
        }
    }
}
