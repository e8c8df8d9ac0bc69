//! Window growth between two sessions of this crate: how they find each other on the wire, and
//! how a receiver sizes a stream's window to the path.
//!
//! The original's window is fixed (512 KiB) and not negotiated, so one stream moves at most one
//! window per round trip. Two sessions of this crate agree on more, in a way the original only
//! ever sees as something it already understands (docs/PROTOCOL.md 8):
//!
//! 1. At its start a client sends [`OFFER`], a VRM with fixed values. Every version of the original
//!    answers a VRM as a probe; the client recognises that answer (and does not answer it): the
//!    peer is the original, and the session stays exactly docs/PROTOCOL.md 1-10.
//! 2. A server of this crate answers [`OFFER`] with [`ACCEPT`] instead. The client answers
//!    [`ACCEPT`] as any VRM, and the server recognises that answer. Each side times its exchange:
//!    that is its round-trip estimate.
//! 3. From then on a CFM is credit: a receiver may confirm more than its application has read
//!    (it grants window beyond the base), and a sender takes a CFM for more than it has
//!    outstanding as more credit, where against the original it would be a late CFM to ignore. A
//!    server never sends unasked (a probe of the original reads the first frame it gets), and
//!    neither side grants before it has seen the other's half: the client grants only after
//!    [`ACCEPT`] arrived, which the server queued before any grant of its own.
//!
//! A receiver never lets a stream hold more than its window: what is unread plus what the sender
//! may still send. The window doubles when the stream moved at least half of it per round trip,
//! measured over periods of at least one round trip
//! (the window, not the reader, limits it), up to the configured maximum and while the session's
//! growth budget allows; it halves, down to the base, when half of it lies unread (the reader is
//! what limits the stream). A peer that claims the extension and sends beyond what was granted
//! ends the session with a protocol error, as against the original.

use super::open_credit::{GRANT_SID, REFUSED_SID};
use crate::frame::{vrm_answer, Cmd, Header};

/// The client's offer: `VRM(0x7973, 0x6D757831)` ("ys", "mux1").
pub(crate) const OFFER: Header = Header::new(Cmd::Vrm, 0x7973, 0x6D75_7831);
/// A server of this crate's answer to [`OFFER`]: `VRM(0x7973, 0x6D757832)` ("ys", "mux2").
pub(crate) const ACCEPT: Header = Header::new(Cmd::Vrm, 0x7973, 0x6D75_7832);
/// The id field of the client's report of its round trip, `VRM(0x7974, microseconds)`, sent once
/// after [`ACCEPT`]: the server's own sample comes back behind whatever the client queued at
/// once, the client's went out ahead of it.
pub(crate) const REPORT_SID: u16 = 0x7974;

/// What a VRM means to the extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExtVrm {
    /// Not the extension's: a probe or ping like any other.
    Other,
    /// The original's answer to our offer: the peer is not this crate.
    Declined,
    /// A peer of this crate lets this side open streams up to this total (`open_credit.rs`).
    Grant(u32),
    /// A peer of this crate refused the stream with this id (its FIN follows).
    Refused(u32),
    /// The answer to our own offer or acceptance: recognised, nothing to send.
    Answered,
    /// The client's offer, taken: send [`ACCEPT`] (not the usual answer).
    Accept,
    /// The server's acceptance: answer it as any VRM (the server times that answer), and probe
    /// once more for a round trip measured warm.
    Agreed,
    /// A client received the offer, which only a client sends: its own, reflected by a peer that
    /// is no multiplexer, or another client's.
    Reflected,
}

/// One side's view of the extension.
#[derive(Debug)]
pub(crate) struct Extension {
    /// Whether this side grows windows at all (a maximum window above the base).
    grows: bool,
    /// Both sides speak it: CFMs are credit.
    active: bool,
    /// The answer we wait for, and when we sent what it answers (microseconds of the core clock).
    waiting: Option<(Header, u32)>,
    /// The smallest round trip measured (the handshake, then pings), in microseconds.
    rtt_us: Option<u32>,
    /// The offer is queued and its time is taken when it is written out.
    offer_unsent: bool,
}

impl Extension {
    pub(crate) fn new(grows: bool) -> Extension {
        Extension {
            grows,
            active: false,
            waiting: None,
            rtt_us: None,
            offer_unsent: false,
        }
    }

    /// The client queues its offer: returns the frame to send first. Its round trip counts from
    /// [`Extension::output_taken`], not from now: a session may be made long before its driver
    /// first runs.
    pub(crate) fn offer(&mut self) -> Header {
        self.waiting = Some((vrm_answer(OFFER.sid, OFFER.len), 0));
        self.offer_unsent = true;
        OFFER
    }

