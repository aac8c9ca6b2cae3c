//! What the watchdog counted: totals that survive the event ring's overwriting.

use crate::{EventTag, Rejection};

/// Counters that survive the event ring's overwriting. Monotonic, saturating.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub(crate) events: [u64; EventTag::COUNT],
    pub(crate) rejected: [u64; Rejection::COUNT],
    /// Kernel readings for unknown or exited subjects.
    pub readings_ignored: u64,
    /// Exits reported for unknown or exited subjects.
    pub exits_ignored: u64,
    /// Unregistrations of unknown subjects.
    pub unregisters_ignored: u64,
    /// Policies refused by validation.
    pub policies_refused: u64,
    /// Coalesced latest frames ([`Input::LatestFrame`](crate::Input::LatestFrame)) accepted.
    pub latest_frames: u64,
}

impl Counters {
    /// Events of this kind ever appended, including those since overwritten.
    #[must_use]
    pub const fn events(&self, tag: EventTag) -> u64 {
        self.events[tag as usize]
    }

    /// Frames rejected for this reason.
    #[must_use]
    pub const fn rejected(&self, reason: Rejection) -> u64 {
        self.rejected[reason as usize]
    }

    /// Frames rejected for any reason.
    #[must_use]
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().fold(0, |a, &b| a.saturating_add(b))
    }
}

/// Adds one, saturating.
pub(crate) fn bump(counter: &mut u64) {
    *counter = counter.saturating_add(1);
}
