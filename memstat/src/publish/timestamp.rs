//! `Timestamp`: a moment on the caller's monotonic clock.
#![forbid(unsafe_code)]

use core::time::Duration;

/// A moment on the caller's **monotonic** clock: the time since an origin the caller fixes
/// once (boot, process start, the publisher's construction) and never moves.
///
/// The core reads no clock; every call that depends on time takes a `Timestamp`. Only
/// differences between timestamps matter, so any origin will do, as long as one publisher
/// is always given timestamps from the same clock and origin.
///
/// The core measures time from the last frame it built (and from the closure that started a
/// backoff, which is such a frame). If time goes backwards, a `now` earlier than that moment
/// counts as that moment, no time having passed: nothing panics, nothing is sent early, a
/// backoff does not end, and the call is counted in
/// [`PublisherStats::time_went_backwards`](super::PublisherStats::time_went_backwards).
///
/// ```
/// use core::time::Duration;
/// use memstat::publish::Timestamp;
///
/// let boot = Timestamp::ZERO;
/// let later = Timestamp::from_millis(1500);
/// assert_eq!(later.saturating_duration_since(boot), Duration::from_millis(1500));
/// assert_eq!(boot.saturating_duration_since(later), Duration::ZERO);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(Duration);

impl Timestamp {
    /// The origin.
    pub const ZERO: Timestamp = Timestamp(Duration::ZERO);

    /// The moment `since_origin` after the origin.
    #[must_use]
    pub const fn from_duration(since_origin: Duration) -> Self {
        Self(since_origin)
    }

    /// The moment `ms` milliseconds after the origin.
    #[must_use]
    pub const fn from_millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }

    /// The moment `ns` nanoseconds after the origin.
    #[must_use]
    pub const fn from_nanos(ns: u64) -> Self {
        Self(Duration::from_nanos(ns))
    }

    /// The time since the origin.
    #[must_use]
    pub const fn since_origin(self) -> Duration {
        self.0
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is not earlier (time went
    /// backwards).
    #[must_use]
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}
