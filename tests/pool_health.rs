//! The pool's health check on a virtual clock: a session whose peer stops being heard (its
//! transport cut on the far side: what it sends goes out, nothing comes back, and nothing here
//! fails) gets no new streams and is replaced; once its peer is heard again it takes streams
//! again.

mod common;

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use common::clock::VirtualClock;
use common::*;
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use futures::task::AtomicWaker;
use ysmux::pool::{Pool, PoolConfig};
use ysmux::{Config, Pipe, Session, Stream};

const PERIOD: Duration = Duration::from_millis(100);

/// A switch that holds back everything a [`Deaf`] transport would read, until let go.
#[derive(Clone, Default)]
struct Deafness {
    held: Arc<AtomicBool>,
    reader: Arc<AtomicWaker>,
}

impl Deafness {
    fn hold(&self) {
        self.held.store(true, Ordering::SeqCst);
    }

    fn release(&self) {
        self.held.store(false, Ordering::SeqCst);
        self.reader.wake();
    }
}

/// A transport whose reads can be held back: the peer seems to have gone silent.
struct Deaf {
    io: Pipe,
    deafness: Deafness,
}

impl AsyncRead for Deaf {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.deafness.reader.register(cx.waker());
        if self.deafness.held.load(Ordering::SeqCst) {
            return Poll::Pending;
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Deaf {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_close(cx)
    }
}

/// Opens a stream through the pool and reads the byte its peer starts it with: its connection.
async fn open_tagged(pool: &Pool) -> (Stream, u8) {
    let mut s = bounded(pool.open()).await.expect("open through the pool");
    let mut tag = [0u8];
    bounded(s.read_exact(&mut tag)).await.expect("the tag");
    (s, tag[0])
}

/// Moves the clock one health period on, and waits until the pool has looked (armed its next
/// look).
async fn step(clock: &VirtualClock) {
    clock.advance(PERIOD);
    until("the pool to look again", || clock.waiting() >= 1).await;
}

#[test]
fn a_session_that_goes_silent_gets_no_new_streams_until_it_is_heard_again() {
    run(|ex| async move {
        let clock = VirtualClock::default();
        let switches: Arc<Mutex<Vec<Deafness>>> = Arc::default();
        let connect = {
            let (ex, switches) = (ex.clone(), switches.clone());
            move || {
                let (a, b) = ysmux::pipe();
                let deafness = Deafness::default();
                let tag = {
                    let mut all = switches.lock().unwrap();
                    all.push(deafness.clone());
                    (all.len() - 1) as u8
                };
                let (server, driver) = Session::server(b, Config::default());
                ex.spawn(driver).detach();
                let ex2 = ex.clone();
                ex.spawn(async move {
                    while let Ok(mut s) = server.accept().await {
                        ex2.spawn(async move {
                            if s.write_all(&[tag]).await.is_ok() {
                                echo(s).await;
                            }
                        })
                        .detach();
                    }
                })
                .detach();
                async move { Ok::<_, io::Error>(Deaf { io: a, deafness }) }
            }
        };
        let config = PoolConfig::new(clock.sleep_fn())
            .with_sessions(2, 2)
            .with_idle_timeout(None)
            .with_health_check(Some(PERIOD));
        let (pool, driver) = Pool::new(connect, config);
        let driver = ex.spawn(driver);
        until("both sessions", || pool.stats().sessions == 2).await;

        // A stream on each connection; then connection 0's peer goes silent.
        let mut on = [None, None];
        while on.iter().any(Option::is_none) {
            let (s, tag) = open_tagged(&pool).await;
            on[tag as usize].get_or_insert(s);
        }
        let [Some(mut s0), Some(_s1)] = on else {
            unreachable!()
        };
        switches.lock().unwrap()[0].hold();
        // Things are sent on it, and nothing comes back.
        let mut steps = 0;
        while pool.stats().sessions < 3 {
            s0.write_all(b"anyone?").await.unwrap();
            step(&clock).await;
            steps += 1;
            assert!(steps < 50, "the silent session was never replaced");
        }
        // No new stream goes to it.
        let mut held = Vec::new();
        for _ in 0..20 {
            let (s, tag) = open_tagged(&pool).await;
            assert_ne!(tag, 0, "a new stream went to the silent session");
            held.push(s);
        }

        // Its peer is heard again (it answers the probe): it takes streams again.
        switches.lock().unwrap()[0].release();
        let mut back = false;
        for _ in 0..60 {
            let (s, tag) = open_tagged(&pool).await;
            held.push(s);
            if tag == 0 {
                back = true;
                break;
            }
        }
        assert!(back, "the session heard from again took no new stream");
        drop((held, s0));
        bounded(pool.shutdown(async {})).await.unwrap();
        bounded(driver).await.unwrap();
    });
}
