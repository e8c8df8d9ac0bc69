//! Frames from the peer: what each one does to the core. Every error is a protocol violation
//! that ends the session.

use super::extension::{ExtVrm, ACCEPT};
use super::open_credit::{self, OpenCredit};
use super::recv::Payload;
use super::wire::{Frame, Wire};
use super::{Core, Event, StreamKey, MAX_VRM_ANSWERS};
use crate::error::ProtocolError;
use crate::frame::{vrm_answer, Header};

impl<W: Default> Core<W> {
    /// Handles every whole frame at the start of `input` (with `handle` false, after the session
    /// ended, only skips them) and returns the bytes they took; a partial frame at the end is
    /// left, and so is, on xtaci's wire, everything from a frame that waits for the application
    /// to accept (`hold.rs`: reading pauses until it fits). A detecting server first learns its
    /// wire from the first byte. An error is a protocol violation: the session must end.
    #[must_use = "a protocol error must end the session"]
    pub fn handle_input(&mut self, input: &[u8], handle: bool) -> Result<usize, ProtocolError> {
        if matches!(self.wire, Wire::Detect) {
            let Some(&first) = input.first() else {
                return Ok(0);
            };
            self.wire = Wire::detect(first)?;
            self.fit_limits();
            self.events.push(Event::Released); // opens waiting for the wire may go on
        }
        self.held = None;
        let mut at = 0;
        while let Some((frame, len)) = self.wire.decode(&input[at..])? {
            if handle {
                if self.holds_back(&frame) {
                    break;
                }
                self.handle(frame)?;
            }
            at += len;
        }
        Ok(at)
    }

    /// Handles one frame of yddeng's wire. `payload` is the PSH payload (empty for other
    /// commands).
    #[must_use = "a protocol error must end the session"]
    #[cfg_attr(not(any(test, feature = "fuzzing")), allow(dead_code))]
    pub fn handle_frame(&mut self, h: Header, payload: &[u8]) -> Result<(), ProtocolError> {
        let mut bytes = h.encode().to_vec();
        bytes.extend_from_slice(payload);
        let used = self.handle_input(&bytes, true)?;
        debug_assert_eq!(used, bytes.len(), "a whole frame");
        Ok(())
    }

    fn handle(&mut self, frame: Frame<'_>) -> Result<(), ProtocolError> {
        self.counters.frames_in += 1;
        trace_event!(debug, frame = ?frame.summary(), "frame in");
        match frame {
            Frame::Syn(sid) => self.on_syn(sid)?,
            Frame::Fin(sid) => {
                // A FIN for an id with no stream is ignored.
                if let Some(key) = self.key_of_wire(sid) {
                    self.heard_about(key);
                    let handshake = self.wire.fin_handshake();
                    let owed = self.live(key).peer_fin(handshake);
                    self.settle(key, owed);
                }
            }
            Frame::Psh(sid, payload) => self.on_data(sid, Payload::Borrowed(payload))?,
            Frame::Cfm(sid, n) => {
                if let Some(key) = self.key_of_wire(sid) {
                    self.heard_about(key);
                    self.on_cfm(key, sid, n)?;
                }
            }
            Frame::Upd { sid, read, window } => {
                if let Some(key) = self.key_of_wire(sid) {
                    let id = self.live(key).id;
                    let in_flight = self
                        .wire
                        .in_flight(id, read)
                        .ok_or(ProtocolError::ReadBeyondSent { stream: sid })?;
                    if self.live(key).send_credit.update(in_flight, window) {
                        self.events.push(Event::Writable(key));
                    }
                }
            }
            Frame::Vrm(h) => self.on_vrm(h)?,
            Frame::Pin => self.on_pin(),
            Frame::Nop => self.on_nop(),
        }
        Ok(())
    }

    /// A SYN opens a stream. On yddeng's wire the id is the peer's (id 0 included: the newest
    /// original's first stream is id 0, docs/PROTOCOL.md 10; this side never allocates it), and
    /// a SYN for an id in use means both sides opened it at once: both ends share the one stream.
    /// On xtaci's the stream gets an id of the core's; a SYN again for a live id is ignored, and
    /// one with this side's parity is an error.
    fn on_syn(&mut self, sid: u32) -> Result<(), ProtocolError> {
        self.open_grant.syn_received();
        if self.key_of_wire(sid).is_some() {
            return Ok(());
        }
        if !self.wire.peer_may_open(sid) {
            return Err(ProtocolError::WrongParity { stream: sid });
        }
        let id = match self.wire.shared_id(sid) {
            Some(id) => {
                self.ids.insert(id);
                id
            }
            None => match self.ids.allocate() {
                Some(id) => id,
                None => {
                    // Every id of the core's is in use (xtaci): refused without a stream.
                    self.counters.refused += 1;
                    self.wire.put_refusal(&mut self.out, sid);
                    self.counters.frames_out += 1;
                    return Ok(());
                }
            },
        };
        self.wire.bind(sid, id);
        // (On xtaci's wire a full backlog pauses reading instead; a backlog of 0 refuses all.)
        let full = self.backlog.len() >= self.limits.backlog && !self.backlog_pauses();
        if self.refusing || full {
            // Refuse: close it at once (on yddeng's wire the id stays in use until the peer's
            // FIN comes back).
            self.counters.refused += 1;
            trace_event!(
                debug,
                stream = sid,
                shutting_down = self.refusing,
                "stream refused: the accept backlog is full or the session is shutting down"
            );
            let key = self.insert_stream(id, false);
            self.say_refused(id);
            let handshake = self.wire.fin_handshake();
            let owed = self.live(key).close(handshake);
            self.settle(key, owed);
            return Ok(());
        }
        let key = self.insert_stream(id, true);
        self.live(key).unclaimed = true;
        self.budget.add(Self::STREAM_COST);
        self.backlog.push_back(key);
        self.events.push(Event::Incoming);
        self.enforce_budget();
        Ok(())
    }

