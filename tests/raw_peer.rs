//! A scripted raw peer against one session: it writes exact frame bytes and checks the exact frames
//! the session writes. Protocol conformance against the original's traces
//! (`tests/vectors/original_session_traces.txt`), the VRM probe, and hostile input.

mod common;

use std::io;

use common::*;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use futures::FutureExt as _;
use ysmux::{Config, Error, ProtocolError, Session, Stream};

const TRACES: &str = include_str!("vectors/original_session_traces.txt");
const VECTORS: &str = include_str!("vectors/verify_code_and_headers.txt");
const WINDOW: u32 = 512 * 1024;

// ----- the original's traces -----

/// The frames of scenario `n` of the traces, client to server and server to client, read from the
/// annotated frame lists (a payload shown as `aaaa...(65536 bytes)` is that byte repeated).
fn trace(n: u32) -> (Vec<Frame>, Vec<Frame>) {
    let start = TRACES
        .find(&format!("=== {n}:"))
        .expect("scenario in the traces");
    let text = &TRACES[start..];
    let text = &text[..text[4..].find("\n=== ").map_or(text.len(), |e| e + 4)];
    let mut c2s = Vec::new();
    let mut s2c = Vec::new();
    let mut into: Option<&mut Vec<Frame>> = None;
    for line in text.lines() {
        if line.starts_with("C->S byte stream") {
            into = Some(&mut c2s);
        } else if line.starts_with("S->C byte stream") {
            into = Some(&mut s2c);
        } else if let (Some(v), Some(rest)) = (into.as_mut(), line.strip_prefix("    ")) {
            let (header, desc) = rest.split_once("  = ").expect("an annotated frame line");
            let mut f = common::header(&hex(header));
            if f.cmd == PSH {
                let shown = desc
                    .split("payload ")
                    .nth(1)
                    .expect("a payload")
                    .split_whitespace();
                let shown = shown.into_iter().next().expect("payload hex");
                f.payload = match shown.split_once("...") {
                    Some((h, _)) => vec![hex(h)[0]; f.len as usize],
                    None => hex(shown),
                };
                assert_eq!(f.payload.len(), f.len as usize);
            }
            v.push(f);
        } else {
            into = None;
        }
    }
    (c2s, s2c)
}

fn bytes(frames: &[Frame]) -> Vec<u8> {
    frames.iter().flat_map(Frame::bytes).collect()
}

/// The trace's frames with stream id `from` replaced by `to` (our server allocates from 65,535).
fn renumber(frames: &[Frame], from: u16, to: u16) -> Vec<Frame> {
    frames
        .iter()
        .map(|f| Frame {
            sid: if f.sid == from { to } else { f.sid },
            ..f.clone()
        })
        .collect()
}

#[test]
fn the_traces_parse() {
    let (c2s, s2c) = trace(5);
    assert_eq!(c2s.len(), 6);
    assert_eq!(bytes(&c2s).len(), 262_186);
    assert_eq!(s2c, vec![Frame::cfm(1, 262_144), Frame::fin(1)]);
    let (c2s, _) = trace(1);
    assert_eq!(
        hex("000100000000000201000500000068656c6c6f01010000000000"),
        bytes(&c2s)
    );
}

/// A client session on one end of a fresh `T`, a raw peer on the other.
async fn raw_server<T: Transport>(
    ex: &Ex,
    config: Config,
) -> (Session, Task<Result<(), Error>>, RawPeer<T::Io>) {
    let (a, b) = T::pair().await;
    let (session, driver) = Session::client(a, config);
    let driver = ex.spawn(driver);
    let mut peer = RawPeer::new(b);
    peer.answer_offer_like_the_original().await;
    (session, driver, peer)
}

/// A server session on one end of a fresh `T`, a raw peer on the other.
async fn raw_client<T: Transport>(
    ex: &Ex,
    config: Config,
) -> (Session, Task<Result<(), Error>>, RawPeer<T::Io>) {
    let (a, b) = T::pair().await;
    let (session, driver) = Session::server(b, config);
    (session, ex.spawn(driver), RawPeer::new(a))
}

async fn accept(session: &Session) -> Stream {
    wait("accept", session.accept()).await.expect("accept")
}

async fn read_n(s: &mut Stream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    wait("read", s.read_exact(&mut buf)).await.expect("read");
    buf
}

async fn read_to_eof(s: &mut Stream) -> Vec<u8> {
    let mut buf = Vec::new();
    wait("read to EOF", s.read_to_end(&mut buf))
        .await
        .expect("read to EOF");
    buf
}

async fn idle(session: &Session) {
    until("num_streams() back to 0", || session.num_streams() == 0).await;
}

/// Sends a VRM probe and expects its answer as the very next frame: proves that everything sent
/// before it was handled and that the session sent nothing else meanwhile.
async fn sync<T: futures::io::AsyncRead + futures::io::AsyncWrite + Unpin>(raw: &mut RawPeer<T>) {
    raw.send(&[Frame::new(VRM, 0x1234, 0x1234_5678)]).await;
    raw.expect(Frame::new(VRM, 0x3420, 0x1278_3456)).await;
}

/// Scenario 1, our client against the trace's server: open, write "hello", close.
async fn trace1_client<T: Transport>(ex: Ex) {
    let (c2s, s2c) = trace(1);
    let (client, _d, mut raw) = raw_server::<T>(&ex, Config::default()).await;
    let mut s = client.open().await.expect("open");
    assert_eq!(s.write(b"hello").await.expect("write"), 5);
    wait("close", s.close()).await.expect("close");
    assert_eq!(raw.recv_bytes(bytes(&c2s).len()).await, bytes(&c2s));
    raw.send(&s2c).await;
    idle(&client).await;
    wait("session close", client.close()).await.expect("close");
    assert_eq!(raw.recv_to_eof().await, vec![], "nothing after the trace");
}

