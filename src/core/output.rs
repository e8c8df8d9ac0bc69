//! What the core hands the transport: frames queued in order, confirms coalesced at the last
//! moment, probes; and who waits for room in that queue or for a flush of it.

use super::budget::Budget;
use super::extension::{self, Sample};
use super::stream_state::StreamState;
use super::{Core, Event, Limits, StreamKey};
use crate::frame::{vrm_answer, Cmd, Header};

impl<W: Default> Core<W> {
    /// Queues a VRM probe unless one is already out; its answer produces [`Event::Pong`].
    /// Returns the probe sent, or `None` if the outstanding one will answer for this one too
    /// (one probe at a time, so that two sessions never answer each other's answers).
    /// On xtaci's wire, which has no probe, a NOP goes out instead (answered by a peer of this
    /// crate only, and never recognised as an answer): the keepalive's sign of life.
    pub fn ping(&mut self, v1: u16, v2: u32) -> Option<Header> {
        if !self.wire.probes() {
            if self.wire.put_keepalive(&mut self.out) {
                self.counters.frames_out += 1;
            }
            return None;
        }
        if self.ping.is_some() {
            return None;
        }
        let probe = Header::new(Cmd::Vrm, v1, v2);
        self.ping = Some(vrm_answer(v1, v2));
        self.ping_at = self.now_us;
        self.out.extend_from_slice(&probe.encode());
        self.counters.frames_out += 1;
        Some(probe)
    }

    /// Moves everything queued for the transport into `into` (which must be empty), first adding
    /// the coalesced confirms and the VRM answers; wakes (by events) the writers waiting for room.
    pub fn take_output(&mut self, into: &mut Vec<u8>) {
        debug_assert!(into.is_empty());
        let growth_rtt = self.extension.growth_rtt();
        while let Some(key) = self.confirm_list.pop(&mut self.streams) {
            let s = self.streams.get_mut(key).expect("popped streams are live");
            if !s.state().receiving() {
                continue;
            }
            if let Some(rtt) = growth_rtt {
                resize_window(s, rtt, self.now_us, &self.limits, &mut self.growth);
            }
            let n = s.window.grant(s.recv.len());
            if n > 0
                && self
                    .wire
                    .put_credit(&mut self.out, s.id, n, s.window.window())
            {
                self.counters.frames_out += 1;
            }
        }
        self.recv_pool.set_growth(self.growth.held());
        for h in self.vrm_answers.drain(..) {
            self.out.extend_from_slice(&h.encode());
            self.counters.frames_out += 1;
        }
        self.extension.output_taken(self.now_us);
        self.out_base += self.out.len() as u64;
        self.batches = self.batches.wrapping_add(1);
        std::mem::swap(&mut self.out, into);
        // A contender woken last time that has neither written nor waited again since was
        // abandoned (its write was cancelled): it no longer holds the others back.
        for key in self.woken_contenders.drain(..) {
            if let Some(s) = self.streams.get_mut(key) {
                if !s.listed.waits_for_room() {
                    self.contenders.leave(&mut s.listed);
                }
            }
        }
        // Wake the writers waiting for room, oldest first, about as many as the queue takes:
        // waking thousands to let ten in costs more than it moves, as each runs, finds the room
        // taken and waits again, and the next batch wakes them all again. While a batch woken
        // when nothing was queued has not had its turn, another take that finds nothing queued
        // wakes nobody more. None may sleep while room is free, though, and a writer woken may
        // never write (its write was abandoned): see `room_recheck`.
        let batch = self.limits.write_buffer / self.limits.max_frame as usize + 2;
        let wake = if into.is_empty() && self.room_recheck {
            0
        } else {
            batch
        };
        self.wake_room_waiters(wake);
        self.room_recheck = into.is_empty() && !self.queue_waiters.is_empty();
    }

