//! `PublisherCore`: the send schedule over any [`Transport`], `no_std` and allocation-free.
#![forbid(unsafe_code)]

use core::fmt;
use core::time::Duration;

use super::link::{Gate, Link};
use super::schedule::Schedule;
use super::stats::bump;
use super::{
    DropReason, PublishOutcome, PublisherConfig, PublisherStats, SendError, Timestamp, Transport,
};
use crate::{Frame, ReclaimAck, ReclaimRequest, MAX_ACK_LEN, MAX_FRAME_LEN, MAX_REQUEST_LEN};

/// The most messages one [`PublisherCore::poll_reclaim`] takes from the transport, so that a
/// peer flooding the channel cannot keep the service in the call; the rest wait for the next
/// poll.
pub const MAX_RECLAIM_READS_PER_POLL: usize = 16;

/// Sends memstat frames through a [`Transport`]: rate-limited, numbered, never queued, and
/// counted. It reads no clock and does no I/O of its own; the caller passes `now`.
///
/// The rules it applies, and the order of calls, are in the [module docs](super). A Linux
/// service uses [`Publisher`](crate::Publisher), which is this over a Unix socket.
///
/// ```
/// use memstat::publish::{PublishOutcome, PublisherConfig, PublisherCore, SendError};
/// use memstat::publish::{Timestamp, Transport};
///
/// /// Stands in for an IPC send call; a real one would hand `frame` to the kernel.
/// struct Ipc {
///     sent: usize,
/// }
///
/// impl Transport for Ipc {
///     fn try_send(&mut self, frame: &[u8]) -> Result<(), SendError> {
///         assert!(frame.len() <= memstat::MAX_FRAME_LEN);
///         self.sent += 1;
///         Ok(())
///     }
/// }
///
/// let mut publisher = PublisherCore::new(Ipc { sent: 0 }, PublisherConfig::DEFAULT);
/// let t0 = Timestamp::from_millis(10_000); // the OS's monotonic clock, read by the caller
/// assert_eq!(publisher.publish_at(t0, 4096, 8192), PublishOutcome::Sent);
/// // 1 ms later, the same figures: not due (rate limit).
/// let t1 = Timestamp::from_millis(10_001);
/// assert_eq!(publisher.publish_at(t1, 4096, 8192), PublishOutcome::Suppressed);
/// assert_eq!(publisher.transport().sent, 1);
/// ```
pub struct PublisherCore<T> {
    transport: T,
    config: PublisherConfig,
    schedule: Schedule,
    link: Link,
    next_seq: u64,
    stats: PublisherStats,
    /// Where each frame is encoded: nothing is allocated per call.
    buf: [u8; MAX_FRAME_LEN],
    /// The newest reclaim request received and not acknowledged yet.
    pending: Option<ReclaimRequest>,
}

impl<T: Transport> PublisherCore<T> {
    /// A publisher that sends through `transport`, whose channel is taken to be open. Nothing
    /// is sent before the first [`publish_at`](Self::publish_at).
    #[must_use]
    pub const fn new(transport: T, config: PublisherConfig) -> Self {
        Self {
            transport,
            link: Link::new(&config),
            config,
            schedule: Schedule::NEW,
            next_seq: 0,
            stats: PublisherStats::ZERO,
            buf: [0; MAX_FRAME_LEN],
            pending: None,
        }
    }

    /// Offers the figures `current` and `peak` (allocator bytes) at `now`. Builds and sends a
    /// frame if one is due; never blocks (as long as the transport does not), never
    /// allocates, never panics. See the [module docs](super) for the rules.
    pub fn publish_at(&mut self, now: Timestamp, current: u64, peak: u64) -> PublishOutcome {
        let outcome = self.offer(now, current, peak);
        self.stats.count(outcome);
        outcome
    }

    /// Publishes what `alloc` counts at `now`; see [`publish_at`](Self::publish_at). The two
    /// counters are read one after the other, and a pair torn by a concurrent allocation is
    /// clamped like any other `peak < current`.
    #[cfg(feature = "counting-alloc")]
    pub fn publish_from_at<A, S>(
        &mut self,
        now: Timestamp,
        alloc: &crate::CountingAlloc<A, S>,
    ) -> PublishOutcome {
        let current = alloc.live_bytes();
        let peak = alloc.peak_bytes();
        self.publish_at(now, current, peak)
    }

    fn offer(&mut self, now: Timestamp, current: u64, peak: u64) -> PublishOutcome {
        let peak = if peak < current {
            bump(&mut self.stats.peak_clamped);
            current
        } else {
            peak
        };
        if self.schedule.is_before_last_build(now) {
            bump(&mut self.stats.time_went_backwards);
        }
        if !self.schedule.is_due(&self.config, now, current, peak) {
            return PublishOutcome::Suppressed;
        }
        let frame = Frame {
            seq: self.next_seq,
            current_bytes: current,
            peak_bytes: peak,
            claimed_subject: self.config.claimed_subject,
        };
        self.next_seq = self.next_seq.wrapping_add(1);
        self.schedule.built(now, current, peak);
        match self.transmit(now, &frame) {
            Ok(()) => {
                self.schedule.sent(current);
                self.link.sent(&self.config);
                PublishOutcome::Sent
            }
            Err(reason) => PublishOutcome::Dropped(reason),
        }
    }

