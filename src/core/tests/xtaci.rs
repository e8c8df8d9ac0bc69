//! xtaci/smux's wire on the core: ids, UPD credit, NOP keepalives, FIN as "no more from me",
//! hostile input, and the detecting server.

use super::*;
use crate::core::wire::{Protocol, Wire, XTACI_INITIAL_WINDOW};
use crate::frame::xtaci::{self, Cmd as X};

fn xcore(version: u8, server: bool) -> Core<()> {
    let protocol = if version == 1 {
        Protocol::Xtaci1
    } else {
        Protocol::Xtaci2
    };
    let dir = if server {
        Direction::Down
    } else {
        Direction::Up
    };
    Core::with_protocol(dir, limits(), protocol)
}

/// Every frame `core` queued, as (header, payload).
fn xout(core: &mut Core<()>) -> Vec<(xtaci::Header, Vec<u8>)> {
    let mut bytes = Vec::new();
    core.take_output(&mut bytes);
    let version = match core.protocol() {
        Protocol::Xtaci1 => 1,
        _ => 2,
    };
    let mut frames = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let h = xtaci::Header::decode(rest[..8].try_into().unwrap(), version).unwrap();
        let n = usize::from(h.len);
        frames.push((h, rest[8..8 + n].to_vec()));
        rest = &rest[8 + n..];
    }
    frames
}

fn xframe(version: u8, cmd: X, sid: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = xtaci::Header::new(version, cmd, payload.len() as u16, sid)
        .encode()
        .to_vec();
    b.extend_from_slice(payload);
    b
}

fn feed(core: &mut Core<()>, bytes: &[u8]) -> Result<(), ProtocolError> {
    let used = core.handle_input(bytes, true)?;
    assert_eq!(used, bytes.len());
    Ok(())
}

fn upd(sid: u32, read: u32, window: u32) -> Vec<u8> {
    let mut p = read.to_le_bytes().to_vec();
    p.extend_from_slice(&window.to_le_bytes());
    xframe(2, X::Upd, sid, &p)
}

#[test]
fn a_client_opens_odd_ids_and_a_server_even_ones_each_adding_two_first() {
    let mut c = xcore(2, false);
    let mut s = xcore(2, true);
    for _ in 0..3 {
        c.open().unwrap();
        s.open().unwrap();
    }
    let sids = |core: &mut Core<()>| -> Vec<u32> {
        xout(core)
            .iter()
            .filter(|(h, _)| h.cmd == X::Syn)
            .map(|(h, _)| h.sid)
            .collect()
    };
    assert_eq!(sids(&mut c), vec![3, 5, 7]);
    assert_eq!(sids(&mut s), vec![2, 4, 6]);
}

#[test]
fn when_the_ids_run_out_an_open_fails_and_nothing_is_sent() {
    let mut c = xcore(1, false);
    let Wire::Xtaci(x) = &mut c.wire else {
        unreachable!()
    };
    x.set_last_opened(u32::MAX - 2);
    c.open().unwrap(); // u32::MAX, the last odd id
    let _ = xout(&mut c);
    assert_eq!(c.open(), Err(OpenError::GoAway));
    assert!(xout(&mut c).is_empty(), "nothing is sent");
}

#[test]
fn v2_credit_is_the_window_less_what_is_in_flight() {
    let mut c = xcore(2, false);
    let k = c.open().unwrap();
    // Before any UPD a sender may have 256 KiB in flight.
    assert_eq!(c.stream(k).unwrap().send_credit(), XTACI_INITIAL_WINDOW);
    let data = vec![1u8; 65_535];
    let mut sent = 0;
    while let Write::Queued(n) = c.write(k, &data) {
        sent += n as u32;
        let _ = xout(&mut c);
    }
    assert_eq!(sent, XTACI_INITIAL_WINDOW);
    // The peer read 100,000 bytes and takes 512 KiB.
    feed(&mut c, &upd(3, 100_000, 512 * 1024)).unwrap();
    assert_eq!(
        c.stream(k).unwrap().send_credit(),
        512 * 1024 - (XTACI_INITIAL_WINDOW - 100_000)
    );
    // A read total beyond what was sent is the peer's error.
    assert_eq!(
        feed(&mut c, &upd(3, XTACI_INITIAL_WINDOW + 1, 512 * 1024)),
        Err(ProtocolError::ReadBeyondSent { stream: 3 })
    );
}

