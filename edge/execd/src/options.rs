//! How an [`Execd`](crate::Execd) is set up, why setup can fail, and what it counts.

use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Duration;

use oomd_proto::admission::SocketAccess;

use crate::bounds::DEFAULT_IDLE_TIMEOUT;
use crate::log::Log;

/// How an [`Execd`](crate::Execd) is set up.
#[derive(Debug)]
#[non_exhaustive]
pub struct Options {
    /// Where to listen for control clients (`None`: no control socket).
    pub socket: Option<PathBuf>,
    /// The control socket file's mode and group, whatever the umask.
    pub socket_access: SocketAccess,
    /// Callers in this group (by primary group) may spawn, besides root and execd's own user.
    pub control_group: Option<u32>,
    /// How long a control connection may sit idle before it is closed.
    pub idle_timeout: Duration,
    /// A watchdog service whose last heartbeat is older than this is ended and restarted.
    pub heartbeat_timeout: Duration,
    /// A ready authority channel (execd's end), for a test playing the oomd service. Without
    /// it, the channel is created when the `role = "watchdog"` service is spawned; a manifest
    /// with a watchdog and a ready channel is refused ([`SetupError::WatchdogConflict`]).
    pub authority: Option<OwnedFd>,
    /// Place services in cgroups under `<root>/oomd/` (cgroup v2 only, checked). `None` on
    /// hosts: services then run in process groups only.
    pub cgroup_root: Option<PathBuf>,
    /// Become a child subreaper (`PR_SET_CHILD_SUBREAPER`), so that orphaned processes of a
    /// service are reparented to execd, which reaps them while the service drains: in cgroup
    /// mode its orphans, in process-group mode (where the service's own shim adopts them) those
    /// of a service whose shim was killed.
    pub subreaper: bool,
    /// Reap every child, not only services and their groups (PID 1, the binary).
    pub reap_all: bool,
    /// Where log lines go.
    pub log: Log,
}

impl Options {
    /// No control socket, no authority channel, no cgroups; a child subreaper reaping only its
    /// own services; logs to stderr.
    #[must_use]
    pub fn new() -> Self {
        Options {
            socket: None,
            socket_access: SocketAccess::default(),
            control_group: None,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            heartbeat_timeout: oomd_proto::DEFAULT_HEARTBEAT_TIMEOUT,
            authority: None,
            cgroup_root: None,
            subreaper: true,
            reap_all: false,
            log: Log::stderr(),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self::new()
    }
}

/// Why an [`Execd`](crate::Execd) could not be set up.
#[derive(Debug)]
#[non_exhaustive]
pub enum SetupError {
    /// The control socket could not be created.
    Socket {
        /// Its path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// `PR_SET_CHILD_SUBREAPER` failed.
    Subreaper(io::Error),
    /// The cgroup root is unusable (not cgroup v2, or not writable).
    Cgroup {
        /// The root.
        root: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The ready authority channel could not be used.
    Authority(io::Error),
    /// Both a ready authority channel and a watchdog service: there can be one oomd only.
    WatchdogConflict,
}

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetupError::Socket { path, source } => {
                write!(f, "control socket {}: {source}", path.display())
            }
            SetupError::Subreaper(e) => write!(f, "cannot become a child subreaper: {e}"),
            SetupError::Cgroup { root, source } => {
                write!(f, "cgroup root {}: {source}", root.display())
            }
            SetupError::Authority(e) => write!(f, "authority channel: {e}"),
            SetupError::WatchdogConflict => f.write_str(
                "a ready authority channel was given, but the manifest has a watchdog service",
            ),
        }
    }
}

impl std::error::Error for SetupError {}

/// What execd has done and lost, since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecdStats {
    /// Services started.
    pub spawned: u64,
    /// Spawns the kernel refused.
    pub spawn_failed: u64,
    /// Services observed gone (all of their processes).
    pub exited: u64,
    /// Termination requests carried out (authority channel).
    pub terminate_accepted: u64,
    /// Termination requests refused on the authority channel.
    pub terminate_refused: u64,
    /// Termination requests denied on the control socket (all of them).
    pub control_denied: u64,
    /// Control connections refused: the table was full of connections that may not be
    /// displaced ([`MAX_CLIENTS`](crate::bounds::MAX_CLIENTS)).
    pub clients_refused: u64,
    /// Control connections closed because they sat idle (timeout, or room for a newcomer).
    pub clients_evicted: u64,
    /// Spawn requests refused for the caller's credentials.
    pub spawns_not_permitted: u64,
    /// Restarts of the watchdog.
    pub watchdog_restarts: u64,
    /// Times the watchdog was ended for a missed heartbeat.
    pub watchdog_wedged: u64,
    /// The watchdog used up its restart budget and stays down.
    pub watchdog_down: bool,
    /// `Exited` pushes dropped because a subscriber did not read.
    pub pushes_dropped: u64,
    /// Messages for the oomd service dropped because it did not read.
    pub authority_dropped: u64,
    /// Undecodable requests (control socket or authority channel).
    pub bad_requests: u64,
    /// Zombies reaped that were not a service's main process.
    pub orphans_reaped: u64,
    /// Processes killed by the repeats of a forced termination (they appeared under a shim
    /// after its first walk).
    pub killed_late: u64,
}
