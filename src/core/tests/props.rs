//! Property tests: random operation sequences into one core facing a hostile peer, and into two
//! cores joined by the pair harness (`pair.rs`), with every rule of `check.rs` checked after every
//! step. They run in plain `cargo test`, each run from a new seed (CI fixes it: `.ci/run`); the
//! fuzz targets drive the same harness for longer. A case found fails again from
//! `proptest-regressions/`, which is committed.

use proptest::prelude::*;

use super::*;
use crate::core::pair::{Pair, PairOp};
use crate::core::wire::Protocol;

/// Small limits, so that a few hundred steps reach every edge: full windows, a full output queue,
/// a full backlog, the stream limit, grown windows.
fn small_limits() -> impl Strategy<Value = Limits> {
    (
        1024u32..=16 * 1024,
        1u32..=4096,
        0usize..=6,
        1024usize..=8192,
        1usize..=40,
    )
        .prop_map(
            |(window, max_frame, backlog, write_buffer, max_streams)| Limits {
                window,
                max_frame,
                backlog,
                write_buffer,
                max_streams,
                budget: usize::MAX,
                max_window: window * 4,
            },
        )
}

/// The wires two cores may speak: each protocol on both ends, and a detecting server.
fn protocols() -> impl Strategy<Value = (Protocol, Protocol)> {
    use Protocol::*;
    prop_oneof![
        2 => Just((Yddeng, Yddeng)),
        2 => Just((Xtaci1, Xtaci1)),
        2 => Just((Xtaci2, Xtaci2)),
        1 => Just((Yddeng, Detect)),
        1 => Just((Xtaci1, Detect)),
        1 => Just((Xtaci2, Detect)),
    ]
}

fn pair_op() -> impl Strategy<Value = PairOp> {
    let side = any::<bool>();
    prop_oneof![
        3 => side.prop_map(PairOp::Open),
        1 => side.prop_map(PairOp::Reserve),
        1 => side.prop_map(PairOp::OpenReserved),
        1 => side.prop_map(PairOp::Unreserve),
        3 => side.prop_map(PairOp::Accept),
        8 => (side, any::<u8>(), 0u16..=20_000).prop_map(|(b, i, n)| PairOp::Write(b, i, n)),
        8 => (side, any::<u8>(), 0u16..=20_000).prop_map(|(b, i, n)| PairOp::Read(b, i, n)),
        2 => (side, any::<u8>()).prop_map(|(b, i)| PairOp::Close(b, i)),
        2 => (side, any::<u8>()).prop_map(|(b, i)| PairOp::Drop(b, i)),
        2 => (side, any::<u8>()).prop_map(|(b, i)| PairOp::CloseWrite(b, i)),
        6 => side.prop_map(PairOp::Take),
        6 => (side, 0u8..=16).prop_map(|(b, n)| PairOp::Deliver(b, n)),
        1 => (side, any::<u16>(), any::<u32>()).prop_map(|(b, v1, v2)| PairOp::Ping(b, v1, v2)),
        1 => side.prop_map(PairOp::CloseAll),
        2 => (0u16..=200).prop_map(PairOp::Tick),
    ]
}

/// A frame from a peer that owes this core nothing: any command, ids near both ends of the space
/// and ids this core uses, lengths from nothing to far beyond any window.
#[derive(Debug, Clone)]
enum Input {
    Open,
    Accept,
    Write(u8, u16),
    Read(u8, u16),
    Close(u8),
    Drop(u8),
    Take,
    Frame(Cmd, u16, u32),
}

fn input() -> impl Strategy<Value = Input> {
    let sid = prop_oneof![0u16..=4, 65_532u16..=65_535, any::<u16>()];
    let cmd = prop_oneof![
        Just(Cmd::Syn),
        Just(Cmd::Fin),
        Just(Cmd::Psh),
        Just(Cmd::Cfm),
        Just(Cmd::Vrm),
        Just(Cmd::Pin),
    ];
    prop_oneof![
        2 => Just(Input::Open),
        2 => Just(Input::Accept),
        3 => (any::<u8>(), 0u16..=9000).prop_map(|(i, n)| Input::Write(i, n)),
        3 => (any::<u8>(), 0u16..=9000).prop_map(|(i, n)| Input::Read(i, n)),
        1 => any::<u8>().prop_map(Input::Close),
        1 => any::<u8>().prop_map(Input::Drop),
        3 => Just(Input::Take),
        8 => (cmd, sid, prop_oneof![0u32..=9000, any::<u32>()])
            .prop_map(|(c, s, n)| Input::Frame(c, s, n)),
    ]
}