#[test]
fn v2_receiver_states_its_window_at_once_and_what_was_read_as_it_goes() {
    let mut s = xcore(2, true);
    feed(&mut s, &xframe(2, X::Syn, 3, &[])).unwrap();
    let t = s.accept().unwrap();
    // Its window (512 KiB) beyond the 256 KiB the sender assumes: an UPD at once.
    let frames = xout(&mut s);
    assert_eq!(frames.len(), 1);
    assert_eq!((frames[0].0.cmd, frames[0].0.sid), (X::Upd, 3));
    assert_eq!(frames[0].1, [0, 0, 0, 0, 0, 0, 8, 0]); // read 0, window 524,288
    feed(&mut s, &xframe(2, X::Psh, 3, &vec![5u8; 40_000])).unwrap();
    let mut buf = vec![0u8; 40_000];
    assert_eq!(s.read(t, &mut buf), Read::Data(40_000));
    let frames = xout(&mut s);
    assert_eq!(frames[0].0.cmd, X::Upd);
    assert_eq!(&frames[0].1[..4], &40_000u32.to_le_bytes());
    // Beyond the window: the session ends.
    let too_much = vec![0u8; 65_535];
    let mut r = Ok(());
    for _ in 0..9 {
        r = feed(&mut s, &xframe(2, X::Psh, 3, &too_much));
        if r.is_err() {
            break;
        }
    }
    assert!(
        matches!(r, Err(ProtocolError::WindowExceeded { stream: 3, .. })),
        "{r:?}"
    );
}

#[test]
fn v1_has_no_credit_and_pauses_reading_past_a_window_unread() {
    let mut s = xcore(1, true);
    feed(&mut s, &xframe(1, X::Syn, 3, &[])).unwrap();
    let t = s.accept().unwrap();
    let chunk = vec![0u8; 65_535];
    for _ in 0..8 {
        feed(&mut s, &xframe(1, X::Psh, 3, &chunk)).unwrap();
    }
    assert!(!s.input_paused(), "8 x 65,535 bytes are within 512 KiB");
    feed(&mut s, &xframe(1, X::Psh, 3, &chunk)).unwrap();
    assert!(
        s.input_paused(),
        "past the window: the transport is not read"
    );
    assert!(xout(&mut s).is_empty(), "v1 grants nothing");
    let mut buf = vec![0u8; 200_000];
    assert!(matches!(s.read(t, &mut buf), Read::Data(_)));
    assert!(!s.input_paused());
    let mut events = Vec::new();
    s.take_events(&mut events);
    assert!(
        events.contains(&Event::Resume),
        "the driver is told to read again"
    );
    // Writes are never held for credit.
    let k = s.open().unwrap();
    for _ in 0..100 {
        assert!(matches!(
            s.write(k, &chunk),
            Write::Queued(_) | Write::QueueFull
        ));
        let _ = xout(&mut s);
    }
}

