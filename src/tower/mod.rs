//! tower integration: a [`Service`](tower_service::Service) that opens streams, and a way to serve
//! accepted streams with one.
//!
//! - [`Session::opener`] gives an [`Opener`]: `Clone + Service<R, Response = Stream, Error =
//!   ysmux::Error>` for any request type. Its `poll_ready` reserves a stream (an id, and a slot
//!   under [`Config::with_max_streams`](crate::Config::with_max_streams)) and is `Pending` while
//!   none is free, so tower middleware sees the session's real capacity.
//! - [`Session::serve`] runs every stream the peer opens through a `Service<Stream>`, accepting
//!   only while that service is ready, on the executor you hand it.
//!
//! ```
//! # smol::block_on(async {
//! use tower::{Service, ServiceExt};
//!
//! let (a, b) = ysmux::pipe();
//! let config = ysmux::Config::default().with_max_streams(64);
//! let (client, driver) = ysmux::Session::client(a, config);
//! smol::spawn(driver).detach();
//! let (server, driver) = ysmux::Session::server(b, ysmux::Config::default());
//! smol::spawn(driver).detach();
//!
//! // The opener takes any request type: name it where the compiler cannot infer it.
//! let mut opener = client.opener();
//! let stream = ServiceExt::<()>::ready(&mut opener).await?.call(()).await?;
//! let accepted = server.accept().await?;
//! assert_eq!(stream.id(), accepted.id());
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(()) }).unwrap();
//! ```
//!
//! # What bounds what
//! - **The wait for a stream.** At its stream limit the opener is not ready, and a tower service
//!   that is not ready is never called. tower's `Timeout` times the *call* only, so a
//!   `.timeout(..)` layer directly over the opener (or over a [`Pool`](crate::pool::Pool) whose
//!   peer is down) waits for readiness without limit. Bound it in one of two ways:
//!   - your runtime's timeout around the whole open: `ServiceExt::oneshot`,
//!     [`Session::open`](crate::Session::open) and [`Pool::open`](crate::pool::Pool::open) wait
//!     for readiness inside their future, so `tokio::time::timeout(d, opener.oneshot(()))` (or
//!     smol's `Timer` raced with it) ends the wait;
//!   - or, in a tower stack, a `Buffer` under the `Timeout`: the buffer is always ready, takes the
//!     request at once, and waits for the opener's readiness in its worker, so the wait happens
//!     inside the call that `Timeout` times. (An open the timeout gave up on is dropped by the
//!     worker, or, if it was already opened, closed.)
//! - **Streams held.** [`Config::with_max_streams`](crate::Config::with_max_streams) bounds how
//!   many streams are open at once, whoever holds them: the opener is not ready at the limit. A
//!   stream closed on this side counts until the peer answers its close.
//! - **Uses in flight.** `ConcurrencyLimit` releases its permit when the call's future completes.
//!   Directly over the opener that is the moment the stream is opened, so it bounds opens in
//!   flight and nothing held: ten streams can be held under a limit of two. It bounds what you
//!   mean when the call covers the whole use of the stream: a service that opens, talks and
//!   closes in its call (as the hyper example's `HttpOverSmux` does), or the service given to
//!   [`Session::serve`].
//!
//! Your runtime's timeout around `oneshot` (here smol's; a session at its limit of 2 streams):
//!
//! ```
//! # smol::block_on(async {
//! use std::time::Duration;
//! use tower::ServiceExt;
//!
//! let (a, b) = ysmux::pipe();
//! let (client, driver) = ysmux::Session::client(a, ysmux::Config::default().with_max_streams(2));
//! smol::spawn(driver).detach();
//! let (_server, driver) = ysmux::Session::server(b, ysmux::Config::default());
//! smol::spawn(driver).detach();
//!
//! let held = [client.open().await?, client.open().await?]; // at the limit
//! let bounded = |wait| {
//!     let open = client.opener().oneshot(()); // waits for readiness, then opens
//!     smol::future::or(async { Some(open.await) }, async move {
//!         smol::Timer::after(wait).await;
//!         None // timed out
//!     })
//! };
//! assert!(bounded(Duration::from_millis(50)).await.is_none(), "the wait ended, with no stream");
//!
//! drop(held); // both close; once the peer answers, there is room again
//! let third = bounded(Duration::from_secs(10)).await.expect("room again")?;
//! # drop(third);
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(()) }).unwrap();
//! ```
//!
//! A tower stack, `Timeout` over `Buffer` (tower's timer and `Buffer::new` need tokio; with
//! another runtime, spawn the worker of `Buffer::pair` yourself and use its timeout as above):
//!
//! ```
//! use std::time::Duration;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
//! rt.block_on(async {
//!     let (a, b) = ysmux::pipe();
//!     let config = ysmux::Config::default().with_max_streams(2);
//!     let (client, driver) = ysmux::Session::client(a, config);
//!     tokio::spawn(driver);
//!     let (_server, driver) = ysmux::Session::server(b, ysmux::Config::default());
//!     tokio::spawn(driver);
//!
//!     let opener = ServiceBuilder::new()
//!         .timeout(Duration::from_millis(50)) // times the call...
//!         .buffer(16) // ...which, through the buffer, holds the wait for a ready opener
//!         .service(client.opener());
//!     let _held = [opener.clone().oneshot(()).await?, opener.clone().oneshot(()).await?];
//!     let err = opener.clone().oneshot(()).await.expect_err("at the limit: timed out");
//!     assert!(err.is::<tower::timeout::error::Elapsed>(), "{err}");
//!     Ok::<(), tower::BoxError>(())
//! })?;
//! # Ok::<(), tower::BoxError>(())
//! ```
//!
//! With the `tower-load` feature, [`Session`] and [`Opener`] implement `tower::load::Load` (by
//! [`Session::load`]), so tower's own power-of-two-choices balancer can spread requests over
//! several sessions; [`pool::Pool`](crate::pool::Pool) does that by itself, without the feature.
//!
//! The pieces follow the layout of `tower::limit::concurrency`: [`Opener`] in `service.rs`, its
//! [`ResponseFuture`] in `future.rs`, serving in `serve.rs`.

mod future;
#[cfg(feature = "tower-load")]
mod load;
mod serve;
mod service;

pub use self::future::ResponseFuture;
pub use self::serve::ServeError;
pub use self::service::Opener;

use crate::session::Session;

impl Session {
    /// A `tower` service that opens a stream per call; see [`Opener`] for its readiness.
    ///
    /// The opener holds a handle to the session (keeping it open, as a clone of the `Session`
    /// would).
    pub fn opener(&self) -> Opener {
        Opener::new(self.clone())
    }
}
