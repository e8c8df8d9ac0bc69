//! Frames in, frames out: the protocol rules, without I/O.

use super::*;
use crate::error::ProtocolError;
use crate::frame::{Cmd, HEADER_LEN, MAX_PAYLOAD};

mod budget;
mod direct;
mod growth;
mod opens;
mod probes;
mod props;
mod xtaci;

use super::pair::deliver;

fn limits() -> Limits {
    Limits {
        window: 512 * 1024,
        max_frame: MAX_PAYLOAD,
        backlog: 4,
        write_buffer: 256 * 1024,
        max_streams: 65_535,
        budget: usize::MAX,
        max_window: 512 * 1024,
    }
}

fn client() -> Core<()> {
    Core::new(Direction::Up, limits())
}

fn server() -> Core<()> {
    Core::new(Direction::Down, limits())
}

/// Everything the core queued, as (header, payload) frames.
fn output(core: &mut Core<()>) -> Vec<(Header, Vec<u8>)> {
    let mut bytes = Vec::new();
    core.take_output(&mut bytes);
    let mut frames = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let h = Header::decode(rest[..HEADER_LEN].try_into().unwrap()).unwrap();
        let n = h.payload_len();
        frames.push((h, rest[HEADER_LEN..HEADER_LEN + n].to_vec()));
        rest = &rest[HEADER_LEN + n..];
    }
    frames
}

fn hdr(cmd: Cmd, sid: u16, len: u32) -> Header {
    Header::new(cmd, sid, len)
}

fn frame(core: &mut Core<()>, cmd: Cmd, sid: u16, len: u32) -> Result<(), ProtocolError> {
    core.handle_frame(hdr(cmd, sid, len), &[])
}

fn psh(core: &mut Core<()>, sid: u16, data: &[u8]) -> Result<(), ProtocolError> {
    core.handle_frame(hdr(Cmd::Psh, sid, data.len() as u32), data)
}

#[test]
fn trace_open_write_close_matches_the_original() {
    // Scenario 1 of the original's traces: SYN, PSH "hello", FIN; the passive side answers FIN.
    let (mut c, mut s) = (client(), server());
    let k = c.open().unwrap();
    assert_eq!(c.write(k, b"hello"), Write::Queued(5));
    c.close(k);
    let mut bytes = Vec::new();
    c.take_output(&mut bytes);
    let want = "000100000000000201000500000068656c6c6f01010000000000";
    assert_eq!(hex(&bytes), want);
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let h = Header::decode(rest[..7].try_into().unwrap()).unwrap();
        let n = h.payload_len();
        s.handle_frame(h, &rest[7..7 + n]).unwrap();
        rest = &rest[7 + n..];
    }
    let t = s.accept().unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(s.read(t, &mut buf), Read::Data(5));
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(s.read(t, &mut buf), Read::Eof);
    let mut answer = Vec::new();
    s.take_output(&mut answer);
    assert_eq!(hex(&answer), "01010000000000");
    // The passive side released the id at once; the active side when the FIN comes back.
    assert_eq!(s.num_streams(), 0);
    assert_eq!(c.num_streams(), 1);
    c.handle_frame(hdr(Cmd::Fin, 1, 0), &[]).unwrap();
    assert_eq!(c.num_streams(), 0);
}

