//! memstat: the small, bounded, versioned report a service sends its memory watchdog.
//!
//! A *memstat frame* says how many bytes a service's **allocator** holds now and at its peak.
//! It is cooperative: the service measures and reports itself. It is **not** the kernel's
//! resident set size, and a service that does not report, or reports less than it holds, is
//! not caught by memstat alone (the oomd Linux edge reads the kernel's figure beside it).
//!
//! What this crate is, and what each part needs:
//!
//! - **`no_std`, without `alloc`, with no feature:**
//!   - the wire format, frame v1 ([`Frame`], [`MAX_FRAME_LEN`], [`Frame::encode`],
//!     [`Frame::decode`]), never panicking on hostile bytes;
//!   - the reclaim messages, v1, in [`reclaim`]: oomd's request that a service free memory
//!     ([`ReclaimRequest`], magic `b"MR"`) and the service's acknowledgement ([`ReclaimAck`],
//!     `b"MA"`), on the same channel as its frames and told apart from them by the magic;
//!   - the subject identity every oomd crate shares ([`SubjectId`]);
//!   - the portable publisher, [`publish::PublisherCore`]: the send schedule (rate limit,
//!     heartbeat, growth quantum, wrapping sequence numbers, drops counted by reason,
//!     reconnection backoff) over any [`publish::Transport`], with the time passed in as a
//!     [`publish::Timestamp`]; it also takes oomd's reclaim requests off the channel
//!     without blocking or allocating ([`publish::PublisherCore::poll_reclaim`]) and sends
//!     the acknowledgements ([`publish::PublisherCore::acknowledge`]).
//! - **feature `counting-alloc`, still `no_std`:** `CountingAlloc`, a `GlobalAlloc` wrapper
//!   that counts live and peak bytes and can signal growth past an armed threshold
//!   (`GrowthSignal`), and `PublisherCore::publish_from_at`, which reads it.
//! - **feature `std` (the default; includes `counting-alloc`):** `Publisher`, the core over a
//!   Unix `SOCK_SEQPACKET` socket (`publish::UnixTransport`: an inherited fd, or a path it
//!   reconnects to) with `Instant` for time, which sends frames to oomd without blocking or
//!   allocating on the service's hot path; `publish::GrowthPublisher`, a thread the
//!   allocator wakes to publish on growth by itself; and `ENV_FD` / `ENV_SOCKET`, the
//!   environment variables a spawner sets for it.
//!
//! Build without default features for a `no_std` target: everything but `Publisher` and
//! `UnixTransport` is there. A service on another OS links the core with a transport over its
//! own IPC (`docs/memstat-wire.md`, "Linking the publisher on another OS").
//!
//! What it is not: a transport that authenticates anyone (the receiver decides who sent a
//! frame from the channel it came on), nor a measure of kernel memory.
#![cfg_attr(not(any(feature = "std", test)), no_std)]
#![cfg_attr(not(feature = "counting-alloc"), forbid(unsafe_code))]
#![cfg_attr(feature = "counting-alloc", deny(unsafe_code))]
#![warn(missing_docs)]

#[cfg(feature = "counting-alloc")]
mod counting_alloc;
mod frame;
pub mod publish;
pub mod reclaim;
mod subject;
mod varint;

#[cfg(feature = "counting-alloc")]
pub use counting_alloc::{CountingAlloc, GrowthSignal, NoSignal};
pub use frame::{DecodeError, EncodeError, Frame, HEADER_LEN, MAGIC, MAX_FRAME_LEN, VERSION};
#[cfg(feature = "std")]
pub use publish::{Publisher, ENV_FD, ENV_SOCKET};
pub use reclaim::{
    is_ack, is_request, ReclaimAck, ReclaimRequest, ACK_MAGIC, MAX_ACK_LEN, MAX_REQUEST_LEN,
    RECLAIM_VERSION, REQUEST_MAGIC,
};
pub use subject::SubjectId;