    fn transmit(&mut self, now: Timestamp, frame: &Frame) -> Result<(), DropReason> {
        match self.link.gate(now) {
            Gate::Open => {}
            Gate::BackingOff => return Err(DropReason::BackingOff),
            Gate::Dead => return Err(DropReason::Disconnected),
            Gate::Reconnect => {
                bump(&mut self.stats.connect_attempts);
                if self.transport.reconnect().is_err() {
                    self.link.closed(&self.config, now, true);
                    return Err(DropReason::Disconnected);
                }
                bump(&mut self.stats.reconnects);
                self.link.reconnected();
            }
        }
        // Cannot fail: the buffer is MAX_FRAME_LEN long and peak was clamped to >= current.
        let len = frame.encode(&mut self.buf).map_err(|_| DropReason::Error)?;
        let bytes = self.buf.get(..len).ok_or(DropReason::Error)?;
        match self.transport.try_send(bytes) {
            Ok(()) => Ok(()),
            Err(SendError::Full) => Err(DropReason::WouldBlock),
            Err(SendError::Closed) => {
                let can_reconnect = self.transport.can_reconnect();
                self.link.closed(&self.config, now, can_reconnect);
                Err(DropReason::Disconnected)
            }
            Err(SendError::Other) => Err(DropReason::Error),
        }
    }

    /// Takes what reclaim requests oomd sent and returns the one pending: the newest not yet
    /// acknowledged. Never blocks (as long as the transport does not), never allocates, never
    /// panics, and needs no `now`.
    ///
    /// It takes at most [`MAX_RECLAIM_READS_PER_POLL`] messages from the transport
    /// ([`Transport::try_recv`], into a buffer of [`MAX_REQUEST_LEN`]` + 1` bytes on the
    /// stack), fewer if the transport has no more queued or fails. Each message that decodes
    /// as a [`ReclaimRequest`] replaces the pending one (**the latest wins**: oomd's newest
    /// request supersedes its older ones) and is counted in
    /// [`PublisherStats::reclaim_requests`]; any other message (garbage, a frame, a truncated
    /// or oversize message) is counted in [`PublisherStats::reclaim_malformed`] and ignored.
    ///
    /// The request returned stays pending, and is returned by every later call (and by
    /// [`pending_reclaim`](Self::pending_reclaim)), until [`acknowledge`](Self::acknowledge)
    /// sends an acknowledgement quoting its id, or a newer request replaces it.
    ///
    /// While the channel is closed as far as the core knows ([`is_connected`](Self::is_connected)
    /// false) the transport is not called, and a pending request stays pending. A closure the
    /// transport reports here does not change the core's state: the next frame finds it.
    pub fn poll_reclaim(&mut self) -> Option<ReclaimRequest> {
        if self.link.is_up() {
            let mut buf = [0u8; MAX_REQUEST_LEN + 1];
            for _ in 0..MAX_RECLAIM_READS_PER_POLL {
                let len = match self.transport.try_recv(&mut buf) {
                    Ok(Some(len)) => len,
                    Ok(None) | Err(_) => break,
                };
                // A message longer than the buffer was cut short; longer than a request, it
                // cannot be one either way.
                let request = buf
                    .get(..len)
                    .filter(|_| len <= MAX_REQUEST_LEN)
                    .and_then(|bytes| ReclaimRequest::decode(bytes).ok());
                match request {
                    Some(request) => {
                        bump(&mut self.stats.reclaim_requests);
                        self.pending = Some(request);
                    }
                    None => bump(&mut self.stats.reclaim_malformed),
                }
            }
        }
        self.pending
    }

    /// The pending reclaim request (see [`poll_reclaim`](Self::poll_reclaim)), without
    /// looking at the transport.
    #[must_use]
    pub fn pending_reclaim(&self) -> Option<ReclaimRequest> {
        self.pending
    }

