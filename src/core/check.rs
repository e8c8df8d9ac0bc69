//! Every rule of the core at once, as a walk over its state: run after every step of the property
//! tests (`tests/props.rs`) and of the fuzz targets. The rules a single type keeps are debug
//! assertions in that type (`flow.rs`, `budget.rs`, `queue.rs`); these are the ones that tie
//! several together.

use std::collections::HashSet;

use super::wire::{Frame, Wire};
use super::Core;

impl<W: Default> Core<W> {
    /// Says which rule, if any, no longer holds:
    /// - no two streams hold one id, and the ids in use are exactly those the streams hold;
    /// - a stream's credit stays within the window unless window growth was agreed; what it holds
    ///   (unread plus what the peer may still send) stays within its window and the growth it is
    ///   charged for, and the charges add up to what the growth budget counts, within it;
    /// - a stream that holds no id is kept only while a handle refers to it;
    /// - the output queue holds at most the write buffer and one data frame beyond it, besides
    ///   control frames;
    /// - the budget counts exactly what the streams in the accept backlog hold, and that stays
    ///   within the budget (on xtaci's wire, which pauses reading, within one frame past it, and
    ///   the backlog within its bound);
    /// - only open streams contend for room, and the contenders are counted right;
    /// - no stream's flush position lies beyond what was queued; no list holds a stream twice.
    pub fn check_invariants(&self) -> Result<(), String> {
        let window = self.limits.window;
        let max_window = self.limits.max_window.max(window);
        let grows = self.extension.active();
        // A wire without flow control (xtaci v1) has no windows to keep.
        let windows = self.wire.flow_controlled();
        let mut ids = HashSet::new();
        let (mut unclaimed, mut charged, mut contending) = (0, 0usize, 0);
        let out_pos = self.out_pos();
        for key in self.streams.keys() {
            let s = self.streams.get(key).ok_or("keys() listed a dead key")?;
            let id = s.id;
            if s.unclaimed {
                unclaimed += Self::STREAM_COST + s.recv.capacity();
                if !s.has_handle {
                    return Err(format!("stream {id} is unclaimed but not in the backlog"));
                }
            }
            if windows && !grows && s.send_credit.get() > window {
                return Err(format!(
                    "stream {id}: send credit {} > window {window} without window growth",
                    s.send_credit.get()
                ));
            }
            let held = s.recv.len() as u64 + u64::from(s.window.credit());
            let limit = if grows { max_window } else { window };
            let w = s.window.window();
            if windows
                && s.state().receiving()
                && (held > u64::from(window) + u64::from(s.window.charged())
                    || w > limit
                    || w < window)
            {
                return Err(format!(
                    "stream {id}: buffered {} + credit {} / window {w} / charged {} / limit {limit}",
                    s.recv.len(),
                    s.window.credit(),
                    s.window.charged()
                ));
            }
            charged += s.window.charged() as usize;
            if windows && s.recv.capacity() > 2 * (window + s.window.charged()) as usize + 64 {
                return Err(format!(
                    "stream {id}: buffer capacity {} for window {w}",
                    s.recv.capacity()
                ));
            }
            if s.state().holds_id() {
                if !ids.insert(id) {
                    return Err(format!("two streams hold id {id}"));
                }
            } else if !s.has_handle {
                return Err(format!(
                    "stream {id} ({:?}) holds no id and has no handle, yet is kept",
                    s.state()
                ));
            }
            if s.listed.contending() {
                contending += 1;
                if !s.state().writable() {
                    return Err(format!(
                        "stream {id} ({:?}) still contends for the queue",
                        s.state()
                    ));
                }
            }
            if s.last_queued > out_pos {
                return Err(format!("stream {id}: flush position beyond the queue"));
            }
        }
        self.confirm_list.check(&self.streams, "confirm")?;
        self.queue_waiters.check(&self.streams, "room")?;
        self.flush_waiters.check(&self.streams, "flush")?;
        if contending != self.contenders.count() {
            return Err(format!(
                "{contending} streams contend, {} counted",
                self.contenders.count()
            ));
        }
        if charged != self.growth.held() {
            return Err(format!(
                "streams are charged {charged} bytes of growth, the budget counts {}",
                self.growth.held()
            ));
        }
        if charged > self.limits.budget {
            return Err(format!(
                "growth of {charged} bytes beyond the budget of {}",
                self.limits.budget
            ));
        }
        if unclaimed != self.budget.held() {
            return Err(format!(
                "the budget counts {} bytes, the backlog's streams hold {unclaimed}",
                self.budget.held()
            ));
        }
        // Past the budget, one stream is kept (refusing the first is pointless); on xtaci's wire,
        // which pauses rather than refuse, the frame that crossed it (`hold.rs`).
        let frame = if self.backlog_pauses() {
            self.wire.max_payload() as usize + self.recv_pool.max_chunk()
        } else {
            0
        };
        let allowed = self
            .limits
            .budget
            .max(Self::STREAM_COST)
            .saturating_add(frame);
        if unclaimed > allowed {
            return Err(format!(
                "the backlog holds {unclaimed} bytes, over the budget of {}",
                self.limits.budget
            ));
        }
        if self.backlog_pauses() && self.backlog.len() > self.limits.backlog {
            return Err(format!(
                "{} streams wait in a backlog of {}, which pauses reading",
                self.backlog.len(),
                self.limits.backlog
            ));
        }
        if ids.len() != self.num_streams() {
            return Err(format!(
                "{} ids in use, {} streams hold one",
                self.num_streams(),
                ids.len()
            ));
        }
        let data = data_bytes(&self.wire, &self.out)?;
        let header = crate::frame::xtaci::HEADER_LEN; // the longer of the two wires'
        let bound = self.limits.write_buffer + header + self.limits.max_frame as usize;
        if data > bound {
            return Err(format!("{data} bytes of data queued > bound {bound}"));
        }
        Ok(())
    }
}

/// The bytes of PSH frames (headers included) in `out`, which must hold whole frames only.
fn data_bytes(wire: &Wire, out: &[u8]) -> Result<usize, String> {
    let (mut data, mut at) = (0, 0);
    while at < out.len() {
        let (frame, len) = wire
            .decode(&out[at..])
            .map_err(|e| format!("output frame does not decode: {e}"))?
            .ok_or("a cut frame in the output")?;
        if let Frame::Psh(..) = frame {
            data += len;
        }
        at += len;
    }
    Ok(data)
}
