//! The frame codec: the 7-byte header, the commands, and the VRM answer functions of yddeng's
//! smux; xtaci/smux's 8-byte header in [`xtaci`].
//!
//! Pure bytes in, bytes out ([docs/PROTOCOL.md](crate#the-protocol) sections 2, 3, 8 and 10); no
//! I/O.

use std::fmt;

pub mod xtaci;

/// Size of a frame header on the wire: `cmd (1) | sid (u16 LE) | len (u32 LE)`.
pub const HEADER_LEN: usize = 7;

/// The largest PSH payload the protocol allows (64 KiB).
pub const MAX_PAYLOAD: u32 = 65_536;

/// A frame's command byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cmd {
    /// Open stream `sid`.
    Syn = 0,
    /// Close stream `sid` (a full close).
    Fin = 1,
    /// `len` bytes of data for stream `sid` follow the header.
    Psh = 2,
    /// The receiver of stream `sid` consumed `len` more bytes.
    Cfm = 3,
    /// "Are you a multiplexer?" probe and its answer; `sid` and `len` carry the random values.
    Vrm = 4,
    /// The newest original's keepalive ([docs/PROTOCOL.md](crate#the-protocol) 10): `sid` 0, `len`
    /// 0, never answered by the original; it closes a session that has received none for 100 s.
    Pin = 5,
}

impl Cmd {
    /// The command for a wire byte, or `None` for a value the protocol does not define.
    pub fn from_u8(b: u8) -> Option<Cmd> {
        Some(match b {
            0 => Cmd::Syn,
            1 => Cmd::Fin,
            2 => Cmd::Psh,
            3 => Cmd::Cfm,
            4 => Cmd::Vrm,
            5 => Cmd::Pin,
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
            Cmd::Cfm => "CFM",
            Cmd::Vrm => "VRM",
            Cmd::Pin => "PIN",
        })
    }
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// The command.
    pub cmd: Cmd,
    /// The stream id (for VRM: the random value `v1`).
    pub sid: u16,
    /// PSH: payload length; CFM: bytes confirmed; VRM: the random value `v2`; otherwise 0.
    pub len: u32,
}

/// Why a header could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The command byte is not one the protocol defines.
    UnknownCommand(u8),
    /// A PSH announced a payload longer than [`MAX_PAYLOAD`].
    PayloadTooLong(u32),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnknownCommand(c) => write!(f, "unknown command byte {c}"),
            DecodeError::PayloadTooLong(n) => {
                write!(
                    f,
                    "PSH payload of {n} bytes exceeds the maximum of {MAX_PAYLOAD}"
                )
            }
        }
    }
}

impl Header {
    /// A header with the given fields.
    pub const fn new(cmd: Cmd, sid: u16, len: u32) -> Header {
        Header { cmd, sid, len }
    }

    /// The 7 wire bytes of this header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let s = self.sid.to_le_bytes();
        let l = self.len.to_le_bytes();
        [self.cmd as u8, s[0], s[1], l[0], l[1], l[2], l[3]]
    }

    /// Decodes 7 wire bytes, checking the command and the PSH payload limit.
    pub fn decode(b: &[u8; HEADER_LEN]) -> Result<Header, DecodeError> {
        let cmd = Cmd::from_u8(b[0]).ok_or(DecodeError::UnknownCommand(b[0]))?;
        let sid = u16::from_le_bytes([b[1], b[2]]);
        let len = u32::from_le_bytes([b[3], b[4], b[5], b[6]]);
        if cmd == Cmd::Psh && len > MAX_PAYLOAD {
            return Err(DecodeError::PayloadTooLong(len));
        }
        Ok(Header { cmd, sid, len })
    }

    /// The payload length that follows this header on the wire (non-zero only for PSH).
    pub fn payload_len(&self) -> usize {
        if self.cmd == Cmd::Psh {
            self.len as usize
        } else {
            0
        }
    }
}

/// Appends a header to `out`.
pub(crate) fn put_header(out: &mut Vec<u8>, cmd: Cmd, sid: u16, len: u32) {
    out.extend_from_slice(&Header::new(cmd, sid, len).encode());
}

/// The VRM answer to `v1`: `((v1 & 0x00FF) << 8) | ((v1 & 0x0F00) >> 4)` (the top nibble is dropped,
/// as the original computes it).
pub const fn vrm_f1(v1: u16) -> u16 {
    ((v1 & 0x00FF) << 8) | ((v1 & 0x0F00) >> 4)
}