/// Scenario 1, our server against the trace's client: accept, read to EOF, close.
async fn trace1_server<T: Transport>(ex: Ex) {
    let (c2s, s2c) = trace(1);
    let (server, _d, mut raw) = raw_client::<T>(&ex, Config::default()).await;
    raw.send(&c2s).await;
    let mut s = accept(&server).await;
    assert_eq!(s.id(), 1);
    assert_eq!(read_to_eof(&mut s).await, b"hello");
    wait("close", s.close()).await.expect("close");
    assert_eq!(raw.recv_bytes(bytes(&s2c).len()).await, bytes(&s2c));
    idle(&server).await;
    sync(&mut raw).await;
}

/// Scenario 2, our client: open, write "hello", read the echo, close.
async fn trace2_client<T: Transport>(ex: Ex) {
    let (c2s, s2c) = trace(2);
    let (client, _d, mut raw) = raw_server::<T>(&ex, Config::default()).await;
    let mut s = client.open().await.expect("open");
    s.write_all(b"hello").await.expect("write");
    assert_eq!(
        raw.recv_bytes(bytes(&c2s[..2]).len()).await,
        bytes(&c2s[..2])
    );
    raw.send(&s2c[..1]).await;
    assert_eq!(read_n(&mut s, 5).await, b"hello");
    wait("close", s.close()).await.expect("close");
    raw.expect(c2s[2].clone()).await;
    raw.send(&s2c[1..]).await;
    idle(&client).await;
}

/// Scenario 2, our server: an echo.
async fn trace2_server<T: Transport>(ex: Ex) {
    let (c2s, s2c) = trace(2);
    let (server, _d, mut raw) = raw_client::<T>(&ex, Config::default()).await;
    serve_echo(&ex, server.clone());
    raw.send(&c2s[..2]).await;
    raw.expect(s2c[0].clone()).await;
    raw.send(&c2s[2..]).await;
    raw.expect(s2c[1].clone()).await;
    idle(&server).await;
    sync(&mut raw).await;
}

/// Scenario 3, our server opens (its first id is 65,535 where the original's is 1) and writes
/// "world"; the peer reads it and closes first; our read then gives end-of-stream.
async fn trace3_server<T: Transport>(ex: Ex) {
    let (c2s, s2c) = trace(3);
    let (c2s, s2c) = (renumber(&c2s, 1, 65_535), renumber(&s2c, 1, 65_535));
    let (server, _d, mut raw) = raw_client::<T>(&ex, Config::default()).await;
    let mut s = server.open().await.expect("open");
    s.write_all(b"world").await.expect("write");
    assert_eq!(
        raw.recv_bytes(bytes(&s2c[..2]).len()).await,
        bytes(&s2c[..2])
    );
    raw.send(&c2s).await;
    raw.expect(s2c[2].clone()).await;
    assert_eq!(read_to_eof(&mut s).await, b"");
    idle(&server).await;
}

/// Scenario 3, our client accepts the trace server's stream 1, reads and closes first.
async fn trace3_client<T: Transport>(ex: Ex) {
    let (c2s, s2c) = trace(3);
    let (client, _d, mut raw) = raw_server::<T>(&ex, Config::default()).await;
    raw.send(&s2c[..2]).await;
    let mut s = accept(&client).await;
    assert_eq!(read_n(&mut s, 5).await, b"world");
    wait("close", s.close()).await.expect("close");
    assert_eq!(raw.recv_bytes(bytes(&c2s).len()).await, bytes(&c2s));
    raw.send(&s2c[2..]).await;
    idle(&client).await;
}

/// Scenario 4: the raw VRM probe, answered by a server session and by a client session.
async fn trace4_vrm<T: Transport>(ex: Ex) {
    let (c2s, s2c) = trace(4);
    assert_eq!(bytes(&c2s), hex("04341278563412"));
    assert_eq!(bytes(&s2c), hex("04203456347812"));
    let (_server, _d, mut raw) = raw_client::<T>(&ex, Config::default()).await;
    raw.send(&c2s).await;
    assert_eq!(raw.recv_bytes(7).await, bytes(&s2c));
    let (_client, _d, mut raw) = raw_server::<T>(&ex, Config::default()).await;
    raw.send(&c2s).await;
    assert_eq!(raw.recv_bytes(7).await, bytes(&s2c));
}

/// Scenario 5, our client: 256 KiB in four full frames, then FIN; the peer's CFM and FIN end it.
async fn trace5_client<T: Transport>(ex: Ex) {
    let (c2s, s2c) = trace(5);
    let (client, driver, mut raw) = raw_server::<T>(&ex, Config::default()).await;
    let mut s = client.open().await.expect("open");
    // More than the pipe holds: the peer reads while the stream writes and closes.
    let writer = ex.spawn(async move {
        s.write_all(&[0xAA; 262_144]).await.expect("write");
        s.close().await.expect("close");
    });
    let want = bytes(&c2s);
    let got = raw.recv_bytes(want.len()).await;
    assert_eq!(parse_frames(&got), c2s, "the same frames as the original");
    wait("write and close", writer).await;
    raw.send(&s2c).await;
    idle(&client).await;
    sync(&mut raw).await;
    assert!(
        !driver.is_finished(),
        "the CFM for a stream waiting for FIN is fine"
    );
}

