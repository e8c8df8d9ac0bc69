//! Our side of the interop tests against the Go programs: a server of this crate on a loopback
//! listener, a session per connection, serving echo or the sink protocol; and a transport that
//! keeps a copy of what our side writes.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};
use ysmux::{Config, Session};

use super::{serve_echo, sink, Ex, Task};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What our server does with each stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Echo until end-of-stream, then close.
    Echo,
    /// The sink protocol: read an 8-byte little-endian length N, read exactly N bytes, write
    /// 0x01, wait for the peer to close, drop.
    Sink,
}

/// What our side wrote on one transport, kept by [`Recording`].
pub type Sent = Arc<Mutex<Vec<u8>>>;

/// A transport that keeps a copy of everything our side writes on it, if `sent` is set.
pub struct Recording<T> {
    pub io: T,
    pub sent: Option<Sent>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Recording<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Recording<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if let (Poll::Ready(Ok(n)), Some(sent)) = (&r, &self.sent) {
            lock(sent).extend_from_slice(&buf[..*n]);
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_close(cx)
    }
}

/// Our server: sessions of this crate (made with `config`) on a loopback listener, serving a
/// [`Service`]. It stops with the test's executor.
pub struct OurServer {
    pub addr: SocketAddr,
    /// How sessions and streams ended badly, for the message of a failing test.
    log: Arc<Mutex<Vec<String>>>,
    /// What each session sent, if recording.
    sent: Option<Arc<Mutex<Vec<Sent>>>>,
    sessions: Arc<Mutex<Vec<Session>>>,
    _accept: Task<()>,
}

impl OurServer {
    /// Starts a server; `record`: keep what its sessions send.
    pub async fn start(ex: &Ex, config: Config, service: Service, record: bool) -> OurServer {
        Self::start_with(ex, config, service, record, None).await
    }

    /// Starts a server as [`OurServer::start`] does; with `accept_after` (the sink only), no
    /// stream is accepted until that long after its session began: a client's burst meets an
    /// acceptor that is not there yet.
    pub async fn start_with(
        ex: &Ex,
        config: Config,
        service: Service,
        record: bool,
        accept_after: Option<std::time::Duration>,
    ) -> OurServer {
        let listener = smol::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let sent: Option<Arc<Mutex<Vec<Sent>>>> = record.then(Arc::default);
        let sessions: Arc<Mutex<Vec<Session>>> = Arc::default();
        let accept = ex.spawn({
            let (ex, log, sent, sessions) =
                (ex.clone(), log.clone(), sent.clone(), sessions.clone());
            async move {
                let mut n = 0u32;
                while let Ok((tcp, _)) = listener.accept().await {
                    n += 1;
                    tcp.set_nodelay(true).expect("nodelay");
                    let io = Recording {
                        io: tcp,
                        sent: sent.as_ref().map(|all| {
                            let one = Sent::default();
                            lock(all).push(one.clone());
                            one
                        }),
                    };
                    let (session, driver) = Session::server(io, config.clone());
                    lock(&sessions).push(session.clone());
                    let log2 = log.clone();
                    ex.spawn(async move {
                        if let Err(e) = driver.await {
                            lock(&log2).push(format!("session {n} ended with: {e}"));
                        }
                    })
                    .detach();
                    match service {
                        Service::Echo => serve_echo(&ex, session),
                        Service::Sink => serve_sink(&ex, session, log.clone(), accept_after),
                    }
                }
            }
        });
        OurServer {
            addr,
            log,
            sent,
            sessions,
            _accept: accept,
        }
    }

    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// What our server saw go wrong.
    pub fn report(&self) -> String {
        let log = lock(&self.log);
        if log.is_empty() {
            return "our server saw no error".into();
        }
        let shown: Vec<&str> = log.iter().take(5).map(String::as_str).collect();
        format!(
            "our server saw {} error(s): {}",
            log.len(),
            shown.join("; ")
        )
    }

    /// What each of its sessions sent (it must have been started recording).
    pub fn sent(&self) -> Vec<Sent> {
        lock(self.sent.as_ref().expect("a recording server")).clone()
    }

    /// Its sessions so far.
    pub fn sessions(&self) -> Vec<Session> {
        lock(&self.sessions).clone()
    }

    /// Its sessions as they come, for a task that watches them while a test runs.
    pub fn sessions_live(&self) -> Arc<Mutex<Vec<Session>>> {
        self.sessions.clone()
    }
}

/// Accepts every stream of `session`, from `after` on if set, and serves it the sink protocol.
fn serve_sink(
    ex: &Ex,
    session: Session,
    log: Arc<Mutex<Vec<String>>>,
    after: Option<std::time::Duration>,
) {
    let ex2 = ex.clone();
    ex.spawn(async move {
        if let Some(after) = after {
            smol::Timer::after(after).await;
        }
        while let Ok(mut s) = session.accept().await {
            let log = log.clone();
            ex2.spawn(async move {
                let id = s.id();
                if let Err(e) = sink::serve(&mut s).await {
                    lock(&log).push(format!("sink stream {id}: {e}"));
                }
            })
            .detach();
        }
    })
    .detach();
}
