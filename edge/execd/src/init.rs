//! PID 1 duties in the QEMU guest (`execd --init`).
//!
//! Every function here that changes the machine checks `getpid() == 1` itself, right before
//! acting, and fails with [`InitError::NotPid1`] otherwise: none of it can run on a host, even
//! if called by mistake. Verified only in the QEMU guest (a later issue), never on the hosts
//! that run the tests.
//!
//! What PID 1 does, in order:
//! 1. [`setup`]: mount proc (`/proc`), sysfs (`/sys`), devtmpfs (`/dev`) and cgroup2
//!    (`/sys/fs/cgroup`), create `/run/oomd`. The cgroup tree (`oomd/`, `+memory`) is then
//!    prepared by [`Execd`](crate::Execd) from its cgroup root.
//! 2. Run the manifest with orphan reaping on (every zombie is reaped).
//! 3. [`power_off`] when the `role = "selftest"` service has exited, or after the bounded
//!    `--poweroff-after` timeout. PID 1 never exits (the kernel would panic): if power-off
//!    fails it waits forever.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use rustix::mount::MountFlags;

use crate::log::Log;

/// Where the cgroup v2 hierarchy is mounted in the guest.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// Runtime directory for sockets (`/run/oomd/execd.sock`, `/run/oomd/oomd.sock`).
pub const RUN_DIR: &str = "/run/oomd";

/// Why a PID-1 step failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum InitError {
    /// execd is not PID 1: nothing was done.
    NotPid1 {
        /// Its actual pid.
        pid: i32,
    },
    /// A mount failed.
    Mount {
        /// The mount point.
        target: &'static str,
        /// Why.
        source: io::Error,
    },
    /// A directory could not be created.
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// `reboot(RB_POWER_OFF)` failed.
    PowerOff(io::Error),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::NotPid1 { pid } => write!(
                f,
                "execd is pid {pid}, not 1: --init is only for the first process of a machine"
            ),
            InitError::Mount { target, source } => write!(f, "mount {target}: {source}"),
            InitError::Dir { path, source } => write!(f, "mkdir {}: {source}", path.display()),
            InitError::PowerOff(e) => write!(f, "power off: {e}"),
        }
    }
}

impl std::error::Error for InitError {}

/// Whether this process is PID 1.
#[must_use]
pub fn is_pid1() -> bool {
    rustix::process::getpid().is_init()
}

/// `Ok` only when this process is PID 1.
pub fn check_pid1() -> Result<(), InitError> {
    if is_pid1() {
        Ok(())
    } else {
        Err(InitError::NotPid1 {
            pid: rustix::process::getpid().as_raw_nonzero().get(),
        })
    }
}

/// What [`setup`] achieved.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Setup {
    /// The cgroup v2 root to give [`Execd`](crate::Execd), if cgroup2 is mounted.
    pub cgroup_root: Option<PathBuf>,
    /// Steps that failed (each was logged); the rest went on.
    pub failures: Vec<InitError>,
}

struct Mount {
    source: &'static str,
    target: &'static str,
    fstype: &'static str,
    flags: MountFlags,
}

const MOUNTS: [Mount; 4] = [
    Mount {
        source: "proc",
        target: "/proc",
        fstype: "proc",
        flags: MountFlags::NOSUID
            .union(MountFlags::NODEV)
            .union(MountFlags::NOEXEC),
    },
    Mount {
        source: "sysfs",
        target: "/sys",
        fstype: "sysfs",
        flags: MountFlags::NOSUID
            .union(MountFlags::NODEV)
            .union(MountFlags::NOEXEC),
    },
    Mount {
        source: "devtmpfs",
        target: "/dev",
        fstype: "devtmpfs",
        flags: MountFlags::NOSUID,
    },
    Mount {
        source: "cgroup2",
        target: CGROUP_ROOT,
        fstype: "cgroup2",
        flags: MountFlags::NOSUID
            .union(MountFlags::NODEV)
            .union(MountFlags::NOEXEC),
    },
];

/// Mounts the kernel filesystems and creates [`RUN_DIR`]. A failed step is logged and recorded
/// and the others still run (a guest without devtmpfs can still run its selftest). Fails at
/// once, having done nothing, if this is not PID 1.
pub fn setup(log: &Log) -> Result<Setup, InitError> {
    check_pid1()?;
    let mut setup = Setup::default();
    let mut fail = |e: InitError| {
        log.line(format_args!("execd: init: {e}"));
        setup.failures.push(e);
    };
    for m in &MOUNTS {
        if let Err(e) = mount(m) {
            fail(e);
        }
    }
    if let Err(e) = mkdir_all(Path::new(RUN_DIR)) {
        fail(e);
    }
    if Path::new(CGROUP_ROOT).join("cgroup.procs").exists() {
        setup.cgroup_root = Some(PathBuf::from(CGROUP_ROOT));
    }
    Ok(setup)
}

fn mkdir_all(path: &Path) -> Result<(), InitError> {
    check_pid1()?;
    std::fs::create_dir_all(path).map_err(|source| InitError::Dir {
        path: path.to_path_buf(),
        source,
    })
}

fn mount(m: &Mount) -> Result<(), InitError> {
    mkdir_all(Path::new(m.target))?;
    check_pid1()?;
    match rustix::mount::mount(m.source, m.target, m.fstype, m.flags, None) {
        // Already mounted (by the kernel, or a previous step): fine.
        Ok(()) | Err(rustix::io::Errno::BUSY) => Ok(()),
        Err(e) => Err(InitError::Mount {
            target: m.target,
            source: e.into(),
        }),
    }
}

/// Syncs and powers the machine off. Returns only if that failed (or this is not PID 1, in
/// which case nothing was done).
#[must_use]
pub fn power_off(log: &Log) -> InitError {
    if let Err(e) = check_pid1() {
        return e;
    }
    log.line(format_args!("execd: powering off"));
    rustix::fs::sync();
    if let Err(e) = check_pid1() {
        return e;
    }
    match rustix::system::reboot(rustix::system::RebootCommand::PowerOff) {
        Ok(()) => InitError::PowerOff(io::Error::other("reboot returned")),
        Err(e) => InitError::PowerOff(e.into()),
    }
}