#[test]
fn a_fin_ends_the_peers_sending_only_and_close_forgets_the_stream() {
    let mut s = xcore(2, true);
    feed(&mut s, &xframe(2, X::Syn, 3, &[])).unwrap();
    let t = s.accept().unwrap();
    feed(&mut s, &xframe(2, X::Psh, 3, b"hi")).unwrap();
    feed(&mut s, &xframe(2, X::Fin, 3, &[])).unwrap();
    let _ = xout(&mut s);
    let mut buf = [0u8; 8];
    assert_eq!(s.read(t, &mut buf), Read::Data(2));
    assert_eq!(s.read(t, &mut buf), Read::Eof);
    // No FIN answer; writing goes on (a half-close on the peer's side).
    assert_eq!(s.write(t, b"reply"), Write::Queued(5));
    assert_eq!(s.num_streams(), 1);
    s.close(t);
    let frames = xout(&mut s);
    let cmds: Vec<_> = frames.iter().map(|(h, _)| (h.cmd, h.sid)).collect();
    assert_eq!(cmds, vec![(X::Psh, 3), (X::Fin, 3)]);
    assert_eq!(s.num_streams(), 0, "closed: its id is forgotten at once");
    // Late frames for it are dropped.
    feed(&mut s, &xframe(2, X::Psh, 3, b"late")).unwrap();
    feed(&mut s, &xframe(2, X::Fin, 3, &[])).unwrap();
    assert!(s.accept().is_none());
}

#[test]
fn nops_are_answered_by_a_quiet_side_and_never_ping_pong() {
    let (mut a, mut b) = (xcore(2, false), xcore(2, true));
    a.ping(0, 0); // the keepalive's sign of life
    let mut rounds = 0;
    loop {
        let mut ab = Vec::new();
        a.take_output(&mut ab);
        let mut ba = Vec::new();
        b.take_output(&mut ba);
        if ab.is_empty() && ba.is_empty() {
            break;
        }
        feed(&mut b, &ab).unwrap();
        feed(&mut a, &ba).unwrap();
        rounds += 1;
        assert!(rounds < 5, "NOPs bounce between two sessions");
    }
    assert_eq!(a.counters().frames_in, 1, "the NOP was answered once");
}

#[test]
fn hostile_frames_end_the_session_with_what_they_broke() {
    let mut s = xcore(1, true);
    assert_eq!(
        feed(&mut s, &xframe(2, X::Syn, 3, &[])),
        Err(ProtocolError::WrongVersion { version: 2 })
    );
    let mut s = xcore(1, true);
    let mut upd_v1 = upd(3, 0, 0);
    upd_v1[0] = 1;
    assert_eq!(feed(&mut s, &upd_v1), Err(ProtocolError::UpdInVersion1));
    let mut s = xcore(2, true);
    assert_eq!(
        feed(&mut s, &xframe(2, X::Syn, 4, &[])),
        Err(ProtocolError::WrongParity { stream: 4 })
    );
    let mut c = xcore(2, false);
    assert_eq!(
        feed(&mut c, &xframe(2, X::Syn, 3, &[])),
        Err(ProtocolError::WrongParity { stream: 3 })
    );
    let mut s = xcore(2, true);
    assert_eq!(
        feed(&mut s, &xframe(2, X::Fin, 3, b"x")),
        Err(ProtocolError::BadLength { command: 1, len: 1 })
    );
    // A SYN again for a live stream is ignored; data for an unknown one dropped.
    let mut s = xcore(2, true);
    feed(&mut s, &xframe(2, X::Syn, 3, &[])).unwrap();
    feed(&mut s, &xframe(2, X::Syn, 3, &[])).unwrap();
    feed(&mut s, &xframe(2, X::Psh, 9, b"nobody")).unwrap();
    assert!(s.accept().is_some());
    assert!(s.accept().is_none());
}

#[test]
fn a_detecting_server_tells_every_smux_by_its_first_byte() {
    let detect = || Core::<()>::with_protocol(Direction::Down, limits(), Protocol::Detect);
    let mut s = detect();
    assert_eq!(
        s.open(),
        Err(OpenError::AtLimit),
        "no open before the wire is known"
    );
    feed(&mut s, &xframe(2, X::Syn, 3, &[])).unwrap();
    assert_eq!(s.protocol(), Protocol::Xtaci2);
    assert!(s.accept().is_some());
    let mut s = detect();
    feed(&mut s, &xframe(1, X::Syn, 3, &[])).unwrap();
    assert_eq!(s.protocol(), Protocol::Xtaci1);
    let mut s = detect();
    feed(&mut s, &Header::new(Cmd::Syn, 1, 0).encode()).unwrap();
    assert_eq!(s.protocol(), Protocol::Yddeng);
    assert!(s.accept().is_some());
    let mut s = detect();
    feed(&mut s, &crate::core::OFFER.encode()).unwrap();
    assert_eq!(s.protocol(), Protocol::Yddeng);
    let mut s = detect();
    assert_eq!(
        s.handle_input(b"GET / HTTP/1.1\r\n", true),
        Err(ProtocolError::NotSmux { first: b'G' })
    );
}