    /// A data frame for the peer's id `sid`, its payload copied or kept
    /// (`Core::handle_data`): data for an id with no stream is read and discarded.
    pub(super) fn on_data(&mut self, sid: u32, payload: Payload<'_>) -> Result<(), ProtocolError> {
        match self.key_of_wire(sid) {
            Some(key) => {
                self.heard_about(key);
                self.on_psh(key, sid, payload)
            }
            None => {
                self.recv_pool.recycle(payload);
                Ok(())
            }
        }
    }

    fn on_psh(
        &mut self,
        key: StreamKey,
        sid: u32,
        payload: Payload<'_>,
    ) -> Result<(), ProtocolError> {
        let flow_controlled = self.wire.flow_controlled();
        let window = self.limits.window as usize;
        let s = self.streams.get_mut(key).expect("a live stream");
        if !s.state().receiving() {
            // We closed it (the peer had not seen our FIN yet), or it finished.
            self.recv_pool.recycle(payload);
            return Ok(());
        }
        let n = payload.len() as u32;
        if flow_controlled && s.window.receive(n).is_err() {
            return Err(ProtocolError::WindowExceeded {
                stream: sid,
                window: s.window.window(),
            });
        }
        if n > 0 {
            if s.unclaimed {
                let before = s.recv.capacity();
                s.recv.append(payload, &mut self.recv_pool);
                self.budget.add(s.recv.capacity() - before);
            } else {
                s.recv.append(payload, &mut self.recv_pool);
            }
            if !flow_controlled && s.recv.len() > window {
                // No window on the wire (xtaci v1): past one, reading the transport pauses.
                self.over_window.join(&mut s.listed);
            }
            self.events.push(Event::Readable(key));
            if self.budget.exceeded() {
                self.enforce_budget();
            }
        }
        Ok(())
    }

    /// A CFM for more than this side has outstanding can only be late: the original sends CFMs
    /// after its FIN answer, for a stream whose id may have been reused since (docs/PROTOCOL.md
    /// 9). It is stale, and ignored: it never gives credit beyond the window. With a peer of this
    /// crate that agreed to window growth, a CFM is credit, and more than outstanding is a grant.
    fn on_cfm(&mut self, key: StreamKey, sid: u32, n: u32) -> Result<(), ProtocolError> {
        let cap = (!self.extension.active()).then_some(self.limits.window);
        let s = self.streams.get_mut(key).expect("a live stream");
        let credited = s
            .send_credit
            .confirm(n, cap)
            .map_err(|_| ProtocolError::CreditOverflow { stream: sid })?;
        if credited {
            self.events.push(Event::Writable(key));
        }
        Ok(())
    }