/// Scenario 5, our server reads the 256 KiB and confirms it (in steps of its choosing, but at
/// least as soon as the original does: once half a window has been read), then the FIN exchange.
async fn trace5_server<T: Transport>(ex: Ex) {
    let (c2s, _) = trace(5);
    let (server, _d, mut raw) = raw_client::<T>(&ex, Config::default()).await;
    raw.send(&c2s[..5]).await;
    let mut s = accept(&server).await;
    assert_eq!(read_n(&mut s, 262_144).await, vec![0xAA; 262_144]);
    // The original's rule: once the application has read, less than half a window stays
    // unconfirmed (here: at least one confirm must come).
    let mut confirmed = 0;
    while 262_144 - confirmed >= WINDOW / 2 {
        let f = raw.recv().await;
        assert_eq!(
            (f.cmd, f.sid),
            (CFM, 1),
            "only confirms for stream 1: {f:?}"
        );
        confirmed += f.len;
    }
    raw.send(&c2s[5..]).await;
    loop {
        let f = raw.recv().await;
        if f == Frame::fin(1) {
            break;
        }
        assert_eq!((f.cmd, f.sid), (CFM, 1), "only confirms, then FIN: {f:?}");
        confirmed += f.len;
    }
    assert!(confirmed <= 262_144, "confirmed {confirmed} of 262144");
    assert_eq!(read_to_eof(&mut s).await, b"");
    idle(&server).await;
    sync(&mut raw).await;
}

macro_rules! per_transport {
    ($($module:ident => $transport:ty),* $(,)?) => {$(
        mod $module {
            use super::*;
            per_transport!(@tests $transport; trace1_client, trace1_server, trace2_client,
                trace2_server, trace3_client, trace3_server, trace4_vrm, trace5_client,
                trace5_server);
        }
    )*};
    (@tests $transport:ty; $($test:ident),* $(,)?) => {$(
        #[test]
        fn $test() {
            run(|ex| super::$test::<$transport>(ex));
        }
    )*};
}

per_transport!(pipe => PipeTransport, tcp => TcpTransport);

// ----- ids -----

#[test]
fn client_ids_count_up_from_1_server_ids_down_from_65535() {
    run(|ex| async move {
        let (client, _d, mut raw) = raw_server::<PipeTransport>(&ex, Config::default()).await;
        let _a = client.open().await.expect("open");
        let _b = client.open().await.expect("open");
        raw.expect(Frame::syn(1)).await;
        raw.expect(Frame::syn(2)).await;
        let (server, _d, mut raw) = raw_client::<PipeTransport>(&ex, Config::default()).await;
        let _a = server.open().await.expect("open");
        let _b = server.open().await.expect("open");
        raw.expect(Frame::syn(65_535)).await;
        raw.expect(Frame::syn(65_534)).await;
    });
}

/// A peer that does not answer the offer (a client assumes at most 16 streams may wait at a
/// peer of this crate until it hears): the 17th open waits, and the first frame the peer sends
/// about one of those streams says it is not this crate (which would have answered first), and
/// the open goes on. Against the Go programs, which answer, nothing waits at all.
#[test]
fn a_peer_that_does_not_answer_the_offer_holds_opens_only_until_it_speaks() {
    run(|ex| async move {
        let (a, b) = ysmux::pipe();
        let (client, driver) = Session::client(a, Config::default());
        let _driver = ex.spawn(driver);
        let mut raw = RawPeer::new(b);
        raw.expect(offer()).await; // and no answer
        let mut held = Vec::new();
        for _ in 0..16 {
            held.push(wait("open", client.open()).await.expect("open"));
        }
        let mut opener = Box::pin({
            let client = client.clone();
            async move { client.open().await }
        });
        let _woken = assert_pending(opener.as_mut(), "the 17th open before the peer spoke");
        for id in 1..=16u16 {
            raw.expect(Frame::syn(id)).await;
        }
        raw.send(&[Frame::psh(3, b"hi")]).await;
        let seventeenth = wait("the 17th open once the peer spoke", opener)
            .await
            .expect("open");
        assert_eq!(seventeenth.id(), 17);
        let mut buf = [0u8; 2];
        wait("read", held[2].read_exact(&mut buf))
            .await
            .expect("read");
        assert_eq!(&buf, b"hi");
    });
}

// ----- VRM and is_smux -----

#[test]
fn vrm_probes_are_answered_per_the_vectors() {
    run(|ex| async move {
        let (_server, _d, mut raw) = raw_client::<PipeTransport>(&ex, Config::default()).await;
        let mut n = 0;
        for line in VECTORS
            .lines()
            .filter(|l| l.contains("->") && !l.starts_with("cmd="))
        {
            let w: Vec<&str> = line.split_whitespace().collect();
            if w.len() != 5 || w[0].starts_with('#') {
                continue;
            }
            let v = |s: &str| u32::from_str_radix(s, 16).expect("hex");
            raw.send(&[Frame::new(VRM, v(w[0]) as u16, v(w[1]))]).await;
            raw.expect(Frame::new(VRM, v(w[3]) as u16, v(w[4]))).await;
            n += 1;
        }
        assert_eq!(n, 20);
    });
}