    /// Sends the acknowledgement of reclaim request `id` ([`ReclaimAck`]) at once, with one
    /// [`Transport::try_send`]: not rate-limited, not a frame (it uses no sequence number and
    /// changes nothing in the frame schedule). Never blocks (as long as the transport does
    /// not), never allocates, never panics.
    ///
    /// Publish a fresh frame *before* acknowledging: oomd checks the outcome with frames and
    /// the kernel's figure, and never believes the acknowledgement alone.
    ///
    /// If the transport took it and `id` is the pending request's, that request is no longer
    /// pending. If it failed, nothing changes: the request stays pending and the service may
    /// acknowledge again (for example after its next `publish_at`). Any `id` may be
    /// acknowledged; one that is not pending leaves the pending request alone. Counted in
    /// [`PublisherStats::acks_sent`] or [`PublisherStats::acks_dropped`].
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] without calling the transport while the channel is closed as far
    /// as the core knows ([`is_connected`](Self::is_connected) false: backing off, or closed
    /// for good); otherwise what `try_send` said. A closure reported here does not change the
    /// core's state (the next frame finds it).
    pub fn acknowledge(&mut self, id: u64) -> Result<(), SendError> {
        let result = self.send_ack(id);
        match result {
            Ok(()) => {
                bump(&mut self.stats.acks_sent);
                if self.pending.is_some_and(|pending| pending.id == id) {
                    self.pending = None;
                }
            }
            Err(_) => bump(&mut self.stats.acks_dropped),
        }
        result
    }

    fn send_ack(&mut self, id: u64) -> Result<(), SendError> {
        if !self.link.is_up() {
            return Err(SendError::Closed);
        }
        let mut buf = [0u8; MAX_ACK_LEN];
        // Cannot fail: the buffer is MAX_ACK_LEN long.
        let len = ReclaimAck { id }
            .encode(&mut buf)
            .map_err(|_| SendError::Other)?;
        let bytes = buf.get(..len).ok_or(SendError::Other)?;
        self.transport.try_send(bytes)
    }

    /// How long from `now` until a call sends even if the figures did not change (the
    /// heartbeat, or the first frame): an event loop that waits should call
    /// [`publish_at`](Self::publish_at) again within this, so that its service never looks
    /// silent. Zero when such a call is due now. A `now` before the last frame counts as that
    /// frame's moment (the whole wait remains).
    #[must_use]
    pub fn next_due(&self, now: Timestamp) -> Duration {
        self.schedule.next_due(&self.config, now)
    }

    /// Everything this publisher did so far.
    #[must_use]
    pub fn stats(&self) -> PublisherStats {
        self.stats
    }

    /// The sequence number the next built frame will carry.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Whether the channel is open as far as the core knows: it may still turn out closed at
    /// the next send. False from a [`SendError::Closed`] until a successful reconnection.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.link.is_up()
    }

    /// The configuration it was built with.
    #[must_use]
    pub fn config(&self) -> &PublisherConfig {
        &self.config
    }

    /// The transport.
    #[must_use]
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, to change. The core learns about the channel only from what
    /// [`try_send`](Transport::try_send) and [`reconnect`](Transport::reconnect) return:
    /// reopening a closed channel by hand does not end a backoff.
    #[must_use]
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }
}

impl<T: fmt::Debug> fmt::Debug for PublisherCore<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublisherCore")
            .field("transport", &self.transport)
            .field("config", &self.config)
            .field("link", &self.link)
            .field("next_seq", &self.next_seq)
            .field("stats", &self.stats)
            .field("pending_reclaim", &self.pending)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Takes everything and remembers the last frame.
    #[derive(Debug, Default)]
    struct Last(Option<Frame>);

    impl Transport for Last {
        fn try_send(&mut self, frame: &[u8]) -> Result<(), SendError> {
            self.0 = Some(Frame::decode(frame).unwrap());
            Ok(())
        }
    }

    #[test]
    fn sequence_numbers_wrap_after_u64_max() {
        let config = PublisherConfig {
            min_interval: Duration::ZERO,
            quantum: 0,
            ..PublisherConfig::DEFAULT
        };
        let mut core = PublisherCore::new(Last::default(), config);
        core.next_seq = u64::MAX;
        let now = Timestamp::ZERO;
        assert_eq!(core.publish_at(now, 1, 1), PublishOutcome::Sent);
        assert_eq!(core.transport().0.unwrap().seq, u64::MAX);
        assert_eq!(core.next_seq(), 0);
        assert_eq!(core.publish_at(now, 2, 2), PublishOutcome::Sent);
        assert_eq!(core.transport().0.unwrap().seq, 0);
    }

    #[test]
    fn counters_saturate_instead_of_overflowing() {
        let mut core = PublisherCore::new(Last::default(), PublisherConfig::DEFAULT);
        core.stats.suppressed = u64::MAX;
        core.stats.time_went_backwards = u64::MAX;
        let t = Timestamp::from_millis(1000);
        assert_eq!(core.publish_at(t, 1, 1), PublishOutcome::Sent);
        assert_eq!(
            core.publish_at(Timestamp::ZERO, 1, 1),
            PublishOutcome::Suppressed
        );
        assert_eq!(core.stats().suppressed, u64::MAX);
        assert_eq!(core.stats().time_went_backwards, u64::MAX);
        assert_eq!(core.stats().calls(), u64::MAX);
    }

    #[test]
    fn debug_names_the_parts_but_not_the_buffer() {
        let core = PublisherCore::new(Last::default(), PublisherConfig::DEFAULT);
        let shown = format!("{core:?}");
        assert!(shown.starts_with("PublisherCore { transport: Last(None), config: "));
        assert!(shown.contains("next_seq: 0"));
        assert!(!shown.contains("buf"));
    }
}
