//! The frame codec of xtaci/smux (protocol versions 1 and 2): the 8-byte header and its commands.
//!
//! `version (1) | cmd (1) | length (u16 LE) | stream id (u32 LE)`, then `length` bytes of payload
//! (PSH's data; UPD's 8 bytes). Pure bytes; what the frames mean is the session's business.

use std::fmt;

/// Size of a frame header on the wire.
pub const HEADER_LEN: usize = 8;

/// The largest payload a frame can announce (its length field is 16 bits).
pub const MAX_PAYLOAD: u32 = 65_535;

/// The payload of an UPD frame: the bytes the receiver has read (mod 2^32), then its window.
pub const UPD_LEN: usize = 8;

/// A frame's command byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cmd {
    /// Open stream `sid`.
    Syn = 0,
    /// The sender will send no more on stream `sid` (a close, or with v1.5.57 a half-close).
    Fin = 1,
    /// `length` bytes of data for stream `sid` follow.
    Psh = 2,
    /// Keepalive: nothing but a sign of life.
    Nop = 3,
    /// Version 2 only: the receiver's read total and window for stream `sid` follow (8 bytes).
    Upd = 4,
}

impl Cmd {
    /// The command for a wire byte, or `None` for a value the protocol does not define.
    pub fn from_u8(b: u8) -> Option<Cmd> {
        Some(match b {
            0 => Cmd::Syn,
            1 => Cmd::Fin,
            2 => Cmd::Psh,
            3 => Cmd::Nop,
            4 => Cmd::Upd,
            _ => return None,
        })
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cmd::Syn => "SYN",
            Cmd::Fin => "FIN",
            Cmd::Psh => "PSH",
            Cmd::Nop => "NOP",
            Cmd::Upd => "UPD",
        })
    }
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// The protocol version (1 or 2).
    pub version: u8,
    /// The command.
    pub cmd: Cmd,
    /// The payload length that follows.
    pub len: u16,
    /// The stream id: odd for streams a client opened, even for a server's.
    pub sid: u32,
}

/// Why a header could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The version byte is not the session's.
    Version(u8),
    /// The command byte is not one the protocol defines.
    UnknownCommand(u8),
    /// An UPD in a version 1 session (UPD is version 2's).
    UpdInVersion1,
    /// A frame carries a length its command does not allow (SYN, FIN and NOP carry none; UPD
    /// carries 8 bytes).
    BadLength(Cmd, u16),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Version(v) => write!(f, "a frame of protocol version {v}"),
            DecodeError::UnknownCommand(c) => write!(f, "unknown command byte {c}"),
            DecodeError::UpdInVersion1 => f.write_str("an UPD frame in protocol version 1"),
            DecodeError::BadLength(cmd, n) => write!(f, "{cmd} with a length of {n}"),
        }
    }
}

impl Header {
    /// A header with the given fields.
    pub const fn new(version: u8, cmd: Cmd, len: u16, sid: u32) -> Header {
        Header {
            version,
            cmd,
            len,
            sid,
        }
    }

    /// The 8 wire bytes of this header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let l = self.len.to_le_bytes();
        let s = self.sid.to_le_bytes();
        [
            self.version,
            self.cmd as u8,
            l[0],
            l[1],
            s[0],
            s[1],
            s[2],
            s[3],
        ]
    }

    /// Decodes 8 wire bytes of a session speaking `version`: checks the version, the command
    /// (UPD only in version 2) and the lengths each command allows.
    pub fn decode(b: &[u8; HEADER_LEN], version: u8) -> Result<Header, DecodeError> {
        if b[0] != version {
            return Err(DecodeError::Version(b[0]));
        }
        let cmd = match Cmd::from_u8(b[1]) {
            Some(Cmd::Upd) if version < 2 => return Err(DecodeError::UpdInVersion1),
            Some(cmd) => cmd,
            None => return Err(DecodeError::UnknownCommand(b[1])),
        };
        let len = u16::from_le_bytes([b[2], b[3]]);
        let ok = match cmd {
            Cmd::Syn | Cmd::Fin | Cmd::Nop => len == 0,
            Cmd::Upd => usize::from(len) == UPD_LEN,
            Cmd::Psh => true,
        };
        if !ok {
            return Err(DecodeError::BadLength(cmd, len));
        }
        let sid = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        Ok(Header::new(version, cmd, len, sid))
    }
}

/// Appends a header to `out`.
pub(crate) fn put_header(out: &mut Vec<u8>, version: u8, cmd: Cmd, len: u16, sid: u32) {
    out.extend_from_slice(&Header::new(version, cmd, len, sid).encode());
}

/// Appends an UPD frame: `read` bytes read from stream `sid` (mod 2^32), and the window.
pub(crate) fn put_upd(out: &mut Vec<u8>, sid: u32, read: u32, window: u32) {
    put_header(out, 2, Cmd::Upd, UPD_LEN as u16, sid);
    out.extend_from_slice(&read.to_le_bytes());
    out.extend_from_slice(&window.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_lengths_are_checked() {
        let h = Header::new(2, Cmd::Psh, 1234, 0x0102_0304);
        assert_eq!(h.encode(), [2, 2, 0xD2, 0x04, 4, 3, 2, 1]);
        assert_eq!(Header::decode(&h.encode(), 2), Ok(h));
        assert_eq!(Header::decode(&h.encode(), 1), Err(DecodeError::Version(2)));
        let fin = Header::new(1, Cmd::Fin, 3, 7).encode();
        assert_eq!(
            Header::decode(&fin, 1),
            Err(DecodeError::BadLength(Cmd::Fin, 3))
        );
        let upd = Header::new(1, Cmd::Upd, 8, 7).encode();
        assert_eq!(Header::decode(&upd, 1), Err(DecodeError::UpdInVersion1));
        let mut out = Vec::new();
        put_upd(&mut out, 3, 10, 65_536);
        let h = Header::decode(out[..8].try_into().unwrap(), 2).unwrap();
        assert_eq!((h.cmd, h.len, h.sid), (Cmd::Upd, 8, 3));
        assert_eq!(&out[8..], &[10, 0, 0, 0, 0, 0, 1, 0]);
    }
}