#[test]
fn is_smux_true_against_sessions_and_the_transport_stays_usable() {
    run(|ex| async move {
        let (mut a, b) = ysmux::pipe();
        let (server, sd) = Session::server(b, Config::default());
        ex.spawn(sd).detach();
        assert!(wait("is_smux", ysmux::is_smux(&mut a))
            .await
            .expect("probe"));
        // The session then starts on the probed transport.
        let (client, cd) = Session::client(a, Config::default());
        ex.spawn(cd).detach();
        let mut s = client.open().await.expect("open");
        s.write_all(b"after the probe").await.expect("write");
        let mut t = accept(&server).await;
        assert_eq!(read_n(&mut t, 15).await, b"after the probe");

        let (a, mut b) = ysmux::pipe();
        let (_client, cd) = Session::client(a, Config::default());
        ex.spawn(cd).detach();
        assert!(wait("is_smux against a client", ysmux::is_smux(&mut b))
            .await
            .expect("probe"));
    });
}

/// Runs `is_smux` against a raw peer that reads the 7-byte probe and then does `answer`.
async fn probe_against(
    ex: &Ex,
    answer: impl FnOnce([u8; 7]) -> Option<Vec<u8>> + Send + 'static,
) -> io::Result<bool> {
    let (mut a, mut b) = ysmux::pipe();
    let peer = ex.spawn(async move {
        let mut probe = [0u8; 7];
        b.read_exact(&mut probe).await.expect("the probe");
        assert_eq!(probe[0], VRM);
        if let Some(reply) = answer(probe) {
            b.write_all(&reply).await.expect("reply");
        }
        // Dropping `b` closes the transport.
    });
    let r = wait("is_smux", ysmux::is_smux(&mut a)).await;
    peer.await;
    r
}

#[test]
fn is_smux_false_for_any_other_answer_or_a_close() {
    run(|ex| async move {
        // Echoing the probe back.
        assert!(!probe_against(&ex, |p| Some(p.to_vec()))
            .await
            .expect("echo"));
        // A VRM with the wrong values.
        assert!(!probe_against(&ex, |_| Some(vec![VRM, 1, 2, 3, 4, 5, 6]))
            .await
            .expect("wrong VRM"));
        // The right values under another command.
        let right = |p: [u8; 7]| {
            let v1 = u16::from_le_bytes([p[1], p[2]]);
            let v2 = u32::from_le_bytes([p[3], p[4], p[5], p[6]]);
            let f1 = ((v1 & 0x00FF) << 8) | ((v1 & 0x0F00) >> 4);
            let f2 = (v2 & 0xFF00_0000)
                | ((v2 & 0x00FF_0000) >> 8)
                | ((v2 & 0x0000_FF00) >> 8)
                | ((v2 & 0xFF) << 16);
            Frame::new(VRM, f1, f2).bytes()
        };
        assert!(probe_against(&ex, move |p| Some(right(p)))
            .await
            .expect("control: the right answer"));
        assert!(!probe_against(&ex, move |p| {
            let mut r = right(p);
            r[0] = SYN;
            Some(r)
        })
        .await
        .expect("a SYN"));
        // Closing without an answer, or in the middle of one.
        assert!(!probe_against(&ex, |_| None).await.expect("a close"));
        assert!(!probe_against(&ex, |_| Some(vec![VRM, 0, 0]))
            .await
            .expect("a cut answer"));
    });
}

#[test]
fn is_smux_reports_a_real_io_error() {
    run(|_ex| async move {
        let (a, _b) = ysmux::pipe();
        let switch = FailSwitch::default();
        let mut io = Faulty {
            io: a,
            switch: switch.clone(),
        };
        switch.fail();
        let r = wait("is_smux", ysmux::is_smux(&mut io)).await;
        assert_eq!(
            r.expect_err("an I/O error").kind(),
            io::ErrorKind::ConnectionReset
        );
    });
}

// ----- hostile input -----

/// A server session fed `input` by a raw client, with stream 1 opened and accepted first: the
/// session must end with `want`; the accepted stream, accept and the driver all report it.
async fn hostile(ex: &Ex, input: Vec<u8>, want: ProtocolError) {
    let (server, driver, mut raw) = raw_client::<PipeTransport>(ex, Config::default()).await;
    raw.send(&[Frame::syn(1)]).await;
    let mut s = accept(&server).await;
    let reader = ex.spawn(async move {
        let mut buf = [0u8; 8];
        s.read(&mut buf).await
    });
    smol::future::yield_now().await;
    raw.send_bytes(&input).await;
    drop(raw); // for a cut-off frame: the end of the transport (else harmless)
    let r = wait("the driver to end", driver).await;
    assert!(
        matches!(r, Err(Error::Protocol(ref e)) if *e == want),
        "driver: {r:?}, want {want:?}"
    );
    let e = wait("the waiting read", reader)
        .await
        .expect_err("the read fails");
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    let r = server.accept().await;
    assert!(
        matches!(r, Err(Error::Protocol(ref e)) if *e == want),
        "accept: {r:?}"
    );
    assert!(matches!(server.open().await, Err(Error::Protocol(_))));
}

#[test]
fn unknown_command_is_a_protocol_error() {
    run(|ex| async move {
        // 5 is PIN (docs/PROTOCOL.md 10); 6 and above are unknown.
        hostile(
            &ex,
            vec![6, 1, 0, 0, 0, 0, 0],
            ProtocolError::UnknownCommand(6),
        )
        .await;
        hostile(
            &ex,
            vec![0xFF, 0, 0, 0, 0, 0, 0],
            ProtocolError::UnknownCommand(0xFF),
        )
        .await;
    });
}

