//! Window growth between two cores of this crate, and what the original or a hostile peer sees
//! of it (`extension.rs`), on a synthetic clock.

use std::time::Duration;

use super::*;
use crate::core::extension::{ACCEPT, OFFER};
use crate::frame::vrm_answer;

const BASE: u32 = 512 * 1024;
const MAX: u32 = 4 * 1024 * 1024;
const RTT: Duration = Duration::from_millis(40);

fn growing(budget: usize) -> Limits {
    Limits {
        max_window: MAX,
        budget,
        ..limits()
    }
}

/// A client and a server that agreed to window growth, their clocks at one round trip.
fn agreed(l: Limits) -> (Core<()>, Core<()>) {
    let (mut c, mut s) = (Core::new(Direction::Up, l), Core::new(Direction::Down, l));
    c.set_clock(Duration::ZERO);
    c.offer_extension();
    s.set_clock(RTT / 2);
    deliver(&mut c, &mut s); // OFFER: the server accepts
    c.set_clock(RTT);
    deliver(&mut s, &mut c); // ACCEPT: the client answers it
    s.set_clock(RTT * 3 / 2);
    deliver(&mut c, &mut s); // the answer: the server has its round trip
    assert!(c.extension.active() && s.extension.active());
    assert_eq!(c.extension.growth_rtt(), Some(RTT.as_micros() as u32));
    assert_eq!(s.extension.growth_rtt(), Some(RTT.as_micros() as u32));
    (c, s)
}

/// Agreed sessions with one stream the client opened and the server accepted.
fn one_stream() -> (Core<()>, Core<()>, StreamKey, StreamKey) {
    let (mut c, mut s) = agreed(growing(usize::MAX));
    let k = c.open().unwrap();
    deliver(&mut c, &mut s);
    let t = s.accept().unwrap();
    (c, s, k, t)
}

/// The client opens a stream and the server accepts it; the server's grant of room for the next
/// open reaches the client (`open_credit.rs`: a small budget leaves room for one waiting stream).
fn open_accepted(c: &mut Core<()>, s: &mut Core<()>) -> (StreamKey, StreamKey) {
    let k = c.open().unwrap();
    deliver(c, s);
    let t = s.accept().unwrap();
    deliver(s, c);
    (k, t)
}

/// The client writes all it may on `k`, the server reads all of it on `t`, `step` after the last
/// confirm, and confirms; the confirm reaches the client. Returns the bytes moved.
fn round(c: &mut Core<()>, s: &mut Core<()>, k: StreamKey, t: StreamKey, at: Duration) -> usize {
    let data = vec![7u8; MAX_PAYLOAD as usize];
    let mut sent = 0;
    while let Write::Queued(n) = c.write(k, &data) {
        sent += n;
        deliver(c, s);
    }
    s.set_clock(at);
    let mut buf = vec![0u8; 1 << 20];
    let mut read = 0;
    while let Read::Data(n) = s.read(t, &mut buf) {
        read += n;
    }
    assert_eq!(read, sent, "everything sent was read");
    deliver(s, c);
    sent
}

#[test]
fn a_server_sends_nothing_unasked_and_a_client_offers_first() {
    let mut s = server();
    assert!(output(&mut s).is_empty());
    let mut c = client();
    c.offer_extension();
    let k = c.open().unwrap();
    let frames = output(&mut c);
    assert_eq!(frames[0].0, OFFER);
    assert_eq!(frames[1].0, hdr(Cmd::Syn, 1, 0));
    let _ = k;
}

