//! Floods. A peer that floods frames demanding answers (SYN then FIN, over and over) and never
//! reads them: the session's queue of answers stays bounded because it stops reading until the
//! answers move, and it neither fails nor deadlocks once the peer reads again. And on xtaci's
//! wire, which has no way to refuse an opener politely, a peer that opens thousands of streams in
//! one write: the session takes no more than its accept backlog, pausing at the first SYN that
//! does not fit, and serves every stream whole as the application accepts.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{until, wait, xtaci_frame, PSH, SYN};
use futures::{AsyncReadExt, AsyncWriteExt};
use smol::future::FutureExt;
use ysmux::frame::{Cmd, Header};
use ysmux::{Config, Error, Pipe, Protocol, Session};

/// What the peer sends, in all: far more answers than the session may hold unwritten.
const FLOOD: usize = 16 << 20;

#[test]
fn a_flood_of_frames_needing_answers_is_held_back_not_buffered() {
    smol::block_on(async {
        let (a, peer) = ysmux::pipe();
        let (session, driver) = Session::server(a, Config::default());
        let driver = smol::spawn(driver);
        let (mut peer_r, mut peer_w) = peer.split();

        // SYN then FIN for ids 1..=65535 in turn: each pair makes the session queue a FIN.
        let mut pattern = Vec::with_capacity(65_535 * 14);
        for id in 1..=65_535u16 {
            pattern.extend_from_slice(&Header::new(Cmd::Syn, id, 0).encode());
            pattern.extend_from_slice(&Header::new(Cmd::Fin, id, 0).encode());
        }
        let sent = Arc::new(AtomicUsize::new(0));
        let flooder = smol::spawn({
            let sent = sent.clone();
            async move {
                while sent.load(Ordering::Relaxed) < FLOOD {
                    peer_w.write_all(&pattern).await.unwrap();
                    sent.fetch_add(pattern.len(), Ordering::Relaxed);
                }
                peer_w
            }
        });

        // The peer reads nothing: the flood stalls once the session stops reading.
        let mut last = 0;
        loop {
            smol::Timer::after(Duration::from_millis(200)).await;
            let now = sent.load(Ordering::Relaxed);
            if now == last {
                break;
            }
            assert!(
                now < FLOOD,
                "the whole flood went in while nobody read the answers"
            );
            last = now;
        }
        assert!(
            last < 8 << 20,
            "{last} bytes of frames accepted while their answers went unread"
        );
        println!("frames accepted before the session stopped reading: {last} bytes");
        assert!(!driver.is_finished(), "the session is still up");

        // The peer reads again: everything moves, and the session is fine.
        let reader = smol::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            let mut total = 0usize;
            loop {
                match peer_r.read(&mut buf).await {
                    Ok(0) | Err(_) => return total,
                    Ok(n) => total += n,
                }
            }
        });
        let mut peer_w = flooder
            .or(async {
                smol::Timer::after(Duration::from_secs(60)).await;
                panic!("the flood did not resume once its answers were read")
            })
            .await;
        assert!(sent.load(Ordering::Relaxed) >= FLOOD);
        // The session still opens streams and answers.
        let s = session.open().await.unwrap();
        drop(s);
        peer_w.close().await.unwrap();
        let r = driver
            .or(async {
                smol::Timer::after(Duration::from_secs(60)).await;
                panic!("the driver did not end")
            })
            .await;
        assert!(r.is_ok(), "{r:?}");
        let answered = reader.await;
        assert!(answered > 0);
    });
}

/// A server of `protocol` with an accept backlog of `backlog`, its driver spawned, and the raw
/// peer's end of the pipe.
fn xtaci_server(
    protocol: Protocol,
    backlog: usize,
) -> (Session, smol::Task<Result<(), Error>>, Pipe) {
    let (a, peer) = ysmux::pipe();
    let config = Config::default()
        .with_protocol(protocol)
        .with_accept_backlog(backlog);
    let (session, driver) = Session::server(a, config);
    (session, smol::spawn(driver), peer)
}

/// 4,000 streams opened in one write, each with its number on it, against a backlog of 8: the
/// session holds 8 and no more until the application accepts (before, what one read brought was
/// all taken: thousands of streams past the backlog), then serves every one whole, refusing none.
#[test]
fn on_xtaci_thousands_of_opens_in_one_write_wait_past_the_backlog() {
    for (protocol, version) in [(Protocol::Xtaci1, 1), (Protocol::Xtaci2, 2)] {
        smol::block_on(async {
            let (session, driver, mut peer) = xtaci_server(protocol, 8);
            const N: u32 = 4_000;
            let mut burst = Vec::new();
            for i in 0..N {
                burst.extend_from_slice(&xtaci_frame(version, SYN, 3 + 2 * i, &[]));
                burst.extend_from_slice(&xtaci_frame(version, PSH, 3 + 2 * i, &i.to_le_bytes()));
            }
            wait("the burst", peer.write_all(&burst)).await.unwrap();
            until("the backlog to fill", || {
                session.stats().streams_active >= 8
            })
            .await;
            smol::Timer::after(Duration::from_millis(100)).await;
            let stats = session.stats();
            assert_eq!(stats.streams_active, 8, "{protocol:?}: the backlog's 8");
            assert!(
                stats.reading_paused,
                "{protocol:?}: the ninth waits for accept"
            );
            for i in 0..N {
                let mut s = wait("accept", session.accept()).await.unwrap();
                let mut b = [0u8; 4];
                wait("read", s.read_exact(&mut b)).await.unwrap();
                assert_eq!(u32::from_le_bytes(b), i, "{protocol:?}");
                assert!(session.stats().streams_active <= 9, "{protocol:?}");
            }
            let stats = session.stats();
            assert_eq!(stats.streams_refused, 0, "{protocol:?}");
            assert!(!stats.reading_paused, "{protocol:?}: every stream accepted");
            drop(peer);
            let _ = wait("the driver", driver).await;
        });
    }
}

