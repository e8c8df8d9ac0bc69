//! The implementations under test, each behind the same two calls: `open` and `accept`.
//!
//! How each is made to run every scenario fairly (everything else is its default configuration):
//! - raw: `open` is a new TCP connection (or a new pipe), `accept` takes it on the other side. In
//!   bulk and rtt only one is ever opened, so raw is ONE connection; in churn each cycle is a full
//!   connect, exchange, close.
//! - smux (this crate): `Config::default()` (512 KiB window growing up to 16 MiB with a peer of
//!   this crate where the path needs it, accept backlog 1024). smux-base (wan only): the same with
//!   window growth off, the original's fixed 512 KiB.
//! - yamux 0.13: limited to 512 streams by default, so `max_num_streams` is raised to 16,384 (and
//!   `max_connection_receive_window` to 16,384 x 256 KiB, which its config requires; windows still
//!   start at 256 KiB). It also refuses to have more than 256 opened streams unacknowledged (a
//!   fixed constant), and a stream is acknowledged only by the accepting side's first frame: so
//!   where the accepting side never writes (bulk, stalled), it writes an empty data frame
//!   (`write(&[])`, 12 bytes of header) right after accepting, which acknowledges the stream and
//!   nothing more. In the wan scenario (8 streams at most) it keeps its defaults, under which a
//!   stream's window auto-tunes up to 1 GiB / 512 streams. The `Connection` has no driver of its own: a task owns it, polls
//!   `poll_next_inbound` forever and serves `poll_new_outbound` for `open` requests sent to it
//!   over a channel.
//! - tokio-yamux 0.3: keepalive off (it arms a tokio timer), accept backlog and stream count at
//!   65,535 (default backlog 256). A stream learns of new send window only while something polls a
//!   read on it, so a stream that only writes stalls after 256 KiB: writers are split
//!   (`futures::io::split`) and a task keeps a read pending on the read half (`write_half`). The
//!   `Session` is a `Stream` of inbound streams that a task polls forever.
//! - async_smux 0.3: default configuration. It has no per-stream flow control (only queue limits
//!   of 1024 frames, per stream to send and per session received), so a stream that nobody reads
//!   eventually stops the whole session: that is what the stalled scenario shows for it. It needs a
//!   tokio timer context when built; under smol that comes from an idle one-thread tokio runtime.
//!
//! Every stream is handed to the scenarios as a boxed futures-io object (tokio-io ones through
//! `tokio_util::compat`), and every transport is given to each crate in the io traits it uses,
//! converted only when the runtime's native type differs.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::task::Poll;

use futures::channel::{mpsc, oneshot};
use futures::future::poll_fn;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use futures::lock::Mutex;
use futures::StreamExt;

use crate::rt::{connect, BoxFio, BoxFut, Net, RtKind, Spawner};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Impl {
    Raw,
    Smux,
    /// This crate with the original's fixed window: window growth off (`with_max_window` at the
    /// window). Measured in the wan scenario only, where the two differ.
    SmuxBase,
    /// This crate speaking xtaci/smux protocol version 1 (async_smux's wire), to itself.
    SmuxX1,
    /// This crate speaking xtaci/smux protocol version 2, to itself.
    SmuxX2,
    Yamux,
    TokioYamux,
    AsyncSmux,
}

pub const ALL: [Impl; 7] = [
    Impl::Raw,
    Impl::Smux,
    Impl::SmuxX1,
    Impl::SmuxX2,
    Impl::Yamux,
    Impl::TokioYamux,
    Impl::AsyncSmux,
];

impl Impl {
    pub fn name(self) -> &'static str {
        match self {
            Impl::Raw => "raw",
            Impl::Smux => "smux",
            Impl::SmuxBase => "smux-base",
            Impl::SmuxX1 => "smux-x1",
            Impl::SmuxX2 => "smux-x2",
            Impl::Yamux => "yamux",
            Impl::TokioYamux => "tokio-yamux",
            Impl::AsyncSmux => "async_smux",
        }
    }

    pub fn parse(s: &str) -> Option<Impl> {
        ALL.into_iter().chain([Impl::SmuxBase]).find(|i| {
            i.name().eq_ignore_ascii_case(s)
                || i.name().replace(['-', '_'], "") == s.replace(['-', '_'], "")
        })
    }
}

type OpenFn = Arc<dyn Fn() -> BoxFut<io::Result<BoxFio>> + Send + Sync>;

/// One end of a session (or, for raw, of a connection factory).
#[derive(Clone)]
pub struct Side {
    pub imp: Impl,
    open: OpenFn,
    accept: OpenFn,
}

pub type BoxW = Box<dyn futures::io::AsyncWrite + Send + Unpin>;

impl Side {
    pub async fn open(&self) -> io::Result<BoxFio> {
        (self.open)().await
    }

    pub async fn accept(&self) -> io::Result<BoxFio> {
        (self.accept)().await
    }