#[test]
fn against_the_original_nothing_changes() {
    let mut c = Core::<()>::new(Direction::Up, growing(usize::MAX));
    c.offer_extension();
    let k = c.open().unwrap();
    let _ = output(&mut c);
    // The original answers the offer as a probe: recognised, not answered.
    c.handle_frame(vrm_answer(OFFER.sid, OFFER.len), &[])
        .unwrap();
    assert!(output(&mut c).is_empty());
    assert!(!c.extension.active());
    // A CFM beyond what was sent is late, as always against the original.
    assert_eq!(c.write(k, b"abc"), Write::Queued(3));
    frame(&mut c, Cmd::Cfm, 1, BASE).unwrap();
    assert_eq!(c.stream(k).unwrap().send_credit(), BASE - 3);
    // Confirms never pass what was read, whatever the clock says: the base window.
    psh(&mut c, 1, &vec![1u8; 65_536]).unwrap();
    c.set_clock(Duration::from_micros(1));
    let mut buf = vec![0u8; 65_536];
    assert_eq!(c.read(k, &mut buf), Read::Data(65_536));
    let cfms: Vec<_> = output(&mut c).into_iter().map(|f| f.0).collect();
    assert_eq!(cfms, vec![hdr(Cmd::Psh, 1, 3), hdr(Cmd::Cfm, 1, 65_536)]);
    assert_eq!(c.stream(k).unwrap().recv_window(), BASE);
}

#[test]
fn a_window_that_limits_the_stream_doubles_up_to_the_maximum() {
    let (mut c, mut s, k, t) = one_stream();
    let mut at = RTT * 2;
    let mut windows = vec![];
    for _ in 0..12 {
        // Each round moves a whole window in one round trip: the window limits the stream.
        at += RTT;
        round(&mut c, &mut s, k, t, at);
        let w = s.stream(t).unwrap().recv_window();
        assert!(w <= MAX, "window {w} beyond the maximum");
        windows.push(w);
    }
    assert_eq!(windows[0], 2 * BASE);
    assert_eq!(*windows.last().unwrap(), MAX);
    // The sender was given credit for the grown window.
    assert!(c.stream(k).unwrap().send_credit() > BASE);
    // Closing gives the growth back.
    s.close(t);
    assert_eq!(s.growth.held(), 0);
}

#[test]
fn a_window_stays_at_the_base_when_the_path_is_short() {
    let (mut c, mut s, k, t) = one_stream();
    let mut at = RTT * 2;
    for _ in 0..4 {
        // A window every 100 round trips: far from limited by the window.
        at += RTT * 100;
        round(&mut c, &mut s, k, t, at);
    }
    assert_eq!(s.stream(t).unwrap().recv_window(), BASE);
}

#[test]
fn growth_stays_within_the_budget_shared_by_all_streams() {
    let budget = 3 * BASE as usize;
    let (mut c, mut s) = agreed(growing(budget));
    let (ks, ts): (Vec<_>, Vec<_>) = (0..4).map(|_| open_accepted(&mut c, &mut s)).unzip();
    let mut at = RTT * 2;
    for _ in 0..8 {
        at += RTT;
        for (k, t) in ks.iter().zip(&ts) {
            round(&mut c, &mut s, *k, *t, at);
        }
        let extra: u32 = ts
            .iter()
            .map(|t| s.stream(*t).unwrap().recv_window() - BASE)
            .sum();
        assert!(extra as usize <= budget, "{extra} beyond the budget");
        assert_eq!(extra as usize, s.growth.held());
    }
    assert!(s.growth.held() > 0);
}

#[test]
fn a_reader_that_falls_behind_shrinks_the_window_back() {
    let (mut c, mut s, k, t) = one_stream();
    let mut at = RTT * 2;
    for _ in 0..4 {
        at += RTT;
        round(&mut c, &mut s, k, t, at);
    }
    let grown = s.stream(t).unwrap().recv_window();
    assert!(grown > BASE);
    // The sender fills the window; the reader takes only an eighth of it.
    let data = vec![7u8; MAX_PAYLOAD as usize];
    while let Write::Queued(_) = c.write(k, &data) {
        deliver(&mut c, &mut s);
    }
    let mut buf = vec![0u8; (grown / 8) as usize];
    at += RTT;
    s.set_clock(at);
    while s.stream(t).unwrap().grantable() < grown / 8 {
        assert!(matches!(s.read(t, &mut buf), Read::Data(_)));
    }
    let _ = output(&mut s);
    let w = s.stream(t).unwrap().recv_window();
    assert_eq!(w, grown / 2);
    let st = s.stream(t).unwrap();
    assert!(st.recv.len() as u32 + st.recv_credit() <= grown);
}

