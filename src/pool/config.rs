//! [`PoolConfig`]: how many sessions, when to grow and shrink, how to back off, whose timer.

use std::fmt;
use std::time::Duration;

use std::sync::Arc;

use crate::config::{Config, SleepFn};
use crate::error::{ConfigError, Error};
use crate::session::Session;

/// What the pool calls when one of its sessions ends: [`PoolConfig::with_on_session_end`].
pub type SessionEndFn = Arc<dyn Fn(&Session, &Result<(), Error>) + Send + Sync>;

/// Settings of a [`Pool`](super::Pool). Setters chain; a value out of range is not taken, and
/// the first one is reported by [`PoolConfig::validate`] and by the pool made with it (it opens
/// nothing and fails every `poll_ready` with [`PoolError::InvalidConfig`](super::PoolError)).
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// let sleep: ysmux::SleepFn = Arc::new(|d| Box::pin(async move { smol::Timer::after(d).await; }));
/// let config = ysmux::pool::PoolConfig::new(sleep)
///     .with_sessions(2, 8)
///     .with_load_threshold(64)
///     .with_backoff(Duration::from_millis(50), Duration::from_secs(5));
/// assert!(config.validate().is_ok());
/// assert_eq!((config.min_sessions(), config.max_sessions()), (2, 8));
/// ```
#[derive(Clone)]
pub struct PoolConfig {
    pub(crate) session: Config,
    pub(crate) min: usize,
    pub(crate) max: usize,
    pub(crate) threshold: usize,
    pub(crate) idle: Option<Duration>,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) sleep: SleepFn,
    pub(crate) health: Option<Duration>,
    pub(crate) on_session_end: Option<SessionEndFn>,
    invalid: Option<ConfigError>,
}

impl fmt::Debug for PoolConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolConfig")
            .field("session", &self.session)
            .field("min", &self.min)
            .field("max", &self.max)
            .field("threshold", &self.threshold)
            .field("idle", &self.idle)
            .field("backoff_initial", &self.backoff_initial)
            .field("backoff_max", &self.backoff_max)
            .field("health", &self.health)
            .field("on_session_end", &self.on_session_end.is_some())
            .field("invalid", &self.invalid)
            .finish_non_exhaustive()
    }
}

impl PoolConfig {
    /// The defaults, with `sleep` as the timer (the crate has none: `|d| Box::pin(
    /// tokio::time::sleep(d))`, or smol's `Timer::after`): between 1 and 4 sessions, each with
    /// [`Config::default`]; another session once every session carries 100 streams (or none has
    /// room); a surplus session let go after 60 s without streams; connects retried after 100 ms,
    /// doubling to at most 10 s while they keep failing; sessions looked at every 200 ms for
    /// silence ([`PoolConfig::with_health_check`]).
    pub fn new(sleep: SleepFn) -> Self {
        PoolConfig {
            session: Config::default(),
            min: 1,
            max: 4,
            threshold: 100,
            idle: Some(Duration::from_secs(60)),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            sleep,
            health: Some(Duration::from_millis(200)),
            on_session_end: None,
            invalid: None,
        }
    }

    /// Sets the config of every session the pool makes (default [`Config::default`]). Its
    /// [`Config::with_max_streams`] is the limit at which a session is full.
    pub fn with_session_config(mut self, config: Config) -> Self {
        self.session = config;
        self
    }

    /// Sets how many sessions the pool keeps (default 1 to 4): it connects `min` at once and
    /// replaces any that fail; it grows up to `max` under load and lets surplus idle sessions go
    /// again. `max` must be at least 1 and at least `min`; `min` 0 connects at the first open.
    pub fn with_sessions(mut self, min: usize, max: usize) -> Self {
        if max == 0 || min > max {
            self.invalid.get_or_insert(ConfigError::numbers(
                "sessions: min and max must have max at least 1 and at least min",
                min,
                max,
            ));
        } else {
            (self.min, self.max) = (min, max);
        }
        self
    }

    /// Sets the load (see [`Session::load`](crate::Session::load): streams in use, roughly) at
    /// which every session counts as busy, so that the pool connects another if below its maximum
    /// (default 100, at least 1). A session at its stream limit is busy whatever its load.
    pub fn with_load_threshold(mut self, load: usize) -> Self {
        if load == 0 {
            self.invalid.get_or_insert(ConfigError::number(
                "load threshold must be at least 1",
                load,
            ));
        } else {
            self.threshold = load;
        }
        self
    }

    /// Sets how long a surplus session (beyond the minimum) may go without streams before the
    /// pool lets it go (default 60 s; `None` keeps every session; at least 1 ms). It goes after
    /// one to two such times: the pool looks once per `idle`, and lets go a session it found idle
    /// twice in a row with no stream opened between.
    pub fn with_idle_timeout(mut self, idle: Option<Duration>) -> Self {
        match idle {
            Some(d) if d < Duration::from_millis(1) => {
                self.invalid
                    .get_or_insert(ConfigError::time("idle timeout must be at least 1 ms", d));
            }
            _ => self.idle = idle,
        }
        self
    }