    /// Wakes up to `n` writers waiting for room, oldest first.
    fn wake_room_waiters(&mut self, n: usize) {
        for _ in 0..n {
            let Some(key) = self.queue_waiters.pop(&mut self.streams) else {
                break;
            };
            if self.live(key).listed.contending() {
                self.woken_contenders.push(key);
            }
            self.events.push(Event::Writable(key));
        }
    }

    /// Whether a take found nothing queued, woke a batch of the writers waiting for room, and
    /// more wait: the driver must then not sleep until those writers write (they may never), but
    /// give them a turn and come back to [`Core::room_rechecked`].
    pub fn room_recheck(&self) -> bool {
        self.room_recheck
    }

    /// The driver is back after giving the tasks it woke a turn. If a batch of writers was woken
    /// for room with nothing queued and they have queued nothing since, they may never write:
    /// every writer still waiting for room is woken, so that none sleeps while room is free.
    pub fn room_rechecked(&mut self) {
        if std::mem::take(&mut self.room_recheck) && self.out.is_empty() {
            self.wake_room_waiters(usize::MAX);
        }
    }

    /// Whether writers wait for room in the output queue.
    pub fn has_queue_waiters(&self) -> bool {
        !self.queue_waiters.is_empty()
    }

    /// Frees the output queue's memory if it is empty and larger than `keep`.
    pub(crate) fn shrink_output(&mut self, keep: usize) {
        if self.out.is_empty() && self.out.capacity() > keep {
            self.out = Vec::new();
        }
    }

    /// Whether anything waits to be taken by [`Core::take_output`].
    pub fn has_output(&self) -> bool {
        !self.out.is_empty() || !self.confirm_list.is_empty() || !self.vrm_answers.is_empty()
    }

    /// Bytes queued and not yet taken.
    pub fn queued_len(&self) -> usize {
        self.out.len()
    }

    /// The output position just after everything queued so far.
    pub fn out_pos(&self) -> u64 {
        self.out_base + self.out.len() as u64
    }

    // ----- flushing (the I/O shell's, kept here with the positions it is about) -----

    /// Lists the stream as waiting until what it queued is flushed (once).
    pub(crate) fn wait_flush(&mut self, key: StreamKey) {
        if let Some(s) = self.streams.get_mut(key) {
            self.flush_waiters.push(key, s);
        }
    }

    /// Whether a stream waits for a flush.
    pub(crate) fn has_flush_waiters(&self) -> bool {
        !self.flush_waiters.is_empty()
    }

    /// Everything up to output position `pos` is written and flushed: the streams whose flushes
    /// are now complete become writable.
    pub(crate) fn flushed_to(&mut self, pos: u64) {
        let events = &mut self.events;
        self.flush_waiters.take_done(&mut self.streams, |k, s| {
            let done = s.last_queued <= pos;
            if done {
                events.push(Event::Writable(k));
            }
            done
        });
    }

    /// Nobody waits for a flush any more (the session is over; everyone is woken anyway).
    pub(crate) fn forget_flush_waiters(&mut self) {
        self.flush_waiters.take_done(&mut self.streams, |_, _| true);
    }
}

/// Grows or shrinks a stream's window before a confirm, within the maximum and the growth budget
/// (`extension.rs`). The read rate is measured over periods of at least a round trip: a burst
/// read in microseconds says nothing of the path.
fn resize_window<W>(
    s: &mut StreamState<W>,
    rtt_us: u32,
    now_us: u32,
    l: &Limits,
    growth: &mut Budget,
) {
    s.period_read = s.period_read.saturating_add(s.grantable());
    let sample = Sample {
        window: s.window.window(),
        unread: s.recv.len() as u32,
        read: s.period_read,
        elapsed_us: now_us.wrapping_sub(s.period_at),
    };
    if sample.elapsed_us >= rtt_us {
        s.period_at = now_us;
        s.period_read = 0;
    }
    let next = extension::next_window(sample, rtt_us, l.window, l.max_window);
    s.window.resize(next, s.recv.len(), l.window, growth);
}
