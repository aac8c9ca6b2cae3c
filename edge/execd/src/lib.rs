//! execd: the process authority of oomd's Linux edge, and the only component that ends
//! processes.
//!
//! # What it is
//!
//! - A **spawner** of the services named in a small static [`Manifest`] (TOML), each with its
//!   identity (`SubjectId::from_name(name)`), class, critical flag, role and environment.
//! - The **owner of their lifecycle**, in one of two modes (see *What each mode guarantees*).
//!   execd holds a pidfd for the service's root process from spawn to exit, reaps it, and
//!   reports a service gone ([`FromAuthority::Exited`], `ExecdReply::Exited`) only once *every*
//!   process of it is gone.
//! - The **authority** the oomd service talks to. When execd spawns the `role = "watchdog"`
//!   service it creates the authority channel and hands one end over as `OOMD_AUTHORITY_FD`;
//!   on it, and only on it, a [`ToAuthority::Terminate`] request is carried out (critical
//!   services are refused again here, as defence in depth behind the core's own check).
//! - The **creator of memstat channels**: one `SOCK_SEQPACKET` pair per service. The service's
//!   end is inherited as `OOMD_MEMSTAT_FD`; the other end goes to the oomd service with
//!   [`FromAuthority::Started`] as `SCM_RIGHTS`, so the channel a frame arrives on *is* its
//!   sender's identity.
//! - A **control socket** where anyone may list, spawn and subscribe to exits. Termination is
//!   denied there to every caller (`NotPermitted`, or `Critical`).
//! - In the QEMU guest, **PID 1** (`--init`, see [`init`]): mounts, the cgroup tree, orphans, and
//!   power-off when the selftest ends.
//!
//! # What it is not
//!
//! - Not a policy: it never decides to end anything. Only the oomd service asks, through the
//!   authority channel; execd carries the request out and confirms the exit.
//! - Not a general init or service manager: no restart policy, no dependencies, no reload; the
//!   manifest is static.
//! - Not a signaller of strangers: it signals only the services it spawned, through pidfds
//!   opened on members and verified after the pin (descendants of a shim, members of a
//!   process group, of `cgroup.procs`), or `cgroup.kill`. Never a bare `kill(pid)`, never a
//!   process group, never a shim.
//! - Not a cgroup manager on hosts: cgroup code runs only with an explicit cgroup root (`--cgroup-root`,
//!   or `--init` as PID 1), and only after checking that the root really is a cgroup v2
//!   filesystem.
//!
//! # What each mode guarantees
//!
//! **cgroup mode** (an explicit cgroup v2 root: the QEMU guest). Each service runs in
//! `<root>/oomd/<name>`, joined before its exec; `Started.pid` is its main process. The kernel
//! keeps every descendant in the cgroup whatever it does with sessions, groups or double
//! forks; a termination is `cgroup.kill` (forced) or `SIGTERM` to every listed member
//! (graceful), and the service is gone when `cgroup.events` says `populated 0`. What it
//! cannot see: a process the service has *another* service start for it (that one is the
//! other's), and a root service that moves its processes to another cgroup (writing
//! `cgroup.procs` needs write access to both: services that run under their own uid cannot).
//!
//! **process-group mode** (no cgroup: hosts, where execd never touches cgroups). Each service
//! runs under a **subreaper shim** (`PR_SET_CHILD_SUBREAPER`, see `src/shim.rs`): the process
//! execd forks leads the service's process group, forks the service, and then only reaps until
//! it has no child left, and exits as the service's main process did. Every orphan of the
//! service is reparented to the shim, so the shim's descendants are exactly the service's
//! processes, whatever sessions or groups they moved to; `Started.pid` is the shim's (the root
//! of the tree, and the group id), and the service is gone when the shim has exited (and its
//! process group is empty). A termination walks the shim's descendants (`/proc`, through
//! `proctree`), pins each with a pidfd, verifies it after the pin, and signals it through the
//! pidfd; a forced one stops each member as it is found, kills them all once the walk finds no
//! one new, and is repeated every [`DRAIN_INTERVAL`](bounds::DRAIN_INTERVAL) until the shim
//! has exited. What it cannot see or stop: a process started for the service by something
//! outside its tree (another daemon, a service manager); and a service running under execd's
//! own uid can kill its shim (`SIGKILL` cannot be ignored; it could kill execd as well), after
//! which its processes that left the process group are orphans of execd or init, out of
//! sight (those that stayed in the group still keep the service from being reported gone).
//! Reparenting, `ptrace` and `setsid` cannot take a process out of the tree: the kernel only
//! reparents an orphan to its nearest subreaper ancestor, and `/proc`'s parent is the real
//! parent, not a tracer. Give services a `uid` of their own and the shim, which keeps execd's
//! uid, is out of their reach.
//!
//! # Structure
//!
//! [`Execd`] is the whole daemon as a value: built from a [`Manifest`] and [`Options`] (which may
//! carry a pre-made authority channel, so that a test can play the oomd service), driven by
//! [`Execd::poll_once`] / [`Execd::run_until`]. The binary only parses arguments, loads the
//! manifest, does PID-1 setup when asked, and runs the loop. Bounds are in [`bounds`].
//!
//! # Log lines
//!
//! One `write()` per line on stderr: `execd: started <name> pid=<pid>`,
//! `execd: <name> exited (<status>)`, `execd: terminate <name> mode=<m> accepted|denied
//! (<reason>) by=<channel>`, `execd: spawn <name> failed (<error>)`, …
//!
//! [`FromAuthority::Exited`]: oomd_proto::FromAuthority::Exited
//! [`FromAuthority::Started`]: oomd_proto::FromAuthority::Started
//! [`ToAuthority::Terminate`]: oomd_proto::ToAuthority::Terminate
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod authority;
pub mod bounds;
mod cgroup;
mod clients;
mod execd;
pub mod init;
mod log;
pub mod manifest;
mod options;
mod shim;
mod signal;
mod spawn;
pub mod supervise;
mod tree;

pub use execd::Execd;
pub use log::{Log, LogLines};
pub use manifest::{Manifest, ManifestError, Role, ServiceSpec};
pub use options::{ExecdStats, Options, SetupError};
