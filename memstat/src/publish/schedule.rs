//! `Schedule`: when a frame is due. Pure: no I/O, no clock.
#![forbid(unsafe_code)]

use core::time::Duration;

use super::{PublisherConfig, Timestamp};

/// What the rate limit remembers of the frames built so far.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Schedule {
    /// The last frame built (sent or dropped): when, and its `(current, peak)`.
    last_built: Option<Built>,
    /// `current_bytes` of the last frame actually sent (0 before any).
    last_sent_current: u64,
}

#[derive(Clone, Copy, Debug)]
struct Built {
    at: Timestamp,
    figures: (u64, u64),
}

impl Schedule {
    pub(crate) const NEW: Schedule = Schedule {
        last_built: None,
        last_sent_current: 0,
    };

    /// Whether a frame with these figures (`peak >= current`) is due at `now`: none was built
    /// yet; or `current` grew by a quantum since the last frame sent; or `min_interval`
    /// passed since the last frame built and the figures changed, or the quiet wait
    /// (heartbeat) passed too. Time that went backwards counts as none passing.
    pub(crate) fn is_due(
        &self,
        config: &PublisherConfig,
        now: Timestamp,
        current: u64,
        peak: u64,
    ) -> bool {
        let Some(last) = self.last_built else {
            return true;
        };
        if current.saturating_sub(self.last_sent_current) >= config.quantum {
            return true;
        }
        let since = now.saturating_duration_since(last.at);
        let changed = (current, peak) != last.figures;
        since >= config.min_interval && (changed || since >= config.quiet_wait())
    }

    /// How long from `now` until unchanged figures are due (zero before the first frame, or
    /// when they are due now).
    pub(crate) fn next_due(&self, config: &PublisherConfig, now: Timestamp) -> Duration {
        let Some(last) = self.last_built else {
            return Duration::ZERO;
        };
        config
            .quiet_wait()
            .saturating_sub(now.saturating_duration_since(last.at))
    }

    /// Whether `now` is earlier than the moment the last frame was built.
    pub(crate) fn is_before_last_build(&self, now: Timestamp) -> bool {
        self.last_built.is_some_and(|last| now < last.at)
    }

    /// A frame with these figures was built at `now` (and is about to be sent or dropped).
    pub(crate) fn built(&mut self, now: Timestamp, current: u64, peak: u64) {
        self.last_built = Some(Built {
            at: now,
            figures: (current, peak),
        });
    }

    /// The frame just built was sent.
    pub(crate) fn sent(&mut self, current: u64) {
        self.last_sent_current = current;
    }
}
