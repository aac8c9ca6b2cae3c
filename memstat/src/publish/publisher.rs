//! `Publisher`: the core over a Unix socket, with `Instant` for time. What a Linux service
//! links.
#![forbid(unsafe_code)]

use std::fmt;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use super::{
    FromEnvError, PublishOutcome, PublisherConfig, PublisherCore, PublisherStats, SendError,
    Timestamp, UnixTransport,
};
use crate::{CountingAlloc, ReclaimRequest};

/// Sends memstat frames to oomd over a Unix `SOCK_SEQPACKET` socket: rate-limited,
/// non-blocking, allocation-free once built.
///
/// ```no_run
/// use memstat::publish::PublisherConfig;
/// use memstat::Publisher;
///
/// let mut publisher = Publisher::from_env(PublisherConfig::default())?;
/// let _ = publisher.publish(4096, 8192);
/// # Ok::<(), memstat::publish::FromEnvError>(())
/// ```
///
/// It is a [`PublisherCore`] over a [`UnixTransport`]: the rules are the core's (see
/// [`memstat::publish`](super)), the socket is the transport's (an fd from
/// [`ENV_FD`](super::ENV_FD) that is never replaced, or a path from
/// [`ENV_SOCKET`](super::ENV_SOCKET) reconnected to with backoff).
///
/// # Hot path
///
/// [`publish`](Self::publish) never blocks and never allocates: it encodes into a buffer of
/// [`MAX_FRAME_LEN`](crate::MAX_FRAME_LEN) bytes held in the struct and sends with
/// `MSG_DONTWAIT | MSG_NOSIGNAL`. A frame that cannot be sent now is **dropped and counted**
/// ([`PublisherStats`]), never queued; the sequence number still advanced, so the receiver
/// sees the gap.
///
/// # Methods
///
/// - constructors: [`from_env`](Self::from_env), [`from_fd`](Self::from_fd),
///   [`connect`](Self::connect) (these may allocate and make blocking-free syscalls);
/// - inputs: [`publish_at`](Self::publish_at) takes the time from the caller (tests and
///   event loops), [`publish`](Self::publish) reads `Instant::now()`,
///   [`publish_from`](Self::publish_from) reads a [`CountingAlloc`];
/// - poll: [`next_due`](Self::next_due);
/// - reclaim requests from oomd: [`reclaim_fd`](Self::reclaim_fd) (to watch),
///   [`poll_reclaim`](Self::poll_reclaim), [`pending_reclaim`](Self::pending_reclaim),
///   [`acknowledge`](Self::acknowledge);
/// - getters: [`stats`](Self::stats), [`next_seq`](Self::next_seq),
///   [`is_connected`](Self::is_connected), [`config`](Self::config).
///
/// # Reclaim requests
///
/// oomd may ask the service to free memory with a [`ReclaimRequest`] on the same socket. A
/// service with an event loop registers [`reclaim_fd`](Self::reclaim_fd) for readability
/// and, when it is readable, calls [`poll_reclaim`](Self::poll_reclaim); the request returned
/// stays pending (the latest wins) until [`acknowledge`](Self::acknowledge) sends its id
/// back. Free memory, publish a fresh frame, *then* acknowledge: oomd judges by frames and
/// the kernel's figure, never by the acknowledgement alone.
///
/// ```no_run
/// use memstat::publish::PublisherConfig;
/// use memstat::Publisher;
///
/// # fn free_down_to(_: u64) -> (u64, u64) { (0, 0) }
/// let mut publisher = Publisher::from_env(PublisherConfig::default())?;
/// // ... when `publisher.reclaim_fd()` is readable in the service's poll set:
/// if let Some(request) = publisher.poll_reclaim() {
///     let (current, peak) = free_down_to(request.target_bytes);
///     let _ = publisher.publish(current, peak);
///     let _ = publisher.acknowledge(request.id);
/// }
/// # Ok::<(), memstat::publish::FromEnvError>(())
/// ```
///
/// # Time
///
/// `Instant`s are turned into the core's [`Timestamp`]s as the time since the publisher was
/// built; an `Instant` from before that counts as the moment it was built. Time that goes
/// backwards counts as no time passing.
pub struct Publisher {
    core: PublisherCore<UnixTransport>,
    /// The core's time origin.
    built_at: Instant,
}

impl Publisher {
    fn new(transport: UnixTransport, config: PublisherConfig) -> Self {
        Self {
            core: PublisherCore::new(transport, config),
            built_at: Instant::now(),
        }
    }

    /// A publisher over `fd`, a connected `SOCK_SEQPACKET` socket (not checked here; another
    /// socket type would lose message boundaries). It never reconnects: when the peer goes
    /// away, every later frame is dropped as
    /// [`DropReason::Disconnected`](super::DropReason::Disconnected).
    #[must_use]
    pub fn from_fd(fd: OwnedFd, config: PublisherConfig) -> Self {
        Self::new(UnixTransport::from_fd(fd), config)
    }

