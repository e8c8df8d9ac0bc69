//! Room to open streams, between two ends of this crate: the receiver of streams tells the opener
//! how many it may open, so that an honest burst of opens waits in `open` instead of being
//! refused at the receiver's accept backlog (docs/PROTOCOL.md 11, "Open credit").
//!
//! Both ends count SYNs from the session's start (wrapping `u32`): the opener those it sent, the
//! receiver those it received (a SYN for an id in use included: both count it). The receiver
//! grants `received - waiting + room` in all, where `waiting` is how many streams wait in its
//! accept backlog and `room` how many may wait there: the accept backlog, and what the memory
//! budget holds even if every waiting stream fills its window. An opener may open while it has
//! sent fewer SYNs than granted, so it never has more than `room` streams waiting at the
//! receiver, and the receiver never refuses it.
//!
//! Until the first grant arrives, an opener assumes [`INITIAL_ROOM`]; against a peer that is not
//! this crate (the Go package never refuses a stream: it stops reading instead) there is no limit.
//! A grant is `VRM(0x7975, total)`, sent only to a peer that agreed to the extension. A stream
//! that is refused all the same (the receiver shuts down, or a small backlog met the initial
//! room) gets `VRM(0x7976, id)` ahead of its FIN, so that its opener reports a refusal.

use crate::frame::{Cmd, Header};

/// The id field of a grant: `VRM(GRANT_SID, total SYNs the opener may have sent)`.
pub(crate) const GRANT_SID: u16 = 0x7975;
/// The id field of a refusal: `VRM(REFUSED_SID, stream id)`, just ahead of the refused stream's
/// FIN, so that the opener can tell a refusal from a close.
pub(crate) const REFUSED_SID: u16 = 0x7976;
/// How many streams an opener assumes it may have waiting at a receiver of this crate before the
/// receiver's first grant arrives (within the default accept backlog and memory budget).
pub(crate) const INITIAL_ROOM: u32 = 16;

