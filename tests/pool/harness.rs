//! The harness of `tests/pool.rs`: timers (smol's, and a fake one the test runs by hand), an
//! in-memory peer whose connections can be killed, refused, held back or hung up, and helpers.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures::channel::oneshot;
use futures::{AsyncReadExt, AsyncWriteExt};
use tower::Service;
use ysmux::pool::{Pool, PoolError};
use ysmux::{Config, Pipe, Session, SleepFn, Stream};

use crate::common::*;

/// smol's timer as the pool's.
pub fn smol_sleep() -> SleepFn {
    Arc::new(|d| {
        Box::pin(async move {
            smol::Timer::after(d).await;
        })
    })
}

/// A timer the test runs by hand: every sleep the pool asks for is recorded, and completes only
/// when the test releases it.
#[derive(Clone, Default)]
pub struct FakeClock {
    sleeps: Arc<Mutex<Vec<FakeSleep>>>,
}

/// A sleep asked of a [`FakeClock`]: how long, and what completes it (until released).
pub type FakeSleep = (Duration, Option<oneshot::Sender<()>>);

impl FakeClock {
    pub fn sleep_fn(&self) -> SleepFn {
        let clock = self.clone();
        Arc::new(move |d| {
            let (tx, rx) = oneshot::channel();
            clock.sleeps.lock().unwrap().push((d, Some(tx)));
            Box::pin(async move {
                let _ = rx.await;
            })
        })
    }

    /// Every sleep asked for so far, in order.
    pub fn requested(&self) -> Vec<Duration> {
        self.sleeps
            .lock()
            .unwrap()
            .iter()
            .map(|(d, _)| *d)
            .collect()
    }

    /// Sleeps of `d` still running (asked for, not released, not dropped by the pool).
    pub fn running(&self, d: Duration) -> usize {
        let sleeps = self.sleeps.lock().unwrap();
        sleeps
            .iter()
            .filter(|(s, tx)| *s == d && tx.as_ref().is_some_and(|tx| !tx.is_canceled()))
            .count()
    }

    /// Completes every running sleep of `d`; returns how many.
    pub fn release(&self, d: Duration) -> usize {
        let mut sleeps = self.sleeps.lock().unwrap();
        let mut n = 0;
        for (s, tx) in sleeps.iter_mut() {
            if *s == d {
                if let Some(tx) = tx.take() {
                    n += usize::from(tx.send(()).is_ok());
                }
            }
        }
        n
    }
}

/// The peer of the in-memory pools: each connect makes a pipe, runs a server session on the far
/// end whose streams first say which connection they are on (one byte: the connect's number)
/// and then echo, and hands out the near end behind a [`FailSwitch`], so the test can kill it.
#[derive(Clone)]
pub struct Peer {
    ex: Ex,
    switches: Arc<Mutex<Vec<FailSwitch>>>,
    attempts: Arc<AtomicUsize>,
    pub refuse: Arc<AtomicBool>,
    /// Close every new session at once, before saying anything (a peer that turns us away).
    pub hang_up: Arc<AtomicBool>,
    /// Answer every new session's first frame, then close it (a server at its connection limit,
    /// or draining for a restart).
    pub answer_then_hang_up: Arc<AtomicBool>,
    /// The far ends, by connection.
    pub servers: Arc<Mutex<Vec<Session>>>,
    /// Connects from this attempt on wait until the gate's sender is dropped.
    pub gate: Option<(usize, smol::channel::Receiver<()>)>,
}

impl Peer {
    pub fn new(ex: &Ex) -> Peer {
        Peer {
            ex: ex.clone(),
            switches: Arc::default(),
            attempts: Arc::default(),
            refuse: Arc::default(),
            hang_up: Arc::default(),
            answer_then_hang_up: Arc::default(),
            servers: Arc::default(),
            gate: None,
        }
    }

    pub fn connector(&self) -> impl FnMut() -> PeerConnect + Send + 'static {
        let peer = self.clone();
        move || Box::pin(peer.clone().connect())
    }

    pub async fn connect(self) -> io::Result<Faulty<Pipe>> {
        let attempt = self.attempts.fetch_add(1, Ordering::SeqCst);
        if let Some((from, gate)) = &self.gate {
            if attempt >= *from {
                let _ = gate.recv().await;
            }
        }
        if self.refuse.load(Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "refused by the test",
            ));
        }
        let (a, b) = ysmux::pipe();
        let switch = FailSwitch::default();
        let tag = {
            let mut switches = self.switches.lock().unwrap();
            switches.push(switch.clone());
            (switches.len() - 1) as u8
        };
        let (server, driver) = Session::server(b, Config::default());
        self.ex.spawn(driver).detach();
        if self.hang_up.load(Ordering::SeqCst) {
            let _ = server.close().await;
        }
        if self.answer_then_hang_up.load(Ordering::SeqCst) {
            let server = server.clone();
            self.ex
                .spawn(async move {
                    // Once the client's first frame is answered, the session is closed.
                    until("the client's first frame to be answered", || {
                        server.stats().frames_out > 0
                    })
                    .await;
                    let _ = server.close().await;
                })
                .detach();
        }
        self.servers.lock().unwrap().push(server.clone());
        let ex = self.ex.clone();
        self.ex
            .spawn(async move {
                while let Ok(mut s) = server.accept().await {
                    ex.spawn(async move {
                        if s.write_all(&[tag]).await.is_ok() {
                            echo(s).await;
                        }
                    })
                    .detach();
                }
            })
            .detach();
        Ok(Faulty { io: a, switch })
    }

    pub fn kill(&self, connection: u8) {
        self.switches.lock().unwrap()[connection as usize].fail();
    }

    pub fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }
}

pub type PeerConnect =
    std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<Faulty<Pipe>>> + Send>>;

/// Reads the byte a [`Peer`] stream starts with: the connection it is on.
pub async fn tag(s: &mut Stream) -> u8 {
    let mut b = [0];
    bounded(s.read_exact(&mut b)).await.expect("the tag byte");
    b[0]
}

/// Opens a stream through the pool and reads its connection's tag.
pub async fn open_tagged(pool: &Pool) -> (Stream, u8) {
    let mut s = bounded(pool.open()).await.expect("open through the pool");
    let t = tag(&mut s).await;
    (s, t)
}

/// Writes `len` bytes of the pattern `seed` and reads them back, checked.
pub async fn round_trip(s: &mut Stream, seed: u64, len: usize) -> io::Result<()> {
    let data = pattern(seed, len);
    s.write_all(&data).await?;
    let mut got = vec![0; len];
    s.read_exact(&mut got).await?;
    check(seed, 0, &got, "echo");
    Ok(())
}

/// A waker that records whether it was woken.
#[derive(Default)]
pub struct Flag(pub AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// `poll_ready` once, with `flag` as the waker (cleared first).
pub fn poll_ready_once(pool: &mut Pool, flag: &Arc<Flag>) -> Poll<Result<(), PoolError>> {
    flag.0.store(false, Ordering::SeqCst);
    let waker = Waker::from(flag.clone());
    Service::<()>::poll_ready(pool, &mut Context::from_waker(&waker))
}

pub async fn woken(flag: &Flag) {
    until("the pool's waker", || flag.0.load(Ordering::SeqCst)).await;
}