#[test]
fn a_hostile_peer_claiming_the_extension_cannot_send_beyond_the_grant() {
    let mut s = Core::<()>::new(Direction::Down, growing(usize::MAX));
    s.handle_frame(OFFER, &[]).unwrap();
    assert_eq!(output(&mut s)[0].0, ACCEPT);
    frame(&mut s, Cmd::Syn, 1, 0).unwrap();
    let chunk = vec![0u8; 65_536];
    for _ in 0..BASE / 65_536 {
        psh(&mut s, 1, &chunk).unwrap();
    }
    assert_eq!(
        psh(&mut s, 1, b"x"),
        Err(ProtocolError::WindowExceeded {
            stream: 1,
            window: BASE
        })
    );
    // And CFMs it sends only give this side credit: it never buffers more for them.
    let mut s = Core::<()>::new(Direction::Down, growing(usize::MAX));
    s.handle_frame(OFFER, &[]).unwrap();
    let k = s.open().unwrap();
    frame(&mut s, Cmd::Cfm, 65_535, u32::MAX - BASE).unwrap();
    assert_eq!(s.stream(k).unwrap().send_credit(), u32::MAX);
    assert_eq!(s.stream(k).unwrap().recv_credit(), BASE);
    // Credit past 4 GiB is no grant an honest peer makes: the session ends.
    assert_eq!(
        frame(&mut s, Cmd::Cfm, 65_535, 1),
        Err(ProtocolError::CreditOverflow { stream: 65_535 })
    );
}

/// Review defect 3 (2026-12-06): a window that shrinks while its stream still holds the bytes of
/// the grown window keeps that growth counted, until the stream no longer holds it. Otherwise a
/// second stream grows into the same budget and the session holds more than every base window
/// plus the budget.
#[test]
fn a_shrunk_window_keeps_its_growth_counted_while_the_stream_holds_the_bytes() {
    let budget = BASE as usize;
    let (mut c, mut s) = agreed(growing(budget));
    let (k1, t1) = open_accepted(&mut c, &mut s);
    let (k2, t2) = open_accepted(&mut c, &mut s);
    let held = |s: &Core<()>| -> u64 {
        [t1, t2]
            .iter()
            .map(|t| {
                let st = s.stream(*t).unwrap();
                st.recv.len() as u64 + u64::from(st.recv_credit())
            })
            .sum()
    };
    let bound = 2 * u64::from(BASE) + budget as u64;
    // The first stream grows to twice the base (the whole budget) ...
    let mut at = RTT * 2;
    while s.stream(t1).unwrap().recv_window() < 2 * BASE {
        at += RTT;
        round(&mut c, &mut s, k1, t1, at);
    }
    // ... and is filled; its reader takes an eighth, so the window halves.
    let data = vec![7u8; MAX_PAYLOAD as usize];
    while let Write::Queued(_) = c.write(k1, &data) {
        deliver(&mut c, &mut s);
    }
    at += RTT;
    s.set_clock(at);
    let mut buf = vec![0u8; (BASE / 4) as usize];
    while s.stream(t1).unwrap().grantable() < BASE / 4 {
        assert!(matches!(s.read(t1, &mut buf), Read::Data(_)));
    }
    deliver(&mut s, &mut c);
    assert_eq!(s.stream(t1).unwrap().recv_window(), BASE);
    assert!(held(&s) <= bound);
    // The second stream now tries to grow and fill as the first did.
    for _ in 0..8 {
        at += RTT;
        round(&mut c, &mut s, k2, t2, at);
    }
    while let Write::Queued(_) = c.write(k2, &data) {
        deliver(&mut c, &mut s);
    }
    assert!(
        held(&s) <= bound,
        "the streams hold {} bytes, beyond the bound of {bound}",
        held(&s)
    );
    assert!(s.growth.held() <= budget);
    // Once the first stream's reader drains it, its growth is free for the second.
    while let Read::Data(_) = s.read(t1, &mut buf) {}
    deliver(&mut s, &mut c);
    assert_eq!(s.window_growth(), s.stream(t2).unwrap().charged() as usize);
}
