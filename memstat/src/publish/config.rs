//! `PublisherConfig`: how often a publisher sends, and how it waits to reconnect.
#![forbid(unsafe_code)]

use core::time::Duration;

use crate::SubjectId;

/// How often a publisher sends, and how it retries. The same for [`PublisherCore`] and
/// [`Publisher`](crate::Publisher).
///
/// [`PublisherCore`]: super::PublisherCore
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublisherConfig {
    /// At most one frame per this interval, unless memory grew by [`quantum`](Self::quantum).
    /// Default 100 ms. Zero sends on every call.
    pub min_interval: Duration,
    /// The longest the publisher stays silent while it is called: figures that did not
    /// change since the last frame are sent again once this much time has passed since the
    /// last frame was built, so that the watchdog can tell a quiet service from a silent one
    /// (oomd's `report_stale_ticks`). Default 1 s. Zero (or anything below `min_interval`)
    /// sends unchanged figures every `min_interval`. See
    /// [`PublisherCore::next_due`](super::PublisherCore::next_due) for when to call again.
    pub heartbeat: Duration,
    /// Growth in `current_bytes`, since the last frame actually sent, that is published at
    /// once whatever the interval. Default 64 KiB. Zero sends on every call.
    pub quantum: u64,
    /// Wait before the first reconnection attempt (only for a transport that
    /// [can reconnect](super::Transport::can_reconnect)). Default 50 ms.
    pub backoff_initial: Duration,
    /// The wait doubles after each failure up to this bound. Default 5 s. A bound below
    /// `backoff_initial` wins over it.
    pub backoff_max: Duration,
    /// The subject put in every frame's `claimed_subject`. Default `None`. Only a claim: oomd
    /// rejects a frame whose claim disagrees with the sender the transport authenticated.
    pub claimed_subject: Option<SubjectId>,
}

impl PublisherConfig {
    /// The defaults: 100 ms, a 1 s heartbeat, 64 KiB, 50 ms, 5 s, no claim.
    pub const DEFAULT: PublisherConfig = PublisherConfig {
        min_interval: Duration::from_millis(100),
        heartbeat: Duration::from_secs(1),
        quantum: 64 * 1024,
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_secs(5),
        claimed_subject: None,
    };

    /// The wait before the first reconnection attempt of an outage: `backoff_initial`, or
    /// `backoff_max` if that is smaller.
    pub(crate) const fn first_backoff(&self) -> Duration {
        // `Ord::min` is not const; nanosecond counts compare the same way.
        if self.backoff_initial.as_nanos() <= self.backoff_max.as_nanos() {
            self.backoff_initial
        } else {
            self.backoff_max
        }
    }

    /// How long unchanged figures stay unsent after a frame is built: the heartbeat, but
    /// never less than the rate limit.
    pub(crate) fn quiet_wait(&self) -> Duration {
        self.heartbeat.max(self.min_interval)
    }
}

impl Default for PublisherConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}
