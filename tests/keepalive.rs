//! The keepalive's bound, on a virtual clock: the session ends two intervals (and at most a
//! quarter interval more) after the last frame from the peer, however the last frame falls
//! between the keepalive's checks; the probe goes out after one interval of silence.

mod common;

use std::time::Duration;

use common::clock::VirtualClock;
use common::*;
use ysmux::{Config, Error, Session};

const INTERVAL: Duration = Duration::from_secs(4);
/// How far the clock moves at a time: the keepalive's checks fall on multiples of it.
const STEP: Duration = Duration::from_millis(100);

/// Moves the clock one step and waits until the keepalive has looked and armed its next check
/// (or the driver has ended).
async fn step(clock: &VirtualClock, driver: &Task<Result<(), Error>>) {
    clock.advance(STEP);
    until("the keepalive to arm its next check", || {
        clock.waiting() == 1 || driver.is_finished()
    })
    .await;
}

#[test]
fn the_session_ends_two_intervals_after_the_last_frame_not_three() {
    run(|ex| async move {
        let clock = VirtualClock::default();
        let (a, b) = ysmux::pipe();
        let config = Config::default().with_keepalive(INTERVAL, clock.sleep_fn());
        let (server, driver) = Session::server(a, config);
        let driver = ex.spawn(driver);
        let mut peer = RawPeer::new(b);
        until("the keepalive to start", || clock.waiting() == 1).await;

        // The peer's last frame comes between two of the keepalive's checks, just after one
        // (which the old keepalive, checking once an interval, then took as a sign of life for
        // the whole next interval).
        while clock.now() < INTERVAL * 55 / 100 {
            step(&clock, &driver).await;
        }
        peer.send(&[Frame::syn(1)]).await;
        until("the frame to arrive", || server.stats().frames_in == 1).await;
        let last = clock.now();

        // Then silence: the probe goes out, is not answered, and the session ends.
        let mut probe_at = None;
        let mut steps = 0;
        while !driver.is_finished() {
            step(&clock, &driver).await;
            if probe_at.is_none() && server.stats().frames_out > 0 {
                probe_at = Some(clock.now());
            }
            steps += 1;
            assert!(steps < 1000, "the keepalive never ended the session");
        }
        let ended = clock.now();
        let r = driver.await;
        assert!(matches!(r, Err(Error::KeepaliveTimeout)), "{r:?}");

        let probe = probe_at.expect("a probe went out") - last;
        assert!(
            probe >= INTERVAL && probe <= INTERVAL * 5 / 4,
            "the probe went out {probe:?} after the last frame; the interval is {INTERVAL:?}"
        );
        let silence = ended - last;
        assert!(
            silence >= 2 * INTERVAL && silence <= 2 * INTERVAL + INTERVAL / 4,
            "the session ended {silence:?} after the last frame; the interval is {INTERVAL:?}"
        );
        // What went out was the probe, a VRM.
        drop(server);
        let sent = peer.recv_to_eof().await;
        assert!(sent.iter().any(|f| f.cmd == VRM), "{sent:?}");
    });
}
