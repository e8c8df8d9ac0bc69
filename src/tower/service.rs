//! [`Opener`]: a `tower::Service` whose response is a newly opened stream.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};

use event_listener::EventListener;

use super::future::ResponseFuture;
use crate::error::Error;
use crate::session::{Reservation, Session};

/// Opens a stream per call: `Clone + Service<R, Response = Stream, Error = ysmux::Error>` for any
/// request type `R` (the request is dropped; it only triggers the open).
///
/// Made by [`Session::opener`].
///
/// # Readiness
/// `poll_ready` reserves room for one stream: a free stream id, and a slot under
/// [`Config::with_max_streams`](crate::Config::with_max_streams). It is `Pending` while the
/// session is at that limit or all 65,535 ids are in use (both pass), and is woken when one of its
/// streams closes (its id is released).
/// Once the session has ended it returns the session's error, as [`Session::open`] does.
///
/// The reservation belongs to this handle until `call` uses it. A clone holds none (it must
/// `poll_ready` on its own), and dropping a ready `Opener` gives its reservation back. So
/// `Opener` is a well-behaved inner service for `tower`'s `Buffer`, `ConcurrencyLimit`,
/// `Timeout` and friends: a ready opener never waits in `call`. That is also why a `Timeout`
/// directly over it never fires at the stream limit (the wait is in `poll_ready`, which `Timeout`
/// does not time), and why a `ConcurrencyLimit` directly over it bounds opens, not streams held:
/// see [the module docs](super#what-bounds-what) for what bounds each.
///
/// # Calling without `poll_ready`
/// As the `Service` contract requires, call `poll_ready` first and `call` once per `Ready(Ok)`.
/// A `call` without a reservation does not panic: it returns a future that fails with an
/// [`Error::Io`] of kind [`io::ErrorKind::Other`] saying so, and opens nothing.
///
/// Holding an `Opener` keeps the session open, as a [`Session`] handle does.
pub struct Opener {
    session: Session,
    /// Waits for room while at the stream limit.
    listener: Option<EventListener>,
    /// What the last `Ready(Ok)` of `poll_ready` promised `call`.
    reservation: Option<Reservation>,
}

impl Opener {
    pub(crate) fn new(session: Session) -> Self {
        Opener {
            session,
            listener: None,
            reservation: None,
        }
    }

    /// The session this opener opens streams on.
    pub fn session(&self) -> &Session {
        &self.session
    }
}

impl Clone for Opener {
    /// A clone shares the session but not the reservation: it must be polled ready itself.
    fn clone(&self) -> Self {
        Opener::new(self.session.clone())
    }
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener")
            .field("ready", &self.reservation.is_some())
            .finish_non_exhaustive()
    }
}

impl<R> tower_service::Service<R> for Opener {
    type Response = crate::Stream;
    type Error = Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.reservation.is_some() {
            return Poll::Ready(Ok(()));
        }
        self.session
            .poll_reserve(&mut self.listener, cx)
            .map_ok(|r| {
                self.reservation = Some(r);
            })
    }

    fn call(&mut self, _request: R) -> ResponseFuture {
        ResponseFuture::new(match self.reservation.take() {
            Some(r) => r.open(),
            None => Err(not_ready()),
        })
    }
}

fn not_ready() -> Error {
    Error::Io(Arc::new(io::Error::other(
        "smux Opener called without poll_ready returning Ready(Ok) first",
    )))
}
