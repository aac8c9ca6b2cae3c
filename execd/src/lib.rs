//! execd: the process authority of oomd's Linux edge, and the only component that ends
//! processes.
//!
//! # What it is
//!
//! - A **spawner** of the services named in a small static [`Manifest`] (TOML), each with its
//!   identity (`SubjectId::from_name(name)`), class, critical flag, role and environment.
//! - The **owner of their lifecycle**: every service runs in a process group of its own (and,
//!   when a cgroup v2 root is in use, in `<root>/oomd/<name>`). execd holds a pidfd for its main
//!   process from spawn to exit, reaps it, and reports a service gone ([`FromAuthority::Exited`],
//!   `ExecdReply::Exited`) only once *every* process of it is gone: the process group is empty
//!   (`kill(-pgid, 0)` fails with `ESRCH`) or the cgroup is no longer populated.
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
//! - Not a signaller of strangers: it signals only the services it spawned, through their
//!   pidfds, their process groups while their leader is not yet reaped (so the group id cannot
//!   have been reused), pidfds opened on verified members, or `cgroup.kill`. Never a bare
//!   `kill(pid)`.
//! - Not a cgroup manager on hosts: cgroup code runs only with an explicit cgroup root (`--cgroup-root`,
//!   or `--init` as PID 1), and only after checking that the root really is a cgroup v2
//!   filesystem.
//!
//! # Structure
//!
//! [`Execd`] is the whole daemon as a value: built from a [`Manifest`] and [`Options`] (which may
//! carry a pre-made authority channel, so that a test can play the oomd service), driven by
//! [`Execd::poll_once`] / [`Execd::run_until`]. The binary only parses arguments, loads the
//! manifest, does PID-1 setup when asked, and runs the loop. Bounds are in [`limits`].
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
mod cgroup;
mod clients;
mod execd;
pub mod init;
pub mod limits;
mod log;
pub mod manifest;
mod options;
mod procfs;
mod signal;
mod spawn;

pub use execd::Execd;
pub use log::{Log, LogLines};
pub use manifest::{Manifest, ManifestError, Role, ServiceSpec};
pub use options::{Options, SetupError, Stats};