#[test]
fn trace_confirm_after_reading_matches_the_original_amounts() {
    // Scenario 5: 256 KiB sent in 64 KiB frames; reading it all confirms 262144 bytes in total.
    let (mut c, mut s) = (client(), server());
    let k = c.open().unwrap();
    let data = vec![0xAA; 262_144];
    let mut sent = 0;
    while sent < data.len() {
        match c.write(k, &data[sent..]) {
            Write::Queued(n) => sent += n,
            other => panic!("{other:?}"),
        }
    }
    let frames = output(&mut c);
    assert_eq!(frames.len(), 5);
    assert!(frames[1..]
        .iter()
        .all(|(h, p)| h.len == 65_536 && p.len() == 65_536));
    for (h, p) in frames {
        s.handle_frame(h, &p).unwrap();
    }
    let t = s.accept().unwrap();
    let mut buf = vec![0u8; 300_000];
    let mut got = 0;
    while let Read::Data(n) = s.read(t, &mut buf) {
        got += n;
    }
    assert_eq!(got, 262_144);
    let confirmed: u32 = output(&mut s)
        .iter()
        .filter(|(h, _)| h.cmd == Cmd::Cfm)
        .map(|(h, _)| h.len)
        .sum();
    assert_eq!(confirmed, 262_144);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn send_credit_is_the_window() {
    let mut c = client();
    let k = c.open().unwrap();
    let data = vec![1u8; 1 << 20];
    let mut sent = 0;
    loop {
        match c.write(k, &data[sent..]) {
            Write::Queued(n) => sent += n,
            Write::QueueFull => {
                let _ = output(&mut c);
            }
            Write::NoCredit => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(sent, 512 * 1024);
    let _ = output(&mut c);
    frame(&mut c, Cmd::Cfm, 1, 1000).unwrap();
    assert_eq!(c.write(k, &data), Write::Queued(1000));
    assert_eq!(c.write(k, &data), Write::NoCredit);
}

#[test]
fn writes_commit_whole_frames_or_nothing() {
    let mut c = client();
    let k = c.open().unwrap();
    let _ = output(&mut c);
    let big = vec![7u8; 100_000];
    // One call commits at most one frame of at most 64 KiB.
    assert_eq!(c.write(k, &big), Write::Queued(65_536));
    let frames = output(&mut c);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].0, hdr(Cmd::Psh, 1, 65_536));
    assert_eq!(frames[0].1.len(), 65_536);
}

#[test]
fn queue_bound_blocks_writers_and_frees_them() {
    let mut c = client();
    let keys: Vec<_> = (0..8).map(|_| c.open().unwrap()).collect();
    let chunk = vec![0u8; 65_536];
    let mut blocked = None;
    for &k in &keys {
        match c.write(k, &chunk) {
            Write::Queued(_) => {}
            Write::QueueFull => {
                blocked = Some(k);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    let k = blocked.expect("the 256 KiB write buffer fills");
    assert!(c.queued_len() >= 256 * 1024);
    let mut out = Vec::new();
    c.take_output(&mut out);
    let mut events = Vec::new();
    c.take_events(&mut events);
    assert!(
        events.contains(&Event::Writable(k)),
        "the blocked writer is woken"
    );
    assert!(matches!(c.write(k, &chunk), Write::Queued(_)));
}

#[test]
fn receiving_beyond_the_window_is_an_error() {
    let mut s = server();
    frame(&mut s, Cmd::Syn, 1, 0).unwrap();
    let chunk = vec![0u8; 65_536];
    for _ in 0..8 {
        psh(&mut s, 1, &chunk).unwrap();
    }
    assert_eq!(
        psh(&mut s, 1, b"x"),
        Err(ProtocolError::WindowExceeded {
            stream: 1,
            window: 512 * 1024
        })
    );
}

#[test]
fn confirms_grant_what_was_read_and_are_coalesced() {
    let mut s = server();
    frame(&mut s, Cmd::Syn, 1, 0).unwrap();
    let t = s.accept().unwrap();
    let chunk = vec![0u8; 65_536];
    for _ in 0..8 {
        psh(&mut s, 1, &chunk).unwrap();
    }
    let mut buf = vec![0u8; 1000];
    let mut read = 0;
    while read < 400_000 {
        let Read::Data(n) = s.read(t, &mut buf) else {
            panic!()
        };
        read += n;
    }
    // One CFM for everything read so far, however many reads crossed the threshold.
    let cfm: Vec<_> = output(&mut s)
        .into_iter()
        .filter(|(h, _)| h.cmd == Cmd::Cfm)
        .collect();
    assert_eq!(cfm.len(), 1);
    assert_eq!(cfm[0].0.len as usize, read);
    // The credit is back: the peer may send that much again.
    for _ in 0..6 {
        psh(&mut s, 1, &chunk).unwrap();
    }
}

#[test]
fn a_confirm_goes_out_once_a_sixteenth_of_the_window_is_read() {
    // A sender with one window per round trip waits for this confirm: the sooner it goes, the
    // closer that sender gets to a full window per round trip.
    let mut s = server();
    frame(&mut s, Cmd::Syn, 1, 0).unwrap();
    let t = s.accept().unwrap();
    let window = s.stream(t).unwrap().recv_window() as usize;
    let chunk = vec![0u8; 32_768];
    for _ in 0..4 {
        psh(&mut s, 1, &chunk).unwrap();
    }
    let cfms = |s: &mut Core<()>| {
        output(s)
            .into_iter()
            .filter(|(h, _)| h.cmd == Cmd::Cfm)
            .map(|(h, _)| h.len as usize)
            .collect::<Vec<_>>()
    };
    let mut buf = vec![0u8; window / 16 - 1];
    assert_eq!(s.read(t, &mut buf), Read::Data(buf.len()));
    assert_eq!(cfms(&mut s), Vec::<usize>::new(), "not before a sixteenth");
    assert_eq!(s.read(t, &mut buf[..1]), Read::Data(1));
    assert_eq!(cfms(&mut s), vec![window / 16]);
}

#[test]
fn a_confirm_for_more_than_sent_is_stale_and_gives_no_credit() {
    let mut c = client();
    let k = c.open().unwrap();
    assert_eq!(c.write(k, b"abc"), Write::Queued(3));
    // It can only be late (for an earlier stream with this id): ignored, not a session error.
    assert_eq!(frame(&mut c, Cmd::Cfm, 1, 4), Ok(()));
    assert_eq!(frame(&mut c, Cmd::Cfm, 1, u32::MAX), Ok(()));
    assert_eq!(c.stream(k).unwrap().send_credit(), 512 * 1024 - 3);
    // Whatever a hostile peer confirms, this side never sends beyond the window.
    let big = vec![0u8; MAX_PAYLOAD as usize];
    let mut sent = 3;
    loop {
        match c.write(k, &big) {
            Write::Queued(n) => sent += n,
            Write::NoCredit => break,
            Write::QueueFull => {
                output(&mut c);
                frame(&mut c, Cmd::Cfm, 1, 1 << 30).unwrap();
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(sent, 512 * 1024);
    output(&mut c);
    assert_eq!(frame(&mut c, Cmd::Cfm, 1, 3), Ok(()));
    assert_eq!(
        c.write(k, b"xyz"),
        Write::Queued(3),
        "a real confirm gives credit"
    );
}

#[test]
fn syn_for_id_zero_opens_a_stream() {
    // The newest original's first stream is id 0 (docs/PROTOCOL.md 10).
    let mut s = server();
    frame(&mut s, Cmd::Syn, 0, 0).unwrap();
    psh(&mut s, 0, b"hi").unwrap();
    let k = s.accept().expect("stream 0 accepted");
    assert_eq!(s.id(k), Some(0));
    let mut buf = [0u8; 4];
    assert_eq!(s.read(k, &mut buf), Read::Data(2));
    assert_eq!(s.write(k, b"yo"), Write::Queued(2));
    frame(&mut s, Cmd::Fin, 0, 0).unwrap();
    let out = output(&mut s);
    assert_eq!(out[0], (hdr(Cmd::Psh, 0, 2), b"yo".to_vec()));
    assert_eq!(out[1], (hdr(Cmd::Fin, 0, 0), vec![]));
    assert_eq!(s.num_streams(), 0);
    // This side still never allocates id 0.
    let mut c = client();
    frame(&mut c, Cmd::Syn, 0, 0).unwrap();
    let k = c.open().unwrap();
    assert_eq!(c.id(k), Some(1));
}

#[test]
fn late_frames_of_a_closed_stream_never_reach_a_new_one() {
    // Recorded from the original (vectors/original_77536ae_traces.txt, D): its FIN answer, then a
    // CFM for the stream; and, when its application closes late, a second FIN, by id.
    let mut c = client();
    let k = c.open().unwrap();
    assert_eq!(c.write(k, &vec![1u8; 65_536]), Write::Queued(65_536));
    c.close(k);
    output(&mut c);
    frame(&mut c, Cmd::Fin, 1, 0).unwrap(); // its FIN answer: id 1 released
    c.drop_handle(k);
    assert_eq!(c.num_streams(), 0);
    // Our next open does not reuse id 1 at once ...
    let n = c.open().unwrap();
    assert_ne!(c.id(n), Some(1));
    // ... so the late frames find no stream and end nothing.
    frame(&mut c, Cmd::Cfm, 1, 65_536).unwrap();
    frame(&mut c, Cmd::Fin, 1, 0).unwrap();
    psh(&mut c, 1, b"late").unwrap();
    assert_eq!(c.stream(n).unwrap().state(), State::Open);
    assert_eq!(c.write(n, b"fresh"), Write::Queued(5));
    let out = output(&mut c);
    assert!(out.iter().all(|(h, _)| h.sid != 1), "{out:?}");
}

#[test]
fn frames_for_unknown_ids_are_ignored() {
    let mut s = server();
    psh(&mut s, 9, b"lost").unwrap();
    frame(&mut s, Cmd::Fin, 9, 0).unwrap();
    frame(&mut s, Cmd::Cfm, 9, 100).unwrap();
    assert!(output(&mut s).is_empty());
    assert_eq!(s.num_streams(), 0);
}

#[test]
fn syns_beyond_the_backlog_are_refused_with_fin() {
    let mut s = server();
    for id in 1..=5 {
        frame(&mut s, Cmd::Syn, id, 0).unwrap();
    }
    // Backlog of 4: the fifth is refused, its id held until the peer's FIN comes back.
    assert_eq!(output(&mut s), vec![(hdr(Cmd::Fin, 5, 0), vec![])]);
    assert_eq!(s.num_streams(), 5);
    frame(&mut s, Cmd::Fin, 5, 0).unwrap();
    assert_eq!(s.num_streams(), 4);
    for _ in 0..4 {
        assert!(s.accept().is_some());
    }
    assert!(s.accept().is_none());
}

#[test]
fn simultaneous_open_binds_both_ends_to_one_stream() {
    let mut c = client();
    let k = c.open().unwrap();
    let _ = output(&mut c);
    frame(&mut c, Cmd::Syn, 1, 0).unwrap();
    assert!(
        c.accept().is_none(),
        "the SYN for our own open id is ignored"
    );
    psh(&mut c, 1, b"hi").unwrap();
    let mut buf = [0; 2];
    assert_eq!(c.read(k, &mut buf), Read::Data(2));
}

#[test]
fn simultaneous_close_releases_the_id_on_both_sides() {
    let (mut c, mut s) = (client(), server());
    let k = c.open().unwrap();
    deliver(&mut c, &mut s);
    let t = s.accept().unwrap();
    c.close(k);
    s.close(t);
    // Both FINs cross: each side receives FIN while waiting for one.
    let (fc, fs) = (output(&mut c), output(&mut s));
    for (h, p) in fc {
        s.handle_frame(h, &p).unwrap();
    }
    for (h, p) in fs {
        c.handle_frame(h, &p).unwrap();
    }
    assert_eq!((c.num_streams(), s.num_streams()), (0, 0));
    assert!(
        output(&mut c).is_empty() && output(&mut s).is_empty(),
        "no FIN answers a FIN"
    );
}

#[test]
fn a_stale_handle_never_touches_a_newer_stream_with_the_same_id() {
    let mut s = server();
    frame(&mut s, Cmd::Syn, 7, 0).unwrap();
    let old = s.accept().unwrap();
    frame(&mut s, Cmd::Fin, 7, 0).unwrap(); // the peer closes: id 7 released here
    let _ = output(&mut s);
    frame(&mut s, Cmd::Syn, 7, 0).unwrap(); // and reopens it
    let new = s.accept().unwrap();
    assert_ne!(old, new);
    s.close(old);
    s.drop_handle(old);
    assert!(output(&mut s).is_empty(), "no FIN for the newer stream");
    psh(&mut s, 7, b"new").unwrap();
    let mut buf = [0; 3];
    assert_eq!(s.read(new, &mut buf), Read::Data(3));
    assert_eq!(s.write(old, b"x"), Write::ClosedLocally);
}

#[test]
fn passive_close_keeps_buffered_data_then_ends() {
    let mut s = server();
    frame(&mut s, Cmd::Syn, 1, 0).unwrap();
    let t = s.accept().unwrap();
    psh(&mut s, 1, b"last words").unwrap();
    frame(&mut s, Cmd::Fin, 1, 0).unwrap();
    assert_eq!(s.write(t, b"x"), Write::ClosedByPeer);
    let mut buf = [0; 32];
    assert_eq!(s.read(t, &mut buf), Read::Data(10));
    assert_eq!(s.read(t, &mut buf), Read::Eof);
    s.drop_handle(t);
    assert_eq!(s.num_streams(), 0);
    assert!(
        s.keys().is_empty(),
        "the stream is forgotten once its handle is gone"
    );
}

#[test]
fn a_fin_answer_is_not_part_of_what_a_flush_waits_for() {
    // The peer's FIN is answered by the protocol, not by the stream's user: a flush of the stream
    // waits for the user's data only. A peer that closes its transport right after its FIN never
    // lets the answer out, and the flush of data it already read must not fail for that.
    let mut s = server();
    frame(&mut s, Cmd::Syn, 1, 0).unwrap();
    let t = s.accept().unwrap();
    assert_eq!(s.write(t, b"reply"), Write::Queued(5));
    let data_end = s.stream(t).unwrap().last_queued;
    frame(&mut s, Cmd::Fin, 1, 0).unwrap();
    assert!(s.out_pos() > data_end, "the FIN's answer is queued");
    assert_eq!(s.stream(t).unwrap().last_queued, data_end);
    // This side's own close is what the user wrote: a flush waits for that FIN.
    let mut c = client();
    let k = c.open().unwrap();
    assert_eq!(c.write(k, b"request"), Write::Queued(7));
    c.close(k);
    assert_eq!(c.stream(k).unwrap().last_queued, c.out_pos());
}

#[test]
fn local_close_then_reads_and_writes_fail() {
    let mut c = client();
    let k = c.open().unwrap();
    c.close(k);
    c.close(k); // idempotent: one FIN
    let fins = output(&mut c)
        .into_iter()
        .filter(|(h, _)| h.cmd == Cmd::Fin)
        .count();
    assert_eq!(fins, 1);
    assert_eq!(c.write(k, b"x"), Write::ClosedLocally);
    assert_eq!(c.read(k, &mut [0; 4]), Read::ClosedLocally);
    // Data still in flight from the peer is discarded, not an error.
    psh(&mut c, 1, b"late").unwrap();
}

#[test]
fn no_confirm_is_sent_after_our_fin() {
    let (mut c, mut s) = (client(), server());
    let k = c.open().unwrap();
    deliver(&mut c, &mut s);
    let t = s.accept().unwrap();
    psh(&mut c, 1, &vec![0u8; 65_536]).unwrap();
    for _ in 0..2 {
        psh(&mut c, 1, &vec![0u8; 65_536]).unwrap();
    }
    let mut buf = vec![0u8; 200_000];
    assert!(matches!(c.read(k, &mut buf), Read::Data(_)));
    c.close(k);
    let frames = output(&mut c);
    assert_eq!(frames.last().unwrap().0.cmd, Cmd::Fin);
    assert!(frames.iter().all(|(h, _)| h.cmd != Cmd::Cfm));
    let _ = t;
}

#[test]
fn ids_recycle_on_both_sides_through_many_cycles() {
    let (mut c, mut s) = (client(), server());
    for _ in 0..70_000 {
        let k = c.open().unwrap();
        deliver(&mut c, &mut s);
        let t = s.accept().unwrap();
        c.close(k);
        c.drop_handle(k);
        deliver(&mut c, &mut s);
        s.drop_handle(t);
        deliver(&mut s, &mut c);
    }
    assert_eq!((c.num_streams(), s.num_streams()), (0, 0));
    assert!(c.keys().is_empty() && s.keys().is_empty());
    // The other side can still open.
    let t = s.open().unwrap();
    assert_eq!(s.id(t), Some(65_535));
}

#[test]
fn the_stream_limit_holds_and_reservations_count() {
    let mut c = Core::<()>::new(
        Direction::Up,
        Limits {
            max_streams: 2,
            ..limits()
        },
    );
    c.reserve().unwrap();
    let a = c.open().unwrap();
    assert_eq!(c.open(), Err(OpenError::AtLimit));
    assert_eq!(c.reserve(), Err(OpenError::AtLimit));
    c.unreserve();
    let _b = c.open().unwrap();
    c.close(a);
    deliver_fin_back(&mut c, 1);
    assert!(c.open().is_ok());
}

fn deliver_fin_back(c: &mut Core<()>, id: u16) {
    let _ = output(c);
    frame(c, Cmd::Fin, id, 0).unwrap();
}

#[test]
fn peer_gone_ends_streams_with_their_data() {
    let mut s = server();
    frame(&mut s, Cmd::Syn, 1, 0).unwrap();
    let t = s.accept().unwrap();
    psh(&mut s, 1, b"tail").unwrap();
    s.peer_gone();
    assert_eq!(s.num_streams(), 0);
    let mut buf = [0; 8];
    assert_eq!(s.read(t, &mut buf), Read::Data(4));
    assert_eq!(
        s.read(t, &mut buf),
        Read::Cut,
        "never closed by the peer: not a clean end"
    );
    assert_eq!(s.write(t, b"x"), Write::ClosedByPeer);
}

#[test]
fn receive_buffers_shrink_back() {
    let mut s = server();
    frame(&mut s, Cmd::Syn, 1, 0).unwrap();
    let t = s.accept().unwrap();
    for _ in 0..4 {
        psh(&mut s, 1, &vec![0u8; 65_536]).unwrap();
    }
    let mut buf = vec![0u8; 1 << 20];
    assert_eq!(s.read(t, &mut buf), Read::Data(4 * 65_536));
    assert_eq!(s.stream(t).unwrap().recv.capacity(), 0);
}

#[test]
fn writers_share_the_queue_frame_by_frame() {
    let mut c = client();
    let (a, b) = (c.open().unwrap(), c.open().unwrap());
    let chunk = vec![0u8; 65_536];
    // A fills the queue; B finds it full and waits.
    while let Write::Queued(_) = c.write(a, &chunk) {}
    assert_eq!(c.write(b, &chunk), Write::QueueFull);
    let mut from_b = 0;
    for _round in 0..4 {
        let mut out = Vec::new();
        c.take_output(&mut out);
        // A is woken first and greedy, but it may take only about one frame while B waits.
        let mut a_frames = 0;
        while let Write::Queued(_) = c.write(a, &chunk) {
            a_frames += 1;
        }
        assert!(a_frames <= 1, "A took {a_frames} frames while B waited");
        // B, greedy too, gets its share.
        while let Write::Queued(n) = c.write(b, &chunk) {
            from_b += n;
        }
    }
    assert!(from_b >= 3 * 65_536, "B got {from_b} bytes");
}

#[test]
fn only_as_many_waiters_as_fit_are_woken_while_output_flows() {
    let mut c = client();
    let keys: Vec<_> = (0..100).map(|_| c.open().unwrap()).collect();
    let chunk = vec![0u8; 65_536];
    let mut waiting = Vec::new();
    for &k in &keys {
        if c.write(k, &chunk) == Write::QueueFull {
            waiting.push(k);
        }
    }
    assert!(waiting.len() > 90, "most writers wait for room");
    let woken = |c: &mut Core<()>| {
        let mut events = Vec::new();
        c.take_events(&mut events);
        events
            .iter()
            .filter(|e| matches!(e, Event::Writable(_)))
            .count()
    };
    let _ = woken(&mut c);
    // Output in flight: about as many as the queue takes are woken, oldest first.
    let mut out = Vec::new();
    c.take_output(&mut out);
    let first = woken(&mut c);
    assert!((1..=8).contains(&first), "{first} woken");
    assert!(c.has_queue_waiters());
    assert!(
        !c.room_recheck(),
        "output is in flight: the driver comes back after writing it"
    );
    // Nothing to write (the woken ones did not write): another batch only, and the driver is
    // told to come back after giving them a turn rather than when output flows.
    let mut out = Vec::new();
    c.take_output(&mut out);
    assert!(out.is_empty());
    let second = woken(&mut c);
    assert_eq!(second, first, "a batch, not everyone");
    assert!(c.room_recheck());
    // Another take before they had their turn (the driver's next round) wakes nobody more.
    let mut out = Vec::new();
    c.take_output(&mut out);
    assert!(out.is_empty());
    assert_eq!(woken(&mut c), 0);
    assert!(c.room_recheck());
    // Back after their turn, and still nothing was written (those woken may never write): every
    // waiter is woken, so none sleeps while room is free.
    c.room_rechecked();
    assert_eq!(woken(&mut c), waiting.len() - first - second);
    assert!(!c.has_queue_waiters());
    assert!(!c.room_recheck());
}

#[test]
fn woken_writers_that_wrote_are_not_followed_by_everyone() {
    let mut c = client();
    let keys: Vec<_> = (0..100).map(|_| c.open().unwrap()).collect();
    let chunk = vec![0u8; 65_536];
    for &k in &keys {
        let _ = c.write(k, &chunk);
    }
    let mut out = Vec::new();
    c.take_output(&mut out); // the queue's first 256 KiB
    let mut events = Vec::new();
    c.take_events(&mut events);
    let mut out = Vec::new();
    c.take_output(&mut out); // nothing: a batch is woken
    events.clear();
    c.take_events(&mut events);
    assert!(c.room_recheck());
    // One of them writes before the driver is back: the rest of the batch may yet write too,
    // and the others are not woken.
    let Some(Event::Writable(k)) = events.iter().find(|e| matches!(e, Event::Writable(_))) else {
        panic!("a batch was woken: {events:?}");
    };
    assert!(matches!(c.write(*k, &chunk), Write::Queued(_)));
    c.room_rechecked();
    events.clear();
    c.take_events(&mut events);
    assert!(events.is_empty(), "{events:?}");
    assert!(!c.room_recheck());
    assert!(c.has_queue_waiters());
}

#[test]
fn woken_writers_that_write_keep_the_wakes_to_a_batch() {
    // Thousands of writers waiting for room, and a driver that comes back before the ones it
    // woke have run (a busy executor): as long as they write, every take wakes one batch, so
    // the writers are woken about once each, not once per batch.
    let mut c = client();
    let keys: Vec<_> = (0..1000).map(|_| c.open().unwrap()).collect();
    let chunk = vec![0u8; 16 * 1024];
    let mut waiting = 0;
    for &k in &keys {
        if c.write(k, &chunk) == Write::QueueFull {
            waiting += 1;
        }
    }
    assert!(waiting > 900, "most writers wait for room");
    let mut wakes = 0;
    let mut events = Vec::new();
    c.take_events(&mut events);
    for _ in 0..10_000 {
        if !c.has_queue_waiters() {
            break;
        }
        let mut out = Vec::new();
        c.take_output(&mut out);
        events.clear();
        c.take_events(&mut events);
        // The driver takes again before they ran (nothing to write yet), then they all write.
        let mut out = Vec::new();
        c.take_output(&mut out);
        c.take_events(&mut events);
        let woken: Vec<StreamKey> = events
            .iter()
            .filter_map(|e| match e {
                Event::Writable(k) => Some(*k),
                _ => None,
            })
            .collect();
        wakes += woken.len();
        for k in woken {
            let _ = c.write(k, &chunk);
        }
    }
    assert!(!c.has_queue_waiters(), "every writer got room");
    assert!(
        wakes <= 2 * waiting,
        "{wakes} wakes for {waiting} waiting writers"
    );
}

#[test]
fn closing_a_stream_drops_its_unread_data_at_once() {
    // A peer that fills windows and never answers FIN must not make this side hold the data of
    // streams the application already closed.
    let mut s = server();
    frame(&mut s, Cmd::Syn, 1, 0).unwrap();
    let k = s.accept().unwrap();
    let chunk = vec![3u8; 65_536];
    for _ in 0..8 {
        psh(&mut s, 1, &chunk).unwrap();
    }
    assert!(s.stream(k).unwrap().recv.capacity() >= 512 * 1024);
    s.close(k);
    assert_eq!(s.stream(k).unwrap().recv.capacity(), 0);
    // Data still in flight for it is ignored, and holds nothing either.
    psh(&mut s, 1, &chunk).unwrap();
    assert_eq!(s.stream(k).unwrap().recv.capacity(), 0);
    s.drop_handle(k);
    assert_eq!(s.num_streams(), 1, "the id waits for the peer's FIN");
}
