//! Data frames whose payload the driver reads straight into the buffer it then waits in for the
//! application: for a large payload, the copy from the driver's read buffer into the stream's
//! buffer is saved (each byte is then copied once in user space on its way in, not twice).
//!
//! The driver asks [`Core::partial_data`] about what [`Core::handle_input`] left over, takes a
//! buffer from [`Core::payload_buffer`], reads the rest of the payload into it, and hands frame and
//! payload to [`Core::handle_data`], which applies every rule `handle_input` applies to the same
//! bytes.

use super::recv::Payload;
use super::Core;
use crate::error::ProtocolError;

/// The header of a data frame whose payload is to be read straight into its buffer, as
/// [`Core::partial_data`] decoded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataHead {
    /// The header's length on the wire.
    pub len: usize,
    /// The peer's id of the stream.
    pub sid: u32,
    /// The payload's length.
    pub payload: usize,
}

impl<W: Default> Core<W> {
    /// If `input` (what [`Core::handle_input`] left unread: never a whole frame) starts with the
    /// header of a data frame whose payload has at least `min` bytes, not all of them in
    /// `input`: that header. A payload larger than a receive chunk (half the window, when that is
    /// under 128 KiB) is not read straight: its buffer would take more than a stream may hold.
    /// Nor is a frame that waits for the application to accept (`hold.rs`): it stays in `input`,
    /// and reading pauses.
    pub fn partial_data(&mut self, input: &[u8], min: usize) -> Option<DataHead> {
        let (len, sid, payload) = self.wire.data_header(input)?;
        if payload < min || payload > self.recv_pool.max_chunk() || input.len() >= len + payload {
            return None;
        }
        (!self.holds_back_data(sid)).then_some(DataHead { len, sid, payload })
    }

    /// A buffer of exactly `len` bytes to read a payload into (recycled from the streams' buffers:
    /// what it holds is to be overwritten).
    pub fn payload_buffer(&mut self, len: usize) -> Vec<u8> {
        self.recv_pool.payload_buffer(len)
    }

    /// Handles the data frame whose header is `head` and whose payload was read into `payload`,
    /// as [`Core::handle_input`] handles the same bytes (with `handle` false, after the session
    /// ended, it is only skipped); the payload is kept as it is, not copied.
    ///
    /// # Panics
    /// If `payload` is not as long as `head` announced (the caller got `head` from
    /// [`Core::partial_data`]).
    #[must_use = "a protocol error must end the session"]
    pub fn handle_data(
        &mut self,
        head: DataHead,
        payload: Vec<u8>,
        handle: bool,
    ) -> Result<(), ProtocolError> {
        assert_eq!(head.payload, payload.len(), "the frame as announced");
        let payload = Payload::Owned(payload);
        if !handle {
            self.recv_pool.recycle(payload);
            return Ok(());
        }
        self.counters.frames_in += 1;
        trace_event!(
            debug,
            stream = head.sid,
            bytes = head.payload,
            "frame in (payload read directly)"
        );
        self.on_data(head.sid, payload)
    }
}
