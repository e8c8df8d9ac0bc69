//! Fuzzing hooks: the pure protocol core, its rules and its pair harness, as they are, for the
//! targets in `fuzz/`. Enabled by the `fuzzing` feature; not a stable API.
//!
//! Nothing here mirrors the core: [`Core`] is the crate's own (with `()` as the shell's
//! per-stream data), [`Core::check_invariants`] is the walk the property tests run after every
//! step, and [`Pair`] is the one harness that joins two cores.

pub use crate::core::pair::{deliver, frames, Pair, PairOp};
pub use crate::core::{
    Core, Direction, Event, Limits, OpenError, Read, State, StreamKey, StreamState, Write,
};

use crate::error::ProtocolError;
use crate::frame::{Header, HEADER_LEN};

/// Feeds every whole frame at the start of `wire` to the core, as the driver does. Returns the
/// bytes consumed (a partial frame at the end is left), or the first decode or protocol error.
pub fn handle_wire(core: &mut Core<()>, wire: &[u8]) -> Result<usize, ProtocolError> {
    let mut at = 0;
    while wire.len() - at >= HEADER_LEN {
        let head: &[u8; HEADER_LEN] = wire[at..at + HEADER_LEN]
            .try_into()
            .expect("a header's length");
        let h = Header::decode(head)?;
        let total = HEADER_LEN + h.payload_len();
        if wire.len() - at < total {
            break;
        }
        core.handle_frame(h, &wire[at + HEADER_LEN..at + total])?;
        at += total;
    }
    Ok(at)
}