    /// The output, the offer with it if queued, goes to the transport at `now`.
    pub(crate) fn output_taken(&mut self, now: u32) {
        if std::mem::take(&mut self.offer_unsent) {
            if let Some((_, at)) = &mut self.waiting {
                *at = now;
            }
        }
    }

    /// A round trip measured (by the handshake or a ping): the estimate is the smallest, the one
    /// least inflated by a cold start or by data queued ahead.
    pub(crate) fn sample(&mut self, rtt_us: u32) {
        let rtt = rtt_us.max(1);
        self.rtt_us = Some(self.rtt_us.map_or(rtt, |r| r.min(rtt)));
    }

    /// The smallest round trip measured so far, in microseconds.
    pub(crate) fn rtt_us(&self) -> Option<u32> {
        self.rtt_us
    }

    /// Both sides speak the extension.
    pub(crate) fn active(&self) -> bool {
        self.active
    }

    /// The client's report of its round trip, once agreed.
    pub(crate) fn report(&self) -> Option<Header> {
        self.rtt_us
            .map(|rtt| Header::new(Cmd::Vrm, REPORT_SID, rtt))
    }

    /// Whether this side may grow a stream's window now: both sides agreed, this side wants to,
    /// and the round trip is known.
    pub(crate) fn growth_rtt(&self) -> Option<u32> {
        if self.active && self.grows {
            self.rtt_us
        } else {
            None
        }
    }

    /// A VRM arrived at `now`. `server`: this side is the server.
    pub(crate) fn on_vrm(&mut self, h: Header, now: u32, server: bool) -> ExtVrm {
        if let Some((expected, at)) = self.waiting {
            if h == expected {
                // The original's answer to our offer (the session stays base), or the client's
                // answer to our acceptance (the server's round trip).
                // Either way a round trip: the session's first, which `Stats::last_rtt` shows
                // until a ping measures one (it sizes windows only once both sides agreed).
                self.waiting = None;
                self.sample(now.wrapping_sub(at));
                return if server {
                    ExtVrm::Answered
                } else {
                    ExtVrm::Declined
                };
            }
            if !server && h == ACCEPT {
                self.waiting = None;
                self.active = true;
                self.sample(now.wrapping_sub(at));
                return ExtVrm::Agreed;
            }
        }
        if server && self.active && h.cmd == Cmd::Vrm && h.sid == REPORT_SID {
            // Only a smaller estimate can come of it: a peer cannot make this side grant more.
            self.sample(h.len);
            return ExtVrm::Answered;
        }
        if self.active && h.cmd == Cmd::Vrm && h.sid == GRANT_SID {
            return ExtVrm::Grant(h.len);
        }
        if self.active && h.cmd == Cmd::Vrm && h.sid == REFUSED_SID {
            return ExtVrm::Refused(h.len);
        }
        if !server && h == OFFER {
            return ExtVrm::Reflected;
        }
        if server && h == OFFER && !self.active {
            self.active = true;
            self.waiting = Some((vrm_answer(ACCEPT.sid, ACCEPT.len), now));
            return ExtVrm::Accept;
        }
        ExtVrm::Other
    }
}

/// What a receiver knows of one stream when it is about to confirm.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    /// The stream's window now.
    pub(crate) window: u32,
    /// Bytes received and not yet read.
    pub(crate) unread: u32,
    /// Bytes read in the current measuring period.
    pub(crate) read: u32,
    /// Microseconds since the period started.
    pub(crate) elapsed_us: u32,
}