#[test]
fn psh_longer_than_64_kib_is_a_protocol_error() {
    run(|ex| async move {
        let header = Frame::new(PSH, 1, 65_537).bytes();
        hostile(&ex, header, ProtocolError::PayloadTooLong { len: 65_537 }).await;
        let header = Frame::new(PSH, 1, u32::MAX).bytes();
        hostile(&ex, header, ProtocolError::PayloadTooLong { len: u32::MAX }).await;
    });
}

/// The raw client opens stream 1 and sends exactly one window (the session still answers), then
/// one byte more: the session must end with `WindowExceeded`.
async fn one_window_then_one_byte_more<
    T: futures::io::AsyncRead + futures::io::AsyncWrite + Unpin,
>(
    server: &Session,
    driver: Task<Result<(), Error>>,
    raw: &mut RawPeer<T>,
) {
    raw.send(&[Frame::syn(1)]).await;
    let _s = accept(server).await;
    let frame = Frame::psh(1, &vec![1; 65_536]);
    for _ in 0..WINDOW / 65_536 {
        raw.send(std::slice::from_ref(&frame)).await;
    }
    sync(raw).await;
    raw.send(&[Frame::psh(1, b"!")]).await;
    let r = wait("the driver to end", driver).await;
    let want = ProtocolError::WindowExceeded {
        stream: 1,
        window: WINDOW,
    };
    assert!(
        matches!(r, Err(Error::Protocol(e)) if e == want),
        "driver: {r:?}"
    );
}

#[test]
fn data_beyond_the_window_is_a_protocol_error() {
    run(|ex| async move {
        // Exactly one window is fine (the session still answers), one byte more is not.
        let (server, driver, mut raw) = raw_client::<PipeTransport>(&ex, Config::default()).await;
        one_window_then_one_byte_more(&server, driver, &mut raw).await;
    });
}

#[test]
fn a_window_is_reusable_once_confirmed() {
    run(|ex| async move {
        // The positive side of the window rule: after the confirms, the sender may send again.
        let (server, driver, mut raw) = raw_client::<PipeTransport>(&ex, Config::default()).await;
        raw.send(&[Frame::syn(1)]).await;
        let mut s = accept(&server).await;
        let frame = Frame::psh(1, &vec![1; 65_536]);
        let (mut sent, mut read, mut confirmed) = (0u64, 0u64, 0u64);
        while sent < 3 * WINDOW as u64 {
            while sent - confirmed < WINDOW as u64 {
                raw.send(std::slice::from_ref(&frame)).await;
                sent += 65_536;
            }
            read_n(&mut s, (sent - read) as usize).await;
            read = sent;
            while sent - confirmed >= WINDOW as u64 / 2 {
                let f = raw.recv().await;
                assert_eq!((f.cmd, f.sid), (CFM, 1), "{f:?}");
                confirmed += f.len as u64;
            }
        }
        assert!(!driver.is_finished());
    });
}

#[test]
fn cfm_for_more_than_was_sent_is_stale_and_gives_no_credit() {
    run(|ex| async move {
        // Such a CFM can only be late (the original sends CFMs after its FIN answer,
        // docs/PROTOCOL.md 9): ignored, never a session error, never credit beyond the window.
        let (client, driver, mut raw) = raw_server::<PipeTransport>(&ex, Config::default()).await;
        let mut s = client.open().await.expect("open");
        s.write_all(b"0123456789").await.expect("write");
        raw.expect(Frame::syn(1)).await;
        raw.expect(Frame::psh(1, b"0123456789")).await;
        raw.send(&[Frame::cfm(1, 4), Frame::cfm(1, 7), Frame::cfm(1, u32::MAX)])
            .await;
        sync(&mut raw).await;
        assert!(!driver.is_finished());
        // 6 bytes are outstanding: the sender may write exactly one window minus 6 more.
        let n = WINDOW as usize - 6;
        let writer = ex.spawn(async move {
            s.write_all(&vec![9u8; n]).await.expect("write");
            s
        });
        let mut got = 0;
        while got < n {
            let f = raw.recv().await;
            assert_eq!((f.cmd, f.sid), (PSH, 1), "{f:?}");
            got += f.len as usize;
        }
        assert_eq!(got, n);
        let mut s = wait("the writes within the window", writer).await;
        // No credit left: a further write waits, however many stale CFMs come.
        raw.send(&[Frame::cfm(1, WINDOW + 1)]).await;
        sync(&mut raw).await;
        assert!(
            s.write(b"x").now_or_never().is_none(),
            "wrote beyond the window"
        );
        raw.send(&[Frame::cfm(1, 1)]).await;
        wait("credit from a real CFM", s.write_all(b"x"))
            .await
            .expect("write");
        raw.expect(Frame::psh(1, b"x")).await;
    });
}

#[test]
fn syn_for_id_0_opens_a_stream() {
    run(|ex| async move {
        // The newest original's client (77536ae) opens id 0 first (vectors/original_77536ae_traces.txt, A).
        let (server, driver, mut raw) = raw_client::<PipeTransport>(&ex, Config::default()).await;
        raw.send(&[Frame::syn(0), Frame::psh(0, &[7; 1024])]).await;
        let mut s = accept(&server).await;
        assert_eq!(s.id(), 0);
        assert_eq!(read_n(&mut s, 1024).await, vec![7; 1024]);
        s.write_all(&[8; 1024]).await.expect("write");
        raw.expect(Frame::psh(0, &[8; 1024])).await;
        raw.send(&[Frame::syn(1), Frame::psh(1, b"B")]).await;
        let mut b = accept(&server).await;
        assert_eq!((b.id(), read_n(&mut b, 1).await), (1, b"B".to_vec()));
        raw.send(&[Frame::fin(0)]).await;
        raw.expect(Frame::fin(0)).await;
        assert_eq!(read_to_eof(&mut s).await, b"");
        assert!(!driver.is_finished());
        // This side still never allocates 0.
        let mine = server.open().await.expect("open");
        assert_eq!(mine.id(), 65_535);
    });
}

