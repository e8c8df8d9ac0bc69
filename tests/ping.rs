//! `Session::ping`: a VRM round trip, recognised rather than answered back.

use std::time::Duration;

use smol::future::FutureExt;
use smux::{Config, Error, Session};

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    f.or(async {
        smol::Timer::after(Duration::from_secs(10)).await;
        panic!("timed out")
    })
    .await
}

#[test]
fn ping_measures_a_round_trip_and_ends_with_the_session() {
    smol::block_on(within(async {
        let (a, b) = smux::pipe();
        let (client, d1) = Session::client(a, Config::default());
        let (server, d2) = Session::server(b, Config::default());
        let (d1, d2) = (smol::spawn(d1), smol::spawn(d2));
        for _ in 0..3 {
            let rtt = client.ping().await.unwrap();
            assert!(rtt < Duration::from_secs(10));
            server.ping().await.unwrap();
        }
        // Concurrent pings share one probe and all complete.
        let (x, y) = futures::join!(client.ping(), client.ping());
        x.unwrap();
        y.unwrap();
        client.close().await.unwrap();
        d1.await.unwrap();
        d2.await.unwrap();
        assert!(matches!(client.ping().await, Err(Error::SessionClosed)));
    }));
}

#[test]
fn ping_works_against_a_raw_peer_answering_like_the_original() {
    use futures::{AsyncReadExt, AsyncWriteExt};
    smol::block_on(within(async {
        let (a, mut peer) = smux::pipe();
        let (client, driver) = Session::client(a, Config::default());
        let _driver = smol::spawn(driver);
        let ping = smol::spawn({
            let client = client.clone();
            async move { client.ping().await }
        });
        let mut probe = [0u8; 7];
        peer.read_exact(&mut probe).await.unwrap();
        assert_eq!(probe[0], 4, "a VRM frame");
        let v1 = u16::from_le_bytes([probe[1], probe[2]]);
        let v2 = u32::from_le_bytes([probe[3], probe[4], probe[5], probe[6]]);
        let answer = smux::frame::vrm_answer(v1, v2).encode();
        peer.write_all(&answer).await.unwrap();
        ping.await.unwrap();
        // Our session did not answer its own answer: nothing else arrives.
        let mut more = [0u8; 1];
        let nothing = peer
            .read(&mut more)
            .or(async {
                smol::Timer::after(Duration::from_millis(100)).await;
                Ok(0)
            })
            .await
            .unwrap();
        assert_eq!(nothing, 0);
    }));
}
