//! Serving many sessions: every session of a listener's connections through one
//! `tower::Service<Stream>`.

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

use futures_core::Stream as AsyncStream;
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::future::{join, join_all, FutureExt};
use futures_util::stream::FuturesUnordered;
use tower_service::Service;

use crate::config::Config;
use crate::session::Session;
use crate::stream::Stream;
use crate::tower::ServeError;

/// A handle to what [`serve`] runs: how many sessions it serves, and its graceful shutdown.
/// Cheap to clone.
#[derive(Clone)]
pub struct Server {
    shared: Arc<Mutex<ServerState>>,
}

#[derive(Default)]
struct ServerState {
    sessions: Vec<(u64, Session)>,
    /// Stop taking connections.
    stopping: bool,
    waker: Option<Waker>,
    served: u64,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.lock();
        f.debug_struct("Server")
            .field("sessions", &st.sessions.len())
            .field("stopping", &st.stopping)
            .finish()
    }
}

impl Server {
    fn lock(&self) -> MutexGuard<'_, ServerState> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The sessions being served now.
    pub fn sessions(&self) -> Vec<Session> {
        self.lock()
            .sessions
            .iter()
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// Connections taken so far (each one a session).
    pub fn connections(&self) -> u64 {
        self.lock().served
    }

    /// Shuts down gracefully: takes no more connections, and shuts every session down as
    /// [`Session::shutdown`] does, with the one `deadline` (your runtime's timer). Resolves once
    /// every session has ended; the future [`serve`] returned then resolves too.
    pub async fn shutdown(&self, deadline: impl Future<Output = ()>) {
        let sessions = {
            let mut st = self.lock();
            st.stopping = true;
            if let Some(w) = st.waker.take() {
                w.wake();
            }
            st.sessions
                .iter()
                .map(|(_, s)| s.clone())
                .collect::<Vec<_>>()
        };
        let deadline = deadline.shared();
        join_all(sessions.iter().map(|s| s.shutdown(deadline.clone()))).await;
    }
}

/// Serves every connection of `incoming` (a listener's connections, as a `futures::Stream` of
/// transports) as the server side of a session with `config`, and every stream of every session
/// through a clone of `service`, handing each call's future to `spawn` (your executor).
///
/// Each session runs [`Session::serve`] with its own clone of `service`, so each has the
/// backpressure of `Session::serve`: it accepts a stream only once its clone is ready, and while
/// it is not, the session's new streams wait in its accept backlog. Clones of a
/// `ConcurrencyLimit` (or a `Buffer`) share their limit, so one such service bounds the streams
/// served over all sessions. A session that fails or is closed by its peer ends alone; the
/// others go on.
///
/// Returns the [`Server`] handle and the future to spawn, which drives every session (as a
/// [`Driver`](crate::Driver) would, one task for all; see the pool docs for why). The future
/// resolves with `Ok(())` once `incoming` has ended (or [`Server::shutdown`] was called) and every
/// session has ended, or with the service's error as soon as a `poll_ready` fails (the service
/// serves nothing more; every session is then dropped, which ends it).
///
/// Handle accept errors and handshakes (TLS) in `incoming` itself: a connection that never
/// becomes a transport never reaches the server.
///
/// ```
/// # smol::block_on(async {
/// use futures::{AsyncReadExt, AsyncWriteExt};
/// let (tx, rx) = futures::channel::mpsc::unbounded();
/// let echo = tower::service_fn(|stream: ysmux::Stream| async move {
///     let (r, mut w) = stream.split();
///     futures::io::copy(r, &mut w).await
/// });
/// let (server, serving) =
///     ysmux::pool::serve(rx, ysmux::Config::default(), echo, |call| smol::spawn(call).detach());
/// smol::spawn(serving).detach();
///
/// for _ in 0..3 {
///     let (a, b) = ysmux::pipe();
///     tx.unbounded_send(b)?; // a connection arrives at the listener
///     let (client, driver) = ysmux::Session::client(a, ysmux::Config::default());
///     smol::spawn(driver).detach();
///     let mut s = client.open().await?;
///     s.write_all(b"hi").await?;
///     let mut buf = [0; 2];
///     s.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"hi");
/// }
/// assert_eq!(server.connections(), 3);
/// let deadline = async { smol::Timer::after(std::time::Duration::from_secs(1)).await; };
/// server.shutdown(deadline).await;
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
pub fn serve<I, T, S, F>(
    incoming: I,
    config: Config,
    service: S,
    spawn: F,
) -> (Server, impl Future<Output = Result<(), S::Error>>)
where
    I: AsyncStream<Item = T>,
    T: AsyncRead + AsyncWrite + Unpin + 'static,
    S: Service<Stream> + Clone + 'static,
    F: FnMut(S::Future) + Clone + 'static,
{
    let server = Server {
        shared: Arc::default(),
    };
    let handle = server.clone();
    let run = async move {
        let mut incoming = Some(Box::pin(incoming));
        let mut sessions = FuturesUnordered::new();
        let mut next_id = 0u64;
        let mut stop = pin!(poll_fn(|cx| {
            let mut st = handle.lock();
            if st.stopping {
                return Poll::Ready(());
            }
            st.waker = Some(cx.waker().clone());
            Poll::Pending
        }));
        poll_fn(|cx| loop {
            if incoming.is_some() && stop.as_mut().poll(cx).is_ready() {
                incoming = None;
            }
            let mut progress = false;
            if let Some(inc) = &mut incoming {
                match inc.as_mut().poll_next(cx) {
                    Poll::Ready(Some(io)) => {
                        let mut st = handle.lock();
                        if st.stopping {
                            // Shutting down since the last look: the connection is turned away
                            // (a session added now would miss the shutdown).
                            drop(st);
                            drop(io);
                            incoming = None;
                            continue;
                        }
                        let (session, driver) = Session::server(io, config.clone());
                        let id = next_id;
                        next_id += 1;
                        st.sessions.push((id, session.clone()));
                        st.served += 1;
                        drop(st);
                        let serving = session.serve(service.clone(), spawn.clone());
                        drop(session);
                        sessions.push(join(driver, serving).map(move |(_, served)| (id, served)));
                        progress = true;
                    }
                    Poll::Ready(None) => {
                        incoming = None;
                        progress = true;
                    }
                    Poll::Pending => {}
                }
            }
            match std::pin::Pin::new(&mut sessions).poll_next(cx) {
                Poll::Ready(Some((id, served))) => {
                    handle.lock().sessions.retain(|(i, _)| *i != id);
                    if let Err(ServeError::Service(e)) = served {
                        return Poll::Ready(Err(e));
                    }
                    progress = true;
                }
                Poll::Ready(None) if incoming.is_none() => return Poll::Ready(Ok(())),
                _ => {}
            }
            if !progress {
                return Poll::Pending;
            }
        })
        .await
    };
    (server, run)
}
