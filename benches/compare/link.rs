//! A long, fat link in user space (no kernel support needed): a forwarder between a client and a
//! server over loopback that gives each direction a one-way delay, a rate, and a bounded
//! bottleneck queue, so that senders feel backpressure as over a real link.
//!
//! Each direction is two threads. The reader takes bytes from its side as long as the bottleneck
//! queue (what the link has accepted and not yet put on the wire at its rate) holds less than
//! `queue` bytes; past that it stops reading, and TCP's own flow control holds the sender back. Each
//! chunk read leaves the bottleneck when the rate has serialized it and is delivered `one_way`
//! later by the writer. The connections to and from the link are loopback TCP, so what limits a
//! transfer is the link alone: raw TCP through it reaches the rate, and a ping takes the round
//! trip (the self-check in `compare.rs` shows both).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// What one chunk read from a side may be (at 1 Gbit/s, 131 us of the wire).
const CHUNK: usize = 16 * 1024;

/// The link's shape, the same each way.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub one_way: Duration,
    /// Bytes per second.
    pub rate: u64,
    /// Bytes the bottleneck queue holds at most.
    pub queue: usize,
}

impl Shape {
    /// `rtt` round trip at `bits_per_s`, with a queue of one bandwidth-delay product.
    pub fn new(rtt: Duration, bits_per_s: u64) -> Shape {
        let rate = bits_per_s / 8;
        Shape {
            one_way: rtt / 2,
            rate,
            queue: (rate as f64 * rtt.as_secs_f64()) as usize,
        }
    }

    pub fn rtt(&self) -> Duration {
        self.one_way * 2
    }
}

/// A running link: connections to `addr()` are forwarded to the target through the shape. Dropped,
/// it accepts no more; connections through it end when their ends close.
pub struct Link {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Link {
    pub fn start(shape: Shape, target: SocketAddr) -> io::Result<Link> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        thread::Builder::new()
            .name("link-accept".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stopped.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(a) = conn else { continue };
                    let Ok(b) = TcpStream::connect(target) else {
                        continue;
                    };
                    let _ = a.set_nodelay(true);
                    let _ = b.set_nodelay(true);
                    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else {
                        continue;
                    };
                    direction(shape, a, b2);
                    direction(shape, b, a2);
                }
            })?;
        Ok(Link { addr, stop })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr); // wakes the accepting thread
    }
}

/// Forwards `from` to `to` through `shape`, on two threads of its own.
fn direction(shape: Shape, mut from: TcpStream, mut to: TcpStream) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let per_byte = 1.0 / shape.rate as f64;
    let queue_time = Duration::from_secs_f64(shape.queue as f64 * per_byte);
    let _ = thread::Builder::new()
        .name("link-in".into())
        .spawn(move || {
            precise_sleeps();
            let mut buf = vec![0u8; CHUNK];
            // When the bottleneck will have put on the wire everything it accepted so far.
            let mut free_at = Instant::now();
            loop {
                let now = Instant::now();
                let queued = free_at.saturating_duration_since(now);
                if queued > queue_time {
                    thread::sleep(queued - queue_time); // the queue is full: stop reading
                    continue;
                }
                let n = match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                free_at =
                    free_at.max(Instant::now()) + Duration::from_secs_f64(n as f64 * per_byte);
                if tx
                    .send((free_at + shape.one_way, buf[..n].to_vec()))
                    .is_err()
                {
                    break;
                }
            }
            let _ = from.shutdown(Shutdown::Read);
        });
    let _ = thread::Builder::new()
        .name("link-out".into())
        .spawn(move || {
            precise_sleeps();
            let mut alarm = Alarm::calibrated();
            for (at, data) in rx {
                alarm.sleep_until(at);
                if to.write_all(&data).is_err() {
                    let _ = to.shutdown(Shutdown::Both);
                    return;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
}

/// Lets this thread's sleeps end on time: Linux lets a sleep of a normal thread end up to 50 us
/// late (its timer slack) to group wakeups; with the other wakeups on the way, the link's ping was
/// 2-5% longer than its shape (10.5 ms for 10; 10.2-10.3 with this and `Alarm`). Where the file
/// is missing (not Linux), the self-check shows what that costs.
fn precise_sleeps() {
    let _ = std::fs::write("/proc/thread-self/timerslack_ns", "1");
}

/// Sleeps so as to wake at `at` on average: a thread woken from a sleep runs some tens of
/// microseconds late, so each sleep aims early by how late the last ones woke (spinning instead
/// would take a core from the ends on this two-core machine).
struct Alarm {
    late: Duration,
}

impl Alarm {
    /// An alarm that has slept a few short times, so that the link's first deliveries (the
    /// self-check's ping) already aim early by about as much as a sleep runs late.
    fn calibrated() -> Alarm {
        let mut w = Alarm {
            late: Duration::ZERO,
        };
        for _ in 0..16 {
            w.sleep_until(Instant::now() + Duration::from_micros(200));
        }
        w
    }

    fn sleep_until(&mut self, at: Instant) {
        let now = Instant::now();
        let aim = at.checked_sub(self.late).unwrap_or(at);
        if aim <= now {
            return;
        }
        thread::sleep(aim - now);
        let woke = Instant::now().saturating_duration_since(aim);
        // An average over about the last 16 sleeps.
        self.late = (self.late * 15 + woke) / 16;
    }
}
