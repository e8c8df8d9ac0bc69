//! Probes and keepalives: VRM answered and recognised, PIN answered and never sent first, and
//! neither bouncing for ever between two cores.

use super::*;

#[test]
fn a_pin_is_answered_unless_ours_may_be_what_it_answers() {
    let mut c = client();
    // The peer's PIN (the newest original's, every 10 s): answered with one.
    frame(&mut c, Cmd::Pin, 0, 0).unwrap();
    assert_eq!(output(&mut c), vec![(hdr(Cmd::Pin, 0, 0), vec![])]);
    // The next PIN may be the answer to ours: not answered, so two sessions never bounce PINs.
    frame(&mut c, Cmd::Pin, 0, 0).unwrap();
    assert!(output(&mut c).is_empty());
    frame(&mut c, Cmd::Pin, 0, 0).unwrap();
    assert_eq!(output(&mut c), vec![(hdr(Cmd::Pin, 0, 0), vec![])]);
}

/// Moves frames back and forth between two cores, starting with what `a` has queued, until
/// neither has anything more to send or at least `limit` frames have moved. Returns how many moved.
fn exchange(a: &mut Core<()>, b: &mut Core<()>, limit: usize) -> usize {
    let (mut from, mut to) = (a, b);
    let mut moved = 0;
    loop {
        let out = output(from);
        if out.is_empty() || moved >= limit {
            return moved;
        }
        moved += out.len();
        for (h, p) in out {
            to.handle_frame(h, &p).unwrap();
        }
        std::mem::swap(&mut from, &mut to);
    }
}

#[test]
fn a_stray_pin_between_two_cores_dies_out() {
    let (mut c, mut s) = (client(), server());
    frame(&mut c, Cmd::Pin, 0, 0).unwrap(); // a stray PIN, not from the server
    let exchanged = exchange(&mut c, &mut s, 4);
    assert!(exchanged < 4, "PINs keep bouncing");
    assert_eq!(exchanged, 2, "answered once, and the answer not answered");
}

#[test]
fn a_stray_vrm_between_two_cores_dies_out() {
    // A VRM that is neither side's ping (the answer to a cancelled `is_smux` probe, left on the
    // transport): each side answers what is not its own ping's answer, so without care the two
    // would answer each other's answers for ever.
    let (mut c, mut s) = (client(), server());
    frame(&mut c, Cmd::Vrm, 0x3420, 0x1278_3456).unwrap();
    let exchanged = exchange(&mut c, &mut s, 8);
    assert!(exchanged < 8, "VRMs keep bouncing");
    assert!(exchanged <= 2, "{exchanged} answers");
    // Probes are still answered, and a ping still sees its answer.
    let probe = c.ping(7, 8).unwrap();
    s.handle_frame(probe, &[]).unwrap();
    deliver(&mut s, &mut c);
    let mut events = Vec::new();
    c.take_events(&mut events);
    assert!(events.contains(&Event::Pong));
}

#[test]
fn never_sends_a_pin_first() {
    // Nothing this side does on its own sends a PIN (the founding document's version closes the
    // session on one): open, write, read, close, ping.
    let (mut c, mut s) = (client(), server());
    let k = c.open().unwrap();
    assert_eq!(
        c.write(k, &[7; 300 * 1024][..65_536]),
        Write::Queued(65_536)
    );
    let _ = c.ping(1, 2);
    deliver(&mut c, &mut s);
    let t = s.accept().unwrap();
    let mut buf = vec![0u8; 65_536];
    assert_eq!(s.read(t, &mut buf), Read::Data(65_536));
    s.close(t);
    let out: Vec<_> = output(&mut s);
    assert!(out.iter().all(|(h, _)| h.cmd != Cmd::Pin));
    for (h, p) in out {
        c.handle_frame(h, &p).unwrap();
    }
    assert!(output(&mut c).iter().all(|(h, _)| h.cmd != Cmd::Pin));
}

#[test]
fn vrm_is_answered_and_our_own_answer_is_recognised() {
    let mut s = server();
    frame(&mut s, Cmd::Vrm, 0x1234, 0x1234_5678).unwrap();
    assert_eq!(
        output(&mut s),
        vec![(hdr(Cmd::Vrm, 0x3420, 0x1278_3456), vec![])]
    );
    let probe = s.ping(0x1234, 0x1234_5678);
    assert_eq!(probe, Some(hdr(Cmd::Vrm, 0x1234, 0x1234_5678)));
    assert_eq!(s.ping(1, 2), None, "one probe at a time");
    let _ = output(&mut s);
    frame(&mut s, Cmd::Vrm, 0x3420, 0x1278_3456).unwrap();
    assert!(
        output(&mut s).is_empty(),
        "the answer to our own probe is not answered"
    );
    let mut events = Vec::new();
    s.take_events(&mut events);
    assert!(events.contains(&Event::Pong));
}

#[test]
fn vrm_answers_are_bounded() {
    let mut s = server();
    for i in 0..1000 {
        frame(&mut s, Cmd::Vrm, i, i as u32).unwrap();
    }
    assert_eq!(output(&mut s).len(), MAX_VRM_ANSWERS);
}
