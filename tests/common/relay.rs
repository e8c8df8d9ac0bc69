//! A fault relay on loopback: a TCP proxy between two ends that chops the byte stream into random
//! pieces, stalls one direction, and cuts every connection through it, with a reset to both ends
//! or with a FIN to one end only (the other left half-open: open, and silent for ever).
//!
//! Every connection through it is one task; [`Relay::stop`] (or dropping the relay) ends them all.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// An end of a connection through the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The end that connected to the relay.
    Client,
    /// The end the relay connected to.
    Server,
}

/// How the relay cuts its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// A reset to both ends (SO_LINGER 0, then close).
    Reset,
    /// A FIN to this end only; the other end hears nothing more, its connection left open.
    FinTo(End),
}

/// What the relay's connections are told: cuts so far (a connection made after the `n`th cut is
/// cut by the next one), how to cut, and whether to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Order {
    cuts: u64,
    how: Cut,
    stop: bool,
}

/// The relay: where to connect, and its controls.
pub struct Relay {
    addr: SocketAddr,
    order: watch::Sender<Order>,
    /// Directions stalled now: toward the client, toward the server.
    stalled: Arc<[AtomicBool; 2]>,
    /// Connections cut so far.
    pub cut: Arc<AtomicU64>,
    tasks: Arc<Mutex<JoinSet<()>>>,
}

impl Relay {
    /// A relay on 127.0.0.1 to `target`, writing what it forwards in random pieces: half of 1 to
    /// 7 bytes, half of 1 to `max_piece` bytes (seeded by `seed`).
    pub async fn start(target: SocketAddr, max_piece: usize, seed: u64) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (order, _) = watch::channel(Order {
            cuts: 0,
            how: Cut::Reset,
            stop: false,
        });
        let stalled: Arc<[AtomicBool; 2]> = Arc::default();
        let cut = Arc::new(AtomicU64::new(0));
        let tasks = Arc::new(Mutex::new(JoinSet::new()));
        let accept = {
            let (order, stalled, cut, tasks) =
                (order.clone(), stalled.clone(), cut.clone(), tasks.clone());
            async move {
                let mut n = 0u64;
                while let Ok((client, _)) = listener.accept().await {
                    if order.borrow().stop {
                        break;
                    }
                    let Ok(server) = TcpStream::connect(target).await else {
                        continue;
                    };
                    n += 1;
                    let mut rx = order.subscribe();
                    let cuts = rx.borrow_and_update().cuts;
                    let conn = Conn {
                        order: rx,
                        cuts,
                        stalled: stalled.clone(),
                        cut: cut.clone(),
                        rng: (seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1,
                        max_piece,
                    };
                    tasks.lock().unwrap().spawn(conn.run(client, server));
                }
            }
        };
        tasks.lock().unwrap().spawn(accept);
        Relay {
            addr,
            order,
            stalled,
            cut,
            tasks,
        }
    }

    /// Where the client end connects.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts every connection through the relay now; connections made later are forwarded.
    pub fn cut_all(&self, how: Cut) {
        self.order.send_modify(|o| {
            o.cuts += 1;
            o.how = how;
        });
    }

    /// Stalls (or resumes) what flows toward `end`.
    pub fn stall(&self, toward: End, stalled: bool) {
        self.stalled[toward as usize].store(stalled, Ordering::SeqCst);
    }

    /// Ends every connection (dropping both ends) and the listener.
    pub fn stop(&self) {
        self.order.send_modify(|o| o.stop = true);
        self.tasks.lock().unwrap().abort_all();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One connection through the relay.
struct Conn {
    order: watch::Receiver<Order>,
    /// Cuts ordered before this connection was made.
    cuts: u64,
    stalled: Arc<[AtomicBool; 2]>,
    cut: Arc<AtomicU64>,
    rng: u64,
    max_piece: usize,
}

impl Conn {
    async fn run(mut self, client: TcpStream, server: TcpStream) {
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        let mut cbuf = vec![0u8; 16 * 1024];
        let mut sbuf = vec![0u8; 16 * 1024];
        let (mut c_open, mut s_open) = (true, true);
        let how = loop {
            let toward_server = !self.stalled[End::Server as usize].load(Ordering::SeqCst);
            let toward_client = !self.stalled[End::Client as usize].load(Ordering::SeqCst);
            tokio::select! {
                changed = self.order.changed() => {
                    let o = *self.order.borrow_and_update();
                    if changed.is_err() || o.stop {
                        return;
                    }
                    if o.cuts > self.cuts {
                        break o.how;
                    }
                }
                r = cr.read(&mut cbuf), if c_open && toward_server => match r {
                    Ok(0) | Err(_) => {
                        c_open = false;
                        let _ = sw.shutdown().await;
                    }
                    Ok(n) => {
                        if self.forward(&cbuf[..n], &mut sw).await.is_err() {
                            return;
                        }
                    }
                },
                r = sr.read(&mut sbuf), if s_open && toward_client => match r {
                    Ok(0) | Err(_) => {
                        s_open = false;
                        let _ = cw.shutdown().await;
                    }
                    Ok(n) => {
                        if self.forward(&sbuf[..n], &mut cw).await.is_err() {
                            return;
                        }
                    }
                },
                // A stalled direction is looked at again now and then.
                () = tokio::time::sleep(Duration::from_millis(5)),
                    if !toward_server || !toward_client => {}
            }
            if !c_open && !s_open {
                return;
            }
        };
        self.cut.fetch_add(1, Ordering::SeqCst);
        match how {
            Cut::Reset => {
                reset(&cr, &cw);
                reset(&sr, &sw);
            }
            Cut::FinTo(end) => {
                let (mut fin, mut silent, _held) = match end {
                    End::Client => (cw, sr, (cr, sw)),
                    End::Server => (sw, cr, (sr, cw)),
                };
                let _ = fin.shutdown().await;
                // The other end hears nothing more, and what it sends goes nowhere, until the
                // relay stops (its connection stays open).
                let mut sink = vec![0u8; 16 * 1024];
                loop {
                    tokio::select! {
                        r = silent.read(&mut sink) => if matches!(r, Ok(0) | Err(_)) {
                            break;
                        },
                        changed = self.order.changed() => {
                            if changed.is_err() || self.order.borrow().stop {
                                return;
                            }
                        }
                    }
                }
                while self.order.changed().await.is_ok() {
                    if self.order.borrow().stop {
                        return;
                    }
                }
            }
        }
    }

    /// Writes `data` in random pieces.
    async fn forward(&mut self, mut data: &[u8], to: &mut OwnedWriteHalf) -> std::io::Result<()> {
        while !data.is_empty() {
            // Half the pieces of 1 to 7 bytes (a header split anywhere), half up to `max_piece`.
            let most = if self.next() % 2 == 0 {
                7
            } else {
                self.max_piece
            };
            let piece = 1 + (self.next() as usize % most).min(data.len() - 1);
            to.write_all(&data[..piece]).await?;
            data = &data[piece..];
            if self.next() % 4 == 0 {
                tokio::task::yield_now().await;
            }
        }
        Ok(())
    }

    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }
}

/// Resets the connection of these halves once they are dropped.
fn reset(r: &OwnedReadHalf, _w: &OwnedWriteHalf) {
    let _ = AsRef::<tokio::net::TcpStream>::as_ref(r).set_zero_linger();
}
