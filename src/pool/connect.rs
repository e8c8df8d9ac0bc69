//! [`Connect`]: how a pool makes a transport, from a closure or a `tower::Service`.

use std::fmt;
use std::future::Future;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};
use tower_service::Service;

/// The error type a connector may fail with: anything that converts into a boxed error
/// (`std::io::Error`, `tower::BoxError`, ...).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Makes transports for a [`Pool`](super::Pool): one call per session. The pool stays runtime
/// agnostic because the transport comes from you (TCP, TLS over TCP, a Unix socket, a pipe).
///
/// Implemented for every closure `FnMut() -> impl Future<Output = Result<T, E>>` (`E` into a
/// [`BoxError`]), and through [`ServiceConnector`] for a `tower::Service` taking a target:
///
/// ```
/// # async fn f() {
/// use tokio_util::compat::TokioAsyncReadCompatExt;
/// let connect = || async {
///     let tcp = tokio::net::TcpStream::connect("127.0.0.1:9000").await?;
///     tcp.set_nodelay(true)?;
///     Ok::<_, std::io::Error>(tcp.compat())
/// };
/// # let _ = connect;
/// # }
/// ```
///
/// A connect that never completes holds its slot for ever: bound it with your runtime's timeout
/// inside the future. `poll_ready` and `connect` are called by the [`PoolDriver`](super::PoolDriver)
/// while it holds the pool's lock: they should only start the work (the future does it) and
/// must not use the pool.
pub trait Connect {
    /// The transport a session runs over.
    type Io: AsyncRead + AsyncWrite + Unpin;
    /// Why a connect failed.
    type Error: Into<BoxError>;
    /// The connect in flight.
    type Future: Future<Output = Result<Self::Io, Self::Error>>;

    /// Whether [`Connect::connect`] may be called now (a `tower::Service`'s readiness; always
    /// ready for a closure). An error counts as a failed connect.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    /// Starts connecting one transport.
    fn connect(&mut self) -> Self::Future;
}

impl<F, Fut, T, E> Connect for F
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    T: AsyncRead + AsyncWrite + Unpin,
    E: Into<BoxError>,
{
    type Io = T;
    type Error = E;
    type Future = Fut;

    fn connect(&mut self) -> Fut {
        self()
    }
}

/// A `tower::Service<R>` used as a [`Connect`]: each connect calls it with a clone of `target`
/// (an address, a URI), after its `poll_ready`.
///
/// ```
/// # async fn f() {
/// use tokio_util::compat::TokioAsyncReadCompatExt;
/// let tcp = tower::service_fn(|addr: std::net::SocketAddr| async move {
///     Ok::<_, std::io::Error>(tokio::net::TcpStream::connect(addr).await?.compat())
/// });
/// let connect = ysmux::pool::ServiceConnector::new(tcp, "127.0.0.1:9000".parse::<std::net::SocketAddr>().unwrap());
/// # let _ = connect;
/// # }
/// ```
#[derive(Clone)]
pub struct ServiceConnector<S, R> {
    service: S,
    target: R,
}

impl<S, R> ServiceConnector<S, R> {
    /// Connects with `service`, calling it with `target` each time.
    pub fn new(service: S, target: R) -> Self {
        ServiceConnector { service, target }
    }
}

impl<S, R: fmt::Debug> fmt::Debug for ServiceConnector<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceConnector")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl<S, R> Connect for ServiceConnector<S, R>
where
    S: Service<R>,
    S::Response: AsyncRead + AsyncWrite + Unpin,
    S::Error: Into<BoxError>,
    R: Clone,
{
    type Io = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.service.poll_ready(cx)
    }

    fn connect(&mut self) -> S::Future {
        self.service.call(self.target.clone())
    }
}