    /// Accepts a stream this side will only read: yamux acknowledges it (see the module doc).
    pub async fn accept_reader(&self) -> io::Result<BoxFio> {
        let mut s = self.accept().await?;
        if self.imp == Impl::Yamux {
            // An empty data frame, carrying the ACK flag; nothing is written, so `n` is 0.
            let _n: usize = s.write(&[]).await?;
        }
        Ok(s)
    }

    /// The stream as a writer that nobody else reads: tokio-yamux's gets a task polling a read on
    /// it (see the module doc).
    pub fn write_half(&self, sp: &Spawner, s: BoxFio) -> BoxW {
        if self.imp != Impl::TokioYamux {
            return Box::new(s);
        }
        let (mut r, w) = s.split();
        sp.detach(async move {
            let mut buf = [0u8; 1024];
            while let Ok(1..) = r.read(&mut buf).await {}
        });
        Box::new(w)
    }
}

fn open_fn<F, Fut>(f: F) -> OpenFn
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = io::Result<BoxFio>> + Send + 'static,
{
    Arc::new(move || Box::pin(f()))
}

/// A channel of streams as an `accept` function.
fn accept_from(rx: mpsc::UnboundedReceiver<BoxFio>) -> OpenFn {
    let rx = Arc::new(Mutex::new(rx));
    open_fn(move || {
        let rx = rx.clone();
        async move {
            rx.lock()
                .await
                .next()
                .await
                .ok_or_else(|| io::Error::other("session ended"))
        }
    })
}

const YAMUX_MAX_STREAMS: usize = 16_384;

/// Builds (client side, server side) of `imp` over `net` on the runtime of `sp`.
pub async fn pair(imp: Impl, sp: &Spawner, net: Arc<Net>) -> io::Result<(Side, Side)> {
    if imp == Impl::Raw {
        return Ok(raw_pair(sp, net));
    }
    let wan = matches!(*net, Net::Wan { .. });
    let (a, b) = net.pair().await?;
    Ok(match imp {
        Impl::Raw => unreachable!(),
        Impl::Smux | Impl::SmuxBase | Impl::SmuxX1 | Impl::SmuxX2 => {
            let cfg = ysmux::Config::default();
            let cfg = match imp {
                // The original's defaults: its fixed window, and frames of at most 32 KiB.
                Impl::SmuxBase => cfg
                    .clone()
                    .with_max_window(cfg.window())
                    .with_max_frame(32 * 1024),
                Impl::SmuxX1 => cfg.with_protocol(ysmux::Protocol::Xtaci1),
                Impl::SmuxX2 => cfg.with_protocol(ysmux::Protocol::Xtaci2),
                _ => cfg,
            };
            let (c, d1) = ysmux::Session::client(a.fio(), cfg.clone());
            let (s, d2) = ysmux::Session::server(b.fio(), cfg);
            sp.detach(async move {
                let _ = d1.await;
            });
            sp.detach(async move {
                let _ = d2.await;
            });
            (smux_side(c, imp), smux_side(s, imp))
        }
        Impl::Yamux => (
            yamux_side(sp, a.fio(), yamux::Mode::Client, wan),
            yamux_side(sp, b.fio(), yamux::Mode::Server, wan),
        ),
        Impl::TokioYamux => (
            tokio_yamux_side(sp, a.tio(), tokio_yamux::session::SessionType::Client),
            tokio_yamux_side(sp, b.tio(), tokio_yamux::session::SessionType::Server),
        ),
        Impl::AsyncSmux => (
            async_smux_side(sp, a.tio(), true),
            async_smux_side(sp, b.tio(), false),
        ),
    })
}

fn raw_pair(sp: &Spawner, net: Arc<Net>) -> (Side, Side) {
    let (tx, rx) = mpsc::unbounded::<BoxFio>();
    let rt = sp.kind();
    let open = match net.addr() {
        Some(addr) => {
            let n = net.clone();
            sp.detach(async move {
                while let Ok(c) = n.accept().await {
                    if tx.unbounded_send(c.fio()).is_err() {
                        break;
                    }
                }
            });
            open_fn(move || async move { Ok(connect(rt, addr).await?.fio()) })
        }
        None => open_fn(move || {
            let (a, b) = ysmux::pipe();
            let sent = tx.unbounded_send(Box::new(b));
            async move {
                sent.map_err(|_| io::Error::other("acceptor gone"))?;
                Ok(Box::new(a) as BoxFio)
            }
        }),
    };
    let never = open_fn(|| async { Err(io::Error::other("raw: open on the client side only")) });
    let client = Side {
        imp: Impl::Raw,
        open,
        accept: never.clone(),
    };
    let server = Side {
        imp: Impl::Raw,
        open: never,
        accept: accept_from(rx),
    };
    (client, server)
}

fn smux_side(s: ysmux::Session, imp: Impl) -> Side {
    let s = Arc::new(s);
    let s2 = s.clone();
    Side {
        imp,
        open: open_fn(move || {
            let s = s.clone();
            async move { Ok(Box::new(s.open().await?) as BoxFio) }
        }),
        accept: open_fn(move || {
            let s = s2.clone();
            async move { Ok(Box::new(s.accept().await?) as BoxFio) }
        }),
    }
}