/// While xtaci's backlog is full, only the next SYN waits: data for a stream the application
/// already holds still arrives (as with Go, whose reading loop blocks only on the stream it
/// cannot queue).
#[test]
fn on_xtaci_a_full_backlog_holds_back_only_the_next_stream() {
    for (protocol, version) in [(Protocol::Xtaci1, 1), (Protocol::Xtaci2, 2)] {
        smol::block_on(async {
            let (session, driver, mut peer) = xtaci_server(protocol, 1);
            let syn = |sid| xtaci_frame(version, SYN, sid, &[]);
            wait("a SYN", peer.write_all(&syn(3))).await.unwrap();
            let mut held = wait("accept", session.accept()).await.unwrap();
            // Stream 5 fills the backlog; data for 3 comes after it and before stream 7's SYN.
            let mut bytes = syn(5);
            bytes.extend_from_slice(&xtaci_frame(version, PSH, 3, b"flows"));
            bytes.extend_from_slice(&syn(7));
            bytes.extend_from_slice(&xtaci_frame(version, PSH, 7, b"seven"));
            wait("the frames", peer.write_all(&bytes)).await.unwrap();
            let mut b = [0u8; 5];
            wait("data while the backlog is full", held.read_exact(&mut b))
                .await
                .unwrap();
            assert_eq!(&b, b"flows", "{protocol:?}");
            assert_eq!(session.stats().streams_active, 2, "{protocol:?}: 7 waits");
            let _five = wait("accept", session.accept()).await.unwrap();
            let mut seven = wait("accept", session.accept()).await.unwrap();
            wait("read", seven.read_exact(&mut b)).await.unwrap();
            assert_eq!(&b, b"seven", "{protocol:?}");
            drop(peer);
            let _ = wait("the driver", driver).await;
        });
    }
}

/// The peer's connection is cut inside a frame while frames wait behind a full backlog: nothing
/// is read past the held frames until the application accepts, and then every stream, accept
/// and the driver hear the cut as an error, never as a clean end.
#[test]
fn on_xtaci_a_cut_behind_a_full_backlog_is_an_error_for_everyone() {
    for (protocol, version) in [(Protocol::Xtaci1, 1), (Protocol::Xtaci2, 2)] {
        smol::block_on(async {
            let (session, driver, mut peer) = xtaci_server(protocol, 1);
            let mut bytes = Vec::new();
            for (sid, data) in [(3, b"a"), (5, b"b"), (7, b"c")] {
                bytes.extend_from_slice(&xtaci_frame(version, SYN, sid, &[]));
                bytes.extend_from_slice(&xtaci_frame(version, PSH, sid, data));
            }
            // Half of a data frame's header for stream 7, then the cut.
            bytes.extend_from_slice(&xtaci_frame(version, PSH, 7, b"lost")[..4]);
            wait("the frames", peer.write_all(&bytes)).await.unwrap();
            until("the backlog to fill", || session.stats().reading_paused).await;
            drop(peer);
            // Stream 5's SYN waits while stream 3 does: the cut cannot be read before the
            // application took stream 3, whose byte arrived whole.
            let mut s = wait("accept", session.accept()).await.unwrap();
            let mut b = [0u8; 1];
            wait("read", s.read_exact(&mut b)).await.unwrap();
            assert_eq!(&b, b"a", "{protocol:?}");
            let mut streams = vec![s];
            // From then on the cut may be read at any time: a failed session hands over nothing
            // more (an accept fails, and so does every read, whatever the stream had buffered),
            // and it always fails as cut mid-frame, never as a clean end.
            let cut = |e: &dyn std::fmt::Debug| {
                let e = format!("{e:?}");
                assert!(e.contains("LostMidFrame"), "{protocol:?}: {e}");
            };
            for want in [b"b", b"c"] {
                match wait("accept", session.accept()).await {
                    Ok(mut s) => {
                        match wait("read", s.read_exact(&mut b)).await {
                            Ok(()) => assert_eq!(&b, want, "{protocol:?}"),
                            Err(e) => cut(&e),
                        }
                        streams.push(s);
                    }
                    Err(e) => cut(&e),
                }
            }
            let r = wait("the driver", driver).await;
            assert!(
                matches!(r, Err(Error::LostMidFrame(_))),
                "{protocol:?}: {r:?}"
            );
            for mut s in streams {
                let mut b = [0u8; 1];
                let r = wait("a read after the cut", s.read(&mut b)).await;
                assert!(r.is_err(), "{protocol:?}: {r:?}");
            }
            assert!(wait("accept", session.accept()).await.is_err());
        });
    }
}
