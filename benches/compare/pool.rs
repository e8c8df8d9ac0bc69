//! pool: where one connection is the bottleneck. Through a link that gives each connection its
//! own rate (as a shaped network gives each flow), a `ysmux::pool::Pool` of N sessions moves 8
//! streams; the baseline is N raw TCP connections through the same link, one writer each.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::io::AsyncWriteExt;

use crate::rt::{connect, BoxFio, Net, RtKind, Spawner};
use crate::scenarios::{read_discard, CHUNK, DATA};

/// Streams the pool spreads over its sessions.
pub const STREAMS: usize = 8;

/// Counts everything read from `s` into `total`, until it ends.
async fn count(mut s: BoxFio, total: Arc<AtomicU64>) {
    while let Ok(n @ 1..) = read_discard(&mut s, CHUNK).await {
        total.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Writes until the run ends.
async fn write_forever<W: futures::io::AsyncWrite + Unpin>(mut w: W) -> io::Result<()> {
    loop {
        w.write_all(&DATA).await?;
    }
}

/// Bytes the server read in `duration` from N raw connections (`smux == false`) or from a pool of
/// N sessions moving `STREAMS` streams, all through `net`.
pub async fn run(
    sp: Spawner,
    rt: RtKind,
    net: Arc<Net>,
    n: usize,
    smux: bool,
    duration: Duration,
) -> io::Result<u64> {
    let addr = net.addr().expect("a TCP net");
    let total = Arc::new(AtomicU64::new(0));
    // The server: every connection counted; with smux, a session per connection, every stream
    // counted.
    {
        let (sp, total, net) = (sp.clone(), total.clone(), net.clone());
        sp.clone().detach(async move {
            while let Ok(conn) = net.accept().await {
                let total = total.clone();
                if !smux {
                    sp.detach(count(conn.fio(), total));
                    continue;
                }
                let (session, driver) =
                    ysmux::Session::server(conn.fio(), ysmux::Config::default());
                sp.detach(async move {
                    let _ = driver.await;
                });
                let sp2 = sp.clone();
                sp.detach(async move {
                    while let Ok(s) = session.accept().await {
                        sp2.detach(count(Box::new(s), total.clone()));
                    }
                });
            }
        });
    }
    let start;
    let mut kept = Vec::new();
    if smux {
        let sleep_sp = sp.clone();
        let sleep: ysmux::SleepFn = Arc::new(move |d| sleep_sp.sleep(d));
        let config = ysmux::pool::PoolConfig::new(sleep)
            .with_sessions(n, n)
            .with_idle_timeout(None);
        let (pool, driver) = ysmux::pool::Pool::new(
            move || async move { Ok::<_, io::Error>(connect(rt, addr).await?.fio()) },
            config,
        );
        sp.detach(async move {
            let _ = driver.await;
        });
        let waited = Instant::now();
        while pool.sessions().len() < n {
            if waited.elapsed() > Duration::from_secs(10) {
                return Err(io::Error::other("the pool did not connect every session"));
            }
            sp.sleep(Duration::from_millis(5)).await;
        }
        start = Instant::now();
        for _ in 0..STREAMS {
            let s = pool.open().await.map_err(io::Error::from)?;
            sp.detach(async move {
                let _ = write_forever(s).await;
            });
        }
        kept.push(pool);
    } else {
        start = Instant::now();
        for _ in 0..n {
            let c = connect(rt, addr).await?.fio();
            sp.detach(async move {
                let _ = write_forever(c).await;
            });
        }
    }
    sp.sleep(duration.saturating_sub(start.elapsed())).await;
    let moved = total.load(Ordering::Relaxed);
    drop(kept);
    Ok(moved)
}