#[test]
fn a_peer_that_sent_fin_on_every_stream_has_nothing_more_to_send() {
    // Its transport resetting then loses nothing (the driver takes it for its close), though on
    // this wire the streams keep their ids until this side closes them too.
    let mut s = xcore(2, true);
    feed(&mut s, &xframe(2, X::Syn, 3, &[])).unwrap();
    feed(&mut s, &xframe(2, X::Syn, 5, &[])).unwrap();
    assert!(s.peer_may_send());
    feed(&mut s, &xframe(2, X::Fin, 3, &[])).unwrap();
    assert!(s.peer_may_send(), "stream 5 is still open");
    feed(&mut s, &xframe(2, X::Fin, 5, &[])).unwrap();
    assert!(!s.peer_may_send());
    assert_eq!(
        s.num_streams(),
        2,
        "their ids stay in use until this side closes"
    );
    // A stream this side half-closed waits for the peer's FIN: the peer may still send on it.
    let k = s.open().unwrap();
    s.close_write(k);
    assert!(s.peer_may_send());
}

/// On xtaci's wire a full accept backlog pauses reading (as Go's session blocks on its full
/// accept channel) instead of refusing: the SYN that does not fit, and everything after it, is
/// left unhandled in the input however many frames one read brought, and handed over again once
/// the application accepted. Nothing is refused. A backlog of 0 still refuses.
#[test]
fn a_full_backlog_leaves_the_syn_that_does_not_fit_unhandled() {
    let four = Limits {
        backlog: 4,
        ..limits()
    };
    let mut s: Core<()> = Core::with_protocol(Direction::Down, four, Protocol::Xtaci1);
    let mut input = Vec::new();
    for i in 0..1000u32 {
        input.extend_from_slice(&xframe(1, X::Syn, 3 + 2 * i, &[]));
    }
    let used = s.handle_input(&input, true).unwrap();
    assert_eq!(used, 4 * 8, "four SYNs taken, the fifth left with the rest");
    assert_eq!(s.counters().refused, 0);
    assert_eq!(s.num_streams(), 4);
    assert!(s.input_paused(), "the fifth waits for room");
    let mut events = Vec::new();
    s.accept().unwrap();
    s.take_events(&mut events);
    assert!(!s.input_paused());
    assert!(
        events.contains(&Event::Resume),
        "the reader is told to go on"
    );
    let mut at = used;
    while at < input.len() {
        assert!(!s.input_paused());
        let used = s.handle_input(&input[at..], true).unwrap();
        assert!(
            used > 0 && s.num_streams() <= 5,
            "{used} {}",
            s.num_streams()
        );
        at += used;
        let k = s.accept().unwrap();
        s.drop_handle(k);
        s.check_invariants().unwrap();
    }
    assert_eq!(s.counters().refused, 0);
    assert_eq!(s.counters().accepted, 997, "all but the four still waiting");

    let refusing = Limits {
        backlog: 0,
        ..limits()
    };
    let mut s: Core<()> = Core::with_protocol(Direction::Down, refusing, Protocol::Xtaci1);
    assert_eq!(s.handle_input(&input, true).unwrap(), input.len());
    assert_eq!(s.counters().refused, 1000);
    assert!(!s.input_paused());
}

