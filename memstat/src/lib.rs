//! memstat: the small, bounded, versioned report a service sends its memory watchdog.
//!
//! A *memstat frame* says how many bytes a service's **allocator** holds now and at its peak.
//! It is cooperative: the service measures and reports itself. It is **not** the kernel's
//! resident set size, and a service that does not report, or reports less than it holds, is
//! not caught by memstat alone (the oomd Linux edge reads the kernel's figure beside it).
//!
//! What this crate is:
//! - the wire format, frame v1 ([`Frame`], [`MAX_FRAME_LEN`], [`Frame::encode`],
//!   [`Frame::decode`]), `no_std`, without `alloc`, and never panicking on hostile bytes;
//! - the subject identity every oomd crate shares ([`SubjectId`]);
//! - with the `counting-alloc` feature, `CountingAlloc`, a `GlobalAlloc` wrapper that
//!   counts live and peak bytes;
//! - with the `std` feature (default), `Publisher`, which sends frames to oomd over a Unix
//!   socket without blocking or allocating on the service's hot path.
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
#[cfg(feature = "std")]
pub mod publish;
mod subject;

#[cfg(feature = "counting-alloc")]
pub use counting_alloc::CountingAlloc;
pub use frame::{DecodeError, EncodeError, Frame, HEADER_LEN, MAGIC, MAX_FRAME_LEN, VERSION};
#[cfg(feature = "std")]
pub use publish::{Publisher, ENV_FD, ENV_SOCKET};
pub use subject::SubjectId;
