//! oomd-proto: what the processes of oomd's Linux edge say to each other, and how.
//!
//! Three conversations, each over a Unix `SOCK_SEQPACKET` socket (message boundaries kept,
//! peer credentials known to the kernel), one message per packet:
//!
//! | channel | ends | how it is made | who may use it |
//! |---|---|---|---|
//! | authority channel | execd ↔ oomd service | a socketpair execd creates when it spawns the oomd service; oomd finds its end in [`ENV_AUTHORITY_FD`] | only the oomd service: the channel itself is the credential |
//! | execd control | clients → execd | a listening socket ([`DEFAULT_EXECD_SOCKET`]) | anyone may list, spawn and subscribe; termination is denied to every caller (only the authority channel may end a service) |
//! | oomd control | clients → oomd service | a listening socket ([`DEFAULT_CONTROL_SOCKET`]) | status, events, policy; `inject` only in selftest builds |
//!
//! Memstat frames travel on a fourth kind of channel, one per service: a socketpair execd
//! creates at spawn. The service gets one end as `OOMD_MEMSTAT_FD`; oomd gets the other end
//! with [`FromAuthority::Started`], passed as `SCM_RIGHTS`. A frame's sender is the channel it
//! arrived on, never its bytes.
//!
//! Messages are two magic bytes naming their [`Protocol`] (`OA` authority, `OC` oomd control,
//! `EC` execd control), a version byte ([`VERSION`]) and a postcard body, at most
//! [`MAX_MESSAGE_LEN`] bytes: a message sent to the wrong socket is recognized as such by both
//! sides ("not an oomd socket"), never read as another request. Every string is bounded ([`Name`], [`Line`]), so that encoding and decoding never
//! allocate: the oomd service handles its steady state without touching the heap.
//!
//! What this crate is not: a policy. It carries decisions; it makes none.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admission;
pub mod client;
mod messages;
mod wire;

pub use messages::*;
pub use wire::{
    accept, connect, decode, encode, listen, peer_pid, send, seqpacket_pair, set_nonblocking,
    would_block, Message, PeerFault, Protocol, Received, Receiver, WireError, HEADER_LEN, MAX_FDS,
    MAX_MESSAGE_LEN, VERSION,
};

/// Environment variable holding the oomd service's end of the authority channel.
pub const ENV_AUTHORITY_FD: &str = "OOMD_AUTHORITY_FD";
/// Environment variable overriding the path of execd's control socket.
pub const ENV_EXECD_SOCKET: &str = "OOMD_EXECD_SOCKET";
/// Environment variable overriding the path of the oomd service's control socket.
pub const ENV_CONTROL_SOCKET: &str = "OOMD_CONTROL_SOCKET";
/// Where execd listens unless told otherwise.
pub const DEFAULT_EXECD_SOCKET: &str = "/run/oomd/execd.sock";
/// Where the oomd service listens unless told otherwise.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/oomd/oomd.sock";
/// The oomd service sends [`ToAuthority::Heartbeat`] at least this often: on a wake of its
/// loop (a tick, a frame) once half of it has passed, and on every tick when the next tick
/// would come too late, so at its default tick the heartbeat rides on the tick and needs no
/// wake of its own.
pub const HEARTBEAT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
/// execd ends a watchdog whose last heartbeat is older than this (unless its manifest says
/// otherwise): five heartbeats.
pub const DEFAULT_HEARTBEAT_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);
