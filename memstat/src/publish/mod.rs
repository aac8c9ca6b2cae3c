//! Publishing: what a service links to send its memstat frames to the watchdog.
//!
//! # Two layers
//!
//! - [`PublisherCore`], `no_std` and allocation-free: decides *when* a frame is due (rate
//!   limit, growth quantum, heartbeat), numbers and encodes it, hands it to a [`Transport`],
//!   counts what happened ([`PublisherStats`]) and, after the transport says
//!   [`SendError::Closed`], waits out a bounded exponential backoff before asking it to
//!   [`reconnect`](Transport::reconnect). It reads no clock: every call takes `now`, a
//!   [`Timestamp`] on the caller's monotonic clock. It does no I/O of its own.
//! - With the `std` feature, [`Publisher`]: the core over a [`UnixTransport`] (an inherited
//!   fd, or a socket path it reconnects to), with `Instant` for time. This is what a Linux
//!   service links.
//!
//! A service on another OS links the core with a `Transport` over its own IPC; the contract
//! is in `docs/memstat-wire.md`, "Linking the publisher on another OS".
//!
//! # The order of calls
//!
//! - constructor: [`PublisherCore::new`] (const, no I/O);
//! - input: [`PublisherCore::publish_at`] with `now` and the figures; it returns a
//!   [`PublishOutcome`] and never blocks, allocates or panics;
//! - poll: [`PublisherCore::next_due`] tells an event loop how long it may wait before
//!   calling again so that its service never looks silent;
//! - reclaim: [`PublisherCore::poll_reclaim`] takes oomd's reclaim requests off the
//!   transport (at most [`MAX_RECLAIM_READS_PER_POLL`] messages per call; the latest request
//!   wins and stays pending until acknowledged), [`PublisherCore::pending_reclaim`] returns
//!   it without I/O, and [`PublisherCore::acknowledge`] sends its acknowledgement at once;
//!   none of them blocks, allocates or panics, and none needs `now`;
//! - getters: [`stats`](PublisherCore::stats), [`next_seq`](PublisherCore::next_seq),
//!   [`is_connected`](PublisherCore::is_connected), [`config`](PublisherCore::config),
//!   [`transport`](PublisherCore::transport).
//!
//! # Rules, in the order `publish_at` applies them
//!
//! 1. `peak < current` is not an error: `peak` is raised to `current` (counted in
//!    [`PublisherStats::peak_clamped`]), so no invalid frame is ever built.
//! 2. **Rate limit.** A frame is due if none was built yet; or `current` grew by at least
//!    `quantum` since the last frame that was actually *sent*; or `min_interval` has passed
//!    since the last frame was built (sent or dropped) and either the figures changed since
//!    that frame or `heartbeat` has passed too (a live service is never silent for longer
//!    than its heartbeat). Otherwise the call is [`PublishOutcome::Suppressed`]. Time that
//!    goes backwards counts as no time passing (and is counted in
//!    [`PublisherStats::time_went_backwards`]).
//! 3. A due frame takes the next sequence number (starting at 0, wrapping after `u64::MAX`),
//!    so every dropped frame leaves a gap the receiver can see.
//! 4. **Send or drop**, never queue. See [`DropReason`]. After [`SendError::Closed`] a
//!    transport that [can reconnect](Transport::can_reconnect) is asked to, by the first due
//!    frame at least `backoff` later; `backoff` starts at `backoff_initial` and doubles after
//!    each failure up to `backoff_max`, and returns to `backoff_initial` only after a frame
//!    is sent, so a peer that accepts and at once hangs up cannot make the publisher spin. A
//!    transport that cannot reconnect is never called again.
//!
//! Every `publish_at` call lands in exactly one of [`PublisherStats::sent`],
//! [`suppressed`](PublisherStats::suppressed) or one `dropped_*` counter. Reclaim messages
//! and acknowledgements are counted apart (`reclaim_*`, `acks_*`).

// Every module but `unix` (which adopts an inherited fd) forbids `unsafe` in its own file.
mod config;
mod link;
mod publisher_core;
mod schedule;
mod stats;
mod timestamp;
mod transport;

#[cfg(feature = "std")]
mod growth;
#[cfg(feature = "std")]
mod publisher;
#[cfg(feature = "std")]
mod unix;

pub use self::config::PublisherConfig;
pub use self::publisher_core::PublisherCore;
pub use self::publisher_core::MAX_RECLAIM_READS_PER_POLL;
pub use self::stats::{DropReason, PublishOutcome, PublisherStats};
pub use self::timestamp::Timestamp;
pub use self::transport::{ReconnectFailed, RecvError, SendError, Transport};

#[cfg(feature = "std")]
pub use self::growth::{GrowthPublisher, DEFAULT_PACING as DEFAULT_GROWTH_PACING};
#[cfg(feature = "std")]
pub use self::publisher::Publisher;
#[cfg(feature = "std")]
pub use self::unix::{
    io_would_block, peer_hung_up, refuse_descriptors, would_block, FromEnvError, UnixTransport,
    ENV_FD, ENV_SOCKET,
};
