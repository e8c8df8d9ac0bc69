//! Where a session is in its life, and how it ended.

use crate::error::Error;

/// Where the session is in its life: one value, where flags could disagree.
#[derive(Debug, Clone)]
pub(super) enum Lifecycle {
    /// Opening and accepting.
    Running,
    /// `shutdown` began: no more opening or accepting; open streams finish.
    Draining,
    /// Over, for the reason given; the driver may still be writing out and closing.
    Ended(End),
    /// Over, and the driver has returned: nothing more reaches the transport.
    Finished(End),
}

impl Lifecycle {
    /// How the session ended, if it has.
    pub(super) fn end(&self) -> Option<&End> {
        match self {
            Lifecycle::Running | Lifecycle::Draining => None,
            Lifecycle::Ended(e) | Lifecycle::Finished(e) => Some(e),
        }
    }

    /// Ends a running session; returns false if it had ended already (the first end counts).
    pub(super) fn end_with(&mut self, how: End) -> bool {
        if self.end().is_some() {
            return false;
        }
        *self = Lifecycle::Ended(how);
        true
    }

    /// The driver returned, with `error` if it failed: a failure overrides an earlier clean end
    /// (the transport failed while closing), but not an earlier failure.
    pub(super) fn finish(&mut self, error: Option<Error>) {
        let how = match (self.end(), error) {
            (Some(End::Failed(e)), _) => End::Failed(e.clone()),
            (_, Some(e)) => End::Failed(e),
            (Some(how), None) => how.clone(),
            (None, None) => End::Local,
        };
        *self = Lifecycle::Finished(how);
    }
}

/// How the session ended.
#[derive(Debug, Clone)]
pub(super) enum End {
    /// Closed by this side (`Session::close`, or every handle dropped).
    Local,
    /// The peer closed the transport at a frame boundary: streams see end-of-stream.
    Peer,
    /// The transport failed, the peer broke the protocol, or the driver was dropped.
    Failed(Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_end_counts_and_a_failure_overrides_only_a_clean_one() {
        let mut life = Lifecycle::Running;
        assert!(life.end().is_none());
        assert!(life.end_with(End::Peer));
        assert!(!life.end_with(End::Local), "ended already");
        assert!(matches!(life.end(), Some(End::Peer)));
        life.finish(Some(Error::SessionClosed));
        assert!(
            matches!(life, Lifecycle::Finished(End::Failed(Error::SessionClosed))),
            "the transport failed while closing: {life:?}"
        );

        let mut failed = Lifecycle::Draining;
        assert!(failed.end_with(End::Failed(Error::SessionClosed)));
        failed.finish(Some(Error::KeepaliveTimeout));
        assert!(
            matches!(
                failed,
                Lifecycle::Finished(End::Failed(Error::SessionClosed))
            ),
            "the first failure stays: {failed:?}"
        );

        let mut dropped = Lifecycle::Running;
        dropped.finish(None);
        assert!(matches!(dropped, Lifecycle::Finished(End::Local)));
    }
}
