//! The keepalive: probes an idle peer with VRM and ends the session when it stops answering.
//!
//! It runs inside the driver (polled by it, so it needs no task of its own) with the caller's
//! timer, and holds no session handle, so it never keeps a session alive that nobody uses.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::config::Keepalive;
use crate::error::Error;
use crate::shared::Shared;

/// The keepalive loop as a future: it resolves only to end the session, with the error.
pub(crate) struct KeepaliveTask(Pin<Box<dyn Future<Output = Error> + Send>>);

impl fmt::Debug for KeepaliveTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeepaliveTask")
    }
}

impl KeepaliveTask {
    pub(crate) fn new(shared: Arc<Shared>, config: &Keepalive) -> Self {
        let Keepalive { interval, sleep } = config.clone();
        KeepaliveTask(Box::pin(async move {
            let mut heard = shared.lock().received();
            loop {
                sleep(interval).await;
                if shared.lock().received() != heard {
                    heard = shared.lock().received();
                    continue; // the peer is talking: nothing to ask
                }
                // Silence for a whole interval: ask.
                let pongs = {
                    let mut inner = shared.lock();
                    inner.send_ping();
                    inner.pongs()
                };
                sleep(interval).await;
                let inner = shared.lock();
                if inner.pongs() == pongs && inner.received() == heard {
                    return Error::KeepaliveTimeout;
                }
                heard = inner.received();
            }
        }))
    }

    /// `Ready(error)` when the peer stopped answering.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Error> {
        self.0.as_mut().poll(cx)
    }
}