/// The VRM answer to `v2`: bytes `[b3 b2 b1 b0]` (most significant first) become `[b3 b0 b2 b1]`.
pub const fn vrm_f2(v2: u32) -> u32 {
    (v2 & 0xFF00_0000) | ((v2 & 0x00FF_0000) >> 8) | ((v2 & 0x0000_FF00) >> 8) | ((v2 & 0xFF) << 16)
}

/// The header a multiplexer answers to the probe `VRM(v1, v2)`.
pub const fn vrm_answer(v1: u16, v2: u32) -> Header {
    Header::new(Cmd::Vrm, vrm_f1(v1), vrm_f2(v2))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = include_str!("../../tests/vectors/verify_code_and_headers.txt");

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn vrm_functions_match_the_original() {
        let mut n = 0;
        for line in VECTORS
            .lines()
            .filter(|l| l.contains("->") && !l.starts_with("cmd="))
        {
            let w: Vec<&str> = line.split_whitespace().collect();
            if w.len() != 5 || w[0].starts_with('#') {
                continue;
            }
            let v1 = u16::from_str_radix(w[0], 16).unwrap();
            let v2 = u32::from_str_radix(w[1], 16).unwrap();
            let r1 = u16::from_str_radix(w[3], 16).unwrap();
            let r2 = u32::from_str_radix(w[4], 16).unwrap();
            assert_eq!((vrm_f1(v1), vrm_f2(v2)), (r1, r2), "{line}");
            n += 1;
        }
        assert_eq!(n, 20, "every vector line was checked");
    }

    #[test]
    fn headers_match_the_original() {
        let mut n = 0;
        for line in VECTORS.lines().filter(|l| l.starts_with("cmd=")) {
            // cmd=2(PSH) sid=0102 len=03040506 -> 02020106050403
            let w: Vec<&str> = line.split_whitespace().collect();
            let cmd = w[0][4..5].parse::<u8>().unwrap();
            let sid = u16::from_str_radix(&w[1][4..], 16).unwrap();
            let len = u32::from_str_radix(&w[2][4..], 16).unwrap();
            let want = hex(w[4]);
            let h = Header::new(Cmd::from_u8(cmd).unwrap(), sid, len);
            if h.cmd == Cmd::Psh && len > MAX_PAYLOAD {
                // Encoding is plain; decoding such a PSH is refused by the payload limit.
                assert_eq!(&h.encode()[..], &want[..], "{line}");
                let d = Header::decode(&h.encode());
                assert_eq!(d, Err(DecodeError::PayloadTooLong(len)));
            } else {
                assert_eq!(&h.encode()[..], &want[..], "{line}");
                assert_eq!(
                    Header::decode(&want[..].try_into().unwrap()),
                    Ok(h),
                    "{line}"
                );
            }
            n += 1;
        }
        assert_eq!(n, 11);
    }

    #[test]
    fn every_header_decodes_or_errors_and_round_trips() {
        // Exhaustive over the command byte, sampled over the rest.
        for cmd in 0..=255u8 {
            for &sid in &[0u16, 1, 0x0102, 0xFFFF] {
                for &len in &[0u32, 1, 65_535, 65_536, 65_537, u32::MAX] {
                    let mut b = [0u8; HEADER_LEN];
                    b[0] = cmd;
                    b[1..3].copy_from_slice(&sid.to_le_bytes());
                    b[3..].copy_from_slice(&len.to_le_bytes());
                    match Header::decode(&b) {
                        Ok(h) => {
                            assert!(cmd <= 5);
                            assert!(h.cmd != Cmd::Psh || len <= MAX_PAYLOAD);
                            assert_eq!(h.encode(), b);
                        }
                        Err(DecodeError::UnknownCommand(c)) => assert!(c > 5),
                        Err(DecodeError::PayloadTooLong(n)) => {
                            assert_eq!((cmd, n), (2, len));
                            assert!(n > MAX_PAYLOAD);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn vrm_probe_trace() {
        // Scenario 4 of the original's traces: probe 04341278563412, answer 04203456347812.
        let probe = Header::new(Cmd::Vrm, 0x1234, 0x1234_5678);
        assert_eq!(probe.encode().to_vec(), hex("04341278563412"));
        assert_eq!(
            vrm_answer(0x1234, 0x1234_5678).encode().to_vec(),
            hex("04203456347812")
        );
    }
}
