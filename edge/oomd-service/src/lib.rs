//! The oomd service for Linux: the `no_std` [`oomd`] core run on real sockets, a real timer and
//! real exits.
//!
//! What it does, in one loop ([`Service::step`]):
//! - a `timerfd` at the policy's sample period produces ticks; before each tick it reads every
//!   running subject's kernel figure (cgroup `memory.current` in the guest, resident pages from
//!   `/proc/<pid>/statm` on a host without cgroup v2) and feeds it as a kernel reading;
//! - each service's memstat channel (a socketpair execd made at spawn, whose end arrives with
//!   [`oomd_proto::FromAuthority::Started`]) is read, and each frame is fed with the sender that
//!   channel belongs to: payload bytes never decide who sent a frame;
//! - the core's termination requests go to execd over the authority channel; execd's answers
//!   and exit reports come back as inputs;
//! - every event is printed as one line on stderr (the marker words, or JSON lines), and the
//!   contract markers (`oomd: ready`, `oomd: kill app=..`, `oomd: kill denied (..)`) on
//!   stdout, each with one `write()`, after the fact they claim;
//! - a control socket answers `status`, `events`, `policy get|set|reload`, and, in selftest
//!   builds only, `inject`; `SIGHUP` reloads the policy file too.
//!
//! After start-up the loop does not allocate: buffers, tables and the epoll set are sized or
//! made once (`tests/no_alloc.rs` proves it with a counting allocator). The one exception is a
//! policy reload (`SIGHUP`, `oomctl policy reload`), which parses the policy file.
//!
//! What it is not: a process authority. It never signals anything; execd does.

pub mod audit;
mod brake;
mod control;
mod kernel;
mod kill_report;
mod names;
mod output;
mod policies;
mod record;
mod reserved;
mod service;

pub use control::{DEFAULT_IDLE_TIMEOUT, MAX_CLIENTS, UNPRIVILEGED_MAX};
pub use names::ServiceNames;
pub use output::{LogFormat, Output};
pub use policies::{check_document, Refusal};
pub use record::RecordTo;
pub use service::{AuditTo, Options, Service, ServiceError};