#[test]
fn pin_is_answered_and_never_sent_first() {
    run(|ex| async move {
        // The newest original: PIN every 10 s, never answered; a session without a PIN for 100 s
        // is closed. Ours answers, but not a PIN that may be the answer to its own.
        let (client, driver, mut raw) = raw_server::<PipeTransport>(&ex, Config::default()).await;
        let mut s = client.open().await.expect("open");
        s.write_all(b"data").await.expect("write");
        raw.expect(Frame::syn(1)).await;
        raw.expect(Frame::psh(1, b"data")).await;
        sync(&mut raw).await; // nothing else was sent: no PIN first
        for round in 0..3 {
            raw.send(&[Frame::new(PIN, 0, 0)]).await;
            raw.expect(Frame::new(PIN, 0, 0)).await;
            // The next PIN may answer ours: not answered (the VRM answer comes straight after).
            raw.send(&[Frame::new(PIN, 0, 0)]).await;
            sync(&mut raw).await;
            assert!(!driver.is_finished(), "round {round}");
        }
        raw.send(&[Frame::psh(1, b"back")]).await;
        assert_eq!(read_n(&mut s, 4).await, b"back");
    });
}

#[test]
fn late_frames_after_the_fin_answer_never_reach_a_new_stream() {
    run(|ex| async move {
        // Trace D of vectors/original_77536ae_traces.txt: the original answers FIN, then sends a
        // CFM for the stream, and a second FIN when its application closes it late (by id).
        let (client, driver, mut raw) = raw_server::<PipeTransport>(&ex, Config::default()).await;
        let mut a = client.open().await.expect("open");
        a.write_all(&vec![1; 300 * 1024]).await.expect("write");
        a.close().await.expect("close");
        raw.expect(Frame::syn(1)).await;
        let mut got = 0;
        while got < 300 * 1024 {
            got += raw.recv().await.len as usize;
        }
        raw.expect(Frame::fin(1)).await;
        raw.send(&[Frame::fin(1)]).await; // the FIN answer: id 1 released
        drop(a);
        idle(&client).await;
        let mut b = client.open().await.expect("open");
        assert_ne!(
            b.id(),
            1,
            "the id just released was handed out again at once"
        );
        b.write_all(b"B").await.expect("write");
        raw.expect(Frame::syn(b.id())).await;
        raw.expect(Frame::psh(b.id(), b"B")).await;
        raw.send(&[Frame::cfm(1, 262_144), Frame::cfm(1, 45_056), Frame::fin(1)])
            .await;
        sync(&mut raw).await; // nothing answered the late frames
        assert!(!driver.is_finished());
        raw.send(&[Frame::psh(b.id(), b"alive")]).await;
        assert_eq!(read_n(&mut b, 5).await, b"alive");
        b.write_all(b"!").await.expect("B still writes");
        raw.expect(Frame::psh(b.id(), b"!")).await;
    });
}

#[test]
fn a_frame_cut_off_by_the_end_of_the_transport_is_a_transport_error() {
    run(|ex| async move {
        let mut cut_payload = Frame::new(PSH, 1, 10).bytes();
        cut_payload.extend_from_slice(b"12345");
        for input in [cut_payload, vec![PSH, 1, 0]] {
            let (server, driver, mut raw) =
                raw_client::<PipeTransport>(&ex, Config::default()).await;
            raw.send(&[Frame::syn(1)]).await;
            let mut s = accept(&server).await;
            let reader = ex.spawn(async move {
                let mut buf = [0u8; 8];
                s.read(&mut buf).await
            });
            smol::future::yield_now().await;
            raw.send_bytes(&input).await;
            drop(raw); // the end of the transport, mid-frame
            let r = wait("the driver to end", driver).await;
            assert!(matches!(r, Err(Error::LostMidFrame(_))), "driver: {r:?}");
            let e = wait("the waiting read", reader)
                .await
                .expect_err("the read fails");
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
            assert!(e.to_string().contains("connection lost mid-frame"), "{e}");
            assert_eq!(server.stats().protocol_errors, 0);
        }
    });
}

#[test]
fn syns_beyond_the_accept_backlog_are_refused_with_fin() {
    run(|ex| async move {
        let config = Config::default().with_accept_backlog(2);
        let (server, _d, mut raw) = raw_client::<PipeTransport>(&ex, config).await;
        raw.send(&[Frame::syn(1), Frame::syn(2), Frame::syn(3)])
            .await;
        raw.expect(Frame::fin(3)).await;
        sync(&mut raw).await; // nothing for 1 and 2
        raw.send(&[Frame::fin(3)]).await; // completes the refusal: id 3 is free again
        until("the refused id to be released", || {
            server.num_streams() == 2
        })
        .await;
        let (one, two) = (accept(&server).await, accept(&server).await);
        assert_eq!((one.id(), two.id()), (1, 2));
        raw.send(&[Frame::syn(3), Frame::psh(3, b"again")]).await;
        let mut s = accept(&server).await;
        assert_eq!((s.id(), read_n(&mut s, 5).await), (3, b"again".to_vec()));
        sync(&mut raw).await; // no FIN this time
    });
}