    /// A VRM is a probe to answer, unless it is the answer to our own probe, or the peer
    /// answering one of our answers: a session answers any VRM that is not the answer to its own
    /// ping, so without this check one stray answer (say, of an `is_smux` probe cancelled after
    /// it was written) would bounce between two sessions of this crate for ever.
    fn on_vrm(&mut self, h: Header) -> Result<(), ProtocolError> {
        match self.extension.on_vrm(h, self.now_us, self.server) {
            ExtVrm::Answered => return Ok(()),
            ExtVrm::Reflected => return Err(ProtocolError::OfferReflected),
            ExtVrm::Accept => {
                // Straight into the output, ahead of any confirm that grants beyond the base.
                self.out.extend_from_slice(&ACCEPT.encode());
                self.counters.frames_out += 1;
                // The client is this crate: it grants opens, and is granted them.
                self.open_credit.peer_is_ours();
                self.grant_opens();
                return Ok(());
            }
            ExtVrm::Declined => {
                // The original answered the offer: it never refuses a stream.
                self.change_open_credit(OpenCredit::peer_is_not_ours);
                return Ok(());
            }
            ExtVrm::Refused(sid) => {
                if let Some(key) = self.key_of_wire(sid) {
                    let owed = self.live(key).refused();
                    self.settle(key, owed);
                }
                return Ok(());
            }
            ExtVrm::Grant(total) => {
                self.change_open_credit(|c| c.grant(total));
                return Ok(());
            }
            ExtVrm::Agreed => {
                self.open_credit.peer_is_ours();
                self.grant_opens();
                // Tell the server the round trip, measured ahead of any data; and probe once
                // more, as the first exchange ran while the session started (buffers, threads, a
                // driver not yet polled) and may have been slow.
                if let Some(report) = self.extension.report() {
                    self.out.extend_from_slice(&report.encode());
                    self.counters.frames_out += 1;
                }
                let _ = self.ping(ACCEPT.sid, self.now_us);
            }
            ExtVrm::Other => {}
        }
        if self.ping == Some(h) {
            // The answer to our own probe: recognised, not answered.
            self.ping = None;
            self.extension
                .sample(self.now_us.wrapping_sub(self.ping_at));
            self.events.push(Event::Pong);
        } else if let Some(i) = self.bounces.iter().position(|b| *b == Some(h)) {
            self.bounces[i] = None; // the answer to our answer: the exchange ends here
        } else if self.vrm_answers.len() < MAX_VRM_ANSWERS {
            let answer = vrm_answer(h.sid, h.len);
            self.vrm_answers.push(answer);
            self.bounces[self.next_bounce] = Some(vrm_answer(answer.sid, answer.len));
            self.next_bounce = (self.next_bounce + 1) % self.bounces.len();
        }
        Ok(())
    }

    /// A frame about the stream arrived: before the answer to our offer, it may say the peer is
    /// not this crate (`open_credit.rs`).
    fn heard_about(&mut self, key: StreamKey) {
        if !self.open_credit.awaits_answer() {
            return; // every frame but the first few of a client's session
        }
        let id = self.live(key).id;
        self.change_open_credit(|c| c.heard_about(id));
    }

    /// Changes the open credit; waiting opens are told of the room that made, as far as the
    /// other limits (the stream limit, free ids) let them use it: a grant wakes no open that
    /// waits for something else.
    fn change_open_credit(&mut self, change: impl FnOnce(&mut OpenCredit)) {
        let before = self.open_room();
        change(&mut self.open_credit);
        let more = self.open_room().saturating_sub(before);
        if more > 0 {
            self.events
                .push(Event::Room(more.min(u32::MAX as usize) as u32));
        }
    }

    /// Tells a peer of this crate that its stream `id` is refused (its FIN follows).
    pub(super) fn say_refused(&mut self, id: u16) {
        if self.extension.active() {
            let h = Header::new(
                crate::frame::Cmd::Vrm,
                open_credit::REFUSED_SID,
                u32::from(id),
            );
            self.out.extend_from_slice(&h.encode());
            self.counters.frames_out += 1;
        }
    }

    /// Tells a peer of this crate (one that agreed to the extension) how many streams it may
    /// open, when that moved enough (`open_credit.rs`).
    pub(super) fn grant_opens(&mut self) {
        if !self.extension.active() {
            return;
        }
        if let Some(grant) = self.open_grant.due(self.backlog.len()) {
            self.out.extend_from_slice(&grant.encode());
            self.counters.frames_out += 1;
        }
    }

    /// The newest original's keepalive (docs/PROTOCOL.md 10): it closes a session in which it has
    /// received no PIN for 100 s, and never answers one. So this side answers a PIN with one,
    /// unless it has sent one since the last it received: a PIN that may be the answer to ours
    /// goes unanswered, and two sessions of this crate never bounce PINs. It sends a PIN only in
    /// answer, never to a peer that has not sent one (the founding document's version closes the
    /// session on it).
    fn on_pin(&mut self) {
        if self.pin_sent {
            self.pin_sent = false;
        } else {
            self.pin_sent = true;
            if self.wire.put_keepalive(&mut self.out) {
                self.counters.frames_out += 1;
            }
        }
    }

    /// xtaci's keepalive: Go sends a NOP every 10 s and closes a session that heard no frame for
    /// 30 s, and never answers one. This side answers a NOP with one unless it has sent any frame
    /// since the last NOP it got, or answered that one: an idle Go peer hears from it at least
    /// every other NOP (20 s with Go's defaults), and two sessions of this crate never ping-pong
    /// (the side that sent a NOP has sent a frame since; of two NOPs in a row, one is answered).
    fn on_nop(&mut self) {
        let quiet = self.counters.frames_out == self.frames_out_at_nop;
        self.nop_answered = quiet && !self.nop_answered;
        if self.nop_answered && self.wire.put_keepalive(&mut self.out) {
            self.counters.frames_out += 1;
        }
        self.frames_out_at_nop = self.counters.frames_out;
    }
}
