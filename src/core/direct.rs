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

impl<W: Default> Core<W> {
    /// If `input` (what [`Core::handle_input`] left unread: never a whole frame) starts with the
    /// header of a data frame whose payload has at least `min` bytes, not all of them in
    /// `input`: the header's length and the payload's.
    pub fn partial_data(&self, input: &[u8], min: usize) -> Option<(usize, usize)> {
        let (head, _, len) = self.wire.data_header(input)?;
        (len >= min && input.len() < head + len).then_some((head, len))
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
    /// If `head` is not the header of a data frame of `payload.len()` bytes on this wire (the
    /// caller got both from [`Core::partial_data`]).
    #[must_use = "a protocol error must end the session"]
    pub fn handle_data(
        &mut self,
        head: &[u8],
        payload: Vec<u8>,
        handle: bool,
    ) -> Result<(), ProtocolError> {
        let (len, sid, payload_len) = self.wire.data_header(head).expect("a data frame's header");
        assert!(
            len == head.len() && payload_len == payload.len(),
            "the frame as announced"
        );
        let payload = Payload::Owned(payload);
        if !handle {
            self.recv_pool.recycle(payload);
            return Ok(());
        }
        self.counters.frames_in += 1;
        trace_event!(
            debug,
            stream = sid,
            bytes = payload_len,
            "frame in (payload read directly)"
        );
        self.on_data(sid, payload)
    }
}
