//! Serving: every accepted stream through a `tower::Service<Stream>`.

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;

use tower_service::Service;

use crate::error::Error;
use crate::session::Session;
use crate::stream::Stream;

/// Why [`Session::serve`] stopped, other than the session closing cleanly.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeError<E> {
    /// The session failed (transport error or protocol violation).
    Session(Error),
    /// The service's `poll_ready` failed: it will serve nothing more.
    Service(E),
}

impl<E: fmt::Display> fmt::Display for ServeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Session(e) => write!(f, "session failed: {e}"),
            ServeError::Service(e) => write!(f, "service failed: {e}"),
        }
    }
}

impl<E> std::error::Error for ServeError<E>
where
    E: std::error::Error + 'static,
{
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Session(e) => Some(e),
            ServeError::Service(e) => Some(e),
        }
    }
}

impl Session {
    /// Runs every stream the peer opens through `service`, handing each call's future to `spawn`
    /// (your executor: `|f| { tokio::spawn(f); }`, `|f| smol::spawn(f).detach()`, ...).
    ///
    /// A stream is accepted only once `service` is ready, so a service that is not ready (say, a
    /// `ConcurrencyLimit` at its limit) stops this side from accepting: new streams wait in the
    /// accept backlog ([`Config::with_accept_backlog`](crate::Config::with_accept_backlog)); beyond
    /// it, a peer of this crate waits for room to open, a peer on xtaci's wire is not read until
    /// there is room again, and another peer's opens are refused. Streams already accepted go on
    /// unaffected (except on xtaci's wire, where the paused reading holds them too, as in Go).
    ///
    /// The returned future owns a handle to the session (so it is `'static` and can be spawned)
    /// and resolves with `Ok(())` once the session has closed (by either side), with
    /// [`ServeError::Session`] if it failed, or with [`ServeError::Service`] if `poll_ready`
    /// failed. What a call's future returns is for `spawn` to handle.
    ///
    /// ```
    /// # smol::block_on(async {
    /// use futures::{AsyncReadExt, AsyncWriteExt};
    ///
    /// let (a, b) = ysmux::pipe();
    /// let (client, driver) = ysmux::Session::client(a, ysmux::Config::default());
    /// smol::spawn(driver).detach();
    /// let (server, driver) = ysmux::Session::server(b, ysmux::Config::default());
    /// smol::spawn(driver).detach();
    ///
    /// // An echo service that serves at most 16 streams at a time.
    /// let echo = tower::ServiceBuilder::new().concurrency_limit(16).service_fn(
    ///     |stream: ysmux::Stream| async move {
    ///         let (r, mut w) = stream.split();
    ///         futures::io::copy(r, &mut w).await
    ///     },
    /// );
    /// smol::spawn(server.serve(echo, |call| smol::spawn(call).detach())).detach();
    ///
    /// let mut s = client.open().await?;
    /// s.write_all(b"hello").await?;
    /// let mut buf = [0; 5];
    /// s.read_exact(&mut buf).await?;
    /// assert_eq!(&buf, b"hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub fn serve<S, F>(
        &self,
        service: S,
        spawn: F,
    ) -> impl Future<Output = Result<(), ServeError<S::Error>>> + 'static
    where
        S: Service<Stream> + 'static,
        F: FnMut(S::Future) + 'static,
    {
        serve(self.clone(), service, spawn)
    }
}

async fn serve<S, F>(
    session: Session,
    mut service: S,
    mut spawn: F,
) -> Result<(), ServeError<S::Error>>
where
    S: Service<Stream>,
    F: FnMut(S::Future),
{
    let mut closed = pin!(session.closed());
    loop {
        // Ready first, then accept: while the service is not ready, streams wait in the backlog.
        let wait = poll_fn(|cx| {
            if let Poll::Ready(r) = service.poll_ready(cx) {
                return Poll::Ready(Wait::Ready(r));
            }
            closed.as_mut().poll(cx).map(Wait::Ended)
        })
        .await;
        match wait {
            Wait::Ready(Ok(())) => {}
            Wait::Ready(Err(e)) => return Err(ServeError::Service(e)),
            Wait::Ended(r) => return r.map_err(ServeError::Session),
        }
        match session.accept().await {
            Ok(stream) => spawn(service.call(stream)),
            Err(Error::SessionClosed) => return Ok(()),
            Err(e) => return Err(ServeError::Session(e)),
        }
    }
}

/// What waiting for the service gave: readiness, or the end of the session first.
enum Wait<E> {
    Ready(Result<(), E>),
    Ended(Result<(), Error>),
}