#[test]
fn psh_fin_and_cfm_for_unknown_ids_are_ignored() {
    run(|ex| async move {
        let (server, driver, mut raw) = raw_client::<PipeTransport>(&ex, Config::default()).await;
        raw.send(&[
            Frame::psh(7, b"junk"),
            Frame::fin(8),
            Frame::cfm(9, 100),
            Frame::psh(10, b""),
        ])
        .await;
        sync(&mut raw).await; // nothing sent for them, and the session lives
        raw.send(&[Frame::syn(1), Frame::psh(1, b""), Frame::psh(1, b"ok")])
            .await;
        let mut s = accept(&server).await;
        assert_eq!(read_n(&mut s, 2).await, b"ok");
        assert_eq!(server.num_streams(), 1);
        assert!(!driver.is_finished());
    });
}

// ----- simultaneous open and close, stale handles -----

#[test]
fn simultaneous_open_of_one_id_binds_both_ends_to_one_stream() {
    run(|ex| async move {
        let (client, _d, mut raw) = raw_server::<PipeTransport>(&ex, Config::default()).await;
        let mut s = client.open().await.expect("open");
        // An original peer scanning upward picks id 1 too, and its SYN crosses ours.
        raw.send(&[Frame::syn(1), Frame::psh(1, b"from peer")])
            .await;
        raw.expect(Frame::syn(1)).await;
        assert_eq!(read_n(&mut s, 9).await, b"from peer");
        s.write_all(b"from client").await.expect("write");
        raw.expect(Frame::psh(1, b"from client")).await;
        sync(&mut raw).await;
        assert!(
            client.accept().now_or_never().is_none(),
            "the peer's SYN must not make a second stream"
        );
        assert_eq!(client.num_streams(), 1);
    });
}

#[test]
fn simultaneous_close_releases_the_id_on_both_sides() {
    run(|ex| async move {
        let (client, _d, mut raw) = raw_server::<PipeTransport>(&ex, Config::default()).await;
        let mut s = client.open().await.expect("open");
        raw.expect(Frame::syn(1)).await;
        wait("close", s.close()).await.expect("close"); // our FIN is on the wire...
        raw.send(&[Frame::fin(1)]).await; // ...and the peer's crosses it
        raw.expect(Frame::fin(1)).await;
        sync(&mut raw).await; // exactly one FIN: ours, none in answer to the peer's
        idle(&client).await;
        // The peer, having released id 1 too, opens a new stream with it: a new stream for us.
        raw.send(&[Frame::syn(1), Frame::psh(1, b"new")]).await;
        let mut t = accept(&client).await;
        assert_eq!((t.id(), read_n(&mut t, 3).await), (1, b"new".to_vec()));
    });
}

/// Stream A (id 1) is closed by the peer, the peer reuses id 1 for a new stream B; then A, the
/// stale handle, is closed (`close`) or dropped (`!close`): B must not notice.
async fn stale_handle(ex: Ex, close: bool) {
    let (client, _d, mut raw) = raw_server::<PipeTransport>(&ex, Config::default()).await;
    let mut a = client.open().await.expect("open");
    raw.expect(Frame::syn(1)).await;
    raw.send(&[Frame::fin(1)]).await;
    raw.expect(Frame::fin(1)).await; // the answer: id 1 is free on both sides
    idle(&client).await;
    raw.send(&[Frame::syn(1), Frame::psh(1, b"for B")]).await;
    let mut b = accept(&client).await;
    assert_eq!(b.id(), 1);
    sync(&mut raw).await; // B's data has arrived

    let mut buf = [0u8; 8];
    assert_eq!(
        a.read(&mut buf).await.expect("the stale handle reads EOF"),
        0,
        "A reads B's data"
    );
    assert_eq!(
        a.write(b"x").await.expect_err("A writes").kind(),
        io::ErrorKind::BrokenPipe
    );
    if close {
        wait("closing the stale handle", a.close())
            .await
            .expect("close");
    }
    drop(a);
    b.write_all(b"B lives").await.expect("write on B");
    raw.expect(Frame::psh(1, b"B lives")).await; // and no FIN 1 before it
    assert_eq!(read_n(&mut b, 5).await, b"for B");
    raw.send(&[Frame::psh(1, b"more")]).await;
    assert_eq!(read_n(&mut b, 4).await, b"more");
    assert_eq!(client.num_streams(), 1);
    sync(&mut raw).await;
}

#[test]
fn a_stale_handle_closing_never_affects_the_newer_stream() {
    run(|ex| stale_handle(ex, true));
}

#[test]
fn a_stale_handle_dropped_never_affects_the_newer_stream() {
    run(|ex| stale_handle(ex, false));
}

// ----- closing -----

#[test]
fn dropping_an_unclosed_stream_sends_fin() {
    run(|ex| async move {
        let (client, _d, mut raw) = raw_server::<PipeTransport>(&ex, Config::default()).await;
        let mut s = client.open().await.expect("open");
        s.write_all(b"x").await.expect("write");
        drop(s);
        raw.expect(Frame::syn(1)).await;
        raw.expect(Frame::psh(1, b"x")).await;
        raw.expect(Frame::fin(1)).await;
        assert_eq!(client.num_streams(), 1, "id 1 waits for the peer's FIN");
        raw.send(&[Frame::fin(1)]).await;
        idle(&client).await;
    });
}