/// `a - b` as a signed distance on the wrapping counter.
fn ahead(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

/// The opener's side: what it may open.
#[derive(Debug)]
pub(crate) struct OpenCredit {
    /// SYNs sent.
    opened: u32,
    /// What `opened` may reach; `None`: no limit (the peer is not this crate, or not known to be).
    limit: Option<u32>,
    /// A grant has arrived: from now on `limit` only rises.
    granted: bool,
    /// A client before the answer to its offer: the streams it opened since (at most
    /// [`INITIAL_ROOM`]). A peer of this crate answers the offer before it sends any frame about
    /// them; a frame about one of them first says the peer is not this crate (one that does not
    /// answer probes at all), and the limit goes, so that no open waits for a grant that never
    /// comes.
    unconfirmed: Option<Vec<u16>>,
}

impl OpenCredit {
    /// No limit: the peer is not known to be this crate.
    pub(crate) fn unlimited() -> Self {
        OpenCredit {
            opened: 0,
            limit: None,
            granted: false,
            unconfirmed: None,
        }
    }

    /// The peer is this crate: until it grants, assume [`INITIAL_ROOM`].
    pub(crate) fn peer_is_ours(&mut self) {
        self.unconfirmed = None;
        if self.limit.is_none() && !self.granted {
            self.limit = Some(INITIAL_ROOM);
        }
    }

    /// A client offered the extension: the peer may be this crate. Until the answer, assume it
    /// is.
    pub(crate) fn assume_ours(&mut self) {
        self.peer_is_ours();
        self.unconfirmed = Some(Vec::new());
    }

    /// The peer is not this crate: no limit.
    pub(crate) fn peer_is_not_ours(&mut self) {
        self.limit = None;
        self.granted = false;
        self.unconfirmed = None;
    }

    /// A client waits for the answer to its offer (see `unconfirmed`): only then can a frame
    /// about a stream change anything.
    pub(crate) fn awaits_answer(&self) -> bool {
        self.unconfirmed.is_some()
    }

    /// A frame about stream `id` arrived (data, a confirm, a FIN): before the answer to the
    /// offer, that lifts the limit (see `unconfirmed`).
    pub(crate) fn heard_about(&mut self, id: u16) {
        if self
            .unconfirmed
            .as_ref()
            .is_some_and(|ids| ids.contains(&id))
        {
            self.peer_is_not_ours();
        }
    }

    /// How many more streams may be opened, with `reserved` opens promised already
    /// (`usize::MAX`: no limit).
    pub(crate) fn room(&self, reserved: usize) -> usize {
        self.limit.map_or(usize::MAX, |l| {
            (ahead(l, self.opened) - reserved as i64).max(0) as usize
        })
    }

    /// The SYN of stream `id` went out.
    pub(crate) fn opened(&mut self, id: u16) {
        self.opened = self.opened.wrapping_add(1);
        if let Some(ids) = &mut self.unconfirmed {
            ids.push(id);
        }
    }

    /// The peer granted `total`. The first grant sets the limit (it may be below
    /// [`INITIAL_ROOM`]: the peer's backlog is smaller); later ones only raise it.
    pub(crate) fn grant(&mut self, total: u32) {
        let Some(before) = self.limit else {
            return; // no limit: a grant changes nothing
        };
        if !self.granted || ahead(total, before) > 0 {
            self.limit = Some(total);
        }
        self.granted = true;
    }
}

/// The receiver's side: what it lets the peer open.
#[derive(Debug)]
pub(crate) struct OpenGrant {
    /// SYNs received.
    received: u32,
    /// How many streams may wait in the backlog.
    room: u32,
    /// The last grant sent; `None` before the first.
    sent: Option<u32>,
}

impl OpenGrant {
    /// `room`: streams that may wait in the accept backlog (at least 1).
    pub(crate) fn new(room: u32) -> Self {
        OpenGrant {
            received: 0,
            room: room.max(1),
            sent: None,
        }
    }

    /// The room for a backlog of `backlog` streams and a memory budget of `budget` bytes, with
    /// streams of `window` bytes whose buffers take at most twice that, and `stream_cost` bytes
    /// of state each.
    pub(crate) fn room_for(backlog: usize, budget: usize, window: u32, stream_cost: usize) -> u32 {
        let per_stream = 2 * window as usize + stream_cost;
        let by_budget = budget / per_stream.max(1);
        backlog.min(by_budget).clamp(1, u32::MAX as usize) as u32
    }

    /// A SYN arrived.
    pub(crate) fn syn_received(&mut self) {
        self.received = self.received.wrapping_add(1);
    }

    /// The grant to send now to a peer of this crate (only to one: the caller knows), if one is
    /// due, with `waiting` streams in the backlog: the first, and then whenever the grant moved by
    /// a quarter of the room (an opener that used all its room hears again once the backlog is
    /// down to three quarters of it).
    pub(crate) fn due(&mut self, waiting: usize) -> Option<Header> {
        let waiting = waiting.min(self.room as usize) as u32;
        let total = self.received.wrapping_sub(waiting).wrapping_add(self.room);
        let step = i64::from((self.room / 4).max(1));
        if self.sent.is_some_and(|s| ahead(total, s) < step) {
            return None;
        }
        self.sent = Some(total);
        Some(Header::new(Cmd::Vrm, GRANT_SID, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn may_open(c: &OpenCredit, reserved: usize) -> bool {
        c.room(reserved) > 0
    }

    impl OpenCredit {
        fn assumed() -> Self {
            let mut credit = Self::unlimited();
            credit.assume_ours();
            credit
        }
    }

    #[test]
    fn an_opener_waits_at_its_grant_and_goes_on_when_it_rises() {
        let mut c = OpenCredit::assumed();
        for _ in 0..INITIAL_ROOM {
            assert!(may_open(&c, 0));
            c.opened(1);
        }
        assert!(!may_open(&c, 0));
        c.grant(INITIAL_ROOM + 2);
        assert_eq!(c.room(0), 2);
        assert!(may_open(&c, 1));
        assert!(!may_open(&c, 2));
        // An older grant arriving late takes nothing back.
        c.grant(INITIAL_ROOM + 1);
        assert_eq!(c.room(1), 1);
        assert!(may_open(&c, 1));
    }

    #[test]
    fn the_first_grant_may_lower_the_assumed_room() {
        let mut c = OpenCredit::assumed();
        c.grant(4);
        for _ in 0..4 {
            assert!(may_open(&c, 0));
            c.opened(1);
        }
        assert!(!may_open(&c, 0));
    }

    #[test]
    fn against_a_peer_that_is_not_ours_there_is_no_limit() {
        let mut c = OpenCredit::assumed();
        c.peer_is_not_ours();
        for _ in 0..100_000 {
            c.opened(1);
        }
        assert!(may_open(&c, 1000));
        assert!(may_open(&OpenCredit::unlimited(), usize::MAX / 2));
    }

    #[test]
    fn a_frame_about_an_opened_stream_before_the_answer_lifts_the_limit() {
        let mut c = OpenCredit::assumed();
        c.opened(7);
        c.heard_about(8);
        assert!(!may_open(&c, 100));
        c.heard_about(7);
        assert!(may_open(&c, 100_000));
        // Once the peer is known to be ours, frames about streams say nothing.
        let mut c = OpenCredit::assumed();
        c.opened(7);
        c.peer_is_ours();
        c.heard_about(7);
        assert!(!may_open(&c, 100));
    }

    #[test]
    fn counters_wrap() {
        let mut c = OpenCredit::assumed();
        c.opened = u32::MAX - 1;
        c.grant(u32::MAX.wrapping_add(3));
        assert!(may_open(&c, 3));
        assert!(!may_open(&c, 4));
    }

    #[test]
    fn a_receiver_grants_first_at_once_then_in_quarters_of_its_room() {
        let mut g = OpenGrant::new(8);
        assert_eq!(g.due(0).map(|h| h.len), Some(8));
        for _ in 0..8 {
            g.syn_received();
        }
        // Eight wait: nothing more to grant.
        assert_eq!(g.due(8), None);
        // One accepted: less than a quarter of the room.
        assert_eq!(g.due(7), None);
        // Two accepted: a quarter.
        assert_eq!(g.due(6).map(|h| h.len), Some(10));
        assert_eq!(g.due(6), None);
    }

    #[test]
    fn the_room_is_what_the_budget_holds_with_every_window_full() {
        assert_eq!(OpenGrant::room_for(1024, 32 << 20, 512 << 10, 300), 31);
        assert_eq!(OpenGrant::room_for(8, 32 << 20, 512 << 10, 300), 8);
        assert_eq!(OpenGrant::room_for(1024, 64 << 10, 512 << 10, 300), 1);
    }
}