/// While the backlog is full, what is not a new stream goes on: data for streams waiting in the
/// backlog and for those the application holds, their FINs, window updates. Only the next SYN
/// waits (Go's session, too, blocks only on the stream it cannot queue).
#[test]
fn a_full_backlog_holds_only_the_next_syn() {
    let one = Limits {
        backlog: 1,
        ..limits()
    };
    let mut s: Core<()> = Core::with_protocol(Direction::Down, one, Protocol::Xtaci2);
    feed(&mut s, &xframe(2, X::Syn, 3, &[])).unwrap();
    let held = s.accept().unwrap();
    let mut input = xframe(2, X::Syn, 5, &[]);
    input.extend_from_slice(&xframe(2, X::Psh, 5, b"waiting"));
    input.extend_from_slice(&xframe(2, X::Psh, 3, b"held"));
    input.extend_from_slice(&upd(3, 0, 1 << 20));
    input.extend_from_slice(&xframe(2, X::Fin, 3, &[]));
    let rest = input.len();
    input.extend_from_slice(&xframe(2, X::Syn, 7, &[]));
    input.extend_from_slice(&xframe(2, X::Psh, 3, b"late"));
    assert_eq!(s.handle_input(&input, true).unwrap(), rest);
    assert!(s.input_paused());
    let mut buf = [0u8; 16];
    assert_eq!(s.read(held, &mut buf), Read::Data(4));
    assert_eq!(&buf[..4], b"held");
    assert_eq!(s.read(held, &mut buf), Read::Eof, "its FIN came too");
    let waiting = s.accept().unwrap();
    assert_eq!(s.read(waiting, &mut buf), Read::Data(7));
    assert!(!s.input_paused());
    let used = s.handle_input(&input[rest..], true).unwrap();
    assert_eq!(used, 8 + 8 + 4, "the SYN and what followed it");
    assert_eq!(s.counters().refused, 0);
}

/// Past the memory budget, on xtaci's wire, a SYN and data for a stream not yet accepted wait
/// unhandled: the backlog holds at most the budget and the frame that crossed it, however much
/// one read brought. Data for a stream the application holds goes on.
#[test]
fn past_the_budget_only_what_the_backlog_would_hold_waits() {
    let tight = Limits {
        backlog: 100,
        budget: 128 * 1024, // two streams, each 60,000 bytes in a chunk of 64 KiB, and a bit
        ..limits()
    };
    let mut s: Core<()> = Core::with_protocol(Direction::Down, tight, Protocol::Xtaci1);
    feed(&mut s, &xframe(1, X::Syn, 3, &[])).unwrap();
    let held = s.accept().unwrap();
    let chunk = vec![7u8; 60_000];
    let mut input = Vec::new();
    for sid in [5, 7, 9] {
        input.extend_from_slice(&xframe(1, X::Syn, sid, &[]));
        input.extend_from_slice(&xframe(1, X::Psh, sid, &chunk));
    }
    let used = s.handle_input(&input, true).unwrap();
    // Stream 5 and its data fit; stream 7 fits; its data crosses the budget; stream 9 waits.
    assert_eq!(used, 2 * 8 + 2 * (8 + 60_000));
    assert!(s.input_paused());
    assert!(s.unclaimed_bytes() > 128 * 1024);
    s.check_invariants().unwrap();
    // Data for the stream the application holds is no budget's: it is taken.
    let mut more = xframe(1, X::Psh, 3, b"mine");
    more.extend_from_slice(&input[used..]);
    assert_eq!(s.handle_input(&more, true).unwrap(), 8 + 4);
    let mut buf = [0u8; 8];
    assert_eq!(s.read(held, &mut buf), Read::Data(4));
    assert!(s.input_paused(), "stream 9's SYN still waits");
    s.accept().unwrap();
    assert!(!s.input_paused(), "within the budget again");
    assert_eq!(
        s.handle_input(&input[used..], true).unwrap(),
        input.len() - used
    );
    assert_eq!(s.counters().refused, 0);
}
