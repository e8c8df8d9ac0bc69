//! `Session::ping`: a VRM round trip, recognised rather than answered back.

mod common;

use std::time::Duration;

use common::*;
use futures::{AsyncReadExt, AsyncWriteExt};
use smol::future::FutureExt;
use ysmux::{Config, Error, Session};

/// Reads one VRM probe from the raw peer and returns its answer.
async fn read_probe(peer: &mut ysmux::Pipe) -> [u8; 7] {
    let mut probe = [0u8; 7];
    wait("a probe", peer.read_exact(&mut probe))
        .await
        .expect("read");
    assert_eq!(probe[0], 4, "a VRM frame");
    let v1 = u16::from_le_bytes([probe[1], probe[2]]);
    let v2 = u32::from_le_bytes([probe[3], probe[4], probe[5], probe[6]]);
    ysmux::frame::vrm_answer(v1, v2).encode()
}

#[test]
fn ping_waits_for_the_answer_and_measures_the_round_trip() {
    run(|ex| async move {
        let (a, mut peer) = ysmux::pipe();
        let (client, driver) = Session::client(a, Config::default());
        ex.spawn(driver).detach();
        RawPeer::new(&mut peer)
            .answer_offer_like_the_original()
            .await;
        // Two pings at once share one probe: the peer sees exactly one.
        let mut pings = Box::pin({
            let c = client.clone();
            async move { futures::join!(c.ping(), c.ping()) }
        });
        let woken = assert_pending(pings.as_mut(), "two pings");
        let answer = read_probe(&mut peer).await;
        // No answer yet: the pings wait, unwoken, however long the peer takes (the wait is what
        // the round trip measures).
        let held = Duration::from_millis(30);
        smol::Timer::after(held).await;
        assert_eq!(woken.get(), 0, "a ping woken without its answer");
        peer.write_all(&answer).await.expect("answer");
        let (x, y) = wait("the pings", pings).await;
        let (x, y) = (x.expect("ping"), y.expect("ping"));
        assert!(
            x >= held && y >= held,
            "round trips {x:?} {y:?} under {held:?}"
        );
        // A wrong answer is not taken for the right one.
        let mut ping = Box::pin({
            let c = client.clone();
            async move { c.ping().await }
        });
        let woken = assert_pending(ping.as_mut(), "a ping");
        let answer = read_probe(&mut peer).await;
        let mut wrong = answer;
        wrong[6] ^= 0xFF;
        peer.write_all(&wrong).await.expect("wrong answer");
        let _answer_to_wrong = read_probe(&mut peer).await; // it was answered as a probe
        assert_eq!(woken.get(), 0, "a wrong answer woke the ping");
        peer.write_all(&answer).await.expect("answer");
        wait("the ping", ping).await.expect("ping");
    });
}

#[test]
fn ping_between_two_sessions_and_after_the_end() {
    run(|ex| async move {
        let p = pair::<PipeTransport>(&ex).await;
        for _ in 0..3 {
            wait("client ping", p.client.ping()).await.expect("ping");
            wait("server ping", p.server.ping()).await.expect("ping");
        }
        wait("close", p.client.close()).await.expect("close");
        wait("client driver", p.client_driver).await.expect("clean");
        wait("server driver", p.server_driver).await.expect("clean");
        assert!(matches!(p.client.ping().await, Err(Error::SessionClosed)));
        assert!(matches!(p.server.ping().await, Err(Error::SessionClosed)));
    });
}

#[test]
fn ping_works_against_a_raw_peer_answering_like_the_original() {
    run(|ex| async move {
        let (a, mut peer) = ysmux::pipe();
        let (client, driver) = Session::client(a, Config::default());
        ex.spawn(driver).detach();
        RawPeer::new(&mut peer)
            .answer_offer_like_the_original()
            .await;
        let ping = {
            let client = client.clone();
            ex.spawn(async move { client.ping().await })
        };
        let answer = read_probe(&mut peer).await;
        peer.write_all(&answer).await.expect("answer");
        wait("the ping", ping).await.expect("ping");
        // Our session did not answer its own answer: nothing else arrives.
        let mut more = [0u8; 1];
        let nothing = peer
            .read(&mut more)
            .or(async {
                smol::Timer::after(Duration::from_millis(100)).await;
                Ok(0)
            })
            .await
            .expect("read");
        assert_eq!(nothing, 0);
    });
}
