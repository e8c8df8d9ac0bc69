//! Runtimes (tokio with 2 workers, smol with 2 executor threads; `SMUX_BENCH_WORKERS` for more or
//! fewer) and transports (loopback TCP, in-memory pipe), behind one small interface so that every
//! scenario is written once.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use futures::future::{select, Either, RemoteHandle};
use futures::FutureExt;

use crate::link::{Link, Shape};

/// futures-io stream, boxed: what every scenario reads and writes.
pub trait Fio: futures::io::AsyncRead + futures::io::AsyncWrite + Send + Unpin {}
impl<T: futures::io::AsyncRead + futures::io::AsyncWrite + Send + Unpin> Fio for T {}
pub type BoxFio = Box<dyn Fio>;

/// tokio-io stream, boxed: what the tokio-only peers (tokio-yamux, async_smux) run over.
pub trait Tio: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Tio for T {}
pub type BoxTio = Box<dyn Tio>;

pub type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RtKind {
    Tokio,
    Smol,
}

impl RtKind {
    pub fn name(self) -> &'static str {
        match self {
            RtKind::Tokio => "tokio",
            RtKind::Smol => "smol",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NetKind {
    Tcp,
    Pipe,
    /// Loopback TCP through the link emulator (`link.rs`): this round trip in ms, and this rate
    /// in Mbit/s for each connection (as a shaped network gives each flow).
    Wan {
        ms: u32,
        mbit: u32,
    },
}

impl NetKind {
    pub fn name(self) -> String {
        match self {
            NetKind::Tcp => "tcp".into(),
            NetKind::Pipe => "pipe".into(),
            NetKind::Wan { ms, mbit: 1000 } => format!("wan {ms} ms 1 Gbit/s"),
            NetKind::Wan { ms, mbit } => format!("wan {ms} ms {mbit} Mbit/s per connection"),
        }
    }

    /// The link's shape, for a wan.
    pub fn shape(self) -> Option<Shape> {
        match self {
            NetKind::Wan { ms, mbit } => Some(Shape::new(
                Duration::from_millis(u64::from(ms)),
                u64::from(mbit) * 1_000_000,
            )),
            _ => None,
        }
    }
}

/// A fresh runtime per measured run, so that a run that hangs (or leaves tasks behind) cannot
/// disturb the next one: dropping it cancels every task it still holds.
pub enum Rt {
    Tokio(tokio::runtime::Runtime),
    Smol {
        ex: Arc<smol::Executor<'static>>,
        stop: Option<smol::channel::Sender<()>>,
        threads: Vec<JoinHandle<()>>,
    },
}

/// Worker threads per runtime: 2, or `SMUX_BENCH_WORKERS`. With one, no task ever waits for
/// another thread to wake, and rtt and churn measure only what a message or a cycle costs in CPU.
pub fn workers() -> usize {
    static WORKERS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *WORKERS.get_or_init(|| crate::env_count("SMUX_BENCH_WORKERS", 2))
}

impl Rt {
    pub fn new(kind: RtKind) -> Rt {
        match kind {
            RtKind::Tokio => Rt::Tokio(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(workers())
                    .enable_all()
                    .build()
                    .expect("tokio runtime"),
            ),
            RtKind::Smol => {
                let ex = Arc::new(smol::Executor::new());
                let (stop, stopped) = smol::channel::bounded::<()>(1);
                let threads = (0..workers())
                    .map(|i| {
                        let ex = ex.clone();
                        let stopped = stopped.clone();
                        std::thread::Builder::new()
                            .name(format!("smol-bench-{i}"))
                            .spawn(move || {
                                let _ = smol::block_on(ex.run(stopped.recv()));
                            })
                            .expect("smol thread")
                    })
                    .collect();
                Rt::Smol {
                    ex,
                    stop: Some(stop),
                    threads,
                }
            }
        }
    }

    pub fn spawner(&self) -> Spawner {
        match self {
            Rt::Tokio(rt) => Spawner::Tokio(rt.handle().clone()),
            Rt::Smol { ex, .. } => Spawner::Smol(Arc::downgrade(ex)),
        }
    }

    /// Runs `fut` as a task of the runtime and waits for it on this thread.
    pub fn run<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> T {
        let handle = self.spawner().spawn(fut);
        match self {
            Rt::Tokio(rt) => rt.block_on(handle),
            Rt::Smol { .. } => smol::block_on(handle),
        }
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        if let Rt::Smol { stop, threads, .. } = self {
            drop(stop.take());
            for t in threads.drain(..) {
                let _ = t.join();
            }
        }
        // The executor (and with it every task left) is dropped with `self`; tokio's runtime
        // cancels its tasks when dropped.
    }
}

/// Spawns tasks on the runtime of the current run. Smol's holds the executor weakly, so that tasks
/// holding a spawner do not keep the executor (and themselves) alive once the run is over.
#[derive(Clone)]
pub enum Spawner {
    Tokio(tokio::runtime::Handle),
    Smol(Weak<smol::Executor<'static>>),
}

impl Spawner {
    /// Spawns `fut`; the returned handle yields its output, and dropping it cancels the task.
    pub fn spawn<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> RemoteHandle<T> {
        let (task, handle) = fut.remote_handle();
        match self {
            Spawner::Tokio(h) => {
                h.spawn(task);
            }
            Spawner::Smol(ex) => {
                if let Some(ex) = ex.upgrade() {
                    ex.spawn(task).detach();
                }
            }
        }
        handle
    }

    /// Spawns `fut` for as long as the run lasts.
    pub fn detach(&self, fut: impl Future<Output = ()> + Send + 'static) {
        self.spawn(fut).forget();
    }

    pub fn kind(&self) -> RtKind {
        match self {
            Spawner::Tokio(_) => RtKind::Tokio,
            Spawner::Smol(_) => RtKind::Smol,
        }
    }

    pub fn sleep(&self, d: Duration) -> BoxFut<()> {
        match self {
            Spawner::Tokio(h) => {
                let _g = h.enter();
                Box::pin(tokio::time::sleep(d))
            }
            Spawner::Smol(_) => Box::pin(async move {
                smol::Timer::after(d).await;
            }),
        }
    }

    /// `fut`'s output, or `None` if it took longer than `d`.
    pub async fn timeout<T>(&self, d: Duration, fut: impl Future<Output = T>) -> Option<T> {
        let fut = std::pin::pin!(fut);
        match select(fut, self.sleep(d)).await {
            Either::Left((v, _)) => Some(v),
            Either::Right(_) => None,
        }
    }
}

/// tokio-yamux and async_smux arm tokio timers (async_smux always, a 500 ms tick): under smol they
/// are created inside this otherwise idle one-thread tokio runtime, whose thread drives them.
pub fn tokio_timer_context() -> tokio::runtime::EnterGuard<'static> {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .expect("timer runtime")
    })
    .enter()
}