    /// Sets the wait before connecting again after a failure (default 100 ms), doubling with each
    /// failure in a row up to `max` (default 10 s). `initial` must be at least 1 ms and at most
    /// `max`. A session that ends before it carried a stream, or within a second of its connect,
    /// counts as a failure too: a peer that answers and then closes every session (at its
    /// connection limit, or draining for a restart) is backed off from, not reconnected to in a
    /// loop.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        if initial < Duration::from_millis(1) || initial > max {
            self.invalid.get_or_insert(ConfigError::times(
                "backoff: initial and max must have initial at least 1 ms and at most max",
                initial,
                max,
            ));
        } else {
            (self.backoff_initial, self.backoff_max) = (initial, max);
        }
        self
    }

    /// Sets how often the pool looks for sessions that went silent (default 200 ms; `None` never
    /// looks; at least 1 ms). A session that has sent frames since the last look that found
    /// something new from its peer, and has heard nothing since for longer than four of its
    /// round trips (the last measured, [`Stats::last_rtt`](crate::Stats::last_rtt)) and at least
    /// one such period, is suspect:
    /// the pool probes it with a ping (which the peer's driver answers, whatever its application
    /// does), opens no new stream on it, and connects another session in its place (beyond
    /// [`with_sessions`](PoolConfig::with_sessions)' maximum if need be), until it answers (or
    /// anything else comes from its peer) or it ends (its keepalive, or its transport, declares
    /// it dead; a pool does not end a session itself). The streams it carries are left alone. So
    /// a connection cut on the far side, which nothing here has seen fail yet, stops taking new
    /// streams within a few periods of the first frame that goes unanswered. Sessions speaking
    /// xtaci/smux ([`Config::with_protocol`](crate::Config::with_protocol)) are not checked: that
    /// wire has no probe, and on v1 a one-way transfer brings nothing back.
    pub fn with_health_check(mut self, every: Option<Duration>) -> Self {
        match every {
            Some(d) if d < Duration::from_millis(1) => {
                self.invalid.get_or_insert(ConfigError::time(
                    "health check period must be at least 1 ms",
                    d,
                ));
            }
            _ => self.health = every,
        }
        self
    }

    /// Sets what the pool calls when one of its sessions ends, with the session and how it ended
    /// (its driver's result): to report a lost session, for example. It is called by the
    /// [`PoolDriver`](super::PoolDriver), with no lock held; it must not block. Not called for
    /// the sessions the pool let go or shut down itself.
    pub fn with_on_session_end(mut self, f: SessionEndFn) -> Self {
        self.on_session_end = Some(f);
        self
    }

    /// Checks the settings, and the session config's: the first value refused.
    pub fn validate(&self) -> Result<(), super::PoolError> {
        if let Some(refused) = self.invalid {
            return Err(super::PoolError::InvalidConfig(refused));
        }
        self.session.validate().map_err(|e| match e {
            crate::Error::InvalidConfig(refused) => super::PoolError::InvalidConfig(refused),
            other => super::PoolError::Session(other),
        })
    }

    /// The fewest sessions the pool keeps.
    pub fn min_sessions(&self) -> usize {
        self.min
    }

    /// The most sessions the pool makes.
    pub fn max_sessions(&self) -> usize {
        self.max
    }

    /// The load at which a session counts as busy.
    pub fn load_threshold(&self) -> usize {
        self.threshold
    }

    /// The wait before the `failures`-th reconnect in a row (1 for the first).
    pub(crate) fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        self.backoff_initial
            .saturating_mul(1 << doublings)
            .min(self.backoff_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PoolConfig {
        PoolConfig::new(Arc::new(|_| Box::pin(std::future::ready(()))))
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let c = config().with_backoff(Duration::from_millis(10), Duration::from_millis(70));
        let waits: Vec<u128> = (1..=6).map(|n| c.backoff(n).as_millis()).collect();
        assert_eq!(waits, [10, 20, 40, 70, 70, 70]);
        assert_eq!(c.backoff(u32::MAX), Duration::from_millis(70));
    }

    #[test]
    fn rejects_nonsense() {
        for bad in [
            config().with_sessions(3, 2),
            config().with_sessions(0, 0),
            config().with_load_threshold(0),
            config().with_idle_timeout(Some(Duration::ZERO)),
            config().with_health_check(Some(Duration::ZERO)),
            config().with_backoff(Duration::from_secs(2), Duration::from_secs(1)),
            config().with_session_config(Config::default().with_max_streams(0)),
        ] {
            assert!(
                matches!(
                    bad.validate(),
                    Err(super::super::PoolError::InvalidConfig(_))
                ),
                "{bad:?}"
            );
        }
        let e = config()
            .with_sessions(3, 2)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("not 3 and 2"), "{e}");
        let e = config()
            .with_idle_timeout(Some(Duration::ZERO))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("not 0ns"), "{e}");
        assert!(config().with_sessions(0, 1).validate().is_ok());
    }
}
