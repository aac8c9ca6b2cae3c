//! Deterministic time.

use core::fmt;

/// A point on the watchdog's deterministic clock, counted in ticks since the edge started it.
///
/// The edge decides what a tick is (the policy's sample period, by convention) and feeds ticks
/// in with [`Input::Tick`](crate::Input::Tick). Ticks are monotonic: a tick that goes
/// backwards is clamped to the latest one seen and counted, never trusted. All arithmetic on
/// ticks saturates; none of it can panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Tick(pub u64);

impl Tick {
    /// The start of time.
    pub const ZERO: Tick = Tick(0);

    /// `self + ticks`, saturating at the end of time.
    #[must_use]
    pub const fn plus(self, ticks: u64) -> Tick {
        Tick(self.0.saturating_add(ticks))
    }

    /// Ticks elapsed from `earlier` to `self`; zero if `earlier` is later.
    #[must_use]
    pub const fn since(self, earlier: Tick) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Tick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
