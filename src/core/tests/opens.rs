//! Open credit between two cores of this crate (`open_credit.rs`): an opener waits for room
//! rather than being refused; the original, and a peer that ignores grants, see what they did
//! before.

use super::*;
use crate::core::extension::OFFER;
use crate::core::open_credit::{GRANT_SID, INITIAL_ROOM};
use crate::frame::vrm_answer;

fn roomy(backlog: usize) -> Limits {
    Limits {
        backlog,
        budget: 32 << 20,
        ..limits()
    }
}

/// A client and a server that agreed to the extension.
fn agreed(l: Limits) -> (Core<()>, Core<()>) {
    let (mut c, mut s) = (Core::new(Direction::Up, l), Core::new(Direction::Down, l));
    c.offer_extension();
    deliver(&mut c, &mut s); // OFFER: the server accepts and grants
    deliver(&mut s, &mut c); // ACCEPT and the grant: the client answers and grants
    deliver(&mut c, &mut s);
    assert!(c.extension.active() && s.extension.active());
    (c, s)
}

/// Opens on `c` until it must wait; returns how many it opened.
fn open_all(c: &mut Core<()>) -> usize {
    let mut n = 0;
    loop {
        match c.open() {
            Ok(_) => n += 1,
            Err(OpenError::AtLimit) => return n,
            Err(e) => panic!("{e:?}"),
        }
    }
}

#[test]
fn before_any_answer_a_client_assumes_the_initial_room() {
    let mut c: Core<()> = Core::new(Direction::Up, roomy(1024));
    c.offer_extension();
    assert_eq!(open_all(&mut c), INITIAL_ROOM as usize);
}

#[test]
fn a_burst_of_opens_waits_for_room_and_none_is_refused() {
    let (mut c, mut s) = agreed(roomy(1024));
    // The default budget (32 MiB) holds 31 full windows of 512 KiB waiting.
    let room = 31;
    let mut opened = 0;
    let mut accepted = 0;
    while accepted < 5_000 {
        let n = open_all(&mut c);
        assert!(n <= room, "opened {n} at once");
        opened += n;
        deliver(&mut c, &mut s);
        // The application accepts a few at a time.
        for _ in 0..7 {
            if s.accept().is_some() {
                accepted += 1;
            }
        }
        assert!(s.backlog.len() <= room);
        deliver(&mut s, &mut c);
    }
    assert!(opened >= 5_000);
    assert_eq!(s.counters.refused, 0);
}

#[test]
fn the_first_grant_is_the_servers_own_backlog() {
    let (mut c, mut s) = agreed(roomy(4));
    assert_eq!(open_all(&mut c), 4);
    deliver(&mut c, &mut s);
    // Accepting one is a quarter of the room: the next grant goes out.
    s.accept().unwrap();
    deliver(&mut s, &mut c);
    assert_eq!(open_all(&mut c), 1);
    deliver(&mut c, &mut s);
    assert_eq!(s.counters.refused, 0);
}

#[test]
fn the_server_waits_for_the_clients_room_too() {
    let (mut c, mut s) = agreed(roomy(8));
    assert_eq!(open_all(&mut s), 8);
    deliver(&mut s, &mut c);
    while c.accept().is_some() {}
    deliver(&mut c, &mut s);
    assert_eq!(open_all(&mut s), 8);
}

#[test]
fn against_the_original_a_client_opens_without_limit() {
    let mut c: Core<()> = Core::new(Direction::Up, roomy(1024));
    c.offer_extension();
    let _ = output(&mut c);
    // The original answers the offer as any probe.
    let answer = vrm_answer(OFFER.sid, OFFER.len);
    c.handle_frame(answer, &[]).unwrap();
    let mut events = Vec::new();
    c.take_events(&mut events);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Room(n) if *n > 60_000)),
        "{events:?}"
    );
    for _ in 0..2_000 {
        c.open().unwrap();
    }
    // And nothing of the extension went out: no grant.
    assert!(output(&mut c)
        .iter()
        .all(|(h, _)| !(h.cmd == Cmd::Vrm && h.sid == GRANT_SID)));
}

#[test]
fn a_grant_from_a_peer_that_did_not_agree_is_a_probe() {
    let mut c: Core<()> = Core::new(Direction::Up, roomy(1024));
    c.offer_extension();
    let _ = output(&mut c);
    let grant = Header::new(Cmd::Vrm, GRANT_SID, 1_000_000);
    c.handle_frame(grant, &[]).unwrap();
    assert_eq!(open_all(&mut c), INITIAL_ROOM as usize);
    let out = output(&mut c);
    assert!(out
        .iter()
        .any(|(h, _)| *h == vrm_answer(GRANT_SID, 1_000_000)));
}

#[test]
fn a_peer_that_ignores_grants_is_still_held_to_the_backlog() {
    let (_c, mut s) = agreed(roomy(4));
    // A client of this crate's wire that opens past its room: the backlog bound holds.
    for id in (1..=41u16).step_by(2) {
        frame(&mut s, Cmd::Syn, id, 0).unwrap();
    }
    assert_eq!(s.backlog.len(), 4);
    assert_eq!(s.counters.refused, 17);
}

#[test]
fn a_stream_refused_all_the_same_is_named_a_refusal() {
    let (mut c, mut s) = agreed(roomy(1024));
    s.refuse_incoming(); // shutting down
    let k = c.open().unwrap();
    deliver(&mut c, &mut s);
    deliver(&mut s, &mut c);
    assert_eq!(c.stream(k).unwrap().state(), State::Refused);
    assert_eq!(c.write(k, b"x"), Write::ClosedByPeer);
    assert_eq!(c.read(k, &mut [0u8; 4]), Read::Cut);
}

#[test]
fn against_the_original_nothing_is_named_a_refusal() {
    // A server that did not agree (the client never offered): a plain FIN.
    let (mut c, mut s): (Core<()>, Core<()>) = (
        Core::new(Direction::Up, roomy(1024)),
        Core::new(Direction::Down, roomy(1024)),
    );
    s.refuse_incoming();
    let k = c.open().unwrap();
    deliver(&mut c, &mut s);
    let out = output(&mut s);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].0.cmd, Cmd::Fin);
    let _ = k;
}

#[test]
fn a_peer_that_did_not_offer_is_sent_no_grant() {
    // The original as a client: it never offers, so accepting sends nothing of the extension.
    let mut s: Core<()> = Core::new(Direction::Down, roomy(8));
    for id in 1..=20u16 {
        frame(&mut s, Cmd::Syn, id, 0).unwrap();
        s.accept().unwrap();
    }
    let out = output(&mut s);
    assert!(out.iter().all(|(h, _)| h.cmd != Cmd::Vrm), "{out:?}");
}

#[test]
fn a_peer_that_never_answers_the_offer_does_not_hold_opens_for_good() {
    let mut c: Core<()> = Core::new(Direction::Up, roomy(1024));
    c.offer_extension();
    let keys: Vec<_> = (0..INITIAL_ROOM).map(|_| c.open().unwrap()).collect();
    assert_eq!(c.open(), Err(OpenError::AtLimit));
    let _ = output(&mut c);
    // Data on one of them, with no answer to the offer first: not this crate.
    let id = c.id(keys[3]).unwrap();
    psh(&mut c, id, b"hi").unwrap();
    for _ in 0..1_000 {
        c.open().unwrap();
    }
}
