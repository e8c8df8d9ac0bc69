//! Payloads read straight into their buffer (`core/direct.rs`): what the application reads, and
//! every rule that applies, are those of the same bytes fed to `handle_input`.

use super::*;
use crate::core::wire::Protocol;
use crate::frame::xtaci;

/// The bytes of a PSH for `sid` with `len` payload bytes of `pattern(i)`.
fn psh_bytes(sid: u16, len: usize) -> Vec<u8> {
    let mut b = hdr(Cmd::Psh, sid, len as u32).encode().to_vec();
    b.extend((0..len).map(|i| (i % 251) as u8));
    b
}

/// Feeds `frame` as the driver does when only its first `have` bytes came in one read: the header
/// and part of the payload to `handle_input`, which leaves them, then the payload read straight
/// into its buffer.
fn feed_split(core: &mut Core<()>, frame: &[u8], have: usize) -> Result<(), ProtocolError> {
    let input = &frame[..have];
    assert_eq!(core.handle_input(input, true)?, 0, "not a whole frame");
    let head = core
        .partial_data(input, 16 * 1024)
        .expect("a large data frame, partly there");
    assert_eq!(head.len + head.payload, frame.len());
    let mut payload = core.payload_buffer(head.payload);
    assert_eq!(payload.len(), head.payload);
    payload.copy_from_slice(&frame[head.len..]);
    core.handle_data(head, payload, true)
}

fn read_all(core: &mut Core<()>, key: StreamKey) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 7000];
    while let Read::Data(n) = core.read(key, &mut buf) {
        out.extend_from_slice(&buf[..n]);
    }
    out
}

#[test]
fn a_payload_read_straight_into_its_buffer_reads_back_in_order_with_copied_ones() {
    let mut s = server();
    frame(&mut s, Cmd::Syn, 1, 0).unwrap();
    let key = s.accept().expect("accepted");
    let big = psh_bytes(1, 40_000);
    psh(&mut s, 1, b"before").unwrap();
    feed_split(&mut s, &big, 1_000).unwrap();
    psh(&mut s, 1, b"after").unwrap();
    let mut want = b"before".to_vec();
    want.extend_from_slice(&big[HEADER_LEN..]);
    want.extend_from_slice(b"after");
    assert_eq!(read_all(&mut s, key), want);
    // Recycled buffers hold old bytes: what is read is only ever what the frames carried.
    feed_split(&mut s, &psh_bytes(1, 20_000), HEADER_LEN).unwrap();
    assert_eq!(read_all(&mut s, key), psh_bytes(1, 20_000)[HEADER_LEN..]);
}

#[test]
fn only_a_large_data_frame_not_all_there_is_read_straight() {
    let mut s = server();
    let big = psh_bytes(1, 40_000);
    assert_eq!(
        s.partial_data(&big[..100], 16 * 1024),
        Some(DataHead {
            len: HEADER_LEN,
            sid: 1,
            payload: 40_000
        })
    );
    assert_eq!(
        s.partial_data(&big[..HEADER_LEN], 16 * 1024),
        Some(DataHead {
            len: HEADER_LEN,
            sid: 1,
            payload: 40_000
        })
    );
    // A header not whole yet, a whole frame, a small payload, another command: no.
    assert_eq!(s.partial_data(&big[..HEADER_LEN - 1], 16 * 1024), None);
    assert_eq!(s.partial_data(&big, 16 * 1024), None);
    assert_eq!(s.partial_data(&psh_bytes(1, 1_000)[..100], 16 * 1024), None);
    let fin = hdr(Cmd::Fin, 1, 0).encode();
    assert_eq!(s.partial_data(&fin, 0), None);
}

#[test]
fn a_payload_read_straight_is_held_to_the_window() {
    let mut s = server();
    frame(&mut s, Cmd::Syn, 1, 0).unwrap();
    let window = limits().window as usize;
    let frame_len = MAX_PAYLOAD as usize;
    for _ in 0..window / frame_len {
        feed_split(&mut s, &psh_bytes(1, frame_len), 100).unwrap();
    }
    assert!(matches!(
        feed_split(&mut s, &psh_bytes(1, frame_len), 100),
        Err(ProtocolError::WindowExceeded { stream: 1, .. })
    ));
}

#[test]
fn a_payload_read_straight_for_no_stream_or_after_the_end_is_dropped() {
    let mut s = server();
    feed_split(&mut s, &psh_bytes(9, 30_000), 10).unwrap();
    assert_eq!(s.num_streams(), 0);
    assert!(!s.has_events());
    // After the session ended the driver only skips frames.
    frame(&mut s, Cmd::Syn, 1, 0).unwrap();
    let key = s.accept().expect("accepted");
    let big = psh_bytes(1, 30_000);
    let head = s
        .partial_data(&big[..100], 16 * 1024)
        .expect("a large data frame");
    let payload = s.payload_buffer(30_000);
    s.handle_data(head, payload, false).unwrap();
    assert_eq!(read_all(&mut s, key), b"");
}

#[test]
fn on_xtaci_wire_a_payload_is_read_straight_too() {
    let mut s = Core::<()>::with_protocol(Direction::Down, limits(), Protocol::Xtaci2);
    let syn = xtaci::Header {
        version: 2,
        cmd: xtaci::Cmd::Syn,
        len: 0,
        sid: 3,
    };
    s.handle_input(&syn.encode(), true).unwrap();
    let key = s.accept().expect("accepted");
    let mut big = xtaci::Header {
        version: 2,
        cmd: xtaci::Cmd::Psh,
        len: 30_000,
        sid: 3,
    }
    .encode()
    .to_vec();
    big.extend((0..30_000).map(|i| (i % 7) as u8));
    assert_eq!(s.handle_input(&big[..500], true).unwrap(), 0);
    let head = s.partial_data(&big[..500], 16 * 1024);
    assert_eq!(
        head,
        Some(DataHead {
            len: xtaci::HEADER_LEN,
            sid: 3,
            payload: 30_000
        })
    );
    let mut payload = s.payload_buffer(30_000);
    payload.copy_from_slice(&big[xtaci::HEADER_LEN..]);
    s.handle_data(head.expect("checked"), payload, true)
        .unwrap();
    assert_eq!(read_all(&mut s, key), big[xtaci::HEADER_LEN..]);
}