type YamuxOpen = oneshot::Sender<io::Result<yamux::Stream>>;

fn yamux_side(sp: &Spawner, io: BoxFio, mode: yamux::Mode, wan: bool) -> Side {
    let mut cfg = yamux::Config::default();
    if !wan {
        cfg.set_max_connection_receive_window(Some(
            YAMUX_MAX_STREAMS * yamux::DEFAULT_CREDIT as usize,
        ));
        cfg.set_max_num_streams(YAMUX_MAX_STREAMS);
    }
    let mut conn = yamux::Connection::new(io, cfg, mode);
    let (open_tx, mut open_rx) = mpsc::unbounded::<YamuxOpen>();
    let (in_tx, in_rx) = mpsc::unbounded::<BoxFio>();
    sp.detach(async move {
        let mut waiting: VecDeque<YamuxOpen> = VecDeque::new();
        let mut requests = true;
        poll_fn(move |cx| {
            while requests {
                match open_rx.poll_next_unpin(cx) {
                    Poll::Ready(Some(r)) => waiting.push_back(r),
                    Poll::Ready(None) => requests = false,
                    Poll::Pending => break,
                }
            }
            while !waiting.is_empty() {
                match conn.poll_new_outbound(cx) {
                    Poll::Ready(r) => {
                        let _ = waiting
                            .pop_front()
                            .expect("waiting")
                            .send(r.map_err(io::Error::other));
                    }
                    Poll::Pending => break,
                }
            }
            loop {
                match conn.poll_next_inbound(cx) {
                    Poll::Ready(Some(Ok(s))) => {
                        let _ = in_tx.unbounded_send(Box::new(s));
                    }
                    Poll::Ready(_) => return Poll::Ready(()),
                    Poll::Pending => return Poll::Pending,
                }
            }
        })
        .await
    });
    Side {
        imp: Impl::Yamux,
        open: open_fn(move || {
            let (tx, rx) = oneshot::channel();
            let sent = open_tx.unbounded_send(tx);
            async move {
                sent.map_err(|_| io::Error::other("yamux connection ended"))?;
                let s = rx
                    .await
                    .map_err(|_| io::Error::other("yamux connection ended"))??;
                Ok(Box::new(s) as BoxFio)
            }
        }),
        accept: accept_from(in_rx),
    }
}

fn tokio_yamux_side(
    sp: &Spawner,
    io: crate::rt::BoxTio,
    ty: tokio_yamux::session::SessionType,
) -> Side {
    use tokio_util::compat::TokioAsyncReadCompatExt;
    let cfg = tokio_yamux::Config {
        accept_backlog: 65_535,
        enable_keepalive: false,
        max_stream_count: 65_535,
        ..Default::default()
    };
    let _timers = (sp.kind() == RtKind::Smol).then(crate::rt::tokio_timer_context);
    let mut session = tokio_yamux::Session::new(io, cfg, ty);
    let control = session.control();
    let (in_tx, in_rx) = mpsc::unbounded::<BoxFio>();
    sp.detach(async move {
        while let Some(Ok(s)) = session.next().await {
            let _ = in_tx.unbounded_send(Box::new(s.compat()));
        }
    });
    Side {
        imp: Impl::TokioYamux,
        open: open_fn(move || {
            let mut c = control.clone();
            async move {
                let s = c
                    .open_stream()
                    .await
                    .map_err(|e| io::Error::other(format!("{e:?}")))?;
                Ok(Box::new(s.compat()) as BoxFio)
            }
        }),
        accept: accept_from(in_rx),
    }
}

fn async_smux_side(sp: &Spawner, io: crate::rt::BoxTio, client: bool) -> Side {
    use tokio_util::compat::TokioAsyncReadCompatExt;
    let _timers = (sp.kind() == RtKind::Smol).then(crate::rt::tokio_timer_context);
    let mut builder = if client {
        async_smux::MuxBuilder::client()
    } else {
        async_smux::MuxBuilder::server()
    };
    let (connector, acceptor, worker) = builder.with_connection(io).build();
    drop(_timers);
    sp.detach(async move {
        let _ = worker.await;
    });
    let connector = Arc::new(connector);
    let acceptor = Arc::new(Mutex::new(acceptor));
    Side {
        imp: Impl::AsyncSmux,
        open: open_fn(move || {
            let s = connector
                .connect()
                .map_err(|e| io::Error::other(format!("{e:?}")));
            async move { Ok(Box::new(s?.compat()) as BoxFio) }
        }),
        accept: open_fn(move || {
            let a = acceptor.clone();
            async move {
                let s = a
                    .lock()
                    .await
                    .accept()
                    .await
                    .ok_or_else(|| io::Error::other("async_smux session ended"))?;
                Ok(Box::new(s.compat()) as BoxFio)
            }
        }),
    }
}