/// The window a stream should have, from `s` and the round trip, between `base` and `max`: it
/// halves when half of it lies unread; it doubles when, over a period of at least a round trip,
/// the stream moved half a window or more per round trip.
pub(crate) fn next_window(s: Sample, rtt_us: u32, base: u32, max: u32) -> u32 {
    if s.unread > s.window / 2 {
        // Half the window lies unread: the reader limits this stream, not the window.
        return (s.window / 2).max(base);
    }
    if s.elapsed_us < rtt_us {
        return s.window; // a period shorter than a round trip measures bursts, not the path
    }
    // At least half a window per round trip: the window limits this stream.
    let per_rtt = u64::from(s.read) * u64::from(rtt_us) / u64::from(s.elapsed_us.max(1));
    if per_rtt * 2 >= u64::from(s.window) {
        return s.window.saturating_mul(2).min(max).max(s.window);
    }
    s.window
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u32 = 1024;

    #[test]
    fn the_handshake_values_are_distinct_from_their_answers() {
        let offer_answer = vrm_answer(OFFER.sid, OFFER.len);
        let accept_answer = vrm_answer(ACCEPT.sid, ACCEPT.len);
        let all = [OFFER, ACCEPT, offer_answer, accept_answer];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn against_the_original_the_offer_is_answered_and_nothing_changes() {
        let mut client = Extension::new(true);
        let offer = client.offer();
        client.output_taken(0);
        assert_eq!(offer, OFFER);
        let answer = vrm_answer(OFFER.sid, OFFER.len);
        assert_eq!(client.on_vrm(answer, 40, false), ExtVrm::Declined);
        assert!(!client.active());
        assert_eq!(client.growth_rtt(), None);
        // An ACCEPT arriving later (a hostile or confused peer) is just a probe.
        assert_eq!(client.on_vrm(ACCEPT, 50, false), ExtVrm::Other);
        assert!(!client.active());
    }

    #[test]
    fn two_sides_of_this_crate_agree_and_each_measures_the_round_trip() {
        let mut client = Extension::new(true);
        let mut server = Extension::new(true);
        let offer = client.offer();
        client.output_taken(1_000);
        assert_eq!(server.on_vrm(offer, 1_020, true), ExtVrm::Accept);
        assert!(server.active());
        assert_eq!(
            server.growth_rtt(),
            None,
            "the server has no round trip yet"
        );
        assert_eq!(client.on_vrm(ACCEPT, 1_040, false), ExtVrm::Agreed);
        assert_eq!(client.growth_rtt(), Some(40));
        let answer = vrm_answer(ACCEPT.sid, ACCEPT.len);
        assert_eq!(server.on_vrm(answer, 1_500, true), ExtVrm::Answered);
        assert_eq!(
            server.growth_rtt(),
            Some(480),
            "its answer came behind data"
        );
        let report = client.report().unwrap();
        assert_eq!(server.on_vrm(report, 1_510, true), ExtVrm::Answered);
        assert_eq!(
            server.growth_rtt(),
            Some(40),
            "the client's measure, taken ahead of data"
        );
        // A second offer is a probe like any other.
        assert_eq!(server.on_vrm(OFFER, 2_000, true), ExtVrm::Other);
    }

    #[test]
    fn a_client_never_takes_an_offer_and_a_side_that_does_not_grow_still_agrees() {
        let mut client = Extension::new(true);
        // Only a client sends the offer: one arriving at a client is reflected, or another
        // client's.
        assert_eq!(client.on_vrm(OFFER, 0, false), ExtVrm::Reflected);
        assert!(!client.active());
        let mut server = Extension::new(false);
        assert_eq!(server.on_vrm(OFFER, 0, true), ExtVrm::Accept);
        server.on_vrm(vrm_answer(ACCEPT.sid, ACCEPT.len), 10, true);
        assert!(server.active(), "it takes the peer's credit");
        assert_eq!(server.growth_rtt(), None, "but grants none beyond the base");
    }

    fn sample(window: u32, unread: u32, read: u32, elapsed_us: u32) -> Sample {
        Sample {
            window,
            unread,
            read,
            elapsed_us,
        }
    }

    #[test]
    fn a_window_doubles_while_it_limits_the_stream_up_to_the_maximum() {
        let (base, max) = (512 * KIB, 4096 * KIB);
        // 2.5 MiB read over one 40 ms round trip.
        assert_eq!(
            next_window(sample(base, 0, 2560 * KIB, 40_000), 40_000, base, max),
            1024 * KIB
        );
        assert_eq!(
            next_window(sample(4096 * KIB, 0, 4096 * KIB, 40_000), 40_000, base, max),
            max
        );
        // Slower than half a window per round trip: it stays.
        assert_eq!(
            next_window(sample(base, 0, 64 * KIB, 40_000), 40_000, base, max),
            base
        );
        // A burst read within less than a round trip says nothing of the path.
        assert_eq!(
            next_window(sample(base, 0, base, 100), 40_000, base, max),
            base
        );
    }

    #[test]
    fn a_window_halves_down_to_the_base_when_the_reader_falls_behind() {
        let (base, max) = (512 * KIB, 16384 * KIB);
        let w = 8192 * KIB;
        assert_eq!(
            next_window(sample(w, w / 2 + 1, 64 * KIB, 1), 40_000, base, max),
            w / 2
        );
        assert_eq!(
            next_window(sample(base, base, 64 * KIB, 1), 40_000, base, max),
            base
        );
    }
}