/// One end of a transport, in the runtime's native type (so that each peer gets it with the fewest
/// adapters: futures-io crates get futures-io, tokio-io crates get tokio-io).
pub enum Conn {
    Tokio(tokio::net::TcpStream),
    Smol(smol::net::TcpStream),
    Pipe(ysmux::Pipe),
}

impl Conn {
    pub fn fio(self) -> BoxFio {
        use tokio_util::compat::TokioAsyncReadCompatExt;
        match self {
            Conn::Tokio(s) => Box::new(s.compat()),
            Conn::Smol(s) => Box::new(s),
            Conn::Pipe(p) => Box::new(p),
        }
    }

    pub fn tio(self) -> BoxTio {
        use tokio_util::compat::FuturesAsyncReadCompatExt;
        match self {
            Conn::Tokio(s) => Box::new(s),
            Conn::Smol(s) => Box::new(s.compat()),
            Conn::Pipe(p) => Box::new(p.compat()),
        }
    }
}

/// Where new connections come from: a loopback listener (127.0.0.1 only), or pipes.
pub enum Net {
    Tokio(tokio::net::TcpListener, SocketAddr),
    Smol(smol::net::TcpListener, SocketAddr),
    Pipe,
    /// A TCP net whose connections go through a link: connect to the link, accept from `inner`.
    Wan {
        inner: Box<Net>,
        link: Link,
    },
}

