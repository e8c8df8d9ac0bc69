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
//! use tower::{Service, ServiceBuilder, ServiceExt};
//!
//! let (a, b) = ysmux::pipe();
//! let config = ysmux::Config::default().with_max_streams(64);
//! let (client, driver) = ysmux::Session::client(a, config);
//! smol::spawn(driver).detach();
//! let (server, driver) = ysmux::Session::server(b, ysmux::Config::default());
//! smol::spawn(driver).detach();
//!
//! // Middleware composes as with any tower service.
//! let mut opener = ServiceBuilder::new()
//!     .concurrency_limit(8)
//!     .service(client.opener());
//! // The opener takes any request type: name it where the compiler cannot infer it.
//! let stream = ServiceExt::<()>::ready(&mut opener).await?.call(()).await?;
//! let accepted = server.accept().await?;
//! assert_eq!(stream.id(), accepted.id());
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(()) }).unwrap();
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