/// A frame of `protocol`'s wire (on xtaci's: yddeng's command numbers 0-4 as SYN, FIN, PSH, NOP,
/// UPD, version 1 or 2 whatever the session's, ids of either parity), its payload zeros.
fn hostile_frame(protocol: Protocol, cmd: Cmd, sid: u16, len: u32) -> Vec<u8> {
    let payload_len = |n: u32| if cmd == Cmd::Psh { n.min(9000) } else { 0 };
    match protocol {
        Protocol::Yddeng | Protocol::Detect => {
            let h = Header::new(cmd, sid, if cmd == Cmd::Psh { len.min(9000) } else { len });
            let mut b = h.encode().to_vec();
            b.resize(b.len() + h.payload_len(), 0);
            b
        }
        _ => {
            use crate::frame::xtaci;
            let version = if len % 7 == 0 { 1 } else { 2 };
            let (xcmd, n) = match cmd {
                Cmd::Syn => (xtaci::Cmd::Syn, 0),
                Cmd::Fin => (xtaci::Cmd::Fin, 0),
                Cmd::Psh => (xtaci::Cmd::Psh, payload_len(len)),
                Cmd::Cfm | Cmd::Pin => (xtaci::Cmd::Nop, 0),
                _ => (xtaci::Cmd::Upd, 8),
            };
            let wire_sid = u32::from(sid) | (len & 0xFFFF_0000);
            let mut b = xtaci::Header::new(version, xcmd, n as u16, wire_sid)
                .encode()
                .to_vec();
            if xcmd == xtaci::Cmd::Upd {
                b.extend_from_slice(&len.to_le_bytes());
                b.extend_from_slice(&(len / 3).to_le_bytes());
            } else {
                b.resize(b.len() + n as usize, 0);
            }
            b
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Two cores in any interleaving of opens, writes, reads, closes, drops, probes, clock ticks
    /// and deliveries: every rule holds after every step, every byte arrives intact and in order,
    /// and once both drop everything nothing is left.
    #[test]
    fn two_cores_keep_every_rule(
        limits in small_limits(),
        (client, server) in protocols(),
        ops in prop::collection::vec(pair_op(), 1..400),
    ) {
        let mut pair = Pair::with_protocols(limits, client, server);
        for op in ops {
            pair.step(op);
        }
        pair.drain();
    }

    /// One core against a hostile peer's frames, mixed with the application's actions: every rule
    /// holds after every step until the peer breaks the protocol, and after the session ends.
    #[test]
    fn one_core_keeps_every_rule_against_any_peer(
        client in any::<bool>(),
        (protocol, _) in protocols(),
        budget in 0usize..=200_000,
        limits in small_limits(),
        inputs in prop::collection::vec(input(), 1..300),
    ) {
        let limits = Limits { budget, ..limits };
        let dir = if client { Direction::Up } else { Direction::Down };
        let mut core = Core::<()>::with_protocol(dir, limits, protocol);
        core.offer_extension();
        let mut held: Vec<StreamKey> = Vec::new();
        let mut buf = vec![0u8; 9000];
        let mut out = Vec::new();
        let mut unread = Vec::new();
        for input in inputs {
            let pick = |held: &Vec<StreamKey>, i: u8| {
                (!held.is_empty()).then(|| held[i as usize % held.len()])
            };
            match input {
                Input::Open => held.extend(core.open().ok()),
                Input::Accept => held.extend(core.accept()),
                Input::Write(i, n) => {
                    if let Some(k) = pick(&held, i) {
                        let _ = core.write(k, &buf[..usize::from(n)]);
                    }
                }
                Input::Read(i, n) => {
                    if let Some(k) = pick(&held, i) {
                        let _ = core.read(k, &mut buf[..usize::from(n)]);
                    }
                }
                Input::Close(i) => {
                    if let Some(k) = pick(&held, i) {
                        core.close(k);
                    }
                }
                Input::Drop(i) => {
                    if let Some(k) = pick(&held, i) {
                        held.retain(|h| *h != k);
                        core.drop_handle(k);
                    }
                }
                Input::Take => {
                    out.clear();
                    core.take_output(&mut out);
                    crate::core::pair::split(core.protocol(), &out).map_err(TestCaseError::fail)?;
                }
                Input::Frame(cmd, sid, len) => {
                    // As the driver reads: frames the core left wait for it to go on.
                    unread.extend_from_slice(&hostile_frame(protocol, cmd, sid, len));
                }
            }
            if !core.input_paused() {
                match core.handle_input(&unread, true) {
                    Ok(used) => drop(unread.drain(..used)),
                    Err(_) => {
                        core.peer_gone();
                        core.check_invariants().map_err(TestCaseError::fail)?;
                        break;
                    }
                }
                prop_assert!(
                    unread.is_empty() || core.input_paused(),
                    "frames left over while reading goes on"
                );
            }
            let mut events = Vec::new();
            core.take_events(&mut events);
            core.check_invariants().map_err(TestCaseError::fail)?;
        }
    }
}