impl Net {
    pub async fn new(kind: NetKind, rt: RtKind) -> io::Result<Net> {
        Ok(match (kind, rt) {
            (NetKind::Pipe, _) => Net::Pipe,
            (NetKind::Wan { .. }, _) => {
                let inner = Box::pin(Net::new(NetKind::Tcp, rt)).await?;
                let target = inner.addr().expect("a TCP net");
                let link = Link::start(kind.shape().expect("a wan"), target)?;
                Net::Wan {
                    inner: Box::new(inner),
                    link,
                }
            }
            (NetKind::Tcp, RtKind::Tokio) => {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let a = l.local_addr()?;
                Net::Tokio(l, a)
            }
            (NetKind::Tcp, RtKind::Smol) => {
                let l = smol::net::TcpListener::bind("127.0.0.1:0").await?;
                let a = l.local_addr()?;
                Net::Smol(l, a)
            }
        })
    }

    pub fn addr(&self) -> Option<SocketAddr> {
        match self {
            Net::Tokio(_, a) | Net::Smol(_, a) => Some(*a),
            Net::Pipe => None,
            Net::Wan { link, .. } => Some(link.addr()),
        }
    }

    /// A connected pair (client end, server end), both with TCP_NODELAY.
    pub async fn pair(&self) -> io::Result<(Conn, Conn)> {
        match self {
            Net::Wan { inner, link } => {
                let rt = match **inner {
                    Net::Smol(..) => RtKind::Smol,
                    _ => RtKind::Tokio,
                };
                let (c, s) = futures::join!(connect(rt, link.addr()), inner.accept());
                Ok((c?, s?))
            }
            Net::Pipe => {
                let (a, b) = ysmux::pipe();
                Ok((Conn::Pipe(a), Conn::Pipe(b)))
            }
            Net::Tokio(l, addr) => {
                let (c, s) = futures::join!(tokio::net::TcpStream::connect(*addr), l.accept());
                let (c, (s, _)) = (c?, s?);
                c.set_nodelay(true)?;
                s.set_nodelay(true)?;
                Ok((Conn::Tokio(c), Conn::Tokio(s)))
            }
            Net::Smol(l, addr) => {
                let (c, s) = futures::join!(smol::net::TcpStream::connect(*addr), l.accept());
                let (c, (s, _)) = (c?, s?);
                c.set_nodelay(true)?;
                s.set_nodelay(true)?;
                Ok((Conn::Smol(c), Conn::Smol(s)))
            }
        }
    }

    /// Accepts the next connection of a TCP net (with TCP_NODELAY).
    pub async fn accept(&self) -> io::Result<Conn> {
        match self {
            Net::Tokio(l, _) => {
                let (s, _) = l.accept().await?;
                s.set_nodelay(true)?;
                Ok(Conn::Tokio(s))
            }
            Net::Smol(l, _) => {
                let (s, _) = l.accept().await?;
                s.set_nodelay(true)?;
                Ok(Conn::Smol(s))
            }
            Net::Wan { inner, .. } => Box::pin(inner.accept()).await,
            Net::Pipe => Err(io::Error::other("a pipe net has nothing to accept")),
        }
    }
}

/// Connects a new TCP connection (with TCP_NODELAY) to `addr`.
pub async fn connect(rt: RtKind, addr: SocketAddr) -> io::Result<Conn> {
    match rt {
        RtKind::Tokio => {
            let s = tokio::net::TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            Ok(Conn::Tokio(s))
        }
        RtKind::Smol => {
            let s = smol::net::TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            Ok(Conn::Smol(s))
        }
    }
}
