//! What a publisher did: per call ([`PublishOutcome`]) and in total ([`PublisherStats`]).
#![forbid(unsafe_code)]

/// What one call to `publish_at` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishOutcome {
    /// A frame went to the transport.
    Sent,
    /// Not due yet (rate limit); no frame was built and no sequence number used.
    Suppressed,
    /// A frame was built, with a sequence number, and then dropped.
    Dropped(DropReason),
}

/// Why a built frame was dropped. The numbers are stable (for logs and counters that leave
/// the process); new reasons are only appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[repr(u8)]
pub enum DropReason {
    /// The channel is full (the receiver is not keeping up): the transport said
    /// [`SendError::Full`](super::SendError::Full), `EAGAIN` on a Unix socket.
    WouldBlock = 1,
    /// The peer is gone ([`SendError::Closed`](super::SendError::Closed): `EPIPE`,
    /// `ECONNRESET`, …), or a reconnection attempt just failed, or the channel closed
    /// earlier and the transport cannot replace it.
    Disconnected = 2,
    /// Closed, and the backoff before the next reconnection attempt has not elapsed, so no
    /// attempt was made and the transport was not called.
    BackingOff = 3,
    /// Any other send error ([`SendError::Other`](super::SendError::Other)). The channel is
    /// kept.
    Error = 4,
}

/// Counters of everything a publisher did. Every `publish_at` call lands in exactly one of
/// `sent`, `suppressed` or one `dropped_*` counter; the others count alongside (the reclaim
/// counters, last, count messages received and acknowledgements, which are not publish
/// calls and are not in [`calls`](Self::calls)). Counters saturate at `u64::MAX`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublisherStats {
    /// Frames sent.
    pub sent: u64,
    /// Calls that were not due (rate limit).
    pub suppressed: u64,
    /// Frames dropped because the channel was full.
    pub dropped_would_block: u64,
    /// Frames dropped because the peer was gone or a reconnection attempt failed.
    pub dropped_disconnected: u64,
    /// Frames dropped while waiting out the reconnection backoff.
    pub dropped_backing_off: u64,
    /// Frames dropped for any other send error.
    pub dropped_error: u64,
    /// Reconnection attempts (the connection a transport starts with is not counted).
    pub connect_attempts: u64,
    /// Reconnection attempts that succeeded.
    pub reconnects: u64,
    /// Calls whose `peak` was below `current` and was raised to it.
    pub peak_clamped: u64,
    /// Calls whose `now` was earlier than the moment the last frame was built: counted as no
    /// time passing since that frame.
    pub time_went_backwards: u64,
    /// Reclaim requests received (each one, including those a newer one replaced before the
    /// service saw them).
    pub reclaim_requests: u64,
    /// Messages received that were not a valid reclaim request (garbage, frames,
    /// acknowledgements, truncated or oversize messages): ignored.
    pub reclaim_malformed: u64,
    /// Acknowledgements the transport took.
    pub acks_sent: u64,
    /// Acknowledgements not sent: the transport refused them, or the channel was closed.
    pub acks_dropped: u64,
}

impl PublisherStats {
    /// Nothing done yet.
    pub(crate) const ZERO: PublisherStats = PublisherStats {
        sent: 0,
        suppressed: 0,
        dropped_would_block: 0,
        dropped_disconnected: 0,
        dropped_backing_off: 0,
        dropped_error: 0,
        connect_attempts: 0,
        reconnects: 0,
        peak_clamped: 0,
        time_went_backwards: 0,
        reclaim_requests: 0,
        reclaim_malformed: 0,
        acks_sent: 0,
        acks_dropped: 0,
    };

    /// All frames dropped, whatever the reason.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped_would_block
            .saturating_add(self.dropped_disconnected)
            .saturating_add(self.dropped_backing_off)
            .saturating_add(self.dropped_error)
    }

    /// Every `publish_at` call counted: `sent + suppressed + dropped()`.
    #[must_use]
    pub fn calls(&self) -> u64 {
        self.sent
            .saturating_add(self.suppressed)
            .saturating_add(self.dropped())
    }

    pub(crate) fn count(&mut self, outcome: PublishOutcome) {
        bump(match outcome {
            PublishOutcome::Sent => &mut self.sent,
            PublishOutcome::Suppressed => &mut self.suppressed,
            PublishOutcome::Dropped(DropReason::WouldBlock) => &mut self.dropped_would_block,
            PublishOutcome::Dropped(DropReason::Disconnected) => &mut self.dropped_disconnected,
            PublishOutcome::Dropped(DropReason::BackingOff) => &mut self.dropped_backing_off,
            PublishOutcome::Dropped(DropReason::Error) => &mut self.dropped_error,
        });
    }
}

/// Adds one, saturating.
pub(crate) fn bump(counter: &mut u64) {
    *counter = counter.saturating_add(1);
}