    /// Connects to the `SOCK_SEQPACKET` listener at `path` and keeps the address to reconnect
    /// to it later. Fails if the path is too long for a Unix socket address or if this first
    /// connection fails (later failures are handled by backoff instead).
    pub fn connect(path: impl AsRef<Path>, config: PublisherConfig) -> io::Result<Self> {
        Ok(Self::new(UnixTransport::connect(path)?, config))
    }

    /// Builds the publisher the service's spawner asked for: see
    /// [`UnixTransport::from_env`] for what [`ENV_FD`](super::ENV_FD) and
    /// [`ENV_SOCKET`](super::ENV_SOCKET) must hold.
    pub fn from_env(config: PublisherConfig) -> Result<Self, FromEnvError> {
        Ok(Self::new(UnixTransport::from_env()?, config))
    }

    /// Publishes the allocator's figures now; see [`publish_at`](Self::publish_at).
    pub fn publish(&mut self, current: u64, peak: u64) -> PublishOutcome {
        self.publish_at(Instant::now(), current, peak)
    }

    /// Publishes what `alloc` counts now; see [`publish_at`](Self::publish_at). The two
    /// counters are read one after the other, and a pair torn by a concurrent allocation is
    /// clamped like any other `peak < current`.
    pub fn publish_from<A, S>(&mut self, alloc: &CountingAlloc<A, S>) -> PublishOutcome {
        let current = alloc.live_bytes();
        let peak = alloc.peak_bytes();
        self.publish(current, peak)
    }

    /// Offers the figures `current` and `peak` (allocator bytes) at time `now`. Never blocks,
    /// never allocates, never panics. See [`PublisherCore::publish_at`].
    pub fn publish_at(&mut self, now: Instant, current: u64, peak: u64) -> PublishOutcome {
        let now = self.timestamp(now);
        self.core.publish_at(now, current, peak)
    }

    /// How long from `now` until a call sends even if the figures did not change (the
    /// heartbeat, or the first frame): an event loop that waits should call
    /// [`publish`](Self::publish) again within this, so that its service never looks silent.
    /// Zero when such a call is due now.
    #[must_use]
    pub fn next_due(&self, now: Instant) -> Duration {
        self.core.next_due(self.timestamp(now))
    }

    /// Takes what reclaim requests oomd sent and returns the pending one (the newest not yet
    /// acknowledged); never blocks, never allocates. See [`PublisherCore::poll_reclaim`].
    pub fn poll_reclaim(&mut self) -> Option<ReclaimRequest> {
        self.core.poll_reclaim()
    }

    /// The pending reclaim request, without reading the socket. See
    /// [`PublisherCore::pending_reclaim`].
    #[must_use]
    pub fn pending_reclaim(&self) -> Option<ReclaimRequest> {
        self.core.pending_reclaim()
    }

    /// Sends the acknowledgement of reclaim request `id` now (not rate-limited); on success
    /// the request is no longer pending, on failure it stays pending to be acknowledged
    /// again. Publish a fresh frame first. See [`PublisherCore::acknowledge`].
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] while the socket is closed (the socket is not touched), or what
    /// the send said: [`SendError::Full`], [`SendError::Closed`], [`SendError::Other`].
    pub fn acknowledge(&mut self, id: u64) -> Result<(), SendError> {
        self.core.acknowledge(id)
    }

    /// The fd to register, for readability, in the service's own event loop: it turns
    /// readable when oomd sent something (a reclaim request), and then
    /// [`poll_reclaim`](Self::poll_reclaim) takes it. `None` while disconnected.
    ///
    /// In path mode ([`connect`](Self::connect), [`ENV_SOCKET`](super::ENV_SOCKET)) a
    /// reconnection, made by [`publish`](Self::publish), replaces the socket and so changes
    /// the fd: fetch it again after `publish` and re-register it if it changed. In fd mode it
    /// never changes, and turns `None` for good once the peer is gone.
    #[must_use]
    pub fn reclaim_fd(&self) -> Option<BorrowedFd<'_>> {
        self.core.transport().as_fd()
    }

    fn timestamp(&self, now: Instant) -> Timestamp {
        Timestamp::from_duration(now.saturating_duration_since(self.built_at))
    }

    /// Everything this publisher did so far.
    #[must_use]
    pub fn stats(&self) -> PublisherStats {
        self.core.stats()
    }

    /// The sequence number the next built frame will carry.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.core.next_seq()
    }

    /// Whether a socket is open now (it may still turn out dead at the next send).
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.core.is_connected()
    }

    /// The configuration it was built with.
    #[must_use]
    pub fn config(&self) -> &PublisherConfig {
        self.core.config()
    }
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("core", &self.core)
            .field("built_at", &self.built_at)
            .finish()
    }
}
