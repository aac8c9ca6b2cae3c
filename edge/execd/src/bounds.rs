//! Every bound of execd, in one place, with its reason.

use std::time::Duration;

/// Most services in a manifest. The manifest is static and small; every per-service queue
/// (one pending `Started`, one `Exited`) is bounded by it.
pub const MAX_SERVICES: usize = 64;

/// Largest manifest file read, in bytes. A manifest of [`MAX_SERVICES`] entries fits with room.
pub const MAX_MANIFEST_BYTES: u64 = 256 * 1024;

/// Prefix of a service's cgroup directory under the cgroup root (`oomd/<name>`).
pub const CGROUP_PREFIX: &str = "oomd/";

/// Longest service name: the cgroup directory `oomd/<name>` travels in `Started.cgroup`, an
/// `oomd_proto::Name` of at most `MAX_NAME_LEN` bytes.
pub const MAX_SERVICE_NAME_LEN: usize = oomd_proto::MAX_NAME_LEN - CGROUP_PREFIX.len();

/// Most control-socket connections at once. A newcomer then takes the slot of the longest-idle
/// connection it may displace, or is told `Busy` (counted); see `oomd_proto::admission`.
pub const MAX_CLIENTS: usize = 32;

/// Connections unprivileged callers (list, subscribe) may hold at once: the rest of the table
/// is kept for operators.
pub const UNPRIVILEGED_CLIENTS: usize = 24;

/// How long a control connection may sit idle (nothing sent, not a privileged subscriber)
/// before it is closed, unless told otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// At most one log line per this interval about refused, evicted or confused connections.
pub const CONTROL_LOG_EVERY: Duration = Duration::from_secs(1);

/// Replies and pushes queued for one control client that does not read. A reply to one request
/// (a full `List`: one line per service and `End`) always fits, because requests are read only
/// from a client whose queue is empty; pushes beyond the bound are dropped and counted.
pub const CLIENT_QUEUE: usize = MAX_SERVICES + 1 + 16;

/// Requests read from one connection in one loop step, so that no client starves the others.
pub const REQUESTS_PER_STEP: usize = 16;

/// Messages queued for the oomd service on the authority channel when its socket buffer is
/// full: a `Started` and an `Exited` per service run, and answers (requests are read only while
/// an answer fits). Beyond it, a message is dropped, counted and logged.
pub const AUTHORITY_QUEUE: usize = 4 * MAX_SERVICES;

/// How often a service whose main process has ended is checked for remaining processes (its
/// process group or cgroup), until it is empty.
pub const DRAIN_INTERVAL: Duration = Duration::from_millis(20);

/// Most descendants of one shim pinned by one walk of a termination. Beyond it, the first
/// found are ended first and the rest by the next walk (forced terminations repeat every
/// [`DRAIN_INTERVAL`] until the shim exits). Far above any real service.
pub const MAX_TREE: usize = 65_536;

/// Walks of one termination, until a walk finds no one new. A forced walk stops each member
/// it finds, so a tree stops growing within a few walks whatever it does; the bound only stops
/// a graceful walk from chasing a fork loop forever (the graceful deadline, then a forced
/// termination, deal with that one).
pub const TREE_ROUNDS: usize = 16;

/// How often every zombie child is reaped when execd reaps orphans (PID 1, or the binary as a
/// child subreaper). The main processes of services are reaped at once through their pidfds.
pub const REAP_INTERVAL: Duration = Duration::from_millis(200);

/// How long [`Execd::shutdown`](crate::Execd::shutdown) waits for services killed on drop.
pub const DROP_GRACE: Duration = Duration::from_secs(3);
