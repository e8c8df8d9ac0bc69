//! [`PoolError`]: why a pool could not give a stream.

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::error::{ConfigError, Error};

/// A connect error as the pool keeps it: shared, because every waiter may see the same one.
pub type ConnectError = Arc<dyn std::error::Error + Send + Sync>;

/// Why a [`Pool`](super::Pool) could not open a stream, or a pool operation failed.
///
/// Converts into [`std::io::Error`] (see the `From` impl): a connect error keeps the kind of the
/// connector's `io::Error` (so an unreachable peer is still `ConnectionRefused`), a session error
/// maps as [`Error`] does, and a closed pool is `NotConnected`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PoolError {
    /// The session chosen for a stream failed between `poll_ready` and `call` (the next
    /// `poll_ready` picks another), or a session failed while the pool shut down.
    Session(Error),
    /// The last attempt to connect failed and no session is up (from
    /// [`Pool::connected`](super::Pool::connected); opens keep waiting for a later attempt).
    Connect(ConnectError),
    /// The pool is shut down (or every handle was dropped), or its driver is gone.
    Closed,
    /// `call` without a `Ready(Ok)` from `poll_ready` first: nothing was opened.
    NotReady,
    /// A [`PoolConfig`](super::PoolConfig) value (or one of its session
    /// [`Config`](crate::Config)) is out of range: the pool never opens anything. It names the
    /// setting, its range and the value refused.
    InvalidConfig(ConfigError),
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::Session(e) => write!(f, "session of the pool failed: {e}"),
            PoolError::Connect(e) => write!(f, "cannot connect: {e}"),
            PoolError::Closed => f.write_str("the pool is closed"),
            PoolError::NotReady => {
                f.write_str("pool called without poll_ready returning Ready(Ok) first")
            }
            PoolError::InvalidConfig(what) => write!(f, "invalid pool configuration: {what}"),
        }
    }
}

impl std::error::Error for PoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoolError::Session(e) => Some(e),
            PoolError::Connect(e) => Some(&**e),
            _ => None,
        }
    }
}

impl From<Error> for PoolError {
    fn from(e: Error) -> Self {
        PoolError::Session(e)
    }
}

impl From<PoolError> for io::Error {
    fn from(e: PoolError) -> io::Error {
        let kind = match &e {
            PoolError::Session(inner) => return inner.clone().into(),
            PoolError::Connect(inner) => inner
                .downcast_ref::<io::Error>()
                .map_or(io::ErrorKind::Other, io::Error::kind),
            PoolError::Closed => io::ErrorKind::NotConnected,
            PoolError::NotReady => io::ErrorKind::Other,
            PoolError::InvalidConfig(_) => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_kinds_keep_the_connectors() {
        let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "nobody there");
        let e: io::Error = PoolError::Connect(Arc::new(refused)).into();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        assert!(e.to_string().contains("nobody there"), "{e}");
        let e: io::Error = PoolError::Closed.into();
        assert_eq!(e.kind(), io::ErrorKind::NotConnected);
        let reset = Error::from(io::Error::from(io::ErrorKind::ConnectionReset));
        let e: io::Error = PoolError::Session(reset).into();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    }

    #[test]
    fn is_send_sync_static() {
        fn check<T: std::error::Error + Send + Sync + Clone + 'static>() {}
        check::<PoolError>();
    }
}
