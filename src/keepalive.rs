//! The keepalive: probes an idle peer with VRM and ends the session when it stops answering.
//!
//! It runs inside the driver (polled by it, so it needs no task of its own) with the caller's
//! timer, and holds no session handle, so it never keeps a session alive that nobody uses.
//!
//! # The bound
//! The crate has no clock: the keepalive only knows whether something came from the peer between
//! two of its checks. It checks [`CHECKS_PER_INTERVAL`] times per interval, and counts the checks
//! in a row that found nothing new. After one interval's worth of them it sends a probe; after two
//! intervals' worth (so a whole interval after the probe, with no answer) it ends the session. As
//! the last frame came at some point before the first silent check, at most one check earlier, the
//! session ends between 2 and 2¼ intervals after the last frame from the peer, and the probe goes
//! out between 1 and 1¼ intervals after it. (Checking once per interval made that 2 to 3
//! intervals: a check just after the last frame still saw it, and the silence started counting
//! only at the next.)

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::config::Keepalive;
use crate::error::Error;
use crate::shared::Shared;

/// Checks per interval: the session ends at most an interval divided by this later than two
/// intervals after the last frame from the peer, for this many timer wakeups per interval.
pub(crate) const CHECKS_PER_INTERVAL: u32 = 4;

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
        let check = interval / CHECKS_PER_INTERVAL;
        KeepaliveTask(Box::pin(async move {
            let mut heard = shared.lock().received();
            // Checks in a row that found nothing new from the peer.
            let mut silent = 0;
            loop {
                sleep(check).await;
                let mut inner = shared.lock();
                let received = inner.received();
                if received != heard {
                    // The peer is talking (an answer to a probe counts too): nothing to ask.
                    heard = received;
                    silent = 0;
                    continue;
                }
                silent += 1;
                if silent == CHECKS_PER_INTERVAL {
                    inner.send_ping(); // silence for an interval: ask
                } else if silent == 2 * CHECKS_PER_INTERVAL {
                    return Error::KeepaliveTimeout; // and no answer for another
                }
            }
        }))
    }

    /// `Ready(error)` when the peer stopped answering.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Error> {
        self.0.as_mut().poll(cx)
    }
}
