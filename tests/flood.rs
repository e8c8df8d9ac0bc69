//! A peer that floods frames demanding answers (SYN then FIN, over and over) and never reads them:
//! the session's queue of answers stays bounded because it stops reading until the answers move,
//! and it neither fails nor deadlocks once the peer reads again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use smol::future::FutureExt;
use ysmux::frame::{Cmd, Header};
use ysmux::{Config, Session};

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