#[test]
fn session_close_sends_fin_for_every_stream_then_closes_the_transport() {
    run(|ex| async move {
        let (client, driver, mut raw) = raw_server::<PipeTransport>(&ex, Config::default()).await;
        let mut mine = Vec::new();
        for _ in 0..3 {
            let mut s = client.open().await.expect("open");
            s.write_all(b"d").await.expect("write");
            mine.push(s);
        }
        // One stream the peer opened and we accepted, one still waiting in the accept backlog.
        raw.send(&[Frame::syn(100), Frame::syn(101)]).await;
        let accepted = accept(&client).await;
        assert_eq!(accepted.id(), 100);
        wait("session close", client.close()).await.expect("close");
        let frames = raw.recv_to_eof().await;
        let mut fins: Vec<u16> = frames
            .iter()
            .filter(|f| f.cmd == FIN)
            .map(|f| f.sid)
            .collect();
        fins.sort_unstable();
        assert_eq!(
            fins,
            vec![1, 2, 3, 100, 101],
            "a FIN for every stream: {frames:?}"
        );
        let last_data = frames.iter().rposition(|f| f.cmd != FIN).expect("data");
        let first_fin = frames.iter().position(|f| f.cmd == FIN).expect("a FIN");
        assert!(
            last_data < first_fin,
            "the FINs come after the data: {frames:?}"
        );
        assert_eq!(frames.len(), 3 * 2 + 5);
        wait("the driver", driver).await.expect("a clean end");
        drop((mine, accepted));
    });
}

// ----- window growth (src/core/extension.rs) -----

#[test]
fn against_a_peer_answering_the_offer_like_the_original_confirms_never_pass_what_was_read() {
    run(|ex| async move {
        // `raw_server` answers the offer as the original does; from then on the peer sees the
        // base protocol: every confirm covers bytes the application read, never more.
        let (client, _driver, mut raw) = raw_server::<PipeTransport>(&ex, Config::default()).await;
        raw.send(&[Frame::syn(7)]).await;
        let mut s = accept(&client).await;
        let frame = Frame::psh(7, &vec![3; 65_536]);
        let (mut sent, mut read, mut confirmed) = (0u64, 0u64, 0u64);
        while sent < 4 * u64::from(WINDOW) {
            while sent - confirmed < u64::from(WINDOW) {
                raw.send(std::slice::from_ref(&frame)).await;
                sent += 65_536;
            }
            while read < sent {
                read += read_n(&mut s, 65_536).await.len() as u64;
            }
            sync_confirms(&mut raw, &mut confirmed).await;
            assert!(confirmed <= read, "confirmed {confirmed} of {read} read");
        }
        let stats = client.stats();
        assert!(!stats.windows_grow);
        assert_eq!(stats.window_growth, 0);
    });
}

/// Probes, and takes every CFM for stream 7 before the answer into `confirmed`.
async fn sync_confirms<T: futures::io::AsyncRead + futures::io::AsyncWrite + Unpin>(
    raw: &mut RawPeer<T>,
    confirmed: &mut u64,
) {
    raw.send(&[Frame::new(VRM, 0x1234, 0x1234_5678)]).await;
    loop {
        let f = raw.recv().await;
        match f.cmd {
            CFM if f.sid == 7 => *confirmed += u64::from(f.len),
            VRM if f == Frame::new(VRM, 0x3420, 0x1278_3456) => return,
            _ => panic!("unexpected frame {f:?}"),
        }
    }
}

#[test]
fn a_server_accepts_the_offer_and_holds_a_peer_claiming_it_to_what_it_granted() {
    run(|ex| async move {
        let (server, driver, mut raw) = raw_client::<PipeTransport>(&ex, Config::default()).await;
        assert!(!server.stats().windows_grow);
        raw.send(&[offer()]).await;
        raw.expect(accept_offer()).await; // not the usual answer: this side grows windows too
                                          // Then room to open: 31 streams may wait (a full 512 KiB window each fits the default
                                          // 32 MiB budget 31 times, buffers counted twice).
        raw.expect(Frame::new(VRM, 0x7975, 31)).await;
        raw.send(&[Frame::new(VRM, 0x7390, 0x6D32_7578)]).await; // the answer to ACCEPT
        sync(&mut raw).await; // ... which the server recognised and did not answer
        assert!(server.stats().windows_grow);
        // Claiming the extension gives the peer no credit of its own making: one window, and one
        // byte more ends the session.
        one_window_then_one_byte_more(&server, driver, &mut raw).await;
    });
}

#[test]
fn two_sessions_of_this_crate_agree_to_grow_windows() {
    run(|ex| async move {
        let (a, b) = ysmux::pipe();
        let (client, cd) = Session::client(a, Config::default());
        let (server, sd) = Session::server(b, Config::default());
        ex.spawn(cd).detach();
        ex.spawn(sd).detach();
        // A ping's answer comes after the handshake's frames on both sides.
        wait("ping", client.ping()).await.expect("ping");
        wait("ping", server.ping()).await.expect("ping");
        assert!(client.stats().windows_grow && server.stats().windows_grow);
        // Bytes still arrive intact, both ways.
        let mut s = client.open().await.expect("open");
        s.write_all(b"grown").await.expect("write");
        let mut t = accept(&server).await;
        assert_eq!(read_n(&mut t, 5).await, b"grown");
        t.write_all(b"back").await.expect("write");
        assert_eq!(read_n(&mut s, 4).await, b"back");
    });
}
